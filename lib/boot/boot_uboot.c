/* boot_uboot.c - U-Boot environment backend (RAUC's `uboot` scheme).
 *
 * Variables (specs/rauc-compat.md §4.4), as U-Boot's boot script expects:
 *   BOOT_ORDER      space-separated bootnames, tried in order
 *   BOOT_<b>_LEFT   remaining boot attempts of slot <b> (hex)
 * good <=> <b> is in BOOT_ORDER and BOOT_<b>_LEFT > 0.
 * bad:     remove <b> from BOOT_ORDER, BOOT_<b>_LEFT=0
 * good:    BOOT_<b>_LEFT=<boot-attempts>
 * primary: move <b> to the front of BOOT_ORDER, BOOT_<b>_LEFT=<boot-attempts-primary>
 *
 * Access through libubootenv with [system] fw-env-config (default
 * /etc/fw_env.config).  Unlike RAUC, which calls fw_setenv once per variable,
 * all changes of one operation go into a single libuboot_env_store(), which
 * with a redundant environment writes the inactive copy and flips the flag:
 * one power-cut-safe step.  The environment is re-read for every operation so
 * a long-running process never acts on stale values.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libuboot.h>

#include "abota/boot_backend.h"
#include "abota/log.h"

#define ORDER_MAX 1024 /* BOOT_ORDER is a few bootnames; longer is garbage */

struct env {
	struct uboot_ctx *ctx;
	bool valid; /* a copy with a good CRC was found */
};

static int env_open(struct boot_backend *b, struct env *e, struct abota_error *err)
{
	const char *conf = b->cfg->fw_env_config;
	memset(e, 0, sizeof(*e));
	if (libuboot_initialize(&e->ctx, NULL) < 0)
		return abota_error_set(err, -ENOMEM, "cannot initialize libubootenv");
	int ret = libuboot_read_config(e->ctx, conf);
	if (ret < 0) {
		libuboot_exit(e->ctx);
		e->ctx = NULL;
		return abota_error_set(err, ret < 0 ? ret : -EINVAL,
				       "cannot read environment configuration %s", conf);
	}
	ret = libuboot_open(e->ctx);
	if (ret < 0 && ret != -ENODATA) {
		libuboot_exit(e->ctx);
		e->ctx = NULL;
		return abota_error_set(err, ret, "cannot open U-Boot environment (%s): %s", conf,
				       strerror(-ret));
	}
	e->valid = ret == 0;
	return 0;
}

static void env_close(struct env *e)
{
	if (!e->ctx)
		return;
	libuboot_close(e->ctx);
	libuboot_exit(e->ctx);
	e->ctx = NULL;
}

/* Copies a variable into a bounded buffer; "" when unset. */
static void env_get(struct env *e, const char *name, char *out, size_t cap)
{
	out[0] = '\0';
	if (!e->valid)
		return;
	char *v = libuboot_get_env(e->ctx, name);
	if (v) {
		snprintf(out, cap, "%s", v);
		free(v);
	}
}

static unsigned long env_left(struct env *e, const char *bootname)
{
	char name[160], v[32];
	snprintf(name, sizeof(name), "BOOT_%s_LEFT", bootname);
	env_get(e, name, v, sizeof(v));
	/* U-Boot's scripts keep the counter in hex (setexpr) */
	return v[0] ? strtoul(v, NULL, 16) : 0;
}

static bool order_contains(const char *order, const char *bootname)
{
	size_t bl = strlen(bootname);
	for (const char *p = order; *p;) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n == bl && !strncmp(p, bootname, n))
			return true;
		p += n;
	}
	return false;
}

/* Rebuilds order: optional `first`, then the entries of old except `drop`
 * and `first`. */
static void order_rebuild(const char *old, const char *first, const char *drop, char *out,
			  size_t cap)
{
	size_t o = 0;
	out[0] = '\0';
	if (first)
		o += (size_t)snprintf(out, cap, "%s", first);
	for (const char *p = old; *p && o < cap;) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n && !((first && strlen(first) == n && !strncmp(p, first, n)) ||
			   (drop && strlen(drop) == n && !strncmp(p, drop, n))))
			o += (size_t)snprintf(out + o, cap - o, "%s%.*s", o ? " " : "", (int)n, p);
		p += n;
	}
}

static int env_store(struct env *e, const char *const *kv, size_t n, struct abota_error *err)
{
	/* Writing over an environment we could not read would replace
	 * U-Boot's built-in defaults (bootcmd, ...) with just our variables. */
	if (!e->valid)
		return abota_error_set(err, -ENODATA,
				       "U-Boot environment has no valid copy; refusing to write "
				       "(initialize it first, e.g. with fw_setenv -f <defaults>)");
	for (size_t i = 0; i < n; i++) {
		int ret = libuboot_set_env(e->ctx, kv[2 * i], kv[2 * i + 1]);
		if (ret < 0)
			return abota_error_set(err, ret, "cannot set %s", kv[2 * i]);
		log_debug("uboot: %s=%s", kv[2 * i], kv[2 * i + 1]);
	}
	int ret = libuboot_env_store(e->ctx);
	if (ret < 0)
		return abota_error_set(err, ret, "cannot write U-Boot environment: %s",
				       strerror(-ret));
	return 0;
}

