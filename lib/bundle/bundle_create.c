/* bundle_create.c - build and re-sign RAUC-compatible bundles. */
#include "abota/bundle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "abota/digest.h"
#include "abota/fileio.h"
#include "abota/log.h"
#include "abota/verity.h"

/* Creates OUT.tmp-XXXXXX next to out_path; the caller renames it. */
static int create_temp(const char *out_path, char **tmp_out, int *fd_out, struct abota_error *err)
{
	struct stat st;
	if (lstat(out_path, &st) == 0)
		return abota_error_set(err, -EEXIST, "%s: output file already exists", out_path);
	size_t len = strlen(out_path);
	char *tmp = malloc(len + 16);
	if (!tmp)
		return abota_error_set(err, -ENOMEM, "out of memory");
	snprintf(tmp, len + 16, "%s.tmp-XXXXXX", out_path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		free(tmp);
		return abota_error_set(err, -e, "%s: cannot create: %s", out_path, strerror(e));
	}
	fchmod(fd, 0644);
	*tmp_out = tmp;
	*fd_out = fd;
	return 0;
}

/* Appends CMS and trailer, syncs and renames the temp file into place. */
static int finish_output(int fd, const char *tmp, const char *out_path, uint64_t payload,
			 const uint8_t *sig, size_t sig_len, struct abota_error *err)
{
	uint8_t tr[8];
	uint64_t s = sig_len;
	for (int i = 7; i >= 0; i--) {
		tr[i] = (uint8_t)(s & 0xFF);
		s >>= 8;
	}
	int ret = fileio_pwrite_full(fd, sig, sig_len, payload, err);
	if (ret == 0)
		ret = fileio_pwrite_full(fd, tr, sizeof(tr), payload + sig_len, err);
	if (ret == 0 && ftruncate(fd, (off_t)(payload + sig_len + 8)) < 0)
		ret = abota_error_set(err, -errno, "truncate: %s", strerror(errno));
	if (ret == 0 && fsync(fd) < 0)
		ret = abota_error_set(err, -errno, "fsync: %s", strerror(errno));
	if (ret < 0) {
		abota_error_prefix(err, "%s", out_path);
		return ret;
	}
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, out_path, RENAME_NOREPLACE) < 0)
		return abota_error_set(err, -errno, "%s: %s", out_path, strerror(errno));
	return fileio_fsync_dir(out_path, 0, err);
}

static int sign_payload(int fd, const char *name, uint64_t payload, const struct sig_signer *signer,
			const char *manifest, size_t manifest_len, bool detached, uint8_t **sig,
			size_t *sig_len, struct abota_error *err)
{
	struct source *src = NULL;
	int ret = 0;
	if (detached) {
		ret = source_open_fd(fd, name, &src, err);
		if (ret < 0)
			return ret;
	}
	ret = signature_sign(signer, src, payload, (const uint8_t *)manifest, manifest_len, detached,
			     sig, sig_len, err);
	source_close(src);
	return ret;
}

/* Signs the payload of the temp file, checks the signature against RAUC's
 * default size limit, appends it and renames the file into place. */
static int sign_and_finish(int fd, const char *tmp, const char *out_path, uint64_t payload,
			   const struct sig_signer *signer, const char *manifest,
			   size_t manifest_len, bool detached, struct abota_error *err)
{
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	int ret = sign_payload(fd, tmp, payload, signer, manifest, manifest_len, detached, &sig,
			       &sig_len, err);
	if (ret < 0)
		return ret;
	if (sig_len > BUNDLE_DEFAULT_MAX_SIGNATURE_SIZE)
		ret = abota_error_set(err, -EFBIG,
				      "signature of %zu bytes exceeds RAUC's default limit of 64 KiB (too many intermediates?)",
				      sig_len);
	else
		ret = finish_output(fd, tmp, out_path, payload, sig, sig_len, err);
	free(sig);
	return ret;
}

static bool is_generated_index(const struct manifest *m, const char *name)
{
	for (size_t i = 0; i < m->n_images; i++) {
		const struct manifest_image *img = &m->images[i];
		if (!img->adaptive_block_hash_index || !img->filename)
			continue;
		size_t l = strlen(img->filename);
		if (strncmp(name, img->filename, l) == 0 &&
		    (strcmp(name + l, BUNDLE_INDEX_SUFFIX) == 0 ||
		     strcmp(name + l, BUNDLE_COMPACT_INDEX_SUFFIX) == 0))
			return true;
	}
	return false;
}

struct add_ctx {
	struct squashfs_writer *w;
	const struct manifest *m;
};

/* Adds everything in dir (relative path rel) that is not an image (images
 * were added first) and not the manifest (added last). */
