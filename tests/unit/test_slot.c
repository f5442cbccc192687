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

#include "abota/config.h"
#include "abota/slot.h"
#include "abota/slot_status.h"

static const char conf[] = "[system]\ncompatible=c\nbootloader=noop\n"
			   "[slot.rootfs.0]\ndevice=/dev/mmcblk0p5\nbootname=A\n"
			   "[slot.rootfs.1]\ndevice=/dev/mmcblk0p6\nbootname=B\n"
			   "[slot.boot.0]\ndevice=/dev/mmcblk0p1\nparent=rootfs.0\n"
			   "[slot.boot.1]\ndevice=/dev/mmcblk0p2\nparent=rootfs.1\n"
			   "[slot.data.0]\ndevice=/dev/mmcblk0p9\nreadonly=true\n";

static struct system_config *load(void)
{
	struct system_config *cfg = NULL;
	struct abota_error err = { 0 };
	if (config_parse(conf, strlen(conf), "t.conf", "/", NULL, &cfg, &err) < 0)
		fail_msg("%s", err.msg);
	return cfg;
}

/* Fake /dev/disk/by-* lookup: PARTUUID=1234 -> /dev/mmcblk0p6. */
static int fake_resolve(void *ctx, const char *spec, char **out)
{
	(*(int *)ctx)++;
	if (!strcmp(spec, "PARTUUID=1234") || !strcmp(spec, "UUID=fs-b"))
		*out = strdup("/dev/mmcblk0p6");
	else
		*out = strdup(spec);
	return *out ? 0 : -ENOMEM;
}

static void test_cmdline_parse(void **state)
{
	(void)state;
	struct slot_cmdline c;
	assert_int_equal(slot_cmdline_parse("console=ttyS0 root=/dev/sda1 rauc.slot=B quiet\n", &c,
					    NULL),
			 0);
	assert_string_equal(c.rauc_slot, "B");
	assert_string_equal(c.root, "/dev/sda1");
	assert_false(c.external);
	slot_cmdline_clear(&c);
	assert_int_equal(slot_cmdline_parse("root=/dev/dm-0 systemd.verity_root_data=PARTUUID=1234",
					    &c, NULL),
			 0);
	assert_string_equal(c.root, "PARTUUID=1234");
	assert_null(c.rauc_slot);
	slot_cmdline_clear(&c);
	assert_int_equal(slot_cmdline_parse("root=/dev/nfs nfsroot=x", &c, NULL), 0);
	assert_true(c.external);
	slot_cmdline_clear(&c);
	assert_int_equal(slot_cmdline_parse("rauc.external rauc.slot=A", &c, NULL), 0);
	assert_true(c.external);
	slot_cmdline_clear(&c);
	/* not a prefix match */
	assert_int_equal(slot_cmdline_parse("myroot=/dev/x rauc.slotx=1 rauc.externalfoo", &c, NULL),
			 0);
	assert_null(c.root);
	assert_false(c.external);
	slot_cmdline_clear(&c);
}

static void test_states(void **state)
{
	(void)state;
	struct system_config *cfg = load();
	char *id = NULL;
	struct slot *booted = NULL;
	int calls = 0;
	struct abota_error err = { 0 };
	/* rauc.slot= with bootname */
	assert_int_equal(slot_determine_states(cfg, NULL, "root=/dev/x rauc.slot=A", NULL,
					       fake_resolve, &calls, &id, &booted, &err),
			 0);
	assert_string_equal(id, "A");
	assert_ptr_equal(booted, slot_find(cfg, "rootfs.0"));
	assert_int_equal(slot_find(cfg, "boot.0")->state, SLOT_STATE_ACTIVE);
	assert_int_equal(slot_find(cfg, "rootfs.1")->state, SLOT_STATE_INACTIVE);
	assert_int_equal(slot_find(cfg, "boot.1")->state, SLOT_STATE_INACTIVE);
	assert_ptr_equal(slot_get_booted(cfg), booted);
	free(id);
	/* root=PARTUUID= through the resolver, matched by device */
	assert_int_equal(slot_determine_states(cfg, NULL, "root=PARTUUID=1234", NULL, fake_resolve,
					       &calls, &id, &booted, &err),
			 0);
	assert_string_equal(booted->name, "rootfs.1");
	assert_string_equal(id, "PARTUUID=1234");
	assert_true(calls > 0);
	free(id);
	/* slot name; backend current is used before root= */
	assert_int_equal(slot_determine_states(cfg, NULL, "root=PARTUUID=1234", "rootfs.0",
					       fake_resolve, &calls, &id, &booted, &err),
			 0);
	assert_string_equal(booted->name, "rootfs.0");
	free(id);
	/* override wins */
	assert_int_equal(slot_determine_states(cfg, "B", "rauc.slot=A", NULL, fake_resolve, &calls,
					       &id, &booted, &err),
			 0);
	assert_string_equal(booted->name, "rootfs.1");
	free(id);
	/* external: nothing booted */
	assert_int_equal(slot_determine_states(cfg, NULL, "rauc.external", NULL, fake_resolve,
					       &calls, &id, &booted, &err),
			 0);
	assert_null(booted);
	assert_string_equal(id, "_external_");
	assert_int_equal(slot_find(cfg, "rootfs.0")->state, SLOT_STATE_INACTIVE);
	free(id);
	/* no match: error naming the id, out-params untouched */
	id = (char *)"keep";
	assert_int_equal(slot_determine_states(cfg, NULL, "rauc.slot=Z", NULL, fake_resolve, &calls,
					       &id, &booted, &err),
			 -ENOENT);
	assert_string_equal(id, "keep");
	assert_non_null(strstr(err.msg, "'Z'"));
	assert_int_equal(slot_determine_states(cfg, NULL, "quiet", NULL, fake_resolve, &calls, &id,
					       &booted, &err),
			 -ENOENT);
	config_free(cfg);
}

