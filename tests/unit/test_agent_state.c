/* The durable agent state: round trip, missing file, strict loading,
 * clearing an action keeps the download and reported-version records. */
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

#include "abota/agent_state.h"
#include "abota/hawkbit_agent.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/abota-agent-state-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_roundtrip(void **state)
{
	(void)state;
	char path[128];
	snprintf(path, sizeof(path), "%s/hawkbit.state", dir);
	struct agent_state st = { 0 }, back;
	struct abota_error err = { 0 };
	/* missing file: idle */
	assert_int_equal(agent_state_load(path, &back, &err), 0);
	assert_int_equal(back.phase, AGENT_IDLE);
	st.phase = AGENT_INSTALLED;
	strcpy(st.action_id, "42");
	strcpy(st.artifact, "b.raucb");
	strcpy(st.sha256, "b3a04740a19e36057ccf258701922f3cd2f1a880536be53a3ca8d50f6b615975");
	st.size = UINT64_C(5000000000);
	strcpy(st.version, "2.0 beta; \"x\"");
	strcpy(st.target, "B");
	strcpy(st.booted_before, "A");
	strcpy(st.boot_id, "1234-5678");
	st.reported_installed = true;
	st.reboot_requested = true;
	strcpy(st.details, "multi\nline");
	strcpy(st.download_sha256, st.sha256);
	strcpy(st.reported_version, "1.0");
	strcpy(st.last_id, "41");
	strcpy(st.last_execution, "closed");
	st.last_success = true;
	strcpy(st.last_details, "Update 1.0 accepted");
	st.poll_success = 1764000000; /* [poll]: SC-104's staleness survives restarts */
	st.poll_since = 1763000000;
	if (agent_state_save(path, &st, &err) < 0)
		fail_msg("%s", err.msg);
	memset(&back, 0xff, sizeof(back));
	if (agent_state_load(path, &back, &err) < 0)
		fail_msg("%s", err.msg);
	assert_memory_equal(&st, &back, sizeof(st));
	agent_state_clear_action(&back);
	assert_int_equal(back.phase, AGENT_IDLE);
	assert_string_equal(back.action_id, "");
	assert_string_equal(back.download_sha256, st.sha256);
	assert_string_equal(back.reported_version, "1.0");
	assert_string_equal(back.last_id, "41");
	assert_true(back.last_success);
	assert_int_equal(back.poll_success, 1764000000);
	assert_int_equal(back.poll_since, 1763000000);
	assert_int_equal(agent_state_save(path, &back, &err), 0);
	struct agent_state idle;
	assert_int_equal(agent_state_load(path, &idle, &err), 0);
	assert_memory_equal(&idle, &back, sizeof(idle));
}

static void load_fails(const char *text, const char *needle)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/bad.state", dir);
	write_file(path, text);
	struct agent_state st;
	memset(&st, 0x5a, sizeof(st));
	struct agent_state before = st;
	struct abota_error err = { 0 };
	assert_true(agent_state_load(path, &st, &err) < 0);
	assert_memory_equal(&st, &before, sizeof(st)); /* untouched */
	if (!strstr(err.msg, needle))
		fail_msg("error '%s' lacks '%s'", err.msg, needle);
}

static void test_bad(void **state)
{
	(void)state;
	load_fails("[action]\nphase=flying\nid=1\n", "unknown phase");
	load_fails("[action]\nphase=installed\n", "without a valid action id");
	load_fails("[action]\nphase=installed\nid=x1\n", "without a valid action id");
	load_fails("[action]\nphase=installed\nid=1\nsha256=abc\n", "malformed sha256");
	load_fails("[action]\nphase=installed\nid=1\nsize=-1\n", "size");
	load_fails("[action]\nphase=installed\nid=1\nbogus=1\n", "bogus");
	load_fails("[action\n", "bad.state");
	load_fails("[action]\nphase=installed\nid=1\nreported_trial=perhaps\n", "reported_trial");
	load_fails("[last]\nid=1\nexecution=opened\n", "malformed [last]");
	load_fails("[poll]\nlast_success=-5\n", "last_success");
	load_fails("[poll]\nsince=9223372036854775807\n", "time out of range");
	load_fails("[poll]\nwhen=1\n", "when");
}

/* SC-104: when the device counts as stale (agent_state_stale) */
static void test_stale(void **state)
{
	(void)state;
	struct hawkbit_config c = { .stale_after = 86400 };
	const uint64_t now = 1800000000;
	uint64_t ref = 1;
	assert_false(agent_state_stale(c.stale_after, now - 86400, now - 900000, now, &ref));
	assert_int_equal(ref, now - 86400);
	assert_true(agent_state_stale(c.stale_after, now - 86401, now - 900000, now, &ref));
	/* never succeeded: counted from the first poll */
	assert_false(agent_state_stale(c.stale_after, 0, now - 3600, now, &ref));
	assert_int_equal(ref, now - 3600);
	assert_true(agent_state_stale(c.stale_after, 0, now - 90000, now, NULL));
	assert_false(agent_state_stale(c.stale_after, 0, 0, now, &ref));
	assert_int_equal(ref, 0);
	/* the clock went back, or is not set (1970): no claim */
	assert_false(agent_state_stale(c.stale_after, now + 100, 0, now, NULL));
	assert_false(agent_state_stale(c.stale_after, 1, 1, 100000, NULL));
}

static void test_phase_names(void **state)
{
	(void)state;
	for (int p = AGENT_IDLE; p <= AGENT_FINISHED; p++) {
		enum agent_phase back;
		assert_true(agent_phase_parse(agent_phase_name((enum agent_phase)p), &back));
		assert_int_equal(back, p);
	}
	enum agent_phase x;
	assert_false(agent_phase_parse("?", &x));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_phase_names),
		cmocka_unit_test(test_stale),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
