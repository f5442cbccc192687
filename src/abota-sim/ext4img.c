/* ext4img.c - create, read and edit small ext4 file systems inside the disk
 * image with libext2fs, at a byte offset, without mounting anything.  Used to
 * generate the bank contents and by the emulated U-Boot to read extlinux.conf
 * the way the real one does (from the bootfs of the chosen bank). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <et/com_err.h>
#include <ext2fs/ext2_err.h>
#include <ext2fs/ext2fs.h>

#include "sim.h"

#define EXT4IMG_BLOCK 4096
/* Fixed clock (2026-01-01) so that generated images are reproducible. */
#define EXT4IMG_EPOCH 1767225600

static void init_errors(void)
{
	static int done;
	if (!done) {
		initialize_ext2_error_table();
		done = 1;
	}
}

static int e2err(struct abota_error *err, errcode_t rc, const char *what, const char *path)
{
	init_errors();
	return abota_error_set(err, -EIO, "%s%s%s: %s", what, path ? " " : "", path ? path : "",
			       error_message(rc));
}

static errcode_t open_fs(const char *image, uint64_t offset, int rw, ext2_filsys *fs)
{
	char opts[64];
	snprintf(opts, sizeof(opts), "offset=%llu", (unsigned long long)offset);
	errcode_t rc = ext2fs_open2(image, opts,
				    rw ? EXT2_FLAG_RW | EXT2_FLAG_64BITS : EXT2_FLAG_64BITS, 0, 0,
				    unix_io_manager, fs);
	if (!rc)
		(*fs)->now = EXT4IMG_EPOCH;
	return rc;
}

/* The file system must lie inside its partition. */
static int check_size(ext2_filsys fs, uint64_t size, struct abota_error *err)
{
	uint64_t bytes = ext2fs_blocks_count(fs->super) * (uint64_t)fs->blocksize;
	if (bytes > size)
		return abota_error_set(err, -EIO,
				       "file system of %llu bytes does not fit the %llu-byte "
				       "partition",
				       (unsigned long long)bytes, (unsigned long long)size);
	return 0;
}

/* Walks/creates the directories of path; *name points at the last component. */
static errcode_t lookup_parent(ext2_filsys fs, const char *path, bool create, ext2_ino_t *parent,
			       char *name, size_t cap)
{
	ext2_ino_t dir = EXT2_ROOT_INO;
	const char *p = path;
	while (*p == '/')
		p++;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0 || n >= cap || n > 255)
			return EXT2_ET_FILE_NOT_FOUND;
		memcpy(name, p, n);
		name[n] = '\0';
		if (!slash)
			break;
		ext2_ino_t ino;
		errcode_t rc = ext2fs_lookup(fs, dir, name, (int)n, NULL, &ino);
		if (rc == EXT2_ET_FILE_NOT_FOUND && create) {
			rc = ext2fs_mkdir(fs, dir, 0, name);
			if (rc == EXT2_ET_DIR_NO_SPACE) {
				rc = ext2fs_expand_dir(fs, dir);
				if (!rc)
					rc = ext2fs_mkdir(fs, dir, 0, name);
			}
			if (!rc)
				rc = ext2fs_lookup(fs, dir, name, (int)n, NULL, &ino);
		}
		if (rc)
			return rc;
		dir = ino;
		p = slash + 1;
		while (*p == '/')
			p++;
	}
	*parent = dir;
	return 0;
}

