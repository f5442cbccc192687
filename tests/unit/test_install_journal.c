/* test_install_journal.c - the resume journal: round trip, strict parsing,
 * and the resumable SHA-256 it stores (digest.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "abota/digest.h"
#include "abota/install_journal.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/abota-journal-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/data/%s", dir, INSTALL_JOURNAL_NAME);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char H[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/* Saving a state at a 64-byte boundary and continuing in a new context
 * gives the same digest as hashing in one go. */
static void test_sha256_resume(void **state)
{
	(void)state;
	static uint8_t data[1 << 16];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 131 + 7);
	uint8_t whole[32], resumed[32];
	unsigned n = 0;
	assert_int_equal(EVP_Digest(data, sizeof(data), whole, &n, EVP_sha256(), NULL), 1);

	struct digest_sha256_ctx *a = NULL, *b = NULL;
	assert_int_equal(digest_sha256_new(&a), 0);
	assert_int_equal(digest_sha256_new(&b), 0);
	digest_sha256_update(a, data, 4096 + 64);
	struct digest_sha256_state st, back;
	assert_int_equal(digest_sha256_save(a, &st), 0);
	assert_int_equal(st.length, 4096 + 64);
	char text[DIGEST_SHA256_STATE_TEXT_LEN + 1];
	digest_sha256_state_format(&st, text);
	assert_int_equal(strlen(text), DIGEST_SHA256_STATE_TEXT_LEN);
	assert_true(digest_sha256_state_parse(text, &back));
	assert_memory_equal(&st, &back, sizeof(st));
	assert_int_equal(digest_sha256_restore(b, &back), 0);
	digest_sha256_update(b, data + 4096 + 64, sizeof(data) - 4096 - 64);
	digest_sha256_final(b, resumed);
	assert_memory_equal(whole, resumed, 32);

	/* not at a block boundary: cannot be saved */
	digest_sha256_update(a, data, 3);
	assert_int_equal(digest_sha256_save(a, &st), -EINVAL);
	/* malformed text forms */
	assert_false(digest_sha256_state_parse("", &back));
	text[3] = 'X';
	assert_false(digest_sha256_state_parse(text, &back));
	assert_false(digest_sha256_state_parse(
		"0000000000000041:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		&back)); /* length 65 */
	assert_false(digest_sha256_state_parse(
		"0000000000000040-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		&back));
	assert_false(digest_sha256_state_parse(
		"0000000000000040:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
		&back));
	struct digest_sha256_state odd = { .length = 100 };
	assert_int_equal(digest_sha256_restore(b, &odd), -EINVAL);
	digest_sha256_free(a);
	digest_sha256_free(b);
}

static void test_roundtrip(void **state)
{
	(void)state;
	struct abota_error err = { 0 };
	struct install_journal *j = NULL, *r = NULL;
	assert_int_equal(install_journal_load(path, &r, &err), -ENOENT);
	assert_int_equal(install_journal_new("feed", "https://h/b.raucb?token=x", "2.0", "B",
					     "uuid-1", &j, &err),
			 0);
	struct journal_slot *a = install_journal_add_slot(j, "rootfs.1", "rootfs.ext4", H, 1 << 20);
	assert_non_null(a);
	assert_non_null(install_journal_add_slot(j, "bootloader.1", "fip.img", H, 60000));
	/* the same name again: the existing entry */
	assert_ptr_equal(install_journal_add_slot(j, "bootloader.1", "x", H, 1),
			 install_journal_find(j, "bootloader.1"));
	struct digest_sha256_state st = { .length = 65536, .h = { 1, 2, 3, 4, 5, 6, 7, 0xffffffff } };
	install_journal_set_progress(install_journal_find(j, "rootfs.1"), 65536, &st);
	install_journal_set_progress(install_journal_find(j, "bootloader.1"), 60000, NULL);
	assert_int_equal(install_journal_save(j, path, &err), 0); /* creates data/ */
	assert_int_equal(install_journal_load(path, &r, &err), 0);
	assert_string_equal(r->bundle_hash, "feed");
	assert_string_equal(r->bundle_version, "2.0");
	assert_string_equal(r->target, "B");
	assert_int_equal(r->n_slots, 2);
	const struct journal_slot *rs = install_journal_find(r, "rootfs.1");
	assert_non_null(rs);
	assert_int_equal(rs->verified, 65536);
	assert_memory_equal(&rs->hash, &st, sizeof(st));
	assert_int_equal(install_journal_find(r, "bootloader.1")->verified, 60000);
	uint64_t v, t;
	install_journal_totals(r, &v, &t);
	assert_int_equal(v, 65536 + 60000);
	assert_int_equal(t, (1 << 20) + 60000);
	install_journal_free(r);
	install_journal_free(j);
	assert_int_equal(install_journal_remove(path, &err), 0);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(install_journal_remove(path, &err), 0); /* none: fine */
}

static void expect_bad(const char *text, const char *needle)
{
	struct abota_error err = { 0 };
	struct install_journal *j = NULL;
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(install_journal_load(path, &j, &err), -EINVAL);
	assert_null(j);
	if (!strstr(err.msg, needle))
		fail_msg("'%s' not in '%s'", needle, err.msg);
}

#define HEAD "[install]\nbundle-hash=aa\nbundle=b\ntarget=B\ntransaction=t\nstarted=s\n"
#define SLOT(extra) "[slot.rootfs.1]\nimage=r\nsha256=" \
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\nsize=1000\n" extra

static void test_strict(void **state)
{
	(void)state;
	expect_bad("[install]\nbundle=b\n", "missing key 'bundle-hash'");
	expect_bad(HEAD "surprise=1\n", "surprise");
	expect_bad(HEAD "[other]\nx=1\n", "other");
	expect_bad(HEAD SLOT("verified=2000\n"), "larger than size");
	expect_bad(HEAD SLOT("verified=-1\n"), "verified");
	expect_bad(HEAD SLOT("verified=128\n"), "missing key 'hash-state'");
	expect_bad(HEAD SLOT("verified=128\nhash-state=0000000000000040:"
			     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"),
		   "not at the verified offset");
	expect_bad(HEAD SLOT("verified=0\nhash-state=0000000000000000:"
			     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"),
		   "only allowed while");
	expect_bad(HEAD "[slot.rootfs.1]\nimage=r\nsha256=zz\nsize=1\nverified=0\n", "sha256");
	expect_bad(HEAD "[install]\nbundle=x\n", "install");
	/* a valid one parses */
	struct abota_error err = { 0 };
	struct install_journal *j = NULL;
	FILE *f = fopen(path, "w");
	fputs(HEAD SLOT("verified=128\nhash-state=0000000000000080:"
			"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"),
	      f);
	fclose(f);
	assert_int_equal(install_journal_load(path, &j, &err), 0);
	assert_int_equal(j->slots[0].hash.h[1], 0x89abcdef);
	install_journal_free(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_resume),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_strict),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
