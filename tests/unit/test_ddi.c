/* DDI JSON: parsing of poll, deployment and cancel responses (valid and
 * broken), the sleep formats, href action ids, and the bodies abotad sends. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "abota/ddi.h"

#define SHA256 "b3a04740a19e36057ccf258701922f3cd2f1a880536be53a3ca8d50f6b615975"

static void test_sleep(void **state)
{
	(void)state;
	uint64_t s;
	assert_true(ddi_parse_sleep("00:05:00", &s));
	assert_int_equal(s, 300);
	assert_true(ddi_parse_sleep("23:59:59", &s));
	assert_int_equal(s, 86399);
	assert_true(ddi_parse_sleep("PT24H", &s));
	assert_int_equal(s, 86400);
	assert_true(ddi_parse_sleep("P1DT2H3M4S", &s));
	assert_int_equal(s, 86400 + 7384);
	assert_true(ddi_parse_sleep("PT0.5S", &s));
	assert_int_equal(s, 0);
	assert_true(ddi_parse_sleep("P2D", &s));
	assert_int_equal(s, 172800);
	const char *bad[] = { "", "5", "00:60:00", "00:00:60", "0:0:0", "aa:bb:cc", "P", "PT",
			      "P1H", "PT1D", "PT1S1M", "PT-1S", "P1DT", "PT1H1H", "00:05:00 ",
			      "PT9999999999S", NULL };
	for (int i = 0; bad[i]; i++)
		if (ddi_parse_sleep(bad[i], &s))
			fail_msg("'%s' accepted", bad[i]);
}

static void test_href_id(void **state)
{
	(void)state;
	char id[DDI_MAX_ACTION_ID + 1];
	assert_true(ddi_href_action_id("https://h/T/controller/v1/d/deploymentBase/5?c=-21",
				       "deploymentBase", id));
	assert_string_equal(id, "5");
	assert_true(ddi_href_action_id("http://h/x/cancelAction/1234567890123456789", "cancelAction",
				       id));
	assert_false(ddi_href_action_id("http://h/x/cancelAction/12345678901234567890",
					"cancelAction", id));
	assert_false(ddi_href_action_id("http://h/x/deploymentBase/", "deploymentBase", id));
	assert_false(ddi_href_action_id("http://h/x/deploymentBase/a1", "deploymentBase", id));
	assert_false(ddi_href_action_id("http://h/x/XdeploymentBase/1", "deploymentBase", id));
	assert_false(ddi_href_action_id("http://h/x/cancelAction/1", "deploymentBase", id));
	assert_false(ddi_href_action_id("1", "deploymentBase", id));
}

static void test_base(void **state)
{
	(void)state;
	const char *j = "{\"config\":{\"polling\":{\"sleep\":\"00:00:30\"}},\"_links\":{"
			"\"deploymentBase\":{\"href\":\"https://h/D/controller/v1/d/deploymentBase/5?c=1\"},"
			"\"configData\":{\"href\":\"https://h/D/controller/v1/d/configData\"},"
			"\"unknownRel\":{\"href\":\"whatever\"}},\"extra\":[1,2]}";
	struct ddi_base b = { 0 };
	struct abota_error err = { 0 };
	assert_int_equal(ddi_parse_base(j, strlen(j), &b, &err), 0);
	assert_true(b.has_sleep);
	assert_int_equal(b.sleep_s, 30);
	assert_non_null(b.deployment_href);
	assert_non_null(b.config_data_href);
	assert_null(b.cancel_href);
	assert_null(b.installed_href);
	ddi_base_clear(&b);
	/* nothing to do: no links, no config */
	assert_int_equal(ddi_parse_base("{}", 2, &b, &err), 0);
	assert_false(b.has_sleep);
	assert_null(b.deployment_href);
	ddi_base_clear(&b);
}

static void base_fails(const char *j, const char *needle)
{
	struct ddi_base b = { 0 };
	struct abota_error err = { 0 };
	assert_true(ddi_parse_base(j, strlen(j), &b, &err) < 0);
	assert_null(b.deployment_href);
	if (!strstr(err.msg, needle))
		fail_msg("'%s': error '%s' lacks '%s'", j, err.msg, needle);
}

