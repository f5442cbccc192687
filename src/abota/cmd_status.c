/* cmd_status.c - `abota status` and `abota status mark-good|mark-bad|mark-active`.
 *
 * Output formats and field names follow `rauc status` (specs/rauc-compat.md
 * §4.3, checked against RAUC 1.8): JSON `slots` is an array of one-key
 * objects, shell variables are RAUC_*, readable output has the three
 * "=== ... ===" sections.  Slots are listed in system.conf order.
 */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "abota/system_info.h"
#include "abota/boot_backend.h"
#include "abota/boot_fwu.h"
#include "abota/config.h"
#include "abota/install_journal.h"
#include "abota/log.h"
#include "abota/mark.h"
#include "abota/slot.h"
#include "abota/slot_status.h"
#include "cli.h"

struct status_ctx {
	struct system_config *cfg;
	struct boot_backend *boot; /* NULL when the bootloader is not supported */
	struct slot_status_store *store; /* NULL without a central status file */
	char *booted_id;
	struct slot *booted;
	struct install_journal *journal; /* an interrupted install, or NULL */
	struct system_info *sysinfo;     /* plain status only (a broken system-info
					    handler must not block marking) */
};

static const char *variant_of(const struct status_ctx *c)
{
	return c->sysinfo && c->sysinfo->variant ? c->sysinfo->variant : "";
}

static void ctx_free(struct status_ctx *c)
{
	boot_backend_close(c->boot);
	install_journal_free(c->journal);
	slot_status_store_free(c->store);
	free(c->booted_id);
	system_info_free(c->sysinfo);
	config_free(c->cfg);
}

/* Loads config, backend, slot states and status file.  need_backend: the
 * mark verbs cannot work without one, plain status degrades to "unknown". */
static int ctx_open(struct cli_globals *g, bool need_backend, struct status_ctx *c,
		    struct abota_error *err)
{
	int ret;
	memset(c, 0, sizeof(*c));
	if ((ret = config_load_with_overrides(g->conf, g->confopt, &c->cfg, err)) < 0)
		return ret;
	if (!need_backend && (ret = system_info_load(c->cfg, NULL, &c->sysinfo, err)) < 0)
		return ret;
	struct abota_error e = { 0 };
	if ((ret = boot_backend_open(c->cfg, &c->boot, &e)) < 0) {
		if (need_backend) {
			*err = e;
			return ret;
		}
		log_warning("%s (boot status unknown)", e.msg);
		c->boot = NULL;
	}
	ret = boot_backend_determine_states(c->boot, c->cfg, g->override_boot_slot, NULL, NULL,
					    &c->booted_id, &c->booted, err);
	if (ret < 0)
		return ret;
	if (c->cfg->statusfile &&
	    (ret = slot_status_load(c->cfg->statusfile, &c->store, err)) < 0)
		return ret;
	/* An interrupted install leaves its resume journal behind; a broken
	 * one only means the next install starts over. */
	if (c->cfg->data_directory) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", c->cfg->data_directory, INSTALL_JOURNAL_NAME);
		struct abota_error je = { 0 };
		int jr = install_journal_load(path, &c->journal, &je);
		if (jr < 0 && jr != -ENOENT)
			log_warning("%s (an install will start over)", je.msg);
	}
	return 0;
}

static unsigned journal_percent(const struct install_journal *j, uint64_t *v, uint64_t *t)
{
	install_journal_totals(j, v, t);
	return *t ? (unsigned)(*v * 100 / *t) : 0;
}

