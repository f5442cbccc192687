/* fuzz_common.h - helpers shared by the libFuzzer targets in fuzz/.
 *
 * A read-only in-memory struct source, a sink that discards data (with a cap
 * so a hostile image cannot make one execution run for minutes), quiet
 * logging, and FUZZ_CHECK for invariants (a violated invariant aborts, which
 * libFuzzer reports as a crash).
 */
#ifndef ABOTA_FUZZ_COMMON_H
#define ABOTA_FUZZ_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "abota/error.h"
#include "abota/log.h"
#include "abota/source.h"

#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                    \
			abort();                                                           \
		}                                                                          \
	} while (0)

static inline void fuzz_quiet(void)
{
	static int done;
	if (!done) {
		log_set_level(LOG_LEVEL_ERROR);
		done = 1;
	}
}

/* Puts the input in an anonymous file and names it /proc/self/fd/N, for the
 * entry points that take a path.  Returns the fd (close it when done). */
static inline int fuzz_memfd_path(const uint8_t *data, size_t size, const char *name,
				  char *path, size_t cap)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, cap, "/proc/self/fd/%d", fd);
	return fd;
}

/* ---- memory source ------------------------------------------------- */

struct mem_source {
	struct source base;
	const uint8_t *data; /* not owned */
};

static inline int mem_read_at(struct source *src, void *buf, size_t len, uint64_t off,
		       struct abota_error *err)
{
	(void)err;
	struct mem_source *m = (struct mem_source *)src;
	/* source_read_at() checked off+len <= size; check again, cheaply. */
	if (off > m->base.size || len > m->base.size - off)
		abort();
	if (len)
		memcpy(buf, m->data + off, len);
	return 0;
}

static inline void mem_close(struct source *src)
{
	(void)src; /* source_close() frees the name and the struct */
}

static const struct source_ops mem_ops = { .read_at = mem_read_at, .close = mem_close };

static inline struct source *fuzz_mem_source(const uint8_t *data, size_t size)
{
	struct mem_source *m = source_alloc(sizeof(*m), &mem_ops, size, "fuzz-input");
	if (!m)
		return NULL;
	m->data = data;
	return &m->base;
}

/* ---- discarding sink ------------------------------------------------ */

struct null_sink {
	uint64_t bytes;
	uint64_t cap; /* stop with -EFBIG beyond this many bytes */
};

static inline int null_sink_fn(void *ctx, const void *buf, size_t len, struct abota_error *err)
{
	struct null_sink *s = ctx;
	/* Touch the data so ASan sees reads of every delivered byte. */
	volatile uint8_t x = 0;
	if (len) {
		x ^= ((const uint8_t *)buf)[0];
		x ^= ((const uint8_t *)buf)[len - 1];
	}
	(void)x;
	s->bytes += len;
	if (s->bytes > s->cap)
		return abota_error_set(err, -EFBIG, "fuzz sink cap reached");
	return 0;
}

#endif
