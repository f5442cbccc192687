/* fwu_store.c - two-copy FWU metadata store (see fwu_store.h).
 *
 * Write order.  Every write below goes to one copy, followed by fdatasync of
 * that copy, before the other copy is opened for writing, so at any instant at
 * most one copy is in flight and the other is a complete, CRC-valid structure:
 * no power cut can leave both invalid (the BL2 panic / brick case of
 * specs/fwu-metadata.md §4.3).  We write the secondary (metadata2) first,
 * then the primary (metadata1), as U-Boot does (fwu_sync_mdata):
 *   - cut while writing the secondary: primary is old and valid; BL2 reads
 *     the primary, U-Boot/we see "both valid, different" or "secondary bad"
 *     and restore the secondary from the primary: the old state, consistently;
 *   - cut while writing the primary: the secondary already holds the new
 *     state; BL2 falls back to it and U-Boot/we repair the primary from it:
 *     the new state.
 * So the new state takes effect exactly when its first copy (secondary) is
 * durable *and* the primary write has started, and BL2, U-Boot and Linux
 * always agree on which state is in effect (all prefer a valid primary).
 * Writing the primary first would be equally safe; using U-Boot's order means
 * every writer on the device uses the same order.
 */
#include "abota/fwu_store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abota/fileio.h"
#include "abota/powercut.h"

struct fwu_copy_loc {
	char *path;
	uint64_t offset;
	uint64_t size; /* bytes reserved for the copy; 0 = to the end of the file */
	char name[GPT_NAME_MAX + 1];
};

struct fwu_store {
	unsigned ncopies;
	struct fwu_copy_loc copy[2];
	struct fwu_md_config cfg;
	bool create;
	struct gpt_disk *gpt;
};

void fwu_store_free(struct fwu_store *st)
{
	if (!st)
		return;
	for (unsigned i = 0; i < 2; i++)
		free(st->copy[i].path);
	gpt_free(st->gpt);
	free(st);
}

unsigned fwu_store_ncopies(const struct fwu_store *st)
{
	return st->ncopies;
}

const char *fwu_store_copy_name(const struct fwu_store *st, unsigned i)
{
	return i < st->ncopies ? st->copy[i].name : "?";
}

const struct fwu_md_config *fwu_store_config(const struct fwu_store *st)
{
	return &st->cfg;
}

const struct gpt_disk *fwu_store_gpt(const struct fwu_store *st)
{
	return st->gpt;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s && s[1] ? s + 1 : p;
}

int fwu_store_open_files(const char *const *paths, unsigned n, const struct fwu_md_config *cfg,
			 bool create, struct fwu_store **out, struct abota_error *err)
{
	if (n < 1 || n > 2)
		return abota_error_set(err, -EINVAL, "1 or 2 metadata copies expected, got %u", n);
	struct fwu_store *st = calloc(1, sizeof(*st));
	if (!st)
		return abota_error_set(err, -ENOMEM, "out of memory");
	st->ncopies = n;
	st->create = create;
	if (cfg)
		st->cfg = *cfg;
	else
		fwu_md_config_st(&st->cfg, 2);
	for (unsigned i = 0; i < n; i++) {
		st->copy[i].path = strdup(paths[i]);
		if (!st->copy[i].path) {
			fwu_store_free(st);
			return abota_error_set(err, -ENOMEM, "out of memory");
		}
		snprintf(st->copy[i].name, sizeof(st->copy[i].name), "%s", base_name(paths[i]));
		if (n == 2 && strcmp(st->copy[0].name, st->copy[1].name) == 0 && i == 1) {
			snprintf(st->copy[0].name, sizeof(st->copy[0].name), "%s", "copy1");
			snprintf(st->copy[1].name, sizeof(st->copy[1].name), "%s", "copy2");
		}
	}
	*out = st;
	return 0;
}

