/* adaptive.c - local block reuse for adaptive updates (adaptive.h). */
#include "abota/adaptive.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "abota/adaptive_cache.h"
#include "abota/fileio.h"
#include "abota/log.h"

#define HASH_LEN 32u
#define SCAN_BUF (1u << 20)
#define NO_ENTRY UINT32_MAX
#define MAX_SRCS 8u
#define SRC_BITS 3u /* MAX_SRCS */
#define MAX_BLOCKS (1u << (32 - SRC_BITS)) /* per source: 2 TiB */

/* Open addressing on the first 8 bytes of a block's SHA-256: the table
 * slot comes from them, and an entry keeps 32 more of their bits to tell
 * keys apart.  A candidate is re-hashed when it is read, so a match of
 * those bits alone only costs a fallback read from the bundle (one in 2^32
 * per entry compared).  8 bytes an entry, where the whole key and a 64-bit
 * position took 16: the table of two 600 MiB slots is 2-4 MiB, not 8. */
struct entry {
	uint32_t check; /* key >> 32 */
	uint32_t where; /* block number << SRC_BITS | source; NO_ENTRY = empty */
};

struct adaptive {
	const uint8_t *index;
	size_t hlen; /* bytes per index entry: 32 or 8 */
	uint64_t nblocks;
	struct adaptive_src src[MAX_SRCS];
	size_t n_src;
	struct entry *table;
	uint64_t mask;
	uint8_t zero_hash[HASH_LEN];
	adaptive_fetch_fn fetch;
	void *fetch_ctx;
	uint8_t *blk;
	struct adaptive_stats st;
	uint64_t *keys[MAX_SRCS]; /* of the sources read (0 = all-zero block), else NULL */
	uint64_t nkeys[MAX_SRCS];
	uint8_t *in_place; /* bit per block: filled from the target at its own position */
};

static uint64_t key_of(const uint8_t *h)
{
	uint64_t k;
	memcpy(&k, h, sizeof(k));
	return k;
}

static uint64_t slot_of(uint64_t key, uint64_t mask)
{
	/* the hash is uniform already; mix a little for short tables */
	return (key ^ (key >> 29)) & mask;
}

/* Adds a block; per source one entry per hash: the first position for a
 * seed slot, the last one for the target (only positions not yet
 * overwritten are usable, so the highest is the best bet). */
static void insert(struct adaptive *a, uint64_t key, uint64_t block, unsigned src)
{
	uint32_t check = (uint32_t)(key >> 32);
	uint32_t where = (uint32_t)block << SRC_BITS | src; /* block < MAX_BLOCKS */
	for (uint64_t i = slot_of(key, a->mask);; i = (i + 1) & a->mask) {
		struct entry *e = &a->table[i];
		if (e->where == NO_ENTRY) {
			e->check = check;
			e->where = where;
			return;
		}
		if (e->check == check && (e->where & (MAX_SRCS - 1)) == src) {
			if (a->src[src].is_target)
				e->where = where;
			return;
		}
	}
}

/* A source holding the block with hash h, usable for image offset off;
 * false if none.  The target holding it at off itself wins (the block is in
 * place: the writer need not write it), then a seed slot, then the target
 * elsewhere. */
static bool lookup(const struct adaptive *a, const uint8_t *h, uint64_t off, unsigned *src,
		   uint64_t *pos)
{
	uint64_t key = key_of(h);
	uint32_t check = (uint32_t)(key >> 32);
	int best = -1;
	for (uint64_t i = slot_of(key, a->mask);; i = (i + 1) & a->mask) {
		const struct entry *e = &a->table[i];
		if (e->where == NO_ENTRY)
			break;
		if (e->check != check)
			continue;
		unsigned s = e->where & (MAX_SRCS - 1);
		uint64_t p = (uint64_t)(e->where >> SRC_BITS) * ADAPTIVE_BLOCK;
		if (a->src[s].is_target && p < off)
			continue; /* overwritten by now */
		int rank = !a->src[s].is_target ? 1 : p == off ? 2 : 0;
		if (rank > best) {
			*src = s;
			*pos = p;
			best = rank;
		}
	}
	return best >= 0;
}

/* --- indexing the sources --- */

struct scan {
	const struct adaptive_src *src;
	uint64_t nblocks;
	uint64_t *keys; /* 0 = all-zero block (not indexed) */
	const uint8_t *zero_hash;
	bool known;     /* keys came from src->hashes */
	bool stale;     /* src->hashes failed the sample */
	int ret;
	struct abota_error err;
};

