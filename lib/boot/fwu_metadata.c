/* fwu_metadata.c - PSA FWU metadata v1/v2 codec (see fwu_metadata.h).
 *
 * Layouts (specs/fwu-metadata.md §1.2, §1.3), all little-endian and packed:
 *   v1: 0x00 crc_32, 0x04 version, 0x08 active_index, 0x0C previous_active_index,
 *       0x10 img_entry[I]
 *   v2: 0x00 crc_32, 0x04 version, 0x08 active_index, 0x0C previous_active_index,
 *       0x10 metadata_size, 0x14 desc_offset (u16), 0x16 reserved1 (u16),
 *       0x18 bank_state[4], 0x1C reserved2,
 *       0x20 num_banks (u8), 0x21 reserved (u8), 0x22 num_images (u16),
 *       0x24 img_entry_size (u16), 0x26 bank_info_entry_size (u16),
 *       0x28 img_entry[I]
 *   img_entry: type GUID, location GUID, bank_info[N] {GUID, accepted, reserved}
 */
#include "abota/fwu_metadata.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "abota/crc.h"

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static size_t entry_size(unsigned banks)
{
	return FWU_MD_IMG_ENTRY_FIXED + (size_t)FWU_MD_BANK_INFO_SIZE * banks;
}

static size_t header_size(uint32_t version)
{
	return version == 1 ? FWU_MD_V1_HEADER_SIZE
			    : FWU_MD_V2_HEADER_SIZE + FWU_MD_V2_DESC_SIZE;
}

size_t fwu_md_size(uint32_t version, unsigned num_banks, unsigned num_images)
{
	if ((version != 1 && version != 2) || num_banks < 1 || num_banks > FWU_MD_MAX_BANKS ||
	    num_images < 1 || num_images > FWU_MD_MAX_IMAGES)
		return 0;
	return header_size(version) + num_images * entry_size(num_banks);
}

uint32_t fwu_md_crc32(const void *buf, size_t len)
{
	return crc_update(0, buf, len);
}

void fwu_md_config_st(struct fwu_md_config *cfg, uint32_t version)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->version = version;
	cfg->num_banks = 2;
	cfg->num_images = 1;
	cfg->num_image_types = 1;
	cfg->image_types[0] = GUID_ST_FIP_TYPE;
}

const char *fwu_fw_name(enum fwu_fw fw)
{
	switch (fw) {
	case FWU_FW_TFA_V1: return "TF-A v1";
	case FWU_FW_TFA_ST_R3: return "ST TF-A r3";
	case FWU_FW_TFA_UPSTREAM: return "upstream TF-A";
	case FWU_FW_UBOOT: return "U-Boot";
	}
	return "?";
}

/* Fills the image entries of md from buf (which holds at least the whole
 * structure for md->version/num_banks/num_images). */
static void parse_entries(const uint8_t *buf, uint32_t layout, struct fwu_metadata *md)
{
	const uint8_t *p = buf + header_size(layout);
	for (unsigned i = 0; i < md->num_images; i++) {
		struct fwu_md_image *img = &md->img[i];
		memcpy(img->type_guid.b, p, 16);
		memcpy(img->location_guid.b, p + 16, 16);
		p += FWU_MD_IMG_ENTRY_FIXED;
		for (unsigned b = 0; b < md->num_banks; b++) {
			memcpy(img->bank[b].img_guid.b, p, 16);
			img->bank[b].accepted = get32(p + 16);
			img->bank[b].reserved = get32(p + 20);
			p += FWU_MD_BANK_INFO_SIZE;
		}
	}
}

/* Header fields of either version, no checks (buf has >= 16 / 40 bytes). */
static void parse_header(const uint8_t *buf, uint32_t version, struct fwu_metadata *md)
{
	md->crc32 = get32(buf);
	md->version = get32(buf + 0x04);
	md->active_index = get32(buf + 0x08);
	md->previous_active_index = get32(buf + 0x0C);
	if (version == 2) {
		md->metadata_size = get32(buf + 0x10);
		md->desc_offset = get16(buf + 0x14);
		md->reserved1 = get16(buf + 0x16);
		memcpy(md->bank_state, buf + 0x18, 4);
		md->reserved2 = get32(buf + 0x1C);
		md->num_banks = buf[0x20];
		md->desc_reserved = buf[0x21];
		md->num_images = get16(buf + 0x22);
		md->img_entry_size = get16(buf + 0x24);
		md->bank_info_entry_size = get16(buf + 0x26);
	}
}

int fwu_md_decode(const void *data, size_t len, const struct fwu_md_config *cfg, unsigned flags,
		  struct fwu_metadata *out, struct abota_error *err)
{
	const uint8_t *buf = data;
	struct fwu_metadata *md = NULL;
	int ret = 0;

