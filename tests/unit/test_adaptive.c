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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "abota/adaptive.h"
#include "abota/adaptive_cache.h"
#include "abota/fileio.h"

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
	/* block 41 came from the target at its own position: in place, the writer need
	 * not write it; what came from the active slot is not */
	assert_true(adaptive_in_place(a, 41 * BS, BS));
	assert_false(adaptive_in_place(a, 40 * BS, 2 * BS));
	assert_false(adaptive_in_place(a, 0, BS));
	assert_false(adaptive_in_place(a, 41 * BS + 1, BS));
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
	assert_int_equal(st.in_place, 1);
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

/* A slot's kept hashes (adaptive_src.hashes) replace reading it -- if a sample of its blocks
 * holds what they say -- and a slot that was read yields its index to keep. */
static void test_known_hashes(void **state)
{
	(void)state;
	for (unsigned b = 0; b < NB; b++) {
		if (b % 8 == 0)
			memset(image + b * BS, 0, BS);
		else
			fill_block(image + b * BS, b);
	}
	uint8_t *idx = malloc(NB * 8), *full = malloc(NB * 32);
	make_index(idx, 8);
	make_index(full, 32);
	/* the active slot holds the image; its kept hashes are the 32-byte form */
	int fa = temp_file(image, sizeof(image));
	static uint8_t target[NB * BS];
	memset(target, 0xDD, sizeof(target));
	memcpy(target + 3 * BS, image + 3 * BS, BS); /* in place there, and in the active slot */
	int ft = temp_file(target, sizeof(target));
	struct adaptive_src src[2] = {
		{ .fd = fa, .size = sizeof(image), .name = "active", .hashes = full,
		  .hashes_len = 32, .n_hashes = NB },
		{ .fd = ft, .size = sizeof(target), .name = "target", .is_target = true },
	};
	struct adaptive *a = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(adaptive_new(idx, NB * 8, 8, sizeof(image), src, 2, fetch_cb, NULL, &a,
				      &err), 0);
	struct adaptive_stats st;
	adaptive_get_stats(a, &st);
	assert_int_equal(st.srcs_known, 1);
	assert_int_equal(st.srcs_read, 1);
	assert_int_equal(st.srcs_known_stale, 0);
	for (unsigned b = 0; b < NB; b++)
		assert_false(adaptive_want(a, (uint64_t)b * BS, BS));
	/* a block both slots hold is taken from the target where it is in place */
	uint8_t blk[BS];
	assert_int_equal(adaptive_fill(a, 3 * BS, blk, BS, &err), 0);
	assert_memory_equal(blk, image + 3 * BS, BS);
	assert_true(adaptive_in_place(a, 3 * BS, BS));
	assert_int_equal(adaptive_fill(a, 4 * BS, blk, BS, &err), 0);
	assert_false(adaptive_in_place(a, 4 * BS, BS));
	/* the read target yields its index (zero blocks as the zero block's hash);
	 * the known one has none to give */
	struct adaptive_index ki = { 0 };
	assert_int_equal(adaptive_src_index(a, 0, &ki), -ENOENT);
	assert_int_equal(adaptive_src_index(a, 1, &ki), 0);
	assert_int_equal(ki.n, NB);
	assert_int_equal(ki.hash_len, 8);
	uint8_t h[32], zero[BS] = { 0 };
	unsigned l = 0;
	EVP_Digest(target, BS, h, &l, EVP_sha256(), NULL);
	assert_memory_equal(ki.hashes, h, 8);
	adaptive_index_free(&ki);
	assert_null(ki.hashes);
	/* dropped once kept: gone, and the blocks still come from the slots */
	adaptive_drop_src_indexes(a);
	assert_int_equal(adaptive_src_index(a, 1, &ki), -ENOENT);
	assert_null(ki.hashes);
	assert_int_equal(adaptive_fill(a, 3 * BS, blk, BS, &err), 0);
	assert_memory_equal(blk, image + 3 * BS, BS);
	assert_false(adaptive_want(a, 5 * BS, BS));
	adaptive_free(a);

	/* the slot was changed behind abota's back where the sample looks (its first
	 * block): the hashes are not trusted, the slot is read */
	uint8_t junk[BS];
	memset(junk, 0x55, BS);
	assert_int_equal(pwrite(fa, junk, BS, 0), BS);
	assert_int_equal(adaptive_new(idx, NB * 8, 8, sizeof(image), src, 2, fetch_cb, NULL, &a,
				      &err), 0);
	adaptive_get_stats(a, &st);
	assert_int_equal(st.srcs_known, 0);
	assert_int_equal(st.srcs_read, 2);
	assert_int_equal(st.srcs_known_stale, 1);
	assert_int_equal(adaptive_src_index(a, 0, &ki), 0);
	EVP_Digest(junk, BS, h, &l, EVP_sha256(), NULL);
	assert_memory_equal(ki.hashes, h, 8);
	EVP_Digest(zero, BS, h, &l, EVP_sha256(), NULL);
	assert_memory_equal(ki.hashes + 8 * 8, h, 8); /* block 8 is all zeros */
	adaptive_index_free(&ki);
	adaptive_free(a);
	/* hashes for fewer blocks than the slot: only those are indexed */
	src[0].n_hashes = 8;
	assert_int_equal(pwrite(fa, image, BS, 0), BS);
	assert_int_equal(adaptive_new(idx, NB * 8, 8, sizeof(image), src, 1, fetch_cb, NULL, &a,
				      &err), 0);
	adaptive_get_stats(a, &st);
	assert_int_equal(st.srcs_known, 1);
	assert_false(adaptive_want(a, 3 * BS, BS));
	assert_true(adaptive_want(a, 20 * BS, BS));
	adaptive_free(a);
	free(idx);
	free(full);
	close(fa);
	close(ft);
}