int fwu_store_locate(const struct gpt_disk *disk, enum fwu_md_lookup how,
		     const struct gpt_part *out[2], struct abota_error *err)
{
	const struct gpt_part *found[2] = { NULL, NULL };
	static const char *const names[2] = { "metadata1", "metadata2" };
	const struct guid *uuids[2] = { &GUID_FWU_METADATA1_UUID, &GUID_FWU_METADATA2_UUID };
	int ret;
	switch (how) {
	case FWU_LOOKUP_ST_R3:
		for (unsigned c = 0; c < 2; c++) {
			for (size_t i = 0; i < disk->nparts && !found[c]; i++)
				if (guid_equal(&disk->parts[i].type, &GUID_FWU_METADATA_TYPE) &&
				    guid_equal(&disk->parts[i].uuid, uuids[c]))
					found[c] = &disk->parts[i];
			if (!found[c]) {
				ret = gpt_find_name(disk, names[c], &found[c], err);
				if (ret < 0)
					return ret;
			}
		}
		break;
	case FWU_LOOKUP_NAME:
		for (unsigned c = 0; c < 2; c++) {
			ret = gpt_find_name(disk, names[c], &found[c], err);
			if (ret < 0)
				return ret;
		}
		break;
	case FWU_LOOKUP_UBOOT: {
		unsigned k = 0;
		for (size_t i = 0; i < disk->nparts; i++) {
			if (!guid_equal(&disk->parts[i].type, &GUID_FWU_METADATA_TYPE))
				continue;
			if (k == 2)
				return abota_error_set(err, -ENOTUNIQ,
						       "more than two partitions of the FWU metadata "
						       "type");
			found[k++] = &disk->parts[i];
		}
		if (k != 2)
			return abota_error_set(err, -ENOENT,
					       "%u partition(s) of the FWU metadata type, two needed",
					       k);
		break;
	}
	default:
		return abota_error_set(err, -EINVAL, "unknown lookup");
	}
	if (found[0] == found[1])
		return abota_error_set(err, -EINVAL, "both metadata copies resolve to partition %u",
				       found[0]->number);
	out[0] = found[0];
	out[1] = found[1];
	return 0;
}

int fwu_store_open_disk(const char *disk, const struct fwu_md_config *cfg,
			struct fwu_store **out, struct abota_error *err)
{
	struct gpt_disk *gpt = NULL;
	struct fwu_store *st = NULL;
	const struct gpt_part *r3[2], *ub[2], *nm[2];
	int ret = gpt_read(disk, &gpt, err);
	if (ret < 0)
		return ret;
	ret = fwu_store_locate(gpt, FWU_LOOKUP_ST_R3, r3, err);
	if (ret < 0) {
		abota_error_prefix(err, "%s: metadata partitions (ST TF-A r3 lookup)", disk);
		goto out;
	}
	ret = fwu_store_locate(gpt, FWU_LOOKUP_UBOOT, ub, err);
	if (ret < 0) {
		abota_error_prefix(err, "%s: metadata partitions (U-Boot lookup)", disk);
		goto out;
	}
	if (r3[0] != ub[0] || r3[1] != ub[1]) {
		ret = abota_error_set(err, -EINVAL,
				      "%s: TF-A uses partitions %u/%u as metadata1/metadata2 but "
				      "U-Boot uses %u/%u (metadata1 must precede metadata2)",
				      disk, r3[0]->number, r3[1]->number, ub[0]->number,
				      ub[1]->number);
		goto out;
	}
	if (fwu_store_locate(gpt, FWU_LOOKUP_NAME, nm, NULL) == 0 &&
	    (nm[0] != r3[0] || nm[1] != r3[1])) {
		ret = abota_error_set(err, -EINVAL,
				      "%s: partitions named metadata1/metadata2 (%u/%u) are not "
				      "the ones ST TF-A r3 uses (%u/%u)",
				      disk, nm[0]->number, nm[1]->number, r3[0]->number,
				      r3[1]->number);
		goto out;
	}
	const uint64_t offset[2] = { r3[0]->start, r3[1]->start };
	const uint64_t size[2] = { r3[0]->size, r3[1]->size };
	const char *const names[2] = { r3[0]->name, r3[1]->name };
	ret = fwu_store_open_regions(disk, offset, size, names, cfg, &st, err);
	if (ret < 0)
		goto out;
	st->gpt = gpt;
	gpt = NULL;
	*out = st;
	st = NULL;
out:
	gpt_free(gpt);
	fwu_store_free(st);
	return ret;
}

