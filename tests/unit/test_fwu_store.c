/* Unit tests of the two-copy metadata store: precedence, repair, write order,
 * power cuts at every write point, GPT lookup and GUID checks. */
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

#include "abota/fwu_store.h"
#include "abota/powercut.h"

static char tmpdir[] = "/tmp/abota-fwustore-XXXXXX";
static char p1[300], p2[300], log_path[300];

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(p1, sizeof(p1), "%s/metadata1", tmpdir);
	snprintf(p2, sizeof(p2), "%s/metadata2", tmpdir);
	snprintf(log_path, sizeof(log_path), "%s/points.log", tmpdir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void st_md(struct fwu_metadata *md, uint32_t a, uint32_t p, uint8_t s0, uint8_t s1)
{
	assert_int_equal(fwu_md_init(md, 2, 2, 1, NULL), 0);
	md->active_index = a;
	md->previous_active_index = p;
	md->bank_state[0] = s0;
	md->bank_state[1] = s1;
	md->img[0].type_guid = GUID_ST_FIP_TYPE;
	md->img[0].location_guid = GUID_FWU_METADATA_TYPE;
	md->img[0].bank[0].img_guid = GUID_ST_FIP_A_UUID;
	md->img[0].bank[1].img_guid = GUID_ST_FIP_B_UUID;
	for (unsigned b = 0; b < 2; b++)
		md->img[0].bank[b].accepted = md->bank_state[b] == FWU_BANK_ACCEPTED;
}

static struct fwu_store *open_files(void)
{
	const char *paths[2] = { p1, p2 };
	struct fwu_store *st = NULL;
	struct abota_error err = { 0 };
	if (fwu_store_open_files(paths, 2, NULL, true, &st, &err) < 0)
		fail_msg("open: %s", err.msg);
	return st;
}

static void write_ok(struct fwu_store *st, const struct fwu_metadata *md)
{
	struct abota_error err = { 0 };
	if (fwu_store_write(st, md, &err) < 0)
		fail_msg("write: %s", err.msg);
}

static void read_file(const char *path, uint8_t *buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	*len = fread(buf, 1, 4096, f);
	fclose(f);
}

static void poke(const char *path, long off, uint8_t v)
{
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &v, 1, off), 1);
	close(fd);
}

