#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abota/event_log.h"
#include "abota/fileio.h"

/* 2023-06-14T20:18:07Z */
#define WHEN ((time_t)1686773887)

static const struct event_field fields[] = {
	{ "SLOT_NAME", "rootfs.0" },
	{ "SLOT_BOOTNAME", "A" },
	{ "BOOT_ID", "16655d2c-c5ca-48d3-bea8-7b95c803b4b2" },
	{ "BUNDLE_HASH", "unknown" },
	{ "NOT_SHOWN_WHEN_READABLE", "x" },
	{ "LEFT_OUT", NULL },
};

static void test_readable_and_short(void **state)
{
	(void)state;
	char *out = NULL;
	assert_int_equal(event_log_format(CONFIG_LOG_READABLE, WHEN, CONFIG_EVENT_BOOT,
					  EVENT_ID_BOOTED, "Booted into rootfs.0 (A)", fields, 6,
					  &out),
			 0);
	assert_string_equal(out, "2023-06-14T20:18:07Z: Booted into rootfs.0 (A)\n"
				 "                      slot: rootfs.0\n"
				 "                      bootname: A\n"
				 "                      boot ID: 16655d2c-c5ca-48d3-bea8-7b95c803b4b2\n"
				 "                      bundle hash: unknown\n");
	free(out);
	assert_int_equal(event_log_format(CONFIG_LOG_SHORT, WHEN, CONFIG_EVENT_BOOT, NULL,
					  "Booted into rootfs.0 (A)", fields, 6, &out),
			 0);
	assert_string_equal(out, "2023-06-14T20:18:07Z: Booted into rootfs.0 (A)\n");
	free(out);
}

static void test_json(void **state)
{
	(void)state;
	for (int pretty = 0; pretty < 2; pretty++) {
		char *out = NULL;
		assert_int_equal(event_log_format(pretty ? CONFIG_LOG_JSON_PRETTY : CONFIG_LOG_JSON,
						  WHEN, CONFIG_EVENT_MARK, EVENT_ID_MARKED_GOOD,
						  "Marked slot \"rootfs.0\" as good", fields, 6, &out),
				 0);
		size_t len = strlen(out);
		assert_true(len > 2 && out[len - 1] == '\n');
		/* one line per record unless pretty */
		assert_int_equal(strchr(out, '\n') == out + len - 1, !pretty);
		struct json_object *o = json_tokener_parse(out);
		assert_non_null(o);
		struct json_object *v;
		assert_true(json_object_object_get_ex(o, "TS", &v));
		assert_string_equal(json_object_get_string(v), "2023-06-14T20:18:07Z");
		assert_true(json_object_object_get_ex(o, "MESSAGE", &v));
		assert_string_equal(json_object_get_string(v), "Marked slot \"rootfs.0\" as good");
		assert_true(json_object_object_get_ex(o, "MESSAGE_ID", &v));
		assert_string_equal(json_object_get_string(v), EVENT_ID_MARKED_GOOD);
		assert_true(json_object_object_get_ex(o, "RAUC_EVENT_TYPE", &v));
		assert_string_equal(json_object_get_string(v), "mark");
		assert_true(json_object_object_get_ex(o, "NOT_SHOWN_WHEN_READABLE", &v));
		assert_false(json_object_object_get_ex(o, "LEFT_OUT", &v));
		json_object_put(o);
		free(out);
	}
}

/* A configuration with one logger writing into dir. */
static struct system_config *conf(const char *dir, const char *logger)
{
	char text[2048];
	snprintf(text, sizeof(text),
		 "[system]\ncompatible=c\nbootloader=noop\ndata-directory=%s\nboot-id-file=%s/boot_id\n"
		 "[slot.rootfs.0]\ndevice=/dev/a\ntype=ext4\nbootname=A\n[log.t]\n%s",
		 dir, dir, logger);
	struct system_config *cfg = NULL;
	struct abota_error err = { 0 };
	if (config_parse(text, strlen(text), "s.conf", dir, NULL, &cfg, &err) < 0)
		fail_msg("%s", err.msg);
	return cfg;
}

static char *slurp(const char *dir, const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	char *data = NULL;
	size_t len = 0;
	struct abota_error err = { 0 };
	if (fileio_read_all(path, 1 << 20, &data, &len, &err) < 0)
		return NULL;
	return data;
}

static size_t lines(const char *s)
{
	size_t n = 0;
	for (; s && *s; s++)
		n += *s == '\n';
	return n;
}

/* Each test that writes gets a fresh directory (setup) removed after it
 * (teardown). */
