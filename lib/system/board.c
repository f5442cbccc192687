/* board.c - board profile parser and layout validation (see board.h). */
#include "abota/board.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "abota/fileio.h"
#include "abota/fwu_store.h"
#include "abota/keyfile.h"

#define BOARD_FILE_MAX (256 * 1024)
#define BOARD_MAX_PARTS 128
#define GPT_FIRST_USABLE_LBA 34
#define GPT_BACKUP_SECTORS 33

static const char *const tfa_names[] = { "v1", "r3", "upstream" };
static const char *const content_names[] = { "none",   "fsbl",     "metadata", "fip",   "env",
					      "bootfs", "vendorfs", "rootfs",   "userfs" };

const char *board_tfa_name(enum board_tfa t)
{
	return (unsigned)t < 3 ? tfa_names[t] : "?";
}

int board_tfa_parse(const char *s, enum board_tfa *out, struct abota_error *err)
{
	for (unsigned i = 0; i < 3; i++) {
		if (strcmp(s, tfa_names[i]) == 0) {
			*out = (enum board_tfa)i;
			return 0;
		}
	}
	return abota_error_set(err, -EINVAL, "unknown TF-A flavour '%.32s' (r3, upstream, v1)", s);
}

const char *board_content_name(enum board_content c)
{
	return (unsigned)c < sizeof(content_names) / sizeof(content_names[0]) ? content_names[c]
									      : "?";
}

int board_parse_size(const char *s, uint64_t *out)
{
	if (!s || !*s || s[0] == '-' || s[0] == '+' || isspace((unsigned char)s[0]))
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	uint64_t mul = 1;
	if (*end) {
		static const struct {
			const char *suffix;
			uint64_t mul;
		} sfx[] = { { "K", 1ull << 10 },   { "KiB", 1ull << 10 }, { "M", 1ull << 20 },
			    { "MiB", 1ull << 20 }, { "G", 1ull << 30 },   { "GiB", 1ull << 30 },
			    { "T", 1ull << 40 },   { "TiB", 1ull << 40 } };
		mul = 0;
		for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++)
			if (strcmp(end, sfx[i].suffix) == 0)
				mul = sfx[i].mul;
		if (!mul)
			return -EINVAL;
	}
	if (v > UINT64_MAX / mul)
		return -ERANGE;
	*out = (uint64_t)v * mul;
	return 0;
}

void board_free(struct board *b)
{
	if (!b)
		return;
	free(b->parts);
	free(b->path);
	free(b->dir);
	free(b);
}

/* --- key helpers: every message names file, group and key ------------------ */

static int get_str(struct keyfile *kf, const char *g, const char *k, bool required, char *buf,
		   size_t cap, struct abota_error *err);

/* [fixup.<name>] class=, path=, kind=cmdline|mounts, required=true|false */
static int parse_fixup(struct keyfile *kf, const char *group, struct board *b,
		       struct abota_error *err)
{
	char kind[16];
	bool required = false;
	if (b->nfixups == BOARD_MAX_FIXUPS)
		return abota_error_set(err, -EINVAL, "%s: more than %d [fixup.*] groups",
				       keyfile_name(kf), BOARD_MAX_FIXUPS);
	struct board_fixup *f = &b->fixups[b->nfixups];
	int ret;
	keyfile_consume_group(kf, group);
	if ((ret = get_str(kf, group, "class", true, f->sclass, sizeof(f->sclass), err)) < 0 ||
	    (ret = get_str(kf, group, "path", true, f->path, sizeof(f->path), err)) < 0 ||
	    (ret = get_str(kf, group, "kind", true, kind, sizeof(kind), err)) < 0)
		return ret;
	ret = keyfile_get_bool(kf, group, "required", &required, err);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	if (strcmp(kind, "cmdline") != 0 && strcmp(kind, "mounts") != 0)
		return abota_error_set(err, -EINVAL, "%s:%u: [%s] kind: '%s' is not cmdline or mounts",
				       keyfile_name(kf), keyfile_key_line(kf, group, "kind"), group,
				       kind);
	/* an absolute path without . or .. components */
	bool ok = f->path[0] == '/';
	for (const char *c = f->path; ok && *c; c++)
		if (c[0] == '/' && c[1] == '.' &&
		    (c[2] == '/' || c[2] == '\0' || (c[2] == '.' && (c[3] == '/' || c[3] == '\0'))))
			ok = false;
	if (!ok)
		return abota_error_set(err, -EINVAL,
				       "%s:%u: [%s] path: '%s' is not an absolute path without . or ..",
				       keyfile_name(kf), keyfile_key_line(kf, group, "path"), group,
				       f->path);
	f->cmdline = strcmp(kind, "cmdline") == 0;
	f->required = required;
	b->nfixups++;
	return 0;
}

