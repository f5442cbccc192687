/* boot_grub.c - GRUB environment block backend (RAUC's `grub` scheme).
 *
 * Variables (specs/rauc-compat.md §4.4), used by the grub.cfg boot script:
 *   ORDER      space-separated bootnames
 *   <b>_OK     1 = slot may be booted
 *   <b>_TRY    1 = a boot of the slot was attempted (set by grub.cfg)
 * bad: <b>_OK=0 <b>_TRY=0; good: <b>_OK=1 <b>_TRY=0;
 * primary: as good plus ORDER = <b> followed by all other bootnames.
 * good <=> <b>_OK=1 and <b>_TRY=0; primary = first such slot in ORDER.
 *
 * The file (`[system] grubenv`, default /boot/grub/grubenv) is the format
 * grub-editenv writes: "# GRUB Environment Block\n", key=value lines
 * (backslash escapes for '\\' and newline) and '#' padding up to the block
 * size (1024 bytes, or larger if the existing file is).  We edit it in
 * memory and replace it with fileio_write_atomic, so a power cut leaves the
 * old or the new block -- never a mix (grub-editenv rewrites in place).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abota/boot_backend.h"
#include "abota/fileio.h"
#include "abota/log.h"

#define GRUBENV_HEADER "# GRUB Environment Block\n"
#define GRUBENV_SIZE 1024
#define GRUBENV_MAX (64 * 1024) /* GRUB reads a bounded block; so do we */

struct genv {
	size_t n;
	char **key, **val;
	size_t block; /* size to pad to */
};

static void genv_free(struct genv *g)
{
	for (size_t i = 0; i < g->n; i++) {
		free(g->key[i]);
		free(g->val[i]);
	}
	free(g->key);
	free(g->val);
	memset(g, 0, sizeof(*g));
}

