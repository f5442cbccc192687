/* test_mount_check.c - which mounts make a slot's range "mounted": loop
 * devices over the slot file (with their windows), partitions of such a
 * loop device, and nothing that only lies beside the range.  The kernel's
 * view is a fake sysfs tree and mountinfo file. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "abota/mount_check.h"

static char dir[64], sysfs[128], mountinfo[128], disk[128], real_disk[PATH_MAX];

static void put(const char *rel, const char *text)
{
	char p[512], cmd[600];
	snprintf(p, sizeof(p), "%s/%s", sysfs, rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", p);
	assert_int_equal(system(cmd), 0);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", text);
	fclose(f);
}

static void mounts(const char *lines)
{
	FILE *f = fopen(mountinfo, "w");
	assert_non_null(f);
	fputs("22 27 0:21 / /proc rw,relatime - proc proc rw\n", f);
	fputs(lines, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/abota-mc-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(sysfs, sizeof(sysfs), "%s/class/block", dir);
	snprintf(mountinfo, sizeof(mountinfo), "%s/mountinfo", dir);
	snprintf(disk, sizeof(disk), "%s/disk.img", dir);
	FILE *f = fopen(disk, "w");
	assert_non_null(f);
	fclose(f);
	assert_non_null(realpath(disk, real_disk));
	/* loop0: the whole disk image, partitioned (losetup -P): p1 sectors
	 * 2048..4095 (1 MiB at 1 MiB), p2 sectors 4096..8191 (2 MiB at 2 MiB) */
	put("loop0/dev", "7:0");
	put("loop0/loop/backing_file", real_disk);
	put("loop0/loop/offset", "0");
	put("loop0/loop/sizelimit", "0");
	put("loop0/loop0p1/dev", "259:1");
	put("loop0/loop0p1/partition", "1");
	put("loop0/loop0p1/start", "2048");
	put("loop0/loop0p1/size", "2048");
	put("loop0/loop0p2/dev", "259:2");
	put("loop0/loop0p2/partition", "2");
	put("loop0/loop0p2/start", "4096");
	put("loop0/loop0p2/size", "4096");
	/* loop1: a window of 1 MiB at 8 MiB of the same file */
	put("loop1/dev", "7:1");
	put("loop1/loop/backing_file", real_disk);
	put("loop1/loop/offset", "8388608");
	put("loop1/loop/sizelimit", "1048576");
	/* loop2: another file */
	put("loop2/dev", "7:2");
	put("loop2/loop/backing_file", "/elsewhere/other.img");
	put("loop2/loop/offset", "0");
	put("loop2/loop/sizelimit", "0");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static int check(uint64_t off, uint64_t len, char **where)
{
	struct mount_check_probe p = { .sysfs_block = sysfs, .mountinfo = mountinfo };
	struct abota_error err = { 0 };
	return mount_check_range(disk, off, len, &p, where, &err);
}

#define MIB (1024u * 1024u)

static void test_partition_of_loop_over_the_disk(void **state)
{
	(void)state;
	char *where = NULL;
	/* p2 mounted: the slot of p2's range is mounted, p1's range is not */
	mounts("40 27 259:2 / /mnt/rootfs-b rw - ext4 /dev/loop0p2 rw\n");
	assert_int_equal(check(2 * MIB, 2 * MIB, &where), 1);
	assert_string_equal(where, "/mnt/rootfs-b (block device 259:2)");
	free(where);
	where = NULL;
	assert_int_equal(check(MIB, MIB, &where), 0);
	assert_null(where);
	/* a slot overlapping p2 by one sector counts */
	assert_int_equal(check(4 * MIB - 512, MIB, NULL), 1);
	assert_int_equal(check(4 * MIB, MIB, NULL), 0);
}

static void test_loop_windows(void **state)
{
	(void)state;
	/* loop1 (1 MiB at 8 MiB) mounted: only ranges overlapping the window */
	mounts("41 27 7:1 / /mnt/win rw - ext4 /dev/loop1 rw\n");
	assert_int_equal(check(8 * MIB, MIB, NULL), 1);
	assert_int_equal(check(7 * MIB, MIB + 1, NULL), 1);
	assert_int_equal(check(7 * MIB, MIB, NULL), 0);
	assert_int_equal(check(9 * MIB, MIB, NULL), 0);
	/* the whole-disk loop mounted (a file system on all of it) */
	mounts("42 27 7:0 / /mnt/all rw - ext4 /dev/loop0 rw\n");
	assert_int_equal(check(16 * MIB, MIB, NULL), 1);
	/* loops over other files and unrelated mounts do not count */
	mounts("43 27 7:2 / /mnt/other rw - ext4 /dev/loop2 rw\n"
	       "44 27 254:1 / / rw - ext4 /dev/vda rw\n");
	assert_int_equal(check(0, 64 * MIB, NULL), 0);
}

static void test_errors(void **state)
{
	(void)state;
	struct mount_check_probe p = { .sysfs_block = sysfs, .mountinfo = "/nonexistent/mi" };
	struct abota_error err = { 0 };
	mounts("");
	assert_int_equal(mount_check_range(disk, 0, MIB, &p, NULL, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/mi"));
	assert_int_equal(mount_check_range("/nonexistent/disk", 0, MIB, NULL, NULL, &err),
			 -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/disk"));
	/* the real system: this test's file is mounted nowhere */
	assert_int_equal(mount_check_range(disk, 0, MIB, NULL, NULL, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_partition_of_loop_over_the_disk),
		cmocka_unit_test(test_loop_windows),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
