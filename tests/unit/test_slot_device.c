/* Unit tests of slot devices on the boot disk: GPT lookups by label and
 * PARTUUID, plain files, the boot disk derived from root=, duplicate labels on
 * two disks (SD card + eMMC) and the errors naming slot and disks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abota/config.h"
#include "abota/slot_device.h"

static char tmpdir[] = "/tmp/abota-slotdev-XXXXXX";
static char sd[300], emmc[300], plain[300];
#define ROOTFS_A_SD "e91c4e10-16e6-4c0e-bd0e-77becf4a3582"
#define ROOTFS_A_EMMC "491f6117-415d-4f53-88c9-6e0de54deac6"
#define ROOTFS_B_SD "087c3ebe-60ca-4517-a55d-c1d7237ead55"

static void make_disk(const char *path, const char *uuid_a, const char *uuid_b, bool with_b)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 16 << 20), 0);
	close(fd);
	struct gpt_part parts[2] = {
		{ .name = "rootfs-a", .start = 1 << 20, .size = 4 << 20 },
		{ .name = "rootfs-b", .start = 5 << 20, .size = 4 << 20 },
	};
	for (int i = 0; i < 2; i++)
		assert_int_equal(guid_parse("0fc63daf-8483-4772-8e79-3d69d8477de4", &parts[i].type,
					    NULL), 0);
	assert_int_equal(guid_parse(uuid_a, &parts[0].uuid, NULL), 0);
	assert_int_equal(guid_parse(uuid_b, &parts[1].uuid, NULL), 0);
	struct gpt_disk layout = { .size = 16 << 20, .sector_size = 512, .nparts = with_b ? 2 : 1,
				   .parts = parts };
	struct abota_error err = { 0 };
	if (gpt_write(path, &layout, &err) < 0)
		fail_msg("gpt_write: %s", err.msg);
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(sd, sizeof(sd), "%s/sd.img", tmpdir);
	snprintf(emmc, sizeof(emmc), "%s/emmc.img", tmpdir);
	snprintf(plain, sizeof(plain), "%s/plain.img", tmpdir);
	make_disk(sd, ROOTFS_A_SD, ROOTFS_B_SD, true);
	/* the eMMC has rootfs-a too, but no rootfs-b */
	make_disk(emmc, ROOTFS_A_EMMC, "11111111-2222-3333-4444-555555555555", false);
	int fd = open(plain, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, 12345) < 0)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A config with one slot (given as "key=value") and optional boot disk. */
static struct system_config *conf(const char *boot_disk, const char *slotkey)
{
	char text[1024];
	snprintf(text, sizeof(text),
		 "[system]\ncompatible=c\nbootloader=noop\n%s%s%s"
		 "[slot.rootfs.0]\n%s\nbootname=A\n",
		 boot_disk ? "boot-disk=" : "", boot_disk ? boot_disk : "", boot_disk ? "\n" : "",
		 slotkey);
	struct system_config *cfg = NULL;
	struct abota_error err = { 0 };
	if (config_parse(text, strlen(text), "system.conf", tmpdir, NULL, &cfg, &err) < 0)
		fail_msg("config: %s", err.msg);
	return cfg;
}

static void test_partition_on_boot_disk(void **state)
{
	(void)state;
	struct system_config *cfg = conf(sd, "partition=rootfs-b");
	struct slot_device d;
	struct abota_error err = { 0 };
	if (slot_device_open(cfg, &cfg->slots[0], O_RDONLY, &d, &err) < 0)
		fail_msg("%s", err.msg);
	assert_true(d.fd >= 0);
	assert_int_equal(d.offset, 5 << 20);
	assert_int_equal(d.size, 4 << 20);
	assert_string_equal(d.path, sd);
	assert_string_equal(d.partuuid, ROOTFS_B_SD);
	assert_string_equal(d.partlabel, "rootfs-b");
	assert_int_equal(d.partno, 2);
	assert_non_null(strstr(d.desc, "rootfs-b on "));
	assert_non_null(strstr(d.desc, "(p2)"));
	slot_device_close(&d);
	slot_device_close(&d); /* idempotent */
	config_free(cfg);
}

