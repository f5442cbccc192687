/* bundle_extract.c - extract a verified bundle into a new directory. */
#include "abota/bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abota/fileio.h"
#include "abota/log.h"

struct extract_ctx {
	struct bundle *b;
	int root_fd;
	const char *tmpdir;
	bool files_only;    /* bundle_extract_files: no images, a size limit */
	uint64_t max_bytes; /* 0: none */
	uint64_t bytes;     /* extracted so far */
};

/* Opens the parent directory of rel below root without following symlinks,
 * so a hostile image cannot make us write outside the target. */
static int open_parent(int root_fd, const char *rel, const char **leaf, struct abota_error *err)
{
	char buf[PATH_MAX];
	size_t len = strlen(rel);
	if (len >= sizeof(buf))
		return abota_error_set(err, -ENAMETOOLONG, "%s: path too long", rel);
	memcpy(buf, rel, len + 1);
	const char *slash = strrchr(rel, '/');
	*leaf = slash ? slash + 1 : rel;
	int fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return abota_error_set(err, -errno, "%s", strerror(errno));
	if (!slash)
		return fd;
	buf[slash - rel] = '\0';
	char *save = NULL;
	for (char *comp = strtok_r(buf, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		if (strcmp(comp, "..") == 0 || strcmp(comp, ".") == 0) {
			close(fd);
			return abota_error_set(err, -EINVAL, "%s: unsafe path in bundle", rel);
		}
		int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(fd);
		if (next < 0)
			return abota_error_set(err, -e, "%s: %s", rel, strerror(e));
		fd = next;
	}
	return fd;
}

struct file_sink {
	int fd;
};

static int file_sink_cb(void *p, const void *buf, size_t len, struct abota_error *err)
{
	struct file_sink *fs = p;
	return fileio_write_full(fs->fd, buf, len, err);
}

static const struct manifest_image *image_for(const struct manifest *m, const char *path)
{
	for (size_t i = 0; i < m->n_images; i++)
		if (m->images[i].filename && strcmp(m->images[i].filename, path) == 0)
			return &m->images[i];
	return NULL;
}

/* An image of the manifest, or one's block-hash index (either size). */
static bool is_image_data(const struct manifest *m, const char *path)
{
	if (image_for(m, path))
		return true;
	for (size_t i = 0; i < m->n_images; i++) {
		const char *f = m->images[i].filename;
		size_t n = f ? strlen(f) : 0;
		if (n && strncmp(path, f, n) == 0 &&
		    (strcmp(path + n, BUNDLE_INDEX_SUFFIX) == 0 ||
		     strcmp(path + n, BUNDLE_COMPACT_INDEX_SUFFIX) == 0))
			return true;
	}
	return false;
}

/* bundle_extract_files: is this file left out? */
static bool leave_out(struct extract_ctx *x, const char *path, const struct squashfs_entry *e)
{
	if (!x->files_only || e->type != SQUASHFS_TYPE_FILE)
		return false;
	if (is_image_data(bundle_get_manifest(x->b), path))
		return true;
	if (x->max_bytes && (e->size > x->max_bytes || x->bytes > x->max_bytes - e->size)) {
		log_warning("bundle file %s (%llu bytes) is not copied for the handlers: the bundle's files beside the images would exceed %llu bytes",
			    path, (unsigned long long)e->size, (unsigned long long)x->max_bytes);
		return true;
	}
	x->bytes += e->size;
	return false;
}

static int extract_entry(void *p, const char *path, const struct squashfs_entry *e,
			 struct abota_error *err)
{
	struct extract_ctx *x = p;
	const char *leaf;
	int ret = 0;
	int out_fd = -1;
	if (leave_out(x, path, e))
		return 0;
	if (path[0] == '/' || strcmp(path, "..") == 0 || strncmp(path, "../", 3) == 0 ||
	    strstr(path, "/../") || (strlen(path) >= 3 && strcmp(path + strlen(path) - 3, "/..") == 0))
		return abota_error_set(err, -EINVAL, "%s: unsafe path in bundle", path);
	/* RAUC's content rules (also enforced by bundle_create): no hidden
	 * top-level directory, symlinks only to a name in the same directory */
	if (e->type == SQUASHFS_TYPE_DIR && path[0] == '.' && !strchr(path, '/'))
		return abota_error_set(err, -EINVAL,
				       "%s: hidden top-level directory in bundle refused", path);
	if (e->type == SQUASHFS_TYPE_SYMLINK) {
		char *target = NULL;
		ret = squashfs_reader_readlink(bundle_squashfs(x->b), path, &target, err);
		if (ret < 0)
			return ret;
		bool bad = strchr(target, '/') != NULL;
		free(target);
		if (bad)
			return abota_error_set(err, -EINVAL,
					       "%s: symlink to a path containing '/' in bundle refused",
					       path);
	}
	int dfd = open_parent(x->root_fd, path, &leaf, err);
	if (dfd < 0)
		return dfd;
	mode_t mode = e->mode & 0755; /* no setuid/setgid/sticky, no group/other write */
	switch (e->type) {
	case SQUASHFS_TYPE_DIR:
		if (mkdirat(dfd, leaf, mode | 0700) < 0)
			ret = abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
		break;
	case SQUASHFS_TYPE_SYMLINK: {
		char *target = NULL;
		ret = squashfs_reader_readlink(bundle_squashfs(x->b), path, &target, err);
		if (ret == 0 && symlinkat(target, dfd, leaf) < 0)
			ret = abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
		free(target);
		break;
	}
	case SQUASHFS_TYPE_FILE: {
		out_fd = openat(dfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				mode | 0600);
		if (out_fd < 0) {
			ret = abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
			break;
		}
		struct file_sink fs = { .fd = out_fd };
		const struct manifest_image *img = image_for(bundle_get_manifest(x->b), path);
		if (img)
			ret = bundle_stream_image(x->b, img, file_sink_cb, &fs, err);
		else
			ret = squashfs_reader_stream(bundle_squashfs(x->b), path, file_sink_cb, &fs,
						     err);
		if (ret == 0 && !x->files_only && fsync(out_fd) < 0)
			ret = abota_error_set(err, -errno, "%s: fsync: %s", path, strerror(errno));
		break;
	}
	default:
		ret = abota_error_set(err, -EINVAL, "%s: device, FIFO or socket in bundle refused",
				      path);
	}
	if (out_fd >= 0)
		close(out_fd);
	close(dfd);
	return ret;
}

int bundle_extract(struct bundle *b, const char *dir, struct abota_error *err)
{
	struct stat st;
	if (lstat(dir, &st) == 0)
		return abota_error_set(err, -EEXIST, "%s: already exists", dir);
	size_t len = strlen(dir);
	char *tmp = malloc(len + 16);
	if (!tmp)
		return abota_error_set(err, -ENOMEM, "out of memory");
	/* Strip trailing slashes so the temp dir is a sibling. */
	while (len > 1 && dir[len - 1] == '/')
		len--;
	snprintf(tmp, len + 16, "%.*s.tmp-XXXXXX", (int)len, dir);
	int ret = 0;
	struct extract_ctx x = { .b = b, .root_fd = -1, .tmpdir = tmp };
	if (!mkdtemp(tmp)) {
		ret = abota_error_set(err, -errno, "%s: cannot create directory: %s", dir,
				      strerror(errno));
		free(tmp);
		return ret;
	}
	chmod(tmp, 0755);
	x.root_fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x.root_fd < 0) {
		ret = abota_error_set(err, -errno, "%s: %s", tmp, strerror(errno));
		goto fail;
	}
	ret = squashfs_reader_walk(bundle_squashfs(b), extract_entry, &x, err);
	if (ret < 0)
		goto fail;
	if (fsync(x.root_fd) < 0) {
		ret = abota_error_set(err, -errno, "%s: fsync: %s", tmp, strerror(errno));
		goto fail;
	}
	/* The directory appears complete or not at all. */
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_NOREPLACE) < 0) {
		ret = abota_error_set(err, -errno, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	close(x.root_fd);
	free(tmp);
	return fileio_fsync_dir(dir, 0, err);
fail:
	if (x.root_fd >= 0)
		close(x.root_fd);
	fileio_remove_tree(tmp);
	free(tmp);
	return ret;
}

int bundle_extract_files(struct bundle *b, const char *dir, uint64_t max_bytes,
			 struct abota_error *err)
{
	/* A private scratch directory, removed after the install: no temp
	 * name, rename or fsync as for `abota extract`. */
	struct extract_ctx x = { .b = b, .files_only = true, .max_bytes = max_bytes };
	x.root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (x.root_fd < 0)
		return abota_error_set(err, -errno, "%s: %s", dir, strerror(errno));
	int ret = squashfs_reader_walk(bundle_squashfs(b), extract_entry, &x, err);
	close(x.root_fd);
	return ret;
}
