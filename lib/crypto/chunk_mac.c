/* chunk_mac.c - GMAC tags for plain-bundle chunks (see chunk_mac.h). */
#include "abota/chunk_mac.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

struct chunk_mac {
	EVP_CIPHER *cipher; /* fetched once: a fetch per tag would cost more than the tag */
	uint8_t key[16];
};

struct chunk_mac_ctx {
	const struct chunk_mac *m;
	EVP_CIPHER_CTX *c;
};

int chunk_mac_new(struct chunk_mac **out)
{
	struct chunk_mac *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->cipher = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
	if (!m->cipher || RAND_priv_bytes(m->key, (int)sizeof(m->key)) != 1) {
		chunk_mac_free(m);
		return -EIO;
	}
	*out = m;
	return 0;
}

void chunk_mac_free(struct chunk_mac *m)
{
	if (!m)
		return;
	EVP_CIPHER_free(m->cipher);
	OPENSSL_cleanse(m->key, sizeof(m->key));
	free(m);
}

int chunk_mac_ctx_new(const struct chunk_mac *m, struct chunk_mac_ctx **out)
{
	struct chunk_mac_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->m = m;
	c->c = EVP_CIPHER_CTX_new();
	if (!c->c) {
		free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

void chunk_mac_ctx_free(struct chunk_mac_ctx *c)
{
	if (!c)
		return;
	EVP_CIPHER_CTX_free(c->c);
	free(c);
}

int chunk_mac_begin(struct chunk_mac_ctx *c, uint64_t idx)
{
	/* 96-bit nonce: the chunk index, little endian.  A chunk is tagged
	 * under its own index only, so no nonce is used for two messages by
	 * the tagging side; a check recomputes the same (nonce, data) pair
	 * unless the data changed, and its tag is never shown to anyone. */
	uint8_t iv[12] = { 0 };
	for (unsigned i = 0; i < 8; i++)
		iv[i] = (uint8_t)(idx >> (8 * i));
	return EVP_EncryptInit_ex2(c->c, c->m->cipher, c->m->key, iv, NULL) == 1 ? 0 : -EIO;
}

int chunk_mac_update(struct chunk_mac_ctx *c, const void *data, size_t len)
{
	/* GMAC: the chunk is additional data, nothing is encrypted.  EVP takes
	 * int lengths. */
	const uint8_t *p = data;
	int outl = 0;
	while (len > 0) {
		int n = len > (1u << 30) ? (1 << 30) : (int)len;
		if (EVP_EncryptUpdate(c->c, NULL, &outl, p, n) != 1)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int chunk_mac_final(struct chunk_mac_ctx *c, uint8_t tag[CHUNK_MAC_TAG_LEN])
{
	uint8_t none[16];
	int outl = 0;
	if (EVP_EncryptFinal_ex(c->c, none, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c->c, EVP_CTRL_GCM_GET_TAG, CHUNK_MAC_TAG_LEN, tag) != 1)
		return -EIO;
	return 0;
}

int chunk_mac_tag(const struct chunk_mac *m, uint64_t idx, const void *data, size_t len,
		  uint8_t tag[CHUNK_MAC_TAG_LEN])
{
	/* A context per call: the callers are the worker threads, at once. */
	struct chunk_mac_ctx *c = NULL;
	int ret = chunk_mac_ctx_new(m, &c);
	if (ret == 0)
		ret = chunk_mac_begin(c, idx);
	if (ret == 0)
		ret = chunk_mac_update(c, data, len);
	if (ret == 0)
		ret = chunk_mac_final(c, tag);
	chunk_mac_ctx_free(c);
	return ret;
}
