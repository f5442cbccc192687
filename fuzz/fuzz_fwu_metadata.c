/* fuzz_fwu_metadata.c - fwu_md_decode (with and without a configuration,
 * with and without the CRC check), validate, the firmware read-path
 * emulations, format/json, and the encode round trip: whatever encodes
 * decodes to the same fields and re-encodes to the same bytes. */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "abota/fwu_metadata.h"
#include "fuzz_common.h"

static void roundtrip(const struct fwu_metadata *md)
{
	uint8_t buf[4096], buf2[4096];
	size_t len = 0, len2 = 0;
	if (fwu_md_encode(md, buf, sizeof(buf), &len, NULL) < 0)
		return;
	struct fwu_md_config cfg = { .version = md->version,
				     .num_banks = md->num_banks,
				     .num_images = md->num_images };
	struct fwu_metadata d;
	struct abota_error err = { 0 };
	if (fwu_md_decode(buf, len, &cfg, 0, &d, &err) < 0) {
		fprintf(stderr, "encoded metadata does not decode: %s\n", err.msg);
		abort();
	}
	FUZZ_CHECK(d.version == md->version);
	FUZZ_CHECK(d.active_index == md->active_index);
	FUZZ_CHECK(d.previous_active_index == md->previous_active_index);
	FUZZ_CHECK(d.num_banks == md->num_banks && d.num_images == md->num_images);
	FUZZ_CHECK(fwu_md_encode(&d, buf2, sizeof(buf2), &len2, NULL) == 0);
	FUZZ_CHECK(len == len2 && memcmp(buf, buf2, len) == 0);
}

static void use(struct fwu_metadata *md, const struct fwu_md_config *cfg)
{
	struct abota_error err = { 0 };
	(void)fwu_md_validate(md, cfg, &err);
	char *s = fwu_md_format(md);
	free(s);
	struct json_object *j = fwu_md_to_json(md);
	if (j)
		json_object_put(j);
	for (unsigned b = 0; b < FWU_MD_MAX_BANKS; b++) {
		(void)fwu_md_bank_state(md, b);
		(void)fwu_bank_state_name(md->bank_state[b]);
	}
	roundtrip(md);
	/* State transitions on a copy; the result must still encode and
	 * round-trip when it encodes at all. */
	struct fwu_metadata c = *md;
	unsigned bank = md->active_index ^ 1u;
	if (fwu_md_invalidate(&c, bank, NULL) == 0 && fwu_md_activate(&c, bank, NULL) == 0)
		roundtrip(&c);
	c = *md;
	if (fwu_md_accept(&c, md->active_index, NULL) == 0)
		roundtrip(&c);
	c = *md;
	if (fwu_md_reject(&c, md->active_index, NULL) == 0)
		roundtrip(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_quiet();
	struct fwu_metadata md;
	struct abota_error err = { 0 };
	if (fwu_md_decode(data, size, NULL, 0, &md, &err) == 0)
		use(&md, NULL);
	if (fwu_md_decode(data, size, NULL, FWU_MD_DECODE_IGNORE_CRC, &md, &err) == 0)
		use(&md, NULL);
	struct fwu_md_config cfg;
	for (uint32_t v = 1; v <= 2; v++) {
		fwu_md_config_st(&cfg, v);
		if (fwu_md_decode(data, size, &cfg, FWU_MD_DECODE_IGNORE_CRC, &md, &err) == 0)
			use(&md, &cfg);
		for (int fw = 0; fw < FWU_FW_COUNT; fw++)
			(void)fwu_md_fw_check((enum fwu_fw)fw, data, size, &cfg, &md, &err);
	}
	/* v1 with other shapes (v1 carries none). */
	if (size) {
		struct fwu_md_config c1 = { .version = 1,
					    .num_banks = (uint8_t)(1 + data[0] % FWU_MD_MAX_BANKS),
					    .num_images = (uint16_t)(1 + data[size - 1] % 4) };
		if (fwu_md_decode(data, size, &c1, FWU_MD_DECODE_IGNORE_CRC, &md, &err) == 0)
			use(&md, &c1);
	}
	return 0;
}