static void test_target_group(void **state)
{
	(void)state;
	struct system_config *cfg = load();
	struct slot **g = NULL;
	size_t n = 0;
	assert_int_equal(slot_determine_states(cfg, "A", NULL, NULL, NULL, NULL, NULL, NULL, NULL),
			 0);
	/* rootfs.1 + boot.1; data.0 is the only slot of its class and readonly */
	assert_int_equal(slot_target_group(cfg, NULL, NULL, &g, &n, NULL), -ENOENT);
	config_free(cfg);

	const char *c2 = "[system]\ncompatible=c\nbootloader=noop\n"
			 "[slot.rootfs.0]\ndevice=/a\nbootname=A\n"
			 "[slot.rootfs.1]\ndevice=/b\nbootname=B\n"
			 "[slot.rootfs.2]\ndevice=/c\nbootname=C\n"
			 "[slot.boot.1]\ndevice=/d\nparent=rootfs.1\n"
			 "[slot.boot.2]\ndevice=/e\nparent=rootfs.2\n";
	assert_int_equal(config_parse(c2, strlen(c2), "t", "/", NULL, &cfg, NULL), 0);
	assert_int_equal(slot_determine_states(cfg, "A", NULL, NULL, NULL, NULL, NULL, NULL, NULL),
			 0);
	assert_int_equal(slot_target_group(cfg, NULL, NULL, &g, &n, NULL), 0);
	assert_int_equal(n, 2);
	assert_string_equal(g[0]->name, "rootfs.1");
	assert_string_equal(g[1]->name, "boot.1");
	free(g);
	/* A/B/C: the status file prefers a never-installed or older slot */
	struct slot_status_store *st = NULL;
	assert_int_equal(slot_status_load("/nonexistent/central.raucs", &st, NULL), 0);
	struct slot_status *s1 = slot_status_get(st, "rootfs.1");
	assert_int_equal(slot_status_set(&s1->installed_timestamp, "2026-01-02T00:00:00Z"), 0);
	assert_int_equal(slot_target_group(cfg, slot_status_rank, st, &g, &n, NULL), 0);
	assert_string_equal(g[0]->name, "rootfs.2");
	assert_string_equal(g[1]->name, "boot.2");
	free(g);
	struct slot_status *s2 = slot_status_get(st, "rootfs.2");
	assert_int_equal(slot_status_set(&s2->installed_timestamp, "2026-01-03T00:00:00Z"), 0);
	assert_int_equal(slot_target_group(cfg, slot_status_rank, st, &g, &n, NULL), 0);
	assert_string_equal(g[0]->name, "rootfs.1"); /* oldest */
	free(g);
	assert_int_equal(slot_status_set(&s2->status, "failed"), 0);
	assert_int_equal(slot_target_group(cfg, slot_status_rank, st, &g, &n, NULL), 0);
	assert_string_equal(g[0]->name, "rootfs.2"); /* failed first */
	free(g);
	slot_status_store_free(st);
	config_free(cfg);
}

static void test_realpath_match(void **state)
{
	(void)state;
	char dir[] = "/tmp/abota-test-slot-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char dev[300], link[300], text[1024];
	snprintf(dev, sizeof(dev), "%s/disk-b", dir);
	snprintf(link, sizeof(link), "%s/by-label-b", dir);
	FILE *f = fopen(dev, "w");
	fclose(f);
	assert_int_equal(symlink(dev, link), 0);
	snprintf(text, sizeof(text),
		 "[system]\ncompatible=c\nbootloader=noop\n[slot.r.0]\ndevice=/x\nbootname=A\n"
		 "[slot.r.1]\ndevice=%s\nbootname=B\n",
		 link);
	struct system_config *cfg = NULL;
	assert_int_equal(config_parse(text, strlen(text), "t", "/", NULL, &cfg, NULL), 0);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "root=%s", dev);
	struct slot *b = NULL;
	assert_int_equal(slot_determine_states(cfg, NULL, cmd, NULL, NULL, NULL, NULL, &b, NULL), 0);
	assert_string_equal(b->name, "r.1");
	config_free(cfg);
	unlink(link);
	unlink(dev);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmdline_parse),
		cmocka_unit_test(test_states),
		cmocka_unit_test(test_target_group),
		cmocka_unit_test(test_realpath_match),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
