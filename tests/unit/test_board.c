/* Unit tests of board profiles: the shipped profiles load, bad layouts are
 * refused with a message naming the problem. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abota/board.h"

static const char *const shipped[] = {
	"stm32mp135f-dk",	  "stm32mp157f-dk2", "stm32mp157f-ev1",	     "stm32mp215f-dk",
	"stm32mp257f-dk", "stm32mp257f-ev1-sdcard", "stm32mp257f-ev1-emmc",
};

static void test_shipped_profiles(void **state)
{
	(void)state;
	char **names;
	size_t n;
	assert_int_equal(board_list(&names, &n, NULL), 0);
	for (size_t i = 0; i < sizeof(shipped) / sizeof(shipped[0]); i++) {
		bool listed = false;
		for (size_t j = 0; j < n; j++)
			listed = listed || strcmp(names[j], shipped[i]) == 0;
		if (!listed)
			fail_msg("%s not listed", shipped[i]);
		struct board *b = NULL;
		struct abota_error err = { 0 };
		if (board_load(shipped[i], &b, &err) < 0)
			fail_msg("%s: %s", shipped[i], err.msg);
		assert_string_equal(b->name, shipped[i]);
		assert_int_equal(b->fwu.version, 2);
		assert_int_equal(b->tfa, BOARD_TFA_R3);
		assert_int_equal(b->fwu.num_banks, 2);
		const struct board_partition *m1 = board_partition(b, "metadata1");
		assert_non_null(m1);
		assert_true(guid_equal(&m1->uuid, &GUID_FWU_METADATA1_UUID));
		const struct board_partition *fa = board_image_partition(b, 0, 0);
		const struct board_partition *fb = board_image_partition(b, 0, 1);
		assert_string_equal(fa->name, "fip-a");
		assert_string_equal(fb->name, "fip-b");
		assert_true(guid_equal(&fb->uuid, &GUID_ST_FIP_B_UUID));
		assert_non_null(board_bank_partition(b, 1, BOARD_CONTENT_BOOTFS));
		assert_int_equal(board_check_disk_size(b, b->disk_size, NULL), 0);
		struct fwu_metadata md;
		assert_int_equal(fwu_md_init(&md, 2, 2, 1, NULL), 0);
		assert_int_equal(board_fill_metadata_guids(b, &md, NULL), 0);
		assert_true(guid_equal(&md.img[0].bank[0].img_guid, &GUID_ST_FIP_A_UUID));
		assert_true(guid_equal(&md.img[0].location_guid, &GUID_FWU_METADATA_TYPE));
		board_free(b);
	}
	board_list_free(names, n);

	struct board *b = NULL;
	assert_int_equal(board_load("stm32mp157f-dk2", &b, NULL), 0);
	const struct board_partition *p = board_partition(b, "rootfs-b");
	assert_int_equal(p->offset, 0x38984400);
	assert_int_equal(p->size, 736ull << 20);
	assert_int_equal(p->bank, 1);
	assert_string_equal(p->slot, "rootfs.1");
	assert_int_equal(board_partition(b, "bootfs-a")->attrs, GPT_ATTR_LEGACY_BIOS_BOOTABLE);
	assert_int_equal(board_partition(b, "userfs")->size, 0);
	assert_int_equal(b->fwu_info_address, 0x5C00A128);
	assert_false(b->has_nvmem_offset);
	struct abota_error err = { 0 };
	assert_int_equal(board_check_disk_size(b, 0x66984400, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "too small for board stm32mp157f-dk2"));
	assert_int_equal(board_check_disk_size(b, (5ull << 30) + 1, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not a multiple"));
	board_free(b);
	assert_int_equal(board_load("stm32mp257f-ev1-emmc", &b, NULL), 0);
	assert_int_equal(board_partition(b, "metadata2")->offset, 0x100000);
	assert_int_equal(board_partition(b, "vendorfs-a")->size, 52ull << 20);
	assert_int_equal(b->fwu_info_address, 0x460101C0);
	assert_int_equal(b->fwu_info_nvmem_offset, 0xC0);
	assert_null(board_partition(b, "fsbla1"));
	board_free(b);

	assert_int_equal(board_load("no-such-board", &b, &err), -ENOENT);
	assert_int_equal(board_load("../etc", &b, &err), -ENOENT);
	assert_int_equal(board_load("bad name!", &b, &err), -EINVAL);
}

static const char base[] =
	"[board]\nname=t\ndisk-size=64MiB\ntfa=r3\n"
	"[fwu]\nmetadata-version=2\nbanks=2\nimages=1\n"
	"image-types=19d5df83-11b0-457b-be2c-7559c13142a5\n"
	"[fwu-info]\nregister=TAMP_BKP10R\naddress=0x5C00A128\n";

static const char parts_ok[] =
	"[partition.metadata1]\noffset=0x84400\nsize=256KiB\n"
	"type=8a7a84a0-8387-40f6-ab41-a8b9a5a60d23\nuuid=5f91c128-e120-48d7-bb64-9fa9aed4c7e3\n"
	"[partition.metadata2]\noffset=0xC4400\nsize=256KiB\n"
	"type=8a7a84a0-8387-40f6-ab41-a8b9a5a60d23\nuuid=f469f981-5985-4206-8fb3-839956035a65\n"
	"[partition.fip-a]\noffset=0x104400\nsize=4MiB\ntype=19d5df83-11b0-457b-be2c-7559c13142a5\n"
	"uuid=4fd84c93-54ef-463f-a7ef-ae25ff887087\nbank=0\nfwu-image=0\n"
	"[partition.fip-b]\noffset=0x504400\nsize=4MiB\ntype=19d5df83-11b0-457b-be2c-7559c13142a5\n"
	"uuid=09c54952-d5bf-45af-acee-335303766fb3\nbank=1\nfwu-image=0\n";

static char *join(const char *a, const char *b, const char *c)
{
	size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
	char *s = malloc(n);
	snprintf(s, n, "%s%s%s", a, b, c);
	return s;
}

static void parse_fails(const char *board_part, const char *parts, const char *extra,
			const char *needle)
{
	char *head = join(board_part, "", "");
	char *text = join(head, parts, extra);
	struct board *b = NULL;
	struct abota_error err = { 0 };
	int ret = board_parse(text, strlen(text), "t.conf", &b, &err);
	if (ret >= 0)
		fail_msg("parse succeeded, expected '%s'", needle);
	assert_null(b);
	if (!strstr(err.msg, needle))
		fail_msg("error '%s' does not contain '%s'", err.msg, needle);
	free(head);
	free(text);
}

static void test_minimal(void **state)
{
	(void)state;
	char *text = join(base, parts_ok, "[partition.data]\noffset=0x904400\nsize=rest\n"
					  "type=0fc63daf-8483-4772-8e79-3d69d8477de4\n");
	struct board *b = NULL;
	struct abota_error err = { 0 };
	if (board_parse(text, strlen(text), "t.conf", &b, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(b->nparts, 5);
	assert_int_equal(board_min_disk_size(b), 0x904400 + 512 + 33 * 512);
	board_free(b);
	free(text);
}

static void test_bad_profiles(void **state)
{
	(void)state;
	const char *fsz = "type=0fc63daf-8483-4772-8e79-3d69d8477de4\n";
	char extra[512];

	snprintf(extra, sizeof(extra), "[partition.x]\noffset=0x704400\nsize=1MiB\n%s", fsz);
	parse_fails(base, parts_ok, extra, "partitions fip-b [0x504400, 0x904400) and x "
					   "[0x704400, 0x804400) overlap");
	snprintf(extra, sizeof(extra), "[partition.x]\noffset=0x904401\nsize=1MiB\n%s", fsz);
	parse_fails(base, parts_ok, extra, "partition x: offset 0x904401 / size 0x100000 not "
					   "aligned to 512-byte sectors");
	snprintf(extra, sizeof(extra), "[partition.x]\noffset=0x904400\nsize=1000\n%s", fsz);
	parse_fails(base, parts_ok, extra, "not aligned");
	snprintf(extra, sizeof(extra), "[partition.x]\noffset=0x200\nsize=512\n%s", fsz);
	parse_fails(base, parts_ok, extra, "inside the primary GPT");
	snprintf(extra, sizeof(extra),
		 "[partition.x]\noffset=0x904400\nsize=rest\n%s"
		 "[partition.y]\noffset=0x1904400\nsize=1MiB\n%s",
		 fsz, fsz);
	parse_fails(base, parts_ok, extra, "size=rest is only allowed for the last partition");
	snprintf(extra, sizeof(extra), "[partition.x]\noffset=0x904400\nsize=64MiB\n%s", fsz);
	parse_fails(base, parts_ok, extra, "t.conf: [board] disk-size: disk size 67108864 is too small");
	snprintf(extra, sizeof(extra), "[partition.x]\noffset=0x904400\nsize=1MiB\n%sfoo=1\n", fsz);
	parse_fails(base, parts_ok, extra, "foo");
	snprintf(extra, sizeof(extra), "[partition.x]\noffset=0x904400\nsize=1MiB\n%scontent=foo\n",
		 fsz);
	parse_fails(base, parts_ok, extra, "content: unknown 'foo'");
	snprintf(extra, sizeof(extra), "[partition.x]\noffset=0x904400\nsize=1MiB\n%sbank=2\n", fsz);
	parse_fails(base, parts_ok, extra, "bank: 2, board has 2 banks");
	snprintf(extra, sizeof(extra), "[partition.x]\noffset=1MB\nsize=0\n%s", fsz);
	parse_fails(base, parts_ok, extra, "invalid size");
	snprintf(extra, sizeof(extra), "[partition.x]\noffset=0x904400\nsize=0\n%s", fsz);
	parse_fails(base, parts_ok, extra, "size: must not be 0");
	snprintf(extra, sizeof(extra), "[partition.x]\noffset=0x904400\nsize=1MiB\ntype=nope\n");
	parse_fails(base, parts_ok, extra, "[partition.x] type: invalid GUID 'nope'");
	snprintf(extra, sizeof(extra), "[partition.x]\noffset=0x904400\nsize=1MiB\n%sslot=rootfs\n",
		 fsz);
	parse_fails(base, parts_ok, extra, "is not <class>.<index>");
	snprintf(extra, sizeof(extra), "[partition.fip-a]\noffset=0x904400\nsize=1MiB\n%s", fsz);
	parse_fails(base, parts_ok, extra, "duplicate group");
	parse_fails(base, parts_ok, "[extra]\nx=1\n", "extra");

	/* Metadata partitions. */
	const char *m1 = strstr(parts_ok, "[partition.metadata2]");
	parse_fails(base, m1, "", "t.conf: metadata partitions: no partition named 'metadata1'");
	char *swapped = join(strstr(parts_ok, "[partition.metadata2]"), "", "");
	*strstr(swapped, "[partition.fip-a]") = 0;
	char m1only[1024];
	snprintf(m1only, sizeof(m1only), "%.*s", (int)(m1 - parts_ok), parts_ok);
	char *order = join(swapped, m1only, strstr(parts_ok, "[partition.fip-a]"));
	parse_fails(base, order, "", "metadata1 must precede metadata2");
	free(swapped);
	free(order);

	/* FWU images. */
	char *nofipb = join(parts_ok, "", "");
	*strstr(nofipb, "[partition.fip-b]") = 0;
	parse_fails(base, nofipb, "", "no partition holds FWU image 0 of bank 1");
	free(nofipb);
	char *nouuid = join(parts_ok, "", "");
	char *u = strstr(nouuid, "uuid=09c54952");
	memmove(u, u + 42, strlen(u + 42) + 1);
	parse_fails(base, nouuid, "", "partition fip-b holds an FWU image and needs a fixed uuid");
	free(nouuid);
	char *dupuuid = join(parts_ok, "", "");
	memcpy(strstr(dupuuid, "uuid=09c54952") + 5, "4fd84c93-54ef-463f-a7ef-ae25ff887087", 36);
	parse_fails(base, dupuuid, "", "partitions fip-a and fip-b have the same uuid");
	free(dupuuid);
	char *badtype = join(base, "", "");
	memcpy(strstr(badtype, "image-types=") + 12, "29", 2);
	parse_fails(badtype, parts_ok, "", "partition fip-a: type 19d5df83-11b0-457b-be2c-"
					   "7559c13142a5 differs from FWU image 0's type");
	free(badtype);

	/* [board] / [fwu] keys. */
	char *v1r3 = join(base, "", "");
	memcpy(strstr(v1r3, "metadata-version=2") + 17, "1", 1);
	parse_fails(v1r3, parts_ok, "", "tfa=r3 does not read metadata v1");
	free(v1r3);
	char *badtfa = join(base, "", "");
	memcpy(strstr(badtfa, "tfa=r3") + 4, "r9", 2);
	parse_fails(badtfa, parts_ok, "", "unknown TF-A flavour 'r9'");
	free(badtfa);
	char *banks = join(base, "", "");
	memcpy(strstr(banks, "banks=2") + 6, "5", 1);
	parse_fails(banks, parts_ok, "", "banks: 5 out of range");
	free(banks);
	char *images = join(base, "", "");
	memcpy(strstr(images, "images=1") + 7, "2", 1);
	parse_fails(images, parts_ok, "", "image-types: 1 types for 2 images");
	free(images);
	parse_fails("[board]\nname=t\n", "", "", "missing key 'disk-size'");
	parse_fails("", "", "", "missing key 'name'");
}