static int get_str(struct keyfile *kf, const char *g, const char *k, bool required, char *buf,
		   size_t cap, struct abota_error *err)
{
	const char *v;
	int ret = keyfile_get_string(kf, g, k, &v, err);
	if (ret == -ENOENT) {
		if (!required)
			return 0;
		return abota_error_set(err, -EINVAL, "%s: [%s]: missing key '%s'", keyfile_name(kf),
				       g, k);
	}
	if (ret < 0)
		return ret;
	if (strlen(v) >= cap)
		return abota_error_set(err, -EINVAL, "%s:%u: [%s] %s: value too long (max %zu)",
				       keyfile_name(kf), keyfile_key_line(kf, g, k), g, k, cap - 1);
	if (required && !*v)
		return abota_error_set(err, -EINVAL, "%s:%u: [%s] %s: missing value",
				       keyfile_name(kf), keyfile_key_line(kf, g, k), g, k);
	snprintf(buf, cap, "%s", v);
	return 1;
}

static int get_size(struct keyfile *kf, const char *g, const char *k, bool required,
		    uint64_t *out, struct abota_error *err)
{
	char buf[64] = ""; /* get_str fills it only when it returns 1 */
	int ret = get_str(kf, g, k, required, buf, sizeof(buf), err);
	if (ret <= 0)
		return ret;
	if (board_parse_size(buf, out) < 0)
		return abota_error_set(err, -EINVAL,
				       "%s:%u: [%s] %s: invalid size '%s' (bytes, 0x..., or with "
				       "KiB/MiB/GiB)",
				       keyfile_name(kf), keyfile_key_line(kf, g, k), g, k, buf);
	return 1;
}

static int get_guid(struct keyfile *kf, const char *g, const char *k, bool required,
		    struct guid *out, struct abota_error *err)
{
	char buf[64];
	int ret = get_str(kf, g, k, required, buf, sizeof(buf), err);
	if (ret <= 0)
		return ret;
	if (guid_parse(buf, out, err) < 0) {
		abota_error_prefix(err, "%s:%u: [%s] %s", keyfile_name(kf),
				   keyfile_key_line(kf, g, k), g, k);
		return -EINVAL;
	}
	return 1;
}

static int get_uint(struct keyfile *kf, const char *g, const char *k, bool required,
		    uint64_t max, uint64_t *out, struct abota_error *err)
{
	int ret = keyfile_get_u64(kf, g, k, out, err);
	if (ret == -ENOENT) {
		if (!required)
			return 0;
		return abota_error_set(err, -EINVAL, "%s: [%s]: missing key '%s'", keyfile_name(kf),
				       g, k);
	}
	if (ret < 0)
		return ret;
	if (*out > max)
		return abota_error_set(err, -EINVAL, "%s:%u: [%s] %s: %llu out of range (max %llu)",
				       keyfile_name(kf), keyfile_key_line(kf, g, k), g, k,
				       (unsigned long long)*out, (unsigned long long)max);
	return 1;
}

