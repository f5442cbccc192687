/* abota-server's feedback parsing and hawkBit's state mapping
 * (src/abota-server/feedback.c; hawkbit-ddi.md sections 1.5 and 1.6). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "feedback.h"

static struct store_action action(const char *type, const char *status, bool active)
{
	struct store_action a = {.id = 1, .active = active};
	strcpy(a.type, type);
	strcpy(a.status, status);
	return a;
}

static void test_deployment_map(void **state)
{
	(void)state;
	struct feedback_outcome o;
	struct store_action a = action("forced", "running", true);
	feedback_map(FEEDBACK_DEPLOYMENT, &a, "closed", "success", &o);
	assert_int_equal(o.http_status, 200);
	assert_string_equal(o.t.status_type, "finished");
	assert_true(o.t.close && o.t.installed && o.t.request_attributes);
	feedback_map(FEEDBACK_DEPLOYMENT, &a, "closed", "none", &o);
	assert_string_equal(o.t.status_type, "finished");
	feedback_map(FEEDBACK_DEPLOYMENT, &a, "closed", "failure", &o);
	assert_string_equal(o.t.status_type, "error");
	assert_true(o.t.close && !o.t.installed);
	assert_string_equal(o.t.target_update_status, "error");
	feedback_map(FEEDBACK_DEPLOYMENT, &a, "proceeding", "none", &o);
	assert_string_equal(o.t.status_type, "running");
	assert_false(o.t.close);
	assert_null(o.t.new_status);
	feedback_map(FEEDBACK_DEPLOYMENT, &a, "rejected", "none", &o);
	assert_string_equal(o.t.status_type, "warning");
	assert_false(o.t.close);
	feedback_map(FEEDBACK_DEPLOYMENT, &a, "downloaded", "success", &o);
	assert_string_equal(o.t.status_type, "downloaded");
	assert_false(o.t.close);
	struct store_action d = action("downloadonly", "running", true);
	feedback_map(FEEDBACK_DEPLOYMENT, &d, "downloaded", "success", &o);
	assert_true(o.t.close); /* final for download-only */
	assert_string_equal(o.t.new_status, "downloaded");
	struct store_action closed = action("forced", "finished", false);
	feedback_map(FEEDBACK_DEPLOYMENT, &closed, "closed", "success", &o);
	assert_int_equal(o.http_status, 410);
}

/* hawkbit-ddi.md §1.6; SC-173: cancel feedback for an action that is not
 * canceling maps to 405. */
static void test_cancel_map(void **state)
{
	(void)state;
	struct feedback_outcome o;
	struct store_action a = action("forced", "canceling", true);
	feedback_map(FEEDBACK_CANCEL, &a, "closed", "success", &o);
	assert_string_equal(o.t.status_type, "canceled");
	assert_true(o.t.close);
	feedback_map(FEEDBACK_CANCEL, &a, "closed", "failure", &o);
	assert_string_equal(o.t.new_status, "running");
	assert_false(o.t.close);
	feedback_map(FEEDBACK_CANCEL, &a, "rejected", "none", &o);
	assert_string_equal(o.t.status_type, "cancel_rejected");
	assert_string_equal(o.t.new_status, "running");
	/* hawkBit #952: "canceled" does not accept a cancellation */
	feedback_map(FEEDBACK_CANCEL, &a, "canceled", "success", &o);
	assert_string_equal(o.t.status_type, "warning");
	assert_false(o.t.close);
	assert_null(o.t.new_status);
	struct store_action running = action("forced", "running", true);
	feedback_map(FEEDBACK_CANCEL, &running, "closed", "success", &o);
	assert_int_equal(o.http_status, 405);
}

static int parse(const char *s, struct feedback_report *r)
{
	char why[256];
	return feedback_parse(s, strlen(s), r, why, sizeof(why));
}

static void test_parse(void **state)
{
	(void)state;
	struct feedback_report r;
	assert_int_equal(parse("{\"id\":\"5\",\"time\":\"20260711T101522\",\"status\":{\"execution\":"
			       "\"closed\",\"result\":{\"finished\":\"success\",\"progress\":{\"cnt\":2,"
			       "\"of\":5}},\"code\":-3,\"details\":[\"a\",\"b\"]},\"timestamp\":17}",
			       &r),
			 0);
	assert_string_equal(r.execution, "closed");
	assert_string_equal(r.finished, "success");
	assert_true(r.has_code && r.code == -3 && r.timestamp == 17);
	assert_int_equal(json_object_array_length(r.details), 2);
	feedback_report_clear(&r);
	assert_int_equal(parse("{\"status\":{\"execution\":\"download\",\"result\":{\"finished\":"
			       "\"none\"},\"details\":null,\"code\":null}}", &r),
			 0);
	assert_false(r.has_code);
	assert_int_equal(json_object_array_length(r.details), 0);
	feedback_report_clear(&r);
	const char *bad[] = {
		"", "{", "[]", "{}", "{\"status\":[]}", "{\"status\":{\"result\":{\"finished\":\"none\"}}}",
		"{\"status\":{\"execution\":\"closed\"}}",
		"{\"status\":{\"execution\":\"closed\",\"result\":{}}}",
		"{\"status\":{\"execution\":\"CLOSED\",\"result\":{\"finished\":\"none\"}}}",
		"{\"status\":{\"execution\":\"closed\",\"result\":{\"finished\":\"none\"},\"code\":1.5}}",
		"{\"status\":{\"execution\":\"closed\",\"result\":{\"finished\":\"none\"},\"code\":4294967296}}",
		"{\"status\":{\"execution\":\"closed\",\"result\":{\"finished\":\"none\",\"progress\":5}}}",
		"{\"status\":{\"execution\":\"closed\",\"result\":{\"finished\":\"none\"},\"details\":\"x\"}}",
		"{\"status\":{\"execution\":\"closed\",\"result\":{\"finished\":\"none\"}},\"timestamp\":-1}",
		"{\"status\":{\"execution\":\"closed\",\"result\":{\"finished\":\"none\"}}}x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], &r) != -EINVAL)
			fail_msg("accepted %s", bad[i]);
	}
	char many[2000] = "{\"status\":{\"execution\":\"closed\",\"result\":{\"finished\":\"none\"},"
			  "\"details\":[\"x\"";
	for (int i = 0; i < 50; i++)
		strcat(many, ",\"x\"");
	strcat(many, "]}}");
	assert_int_equal(parse(many, &r), -E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deployment_map),
		cmocka_unit_test(test_cancel_map),
		cmocka_unit_test(test_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