	if (len < 8)
		return abota_error_set(err, -EINVAL, "too short: %zu bytes (no header)", len);
	uint32_t stored_version = get32(buf + 4);
	uint32_t version;
	if (cfg && cfg->version) {
		version = cfg->version;
		/* Both layouts known: a mismatch is a clear error.  Any other
		 * value is left to validate (TF-A v1 does not check it). */
		if ((stored_version == 1 || stored_version == 2) && stored_version != version)
			return abota_error_set(err, -EINVAL,
					       "version is %u, expected %u (metadata v%u configured)",
					       stored_version, version, version);
		if (version == 2 && stored_version != 2)
			return abota_error_set(err, -EINVAL,
					       "version: unknown version %u (expected 2)",
					       stored_version);
		if (version != 1 && version != 2)
			return abota_error_set(err, -EINVAL, "unsupported metadata version %u",
					       version);
	} else {
		version = stored_version;
		if (version != 1 && version != 2)
			return abota_error_set(err, -EINVAL,
					       "version: unknown version %u (expected 1 or 2)",
					       version);
	}

	md = calloc(1, sizeof(*md));
	if (!md)
		return abota_error_set(err, -ENOMEM, "out of memory");

	size_t size;
	if (version == 1) {
		unsigned banks = cfg && cfg->num_banks ? cfg->num_banks : 2;
		unsigned images = cfg && cfg->num_images ? cfg->num_images : 1;
		size = fwu_md_size(1, banks, images);
		if (size == 0) {
			ret = abota_error_set(err, -EINVAL,
					      "v1 shape out of range (%u banks, %u images)", banks,
					      images);
			goto out;
		}
		if (len < size) {
			ret = abota_error_set(err, -EINVAL,
					      "too short: %zu bytes, v1 with %u banks and %u images "
					      "is %zu bytes",
					      len, banks, images, size);
			goto out;
		}
		parse_header(buf, 1, md);
		md->num_banks = (uint8_t)banks;
		md->num_images = (uint16_t)images;
	} else {
		if (len < FWU_MD_V2_HEADER_SIZE) {
			ret = abota_error_set(err, -EINVAL,
					      "too short: %zu bytes, a v2 header is %u bytes", len,
					      FWU_MD_V2_HEADER_SIZE);
			goto out;
		}
		uint16_t desc_offset = get16(buf + 0x14);
		if (desc_offset == 0) {
			ret = abota_error_set(err, -EINVAL,
					      "desc_offset is 0: no firmware store descriptor "
					      "(must be 0x20)");
			goto out;
		}
		if (desc_offset != FWU_MD_V2_DESC_OFFSET) {
			ret = abota_error_set(err, -EINVAL, "desc_offset is 0x%x, must be 0x20",
					      desc_offset);
			goto out;
		}
		if (len < FWU_MD_V2_HEADER_SIZE + FWU_MD_V2_DESC_SIZE) {
			ret = abota_error_set(err, -EINVAL,
					      "too short: %zu bytes, header and descriptor are 40 "
					      "bytes",
					      len);
			goto out;
		}
		parse_header(buf, 2, md);
		if (md->metadata_size < FWU_MD_V2_HEADER_SIZE + FWU_MD_V2_DESC_SIZE ||
		    md->metadata_size > len) {
			ret = abota_error_set(err, -EINVAL,
					      "metadata_size is %u, outside [40, %zu] (bytes "
					      "available)",
					      md->metadata_size, len);
			goto out;
		}
		size = md->metadata_size;
	}

	/* CRC before looking at the content (U-Boot's order). */
	uint32_t stored = get32(buf);
	uint32_t computed = fwu_md_crc32(buf + 4, size - 4);
	if (stored != computed && !(flags & FWU_MD_DECODE_IGNORE_CRC)) {
		size_t need = version == 2 ? fwu_md_size(2, md->num_banks, md->num_images) : 0;
		if (need && need != size && need <= len)
			ret = abota_error_set(err, -EBADMSG,
					      "crc32 mismatch (stored 0x%08x, computed 0x%08x over "
					      "bytes 4..%zu): metadata_size is %zu but the structure "
					      "is %zu bytes (ST TF-A r3 computes the CRC over 4..%zu)",
					      stored, computed, size, size, need, need);
		else
			ret = abota_error_set(err, -EBADMSG,
					      "crc32 mismatch (stored 0x%08x, computed 0x%08x over "
					      "bytes 4..%zu)",
					      stored, computed, size);
		goto out;
	}

	if (version == 2) {
		if (md->num_banks < 1 || md->num_banks > FWU_MD_MAX_BANKS) {
			ret = abota_error_set(err, -EINVAL, "num_banks is %u, must be 1..%u",
					      md->num_banks, FWU_MD_MAX_BANKS);
			goto out;
		}
		if (md->num_images < 1 || md->num_images > FWU_MD_MAX_IMAGES) {
			ret = abota_error_set(err, -EINVAL, "num_images is %u, must be 1..%u",
					      md->num_images, FWU_MD_MAX_IMAGES);
			goto out;
		}
		size_t need = fwu_md_size(2, md->num_banks, md->num_images);
		if (md->metadata_size < need) {
			ret = abota_error_set(err, -EINVAL,
					      "metadata_size is %u, but %u images of %u banks need "
					      "%zu bytes",
					      md->metadata_size, md->num_images, md->num_banks,
					      need);
			goto out;
		}
		md->vendor_size = (uint32_t)(md->metadata_size - need);
	}
	parse_entries(buf, version, md);
	*out = *md;
out:
	free(md);
	return ret;
}