static json_object *journal_json(const struct install_journal *j)
{
	uint64_t v, t;
	unsigned pct = journal_percent(j, &v, &t);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "bundle", json_object_new_string(j->bundle));
	json_object_object_add(o, "manifest_hash", json_object_new_string(j->bundle_hash));
	json_object_object_add(o, "version",
			       j->bundle_version ? json_object_new_string(j->bundle_version) : NULL);
	json_object_object_add(o, "target", json_object_new_string(j->target));
	json_object_object_add(o, "transaction", json_object_new_string(j->transaction));
	json_object_object_add(o, "started", json_object_new_string(j->started));
	json_object_object_add(o, "verified_bytes", json_object_new_int64((int64_t)v));
	json_object_object_add(o, "total_bytes", json_object_new_int64((int64_t)t));
	json_object_object_add(o, "percent", json_object_new_int((int)pct));
	json_object *slots = json_object_new_object();
	for (size_t i = 0; i < j->n_slots; i++) {
		json_object *so = json_object_new_object();
		json_object_object_add(so, "image", json_object_new_string(j->slots[i].image));
		json_object_object_add(so, "verified_bytes",
				       json_object_new_int64((int64_t)j->slots[i].verified));
		json_object_object_add(so, "size", json_object_new_int64((int64_t)j->slots[i].size));
		json_object_object_add(slots, j->slots[i].name, so);
	}
	json_object_object_add(o, "slots", slots);
	return o;
}

static void journal_readable(const struct install_journal *j)
{
	uint64_t v, t;
	unsigned pct = journal_percent(j, &v, &t);
	printf("\n=== Interrupted install ===\n");
	printf("Bundle:      %s%s%s%s\n", j->bundle, j->bundle_version ? " (version " : "",
	       j->bundle_version ? j->bundle_version : "", j->bundle_version ? ")" : "");
	printf("Target:      %s, transaction %s, started %s\n", j->target, j->transaction,
	       j->started);
	printf("Progress:    %.1f of %.1f MiB written and verified (%u%%); installing the same "
	       "bundle again resumes it\n",
	       (double)v / 1048576.0, (double)t / 1048576.0, pct);
	for (size_t i = 0; i < j->n_slots; i++)
		printf("  %s (%s): %llu of %llu bytes\n", j->slots[i].name, j->slots[i].image,
		       (unsigned long long)j->slots[i].verified,
		       (unsigned long long)j->slots[i].size);
}

/* "good" | "bad" | "unknown", NULL for slots without a bootname. */
static const char *boot_status(struct status_ctx *c, const struct slot *s)
{
	if (!s->bootname)
		return NULL;
	bool good;
	struct abota_error e = { 0 };
	if (!c->boot || boot_backend_get_state(c->boot, s, &good, &e) < 0) {
		if (e.msg[0])
			log_warning("%s", e.msg);
		return "unknown";
	}
	return good ? "good" : "bad";
}

static struct slot *boot_primary(struct status_ctx *c)
{
	struct slot *p = NULL;
	struct abota_error e = { 0 };
	if (c->boot && boot_backend_get_primary(c->boot, &p, &e) < 0) {
		log_warning("%s", e.msg);
		p = NULL;
	}
	return p;
}

static json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static json_object *slot_status_json(const struct slot_status *st)
{
	json_object *o = json_object_new_object();
	json_object *b = json_object_new_object();
	/* the same shape RAUC emits: bundle.compatible always, the rest when set */
	json_object_object_add(b, "compatible", jstr(st ? st->bundle_compatible : NULL));
	if (st && st->bundle_version)
		json_object_object_add(b, "version", jstr(st->bundle_version));
	if (st && st->bundle_description)
		json_object_object_add(b, "description", jstr(st->bundle_description));
	if (st && st->bundle_build)
		json_object_object_add(b, "build", jstr(st->bundle_build));
	if (st && st->bundle_hash)
		json_object_object_add(b, "hash", jstr(st->bundle_hash));
	json_object_object_add(o, "bundle", b);
	if (!st)
		return o;
	if (st->sha256) {
		json_object *k = json_object_new_object();
		json_object_object_add(k, "sha256", jstr(st->sha256));
		json_object_object_add(k, "size", json_object_new_int64((int64_t)st->size));
		json_object_object_add(o, "checksum", k);
	}
	if (st->installed_timestamp) {
		json_object *k = json_object_new_object();
		json_object_object_add(k, "timestamp", jstr(st->installed_timestamp));
		json_object_object_add(k, "count",
				       json_object_new_int64((int64_t)st->installed_count));
		json_object_object_add(o, "installed", k);
	}
	if (st->activated_timestamp) {
		json_object *k = json_object_new_object();
		json_object_object_add(k, "timestamp", jstr(st->activated_timestamp));
		json_object_object_add(k, "count",
				       json_object_new_int64((int64_t)st->activated_count));
		json_object_object_add(o, "activated", k);
	}
	if (st->status)
		json_object_object_add(o, "status", jstr(st->status));
	return o;
}

