/* Unit tests of bank fix-ups: text rewrites, and ext4 file systems made with
 * mkfs.ext4 -d (bank-A content, as a bundle carries it) inside a GPT image,
 * fixed up for bank B and checked with debugfs and e2fsck -fn. */
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
#include <sys/wait.h>
#include <unistd.h>

#include "abota/bank_fixup.h"
#include "abota/boot_backend.h"
#include "abota/fileio.h"

static char dir[] = "/tmp/abota-fixup-XXXXXX";
static char disk[300];

#define ROOTFS_A "e91c4e10-16e6-4c0e-bd0e-77becf4a3582"
#define ROOTFS_B "087c3ebe-60ca-4517-a55d-c1d7237ead55"
#define BOOTFS_A "11111111-0000-4000-8000-00000000000a"
#define BOOTFS_B "11111111-0000-4000-8000-00000000000b"
#define MIB (1024 * 1024)

static const char *const names[4] = { "bootfs-a", "bootfs-b", "rootfs-a", "rootfs-b" };
static const char *const uuids[4] = { BOOTFS_A, BOOTFS_B, ROOTFS_A, ROOTFS_B };
static const uint64_t starts[4] = { 1 * MIB, 9 * MIB, 17 * MIB, 25 * MIB };

static const char extlinux_a[] =
	"menu title Select the boot mode\nDEFAULT OpenSTLinux\nLABEL OpenSTLinux\n"
	"\tKERNEL /uImage\n\tAPPEND root=PARTUUID=" ROOTFS_A " rootwait rw rauc.slot=A\n";
static const char fstab_a[] =
	"# bank A mounts\n/dev/root / auto defaults 1 1\n"
	"PARTLABEL=bootfs-a /boot ext4 defaults 0 0\n"
	"/dev/disk/by-partuuid/" BOOTFS_A " /mnt/b ext4 defaults 0 0\n"
	"PARTLABEL=userfs /usr/local ext4 defaults 0 0\n";

static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

/* ext4 with one file, written into partition i of the disk */
static void mkfs_into(int i, const char *file, const char *content)
{
	char path[512];
	sh("rm -rf %s/root && mkdir -p %s/root/$(dirname %s)", dir, dir, file);
	snprintf(path, sizeof(path), "%s/root%s", dir, file);
	assert_int_equal(fileio_write_atomic(path, content, strlen(content), 0644, NULL), 0);
	sh("mkfs.ext4 -q -F -E root_owner=0:0 -d %s/root %s/fs.img 4M >/dev/null 2>&1", dir, dir);
	sh("dd if=%s/fs.img of=%s bs=1M seek=%llu conv=notrunc status=none", dir, disk,
	   (unsigned long long)(starts[i] / MIB));
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(disk, sizeof(disk), "%s/disk.img", dir);
	int fd = open(disk, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, 40 * MIB) < 0)
		return -1;
	close(fd);
	struct gpt_part parts[4];
	memset(parts, 0, sizeof(parts));
	for (int i = 0; i < 4; i++) {
		snprintf(parts[i].name, sizeof(parts[i].name), "%s", names[i]);
		parts[i].start = starts[i];
		parts[i].size = 8 * MIB;
		guid_parse("0fc63daf-8483-4772-8e79-3d69d8477de4", &parts[i].type, NULL);
		guid_parse(uuids[i], &parts[i].uuid, NULL);
	}
	struct gpt_disk layout = { .size = 40 * MIB, .sector_size = 512, .nparts = 4,
				   .parts = parts };
	return gpt_write(disk, &layout, NULL);
}

