/* abota-server's multipart/form-data boundary check (src/abota-server/multipart.c).
 * SC-46: boundary lengths at and +-2 around every guard (libmicrohttpd's 2,
 * the RFC's 70), quotes that leave nothing or one character (no size_t wrap
 * when the quotes are stripped), parameters after the boundary -> refused. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "multipart.h"

static int check(const char *ct, char *out)
{
	char why[160] = "";
	int ret = multipart_boundary(ct, out, why, sizeof(why));
	/* a refusal always says why */
	if (ret < 0)
		assert_true(why[0] != '\0');
	return ret;
}

/* SC-46: every length from 0 to 74 and a few far beyond, plain and quoted */
static void test_lengths(void **state)
{
	(void)state;
	char ct[400], b[300], out[MULTIPART_BOUNDARY_MAX + 1];
	for (size_t len = 0; len < 260; len += len < 74 ? 1 : 37) {
		memset(b, 'x', len);
		b[len] = '\0';
		if (len)
			b[0] = '0'; /* not all one letter: the copy is checked below */
		bool ok = len >= MULTIPART_BOUNDARY_MIN && len <= MULTIPART_BOUNDARY_MAX;
		snprintf(ct, sizeof(ct), "multipart/form-data; boundary=%s", b);
		memset(out, 0, sizeof(out));
		assert_int_equal(check(ct, out), ok ? 0 : -EINVAL);
		if (ok)
			assert_string_equal(out, b);
		snprintf(ct, sizeof(ct), "multipart/form-data; boundary=\"%s\"", b);
		assert_int_equal(check(ct, out), ok ? 0 : -EINVAL);
		if (ok)
			assert_string_equal(out, b);
	}
}

static void test_quotes(void **state)
{
	(void)state;
	char out[MULTIPART_BOUNDARY_MAX + 1];
	/* a lone quote: both ends are the same byte, nothing inside (n - 2 would wrap) */
	assert_int_equal(check("multipart/form-data; boundary=\"", out), -EINVAL);
	assert_int_equal(check("multipart/form-data; boundary=\"\"", out), -EINVAL);
	assert_int_equal(check("multipart/form-data; boundary=\"a\"", out), -EINVAL);
	assert_int_equal(check("multipart/form-data; boundary=\"ab", out), -EINVAL);
	assert_int_equal(check("multipart/form-data; boundary=ab\"", out), -EINVAL);
	assert_int_equal(check("multipart/form-data; boundary=\"a\"b\"", out), -EINVAL);
	/* quoted, the RFC's specials and inner spaces are fine, a trailing space is not */
	assert_int_equal(check("multipart/form-data; boundary=\"a b:c=d?e/f(g)h,i\"", out), 0);
	assert_string_equal(out, "a b:c=d?e/f(g)h,i");
	assert_int_equal(check("multipart/form-data; boundary=\"ab \"", out), -EINVAL);
	/* unquoted they are not */
	assert_int_equal(check("multipart/form-data; boundary=a:b", out), -EINVAL);
	assert_int_equal(check("multipart/form-data; boundary=a b", out), -EINVAL);
	assert_int_equal(check("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxk", out),
			 0);
	assert_string_equal(out, "----WebKitFormBoundary7MA4YWxk");
}

static void test_header_forms(void **state)
{
	(void)state;
	char out[MULTIPART_BOUNDARY_MAX + 1];
	assert_int_equal(check(NULL, out), -EINVAL);
	assert_int_equal(check("", out), -EINVAL);
	assert_int_equal(check("application/x-www-form-urlencoded", out), -EINVAL);
	assert_int_equal(check("multipart/mixed; boundary=abc", out), -EINVAL);
	assert_int_equal(check("multipart/form-dataX; boundary=abc", out), -EINVAL);
	assert_int_equal(check("multipart/form-data", out), -EINVAL);
	assert_int_equal(check("multipart/form-data;", out), -EINVAL);
	assert_int_equal(check("multipart/form-data; Boundary=abc", out), -EINVAL);
	/* libmicrohttpd would take "abc; charset=utf-8" as the boundary */
	assert_int_equal(check("multipart/form-data; boundary=abc; charset=utf-8", out), -EINVAL);
	/* the tail of another parameter is not the boundary */
	assert_int_equal(check("multipart/form-data; xboundary=abc", out), -EINVAL);
	assert_int_equal(check("multipart/form-data; a=\"x;boundary=abc\"", out), -EINVAL);
	assert_int_equal(check("Multipart/Form-Data;boundary=abc", out), 0);
	assert_string_equal(out, "abc");
	assert_int_equal(check("  multipart/form-data ; charset=utf-8;  boundary=abc", out), 0);
	assert_string_equal(out, "abc");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_quotes),
		cmocka_unit_test(test_header_forms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
