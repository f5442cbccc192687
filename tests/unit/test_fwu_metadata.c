/* Unit tests of the FWU metadata codec: the reference dumps of
 * specs/fwu-metadata.md §1.8 byte for byte, consumer rules, bad input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "abota/fwu_metadata.h"

/* Factory v2 (mkfwumdata -g -i 1 -b 2 -v 2 -a 0 -p 1 -s A,A), §1.8. */
static const uint8_t ref_v2_factory[120] = {
	0xb4, 0x08, 0x4b, 0xd1, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
	0x78, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0xfc, 0xfc, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
	0x02, 0x00, 0x01, 0x00, 0x50, 0x00, 0x18, 0x00, 0x83, 0xdf, 0xd5, 0x19, 0xb0, 0x11, 0x7b, 0x45,
	0xbe, 0x2c, 0x75, 0x59, 0xc1, 0x31, 0x42, 0xa5, 0xa0, 0x84, 0x7a, 0x8a, 0x87, 0x83, 0xf6, 0x40,
	0xab, 0x41, 0xa8, 0xb9, 0xa5, 0xa6, 0x0d, 0x23, 0x93, 0x4c, 0xd8, 0x4f, 0xef, 0x54, 0x3f, 0x46,
	0xa7, 0xef, 0xae, 0x25, 0xff, 0x88, 0x70, 0x87, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x52, 0x49, 0xc5, 0x09, 0xbf, 0xd5, 0xaf, 0x45, 0xac, 0xee, 0x33, 0x53, 0x03, 0x76, 0x6f, 0xb3,
	0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

/* The v2 reference with the header changes of the other two dumps. */
static void ref_v2_variant(uint8_t *out, const uint8_t crc[4], uint32_t active, uint32_t prev,
			   uint8_t s0, uint8_t s1)
{
	memcpy(out, ref_v2_factory, sizeof(ref_v2_factory));
	memcpy(out, crc, 4);
	out[0x08] = (uint8_t)active;
	out[0x0C] = (uint8_t)prev;
	out[0x18] = s0;
	out[0x19] = s1;
}

/* What ST's update_metadata.sh passes to mkfwumdata. */
static void st_md(struct fwu_metadata *md, uint32_t version, uint32_t a, uint32_t p, uint8_t s0,
		  uint8_t s1)
{
	assert_int_equal(fwu_md_init(md, version, 2, 1, NULL), 0);
	md->active_index = a;
	md->previous_active_index = p;
	md->bank_state[0] = version == 2 ? s0 : 0;
	md->bank_state[1] = version == 2 ? s1 : 0;
	md->img[0].type_guid = GUID_ST_FIP_TYPE;
	md->img[0].location_guid = GUID_FWU_METADATA_TYPE;
	md->img[0].bank[0].img_guid = GUID_ST_FIP_A_UUID;
	md->img[0].bank[1].img_guid = GUID_ST_FIP_B_UUID;
}

static void encode_ok(const struct fwu_metadata *md, uint8_t *buf, size_t *len)
{
	struct abota_error err = { 0 };
	if (fwu_md_encode(md, buf, FWU_MD_MAX_SIZE, len, &err) < 0)
		fail_msg("encode: %s", err.msg);
}

static void assert_bytes(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len)
{
	assert_int_equal(got_len, want_len);
	for (size_t i = 0; i < want_len; i++)
		if (got[i] != want[i])
			fail_msg("byte 0x%02zx: got %02x, want %02x", i, got[i], want[i]);
}

static void test_v2_reference_dumps(void **state)
{
	(void)state;
	uint8_t buf[FWU_MD_MAX_SIZE], want[120];
	size_t len;
	struct fwu_metadata md;

	st_md(&md, 2, 0, 1, FWU_BANK_ACCEPTED, FWU_BANK_ACCEPTED);
	encode_ok(&md, buf, &len);
	assert_bytes(buf, len, ref_v2_factory, sizeof(ref_v2_factory));

	st_md(&md, 2, 1, 0, FWU_BANK_ACCEPTED, FWU_BANK_VALID);
	encode_ok(&md, buf, &len);
	ref_v2_variant(want, (const uint8_t[]){ 0x6b, 0xfb, 0x3d, 0xea }, 1, 0, 0xfc, 0xfe);
	assert_bytes(buf, len, want, sizeof(want));

	st_md(&md, 2, 1, 1, FWU_BANK_ACCEPTED, FWU_BANK_ACCEPTED);
	encode_ok(&md, buf, &len);
	ref_v2_variant(want, (const uint8_t[]){ 0x8b, 0x38, 0xb3, 0xe0 }, 1, 1, 0xfc, 0xfc);
	assert_bytes(buf, len, want, sizeof(want));
}

static void test_v2_decode_reference(void **state)
{
	(void)state;
	struct fwu_metadata md;
	struct abota_error err = { 0 };
	if (fwu_md_decode(ref_v2_factory, sizeof(ref_v2_factory), NULL, 0, &md, &err) < 0)
		fail_msg("decode: %s", err.msg);
	assert_int_equal(md.version, 2);
	assert_int_equal(md.crc32, 0xd14b08b4);
	assert_int_equal(md.active_index, 0);
	assert_int_equal(md.previous_active_index, 1);
	assert_int_equal(md.metadata_size, 120);
	assert_int_equal(md.desc_offset, 0x20);
	assert_int_equal(md.num_banks, 2);
	assert_int_equal(md.num_images, 1);
	assert_int_equal(md.img_entry_size, 0x50);
	assert_int_equal(md.bank_info_entry_size, 0x18);
	assert_int_equal(md.bank_state[0], 0xfc);
	assert_int_equal(md.bank_state[2], 0xff);
	assert_true(guid_equal(&md.img[0].type_guid, &GUID_ST_FIP_TYPE));
	assert_true(guid_equal(&md.img[0].bank[1].img_guid, &GUID_ST_FIP_B_UUID));
	char g[GUID_STR_LEN + 1];
	assert_string_equal(guid_format(&md.img[0].bank[0].img_guid, g),
			    "4fd84c93-54ef-463f-a7ef-ae25ff887087");
	struct fwu_md_config cfg;
	fwu_md_config_st(&cfg, 2);
	assert_int_equal(fwu_md_validate(&md, &cfg, &err), 0);
	for (int fw = FWU_FW_TFA_ST_R3; fw <= FWU_FW_UBOOT; fw++)
		if (fwu_md_fw_check(fw, ref_v2_factory, sizeof(ref_v2_factory), &cfg, NULL, &err) < 0)
			fail_msg("%s: %s", fwu_fw_name(fw), err.msg);
	/* Round trip. */
	uint8_t buf[FWU_MD_MAX_SIZE];
	size_t len;
	encode_ok(&md, buf, &len);
	assert_bytes(buf, len, ref_v2_factory, sizeof(ref_v2_factory));
	/* A partition read (more bytes than the structure) decodes the same. */
	uint8_t part[4096];
	memset(part, 0xa5, sizeof(part));
	memcpy(part, ref_v2_factory, sizeof(ref_v2_factory));
	assert_int_equal(fwu_md_decode(part, sizeof(part), &cfg, 0, &md, NULL), 0);
	assert_int_equal(fwu_md_fw_check(FWU_FW_TFA_ST_R3, part, sizeof(part), &cfg, NULL, NULL), 0);
}

static void test_v1_reference(void **state)
{
	(void)state;
	uint8_t buf[FWU_MD_MAX_SIZE];
	size_t len;
	struct fwu_metadata md, dec;
	st_md(&md, 1, 0, 1, 0, 0);
	encode_ok(&md, buf, &len);
	assert_int_equal(len, 96);
	static const uint8_t crc[4] = { 0x60, 0x53, 0xcf, 0x91 };
	assert_memory_equal(buf, crc, 4);
	/* Header, then entry 0 at 0x10: the v2 entry bytes, moved. */
	static const uint8_t hdr[16] = { 0x60, 0x53, 0xcf, 0x91, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0 };
	assert_memory_equal(buf, hdr, 16);
	assert_memory_equal(buf + 0x10, ref_v2_factory + 0x28, 80);
	assert_int_equal(buf[0x40], 1); /* bank 0 accepted */
	assert_int_equal(buf[0x58], 1); /* bank 1 accepted */

	struct fwu_md_config cfg;
	fwu_md_config_st(&cfg, 1);
	struct abota_error err = { 0 };
	if (fwu_md_decode(buf, len, &cfg, 0, &dec, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(dec.version, 1);
	assert_int_equal(dec.num_banks, 2);
	assert_int_equal(fwu_md_validate(&dec, &cfg, NULL), 0);
	assert_int_equal(fwu_md_fw_check(FWU_FW_TFA_V1, buf, len, &cfg, NULL, NULL), 0);
	assert_int_equal(fwu_md_fw_check(FWU_FW_UBOOT, buf, len, &cfg, NULL, NULL), 0);
	/* Without a configuration the version field decides (v1 = 2 banks, 1 image). */
	assert_int_equal(fwu_md_decode(buf, len, NULL, 0, &dec, NULL), 0);
	assert_int_equal(dec.version, 1);
	/* v1 trial = an image of the bank not accepted. */
	assert_int_equal(fwu_md_bank_state(&dec, 1), FWU_BANK_ACCEPTED);
	assert_int_equal(fwu_md_activate(&dec, 1, NULL), 0);
	assert_int_equal(fwu_md_bank_state(&dec, 1), FWU_BANK_VALID);
	assert_int_equal(dec.img[0].bank[1].accepted, 0);

	/* TF-A v1 does not check the version field; U-Boot requires 1. */
	uint8_t v0[96];
	memcpy(v0, buf, 96);
	v0[4] = 0;
	uint32_t c = fwu_md_crc32(v0 + 4, 92);
	memcpy(v0, &c, 4);
	assert_int_equal(fwu_md_fw_check(FWU_FW_TFA_V1, v0, 96, &cfg, NULL, NULL), 0);
	assert_int_equal(fwu_md_fw_check(FWU_FW_UBOOT, v0, 96, &cfg, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "version is 0"));
	assert_int_equal(fwu_md_decode(v0, 96, &cfg, 0, &dec, NULL), 0);
	assert_int_equal(fwu_md_validate(&dec, &cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "version is 0"));
}

/* Re-sign a modified v2 blob with the CRC over [4, crc_end). */
static void resign(uint8_t *buf, size_t crc_end)
{
	uint32_t c = fwu_md_crc32(buf + 4, crc_end - 4);
	buf[0] = (uint8_t)c;
	buf[1] = (uint8_t)(c >> 8);
	buf[2] = (uint8_t)(c >> 16);
	buf[3] = (uint8_t)(c >> 24);
}

static void decode_fails(const uint8_t *buf, size_t len, const struct fwu_md_config *cfg,
			 const char *needle)
{
	struct fwu_metadata md;
	memset(&md, 0x5a, sizeof(md));
	struct fwu_metadata before = md;
	struct abota_error err = { 0 };
	int ret = fwu_md_decode(buf, len, cfg, 0, &md, &err);
	if (ret >= 0)
		fail_msg("decode succeeded, expected '%s'", needle);
	if (!strstr(err.msg, needle))
		fail_msg("error '%s' does not contain '%s'", err.msg, needle);
	assert_memory_equal(&md, &before, sizeof(md)); /* out untouched */
}

static void validate_fails(const uint8_t *buf, size_t len, const char *needle)
{
	struct fwu_metadata md;
	struct fwu_md_config cfg;
	struct abota_error err = { 0 };
	fwu_md_config_st(&cfg, 2);
	if (fwu_md_decode(buf, len, &cfg, 0, &md, &err) < 0)
		fail_msg("decode: %s", err.msg);
	if (fwu_md_validate(&md, &cfg, &err) >= 0)
		fail_msg("validate succeeded, expected '%s'", needle);
	if (!strstr(err.msg, needle))
		fail_msg("error '%s' does not contain '%s'", err.msg, needle);
}

static void test_bad_input(void **state)
{
	(void)state;
	uint8_t b[120];
	struct fwu_md_config cfg;
	fwu_md_config_st(&cfg, 2);

	decode_fails(ref_v2_factory, 0, NULL, "too short");
	decode_fails(ref_v2_factory, 7, NULL, "too short");
	decode_fails(ref_v2_factory, 20, NULL, "too short: 20 bytes, a v2 header is 32");
	decode_fails(ref_v2_factory, 36, NULL, "too short");
	decode_fails(ref_v2_factory, 119, NULL, "metadata_size is 120");

	memcpy(b, ref_v2_factory, 120);
	b[0x50] ^= 1;
	decode_fails(b, 120, NULL, "crc32 mismatch (stored 0xd14b08b4, computed 0x");

	memcpy(b, ref_v2_factory, 120);
	b[4] = 3;
	resign(b, 120);
	decode_fails(b, 120, NULL, "version: unknown version 3");
	decode_fails(b, 120, &cfg, "unknown version 3");
	b[4] = 1;
	resign(b, 120);
	decode_fails(b, 120, &cfg, "version is 1, expected 2");

	memcpy(b, ref_v2_factory, 120);
	b[0x14] = 0x28;
	resign(b, 120);
	decode_fails(b, 120, NULL, "desc_offset is 0x28, must be 0x20");
	b[0x14] = 0;
	resign(b, 120);
	decode_fails(b, 120, NULL, "desc_offset is 0");

	memcpy(b, ref_v2_factory, 120);
	b[0x20] = 0;
	resign(b, 120);
	decode_fails(b, 120, NULL, "num_banks is 0");
	b[0x20] = 5;
	resign(b, 120);
	decode_fails(b, 120, NULL, "num_banks is 5");
	b[0x20] = 3; /* 3 banks need 40 + 104 bytes */
	resign(b, 120);
	decode_fails(b, 120, NULL, "metadata_size is 120, but 1 images of 3 banks need 144");

	memcpy(b, ref_v2_factory, 120);
	b[0x22] = 0;
	resign(b, 120);
	decode_fails(b, 120, NULL, "num_images is 0");
	b[0x22] = 0xff;
	b[0x23] = 0xff;
	resign(b, 120);
	decode_fails(b, 120, NULL, "num_images is 65535");

	/* metadata_size (SC-134) */
	static const uint32_t sizes[] = { 0x20, 0xFFFFFFFF, 121 };
	for (size_t i = 0; i < 3; i++) {
		memcpy(b, ref_v2_factory, 120);
		b[0x10] = (uint8_t)sizes[i];
		b[0x11] = (uint8_t)(sizes[i] >> 8);
		b[0x12] = (uint8_t)(sizes[i] >> 16);
		b[0x13] = (uint8_t)(sizes[i] >> 24);
		resign(b, 120);
		decode_fails(b, 120, NULL, "metadata_size is");
	}

	/* Decodes, but no consumer would take it. */
	memcpy(b, ref_v2_factory, 120);
	b[0x08] = 2;
	resign(b, 120);
	validate_fails(b, 120, "active_index is 2: TF-A and U-Boot require < 2");
	memcpy(b, ref_v2_factory, 120);
	b[0x0C] = 7;
	resign(b, 120);
	validate_fails(b, 120, "previous_active_index is 7");
	/* SC-137: an unknown img_type_guid is invalid (BL2 panics on it). */
	memcpy(b, ref_v2_factory, 120);
	b[0x28] ^= 0xff; /* img_type_guid */
	resign(b, 120);
	validate_fails(b, 120, "img_entry[0].img_type_guid 19d5df7c-11b0-457b-be2c-7559c13142a5: "
			       "unknown image type");
	/* SC-135: img_entry_size != 0x50 or bank_info_entry_size != 0x18 is
	 * invalid (upstream TF-A's check). */
	memcpy(b, ref_v2_factory, 120);
	b[0x24] = 0x48;
	resign(b, 120);
	validate_fails(b, 120, "img_entry_size is 72: upstream TF-A requires 80");
	memcpy(b, ref_v2_factory, 120);
	b[0x26] = 0x10;
	resign(b, 120);
	validate_fails(b, 120, "bank_info_entry_size is 16");
	memcpy(b, ref_v2_factory, 120);
	b[0x19] = 0x12;
	resign(b, 120);
	validate_fails(b, 120, "bank_state[1] is 0x12");
	memcpy(b, ref_v2_factory, 120);
	b[0x1a] = 0xfc;
	resign(b, 120);
	validate_fails(b, 120, "bank_state[2] is 0xfc: unused banks must be 0xff");
	memcpy(b, ref_v2_factory, 120);
	b[0x70] = 0; /* bank 1 ACCEPTED, image not accepted */
	resign(b, 120);
	validate_fails(b, 120, "bank 1 is ACCEPTED but img_entry[0] is not accepted");
	memcpy(b, ref_v2_factory, 120);
	b[0x58] = 3;
	resign(b, 120);
	validate_fails(b, 120, "accepted is 0x3");

	/* Shape differs from the build: decodes, validate names the rule. */
	struct fwu_metadata md;
	assert_int_equal(fwu_md_init(&md, 2, 2, 2, NULL), 0);
	md.img[0].type_guid = GUID_ST_FIP_TYPE;
	md.img[1].type_guid = GUID_ST_FIP_TYPE;
	uint8_t big[FWU_MD_MAX_SIZE];
	size_t len;
	encode_ok(&md, big, &len);
	assert_int_equal(len, 200);
	validate_fails(big, len, "num_images is 2: ST TF-A r3 and U-Boot require exactly 1");
	struct abota_error err = { 0 };
	assert_int_equal(fwu_md_fw_check(FWU_FW_TFA_ST_R3, big, len, &cfg, NULL, &err), -EINVAL);
	assert_string_equal(err.msg, "ST TF-A r3: num_images is 2, must be exactly 1");
	assert_int_equal(fwu_md_fw_check(FWU_FW_TFA_UPSTREAM, big, len, &cfg, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "num_images is 2, must be 1..1"));

	/* Out of range shapes are refused by init and encode. */
	assert_int_equal(fwu_md_init(&md, 2, 5, 1, &err), -EINVAL);
	assert_int_equal(fwu_md_init(&md, 3, 2, 1, &err), -EINVAL);
	assert_int_equal(fwu_md_init(&md, 2, 2, 1, NULL), 0);
	md.num_banks = 0;
	assert_int_equal(fwu_md_encode(&md, big, sizeof(big), &len, &err), -EINVAL);
	md.num_banks = 2;
	assert_int_equal(fwu_md_encode(&md, big, 119, &len, &err), -ENOSPC);
}

/* metadata_size != 120: ST r3 and U-Boot disagree (§0.2, SC-134). */
static void test_crc_range_disagreement(void **state)
{
	(void)state;
	struct fwu_md_config cfg;
	fwu_md_config_st(&cfg, 2);
	uint8_t b[120];
	struct abota_error err = { 0 };

	/* metadata_size 119, CRC over 116 bytes as r3 computes it. */
	memcpy(b, ref_v2_factory, 120);
	b[0x10] = 119;
	resign(b, 120);
	assert_int_equal(fwu_md_fw_check(FWU_FW_TFA_ST_R3, b, 120, &cfg, NULL, &err), 0);
	assert_int_equal(fwu_md_fw_check(FWU_FW_UBOOT, b, 120, &cfg, NULL, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "U-Boot: crc32 mismatch"));
	assert_int_equal(fwu_md_fw_check(FWU_FW_TFA_UPSTREAM, b, 120, &cfg, NULL, &err), -EBADMSG);
	decode_fails(b, 120, NULL, "crc32 mismatch");

	/* metadata_size 119, CRC over 115 bytes as U-Boot computes it. */
	resign(b, 119);
	assert_int_equal(fwu_md_fw_check(FWU_FW_TFA_ST_R3, b, 120, &cfg, NULL, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "ST TF-A r3: crc32 mismatch"));
	assert_int_equal(fwu_md_fw_check(FWU_FW_UBOOT, b, 120, &cfg, NULL, NULL), 0);
	assert_int_equal(fwu_md_fw_check(FWU_FW_TFA_UPSTREAM, b, 120, &cfg, NULL, NULL), 0);
	decode_fails(b, 120, NULL, "metadata_size is 119, but 1 images of 2 banks need 120");

	/* Short reads per consumer. */
	assert_int_equal(fwu_md_fw_check(FWU_FW_TFA_ST_R3, ref_v2_factory, 100, &cfg, NULL, &err),
			 -EIO);
	assert_string_equal(err.msg, "ST TF-A r3: short read (100 of 120 bytes)");
	assert_int_equal(fwu_md_fw_check(FWU_FW_TFA_V1, ref_v2_factory, 120, &cfg, NULL, &err),
			 -EINVAL);
}

static void test_transitions(void **state)
{
	(void)state;
	struct fwu_metadata md;
	struct abota_error err = { 0 };
	st_md(&md, 2, 0, 1, FWU_BANK_ACCEPTED, FWU_BANK_ACCEPTED);
	assert_int_equal(fwu_md_invalidate(&md, 0, &err), -EBUSY);
	assert_int_equal(fwu_md_invalidate(&md, 1, &err), 0);
	assert_int_equal(md.bank_state[1], FWU_BANK_INVALID);
	assert_int_equal(md.img[0].bank[1].accepted, 0);
	assert_int_equal(fwu_md_accept(&md, 1, &err), -EINVAL);
	assert_int_equal(fwu_md_activate(&md, 1, &err), 0);
	assert_int_equal(md.active_index, 1);
	assert_int_equal(md.previous_active_index, 0);
	assert_int_equal(md.bank_state[1], FWU_BANK_VALID);
	assert_int_equal(fwu_md_validate(&md, NULL, &err), 0);
	struct fwu_metadata trial = md;
	assert_int_equal(fwu_md_accept(&md, 1, &err), 0);
	assert_int_equal(md.active_index, 1);
	assert_int_equal(md.previous_active_index, 0);
	assert_int_equal(md.bank_state[0], FWU_BANK_ACCEPTED);
	assert_int_equal(md.bank_state[1], FWU_BANK_ACCEPTED);
	assert_int_equal(md.img[0].bank[1].accepted, 1);
	md = trial;
	assert_int_equal(fwu_md_reject(&md, 1, &err), 0);
	assert_int_equal(md.active_index, 0);
	assert_int_equal(md.previous_active_index, 1);
	assert_int_equal(md.bank_state[1], FWU_BANK_INVALID);
	assert_int_equal(fwu_md_validate(&md, NULL, &err), 0);
	/* No fallback recorded (ST's accept writes a == p). */
	st_md(&md, 2, 1, 1, FWU_BANK_ACCEPTED, FWU_BANK_ACCEPTED);
	assert_int_equal(fwu_md_reject(&md, 1, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "no fallback"));
	/* Fallback bank invalid. */
	st_md(&md, 2, 1, 0, FWU_BANK_INVALID, FWU_BANK_VALID);
	assert_int_equal(fwu_md_reject(&md, 1, &err), -EINVAL);
	assert_int_equal(fwu_md_activate(&md, 2, &err), -EINVAL);
	uint8_t s;
	assert_int_equal(fwu_bank_state_parse("V", &s, NULL), 0);
	assert_int_equal(s, 0xfe);
	assert_int_equal(fwu_bank_state_parse("Accepted", &s, NULL), 0);
	assert_int_equal(s, 0xfc);
	assert_int_equal(fwu_bank_state_parse("X", &s, &err), -EINVAL);
}

static void test_guid(void **state)
{
	(void)state;
	struct guid g, r;
	char buf[GUID_STR_LEN + 1];
	struct abota_error err = { 0 };
	assert_int_equal(guid_parse("4FD84C93-54EF-463F-A7EF-AE25FF887087", &g, NULL), 0);
	assert_true(guid_equal(&g, &GUID_ST_FIP_A_UUID));
	assert_string_equal(guid_format(&g, buf), "4fd84c93-54ef-463f-a7ef-ae25ff887087");
	static const uint8_t le[4] = { 0x93, 0x4c, 0xd8, 0x4f };
	assert_memory_equal(g.b, le, 4);
	guid_swap_rfc4122(&g, &r);
	assert_int_equal(r.b[0], 0x4f);
	assert_int_equal(guid_parse("4fd84c93-54ef-463f-a7ef-ae25ff88708", &g, &err), -EINVAL);
	assert_int_equal(guid_parse("4fd84c93x54ef-463f-a7ef-ae25ff887087", &g, &err), -EINVAL);
	assert_int_equal(guid_parse("4fd84c93-54ef-463f-a7ef-ae25ff88708g", &g, &err), -EINVAL);
	assert_int_equal(guid_parse(NULL, &g, &err), -EINVAL);
}

/* Every truncation and every single-bit flip of the reference: no crash,
 * flips in covered bytes are caught by the CRC. */
static void test_mutations(void **state)
{
	(void)state;
	struct fwu_md_config cfg;
	fwu_md_config_st(&cfg, 2);
	uint8_t b[120];
	struct fwu_metadata md;
	for (size_t len = 0; len < 120; len++) {
		assert_true(fwu_md_decode(ref_v2_factory, len, NULL, 0, &md, NULL) < 0);
		for (int fw = 0; fw < FWU_FW_COUNT; fw++)
			assert_true(fwu_md_fw_check(fw, ref_v2_factory, len, &cfg, NULL, NULL) < 0);
	}
	for (size_t i = 0; i < 120 * 8; i++) {
		memcpy(b, ref_v2_factory, 120);
		b[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_true(fwu_md_decode(b, 120, NULL, 0, &md, NULL) < 0);
		for (int fw = FWU_FW_TFA_ST_R3; fw < FWU_FW_COUNT; fw++)
			assert_true(fwu_md_fw_check(fw, b, 120, &cfg, NULL, NULL) < 0);
		/* Re-signed: must decode or fail cleanly. */
		resign(b, 120);
		if (fwu_md_decode(b, 120, NULL, 0, &md, NULL) == 0)
			(void)fwu_md_validate(&md, &cfg, NULL);
		if (fwu_md_decode(b, 120, NULL, FWU_MD_DECODE_IGNORE_CRC, &md, NULL) == 0) {
			char *s = fwu_md_format(&md);
			assert_non_null(s);
			free(s);
		}
	}
}

static void test_format(void **state)
{
	(void)state;
	struct fwu_metadata md;
	assert_int_equal(fwu_md_decode(ref_v2_factory, 120, NULL, 0, &md, NULL), 0);
	char *s = fwu_md_format(&md);
	assert_non_null(s);
	assert_non_null(strstr(s, "active_index           0 (A)"));
	assert_non_null(strstr(s, "B     accepted  0xfc"));
	assert_non_null(strstr(s, "bank B  img_guid 09c54952-d5bf-45af-acee-335303766fb3  accepted 1"));
	free(s);
	struct json_object *o = fwu_md_to_json(&md);
	assert_non_null(o);
	const char *js = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	assert_non_null(strstr(js, "\"state\":\"accepted\""));
	assert_non_null(strstr(js, "\"crc32\":3511355572"));
	json_object_put(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v2_reference_dumps),
		cmocka_unit_test(test_v2_decode_reference),
		cmocka_unit_test(test_v1_reference),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_crc_range_disagreement),
		cmocka_unit_test(test_transitions),
		cmocka_unit_test(test_guid),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