static const char *slot_device(const struct slot *s)
{
	return s->device ? s->device : s->partition;
}

/* FWU state (bootloader=fwu): bank states, FWU_INFO, trial budget,
 * rollback.  false when not fwu or unreadable (warned). */
static bool fwu_status(struct status_ctx *c, struct boot_fwu_status *st)
{
	struct abota_error e = { 0 };
	if (!boot_fwu_is(c->boot))
		return false;
	if (boot_fwu_get_status(c->boot, st, &e) < 0) {
		log_warning("%s", e.msg);
		return false;
	}
	return true;
}

static const char *fwu_bank_name(struct status_ctx *c, unsigned bank)
{
	const char *n = boot_fwu_bank_bootname(c->boot, bank);
	return n ? n : "?";
}

static json_object *fwu_json(struct status_ctx *c, const struct boot_fwu_status *st)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "metadata_version", json_object_new_int((int)st->md.version));
	json_object_object_add(o, "active_index", json_object_new_int((int)st->md.active_index));
	json_object_object_add(o, "previous_active_index",
			       json_object_new_int((int)st->md.previous_active_index));
	json_object_object_add(o, "copy_in_effect", jstr(st->copy_in_effect));
	json_object_object_add(o, "needs_repair", json_object_new_boolean(st->needs_repair));
	json_object *banks = json_object_new_array();
	for (unsigned i = 0; i < st->md.num_banks; i++) {
		json_object *b = json_object_new_object();
		json_object_object_add(b, "index", json_object_new_int((int)i));
		json_object_object_add(b, "bootname", jstr(boot_fwu_bank_bootname(c->boot, i)));
		json_object_object_add(b, "state",
				       jstr(fwu_bank_state_name(fwu_md_bank_state(&st->md, i))));
		json_object_array_add(banks, b);
	}
	json_object_object_add(o, "banks", banks);
	json_object_object_add(o, "tfa", jstr(board_tfa_name(st->tfa)));
	if (st->has_fwu_info) {
		json_object *f = json_object_new_object();
		json_object_object_add(f, "raw", json_object_new_int64(st->fwu_info));
		json_object_object_add(f, "boot_index", json_object_new_int((int)st->boot_index));
		json_object_object_add(f, "trial_counter", json_object_new_int((int)st->counter));
		json_object_object_add(o, "fwu_info", f);
		json_object_object_add(o, "trial_boots_left",
				       json_object_new_int((int)st->trial_left));
		json_object_object_add(o, "trial_boots_max", json_object_new_int((int)st->trial_max));
	} else {
		json_object_object_add(o, "fwu_info", NULL);
	}
	json_object_object_add(o, "booted_bank",
			       st->booted_bank >= 0 ? json_object_new_int(st->booted_bank) : NULL);
	json_object_object_add(o, "rollback", json_object_new_boolean(st->rolled_back));
	json_object_object_add(o, "failed_bank",
			       st->failed_bank >= 0 ? json_object_new_int(st->failed_bank) : NULL);
	json_object_object_add(o, "rollback_reason",
			       st->rolled_back ? jstr(st->rollback_reason) : NULL);
	json_object_object_add(o, "reboot_pending", json_object_new_boolean(st->reboot_pending));
	return o;
}