static int parse_partition(struct keyfile *kf, const char *group, struct board *b,
			   struct board_partition *p, struct abota_error *err)
{
	const char *name = group + strlen("partition.");
	const char *fn = keyfile_name(kf);
	int ret;
	if (!*name || strlen(name) > 36)
		return abota_error_set(err, -EINVAL,
				       "%s: [%s]: partition name must be 1..36 characters", fn,
				       group);
	for (const char *c = name; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.')
			return abota_error_set(err, -EINVAL,
					       "%s: [%s]: partition names use letters, digits, "
					       "'-', '_' and '.'",
					       fn, group);
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->bank = -1;
	p->fwu_image = -1;
	char buf[64];
	if ((ret = get_size(kf, group, "offset", true, &p->offset, err)) < 0)
		return ret;
	ret = get_str(kf, group, "size", true, buf, sizeof(buf), err);
	if (ret < 0)
		return ret;
	if (strcmp(buf, "rest") == 0)
		p->size = 0;
	else if ((ret = get_size(kf, group, "size", true, &p->size, err)) < 0)
		return ret;
	else if (p->size == 0)
		return abota_error_set(err, -EINVAL, "%s:%u: [%s] size: must not be 0", fn,
				       keyfile_key_line(kf, group, "size"), group);
	if ((ret = get_guid(kf, group, "type", true, &p->type, err)) < 0)
		return ret;
	if ((ret = get_guid(kf, group, "uuid", false, &p->uuid, err)) < 0)
		return ret;
	bool flag;
	ret = keyfile_get_bool(kf, group, "bootable", &flag, err);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	if (ret == 0 && flag)
		p->attrs |= GPT_ATTR_LEGACY_BIOS_BOOTABLE;
	ret = get_str(kf, group, "content", false, buf, sizeof(buf), err);
	if (ret < 0)
		return ret;
	if (ret > 0) {
		bool found = false;
		for (unsigned i = 0; i < sizeof(content_names) / sizeof(content_names[0]); i++) {
			if (strcmp(buf, content_names[i]) == 0) {
				p->content = (enum board_content)i;
				found = true;
			}
		}
		if (!found)
			return abota_error_set(err, -EINVAL,
					       "%s:%u: [%s] content: unknown '%s' (none, fsbl, "
					       "metadata, fip, env, bootfs, vendorfs, rootfs, userfs)",
					       fn, keyfile_key_line(kf, group, "content"), group, buf);
	}
	uint64_t v;
	ret = get_uint(kf, group, "bank", false, FWU_MD_MAX_BANKS - 1, &v, err);
	if (ret < 0)
		return ret;
	if (ret > 0) {
		if (v >= b->fwu.num_banks)
			return abota_error_set(err, -EINVAL, "%s:%u: [%s] bank: %llu, board has %u banks",
					       fn, keyfile_key_line(kf, group, "bank"), group,
					       (unsigned long long)v, b->fwu.num_banks);
		p->bank = (int)v;
	}
	ret = get_uint(kf, group, "fwu-image", false, FWU_MD_MAX_IMAGES - 1, &v, err);
	if (ret < 0)
		return ret;
	if (ret > 0) {
		if (v >= b->fwu.num_images)
			return abota_error_set(err, -EINVAL,
					       "%s:%u: [%s] fwu-image: %llu, board has %u images", fn,
					       keyfile_key_line(kf, group, "fwu-image"), group,
					       (unsigned long long)v, b->fwu.num_images);
		if (p->bank < 0)
			return abota_error_set(err, -EINVAL,
					       "%s: [%s]: fwu-image needs a bank", fn, group);
		p->fwu_image = (int)v;
	}
	ret = get_str(kf, group, "slot", false, p->slot, sizeof(p->slot), err);
	if (ret < 0)
		return ret;
	if (ret > 0) {
		const char *dot = strchr(p->slot, '.');
		if (!dot || dot == p->slot || !dot[1] || strchr(dot + 1, '.'))
			return abota_error_set(err, -EINVAL,
					       "%s:%u: [%s] slot: '%s' is not <class>.<index>", fn,
					       keyfile_key_line(kf, group, "slot"), group, p->slot);
	}
	return 0;
}

/* A gpt_disk view of the layout (for the metadata lookups). */
static int layout_as_gpt(const struct board *b, struct gpt_disk *d, struct gpt_part *parts)
{
	memset(d, 0, sizeof(*d));
	d->size = b->disk_size;
	d->sector_size = b->sector_size;
	d->nparts = b->nparts;
	d->parts = parts;
	for (size_t i = 0; i < b->nparts; i++) {
		memset(&parts[i], 0, sizeof(parts[i]));
		parts[i].number = (unsigned)i + 1;
		snprintf(parts[i].name, sizeof(parts[i].name), "%s", b->parts[i].name);
		parts[i].type = b->parts[i].type;
		parts[i].uuid = b->parts[i].uuid;
		parts[i].start = b->parts[i].offset;
		parts[i].size = b->parts[i].size;
	}
	return 0;
}

uint64_t board_min_disk_size(const struct board *b)
{
	uint64_t end = 0;
	for (size_t i = 0; i < b->nparts; i++) {
		const struct board_partition *p = &b->parts[i];
		/* a "rest" partition needs at least one sector */
		uint64_t e = p->offset + (p->size ? p->size : b->sector_size);
		if (e > end)
			end = e;
	}
	return end + (uint64_t)GPT_BACKUP_SECTORS * b->sector_size;
}

int board_check_disk_size(const struct board *b, uint64_t size, struct abota_error *err)
{
	if (size % b->sector_size)
		return abota_error_set(err, -EINVAL,
				       "disk size %llu is not a multiple of the %u-byte sector",
				       (unsigned long long)size, b->sector_size);
	uint64_t min = board_min_disk_size(b);
	if (size < min)
		return abota_error_set(err, -EINVAL,
				       "disk size %llu is too small for board %s: the layout needs "
				       "at least %llu bytes (%llu MiB)",
				       (unsigned long long)size, b->name, (unsigned long long)min,
				       (unsigned long long)((min + (1 << 20) - 1) >> 20));
	return 0;
}

static int validate(struct board *b, struct abota_error *err)
{
	const char *fn = b->path ? b->path : b->name;
	uint64_t ss = b->sector_size;
	if (b->nparts == 0)
		return abota_error_set(err, -EINVAL, "%s: no [partition.*] groups", fn);
	for (size_t i = 0; i < b->nparts; i++) {
		const struct board_partition *p = &b->parts[i];
		if (p->offset % ss || p->size % ss)
			return abota_error_set(err, -EINVAL,
					       "%s: partition %s: offset 0x%llx / size 0x%llx not "
					       "aligned to %llu-byte sectors",
					       fn, p->name, (unsigned long long)p->offset,
					       (unsigned long long)p->size, (unsigned long long)ss);
		if (p->offset < GPT_FIRST_USABLE_LBA * ss)
			return abota_error_set(err, -EINVAL,
					       "%s: partition %s: offset 0x%llx is inside the "
					       "primary GPT (first usable byte 0x%llx)",
					       fn, p->name, (unsigned long long)p->offset,
					       (unsigned long long)(GPT_FIRST_USABLE_LBA * ss));
		if (p->size == 0 && i != b->nparts - 1)
			return abota_error_set(err, -EINVAL,
					       "%s: partition %s: size=rest is only allowed for the "
					       "last partition",
					       fn, p->name);
		if (p->size && p->offset > UINT64_MAX - p->size)
			return abota_error_set(err, -EINVAL, "%s: partition %s: offset + size "
					       "overflows", fn, p->name);
		for (size_t j = 0; j < i; j++) {
			const struct board_partition *q = &b->parts[j];
			uint64_t pe = p->size ? p->offset + p->size : UINT64_MAX;
			uint64_t qe = q->size ? q->offset + q->size : UINT64_MAX;
			if (p->offset < qe && q->offset < pe)
				return abota_error_set(err, -EINVAL,
						       "%s: partitions %s [0x%llx, 0x%llx) and %s "
						       "[0x%llx, 0x%llx) overlap",
						       fn, q->name, (unsigned long long)q->offset,
						       (unsigned long long)qe, p->name,
						       (unsigned long long)p->offset,
						       (unsigned long long)pe);
			if (strcmp(p->name, q->name) == 0)
				return abota_error_set(err, -EINVAL, "%s: partition name %s used twice",
						       fn, p->name);
			if (!guid_is_zero(&p->uuid) && guid_equal(&p->uuid, &q->uuid))
				return abota_error_set(err, -EINVAL,
						       "%s: partitions %s and %s have the same uuid", fn,
						       q->name, p->name);
			if (p->slot[0] && strcmp(p->slot, q->slot) == 0)
				return abota_error_set(err, -EINVAL,
						       "%s: slot %s is used by partitions %s and %s", fn,
						       p->slot, q->name, p->name);
		}
	}
	int ret = board_check_disk_size(b, b->disk_size, err);
	if (ret < 0) {
		abota_error_prefix(err, "%s: [board] disk-size", fn);
		return ret;
	}
	/* Metadata copies: found the same way by TF-A r3 and U-Boot. */
	struct gpt_part *gp = calloc(b->nparts, sizeof(*gp));
	if (!gp)
		return abota_error_set(err, -ENOMEM, "out of memory");
	struct gpt_disk d;
	const struct gpt_part *r3[2], *ub[2];
	layout_as_gpt(b, &d, gp);
	ret = fwu_store_locate(&d, FWU_LOOKUP_ST_R3, r3, err);
	if (ret == 0)
		ret = fwu_store_locate(&d, FWU_LOOKUP_UBOOT, ub, err);
	if (ret == 0 && (r3[0]->number != ub[0]->number || r3[1]->number != ub[1]->number))
		ret = abota_error_set(err, -EINVAL,
				      "metadata1 must precede metadata2 in the partition list "
				      "(U-Boot takes the first two of the metadata type)");
	free(gp);
	if (ret < 0) {
		abota_error_prefix(err, "%s: metadata partitions", fn);
		return ret;
	}
	/* Every image of every bank: one partition, fixed GUID, image type. */
	for (unsigned img = 0; img < b->fwu.num_images; img++) {
		for (unsigned bank = 0; bank < b->fwu.num_banks; bank++) {
			const struct board_partition *found = NULL;
			for (size_t i = 0; i < b->nparts; i++) {
				const struct board_partition *p = &b->parts[i];
				if (p->fwu_image != (int)img || p->bank != (int)bank)
					continue;
				if (found)
					return abota_error_set(err, -EINVAL,
							       "%s: FWU image %u of bank %u is in both "
							       "%s and %s",
							       fn, img, bank, found->name, p->name);
				found = p;
			}
			if (!found)
				return abota_error_set(err, -EINVAL,
						       "%s: no partition holds FWU image %u of bank %u "
						       "(fwu-image=%u, bank=%u)",
						       fn, img, bank, img, bank);
			if (guid_is_zero(&found->uuid))
				return abota_error_set(err, -EINVAL,
						       "%s: partition %s holds an FWU image and needs a "
						       "fixed uuid (the metadata names it)",
						       fn, found->name);
			if (b->fwu.num_image_types > img &&
			    !guid_equal(&found->type, &b->fwu.image_types[img])) {
				char t1[GUID_STR_LEN + 1], t2[GUID_STR_LEN + 1];
				return abota_error_set(err, -EINVAL,
						       "%s: partition %s: type %s differs from FWU "
						       "image %u's type %s",
						       fn, found->name, guid_format(&found->type, t1),
						       img, guid_format(&b->fwu.image_types[img], t2));
			}
		}
	}
	if ((b->tfa == BOARD_TFA_V1) != (b->fwu.version == 1))
		return abota_error_set(err, -EINVAL,
				       "%s: [board] tfa=%s does not read metadata v%u", fn,
				       board_tfa_name(b->tfa), b->fwu.version);
	return 0;
}

int board_parse(const char *data, size_t len, const char *name, struct board **out,
		struct abota_error *err)
{
	struct keyfile *kf = NULL;
	struct board *b = NULL;
	char buf[256];
	uint64_t v;
	int ret = keyfile_parse(data, len, name, &kf, err);
	if (ret < 0)
		return ret;
	b = calloc(1, sizeof(*b));
	if (!b) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	b->sector_size = 512;
	b->location_guid = GUID_FWU_METADATA_TYPE;
	b->path = strdup(name);
	if (!b->path) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if ((ret = get_str(kf, "board", "name", true, b->name, sizeof(b->name), err)) < 0)
		goto out;
	if ((ret = get_str(kf, "board", "description", false, b->description,
			   sizeof(b->description), err)) < 0)
		goto out;
	if ((ret = get_str(kf, "board", "soc", false, b->soc, sizeof(b->soc), err)) < 0)
		goto out;
	if ((ret = get_str(kf, "board", "storage", false, b->storage, sizeof(b->storage), err)) <
	    0)
		goto out;
	if ((ret = get_size(kf, "board", "disk-size", true, &b->disk_size, err)) < 0)
		goto out;
	if ((ret = get_uint(kf, "board", "sector-size", false, 4096, &v, err)) < 0)
		goto out;
	if (ret > 0) {
		if (v != 512 && v != 4096) {
			ret = abota_error_set(err, -EINVAL, "%s: [board] sector-size: 512 or 4096",
					      name);
			goto out;
		}
		b->sector_size = (unsigned)v;
	}
	if ((ret = get_str(kf, "board", "tfa", true, buf, sizeof(buf), err)) < 0)
		goto out;
	if ((ret = board_tfa_parse(buf, &b->tfa, err)) < 0) {
		abota_error_prefix(err, "%s:%u: [board] tfa", name,
				   keyfile_key_line(kf, "board", "tfa"));
		goto out;
	}

