/* test_slot_writer.c - the verified slot writer: what lands in the slot,
 * zero runs, segment checkpoints, resume offsets, a medium that stores a
 * wrong bit (in data or in a zeroed run), the end of the slot, and which image types go into which slot. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "abota/digest.h"
#include "abota/slot_writer.h"

#include "pagecache.h"

#define MIB (1024u * 1024u)
#define FILL 0xAA

static char dir[64];
static char path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/abota-writer-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/slot", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return rmdir(dir);
}

/* A slot file of size bytes, all FILL, open O_RDWR in *dev at offset base. */
static void make_slot(struct slot_device *dev, uint64_t size, uint64_t base)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	uint8_t *b = malloc(MIB);
	assert_non_null(b);
	memset(b, FILL, MIB);
	for (uint64_t off = 0; off < base + size; off += MIB) {
		size_t n = base + size - off < MIB ? (size_t)(base + size - off) : MIB;
		assert_int_equal(pwrite(fd, b, n, (off_t)off), (ssize_t)n);
	}
	free(b);
	*dev = (struct slot_device){ .fd = fd, .offset = base, .size = size };
}

/* Image byte i: data with whole 4 KiB-aligned runs of zeros (every third
 * MiB), which the writer zeroes instead of writing. */
static uint8_t image_byte(uint64_t i)
{
	if ((i / MIB) % 3 == 1)
		return 0;
	return (uint8_t)(i * 2654435761u >> 13);
}

static void fill_image(uint8_t *b, uint64_t off, size_t n)
{
	for (size_t k = 0; k < n; k++)
		b[k] = image_byte(off + k);
}

struct record {
	uint64_t checkpoints[16];
	bool with_state[16];
	size_t n_checkpoints;
	uint64_t last_progress;
	unsigned progress_calls;
};

static int on_checkpoint(void *ctx, uint64_t verified, const struct digest_sha256_state *st,
			 struct abota_error *err)
{
	(void)err;
	struct record *r = ctx;
	if (r->n_checkpoints < 16) {
		r->checkpoints[r->n_checkpoints] = verified;
		r->with_state[r->n_checkpoints] = st != NULL;
		r->n_checkpoints++;
	}
	return 0;
}

static void on_progress(void *ctx, uint64_t off)
{
	struct record *r = ctx;
	assert_true(off > r->last_progress);
	r->last_progress = off;
	r->progress_calls++;
}

/* Writes image bytes [from, to) in chunks of chunk bytes through w,
 * updating hash (if any) first, as the callers do. */
static int feed(struct slot_writer *w, struct digest_sha256_ctx *hash, uint64_t from, uint64_t to,
		size_t chunk, struct abota_error *err)
{
	uint8_t *b = malloc(chunk);
	assert_non_null(b);
	int ret = 0;
	for (uint64_t off = from; off < to && ret == 0; off += chunk) {
		size_t n = to - off < chunk ? (size_t)(to - off) : chunk;
		fill_image(b, off, n);
		if (hash)
			digest_sha256_update(hash, b, n);
		ret = slot_writer_write(w, b, n, err);
	}
	free(b);
	return ret;
}

/* Checks the slot file: image bytes in [from, to) at base, FILL elsewhere. */
static void check_slot(int fd, uint64_t base, uint64_t size, uint64_t from, uint64_t to)
{
	uint8_t *b = malloc(MIB);
	assert_non_null(b);
	for (uint64_t off = 0; off < size; off += MIB) {
		size_t n = size - off < MIB ? (size_t)(size - off) : MIB;
		assert_int_equal(pread(fd, b, n, (off_t)(base + off)), (ssize_t)n);
		for (size_t k = 0; k < n; k++) {
			uint64_t i = off + k;
			uint8_t want = i >= from && i < to ? image_byte(i) : FILL;
			if (b[k] != want)
				fail_msg("slot byte %llu is 0x%02x, want 0x%02x",
					 (unsigned long long)i, b[k], want);
		}
	}
	if (base) { /* what lies before the slot stays as it was */
		uint8_t c;
		assert_int_equal(pread(fd, &c, 1, (off_t)(base - 1)), 1);
		assert_int_equal(c, FILL);
	}
	free(b);
}

/* 70 MiB into a 72 MiB slot that starts 1 MiB into its file: three
 * segments (32 + 32 + 6 MiB), zero runs zeroed, the tail untouched,
 * checkpoints in order with the hash state up to the image's end. */
