/* abota-server's SQLite store (src/abota-server/store.c): assignment,
 * supersession, feedback transitions, poll bookkeeping, rollouts, and the
 * state surviving a reopen. */
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

#include "store.h"

static char dir[64];
static char db[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/abota-store-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(db, sizeof(db), "%s/s.db", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char p[160];
	const char *sfx[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", db, sfx[i]);
		unlink(p);
	}
	rmdir(dir);
	return 0;
}

static struct store *open_store(void)
{
	struct store *s = NULL;
	struct abota_error err = {0};
	assert_int_equal(store_open(db, &s, &err), 0);
	return s;
}

static int64_t target(struct store *s, const char *cid, const char *tok)
{
	struct store_target t = {.controller_id = (char *)cid, .name = (char *)cid,
				 .token = (char *)tok, .request_attributes = true};
	int64_t id = 0;
	assert_int_equal(store_target_create(s, &t, &id), 0);
	return id;
}

static int64_t dset(struct store *s, const char *name)
{
	struct store_sm m = {.name = (char *)name, .version = "1", .type = "os"};
	int64_t sm = 0, ds = 0;
	assert_int_equal(store_sm_create(s, &m, &sm), 0);
	struct store_ds d = {.name = (char *)name, .version = "1", .type = "os", .modules = &sm,
			     .n_modules = 1};
	assert_int_equal(store_ds_create(s, &d, &ds), 0);
	return ds;
}

static void test_assign_and_feedback(void **state)
{
	(void)state;
	struct store *s = open_store();
	int64_t tid = target(s, "d1", "tok1");
	struct store_target dup = {.controller_id = "d1", .name = "x", .token = "tok2"};
	assert_int_equal(store_target_create(s, &dup, NULL), -EEXIST);
	int64_t ds1 = dset(s, "a"), ds2 = dset(s, "b");
	struct store_assign as = {.controller_id = "d1", .type = "forced"};
	int64_t a1 = 0, a2 = 0, again = 0;
	bool already = true;
	assert_int_equal(store_assign(s, ds1, &as, &a1, &already), 0);
	assert_false(already);
	assert_int_equal(store_assign(s, ds1, &as, &again, &already), 0);
	assert_true(already);
	assert_true(again == a1);
	/* a second set supersedes: the first goes to canceling and stays the
	 * active one the device sees (oldest first at equal weight) */
	assert_int_equal(store_assign(s, ds2, &as, &a2, &already), 0);
	struct store_action act;
	assert_int_equal(store_action_active(s, tid, &act), 0);
	assert_true(act.id == a1);
	assert_string_equal(act.status, "canceling");
	struct store_transition cancel = {.status_type = "canceled", .new_status = "canceled",
					  .close = 1, .target_update_status = "settle"};
	assert_int_equal(store_action_apply(s, a1, &cancel, NULL, "[\"ok\"]", 0), 0);
	assert_int_equal(store_action_active(s, tid, &act), 0);
	assert_true(act.id == a2);
	int code = 7;
	struct store_transition fin = {.status_type = "finished", .new_status = "finished",
				       .close = 1, .target_update_status = "in_sync",
				       .installed = true};
	assert_int_equal(store_action_apply(s, a2, &fin, &code, "[\"done\"]", 1234), 0);
	/* a second close (a concurrent request) changes nothing */
	assert_int_equal(store_action_apply(s, a2, &fin, NULL, "[\"again\"]", 0), -ESTALE);
	assert_int_equal(store_action_active(s, tid, &act), -ENOENT);
	struct store_target t;
	assert_int_equal(store_target_get(s, "d1", &t), 0);
	assert_string_equal(t.update_status, "in_sync");
	assert_true(t.installed_ds == ds2 && t.installed_action == a2);
	store_target_clear(&t);
	struct store_status *st = NULL;
	size_t n = 0;
	int64_t total = 0;
	assert_int_equal(store_status_list(s, a2, 0, 10, true, &st, &n, &total), 0);
	assert_true(n == 2 && total == 2);
	assert_string_equal(st[0].type, "finished");
	assert_true(st[0].has_code && st[0].code == 7 && st[0].timestamp == 1234);
	assert_string_equal(st[0].messages, "[\"done\"]");
	store_status_list_free(st, n);
	store_close(s);

	/* everything is still there after a reopen */
	s = open_store();
	assert_int_equal(store_action_get(s, a2, &act), 0);
	assert_string_equal(act.status, "finished");
	assert_false(act.active);
	assert_true(act.has_last_code && act.last_code == 7);
	store_close(s);
}

static void test_touch_config_attrs(void **state)
{
	(void)state;
	struct store *s = open_store();
	int64_t tid = target(s, "d2", "tok-d2");
	store_target_touch(s, tid, 5000, "10.0.0.7");
	struct store_target t;
	/* visible before the flush, and stored by it */
	assert_int_equal(store_target_get(s, "d2", &t), 0);
	assert_true(t.last_seen == 5000);
	assert_string_equal(t.ip, "10.0.0.7");
	store_target_clear(&t);
	assert_int_equal(store_flush_touches(s), 0);
	char *v = NULL;
	assert_int_equal(store_config_get(s, "pollingTime", &v), -ENOENT);
	assert_int_equal(store_config_set(s, "pollingTime", "00:01:00"), 0);
	assert_int_equal(store_config_get(s, "pollingTime", &v), 0);
	assert_string_equal(v, "00:01:00");
	free(v);
	struct store_kv kv[2] = {{"a", "1"}, {"b", "2"}};
	assert_int_equal(store_attrs_update(s, tid, "merge", kv, 2, 100), 0);
	assert_int_equal(store_attrs_update(s, tid, "remove", kv, 1, 100), 0);
	struct store_kv *got = NULL;
	size_t n = 0;
	assert_int_equal(store_attrs_get(s, tid, &got, &n), 0);
	assert_true(n == 1);
	assert_string_equal(got[0].key, "b");
	store_kv_free(got, n);
	assert_int_equal(store_attrs_update(s, tid, "merge", kv, 2, 1), -E2BIG);
	store_close(s);
	s = open_store();
	assert_int_equal(store_target_get(s, "d2", &t), 0);
	assert_true(t.last_seen == 5000);
	assert_false(t.request_attributes);
	store_target_clear(&t);
	assert_int_equal(store_config_get(s, "pollingTime", &v), 0);
	free(v);
	assert_int_equal(store_config_delete(s, "pollingTime"), 0);
	assert_int_equal(store_config_get(s, "pollingTime", &v), -ENOENT);
	store_close(s);
}

static void test_rollout(void **state)
{
	(void)state;
	struct store *s = open_store();
	const char *ids[] = {"r1", "r2", "r3"};
	for (int i = 0; i < 3; i++)
		target(s, ids[i], ids[i]);
	int64_t ds = dset(s, "r"), rid = 0;
	const char *missing[] = {"r1", "nope"};
	assert_int_equal(store_rollout_create(s, ds, "forced", 1, 50, missing, 2, &rid), -ENOENT);
	assert_int_equal(store_rollout_create(s, ds, "forced", 2, 50, ids, 3, &rid), 0);
	assert_int_equal(store_rollout_tick(s), 0);
	struct store_rollout *r = NULL;
	size_t n = 0;
	assert_int_equal(store_rollout_list(s, &r, &n), 0);
	assert_true(n == 1 && r[0].running == 2 && r[0].waiting == 1);
	free(r);
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_assign_and_feedback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_touch_config_attrs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollout, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