static bool state_known(uint8_t s)
{
	return s == FWU_BANK_ACCEPTED || s == FWU_BANK_VALID || s == FWU_BANK_INVALID;
}

int fwu_md_validate(const struct fwu_metadata *md, const struct fwu_md_config *cfg,
		    struct abota_error *err)
{
	struct fwu_md_config st;
	if (!cfg) {
		fwu_md_config_st(&st, md->version == 1 ? 1 : 2);
		cfg = &st;
	}
	unsigned n = md->num_banks, ni = md->num_images;

	if (cfg->version == 1) {
		if (md->version != 1)
			return abota_error_set(err, -EINVAL,
					       "version is %u: U-Boot (v1 build) requires 1 "
					       "(TF-A v1 does not check it)",
					       md->version);
	} else if (md->version != cfg->version) {
		return abota_error_set(err, -EINVAL,
				       "version is %u: TF-A and U-Boot (v%u builds) require %u",
				       md->version, cfg->version, cfg->version);
	}
	if (n != cfg->num_banks)
		return abota_error_set(err, -EINVAL,
				       "num_banks is %u: TF-A (NR_OF_FW_BANKS) and U-Boot "
				       "(CONFIG_FWU_NUM_BANKS) require %u",
				       n, cfg->num_banks);
	if (ni != cfg->num_images)
		return abota_error_set(err, -EINVAL,
				       "num_images is %u: ST TF-A r3 and U-Boot require exactly %u "
				       "(NR_OF_IMAGES_IN_FW_BANK)",
				       ni, cfg->num_images);
	if (md->version == 2) {
		size_t need = fwu_md_size(2, n, ni);
		if (md->desc_offset != FWU_MD_V2_DESC_OFFSET)
			return abota_error_set(err, -EINVAL,
					       "desc_offset is 0x%x: TF-A and U-Boot require 0x20",
					       md->desc_offset);
		if (md->img_entry_size != entry_size(n))
			return abota_error_set(err, -EINVAL,
					       "img_entry_size is %u: upstream TF-A requires %zu",
					       md->img_entry_size, entry_size(n));
		if (md->bank_info_entry_size != FWU_MD_BANK_INFO_SIZE)
			return abota_error_set(err, -EINVAL,
					       "bank_info_entry_size is %u: upstream TF-A requires "
					       "%u",
					       md->bank_info_entry_size, FWU_MD_BANK_INFO_SIZE);
		if (md->metadata_size != need)
			return abota_error_set(err, -EINVAL,
					       "metadata_size is %u: must be exactly %zu (ST TF-A r3 "
					       "computes the CRC over %zu bytes, U-Boot over "
					       "metadata_size-4)",
					       md->metadata_size, need, need - 4);
	}
	if (md->active_index >= n)
		return abota_error_set(err, -EINVAL,
				       "active_index is %u: TF-A and U-Boot require < %u",
				       md->active_index, n);
	if (md->previous_active_index >= n)
		return abota_error_set(err, -EINVAL,
				       "previous_active_index is %u: TF-A requires < %u",
				       md->previous_active_index, n);
	if (md->version == 2) {
		for (unsigned b = 0; b < FWU_MD_MAX_BANKS; b++) {
			uint8_t s = md->bank_state[b];
			if (b < n && !state_known(s))
				return abota_error_set(err, -EINVAL,
						       "bank_state[%u] is 0x%02x: not ACCEPTED (0xfc), "
						       "VALID (0xfe) or INVALID (0xff)",
						       b, s);
			if (b >= n && s != FWU_BANK_INVALID)
				return abota_error_set(err, -EINVAL,
						       "bank_state[%u] is 0x%02x: unused banks must be "
						       "0xff",
						       b, s);
		}
	}
	for (unsigned i = 0; i < ni; i++) {
		const struct fwu_md_image *img = &md->img[i];
		if (cfg->num_image_types) {
			bool known = false;
			for (unsigned t = 0; t < cfg->num_image_types; t++)
				known = known || guid_equal(&img->type_guid, &cfg->image_types[t]);
			if (!known) {
				char g[GUID_STR_LEN + 1];
				return abota_error_set(err, -EINVAL,
						       "img_entry[%u].img_type_guid %s: unknown image "
						       "type (BL2 panics)",
						       i, guid_format(&img->type_guid, g));
			}
		}
		for (unsigned b = 0; b < n; b++) {
			uint32_t acc = img->bank[b].accepted;
			if (acc > 1)
				return abota_error_set(err, -EINVAL,
						       "img_entry[%u].img_bank_info[%u].accepted is "
						       "0x%x: bits 31:1 must be zero",
						       i, b, acc);
			if (md->version == 2 && md->bank_state[b] == FWU_BANK_ACCEPTED && !acc)
				return abota_error_set(err, -EINVAL,
						       "bank %u is ACCEPTED but img_entry[%u] is not "
						       "accepted (U-Boot refuses such a bank)",
						       b, i);
		}
	}
	return 0;
}

