#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "abota/version.h"

static int cmp(const char *a, const char *b)
{
	int c = 99;
	assert_true(version_compare(a, b, &c));
	return c;
}

static void test_compare(void **state)
{
	(void)state;
	assert_int_equal(cmp("1.2.3", "1.2.3"), 0);
	assert_int_equal(cmp("1.2.3", "1.2.4"), -1);
	assert_int_equal(cmp("1.10.0", "1.9.9"), 1);
	assert_int_equal(cmp("2026.11.1", "2026.2.0"), 1);
	assert_int_equal(cmp("1.0", "1.0.0"), 0);
	assert_int_equal(cmp("1.0.0-rc1", "1.0.0"), -1);
	assert_int_equal(cmp("1.0.0", "1.0.0-rc1"), 1);
	assert_int_equal(cmp("1.0.0-rc1", "1.0.0-rc2"), -1);
	assert_int_equal(cmp("1.0.0+build5", "1.0.0"), 0);
	int c;
	assert_false(version_compare("v1.0", "1.0", &c));
	assert_false(version_compare("1..0", "1.0", &c));
	assert_false(version_compare("1.0-", "1.0", &c));
	assert_false(version_compare("", "1.0", &c));
	assert_false(version_compare("99999999999999999999999.0", "1.0", &c));
	assert_false(version_compare(NULL, "1.0", &c));
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_compare) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
