/* fwu_metadata.h - Arm PSA FWU metadata v1/v2: decode, validate, encode.
 *
 * Byte-exact with ST's TF-A (v2.10-stm32mp-r3 and older v1 builds), upstream
 * TF-A and U-Boot: packed little-endian structures, CRC-32 (zlib) over bytes
 * [4, end) stored at offset 0, GUIDs in EFI mixed-endian order (struct guid),
 * v2 bank states 0xFC/0xFE/0xFF.  See docs/fwu.md and the reference
 * specs/fwu-metadata.md §1.
 *
 *   v1 (N banks, I images): 16-byte header, then I image entries
 *   v2: 32-byte header, 8-byte firmware store descriptor at 0x20, I entries
 *   image entry: type GUID, location GUID, N x {img GUID, accepted, reserved}
 *
 * Three levels of checking:
 *   fwu_md_decode    structure and CRC (any well-formed metadata decodes)
 *   fwu_md_validate  everything every consumer requires (the writer's gate)
 *   fwu_md_fw_check  exactly what one firmware does when it reads a copy
 *                    (used by the simulator and by `abota fwu dump`)
 * Error messages name the field and, for consumer rules, the consumer.
 */
#ifndef ABOTA_FWU_METADATA_H
#define ABOTA_FWU_METADATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abota/error.h"
#include "abota/guid.h"

#define FWU_MD_MAX_BANKS 4   /* NR_OF_MAX_FW_BANKS: bank_state[] has 4 bytes */
#define FWU_MD_MAX_IMAGES 16 /* our cap; ST uses 1 (3 with the A/B variant) */
#define FWU_MD_V1_HEADER_SIZE 16
#define FWU_MD_V2_HEADER_SIZE 32
#define FWU_MD_V2_DESC_OFFSET 0x20
#define FWU_MD_V2_DESC_SIZE 8
#define FWU_MD_IMG_ENTRY_FIXED 32 /* type + location GUID */
#define FWU_MD_BANK_INFO_SIZE 24
/* Largest structure we can describe (v2, 16 images x 4 banks = 2088 bytes). */
#define FWU_MD_MAX_SIZE 2088
/* How much of a copy (partition/file) is read: the structure must be in it. */
#define FWU_MD_READ_SIZE 4096

enum fwu_bank_state {
	FWU_BANK_ACCEPTED = 0xFC,
	FWU_BANK_VALID = 0xFE, /* trial */
	FWU_BANK_INVALID = 0xFF,
};

struct fwu_md_bank_info {
	struct guid img_guid; /* = GPT unique GUID of the partition holding the image */
	uint32_t accepted;    /* bit 0: accepted by the OS */
	uint32_t reserved;
};

struct fwu_md_image {
	struct guid type_guid;
	struct guid location_guid;
	struct fwu_md_bank_info bank[FWU_MD_MAX_BANKS];
};

/* Decoded metadata.  Fields the other version does not have are 0. */
struct fwu_metadata {
	uint32_t crc32; /* as stored (decode) / as written (encode) */
	uint32_t version;
	uint32_t active_index;
	uint32_t previous_active_index;
	/* v2 header */
	uint32_t metadata_size;
	uint16_t desc_offset;
	uint16_t reserved1;
	uint8_t bank_state[FWU_MD_MAX_BANKS];
	uint32_t reserved2;
	/* v2 descriptor (v1: the shape the decoder was told) */
	uint8_t num_banks;
	uint8_t desc_reserved;
	uint16_t num_images;
	uint16_t img_entry_size;
	uint16_t bank_info_entry_size;
	struct fwu_md_image img[FWU_MD_MAX_IMAGES];
	/* v2: bytes after the image entries counted in metadata_size (vendor
	 * data, mkfwumdata -V).  Shown, never re-encoded. */
	uint32_t vendor_size;
};

/* What the firmware of a board was built with. */
struct fwu_md_config {
	uint32_t version;    /* 1 or 2 */
	uint8_t num_banks;   /* NR_OF_FW_BANKS / CONFIG_FWU_NUM_BANKS */
	uint16_t num_images; /* NR_OF_IMAGES_IN_FW_BANK / CONFIG_FWU_NUM_IMAGES_PER_BANK */
	/* img_type_guid values BL2 knows, in image order; 0 = not checked */
	uint16_t num_image_types;
	struct guid image_types[FWU_MD_MAX_IMAGES];
};

/* The consumers whose read path fwu_md_fw_check() reproduces. */
enum fwu_fw {
	FWU_FW_TFA_V1,       /* TF-A v2.10 / ST <= v2.8-stm32mp, metadata v1 */
	FWU_FW_TFA_ST_R3,    /* ST TF-A v2.10-stm32mp-r3, metadata v2 */
	FWU_FW_TFA_UPSTREAM, /* upstream TF-A master, metadata v2 */
	FWU_FW_UBOOT,        /* U-Boot (ST v2023.10-stm32mp and upstream), v1 or v2 build */
};
#define FWU_FW_COUNT 4