static void test_write_read_repair(void **state)
{
	(void)state;
	unlink(p1);
	unlink(p2);
	struct fwu_store *st = open_files();
	struct fwu_store_state *s = malloc(sizeof(*s));
	struct abota_error err = { 0 };
	struct fwu_metadata md, got;
	st_md(&md, 0, 1, FWU_BANK_ACCEPTED, FWU_BANK_ACCEPTED);

	/* Nothing there yet: both copies missing, nothing to load. */
	assert_int_equal(fwu_store_read(st, s, &err), 0);
	assert_int_equal(s->winner, -1);
	assert_int_equal(fwu_store_load(st, true, &got, NULL, &err), -EBADMSG);

	write_ok(st, &md);
	uint8_t b1[4096], b2[4096];
	size_t l1, l2;
	read_file(p1, b1, &l1);
	read_file(p2, b2, &l2);
	assert_int_equal(l1, 120);
	assert_int_equal(l2, 120);
	assert_memory_equal(b1, b2, 120);
	assert_int_equal(b1[0], 0xb4); /* the reference factory dump */

	assert_int_equal(fwu_store_read(st, s, &err), 0);
	assert_int_equal(s->winner, 0);
	assert_false(s->needs_repair);

	/* SC-130: primary bad -> secondary wins, primary repaired. */
	poke(p1, 0x30, 0x00);
	assert_int_equal(fwu_store_read(st, s, &err), 0);
	assert_int_equal(s->winner, 1);
	assert_true(s->needs_repair);
	assert_false(s->copy[0].valid);
	assert_non_null(strstr(s->copy[0].error, "crc32 mismatch"));
	unsigned n = 9;
	assert_int_equal(fwu_store_load(st, true, &got, &n, &err), 0);
	assert_int_equal(n, 1);
	read_file(p1, b1, &l1);
	assert_memory_equal(b1, b2, 120);

	/* SC-131: both valid but different -> primary wins, secondary rewritten. */
	struct fwu_metadata other;
	st_md(&other, 1, 0, FWU_BANK_ACCEPTED, FWU_BANK_VALID);
	{
		const char *one[1] = { p2 };
		struct fwu_store *s2 = NULL;
		assert_int_equal(fwu_store_open_files(one, 1, NULL, false, &s2, NULL), 0);
		write_ok(s2, &other);
		fwu_store_free(s2);
	}
	assert_int_equal(fwu_store_read(st, s, &err), 0);
	assert_int_equal(s->winner, 0);
	assert_true(s->copy[1].valid);
	assert_true(s->needs_repair);
	assert_int_equal(fwu_store_load(st, true, &got, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(got.active_index, 0);
	read_file(p2, b2, &l2);
	assert_memory_equal(b1, b2, 120);

	/* SC-132: both bad -> nothing loaded, nothing written. */
	poke(p1, 0x30, 0x00);
	poke(p2, 0x31, 0x00);
	read_file(p1, b1, &l1);
	read_file(p2, b2, &l2);
	assert_int_equal(fwu_store_load(st, true, &got, &n, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "no valid metadata copy (metadata1: crc32 mismatch"));
	assert_int_equal(fwu_store_read(st, s, &err), 0);
	assert_int_equal(fwu_store_repair(st, s, &n, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "refusing to write"));
	uint8_t c1[4096], c2[4096];
	size_t k1, k2;
	read_file(p1, c1, &k1);
	read_file(p2, c2, &k2);
	assert_memory_equal(b1, c1, l1);
	assert_memory_equal(b2, c2, l2);

	/* SC-133: shape the build does not accept = invalid copy. */
	struct fwu_metadata bad;
	st_md(&bad, 0, 1, FWU_BANK_ACCEPTED, FWU_BANK_ACCEPTED);
	bad.active_index = 3;
	assert_int_equal(fwu_store_write(st, &bad, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "active_index is 3"));
	read_file(p1, c1, &k1);
	assert_memory_equal(b1, c1, l1); /* never a write */

	free(s);
	fwu_store_free(st);
}

/* Power cut at every write point of an update: at least one copy stays
 * valid and the state in effect is the old or the new one (SC-140). */
static void test_powercut_campaign(void **state)
{
	(void)state;
	struct fwu_metadata old_md, new_md, got;
	st_md(&old_md, 0, 1, FWU_BANK_ACCEPTED, FWU_BANK_ACCEPTED);
	st_md(&new_md, 1, 0, FWU_BANK_ACCEPTED, FWU_BANK_VALID);
	struct abota_error err = { 0 };

	/* Enumerate the write points. */
	unlink(log_path);
	setenv("ABOTA_POWERCUT_LOG", log_path, 1);
	struct fwu_store *st = open_files();
	powercut_plan(0, -1);
	write_ok(st, &old_md);
	powercut_plan(0, -1);
	write_ok(st, &new_md);
	unsigned long points = powercut_count();
	assert_int_equal(points, 4); /* write+sync metadata2, write+sync metadata1 */
	unsetenv("ABOTA_POWERCUT_LOG");
	char line[256];
	FILE *f = fopen(log_path, "r");
	assert_non_null(f);
	int i = 0;
	const char *want[] = { "1 write metadata2 0 120", "2 sync metadata2", "3 write metadata1 0 120",
			       "4 sync metadata1" };
	while (fgets(line, sizeof(line), f) && i < 8) {
		line[strcspn(line, "\n")] = 0;
		if (i >= 4)
			assert_string_equal(line, want[i - 4]);
		i++;
	}
	fclose(f);
	assert_int_equal(i, 8);

	/* Expected state in effect after a cut at point N.  A cut before the
	 * primary's sync (4) loses its write (powercut.h's page-cache model):
	 * the old primary stays in effect. */
	const uint32_t expect_active[5] = { 0, 0, 0, 1, 0 };
	static const long bytes[] = { 0, 1, 60, 119, -1 };
	for (unsigned long n = 1; n <= points; n++) {
		for (size_t bi = 0; bi < sizeof(bytes) / sizeof(bytes[0]); bi++) {
			powercut_plan(0, -1);
			write_ok(st, &old_md);
			powercut_plan(n, bytes[bi]);
			int ret = fwu_store_write(st, &new_md, &err);
			assert_int_equal(ret, -ECANCELED);
			assert_non_null(strstr(err.msg, "simulated power cut"));
			/* Nothing more can be written after the cut. */
			assert_int_equal(fwu_store_write(st, &new_md, &err), -ECANCELED);
			powercut_plan(0, -1);
			/* "Reboot": load without repair, then with. */
			if (fwu_store_load(st, false, &got, NULL, &err) < 0)
				fail_msg("cut at %lu/%ld: %s", n, bytes[bi], err.msg);
			uint32_t want_a = expect_active[n];
			/* A cut write of 0 bytes into the primary leaves it old. */
			if (n == 3 && bytes[bi] == 0)
				want_a = 0;
			if (got.active_index != want_a)
				fail_msg("cut at %lu/%ld: active %u, want %u", n, bytes[bi],
					 got.active_index, want_a);
			assert_int_equal(fwu_store_load(st, true, &got, NULL, &err), 0);
			struct fwu_store_state *s = malloc(sizeof(*s));
			assert_int_equal(fwu_store_read(st, s, &err), 0);
			assert_false(s->needs_repair);
			free(s);
		}
	}
	fwu_store_free(st);
}

static void make_disk(const char *path, bool swap_order, bool random_uuids)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 16 << 20), 0);
	close(fd);
	struct gpt_part parts[4] = {
		{ .name = "metadata1", .start = 0x84400, .size = 0x40000 },
		{ .name = "metadata2", .start = 0xC4400, .size = 0x40000 },
		{ .name = "fip-a", .start = 0x104400, .size = 0x400000 },
		{ .name = "fip-b", .start = 0x504400, .size = 0x400000 },
	};
	for (int i = 0; i < 2; i++)
		parts[i].type = GUID_FWU_METADATA_TYPE;
	parts[0].uuid = GUID_FWU_METADATA1_UUID;
	parts[1].uuid = GUID_FWU_METADATA2_UUID;
	if (random_uuids) {
		guid_parse("01234567-89ab-cdef-0123-456789abcdef", &parts[0].uuid, NULL);
		guid_parse("11234567-89ab-cdef-0123-456789abcdef", &parts[1].uuid, NULL);
	}
	parts[2].type = parts[3].type = GUID_ST_FIP_TYPE;
	parts[2].uuid = GUID_ST_FIP_A_UUID;
	parts[3].uuid = GUID_ST_FIP_B_UUID;
	if (swap_order) {
		struct gpt_part t = parts[0];
		parts[0] = parts[1];
		parts[1] = t;
	}
	struct gpt_disk layout = { .sector_size = 512, .nparts = 4, .parts = parts };
	struct abota_error err = { 0 };
	if (gpt_write(path, &layout, &err) < 0)
		fail_msg("%s", err.msg);
}