/* NOLINTNEXTLINE(misc-no-recursion): depth is capped at 16 below */
static int add_tree(struct add_ctx *ac, int dir_fd, const char *rel, int depth,
		    struct abota_error *err)
{
	if (depth > 16)
		return abota_error_set(err, -ELOOP, "%s: directories nested too deeply", rel);
	int dfd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return abota_error_set(err, -errno, "%s: %s", rel[0] ? rel : ".", strerror(errno));
	}
	int ret = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
			continue;
		char path[4096];
		if ((size_t)snprintf(path, sizeof(path), "%s%s%s", rel, rel[0] ? "/" : "", n) >=
		    sizeof(path)) {
			ret = abota_error_set(err, -ENAMETOOLONG, "%s: path too long", n);
			break;
		}
		bool top = depth == 0;
		if (top && strcmp(n, "manifest.raucm") == 0)
			continue;
		bool is_image = false;
		for (size_t i = 0; top && i < ac->m->n_images; i++)
			if (ac->m->images[i].filename && strcmp(ac->m->images[i].filename, n) == 0)
				is_image = true;
		if (is_image)
			continue;
		if (top && is_generated_index(ac->m, n)) {
			ret = abota_error_set(err, -EEXIST,
					      "%s: is generated by 'abota bundle'; remove it from the content directory",
					      n);
			break;
		}
		struct stat st;
		if (fstatat(dir_fd, n, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			ret = abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			if (top && n[0] == '.') {
				ret = abota_error_set(err, -EINVAL,
						      "%s: hidden top-level directories are not allowed in a bundle",
						      path);
				break;
			}
			ret = squashfs_writer_add_dir(ac->w, path, st.st_mode & 07777, err);
			if (ret < 0)
				break;
			int sub = openat(dir_fd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				ret = abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
				break;
			}
			ret = add_tree(ac, sub, path, depth + 1, err);
			close(sub);
			if (ret < 0)
				break;
		} else if (S_ISREG(st.st_mode)) {
			int fd = openat(dir_fd, n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0) {
				ret = abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
				break;
			}
			ret = squashfs_writer_add_file(ac->w, path, fd, 0, NULL, err);
			close(fd);
			if (ret < 0)
				break;
		} else if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t l = readlinkat(dir_fd, n, target, sizeof(target) - 1);
			if (l < 0) {
				ret = abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
				break;
			}
			target[l] = '\0';
			/* as RAUC: what an absolute or relative path with '/'
			 * would mean on the target is unclear; a name in the
			 * same directory is harmless */
			if (strchr(target, '/')) {
				ret = abota_error_set(err, -EINVAL,
						      "%s: symlinks to a path containing '/' are not allowed in a bundle (target '%s')",
						      path, target);
				break;
			}
			ret = squashfs_writer_add_symlink(ac->w, path, target, err);
			if (ret < 0) {
				abota_error_prefix(err, "%s", path);
				break;
			}
		} else {
			ret = abota_error_set(err, -EINVAL,
					      "%s: only regular files, directories and symlinks can go into a bundle",
					      path);
			break;
		}
	}
	closedir(d);
	return ret;
}

