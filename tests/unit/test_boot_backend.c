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

#include "abota/boot_backend.h"
#include "abota/fileio.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/abota-test-boot-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct system_config *cfg_with(const char *system_extra, const char *extra)
{
	char text[4096];
	snprintf(text, sizeof(text),
		 "[system]\ncompatible=c\n%s\n%s"
		 "[slot.rootfs.0]\ndevice=/dev/a\nbootname=A\n"
		 "[slot.rootfs.1]\ndevice=/dev/b\nbootname=B\n"
		 "[slot.boot.0]\ndevice=/dev/c\nparent=rootfs.0\n",
		 system_extra, extra);
	struct system_config *cfg = NULL;
	struct abota_error err = { 0 };
	if (config_parse(text, strlen(text), "t.conf", dir, NULL, &cfg, &err) < 0)
		fail_msg("%s", err.msg);
	return cfg;
}

static struct boot_backend *open_ok(struct system_config *cfg)
{
	struct boot_backend *b = NULL;
	struct abota_error err = { 0 };
	if (boot_backend_open(cfg, &b, &err) < 0)
		fail_msg("%s", err.msg);
	return b;
}

static bool state_of(struct boot_backend *b, struct system_config *cfg, const char *slot)
{
	bool good = false;
	struct abota_error err = { 0 };
	if (boot_backend_get_state(b, slot_find(cfg, slot), &good, &err) < 0)
		fail_msg("%s", err.msg);
	return good;
}

static const char *primary_of(struct boot_backend *b)
{
	struct slot *p = (struct slot *)1;
	struct abota_error err = { 0 };
	if (boot_backend_get_primary(b, &p, &err) < 0)
		fail_msg("%s", err.msg);
	return p ? p->name : NULL;
}

/* The common A/B scenario every backend must get right. */
/* fallback: the backend derives the primary from the slot states (uboot,
 * grub); a custom script may keep its own notion. */
static void scenario(struct boot_backend *b, struct system_config *cfg, bool fallback)
{
	struct slot *a = slot_find(cfg, "rootfs.0"), *bb = slot_find(cfg, "rootfs.1");
	assert_int_equal(boot_backend_set_primary(b, a, NULL), 0);
	assert_int_equal(boot_backend_set_state(b, bb, true, NULL), 0);
	assert_string_equal(primary_of(b), "rootfs.0");
	assert_true(state_of(b, cfg, "rootfs.0"));
	/* install to B: mark it bad, write, make it primary */
	assert_int_equal(boot_backend_set_state(b, bb, false, NULL), 0);
	assert_false(state_of(b, cfg, "rootfs.1"));
	assert_int_equal(boot_backend_set_primary(b, bb, NULL), 0);
	assert_string_equal(primary_of(b), "rootfs.1");
	assert_true(state_of(b, cfg, "rootfs.1"));
	/* B fails: reject -> A is primary again */
	assert_int_equal(boot_backend_reject(b, bb, NULL), 0);
	assert_false(state_of(b, cfg, "rootfs.1"));
	if (fallback)
		assert_string_equal(primary_of(b), "rootfs.0");
	assert_int_equal(boot_backend_accept(b, a, NULL), 0);
	assert_true(state_of(b, cfg, "rootfs.0"));
	/* child slots are refused */
	struct abota_error err = { 0 };
	assert_int_equal(boot_backend_set_state(b, slot_find(cfg, "boot.0"), true, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "no bootname"));
}

static void test_noop(void **state)
{
	(void)state;
	struct system_config *cfg = cfg_with("bootloader=noop", "");
	struct boot_backend *b = open_ok(cfg);
	assert_string_equal(boot_backend_name(b), "noop");
	assert_int_equal(boot_backend_set_primary(b, slot_find(cfg, "rootfs.1"), NULL), 0);
	bool good;
	assert_int_equal(boot_backend_get_state(b, slot_find(cfg, "rootfs.1"), &good, NULL),
			 -ENOTSUP);
	assert_true(boot_backend_is_atomic(b));
	boot_backend_close(b);
	config_free(cfg);
}