int fwu_md_encode(const struct fwu_metadata *md, void *out, size_t cap, size_t *len_out,
		  struct abota_error *err)
{
	size_t size = fwu_md_size(md->version, md->num_banks, md->num_images);
	if (size == 0)
		return abota_error_set(err, -EINVAL,
				       "cannot encode: version %u with %u banks and %u images",
				       md->version, md->num_banks, md->num_images);
	if (cap < size)
		return abota_error_set(err, -ENOSPC, "cannot encode: %zu bytes needed, %zu given",
				       size, cap);
	uint8_t *buf = out;
	memset(buf, 0, size);
	put32(buf + 0x04, md->version);
	put32(buf + 0x08, md->active_index);
	put32(buf + 0x0C, md->previous_active_index);
	if (md->version == 2) {
		put32(buf + 0x10, (uint32_t)size);
		put16(buf + 0x14, FWU_MD_V2_DESC_OFFSET);
		put16(buf + 0x16, md->reserved1);
		memcpy(buf + 0x18, md->bank_state, 4);
		put32(buf + 0x1C, md->reserved2);
		buf[0x20] = md->num_banks;
		buf[0x21] = md->desc_reserved;
		put16(buf + 0x22, md->num_images);
		put16(buf + 0x24, (uint16_t)entry_size(md->num_banks));
		put16(buf + 0x26, FWU_MD_BANK_INFO_SIZE);
	}
	uint8_t *p = buf + header_size(md->version);
	for (unsigned i = 0; i < md->num_images; i++) {
		const struct fwu_md_image *img = &md->img[i];
		memcpy(p, img->type_guid.b, 16);
		memcpy(p + 16, img->location_guid.b, 16);
		p += FWU_MD_IMG_ENTRY_FIXED;
		for (unsigned b = 0; b < md->num_banks; b++) {
			memcpy(p, img->bank[b].img_guid.b, 16);
			put32(p + 16, img->bank[b].accepted);
			put32(p + 20, img->bank[b].reserved);
			p += FWU_MD_BANK_INFO_SIZE;
		}
	}
	put32(buf, fwu_md_crc32(buf + 4, size - 4));
	*len_out = size;
	return 0;
}

/* TF-A reads sizeof(struct fwu_metadata) bytes, checks the header
 * (fwu_metadata_sanity_check), then the CRC (fwu_metadata_crc_check). */
static int tfa_check(enum fwu_fw fw, const uint8_t *buf, size_t len,
		     const struct fwu_md_config *cfg, struct fwu_metadata *md,
		     struct abota_error *err)
{
	const char *who = fwu_fw_name(fw);
	uint32_t version = fw == FWU_FW_TFA_V1 ? 1 : 2;
	size_t size = fwu_md_size(version, cfg->num_banks, cfg->num_images);
	if (size == 0)
		return abota_error_set(err, -EINVAL, "%s: unsupported configuration", who);
	if (len < size)
		return abota_error_set(err, -EIO, "%s: short read (%zu of %zu bytes)", who, len,
				       size);
	parse_header(buf, version, md);
	if (version == 1) {
		md->num_banks = cfg->num_banks;
		md->num_images = cfg->num_images;
	} else {
		if (md->version != 2)
			return abota_error_set(err, -EINVAL, "%s: version is %u, must be 2", who,
					       md->version);
		if (md->desc_offset != FWU_MD_V2_DESC_OFFSET)
			return abota_error_set(err, -EINVAL, "%s: desc_offset is 0x%x, must be 0x20",
					       who, md->desc_offset);
		if (md->num_banks != cfg->num_banks)
			return abota_error_set(err, -EINVAL, "%s: num_banks is %u, must be %u", who,
					       md->num_banks, cfg->num_banks);
		if (fw == FWU_FW_TFA_ST_R3 && md->num_images != cfg->num_images)
			return abota_error_set(err, -EINVAL,
					       "%s: num_images is %u, must be exactly %u", who,
					       md->num_images, cfg->num_images);
		if (fw == FWU_FW_TFA_UPSTREAM) {
			if (md->num_images < 1 || md->num_images > cfg->num_images)
				return abota_error_set(err, -EINVAL,
						       "%s: num_images is %u, must be 1..%u", who,
						       md->num_images, cfg->num_images);
			if (md->img_entry_size != entry_size(cfg->num_banks))
				return abota_error_set(err, -EINVAL,
						       "%s: img_entry_size is %u, must be %zu", who,
						       md->img_entry_size, entry_size(cfg->num_banks));
			if (md->bank_info_entry_size != FWU_MD_BANK_INFO_SIZE)
				return abota_error_set(err, -EINVAL,
						       "%s: bank_info_entry_size is %u, must be 24",
						       who, md->bank_info_entry_size);
			if (md->metadata_size < FWU_MD_V2_HEADER_SIZE || md->metadata_size > size)
				return abota_error_set(err, -EINVAL,
						       "%s: metadata_size is %u, must be 32..%zu", who,
						       md->metadata_size, size);
		}
	}
	if (md->active_index >= cfg->num_banks)
		return abota_error_set(err, -EINVAL, "%s: active_index is %u, must be < %u", who,
				       md->active_index, cfg->num_banks);
	if (md->previous_active_index >= cfg->num_banks)
		return abota_error_set(err, -EINVAL,
				       "%s: previous_active_index is %u, must be < %u", who,
				       md->previous_active_index, cfg->num_banks);
	/* r3 and v1 ignore metadata_size for the CRC; upstream uses it. */
	size_t crc_len = fw == FWU_FW_TFA_UPSTREAM ? md->metadata_size : size;
	uint32_t computed = fwu_md_crc32(buf + 4, crc_len - 4);
	if (computed != md->crc32)
		return abota_error_set(err, -EBADMSG,
				       "%s: crc32 mismatch (stored 0x%08x, computed 0x%08x over bytes "
				       "4..%zu)",
				       who, md->crc32, computed, crc_len);
	/* What BL2 then uses: its compile-time shape. */
	md->num_banks = cfg->num_banks;
	if (md->num_images > cfg->num_images || version == 1)
		md->num_images = cfg->num_images;
	parse_entries(buf, version, md);
	return 0;
}

