/* mark.c: target resolution (booted/other/SLOT) and what each state does to
 * a real custom bootloader backend (a shell script keeping state in files). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abota/mark.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/abota-test-mark-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char script[160];
	snprintf(script, sizeof(script), "%s/backend.sh", dir);
	FILE *f = fopen(script, "w");
	if (!f)
		return -1;
	fprintf(f, "#!/bin/sh\nd=%s\necho \"$@\" >> $d/calls\n"
		   "case \"$1\" in\n"
		   "get-primary) cat $d/primary 2>/dev/null || echo A;;\n"
		   "set-primary) echo $2 > $d/primary;;\n"
		   "get-state) cat $d/$2.state 2>/dev/null || echo good;;\n"
		   "set-state) echo $3 > $d/$2.state;;\n"
		   "get-current) echo A;;\n"
		   "*) exit 1;;\nesac\n",
		dir);
	fclose(f);
	return chmod(script, 0755);
}

static int teardown(void **state)
{
	(void)state;
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

struct dev {
	struct system_config *cfg;
	struct boot_backend *boot;
	struct slot_status_store *store;
	char *booted_id;
	struct slot *booted;
};

/* Three root slots of class rootfs (A/B/C) and a child of rootfs.0. */
static void dev_open(struct dev *d, const char *sysextra)
{
	char text[2048];
	snprintf(text, sizeof(text),
		 "[system]\ncompatible=c\nbootloader=custom\ndata-directory=%s/data\n%s\n"
		 "[handlers]\nbootloader-custom-backend=%s/backend.sh\n"
		 "[slot.rootfs.0]\ndevice=/dev/a\nbootname=A\n"
		 "[slot.rootfs.1]\ndevice=/dev/b\nbootname=B\n"
		 "[slot.rootfs.2]\ndevice=/dev/c\nbootname=C\n"
		 "[slot.boot.0]\ndevice=/dev/d\nparent=rootfs.0\n",
		 dir, sysextra, dir);
	struct abota_error err = { 0 };
	memset(d, 0, sizeof(*d));
	if (config_parse(text, strlen(text), "t.conf", dir, NULL, &d->cfg, &err) < 0 ||
	    boot_backend_open(d->cfg, &d->boot, &err) < 0 ||
	    boot_backend_determine_states(d->boot, d->cfg, "A", NULL, NULL, &d->booted_id,
					  &d->booted, &err) < 0 ||
	    slot_status_load(d->cfg->statusfile, &d->store, &err) < 0)
		fail_msg("%s", err.msg);
}

static void dev_close(struct dev *d)
{
	boot_backend_close(d->boot);
	slot_status_store_free(d->store);
	free(d->booted_id);
	config_free(d->cfg);
}

static char *slurp(const char *name)
{
	static char buf[4096];
	char p[200];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "r");
	if (!f)
		return NULL;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static void test_parse_state(void **state)
{
	(void)state;
	enum mark_state s = MARK_BAD;
	struct abota_error err = { 0 };
	assert_int_equal(mark_parse_state("good", &s, &err), 0);
	assert_int_equal(s, MARK_GOOD);
	assert_int_equal(mark_parse_state("active", &s, &err), 0);
	assert_int_equal(s, MARK_ACTIVE);
	assert_int_equal(mark_parse_state("Good", &s, &err), -EINVAL);
	assert_int_equal(s, MARK_ACTIVE); /* untouched on failure */
	assert_non_null(strstr(err.msg, "unknown state 'Good'"));
}

