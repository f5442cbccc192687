/* Bundle open/verify on the RAUC fixtures.  Detection of a bundle file that
 * changes after verification is tested on the sources themselves
 * (test_checked_source.c, test_verity.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abota/bundle.h"
#include "abota/fileio.h"

static char *fixture(const char *name)
{
	const char *dir = getenv("ABOTA_FIXTURES");
	char *p = malloc(4096);
	snprintf(p, 4096, "%s/rauc/%s", dir ? dir : "../shared/fixtures", name);
	return p;
}

static struct sig_policy policy;

static int setup(void **state)
{
	(void)state;
	policy.keyring_path = fixture("ca.cert.pem");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free((char *)policy.keyring_path);
	return 0;
}

static int count_sink(void *ctx, const void *buf, size_t len, struct abota_error *err)
{
	(void)buf;
	(void)err;
	*(uint64_t *)ctx += len;
	return 0;
}

static void test_open_fixtures(void **state)
{
	(void)state;
	const char *names[] = { "sample-plain.raucb", "sample-verity.raucb" };
	for (int i = 0; i < 2; i++) {
		char *path = fixture(names[i]);
		struct bundle_open_opts o = { .policy = &policy };
		struct bundle *b = NULL;
		struct abota_error err = { 0 };
		if (bundle_open(path, &o, &b, &err) < 0)
			fail_msg("%s", err.msg);
		assert_true(bundle_is_verified(b));
		assert_int_equal(bundle_get_format(b), i == 0 ? BUNDLE_FORMAT_PLAIN : BUNDLE_FORMAT_VERITY);
		assert_int_equal(bundle_payload_size(b), i == 0 ? 12288 : 16384);
		assert_int_equal(bundle_signature_size(b), i == 0 ? 831 : 1437);
		if (i == 1)
			assert_string_equal(bundle_manifest_hash(b),
					    "8b5b2ed3550537dd81d9306f00f6f664317d54d14e79dc69fb89cde6bc52b681");
		const struct manifest *m = bundle_get_manifest(b);
		assert_int_equal(m->n_images, 2);
		for (size_t k = 0; k < m->n_images; k++) {
			uint64_t n = 0;
			assert_int_equal(bundle_stream_image(b, &m->images[k], count_sink, &n, NULL), 0);
			assert_int_equal(n, m->images[k].size);
		}
		bundle_close(b);
		/* the policy is fail-closed */
		struct bundle_open_opts none = { 0 };
		assert_int_equal(bundle_open(path, &none, &b, &err), -ENOKEY);
		/* a format that is not allowed */
		struct bundle_open_opts only = { .policy = &policy,
						 .allowed_formats = 1u << (i == 0 ? BUNDLE_FORMAT_VERITY : BUNDLE_FORMAT_PLAIN) };
		assert_int_equal(bundle_open(path, &only, &b, &err), -EPERM);
		assert_non_null(strstr(err.msg, "not allowed"));
		free(path);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_fixtures),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
