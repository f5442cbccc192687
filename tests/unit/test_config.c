#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <stdio.h>
#include <unistd.h>

#include "abota/config.h"

#define BASE "[system]\ncompatible=c\nbootloader=noop\n"
#define SLOTS                                                                                \
	"[slot.rootfs.0]\ndevice=/dev/a\ntype=ext4\nbootname=A\n"                            \
	"[slot.rootfs.1]\ndevice=/dev/b\ntype=ext4\nbootname=B\n"

static struct system_config *ok(const char *text)
{
	struct system_config *cfg = NULL;
	struct abota_error err = { 0 };
	if (config_parse(text, strlen(text), "s.conf", "/etc/x", NULL, &cfg, &err) < 0)
		fail_msg("parse failed: %s", err.msg);
	return cfg;
}

/* Each bad input must fail and name file, line (when given) and the needle. */
static void bad(const char *text, const char *needle)
{
	struct system_config *cfg = NULL;
	struct abota_error err = { 0 };
	int ret = config_parse(text, strlen(text), "s.conf", "/etc/x", NULL, &cfg, &err);
	if (ret >= 0)
		fail_msg("accepted: %s", text);
	assert_null(cfg);
	if (!strstr(err.msg, needle) || !strstr(err.msg, "s.conf"))
		fail_msg("error '%s' lacks '%s'", err.msg, needle);
}

static void test_defaults(void **state)
{
	(void)state;
	struct system_config *cfg = ok(BASE SLOTS);
	assert_string_equal(cfg->compatible, "c");
	assert_int_equal(cfg->bootloader, CONFIG_BOOT_NOOP);
	assert_string_equal(cfg->mount_prefix, "/mnt/rauc");
	assert_null(cfg->statusfile);
	assert_int_equal(cfg->bundle_formats, CONFIG_FORMAT_ALL);
	assert_int_equal(cfg->max_bundle_download_size, 8 << 20);
	assert_int_equal(cfg->max_bundle_signature_size, 65536);
	assert_int_equal(cfg->boot_attempts, 3);
	assert_true(cfg->activate_installed);
	assert_string_equal(cfg->cmdline_file, "/proc/cmdline");
	assert_int_equal(cfg->nslots, 2);
	assert_string_equal(cfg->slots[1].name, "rootfs.1");
	assert_string_equal(cfg->slots[1].sclass, "rootfs");
	assert_int_equal(cfg->slots[1].index, 1);
	assert_true(cfg->slots[1].install_same);
	config_free(cfg);
}

