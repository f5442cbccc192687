/* Manifest: strict parsing as RAUC, emission in rauc bundle's order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abota/manifest.h"

#define SHA "9b0a2133ed27521dc0b815266bf4c6e1503866e8f9d75408a8757e237450e6f9"

static int parse(const char *text, enum manifest_mode mode, struct manifest **m,
		 struct abota_error *err)
{
	return manifest_parse(text, strlen(text), "m.raucm", mode, m, err);
}

static void expect_error(const char *text, enum manifest_mode mode, const char *needle)
{
	struct manifest *m = NULL;
	struct abota_error err = { 0 };
	assert_true(parse(text, mode, &m, &err) < 0);
	assert_null(m);
	if (!strstr(err.msg, needle))
		fail_msg("'%s' does not contain '%s'", err.msg, needle);
}

static void test_fixture_style(void **state)
{
	(void)state;
	const char *t = "[update]\ncompatible=example-stm32mp1-ota\nversion=2026.11.1\n"
			"description=Sample\nbuild=20261125120000\n\n[bundle]\nformat=verity\n"
			"verity-hash=f5c062ddbc2bfaba19b811f06528adfc848c2a9db8396459bbe8ab4ac0e8d8c5\n"
			"verity-salt=750f049fb719226ebfdec1b398d0927aa3efd8c858af748441b80715bb555572\n"
			"verity-size=4096\n\n[image.rootfs]\nsha256=" SHA "\nsize=262144\n"
			"filename=rootfs.ext4\nadaptive=block-hash-index;\n\n"
			"[image.bootloader.som-b]\nsha256=" SHA "\nsize=8192\nfilename=fip.bin\n"
			"[meta.version]\nbuild-id=42\n[rollout]\npercent=10\n";
	struct manifest *m = NULL;
	struct abota_error err = { 0 };
	if (parse(t, MANIFEST_BUNDLE, &m, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(m->compatible, "example-stm32mp1-ota");
	assert_int_equal(m->format, BUNDLE_FORMAT_VERITY);
	assert_int_equal(m->verity_size, 4096);
	assert_int_equal(m->n_images, 2);
	assert_string_equal(m->images[0].slotclass, "rootfs");
	assert_null(m->images[0].variant);
	assert_true(m->images[0].adaptive_block_hash_index);
	assert_string_equal(m->images[1].slotclass, "bootloader");
	assert_string_equal(m->images[1].variant, "som-b");
	assert_string_equal(manifest_image_type(&m->images[0]), "ext4");
	assert_string_equal(manifest_image_type(&m->images[1]), "raw"); /* ST's *.bin */
	assert_int_equal(m->n_meta, 1);
	assert_string_equal(m->meta[0].kv[0].value, "42");

	/* emission: order of rauc bundle, verity keys only on request, no [rollout] */
	char *out;
	size_t len;
	assert_int_equal(manifest_to_data(m, true, &out, &len, NULL), 0);
	assert_non_null(strstr(out, "[update]\ncompatible=example-stm32mp1-ota\nversion=2026.11.1\n"));
	assert_non_null(strstr(out, "[bundle]\nformat=verity\nverity-hash=f5c0"));
	assert_non_null(strstr(out, "[image.rootfs]\nsha256=" SHA "\nsize=262144\nfilename=rootfs.ext4\nadaptive=block-hash-index;\n"));
	assert_null(strstr(out, "rollout"));
	struct manifest *back = NULL;
	assert_int_equal(manifest_parse(out, len, "back", MANIFEST_BUNDLE, &back, NULL), 0);
	manifest_free(back);
	free(out);
	assert_int_equal(manifest_to_data(m, false, &out, &len, NULL), 0);
	assert_null(strstr(out, "verity-hash"));
	assert_non_null(strstr(out, "format=verity"));
	free(out);
	manifest_free(m);
}