static void test_sizes(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(board_parse_size("0x4400", &v), 0);
	assert_int_equal(v, 0x4400);
	assert_int_equal(board_parse_size("256KiB", &v), 0);
	assert_int_equal(v, 256 * 1024);
	assert_int_equal(board_parse_size("5G", &v), 0);
	assert_int_equal(v, 5ull << 30);
	assert_int_equal(board_parse_size("-1", &v), -EINVAL);
	assert_int_equal(board_parse_size("1 MiB", &v), -EINVAL);
	assert_int_equal(board_parse_size("1MB", &v), -EINVAL);
	assert_int_equal(board_parse_size("", &v), -EINVAL);
	assert_int_equal(board_parse_size("99999999999999999999", &v), -EINVAL);
	assert_int_equal(board_parse_size("17179869184GiB", &v), -ERANGE);
}

/* [fixup.*] groups: bank fix-up rules of the profile. */
static void test_fixups(void **state)
{
	(void)state;
	char *text = join(base, parts_ok,
			  "[fixup.cmdline]\nclass=bootfs\npath=/boot/extlinux/extlinux.conf\n"
			  "kind=cmdline\nrequired=true\n"
			  "[fixup.mounts]\nclass=rootfs\npath=/etc/fstab\nkind=mounts\n");
	struct board *b = NULL;
	struct abota_error err = { 0 };
	if (board_parse(text, strlen(text), "t.conf", &b, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(b->nfixups, 2);
	assert_string_equal(b->fixups[0].sclass, "bootfs");
	assert_string_equal(b->fixups[0].path, "/boot/extlinux/extlinux.conf");
	assert_true(b->fixups[0].cmdline && b->fixups[0].required);
	assert_false(b->fixups[1].cmdline || b->fixups[1].required);
	board_free(b);
	free(text);
	parse_fails(base, parts_ok, "[fixup.x]\nclass=bootfs\npath=/a\nkind=grub\n",
		    "kind: 'grub' is not cmdline or mounts");
	parse_fails(base, parts_ok, "[fixup.x]\nclass=bootfs\npath=etc/fstab\nkind=mounts\n",
		    "not an absolute path");
	parse_fails(base, parts_ok, "[fixup.x]\nclass=bootfs\npath=/etc/../shadow\nkind=mounts\n",
		    "not an absolute path");
	parse_fails(base, parts_ok, "[fixup.x]\npath=/a\nkind=mounts\n", "missing key 'class'");
	parse_fails(base, parts_ok, "[fixup.x]\nclass=a\npath=/a\nkind=mounts\nrequired=maybe\n",
		    "required");
	parse_fails(base, parts_ok, "[fixup.x]\nclass=a\npath=/a\nkind=mounts\nextra=1\n",
		    "extra");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shipped_profiles),
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_fixups),
		cmocka_unit_test(test_bad_profiles),
		cmocka_unit_test(test_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