	if ((ret = get_uint(kf, "fwu", "metadata-version", true, 2, &v, err)) < 0)
		goto out;
	if (v < 1) {
		ret = abota_error_set(err, -EINVAL, "%s: [fwu] metadata-version: 1 or 2", name);
		goto out;
	}
	b->fwu.version = (uint32_t)v;
	if ((ret = get_uint(kf, "fwu", "banks", true, FWU_MD_MAX_BANKS, &v, err)) < 0)
		goto out;
	if (v < 2) {
		ret = abota_error_set(err, -EINVAL, "%s: [fwu] banks: at least 2 for A/B", name);
		goto out;
	}
	b->fwu.num_banks = (uint8_t)v;
	if ((ret = get_uint(kf, "fwu", "images", true, FWU_MD_MAX_IMAGES, &v, err)) < 0)
		goto out;
	if (v < 1) {
		ret = abota_error_set(err, -EINVAL, "%s: [fwu] images: at least 1", name);
		goto out;
	}
	b->fwu.num_images = (uint16_t)v;
	const char *const *types;
	size_t ntypes;
	ret = keyfile_get_list(kf, "fwu", "image-types", &types, &ntypes, err);
	if (ret == -ENOENT)
		ret = abota_error_set(err, -EINVAL, "%s: [fwu]: missing key 'image-types'", name);
	if (ret < 0)
		goto out;
	if (ntypes != b->fwu.num_images) {
		ret = abota_error_set(err, -EINVAL,
				      "%s:%u: [fwu] image-types: %zu types for %u images", name,
				      keyfile_key_line(kf, "fwu", "image-types"), ntypes,
				      b->fwu.num_images);
		goto out;
	}
	for (size_t i = 0; i < ntypes; i++) {
		if ((ret = guid_parse(types[i], &b->fwu.image_types[i], err)) < 0) {
			abota_error_prefix(err, "%s:%u: [fwu] image-types", name,
					   keyfile_key_line(kf, "fwu", "image-types"));
			goto out;
		}
	}
	b->fwu.num_image_types = (uint16_t)ntypes;
	if ((ret = get_guid(kf, "fwu", "location", false, &b->location_guid, err)) < 0)
		goto out;

