/* digest.c - SHA-256 helpers. */
/* The SHA256_* functions are deprecated in OpenSSL 3 but kept; they are
 * the only way to get at the chaining value (see digest_sha256_save). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "abota/digest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

int digest_sha256(const void *data, size_t len, uint8_t out[DIGEST_SHA256_LEN])
{
	unsigned int n = 0;
	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != DIGEST_SHA256_LEN)
		return -EIO;
	return 0;
}

void digest_to_hex(const uint8_t *bin, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hex[bin[i] >> 4];
		out[2 * i + 1] = hex[bin[i] & 0xF];
	}
	out[2 * len] = '\0';
}

void digest_to_colon_hex(const uint8_t *bin, size_t len, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (i > 0)
			out[o++] = ':';
		out[o++] = hex[bin[i] >> 4];
		out[o++] = hex[bin[i] & 0xF];
	}
	out[o] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

bool digest_from_hex(const char *hex, uint8_t *out, size_t len)
{
	for (size_t i = 0; i < 2 * len; i++)
		if (hex[i] == '\0' || hexval(hex[i]) < 0)
			return false;
	if (hex[2 * len] != '\0')
		return false;
	/* every digit was checked above: hexval() is 0..15 here */
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)((unsigned)hexval(hex[2 * i]) << 4 | (unsigned)hexval(hex[2 * i + 1]));
	return true;
}

/* --- resumable SHA-256 --- */

struct digest_sha256_ctx {
	SHA256_CTX c;
};

int digest_sha256_new(struct digest_sha256_ctx **out)
{
	struct digest_sha256_ctx *c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	SHA256_Init(&c->c);
	*out = c;
	return 0;
}

void digest_sha256_update(struct digest_sha256_ctx *c, const void *data, size_t len)
{
	SHA256_Update(&c->c, data, len);
}

void digest_sha256_final(struct digest_sha256_ctx *c, uint8_t out[DIGEST_SHA256_LEN])
{
	SHA256_Final(out, &c->c);
	SHA256_Init(&c->c);
}

int digest_sha256_save(const struct digest_sha256_ctx *c, struct digest_sha256_state *st)
{
	if (c->c.num != 0)
		return -EINVAL; /* bytes waiting in the block buffer */
	uint64_t bits = ((uint64_t)c->c.Nh << 32) | c->c.Nl;
	st->length = bits / 8;
	for (int i = 0; i < 8; i++)
		st->h[i] = c->c.h[i];
	return 0;
}

int digest_sha256_restore(struct digest_sha256_ctx *c, const struct digest_sha256_state *st)
{
	if (st->length % 64 != 0 || st->length > UINT64_MAX / 8)
		return -EINVAL;
	SHA256_Init(&c->c);
	uint64_t bits = st->length * 8;
	c->c.Nl = (SHA_LONG)(bits & 0xFFFFFFFFu);
	c->c.Nh = (SHA_LONG)(bits >> 32);
	for (int i = 0; i < 8; i++)
		c->c.h[i] = st->h[i];
	return 0;
}

void digest_sha256_free(struct digest_sha256_ctx *c)
{
	if (!c)
		return;
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

void digest_sha256_state_format(const struct digest_sha256_state *st, char *out)
{
	int n = snprintf(out, DIGEST_SHA256_STATE_TEXT_LEN + 1, "%016llx:",
			 (unsigned long long)st->length);
	for (int i = 0; i < 8 && n > 0; i++)
		n += snprintf(out + n, DIGEST_SHA256_STATE_TEXT_LEN + 1 - (size_t)n, "%08x",
			      (unsigned)st->h[i]);
}

static bool parse_hex_u64(const char *s, size_t digits, uint64_t *out)
{
	uint64_t v = 0;
	for (size_t i = 0; i < digits; i++) {
		int d = hexval(s[i]);
		if (d < 0)
			return false;
		v = (v << 4) | (uint64_t)d;
	}
	*out = v;
	return true;
}

bool digest_sha256_state_parse(const char *s, struct digest_sha256_state *st)
{
	struct digest_sha256_state t;
	if (strlen(s) != DIGEST_SHA256_STATE_TEXT_LEN || s[16] != ':')
		return false;
	if (!parse_hex_u64(s, 16, &t.length) || t.length % 64 != 0 || t.length > UINT64_MAX / 8)
		return false;
	for (int i = 0; i < 8; i++) {
		uint64_t w;
		if (!parse_hex_u64(s + 17 + 8 * i, 8, &w))
			return false;
		t.h[i] = (uint32_t)w;
	}
	*st = t;
	return true;
}
