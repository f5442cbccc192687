#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "abota/fileio.h"
#include "abota/slot_status.h"

/* The central status file observed after an install with RAUC (spec §4.1). */
static const char sample[] =
	"[system]\n"
	"boot-id=e1c3aade-c4b2-4788-bfb3-05ee41ccc80c\n"
	"\n"
	"[slot.rootfs.1]\n"
	"bundle.compatible=example-stm32mp1-ota\n"
	"bundle.version=2026.11.3\n"
	"bundle.description=install test\n"
	"bundle.build=b1\n"
	"bundle.hash=34cc03f73e82f68cbde72ac299b089b50a3918f63fe6f7ce48989cc2275035cd\n"
	"status=ok\n"
	"sha256=ee3ab147de5374968661a29487928c610e09d094270cc604d90aa1d7649ab039\n"
	"size=262144\n"
	"installed.transaction=78e99990-9c07-4538-9ed5-c5282966adb2\n"
	"installed.timestamp=2026-11-25T12:46:06Z\n"
	"installed.count=2\n"
	"activated.timestamp=2026-11-25T12:46:06Z\n"
	"activated.count=2\n";

static char dir[64];
static char path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/abota-test-status-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/data/central.raucs", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *slurp(const char *p)
{
	char *d = NULL;
	size_t len;
	if (fileio_read_all(p, 1 << 20, &d, &len, NULL) < 0)
		return NULL;
	return d;
}

static void test_roundtrip(void **state)
{
	(void)state;
	struct slot_status_store *st = NULL;
	struct abota_error err = { 0 };
	char d[128];
	snprintf(d, sizeof(d), "%s/data", dir);
	assert_int_equal(mkdir(d, 0755), 0);
	assert_int_equal(fileio_write_atomic(path, sample, strlen(sample), 0644, NULL), 0);
	assert_int_equal(slot_status_load(path, &st, &err), 0);
	const struct slot_status *s = slot_status_find(st, "rootfs.1");
	assert_non_null(s);
	assert_string_equal(s->bundle_version, "2026.11.3");
	assert_string_equal(s->status, "ok");
	assert_int_equal(s->size, 262144);
	assert_int_equal(s->installed_count, 2);
	assert_string_equal(s->installed_transaction, "78e99990-9c07-4538-9ed5-c5282966adb2");
	assert_null(slot_status_find(st, "rootfs.0"));
	/* same boot: save must reproduce the file byte for byte */
	assert_int_equal(slot_status_set_boot_id(st, "e1c3aade-c4b2-4788-bfb3-05ee41ccc80c"), 0);
	assert_int_equal(slot_status_save(st, &err), 0);
	char *back = slurp(path);
	assert_non_null(back);
	assert_string_equal(back, sample);
	free(back);
	/* mark-active bookkeeping */
	assert_int_equal(slot_status_mark_activated(st, "rootfs.1", &err), 0);
	assert_int_equal(slot_status_find(st, "rootfs.1")->activated_count, 3);
	assert_int_equal(strlen(slot_status_find(st, "rootfs.1")->activated_timestamp), 20);
	assert_int_equal(slot_status_save(st, &err), 0);
	slot_status_store_free(st);
	assert_int_equal(slot_status_load(path, &st, &err), 0);
	assert_int_equal(slot_status_find(st, "rootfs.1")->activated_count, 3);
	slot_status_store_free(st);
}

static void test_missing_and_new(void **state)
{
	(void)state;
	struct slot_status_store *st = NULL;
	/* missing file and missing directory: empty store, created on save */
	assert_int_equal(slot_status_load(path, &st, NULL), 0);
	assert_false(slot_status_was_broken(st));
	struct slot_status *s = slot_status_get(st, "rootfs.0");
	assert_non_null(s);
	assert_int_equal(slot_status_set(&s->status, "pending"), 0);
	assert_int_equal(slot_status_set_boot_id(st, "id"), 0);
	assert_int_equal(slot_status_save(st, NULL), 0);
	slot_status_store_free(st);
	char *back = slurp(path);
	assert_string_equal(back, "[system]\nboot-id=id\n\n[slot.rootfs.0]\nstatus=pending\n");
	free(back);
}

/* SC-68: an unparsable status file is loaded as defaults (never a crash or
 * an error), and replaced on save; RAUC keeps the old one as <file>.broken. */