	if ((ret = get_str(kf, "fwu-info", "register", true, b->fwu_info_register,
			   sizeof(b->fwu_info_register), err)) < 0)
		goto out;
	if ((ret = get_size(kf, "fwu-info", "address", true, &b->fwu_info_address, err)) < 0)
		goto out;
	if ((ret = get_size(kf, "fwu-info", "nvmem-offset", false, &b->fwu_info_nvmem_offset,
			    err)) < 0)
		goto out;
	b->has_nvmem_offset = ret > 0;

	size_t ng = keyfile_group_count(kf), np = 0;
	for (size_t g = 0; g < ng; g++) {
		const char *group = keyfile_group_name(kf, g);
		if (strncmp(group, "partition.", 10) == 0)
			np++;
		if (strncmp(group, "fixup.", 6) == 0 &&
		    (ret = parse_fixup(kf, group, b, err)) < 0)
			goto out;
	}
	if (np > BOARD_MAX_PARTS) {
		ret = abota_error_set(err, -EINVAL, "%s: %zu partitions (max %d)", name, np,
				      BOARD_MAX_PARTS);
		goto out;
	}
	b->parts = calloc(np ? np : 1, sizeof(*b->parts));
	if (!b->parts) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t g = 0; g < ng; g++) {
		const char *group = keyfile_group_name(kf, g);
		if (strncmp(group, "partition.", 10) != 0)
			continue;
		keyfile_consume_group(kf, group);
		if ((ret = parse_partition(kf, group, b, &b->parts[b->nparts], err)) < 0)
			goto out;
		b->nparts++;
	}
	if ((ret = keyfile_check_consumed(kf, err)) < 0)
		goto out;
	if ((ret = validate(b, err)) < 0)
		goto out;
	*out = b;
	b = NULL;
	ret = 0;
out:
	keyfile_free(kf);
	board_free(b);
	return ret;
}

