/* Verity: reproduce the RAUC fixture's hash tree byte for byte, and check that
 * the verified view refuses any modified block. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abota/digest.h"
#include "abota/fileio.h"
#include "abota/verity.h"

static char *fixture(const char *name)
{
	const char *dir = getenv("ABOTA_FIXTURES");
	char *p = malloc(4096);
	snprintf(p, 4096, "%s/rauc/%s", dir ? dir : "../shared/fixtures", name);
	return p;
}

static void test_tree_size(void **state)
{
	(void)state;
	assert_int_equal(verity_tree_size(4096), 0);      /* one block: refused like RAUC */
	assert_int_equal(verity_tree_size(4097), 0);      /* not a multiple */
	assert_int_equal(verity_tree_size(0), 0);
	assert_int_equal(verity_tree_size(3 * 4096), 4096);
	assert_int_equal(verity_tree_size(128 * 4096), 4096);
	assert_int_equal(verity_tree_size(129 * 4096), 3 * 4096);
	/* the spec's example: 294 blocks -> 3 level-0 blocks + 1 level-1 block */
	assert_int_equal(verity_tree_size(294 * 4096), 16384);
	assert_int_equal(verity_tree_size(128 * 128 * 4096), (128 + 1) * 4096);
	assert_int_equal(verity_tree_size(128 * 128 * 4096 + 4096), (129 + 2 + 1) * 4096);
}

/* sample-verity.raucb: squashfs 12288 bytes, tree 4096 bytes, salt and root
 * from the fixture README. */
static void test_fixture_tree_identical(void **state)
{
	(void)state;
	char *path = fixture("sample-verity.raucb");
	char *data;
	size_t len;
	assert_int_equal(fileio_read_all(path, 1 << 20, &data, &len, NULL), 0);
	assert_true(len >= 16384);
	uint8_t salt[32], root[32], want_root[32];
	assert_true(digest_from_hex("750f049fb719226ebfdec1b398d0927aa3efd8c858af748441b80715bb555572",
				    salt, 32));
	assert_true(digest_from_hex("f5c062ddbc2bfaba19b811f06528adfc848c2a9db8396459bbe8ab4ac0e8d8c5",
				    want_root, 32));
	uint8_t tree[4096];
	assert_int_equal(verity_compute(data, 12288, salt, tree, root, NULL), 0);
	assert_memory_equal(root, want_root, 32);
	assert_memory_equal(tree, data + 12288, 4096);

	/* verity_create on a file writes the same tree */
	char tmp[] = "/tmp/abota-verity-XXXXXX";
	int fd = mkstemp(tmp);
	assert_true(fd >= 0);
	assert_int_equal(fileio_pwrite_full(fd, data, 12288, 0, NULL), 0);
	struct verity_params vp = { .data_size = 12288 };
	memcpy(vp.salt, salt, 32);
	assert_int_equal(verity_create(fd, &vp, NULL), 0);
	assert_int_equal(vp.hash_size, 4096);
	assert_memory_equal(vp.root, want_root, 32);
	uint8_t back[4096];
	assert_int_equal(fileio_pread_full(fd, back, 4096, 12288, NULL), 0);
	assert_memory_equal(back, tree, 4096);

	/* the verified view reads the data and refuses a modified block */
	struct source *file, *view;
	assert_int_equal(source_open_fd(fd, tmp, &file, NULL), 0);
	assert_int_equal(source_new_verity(file, &vp, &view, NULL), 0);
	assert_int_equal(source_size(view), 12288);
	char buf[12288];
	assert_int_equal(source_read_at(view, buf, 12288, 0, NULL), 0);
	assert_memory_equal(buf, data, 12288);
	/* unaligned small reads go through the cache */
	assert_int_equal(source_read_at(view, buf, 10, 4090, NULL), 0);
	assert_memory_equal(buf, data + 4090, 10);
	/* out of range */
	struct abota_error err = { 0 };
	assert_int_equal(source_read_at(view, buf, 2, 12287, &err), -EINVAL);
	/* modify block 2 behind the view's back: the next read of it fails */
	char x = (char)(data[9000] ^ 1);
	assert_int_equal(fileio_pwrite_full(fd, &x, 1, 9000, NULL), 0);
	assert_int_equal(source_read_at(view, buf, 4096, 8192, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "corrupted"));
	/* an untouched block still reads */
	assert_int_equal(source_read_at(view, buf, 100, 0, NULL), 0);
	source_close(view);

	/* a wrong root or a modified tree is refused when the view is made */
	vp.root[0] ^= 1;
	assert_int_equal(source_new_verity(file, &vp, &view, &err), -EBADMSG);
	vp.root[0] ^= 1;
	vp.hash_size = 8192;
	assert_int_equal(source_new_verity(file, &vp, &view, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "verity-size"));
	source_close(file);
	close(fd);
	unlink(tmp);
	free(data);
	free(path);
}

