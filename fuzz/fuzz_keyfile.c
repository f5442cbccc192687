/* fuzz_keyfile.c - keyfile_parse, every getter on every key, check_consumed,
 * and the keyfile_to_data round trip (parse(to_data(kf)) must succeed and
 * serialize to the same bytes). */
#include <stdlib.h>
#include <string.h>

#include "abota/keyfile.h"
#include "fuzz_common.h"

static char *serialize(const struct keyfile *kf, size_t *len)
{
	char *out = NULL;
	if (keyfile_to_data(kf, &out, len) < 0)
		return NULL;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_quiet();
	struct abota_error err = { 0 };
	struct keyfile *kf = NULL;
	if (keyfile_parse((const char *)data, size, "fuzz", &kf, &err) < 0)
		return 0;

	/* Leave some keys unread so check_consumed has something to report. */
	size_t ng = keyfile_group_count(kf);
	for (size_t g = 0; g < ng; g++) {
		const char *group = keyfile_group_name(kf, g);
		FUZZ_CHECK(group != NULL);
		FUZZ_CHECK(keyfile_has_group(kf, group));
		size_t nk = keyfile_key_count(kf, group);
		for (size_t k = 0; k < nk; k++) {
			const char *key = keyfile_key_name(kf, group, k);
			FUZZ_CHECK(key != NULL);
			FUZZ_CHECK(keyfile_has_key(kf, group, key));
			(void)keyfile_key_line(kf, group, key);
			if ((g + k) % 5 == 4)
				continue;
			const char *s = NULL, *ne = NULL;
			uint64_t u = 0;
			bool b = false;
			const char *const *list = NULL;
			size_t count = 0;
			if (keyfile_get_string(kf, group, key, &s, &err) == 0)
				FUZZ_CHECK(s != NULL);
			(void)keyfile_get_nonempty(kf, group, key, &ne, &err);
			(void)keyfile_get_u64(kf, group, key, &u, &err);
			(void)keyfile_get_bool(kf, group, key, &b, &err);
			if (keyfile_get_list(kf, group, key, &list, &count, &err) == 0) {
				FUZZ_CHECK(list != NULL);
				for (size_t i = 0; i < count; i++)
					FUZZ_CHECK(list[i] != NULL);
				FUZZ_CHECK(list[count] == NULL);
			}
		}
		if (g % 3 == 0)
			keyfile_consume_group(kf, group);
	}
	(void)keyfile_check_consumed(kf, &err);
	FUZZ_CHECK(keyfile_get_string(kf, "no such group", "k", &(const char *){ NULL }, &err) ==
		   -ENOENT);

	/* Round trip. */
	size_t len1 = 0, len2 = 0;
	char *out1 = serialize(kf, &len1);
	FUZZ_CHECK(out1 != NULL);
	struct keyfile *kf2 = NULL;
	if (keyfile_parse(out1, len1, "fuzz-roundtrip", &kf2, &err) < 0) {
		fprintf(stderr, "round trip parse failed: %s\n", err.msg);
		abort();
	}
	FUZZ_CHECK(keyfile_group_count(kf2) == ng);
	for (size_t g = 0; g < ng; g++) {
		const char *group = keyfile_group_name(kf, g);
		FUZZ_CHECK(strcmp(group, keyfile_group_name(kf2, g)) == 0);
		FUZZ_CHECK(keyfile_key_count(kf, group) == keyfile_key_count(kf2, group));
		for (size_t k = 0; k < keyfile_key_count(kf, group); k++) {
			const char *key = keyfile_key_name(kf, group, k);
			const char *v1 = NULL, *v2 = NULL;
			int r1 = keyfile_get_string(kf, group, key, &v1, NULL);
			int r2 = keyfile_get_string(kf2, group, key, &v2, NULL);
			FUZZ_CHECK(r1 == r2);
			if (r1 == 0)
				FUZZ_CHECK(strcmp(v1, v2) == 0);
		}
	}
	char *out2 = serialize(kf2, &len2);
	FUZZ_CHECK(out2 != NULL);
	FUZZ_CHECK(len1 == len2 && memcmp(out1, out2, len1) == 0);

	/* Writing API on the parsed file. */
	(void)keyfile_set_string(kf2, "fuzz", "k", out1 && len1 ? "a;b\\c\n" : "");
	(void)keyfile_remove_key(kf2, "fuzz", "k");
	free(out1);
	free(out2);
	keyfile_free(kf2);
	keyfile_free(kf);
	return 0;
}