/* ST's configuration: 2 banks, 1 image (the FIP), given version. */
void fwu_md_config_st(struct fwu_md_config *cfg, uint32_t version);

/* Size of the structure without vendor data; 0 if the shape is out of range. */
size_t fwu_md_size(uint32_t version, unsigned num_banks, unsigned num_images);

/* zlib CRC-32 of len bytes. */
uint32_t fwu_md_crc32(const void *buf, size_t len);

#define FWU_MD_DECODE_IGNORE_CRC 0x1u /* decode a damaged copy for display */

/* Decodes len bytes (may be more than the structure: a partition read).
 * cfg (optional) gives the expected version and, for v1 which carries no
 * shape, num_banks/num_images (default 2/1).  Without cfg the version field
 * decides.  Fails with a message naming the field on: too short, unknown
 * version, desc_offset != 0x20, metadata_size out of range, CRC mismatch,
 * num_banks/num_images out of range. */
int fwu_md_decode(const void *buf, size_t len, const struct fwu_md_config *cfg, unsigned flags,
		  struct fwu_metadata *out, struct abota_error *err);

/* Checks md against every rule of every consumer built with cfg (ST TF-A r3,
 * upstream TF-A, U-Boot; TF-A v1 for version 1) plus the PSA spec rules the
 * writer must follow (states, unused banks, accepted flags).  The message
 * says which rule failed, e.g. "num_images is 2: ST TF-A r3 and U-Boot require
 * exactly 1". */
int fwu_md_validate(const struct fwu_metadata *md, const struct fwu_md_config *cfg,
		    struct abota_error *err);

/* Encodes md canonically (metadata_size, desc_offset and entry sizes
 * computed, CRC computed; vendor data dropped) into buf.  *len_out gets the
 * size.  md->crc32 is not read. */
int fwu_md_encode(const struct fwu_metadata *md, void *buf, size_t cap, size_t *len_out,
		  struct abota_error *err);

/* Reproduces how fw reads one copy of len bytes: read length, sanity checks
 * and CRC range of that consumer, in its order.  On success fills out (if not
 * NULL) with what that consumer sees. */
int fwu_md_fw_check(enum fwu_fw fw, const void *buf, size_t len, const struct fwu_md_config *cfg,
		    struct fwu_metadata *out, struct abota_error *err);
const char *fwu_fw_name(enum fwu_fw fw);

/* A metadata in mkfwumdata's defaults: all real banks ACCEPTED (others 0xFF),
 * every accepted flag 1, active 0, previous num_banks-1, all GUIDs zero. */
int fwu_md_init(struct fwu_metadata *md, uint32_t version, unsigned num_banks,
		unsigned num_images, struct abota_error *err);

/* Bank state names: "accepted", "valid", "invalid", "unknown". */
const char *fwu_bank_state_name(uint8_t state);
/* Accepts A/V/I and the names above (any case). */
int fwu_bank_state_parse(const char *s, uint8_t *out, struct abota_error *err);
/* The state of a bank; v1 has none and is derived from the accepted flags
 * (all accepted = ACCEPTED, else VALID). */
uint8_t fwu_md_bank_state(const struct fwu_metadata *md, unsigned bank);

/* State transitions (specs/fwu-metadata.md §4.5).  They edit md in memory;
 * out of range banks or impossible transitions fail and leave md unchanged.
 *
 * invalidate: bank -> INVALID, its accepted flags cleared (before it is
 *             overwritten).  Refused for the active bank.
 * activate:   active = bank, previous = old active, bank VALID with accepted
 *             flags cleared (trial).  Refused if bank == active.
 * accept:     bank ACCEPTED with all accepted flags set, active = bank,
 *             previous = the other bank; the other bank's state is kept.
 * reject:     bank INVALID (flags cleared), active = previous, previous =
 *             bank.  Refused when previous is the bank itself or not bootable.
 * set_state:  raw state change (v2 only); ACCEPTED also sets the flags,
 *             VALID/INVALID clear them. */
int fwu_md_invalidate(struct fwu_metadata *md, unsigned bank, struct abota_error *err);
int fwu_md_activate(struct fwu_metadata *md, unsigned bank, struct abota_error *err);
int fwu_md_accept(struct fwu_metadata *md, unsigned bank, struct abota_error *err);
int fwu_md_reject(struct fwu_metadata *md, unsigned bank, struct abota_error *err);
int fwu_md_set_state(struct fwu_metadata *md, unsigned bank, uint8_t state,
		     struct abota_error *err);

/* A readable multi-line table (caller frees).  NULL on allocation failure. */
char *fwu_md_format(const struct fwu_metadata *md);
/* A json-c object (struct json_object *, caller puts it). */
void *fwu_md_to_json(const struct fwu_metadata *md);

#endif
