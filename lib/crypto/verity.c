/* verity.c - dm-verity (format 1, sha256, 4 KiB blocks, no superblock). */
#include "abota/verity.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "abota/checked_source.h"
#include "abota/fileio.h"

#define DIGESTS_PER_BLOCK (VERITY_BLOCK_SIZE / VERITY_DIGEST_LEN) /* 128 */
#define MAX_LEVELS 10 /* 128^10 blocks is far beyond any uint64 size */

struct tree_shape {
	unsigned levels;
	uint64_t blocks[MAX_LEVELS]; /* hash blocks per level, level 0 = lowest */
	uint64_t offset[MAX_LEVELS]; /* byte offset of each level inside the tree */
	uint64_t total;              /* tree size in bytes */
};

static int tree_shape(uint64_t data_size, struct tree_shape *s)
{
	if (data_size % VERITY_BLOCK_SIZE != 0 || data_size <= VERITY_BLOCK_SIZE)
		return -EINVAL;
	uint64_t n = data_size / VERITY_BLOCK_SIZE;
	memset(s, 0, sizeof(*s));
	/* Levels: smallest L with (n-1) >> (7*L) == 0, as veritysetup does. */
	while (((n - 1) >> (7 * s->levels)) != 0) {
		if (s->levels == MAX_LEVELS)
			return -EINVAL;
		s->levels++;
	}
	uint64_t count = n;
	for (unsigned i = 0; i < s->levels; i++) {
		count = (count + DIGESTS_PER_BLOCK - 1) / DIGESTS_PER_BLOCK;
		s->blocks[i] = count;
	}
	/* Top level first on disk, level 0 last. */
	uint64_t off = 0;
	for (unsigned i = s->levels; i-- > 0;) {
		s->offset[i] = off;
		off += s->blocks[i] * VERITY_BLOCK_SIZE;
	}
	s->total = off;
	return 0;
}

/* The hash tree is held in memory whole: on a 32-bit target a tree of 4 GiB or more (about
 * 500 GiB of data) cannot be, and its size must fail here instead of being truncated into a
 * size_t (a short buffer the tree levels would then overrun).  Every level lies inside the
 * tree, so its size fits as well once this succeeds.  (A valid shape is never empty; the
 * zero check states that for the analyzer, which does not follow tree_shape's loops.) */
static int tree_mem_size(const struct tree_shape *s, size_t *len)
{
	if (s->total == 0 || (uint64_t)(size_t)s->total != s->total)
		return -EFBIG;
	*len = (size_t)s->total;
	return 0;
}

uint64_t verity_tree_size(uint64_t data_size)
{
	struct tree_shape s;
	return tree_shape(data_size, &s) < 0 ? 0 : s.total;
}

struct hasher {
	EVP_MD_CTX *salted; /* has absorbed the salt: copied for each block */
	EVP_MD_CTX *work;
};

