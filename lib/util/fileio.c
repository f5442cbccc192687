/* fileio.c - power-safe file replacement and bounded reads. */
#include "abota/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abota/powercut.h"

int fileio_pread_full(int fd, void *buf, size_t len, uint64_t off, struct abota_error *err)
{
	char *p = buf;
	while (len > 0) {
		if (off > (uint64_t)INT64_MAX)
			return abota_error_set(err, -EOVERFLOW, "read offset too large");
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return abota_error_set(err, -errno, "read failed: %s", strerror(errno));
		}
		if (n == 0)
			return abota_error_set(err, -EIO, "unexpected end of file");
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int fileio_pwrite_full(int fd, const void *buf, size_t len, uint64_t off,
		       struct abota_error *err)
{
	const char *p = buf;
	while (len > 0) {
		if (off > (uint64_t)INT64_MAX)
			return abota_error_set(err, -EOVERFLOW, "write offset too large");
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return abota_error_set(err, -errno, "write failed: %s", strerror(errno));
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int fileio_zero_range(int fd, uint64_t off, uint64_t len, struct abota_error *err)
{
	static const uint8_t zeros[64 << 10];
	struct stat st;
	if (len == 0)
		return 0;
	if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off)
		return abota_error_set(err, -EOVERFLOW, "write offset too large");
	if (fstat(fd, &st) < 0)
		return abota_error_set(err, -errno, "stat failed: %s", strerror(errno));
	int r = -1;
	errno = EOPNOTSUPP; /* neither a file nor an aligned range of a block device */
	if (S_ISREG(st.st_mode)) {
		r = fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
	} else if (S_ISBLK(st.st_mode) && off % 512 == 0 && len % 512 == 0) {
		uint64_t range[2] = { off, len };
		r = ioctl(fd, BLKZEROOUT, range);
	}
	if (r == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOTTY && errno != ENOSYS && errno != EINVAL)
		return abota_error_set(err, -errno, "zeroing failed: %s", strerror(errno));
	/* not supported here: write the zeros */
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < sizeof(zeros) ? (size_t)(len - done) : sizeof(zeros);
		int ret = fileio_pwrite_full(fd, zeros, n, off + done, err);
		if (ret < 0)
			return ret;
		done += n;
	}
	return 0;
}

int fileio_write_full(int fd, const void *buf, size_t len, struct abota_error *err)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return abota_error_set(err, -errno, "write failed: %s", strerror(errno));
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fileio_fsync_dir(const char *path, int is_dir, struct abota_error *err)
{
	char *copy = NULL;
	const char *dir = path;
	int ret = 0;
	if (!is_dir) {
		copy = strdup(path);
		if (!copy)
			return abota_error_set(err, -ENOMEM, "out of memory");
		char *slash = strrchr(copy, '/');
		if (!slash)
			dir = ".";
		else if (slash == copy)
			dir = "/";
		else {
			*slash = '\0';
			dir = copy;
		}
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		ret = abota_error_set(err, -errno, "%s: cannot open directory: %s", dir,
				      strerror(errno));
		goto out;
	}
	if (fsync(fd) < 0)
		ret = abota_error_set(err, -errno, "%s: fsync failed: %s", dir, strerror(errno));
	close(fd);
out:
	free(copy);
	return ret;
}

/* Temporary files of earlier writes that a power cut (or a kill) left
 * behind ("<name>.tmp-XXXXXX" beside the target) are removed before a new
 * one is made, so they cannot pile up in the data directory.  A writer
 * holds an flock on its temporary file, so one still being written by
 * another process is left alone. */
static void remove_stale_temps(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	const char *base = slash ? slash + 1 : path;
	size_t blen = strlen(base);
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		const char *n = de->d_name;
		if (strncmp(n, base, blen) != 0 || strncmp(n + blen, ".tmp-", 5) != 0 ||
		    strlen(n + blen + 5) != 6)
			continue;
		int fd = openat(dirfd(d), n, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0)
			continue;
		struct stat st;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0)
			unlinkat(dirfd(d), n, 0);
		close(fd);
	}
	if (d)
		closedir(d);
	free(dir);
}

/* cut_points: the data write, its sync and rename + directory fsync are
 * write points of powercut.h; a cut there leaves the temporary file behind,
 * as a real power cut would. */
