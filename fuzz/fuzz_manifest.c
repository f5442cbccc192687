/* fuzz_manifest.c - manifest_parse in both modes; for every accepted
 * manifest manifest_to_data (with and without verity keys), and the round
 * trip: the serialization parses again and serializes to the same bytes. */
#include <stdlib.h>
#include <string.h>

#include "abota/manifest.h"
#include "fuzz_common.h"

static void one_mode(const uint8_t *data, size_t size, enum manifest_mode mode)
{
	struct abota_error err = { 0 };
	struct manifest *m = NULL;
	if (manifest_parse((const char *)data, size, "fuzz.raucm", mode, &m, &err) < 0)
		return;
	FUZZ_CHECK(m->compatible != NULL);
	for (size_t i = 0; i < m->n_images; i++) {
		struct manifest_image *img = &m->images[i];
		FUZZ_CHECK(img->slotclass != NULL);
		(void)manifest_image_type(img);
		if (img->filename) {
			FUZZ_CHECK(strchr(img->filename, '/') == NULL); /* SC-50 */
			FUZZ_CHECK(strlen(img->filename) > 0);
		}
		if (mode == MANIFEST_BUNDLE && img->filename)
			FUZZ_CHECK(strlen(img->sha256) == 64); /* SC-72 */
	}
	(void)bundle_format_name(m->format);

	char *out = NULL;
	size_t len = 0;
	if (manifest_to_data(m, false, &out, &len, &err) == 0)
		free(out);
	out = NULL;
	if (manifest_to_data(m, true, &out, &len, &err) == 0) {
		struct manifest *m2 = NULL;
		if (manifest_parse(out, len, "roundtrip.raucm", mode, &m2, &err) < 0) {
			fprintf(stderr, "round trip parse failed: %s\n--\n%.*s\n--\n", err.msg,
				(int)len, out);
			abort();
		}
		char *out2 = NULL;
		size_t len2 = 0;
		FUZZ_CHECK(manifest_to_data(m2, true, &out2, &len2, &err) == 0);
		FUZZ_CHECK(len == len2 && memcmp(out, out2, len) == 0);
		free(out2);
		manifest_free(m2);
		free(out);
	}
	manifest_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_quiet();
	one_mode(data, size, MANIFEST_BUNDLE);
	one_mode(data, size, MANIFEST_INPUT);
	return 0;
}
