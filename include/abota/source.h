/* source.h - random-access byte sources.
 *
 * One interface for every place bytes come from: a local file, an HTTP range
 * reader, or a verified view (dm-verity checked, or checked against digests
 * taken while a plain bundle's signature was verified).  Readers above (the
 * squashfs glue, the installer) never know which one they have.
 */
#ifndef ABOTA_SOURCE_H
#define ABOTA_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "abota/error.h"

struct source;

struct source_range {
	uint64_t off, len;
};

struct source_ops {
	/* Reads exactly len bytes at off; off+len beyond the size is an error. */
	int (*read_at)(struct source *src, void *buf, size_t len, uint64_t off,
		       struct abota_error *err);
	void (*close)(struct source *src);
	/* Optional: see source_plan(). */
	void (*plan)(struct source *src, const struct source_range *r, size_t n);
	/* Optional: see source_forget(). */
	void (*forget)(struct source *src, uint64_t off, uint64_t len);
};

struct source {
	const struct source_ops *ops;
	uint64_t size;
	char *name; /* for messages: path or URL */
};

/* Reads len bytes at off.  Checks bounds (with overflow checks) before calling
 * the implementation, so implementations may assume off+len <= size. */
int source_read_at(struct source *src, void *buf, size_t len, uint64_t off,
		   struct abota_error *err);
uint64_t source_size(const struct source *src);
const char *source_name(const struct source *src);
/* NULL-safe. */
void source_close(struct source *src);
/* A hint: the ranges (sorted, not overlapping) that will be read next, in
 * that order; replaces an earlier plan.  An HTTP source merges them into
 * few requests and fetches nothing beyond them (adaptive updates read a
 * scattered few percent of a bundle); others ignore it or pass it down.
 * Reads outside the plan still work. */
void source_plan(struct source *src, const struct source_range *r, size_t n);
/* A hint: the caller will not read [off, off+len) again.  A local file
 * drops those bytes' cached pages (whole pages only), so that installing a
 * bundle does not leave it in the page cache at the expense of the running
 * system's own files; views pass it down, an HTTP source (which keeps only
 * what its plan still needs) ignores it.  Reading the bytes again still
 * works: they come from the medium.  Out-of-range parts are ignored. */
void source_forget(struct source *src, uint64_t off, uint64_t len);

/* A local regular file, opened once (O_RDONLY|O_CLOEXEC); never re-opened by
 * path.  Anything but a regular file is refused. */
int source_open_file(const char *path, struct source **out, struct abota_error *err);
/* Same, over an already open file descriptor (which is dup'ed). */
int source_open_fd(int fd, const char *name, struct source **out, struct abota_error *err);
/* The file descriptor behind a file source (or -1 for other sources). */
int source_file_fd(const struct source *src);

/* A window [off, off+size) of another source (which it does not own). */
int source_new_window(struct source *lower, uint64_t off, uint64_t size,
		      struct source **out, struct abota_error *err);

/* Helpers for implementations: allocate the common part. */
void *source_alloc(size_t impl_size, const struct source_ops *ops, uint64_t size,
		   const char *name);

#endif
