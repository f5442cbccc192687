/* adaptive_cache.h - the block hashes of what a slot holds, kept for the next adaptive update.
 *
 * Indexing a slot for an adaptive update reads and hashes all of it: two 512 MiB slots take
 * ~1 s on the benchmark machine, and ~10 s on a Cortex-A7 hashing at ~100 MB/s.  As RAUC
 * does (specs/rauc-compat.md §4.1), the block hashes of the image a slot holds are kept in
 * the data directory, keyed by that image's SHA-256 -- which the slot status records for a
 * slot abota wrote and verified whole:
 *
 *   <data-directory>/slot.<class>.<idx>/hash-<sha256>/block-hash-index     32 bytes a block
 *   <data-directory>/slot.<class>.<idx>/hash-<sha256>/block-hash-index-64  8 bytes a block
 *
 * (RAUC's name and format; -64 is abota's compact form: the first 8 bytes of each SHA-256.)
 * An index is a hint only: every block copied from a slot is hashed again when it is read
 * and the image is checked end to end, so a stale index costs downloads, never a wrong slot;
 * adaptive_new() also checks a sample of blocks before it trusts one.
 */
#ifndef ABOTA_ADAPTIVE_CACHE_H
#define ABOTA_ADAPTIVE_CACHE_H

#include <stdint.h>

#include "abota/error.h"

struct adaptive_index {
	uint8_t *hashes;   /* n * hash_len bytes (malloc'd) */
	unsigned hash_len; /* 32 or 8 */
	uint64_t n;        /* 4 KiB blocks */
};

/* The index kept for slot `slot` holding the image with SHA-256 sha256_hex (64 hex digits)
 * of `size` bytes (a multiple of 4096): 0 and *out filled; -ENOENT if none is kept (or the
 * file does not describe `size` bytes: a torn or foreign file is not an error, only not
 * used); -EINVAL for arguments that name no cache (a slot name with '/', a bad digest).
 * *out is untouched on failure. */
int adaptive_cache_load(const char *data_dir, const char *slot, const char *sha256_hex,
			uint64_t size, struct adaptive_index *out, struct abota_error *err);

/* Keeps idx for slot `slot` holding the image sha256_hex, durably (fileio_write_atomic), in
 * the compact form whatever idx's (block-hash-index-64: a quarter of the space), and removes
 * the slot's other hash-* directories: they describe content it no longer holds. */
int adaptive_cache_store(const char *data_dir, const char *slot, const char *sha256_hex,
			 const struct adaptive_index *idx, struct abota_error *err);

/* NULL-safe; leaves *idx empty. */
void adaptive_index_free(struct adaptive_index *idx);

#endif