static void test_broken(void **state)
{
	(void)state;
	char d[128], b[160];
	snprintf(d, sizeof(d), "%s/data", dir);
	assert_int_equal(mkdir(d, 0755), 0);
	const char junk[] = "this is [not a key file\n";
	assert_int_equal(fileio_write_atomic(path, junk, strlen(junk), 0644, NULL), 0);
	struct slot_status_store *st = NULL;
	assert_int_equal(slot_status_load(path, &st, NULL), 0);
	assert_true(slot_status_was_broken(st));
	assert_null(slot_status_find(st, "rootfs.0"));
	/* lenient per key: a bad count keeps the default */
	slot_status_get(st, "rootfs.0")->installed_count = 1;
	assert_int_equal(slot_status_set(&slot_status_get(st, "rootfs.0")->installed_timestamp,
					 "2026-01-01T00:00:00Z"),
			 0);
	assert_int_equal(slot_status_save(st, NULL), 0);
	slot_status_store_free(st);
	snprintf(b, sizeof(b), "%s.broken", path);
	char *moved = slurp(b);
	assert_string_equal(moved, junk);
	free(moved);
	const char lenient[] = "[slot.rootfs.0]\ninstalled.count=abc\nsize=-1\nstatus=ok\n";
	assert_int_equal(fileio_write_atomic(path, lenient, strlen(lenient), 0644, NULL), 0);
	assert_int_equal(slot_status_load(path, &st, NULL), 0);
	assert_false(slot_status_was_broken(st));
	assert_int_equal(slot_status_find(st, "rootfs.0")->installed_count, 0);
	assert_false(slot_status_find(st, "rootfs.0")->has_size);
	assert_string_equal(slot_status_find(st, "rootfs.0")->status, "ok");
	slot_status_store_free(st);
}

static void write_raw(const char *p, const void *data, size_t len)
{
	FILE *f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* SC-68: the status file truncated at every byte (a power cut during a
 * non-atomic write by another tool, a full disk) and binary garbage: each
 * loads without error; what still parses is kept, an unparsable rest makes
 * the store start from defaults; saving replaces it and keeps the old one
 * as <file>.broken. */
static void test_truncated(void **state)
{
	(void)state;
	char d[128], b[160];
	snprintf(d, sizeof(d), "%s/data", dir);
	assert_int_equal(mkdir(d, 0755), 0);
	size_t n_broken = 0;
	for (size_t cut = 0; cut < sizeof(sample) - 1; cut++) {
		write_raw(path, sample, cut);
		struct slot_status_store *st = NULL;
		struct abota_error err = { 0 };
		if (slot_status_load(path, &st, &err) < 0)
			fail_msg("cut at %zu: %s", cut, err.msg);
		const struct slot_status *s = slot_status_find(st, "rootfs.1");
		if (slot_status_was_broken(st)) {
			n_broken++;
			assert_null(s);
		} else if (cut > strlen("[system]\nboot-id=e1c3aade-c4b2-4788-bfb3-05ee41ccc80c\n\n"
					"[slot.rootfs.1]\n")) {
			assert_non_null(s);
		}
		slot_status_store_free(st);
	}
	/* cuts inside a group header ("[sys", "[slot.roo") cannot parse */
	assert_true(n_broken >= 20);
	/* a cut inside the second group header: defaults, and save replaces it */
	size_t cut = (size_t)(strstr(sample, "[slot.rootfs.1]") - sample) + 7;
	write_raw(path, sample, cut);
	struct slot_status_store *st = NULL;
	assert_int_equal(slot_status_load(path, &st, NULL), 0);
	assert_true(slot_status_was_broken(st));
	assert_null(slot_status_boot_id(st));
	assert_int_equal(slot_status_set(&slot_status_get(st, "rootfs.0")->status, "ok"), 0);
	assert_int_equal(slot_status_save(st, NULL), 0);
	slot_status_store_free(st);
	snprintf(b, sizeof(b), "%s.broken", path);
	char *moved = slurp(b);
	assert_non_null(moved);
	assert_int_equal(strlen(moved), cut);
	assert_memory_equal(moved, sample, cut);
	free(moved);
	char *now = slurp(path);
	assert_non_null(strstr(now, "[slot.rootfs.0]\nstatus=ok\n"));
	assert_null(strstr(now, "rootfs.1"));
	free(now);
	assert_int_equal(slot_status_load(path, &st, NULL), 0);
	assert_false(slot_status_was_broken(st));
	assert_string_equal(slot_status_find(st, "rootfs.0")->status, "ok");
	slot_status_store_free(st);
	/* binary garbage with NUL bytes */
	unsigned char junk[512];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 131u + 7u);
	write_raw(path, junk, sizeof(junk));
	assert_int_equal(slot_status_load(path, &st, NULL), 0);
	assert_true(slot_status_was_broken(st));
	slot_status_store_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_and_new, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