static void test_full(void **state)
{
	(void)state;
	struct system_config *cfg = ok(
		"[system]\ncompatible=c\nbootloader=uboot\ndata-directory=data\n"
		"bundle-formats=-plain\nboot-attempts=5\nboot-attempts-primary=7\n"
		"activate-installed=false\nmin-bundle-version=2026.1.0-rc1\nvariant-name=v\n"
		"prevent-late-fallback=1\nfw-env-config=fw_env.config\ncmdline-file=/run/c\n"
		"boot-disk=/dev/mmcblk0\n"
		"[keyring]\npath=ca.pem\ncheck-purpose=codesign\nallow-partial-chain=true\n"
		"allowed-signer-cns=a;b\n"
		"[handlers]\npre-install=/usr/bin/pre\npost-install=post.sh\n"
		"[streaming]\nsend-headers=boot-id;serial\n"
		"[fwu]\nboard=stm32mp157f-dk2\nmetadata1=metadata1\nmetadata2=PARTUUID=abc\n"
		"fwu-info=fwu_info\nfwu-info-offset=0x10\nmetadata-version=2\nmin-trial-boots=3\n"
		SLOTS
		"[slot.boot.0]\ndevice=/dev/c\ntype=boot-mbr-switch\nregion-start=1M\n"
		"region-size=2M\nparent=rootfs.0\nforce-install-same=false\n"
		"[slot.fip.0]\npartition=fip-a\nparent=rootfs.0\nreadonly=true\n");
	assert_string_equal(cfg->statusfile, "/etc/x/data/central.raucs");
	assert_int_equal(cfg->bundle_formats, CONFIG_FORMAT_VERITY | CONFIG_FORMAT_CRYPT);
	assert_int_equal(cfg->boot_attempts, 5);
	assert_int_equal(cfg->boot_attempts_primary, 7);
	assert_false(cfg->activate_installed);
	assert_true(cfg->prevent_late_fallback);
	assert_string_equal(cfg->fw_env_config, "/etc/x/fw_env.config");
	assert_string_equal(cfg->keyring.keyring_path, "/etc/x/ca.pem");
	assert_string_equal(cfg->keyring.check_purpose, "codesign");
	assert_true(cfg->keyring.allow_partial_chain);
	assert_string_equal(cfg->keyring.allowed_signer_cns[1], "b");
	assert_string_equal(cfg->post_install_handler, "/etc/x/post.sh");
	assert_string_equal(cfg->streaming.send_headers[1], "serial");
	assert_string_equal(cfg->fwu.board, "stm32mp157f-dk2");
	assert_string_equal(cfg->fwu.metadata2, "PARTUUID=abc");
	assert_string_equal(cfg->fwu.fwu_info, "/etc/x/fwu_info");
	assert_int_equal(cfg->fwu.fwu_info_offset, 16);
	assert_int_equal(cfg->fwu.metadata_version, 2);
	struct slot *b = slot_find(cfg, "boot.0");
	assert_non_null(b);
	assert_true(b->has_region);
	assert_int_equal(b->region_start, 1 << 20);
	assert_int_equal(b->region_size, 2 << 20);
	assert_false(b->install_same);
	assert_ptr_equal(b->parent, slot_find(cfg, "rootfs.0"));
	struct slot *f = slot_find(cfg, "fip.0");
	assert_string_equal(f->partition, "fip-a");
	assert_null(f->device);
	assert_true(f->readonly);
	config_free(cfg);
}

