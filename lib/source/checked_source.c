/* checked_source.c - sources whose blocks are verified before use. */
#include "abota/checked_source.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "abota/chunk_mac.h"

/* Enough for the metadata reads of one squashfs lookup plus a data block's
 * unaligned head and tail, for each of the two workers: installing the
 * benchmark's RAUC bundle filled 1832 64 KiB chunks with 4 slots and 1824
 * with 8 (of 2514 reads), and 4 slots are 256 KiB less at the peak. */
#define CACHE_SLOTS 4

struct cache_slot {
	uint64_t idx;   /* UINT64_MAX = empty */
	size_t len;
	uint8_t *data;
};

struct checked_source {
	struct source base;
	struct source *lower;
	uint32_t block_size;
	checked_verify_fn verify;
	checked_plan_fn plan;
	void *ctx;
	void (*ctx_free)(void *ctx);
	pthread_mutex_t lock; /* protects the cache */
	struct cache_slot cache[CACHE_SLOTS];
	unsigned next_victim;
};

static size_t block_len(const struct checked_source *cs, uint64_t idx)
{
	uint64_t start = idx * cs->block_size;
	uint64_t left = cs->base.size - start;
	return left < cs->block_size ? (size_t)left : cs->block_size;
}

static int read_verified(struct checked_source *cs, uint64_t first, uint64_t count, uint8_t *dst,
			 struct abota_error *err)
{
	uint64_t off = first * cs->block_size;
	uint64_t end = (first + count) * cs->block_size;
	if (end > cs->base.size)
		end = cs->base.size;
	int ret = source_read_at(cs->lower, dst, (size_t)(end - off), off, err);
	if (ret < 0)
		return ret;
	for (uint64_t i = 0; i < count; i++) {
		ret = cs->verify(cs->ctx, first + i, dst + i * cs->block_size,
				 block_len(cs, first + i), err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Copies part of one block through the cache. */
static int read_partial(struct checked_source *cs, uint64_t idx, size_t in_off, size_t len,
			uint8_t *dst, struct abota_error *err)
{
	int ret = 0;
	pthread_mutex_lock(&cs->lock);
	struct cache_slot *slot = NULL;
	for (unsigned i = 0; i < CACHE_SLOTS; i++) {
		if (cs->cache[i].idx == idx) {
			slot = &cs->cache[i];
			break;
		}
	}
	if (!slot) {
		slot = &cs->cache[cs->next_victim];
		cs->next_victim = (cs->next_victim + 1) % CACHE_SLOTS;
		slot->idx = UINT64_MAX;
		ret = read_verified(cs, idx, 1, slot->data, err);
		if (ret < 0)
			goto out;
		slot->idx = idx;
		slot->len = block_len(cs, idx);
	}
	memcpy(dst, slot->data + in_off, len);
out:
	pthread_mutex_unlock(&cs->lock);
	return ret;
}

static int checked_read_at(struct source *src, void *buf, size_t len, uint64_t off,
			   struct abota_error *err)
{
	struct checked_source *cs = (struct checked_source *)src;
	uint8_t *dst = buf;
	uint64_t bs = cs->block_size;
	while (len > 0) {
		uint64_t idx = off / bs;
		size_t in_off = (size_t)(off % bs);
		size_t blen = block_len(cs, idx);
		if (in_off == 0 && len >= blen) {
			/* Whole blocks go straight into the caller's buffer: no copy. */
			uint64_t count = len / bs;
			if (count == 0 || (idx + count) * bs > cs->base.size)
				count = 1; /* the short last block */
			int ret = read_verified(cs, idx, count, dst, err);
			if (ret < 0) {
				/* Never hand out bytes that failed verification. */
				memset(buf, 0, (size_t)(dst - (uint8_t *)buf) + len);
				return ret;
			}
			size_t done = (size_t)((idx + count) * bs > cs->base.size
						       ? cs->base.size - off
						       : count * bs);
			dst += done;
			off += done;
			len -= done;
			continue;
		}
		size_t n = blen - in_off;
		if (n > len)
			n = len;
		int ret = read_partial(cs, idx, in_off, n, dst, err);
		if (ret < 0)
			return ret;
		dst += n;
		off += n;
		len -= n;
	}
	return 0;
}

static void checked_close(struct source *src)
{
	struct checked_source *cs = (struct checked_source *)src;
	for (unsigned i = 0; i < CACHE_SLOTS; i++)
		free(cs->cache[i].data);
	if (cs->ctx_free)
		cs->ctx_free(cs->ctx);
	pthread_mutex_destroy(&cs->lock);
}

/* Reads below go by whole blocks: widen the ranges to them. */
static void checked_plan(struct source *src, const struct source_range *r, size_t n)
{
	struct checked_source *cs = (struct checked_source *)src;
	struct source_range *m = n ? malloc(n * sizeof(*m)) : NULL;
	size_t k = 0;
	if (n && !m)
		return; /* a hint only */
	for (size_t i = 0; i < n; i++) {
		uint64_t a = r[i].off / cs->block_size * cs->block_size;
		uint64_t e = r[i].off + r[i].len;
		e = (e + cs->block_size - 1) / cs->block_size * cs->block_size;
		if (e > cs->base.size)
			e = cs->base.size;
		if (k > 0 && a <= m[k - 1].off + m[k - 1].len) {
			if (e > m[k - 1].off + m[k - 1].len)
				m[k - 1].len = e - m[k - 1].off;
		} else if (a < e) {
			m[k++] = (struct source_range){ .off = a, .len = e - a };
		}
	}
	if (cs->plan)
		cs->plan(cs->ctx, cs->lower, m, k);
	else
		source_plan(cs->lower, m, k);
	free(m);
}

/* The view's bytes lie at the same offsets below (a verity tree after
 * them): the lower source forgets them.  Cached blocks of the view's own
 * stay (a few, and the next reads replace them). */
static void checked_forget(struct source *src, uint64_t off, uint64_t len)
{
	struct checked_source *cs = (struct checked_source *)src;
	source_forget(cs->lower, off, len);
}

static const struct source_ops checked_ops = {
	.read_at = checked_read_at,
	.close = checked_close,
	.plan = checked_plan,
	.forget = checked_forget,
};

int source_new_checked(struct source *lower, uint64_t size, uint32_t block_size,
		       checked_verify_fn verify, checked_plan_fn plan, void *ctx,
		       void (*ctx_free)(void *ctx), struct source **out, struct abota_error *err)
{
	if (block_size < 512 || (block_size & (block_size - 1)) != 0 || size > lower->size) {
		if (ctx_free)
			ctx_free(ctx);
		return abota_error_set(err, -EINVAL, "%s: invalid checked view", lower->name);
	}
	struct checked_source *cs = source_alloc(sizeof(*cs), &checked_ops, size, lower->name);
	if (!cs) {
		if (ctx_free)
			ctx_free(ctx);
		return abota_error_set(err, -ENOMEM, "out of memory");
	}
	cs->lower = lower;
	cs->block_size = block_size;
	cs->verify = verify;
	cs->plan = plan;
	cs->ctx = ctx;
	cs->ctx_free = ctx_free;
	pthread_mutex_init(&cs->lock, NULL);
	for (unsigned i = 0; i < CACHE_SLOTS; i++) {
		cs->cache[i].idx = UINT64_MAX;
		cs->cache[i].data = malloc(block_size);
		if (!cs->cache[i].data) {
			source_close(&cs->base);
			return abota_error_set(err, -ENOMEM, "out of memory");
		}
	}
	*out = &cs->base;
	return 0;
}

/* --- plain bundles: per-chunk tags recorded during the signature check --- */

struct tag_ctx {
	struct chunk_mac *mac;
	uint8_t *tags;
	uint64_t n;
	char *name;
};

static void tag_ctx_free(void *p)
{
	struct tag_ctx *tc = p;
	if (!tc)
		return;
	chunk_mac_free(tc->mac);
	free(tc->tags);
	free(tc->name);
	free(tc);
}

static int tag_verify(void *p, uint64_t idx, const uint8_t *data, size_t len,
		      struct abota_error *err)
{
	struct tag_ctx *tc = p;
	uint8_t tag[CHUNK_MAC_TAG_LEN];
	if (idx >= tc->n || chunk_mac_tag(tc->mac, idx, data, len, tag) < 0)
		return abota_error_set(err, -EIO, "%s: cannot check chunk %llu", tc->name,
				       (unsigned long long)idx);
	if (CRYPTO_memcmp(tag, tc->tags + idx * CHUNK_MAC_TAG_LEN, CHUNK_MAC_TAG_LEN) != 0)
		return abota_error_set(err, -EBADMSG,
				       "bundle changed after its signature was verified (chunk %llu)",
				       (unsigned long long)idx);
	return 0;
}

int source_new_tag_checked(struct source *lower, uint64_t size, uint32_t chunk_size,
			   struct chunk_mac *mac, uint8_t *tags, struct source **out,
			   struct abota_error *err)
{
	struct tag_ctx *tc = calloc(1, sizeof(*tc));
	if (!tc) {
		chunk_mac_free(mac);
		free(tags);
		return abota_error_set(err, -ENOMEM, "out of memory");
	}
	tc->mac = mac;
	tc->tags = tags;
	tc->n = chunk_size ? (size + chunk_size - 1) / chunk_size : 0;
	tc->name = strdup(lower->name);
	if (!tc->name) {
		tag_ctx_free(tc);
		return abota_error_set(err, -ENOMEM, "out of memory");
	}
	return source_new_checked(lower, size, chunk_size, tag_verify, NULL, tc, tag_ctx_free, out,
				  err);
}