static bool is_path(const char *s)
{
	size_t n = strlen(s);
	return strchr(s, '/') || (n > 5 && strcmp(s + n - 5, ".conf") == 0);
}

static bool valid_name(const char *s)
{
	if (!*s || strlen(s) > BOARD_NAME_MAX || s[0] == '.')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

/* Calls fn(dir) for each search directory until it returns non-zero. */
static int for_each_dir(int (*fn)(const char *dir, void *ctx), void *ctx)
{
	const char *env = getenv("ABOTA_BOARDS_DIR");
	if (env && *env) {
		char *copy = strdup(env), *save = NULL;
		if (!copy)
			return -ENOMEM;
		for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
			int r = fn(d, ctx);
			if (r) {
				free(copy);
				return r;
			}
		}
		free(copy);
	}
#ifdef ABOTA_BOARDS_SRCDIR
	{
		int r = fn(ABOTA_BOARDS_SRCDIR, ctx);
		if (r)
			return r;
	}
#endif
#ifdef ABOTA_BOARDS_DATADIR
	{
		int r = fn(ABOTA_BOARDS_DATADIR, ctx);
		if (r)
			return r;
	}
#endif
	return 0;
}

struct find_ctx {
	const char *name;
	char path[PATH_MAX];
};

static int find_in(const char *dir, void *vctx)
{
	struct find_ctx *ctx = vctx;
	struct stat st;
	snprintf(ctx->path, sizeof(ctx->path), "%s/%s/board.conf", dir, ctx->name);
	return stat(ctx->path, &st) == 0 && S_ISREG(st.st_mode);
}

