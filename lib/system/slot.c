/* slot.c - slot lookups, booted-slot detection and target group selection.
 *
 * Detection follows RAUC (specs/rauc-compat.md §4.2) so that a device
 * migrating from RAUC keeps its kernel command line and system.conf.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abota/config.h"
#include "abota/fileio.h"
#include "abota/log.h"
#include "abota/slot.h"

/* /proc/cmdline is at most a few KiB (COMMAND_LINE_SIZE); a simulator file
 * larger than this is not a command line. */
#define CMDLINE_MAX (64 * 1024)

/* RAUC's identifiers for boots that are not from a slot. */
#define BOOT_ID_EXTERNAL "_external_"
#define BOOT_ID_NFS "/dev/nfs"

static const char *const slot_types[] = {
	"raw",       "ext4",      "ubifs",           "ubivol",          "nand",
	"nor",       "vfat",      "boot-emmc",       "boot-mbr-switch", "boot-gpt-switch",
	"boot-raw-fallback", NULL,
};

bool slot_type_valid(const char *type)
{
	/* jffs2 is documented by RAUC but rejected by its parser; we do the
	 * same so a config that works here also works with RAUC. */
	for (size_t i = 0; slot_types[i]; i++)
		if (!strcmp(type, slot_types[i]))
			return true;
	return false;
}

const char *slot_state_name(enum slot_state s)
{
	switch (s) {
	case SLOT_STATE_BOOTED: return "booted";
	case SLOT_STATE_ACTIVE: return "active";
	default: return "inactive";
	}
}

struct slot *slot_find(const struct system_config *cfg, const char *name)
{
	for (size_t i = 0; name && i < cfg->nslots; i++)
		if (!strcmp(cfg->slots[i].name, name))
			return &cfg->slots[i];
	return NULL;
}

struct slot *slot_find_bootname(const struct system_config *cfg, const char *bootname)
{
	for (size_t i = 0; bootname && i < cfg->nslots; i++)
		if (cfg->slots[i].bootname && !strcmp(cfg->slots[i].bootname, bootname))
			return &cfg->slots[i];
	return NULL;
}

const struct slot *slot_root(const struct slot *s)
{
	/* config validation guarantees one level, but do not trust it blindly */
	for (int depth = 0; s->parent && depth < 16; depth++)
		s = s->parent;
	return s;
}

struct slot *slot_get_booted(const struct system_config *cfg)
{
	for (size_t i = 0; i < cfg->nslots; i++)
		if (cfg->slots[i].state == SLOT_STATE_BOOTED)
			return &cfg->slots[i];
	return NULL;
}

int slot_resolve_device_default(void *ctx, const char *spec, char **out_path)
{
	(void)ctx;
	static const struct {
		const char *prefix, *dir;
		bool lower;
	} maps[] = {
		{ "PARTLABEL=", "/dev/disk/by-partlabel/", false },
		{ "PARTUUID=", "/dev/disk/by-partuuid/", true },
		{ "UUID=", "/dev/disk/by-uuid/", true },
	};
	char *path = NULL;
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		size_t pl = strlen(maps[i].prefix);
		if (strncmp(spec, maps[i].prefix, pl))
			continue;
		if (asprintf(&path, "%s%s", maps[i].dir, spec + pl) < 0)
			return -ENOMEM;
		/* udev creates the by-partuuid/by-uuid links in lower case */
		if (maps[i].lower)
			for (char *p = path + strlen(maps[i].dir); *p; p++)
				*p = (char)tolower((unsigned char)*p);
		break;
	}
	if (!path && !(path = strdup(spec)))
		return -ENOMEM;
	char *real = realpath(path, NULL);
	if (real) {
		free(path);
		path = real;
	}
	*out_path = path;
	return 0;
}

void slot_cmdline_clear(struct slot_cmdline *c)
{
	free(c->rauc_slot);
	free(c->root);
	memset(c, 0, sizeof(*c));
}