static errcode_t put_file(ext2_filsys fs, const char *path, const void *data, size_t len)
{
	char name[256];
	ext2_ino_t dir, ino;
	ext2_file_t f = NULL;
	errcode_t rc = lookup_parent(fs, path, true, &dir, name, sizeof(name));
	if (rc)
		return rc;
	rc = ext2fs_lookup(fs, dir, name, (int)strlen(name), NULL, &ino);
	if (rc == EXT2_ET_FILE_NOT_FOUND) {
		rc = ext2fs_new_inode(fs, dir, LINUX_S_IFREG | 0644, 0, &ino);
		if (rc)
			return rc;
		rc = ext2fs_link(fs, dir, name, ino, EXT2_FT_REG_FILE);
		if (rc == EXT2_ET_DIR_NO_SPACE) {
			rc = ext2fs_expand_dir(fs, dir);
			if (!rc)
				rc = ext2fs_link(fs, dir, name, ino, EXT2_FT_REG_FILE);
		}
		if (rc)
			return rc;
		ext2fs_inode_alloc_stats2(fs, ino, +1, 0);
		struct ext2_inode inode;
		memset(&inode, 0, sizeof(inode));
		inode.i_mode = LINUX_S_IFREG | 0644;
		inode.i_links_count = 1;
		inode.i_atime = inode.i_ctime = inode.i_mtime = (__u32)fs->now;
		if (ext2fs_has_feature_extents(fs->super)) {
			ext2_extent_handle_t h;
			rc = ext2fs_extent_open2(fs, ino, &inode, &h);
			if (rc)
				return rc;
			ext2fs_extent_free(h);
		}
		rc = ext2fs_write_new_inode(fs, ino, &inode);
		if (rc)
			return rc;
	} else if (rc) {
		return rc;
	}
	rc = ext2fs_file_open(fs, ino, EXT2_FILE_WRITE, &f);
	if (rc)
		return rc;
	rc = ext2fs_file_set_size2(f, 0);
	const char *p = data;
	while (!rc && len) {
		unsigned int got = 0;
		unsigned int chunk = len > (1u << 20) ? 1u << 20 : (unsigned int)len;
		rc = ext2fs_file_write(f, p, chunk, &got);
		if (!rc && got == 0)
			rc = EXT2_ET_SHORT_WRITE;
		p += got;
		len -= got;
	}
	errcode_t rc2 = ext2fs_file_close(f);
	return rc ? rc : rc2;
}

