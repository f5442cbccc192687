/* source.c - the byte-source interface, local files and windows. */
#include "abota/source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abota/fileio.h"

void *source_alloc(size_t impl_size, const struct source_ops *ops, uint64_t size,
		   const char *name)
{
	struct source *src = calloc(1, impl_size);
	if (!src)
		return NULL;
	src->name = strdup(name ? name : "(source)");
	if (!src->name) {
		free(src);
		return NULL;
	}
	src->ops = ops;
	src->size = size;
	return src;
}

int source_read_at(struct source *src, void *buf, size_t len, uint64_t off,
		   struct abota_error *err)
{
	if (off > src->size || len > src->size - off)
		return abota_error_set(err, -EINVAL,
				       "%s: read of %zu bytes at offset %llu is outside the %llu-byte source",
				       src->name, len, (unsigned long long)off,
				       (unsigned long long)src->size);
	if (len == 0)
		return 0;
	return src->ops->read_at(src, buf, len, off, err);
}

void source_plan(struct source *src, const struct source_range *r, size_t n)
{
	if (src && src->ops->plan)
		src->ops->plan(src, r, n);
}

void source_forget(struct source *src, uint64_t off, uint64_t len)
{
	if (!src || !src->ops->forget || off >= src->size)
		return;
	if (len > src->size - off)
		len = src->size - off;
	if (len > 0)
		src->ops->forget(src, off, len);
}

uint64_t source_size(const struct source *src)
{
	return src->size;
}

const char *source_name(const struct source *src)
{
	return src->name;
}

void source_close(struct source *src)
{
	if (!src)
		return;
	if (src->ops->close)
		src->ops->close(src);
	free(src->name);
	free(src);
}

/* --- local file --- */

struct file_source {
	struct source base;
	int fd;
};

static int file_read_at(struct source *src, void *buf, size_t len, uint64_t off,
			struct abota_error *err)
{
	struct file_source *fs = (struct file_source *)src;
	int ret = fileio_pread_full(fs->fd, buf, len, off, err);
	if (ret < 0)
		abota_error_prefix(err, "%s", src->name);
	return ret;
}

/* The kernel drops whole pages only (the partial ones at either end stay):
 * callers forget a growing prefix so that a page shared by two calls goes
 * with the second.  Dirty pages are not dropped (only written back). */
static void file_forget(struct source *src, uint64_t off, uint64_t len)
{
	struct file_source *fs = (struct file_source *)src;
	(void)posix_fadvise(fs->fd, (off_t)off, (off_t)len, POSIX_FADV_DONTNEED);
}

static void file_close(struct source *src)
{
	struct file_source *fs = (struct file_source *)src;
	if (fs->fd >= 0)
		close(fs->fd);
}

static const struct source_ops file_ops = {
	.read_at = file_read_at,
	.close = file_close,
	.forget = file_forget,
};

int source_open_file(const char *path, struct source **out, struct abota_error *err)
{
	/* O_NONBLOCK so that opening a FIFO does not hang before we can refuse it. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return abota_error_set(err, -e, "%s: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return abota_error_set(err, -EINVAL, "%s: not a regular file", path);
	}
	int flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		(void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	struct file_source *fs = source_alloc(sizeof(*fs), &file_ops, (uint64_t)st.st_size, path);
	if (!fs) {
		close(fd);
		return abota_error_set(err, -ENOMEM, "out of memory");
	}
	fs->fd = fd;
	*out = &fs->base;
	return 0;
}

int source_open_fd(int fd, const char *name, struct source **out, struct abota_error *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return abota_error_set(err, -errno, "%s: %s", name, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return abota_error_set(err, -EINVAL, "%s: not a regular file", name);
	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dfd < 0)
		return abota_error_set(err, -errno, "%s: %s", name, strerror(errno));
	struct file_source *fs = source_alloc(sizeof(*fs), &file_ops, (uint64_t)st.st_size, name);
	if (!fs) {
		close(dfd);
		return abota_error_set(err, -ENOMEM, "out of memory");
	}
	fs->fd = dfd;
	*out = &fs->base;
	return 0;
}

int source_file_fd(const struct source *src)
{
	if (src->ops != &file_ops)
		return -1;
	return ((const struct file_source *)src)->fd;
}

/* --- window --- */

struct window_source {
	struct source base;
	struct source *lower;
	uint64_t off;
};

static int window_read_at(struct source *src, void *buf, size_t len, uint64_t off,
			  struct abota_error *err)
{
	struct window_source *ws = (struct window_source *)src;
	return source_read_at(ws->lower, buf, len, ws->off + off, err);
}

static void window_plan(struct source *src, const struct source_range *r, size_t n)
{
	struct window_source *ws = (struct window_source *)src;
	struct source_range *m = n ? malloc(n * sizeof(*m)) : NULL;
	if (n && !m)
		return; /* a hint only */
	for (size_t i = 0; i < n; i++)
		m[i] = (struct source_range){ .off = ws->off + r[i].off, .len = r[i].len };
	source_plan(ws->lower, m, n);
	free(m);
}

static void window_forget(struct source *src, uint64_t off, uint64_t len)
{
	struct window_source *ws = (struct window_source *)src;
	source_forget(ws->lower, ws->off + off, len);
}

static const struct source_ops window_ops = {
	.read_at = window_read_at,
	.close = NULL,
	.plan = window_plan,
	.forget = window_forget,
};

int source_new_window(struct source *lower, uint64_t off, uint64_t size, struct source **out,
		      struct abota_error *err)
{
	if (off > lower->size || size > lower->size - off)
		return abota_error_set(err, -EINVAL, "%s: window outside the source", lower->name);
	struct window_source *ws = source_alloc(sizeof(*ws), &window_ops, size, lower->name);
	if (!ws)
		return abota_error_set(err, -ENOMEM, "out of memory");
	ws->lower = lower;
	ws->off = off;
	*out = &ws->base;
	return 0;
}