/* An input manifest asks for format=verity but carries no verity keys (abota
 * bundle generates them): serialized with with_verity it must still parse --
 * it wrote "verity-hash=" with nothing after it (found by fuzz_manifest). */
static void test_input_manifest_round_trip(void **state)
{
	(void)state;
	const char *t = "[update]\ncompatible=x\n[bundle]\nformat=verity\n"
			"[image.rootfs]\nfilename=a.ext4\n";
	struct manifest *m = NULL;
	assert_int_equal(parse(t, MANIFEST_INPUT, &m, NULL), 0);
	char *out;
	size_t len;
	assert_int_equal(manifest_to_data(m, true, &out, &len, NULL), 0);
	assert_null(strstr(out, "verity-"));
	assert_non_null(strstr(out, "format=verity"));
	struct manifest *back = NULL;
	assert_int_equal(manifest_parse(out, len, "back", MANIFEST_INPUT, &back, NULL), 0);
	assert_int_equal(back->format, BUNDLE_FORMAT_VERITY);
	manifest_free(back);
	free(out);
	manifest_free(m);
}

static void test_missing_bundle_section_is_plain(void **state)
{
	(void)state;
	struct manifest *m = NULL;
	assert_int_equal(parse("[update]\ncompatible=x\n[image.a]\nfilename=a.img\nsha256=" SHA
			       "\nsize=1\n", MANIFEST_BUNDLE, &m, NULL), 0);
	assert_int_equal(m->format, BUNDLE_FORMAT_PLAIN);
	assert_false(m->has_bundle_section);
	manifest_free(m);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("[update]\nversion=1\n[image.a]\nfilename=a\n", MANIFEST_INPUT,
		     "missing key 'compatible'");
	expect_error("[update]\ncompatible=\n[image.a]\nfilename=a\n", MANIFEST_INPUT,
		     "missing value for key 'compatible'");
	expect_error("[Update]\ncompatible=x\n", MANIFEST_INPUT, "missing group [update]");
	expect_error("[update]\ncompatible=x\nfoo=1\n[image.a]\nfilename=a\n", MANIFEST_INPUT,
		     "m.raucm:3: invalid key 'foo' in group [update]");
	expect_error("[update]\ncompatible=x\n[image.a]\nfilename=a\n[custom]\n", MANIFEST_INPUT,
		     "invalid group [custom]");
	expect_error("[update]\ncompatible=x\n[image.a]\nfilename=a/b\n", MANIFEST_INPUT,
		     "not a plain file name");
	expect_error("[update]\ncompatible=x\n[image.a]\nfilename=..\n", MANIFEST_INPUT,
		     "not a plain file name");
	expect_error("[update]\ncompatible=x\n[image.a]\nfilename=a\nsha256=" SHA "\n",
		     MANIFEST_INPUT, "must not be in the input manifest");
	expect_error("[update]\ncompatible=x\n[bundle]\nformat=verity\nverity-size=4096\n"
		     "[image.a]\nfilename=a\n", MANIFEST_INPUT, "must not be in the input manifest");
	expect_error("[update]\ncompatible=x\n[image.a]\nfilename=a\n", MANIFEST_BUNDLE,
		     "every installed byte must be covered");
	expect_error("[update]\ncompatible=x\n[image.a]\nfilename=a\nsha256=" SHA "\nsize=9223372036854775808\n",
		     MANIFEST_BUNDLE, "out of range");
	expect_error("[update]\ncompatible=x\n[image.a]\nfilename=a\nsha256=ABC\nsize=1\n",
		     MANIFEST_BUNDLE, "64 lowercase");
	expect_error("[update]\ncompatible=x\n[bundle]\nformat=verity\n[image.a]\nfilename=a\n"
		     "sha256=" SHA "\nsize=1\n", MANIFEST_BUNDLE, "needs verity-hash");
	expect_error("[update]\ncompatible=x\n[bundle]\nformat=squash\n", MANIFEST_INPUT,
		     "unknown bundle format");
	expect_error("[update]\ncompatible=x\n[image.a]\nfilename=a\nhooks=install;post-install\n"
		     "[hooks]\nfilename=h\n", MANIFEST_INPUT, "cannot be combined");
	expect_error("[update]\ncompatible=x\n[image.a]\nfilename=a\nhooks=post-install\n",
		     MANIFEST_INPUT, "[hooks] has no 'filename'");
	expect_error("[update]\ncompatible=x\n[handler]\nargs=-v\n[image.a]\nfilename=a\n",
		     MANIFEST_INPUT, "'args' given without 'filename'");
	expect_error("[update]\ncompatible=x\n[image.a]\nfilename=a\nadaptive=magic\n",
		     MANIFEST_INPUT, "unsupported adaptive method");
	expect_error("[update]\ncompatible=x\n[image.a]\nfilename=a\ntype=zip\n", MANIFEST_INPUT,
		     "unknown image type");
	expect_error("[update]\ncompatible=x\n", MANIFEST_INPUT, "no [image.<slot-class>]");
	expect_error("[update]\ncompatible=x\n[meta.bad label]\nk=v\n[image.a]\nfilename=a\n",
		     MANIFEST_INPUT, "meta label");
	expect_error("[update]\ncompatible=x\n[image.repo/art]\nfilename=a\n", MANIFEST_INPUT,
		     "artifacts");
	/* SC-60: long values are capped */
	char *big = malloc(10000);
	strcpy(big, "[update]\ncompatible=x\nversion=");
	memset(big + strlen(big), 'v', 5000);
	strcpy(big + strlen("[update]\ncompatible=x\nversion=") + 5000, "\n[image.a]\nfilename=a\n");
	expect_error(big, MANIFEST_INPUT, "longer than 4096");
	free(big);
	/* trailing whitespace is significant, as in RAUC */
	struct manifest *m = NULL;
	assert_int_equal(parse("[update]\ncompatible=foo   \n[image.a]\nfilename=a\n",
			       MANIFEST_INPUT, &m, NULL), 0);
	assert_string_equal(m->compatible, "foo   ");
	manifest_free(m);
}