static void fwu_readable(struct status_ctx *c, const struct boot_fwu_status *st)
{
	printf("FWU metadata v%u (%s in effect%s): active %s (%u), previous %s (%u)\n",
	       st->md.version, st->copy_in_effect,
	       st->needs_repair ? "; the other copy is bad or stale" : "",
	       fwu_bank_name(c, st->md.active_index), st->md.active_index,
	       fwu_bank_name(c, st->md.previous_active_index), st->md.previous_active_index);
	for (unsigned i = 0; i < st->md.num_banks; i++) {
		uint8_t s = fwu_md_bank_state(&st->md, i);
		printf("  bank %u (%s): %s%s\n", i, fwu_bank_name(c, i), fwu_bank_state_name(s),
		       s == FWU_BANK_VALID ? " (trial)" : "");
	}
	if (st->has_fwu_info)
		printf("FWU_INFO: 0x%08x (boot index %u, trial counter %u; TF-A %s): a new trial "
		       "gets %u of %u boots\n",
		       st->fwu_info, st->boot_index, st->counter, board_tfa_name(st->tfa),
		       st->trial_left, st->trial_max);
	else
		printf("FWU_INFO: unknown (trial budget unknown)\n");
	if (st->rolled_back)
		printf("Rollback: %s\n", st->rollback_reason);
	if (st->reboot_pending)
		printf("Reboot pending: bank %s (%u) was activated in this boot; the next boot tries "
		       "it\n",
		       fwu_bank_name(c, st->md.active_index), st->md.active_index);
}

static int print_json(struct status_ctx *c, bool detailed, bool pretty)
{
	json_object *root = json_object_new_object();
	const struct system_config *cfg = c->cfg;
	struct slot *primary = boot_primary(c);
	json_object_object_add(root, "compatible", jstr(cfg->compatible));
	json_object_object_add(root, "variant", jstr(variant_of(c)));
	json_object_object_add(root, "booted", jstr(c->booted_id));
	json_object_object_add(root, "boot_primary", jstr(primary ? primary->name : NULL));
	json_object *slots = json_object_new_array();
	for (size_t i = 0; i < cfg->nslots; i++) {
		const struct slot *s = &cfg->slots[i];
		json_object *o = json_object_new_object();
		json_object_object_add(o, "class", jstr(s->sclass));
		json_object_object_add(o, "device", jstr(slot_device(s)));
		json_object_object_add(o, "type", jstr(s->type));
		json_object_object_add(o, "bootname", jstr(s->bootname));
		json_object_object_add(o, "state", jstr(slot_state_name(s->state)));
		json_object_object_add(o, "parent", jstr(s->parent ? s->parent->name : NULL));
		json_object_object_add(o, "mountpoint", jstr(s->mount_point));
		json_object_object_add(o, "boot_status", jstr(boot_status(c, s)));
		if (detailed)
			json_object_object_add(o, "slot_status",
					       slot_status_json(c->store ? slot_status_find(
										   c->store, s->name)
									 : NULL));
		json_object *wrap = json_object_new_object();
		json_object_object_add(wrap, s->name, o);
		json_object_array_add(slots, wrap);
	}
	json_object_object_add(root, "slots", slots);
	/* abota extension (RAUC has no such key): present only with fwu */
	struct boot_fwu_status fst;
	if (fwu_status(c, &fst))
		json_object_object_add(root, "fwu", fwu_json(c, &fst));
	/* abota extension (RAUC has no such key): only after an interrupted
	 * install */
	if (c->journal)
		json_object_object_add(root, "interrupted_install", journal_json(c->journal));
	printf("%s\n", json_object_to_json_string_ext(
			      root, JSON_C_TO_STRING_NOSLASHESCAPE |
					    (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
						    : JSON_C_TO_STRING_PLAIN)));
	json_object_put(root);
	return 0;
}

/* Single-quoted shell value ('\'' for embedded quotes). */
static void shell_var(const char *name, const char *v)
{
	printf("%s='", name);
	for (const char *p = v ? v : ""; *p; p++) {
		if (*p == '\'')
			fputs("'\\''", stdout);
		else
			putchar(*p);
	}
	printf("'\n");
}

static void shell_var_n(const char *name, size_t n, const char *v)
{
	char buf[128];
	snprintf(buf, sizeof(buf), "%s_%zu", name, n);
	shell_var(buf, v);
}

