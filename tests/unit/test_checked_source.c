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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tag_checked),
		cmocka_unit_test(test_chunk_mac),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