/* SC-51: a filename with a NUL byte, non-UTF-8 bytes, or longer than
 * NAME_MAX (255) is refused; 255 bytes is still fine. */
static void test_filename_bytes(void **state)
{
	(void)state;
	static const char nul[] = "[update]\ncompatible=x\n[image.a]\nfilename=a\0b\n";
	struct manifest *m = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(manifest_parse(nul, sizeof(nul) - 1, "m.raucm", MANIFEST_INPUT, &m, &err),
			 -EINVAL);
	assert_null(m);
	assert_non_null(strstr(err.msg, "NUL byte"));
	expect_error("[update]\ncompatible=x\n[image.a]\nfilename=r\xff\xfe.img\n", MANIFEST_INPUT,
		     "key 'filename' in group [image.a] is not valid UTF-8");
	/* overlong UTF-8 encoding of '/' must not sneak a slash in */
	expect_error("[update]\ncompatible=x\n[image.a]\nfilename=a\xc0\xaf" "b\n", MANIFEST_INPUT,
		     "not valid UTF-8");
	char t[600];
	char name[300];
	memset(name, 'n', 256);
	name[256] = '\0';
	snprintf(t, sizeof(t), "[update]\ncompatible=x\n[image.a]\nfilename=%s\n", name);
	expect_error(t, MANIFEST_INPUT, "at most 255 bytes");
	name[255] = '\0';
	snprintf(t, sizeof(t), "[update]\ncompatible=x\n[image.a]\nfilename=%s\n", name);
	assert_int_equal(parse(t, MANIFEST_INPUT, &m, NULL), 0);
	assert_int_equal(strlen(m->images[0].filename), 255);
	manifest_free(m);
}

/* SC-61: a manifest in a buffer of exactly its length (no NUL terminator
 * after it, no final newline) is parsed within its length -- ASan would
 * report a read past the heap block. */
