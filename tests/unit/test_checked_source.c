/* The plain-bundle view: chunks checked against tags taken while the
 * signature was verified; a file modified afterwards is detected on read
 * (CVE-2020-25860 class), and nothing unverified reaches the caller. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abota/checked_source.h"
#include "abota/chunk_mac.h"
#include "abota/fileio.h"

#include "pagecache.h"

#define CHUNK 65536
#define SIZE (5 * CHUNK + 12288) /* a short last chunk */

static void test_tag_checked(void **state)
{
	(void)state;
	uint8_t *data = malloc(SIZE);
	for (size_t i = 0; i < SIZE; i++)
		data[i] = (uint8_t)(i * 31 + (i >> 12));
	char tmp[] = "/tmp/abota-checked-XXXXXX";
	int fd = mkstemp(tmp);
	assert_true(fd >= 0);
	assert_int_equal(fileio_pwrite_full(fd, data, SIZE, 0, NULL), 0);
	size_t n = (SIZE + CHUNK - 1) / CHUNK;
	struct chunk_mac *mac;
	assert_int_equal(chunk_mac_new(&mac), 0);
	uint8_t *tags = malloc(n * CHUNK_MAC_TAG_LEN);
	for (size_t i = 0; i < n; i++) {
		size_t len = i == n - 1 ? SIZE - i * CHUNK : CHUNK;
		assert_int_equal(chunk_mac_tag(mac, i, data + i * CHUNK, len,
					       tags + i * CHUNK_MAC_TAG_LEN), 0);
	}
	struct source *file, *view;
	assert_int_equal(source_open_fd(fd, tmp, &file, NULL), 0);
	assert_int_equal(source_new_tag_checked(file, SIZE, CHUNK, mac, tags, &view, NULL), 0);
	uint8_t *buf = malloc(SIZE);
	/* whole, aligned, unaligned, crossing chunks, the short tail */
	assert_int_equal(source_read_at(view, buf, SIZE, 0, NULL), 0);
	assert_memory_equal(buf, data, SIZE);
	assert_int_equal(source_read_at(view, buf, 1000, CHUNK - 500, NULL), 0);
	assert_memory_equal(buf, data + CHUNK - 500, 1000);
	assert_int_equal(source_read_at(view, buf, 100, SIZE - 100, NULL), 0);
	assert_memory_equal(buf, data + SIZE - 100, 100);
	assert_int_equal(source_read_at(view, buf, 2 * CHUNK, CHUNK, NULL), 0);
	assert_memory_equal(buf, data + CHUNK, 2 * CHUNK);

	/* modify chunk 3 through another descriptor, as an attacker would */
	uint8_t evil = (uint8_t)(data[3 * CHUNK + 7] ^ 0xFF);
	assert_int_equal(fileio_pwrite_full(fd, &evil, 1, 3 * CHUNK + 7, NULL), 0);
	struct abota_error err = { 0 };
	memset(buf, 0xAA, 2 * CHUNK);
	assert_int_equal(source_read_at(view, buf, 2 * CHUNK, 2 * CHUNK, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "changed after its signature was verified"));
	/* nothing unverified reaches the caller: the buffer is cleared */
	for (size_t i = 0; i < 2 * CHUNK; i++)
		assert_int_equal(buf[i], 0);
	/* small unaligned reads of the modified chunk fail too (cache miss) */
	assert_int_equal(source_read_at(view, buf, 10, 3 * CHUNK + 5, &err), -EBADMSG);
	/* other chunks still read */
	assert_int_equal(source_read_at(view, buf, 10, 5, NULL), 0);
	source_close(view);
	source_close(file);
	close(fd);
	unlink(tmp);
	free(buf);
	free(data);
}

/* The tags: the pieces API gives the one-shot tag; a tag depends on every
 * byte, on the chunk index and on the key (a new key per bundle). */
