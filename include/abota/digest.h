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

/* A streaming SHA-256 whose state can be saved at a 64-byte boundary and
 * restored later, even by another process: the resume journal keeps the
 * state of an image's hash at each durable checkpoint, so an interrupted
 * install hashes only what it still writes and still checks the whole
 * image against the manifest.  (OpenSSL's EVP contexts cannot be
 * serialised; the SHA256_* functions run the same SHA-NI code.) */
struct digest_sha256_ctx;

struct digest_sha256_state {
	uint64_t length;  /* bytes hashed, a multiple of 64 */
	uint32_t h[8];    /* chaining value */
};

/* Text form: 16 hex digits of length, ':', 64 hex digits of h. */
#define DIGEST_SHA256_STATE_TEXT_LEN (16 + 1 + 64)

int digest_sha256_new(struct digest_sha256_ctx **out);
void digest_sha256_update(struct digest_sha256_ctx *c, const void *data, size_t len);
/* Finishes; the context is reset to the empty state afterwards. */
void digest_sha256_final(struct digest_sha256_ctx *c, uint8_t out[DIGEST_SHA256_LEN]);
/* -EINVAL if the bytes hashed so far are not a multiple of 64. */
int digest_sha256_save(const struct digest_sha256_ctx *c, struct digest_sha256_state *st);
/* -EINVAL (context unchanged) unless st->length is a multiple of 64. */
int digest_sha256_restore(struct digest_sha256_ctx *c, const struct digest_sha256_state *st);
void digest_sha256_free(struct digest_sha256_ctx *c);
/* out must hold DIGEST_SHA256_STATE_TEXT_LEN + 1 bytes. */
void digest_sha256_state_format(const struct digest_sha256_state *st, char *out);
/* Strict: exactly the text form, lowercase hex, length a multiple of 64. */
bool digest_sha256_state_parse(const char *s, struct digest_sha256_state *st);

#endif