static void test_cache_files(void **state)
{
	(void)state;
	char dir[] = "/tmp/abota-acache-XXXXXX";
	assert_non_null(mkdtemp(dir));
	const char *h1 = "1111111111111111111111111111111111111111111111111111111111111111";
	const char *h2 = "2222222222222222222222222222222222222222222222222222222222222222";
	uint8_t hashes[4 * 8];
	for (unsigned i = 0; i < sizeof(hashes); i++)
		hashes[i] = (uint8_t)i;
	struct adaptive_index idx = { .hashes = hashes, .hash_len = 8, .n = 4 }, got = { 0 };
	struct abota_error err = { 0 };
	assert_int_equal(adaptive_cache_load(dir, "rootfs.1", h1, 4 * BS, &got, &err), -ENOENT);
	assert_int_equal(adaptive_cache_store(dir, "rootfs.1", h1, &idx, &err), 0);
	char path[512];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/slot.rootfs.1/hash-%s/block-hash-index-64", dir, h1);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, 32);
	assert_int_equal(adaptive_cache_load(dir, "rootfs.1", h1, 4 * BS, &got, &err), 0);
	assert_int_equal(got.hash_len, 8);
	assert_int_equal(got.n, 4);
	assert_memory_equal(got.hashes, hashes, sizeof(hashes));
	adaptive_index_free(&got);
	/* another size (the file describes 4 blocks), image, or slot: none kept */
	assert_int_equal(adaptive_cache_load(dir, "rootfs.1", h1, 5 * BS, &got, &err), -ENOENT);
	assert_int_equal(adaptive_cache_load(dir, "rootfs.1", h1, 4 * BS + 1, &got, &err), -ENOENT);
	assert_int_equal(adaptive_cache_load(dir, "rootfs.1", h2, 4 * BS, &got, &err), -ENOENT);
	assert_int_equal(adaptive_cache_load(dir, "rootfs.0", h1, 4 * BS, &got, &err), -ENOENT);
	assert_null(got.hashes);
	/* names that would leave the data directory, digests that are none */
	assert_int_equal(adaptive_cache_load(dir, "../x", h1, 4 * BS, &got, &err), -EINVAL);
	assert_int_equal(adaptive_cache_load(dir, "..", h1, 4 * BS, &got, &err), -EINVAL);
	assert_int_equal(adaptive_cache_store(dir, "a/b", h1, &idx, &err), -EINVAL);
	assert_int_equal(adaptive_cache_load(dir, "rootfs.1", "../../etc", 4 * BS, &got, &err),
			 -EINVAL);
	assert_int_equal(adaptive_cache_store(dir, "rootfs.1", "1111", &idx, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "adaptive index cache"));
	struct adaptive_index bad = { .hashes = hashes, .hash_len = 16, .n = 2 };
	assert_int_equal(adaptive_cache_store(dir, "rootfs.1", h2, &bad, &err), -EINVAL);
	/* the slot's new content: the old content's index goes; a 32-byte index is kept in
	 * the compact form */
	uint8_t full[2 * 32];
	for (unsigned i = 0; i < sizeof(full); i++)
		full[i] = (uint8_t)(100 + i);
	struct adaptive_index idx32 = { .hashes = full, .hash_len = 32, .n = 2 };
	assert_int_equal(adaptive_cache_store(dir, "rootfs.1", h2, &idx32, &err), 0);
	assert_int_equal(stat(path, &sb), -1);
	assert_int_equal(adaptive_cache_load(dir, "rootfs.1", h2, 2 * BS, &got, &err), 0);
	assert_int_equal(got.hash_len, 8);
	assert_memory_equal(got.hashes, full, 8);
	assert_memory_equal(got.hashes + 8, full + 32, 8);
	adaptive_index_free(&got);
	/* a torn file (wrong length) is not used; RAUC's form (32 bytes a block, its
	 * name) in the same place is */
	snprintf(path, sizeof(path), "%s/slot.rootfs.1/hash-%s/block-hash-index-64", dir, h2);
	assert_int_equal(truncate(path, 12), 0);
	assert_int_equal(adaptive_cache_load(dir, "rootfs.1", h2, 2 * BS, &got, &err), -ENOENT);
	snprintf(path, sizeof(path), "%s/slot.rootfs.1/hash-%s/block-hash-index", dir, h2);
	assert_int_equal(fileio_write_atomic(path, full, sizeof(full), 0644, NULL), 0);
	assert_int_equal(adaptive_cache_load(dir, "rootfs.1", h2, 2 * BS, &got, &err), 0);
	assert_int_equal(got.hash_len, 32);
	assert_memory_equal(got.hashes, full, sizeof(full));
	adaptive_index_free(&got);
	fileio_remove_tree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_index),
		cmocka_unit_test(test_compact_index),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_known_hashes),
		cmocka_unit_test(test_cache_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