static void test_unterminated_buffer(void **state)
{
	(void)state;
	static const char t[] = "[update]\ncompatible=x\nversion=1.2.3\n[image.a]\nfilename=a.img";
	size_t len = sizeof(t) - 1;
	char *buf = malloc(len);
	memcpy(buf, t, len);
	struct manifest *m = NULL;
	struct abota_error err = { 0 };
	if (manifest_parse(buf, len, "m.raucm", MANIFEST_INPUT, &m, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(m->version, "1.2.3");
	assert_string_equal(m->images[0].filename, "a.img");
	manifest_free(m);
	/* cut inside the last value: parsed as far as it goes */
	m = NULL;
	assert_int_equal(manifest_parse(buf, len - 2, "m.raucm", MANIFEST_INPUT, &m, &err), 0);
	assert_string_equal(m->images[0].filename, "a.i");
	manifest_free(m);
	free(buf);
}

/* SC-65: CRLF line endings are accepted and give the same values;
 * SC-66: a value that is not UTF-8 is refused, naming the key. */
static void test_crlf_and_utf8(void **state)
{
	(void)state;
	struct manifest *m = NULL;
	struct abota_error err = { 0 };
	const char *crlf = "[update]\r\ncompatible=abota-test\r\nversion=2.0\r\n\r\n"
			   "[image.rootfs]\r\nfilename=rootfs.ext4\r\nsha256=" SHA "\r\n"
			   "size=4096\r\n";
	if (parse(crlf, MANIFEST_BUNDLE, &m, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(m->compatible, "abota-test");
	assert_string_equal(m->version, "2.0");
	assert_string_equal(m->images[0].filename, "rootfs.ext4");
	assert_string_equal(m->images[0].sha256, SHA);
	assert_int_equal(m->images[0].size, 4096);
	manifest_free(m);
	expect_error("[update]\ncompatible=x\nversion=1\xe9" "\n[image.a]\nfilename=a\n",
		     MANIFEST_INPUT, "m.raucm:3: value of key 'version' in group [update] is not valid UTF-8");
	expect_error("[update]\ncompatible=\xff\n[image.a]\nfilename=a\n", MANIFEST_INPUT,
		     "key 'compatible'");
}

/* SC-106 (variant part): a slot class with only images for other variants
 * is an install error; a matching or variant-less image is fine. */
static void test_variants(void **state)
{
	(void)state;
	struct manifest *m = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(parse("[update]\ncompatible=x\n[image.rootfs.b]\nfilename=r\n"
			       "[image.rootfs.c]\nfilename=r2\n[image.boot]\nfilename=f\n",
			       MANIFEST_INPUT, &m, NULL), 0);
	assert_int_equal(manifest_check_variants(m, "a", &err), -ENOENT);
	assert_non_null(strstr(err.msg, "no image for slot class 'rootfs' matches the system variant 'a'"));
	assert_int_equal(manifest_check_variants(m, NULL, &err), -ENOENT);
	assert_int_equal(manifest_check_variants(m, "c", NULL), 0);
	manifest_free(m);
	assert_int_equal(parse("[update]\ncompatible=x\n[image.rootfs.b]\nfilename=r\n"
			       "[image.rootfs]\nfilename=r2\n", MANIFEST_INPUT, &m, NULL), 0);
	assert_int_equal(manifest_check_variants(m, "a", NULL), 0);
	assert_int_equal(manifest_check_variants(m, NULL, NULL), 0);
	manifest_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_variants),
		cmocka_unit_test(test_filename_bytes),
		cmocka_unit_test(test_unterminated_buffer),
		cmocka_unit_test(test_crlf_and_utf8),
		cmocka_unit_test(test_fixture_style),
		cmocka_unit_test(test_input_manifest_round_trip),
		cmocka_unit_test(test_missing_bundle_section_is_plain),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
