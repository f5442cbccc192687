#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abota/system_info.h"

static char dir[] = "/tmp/abota-test-sysinfo-XXXXXX";

static void put(const char *name, const char *data, size_t len, mode_t mode)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
	chmod(p, mode);
}

static void put_s(const char *name, const char *script)
{
	put(name, script, strlen(script), 0755);
}

static struct system_config *conf(const char *system_extra, const char *handlers)
{
	char text[1024];
	snprintf(text, sizeof(text),
		 "[system]\ncompatible=c\nbootloader=noop\n%s"
		 "[slot.rootfs.0]\ndevice=/dev/a\ntype=ext4\nbootname=A\n[handlers]\n%s",
		 system_extra, handlers);
	struct system_config *cfg = NULL;
	struct abota_error err = { 0 };
	if (config_parse(text, strlen(text), "s.conf", dir, NULL, &cfg, &err) < 0)
		fail_msg("%s", err.msg);
	return cfg;
}

static struct system_info *load(const char *system_extra, const char *handlers)
{
	struct system_config *cfg = conf(system_extra, handlers);
	struct system_info *si = NULL;
	struct abota_error err = { 0 };
	char dtb[256];
	snprintf(dtb, sizeof(dtb), "%s/compatible", dir);
	if (system_info_load(cfg, dtb, &si, &err) < 0)
		fail_msg("%s", err.msg);
	config_free(cfg);
	return si;
}

static void test_variants(void **state)
{
	(void)state;
	struct system_info *si = load("", "");
	assert_null(si->variant);
	assert_int_equal(si->n_vars, 0);
	system_info_free(si);
	si = load("variant-name=board-a\n", "");
	assert_string_equal(si->variant, "board-a");
	system_info_free(si);
	put("variant", "board-b\n", 8, 0644);
	si = load("variant-file=variant\n", "");
	assert_string_equal(si->variant, "board-b");
	system_info_free(si);
	/* the device tree's compatible: NUL-separated, the first is the board */
	put("compatible", "st,stm32mp157f-dk2\0st,stm32mp157\0", 33, 0644);
	si = load("variant-dtb=true\n", "");
	assert_string_equal(si->variant, "st,stm32mp157f-dk2");
	system_info_free(si);
	/* unreadable: a warning and no variant, as RAUC */
	si = load("variant-file=missing\n", "");
	assert_null(si->variant);
	system_info_free(si);
}

static void test_handler(void **state)
{
	(void)state;
	const char *script = "#!/bin/sh\n"
			     "echo 'getting system info'\n"
			     "echo RAUC_SYSTEM_SERIAL=1234\n"
			     "echo RAUC_SYSTEM_VARIANT=from-handler\n"
			     "echo RAUC_CUSTOM_KEY=a=b\n"
			     "echo RAUC_CUSTOM_KEY=second\n"
			     "echo 'RAUC_SYSTEM_VERSION=2026.11 (lts)'\n";
	put("info.sh", script, strlen(script), 0755);
	struct system_info *si = load("variant-name=configured\n", "system-info=info.sh\n");
	assert_string_equal(si->variant, "from-handler");
	assert_string_equal(si->serial, "1234");
	assert_string_equal(si->version, "2026.11 (lts)");
	assert_int_equal(si->n_vars, 4);
	bool custom = false;
	for (size_t i = 0; i < si->n_vars; i++) {
		assert_null(strstr(si->vars[i], "getting"));
		if (!strncmp(si->vars[i], "RAUC_CUSTOM_KEY=", 16)) {
			assert_string_equal(si->vars[i], "RAUC_CUSTOM_KEY=second");
			custom = true;
		}
	}
	assert_true(custom);
	system_info_free(si);
}

static void fails(const char *handlers, const char *needle)
{
	struct system_config *cfg = conf("", handlers);
	struct system_info *si = (struct system_info *)&si;
	struct abota_error err = { 0 };
	assert_true(system_info_load(cfg, NULL, &si, &err) < 0);
	assert_ptr_equal(si, (struct system_info *)&si); /* untouched on failure */
	if (!strstr(err.msg, needle))
		fail_msg("'%s' lacks '%s'", err.msg, needle);
	config_free(cfg);
}

static void test_handler_errors(void **state)
{
	(void)state;
	fails("system-info=nope.sh\n", "nope.sh: No such file");
	put_s("fail.sh", "#!/bin/sh\necho RAUC_SYSTEM_SERIAL=1\nexit 3\n");
	fails("system-info=fail.sh\n", "failed (exit code 3)");
	put_s("bad.sh", "#!/bin/sh\necho RAUC_bad-name=1\n");
	fails("system-info=bad.sh\n", "'RAUC_bad-name' is not a variable name");
	put_s("big.sh", "#!/bin/sh\nyes RAUC_X=1234567890\n");
	fails("system-info=big.sh\n", "more than 262144 bytes");
}

static void test_http_headers(void **state)
{
	(void)state;
	const char *script = "#!/bin/sh\necho RAUC_SYSTEM_SERIAL=SN7\n"
			     "echo RAUC_HTTP_FLEET_GROUP=canary\necho RAUC_HTTP_=nameless\n";
	put_s("hdr.sh", script);
	put("bootid", "0b0e-1d\n", 8, 0644);
	struct system_config *cfg =
		conf("variant-name=board-a\nboot-id-file=bootid\n",
		     "system-info=hdr.sh\n[streaming]\n"
		     "send-headers=boot-id;serial;variant;system-version;transaction-id;uptime\n");
	struct system_info *si = NULL;
	struct abota_error err = { 0 };
	if (system_info_load(cfg, NULL, &si, &err) < 0)
		fail_msg("%s", err.msg);
	char *h[16];
	assert_int_equal(system_info_http_headers(cfg, si, "tx-42", h, 16, &err), 0);
	/* in send-headers order, system-version left out (the system has none),
	 * then RAUC_HTTP_* with '_' as '-' (a bare RAUC_HTTP_ names nothing) */
	assert_string_equal(h[0], "RAUC-Boot-ID: 0b0e-1d");
	assert_string_equal(h[1], "RAUC-Serial: SN7");
	assert_string_equal(h[2], "RAUC-Variant: board-a");
	assert_string_equal(h[3], "RAUC-Transaction-ID: tx-42");
	assert_true(!strncmp(h[4], "RAUC-Uptime: ", 13) && strtod(h[4] + 13, NULL) > 0);
	assert_null(strchr(h[4] + 13, ' '));
	assert_string_equal(h[5], "RAUC-FLEET-GROUP: canary");
	assert_null(h[6]);
	for (size_t i = 0; h[i]; i++)
		free(h[i]);
	/* a short array: cut, still NULL-terminated */
	assert_int_equal(system_info_http_headers(cfg, si, "tx-42", h, 3, &err), 0);
	assert_non_null(h[1]);
	assert_null(h[2]);
	free(h[0]);
	free(h[1]);
	system_info_free(si);
	config_free(cfg);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_variants),
		cmocka_unit_test(test_handler),
		cmocka_unit_test(test_handler_errors),
		cmocka_unit_test(test_http_headers),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
