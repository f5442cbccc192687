/* abota-server's Range header parser (src/abota-server/range.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "range.h"

static void test_single(void **state)
{
	(void)state;
	struct byte_range r[RANGE_MAX];
	assert_int_equal(range_parse("bytes=0-9", 100, r), 1);
	assert_true(r[0].first == 0 && r[0].last == 9);
	assert_int_equal(range_parse("bytes=90-", 100, r), 1);
	assert_true(r[0].first == 90 && r[0].last == 99);
	assert_int_equal(range_parse("bytes=-10", 100, r), 1);
	assert_true(r[0].first == 90 && r[0].last == 99);
	/* suffix longer than the entity: all of it; end beyond: clipped */
	assert_int_equal(range_parse("bytes=-1000", 100, r), 1);
	assert_true(r[0].first == 0 && r[0].last == 99);
	assert_int_equal(range_parse("bytes=5-1000", 100, r), 1);
	assert_true(r[0].first == 5 && r[0].last == 99);
	assert_int_equal(range_parse(" bytes=99-99", 100, r), 1);
	assert_true(r[0].first == 99 && r[0].last == 99);
}

static void test_multi(void **state)
{
	(void)state;
	struct byte_range r[RANGE_MAX];
	assert_int_equal(range_parse("bytes=0-1, 5-6,-2", 100, r), 3);
	assert_true(r[1].first == 5 && r[1].last == 6 && r[2].first == 98);
}

static void test_refused(void **state)
{
	(void)state;
	struct byte_range r[RANGE_MAX];
	const char *bad[] = {"bytes=100-", "bytes=100-200", "bytes=5-4", "bytes=", "bytes=-",
			     "bytes=-0", "bytes=a-b", "bytes=1-2,", "bytes=1-2;3-4", "items=0-1",
			     "bytes=0-5,3-9", "bytes=10-12,0-1", "bytes=184467440737095516160-",
			     "bytes=0x10-", "bytes=+1-2", "bytes=1-2 x",
			     /* more ranges than RANGE_MAX (one literal: clang's
				-Wstring-concatenation flags split literals in an array) */
			     "bytes=0-0,2-2,4-4,6-6,8-8,10-10,12-12,14-14,16-16,18-18,20-20,22-22,24-24,26-26,28-28,30-30,32-32"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (range_parse(bad[i], 100, r) != -1)
			fail_msg("accepted %s", bad[i]);
	}
	/* nothing is satisfiable in an empty entity */
	assert_int_equal(range_parse("bytes=0-", 0, r), -1);
	assert_int_equal(range_parse("bytes=-5", 0, r), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single),
		cmocka_unit_test(test_multi),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