int ext4img_create(const char *image, uint64_t offset, uint64_t size, const char *label,
		   const struct guid *uuid, const struct ext4img_file *files, size_t nfiles,
		   struct abota_error *err)
{
	struct ext2_super_block param;
	ext2_filsys fs = NULL;
	errcode_t rc;
	char opts[64];
	int ret = 0;
	uint64_t blocks = size / EXT4IMG_BLOCK;
	if (blocks < 64)
		return abota_error_set(err, -EINVAL, "partition too small for ext4 (%llu bytes)",
				       (unsigned long long)size);
	memset(&param, 0, sizeof(param));
	ext2fs_blocks_count_set(&param, blocks);
	param.s_log_block_size = 2; /* 4 KiB */
	param.s_rev_level = EXT2_DYNAMIC_REV;
	param.s_inode_size = 256;
	/* Few inodes: the images are tiny, and small inode tables keep
	 * creation fast on multi-hundred-MiB partitions. */
	uint64_t groups = (blocks + 32767) / 32768;
	param.s_inodes_count = (__u32)(groups * 64 > 256 ? groups * 64 : 256);
	param.s_feature_incompat = EXT2_FEATURE_INCOMPAT_FILETYPE | EXT3_FEATURE_INCOMPAT_EXTENTS |
				   EXT4_FEATURE_INCOMPAT_FLEX_BG;
	param.s_feature_ro_compat = EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER |
				    EXT2_FEATURE_RO_COMPAT_LARGE_FILE |
				    EXT4_FEATURE_RO_COMPAT_HUGE_FILE |
				    EXT4_FEATURE_RO_COMPAT_DIR_NLINK |
				    EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE;
	param.s_feature_compat = EXT2_FEATURE_COMPAT_DIR_INDEX;
	param.s_log_groups_per_flex = 4;
	rc = ext2fs_initialize(image, EXT2_FLAG_RW | EXT2_FLAG_64BITS, &param, unix_io_manager,
			       &fs);
	if (rc)
		return e2err(err, rc, "ext2fs_initialize", image);
	fs->now = EXT4IMG_EPOCH;
	fs->super->s_mkfs_time = fs->super->s_wtime = EXT4IMG_EPOCH;
	snprintf(opts, sizeof(opts), "offset=%llu", (unsigned long long)offset);
	rc = io_channel_set_options(fs->io, opts);
	if (rc) {
		ret = e2err(err, rc, "offset", NULL);
		goto out;
	}
	if (uuid)
		memcpy(fs->super->s_uuid, uuid->b, 16);
	if (uuid)
		memcpy(fs->super->s_hash_seed, uuid->b, 16);
	snprintf((char *)fs->super->s_volume_name, sizeof(fs->super->s_volume_name), "%s",
		 label ? label : "");
	fs->super->s_max_mnt_count = (__s16)-1;
	fs->super->s_def_hash_version = EXT2_HASH_HALF_MD4;
	rc = ext2fs_allocate_tables(fs);
	if (!rc)
		rc = ext2fs_convert_subcluster_bitmap(fs, &fs->block_map);
	if (rc) {
		ret = e2err(err, rc, "allocating tables", NULL);
		goto out;
	}
	/* Inode tables: the image is sparse and freshly created, so they read
	 * as zeros; mark them so. */
	for (dgrp_t g = 0; g < fs->group_desc_count; g++)
		ext2fs_bg_flags_set(fs, g, EXT2_BG_INODE_ZEROED);
	rc = ext2fs_mkdir(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, 0);
	if (!rc)
		rc = ext2fs_mkdir(fs, EXT2_ROOT_INO, 0, "lost+found");
	if (rc) {
		ret = e2err(err, rc, "creating directories", NULL);
		goto out;
	}
	/* Reserved inodes (bad blocks, ..., first_ino - 1) are in use. */
	for (ext2_ino_t i = 1; i < EXT2_FIRST_INODE(fs->super); i++)
		if (i != EXT2_ROOT_INO)
			ext2fs_inode_alloc_stats2(fs, i, +1, 0);
	rc = ext2fs_update_bb_inode(fs, NULL);
	if (rc) {
		ret = e2err(err, rc, "bad block inode", NULL);
		goto out;
	}
	for (size_t i = 0; i < nfiles; i++) {
		rc = put_file(fs, files[i].path, files[i].data, files[i].len);
		if (rc) {
			ret = e2err(err, rc, "writing", files[i].path);
			goto out;
		}
	}
	rc = ext2fs_close_free(&fs);
	if (rc)
		return e2err(err, rc, "closing", image);
	return 0;
out:
	if (fs)
		ext2fs_free(fs);
	return ret;
}

int ext4img_probe(const char *image, uint64_t offset, uint64_t size, struct abota_error *err)
{
	ext2_filsys fs;
	errcode_t rc = open_fs(image, offset, 0, &fs);
	if (rc)
		return e2err(err, rc, "no ext4 file system", NULL);
	int ret = check_size(fs, size, err);
	ext2fs_close_free(&fs);
	return ret;
}