static void test_base_bad(void **state)
{
	(void)state;
	base_fails("", "malformed JSON");
	base_fails("{", "malformed JSON");
	base_fails("[]", "not an object");
	base_fails("{} x", "malformed JSON");
	base_fails("{\"config\":[]}", "config: expected object");
	base_fails("{\"config\":{\"polling\":{\"sleep\":1}}}", "config.polling.sleep: expected string");
	base_fails("{\"config\":{\"polling\":{\"sleep\":\"soon\"}}}", "neither HH:MM:SS");
	base_fails("{\"_links\":{\"cancelAction\":{}}}", "_links.cancelAction.href: missing");
	base_fails("{\"_links\":{\"cancelAction\":{\"href\":\"ftp://x/1\"}}}", "not an absolute");
	base_fails("{\"_links\":{\"cancelAction\":{\"href\":\"http://x/ 1\"}}}", "not an absolute");
	base_fails("{\"_links\":{\"cancelAction\":{\"href\":\"http://x/\\u0001\"}}}",
		   "control characters");
	/* nesting deeper than the tokenizer allows */
	char deep[400] = "";
	for (int i = 0; i < 40; i++)
		strcat(deep, "{\"a\":");
	strcat(deep, "1");
	for (int i = 0; i < 40; i++)
		strcat(deep, "}");
	base_fails(deep, "malformed JSON");
}

/* noinline: inlined, GCC 12 mistakes strstr() into the result for a
 * pointer into the local `s` (-Wdangling-pointer) */
__attribute__((noinline)) static char *deployment(const char *artifact_extra,
						  const char *dep_extra)
{
	char *s = NULL;
	int n = asprintf(
		&s,
		"{\"id\":\"8\",\"deployment\":{\"download\":\"forced\",\"update\":\"attempt\"%s,"
		"\"chunks\":[{\"part\":\"os\",\"version\":\"1.0.79\",\"name\":\"one Firmware\","
		"\"metadata\":[{\"key\":\"k\",\"value\":\"v\"}],"
		"\"artifacts\":[{\"filename\":\"b.raucb\",\"hashes\":{\"sha1\":"
		"\"986A1ADE8B8A2F758CE951340CC5E21335CC2A00\",\"md5\":"
		"\"d04440e6533863247655ac5fd4345bcc\",\"sha256\":\"" SHA256 "\"},\"size\":13,"
		"\"_links\":{\"download-http\":{\"href\":\"http://h/sm/24/artifacts/b.raucb\"}}%s}]}]},"
		"\"actionHistory\":{\"status\":\"RUNNING\",\"messages\":[\"x\"]}}",
		dep_extra, artifact_extra);
	assert_true(n > 0);
	return s;
}