static void shell_var_u(const char *name, size_t n, uint64_t v)
{
	char num[32];
	snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
	shell_var_n(name, n, num);
}

static int print_shell(struct status_ctx *c, bool detailed)
{
	const struct system_config *cfg = c->cfg;
	struct slot *primary = boot_primary(c);
	shell_var("RAUC_SYSTEM_COMPATIBLE", cfg->compatible);
	shell_var("RAUC_SYSTEM_VARIANT", variant_of(c));
	shell_var("RAUC_SYSTEM_BOOTED_BOOTNAME", c->booted_id);
	shell_var("RAUC_BOOT_PRIMARY", primary ? primary->name : NULL);
	printf("RAUC_SYSTEM_SLOTS='");
	for (size_t i = 0; i < cfg->nslots; i++)
		printf("%s%s", i ? " " : "", cfg->slots[i].name);
	printf("'\nRAUC_SLOTS='");
	for (size_t i = 0; i < cfg->nslots; i++)
		printf("%s%zu", i ? " " : "", i + 1);
	printf("'\n");
	struct boot_fwu_status fst;
	if (fwu_status(c, &fst)) {
		/* abota extension: ABOTA_FWU_* */
		char num[32];
		snprintf(num, sizeof(num), "%u", fst.md.active_index);
		shell_var("ABOTA_FWU_ACTIVE_INDEX", num);
		snprintf(num, sizeof(num), "%u", fst.md.previous_active_index);
		shell_var("ABOTA_FWU_PREVIOUS_ACTIVE_INDEX", num);
		for (unsigned i = 0; i < fst.md.num_banks; i++)
			shell_var_n("ABOTA_FWU_BANK_STATE", i,
				    fwu_bank_state_name(fwu_md_bank_state(&fst.md, i)));
		snprintf(num, sizeof(num), "%u", fst.trial_left);
		shell_var("ABOTA_FWU_TRIAL_BOOTS_LEFT", fst.has_fwu_info ? num : "");
		shell_var("ABOTA_FWU_ROLLBACK", fst.rolled_back ? fst.rollback_reason : "");
	}
	/* abota extension: only after an interrupted install */
	if (c->journal) {
		uint64_t v = 0, t = 0;
		char num[32];
		snprintf(num, sizeof(num), "%u", journal_percent(c->journal, &v, &t));
		shell_var("ABOTA_INTERRUPTED_INSTALL_BUNDLE", c->journal->bundle);
		shell_var("ABOTA_INTERRUPTED_INSTALL_TARGET", c->journal->target);
		shell_var("ABOTA_INTERRUPTED_INSTALL_PERCENT", num);
	}
	for (size_t i = 0; i < cfg->nslots; i++) {
		const struct slot *s = &cfg->slots[i];
		size_t n = i + 1;
		shell_var_n("RAUC_SLOT_STATE", n, slot_state_name(s->state));
		shell_var_n("RAUC_SLOT_CLASS", n, s->sclass);
		shell_var_n("RAUC_SLOT_DEVICE", n, slot_device(s));
		shell_var_n("RAUC_SLOT_TYPE", n, s->type);
		shell_var_n("RAUC_SLOT_BOOTNAME", n, s->bootname);
		shell_var_n("RAUC_SLOT_PARENT", n, s->parent ? s->parent->name : NULL);
		shell_var_n("RAUC_SLOT_MOUNTPOINT", n, s->mount_point);
		shell_var_n("RAUC_SLOT_BOOT_STATUS", n, boot_status(c, s));
		if (!detailed)
			continue;
		const struct slot_status *st = c->store ? slot_status_find(c->store, s->name) : NULL;
		struct slot_status empty = { 0 };
		if (!st)
			st = &empty;
		shell_var_n("RAUC_SLOT_STATUS_BUNDLE_COMPATIBLE", n, st->bundle_compatible);
		shell_var_n("RAUC_SLOT_STATUS_BUNDLE_VERSION", n, st->bundle_version);
		shell_var_n("RAUC_SLOT_STATUS_BUNDLE_DESCRIPTION", n, st->bundle_description);
		shell_var_n("RAUC_SLOT_STATUS_BUNDLE_BUILD", n, st->bundle_build);
		shell_var_n("RAUC_SLOT_STATUS_BUNDLE_HASH", n, st->bundle_hash);
		shell_var_n("RAUC_SLOT_STATUS_CHECKSUM_SHA256", n, st->sha256);
		shell_var_u("RAUC_SLOT_STATUS_CHECKSUM_SIZE", n, st->size);
		shell_var_n("RAUC_SLOT_STATUS_INSTALLED_TIMESTAMP", n, st->installed_timestamp);
		shell_var_u("RAUC_SLOT_STATUS_INSTALLED_COUNT", n, st->installed_count);
		shell_var_n("RAUC_SLOT_STATUS_ACTIVATED_TIMESTAMP", n, st->activated_timestamp);
		shell_var_u("RAUC_SLOT_STATUS_ACTIVATED_COUNT", n, st->activated_count);
		shell_var_n("RAUC_SLOT_STATUS_STATUS", n, st->status);
	}
	return 0;
}

