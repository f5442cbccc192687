/* guid.h - 128-bit GUIDs as stored in GPT and Arm FWU metadata.
 *
 * A struct guid always holds the on-media byte order used by EFI/GPT and by
 * the FWU metadata ("mixed-endian": the first three fields little-endian, the
 * last eight bytes as written), i.e. Python's uuid.UUID(s).bytes_le.  The text
 * form is the usual 8-4-4-4-12 lower-case hex string.  Converting between the
 * two is the only place where byte order matters, so nobody else swaps bytes.
 */
#ifndef ABOTA_GUID_H
#define ABOTA_GUID_H

#include <stdbool.h>
#include <stdint.h>

#include "abota/error.h"

#define GUID_STR_LEN 36

struct guid {
	uint8_t b[16];
};

/* Parses "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (either case) into the EFI
 * byte order.  -EINVAL with a message on anything else. */
int guid_parse(const char *s, struct guid *out, struct abota_error *err);
/* Formats into buf (at least GUID_STR_LEN + 1 bytes); returns buf. */
char *guid_format(const struct guid *g, char *buf);
bool guid_equal(const struct guid *a, const struct guid *b);
bool guid_is_zero(const struct guid *g);
/* The same 16 bytes interpreted in RFC 4122 (big-endian) order: used to
 * recognise GUIDs that a tool wrote without EFI conversion (mkfwumdata
 * without -g). */
void guid_swap_rfc4122(const struct guid *in, struct guid *out);

/* Well-known GUIDs (PSA FWU, ST flash layouts). */
extern const struct guid GUID_FWU_METADATA_TYPE;  /* 8a7a84a0-8387-40f6-ab41-a8b9a5a60d23 */
extern const struct guid GUID_FWU_METADATA1_UUID; /* 5f91c128-e120-48d7-bb64-9fa9aed4c7e3 */
extern const struct guid GUID_FWU_METADATA2_UUID; /* f469f981-5985-4206-8fb3-839956035a65 */
extern const struct guid GUID_ST_FIP_TYPE;        /* 19d5df83-11b0-457b-be2c-7559c13142a5 */
extern const struct guid GUID_ST_FIP_A_UUID;      /* 4fd84c93-54ef-463f-a7ef-ae25ff887087 */
extern const struct guid GUID_ST_FIP_B_UUID;      /* 09c54952-d5bf-45af-acee-335303766fb3 */

#endif
