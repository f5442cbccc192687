/* abota-server's maintenance windows (src/abota-server/mwindow.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include "mwindow.h"

/* 2026-11-25 10:00:00 UTC, a Wednesday */
#define T0 ((time_t)1795600800)

static void test_open(void **state)
{
	(void)state;
	struct mwindow w;
	char why[200];
	/* every day at 10:00:00 UTC for five minutes */
	assert_int_equal(mwindow_parse("0 0 10 ? * *", "00:05:00", "+00:00", &w, why, sizeof(why)), 0);
	assert_true(mwindow_open(&w, T0));
	assert_true(mwindow_open(&w, T0 + 299));
	assert_false(mwindow_open(&w, T0 + 300));
	assert_false(mwindow_open(&w, T0 - 1));
	/* the same wall time one hour east: 09:00 UTC */
	assert_int_equal(mwindow_parse("0 0 11 ? * *", "00:05:00", "+01:00", &w, why, sizeof(why)), 0);
	assert_true(mwindow_open(&w, T0));
	/* weekdays by name, a list of minutes, a step, a year */
	assert_int_equal(mwindow_parse("0 0,30 */2 ? NOV WED 2026", "00:00:10", "+00:00", &w, why,
				       sizeof(why)), 0);
	assert_true(mwindow_open(&w, T0 + 5));
	assert_true(mwindow_open(&w, T0 + 1800));
	assert_false(mwindow_open(&w, T0 + 3600)); /* 11:00: odd hour */
	assert_false(mwindow_open(&w, T0 + 86400)); /* Thursday */
	assert_int_equal(mwindow_parse("0 0 10 ? NOV WED 2027", "00:00:10", "+00:00", &w, why,
				       sizeof(why)), 0);
	assert_false(mwindow_open(&w, T0));
}

static void test_refused(void **state)
{
	(void)state;
	struct mwindow w;
	char why[200];
	const char *bad[][3] = {
		{"0 0 10 * *", "00:05:00", "+00:00"},        /* 5 fields */
		{"0 0 10 L * ?", "00:05:00", "+00:00"},      /* L */
		{"0 0 10 ? * 2#1", "00:05:00", "+00:00"},    /* # */
		{"60 0 10 ? * *", "00:05:00", "+00:00"},
		{"0 0 24 ? * *", "00:05:00", "+00:00"},
		{"0 0 10 ? 13 *", "00:05:00", "+00:00"},
		{"0 0 10 ? FOO *", "00:05:00", "+00:00"},
		{"0 0 5-2 ? * *", "00:05:00", "+00:00"},
		{"0 0 10 ? * *", "24:00:00", "+00:00"},
		{"0 0 10 ? * *", "00:00:00", "+00:00"},
		{"0 0 10 ? * *", "5m", "+00:00"},
		{"0 0 10 ? * *", "00:05:00", "UTC"},
		{"0 0 10 ? * *", "00:05:00", "+15:00"},
		{"0 0 10 ? * * 1900", "00:05:00", "+00:00"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		if (mwindow_parse(bad[i][0], bad[i][1], bad[i][2], &w, why, sizeof(why)) != -EINVAL)
			fail_msg("accepted %s / %s / %s", bad[i][0], bad[i][1], bad[i][2]);
		assert_true(strncmp(why, "maintenanceWindow.", 18) == 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
