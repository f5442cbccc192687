/* verity.c - dm-verity (format 1, sha256, 4 KiB blocks, no superblock). */
#include "abota/verity.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
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

/* Level 0 of the tree (1/128 of the data: 1.1 MiB for a 140 MiB bundle, 32 MiB for a 4 GiB
 * one) is not held in memory.  Its blocks are read when the data they cover is, and each is
 * checked against level 1, which (1/16384 of the data) is read and checked against the signed
 * root when the view is made -- as dm-verity does in the kernel.  A miss reads L0_BATCH
 * blocks at once: 64 KiB, what an HTTP source fetches for an unplanned read anyway, covering
 * 8 MiB of data; L0_SLOTS keeps two batches, as the two decompression workers read
 * neighbouring data. */
#define L0_BATCH 16u
#define L0_SLOTS 32u

struct verity_ctx {
	struct hasher h;  /* h.work only under lock; h.salted is only read */
	struct source *lower;
	uint64_t l0_off;  /* where level 0 starts in lower */
	uint64_t n0;      /* level-0 blocks */
	uint64_t n_data_blocks;
	uint8_t *upper;   /* levels 1.. as stored, verified; NULL when level 0 is the top */
	const uint8_t *l1; /* the digest of each level-0 block: level 1, or the root */
	uint8_t root[VERITY_DIGEST_LEN];
	pthread_mutex_t lock; /* the slots and the plan */
	bool lock_ready;
	uint64_t slot_idx[L0_SLOTS]; /* level-0 block in each slot, UINT64_MAX: none */
	uint8_t *slots;    /* L0_SLOTS verified level-0 blocks; block j lives in slot j % L0_SLOTS */
	struct source_range *plan; /* planned runs of level-0 blocks (block numbers) */
	size_t plan_n;
	char *name;
};

static void verity_ctx_free(void *p)
{
	struct verity_ctx *vc = p;
	if (!vc)
		return;
	hasher_free(&vc->h);
	if (vc->lock_ready)
		pthread_mutex_destroy(&vc->lock);
	free(vc->upper);
	free(vc->slots);
	free(vc->plan);
	free(vc->name);
	free(vc);
}

/* The planned run of level-0 blocks holding j, as [*a, *b); false if none. */
static bool plan_run(const struct verity_ctx *vc, uint64_t j, uint64_t *a, uint64_t *b)
{
	for (size_t i = 0; i < vc->plan_n; i++) {
		if (j >= vc->plan[i].off && j < vc->plan[i].off + vc->plan[i].len) {
			*a = vc->plan[i].off;
			*b = vc->plan[i].off + vc->plan[i].len;
			return true;
		}
	}
	return false;
}

/* Checks the level-0 block in slot `slot` as block j: its digest is level 1's entry j, and
 * the last block's unused entries are zero, as veritysetup writes them (the old whole-tree
 * check compared the stored tree with a rebuilt one, padding included). */
static bool l0_block_ok(struct verity_ctx *vc, uint64_t j, const uint8_t *blk)
{
	uint8_t md[VERITY_DIGEST_LEN];
	if (hasher_block(&vc->h, blk, md) < 0 ||
	    CRYPTO_memcmp(md, vc->l1 + j * VERITY_DIGEST_LEN, VERITY_DIGEST_LEN) != 0)
		return false;
	uint64_t used = vc->n_data_blocks - j * DIGESTS_PER_BLOCK;
	for (uint64_t k = used * VERITY_DIGEST_LEN; used < DIGESTS_PER_BLOCK && k < VERITY_BLOCK_SIZE;
	     k++)
		if (blk[k] != 0)
			return false;
	return true;
}