static void test_write_whole_image(void **state)
{
	(void)state;
	struct slot_device dev;
	make_slot(&dev, 72 * MIB, MIB);
	struct record r = { 0 };
	struct digest_sha256_ctx *hash = NULL;
	assert_int_equal(digest_sha256_new(&hash), 0);
	struct slot_writer_opts o = { .label = "slot", .hash = hash, .checkpoint = on_checkpoint,
				      .checkpoint_ctx = &r, .progress = on_progress,
				      .progress_ctx = &r };
	struct slot_writer *w = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(slot_writer_start(&dev, &o, &w, &err), 0);
	/* 128 KiB chunks: squashfs blocks of a RAUC bundle */
	assert_int_equal(feed(w, hash, 0, 70 * MIB, 128 * 1024, &err), 0);
	assert_int_equal(slot_writer_offset(w), 70 * MIB);
	assert_int_equal(slot_writer_finish(w, true, &err), 0);
	/* Read back, the image left the page cache (but a large folio
	 * straddling either end of it, which may hold bytes around it). */
	if (pagecache_can_drop_in(dir))
		assert_int_equal(pagecache_resident(dev.fd, 4 * MIB, 64 * MIB), 0);
	check_slot(dev.fd, dev.offset, dev.size, 0, 70 * MIB);
	assert_int_equal(r.last_progress, 70 * MIB);
	assert_int_equal(r.progress_calls, 560);
	/* One checkpoint per batch of proven segments, increasing, each at a
	 * segment end, the last at the image's end, all with a hash state. */
	assert_true(r.n_checkpoints >= 2 && r.n_checkpoints <= 3);
	for (size_t i = 0; i < r.n_checkpoints; i++) {
		assert_true(r.with_state[i]);
		if (i)
			assert_true(r.checkpoints[i] > r.checkpoints[i - 1]);
		if (i + 1 < r.n_checkpoints)
			assert_int_equal(r.checkpoints[i] % (32 * MIB), 0);
	}
	assert_int_equal(r.checkpoints[r.n_checkpoints - 1], 70 * MIB);
	digest_sha256_free(hash);
	close(dev.fd);
}

/* A resumed image: writing starts at start, the bytes before are left as
 * the interrupted run wrote them (here: FILL, to see they are untouched). */
static void test_resume_offset(void **state)
{
	(void)state;
	struct slot_device dev;
	make_slot(&dev, 8 * MIB, 0);
	struct slot_writer_opts o = { .label = "slot", .start = 3 * MIB + 4096 };
	struct slot_writer *w = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(slot_writer_start(&dev, &o, &w, &err), 0);
	assert_int_equal(feed(w, NULL, 3 * MIB + 4096, 6 * MIB, 100000, &err), 0);
	assert_int_equal(slot_writer_finish(w, true, &err), 0);
	check_slot(dev.fd, 0, dev.size, 3 * MIB + 4096, 6 * MIB);
	close(dev.fd);

	/* a start past the slot's end is refused, *out untouched */
	make_slot(&dev, MIB, 0);
	o.start = MIB + 1;
	struct slot_writer *keep = (struct slot_writer *)&o;
	assert_int_equal(slot_writer_start(&dev, &o, &keep, &err), -ENOSPC);
	assert_ptr_equal(keep, (struct slot_writer *)&o);
	close(dev.fd);
}

/* One byte past the slot's end: -ENOSPC, nothing written past it. */
static void test_past_the_end(void **state)
{
	(void)state;
	struct slot_device dev;
	make_slot(&dev, 2 * MIB, 0);
	struct slot_writer_opts o = { .label = "slot" };
	struct slot_writer *w = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(slot_writer_start(&dev, &o, &w, &err), 0);
	assert_int_equal(feed(w, NULL, 0, 2 * MIB - 10, MIB, &err), 0);
	uint8_t b[11] = { 1 };
	assert_int_equal(slot_writer_write(w, b, sizeof(b), &err), -ENOSPC);
	assert_non_null(strstr(err.msg, "does not fit"));
	/* abandoned: no verdict of its own */
	assert_int_equal(slot_writer_finish(w, false, NULL), 0);
	off_t size = lseek(dev.fd, 0, SEEK_END);
	assert_int_equal(size, 2 * MIB);
	close(dev.fd);
}

