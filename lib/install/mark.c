/* mark.c - marking slots good, bad or active (see mark.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abota/event_log.h"
#include "abota/log.h"
#include "abota/mark.h"
#include "abota/version.h"

int mark_parse_state(const char *s, enum mark_state *out, struct abota_error *err)
{
	if (!strcmp(s, "good"))
		*out = MARK_GOOD;
	else if (!strcmp(s, "bad"))
		*out = MARK_BAD;
	else if (!strcmp(s, "active"))
		*out = MARK_ACTIVE;
	else
		return abota_error_set(err, -EINVAL,
				       "unknown state '%s' (expected good, bad or active)", s);
	return 0;
}

int mark_targets(const struct system_config *cfg, const struct slot *booted_slot,
		 const char *booted_id, const char *what, bool allow_many,
		 const struct slot **out, size_t *n, struct abota_error *err)
{
	size_t k = 0;
	if (!strcmp(what, "booted") || !strcmp(what, "other")) {
		if (!booted_slot)
			return abota_error_set(err, -ENOENT, "no booted slot (external boot '%s')",
					       booted_id ? booted_id : "");
		const struct slot *booted = slot_root(booted_slot);
		if (!strcmp(what, "booted")) {
			if (!booted->bootname)
				return abota_error_set(err, -EINVAL,
						       "booted slot %s has no bootname",
						       booted->name);
			out[0] = booted;
			*n = 1;
			return 0;
		}
		for (size_t i = 0; i < cfg->nslots; i++) {
			const struct slot *s = &cfg->slots[i];
			if (s != booted && !s->parent && s->bootname &&
			    !strcmp(s->sclass, booted->sclass))
				out[k++] = s;
		}
		if (k == 0)
			return abota_error_set(err, -ENOENT, "no other slot of class '%s'",
					       booted->sclass);
		if (k > 1 && !allow_many)
			return abota_error_set(err, -EINVAL,
					       "'other' is ambiguous: %zu other slots of class '%s'",
					       k, booted->sclass);
		*n = k;
		return 0;
	}
	const struct slot *s = slot_find(cfg, what);
	if (!s)
		return abota_error_set(err, -ENOENT, "no slot named '%s'", what);
	if (!s->bootname)
		return abota_error_set(err, -EINVAL, "slot %s has no bootname (not bootable)",
				       s->name);
	out[0] = s;
	*n = 1;
	return 0;
}

static void names(char *buf, size_t len, const struct slot **v, size_t n)
{
	size_t off = strlen(buf);
	for (size_t i = 0; i < n && off < len; i++) {
		int w = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", v[i]->name);
		if (w < 0)
			break;
		off += (size_t)w;
	}
}

/* Anti-rollback: accepting the booted slot raises the version floor to the
 * bundle version it runs (version.h), so a validly signed older bundle is
 * refused later, whatever slot the device boots then.  Only acceptance
 * raises it: a trial that fails leaves it alone (a fast-forward to a bogus
 * version cannot lock the device out of the real updates). */
static int raise_floor(const struct system_config *cfg, const struct slot_status_store *store,
		       const struct slot *slot, struct abota_error *err)
{
	const struct slot_status *st = store ? slot_status_find(store, slot->name) : NULL;
	int cmp;
	if (!cfg->data_directory || !st || !st->bundle_version)
		return 0;
	if (!version_compare(st->bundle_version, st->bundle_version, &cmp)) {
		log_info("version floor not raised: %s runs version '%s', which is not comparable",
			 slot->name, st->bundle_version);
		return 0;
	}
	size_t n = strlen(cfg->data_directory) + sizeof("/" VERSION_FLOOR_FILE);
	char *path = malloc(n);
	if (!path)
		return abota_error_set(err, -ENOMEM, "out of memory");
	snprintf(path, n, "%s/%s", cfg->data_directory, VERSION_FLOOR_FILE);
	bool raised = false;
	int ret = version_floor_raise(path, st->bundle_version, &raised, err);
	if (ret < 0)
		abota_error_prefix(err, "%s accepted, but", slot->name);
	else if (raised)
		log_info("version floor raised to %s", st->bundle_version);
	free(path);
	return ret;
}

void mark_result_free(struct mark_result *res)
{
	if (!res)
		return;
	free(res->marked);
	free(res->late_bad);
	memset(res, 0, sizeof(*res));
}