/* h = SHA-256 of one 4 KiB block, with a reused context. */
static bool block_sha256(EVP_MD_CTX *md, const uint8_t *block, uint8_t h[HASH_LEN])
{
	unsigned len = 0;
	return EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	       EVP_DigestUpdate(md, block, ADAPTIVE_BLOCK) == 1 && EVP_DigestFinal_ex(md, h, &len) == 1;
}

/* Keys from hashes given for the source, if ADAPTIVE_SAMPLE blocks spread over them (the
 * first and the last included) hold what they say: a slot reflashed, wiped or changed behind
 * abota's back fails this and is read instead -- a stale index would cost a download of each
 * block it gets wrong. */
static bool known_keys(struct scan *sc, EVP_MD_CTX *md, uint8_t *buf)
{
	const struct adaptive_src *src = sc->src;
	unsigned hl = src->hashes_len;
	/* (the slot beyond the image the hashes describe is not indexed then) */
	uint64_t n = src->n_hashes < sc->nblocks ? src->n_hashes : sc->nblocks;
	if (!src->hashes || (hl != 8 && hl != HASH_LEN) || n == 0)
		return false;
	for (uint64_t i = 0; i < ADAPTIVE_SAMPLE; i++) {
		uint64_t b = n == 1 ? 0 : i * (n - 1) / (ADAPTIVE_SAMPLE - 1);
		uint8_t h[HASH_LEN];
		if (fileio_pread_full(src->fd, buf, ADAPTIVE_BLOCK, src->base + b * ADAPTIVE_BLOCK,
				      NULL) < 0 ||
		    !block_sha256(md, buf, h) || memcmp(h, src->hashes + b * hl, hl) != 0) {
			sc->stale = true;
			return false;
		}
	}
	sc->nblocks = n;
	for (uint64_t b = 0; b < n; b++) {
		const uint8_t *h = src->hashes + b * hl;
		sc->keys[b] = memcmp(h, sc->zero_hash, hl) == 0 ? 0 : key_of(h);
	}
	sc->known = true;
	return true;
}

static void *scan_main(void *p)
{
	struct scan *sc = p;
	uint8_t *buf = fileio_buffer_alloc(SCAN_BUF);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!buf || !md) {
		sc->ret = abota_error_set(&sc->err, -ENOMEM, "out of memory");
		goto out;
	}
	if (known_keys(sc, md, buf))
		goto out;
	const uint64_t per = SCAN_BUF / ADAPTIVE_BLOCK;
	for (uint64_t b = 0; b < sc->nblocks && sc->ret == 0; b += per) {
		uint64_t n = sc->nblocks - b < per ? sc->nblocks - b : per;
		sc->ret = fileio_pread_full(sc->src->fd, buf, (size_t)(n * ADAPTIVE_BLOCK),
					    sc->src->base + b * ADAPTIVE_BLOCK, &sc->err);
		for (uint64_t i = 0; i < n && sc->ret == 0; i++) {
			uint8_t h[HASH_LEN];
			if (!block_sha256(md, buf + i * ADAPTIVE_BLOCK, h)) {
				sc->ret = abota_error_set(&sc->err, -EIO, "hashing failed");
				break;
			}
			sc->keys[b + i] = memcmp(h, sc->zero_hash, HASH_LEN) == 0 ? 0 : key_of(h);
		}
	}
	if (sc->ret < 0)
		abota_error_prefix(&sc->err, "indexing slot %s", sc->src->name);
out:
	EVP_MD_CTX_free(md);
	free(buf);
	return NULL;
}