static int write_atomic(const char *path, const void *data, size_t len, mode_t mode,
			bool cut_points, struct abota_error *err)
{
	int ret = 0;
	int fd = -1;
	size_t plen = strlen(path);
	char *tmp = malloc(plen + 16);
	if (!tmp)
		return abota_error_set(err, -ENOMEM, "out of memory");
	remove_stale_temps(path);
	/* Same directory as the target, so rename() is atomic. */
	snprintf(tmp, plen + 16, "%s.tmp-XXXXXX", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		ret = abota_error_set(err, -errno, "%s: cannot create temporary file: %s", path,
				      strerror(errno));
		goto out;
	}
	(void)flock(fd, LOCK_EX); /* ours: not stale (remove_stale_temps) */
	if (fchmod(fd, mode) < 0) {
		ret = abota_error_set(err, -errno, "%s: chmod failed: %s", tmp, strerror(errno));
		goto out_unlink;
	}
	if (cut_points) {
		ret = powercut_pwrite(fd, data, len, 0, tmp, err);
		if (ret == 0)
			ret = powercut_sync(fd, tmp, err);
		if (ret == -ECANCELED && powercut_happened())
			goto out;
	} else {
		ret = fileio_write_full(fd, data, len, err);
		if (ret < 0)
			abota_error_prefix(err, "%s", tmp);
	}
	if (ret < 0)
		goto out_unlink;
	if (fsync(fd) < 0) { /* size and mode too, not only the data */
		ret = abota_error_set(err, -errno, "%s: fsync failed: %s", tmp, strerror(errno));
		goto out_unlink;
	}
	if (cut_points && (ret = powercut_point("rename", path, err)) < 0)
		goto out;
	if (rename(tmp, path) < 0) {
		ret = abota_error_set(err, -errno, "%s: rename failed: %s", path, strerror(errno));
		goto out_unlink;
	}
	/* vfat keeps a file's size in its directory entry and writes the
	 * renamed entry when the file's inode is written back: sync the file
	 * again after the rename (a data directory on vfat was left with a
	 * 0-byte file by a real power cut in QEMU), then the directory. */
	if (fsync(fd) < 0) {
		ret = abota_error_set(err, -errno, "%s: fsync failed: %s", path, strerror(errno));
		goto out;
	}
	ret = fileio_fsync_dir(path, 0, err);
	goto out;
out_unlink:
	unlink(tmp);
out:
	if (fd >= 0)
		close(fd);
	free(tmp);
	return ret;
}

int fileio_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
			struct abota_error *err)
{
	return write_atomic(path, data, len, mode, false, err);
}

int fileio_write_atomic_device(const char *path, const void *data, size_t len, mode_t mode,
			       struct abota_error *err)
{
	return write_atomic(path, data, len, mode, true, err);
}

/* Reads fd to EOF, at most max_size bytes (-EFBIG beyond). */
static int read_unsized(int fd, const char *path, size_t max_size, char **data_out,
			size_t *len_out, struct abota_error *err)
{
	size_t cap = 4096, used = 0;
	char *buf = malloc(cap + 1);
	int ret = 0;
	if (!buf)
		return abota_error_set(err, -ENOMEM, "out of memory");
	for (;;) {
		if (used == cap) {
			if (cap > max_size) {
				ret = abota_error_set(err, -EFBIG, "%s: file too large (limit %zu)",
						      path, max_size);
				goto out;
			}
			char *n = realloc(buf, cap * 2 + 1);
			if (!n) {
				ret = abota_error_set(err, -ENOMEM, "out of memory");
				goto out;
			}
			buf = n;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + used, cap - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	if (used > max_size) {
		ret = abota_error_set(err, -EFBIG, "%s: file too large (%zu bytes, limit %zu)", path,
				      used, max_size);
		goto out;
	}
	buf[used] = '\0';
	*data_out = buf;
	*len_out = used;
	buf = NULL;
out:
	free(buf);
	return ret;
}

int fileio_read_all(const char *path, size_t max_size, char **data_out, size_t *len_out,
		    struct abota_error *err)
{
	int ret = 0;
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0) {
		ret = abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = abota_error_set(err, -EINVAL, "%s: not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > max_size) {
		ret = abota_error_set(err, -EFBIG, "%s: file too large (%lld bytes, limit %zu)",
				      path, (long long)st.st_size, max_size);
		goto out;
	}
	size_t size = (size_t)st.st_size;
	if (size == 0) {
		/* procfs and sysfs files (/proc/cmdline, the boot id) say 0
		 * bytes and have content: read until EOF, bounded. */
		ret = read_unsized(fd, path, max_size, data_out, len_out, err);
		goto out;
	}
	buf = malloc(size + 1);
	if (!buf) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	/* Read up to max_size+1 to notice a file that grew after fstat. */
	size_t used = 0;
	for (;;) {
		if (used == size) {
			char extra;
			ssize_t n = read(fd, &extra, 1);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				ret = abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
				goto out;
			}
			if (n > 0) {
				ret = abota_error_set(err, -EAGAIN, "%s: file changed while reading",
						      path);
				goto out;
			}
			break;
		}
		ssize_t n = read(fd, buf + used, size - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0) {
			ret = abota_error_set(err, -EAGAIN, "%s: file changed while reading", path);
			goto out;
		}
		used += (size_t)n;
	}
	buf[size] = '\0';
	*data_out = buf;
	*len_out = size;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return ret;
}

void *fileio_buffer_alloc(size_t len)
{
	void *p = NULL;
	if (len == 0 || posix_memalign(&p, 4096, len) != 0)
		return NULL;
	return p;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void fileio_remove_tree(const char *path)
{
	(void)nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