static void test_overrides(void **state)
{
	(void)state;
	const char *ov[] = { "system:compatible=other", "system:data-directory=/d", NULL };
	struct system_config *cfg = NULL;
	const char *t = BASE SLOTS;
	assert_int_equal(config_parse(t, strlen(t), "s.conf", "/", ov, &cfg, NULL), 0);
	assert_string_equal(cfg->compatible, "other");
	assert_string_equal(cfg->statusfile, "/d/central.raucs");
	config_free(cfg);
	const char *bado[] = { "nocolon", NULL };
	assert_int_equal(config_parse(t, strlen(t), "s.conf", "/", bado, &cfg, NULL), -EINVAL);
	/* a bad value from -C is pointed at the override, not at a line of the
	 * file (the replaced key's line, or line 0 for a new key) */
	static const char *const cases[][2] = {
		{ "system:bootloader=nope", "s.conf (set by -C): key 'bootloader' in group [system]" },
		{ "system:activate-installed=maybe", "s.conf (set by -C): key 'activate-installed'" },
		{ "system:bogus=1", "s.conf (set by -C): invalid key 'bogus' in group [system]" },
		{ "nogroup:x=1", "s.conf (set by -C): invalid group [nogroup]" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *one[] = { cases[i][0], NULL };
		struct abota_error err = { 0 };
		assert_true(config_parse(t, strlen(t), "s.conf", "/", one, &cfg, &err) < 0);
		if (!strstr(err.msg, cases[i][1]))
			fail_msg("'%s' lacks '%s'", err.msg, cases[i][1]);
	}
}

static void test_bad_input(void **state)
{
	(void)state;
	bad(BASE "foo=1\n", "s.conf:4: invalid key 'foo' in group [system]");
	bad(BASE "[nosuch]\na=1\n", "s.conf:4: invalid group [nosuch]");
	bad("[system]\nbootloader=noop\n", "missing key 'compatible'");
	bad("[system]\ncompatible=x\n", "missing key 'bootloader'");
	bad("[system]\ncompatible=x\nbootloader=lilo\n", "s.conf:3: key 'bootloader'");
	bad(BASE "activate-installed=yes\n", "s.conf:4: key 'activate-installed'");
	bad(BASE "activate-installed=True\n", "not a boolean");
	bad(BASE "bundle-formats=plain -verity\n", "mixes absolute and relative");
	bad(BASE "bundle-formats=plain zip\n", "unknown bundle format 'zip'");
	bad(BASE "bundle-formats=-plain -verity -crypt\n", "no bundle format");
	bad(BASE "boot-attempts=0\n", "s.conf:4: key 'boot-attempts'");
	bad(BASE "statusfile=per-slot\n", "per-slot status files are not supported");
	bad(BASE "grubenv=/x\n", "invalid key 'grubenv'");
	bad(BASE "min-bundle-version=1.2\n", "s.conf:4: key 'min-bundle-version'");
	bad(BASE "variant-name=a\nvariant-dtb=true\n", "mutually exclusive");
	bad("[system]\ncompatible=c\nbootloader=custom\n", "bootloader-custom-backend");
	bad(BASE "[keyring]\ncheck-purpose=bogus\n", "s.conf:5: key 'check-purpose'");
	bad(BASE "[streaming]\nsend-headers=cookie\n", "unknown header 'cookie'");
	bad(BASE "[encryption]\nkey=k\n", "s.conf:4: group [encryption]: encrypted");
	bad(BASE "[log.x]\nfilename=f\n", "'f' is relative, and there is no data-directory");
	bad(BASE "[log.x]\nevents=install\n", "group [log.x]: filename= is required");
	bad(BASE "[log.]\nfilename=/l\n", "a logger needs a name");
	bad(BASE "[log.x]\nfilename=/l\nevents=all;mark\n", "'all' cannot be combined");
	bad(BASE "[log.x]\nfilename=/l\nevents=install;reboot\n", "unknown event type 'reboot'");
	bad(BASE "[log.x]\nfilename=/l\nformat=xml\n", "unknown format 'xml'");
	bad(BASE "[log.x]\nfilename=/l\nmax-size=10Q\n", "key 'max-size'");
	bad(BASE "[log.x]\nfilename=/l\nmax-size=0\n", "key 'max-size'");
	bad(BASE "[log.x]\nfilename=/l\nmax-files=0\n", "0 is not in 1..1000");
	bad(BASE "[log.x]\nfilename=/l\nrotate=1\n", "rotate");
	bad(BASE "data-directory=/d\n[log.x]\nfilename=l\n[log.y]\nfilename=/d/l\n",
	    "also the file of [log.x]");
	bad(BASE "[artifacts.x]\npath=/p\n", "not supported");
	bad(BASE "[casync]\nstorepath=/p\n", "not supported");
	bad(BASE "[fwu]\nmetadata-version=3\n", "s.conf:5: key 'metadata-version'");
	bad(BASE "[fwu]\nmetadata1=a\n", "s.conf:5: key 'metadata1'");
	/* slots */
	bad(BASE "[slot.rootfs]\ndevice=/d\n", "invalid slot name [slot.rootfs]");
	bad(BASE "[slot.a.b.0]\ndevice=/d\n", "invalid slot name");
	bad(BASE "[slot.rootfs.x]\ndevice=/d\n", "index must be a number");
	bad(BASE "[slot.rootfs.0]\ntype=ext4\n", "slot [slot.rootfs.0]: missing key 'device'");
	bad(BASE "[slot.rootfs.0]\ndevice=/d\ntype=jffs2\n",
	    "s.conf:6: key 'type' in group [slot.rootfs.0]: Unsupported slot type 'jffs2'");
	bad(BASE "[slot.rootfs.0]\ndevice=/d\nbootname=A\n[slot.rootfs.1]\ndevice=/e\nbootname=A\n",
	    "s.conf:9: key 'bootname' in group [slot.rootfs.1]: bootname 'A' is already used");
	bad(BASE "[slot.rootfs.0]\ndevice=/d\nbootname=A B\n", "contains whitespace");
	bad(BASE "[slot.rootfs.0]\ndevice=/d\nextra-mount-opts=ro,bind\n",
	    "s.conf:6: key 'extra-mount-opts' in group [slot.rootfs.0]: 'bind' is not allowed for a slot mount");
	bad(BASE "[slot.rootfs.0]\ndevice=/d\nbootname=A\n[slot.boot.0]\ndevice=/e\n"
		 "parent=rootfs.0\nbootname=X\n",
	    "must not have a bootname");
	bad(BASE "[slot.boot.0]\ndevice=/e\nparent=rootfs.9\n",
	    "s.conf:6: key 'parent' in group [slot.boot.0]: parent slot 'rootfs.9' not found");
	bad(BASE "[slot.a.0]\ndevice=/e\nparent=b.0\n[slot.b.0]\ndevice=/f\nparent=a.0\n",
	    "has a parent itself");
	bad(BASE "[slot.a.0]\ndevice=/e\nparent=a.0\n", "its own parent");
	bad(BASE "[slot.a.0]\ndevice=/e\nreadonly=maybe\n", "s.conf:6: key 'readonly'");
	bad(BASE "[slot.a.0]\ndevice=/e\ninstall-same=false\nignore-checksum=true\n",
	    "s.conf:7: key 'ignore-checksum'");
	bad(BASE "[slot.a.0]\ndevice=/e\ntype=boot-gpt-switch\nregion-start=1M\n",
	    "needs region-start and region-size");
	bad(BASE "[slot.a.0]\ndevice=/e\ntype=boot-gpt-switch\nregion-start=1X\nregion-size=1M\n",
	    "s.conf:7: key 'region-start'");
	bad(BASE "[slot.a.0]\ndevice=/e\nregion-start=1M\n", "invalid key 'region-start'");
	bad(BASE "[slot.a.0]\ndevice=/e\nfoo=bar\n", "s.conf:6: invalid key 'foo' in group [slot.a.0]");
}

/* SC-67: a system config boolean is exactly true, false, 1 or 0 (as GLib's
 * key file); yes, True, on, TRUE and " true" are refused naming the key. */
static void test_bool_values(void **state)
{
	(void)state;
	static const struct {
		const char *v;
		bool want;
	} good[] = { { "true", true }, { "1", true }, { "false", false }, { "0", false } };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char t[256];
		snprintf(t, sizeof(t), BASE "activate-installed=%s\n", good[i].v);
		struct system_config *cfg = ok(t);
		assert_int_equal(cfg->activate_installed, good[i].want);
		config_free(cfg);
	}
	const char *badv[] = { "yes", "True", "on", "TRUE", "no", "false ", "2", "" };
	for (size_t i = 0; i < sizeof(badv) / sizeof(badv[0]); i++) {
		char t[256];
		snprintf(t, sizeof(t), BASE "activate-installed=%s\n", badv[i]);
		bad(t, "s.conf:4: key 'activate-installed'");
	}
	bad(BASE "[keyring]\ncheck-crl=yes\n", "s.conf:5: key 'check-crl'");
}