/* RAUC's mark event for one slot. */
static void log_mark(const struct system_config *cfg, struct slot_status_store *store,
		     const struct slot *s, enum mark_state state)
{
	static const char *const ids[] = { [MARK_GOOD] = EVENT_ID_MARKED_GOOD,
					   [MARK_BAD] = EVENT_ID_MARKED_BAD,
					   [MARK_ACTIVE] = EVENT_ID_MARKED_ACTIVE };
	static const char *const words[] = { [MARK_GOOD] = "good", [MARK_BAD] = "bad",
					     [MARK_ACTIVE] = "active" };
	struct slot_status *st = store ? slot_status_get(store, s->name) : NULL;
	struct event_field f[] = {
		{ "SLOT_NAME", s->name },
		{ "BUNDLE_HASH", st && st->bundle_hash ? st->bundle_hash : "" },
		{ "SLOT_BOOTNAME", s->bootname ? s->bootname : "" },
	};
	event_log_emit(cfg, CONFIG_EVENT_MARK, ids[state], f, 3, "Marked slot %s as %s", s->name,
		       words[state]);
}

int mark_apply(const struct system_config *cfg, struct boot_backend *boot,
	       struct slot_status_store *store, const struct slot *booted,
	       const char *booted_id, enum mark_state state, const char *what,
	       struct mark_result *res, struct abota_error *err)
{
	struct mark_result r = { 0 };
	int ret;
	/* NOLINTBEGIN(bugprone-sizeof-expression): arrays of pointers */
	r.marked = calloc(cfg->nslots + 1, sizeof(*r.marked));
	r.late_bad = calloc(cfg->nslots + 1, sizeof(*r.late_bad));
	/* NOLINTEND(bugprone-sizeof-expression) */
	if (!r.marked || !r.late_bad) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (!boot) {
		ret = abota_error_set(err, -ENOTSUP, "no bootloader backend");
		goto out;
	}
	if ((ret = mark_targets(cfg, booted, booted_id, what, state == MARK_BAD, r.marked,
				&r.n_marked, err)) < 0)
		goto out;
	if (state == MARK_ACTIVE) {
		if ((ret = boot_backend_set_primary(boot, r.marked[0], err)) < 0)
			goto out;
		if (store && ((ret = slot_status_mark_activated(store, r.marked[0]->name, err)) < 0 ||
			      (ret = slot_status_save(store, err)) < 0))
			goto out;
		log_mark(cfg, store, r.marked[0], MARK_ACTIVE);
		snprintf(r.message, sizeof(r.message), "activated slot %s", r.marked[0]->name);
		goto done;
	}
	for (size_t i = 0; i < r.n_marked; i++) {
		ret = state == MARK_GOOD ? boot_backend_accept(boot, r.marked[i], err)
					 : boot_backend_reject(boot, r.marked[i], err);
		if (ret < 0)
			goto out;
		if (state == MARK_GOOD && booted && r.marked[i] == slot_root(booted) &&
		    (ret = raise_floor(cfg, store, r.marked[i], err)) < 0)
			goto out;
		log_mark(cfg, store, r.marked[i], state);
	}
	snprintf(r.message, sizeof(r.message), "marked slot(s) ");
	names(r.message, sizeof(r.message), r.marked, r.n_marked);
	snprintf(r.message + strlen(r.message), sizeof(r.message) - strlen(r.message), " as %s",
		 state == MARK_GOOD ? "good" : "bad");
	/* prevent-late-fallback: once the booted slot is confirmed, the old
	 * one must never be booted again by a late fallback. */
	if (state == MARK_GOOD && !strcmp(what, "booted") && cfg->prevent_late_fallback) {
		struct abota_error e = { 0 };
		if (mark_targets(cfg, booted, booted_id, "other", true, r.late_bad, &r.n_late_bad,
				 &e) < 0) {
			log_info("prevent-late-fallback: %s", e.msg);
			r.n_late_bad = 0;
			goto done;
		}
		for (size_t i = 0; i < r.n_late_bad; i++) {
			if ((ret = boot_backend_reject(boot, r.late_bad[i], err)) < 0)
				goto out;
			log_mark(cfg, store, r.late_bad[i], MARK_BAD);
		}
	}
done:
	*res = r;
	return 0;
out:
	mark_result_free(&r);
	return ret;
}