static void print_readable_status(const struct slot_status *st)
{
	printf("      slot status:\n          bundle:\n              compatible=%s\n",
	       st && st->bundle_compatible ? st->bundle_compatible : "(null)");
	if (!st)
		return;
	if (st->bundle_version)
		printf("              version=%s\n", st->bundle_version);
	if (st->bundle_description)
		printf("              description=%s\n", st->bundle_description);
	if (st->bundle_build)
		printf("              build=%s\n", st->bundle_build);
	if (st->bundle_hash)
		printf("              hash=%s\n", st->bundle_hash);
	if (st->sha256)
		printf("          checksum:\n              sha256=%s\n              size=%llu\n",
		       st->sha256, (unsigned long long)st->size);
	if (st->installed_timestamp)
		printf("          installed:\n              timestamp=%s\n              count=%llu\n",
		       st->installed_timestamp, (unsigned long long)st->installed_count);
	if (st->installed_transaction)
		printf("              transaction=%s\n", st->installed_transaction);
	if (st->activated_timestamp)
		printf("          activated:\n              timestamp=%s\n              count=%llu\n",
		       st->activated_timestamp, (unsigned long long)st->activated_count);
	if (st->status)
		printf("          status=%s\n", st->status);
}

static void print_readable_slot(struct status_ctx *c, const struct slot *s,
				const struct slot *primary, bool detailed)
{
	const char *mark = !s->parent && s->bootname ? (s == primary ? "⏺ " : "○ ") : "    ";
	printf("%s[%s] (%s, %s, %s)\n", mark, s->name, slot_device(s), s->type,
	       slot_state_name(s->state));
	if (s->bootname) {
		printf("\tbootname: %s\n", s->bootname);
		printf("\tboot status: %s\n", boot_status(c, s));
	}
	if (s->mount_point)
		printf("\tmounted: %s\n", s->mount_point);
	if (detailed)
		print_readable_status(c->store ? slot_status_find(c->store, s->name) : NULL);
}

static int print_readable(struct status_ctx *c, bool detailed)
{
	const struct system_config *cfg = c->cfg;
	struct slot *primary = boot_primary(c);
	printf("=== System Info ===\nCompatible:  %s\nVariant:     %s\n", cfg->compatible,
	       variant_of(c));
	if (c->booted)
		printf("Booted from: %s (%s)\n", c->booted->name, c->booted_id);
	else
		printf("Booted from: %s\n", c->booted_id);
	printf("\n=== Bootloader ===\n");
	if (primary)
		printf("Activated: %s (%s)\n", primary->name, primary->bootname);
	else
		printf("Activated: (unknown)\n");
	struct boot_fwu_status fst;
	if (fwu_status(c, &fst))
		fwu_readable(c, &fst);
	if (c->journal)
		journal_readable(c->journal);
	printf("\n=== Slot States ===\n");
	/* each root slot followed by its children, like RAUC */
	for (size_t i = 0; i < cfg->nslots; i++) {
		const struct slot *s = &cfg->slots[i];
		if (s->parent)
			continue;
		print_readable_slot(c, s, primary, detailed);
		for (size_t j = 0; j < cfg->nslots; j++)
			if (cfg->slots[j].parent == s)
				print_readable_slot(c, &cfg->slots[j], primary, detailed);
		printf("\n");
	}
	return 0;
}