/* U-Boot: CRC over metadata_size-4 first, then the sanity checks. */
static int uboot_check(const uint8_t *buf, size_t len, const struct fwu_md_config *cfg,
		       struct fwu_metadata *md, struct abota_error *err)
{
	size_t size = fwu_md_size(cfg->version, cfg->num_banks, cfg->num_images);
	if (size == 0)
		return abota_error_set(err, -EINVAL, "U-Boot: unsupported configuration");
	size_t hdr = cfg->version == 1 ? size : FWU_MD_V2_HEADER_SIZE;
	if (len < hdr)
		return abota_error_set(err, -EIO, "U-Boot: short read (%zu of %zu bytes)", len, hdr);
	size_t crc_len = size;
	if (cfg->version == 2) {
		uint32_t msize = get32(buf + 0x10);
		if (msize < FWU_MD_V2_HEADER_SIZE || msize > len)
			return abota_error_set(err, -EIO,
					       "U-Boot: metadata_size is %u, cannot read it (%zu "
					       "bytes available)",
					       msize, len);
		crc_len = msize;
	}
	uint32_t stored = get32(buf), computed = fwu_md_crc32(buf + 4, crc_len - 4);
	if (stored != computed)
		return abota_error_set(err, -EBADMSG,
				       "U-Boot: crc32 mismatch (stored 0x%08x, computed 0x%08x over "
				       "bytes 4..%zu)",
				       stored, computed, crc_len);
	if (len < size)
		return abota_error_set(err, -EIO, "U-Boot: short read (%zu of %zu bytes)", len,
				       size);
	parse_header(buf, cfg->version, md);
	if (cfg->version == 1) {
		if (md->version != 1)
			return abota_error_set(err, -EINVAL, "U-Boot: version is %u, must be 1",
					       md->version);
		md->num_banks = cfg->num_banks;
		md->num_images = cfg->num_images;
	} else {
		if (md->version != 2)
			return abota_error_set(err, -EINVAL, "U-Boot: version is %u, must be 2",
					       md->version);
		if (md->desc_offset != FWU_MD_V2_DESC_OFFSET)
			return abota_error_set(err, -EINVAL,
					       "U-Boot: desc_offset is 0x%x, must be 0x20",
					       md->desc_offset);
		if (md->num_banks != cfg->num_banks)
			return abota_error_set(err, -EINVAL, "U-Boot: num_banks is %u, must be %u",
					       md->num_banks, cfg->num_banks);
		if (md->num_images != cfg->num_images)
			return abota_error_set(err, -EINVAL,
					       "U-Boot: num_images is %u, must be %u", md->num_images,
					       cfg->num_images);
	}
	if (md->active_index >= cfg->num_banks)
		return abota_error_set(err, -EINVAL, "U-Boot: active_index is %u, must be < %u",
				       md->active_index, cfg->num_banks);
	parse_entries(buf, cfg->version, md);
	return 0;
}

