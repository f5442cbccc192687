/* checked_source.h - a source whose every block is verified before use.
 *
 * Shared machinery of the verity view (4 KiB blocks checked against a hash
 * tree) and of plain bundles (chunks checked against digests recorded while
 * the detached signature was verified).  Keeps a small cache of verified
 * blocks for the small, unaligned reads squashfs metadata makes, and reads
 * large aligned ranges straight into the caller's buffer. */
#ifndef ABOTA_CHECKED_SOURCE_H
#define ABOTA_CHECKED_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "abota/error.h"
#include "abota/source.h"

/* Verifies block `idx` (len bytes; only the last block may be short).
 * Returns 0 or a negative code with a message. */
typedef int (*checked_verify_fn)(void *ctx, uint64_t idx, const uint8_t *data, size_t len,
				 struct abota_error *err);

/* Optional: given the plan for lower (the caller's ranges widened to whole
 * blocks, merged, sorted), hands lower its plan itself -- for a view that
 * reads more than the blocks to verify them (the verity view adds the hash
 * blocks it will need).  Without one the widened plan is passed down. */
typedef void (*checked_plan_fn)(void *ctx, struct source *lower, const struct source_range *r,
				size_t n);

/* Creates the view of [0, size) of lower.  ctx is owned (freed with ctx_free)
 * and lower is not.  block_size must be a power of two >= 512.  plan may be
 * NULL.  verify may be called from several threads at once. */
int source_new_checked(struct source *lower, uint64_t size, uint32_t block_size,
		       checked_verify_fn verify, checked_plan_fn plan, void *ctx,
		       void (*ctx_free)(void *ctx), struct source **out, struct abota_error *err);

/* Plain bundles: a view of [0, size) checked against the tags mac gave each
 * chunk_size-byte chunk (the last chunk may be short) while the signature
 * was verified.  Takes ownership of mac and tags (n_chunks *
 * CHUNK_MAC_TAG_LEN bytes, malloc'd), also on failure. */
struct chunk_mac;
int source_new_tag_checked(struct source *lower, uint64_t size, uint32_t chunk_size,
			   struct chunk_mac *mac, uint8_t *tags, struct source **out,
			   struct abota_error *err);

#endif