int slot_cmdline_parse(const char *cmdline, struct slot_cmdline *out, struct abota_error *err)
{
	struct slot_cmdline c = { 0 };
	const char *verity = NULL, *root = NULL;
	size_t verity_len = 0, root_len = 0, slot_len = 0;
	const char *rslot = NULL;
	int ret = 0;
	for (const char *p = cmdline; *p;) {
		while (*p && isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		size_t n = 0;
		while (p[n] && !isspace((unsigned char)p[n]))
			n++;
		if (n == 13 && !strncmp(p, "rauc.external", 13))
			c.external = true;
		else if (n > 10 && !strncmp(p, "rauc.slot=", 10))
			rslot = p + 10, slot_len = n - 10;
		else if (n > 25 && !strncmp(p, "systemd.verity_root_data=", 25))
			verity = p + 25, verity_len = n - 25;
		else if (n > 5 && !strncmp(p, "root=", 5))
			root = p + 5, root_len = n - 5;
		p += n;
	}
	/* With dm-verity root= names the mapped device; the data device is
	 * what a slot's device can match. */
	if (verity) {
		root = verity;
		root_len = verity_len;
	}
	if (root && root_len == 8 && !strncmp(root, BOOT_ID_NFS, 8))
		c.external = true;
	if (rslot && !(c.rauc_slot = strndup(rslot, slot_len))) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (root && !(c.root = strndup(root, root_len))) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	*out = c;
	memset(&c, 0, sizeof(c));
out:
	slot_cmdline_clear(&c);
	return ret;
}

struct slot *slot_match_boot_id(const struct system_config *cfg, const char *id,
				slot_resolve_fn resolve, void *resolve_ctx)
{
	struct slot *hit = NULL;
	if (!id || !*id)
		return NULL;
	if (!resolve)
		resolve = slot_resolve_device_default;
	/* bootname first, then slot name: the cheap, explicit identifiers */
	if ((hit = slot_find_bootname(cfg, id)))
		return hit;
	if ((hit = slot_find(cfg, id)))
		return hit;
	/* abota: slots given by GPT partition name match PARTLABEL=<name>
	 * directly (the boot disk may not have udev links, e.g. in the
	 * simulator). */
	if (!strncmp(id, "PARTLABEL=", 10))
		for (size_t i = 0; i < cfg->nslots; i++)
			if (cfg->slots[i].partition && !strcmp(cfg->slots[i].partition, id + 10))
				return &cfg->slots[i];
	char *want = NULL;
	if (resolve(resolve_ctx, id, &want) < 0 || !want)
		return NULL;
	for (size_t i = 0; i < cfg->nslots && !hit; i++) {
		const struct slot *s = &cfg->slots[i];
		if (!s->device)
			continue;
		char *real = realpath(s->device, NULL);
		if (!strcmp(real ? real : s->device, want))
			hit = &cfg->slots[i];
		free(real);
	}
	free(want);
	return hit;
}

int slot_determine_states(struct system_config *cfg, const char *override, const char *cmdline,
			  const char *backend_current, slot_resolve_fn resolve, void *resolve_ctx,
			  char **booted_id, struct slot **booted, struct abota_error *err)
{
	char *text = NULL, *id = NULL;
	struct slot_cmdline c = { 0 };
	struct slot *hit = NULL;
	bool external = false;
	int ret = 0;

	if (!override) {
		if (!cmdline) {
			size_t len;
			ret = fileio_read_all(cfg->cmdline_file, CMDLINE_MAX, &text, &len, err);
			if (ret < 0) {
				abota_error_prefix(err, "kernel command line");
				goto out;
			}
			cmdline = text;
		}
		if ((ret = slot_cmdline_parse(cmdline, &c, err)) < 0)
			goto out;
	}
	/* first hit wins: override, external, rauc.slot=, backend, root= */
	const char *raw = override;
	if (!raw && c.external)
		external = true;
	else if (!raw)
		raw = c.rauc_slot ? c.rauc_slot : backend_current ? backend_current : c.root;
	if (external) {
		bool nfs = c.root && !strcmp(c.root, BOOT_ID_NFS);
		id = strdup(nfs ? BOOT_ID_NFS : BOOT_ID_EXTERNAL);
	} else if (!raw) {
		ret = abota_error_set(err, -ENOENT,
				      "cannot determine the booted slot: no rauc.slot= or root= on the "
				      "kernel command line (%s); use --override-boot-slot",
				      cfg->cmdline_file);
		goto out;
	} else {
		hit = slot_match_boot_id(cfg, raw, resolve, resolve_ctx);
		if (!hit) {
			ret = abota_error_set(err, -ENOENT,
					      "booted slot '%s' matches no slot (bootname, name or "
					      "device)",
					      raw);
			goto out;
		}
		id = strdup(raw);
	}
	if (!id) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < cfg->nslots; i++)
		cfg->slots[i].state = SLOT_STATE_INACTIVE;
	if (hit) {
		hit->state = SLOT_STATE_BOOTED;
		/* The whole group of the booted slot is in use: its root (when
		 * a child matched) and all children of that root. */
		const struct slot *root = slot_root(hit);
		for (size_t i = 0; i < cfg->nslots; i++) {
			struct slot *s = &cfg->slots[i];
			if (s != hit && slot_root(s) == root)
				s->state = SLOT_STATE_ACTIVE;
		}
	}
	log_debug("booted slot: %s (%s)", hit ? hit->name : "none", id);
	if (booted_id)
		*booted_id = id;
	else
		free(id);
	id = NULL;
	if (booted)
		*booted = hit;
out:
	free(id);
	free(text);
	slot_cmdline_clear(&c);
	return ret;
}

int slot_target_group(const struct system_config *cfg, slot_rank_fn rank, void *rank_ctx,
		      struct slot ***out, size_t *count, struct abota_error *err)
{
	size_t n = cfg->nslots;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): arrays of pointers */
	struct slot **roots = calloc(n ? n : 1, sizeof(*roots));
	/* NOLINTNEXTLINE(bugprone-sizeof-expression) */
	struct slot **group = calloc(n ? n : 1, sizeof(*group));
	size_t nroots = 0, ngroup = 0;
	int ret = 0;
	if (!roots || !group) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	/* one inactive, writable slot per root class */
	for (size_t i = 0; i < n; i++) {
		struct slot *s = &cfg->slots[i];
		if (s->parent)
			continue;
		bool seen = false;
		for (size_t j = 0; j < nroots; j++)
			seen |= !strcmp(roots[j]->sclass, s->sclass);
		if (seen)
			continue;
		struct slot *best = NULL;
		for (size_t j = i; j < n; j++) {
			struct slot *c = &cfg->slots[j];
			if (c->parent || strcmp(c->sclass, s->sclass) ||
			    c->state != SLOT_STATE_INACTIVE || c->readonly)
				continue;
			if (!best || (rank && rank(rank_ctx, c, best) < 0))
				best = c;
		}
		if (!best) {
			ret = abota_error_set(err, -ENOENT,
					      "no inactive slot of class '%s' to install to",
					      s->sclass);
			goto out;
		}
		roots[nroots++] = best;
	}
	for (size_t i = 0; i < n; i++) {
		struct slot *s = &cfg->slots[i];
		const struct slot *r = slot_root(s);
		for (size_t j = 0; j < nroots; j++)
			if (r == roots[j]) {
				group[ngroup++] = s;
				break;
			}
	}
	*out = group;
	*count = ngroup;
	group = NULL;
out:
	free(roots);
	free(group);
	return ret;
}
