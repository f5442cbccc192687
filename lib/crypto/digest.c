/* digest.c - SHA-256 helpers. */
#include "abota/digest.h"

#include <errno.h>

#include <openssl/evp.h>

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
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)((hexval(hex[2 * i]) << 4) | hexval(hex[2 * i + 1]));
	return true;
}
