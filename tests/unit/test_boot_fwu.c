/* Unit tests of the fwu boot backend on metadata files: the install / trial /
 * accept / reject transitions, "only the booted bank is accepted", reads that
 * never write, FWU_INFO trial budgets per TF-A variant and rollback detection. */
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

#include "abota/boot_fwu.h"
#include "abota/fileio.h"
#include "abota/fwu_store.h"

static char dir[] = "/tmp/abota-bootfwu-XXXXXX";
static char m1[300], m2[300], info[300], cmdline[300];

static void put(const char *path, const void *data, size_t len)
{
	assert_int_equal(fileio_write_atomic(path, data, len, 0644, NULL), 0);
}

static void set_info(uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	put(info, b, 4);
}

static void set_cmdline(const char *s)
{
	put(cmdline, s, strlen(s));
}

static void write_md(unsigned a, unsigned p, uint8_t s0, uint8_t s1)
{
	struct fwu_metadata md;
	assert_int_equal(fwu_md_init(&md, 2, 2, 1, NULL), 0);
	md.active_index = a;
	md.previous_active_index = p;
	md.bank_state[0] = s0;
	md.bank_state[1] = s1;
	md.img[0].type_guid = GUID_ST_FIP_TYPE;
	md.img[0].location_guid = GUID_FWU_METADATA_TYPE;
	md.img[0].bank[0].img_guid = GUID_ST_FIP_A_UUID;
	md.img[0].bank[1].img_guid = GUID_ST_FIP_B_UUID;
	for (unsigned b = 0; b < 2; b++)
		md.img[0].bank[b].accepted = md.bank_state[b] == FWU_BANK_ACCEPTED;
	const char *paths[2] = { m1, m2 };
	struct fwu_store *st = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(fwu_store_open_files(paths, 2, NULL, true, &st, &err), 0);
	if (fwu_store_write(st, &md, &err) < 0)
		fail_msg("%s", err.msg);
	fwu_store_free(st);
}