static void test_two_level_tree(void **state)
{
	(void)state;
	/* 300 blocks need two levels; check structure by recomputing by hand */
	size_t n = 300;
	uint8_t *data = malloc(n * 4096);
	for (size_t i = 0; i < n * 4096; i++)
		data[i] = (uint8_t)(i * 7 + i / 4096);
	uint8_t salt[32] = { 1, 2, 3 };
	uint64_t tsize = verity_tree_size(n * 4096);
	assert_int_equal(tsize, (3 + 1) * 4096);
	uint8_t *tree = calloc(1, tsize);
	uint8_t root[32];
	assert_int_equal(verity_compute(data, n * 4096, salt, tree, root, NULL), 0);
	/* level 0 is last (3 blocks from offset 4096); digest of block 5 is entry 5 */
	uint8_t buf[32 + 4096], md[32];
	memcpy(buf, salt, 32);
	memcpy(buf + 32, data + 5 * 4096, 4096);
	digest_sha256(buf, sizeof(buf), md);
	assert_memory_equal(tree + 4096 + 5 * 32, md, 32);
	/* level 1 (offset 0) entry 2 hashes the third level-0 block */
	memcpy(buf + 32, tree + 4096 + 2 * 4096, 4096);
	digest_sha256(buf, sizeof(buf), md);
	assert_memory_equal(tree + 2 * 32, md, 32);
	/* root hashes the top block */
	memcpy(buf + 32, tree, 4096);
	digest_sha256(buf, sizeof(buf), md);
	assert_memory_equal(root, md, 32);
	free(tree);
	free(data);
}

/* --- the view reads level 0 lazily (dm-verity's scheme) --- */

/* A source over a memory buffer that records what is read and planned. */
struct rec_source {
	struct source base;
	uint8_t *data;
	struct source_range reads[64];
	size_t n_reads;
	struct source_range plan[64];
	size_t n_plan;
};

static int rec_read_at(struct source *src, void *buf, size_t len, uint64_t off,
		       struct abota_error *err)
{
	(void)err;
	struct rec_source *r = (struct rec_source *)src;
	if (r->n_reads < 64)
		r->reads[r->n_reads++] = (struct source_range){ .off = off, .len = len };
	memcpy(buf, r->data + off, len);
	return 0;
}

static void rec_plan(struct source *src, const struct source_range *rg, size_t n)
{
	struct rec_source *r = (struct rec_source *)src;
	r->n_plan = n < 64 ? n : 64;
	memcpy(r->plan, rg, r->n_plan * sizeof(*rg));
}

static const struct source_ops rec_ops = { .read_at = rec_read_at, .plan = rec_plan };

/* n data blocks (pattern) followed by their tree; vp filled. */
static struct rec_source *rec_bundle(size_t n, struct verity_params *vp)
{
	uint64_t tsize = verity_tree_size(n * 4096);
	struct rec_source *r = source_alloc(sizeof(*r), &rec_ops, n * 4096 + tsize, "rec.raucb");
	assert_non_null(r);
	r->data = malloc(n * 4096 + tsize);
	for (size_t i = 0; i < n * 4096; i++)
		r->data[i] = (uint8_t)(i * 13 + i / 4096);
	memset(vp, 0, sizeof(*vp));
	memset(vp->salt, 0x5a, sizeof(vp->salt));
	vp->data_size = n * 4096;
	vp->hash_size = tsize;
	assert_int_equal(verity_compute(r->data, n * 4096, vp->salt, r->data + n * 4096, vp->root,
					NULL), 0);
	return r;
}