static int hasher_init(struct hasher *h, const uint8_t salt[VERITY_SALT_LEN])
{
	h->salted = EVP_MD_CTX_new();
	h->work = EVP_MD_CTX_new();
	if (!h->salted || !h->work || EVP_DigestInit_ex(h->salted, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(h->salted, salt, VERITY_SALT_LEN) != 1)
		return -ENOMEM;
	return 0;
}

static void hasher_free(struct hasher *h)
{
	EVP_MD_CTX_free(h->salted);
	EVP_MD_CTX_free(h->work);
}

/* digest = SHA256(salt || block) (format 1 prepends the salt). */
static int hasher_block(struct hasher *h, const uint8_t *block, uint8_t *digest)
{
	if (EVP_MD_CTX_copy_ex(h->work, h->salted) != 1 ||
	    EVP_DigestUpdate(h->work, block, VERITY_BLOCK_SIZE) != 1 ||
	    EVP_DigestFinal_ex(h->work, digest, NULL) != 1)
		return -EIO;
	return 0;
}

/* Fills the levels above 0 and the root, given level 0 in tree. */
static int build_upper(struct hasher *h, const struct tree_shape *s, uint8_t *tree,
		       uint8_t root[VERITY_DIGEST_LEN])
{
	for (unsigned lvl = 0; lvl + 1 < s->levels; lvl++) {
		uint8_t *src = tree + s->offset[lvl];
		uint8_t *dst = tree + s->offset[lvl + 1];
		for (uint64_t b = 0; b < s->blocks[lvl]; b++)
			if (hasher_block(h, src + b * VERITY_BLOCK_SIZE, dst + b * VERITY_DIGEST_LEN) < 0)
				return -EIO;
	}
	return hasher_block(h, tree + s->offset[s->levels - 1], root);
}

int verity_compute(const void *data, uint64_t data_size, const uint8_t salt[VERITY_SALT_LEN],
		   uint8_t *tree, uint8_t root[VERITY_DIGEST_LEN], struct abota_error *err)
{
	struct tree_shape s;
	if (tree_shape(data_size, &s) < 0)
		return abota_error_set(err, -EINVAL,
				       "verity: data size %llu must be a multiple of 4096 and larger than 4096",
				       (unsigned long long)data_size);
	size_t tree_len;
	if (tree_mem_size(&s, &tree_len) < 0)
		return abota_error_set(err, -EFBIG, "verity: hash tree of %llu bytes does not fit in memory",
				       (unsigned long long)s.total);
	struct hasher h;
	int ret = hasher_init(&h, salt);
	if (ret < 0)
		goto out;
	memset(tree, 0, tree_len);
	const uint8_t *d = data;
	uint8_t *l0 = tree + s.offset[0];
	for (uint64_t i = 0; i < data_size / VERITY_BLOCK_SIZE; i++) {
		ret = hasher_block(&h, d + i * VERITY_BLOCK_SIZE, l0 + i * VERITY_DIGEST_LEN);
		if (ret < 0)
			goto out;
	}
	ret = build_upper(&h, &s, tree, root);
out:
	hasher_free(&h);
	if (ret < 0)
		return abota_error_set(err, ret, "verity: hashing failed");
	return 0;
}

int verity_create(int fd, struct verity_params *params, struct abota_error *err)
{
	struct tree_shape s;
	if (tree_shape(params->data_size, &s) < 0)
		return abota_error_set(err, -EINVAL,
				       "verity: data size %llu must be a multiple of 4096 and larger than 4096",
				       (unsigned long long)params->data_size);
	size_t tree_len;
	if (tree_mem_size(&s, &tree_len) < 0)
		return abota_error_set(err, -EFBIG, "verity: hash tree of %llu bytes does not fit in memory",
				       (unsigned long long)s.total);
	const size_t chunk = 1u << 20;
	uint8_t *buf = fileio_buffer_alloc(chunk);
	uint8_t *tree = calloc(1, tree_len);
	struct hasher h;
	int ret = hasher_init(&h, params->salt);
	if (!buf || !tree || ret < 0) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	uint8_t *l0 = tree + s.offset[0];
	uint64_t block = 0;
	for (uint64_t off = 0; off < params->data_size; off += chunk) {
		size_t n = params->data_size - off < chunk ? (size_t)(params->data_size - off) : chunk;
		ret = fileio_pread_full(fd, buf, n, off, err);
		if (ret < 0) {
			abota_error_prefix(err, "verity");
			goto out;
		}
		for (size_t i = 0; i < n; i += VERITY_BLOCK_SIZE, block++) {
			if (hasher_block(&h, buf + i, l0 + block * VERITY_DIGEST_LEN) < 0) {
				ret = abota_error_set(err, -EIO, "verity: hashing failed");
				goto out;
			}
		}
	}
	uint8_t root[VERITY_DIGEST_LEN];
	if (build_upper(&h, &s, tree, root) < 0) {
		ret = abota_error_set(err, -EIO, "verity: hashing failed");
		goto out;
	}
	ret = fileio_pwrite_full(fd, tree, tree_len, params->data_size, err);
	if (ret < 0) {
		abota_error_prefix(err, "verity: writing hash tree");
		goto out;
	}
	memcpy(params->root, root, sizeof(root));
	params->hash_size = s.total;
out:
	hasher_free(&h);
	free(buf);
	free(tree);
	return ret;
}

/* --- verified view --- */

struct verity_ctx {
	struct hasher h;
	uint8_t *tree;
	const uint8_t *level0;
	uint64_t n_data_blocks;
	char *name;
};

static void verity_ctx_free(void *p)
{
	struct verity_ctx *vc = p;
	if (!vc)
		return;
	hasher_free(&vc->h);
	free(vc->tree);
	free(vc->name);
	free(vc);
}

static int verity_verify_block(void *p, uint64_t idx, const uint8_t *data, size_t len,
			       struct abota_error *err)
{
	struct verity_ctx *vc = p;
	uint8_t md[VERITY_DIGEST_LEN];
	/* A private work context per call: reads may come from several threads. */
	struct hasher h = { .salted = vc->h.salted, .work = EVP_MD_CTX_new() };
	int hret = h.work ? hasher_block(&h, data, md) : -ENOMEM;
	EVP_MD_CTX_free(h.work);
	if (len != VERITY_BLOCK_SIZE || idx >= vc->n_data_blocks || hret < 0)
		return abota_error_set(err, -EIO, "%s: cannot verify block %llu", vc->name,
				       (unsigned long long)idx);
	if (CRYPTO_memcmp(md, vc->level0 + idx * VERITY_DIGEST_LEN, VERITY_DIGEST_LEN) != 0)
		return abota_error_set(err, -EBADMSG,
				       "bundle payload is corrupted (verity check failed for block %llu)",
				       (unsigned long long)idx);
	return 0;
}

int source_new_verity(struct source *lower, const struct verity_params *params,
		      struct source **out, struct abota_error *err)
{
	struct tree_shape s;
	if (tree_shape(params->data_size, &s) < 0)
		return abota_error_set(err, -EINVAL,
				       "%s: verity data size %llu must be a multiple of 4096 and larger than 4096",
				       lower->name, (unsigned long long)params->data_size);
	if (params->hash_size != s.total)
		return abota_error_set(err, -EINVAL,
				       "%s: verity-size %llu does not match the %llu bytes of hash tree that %llu bytes of data need",
				       lower->name, (unsigned long long)params->hash_size,
				       (unsigned long long)s.total,
				       (unsigned long long)params->data_size);
	if (params->data_size > lower->size || params->hash_size > lower->size - params->data_size)
		return abota_error_set(err, -EINVAL, "%s: verity data and hash tree exceed the bundle",
				       lower->name);
	size_t tree_len;
	if (tree_mem_size(&s, &tree_len) < 0)
		return abota_error_set(err, -EFBIG,
				       "%s: verity hash tree of %llu bytes does not fit in memory",
				       lower->name, (unsigned long long)s.total);
	int ret = 0;
	uint8_t *computed = NULL;
	struct verity_ctx *vc = calloc(1, sizeof(*vc));
	if (!vc)
		return abota_error_set(err, -ENOMEM, "out of memory");
	vc->name = strdup(lower->name);
	vc->tree = malloc(tree_len);
	computed = malloc(tree_len);
	if (!vc->name || !vc->tree || !computed || hasher_init(&vc->h, params->salt) < 0) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	ret = source_read_at(lower, vc->tree, tree_len, params->data_size, err);
	if (ret < 0)
		goto out;
	/* Rebuild every level above 0 from the stored level 0 and require the
	 * stored tree to be identical, padding included; then check the root. */
	memcpy(computed, vc->tree, tree_len);
	uint8_t root[VERITY_DIGEST_LEN];
	for (unsigned lvl = 1; lvl < s.levels; lvl++)
		memset(computed + s.offset[lvl], 0, (size_t)(s.blocks[lvl] * VERITY_BLOCK_SIZE));
	if (build_upper(&vc->h, &s, computed, root) < 0) {
		ret = abota_error_set(err, -EIO, "verity: hashing failed");
		goto out;
	}
	if (CRYPTO_memcmp(root, params->root, VERITY_DIGEST_LEN) != 0 ||
	    CRYPTO_memcmp(computed, vc->tree, tree_len) != 0) {
		ret = abota_error_set(err, -EBADMSG,
				      "%s: bundle payload is corrupted (verity hash tree does not match the signed root hash)",
				      lower->name);
		goto out;
	}
	vc->level0 = vc->tree + s.offset[0];
	vc->n_data_blocks = params->data_size / VERITY_BLOCK_SIZE;
	ret = source_new_checked(lower, params->data_size, VERITY_BLOCK_SIZE, verity_verify_block, vc,
				 verity_ctx_free, out, err);
	vc = NULL; /* owned by the checked source now, also on failure */
out:
	free(computed);
	verity_ctx_free(vc);
	return ret;
}