static char dir[64];

static int make_dir(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/abota-test-evlog-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_append_filter_and_rotate(void **state)
{
	(void)state;
	/* each short record is 22 + 9 + 1 = 32 bytes: three fit in 100 */
	struct system_config *cfg =
		conf(dir, "filename=ev.log\nevents=install;mark\nformat=short\nmax-size=100\nmax-files=3\n");
	event_log_emit(cfg, CONFIG_EVENT_BOOT, NULL, NULL, 0, "not this");
	assert_null(slurp(dir, "ev.log"));
	for (int i = 0; i < 8; i++)
		event_log_emit(cfg, i % 2 ? CONFIG_EVENT_MARK : CONFIG_EVENT_INSTALL, NULL, NULL, 0,
			       "record %02d", i);
	/* 8 records, 3 per file: ev.log.2 (3..5 dropped 0..2), ev.log.1, ev.log */
	char *cur = slurp(dir, "ev.log"), *one = slurp(dir, "ev.log.1"), *two = slurp(dir, "ev.log.2");
	assert_non_null(cur);
	assert_non_null(one);
	assert_non_null(two);
	assert_null(slurp(dir, "ev.log.3"));
	assert_int_equal(lines(cur), 2);
	assert_int_equal(lines(one), 3);
	assert_int_equal(lines(two), 3);
	assert_non_null(strstr(cur, "record 07"));
	assert_non_null(strstr(one, "record 05"));
	assert_non_null(strstr(two, "record 00"));
	assert_true(strlen(cur) <= 100 && strlen(one) <= 100);
	free(cur);
	free(one);
	free(two);
	config_free(cfg);
	/* max-files=1 keeps only the current file */
	cfg = conf(dir, "filename=one.log\nformat=short\nmax-size=40\nmax-files=1\n");
	event_log_emit(cfg, CONFIG_EVENT_SERVICE, NULL, NULL, 0, "first xx");
	event_log_emit(cfg, CONFIG_EVENT_SERVICE, NULL, NULL, 0, "second x");
	cur = slurp(dir, "one.log");
	assert_non_null(cur);
	assert_null(strstr(cur, "first"));
	assert_non_null(strstr(cur, "second"));
	assert_null(slurp(dir, "one.log.1"));
	free(cur);
	config_free(cfg);
}

static void test_broken_logger_does_not_fail(void **state)
{
	(void)state;
	/* a directory where the file should be: the logger cannot write */
	char path[512];
	snprintf(path, sizeof(path), "%s/busy.log", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	struct system_config *cfg = conf(dir, "filename=busy.log\n");
	event_log_emit(cfg, CONFIG_EVENT_INSTALL, NULL, NULL, 0, "lost");
	/* the name is free now, but the logger stays off for this process */
	assert_int_equal(rmdir(path), 0);
	event_log_emit(cfg, CONFIG_EVENT_INSTALL, NULL, NULL, 0, "still lost");
	assert_null(slurp(dir, "busy.log"));
	config_free(cfg);
}

static void test_boot_once_per_boot_id(void **state)
{
	(void)state;
	char path[512];
	snprintf(path, sizeof(path), "%s/boot_id", dir);
	struct abota_error err = { 0 };
	assert_int_equal(fileio_write_atomic(path, "11111111-aaaa\n", 14, 0644, &err), 0);
	struct system_config *cfg = conf(dir, "filename=boot.log\nevents=boot\nformat=short\n");
	event_log_boot(cfg, "rootfs.0", "A", NULL);
	event_log_boot(cfg, "rootfs.0", "A", NULL); /* service restart: same boot */
	char *log = slurp(dir, "boot.log");
	assert_int_equal(lines(log), 1);
	assert_non_null(strstr(log, "Booted into rootfs.0 (A)"));
	free(log);
	assert_int_equal(fileio_write_atomic(path, "22222222-bbbb\n", 14, 0644, &err), 0);
	event_log_boot(cfg, NULL, NULL, NULL);
	log = slurp(dir, "boot.log");
	assert_int_equal(lines(log), 2);
	assert_non_null(strstr(log, "Booted from external source"));
	free(log);
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_readable_and_short),
		cmocka_unit_test(test_json),
		cmocka_unit_test_setup_teardown(test_append_filter_and_rotate, make_dir, remove_dir),
		cmocka_unit_test_setup_teardown(test_broken_logger_does_not_fail, make_dir, remove_dir),
		cmocka_unit_test_setup_teardown(test_boot_once_per_boot_id, make_dir, remove_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