static void print_slots(const char *prefix, const struct slot **v, size_t n, const char *suffix)
{
	printf("%s", prefix);
	for (size_t i = 0; i < n; i++)
		printf("%s%s", i ? ", " : "", v[i]->name);
	printf("%s\n", suffix);
}

/* The marking itself is lib/install/mark.c (shared with the D-Bus Mark). */
static int do_mark(struct cli_globals *g, const char *verb, const char *what)
{
	struct status_ctx c;
	struct abota_error err = { 0 };
	struct mark_result res = { 0 };
	enum mark_state st = !strcmp(verb, "mark-good")   ? MARK_GOOD
			     : !strcmp(verb, "mark-active") ? MARK_ACTIVE
							    : MARK_BAD;
	int ret = ctx_open(g, true, &c, &err);
	if (ret < 0)
		goto out;
	if ((ret = mark_apply(c.cfg, c.boot, c.store, c.booted, c.booted_id, st, what, &res,
			      &err)) < 0)
		goto out;
	if (st == MARK_ACTIVE) {
		printf("abota status: activated slot %s\n", res.marked[0]->name);
		goto out;
	}
	print_slots("abota status: marked slot(s) ", res.marked, res.n_marked,
		    st == MARK_GOOD ? " as good" : " as bad");
	if (res.n_late_bad)
		print_slots("abota status: marked slot(s) ", res.late_bad, res.n_late_bad,
			    " as bad");
out:
	mark_result_free(&res);
	ctx_free(&c);
	return ret < 0 ? cli_fail("status", &err) : 0;
}

static void status_usage(FILE *f)
{
	fprintf(f, "Usage: abota [GLOBAL OPTIONS] status [--detailed] "
		   "[--output-format=readable|json|json-pretty|shell]\n"
		   "       abota [GLOBAL OPTIONS] status mark-good|mark-bad|mark-active "
		   "[booted|other|SLOT]\n");
}

int cmd_status(struct cli_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "detailed", no_argument, NULL, 'D' },
		{ "output-format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	enum cli_output_format fmt = CLI_OUTPUT_READABLE;
	bool detailed = false;
	int o;
	while ((o = cli_getopt(g, "status", argc, argv, "h", opts)) != -1) {
		switch (o) {
		case 'D': detailed = true; break;
		case 'f':
			if (!cli_parse_output_format(optarg, &fmt))
				return cli_usage_error("status", "unknown output format '%s'",
						       optarg);
			break;
		case 'h': status_usage(stdout); return 0;
		case CLI_GETOPT_REPORTED: return 2;
		default: status_usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		const char *verb = argv[optind];
		if (strcmp(verb, "mark-good") && strcmp(verb, "mark-bad") &&
		    strcmp(verb, "mark-active"))
			return cli_usage_error("status", "unknown sub-command '%s'", verb);
		if (argc - optind > 2)
			return cli_usage_error("status", "too many arguments");
		return do_mark(g, verb, argc - optind == 2 ? argv[optind + 1] : "booted");
	}
	struct status_ctx c;
	struct abota_error err = { 0 };
	int ret = ctx_open(g, false, &c, &err);
	if (ret == 0) {
		switch (fmt) {
		case CLI_OUTPUT_JSON: ret = print_json(&c, detailed, false); break;
		case CLI_OUTPUT_JSON_PRETTY: ret = print_json(&c, detailed, true); break;
		case CLI_OUTPUT_SHELL: ret = print_shell(&c, detailed); break;
		default: ret = print_readable(&c, detailed); break;
		}
	}
	ctx_free(&c);
	return ret < 0 ? cli_fail("status", &err) : 0;
}
