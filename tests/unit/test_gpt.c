/* Unit tests of the GPT module: write a layout onto an image, read it back. */
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
#include <unistd.h>

#include "abota/gpt.h"

static char tmpdir[] = "/tmp/abota-gpt-XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void make_image(const char *path, uint64_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static void test_roundtrip(void **state)
{
	(void)state;
	char path[256];
	snprintf(path, sizeof(path), "%s/disk.img", tmpdir);
	make_image(path, 64 << 20);
	struct gpt_part parts[3] = {
		{ .name = "metadata1", .start = 0x84400, .size = 0x40000 },
		{ .name = "fip-a", .start = 0xC4400, .size = 0x400000 },
		{ .name = "userfs", .start = 0x4C4400, .size = 0, .attrs = GPT_ATTR_LEGACY_BIOS_BOOTABLE },
	};
	parts[0].type = GUID_FWU_METADATA_TYPE;
	parts[0].uuid = GUID_FWU_METADATA1_UUID;
	parts[1].type = GUID_ST_FIP_TYPE;
	parts[1].uuid = GUID_ST_FIP_A_UUID;
	assert_int_equal(guid_parse("0fc63daf-8483-4772-8e79-3d69d8477de4", &parts[2].type, NULL), 0);
	assert_int_equal(guid_parse("e91c4e10-16e6-4c0e-bd0e-77becf4a3582", &parts[2].uuid, NULL), 0);
	struct gpt_disk layout = { .size = 64 << 20, .sector_size = 512, .nparts = 3, .parts = parts };
	assert_int_equal(guid_parse("11111111-2222-3333-4444-555555555555", &layout.disk_guid, NULL),
			 0);
	struct abota_error err = { 0 };
	if (gpt_write(path, &layout, &err) < 0)
		fail_msg("gpt_write: %s", err.msg);

	struct gpt_disk *d = NULL;
	if (gpt_read(path, &d, &err) < 0)
		fail_msg("gpt_read: %s", err.msg);
	assert_int_equal(d->nparts, 3);
	assert_int_equal(d->size, 64 << 20);
	assert_true(guid_equal(&d->disk_guid, &layout.disk_guid));
	assert_string_equal(d->parts[0].name, "metadata1");
	assert_int_equal(d->parts[0].number, 1);
	assert_int_equal(d->parts[0].start, 0x84400);
	assert_int_equal(d->parts[0].size, 0x40000);
	assert_true(guid_equal(&d->parts[0].type, &GUID_FWU_METADATA_TYPE));
	assert_true(guid_equal(&d->parts[0].uuid, &GUID_FWU_METADATA1_UUID));
	assert_true(guid_equal(&d->parts[1].uuid, &GUID_ST_FIP_A_UUID));
	/* Last partition runs to the last usable LBA (size - 34 sectors). */
	assert_int_equal(d->parts[2].start + d->parts[2].size, (64 << 20) - 33 * 512);
	assert_int_equal(d->parts[2].attrs, GPT_ATTR_LEGACY_BIOS_BOOTABLE);

	const struct gpt_part *p;
	assert_int_equal(gpt_find_name(d, "fip-a", &p, NULL), 0);
	assert_int_equal(p->number, 2);
	assert_int_equal(gpt_find_name(d, "fip-b", &p, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "no partition named 'fip-b'"));
	assert_ptr_equal(gpt_find_uuid(d, &GUID_ST_FIP_A_UUID), &d->parts[1]);
	assert_null(gpt_find_uuid(d, &GUID_ST_FIP_B_UUID));
	gpt_free(d);

	/* Wrong disk size / overlapping partitions are refused. */
	layout.size = 32 << 20;
	assert_true(gpt_write(path, &layout, &err) < 0);
	assert_non_null(strstr(err.msg, "layout expects"));
	layout.size = 64 << 20;
	parts[1].start = 0x84400 + 0x20000;
	assert_true(gpt_write(path, &layout, &err) < 0);
	parts[1].start = 0xC4400 + 1;
	assert_true(gpt_write(path, &layout, &err) < 0);
	assert_non_null(strstr(err.msg, "not aligned"));
}

static void test_no_gpt(void **state)
{
	(void)state;
	char path[256];
	snprintf(path, sizeof(path), "%s/blank.img", tmpdir);
	make_image(path, 1 << 20);
	struct gpt_disk *d = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(gpt_read(path, &d, &err), -ENODATA);
	assert_null(d);
	assert_non_null(strstr(err.msg, "no GPT"));
	snprintf(path, sizeof(path), "%s/missing.img", tmpdir);
	assert_true(gpt_read(path, &d, &err) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_no_gpt),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