/* Keys RAUC 1.8 accepts that once made abota refuse the whole file: an
 * empty [handlers] group, boot-attempts with a non-counting bootloader. */
static void test_rauc_accepts(void **state)
{
	(void)state;
	struct system_config *cfg = ok(BASE "boot-attempts=5\n" SLOTS "[handlers]\n");
	assert_int_equal(cfg->boot_attempts, 5);
	config_free(cfg);
}

static void test_loggers(void **state)
{
	(void)state;
	struct system_config *cfg = ok(BASE "data-directory=/var/lib/abota\n" SLOTS
					    "[log.install-log]\nfilename=install.log\nevents=install\nformat=short\n"
					    "[log.all-json]\nfilename=/var/log/all.json\nformat=json-pretty\n"
					    "max-size=1M\nmax-files=5\n"
					    "[log.marks]\nfilename=m.log\nevents=mark;boot\n");
	assert_int_equal(cfg->nloggers, 3);
	assert_string_equal(cfg->loggers[0].name, "install-log");
	assert_string_equal(cfg->loggers[0].filename, "/var/lib/abota/install.log");
	assert_int_equal(cfg->loggers[0].events, CONFIG_EVENT_INSTALL);
	assert_int_equal(cfg->loggers[0].format, CONFIG_LOG_SHORT);
	assert_int_equal(cfg->loggers[0].max_size, 0);
	assert_int_equal(cfg->loggers[0].max_files, 10);
	assert_string_equal(cfg->loggers[1].filename, "/var/log/all.json");
	assert_int_equal(cfg->loggers[1].events, CONFIG_EVENT_ALL);
	assert_int_equal(cfg->loggers[1].format, CONFIG_LOG_JSON_PRETTY);
	assert_int_equal(cfg->loggers[1].max_size, 1 << 20);
	assert_int_equal(cfg->loggers[1].max_files, 5);
	assert_int_equal(cfg->loggers[2].events, CONFIG_EVENT_MARK | CONFIG_EVENT_BOOT);
	assert_int_equal(cfg->loggers[2].format, CONFIG_LOG_READABLE);
	config_free(cfg);
}