static void rec_free(struct rec_source *r)
{
	free(r->data);
	source_close(&r->base);
}

/* digest = SHA256(salt || block), as the tree is made */
static void salted(const struct verity_params *vp, const uint8_t *block, uint8_t md[32])
{
	uint8_t buf[32 + 4096];
	memcpy(buf, vp->salt, 32);
	memcpy(buf + 32, block, 4096);
	digest_sha256(buf, sizeof(buf), md);
}

static void test_level0_read_lazily(void **state)
{
	(void)state;
	/* 300 blocks: level 1 (one block, at the tree's start), level 0 (three blocks) */
	struct verity_params vp;
	struct rec_source *r = rec_bundle(300, &vp);
	uint8_t *l0 = r->data + 300 * 4096 + 4096;
	l0[4096 + 7] ^= 1; /* level-0 block 1 (data blocks 128..255) damaged */
	struct source *view;
	struct abota_error err = { 0 };
	/* only level 1 is read when the view is made, and it matches the root */
	assert_int_equal(source_new_verity(&r->base, &vp, &view, &err), 0);
	assert_int_equal(r->n_reads, 1);
	assert_int_equal(r->reads[0].off, 300 * 4096);
	assert_int_equal(r->reads[0].len, 4096);
	uint8_t buf[4096];
	/* a miss reads the batch (all three level-0 blocks); the damaged one fails only
	 * the data it covers */
	assert_int_equal(source_read_at(view, buf, 4096, 5 * 4096, &err), 0);
	assert_memory_equal(buf, r->data + 5 * 4096, 4096);
	assert_int_equal(r->reads[2].off, 301 * 4096); /* after the data block */
	assert_int_equal(r->reads[2].len, 3 * 4096);
	assert_int_equal(source_read_at(view, buf, 4096, 260 * 4096, &err), 0);
	assert_int_equal(source_read_at(view, buf, 4096, 130 * 4096, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "verity hash block 1 does not match"));
	/* data blocks still checked against level 0: block 6 changed behind the view */
	r->data[6 * 4096] ^= 1;
	assert_int_equal(source_read_at(view, buf, 4096, 6 * 4096, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "verity check failed for block 6"));
	source_close(view);
	rec_free(r);
}

static void test_level0_padding(void **state)
{
	(void)state;
	/* A signer's tree whose last level-0 block has a non-zero unused entry (entries
	 * 44..127 of block 2 cover no data), level 1 and root made to match it: the blocks
	 * that level-0 block covers are refused, others read. */
	struct verity_params vp;
	struct rec_source *r = rec_bundle(300, &vp);
	uint8_t *l1 = r->data + 300 * 4096, *l0 = l1 + 4096;
	l0[2 * 4096 + 44 * 32 + 3] = 1;
	salted(&vp, l0 + 2 * 4096, l1 + 2 * 32);
	salted(&vp, l1, vp.root);
	struct source *view;
	struct abota_error err = { 0 };
	assert_int_equal(source_new_verity(&r->base, &vp, &view, &err), 0);
	uint8_t buf[4096];
	assert_int_equal(source_read_at(view, buf, 4096, 0, &err), 0);
	assert_int_equal(source_read_at(view, buf, 4096, 299 * 4096, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "hash block 2"));
	source_close(view);
	/* the same in level 1 (entries 3..127 unused) fails when the view is made */
	rec_free(r);
	r = rec_bundle(300, &vp);
	l1 = r->data + 300 * 4096;
	l1[3 * 32] = 1;
	salted(&vp, l1, vp.root);
	assert_int_equal(source_new_verity(&r->base, &vp, &view, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "does not match the signed root hash"));
	rec_free(r);
}