static bool uboot_usable(void *ctx, const char *bootname)
{
	return env_left(ctx, bootname) > 0;
}

static int uboot_get_primary(struct boot_backend *b, struct slot **primary,
			     struct abota_error *err)
{
	struct env e;
	char order[ORDER_MAX];
	int ret = env_open(b, &e, err);
	if (ret < 0)
		return ret;
	env_get(&e, "BOOT_ORDER", order, sizeof(order));
	/* first slot in BOOT_ORDER that still has attempts left */
	struct slot *hit = boot_backend_first_in_order(b->cfg, order, uboot_usable, &e);
	env_close(&e);
	*primary = hit;
	return 0;
}

static int uboot_get_state(struct boot_backend *b, const struct slot *s, bool *good,
			   struct abota_error *err)
{
	struct env e;
	char order[ORDER_MAX];
	int ret = env_open(b, &e, err);
	if (ret < 0)
		return ret;
	env_get(&e, "BOOT_ORDER", order, sizeof(order));
	*good = order_contains(order, s->bootname) && env_left(&e, s->bootname) > 0;
	env_close(&e);
	return 0;
}

static int uboot_set_state(struct boot_backend *b, const struct slot *s, bool good,
			   struct abota_error *err)
{
	struct env e;
	char order[ORDER_MAX], neworder[ORDER_MAX], left[128], val[16];
	int ret = env_open(b, &e, err);
	if (ret < 0)
		return ret;
	snprintf(left, sizeof(left), "BOOT_%s_LEFT", s->bootname);
	snprintf(val, sizeof(val), "%x", good ? b->cfg->boot_attempts : 0);
	if (good) {
		const char *kv[] = { left, val };
		ret = env_store(&e, kv, 1, err);
	} else {
		env_get(&e, "BOOT_ORDER", order, sizeof(order));
		order_rebuild(order, NULL, s->bootname, neworder, sizeof(neworder));
		const char *kv[] = { "BOOT_ORDER", neworder, left, val };
		ret = env_store(&e, kv, 2, err);
	}
	env_close(&e);
	return ret;
}

static int uboot_set_primary(struct boot_backend *b, const struct slot *s,
			     struct abota_error *err)
{
	struct env e;
	char order[ORDER_MAX], neworder[ORDER_MAX], left[128], val[16];
	int ret = env_open(b, &e, err);
	if (ret < 0)
		return ret;
	env_get(&e, "BOOT_ORDER", order, sizeof(order));
	if (!order[0]) {
		/* No order yet: the slot first, then the other bootable slots
		 * in config order, so a fallback exists. */
		size_t o = 0;
		for (size_t i = 0; i < b->cfg->nslots && o < sizeof(order); i++) {
			const struct slot *t = &b->cfg->slots[i];
			if (t->bootname && t != s)
				o += (size_t)snprintf(order + o, sizeof(order) - o, "%s%s",
						      o ? " " : "", t->bootname);
		}
	}
	order_rebuild(order, s->bootname, NULL, neworder, sizeof(neworder));
	snprintf(left, sizeof(left), "BOOT_%s_LEFT", s->bootname);
	snprintf(val, sizeof(val), "%x", b->cfg->boot_attempts_primary);
	const char *kv[] = { "BOOT_ORDER", neworder, left, val };
	ret = env_store(&e, kv, 2, err);
	env_close(&e);
	return ret;
}

static bool uboot_is_atomic(struct boot_backend *b)
{
	(void)b;
	/* One env_store per operation; atomic with a redundant environment
	 * (two entries in fw_env.config), which is what A/B systems use. */
	return true;
}

static const struct boot_backend_ops uboot_ops = {
	.name = "uboot",
	.get_primary = uboot_get_primary,
	.set_primary = uboot_set_primary,
	.get_state = uboot_get_state,
	.set_state = uboot_set_state,
	.is_atomic = uboot_is_atomic,
};

int boot_uboot_open(const struct system_config *cfg, struct boot_backend **out,
		    struct abota_error *err)
{
	for (size_t i = 0; i < cfg->nslots; i++) {
		const char *bn = cfg->slots[i].bootname;
		if (bn && strlen(bn) > 64)
			return abota_error_set(err, -EINVAL, "uboot: bootname '%s' too long", bn);
	}
	struct boot_backend *b = calloc(1, sizeof(*b));
	if (!b)
		return abota_error_set(err, -ENOMEM, "out of memory");
	b->ops = &uboot_ops;
	b->cfg = cfg;
	*out = b;
	return 0;
}