int board_load(const char *name_or_path, struct board **out, struct abota_error *err)
{
	struct find_ctx ctx = { .name = name_or_path };
	const char *path = name_or_path;
	char *data = NULL;
	size_t len;
	if (!is_path(name_or_path)) {
		if (!valid_name(name_or_path))
			return abota_error_set(err, -EINVAL, "invalid board name '%.64s'",
					       name_or_path);
		int r = for_each_dir(find_in, &ctx);
		if (r < 0)
			return abota_error_set(err, r, "out of memory");
		if (r == 0)
			return abota_error_set(err, -ENOENT,
					       "unknown board '%s' (see 'abota-sim boards'; search "
					       "path: $ABOTA_BOARDS_DIR, built-in profiles)",
					       name_or_path);
		path = ctx.path;
	}
	int ret = fileio_read_all(path, BOARD_FILE_MAX, &data, &len, err);
	if (ret < 0)
		return ret;
	struct board *b = NULL;
	ret = board_parse(data, len, path, &b, err);
	free(data);
	if (ret < 0)
		return ret;
	b->dir = strdup(path);
	if (!b->dir) {
		board_free(b);
		return abota_error_set(err, -ENOMEM, "out of memory");
	}
	char *slash = strrchr(b->dir, '/');
	if (slash) {
		*slash = '\0';
	} else {
		/* a bare file name: its directory is "."; b->dir may be shorter than that */
		free(b->dir);
		if (!(b->dir = strdup("."))) {
			board_free(b);
			return abota_error_set(err, -ENOMEM, "out of memory");
		}
	}
	*out = b;
	return 0;
}