int fwu_md_fw_check(enum fwu_fw fw, const void *data, size_t len, const struct fwu_md_config *cfg,
		    struct fwu_metadata *out, struct abota_error *err)
{
	struct fwu_metadata md;
	struct fwu_md_config st;
	int ret;
	memset(&md, 0, sizeof(md));
	if (!cfg) {
		fwu_md_config_st(&st, fw == FWU_FW_TFA_V1 ? 1 : 2);
		cfg = &st;
	}
	if ((fw == FWU_FW_TFA_V1) != (cfg->version == 1) && fw != FWU_FW_UBOOT)
		return abota_error_set(err, -EINVAL, "%s does not read metadata v%u",
				       fwu_fw_name(fw), cfg->version);
	switch (fw) {
	case FWU_FW_TFA_V1:
	case FWU_FW_TFA_ST_R3:
	case FWU_FW_TFA_UPSTREAM:
		ret = tfa_check(fw, data, len, cfg, &md, err);
		break;
	case FWU_FW_UBOOT:
		ret = uboot_check(data, len, cfg, &md, err);
		break;
	default:
		ret = abota_error_set(err, -EINVAL, "unknown firmware %d", (int)fw);
	}
	if (ret == 0 && out)
		*out = md;
	return ret;
}

int fwu_md_init(struct fwu_metadata *md, uint32_t version, unsigned num_banks,
		unsigned num_images, struct abota_error *err)
{
	if (fwu_md_size(version, num_banks, num_images) == 0)
		return abota_error_set(err, -EINVAL,
				       "unsupported shape: version %u, %u banks, %u images "
				       "(banks 1..%u, images 1..%u)",
				       version, num_banks, num_images, FWU_MD_MAX_BANKS,
				       FWU_MD_MAX_IMAGES);
	memset(md, 0, sizeof(*md));
	md->version = version;
	md->active_index = 0;
	md->previous_active_index = num_banks - 1;
	md->num_banks = (uint8_t)num_banks;
	md->num_images = (uint16_t)num_images;
	if (version == 2) {
		md->metadata_size = (uint32_t)fwu_md_size(2, num_banks, num_images);
		md->desc_offset = FWU_MD_V2_DESC_OFFSET;
		md->img_entry_size = (uint16_t)entry_size(num_banks);
		md->bank_info_entry_size = FWU_MD_BANK_INFO_SIZE;
		for (unsigned b = 0; b < FWU_MD_MAX_BANKS; b++)
			md->bank_state[b] = b < num_banks ? FWU_BANK_ACCEPTED : FWU_BANK_INVALID;
	}
	for (unsigned i = 0; i < num_images; i++)
		for (unsigned b = 0; b < num_banks; b++)
			md->img[i].bank[b].accepted = 1;
	return 0;
}

const char *fwu_bank_state_name(uint8_t state)
{
	switch (state) {
	case FWU_BANK_ACCEPTED: return "accepted";
	case FWU_BANK_VALID: return "valid";
	case FWU_BANK_INVALID: return "invalid";
	}
	return "unknown";
}

int fwu_bank_state_parse(const char *s, uint8_t *out, struct abota_error *err)
{
	if (!strcasecmp(s, "A") || !strcasecmp(s, "accepted"))
		*out = FWU_BANK_ACCEPTED;
	else if (!strcasecmp(s, "V") || !strcasecmp(s, "valid"))
		*out = FWU_BANK_VALID;
	else if (!strcasecmp(s, "I") || !strcasecmp(s, "invalid"))
		*out = FWU_BANK_INVALID;
	else
		return abota_error_set(err, -EINVAL,
				       "unknown bank state '%.32s' (A|V|I, accepted|valid|invalid)", s);
	return 0;
}

uint8_t fwu_md_bank_state(const struct fwu_metadata *md, unsigned bank)
{
	if (bank >= md->num_banks)
		return FWU_BANK_INVALID;
	if (md->version == 2)
		return md->bank_state[bank];
	for (unsigned i = 0; i < md->num_images; i++)
		if (md->img[i].bank[bank].accepted == 0)
			return FWU_BANK_VALID;
	return FWU_BANK_ACCEPTED;
}

static void set_accepted(struct fwu_metadata *md, unsigned bank, uint32_t v)
{
	for (unsigned i = 0; i < md->num_images; i++)
		md->img[i].bank[bank].accepted = v;
}

static int check_bank(const struct fwu_metadata *md, unsigned bank, struct abota_error *err)
{
	if (bank >= md->num_banks)
		return abota_error_set(err, -EINVAL, "bank %u out of range (metadata has %u banks)",
				       bank, md->num_banks);
	if (md->active_index >= md->num_banks || md->previous_active_index >= md->num_banks)
		return abota_error_set(err, -EINVAL, "active/previous index out of range");
	return 0;
}

int fwu_md_invalidate(struct fwu_metadata *md, unsigned bank, struct abota_error *err)
{
	int ret = check_bank(md, bank, err);
	if (ret < 0)
		return ret;
	if (bank == md->active_index)
		return abota_error_set(err, -EBUSY, "refusing to invalidate the active bank %u",
				       bank);
	if (md->version == 2)
		md->bank_state[bank] = FWU_BANK_INVALID;
	set_accepted(md, bank, 0);
	return 0;
}

