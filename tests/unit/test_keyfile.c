#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include <stdlib.h>

#include "abota/keyfile.h"

static struct keyfile *parse_ok(const char *text)
{
	struct keyfile *kf = NULL;
	struct abota_error err = { 0 };
	int ret = keyfile_parse(text, strlen(text), "t.conf", &kf, &err);
	if (ret < 0)
		fail_msg("parse failed: %s", err.msg);
	return kf;
}

static void parse_fails(const char *text, size_t len, const char *needle)
{
	struct keyfile *kf = NULL;
	struct abota_error err = { 0 };
	int ret = keyfile_parse(text, len, "t.conf", &kf, &err);
	assert_true(ret < 0);
	assert_null(kf);
	if (!strstr(err.msg, needle))
		fail_msg("error '%s' does not contain '%s'", err.msg, needle);
}

static void test_basic(void **state)
{
	(void)state;
	struct keyfile *kf = parse_ok("# comment\n[update]\ncompatible = foo   \n"
				      "version=1 # not a comment\n\n  # indented comment\n"
				      "[image.rootfs]\nfilename=rootfs.ext4\r\n");
	const char *v;
	assert_int_equal(keyfile_get_string(kf, "update", "compatible", &v, NULL), 0);
	assert_string_equal(v, "foo   ");
	assert_int_equal(keyfile_get_string(kf, "update", "version", &v, NULL), 0);
	assert_string_equal(v, "1 # not a comment");
	assert_int_equal(keyfile_get_string(kf, "image.rootfs", "filename", &v, NULL), 0);
	assert_string_equal(v, "rootfs.ext4");
	assert_int_equal(keyfile_get_string(kf, "update", "nothere", &v, NULL), -ENOENT);
	assert_int_equal(keyfile_group_count(kf), 2);
	assert_string_equal(keyfile_group_name(kf, 1), "image.rootfs");
	assert_int_equal(keyfile_key_line(kf, "image.rootfs", "filename"), 8);
	assert_int_equal(keyfile_check_consumed(kf, NULL), 0);
	keyfile_free(kf);
}