static int genv_add(struct genv *g, const char *k, size_t klen, const char *v, size_t vlen)
{
	char **nk = realloc(g->key, (g->n + 1) * sizeof(*nk));
	if (!nk)
		return -ENOMEM;
	g->key = nk;
	char **nv = realloc(g->val, (g->n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	g->val = nv;
	char *ks = strndup(k, klen), *vs = malloc(vlen + 1);
	if (!ks || !vs) {
		free(ks);
		free(vs);
		return -ENOMEM;
	}
	size_t o = 0;
	for (size_t i = 0; i < vlen; i++) {
		if (v[i] == '\\' && i + 1 < vlen)
			i++; /* "\\" -> '\', "\<newline>" -> newline */
		vs[o++] = v[i];
	}
	vs[o] = '\0';
	g->key[g->n] = ks;
	g->val[g->n] = vs;
	g->n++;
	return 0;
}

static int genv_load(const char *path, struct genv *g, struct abota_error *err)
{
	char *data = NULL;
	size_t len = 0;
	int ret;
	memset(g, 0, sizeof(*g));
	g->block = GRUBENV_SIZE;
	ret = fileio_read_all(path, GRUBENV_MAX, &data, &len, err);
	if (ret == -ENOENT)
		return 0; /* created on the first write, like grub-editenv does */
	if (ret < 0)
		return ret;
	if (len < strlen(GRUBENV_HEADER) || memcmp(data, GRUBENV_HEADER, strlen(GRUBENV_HEADER))) {
		ret = abota_error_set(err, -EINVAL, "%s: not a GRUB environment block", path);
		goto out;
	}
	if (len > g->block)
		g->block = len;
	size_t pos = strlen(GRUBENV_HEADER);
	while (pos < len) {
		/* a line ends at a newline that is not escaped */
		size_t end = pos;
		while (end < len && data[end] != '\n') {
			if (data[end] == '\\' && end + 1 < len)
				end++;
			end++;
		}
		const char *line = data + pos;
		size_t ll = end - pos;
		pos = end + 1;
		if (ll == 0 || line[0] == '#')
			continue;
		const char *eq = memchr(line, '=', ll);
		if (!eq || eq == line) {
			ret = abota_error_set(err, -EINVAL, "%s: malformed line '%.*s'", path,
					      (int)(ll > 64 ? 64 : ll), line);
			goto out;
		}
		if (genv_add(g, line, (size_t)(eq - line), eq + 1, ll - (size_t)(eq - line) - 1) <
		    0) {
			ret = abota_error_set(err, -ENOMEM, "out of memory");
			goto out;
		}
	}
out:
	if (ret < 0)
		genv_free(g);
	free(data);
	return ret;
}

static const char *genv_get(const struct genv *g, const char *k)
{
	for (size_t i = 0; i < g->n; i++)
		if (!strcmp(g->key[i], k))
			return g->val[i];
	return NULL;
}

static int genv_set(struct genv *g, const char *k, const char *v)
{
	for (size_t i = 0; i < g->n; i++) {
		if (!strcmp(g->key[i], k)) {
			char *nv = strdup(v);
			if (!nv)
				return -ENOMEM;
			free(g->val[i]);
			g->val[i] = nv;
			return 0;
		}
	}
	return genv_add(g, k, strlen(k), v, strlen(v));
}

static int genv_save(const char *path, const struct genv *g, struct abota_error *err)
{
	char *buf = malloc(g->block);
	int ret = 0;
	if (!buf)
		return abota_error_set(err, -ENOMEM, "out of memory");
	size_t o = strlen(GRUBENV_HEADER);
	/* a block, not a string: entries and '#' padding follow */
	memcpy(buf, GRUBENV_HEADER, o); /* NOLINT(bugprone-not-null-terminated-result) */
	for (size_t i = 0; i < g->n; i++) {
		size_t need = strlen(g->key[i]) + 2;
		for (const char *p = g->val[i]; *p; p++)
			need += (*p == '\\' || *p == '\n') ? 2 : 1;
		if (need > g->block - o) {
			ret = abota_error_set(err, -ENOSPC, "%s: environment block full", path);
			goto out;
		}
		o += (size_t)sprintf(buf + o, "%s=", g->key[i]);
		for (const char *p = g->val[i]; *p; p++) {
			if (*p == '\\' || *p == '\n')
				buf[o++] = '\\';
			buf[o++] = *p;
		}
		buf[o++] = '\n';
	}
	memset(buf + o, '#', g->block - o);
	ret = fileio_write_atomic_device(path, buf, g->block, 0644, err);
out:
	free(buf);
	return ret;
}

static bool genv_slot_good(const struct genv *g, const char *bootname)
{
	char k[160];
	snprintf(k, sizeof(k), "%s_OK", bootname);
	const char *ok = genv_get(g, k);
	snprintf(k, sizeof(k), "%s_TRY", bootname);
	const char *try = genv_get(g, k);
	return ok && !strcmp(ok, "1") && (!try || !strcmp(try, "0"));
}

static int genv_set_slot(struct genv *g, const char *bootname, bool good)
{
	char k[160];
	int ret;
	snprintf(k, sizeof(k), "%s_OK", bootname);
	if ((ret = genv_set(g, k, good ? "1" : "0")) < 0)
		return ret;
	snprintf(k, sizeof(k), "%s_TRY", bootname);
	return genv_set(g, k, "0");
}

static bool grub_usable(void *ctx, const char *bootname)
{
	return genv_slot_good(ctx, bootname);
}

static int grub_get_primary(struct boot_backend *b, struct slot **primary,
			    struct abota_error *err)
{
	struct genv g;
	int ret = genv_load(b->cfg->grubenv, &g, err);
	if (ret < 0)
		return ret;
	struct slot *hit = boot_backend_first_in_order(b->cfg, genv_get(&g, "ORDER"),
						       grub_usable, &g);
	genv_free(&g);
	*primary = hit;
	return 0;
}

static int grub_get_state(struct boot_backend *b, const struct slot *s, bool *good,
			  struct abota_error *err)
{
	struct genv g;
	int ret = genv_load(b->cfg->grubenv, &g, err);
	if (ret < 0)
		return ret;
	*good = genv_slot_good(&g, s->bootname);
	genv_free(&g);
	return 0;
}

static int grub_update(struct boot_backend *b, const struct slot *s, bool good, bool primary,
		       struct abota_error *err)
{
	struct genv g;
	char *order = NULL;
	int ret = genv_load(b->cfg->grubenv, &g, err);
	if (ret < 0)
		return ret;
	if ((ret = genv_set_slot(&g, s->bootname, good)) < 0)
		goto oom;
	if (primary) {
		size_t cap = 1, o = 0;
		for (size_t i = 0; i < b->cfg->nslots; i++)
			if (b->cfg->slots[i].bootname)
				cap += strlen(b->cfg->slots[i].bootname) + 1;
		if (!(order = malloc(cap)))
			goto oom;
		o += (size_t)snprintf(order, cap, "%s", s->bootname);
		for (size_t i = 0; i < b->cfg->nslots; i++) {
			const struct slot *t = &b->cfg->slots[i];
			if (t->bootname && t != s)
				o += (size_t)snprintf(order + o, cap - o, " %s", t->bootname);
		}
		if ((ret = genv_set(&g, "ORDER", order)) < 0)
			goto oom;
	}
	ret = genv_save(b->cfg->grubenv, &g, err);
	goto out;
oom:
	ret = abota_error_set(err, -ENOMEM, "out of memory");
out:
	free(order);
	genv_free(&g);
	return ret;
}

static int grub_set_state(struct boot_backend *b, const struct slot *s, bool good,
			  struct abota_error *err)
{
	return grub_update(b, s, good, false, err);
}

static int grub_set_primary(struct boot_backend *b, const struct slot *s,
			    struct abota_error *err)
{
	return grub_update(b, s, true, true, err);
}

static bool grub_is_atomic(struct boot_backend *b)
{
	(void)b;
	return true; /* whole-file atomic replacement */
}

static const struct boot_backend_ops grub_ops = {
	.name = "grub",
	.get_primary = grub_get_primary,
	.set_primary = grub_set_primary,
	.get_state = grub_get_state,
	.set_state = grub_set_state,
	.is_atomic = grub_is_atomic,
};

int boot_grub_open(const struct system_config *cfg, struct boot_backend **out,
		   struct abota_error *err)
{
	struct boot_backend *b = calloc(1, sizeof(*b));
	if (!b)
		return abota_error_set(err, -ENOMEM, "out of memory");
	b->ops = &grub_ops;
	b->cfg = cfg;
	*out = b;
	return 0;
}