int adaptive_new(const uint8_t *index, size_t index_len, unsigned hash_len, uint64_t image_size,
		 const struct adaptive_src *srcs, size_t n_srcs, adaptive_fetch_fn fetch,
		 void *fetch_ctx, struct adaptive **out, struct abota_error *err)
{
	if (hash_len != 8 && hash_len != HASH_LEN)
		return abota_error_set(err, -EINVAL, "block index: %u-byte hashes", hash_len);
	if (image_size == 0 || image_size % ADAPTIVE_BLOCK != 0 ||
	    image_size / ADAPTIVE_BLOCK > SIZE_MAX / HASH_LEN ||
	    index_len != image_size / ADAPTIVE_BLOCK * hash_len)
		return abota_error_set(err, -EINVAL,
				       "block-hash-index: %zu bytes do not describe an image of %llu bytes",
				       index_len, (unsigned long long)image_size);
	if (n_srcs > MAX_SRCS)
		return abota_error_set(err, -EINVAL, "too many adaptive sources");
	struct adaptive *a = calloc(1, sizeof(*a));
	struct scan sc[MAX_SRCS];
	pthread_t th[MAX_SRCS];
	bool started[MAX_SRCS] = { false };
	int ret = 0;
	memset(sc, 0, sizeof(sc));
	if (!a || !(a->blk = malloc(ADAPTIVE_BLOCK)) ||
	    !(a->in_place = calloc((size_t)(image_size / ADAPTIVE_BLOCK / 8 + 1), 1)))
		goto oom;
	a->index = index;
	a->hlen = hash_len;
	a->nblocks = image_size / ADAPTIVE_BLOCK;
	a->st.blocks = a->nblocks;
	a->fetch = fetch;
	a->fetch_ctx = fetch_ctx;
	if (n_srcs)
		memcpy(a->src, srcs, n_srcs * sizeof(*srcs));
	a->n_src = n_srcs;
	uint8_t zero[ADAPTIVE_BLOCK] = { 0 };
	unsigned zl = 0;
	if (EVP_Digest(zero, sizeof(zero), a->zero_hash, &zl, EVP_sha256(), NULL) != 1) {
		ret = abota_error_set(err, -EIO, "hashing failed");
		goto fail;
	}
	/* Hash every source on its own thread (two cores: active and target
	 * slot at once). */
	uint64_t total = 0;
	for (size_t s = 0; s < n_srcs; s++) {
		sc[s].src = &a->src[s];
		sc[s].nblocks = srcs[s].size / ADAPTIVE_BLOCK;
		sc[s].zero_hash = a->zero_hash;
		if (sc[s].nblocks >= MAX_BLOCKS) { /* the last would read as NO_ENTRY */
			ret = abota_error_set(err, -EFBIG, "adaptive: slot %s is larger than 2 TiB",
					      srcs[s].name);
			goto fail;
		}
		if (sc[s].nblocks > SIZE_MAX / sizeof(uint64_t) ||
		    (sc[s].nblocks &&
		     !(sc[s].keys = malloc((size_t)sc[s].nblocks * sizeof(uint64_t)))))
			goto oom;
	}
	for (size_t s = 0; s < n_srcs; s++)
		started[s] = pthread_create(&th[s], NULL, scan_main, &sc[s]) == 0;
	for (size_t s = 0; s < n_srcs; s++) {
		if (started[s])
			pthread_join(th[s], NULL);
		else
			scan_main(&sc[s]);
	}
	for (size_t s = 0; s < n_srcs; s++) {
		if (sc[s].ret < 0) {
			ret = sc[s].ret;
			if (err)
				*err = sc[s].err;
			goto fail;
		}
	}
	/* sized for the blocks to insert: all-zero ones are not */
	for (size_t s = 0; s < n_srcs; s++)
		for (uint64_t b = 0; b < sc[s].nblocks; b++)
			total += sc[s].keys[b] != 0;
	uint64_t cap = 64;
	while (cap < total + total / 2 + 1)
		cap *= 2;
	if (cap > SIZE_MAX / sizeof(*a->table) ||
	    !(a->table = malloc((size_t)cap * sizeof(*a->table))))
		goto oom;
	for (uint64_t i = 0; i < cap; i++)
		a->table[i].where = NO_ENTRY;
	a->mask = cap - 1;
	for (size_t s = 0; s < n_srcs; s++)
		for (uint64_t b = 0; b < sc[s].nblocks; b++)
			if (sc[s].keys[b])
				insert(a, sc[s].keys[b], b, (unsigned)s);
	for (size_t s = 0; s < n_srcs; s++) {
		a->st.srcs_known += sc[s].known;
		a->st.srcs_read += !sc[s].known;
		a->st.srcs_known_stale += sc[s].stale;
		if (sc[s].stale)
			log_info("adaptive: the kept block index of slot %s does not match what it holds: read it instead",
				 sc[s].src->name);
		if (sc[s].known) {
			free(sc[s].keys);
		} else {
			a->keys[s] = sc[s].keys; /* for adaptive_src_index() */
			a->nkeys[s] = sc[s].nblocks;
		}
		sc[s].keys = NULL;
	}
	*out = a;
	return 0;
oom:
	ret = abota_error_set(err, -ENOMEM, "out of memory");
fail:
	for (size_t s = 0; s < n_srcs && s < MAX_SRCS; s++)
		free(sc[s].keys);
	adaptive_free(a);
	return ret;
}

bool adaptive_want(void *p, uint64_t off, size_t len)
{
	struct adaptive *a = p;
	for (uint64_t b = off / ADAPTIVE_BLOCK; b * ADAPTIVE_BLOCK < off + len && b < a->nblocks;
	     b++) {
		const uint8_t *h = a->index + b * a->hlen;
		unsigned s = 0;
		uint64_t pos = 0;
		if (memcmp(h, a->zero_hash, a->hlen) == 0 ||
		    lookup(a, h, b * ADAPTIVE_BLOCK, &s, &pos))
			continue;
		a->st.wanted_bytes += len;
		return true;
	}
	return false;
}