static int teardown(void **state)
{
	(void)state;
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct system_config *conf(void)
{
	char text[1024];
	snprintf(text, sizeof(text),
		 "[system]\ncompatible=c\nbootloader=noop\nboot-disk=%s\n"
		 "[slot.bootfs.0]\npartition=bootfs-a\ntype=ext4\nparent=rootfs.0\n"
		 "[slot.bootfs.1]\npartition=bootfs-b\ntype=ext4\nparent=rootfs.1\n"
		 "[slot.rootfs.0]\npartition=rootfs-a\ntype=ext4\nbootname=A\n"
		 "[slot.rootfs.1]\npartition=rootfs-b\ntype=ext4\nbootname=B\n",
		 disk);
	struct system_config *cfg = NULL;
	struct abota_error err = { 0 };
	if (config_parse(text, strlen(text), "system.conf", dir, NULL, &cfg, &err) < 0)
		fail_msg("%s", err.msg);
	return cfg;
}

/* Reads a file of partition i with debugfs; checks the fs with e2fsck. */
static char *fs_cat(int i, const char *file)
{
	char out[400];
	snprintf(out, sizeof(out), "%s/cat.out", dir);
	sh("dd if=%s of=%s/part.img bs=1M skip=%llu count=8 status=none", disk, dir,
	   (unsigned long long)(starts[i] / MIB));
	sh("e2fsck -fn %s/part.img >/dev/null 2>&1", dir);
	sh("debugfs -R 'cat %s' %s/part.img > %s 2>/dev/null", file, dir, out);
	char *data = NULL;
	size_t len;
	assert_int_equal(fileio_read_all(out, 1 << 20, &data, &len, NULL), 0);
	return data;
}

static void test_rewrite_text(void **state)
{
	(void)state;
	struct bank_fixup_target t;
	memset(&t, 0, sizeof(t));
	strcpy(t.bootname, "B");
	strcpy(t.rootfs_partuuid, ROOTFS_B);
	strcpy(t.rootfs_partlabel, "rootfs-b");
	t.nmap = 1;
	strcpy(t.map[0].from_label, "bootfs-a");
	strcpy(t.map[0].to_label, "bootfs-b");
	strcpy(t.map[0].from_uuid, BOOTFS_A);
	strcpy(t.map[0].to_uuid, BOOTFS_B);
	char *out = NULL;
	size_t len;
	unsigned n;
	const char *in = "APPEND root=PARTLABEL=rootfs-a  rauc.slot=A\tquiet rauc.slot=B\n";
	assert_int_equal(bank_fixup_rewrite(BANK_FIXUP_CMDLINE, in, strlen(in), &t, &out, &len, &n,
					    NULL), 0);
	assert_string_equal(out, "APPEND root=PARTLABEL=rootfs-b  rauc.slot=B\tquiet rauc.slot=B\n");
	assert_int_equal(n, 2);
	free(out);
	/* fstab: only the device field, comments untouched, UUID case-insensitive */
	const char *fs = "# PARTLABEL=bootfs-a here\nPARTLABEL=bootfs-a /boot ext4 PARTLABEL=bootfs-a\n"
			 "  PARTUUID=11111111-0000-4000-8000-00000000000A /x auto\n"
			 "PARTLABEL=bootfs-ab /y auto\n";
	assert_int_equal(bank_fixup_rewrite(BANK_FIXUP_MOUNTS, fs, strlen(fs), &t, &out, &len, &n,
					    NULL), 0);
	assert_string_equal(out, "# PARTLABEL=bootfs-a here\nPARTLABEL=bootfs-b /boot ext4 "
				 "PARTLABEL=bootfs-a\n  PARTUUID=" BOOTFS_B " /x auto\n"
				 "PARTLABEL=bootfs-ab /y auto\n");
	assert_int_equal(n, 2);
	free(out);
	/* a rootfs without PARTUUID cannot be named */
	t.rootfs_partuuid[0] = '\0';
	struct abota_error err = { 0 };
	out = (char *)1;
	assert_int_equal(bank_fixup_rewrite(BANK_FIXUP_CMDLINE, extlinux_a, strlen(extlinux_a), &t,
					    &out, &len, &n, &err), -EINVAL);
	assert_ptr_equal(out, (char *)1);
	assert_int_equal(bank_fixup_rewrite(BANK_FIXUP_CMDLINE, "a\0b", 3, &t, &out, &len, &n, &err),
			 -EINVAL);
}

static void test_group_on_disk(void **state)
{
	(void)state;
	struct system_config *cfg = conf();
	mkfs_into(1, "/extlinux/extlinux.conf", extlinux_a); /* bank-A content in bootfs-b */
	mkfs_into(3, "/etc/fstab", fstab_a);
	const struct slot *written[2] = { slot_find(cfg, "bootfs.1"), slot_find(cfg, "rootfs.1") };
	struct abota_error err = { 0 };
	if (bank_fixup_group(cfg, NULL, NULL, slot_find(cfg, "rootfs.1"), written, 2, &err) < 0)
		fail_msg("%s", err.msg);
	char *conf_b = fs_cat(1, "/extlinux/extlinux.conf");
	assert_non_null(strstr(conf_b, "root=PARTUUID=" ROOTFS_B " rootwait rw rauc.slot=B\n"));
	assert_null(strstr(conf_b, ROOTFS_A));
	assert_non_null(strstr(conf_b, "KERNEL /uImage"));
	free(conf_b);
	char *fstab = fs_cat(3, "/etc/fstab");
	assert_non_null(strstr(fstab, "PARTLABEL=bootfs-b /boot"));
	assert_non_null(strstr(fstab, "/dev/disk/by-partuuid/" BOOTFS_B " /mnt/b"));
	assert_non_null(strstr(fstab, "PARTLABEL=userfs /usr/local")); /* shared: kept */
	assert_non_null(strstr(fstab, "# bank A mounts"));
	free(fstab);

	/* idempotent: a second run changes no byte */
	sh("sha256sum < %s > %s/sum1", disk, dir);
	if (bank_fixup_group(cfg, NULL, NULL, slot_find(cfg, "rootfs.1"), written, 2, &err) < 0)
		fail_msg("%s", err.msg);
	sh("sha256sum < %s | cmp -s - %s/sum1", disk, dir);

	/* and back to A (a bank-B bundle written into bank A) */
	mkfs_into(0, "/extlinux/extlinux.conf",
		  "APPEND root=PARTUUID=" ROOTFS_B " rauc.slot=B\n");
	const struct slot *wa[1] = { slot_find(cfg, "bootfs.0") };
	if (bank_fixup_group(cfg, NULL, NULL, slot_find(cfg, "rootfs.0"), wa, 1, &err) < 0)
		fail_msg("%s", err.msg);
	char *conf_a = fs_cat(0, "/extlinux/extlinux.conf");
	assert_string_equal(conf_a, "APPEND root=PARTUUID=" ROOTFS_A " rauc.slot=A\n");
	free(conf_a);
	config_free(cfg);
}

static void test_missing_files(void **state)
{
	(void)state;
	struct system_config *cfg = conf();
	struct abota_error err = { 0 };
	/* a bootfs without extlinux.conf: error naming slot and file */
	mkfs_into(1, "/other.txt", "x\n");
	const struct slot *w1[1] = { slot_find(cfg, "bootfs.1") };
	assert_int_equal(bank_fixup_group(cfg, NULL, NULL, slot_find(cfg, "rootfs.1"), w1, 1, &err),
			 -ENOENT);
	assert_non_null(strstr(err.msg, "slot bootfs.1"));
	assert_non_null(strstr(err.msg, "/extlinux/extlinux.conf"));
	/* a rootfs without fstab is fine */
	mkfs_into(3, "/etc/os-release", "ID=x\n");
	const struct slot *w2[1] = { slot_find(cfg, "rootfs.1") };
	assert_int_equal(bank_fixup_group(cfg, NULL, NULL, slot_find(cfg, "rootfs.1"), w2, 1, &err),
			 0);
	/* not an ext4 file system at all */
	sh("dd if=/dev/zero of=%s bs=1M seek=9 count=8 conv=notrunc status=none", disk);
	assert_true(bank_fixup_group(cfg, NULL, NULL, slot_find(cfg, "rootfs.1"), w1, 1, &err) < 0);
	assert_non_null(strstr(err.msg, "bootfs-b"));
	/* slots of another group are refused */
	const struct slot *w3[1] = { slot_find(cfg, "bootfs.0") };
	assert_int_equal(bank_fixup_group(cfg, NULL, NULL, slot_find(cfg, "rootfs.1"), w3, 1, &err),
			 -EINVAL);
	config_free(cfg);
}

static void test_oversized(void **state)
{
	(void)state;
	struct system_config *cfg = conf();
	struct abota_error err = { 0 };
	char *big = malloc(BANK_FIXUP_MAX_FILE + 2);
	assert_non_null(big);
	memset(big, 'x', BANK_FIXUP_MAX_FILE + 1);
	big[BANK_FIXUP_MAX_FILE + 1] = '\0';
	mkfs_into(1, "/extlinux/extlinux.conf", big);
	free(big);
	const struct slot *w1[1] = { slot_find(cfg, "bootfs.1") };
	assert_int_equal(bank_fixup_group(cfg, NULL, NULL, slot_find(cfg, "rootfs.1"), w1, 1, &err),
			 -EFBIG);
	config_free(cfg);
}

/* End to end with the simulator (abota-sim next to this build): a bank-B
 * bootfs carrying bank-A's extlinux.conf fails to boot; fixed up, it boots. */
static void test_simulator_boot(void **state)
{
	(void)state;
	char self[512], sim[700], sd[400];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	assert_true(n > 0);
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	snprintf(sim, sizeof(sim), "%s/../../src/abota-sim/abota-sim", self);
	if (access(sim, X_OK) != 0)
		skip();
	snprintf(sd, sizeof(sd), "%s/sim", dir);
	sh("%s create stm32mp157f-dk2 %s --full --seed=7 >/dev/null", sim, sd);
	sh("%s fs %s bootfs-a get /extlinux/extlinux.conf > %s/a.conf", sim, sd, dir);
	sh("%s fs %s bootfs-b put /extlinux/extlinux.conf %s/a.conf", sim, sd, dir);
	char path[500];
	snprintf(path, sizeof(path), "%s/system.conf", sd);
	struct system_config *cfg = NULL;
	struct boot_backend *b = NULL;
	struct abota_error err = { 0 };
	if (config_load(path, &cfg, &err) < 0 || boot_backend_open(cfg, &b, &err) < 0)
		fail_msg("%s", err.msg);
	const struct slot *rb = slot_find(cfg, "rootfs.1");
	if (boot_backend_set_primary(b, rb, &err) < 0)
		fail_msg("%s", err.msg);
	/* not fixed up: the kernel gets bank A's root and rauc.slot */
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "%s boot %s --quiet >/dev/null", sim, sd);
	assert_int_equal(WEXITSTATUS(system(cmd)), 3);
	const struct slot *w[1] = { slot_find(cfg, "bootfs.1") };
	if (bank_fixup_group(cfg, NULL, NULL, rb, w, 1, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(WEXITSTATUS(system(cmd)), 0);
	sh("grep -q 'rauc.slot=B' %s/cmdline", sd);
	sh("grep -q 'root=PARTUUID=" ROOTFS_B "' %s/cmdline", sd);
	boot_backend_close(b);
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rewrite_text),
		cmocka_unit_test(test_group_on_disk),
		cmocka_unit_test(test_missing_files),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_simulator_boot),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