int fwu_store_open_regions(const char *path, const uint64_t offset[2], const uint64_t size[2],
			   const char *const names[2], const struct fwu_md_config *cfg,
			   struct fwu_store **out, struct abota_error *err)
{
	struct fwu_store *st = calloc(1, sizeof(*st));
	if (!st)
		return abota_error_set(err, -ENOMEM, "out of memory");
	st->ncopies = 2;
	if (cfg)
		st->cfg = *cfg;
	else
		fwu_md_config_st(&st->cfg, 2);
	for (unsigned c = 0; c < 2; c++) {
		st->copy[c].path = strdup(path);
		if (!st->copy[c].path) {
			fwu_store_free(st);
			return abota_error_set(err, -ENOMEM, "out of memory");
		}
		st->copy[c].offset = offset[c];
		st->copy[c].size = size[c];
		snprintf(st->copy[c].name, sizeof(st->copy[c].name), "%s", names[c]);
	}
	*out = st;
	return 0;
}

int fwu_store_read_raw(struct fwu_store *st, unsigned i, void *buf, size_t cap, size_t *len,
		       struct abota_error *err)
{
	if (i >= st->ncopies)
		return abota_error_set(err, -EINVAL, "no copy %u", i);
	const struct fwu_copy_loc *c = &st->copy[i];
	int ret = 0;
	int fd = open(c->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return abota_error_set(err, -errno, "%s: %s: %s", c->name, c->path, strerror(errno));
	uint64_t avail;
	if (c->size) {
		avail = c->size;
	} else {
		off_t end = lseek(fd, 0, SEEK_END);
		if (end < 0) {
			ret = abota_error_set(err, -errno, "%s: %s", c->name, strerror(errno));
			goto out;
		}
		avail = (uint64_t)end > c->offset ? (uint64_t)end - c->offset : 0;
	}
	size_t n = avail < cap ? (size_t)avail : cap;
	ret = fileio_pread_full(fd, buf, n, c->offset, err);
	if (ret < 0) {
		abota_error_prefix(err, "%s", c->name);
		goto out;
	}
	*len = n;
out:
	close(fd);
	return ret;
}

int fwu_store_write_raw(struct fwu_store *st, unsigned i, const void *buf, size_t len,
			struct abota_error *err)
{
	if (i >= st->ncopies)
		return abota_error_set(err, -EINVAL, "no copy %u", i);
	const struct fwu_copy_loc *c = &st->copy[i];
	if (c->size && len > c->size)
		return abota_error_set(err, -ENOSPC, "%s: %zu bytes do not fit in %llu", c->name,
				       len, (unsigned long long)c->size);
	int flags = O_WRONLY | O_CLOEXEC | (st->create && !st->gpt ? O_CREAT : 0);
	int fd = open(c->path, flags, 0644);
	if (fd < 0)
		return abota_error_set(err, -errno, "%s: %s: %s", c->name, c->path, strerror(errno));
	int ret = powercut_pwrite(fd, buf, len, c->offset, c->name, err);
	if (ret == 0)
		ret = powercut_sync(fd, c->name, err);
	if (close(fd) < 0 && ret == 0)
		ret = abota_error_set(err, -errno, "%s: close: %s", c->name, strerror(errno));
	return ret;
}

/* The configuration to check md against: st->cfg, or with version 0 ("any"),
 * ST's configuration for the version md has. */
static void effective_config(const struct fwu_store *st, uint32_t version,
			     struct fwu_md_config *cfg)
{
	if (st->cfg.version) {
		*cfg = st->cfg;
		return;
	}
	fwu_md_config_st(cfg, version);
	if (st->cfg.num_banks)
		cfg->num_banks = st->cfg.num_banks;
	if (st->cfg.num_images)
		cfg->num_images = st->cfg.num_images;
	if (st->cfg.num_image_types) {
		cfg->num_image_types = st->cfg.num_image_types;
		memcpy(cfg->image_types, st->cfg.image_types, sizeof(cfg->image_types));
	}
}

static void check_copy(struct fwu_store *st, struct fwu_store_copy_state *cs)
{
	struct abota_error e = { 0 };
	struct fwu_md_config cfg;
	int ret = fwu_md_decode(cs->raw, cs->raw_len, &st->cfg, 0, &cs->md, &e);
	if (ret == 0) {
		cs->decoded = true;
		effective_config(st, cs->md.version, &cfg);
		ret = fwu_md_validate(&cs->md, &cfg, &e);
	} else if (fwu_md_decode(cs->raw, cs->raw_len, &st->cfg, FWU_MD_DECODE_IGNORE_CRC, &cs->md,
				 NULL) == 0) {
		cs->decoded = true;
	}
	if (ret == 0) {
		cs->valid = true;
		cs->size = fwu_md_size(cs->md.version, cs->md.num_banks, cs->md.num_images);
	} else {
		cs->error_code = ret;
		snprintf(cs->error, sizeof(cs->error), "%s", e.msg);
	}
}

int fwu_store_read(struct fwu_store *st, struct fwu_store_state *result, struct abota_error *err)
{
	int ret = 0;
	struct fwu_store_state *out = calloc(1, sizeof(*out));
	if (!out)
		return abota_error_set(err, -ENOMEM, "out of memory");
	out->ncopies = st->ncopies;
	out->winner = -1;
	for (unsigned i = 0; i < st->ncopies; i++) {
		struct fwu_store_copy_state *cs = &out->copy[i];
		struct abota_error e = { 0 };
		ret = fwu_store_read_raw(st, i, cs->raw, sizeof(cs->raw), &cs->raw_len, &e);
		if (ret == -ENOENT && st->create) {
			cs->error_code = ret;
			snprintf(cs->error, sizeof(cs->error), "%s", e.msg);
			continue;
		}
		if (ret < 0) {
			if (err)
				*err = e;
			goto out;
		}
		check_copy(st, cs);
	}
	for (unsigned i = 0; i < st->ncopies; i++) {
		if (out->copy[i].valid) {
			out->winner = (int)i;
			break;
		}
	}
	for (unsigned i = 0; i < st->ncopies; i++) {
		const struct fwu_store_copy_state *cs = &out->copy[i];
		if (!cs->valid)
			out->needs_repair = true;
		else if (out->winner >= 0 && (int)i != out->winner) {
			const struct fwu_store_copy_state *w = &out->copy[out->winner];
			if (cs->size != w->size || memcmp(cs->raw, w->raw, w->size) != 0)
				out->needs_repair = true;
		}
	}
	*result = *out;
	ret = 0;
out:
	free(out);
	return ret;
}

int fwu_store_repair(struct fwu_store *st, const struct fwu_store_state *state,
		     unsigned *repaired, struct abota_error *err)
{
	unsigned n = 0;
	if (state->winner < 0) {
		return abota_error_set(err, -EBADMSG,
				       "no valid copy to repair from (%s: %s; %s: %s): refusing to "
				       "write",
				       st->copy[0].name, state->copy[0].error,
				       st->ncopies > 1 ? st->copy[1].name : "-",
				       st->ncopies > 1 ? state->copy[1].error : "-");
	}
	const struct fwu_store_copy_state *w = &state->copy[state->winner];
	/* Same order as a full write: secondary before primary. */
	for (int i = (int)st->ncopies - 1; i >= 0; i--) {
		const struct fwu_store_copy_state *cs = &state->copy[i];
		if (i == state->winner)
			continue;
		if (cs->valid && cs->size == w->size && memcmp(cs->raw, w->raw, w->size) == 0)
			continue;
		int ret = fwu_store_write_raw(st, (unsigned)i, w->raw, w->size, err);
		if (ret < 0) {
			abota_error_prefix(err, "repairing %s from %s", st->copy[i].name,
					   st->copy[state->winner].name);
			return ret;
		}
		n++;
	}
	if (repaired)
		*repaired = n;
	return 0;
}

int fwu_store_load(struct fwu_store *st, bool repair, struct fwu_metadata *out,
		   unsigned *repaired, struct abota_error *err)
{
	struct fwu_store_state *state = malloc(sizeof(*state));
	if (!state)
		return abota_error_set(err, -ENOMEM, "out of memory");
	unsigned n = 0;
	int ret = fwu_store_read(st, state, err);
	if (ret < 0)
		goto out;
	if (state->winner < 0) {
		if (st->ncopies == 2)
			ret = abota_error_set(err, -EBADMSG, "no valid metadata copy (%s: %s; %s: %s)",
					      st->copy[0].name, state->copy[0].error,
					      st->copy[1].name, state->copy[1].error);
		else
			ret = abota_error_set(err, -EBADMSG, "%s: %s", st->copy[0].name,
					      state->copy[0].error);
		goto out;
	}
	if (repair && state->needs_repair) {
		ret = fwu_store_repair(st, state, &n, err);
		if (ret < 0)
			goto out;
	}
	*out = state->copy[state->winner].md;
	if (repaired)
		*repaired = n;
out:
	free(state);
	return ret;
}

int fwu_store_check_guids(const struct gpt_disk *disk, const struct fwu_metadata *md,
			  struct abota_error *err)
{
	char g[GUID_STR_LEN + 1];
	for (unsigned i = 0; i < md->num_images; i++) {
		for (unsigned b = 0; b < md->num_banks; b++) {
			const struct guid *id = &md->img[i].bank[b].img_guid;
			if (gpt_find_uuid(disk, id))
				continue;
			struct guid swapped;
			guid_swap_rfc4122(id, &swapped);
			const struct gpt_part *p = gpt_find_uuid(disk, &swapped);
			if (p)
				return abota_error_set(err, -EINVAL,
						       "img_entry[%u].img_bank_info[%u].img_guid %s "
						       "matches partition %s only in RFC 4122 byte "
						       "order (written without GUID conversion, "
						       "mkfwumdata -g missing)",
						       i, b, guid_format(id, g), p->name);
			return abota_error_set(err, -ENOENT,
					       "img_entry[%u].img_bank_info[%u].img_guid %s matches "
					       "no partition of the disk (BL2: \"No partition with "
					       "the uuid mentioned in metadata\")",
					       i, b, guid_format(id, g));
		}
	}
	return 0;
}

int fwu_store_write(struct fwu_store *st, const struct fwu_metadata *md,
		    struct abota_error *err)
{
	uint8_t buf[FWU_MD_MAX_SIZE];
	size_t len;
	struct fwu_md_config cfg;
	effective_config(st, md->version, &cfg);
	int ret = fwu_md_validate(md, &cfg, err);
	if (ret < 0)
		return ret;
	if (st->gpt) {
		ret = fwu_store_check_guids(st->gpt, md, err);
		if (ret < 0)
			return ret;
	}
	ret = fwu_md_encode(md, buf, sizeof(buf), &len, err);
	if (ret < 0)
		return ret;
	/* Secondary first, then primary; each durable before the next. */
	for (int i = (int)st->ncopies - 1; i >= 0; i--) {
		ret = fwu_store_write_raw(st, (unsigned)i, buf, len, err);
		if (ret < 0)
			return ret;
	}
	return 0;
}