static void test_unsupported(void **state)
{
	(void)state;
	/* fwu is implemented (lib/boot/boot_fwu.c, tests in test_boot_fwu.c) */
	const char *names[] = { "bootloader=barebox", "bootloader=efi" };
	for (size_t i = 0; i < 2; i++) {
		struct system_config *cfg = cfg_with(names[i], "");
		struct boot_backend *b = (struct boot_backend *)1;
		struct abota_error err = { 0 };
		assert_int_equal(boot_backend_open(cfg, &b, &err), -ENOTSUP);
		assert_ptr_equal(b, (struct boot_backend *)1);
		assert_non_null(strstr(err.msg, "not supported"));
		config_free(cfg);
	}
}

static void test_grub(void **state)
{
	(void)state;
	struct system_config *cfg = cfg_with("bootloader=grub\ngrubenv=grubenv", "");
	char path[128];
	snprintf(path, sizeof(path), "%s/grubenv", dir);
	/* a foreign variable must survive our edits */
	char block[1024];
	const char head[] = "# GRUB Environment Block\nsaved_entry=x\\\\y\n";
	memset(block, '#', sizeof(block));
	memcpy(block, head, strlen(head));
	assert_int_equal(fileio_write_atomic(path, block, sizeof(block), 0644, NULL), 0);
	struct boot_backend *b = open_ok(cfg);
	scenario(b, cfg, true);
	char *data = NULL;
	size_t len = 0;
	assert_int_equal(fileio_read_all(path, 4096, &data, &len, NULL), 0);
	assert_int_equal(len, 1024);
	assert_memory_equal(data, head, strlen(head));
	assert_non_null(strstr(data, "\nORDER=B A\n"));
	assert_non_null(strstr(data, "\nB_OK=0\nB_TRY=0\n"));
	assert_non_null(strstr(data, "\nA_OK=1\nA_TRY=0\n"));
	free(data);
	/* a trial boot (TRY=1) is not good */
	boot_backend_close(b);
	const char tried[] = "# GRUB Environment Block\nORDER=B A\nB_OK=1\nB_TRY=1\nA_OK=1\n";
	memset(block, '#', sizeof(block));
	memcpy(block, tried, strlen(tried));
	assert_int_equal(fileio_write_atomic(path, block, sizeof(block), 0644, NULL), 0);
	b = open_ok(cfg);
	assert_false(state_of(b, cfg, "rootfs.1"));
	assert_string_equal(primary_of(b), "rootfs.0");
	/* not a grubenv */
	assert_int_equal(fileio_write_atomic(path, "hello\n", 6, 0644, NULL), 0);
	bool good;
	assert_int_equal(boot_backend_get_state(b, slot_find(cfg, "rootfs.0"), &good, NULL),
			 -EINVAL);
	boot_backend_close(b);
	config_free(cfg);
}

static void test_custom(void **state)
{
	(void)state;
	char script[160], hextra[300];
	snprintf(script, sizeof(script), "%s/backend.sh", dir);
	/* state in files: primary, <b>.state; log of calls */
	FILE *f = fopen(script, "w");
	fprintf(f, "#!/bin/sh\nd=%s\necho \"$@\" >> $d/calls\n"
		   "case \"$1\" in\n"
		   "get-primary) cat $d/primary;;\n"
		   "set-primary) echo $2 > $d/primary; echo good > $d/$2.state;;\n"
		   "get-state) cat $d/$2.state 2>/dev/null || echo bad;;\n"
		   "set-state) echo $3 > $d/$2.state;;\n"
		   "get-current) echo B;;\n"
		   "fail) exit 3;;\n"
		   "*) exit 1;;\nesac\n",
		dir);
	fclose(f);
	chmod(script, 0755);
	snprintf(hextra, sizeof(hextra), "[handlers]\nbootloader-custom-backend=%s\n", script);
	struct system_config *cfg = cfg_with("bootloader=custom", hextra);
	struct boot_backend *b = open_ok(cfg);
	scenario(b, cfg, false);
	char *cur = NULL;
	assert_int_equal(boot_backend_get_booted(b, &cur, NULL), 0);
	assert_string_equal(cur, "B");
	free(cur);
	assert_false(boot_backend_is_atomic(b));
	/* bad answers are errors */
	char p[160];
	snprintf(p, sizeof(p), "%s/A.state", dir);
	assert_int_equal(fileio_write_atomic(p, "maybe\n", 6, 0644, NULL), 0);
	struct abota_error err = { 0 };
	bool good;
	assert_int_equal(boot_backend_get_state(b, slot_find(cfg, "rootfs.0"), &good, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "custom: get-state A returned 'maybe'"));
	snprintf(p, sizeof(p), "%s/primary", dir);
	assert_int_equal(fileio_write_atomic(p, "Q\n", 2, 0644, NULL), 0);
	struct slot *prim = NULL;
	assert_int_equal(boot_backend_get_primary(b, &prim, &err), -ENOENT);
	boot_backend_close(b);
	config_free(cfg);
	/* missing script */
	snprintf(hextra, sizeof(hextra), "[handlers]\nbootloader-custom-backend=%s/none\n", dir);
	cfg = cfg_with("bootloader=custom", hextra);
	assert_int_equal(boot_backend_open(cfg, &b, &err), -ENOENT);
	config_free(cfg);
}