static void read_md(struct fwu_metadata *md)
{
	const char *paths[2] = { m1, m2 };
	struct fwu_store *st = NULL;
	assert_int_equal(fwu_store_open_files(paths, 2, NULL, false, &st, NULL), 0);
	struct fwu_store_state *s = malloc(sizeof(*s));
	assert_int_equal(fwu_store_read(st, s, NULL), 0);
	assert_int_equal(s->winner, 0);
	assert_false(s->needs_repair); /* both copies written identically */
	*md = s->copy[0].md;
	free(s);
	fwu_store_free(st);
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(m1, sizeof(m1), "%s/metadata1", dir);
	snprintf(m2, sizeof(m2), "%s/metadata2", dir);
	snprintf(info, sizeof(info), "%s/fwu_info", dir);
	snprintf(cmdline, sizeof(cmdline), "%s/cmdline", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

struct env {
	struct system_config *cfg;
	struct boot_backend *b;
	struct slot *a, *bb;
};

static void env_open(struct env *e, const char *extra)
{
	char text[2048];
	snprintf(text, sizeof(text),
		 "[system]\ncompatible=c\nbootloader=fwu\ncmdline-file=%s\n"
		 "[fwu]\nmetadata1=%s\nmetadata2=%s\nfwu-info=%s\n%s"
		 "[slot.rootfs.0]\ndevice=/dev/null\nbootname=A\n"
		 "[slot.rootfs.1]\ndevice=/dev/null\nbootname=B\n",
		 cmdline, m1, m2, info, extra);
	struct abota_error err = { 0 };
	memset(e, 0, sizeof(*e));
	if (config_parse(text, strlen(text), "system.conf", dir, NULL, &e->cfg, &err) < 0)
		fail_msg("config: %s", err.msg);
	if (boot_backend_open(e->cfg, &e->b, &err) < 0)
		fail_msg("open: %s", err.msg);
	char *id = NULL;
	struct slot *booted = NULL;
	if (boot_backend_determine_states(e->b, e->cfg, NULL, NULL, NULL, &id, &booted, &err) < 0)
		fail_msg("states: %s", err.msg);
	free(id);
	e->a = slot_find(e->cfg, "rootfs.0");
	e->bb = slot_find(e->cfg, "rootfs.1");
}

static void env_close(struct env *e)
{
	boot_backend_close(e->b);
	config_free(e->cfg);
}

static void test_install_trial_accept(void **state)
{
	(void)state;
	struct env e;
	struct fwu_metadata md;
	struct abota_error err = { 0 };
	struct slot *primary = NULL;
	bool good;
	write_md(0, 1, FWU_BANK_ACCEPTED, FWU_BANK_ACCEPTED);
	set_info(0x40);
	set_cmdline("root=PARTUUID=x rauc.slot=A");
	env_open(&e, "");
	assert_string_equal(boot_backend_name(e.b), "fwu");
	assert_true(boot_backend_is_atomic(e.b));
	assert_int_equal(boot_backend_get_primary(e.b, &primary, &err), 0);
	assert_ptr_equal(primary, e.a);

	/* install: target INVALID while written */
	assert_int_equal(boot_backend_set_state(e.b, e.bb, false, &err), 0);
	read_md(&md);
	assert_int_equal(md.bank_state[1], FWU_BANK_INVALID);
	assert_int_equal(md.img[0].bank[1].accepted, 0);
	assert_int_equal(md.active_index, 0);
	assert_int_equal(boot_backend_get_state(e.b, e.bb, &good, &err), 0);
	assert_false(good);
	/* then the trial switch */
	assert_int_equal(boot_backend_set_primary(e.b, e.bb, &err), 0);
	read_md(&md);
	assert_int_equal(md.active_index, 1);
	assert_int_equal(md.previous_active_index, 0);
	assert_int_equal(md.bank_state[0], FWU_BANK_ACCEPTED);
	assert_int_equal(md.bank_state[1], FWU_BANK_VALID);
	/* B cannot be accepted before it booted */
	assert_int_equal(boot_backend_accept(e.b, e.bb, &err), -EPERM);
	assert_non_null(strstr(err.msg, "only the booted bank"));
	env_close(&e);

	/* BL2 booted B (trial): accept keeps A's state */
	set_info(0x31);
	set_cmdline("root=PARTUUID=y rauc.slot=B");
	env_open(&e, "");
	unsigned left, max;
	assert_int_equal(boot_fwu_trial_budget(e.b, &left, &max, &err), 0);
	assert_int_equal(left, 2);
	assert_int_equal(max, 3);
	assert_int_equal(boot_backend_accept(e.b, e.bb, &err), 0);
	read_md(&md);
	assert_int_equal(md.active_index, 1);
	assert_int_equal(md.previous_active_index, 0);
	assert_int_equal(md.bank_state[0], FWU_BANK_ACCEPTED);
	assert_int_equal(md.bank_state[1], FWU_BANK_ACCEPTED);
	env_close(&e);
}

static void test_accept_keeps_invalid_other(void **state)
{
	(void)state;
	struct env e;
	struct fwu_metadata md;
	struct abota_error err = { 0 };
	write_md(0, 1, FWU_BANK_ACCEPTED, FWU_BANK_INVALID);
	set_info(0x40);
	set_cmdline("rauc.slot=A");
	env_open(&e, "");
	assert_int_equal(boot_backend_accept(e.b, e.a, &err), 0);
	read_md(&md);
	assert_int_equal(md.bank_state[1], FWU_BANK_INVALID); /* never ST's blind A,A */
	/* FWU_INFO and the command line must agree */
	env_close(&e);
	set_info(0x41);
	env_open(&e, "");
	assert_int_equal(boot_backend_accept(e.b, e.a, &err), -EIO);
	assert_non_null(strstr(err.msg, "FWU_INFO"));
	env_close(&e);
}

static void test_reject_trial(void **state)
{
	(void)state;
	struct env e;
	struct fwu_metadata md;
	struct abota_error err = { 0 };
	struct boot_fwu_status s;
	write_md(1, 0, FWU_BANK_ACCEPTED, FWU_BANK_VALID);
	set_info(0x31);
	set_cmdline("rauc.slot=B");
	env_open(&e, "");
	assert_int_equal(boot_fwu_get_status(e.b, &s, &err), 0);
	assert_false(s.rolled_back);
	assert_int_equal(s.booted_bank, 1);
	assert_int_equal(boot_backend_reject(e.b, e.bb, &err), 0);
	read_md(&md);
	assert_int_equal(md.active_index, 0);
	assert_int_equal(md.previous_active_index, 1);
	assert_int_equal(md.bank_state[1], FWU_BANK_INVALID);
	assert_int_equal(boot_fwu_get_status(e.b, &s, &err), 0);
	assert_true(s.rolled_back); /* booted B, A active: not rebooted yet */
	assert_int_equal(s.failed_bank, 0);
	env_close(&e);
	/* after the reboot into A: B is the rejected bank */
	set_info(0x40);
	set_cmdline("rauc.slot=A");
	env_open(&e, "");
	assert_int_equal(boot_fwu_get_status(e.b, &s, &err), 0);
	assert_true(s.rolled_back);
	assert_int_equal(s.failed_bank, 1);
	/* A cannot be rejected: B is no fallback */
	assert_int_equal(boot_backend_reject(e.b, e.a, &err), -EINVAL);
	env_close(&e);
}

static void test_fallback_detected(void **state)
{
	(void)state;
	struct env e;
	struct abota_error err = { 0 };
	struct boot_fwu_status s;
	/* ST U-Boot's rewrite after a BL2 fallback: B stays VALID */
	write_md(0, 1, FWU_BANK_ACCEPTED, FWU_BANK_VALID);
	set_info(0x10);
	set_cmdline("rauc.slot=A");
	env_open(&e, "");
	assert_int_equal(boot_fwu_get_status(e.b, &s, &err), 0);
	assert_true(s.rolled_back);
	assert_int_equal(s.failed_bank, 1);
	assert_non_null(strstr(s.rollback_reason, "abandoned trial"));
	assert_int_equal(s.trial_left, 0); /* r3, counter 1 */
	env_close(&e);
	/* BL2 fell back, U-Boot did not rewrite: booted A, B active */
	write_md(1, 0, FWU_BANK_ACCEPTED, FWU_BANK_VALID);
	env_open(&e, "");
	assert_int_equal(boot_fwu_get_status(e.b, &s, &err), 0);
	assert_true(s.rolled_back);
	assert_int_equal(s.failed_bank, 1);
	assert_non_null(strstr(s.rollback_reason, "fell back"));
	env_close(&e);
}

static void test_reads_never_write(void **state)
{
	(void)state;
	struct env e;
	struct abota_error err = { 0 };
	write_md(1, 0, FWU_BANK_ACCEPTED, FWU_BANK_VALID);
	/* make the secondary stale: a read must not repair it */
	put(m2, "garbage", 7);
	set_info(0x31);
	set_cmdline("rauc.slot=B");
	env_open(&e, "");
	struct slot *p = NULL;
	bool good;
	struct boot_fwu_status s;
	char *bn = NULL;
	assert_int_equal(boot_backend_get_primary(e.b, &p, &err), 0);
	assert_ptr_equal(p, e.bb);
	assert_int_equal(boot_backend_get_state(e.b, e.bb, &good, &err), 0);
	assert_true(good);
	assert_int_equal(boot_fwu_get_status(e.b, &s, &err), 0);
	assert_true(s.needs_repair);
	assert_int_equal(boot_backend_get_booted(e.b, &bn, &err), 0);
	assert_string_equal(bn, "B");
	free(bn);
	char *data = NULL;
	size_t len = 0;
	assert_int_equal(fileio_read_all(m2, 4096, &data, &len, NULL), 0);
	assert_int_equal(len, 7);
	free(data);
	env_close(&e);
}

static void test_budget(void **state)
{
	(void)state;
	struct env e;
	struct abota_error err = { 0 };
	unsigned left, max;
	write_md(0, 1, FWU_BANK_ACCEPTED, FWU_BANK_ACCEPTED);
	set_cmdline("rauc.slot=A");
	/* r3: 4 after a plain boot -> 3 trials; 0 = empty register, re-armed */
	static const struct {
		const char *tfa;
		uint32_t info;
		unsigned left;
	} cases[] = {
		{ "", 0x40, 3 },         { "", 0x20, 1 },         { "", 0x10, 0 },
		{ "", 0x00, 4 },         { "tfa=upstream\n", 0x30, 3 },
		{ "tfa=upstream\n", 0x00, 0 }, { "tfa=upstream\n", 0x10, 1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		set_info(cases[i].info);
		env_open(&e, cases[i].tfa);
		assert_int_equal(boot_fwu_trial_budget(e.b, &left, &max, &err), 0);
		assert_int_equal(left, cases[i].left);
		assert_int_equal(max, 3);
		env_close(&e);
	}
	/* the installer's gate */
	set_info(0x20); /* r3: one trial boot left */
	env_open(&e, "min-trial-boots=2\n");
	assert_int_equal(boot_fwu_check_budget(e.b, false, &err), -EAGAIN);
	assert_non_null(strstr(err.msg, "--force"));
	assert_int_equal(boot_fwu_check_budget(e.b, true, &err), 0);
	env_close(&e);
	env_open(&e, "");
	assert_int_equal(boot_fwu_check_budget(e.b, false, &err), 0); /* default min 1 */
	env_close(&e);
	set_info(0x10);
	env_open(&e, "");
	assert_int_equal(boot_fwu_check_budget(e.b, false, &err), -EAGAIN);
	env_close(&e);
}

static void test_reinstall_pending_target(void **state)
{
	(void)state;
	struct env e;
	struct fwu_metadata md;
	struct abota_error err = { 0 };
	/* B activated by an install, never booted; a new install targets B:
	 * marking it bad gives the activation up (back to A) */
	write_md(1, 0, FWU_BANK_ACCEPTED, FWU_BANK_VALID);
	set_info(0x40);
	set_cmdline("rauc.slot=A");
	env_open(&e, "");
	assert_int_equal(boot_backend_set_state(e.b, e.bb, false, &err), 0);
	read_md(&md);
	assert_int_equal(md.active_index, 0);
	assert_int_equal(md.bank_state[1], FWU_BANK_INVALID);
	assert_int_equal(boot_backend_set_primary(e.b, e.bb, &err), 0);
	read_md(&md);
	assert_int_equal(md.active_index, 1);
	assert_int_equal(md.bank_state[1], FWU_BANK_VALID);
	env_close(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_install_trial_accept),
		cmocka_unit_test(test_accept_keeps_invalid_other),
		cmocka_unit_test(test_reject_trial),
		cmocka_unit_test(test_fallback_detected),
		cmocka_unit_test(test_reads_never_write),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_reinstall_pending_target),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