static void test_device_specs(void **state)
{
	(void)state;
	struct slot_device d;
	struct abota_error err = { 0 };
	struct system_config *cfg = conf(sd, "device=PARTUUID=" ROOTFS_A_SD);
	if (slot_device_open(cfg, &cfg->slots[0], O_RDWR, &d, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(d.offset, 1 << 20);
	assert_string_equal(d.partlabel, "rootfs-a");
	slot_device_close(&d);
	config_free(cfg);

	cfg = conf(sd, "device=PARTLABEL=rootfs-b");
	if (slot_device_open(cfg, &cfg->slots[0], O_RDONLY, &d, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(d.partuuid, ROOTFS_B_SD);
	slot_device_close(&d);
	config_free(cfg);

	/* a regular file: the whole file */
	cfg = conf(NULL, "device=plain.img");
	if (slot_device_open(cfg, &cfg->slots[0], O_RDONLY, &d, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(d.offset, 0);
	assert_int_equal(d.size, 12345);
	assert_string_equal(d.partuuid, "");
	assert_int_equal(d.partno, 0);
	slot_device_close(&d);
	config_free(cfg);
}

static void test_errors_untouched(void **state)
{
	(void)state;
	struct slot_device d;
	memset(&d, 0x5a, sizeof(d));
	struct abota_error err = { 0 };
	struct system_config *cfg = conf(sd, "partition=vendorfs-b");
	assert_int_equal(slot_device_open(cfg, &cfg->slots[0], O_RDONLY, &d, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "slot rootfs.0"));
	assert_non_null(strstr(err.msg, "vendorfs-b not found on the boot disk"));
	assert_int_equal(d.fd, 0x5a5a5a5a); /* out untouched */
	config_free(cfg);

	cfg = conf(NULL, "device=/nonexistent/disk");
	assert_int_equal(slot_device_open(cfg, &cfg->slots[0], O_RDONLY, &d, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/disk"));
	config_free(cfg);

	cfg = conf(NULL, "device=/dev/null");
	assert_int_equal(slot_device_open(cfg, &cfg->slots[0], O_RDONLY, &d, &err), -ENODEV);
	config_free(cfg);

	/* a GPT bigger than the image (truncated image) */
	char small[320], cmd[1200];
	snprintf(small, sizeof(small), "%s/trunc.img", tmpdir);
	snprintf(cmd, sizeof(cmd), "cp %s %s && truncate -s 7M %s", sd, small, small);
	assert_int_equal(system(cmd), 0);
	cfg = conf(small, "partition=rootfs-b");
	int ret = slot_device_open(cfg, &cfg->slots[0], O_RDONLY, &d, &err);
	assert_true(ret < 0);
	config_free(cfg);
}

/* SC-142: SD card and eMMC with the same PARTLABELs (STM32MP257F-EV1): a
 * label resolves on the boot disk only (the disk of root=); when the boot
 * disk cannot be told, the ambiguity is refused (-ENOTUNIQ), never guessed. */
static void test_duplicate_labels(void **state)
{
	(void)state;
	const char *disks[] = { sd, emmc, NULL };
	struct slot_device d;
	struct abota_error err = { 0 };
	struct system_config *cfg = conf(NULL, "partition=rootfs-a");

	/* booted from the eMMC: its copy is used */
	struct slot_device_probe probe = { .disks = disks,
					   .cmdline = "root=PARTUUID=" ROOTFS_A_EMMC " rauc.slot=A" };
	if (slot_device_open_probe(cfg, &probe, &cfg->slots[0], O_RDONLY, &d, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(d.path, emmc);
	assert_string_equal(d.partuuid, ROOTFS_A_EMMC);
	slot_device_close(&d);

	/* booted from the SD card (by label: ambiguous, by PARTUUID: fine) */
	probe.cmdline = "root=PARTUUID=" ROOTFS_A_SD;
	if (slot_device_open_probe(cfg, &probe, &cfg->slots[0], O_RDONLY, &d, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(d.path, sd);
	slot_device_close(&d);

	/* the booted root does not identify a disk: refuse, list both */
	probe.cmdline = "rauc.slot=A console=ttySTM0";
	assert_int_equal(slot_device_open_probe(cfg, &probe, &cfg->slots[0], O_RDONLY, &d, &err),
			 -ENOTUNIQ);
	assert_non_null(strstr(err.msg, sd));
	assert_non_null(strstr(err.msg, emmc));
	assert_non_null(strstr(err.msg, "boot-disk"));

	probe.cmdline = "root=PARTLABEL=rootfs-a";
	assert_int_equal(slot_device_open_probe(cfg, &probe, &cfg->slots[0], O_RDONLY, &d, &err),
			 -ENOTUNIQ);
	assert_non_null(strstr(err.msg, "ambiguous"));
	config_free(cfg);

	/* a label on one disk only is unambiguous even without root= */
	cfg = conf(NULL, "partition=rootfs-b");
	probe.cmdline = "quiet";
	if (slot_device_open_probe(cfg, &probe, &cfg->slots[0], O_RDONLY, &d, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(d.path, sd);
	slot_device_close(&d);
	/* ... but booted from the eMMC it is not on the boot disk */
	probe.cmdline = "root=PARTUUID=" ROOTFS_A_EMMC;
	assert_int_equal(slot_device_open_probe(cfg, &probe, &cfg->slots[0], O_RDONLY, &d, &err),
			 -ENOENT);
	assert_non_null(strstr(err.msg, "is not on the boot disk"));
	config_free(cfg);

	/* a configured boot disk wins over everything */
	cfg = conf(emmc, "partition=rootfs-a");
	probe.cmdline = "root=PARTUUID=" ROOTFS_A_SD;
	if (slot_device_open_probe(cfg, &probe, &cfg->slots[0], O_RDONLY, &d, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(d.path, emmc);
	slot_device_close(&d);
	config_free(cfg);
}

static void test_boot_disk(void **state)
{
	(void)state;
	const char *disks[] = { sd, emmc, NULL };
	struct abota_error err = { 0 };
	char *disk = NULL;
	struct system_config *cfg = conf(emmc, "partition=rootfs-a");
	assert_int_equal(slot_device_boot_disk(cfg, &disk, &err), 0);
	assert_string_equal(disk, emmc);
	free(disk);
	config_free(cfg);

	cfg = conf(NULL, "partition=rootfs-a");
	struct slot_device_probe probe = { .disks = disks, .cmdline = "root=PARTUUID=" ROOTFS_B_SD };
	assert_int_equal(slot_device_boot_disk_probe(cfg, &probe, &disk, &err), 0);
	assert_string_equal(disk, sd);
	free(disk);
	disk = NULL;
	probe.cmdline = "root=UUID=1234";
	assert_int_equal(slot_device_boot_disk_probe(cfg, &probe, &disk, &err), -ENOENT);
	assert_null(disk);
	assert_non_null(strstr(err.msg, "root=UUID=1234"));
	probe.cmdline = "root=PARTUUID=00000000-0000-0000-0000-000000000001";
	assert_int_equal(slot_device_boot_disk_probe(cfg, &probe, &disk, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "none of the disks"));

	/* root=/dev/...: the parent disk through sysfs */
	char cmd[1200];
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p %s/sys/devices/mmcblk1/mmcblk1p5 %s/sys/block && "
		 "echo 5 > %s/sys/devices/mmcblk1/mmcblk1p5/partition && "
		 "ln -s ../devices/mmcblk1/mmcblk1p5 %s/sys/block/mmcblk1p5 && "
		 "ln -s ../devices/mmcblk1 %s/sys/block/mmcblk1",
		 tmpdir, tmpdir, tmpdir, tmpdir, tmpdir);
	assert_int_equal(system(cmd), 0);
	char sysfs[400];
	snprintf(sysfs, sizeof(sysfs), "%s/sys/block", tmpdir);
	probe.sysfs_block = sysfs;
	probe.cmdline = "root=/dev/mmcblk1p5 rootwait";
	if (slot_device_boot_disk_probe(cfg, &probe, &disk, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(disk, "/dev/mmcblk1");
	free(disk);
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_partition_on_boot_disk),
		cmocka_unit_test(test_device_specs),
		cmocka_unit_test(test_errors_untouched),
		cmocka_unit_test(test_duplicate_labels),
		cmocka_unit_test(test_boot_disk),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