/* The verified level-0 block j, read (with its batch) if no slot holds it.  Under lock. */
static int l0_block(struct verity_ctx *vc, uint64_t j, const uint8_t **blk,
		    struct abota_error *err)
{
	unsigned slot = (unsigned)(j % L0_SLOTS);
	if (vc->slot_idx[slot] != j) {
		/* The aligned batch holding j, within j's planned run: an HTTP source fetches
		 * nothing beyond a plan.  Aligned, so its blocks occupy consecutive slots. */
		uint64_t a = j / L0_BATCH * L0_BATCH;
		uint64_t b = a + L0_BATCH < vc->n0 ? a + L0_BATCH : vc->n0;
		uint64_t pa, pb;
		if (plan_run(vc, j, &pa, &pb)) {
			a = a > pa ? a : pa;
			b = b < pb ? b : pb;
		}
		uint8_t *dst = vc->slots + (size_t)(a % L0_SLOTS) * VERITY_BLOCK_SIZE;
		for (uint64_t k = a; k < b; k++)
			vc->slot_idx[k % L0_SLOTS] = UINT64_MAX;
		int ret = source_read_at(vc->lower, dst, (size_t)(b - a) * VERITY_BLOCK_SIZE,
					 vc->l0_off + a * VERITY_BLOCK_SIZE, err);
		if (ret < 0)
			return ret;
		for (uint64_t k = a; k < b; k++)
			if (l0_block_ok(vc, k, dst + (size_t)(k - a) * VERITY_BLOCK_SIZE))
				vc->slot_idx[k % L0_SLOTS] = k;
		if (vc->slot_idx[slot] != j)
			return abota_error_set(err, -EBADMSG,
					       "%s: bundle payload is corrupted (verity hash block %llu does not match the signed tree)",
					       vc->name, (unsigned long long)j);
	}
	*blk = vc->slots + (size_t)slot * VERITY_BLOCK_SIZE;
	return 0;
}

static int verity_verify_block(void *p, uint64_t idx, const uint8_t *data, size_t len,
			       struct abota_error *err)
{
	struct verity_ctx *vc = p;
	uint8_t md[VERITY_DIGEST_LEN];
	/* The data block is hashed outside the lock, with a work context of its own: the
	 * two workers verify at the same time. */
	struct hasher h = { .salted = vc->h.salted, .work = EVP_MD_CTX_new() };
	int hret = h.work ? hasher_block(&h, data, md) : -ENOMEM;
	EVP_MD_CTX_free(h.work);
	if (len != VERITY_BLOCK_SIZE || idx >= vc->n_data_blocks || hret < 0)
		return abota_error_set(err, -EIO, "%s: cannot verify block %llu", vc->name,
				       (unsigned long long)idx);
	pthread_mutex_lock(&vc->lock);
	const uint8_t *blk = NULL;
	int ret = l0_block(vc, idx / DIGESTS_PER_BLOCK, &blk, err);
	if (ret == 0 && CRYPTO_memcmp(md, blk + (idx % DIGESTS_PER_BLOCK) * VERITY_DIGEST_LEN,
				      VERITY_DIGEST_LEN) != 0)
		ret = abota_error_set(err, -EBADMSG,
				      "bundle payload is corrupted (verity check failed for block %llu)",
				      (unsigned long long)idx);
	pthread_mutex_unlock(&vc->lock);
	return ret;
}

/* The plan for lower: the data blocks, then the level-0 blocks that cover them (the tree
 * lies after the data, so the list stays sorted).  The runs are kept to bound batch reads. */
static void verity_plan(void *p, struct source *lower, const struct source_range *r, size_t n)
{
	struct verity_ctx *vc = p;
	struct source_range *all = malloc((2 * n + 1) * sizeof(*all));
	struct source_range *runs = malloc((n + 1) * sizeof(*runs));
	size_t k = 0;
	for (size_t i = 0; all && runs && i < n; i++) {
		if (r[i].len == 0)
			continue;
		uint64_t a = r[i].off / VERITY_BLOCK_SIZE / DIGESTS_PER_BLOCK;
		uint64_t b = (r[i].off + r[i].len - 1) / VERITY_BLOCK_SIZE / DIGESTS_PER_BLOCK + 1;
		if (k > 0 && a <= runs[k - 1].off + runs[k - 1].len) {
			if (b > runs[k - 1].off + runs[k - 1].len)
				runs[k - 1].len = b - runs[k - 1].off;
		} else {
			runs[k++] = (struct source_range){ .off = a, .len = b - a };
		}
	}
	if (!all || !runs) {
		/* a hint only: the data as planned, batches unbounded */
		free(all);
		free(runs);
		runs = NULL;
		k = 0;
		source_plan(lower, r, n);
	} else {
		if (n) /* an empty plan (r may be NULL) clears the lower one's */
			memcpy(all, r, n * sizeof(*r));
		for (size_t i = 0; i < k; i++)
			all[n + i] = (struct source_range){
				.off = vc->l0_off + runs[i].off * VERITY_BLOCK_SIZE,
				.len = runs[i].len * VERITY_BLOCK_SIZE };
		source_plan(lower, all, n + k);
		free(all);
	}
	pthread_mutex_lock(&vc->lock);
	free(vc->plan);
	vc->plan = runs;
	vc->plan_n = k;
	pthread_mutex_unlock(&vc->lock);
}