int bundle_create(const char *content_dir, const char *out_path,
		  const struct bundle_create_opts *opts, struct abota_error *err)
{
	int ret;
	int dir_fd = -1, out_fd = -1;
	char *tmp = NULL, *mdata = NULL, *signed_mdata = NULL;
	size_t mlen = 0, signed_len = 0;
	struct manifest *m = NULL;
	struct squashfs_writer *w = NULL;
	char mpath[4096];

	dir_fd = open(content_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return abota_error_set(err, -errno, "%s: %s", content_dir, strerror(errno));
	snprintf(mpath, sizeof(mpath), "%s/manifest.raucm", content_dir);
	ret = fileio_read_all(mpath, MANIFEST_MAX_SIZE, &mdata, &mlen, err);
	if (ret < 0)
		goto out;
	ret = manifest_parse(mdata, mlen, mpath, MANIFEST_INPUT, &m, err);
	if (ret < 0)
		goto out;
	if (opts->format >= 0)
		m->format = (enum bundle_format)opts->format;
	else if (!m->has_bundle_section)
		m->format = BUNDLE_FORMAT_VERITY;
	if (m->format == BUNDLE_FORMAT_CRYPT) {
		ret = abota_error_set(err, -ENOTSUP, "crypt bundles are not supported yet");
		goto out;
	}
	ret = create_temp(out_path, &tmp, &out_fd, err);
	if (ret < 0)
		goto out;

	/* Large blocks compress better and faster (see docs/benchmarks.md); an
	 * adaptive image is read block by block at install, where a smaller
	 * block keeps the bytes fetched close to the bytes changed. */
	uint32_t block_size = opts->block_size;
	if (block_size == 0) {
		block_size = BUNDLE_DEFAULT_BLOCK_SIZE;
		for (size_t i = 0; i < m->n_images; i++)
			if (m->images[i].adaptive_block_hash_index)
				block_size = BUNDLE_ADAPTIVE_BLOCK_SIZE;
	}
	struct squashfs_writer_opts wo = { .compressor = opts->compressor, .level = opts->level,
					   .block_size = block_size };
	ret = squashfs_writer_open(out_fd, &wo, &w, err);
	if (ret < 0)
		goto out;
	/* Images first, hashed while they stream in: the manifest that goes in
	 * last carries their digests. */
	for (size_t i = 0; i < m->n_images; i++) {
		struct manifest_image *img = &m->images[i];
		if (!img->filename)
			continue;
		bool dup = false;
		for (size_t k = 0; k < i; k++)
			if (m->images[k].filename && strcmp(m->images[k].filename, img->filename) == 0)
				dup = true;
		struct stat st;
		int fd = openat(dir_fd, img->filename, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			ret = abota_error_set(err, fd < 0 ? -errno : -EINVAL,
					      "image '%s' of [image.%s]: %s", img->filename,
					      img->slotclass,
					      fd < 0 ? strerror(errno) : "not a regular file");
			if (fd >= 0)
				close(fd);
			goto out;
		}
		if (dup) {
			/* Two slot classes may share one file (variants). */
			for (size_t k = 0; k < i; k++)
				if (m->images[k].filename &&
				    strcmp(m->images[k].filename, img->filename) == 0) {
					memcpy(img->sha256, m->images[k].sha256, sizeof(img->sha256));
					img->size = m->images[k].size;
					img->has_size = true;
				}
			close(fd);
			continue;
		}
		if (img->adaptive_block_hash_index &&
		    (st.st_size == 0 || st.st_size % 4096 != 0)) {
			close(fd);
			ret = abota_error_set(err, -EINVAL,
					      "image '%s': adaptive=block-hash-index needs a size that is a non-zero multiple of 4096 (it is %lld)",
					      img->filename, (long long)st.st_size);
			goto out;
		}
		struct squashfs_file_digest d = { 0 };
		unsigned flags = img->adaptive_block_hash_index ? SQUASHFS_ADD_BLOCK_INDEX : 0;
		ret = squashfs_writer_add_file(w, img->filename, fd, flags, &d, err);
		close(fd);
		if (ret < 0) {
			abota_error_prefix(err, "image '%s'", img->filename);
			goto out;
		}
		digest_to_hex(d.sha256, sizeof(d.sha256), img->sha256);
		img->size = d.size;
		img->has_size = true;
		if (d.block_index) {
			char iname[300];
			snprintf(iname, sizeof(iname), "%s%s", img->filename, BUNDLE_INDEX_SUFFIX);
			ret = squashfs_writer_add_data(w, iname, d.block_index, d.block_index_len,
						       0644, err);
			/* abota's compact index: the first 8 bytes of each
			 * hash, a quarter of the download for a streamed
			 * adaptive install (RAUC's full index stays, for RAUC) */
			size_t nb = d.block_index_len / 32;
			uint8_t *compact = ret == 0 ? malloc(nb * 8 + 1) : NULL;
			if (ret == 0 && !compact)
				ret = abota_error_set(err, -ENOMEM, "out of memory");
			for (size_t b = 0; compact && b < nb; b++)
				memcpy(compact + b * 8, d.block_index + b * 32, 8);
			if (ret == 0) {
				snprintf(iname, sizeof(iname), "%s%s", img->filename,
					 BUNDLE_COMPACT_INDEX_SUFFIX);
				ret = squashfs_writer_add_data(w, iname, compact, nb * 8, 0644, err);
			}
			free(compact);
			free(d.block_index);
			if (ret < 0)
				goto out;
		}
	}
	struct add_ctx ac = { .w = w, .m = m };
	ret = add_tree(&ac, dir_fd, "", 0, err);
	if (ret < 0)
		goto out;
	free(mdata);
	mdata = NULL;
	ret = manifest_to_data(m, false, &mdata, &mlen, err);
	if (ret < 0)
		goto out;
	ret = squashfs_writer_add_data(w, "manifest.raucm", mdata, mlen, 0644, err);
	if (ret < 0)
		goto out;
	uint64_t sqfs_size = 0;
	ret = squashfs_writer_finish(w, &sqfs_size, err);
	if (ret < 0)
		goto out;

	uint64_t payload = sqfs_size;
	bool detached = m->format == BUNDLE_FORMAT_PLAIN;
	if (!detached) {
		/* RAUC needs a verity payload of more than one block; a tiny
		 * bundle (small, well-compressing images) is padded with zeros,
		 * which the squashfs ignores (it ends at bytes_used). */
		if (sqfs_size <= VERITY_BLOCK_SIZE) {
			if (ftruncate(out_fd, 2 * VERITY_BLOCK_SIZE) < 0) {
				ret = abota_error_set(err, -errno, "%s: %s", tmp, strerror(errno));
				goto out;
			}
			sqfs_size = 2 * VERITY_BLOCK_SIZE;
			payload = sqfs_size;
		}
		struct verity_params vp = { .data_size = sqfs_size };
		if (RAND_bytes(vp.salt, sizeof(vp.salt)) != 1) {
			ret = abota_error_set(err, -EIO, "no random bytes for the verity salt");
			goto out;
		}
		ret = verity_create(out_fd, &vp, err);
		if (ret < 0)
			goto out;
		digest_to_hex(vp.root, sizeof(vp.root), m->verity_hash);
		digest_to_hex(vp.salt, sizeof(vp.salt), m->verity_salt);
		m->verity_size = vp.hash_size;
		payload += vp.hash_size;
		ret = manifest_to_data(m, true, &signed_mdata, &signed_len, err);
		if (ret < 0)
			goto out;
	} else if (payload > BUNDLE_PLAIN_MAX_PAYLOAD) {
		ret = abota_error_set(err, -EFBIG,
				      "plain bundle payload would exceed 2 GiB, which RAUC refuses; use --format=verity");
		goto out;
	}
	ret = sign_and_finish(out_fd, tmp, out_path, payload, &opts->signer, signed_mdata,
			      signed_len, detached, err);
	if (ret == 0) {
		free(tmp);
		tmp = NULL;
	}
out:
	squashfs_writer_free(w);
	if (out_fd >= 0)
		close(out_fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	if (dir_fd >= 0)
		close(dir_fd);
	free(mdata);
	free(signed_mdata);
	manifest_free(m);
	return ret;
}

int bundle_resign(const char *in_path, const char *out_path, const struct bundle_open_opts *opts,
		  const struct sig_signer *signer, struct abota_error *err)
{
	struct bundle *b = NULL;
	char *tmp = NULL;
	int out_fd = -1;
	uint8_t *buf = NULL;
	int ret = bundle_open(in_path, opts, &b, err);
	if (ret < 0)
		return ret;
	ret = create_temp(out_path, &tmp, &out_fd, err);
	if (ret < 0)
		goto out;
	/* Copy the payload through the verified view. */
	const size_t chunk = 1u << 20;
	buf = malloc(chunk);
	if (!buf) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	uint64_t payload = bundle_payload_size(b);
	for (uint64_t off = 0; off < payload; off += chunk) {
		size_t n = payload - off < chunk ? (size_t)(payload - off) : chunk;
		ret = bundle_read_payload(b, buf, n, off, err);
		if (ret == 0)
			ret = fileio_pwrite_full(out_fd, buf, n, off, err);
		if (ret < 0)
			goto out;
	}
	size_t mlen = 0;
	const char *mdata = bundle_manifest_data(b, &mlen);
	bool plain = bundle_get_format(b) == BUNDLE_FORMAT_PLAIN;
	if (!plain) {
		/* The hash tree was copied from the file: check the copy against the
		 * signed root before signing it again. */
		const struct manifest *m = bundle_get_manifest(b);
		struct verity_params vp = { .data_size = bundle_squashfs_size(b),
					    .hash_size = m->verity_size };
		struct source *copy = NULL, *checked = NULL;
		digest_from_hex(m->verity_salt, vp.salt, sizeof(vp.salt));
		digest_from_hex(m->verity_hash, vp.root, sizeof(vp.root));
		ret = source_open_fd(out_fd, tmp, &copy, err);
		if (ret == 0)
			ret = source_new_verity(copy, &vp, &checked, err);
		source_close(checked);
		source_close(copy);
		if (ret < 0)
			goto out;
	}
	/* The copy is what gets signed: re-read it, not the input, so the new
	 * signature covers exactly the bytes of OUT. */
	ret = sign_and_finish(out_fd, tmp, out_path, payload, signer, mdata, mlen, plain, err);
	if (ret == 0) {
		free(tmp);
		tmp = NULL;
	}
out:
	if (out_fd >= 0)
		close(out_fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	free(buf);
	bundle_close(b);
	return ret;
}