static void test_escapes_and_lists(void **state)
{
	(void)state;
	struct keyfile *kf = parse_ok("[g]\ns=\\sa\\tb\\nc\\\\d\\re\\;\nl=a;b\\;c;;\nm=x\nn=\n"
				      "bad=\\q\nend=abc\\\n");
	const char *v;
	assert_int_equal(keyfile_get_string(kf, "g", "s", &v, NULL), 0);
	assert_string_equal(v, " a\tb\nc\\d\re;");
	const char *const *list;
	size_t n;
	assert_int_equal(keyfile_get_list(kf, "g", "l", &list, &n, NULL), 0);
	assert_int_equal(n, 3);
	assert_string_equal(list[0], "a");
	assert_string_equal(list[1], "b;c");
	assert_string_equal(list[2], "");
	assert_null(list[3]);
	assert_int_equal(keyfile_get_list(kf, "g", "m", &list, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(keyfile_get_list(kf, "g", "n", &list, &n, NULL), 0);
	assert_int_equal(n, 0);
	struct abota_error err = { 0 };
	assert_int_equal(keyfile_get_string(kf, "g", "bad", &v, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "invalid escape"));
	assert_int_equal(keyfile_get_string(kf, "g", "end", &v, &err), -EINVAL);
	assert_int_equal(keyfile_get_nonempty(kf, "g", "n", &v, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "missing value for key 'n'"));
	keyfile_free(kf);
}

static void test_numbers_bools(void **state)
{
	(void)state;
	struct keyfile *kf = parse_ok("[g]\na=0\nb=18446744073709551615\nc=18446744073709551616\n"
				      "d=-1\ne= 12\nf=12 \ng=0x10\nt=true\nu=1\nv=False\nw=yes\nx=0\n");
	uint64_t n;
	struct abota_error err = { 0 };
	assert_int_equal(keyfile_get_u64(kf, "g", "a", &n, NULL), 0);
	assert_int_equal(n, 0);
	assert_int_equal(keyfile_get_u64(kf, "g", "b", &n, NULL), 0);
	assert_true(n == UINT64_MAX);
	assert_int_equal(keyfile_get_u64(kf, "g", "c", &n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "t.conf:4: key 'c'"));
	assert_int_equal(keyfile_get_u64(kf, "g", "d", &n, NULL), -EINVAL);
	/* leading whitespace after '=' is dropped, trailing is kept */
	assert_int_equal(keyfile_get_u64(kf, "g", "e", &n, NULL), 0);
	assert_int_equal(keyfile_get_u64(kf, "g", "f", &n, NULL), -EINVAL);
	assert_int_equal(keyfile_get_u64(kf, "g", "g", &n, NULL), -EINVAL);
	/* SC-67: booleans are exactly true/false/1/0; False and yes are refused */
	bool b;
	assert_int_equal(keyfile_get_bool(kf, "g", "t", &b, NULL), 0);
	assert_true(b);
	assert_int_equal(keyfile_get_bool(kf, "g", "u", &b, NULL), 0);
	assert_true(b);
	assert_int_equal(keyfile_get_bool(kf, "g", "v", &b, NULL), -EINVAL);
	assert_int_equal(keyfile_get_bool(kf, "g", "w", &b, NULL), -EINVAL);
	assert_int_equal(keyfile_get_bool(kf, "g", "x", &b, NULL), 0);
	assert_false(b);
	keyfile_free(kf);
}

static void test_strict(void **state)
{
	(void)state;
	struct keyfile *kf = parse_ok("[update]\ncompatible=x\nfoo=bar\n[custom]\na=b\n");
	const char *v;
	struct abota_error err = { 0 };
	assert_int_equal(keyfile_get_string(kf, "update", "compatible", &v, NULL), 0);
	assert_int_equal(keyfile_check_consumed(kf, &err), -EINVAL);
	assert_string_equal(err.msg, "t.conf:3: invalid key 'foo' in group [update]");
	assert_int_equal(keyfile_get_string(kf, "update", "foo", &v, NULL), 0);
	assert_int_equal(keyfile_check_consumed(kf, &err), -EINVAL);
	assert_string_equal(err.msg, "t.conf:4: invalid group [custom]");
	keyfile_consume_group(kf, "custom");
	assert_int_equal(keyfile_check_consumed(kf, &err), -EINVAL);
	assert_string_equal(err.msg, "t.conf:5: invalid key 'a' in group [custom]");
	keyfile_free(kf);
}

static void test_bad_syntax(void **state)
{
	(void)state;
	parse_fails("[g]\na=1\na=2\n", 12, "duplicate key 'a'");
	parse_fails("[g]\n[h]\n[g]\n", 12, "duplicate group [g]");
	parse_fails("a=1\n", 4, "outside of any group");
	parse_fails("[g]\njunk\n", 9, "not a key=value");
	parse_fails("[g\n", 3, "invalid group header");
	parse_fails("[g]x\n", 5, "trailing characters");
	parse_fails("[]\n", 3, "invalid group name");
	parse_fails("[g]\n=v\n", 7, "invalid key name");
	parse_fails("[g]\na=\0\n", 7, "NUL byte");
	/* SC-61: not NUL-terminated input must be parsed within its length
	 * (ASan checks the read stays inside the 8 bytes). */
	char buf[8];
	memcpy(buf, "[g]\na=bc", 8);
	struct keyfile *kf = NULL;
	assert_int_equal(keyfile_parse(buf, 8, "x", &kf, NULL), 0);
	const char *v;
	assert_int_equal(keyfile_get_string(kf, "g", "a", &v, NULL), 0);
	assert_string_equal(v, "bc");
	keyfile_free(kf);
	/* SC-66: a non-UTF-8 value is rejected when read, naming the key. */
	kf = NULL;
	assert_int_equal(keyfile_parse("[g]\na=\xff\xfe\n", 9, "x", &kf, NULL), 0);
	struct abota_error err = { 0 };
	assert_int_equal(keyfile_get_string(kf, "g", "a", &v, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "key 'a' in group [g] is not valid UTF-8"));
	keyfile_free(kf);
}

static void test_write_roundtrip(void **state)
{
	(void)state;
	struct keyfile *kf = keyfile_new("out");
	assert_int_equal(keyfile_set_string(kf, "update", "compatible", " lead\ttab;semi\\"), 0);
	assert_int_equal(keyfile_set_u64(kf, "image.a", "size", 4096), 0);
	const char *items[] = { "block-hash-index", "x;y" };
	assert_int_equal(keyfile_set_list(kf, "image.a", "adaptive", items, 2), 0);
	assert_int_equal(keyfile_set_string(kf, "update", "version", "1"), 0);
	assert_int_equal(keyfile_set_string(kf, "update", "version", "2"), 0);
	char *data;
	size_t len;
	assert_int_equal(keyfile_to_data(kf, &data, &len), 0);
	assert_string_equal(data, "[update]\ncompatible=\\slead\\ttab;semi\\\\\nversion=2\n\n"
				  "[image.a]\nsize=4096\nadaptive=block-hash-index;x\\;y;\n");
	struct keyfile *back = NULL;
	assert_int_equal(keyfile_parse(data, len, "back", &back, NULL), 0);
	const char *v;
	assert_int_equal(keyfile_get_string(back, "update", "compatible", &v, NULL), 0);
	assert_string_equal(v, " lead\ttab;semi\\");
	const char *const *list;
	size_t n;
	assert_int_equal(keyfile_get_list(back, "image.a", "adaptive", &list, &n, NULL), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[1], "x;y");
	assert_int_equal(keyfile_remove_key(back, "update", "version"), 0);
	assert_false(keyfile_has_key(back, "update", "version"));
	free(data);
	keyfile_free(back);
	keyfile_free(kf);
}

/* Found by fuzz/fuzz_keyfile.c: a value ending in a literal CR lost it on
 * parse -> keyfile_to_data -> parse (the second parse took the CR for a
 * CRLF line end). */
static void test_roundtrip_trailing_cr(void **state)
{
	(void)state;
	static const char in[] = "[g]\nk=fip.img\r\r\r\nl=x\r\n";
	struct keyfile *kf = NULL, *kf2 = NULL;
	assert_int_equal(keyfile_parse(in, sizeof(in) - 1, "t", &kf, NULL), 0);
	char *out = NULL;
	size_t len = 0;
	assert_int_equal(keyfile_to_data(kf, &out, &len), 0);
	assert_int_equal(keyfile_parse(out, len, "t2", &kf2, NULL), 0);
	const char *v1, *v2;
	assert_int_equal(keyfile_get_string(kf, "g", "k", &v1, NULL), 0);
	assert_int_equal(keyfile_get_string(kf2, "g", "k", &v2, NULL), 0);
	assert_string_equal(v1, "fip.img\r\r");
	assert_string_equal(v2, v1);
	assert_int_equal(keyfile_get_string(kf2, "g", "l", &v2, NULL), 0);
	assert_string_equal(v2, "x");
	free(out);
	keyfile_free(kf2);
	keyfile_free(kf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_escapes_and_lists),
		cmocka_unit_test(test_numbers_bools),
		cmocka_unit_test(test_strict),
		cmocka_unit_test(test_bad_syntax),
		cmocka_unit_test(test_write_roundtrip),
		cmocka_unit_test(test_roundtrip_trailing_cr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