/* Writes text to dir/system.conf (path receives the file's name). */
static void write_conf(const char *dir, const char *text, char path[256])
{
	snprintf(path, 256, "%s/system.conf", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void test_load_file(void **state)
{
	(void)state;
	char dir[] = "/tmp/abota-test-config-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256];
	write_conf(dir, BASE "data-directory=data\n" SLOTS, path);
	struct system_config *cfg = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(config_load(path, &cfg, &err), 0);
	char want[300];
	snprintf(want, sizeof(want), "%s/data/central.raucs", dir);
	assert_string_equal(cfg->statusfile, want);
	config_free(cfg);
	cfg = NULL;
	snprintf(want, sizeof(want), "%s/nope.conf", dir);
	assert_int_equal(config_load(want, &cfg, &err), -ENOENT);
	assert_null(cfg);
	unlink(path);
	rmdir(dir);
}

/* RAUC's "auto" mode: a named file is loaded (and must be valid); with no
 * name and no default system.conf there is no configuration, which is not an
 * error -- unless -C overrides ask for one. */
static void test_load_auto(void **state)
{
	(void)state;
	char dir[] = "/tmp/abota-test-config-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256];
	write_conf(dir, BASE "data-directory=data\nbogus=1\n" SLOTS, path);
	struct system_config *cfg = (struct system_config *)&cfg; /* untouched on failure */
	struct abota_error err = { 0 };
	assert_int_equal(config_load_auto(path, NULL, &cfg, &err), -EINVAL);
	assert_ptr_equal(cfg, (struct system_config *)&cfg);
	assert_non_null(strstr(err.msg, "bogus"));
	const char *fix[] = { "system:bundle-formats=verity", NULL };
	cfg = NULL;
	write_conf(dir, BASE "data-directory=data\n" SLOTS, path);
	assert_int_equal(config_load_auto(path, fix, &cfg, &err), 0);
	assert_non_null(cfg);
	assert_int_equal(cfg->bundle_formats, CONFIG_FORMAT_VERITY);
	config_free(cfg);
	bool any_default = false;
	char list[] = CONFIG_DEFAULT_PATHS;
	char *save = NULL;
	for (char *t = strtok_r(list, ":", &save); t; t = strtok_r(NULL, ":", &save))
		any_default |= access(t, F_OK) == 0;
	if (!any_default) {
		cfg = (struct system_config *)&cfg;
		assert_int_equal(config_load_auto(NULL, NULL, &cfg, &err), 0);
		assert_null(cfg);
		assert_int_equal(config_load_auto(NULL, fix, &cfg, &err), -ENOENT);
		assert_non_null(strstr(err.msg, "no system.conf found"));
	}
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),  cmocka_unit_test(test_full),
		cmocka_unit_test(test_overrides), cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_bool_values),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_load_auto),
		cmocka_unit_test(test_loggers),
		cmocka_unit_test(test_rauc_accepts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