/* Feeds n zero bytes in 1 MiB writes. */
static int feed_zeros(struct slot_writer *w, uint64_t n, struct abota_error *err)
{
	uint8_t *z = calloc(1, MIB);
	assert_non_null(z);
	int ret = 0;
	for (uint64_t off = 0; off < n && ret == 0; off += MIB)
		ret = slot_writer_write(w, z, n - off < MIB ? (size_t)(n - off) : MIB, err);
	free(z);
	return ret;
}

/* A writer on a fresh 40 MiB file slot (two read-back segments and a
 * part), its checkpoints recorded in r. */
static struct slot_writer *start_40mib(struct slot_device *dev, const char *label,
				       struct record *r)
{
	make_slot(dev, 40 * MIB, 0);
	struct slot_writer_opts o = { .label = label, .checkpoint = on_checkpoint,
				      .checkpoint_ctx = r };
	struct slot_writer *w = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(slot_writer_start(dev, &o, &w, &err), 0);
	return w;
}

/* An image of zeros only: nothing is written, the file slot holds holes
 * where it held FILL, and the read-back (which does not read holes) proves
 * every segment. */
static void test_all_zeros(void **state)
{
	(void)state;
	struct slot_device dev;
	struct record r = { 0 };
	struct slot_writer *w = start_40mib(&dev, "slot", &r);
	struct abota_error err = { 0 };
	assert_int_equal(feed_zeros(w, 36 * MIB, &err), 0);
	assert_int_equal(slot_writer_finish(w, true, &err), 0);
	assert_int_equal(r.checkpoints[r.n_checkpoints - 1], 36 * MIB);
	uint8_t *b = malloc(MIB);
	assert_non_null(b);
	for (uint64_t off = 0; off < 40 * MIB; off += MIB) {
		assert_int_equal(pread(dev.fd, b, MIB, (off_t)off), (ssize_t)MIB);
		for (size_t k = 0; k < MIB; k++)
			if (b[k] != (off < 36 * MIB ? 0 : FILL))
				fail_msg("slot byte %llu is 0x%02x", (unsigned long long)(off + k), b[k]);
	}
	free(b);
	close(dev.fd);
}

/* The medium stores one bit wrongly (ABOTA_FAULT_BADMEDIUM, set in main for
 * label "badmedium", at 32 MiB + 5): the write reports success, the
 * read-back catches it -- in data, and inside a zeroed run (an image of
 * zeros there), although the read-back skips what the file system reports
 * as holes. */
static void bad_medium_case(bool zeros)
{
	struct slot_device dev;
	struct record r = { 0 };
	struct slot_writer *w = start_40mib(&dev, "badmedium", &r);
	struct abota_error err = { 0 };
	/* the wrong byte is in the second segment: the first is proven */
	int ret = zeros ? feed_zeros(w, 36 * MIB, &err) : feed(w, NULL, 0, 36 * MIB, MIB, &err);
	if (ret == 0)
		ret = slot_writer_finish(w, true, &err);
	else
		slot_writer_finish(w, false, NULL);
	assert_int_equal(ret, -EIO);
	assert_non_null(strstr(err.msg, "read-back check failed"));
	assert_non_null(strstr(err.msg, "at offset 33554432"));
	for (size_t i = 0; i < r.n_checkpoints; i++)
		assert_true(r.checkpoints[i] <= 32 * MIB);
	close(dev.fd);
}

static void test_bad_medium(void **state)
{
	(void)state;
	bad_medium_case(false);
}

static void test_bad_medium_in_zero_run(void **state)
{
	(void)state;
	bad_medium_case(true);
}

/* in_place: the first MiB of the image is said to be in the slot already. */
static bool first_mib_in_place(void *ctx, uint64_t off, size_t len)
{
	(void)ctx;
	return off + len <= MIB;
}

/* Writes 4 MiB of image with claim as in_place, twice: over a slot that holds the
 * image's first MiB (expect_in_place bytes are not written and the image lands whole),
 * and over one that holds FILL (the claimed bytes stay FILL, the read-back check fails).
 * Returns the second slot's descriptor for more checks. */
