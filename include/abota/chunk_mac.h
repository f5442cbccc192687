/* chunk_mac.h - keyed tags for the chunks of a plain bundle.
 *
 * A plain bundle is authenticated by one CMS digest over all of it; reads
 * after that must see the same bytes.  While the CMS digest is computed,
 * every 64 KiB chunk gets a tag, and every later read is checked against
 * it.  The tags only have to tell "same bytes as when verified" from
 * "changed since" for an attacker who never sees them (they stay in this
 * process), so a MAC under a random per-bundle key does: GMAC (AES-128-GCM
 * with the chunk as additional data, the chunk index as nonce), which runs
 * at ~6 GB/s here against ~1.5 GB/s for SHA-256 -- the chunks are tagged
 * once and checked once more on every install, so this is CPU the install
 * does not spend.  Forging a tag without the key succeeds with probability
 * about chunk_blocks / 2^128 per try, and a failed try aborts the install. */
#ifndef ABOTA_CHUNK_MAC_H
#define ABOTA_CHUNK_MAC_H

#include <stddef.h>
#include <stdint.h>

#define CHUNK_MAC_TAG_LEN 16

struct chunk_mac;

/* A fresh random key (OpenSSL's private DRBG).  -ENOMEM or -EIO. */
int chunk_mac_new(struct chunk_mac **out);
/* The tag of chunk idx holding data[0, len).  Safe to call from several
 * threads at once (the key is only read).  -EIO if OpenSSL fails. */
int chunk_mac_tag(const struct chunk_mac *m, uint64_t idx, const void *data, size_t len,
		  uint8_t tag[CHUNK_MAC_TAG_LEN]);
void chunk_mac_free(struct chunk_mac *m);

/* The same tag over data that arrives in pieces: begin, update..., final
 * (then begin again for the next chunk).  One context per thread. */
struct chunk_mac_ctx;
int chunk_mac_ctx_new(const struct chunk_mac *m, struct chunk_mac_ctx **out);
int chunk_mac_begin(struct chunk_mac_ctx *c, uint64_t idx);
int chunk_mac_update(struct chunk_mac_ctx *c, const void *data, size_t len);
int chunk_mac_final(struct chunk_mac_ctx *c, uint8_t tag[CHUNK_MAC_TAG_LEN]);
void chunk_mac_ctx_free(struct chunk_mac_ctx *c);

#endif
