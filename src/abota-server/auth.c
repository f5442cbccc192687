/* auth.c - operator authentication (HTTP Basic) against salted PBKDF2
 * hashes in the store.  Verified credentials are remembered as a SHA-256 of
 * the Authorization header, so a script or the UI polling every second does
 * not pay for PBKDF2 each time. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abota/digest.h"
#include "server.h"

#define PBKDF2_ITERATIONS 100000

static int hash_password(const char *password, const char *salt_hex, char out[65])
{
	uint8_t dk[32];
	if (!PKCS5_PBKDF2_HMAC(password, (int)strlen(password), (const unsigned char *)salt_hex,
			       (int)strlen(salt_hex), PBKDF2_ITERATIONS, EVP_sha256(), sizeof(dk), dk))
		return -EIO;
	digest_to_hex(dk, sizeof(dk), out);
	return 0;
}

int auth_set_password(struct store *s, const char *user, const char *password)
{
	uint8_t salt[16];
	char salt_hex[33], hash[65];
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return -EIO;
	digest_to_hex(salt, sizeof(salt), salt_hex);
	int ret = hash_password(password, salt_hex, hash);
	if (ret == 0)
		ret = store_user_set(s, user, salt_hex, hash);
	return ret;
}

static bool cached(struct server *srv, const uint8_t h[32], bool add)
{
	bool found = false;
	pthread_mutex_lock(&srv->auth_lock);
	for (unsigned i = 0; i < 8 && !found; i++)
		found = CRYPTO_memcmp(srv->auth_cache[i], h, 32) == 0;
	if (!found && add) {
		memcpy(srv->auth_cache[srv->auth_next % 8], h, 32);
		srv->auth_next++;
	}
	pthread_mutex_unlock(&srv->auth_lock);
	return found;
}

bool auth_operator(struct request *r)
{
	const char *h = req_header(r, "Authorization");
	bool ok = false;
	char *salt = NULL, *stored = NULL;
	uint8_t decoded[600], hh[32];
	if (!h || strncmp(h, "Basic ", 6) != 0)
		return false;
	const char *b64 = h + 6;
	size_t n = strlen(b64);
	if (n == 0 || n > 800 || n % 4)
		return false;
	if (digest_sha256(h, strlen(h), hh) < 0)
		return false;
	if (cached(r->srv, hh, false))
		return true;
	int len = EVP_DecodeBlock(decoded, (const unsigned char *)b64, (int)n);
	if (len < 0)
		return false;
	/* EVP_DecodeBlock counts the padding as zero bytes */
	if (n >= 1 && b64[n - 1] == '=')
		len--;
	if (n >= 2 && b64[n - 2] == '=')
		len--;
	decoded[len] = '\0';
	if (memchr(decoded, '\0', (size_t)len))
		return false;
	char *colon = strchr((char *)decoded, ':');
	if (!colon)
		return false;
	*colon = '\0';
	const char *user = (const char *)decoded, *pass = colon + 1;
	if (store_user_get(r->srv->store, user, &salt, &stored) == 0) {
		char calc[65];
		if (hash_password(pass, salt, calc) == 0 && CRYPTO_memcmp(calc, stored, 64) == 0)
			ok = true;
	}
	free(salt);
	free(stored);
	OPENSSL_cleanse(decoded, sizeof(decoded));
	if (ok)
		cached(r->srv, hh, true);
	return ok;
}