static void test_disk(void **state)
{
	(void)state;
	char disk[300];
	snprintf(disk, sizeof(disk), "%s/disk.img", tmpdir);
	make_disk(disk, false, false);
	struct fwu_store *st = NULL;
	struct abota_error err = { 0 };
	if (fwu_store_open_disk(disk, NULL, &st, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(fwu_store_copy_name(st, 0), "metadata1");
	assert_string_equal(fwu_store_copy_name(st, 1), "metadata2");
	struct fwu_metadata md, got;
	st_md(&md, 0, 1, FWU_BANK_ACCEPTED, FWU_BANK_ACCEPTED);
	write_ok(st, &md);
	assert_int_equal(fwu_store_load(st, false, &got, NULL, &err), 0);
	/* Bytes at the partition offsets. */
	int fd = open(disk, O_RDONLY);
	uint8_t b[4];
	assert_int_equal(pread(fd, b, 4, 0x84400), 4);
	assert_int_equal(b[0], 0xb4);
	assert_int_equal(pread(fd, b, 4, 0xC4400), 4);
	assert_int_equal(b[0], 0xb4);
	close(fd);

	/* SC-139 / SC-136: image GUIDs must name partitions, in EFI order. */
	struct fwu_metadata bad = md;
	guid_parse("aaaaaaaa-54ef-463f-a7ef-ae25ff887087", &bad.img[0].bank[1].img_guid, NULL);
	assert_int_equal(fwu_store_write(st, &bad, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "img_entry[0].img_bank_info[1].img_guid aaaaaaaa-54ef-463f-"
					"a7ef-ae25ff887087 matches no partition"));
	bad = md;
	/* RFC 4122 bytes of fip-b = the text read as big-endian bytes. */
	static const uint8_t be[16] = { 0x09, 0xc5, 0x49, 0x52, 0xd5, 0xbf, 0x45, 0xaf,
					0xac, 0xee, 0x33, 0x53, 0x03, 0x76, 0x6f, 0xb3 };
	struct guid rfc;
	memcpy(rfc.b, be, 16);
	bad.img[0].bank[1].img_guid = rfc;
	assert_int_equal(fwu_store_write(st, &bad, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "matches partition fip-b only in RFC 4122 byte order"));
	fwu_store_free(st);

	/* U-Boot takes the first two metadata entries: metadata2 listed first
	 * makes TF-A and U-Boot disagree. */
	make_disk(disk, true, false);
	assert_int_equal(fwu_store_open_disk(disk, NULL, &st, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "U-Boot uses"));
	/* Random unique GUIDs (STM32CubeProgrammer): found by name. */
	make_disk(disk, false, true);
	assert_int_equal(fwu_store_open_disk(disk, NULL, &st, &err), 0);
	fwu_store_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_read_repair),
		cmocka_unit_test(test_powercut_campaign),
		cmocka_unit_test(test_disk),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