static void test_targets(void **state)
{
	(void)state;
	struct dev d;
	dev_open(&d, "");
	const struct slot *out[8];
	size_t n = 0;
	struct abota_error err = { 0 };
	assert_int_equal(mark_targets(d.cfg, d.booted, d.booted_id, "booted", false, out, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(out[0]->name, "rootfs.0");
	/* other: B and C; ambiguous unless many are allowed (mark-bad) */
	assert_int_equal(mark_targets(d.cfg, d.booted, d.booted_id, "other", false, out, &n, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "'other' is ambiguous: 2 other slots"));
	assert_int_equal(mark_targets(d.cfg, d.booted, d.booted_id, "other", true, out, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(out[0]->name, "rootfs.1");
	assert_string_equal(out[1]->name, "rootfs.2");
	assert_int_equal(mark_targets(d.cfg, d.booted, d.booted_id, "boot.0", false, out, &n, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "slot boot.0 has no bootname"));
	assert_int_equal(mark_targets(d.cfg, d.booted, d.booted_id, "nope.7", false, out, &n, &err),
			 -ENOENT);
	assert_non_null(strstr(err.msg, "no slot named 'nope.7'"));
	assert_int_equal(mark_targets(d.cfg, NULL, "external", "booted", false, out, &n, &err),
			 -ENOENT);
	assert_non_null(strstr(err.msg, "external boot 'external'"));
	dev_close(&d);
}

static void test_apply(void **state)
{
	(void)state;
	struct dev d;
	dev_open(&d, "");
	struct mark_result r = { 0 };
	struct abota_error err = { 0 };
	assert_int_equal(mark_apply(d.cfg, d.boot, d.store, d.booted, d.booted_id, MARK_BAD, "other",
				    &r, &err), 0);
	assert_int_equal(r.n_marked, 2);
	assert_string_equal(r.message, "marked slot(s) rootfs.1, rootfs.2 as bad");
	assert_string_equal(slurp("B.state"), "bad\n");
	assert_string_equal(slurp("C.state"), "bad\n");
	mark_result_free(&r);

	assert_int_equal(mark_apply(d.cfg, d.boot, d.store, d.booted, d.booted_id, MARK_ACTIVE,
				    "rootfs.1", &r, &err), 0);
	assert_string_equal(r.message, "activated slot rootfs.1");
	assert_string_equal(slurp("primary"), "B\n");
	/* activated.* recorded in the central status file */
	const char *st = slurp("data/central.raucs");
	assert_non_null(st);
	assert_non_null(strstr(st, "[slot.rootfs.1]"));
	assert_non_null(strstr(st, "activated.count=1"));
	mark_result_free(&r);

	/* failure leaves the result empty and the backend alone */
	unlink(strcat(strcpy((char[200]){ 0 }, dir), "/calls"));
	assert_int_equal(mark_apply(d.cfg, d.boot, d.store, d.booted, d.booted_id, MARK_GOOD,
				    "other", &r, &err), -EINVAL);
	assert_null(r.marked);
	assert_null(slurp("calls"));
	dev_close(&d);
}

static void test_prevent_late_fallback(void **state)
{
	(void)state;
	struct dev d;
	dev_open(&d, "prevent-late-fallback=true");
	struct mark_result r = { 0 };
	struct abota_error err = { 0 };
	assert_int_equal(mark_apply(d.cfg, d.boot, d.store, d.booted, d.booted_id, MARK_GOOD,
				    "booted", &r, &err), 0);
	assert_string_equal(r.message, "marked slot(s) rootfs.0 as good");
	assert_int_equal(r.n_late_bad, 2);
	assert_string_equal(slurp("A.state"), "good\n");
	assert_string_equal(slurp("B.state"), "bad\n");
	mark_result_free(&r);
	/* without it, good booted touches only A */
	dev_close(&d);
	dev_open(&d, "");
	unlink(strcat(strcpy((char[200]){ 0 }, dir), "/B.state"));
	assert_int_equal(mark_apply(d.cfg, d.boot, d.store, d.booted, d.booted_id, MARK_GOOD,
				    "booted", &r, &err), 0);
	assert_int_equal(r.n_late_bad, 0);
	assert_null(slurp("B.state"));
	mark_result_free(&r);
	dev_close(&d);
}

/* SC-101: accepting the booted slot raises the version floor to the version
 * it runs; accepting another slot, a lower or a non-comparable version does
 * not; the floor only rises. */
static void test_version_floor(void **state)
{
	(void)state;
	struct dev d;
	dev_open(&d, "");
	struct mark_result r = { 0 };
	struct abota_error err = { 0 };
	char data[200];
	snprintf(data, sizeof(data), "%s/data", dir);
	assert_int_equal(mkdir(data, 0755), 0);
	struct slot_status *a = slot_status_get(d.store, "rootfs.0");
	struct slot_status *b = slot_status_get(d.store, "rootfs.1");
	assert_int_equal(slot_status_set(&a->bundle_version, "2.1.0"), 0);
	assert_int_equal(slot_status_set(&b->bundle_version, "9.0"), 0);
	/* another slot: not the running software, no floor */
	assert_int_equal(mark_apply(d.cfg, d.boot, d.store, d.booted, d.booted_id, MARK_GOOD,
				    "rootfs.1", &r, &err), 0);
	mark_result_free(&r);
	assert_null(slurp("data/version-floor"));
	assert_int_equal(mark_apply(d.cfg, d.boot, d.store, d.booted, d.booted_id, MARK_GOOD,
				    "booted", &r, &err), 0);
	mark_result_free(&r);
	assert_string_equal(slurp("data/version-floor"), "2.1.0\n");
	/* mark-bad / mark-active never touch it */
	assert_int_equal(mark_apply(d.cfg, d.boot, d.store, d.booted, d.booted_id, MARK_ACTIVE,
				    "rootfs.1", &r, &err), 0);
	mark_result_free(&r);
	assert_string_equal(slurp("data/version-floor"), "2.1.0\n");
	/* lower, then not comparable: unchanged, mark-good still succeeds */
	assert_int_equal(slot_status_set(&a->bundle_version, "2.0.9"), 0);
	assert_int_equal(mark_apply(d.cfg, d.boot, d.store, d.booted, d.booted_id, MARK_GOOD,
				    "booted", &r, &err), 0);
	mark_result_free(&r);
	assert_int_equal(slot_status_set(&a->bundle_version, "nightly build"), 0);
	assert_int_equal(mark_apply(d.cfg, d.boot, d.store, d.booted, d.booted_id, MARK_GOOD,
				    "booted", &r, &err), 0);
	mark_result_free(&r);
	assert_string_equal(slurp("data/version-floor"), "2.1.0\n");
	/* higher: raised */
	assert_int_equal(slot_status_set(&a->bundle_version, "2.2"), 0);
	assert_int_equal(mark_apply(d.cfg, d.boot, d.store, d.booted, d.booted_id, MARK_GOOD,
				    "booted", &r, &err), 0);
	mark_result_free(&r);
	assert_string_equal(slurp("data/version-floor"), "2.2\n");
	/* a damaged floor file: the slot is accepted, the error says so */
	FILE *f = fopen(strcat(strcpy((char[200]){ 0 }, dir), "/data/version-floor"), "w");
	assert_non_null(f);
	fputs("junk junk\n", f);
	fclose(f);
	assert_int_equal(mark_apply(d.cfg, d.boot, d.store, d.booted, d.booted_id, MARK_GOOD,
				    "booted", &r, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "rootfs.0 accepted, but"));
	assert_non_null(strstr(err.msg, "version-floor"));
	assert_string_equal(slurp("A.state"), "good\n");
	dev_close(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_state),
		cmocka_unit_test_setup_teardown(test_targets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prevent_late_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_version_floor, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