int ext4img_read(const char *image, uint64_t offset, uint64_t size, const char *path,
		 size_t max, char **data, size_t *len, struct abota_error *err)
{
	ext2_filsys fs;
	ext2_file_t f = NULL;
	ext2_ino_t ino;
	char *buf = NULL;
	int ret = 0;
	errcode_t rc = open_fs(image, offset, 0, &fs);
	if (rc)
		return e2err(err, rc, "no ext4 file system", NULL);
	if ((ret = check_size(fs, size, err)) < 0)
		goto out;
	rc = ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path, &ino);
	if (rc) {
		ret = rc == EXT2_ET_FILE_NOT_FOUND
			      ? abota_error_set(err, -ENOENT, "%s: file not found", path)
			      : e2err(err, rc, "lookup", path);
		goto out;
	}
	rc = ext2fs_file_open(fs, ino, 0, &f);
	if (rc) {
		ret = e2err(err, rc, "open", path);
		goto out;
	}
	uint64_t fsize = ext2fs_file_get_size(f);
	if (fsize > max) {
		ret = abota_error_set(err, -EFBIG, "%s: %llu bytes, limit %zu", path,
				      (unsigned long long)fsize, max);
		goto out;
	}
	buf = malloc((size_t)fsize + 1);
	if (!buf) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	size_t done = 0;
	while (done < fsize) {
		unsigned int got = 0;
		rc = ext2fs_file_read(f, buf + done, (unsigned int)(fsize - done), &got);
		if (rc || got == 0) {
			ret = rc ? e2err(err, rc, "read", path)
				 : abota_error_set(err, -EIO, "%s: short read", path);
			goto out;
		}
		done += got;
	}
	buf[done] = '\0';
	*data = buf;
	*len = done;
	buf = NULL;
out:
	free(buf);
	if (f)
		ext2fs_file_close(f);
	ext2fs_close_free(&fs);
	return ret;
}

int ext4img_write(const char *image, uint64_t offset, uint64_t size, const char *path,
		  const void *data, size_t len, struct abota_error *err)
{
	ext2_filsys fs;
	int ret = 0;
	errcode_t rc = open_fs(image, offset, 1, &fs);
	if (rc)
		return e2err(err, rc, "no ext4 file system", NULL);
	if ((ret = check_size(fs, size, err)) < 0)
		goto out;
	rc = ext2fs_read_bitmaps(fs);
	if (!rc)
		rc = put_file(fs, path, data, len);
	if (rc)
		ret = e2err(err, rc, "writing", path);
out:;
	errcode_t rc2 = ext2fs_close_free(&fs);
	if (!ret && rc2)
		ret = e2err(err, rc2, "closing", image);
	return ret;
}

int ext4img_remove(const char *image, uint64_t offset, uint64_t size, const char *path,
		   struct abota_error *err)
{
	ext2_filsys fs;
	ext2_ino_t dir, ino;
	char name[256];
	int ret = 0;
	errcode_t rc = open_fs(image, offset, 1, &fs);
	if (rc)
		return e2err(err, rc, "no ext4 file system", NULL);
	if ((ret = check_size(fs, size, err)) < 0)
		goto out;
	rc = ext2fs_read_bitmaps(fs);
	if (!rc)
		rc = lookup_parent(fs, path, false, &dir, name, sizeof(name));
	if (!rc)
		rc = ext2fs_lookup(fs, dir, name, (int)strlen(name), NULL, &ino);
	if (rc) {
		ret = rc == EXT2_ET_FILE_NOT_FOUND
			      ? abota_error_set(err, -ENOENT, "%s: file not found", path)
			      : e2err(err, rc, "lookup", path);
		goto out;
	}
	struct ext2_inode inode;
	rc = ext2fs_read_inode(fs, ino, &inode);
	if (!rc && LINUX_S_ISDIR(inode.i_mode)) {
		ret = abota_error_set(err, -EISDIR, "%s: is a directory", path);
		goto out;
	}
	if (!rc)
		rc = ext2fs_unlink(fs, dir, name, ino, 0);
	if (!rc && --inode.i_links_count == 0) {
		rc = ext2fs_punch(fs, ino, &inode, NULL, 0, ~0ULL);
		if (!rc) {
			inode.i_dtime = (__u32)fs->now;
			rc = ext2fs_write_inode(fs, ino, &inode);
		}
		if (!rc)
			ext2fs_inode_alloc_stats2(fs, ino, -1, 0);
	} else if (!rc) {
		rc = ext2fs_write_inode(fs, ino, &inode);
	}
	if (rc)
		ret = e2err(err, rc, "removing", path);
out:;
	errcode_t rc2 = ext2fs_close_free(&fs);
	if (!ret && rc2)
		ret = e2err(err, rc2, "closing", image);
	return ret;
}
