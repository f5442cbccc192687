/* digest.h - SHA-256 helpers on OpenSSL EVP (SHA-NI where the CPU has it). */
#ifndef ABOTA_DIGEST_H
#define ABOTA_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abota/error.h"

#define DIGEST_SHA256_LEN 32
#define DIGEST_SHA256_HEX_LEN 64

/* One-shot SHA-256. */
int digest_sha256(const void *data, size_t len, uint8_t out[DIGEST_SHA256_LEN]);
/* Lowercase hex; out must hold 2*len+1 bytes. */
void digest_to_hex(const uint8_t *bin, size_t len, char *out);
/* Parses exactly 2*len lowercase hex characters (and nothing else). */
bool digest_from_hex(const char *hex, uint8_t *out, size_t len);
/* Uppercase, colon separated ("A0:AE:..."), as RAUC prints SPKI hashes;
 * out must hold 3*len bytes. */
void digest_to_colon_hex(const uint8_t *bin, size_t len, char *out);

#endif