int fwu_md_activate(struct fwu_metadata *md, unsigned bank, struct abota_error *err)
{
	int ret = check_bank(md, bank, err);
	if (ret < 0)
		return ret;
	if (bank == md->active_index)
		return abota_error_set(err, -EALREADY, "bank %u is already active", bank);
	md->previous_active_index = md->active_index;
	md->active_index = bank;
	if (md->version == 2)
		md->bank_state[bank] = FWU_BANK_VALID;
	set_accepted(md, bank, 0);
	return 0;
}

int fwu_md_accept(struct fwu_metadata *md, unsigned bank, struct abota_error *err)
{
	int ret = check_bank(md, bank, err);
	if (ret < 0)
		return ret;
	if (md->version == 2 && md->bank_state[bank] == FWU_BANK_INVALID)
		return abota_error_set(err, -EINVAL,
				       "bank %u is INVALID: only a VALID (trial) or ACCEPTED bank "
				       "can be accepted",
				       bank);
	unsigned prev;
	if (md->previous_active_index != bank)
		prev = md->previous_active_index;
	else if (md->active_index != bank)
		prev = md->active_index;
	else
		prev = (bank + 1) % md->num_banks;
	md->active_index = bank;
	md->previous_active_index = prev;
	if (md->version == 2)
		md->bank_state[bank] = FWU_BANK_ACCEPTED;
	set_accepted(md, bank, 1);
	return 0;
}

int fwu_md_reject(struct fwu_metadata *md, unsigned bank, struct abota_error *err)
{
	int ret = check_bank(md, bank, err);
	if (ret < 0)
		return ret;
	unsigned target = md->previous_active_index;
	if (target == bank)
		return abota_error_set(err, -EINVAL,
				       "cannot reject bank %u: previous_active_index is the same bank "
				       "(no fallback recorded)",
				       bank);
	if (md->version == 2 && md->bank_state[target] != FWU_BANK_ACCEPTED &&
	    md->bank_state[target] != FWU_BANK_VALID)
		return abota_error_set(err, -EINVAL,
				       "cannot reject bank %u: fallback bank %u is %s", bank, target,
				       fwu_bank_state_name(md->bank_state[target]));
	if (md->version == 2)
		md->bank_state[bank] = FWU_BANK_INVALID;
	set_accepted(md, bank, 0);
	md->active_index = target;
	md->previous_active_index = bank;
	return 0;
}

int fwu_md_set_state(struct fwu_metadata *md, unsigned bank, uint8_t state,
		     struct abota_error *err)
{
	int ret = check_bank(md, bank, err);
	if (ret < 0)
		return ret;
	if (!state_known(state))
		return abota_error_set(err, -EINVAL, "unknown bank state 0x%02x", state);
	if (md->version != 2)
		return abota_error_set(err, -EINVAL, "metadata v%u has no bank states",
				       md->version);
	md->bank_state[bank] = state;
	set_accepted(md, bank, state == FWU_BANK_ACCEPTED ? 1 : 0);
	return 0;
}