/* Reads levels 1.. and checks them against the root: rebuilt from level 1 (padding
 * included), and level 1's unused entries zero. */
static int load_upper(struct verity_ctx *vc, const struct tree_shape *s,
		      const struct verity_params *params, struct abota_error *err)
{
	size_t len = (size_t)s->offset[0]; /* checked to fit by the caller */
	uint8_t *computed = malloc(len);
	vc->upper = malloc(len);
	if (!computed || !vc->upper) {
		free(computed);
		return abota_error_set(err, -ENOMEM, "out of memory");
	}
	int ret = source_read_at(vc->lower, vc->upper, len, params->data_size, err);
	if (ret < 0)
		goto out;
	/* The same tree without level 0: level 1 is its bottom. */
	struct tree_shape up = { .levels = s->levels - 1, .total = len };
	for (unsigned i = 0; i < up.levels; i++) {
		up.blocks[i] = s->blocks[i + 1];
		up.offset[i] = s->offset[i + 1];
	}
	memcpy(computed, vc->upper, len);
	for (unsigned lvl = 1; lvl < up.levels; lvl++)
		memset(computed + up.offset[lvl], 0, (size_t)(up.blocks[lvl] * VERITY_BLOCK_SIZE));
	uint8_t root[VERITY_DIGEST_LEN];
	if (build_upper(&vc->h, &up, computed, root) < 0) {
		ret = abota_error_set(err, -EIO, "verity: hashing failed");
		goto out;
	}
	const uint8_t *l1 = vc->upper + s->offset[1];
	bool padding_zero = true;
	for (uint64_t k = vc->n0 * VERITY_DIGEST_LEN; k < s->blocks[1] * VERITY_BLOCK_SIZE; k++)
		padding_zero &= l1[k] == 0;
	if (CRYPTO_memcmp(root, params->root, VERITY_DIGEST_LEN) != 0 ||
	    CRYPTO_memcmp(computed, vc->upper, len) != 0 || !padding_zero) {
		ret = abota_error_set(err, -EBADMSG,
				      "%s: bundle payload is corrupted (verity hash tree does not match the signed root hash)",
				      vc->name);
		goto out;
	}
	vc->l1 = l1;
out:
	free(computed);
	return ret;
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
	/* Levels 1.. are held (1/16384 of the data): on a 32-bit target their size must fit
	 * a size_t (it does for any data below 64 TiB). */
	if ((uint64_t)(size_t)s.offset[0] != s.offset[0])
		return abota_error_set(err, -EFBIG,
				       "%s: verity hash tree of %llu bytes does not fit in memory",
				       lower->name, (unsigned long long)s.total);
	int ret = 0;
	struct verity_ctx *vc = calloc(1, sizeof(*vc));
	if (!vc)
		return abota_error_set(err, -ENOMEM, "out of memory");
	vc->lower = lower;
	vc->l0_off = params->data_size + s.offset[0];
	vc->n0 = s.blocks[0];
	vc->n_data_blocks = params->data_size / VERITY_BLOCK_SIZE;
	memcpy(vc->root, params->root, VERITY_DIGEST_LEN);
	for (unsigned i = 0; i < L0_SLOTS; i++)
		vc->slot_idx[i] = UINT64_MAX;
	vc->name = strdup(lower->name);
	vc->slots = malloc((size_t)L0_SLOTS * VERITY_BLOCK_SIZE);
	if (!vc->name || !vc->slots || hasher_init(&vc->h, params->salt) < 0 ||
	    pthread_mutex_init(&vc->lock, NULL) != 0) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	vc->lock_ready = true;
	if (s.levels > 1) {
		ret = load_upper(vc, &s, params, err);
	} else {
		/* Level 0 is the top: its one block is checked against the root now. */
		vc->l1 = vc->root;
		const uint8_t *blk;
		ret = l0_block(vc, 0, &blk, err);
		if (ret == -EBADMSG)
			ret = abota_error_set(err, -EBADMSG,
					      "%s: bundle payload is corrupted (verity hash tree does not match the signed root hash)",
					      vc->name);
	}
	if (ret < 0)
		goto out;
	ret = source_new_checked(lower, params->data_size, VERITY_BLOCK_SIZE, verity_verify_block,
				 verity_plan, vc, verity_ctx_free, out, err);
	vc = NULL; /* owned by the checked source now, also on failure */
out:
	verity_ctx_free(vc);
	return ret;
}
