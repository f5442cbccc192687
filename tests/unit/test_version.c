#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* SC-102: malformed and overlong version strings are not versions: the
 * comparison says so (the install then refuses), and nothing reads beyond
 * the string (ASan build). */
static void test_malformed_and_overlong(void **state)
{
	(void)state;
	int c = 42;
	static const char *const bad[] = {
		"1.2.3 ", " 1.2.3", "1.2.3\n", "1.2.3-rc 1", "1.2.3-rc/1", "1.2.3-..", "1.2.3-rc..1",
		"1.2.3-.rc", "1.2.3-rc.", "1.2.3+", "1.2.3+b..1", "1.2.3+b\x01", "1.2.3-\xff",
		"1.2.3.4.5.6.7.8.9", "-1.0", "+1.0", "1.-2", ".1", "1.", "1.2.3-rc1+", "a.b.c",
		"18446744073709551616.0", "1.2%s.3",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(version_compare(bad[i], "1.0", &c));
		assert_false(version_compare("1.0", bad[i], &c));
	}
	assert_int_equal(c, 42); /* untouched on failure */
	/* 18446744073709551615 (UINT64_MAX) overflows the guard: refused too */
	assert_false(version_compare("18446744073709551615", "1", &c));
	assert_true(version_compare("1844674407370955161", "1", &c));
	assert_int_equal(c, 1);
	/* eight numeric fields are fine; SemVer pre-release/build identifiers */
	assert_int_equal(cmp("1.2.3.4.5.6.7.8", "1.2.3.4.5.6.7.9"), -1);
	assert_int_equal(cmp("1.0.0-alpha.1-x", "1.0.0"), -1);
	assert_int_equal(cmp("1.0.0-rc.1+build.5-a", "1.0.0-rc.1"), 0);
	/* overlong: VERSION_MAX_LEN characters compare, one more does not */
	char *v = malloc(VERSION_MAX_LEN + 2);
	assert_non_null(v);
	memset(v, '1', 1);
	memset(v + 1, '0', 1);
	v[2] = '-';
	memset(v + 3, 'a', VERSION_MAX_LEN - 3);
	v[VERSION_MAX_LEN] = '\0';
	assert_true(version_compare(v, "10", &c));
	assert_int_equal(c, -1);
	v[VERSION_MAX_LEN] = 'a';
	v[VERSION_MAX_LEN + 1] = '\0';
	assert_false(version_compare(v, "10", &c));
	assert_false(version_compare("10", v, &c));
	free(v);
	/* a huge string: refused after VERSION_MAX_LEN + 1 bytes */
	size_t big = 1u << 20;
	char *h = malloc(big + 1);
	assert_non_null(h);
	memset(h, '9', big);
	h[big] = '\0';
	assert_false(version_compare(h, "1.0", &c));
	free(h);
}

static char *tmpfile_path(void)
{
	char *dir = strdup("/tmp/abota-version-XXXXXX");
	assert_non_null(dir);
	assert_non_null(mkdtemp(dir));
	char *p = malloc(strlen(dir) + 32);
	assert_non_null(p);
	sprintf(p, "%s/%s", dir, VERSION_FLOOR_FILE);
	free(dir);
	return p;
}

static void cleanup(char *path)
{
	unlink(path);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	rmdir(path);
	free(path);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* SC-101: the version floor only rises, survives as a file, and a damaged
 * file is one clear error naming it. */
static void test_floor(void **state)
{
	(void)state;
	char *path = tmpfile_path();
	char *floor = (char *)1;
	struct abota_error err = { 0 };
	bool raised = true;
	assert_int_equal(version_floor_load(path, &floor, &err), 0);
	assert_null(floor); /* no file: no floor */
	assert_int_equal(version_floor_raise(path, "2.0.0", &raised, &err), 0);
	assert_true(raised);
	assert_int_equal(version_floor_load(path, &floor, &err), 0);
	assert_string_equal(floor, "2.0.0");
	free(floor);
	/* lower or equal: unchanged */
	assert_int_equal(version_floor_raise(path, "1.9.9", &raised, &err), 0);
	assert_false(raised);
	assert_int_equal(version_floor_raise(path, "2.0.0", &raised, &err), 0);
	assert_false(raised);
	assert_int_equal(version_floor_raise(path, "2.0.0-rc1", &raised, &err), 0);
	assert_false(raised);
	assert_int_equal(version_floor_raise(path, "2.1", &raised, &err), 0);
	assert_true(raised);
	assert_int_equal(version_floor_load(path, &floor, &err), 0);
	assert_string_equal(floor, "2.1");
	free(floor);
	/* not a version: refused, the floor stays */
	assert_int_equal(version_floor_raise(path, "3.0 beta", &raised, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not a version"));
	assert_int_equal(version_floor_load(path, &floor, &err), 0);
	assert_string_equal(floor, "2.1");
	free(floor);
	/* damaged files */
	static const char *const damaged[] = { "", "\n", "garbage\n", "1.0\n2.0\n", "1.0\n\n",
					       "1.0\0", "1.0 \n" };
	for (size_t i = 0; i < sizeof(damaged) / sizeof(damaged[0]); i++) {
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fwrite(damaged[i], 1, strlen(damaged[i]) + (i == 5 ? 1 : 0), f);
		fclose(f);
		floor = (char *)1;
		memset(&err, 0, sizeof(err));
		assert_int_equal(version_floor_load(path, &floor, &err), -EINVAL);
		assert_ptr_equal(floor, (char *)1); /* untouched */
		assert_non_null(strstr(err.msg, path));
		assert_int_equal(version_floor_raise(path, "9.0", &raised, &err), -EINVAL);
	}
	/* overlong file */
	char big[VERSION_MAX_LEN + 64];
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	write_file(path, big);
	assert_true(version_floor_load(path, &floor, &err) < 0);
	cleanup(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_compare),
					    cmocka_unit_test(test_malformed_and_overlong),
					    cmocka_unit_test(test_floor) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
