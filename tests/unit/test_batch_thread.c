/* test_batch_thread.c - batch_thread_mark() changes the calling thread
 * only: the thread that hashes and writes keeps its normal policy. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "abota/batch_thread.h"

static void *helper(void *p)
{
	int *policy = p;
	batch_thread_mark();
	*policy = sched_getscheduler(0);
	return NULL;
}

static void test_marks_the_calling_thread_only(void **state)
{
	(void)state;
	int before = sched_getscheduler(0);
	int policy = -1;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, helper, &policy), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(policy, SCHED_BATCH);
	assert_int_equal(sched_getscheduler(0), before);
	assert_int_equal(before, SCHED_OTHER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_marks_the_calling_thread_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
