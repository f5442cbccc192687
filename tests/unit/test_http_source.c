/* Unit tests of the pure parts of the HTTP range source.  The transfer
 * itself is covered end to end in tests/e2e/test_http.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>

#include "abota/http_source.h"

static void test_content_range_ok(void **state)
{
	(void)state;
	uint64_t a, b, t;
	assert_true(http_parse_content_range("bytes 0-0/1", &a, &b, &t));
	assert_true(a == 0 && b == 0 && t == 1);
	assert_true(http_parse_content_range("bytes 4096-8191/17829", &a, &b, &t));
	assert_true(a == 4096 && b == 8191 && t == 17829);
	assert_true(http_parse_content_range(
		"bytes 18446744073709551613-18446744073709551614/18446744073709551615", &a, &b, &t));
	assert_true(t == UINT64_MAX && b == UINT64_MAX - 1);
}

/* Found by fuzz/fuzz_http_range.c: sscanf("%llu") saturated an overflowing
 * total to 2^64-1 and took signs and spaces. */
static void test_content_range_malformed(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"bytes 18446744073709551614-18446744073709551614/18446744077903551615",
		"bytes 0-0/18446744073709551616",
		"bytes 0-0/-1",
		"bytes -0-0/5",
		"bytes +0-0/5",
		"bytes  0-0/5",
		"bytes 0- 0/5",
		"bytes 0-0/ 5",
		"bytes 0-0/5 ",
		"bytes 0-0/5x",
		"bytes 0-0/",
		"bytes 0-/5",
		"bytes */5",
		"bytes 5-4/10",
		"bytes 0-10/10",
		"Bytes 0-0/1",
		"bytes0-0/1",
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t a = 7, b = 7, t = 7;
		if (http_parse_content_range(bad[i], &a, &b, &t))
			fail_msg("accepted '%s'", bad[i]);
		assert_true(a == 7 && b == 7 && t == 7); /* untouched */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_content_range_ok),
		cmocka_unit_test(test_content_range_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