struct fwu_md_config board_fwu_config(const struct board *b)
{
	return b->fwu;
}

const struct board_partition *board_image_partition(const struct board *b, unsigned image,
						    unsigned bank)
{
	for (size_t i = 0; i < b->nparts; i++)
		if (b->parts[i].fwu_image == (int)image && b->parts[i].bank == (int)bank)
			return &b->parts[i];
	return NULL;
}

const struct board_partition *board_partition(const struct board *b, const char *name)
{
	for (size_t i = 0; i < b->nparts; i++)
		if (strcmp(b->parts[i].name, name) == 0)
			return &b->parts[i];
	return NULL;
}

const struct board_partition *board_bank_partition(const struct board *b, unsigned bank,
						   enum board_content content)
{
	for (size_t i = 0; i < b->nparts; i++)
		if (b->parts[i].bank == (int)bank && b->parts[i].content == content)
			return &b->parts[i];
	return NULL;
}

int board_fill_metadata_guids(const struct board *b, struct fwu_metadata *md,
			      struct abota_error *err)
{
	if (md->num_images != b->fwu.num_images || md->num_banks != b->fwu.num_banks)
		return abota_error_set(err, -EINVAL,
				       "metadata has %u banks x %u images, board %s has %u x %u",
				       md->num_banks, md->num_images, b->name, b->fwu.num_banks,
				       b->fwu.num_images);
	for (unsigned i = 0; i < md->num_images; i++) {
		md->img[i].type_guid = b->fwu.image_types[i];
		md->img[i].location_guid = b->location_guid;
		for (unsigned bank = 0; bank < md->num_banks; bank++) {
			const struct board_partition *p = board_image_partition(b, i, bank);
			if (!p)
				return abota_error_set(err, -EINVAL, "board %s: no partition for image "
						       "%u bank %u", b->name, i, bank);
			md->img[i].bank[bank].img_guid = p->uuid;
		}
	}
	return 0;
}

struct list_ctx {
	char **names;
	size_t n, cap;
	int err;
};

static int list_in(const char *dir, void *vctx)
{
	struct list_ctx *ctx = vctx;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!valid_name(de->d_name))
			continue;
		char path[PATH_MAX];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s/board.conf", dir, de->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		bool dup = false;
		for (size_t i = 0; i < ctx->n; i++)
			dup = dup || strcmp(ctx->names[i], de->d_name) == 0;
		if (dup)
			continue;
		if (ctx->n == ctx->cap) {
			size_t nc = ctx->cap ? ctx->cap * 2 : 16;
			char **nn = realloc(ctx->names, nc * sizeof(*nn));
			if (!nn) {
				ctx->err = -ENOMEM;
				break;
			}
			ctx->names = nn;
			ctx->cap = nc;
		}
		ctx->names[ctx->n] = strdup(de->d_name);
		if (!ctx->names[ctx->n]) {
			ctx->err = -ENOMEM;
			break;
		}
		ctx->n++;
	}
	closedir(d);
	return ctx->err;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int board_list(char ***names, size_t *count, struct abota_error *err)
{
	struct list_ctx ctx = { 0 };
	int r = for_each_dir(list_in, &ctx);
	if (r < 0 || ctx.err < 0) {
		board_list_free(ctx.names, ctx.n);
		return abota_error_set(err, -ENOMEM, "out of memory");
	}
	if (ctx.n)
		qsort(ctx.names, ctx.n, sizeof(*ctx.names), cmp_str);
	*names = ctx.names;
	*count = ctx.n;
	return 0;
}

void board_list_free(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}