/* U-Boot's env CRC (standard CRC-32). */
static uint32_t crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return ~c;
}

static void test_uboot(void **state)
{
	(void)state;
	char env[128], conf[128], sysx[300];
	snprintf(env, sizeof(env), "%s/uboot.env", dir);
	snprintf(conf, sizeof(conf), "%s/fw_env.config", dir);
	/* a valid single-copy environment of 16 KiB with one foreign variable */
	static uint8_t img[0x4000];
	memset(img, 0, sizeof(img));
	const char vars[] = "bootcmd=run distro_bootcmd\0";
	memcpy(img + 4, vars, sizeof(vars));
	uint32_t crc = crc32(img + 4, sizeof(img) - 4);
	memcpy(img, &crc, 4); /* little-endian host, as U-Boot on the targets */
	assert_int_equal(fileio_write_atomic(env, img, sizeof(img), 0644, NULL), 0);
	char line[256];
	int n = snprintf(line, sizeof(line), "%s 0x0 0x4000\n", env);
	assert_int_equal(fileio_write_atomic(conf, line, (size_t)n, 0644, NULL), 0);
	snprintf(sysx, sizeof(sysx),
		 "bootloader=uboot\nfw-env-config=%s\nboot-attempts=5\nboot-attempts-primary=12\n",
		 conf);
	struct system_config *cfg = cfg_with(sysx, "");
	struct boot_backend *b = open_ok(cfg);
	/* empty env: nothing is primary, nothing good */
	assert_null(primary_of(b));
	assert_false(state_of(b, cfg, "rootfs.0"));
	/* set_primary on an unset BOOT_ORDER creates it with a fallback */
	scenario(b, cfg, true);
	boot_backend_close(b);
	config_free(cfg);
	/* check the raw variables: hex counters, order */
	uint8_t *data = NULL;
	size_t len = 0;
	assert_int_equal(fileio_read_all(env, 1 << 20, (char **)&data, &len, NULL), 0);
	assert_int_equal(len, 0x4000);
	uint32_t got;
	memcpy(&got, data, 4);
	assert_int_equal(got, crc32(data + 4, len - 4));
	const char *want[] = { "bootcmd=run distro_bootcmd", "BOOT_ORDER=A", "BOOT_A_LEFT=5",
			       "BOOT_B_LEFT=0" };
	for (size_t i = 0; i < 4; i++) {
		bool found = false;
		for (size_t o = 4; o < len && data[o]; o += strlen((char *)data + o) + 1)
			found |= !strcmp((char *)data + o, want[i]);
		if (!found)
			fail_msg("%s missing", want[i]);
	}
	free(data);
	/* an invalid environment is never written over */
	memset(img, 0, sizeof(img));
	assert_int_equal(fileio_write_atomic(env, img, sizeof(img), 0644, NULL), 0);
	cfg = cfg_with(sysx, "");
	b = open_ok(cfg);
	struct abota_error err = { 0 };
	assert_int_equal(boot_backend_set_primary(b, slot_find(cfg, "rootfs.0"), &err), -ENODATA);
	assert_non_null(strstr(err.msg, "uboot: U-Boot environment has no valid copy"));
	boot_backend_close(b);
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_noop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsupported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grub, setup, teardown),
		cmocka_unit_test_setup_teardown(test_custom, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uboot, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