static void test_plan_adds_hash_blocks(void **state)
{
	(void)state;
	/* 40 level-0 blocks (5120 data blocks, 3 batches) and one level-1 block */
	struct verity_params vp;
	struct rec_source *r = rec_bundle(5120, &vp);
	const uint64_t l0_off = 5120 * 4096 + 4096;
	struct source *view;
	assert_int_equal(source_new_verity(&r->base, &vp, &view, NULL), 0);
	/* data blocks 130..139 (level-0 block 1) and 2000..2100 unaligned (blocks 15, 16) */
	struct source_range want[] = { { 130 * 4096 + 100, 9 * 4096 },
				       { 2000 * 4096 + 1, 100 * 4096 } };
	source_plan(view, want, 2);
	assert_int_equal(r->n_plan, 4);
	assert_int_equal(r->plan[0].off, 130 * 4096); /* widened to whole blocks */
	assert_int_equal(r->plan[0].len, 10 * 4096);
	assert_int_equal(r->plan[1].off, 2000 * 4096);
	assert_int_equal(r->plan[1].len, 101 * 4096);
	assert_int_equal(r->plan[2].off, l0_off + 1 * 4096);
	assert_int_equal(r->plan[2].len, 4096);
	assert_int_equal(r->plan[3].off, l0_off + 15 * 4096);
	assert_int_equal(r->plan[3].len, 2 * 4096);
	/* a miss reads within the planned run only: one block, not the batch of 16 */
	size_t before = r->n_reads;
	uint8_t buf[4096];
	assert_int_equal(source_read_at(view, buf, 4096, 131 * 4096, NULL), 0);
	assert_int_equal(r->reads[before + 1].off, l0_off + 4096);
	assert_int_equal(r->reads[before + 1].len, 4096);
	/* blocks 15 and 16 lie in different batches: each read is clipped to the run */
	assert_int_equal(source_read_at(view, buf, 4096, 2050 * 4096, NULL), 0);
	assert_int_equal(r->reads[before + 3].off, l0_off + 16 * 4096);
	assert_int_equal(r->reads[before + 3].len, 4096);
	/* outside the plan a miss reads the whole aligned batch (blocks 32..39) */
	assert_int_equal(source_read_at(view, buf, 4096, 4500 * 4096, NULL), 0);
	assert_int_equal(r->reads[before + 5].off, l0_off + 32 * 4096);
	assert_int_equal(r->reads[before + 5].len, 8 * 4096);
	/* an empty plan clears the lower one's */
	source_plan(view, NULL, 0);
	assert_int_equal(r->n_plan, 0);
	/* data that was read is right */
	assert_int_equal(source_read_at(view, buf, 4096, 5119 * 4096, NULL), 0);
	assert_memory_equal(buf, r->data + 5119 * 4096, 4096);
	source_close(view);
	rec_free(r);
}

static void test_three_levels(void **state)
{
	(void)state;
	/* 128*128+1 blocks: levels 2 (1 block), 1 (2 blocks), 0 (129 blocks) */
	struct verity_params vp;
	struct rec_source *r = rec_bundle(128 * 128 + 1, &vp);
	struct source *view;
	struct abota_error err = { 0 };
	assert_int_equal(source_new_verity(&r->base, &vp, &view, &err), 0);
	assert_int_equal(r->reads[0].len, 3 * 4096); /* levels 2 and 1, not level 0 */
	uint8_t buf[4096];
	assert_int_equal(source_read_at(view, buf, 4096, 128 * 128 * 4096, &err), 0);
	assert_memory_equal(buf, r->data + 128 * 128 * 4096, 4096);
	assert_int_equal(source_read_at(view, buf, 4096, 77 * 4096, &err), 0);
	source_close(view);
	/* a changed level-1 block is refused when the view is made */
	r->data[(128 * 128 + 1) * 4096 + 4096 + 4096 + 10] ^= 1;
	assert_int_equal(source_new_verity(&r->base, &vp, &view, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "does not match the signed root hash"));
	rec_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree_size),
		cmocka_unit_test(test_fixture_tree_identical),
		cmocka_unit_test(test_two_level_tree),
		cmocka_unit_test(test_level0_read_lazily),
		cmocka_unit_test(test_level0_padding),
		cmocka_unit_test(test_plan_adds_hash_blocks),
		cmocka_unit_test(test_three_levels),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
