/* verity.h - dm-verity hash trees as RAUC's verity bundles use them.
 *
 * Format version 1, SHA-256, 4096-byte data and hash blocks, 32-byte salt
 * prepended to every hashed block, no superblock.  Levels are stored top level
 * first, level 0 last, directly after the data.  Byte-identical to
 * `veritysetup format --format=1 --no-superblock --hash=sha256 ...`.
 */
#ifndef ABOTA_VERITY_H
#define ABOTA_VERITY_H

#include <stddef.h>
#include <stdint.h>

#include "abota/error.h"
#include "abota/source.h"

#define VERITY_BLOCK_SIZE 4096u
#define VERITY_SALT_LEN 32u
#define VERITY_DIGEST_LEN 32u

struct verity_params {
	uint64_t data_size;                /* bytes of data, multiple of 4096, > 4096 */
	uint64_t hash_size;                /* bytes of hash tree */
	uint8_t salt[VERITY_SALT_LEN];
	uint8_t root[VERITY_DIGEST_LEN];
};

/* Size of the hash tree for data_size bytes; 0 if data_size is invalid
 * (not a multiple of 4096, or at most one block). */
uint64_t verity_tree_size(uint64_t data_size);

/* Computes the tree over [0, data_size) of fd and writes it at data_size.
 * Fills params->hash_size and params->root; params->salt is an input. */
int verity_create(int fd, struct verity_params *params, struct abota_error *err);

/* Computes the tree of an in-memory buffer into tree (verity_tree_size bytes)
 * and returns the root.  Used by tests and small data. */
int verity_compute(const void *data, uint64_t data_size, const uint8_t salt[VERITY_SALT_LEN],
		   uint8_t *tree, uint8_t root[VERITY_DIGEST_LEN], struct abota_error *err);

/* Returns a source that exposes [0, data_size) of lower and checks every
 * block against the tree stored at [data_size, data_size+hash_size) of lower.
 * The levels above 0 (1/16384 of the data) are read and verified against the
 * root when the source is created; level 0 (1/128 of the data) is not held:
 * its blocks are read and checked against level 1 when the data they cover is
 * read, and every data block is verified before a byte of it is returned
 * (dm-verity's scheme, with a 128 KiB cache of level-0 blocks).  A plan given
 * to the view is passed down with the level-0 blocks it will need.  lower is
 * not owned. */
int source_new_verity(struct source *lower, const struct verity_params *params,
		      struct source **out, struct abota_error *err);

#endif