/* --- presentation ------------------------------------------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	if (sb->oom)
		return;
	va_list ap;
	for (;;) {
		size_t room = sb->cap - sb->len;
		va_start(ap, fmt);
		int n = vsnprintf(sb->p ? sb->p + sb->len : NULL, sb->p ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			sb->oom = true;
			return;
		}
		if (sb->p && (size_t)n < room) {
			sb->len += (size_t)n;
			return;
		}
		size_t ncap = (sb->cap ? sb->cap : 256) * 2 + (size_t)n;
		char *np = realloc(sb->p, ncap);
		if (!np) {
			sb->oom = true;
			return;
		}
		sb->p = np;
		sb->cap = ncap;
	}
}

static char bank_letter(unsigned b)
{
	return (char)('A' + b);
}

char *fwu_md_format(const struct fwu_metadata *md)
{
	struct sbuf sb = { 0 };
	char g[GUID_STR_LEN + 1];
	sb_printf(&sb, "version                %u\n", md->version);
	sb_printf(&sb, "crc32                  0x%08x\n", md->crc32);
	sb_printf(&sb, "active_index           %u (%c)\n", md->active_index,
		  md->active_index < 26 ? bank_letter(md->active_index) : '?');
	sb_printf(&sb, "previous_active_index  %u (%c)\n", md->previous_active_index,
		  md->previous_active_index < 26 ? bank_letter(md->previous_active_index) : '?');
	if (md->version == 2) {
		sb_printf(&sb, "metadata_size          %u\n", md->metadata_size);
		sb_printf(&sb, "desc_offset            0x%x\n", md->desc_offset);
		sb_printf(&sb, "num_banks              %u\n", md->num_banks);
		sb_printf(&sb, "num_images             %u\n", md->num_images);
		sb_printf(&sb, "img_entry_size         %u\n", md->img_entry_size);
		sb_printf(&sb, "bank_info_entry_size   %u\n", md->bank_info_entry_size);
		if (md->vendor_size)
			sb_printf(&sb, "vendor data            %u bytes\n", md->vendor_size);
	} else {
		sb_printf(&sb, "num_banks              %u (not stored in v1)\n", md->num_banks);
		sb_printf(&sb, "num_images             %u (not stored in v1)\n", md->num_images);
	}
	sb_printf(&sb, "\nbank  state     raw   active  previous\n");
	for (unsigned b = 0; b < md->num_banks; b++) {
		uint8_t s = fwu_md_bank_state(md, b);
		if (md->version == 2)
			sb_printf(&sb, "%-5c %-9s 0x%02x  %-7s %s\n", bank_letter(b),
				  fwu_bank_state_name(s), s, b == md->active_index ? "yes" : "",
				  b == md->previous_active_index ? "yes" : "");
		else
			sb_printf(&sb, "%-5c %-9s -     %-7s %s\n", bank_letter(b),
				  fwu_bank_state_name(s), b == md->active_index ? "yes" : "",
				  b == md->previous_active_index ? "yes" : "");
	}
	for (unsigned i = 0; i < md->num_images; i++) {
		const struct fwu_md_image *img = &md->img[i];
		sb_printf(&sb, "\nimage %u\n", i);
		sb_printf(&sb, "  img_type_guid  %s\n", guid_format(&img->type_guid, g));
		sb_printf(&sb, "  location_guid  %s\n", guid_format(&img->location_guid, g));
		for (unsigned b = 0; b < md->num_banks; b++)
			sb_printf(&sb, "  bank %c  img_guid %s  accepted %u\n", bank_letter(b),
				  guid_format(&img->bank[b].img_guid, g), img->bank[b].accepted);
	}
	if (sb.oom) {
		free(sb.p);
		return NULL;
	}
	return sb.p;
}

void *fwu_md_to_json(const struct fwu_metadata *md)
{
	char g[GUID_STR_LEN + 1];
	struct json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	json_object_object_add(o, "version", json_object_new_int64(md->version));
	json_object_object_add(o, "crc32", json_object_new_int64(md->crc32));
	json_object_object_add(o, "active_index", json_object_new_int64(md->active_index));
	json_object_object_add(o, "previous_active_index",
			       json_object_new_int64(md->previous_active_index));
	if (md->version == 2) {
		json_object_object_add(o, "metadata_size", json_object_new_int64(md->metadata_size));
		json_object_object_add(o, "desc_offset", json_object_new_int64(md->desc_offset));
		json_object_object_add(o, "img_entry_size",
				       json_object_new_int64(md->img_entry_size));
		json_object_object_add(o, "bank_info_entry_size",
				       json_object_new_int64(md->bank_info_entry_size));
		json_object_object_add(o, "vendor_size", json_object_new_int64(md->vendor_size));
	}
	json_object_object_add(o, "num_banks", json_object_new_int64(md->num_banks));
	json_object_object_add(o, "num_images", json_object_new_int64(md->num_images));
	struct json_object *banks = json_object_new_array();
	for (unsigned b = 0; b < md->num_banks; b++) {
		struct json_object *bo = json_object_new_object();
		char name[2] = { bank_letter(b), 0 };
		uint8_t s = fwu_md_bank_state(md, b);
		json_object_object_add(bo, "index", json_object_new_int64(b));
		json_object_object_add(bo, "name", json_object_new_string(name));
		json_object_object_add(bo, "state", json_object_new_string(fwu_bank_state_name(s)));
		if (md->version == 2)
			json_object_object_add(bo, "state_raw", json_object_new_int64(s));
		json_object_array_add(banks, bo);
	}
	json_object_object_add(o, "banks", banks);
	struct json_object *imgs = json_object_new_array();
	for (unsigned i = 0; i < md->num_images; i++) {
		const struct fwu_md_image *img = &md->img[i];
		struct json_object *io = json_object_new_object();
		json_object_object_add(io, "img_type_guid",
				       json_object_new_string(guid_format(&img->type_guid, g)));
		json_object_object_add(io, "location_guid",
				       json_object_new_string(guid_format(&img->location_guid, g)));
		struct json_object *bi = json_object_new_array();
		for (unsigned b = 0; b < md->num_banks; b++) {
			struct json_object *x = json_object_new_object();
			json_object_object_add(
				x, "img_guid",
				json_object_new_string(guid_format(&img->bank[b].img_guid, g)));
			json_object_object_add(x, "accepted",
					       json_object_new_int64(img->bank[b].accepted));
			json_object_array_add(bi, x);
		}
		json_object_object_add(io, "img_bank_info", bi);
		json_object_array_add(imgs, io);
	}
	json_object_object_add(o, "img_entry", imgs);
	return o;
}
