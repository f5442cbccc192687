/* fuzz_verity.c - source_new_verity over a memory source with fuzzed
 * parameters, hash tree and data, then reads through the verified view.
 *
 * Input: 8 bytes data_size selector, 8 bytes hash_size selector, 32 salt,
 * 32 root, 1 flags byte, then the lower source (data || tree).  With flag
 * bit 0 the root is recomputed from the lower source (so reads of a valid
 * tree with fuzzed data/blocks are reached, not only root mismatches); with
 * bit 4 the view gets a plan before it is read. */
#include <stdlib.h>
#include <string.h>

#include "abota/verity.h"
#include "fuzz_common.h"

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_quiet();
	const size_t hdr = 8 + 8 + 32 + 32 + 1;
	if (size < hdr)
		return 0;
	struct verity_params p = { 0 };
	uint64_t dsel = le64(data), hsel = le64(data + 8);
	memcpy(p.salt, data + 16, 32);
	memcpy(p.root, data + 48, 32);
	uint8_t flags = data[80];
	const uint8_t *body = data + hdr;
	size_t blen = size - hdr;

	/* Mostly sizes that make sense for the body, sometimes raw values
	 * (huge, unaligned, wrapping). */
	if (flags & 2) {
		p.data_size = dsel;
		p.hash_size = hsel;
	} else {
		p.data_size = (dsel % (blen / VERITY_BLOCK_SIZE + 2)) * VERITY_BLOCK_SIZE;
		p.hash_size = (flags & 4) ? verity_tree_size(p.data_size)
					  : (hsel % (blen / VERITY_BLOCK_SIZE + 2)) * VERITY_BLOCK_SIZE;
	}

	if ((flags & 1) && verity_tree_size(p.data_size) && p.data_size <= blen &&
	    p.data_size <= (64u << 20)) {
		uint64_t ts = verity_tree_size(p.data_size);
		uint8_t *tree = malloc(ts);
		if (tree && verity_compute(body, p.data_size, p.salt, tree, p.root, NULL) == 0) {
			/* Keep the fuzzed tree bytes in the input unless flag 8:
			 * then the tree is the valid one and only data is hostile. */
			if ((flags & 8) && p.data_size + ts <= blen) {
				uint8_t *copy = malloc(blen);
				if (copy) {
					memcpy(copy, body, blen);
					memcpy(copy + p.data_size, tree, ts);
					p.hash_size = ts;
					struct source *lower = fuzz_mem_source(copy, blen);
					struct source *v = NULL;
					if (lower && source_new_verity(lower, &p, &v, NULL) == 0) {
						uint8_t buf[VERITY_BLOCK_SIZE];
						for (uint64_t off = 0; off < p.data_size;
						     off += VERITY_BLOCK_SIZE)
							FUZZ_CHECK(source_read_at(v, buf, sizeof(buf), off,
										  NULL) == 0);
						source_close(v);
					} else {
						/* A valid tree over the data must open. */
						FUZZ_CHECK(lower == NULL);
					}
					source_close(lower);
					free(copy);
				}
			}
		}
		free(tree);
	}

	struct source *lower = fuzz_mem_source(body, blen);
	if (!lower)
		return 0;
	struct abota_error err = { 0 };
	struct source *v = NULL;
	if (source_new_verity(lower, &p, &v, &err) == 0) {
		uint64_t vs = source_size(v);
		FUZZ_CHECK(vs == p.data_size);
		if ((flags & 16) && vs) {
			/* A plan first (level-0 batches are then read within its
			 * runs): two ranges from the selectors, sorted. */
			uint64_t a = dsel % vs, b = hsel % vs;
			struct source_range r[2] = {
				{ .off = a < b ? a : b, .len = (a < b ? b - a : a - b) / 2 + 1 },
				{ .off = a < b ? b : a, .len = vs - (a < b ? b : a) },
			};
			source_plan(v, r, 2);
		}
		uint8_t buf[2 * VERITY_BLOCK_SIZE];
		/* Whole blocks, unaligned reads across blocks, the last byte,
		 * and out of range. */
		for (uint64_t off = 0; off < vs && off < (4u << 20); off += VERITY_BLOCK_SIZE)
			(void)source_read_at(v, buf, VERITY_BLOCK_SIZE, off, &err);
		if (vs > 100)
			(void)source_read_at(v, buf, sizeof(buf) < vs - 100 ? sizeof(buf) : vs - 100,
					     100, &err);
		if (vs)
			(void)source_read_at(v, buf, 1, vs - 1, &err);
		FUZZ_CHECK(source_read_at(v, buf, 2, vs, &err) < 0);
		FUZZ_CHECK(source_read_at(v, buf, 1, UINT64_MAX, &err) < 0);
		source_close(v);
	}
	source_close(lower);
	return 0;
}
