/* adaptive.h - adaptive updates (RAUC's adaptive=block-hash-index).
 *
 * The bundle carries <image>.block-hash-index: the SHA-256 of every 4 KiB
 * block of the image.  Blocks the device already has -- in the active slot
 * of the same class (the running system) or, not yet overwritten, in the
 * target slot (an earlier, interrupted install) -- are copied locally;
 * all-zero blocks are made up; only squashfs blocks holding a block found
 * nowhere are read from the bundle (over HTTP: downloaded).  Every block
 * copied from a slot is hashed again when read and must match the index,
 * and the whole image still goes through the bundle's end-to-end SHA-256
 * check (bundle_stream_image_ex), so a stale or lying local block cannot
 * end up in the slot.
 *
 * Plug into struct bundle_stream_opts: want = adaptive_want, fill =
 * adaptive_fill, both with the adaptive object as context.
 */
#ifndef ABOTA_ADAPTIVE_H
#define ABOTA_ADAPTIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abota/error.h"

#define ADAPTIVE_BLOCK 4096u

/* A slot to copy blocks from: bytes [base, base + size) of fd. */
struct adaptive_src {
	int fd;
	uint64_t base;
	uint64_t size;   /* bytes to index (e.g. the image size) */
	const char *name;
	bool is_target;  /* the slot being written: only blocks not yet overwritten */
	/* Optional: the block hashes of what the slot holds, kept from an earlier index
	 * (adaptive_cache.h): hashes_len bytes each (8 or 32) for its first n_hashes
	 * blocks.  Trusted only if a sample of ADAPTIVE_SAMPLE blocks spread over them
	 * matches what the slot holds; else the slot is read and hashed as without. */
	const uint8_t *hashes;
	unsigned hashes_len;
	uint64_t n_hashes;
};

#define ADAPTIVE_SAMPLE 64u

/* Reads len bytes of the image at off from the bundle, for a local block
 * that turned out stale when it was read. */
typedef int (*adaptive_fetch_fn)(void *ctx, uint64_t off, void *buf, size_t len,
				 struct abota_error *err);

struct adaptive_stats {
	uint64_t blocks;            /* 4 KiB blocks of the image */
	uint64_t from_active;       /* copied from the active slot */
	uint64_t from_target;       /* kept from the target's old content */
	uint64_t in_place;          /* of those, at their own position (adaptive_in_place) */
	uint64_t zero;              /* all-zero blocks, made up */
	uint64_t stale;             /* local candidates that did not match when read */
	uint64_t wanted_bytes;      /* image bytes the bundle was asked for */
	unsigned srcs_read;         /* sources read and hashed to index them */
	unsigned srcs_known;        /* sources indexed from given hashes */
	unsigned srcs_known_stale;  /* given hashes that failed their sample: read instead */
};

struct adaptive;

/* index: the image's block hashes, hash_len bytes each -- 32 (RAUC's
 * block-hash-index: whole SHA-256) or 8 (abota's compact index: their first
 * 8 bytes; a local block matching on 64 bits is as good as certain, and the
 * image's SHA-256 over the result is checked anyway); image_size a non-zero
 * multiple of 4096 with image_size / 4096 * hash_len == index_len.  The
 * sources are read and hashed now (one thread per source). */
int adaptive_new(const uint8_t *index, size_t index_len, unsigned hash_len, uint64_t image_size,
		 const struct adaptive_src *srcs, size_t n_srcs, adaptive_fetch_fn fetch,
		 void *fetch_ctx, struct adaptive **out, struct abota_error *err);

/* squashfs_want_fn: true if [off, off + len) needs data from the bundle. */
bool adaptive_want(void *a, uint64_t off, size_t len);

/* bundle_stream_opts.fill: the declined bytes, from the local copies. */
int adaptive_fill(void *a, uint64_t off, void *buf, size_t len, struct abota_error *err);
/* slot_writer_opts.in_place: true if adaptive_fill() took every 4 KiB block of
 * [off, off + len) from the target at its own position (checked against the
 * index when read): the target holds those bytes where they belong already. */
bool adaptive_in_place(void *a, uint64_t off, size_t len);

void adaptive_get_stats(const struct adaptive *a, struct adaptive_stats *st);
/* The block hashes of source i as adaptive_new() found them by reading it (8-byte form,
 * one per block of its indexed size), to keep for the next update; -ENOENT if the source
 * was indexed from given hashes, -ENOMEM.  *out is untouched on failure. */
struct adaptive_index;
int adaptive_src_index(const struct adaptive *a, size_t i, struct adaptive_index *out);
/* Frees what adaptive_src_index() is made from (8 bytes per block of every source read):
 * the installer keeps the one it wants right after adaptive_new(), and the rest of the
 * install does not need them.  adaptive_src_index() says -ENOENT afterwards. */
void adaptive_drop_src_indexes(struct adaptive *a);

void adaptive_free(struct adaptive *a);

#endif