static void test_chunk_mac(void **state)
{
	(void)state;
	enum { LEN = 70000 };
	uint8_t *data = malloc(LEN);
	for (size_t i = 0; i < LEN; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	struct chunk_mac *m, *m2;
	struct chunk_mac_ctx *c;
	assert_int_equal(chunk_mac_new(&m), 0);
	assert_int_equal(chunk_mac_new(&m2), 0);
	assert_int_equal(chunk_mac_ctx_new(m, &c), 0);
	uint8_t t1[CHUNK_MAC_TAG_LEN], t2[CHUNK_MAC_TAG_LEN], t3[CHUNK_MAC_TAG_LEN];
	assert_int_equal(chunk_mac_tag(m, 5, data, LEN, t1), 0);
	for (int round = 0; round < 2; round++) { /* a context is reusable */
		assert_int_equal(chunk_mac_begin(c, 5), 0);
		assert_int_equal(chunk_mac_update(c, data, 1), 0);
		assert_int_equal(chunk_mac_update(c, data + 1, 4095), 0);
		assert_int_equal(chunk_mac_update(c, data + 4096, LEN - 4096), 0);
		assert_int_equal(chunk_mac_final(c, t2), 0);
		assert_memory_equal(t1, t2, sizeof(t1));
	}
	assert_int_equal(chunk_mac_tag(m, 6, data, LEN, t3), 0); /* other index */
	assert_memory_not_equal(t1, t3, sizeof(t1));
	assert_int_equal(chunk_mac_tag(m2, 5, data, LEN, t3), 0); /* other key */
	assert_memory_not_equal(t1, t3, sizeof(t1));
	data[LEN - 1] ^= 1; /* the last byte counts */
	assert_int_equal(chunk_mac_tag(m, 5, data, LEN, t3), 0);
	assert_memory_not_equal(t1, t3, sizeof(t1));
	data[LEN - 1] ^= 1;
	assert_int_equal(chunk_mac_tag(m, 5, data, LEN - 1, t3), 0); /* length counts */
	assert_memory_not_equal(t1, t3, sizeof(t1));
	chunk_mac_ctx_free(c);
	chunk_mac_free(m);
	chunk_mac_free(m2);
	free(data);
}

/* A source that records what it is told to forget. */
struct forget_rec {
	struct source base;
	size_t calls;
	uint64_t off, len; /* the last call */
};

static int rec_read_at(struct source *src, void *buf, size_t len, uint64_t off,
		       struct abota_error *err)
{
	(void)src;
	(void)err;
	memset(buf, (int)(off & 0xFF), len);
	return 0;
}

static void rec_forget(struct source *src, uint64_t off, uint64_t len)
{
	struct forget_rec *r = (struct forget_rec *)src;
	r->calls++;
	r->off = off;
	r->len = len;
}

static const struct source_ops rec_ops = { .read_at = rec_read_at, .forget = rec_forget };

static int accept_all(void *ctx, uint64_t idx, const uint8_t *data, size_t len,
		      struct abota_error *err)
{
	(void)ctx;
	(void)idx;
	(void)data;
	(void)len;
	(void)err;
	return 0;
}

/* Views pass "forget" down at their offsets, clamped to their size; a
 * source without it, NULL and empty ranges are no-ops. */
static void test_forget_passes_down(void **state)
{
	(void)state;
	struct forget_rec *rec = source_alloc(sizeof(*rec), &rec_ops, 1 << 20, "rec");
	assert_non_null(rec);
	struct source *win, *view;
	assert_int_equal(source_new_window(&rec->base, 4096, 65536, &win, NULL), 0);
	source_forget(win, 100, 1000);
	assert_int_equal(rec->calls, 1);
	assert_int_equal(rec->off, 4196);
	assert_int_equal(rec->len, 1000);
	source_forget(win, 60000, 1 << 20); /* clamped to the window */
	assert_int_equal(rec->off, 64096);
	assert_int_equal(rec->len, 5536);
	source_forget(win, 65536, 10); /* outside: ignored */
	source_forget(win, 0, 0);
	source_forget(NULL, 0, 10);
	assert_int_equal(rec->calls, 2);
	assert_int_equal(source_new_checked(&rec->base, 300000, CHUNK, accept_all, NULL, NULL, NULL,
					    &view, NULL),
			 0);
	source_forget(view, 0, 200000);
	assert_int_equal(rec->calls, 3);
	assert_int_equal(rec->off, 0);
	assert_int_equal(rec->len, 200000);
	source_close(view);
	source_close(win);
	/* sources that cannot forget ignore it */
	static const struct source_ops plain_ops = { .read_at = rec_read_at };
	struct source *plain = source_alloc(sizeof(struct source), &plain_ops, 100, "plain");
	source_forget(plain, 0, 100);
	source_close(plain);
	source_close(&rec->base);
}

/* A local file forgets its cached pages: read whole, forgotten whole, none
 * of it is cached, and reading it again still works (from the disk). */
static void test_file_forgets_cached_pages(void **state)
{
	(void)state;
	enum { LEN = 3 << 20 };
	uint8_t *data = malloc(LEN), *buf = malloc(LEN);
	assert_true(data && buf);
	for (size_t i = 0; i < LEN; i++)
		data[i] = (uint8_t)(i * 7 + (i >> 16));
	if (!pagecache_can_drop_in("/var/tmp")) {
		free(data);
		free(buf);
		skip(); /* tmpfs: the pages are the file */
	}
	char tmp[] = "/var/tmp/abota-forget-XXXXXX";
	int fd = mkstemp(tmp);
	assert_true(fd >= 0);
	assert_int_equal(fileio_pwrite_full(fd, data, LEN, 0, NULL), 0);
	assert_int_equal(fdatasync(fd), 0); /* dirty pages are written back, not dropped */
	struct source *file;
	assert_int_equal(source_open_fd(fd, tmp, &file, NULL), 0);
	assert_int_equal(source_read_at(file, buf, LEN, 0, NULL), 0);
	assert_true(pagecache_resident(fd, 0, LEN) > 0);
	source_forget(file, 0, LEN);
	assert_int_equal(pagecache_resident(fd, 0, LEN), 0);
	assert_int_equal(source_read_at(file, buf, LEN, 0, NULL), 0);
	assert_memory_equal(buf, data, LEN);
	source_close(file);
	close(fd);
	unlink(tmp);
	free(data);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tag_checked),
		cmocka_unit_test(test_chunk_mac),
		cmocka_unit_test(test_forget_passes_down),
		cmocka_unit_test(test_file_forgets_cached_pages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