static void test_deployment(void **state)
{
	(void)state;
	char *j = deployment("", ",\"maintenanceWindow\":\"unavailable\"");
	struct ddi_deployment d = { 0 };
	struct abota_error err = { 0 };
	if (ddi_parse_deployment(j, strlen(j), &d, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(d.id, "8");
	assert_int_equal(d.download, DDI_FORCED);
	assert_int_equal(d.update, DDI_ATTEMPT);
	assert_int_equal(d.window, DDI_WINDOW_UNAVAILABLE);
	assert_int_equal(d.nchunks, 1);
	assert_string_equal(d.chunks[0].version, "1.0.79");
	assert_int_equal(d.chunks[0].nartifacts, 1);
	const struct ddi_artifact *a = &d.chunks[0].artifacts[0];
	assert_string_equal(a->filename, "b.raucb");
	assert_true(a->has_size);
	assert_int_equal(a->size, 13);
	assert_true(a->has_sha256);
	assert_string_equal(a->sha256, SHA256);
	/* upper-case hex from a server is normalised */
	assert_string_equal(a->sha1, "986a1ade8b8a2f758ce951340cc5e21335cc2a00");
	assert_null(a->download_href);
	assert_string_equal(a->download_http_href, "http://h/sm/24/artifacts/b.raucb");
	ddi_deployment_clear(&d);
	free(j);
}

static void dep_fails(const char *artifact_extra, const char *dep_extra, const char *needle)
{
	char *j = deployment(artifact_extra, dep_extra);
	struct ddi_deployment d = { 0 };
	struct abota_error err = { 0 };
	int ret = ddi_parse_deployment(j, strlen(j), &d, &err);
	if (ret == 0)
		fail_msg("accepted: %s", j);
	assert_int_equal(d.nchunks, 0);
	if (!strstr(err.msg, needle))
		fail_msg("error '%s' lacks '%s'", err.msg, needle);
	free(j);
}

/* The standard deployment with one piece of text replaced. */
static void dep_repl_fails(const char *old, const char *new, const char *needle)
{
	char *j = deployment("", "");
	const char *at = strstr(j, old);
	assert_non_null(at);
	size_t off = strlen(j) - strlen(at);
	char *r = NULL;
	assert_true(asprintf(&r, "%.*s%s%s", (int)off, j, new, j + off + strlen(old)) > 0);
	struct ddi_deployment d = { 0 };
	struct abota_error err = { 0 };
	if (ddi_parse_deployment(r, strlen(r), &d, &err) == 0)
		fail_msg("accepted: %s", r);
	if (!strstr(err.msg, needle))
		fail_msg("error '%s' lacks '%s'", err.msg, needle);
	free(r);
	free(j);
}

static void raw_fails(const char *j, const char *needle)
{
	struct ddi_deployment d = { 0 };
	struct abota_error err = { 0 };
	assert_true(ddi_parse_deployment(j, strlen(j), &d, &err) < 0);
	if (!strstr(err.msg, needle))
		fail_msg("error '%s' lacks '%s'", err.msg, needle);
}

static void test_deployment_bad(void **state)
{
	(void)state;
	dep_fails("", ",\"maintenanceWindow\":\"maybe\"", "deployment.maintenanceWindow");
	dep_repl_fails("\"size\":13", "\"size\":\"13\"", "size: expected number");
	dep_repl_fails("\"size\":13", "\"size\":-1", "size: out of range");
	/* SC-119: sizes beyond int64 / uint64 */
	dep_repl_fails("\"size\":13", "\"size\":99999999999999999999999", "size");
	dep_repl_fails("\"size\":13", "\"size\":18446744073709551616", "size");
	dep_repl_fails("\"size\":13", "\"size\":1e300", "size: expected number");
	dep_repl_fails("\"filename\":\"b.raucb\"", "\"filename\":\"a/b\"",
		       "not a plain file name");
	dep_repl_fails("\"filename\":\"b.raucb\"", "\"filename\":\"..\"", "not a plain file name");
	/* SC-119: an id beyond 19 digits (not a positive int64) */
	dep_repl_fails("\"id\":\"8\"", "\"id\":\"12345678901234567890\"", "not an action id");
	/* SC-119: duplicate keys (json-c would keep the last one silently);
	 * a ':' or an escaped quote inside a string is not a member */
	dep_fails(",\"size\":14", "", "duplicate keys");
	dep_fails("", ",\"update\":\"forced\"", "duplicate keys");
	raw_fails("{\"id\":\"8\",\"id\":\"8\",\"deployment\":{\"chunks\":[]}}", "duplicate keys");
	struct ddi_deployment ok = { 0 };
	struct abota_error e = { 0 };
	const char *colons = "{\"id\":\"8\",\"x\":\"a:\\\":b\",\"deployment\":{\"chunks\":[]}}";
	assert_int_equal(ddi_parse_deployment(colons, strlen(colons), &ok, &e), 0);
	ddi_deployment_clear(&ok);
	/* SC-119: invalid UTF-8 */
	raw_fails("{\"id\":\"8\",\"x\":\"\xff\xfe\",\"deployment\":{\"chunks\":[]}}",
		  "invalid utf-8");
	raw_fails("{\"id\":\"8\"}", "deployment: missing");
	raw_fails("{\"id\":8,\"deployment\":{\"chunks\":[]}}", "id: expected string");
	raw_fails("{\"id\":\"-8\",\"deployment\":{\"chunks\":[]}}", "not an action id");
	raw_fails("{\"id\":\"8\",\"deployment\":{}}", "deployment.chunks: missing");
	raw_fails("{\"id\":\"8\",\"deployment\":{\"chunks\":[1]}}", "chunks[0]: expected object");
	raw_fails("{\"id\":\"8\",\"deployment\":{\"chunks\":[{\"part\":\"os\",\"name\":\"n\"}]}}",
		  "chunks[0].version: missing");
	raw_fails("{\"id\":\"8\",\"deployment\":{\"chunks\":[{\"part\":\"os\",\"name\":\"n\","
		  "\"version\":\"1\",\"artifacts\":[{}]}]}}",
		  "artifacts[0].filename: missing");
	raw_fails("{\"id\":\"8\",\"deployment\":{\"chunks\":[{\"part\":\"os\",\"name\":\"n\","
		  "\"version\":\"1\",\"artifacts\":[{\"filename\":\"f\",\"hashes\":{\"sha256\":\"zz\"}}]}]}}",
		  "hashes.sha256: not 64 hex digits");
	/* quotas */
	char *many = malloc(200000);
	strcpy(many, "{\"id\":\"8\",\"deployment\":{\"chunks\":[");
	for (int i = 0; i < DDI_MAX_CHUNKS + 1; i++)
		strcat(many, i ? ",{\"part\":\"os\",\"name\":\"n\",\"version\":\"1\"}"
			       : "{\"part\":\"os\",\"name\":\"n\",\"version\":\"1\"}");
	strcat(many, "]}}");
	raw_fails(many, "more than 100 chunks");
	free(many);
	/* a string with an embedded NUL */
	const char nul[] = "{\"id\":\"8\",\"deployment\":{\"chunks\":[{\"part\":\"o\\u0000s\","
			   "\"name\":\"n\",\"version\":\"1\"}]}}";
	raw_fails(nul, "control characters");
}

static void test_cancel(void **state)
{
	(void)state;
	char id[DDI_MAX_ACTION_ID + 1];
	struct abota_error err = { 0 };
	const char *j = "{\"id\":\"11\",\"cancelAction\":{\"stopId\":\"11\"}}";
	assert_int_equal(ddi_parse_cancel(j, strlen(j), id, &err), 0);
	assert_string_equal(id, "11");
	const char *bad = "{\"id\":\"11\",\"cancelAction\":{\"stopId\":11}}";
	assert_true(ddi_parse_cancel(bad, strlen(bad), id, &err) < 0);
	assert_non_null(strstr(err.msg, "cancelAction.stopId: expected string"));
	const char *missing = "{\"id\":\"11\"}";
	assert_true(ddi_parse_cancel(missing, strlen(missing), id, &err) < 0);
}

static void test_build(void **state)
{
	(void)state;
	const char *details[] = { "Download \"complete\"", "line2" };
	struct ddi_feedback fb = { .execution = "proceeding", .finished = "none",
				   .has_code = true, .code = 200, .details = details,
				   .ndetails = 2, .progress_cnt = 40, .progress_of = 100,
				   .timestamp_ms = 1627997501890 };
	char *s = ddi_build_feedback(&fb);
	assert_non_null(s);
	json_object *o = json_tokener_parse(s);
	assert_non_null(o);
	json_object *st, *r, *p, *v;
	assert_true(json_object_object_get_ex(o, "status", &st));
	assert_true(json_object_object_get_ex(st, "execution", &v));
	assert_string_equal(json_object_get_string(v), "proceeding");
	assert_true(json_object_object_get_ex(st, "result", &r));
	assert_true(json_object_object_get_ex(r, "progress", &p));
	assert_true(json_object_object_get_ex(p, "cnt", &v));
	assert_int_equal(json_object_get_int(v), 40);
	assert_true(json_object_object_get_ex(st, "details", &v));
	assert_string_equal(json_object_get_string(json_object_array_get_idx(v, 0)),
			    "Download \"complete\"");
	assert_true(json_object_object_get_ex(o, "timestamp", &v));
	assert_int_equal(json_object_get_int64(v), 1627997501890);
	json_object_put(o);
	free(s);
	/* no timestamp, no progress */
	struct ddi_feedback fb2 = { .execution = "closed", .finished = "success" };
	s = ddi_build_feedback(&fb2);
	assert_non_null(s);
	assert_null(strstr(s, "timestamp"));
	assert_null(strstr(s, "progress"));
	free(s);
	/* enums are checked */
	struct ddi_feedback bad = { .execution = "cancelled", .finished = "none" };
	assert_null(ddi_build_feedback(&bad));
	struct ddi_feedback bad2 = { .execution = "closed", .finished = "ok" };
	assert_null(ddi_build_feedback(&bad2));
	struct hawkbit_attribute attrs[] = { { "hwRevision", "2" }, { "serial", "x/y" } };
	s = ddi_build_config_data(attrs, 2, "merge");
	assert_string_equal(s, "{\"data\":{\"hwRevision\":\"2\",\"serial\":\"x/y\"},\"mode\":\"merge\"}");
	free(s);
	assert_null(ddi_build_config_data(attrs, 2, "append"));
	s = ddi_build_confirmation("confirmed", 200, "ok");
	assert_string_equal(s, "{\"confirmation\":\"confirmed\",\"code\":200,\"details\":[\"ok\"]}");
	free(s);
	assert_null(ddi_build_confirmation("maybe", 200, NULL));
	s = ddi_build_installed_base("fw", "2.0");
	assert_string_equal(s, "{\"name\":\"fw\",\"version\":\"2.0\"}");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sleep),
		cmocka_unit_test(test_href_id),
		cmocka_unit_test(test_base),
		cmocka_unit_test(test_base_bad),
		cmocka_unit_test(test_deployment),
		cmocka_unit_test(test_deployment_bad),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_build),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
