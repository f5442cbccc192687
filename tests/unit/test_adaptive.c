/* test_adaptive.c - (SC-44: an index whose length does not match the image is refused, adaptive
 * mode off) block reuse for adaptive updates: which blocks are
 * asked from the bundle, that local copies are re-checked when read, and
 * that the target's old content is used only where not yet overwritten. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "abota/adaptive.h"

#define NB 64u /* image blocks */
#define BS ADAPTIVE_BLOCK

static uint8_t image[NB * BS];

static void fill_block(uint8_t *p, unsigned seed)
{
	for (unsigned i = 0; i < BS; i++)
		p[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
}

static void make_index(uint8_t *idx, unsigned hlen)
{
	for (unsigned b = 0; b < NB; b++) {
		uint8_t h[32];
		unsigned l = 0;
		EVP_Digest(image + b * BS, BS, h, &l, EVP_sha256(), NULL);
		memcpy(idx + b * hlen, h, hlen);
	}
}

static int temp_file(const uint8_t *data, size_t len)
{
	char path[] = "/tmp/abota-adaptive-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(pwrite(fd, data, len, 0), (ssize_t)len);
	return fd;
}

struct fetch_rec {
	unsigned calls;
};

static int fetch_cb(void *ctx, uint64_t off, void *buf, size_t len, struct abota_error *err)
{
	(void)err;
	struct fetch_rec *f = ctx;
	f->calls++;
	memcpy(buf, image + off, len);
	return 0;
}

/* image: block b = seed b (b % 8 == 0: zeros).  active slot: the image's
 * blocks 0..31 shifted by one block (moved content), blocks 32.. unknown.
 * target: block 41 of the image at its own position, and block 50's
 * content at position 10 (already overwritten when block 50 comes). */
static void run(unsigned hlen)
{
	for (unsigned b = 0; b < NB; b++) {
		if (b % 8 == 0)
			memset(image + b * BS, 0, BS);
		else
			fill_block(image + b * BS, b);
	}
	static uint8_t active[NB * BS], target[NB * BS];
	memset(active, 0xEE, sizeof(active));
	memset(target, 0xDD, sizeof(target));
	memcpy(active + BS, image, 32 * BS);
	memcpy(target + 41 * BS, image + 41 * BS, BS);
	memcpy(target + 10 * BS, image + 50 * BS, BS);
	int fa = temp_file(active, sizeof(active)), ft = temp_file(target, sizeof(target));
	uint8_t *idx = malloc(NB * hlen);
	make_index(idx, hlen);
	struct adaptive_src src[2] = {
		{ .fd = fa, .size = sizeof(active), .name = "active" },
		{ .fd = ft, .size = sizeof(target), .name = "target", .is_target = true },
	};
	struct fetch_rec fr = { 0 };
	struct adaptive *a = NULL;
	struct abota_error err = { 0 };
	/* a wrong index length is refused */
	assert_int_equal(adaptive_new(idx, NB * hlen - 1, hlen, sizeof(image), src, 2, fetch_cb,
				      &fr, &a, &err),
			 -EINVAL);
	assert_int_equal(adaptive_new(idx, NB * hlen, hlen, sizeof(image), src, 2, fetch_cb, &fr,
				      &a, &err),
			 0);
	/* blocks 0..31 from active, zeros made up, block 41 from the target */
	for (unsigned b = 0; b < NB; b++) {
		bool local = b < 32 || b % 8 == 0 || b == 41;
		assert_int_equal(adaptive_want(a, (uint64_t)b * BS, BS), !local);
	}
	/* block 50's content sits at target position 10 < 50: overwritten */
	assert_true(adaptive_want(a, 50 * BS, BS));
	/* a range is wanted if any of its blocks is missing */
	assert_true(adaptive_want(a, 30 * BS, 4 * BS));
	assert_false(adaptive_want(a, 0, 32 * BS));

	uint8_t out[32 * BS];
	assert_int_equal(adaptive_fill(a, 0, out, 32 * BS, &err), 0);
	assert_memory_equal(out, image, 32 * BS);
	assert_int_equal(adaptive_fill(a, 41 * BS, out, BS, &err), 0);
	assert_memory_equal(out, image + 41 * BS, BS);
	assert_int_equal(fr.calls, 0);
	/* the active slot changes after it was indexed: the stale block is
	 * noticed when read and taken from the bundle */
	uint8_t junk[BS];
	memset(junk, 0x55, BS);
	assert_int_equal(pwrite(fa, junk, BS, 5 * BS), BS);
	assert_int_equal(adaptive_fill(a, 4 * BS, out, BS, &err), 0);
	assert_memory_equal(out, image + 4 * BS, BS);
	assert_int_equal(fr.calls, 1);
	/* not whole blocks: refused */
	assert_int_equal(adaptive_fill(a, 100, out, BS, &err), -EINVAL);
	assert_int_equal(adaptive_fill(a, (NB - 1) * BS, out, 2 * BS, &err), -EINVAL);
	struct adaptive_stats st;
	adaptive_get_stats(a, &st);
	assert_int_equal(st.blocks, NB);
	assert_int_equal(st.stale, 1);
	assert_int_equal(st.from_target, 1);
	assert_true(st.zero >= 4);
	adaptive_free(a);
	free(idx);
	close(fa);
	close(ft);
}

static void test_full_index(void **state)
{
	(void)state;
	run(32);
}

static void test_compact_index(void **state)
{
	(void)state;
	run(8);
}

static void test_bad_args(void **state)
{
	(void)state;
	uint8_t idx[64] = { 0 };
	struct adaptive *a = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(adaptive_new(idx, 64, 16, 8192, NULL, 0, NULL, NULL, &a, &err), -EINVAL);
	assert_int_equal(adaptive_new(idx, 64, 32, 8000, NULL, 0, NULL, NULL, &a, &err), -EINVAL);
	assert_int_equal(adaptive_new(idx, 0, 32, 0, NULL, 0, NULL, NULL, &a, &err), -EINVAL);
	assert_null(a);
	/* no sources at all: everything but zeros comes from the bundle */
	memset(idx, 0, sizeof(idx));
	assert_int_equal(adaptive_new(idx, 64, 32, 8192, NULL, 0, NULL, NULL, &a, &err), 0);
	assert_true(adaptive_want(a, 0, 8192));
	adaptive_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_index),
		cmocka_unit_test(test_compact_index),
		cmocka_unit_test(test_bad_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