static int in_place_case(bool (*claim)(void *, uint64_t, size_t), uint64_t expect_in_place)
{
	struct slot_device dev;
	make_slot(&dev, 8 * MIB, 0);
	uint8_t *b = malloc(MIB);
	assert_non_null(b);
	fill_image(b, 0, MIB);
	assert_int_equal(pwrite(dev.fd, b, MIB, 0), (ssize_t)MIB);
	struct slot_writer_opts o = { .label = "slot", .in_place = claim };
	struct slot_writer *w = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(slot_writer_start(&dev, &o, &w, &err), 0);
	assert_int_equal(feed(w, NULL, 0, 4 * MIB, 128 * 1024, &err), 0);
	assert_int_equal(slot_writer_in_place(w), expect_in_place);
	assert_int_equal(slot_writer_finish(w, true, &err), 0);
	check_slot(dev.fd, 0, dev.size, 0, 4 * MIB);
	close(dev.fd);

	/* the same claim over a slot that holds FILL there: not written, so caught */
	make_slot(&dev, 8 * MIB, 0);
	assert_int_equal(slot_writer_start(&dev, &o, &w, &err), 0);
	assert_int_equal(feed(w, NULL, 0, 4 * MIB, 128 * 1024, &err), 0);
	assert_int_equal(slot_writer_finish(w, true, &err), -EIO);
	assert_non_null(strstr(err.msg, "read-back check failed"));
	assert_int_equal(pread(dev.fd, b, 16, 0), 16);
	assert_int_equal(b[0], FILL);
	free(b);
	return dev.fd;
}

/* Bytes the slot holds in place are not written, but read back like the rest: true, the
 * image lands whole; false (the slot holds something else there), the read-back check
 * fails -- a wrong in_place answer never makes a wrong slot. */
static void test_in_place_not_written(void **state)
{
	(void)state;
	close(in_place_case(first_mib_in_place, MIB));
}

/* in_place: every third 4 KiB block of the first MiB is said to be in the slot. */
static bool thirds_in_place(void *ctx, uint64_t off, size_t len)
{
	(void)ctx;
	for (uint64_t o = off; o < off + len; o += 4096)
		if (o >= MIB || (o / 4096) % 3 != 0)
			return false;
	return true;
}

/* A write that mixes blocks in place with others (each 128 KiB write here)
 * skips just the blocks in place; a wrong claim on those is still caught. */
static void test_in_place_blocks_inside_a_write(void **state)
{
	(void)state;
	int fd = in_place_case(thirds_in_place, (MIB / 4096 + 2) / 3 * 4096);
	/* over FILL: block 0 was claimed (FILL, checked above), block 1 written */
	uint8_t *b = malloc(4096), *want = malloc(4096);
	assert_non_null(b);
	assert_non_null(want);
	assert_int_equal(pread(fd, b, 4096, 4096), 4096);
	fill_image(want, 4096, 4096);
	assert_memory_equal(b, want, 4096);
	free(want);
	free(b);
	close(fd);
}

static void test_can_write(void **state)
{
	(void)state;
	static const struct {
		const char *img, *slot;
		bool ok;
	} cases[] = {
		{ "raw", "raw", true },      { "ext4", "raw", true },      { "vfat", "raw", true },
		{ "squashfs", "raw", true }, { "raw", "ext4", true },      { "ext4", "ext4", true },
		{ "vfat", "ext4", false },   { "squashfs", "ext4", false }, { "raw", "vfat", true },
		{ "vfat", "vfat", true },    { "ext4", "vfat", false },    { "tar", "ext4", false },
		{ "tar", "raw", false },     { "ubifs", "ubifs", false },  { "raw", "nand", false },
		{ NULL, "raw", false },      { "raw", NULL, false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (slot_writer_can_write(cases[i].img, cases[i].slot) != cases[i].ok)
			fail_msg("%s image into %s slot: expected %s", cases[i].img ? cases[i].img : "NULL",
				 cases[i].slot ? cases[i].slot : "NULL", cases[i].ok ? "yes" : "no");
}

int main(void)
{
	/* 32 MiB + 5: in the second segment of test_bad_medium */
	setenv("ABOTA_FAULT_BADMEDIUM", "badmedium:33554437", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_whole_image, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_past_the_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_medium, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_zeros, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_medium_in_zero_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_in_place_not_written, setup, teardown),
		cmocka_unit_test_setup_teardown(test_in_place_blocks_inside_a_write, setup, teardown),
		cmocka_unit_test(test_can_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