/* One 4 KiB block of the image from a local copy (re-hashed), or from the
 * bundle if the copy is stale. */
static int fill_block(struct adaptive *a, uint64_t b, uint8_t *dst, struct abota_error *err)
{
	const uint8_t *h = a->index + b * a->hlen;
	uint64_t off = b * ADAPTIVE_BLOCK;
	unsigned s = 0;
	uint64_t pos = 0;
	if (memcmp(h, a->zero_hash, a->hlen) == 0) {
		memset(dst, 0, ADAPTIVE_BLOCK);
		a->st.zero++;
		return 0;
	}
	if (lookup(a, h, off, &s, &pos)) {
		const struct adaptive_src *src = &a->src[s];
		uint8_t got[HASH_LEN];
		unsigned gl = 0;
		if (fileio_pread_full(src->fd, dst, ADAPTIVE_BLOCK, src->base + pos, NULL) == 0 &&
		    EVP_Digest(dst, ADAPTIVE_BLOCK, got, &gl, EVP_sha256(), NULL) == 1 &&
		    CRYPTO_memcmp(got, h, a->hlen) == 0) {
			if (src->is_target)
				a->st.from_target++;
			else
				a->st.from_active++;
			if (src->is_target && pos == off) {
				a->in_place[b / 8] |= (uint8_t)(1u << (b % 8));
				a->st.in_place++;
			}
			return 0;
		}
	}
	/* The slot changed since it was indexed (the running rootfs is
	 * mounted read-write), or a prefix collision: take it from the bundle. */
	a->st.stale++;
	if (!a->fetch)
		return abota_error_set(err, -EIO, "image block %llu: local copy is stale",
				       (unsigned long long)b);
	return a->fetch(a->fetch_ctx, off, dst, ADAPTIVE_BLOCK, err);
}

int adaptive_fill(void *p, uint64_t off, void *buf, size_t len, struct abota_error *err)
{
	struct adaptive *a = p;
	if (off % ADAPTIVE_BLOCK != 0 || len % ADAPTIVE_BLOCK != 0 ||
	    off / ADAPTIVE_BLOCK + len / ADAPTIVE_BLOCK > a->nblocks)
		return abota_error_set(err, -EINVAL, "adaptive: bytes %llu+%zu are not whole blocks of the image",
				       (unsigned long long)off, len);
	uint8_t *dst = buf;
	for (size_t i = 0; i < len / ADAPTIVE_BLOCK; i++) {
		int ret = fill_block(a, off / ADAPTIVE_BLOCK + i, dst + i * ADAPTIVE_BLOCK, err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

bool adaptive_in_place(void *p, uint64_t off, size_t len)
{
	const struct adaptive *a = p;
	if (len == 0 || off % ADAPTIVE_BLOCK != 0 || len % ADAPTIVE_BLOCK != 0 ||
	    off / ADAPTIVE_BLOCK + len / ADAPTIVE_BLOCK > a->nblocks)
		return false;
	for (uint64_t b = off / ADAPTIVE_BLOCK; b < (off + len) / ADAPTIVE_BLOCK; b++)
		if (!(a->in_place[b / 8] & (1u << (b % 8))))
			return false;
	return true;
}

void adaptive_get_stats(const struct adaptive *a, struct adaptive_stats *st)
{
	*st = a->st;
}

int adaptive_src_index(const struct adaptive *a, size_t i, struct adaptive_index *out)
{
	if (i >= a->n_src || !a->keys[i] || a->nkeys[i] == 0)
		return -ENOENT;
	uint64_t n = a->nkeys[i];
	uint8_t *h = n <= SIZE_MAX / 8 ? malloc((size_t)n * 8) : NULL;
	if (!h)
		return -ENOMEM;
	for (uint64_t b = 0; b < n; b++) {
		/* key 0 marks an all-zero block: its hash is the zero block's */
		if (a->keys[i][b])
			memcpy(h + b * 8, &a->keys[i][b], 8);
		else
			memcpy(h + b * 8, a->zero_hash, 8);
	}
	*out = (struct adaptive_index){ .hashes = h, .hash_len = 8, .n = n };
	return 0;
}

void adaptive_drop_src_indexes(struct adaptive *a)
{
	for (size_t s = 0; s < MAX_SRCS; s++) {
		free(a->keys[s]);
		a->keys[s] = NULL;
		a->nkeys[s] = 0;
	}
}

void adaptive_free(struct adaptive *a)
{
	if (!a)
		return;
	for (size_t s = 0; s < MAX_SRCS; s++)
		free(a->keys[s]);
	free(a->table);
	free(a->blk);
	free(a->in_place);
	free(a);
}
