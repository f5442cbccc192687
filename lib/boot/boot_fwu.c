/* boot_fwu.c - boot backend on Arm PSA FWU metadata (see boot_fwu.h).
 *
 * Unlike ST's st-boot-script.sh (specs/fwu-metadata.md §3.4-3.5), nothing
 * here writes from a read path: get_primary/get_state never accept the booted
 * bank, so `abota status` can neither cancel a pending update nor accept a
 * trial before the health check.  Every write is one fwu_store_write of a
 * structure computed from the copy in effect, so the two copies are
 * rewritten one at a time, each durable before the other (fwu_store.c), and
 * a power cut leaves either the old or the new state, never a brick.
 */
#include "abota/boot_fwu.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abota/fileio.h"
#include "abota/fwu_store.h"
#include "abota/log.h"
#include "abota/slot_status.h"
#include "abota/slot_device.h"

struct fwu_priv {
	struct board *board; /* NULL without [fwu] board */
	struct fwu_md_config mdcfg;
	bool tfa_known;      /* from config or board; else derived from the version */
	enum board_tfa tfa;
	struct fwu_store *st;
};

static struct fwu_priv *priv(struct boot_backend *b)
{
	return b->priv;
}

/* Copies given as labels / PARTUUID= are looked up on the boot disk like
 * slots; paths are used as they are. */
static int open_store(const struct system_config *cfg, struct fwu_priv *p,
		      struct abota_error *err)
{
	const struct config_fwu *f = &cfg->fwu;
	char *disk = NULL;
	int ret;
	if (!f->metadata1) {
		if ((ret = slot_device_boot_disk(cfg, &disk, err)) < 0)
			return ret;
		ret = fwu_store_open_disk(disk, &p->mdcfg, &p->st, err);
		free(disk);
		return ret;
	}
	const char *spec[2] = { f->metadata1, f->metadata2 };
	if (spec[0][0] == '/' && spec[1][0] == '/')
		return fwu_store_open_files(spec, 2, &p->mdcfg, false, &p->st, err);
	struct slot_device dev[2] = { { .fd = -1 }, { .fd = -1 } };
	uint64_t off[2], size[2];
	const char *names[2] = { "metadata1", "metadata2" };
	ret = 0;
	for (unsigned i = 0; i < 2 && ret == 0; i++) {
		struct slot s = { .name = names[i] };
		if (spec[i][0] == '/' || !strncmp(spec[i], "PARTUUID=", 9))
			s.device = spec[i];
		else
			s.partition = spec[i];
		ret = slot_device_resolve(cfg, NULL, &s, &dev[i], err);
		off[i] = dev[i].offset;
		size[i] = dev[i].size;
	}
	if (ret == 0 && strcmp(dev[0].path, dev[1].path))
		ret = abota_error_set(err, -EINVAL,
				      "metadata1 (%s) and metadata2 (%s) are not on the same disk",
				      dev[0].path, dev[1].path);
	if (ret == 0)
		ret = fwu_store_open_regions(dev[0].path, off, size, names, &p->mdcfg, &p->st, err);
	slot_device_close(&dev[0]);
	slot_device_close(&dev[1]);
	return ret;
}

static void fwu_close(struct boot_backend *b)
{
	struct fwu_priv *p = priv(b);
	if (!p)
		return;
	board_free(p->board);
	fwu_store_free(p->st);
	free(p);
}

bool boot_fwu_is(const struct boot_backend *b)
{
	return b && !strcmp(b->ops->name, "fwu");
}

/* Did an install in this very boot make bank `active` the active one (so
 * the system has not rebooted into it yet)?  The status file records the
 * boot in which it was saved; the install saves it when it switches. */
static bool switched_this_boot(struct boot_backend *b, unsigned active)
{
	const struct system_config *cfg = b->cfg;
	struct slot_status_store *st = NULL;
	char now[64];
	bool same = false;
	if (!cfg->statusfile || slot_status_read_boot_id(cfg->boot_id_file, now, sizeof(now)) < 0 ||
	    slot_status_load(cfg->statusfile, &st, NULL) < 0)
		return false;
	const char *saved = slot_status_saved_boot_id(st);
	if (saved && strcmp(saved, now) == 0) {
		/* ... and the bank's slot was activated (by that install) */
		for (size_t i = 0; i < cfg->nslots && !same; i++) {
			const struct slot *s = &cfg->slots[i];
			unsigned bank;
			const struct slot_status *ss = slot_status_find(st, s->name);
			if (s->bootname && ss && ss->activated_timestamp &&
			    boot_fwu_slot_bank(b, s, &bank, NULL) == 0 && bank == active)
				same = true;
		}
	}
	slot_status_store_free(st);
	return same;
}

const struct board *boot_fwu_board(struct boot_backend *b)
{
	if (!boot_fwu_is(b))
		return NULL;
	const struct fwu_priv *p = b->priv;
	return p->board;
}

int boot_fwu_slot_bank(struct boot_backend *b, const struct slot *s, unsigned *bank,
		       struct abota_error *err)
{
	struct fwu_priv *p = priv(b);
	unsigned nb = p->mdcfg.num_banks ? p->mdcfg.num_banks : 2;
	s = slot_root(s);
	if (p->board) {
		for (size_t i = 0; i < p->board->nparts; i++) {
			const struct board_partition *bp = &p->board->parts[i];
			if (bp->bank >= 0 && !strcmp(bp->slot, s->name)) {
				*bank = (unsigned)bp->bank;
				return 0;
			}
		}
	}
	/* meta-st-ota's bootnames: A = bank 0, B = bank 1 */
	if (s->bootname && s->bootname[0] >= 'A' && s->bootname[0] < 'A' + (int)nb &&
	    !s->bootname[1]) {
		*bank = (unsigned)(s->bootname[0] - 'A');
		return 0;
	}
	if (s->bootname && s->index < nb) {
		*bank = s->index;
		return 0;
	}
	return abota_error_set(err, -ENOENT, "slot %s maps to no FWU bank", s->name);
}

static struct slot *bank_slot(struct boot_backend *b, unsigned bank)
{
	for (size_t i = 0; i < b->cfg->nslots; i++) {
		struct slot *s = &b->cfg->slots[i];
		unsigned k;
		if (!s->parent && s->bootname && boot_fwu_slot_bank(b, s, &k, NULL) == 0 &&
		    k == bank)
			return s;
	}
	return NULL;
}

const char *boot_fwu_bank_bootname(struct boot_backend *b, unsigned bank)
{
	struct slot *s = bank_slot(b, bank);
	return s ? s->bootname : NULL;
}

static int load(struct boot_backend *b, struct fwu_metadata *md, struct abota_error *err)
{
	/* no repair here: reading status must not write anything */
	int ret = fwu_store_load(priv(b)->st, false, md, NULL, err);
	if (ret < 0)
		abota_error_prefix(err, "FWU metadata");
	return ret;
}

static int store(struct boot_backend *b, const struct fwu_metadata *md, const char *what,
		 struct abota_error *err)
{
	int ret = fwu_store_write(priv(b)->st, md, err);
	if (ret < 0)
		abota_error_prefix(err, "%s: writing FWU metadata", what);
	else
		log_debug("fwu: %s: active %u, previous %u", what, md->active_index,
			  md->previous_active_index);
	return ret;
}

static int read_fwu_info(struct boot_backend *b, uint32_t *val, struct abota_error *err)
{
	const struct config_fwu *f = &b->cfg->fwu;
	uint8_t buf[4];
	if (!f->fwu_info)
		return abota_error_set(err, -ENOTSUP, "no [fwu] fwu-info configured");
	int fd = open(f->fwu_info, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return abota_error_set(err, -errno, "FWU_INFO %s: %s", f->fwu_info, strerror(errno));
	int ret = fileio_pread_full(fd, buf, sizeof(buf), f->fwu_info_offset, err);
	close(fd);
	if (ret < 0) {
		abota_error_prefix(err, "FWU_INFO %s at 0x%llx", f->fwu_info,
				   (unsigned long long)f->fwu_info_offset);
		return ret;
	}
	*val = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 |
	       (uint32_t)buf[3] << 24;
	return 0;
}

static enum board_tfa tfa_of(struct boot_backend *b, uint32_t md_version)
{
	struct fwu_priv *p = priv(b);
	if (md_version == 1)
		return BOARD_TFA_V1;
	return p->tfa_known && p->tfa != BOARD_TFA_V1 ? p->tfa : BOARD_TFA_R3;
}

/* Trial boots a bank made VALID gets, from the counter BL2 will read next
 * (spec §2.3).  r3 (MAX 4): c > 1 boots and writes c-1, c == 1 falls back,
 * c == 0 re-arms to 4 first; upstream/v1 (MAX 3): c > 0 boots and writes
 * c-1, c == 0 falls back. */
static void budget(enum board_tfa tfa, unsigned c, unsigned *left, unsigned *max)
{
	if (tfa == BOARD_TFA_R3) {
		*left = c == 0 ? 4 : c - 1;
		*max = 3;
	} else {
		*left = c;
		*max = 3;
	}
}

/* The booted bank: the booted slot (command line) and FWU_INFO must agree
 * when both are known. */
static int booted_bank(struct boot_backend *b, unsigned *bank, struct abota_error *err)
{
	const struct slot *booted = slot_get_booted(b->cfg);
	uint32_t info = 0;
	bool have_info = read_fwu_info(b, &info, NULL) == 0;
	int ret;
	if (booted) {
		if ((ret = boot_fwu_slot_bank(b, booted, bank, err)) < 0)
			return ret;
		if (have_info && (info & 0xF) != *bank)
			return abota_error_set(err, -EIO,
					       "booted slot %s is bank %u but FWU_INFO says BL2 "
					       "booted bank %u",
					       slot_root(booted)->name, *bank, info & 0xF);
		return 0;
	}
	if (have_info) {
		*bank = info & 0xF;
		return 0;
	}
	return abota_error_set(err, -ENOENT, "the booted bank is unknown");
}

static int fwu_get_booted(struct boot_backend *b, char **bootname, struct abota_error *err)
{
	uint32_t info = 0;
	int ret = read_fwu_info(b, &info, err);
	if (ret < 0)
		return ret;
	const char *name = boot_fwu_bank_bootname(b, info & 0xF);
	if (!name)
		return abota_error_set(err, -ENOENT, "FWU_INFO boot index %u maps to no slot",
				       info & 0xF);
	if (!(*bootname = strdup(name)))
		return abota_error_set(err, -ENOMEM, "out of memory");
	return 0;
}

static int fwu_get_primary(struct boot_backend *b, struct slot **primary,
			   struct abota_error *err)
{
	struct fwu_metadata md;
	int ret = load(b, &md, err);
	if (ret < 0)
		return ret;
	*primary = bank_slot(b, md.active_index);
	return 0;
}

static int fwu_get_state(struct boot_backend *b, const struct slot *s, bool *good,
			 struct abota_error *err)
{
	struct fwu_metadata md;
	unsigned bank;
	int ret = boot_fwu_slot_bank(b, s, &bank, err);
	if (ret < 0 || (ret = load(b, &md, err)) < 0)
		return ret;
	if (bank >= md.num_banks)
		return abota_error_set(err, -ERANGE, "bank %u of slot %s is beyond num_banks %u",
				       bank, s->name, md.num_banks);
	uint8_t st = fwu_md_bank_state(&md, bank);
	*good = st == FWU_BANK_ACCEPTED || st == FWU_BANK_VALID;
	return 0;
}

static int fwu_set_primary(struct boot_backend *b, const struct slot *s, struct abota_error *err)
{
	struct fwu_metadata md;
	unsigned bank;
	int ret = boot_fwu_slot_bank(b, s, &bank, err);
	if (ret < 0 || (ret = load(b, &md, err)) < 0)
		return ret;
	if (md.active_index == bank && fwu_md_bank_state(&md, bank) != FWU_BANK_INVALID) {
		log_info("fwu: bank %u (%s) is already active", bank, s->bootname);
		return 0;
	}
	if (md.active_index == bank)
		return abota_error_set(err, -EINVAL, "bank %u (%s) is active but INVALID", bank,
				       s->bootname);
	/* The bank we switch away from becomes the fallback: it must be
	 * bootable, or a failed trial has nowhere to go. */
	uint8_t cur = fwu_md_bank_state(&md, md.active_index);
	if (cur != FWU_BANK_ACCEPTED && cur != FWU_BANK_VALID)
		return abota_error_set(err, -EINVAL,
				       "current bank %u is %s: no fallback for a trial of bank %u",
				       md.active_index, fwu_bank_state_name(cur), bank);
	if ((ret = fwu_md_activate(&md, bank, err)) < 0)
		return ret;
	return store(b, &md, "set-primary", err);
}

static int fwu_accept(struct boot_backend *b, const struct slot *s, struct abota_error *err)
{
	struct fwu_metadata md;
	unsigned bank, booted;
	int ret = boot_fwu_slot_bank(b, s, &bank, err);
	if (ret < 0)
		return ret;
	if ((ret = booted_bank(b, &booted, err)) < 0) {
		abota_error_prefix(err, "cannot accept %s", s->name);
		return ret;
	}
	if (booted != bank)
		return abota_error_set(err, -EPERM,
				       "cannot accept %s (bank %u): only the booted bank (%u) can "
				       "be accepted, after a boot proved it works",
				       s->name, bank, booted);
	if ((ret = load(b, &md, err)) < 0)
		return ret;
	if (md.active_index == bank && fwu_md_bank_state(&md, bank) == FWU_BANK_ACCEPTED &&
	    md.previous_active_index != bank) {
		/* nothing to change: skip a write (flash wear, power-cut window) */
		return 0;
	}
	if ((ret = fwu_md_accept(&md, bank, err)) < 0)
		return ret;
	return store(b, &md, "accept", err);
}

static int fwu_reject(struct boot_backend *b, const struct slot *s, struct abota_error *err)
{
	struct fwu_metadata md;
	unsigned bank;
	int ret = boot_fwu_slot_bank(b, s, &bank, err);
	if (ret < 0 || (ret = load(b, &md, err)) < 0)
		return ret;
	if (md.active_index == bank)
		ret = fwu_md_reject(&md, bank, err); /* back to the previous bank */
	else
		ret = fwu_md_invalidate(&md, bank, err);
	if (ret < 0)
		return ret;
	return store(b, &md, "reject", err);
}

static int fwu_set_state(struct boot_backend *b, const struct slot *s, bool good,
			 struct abota_error *err)
{
	if (good)
		return fwu_accept(b, s, err);
	/* bad: the install target, before its first byte is written; if it
	 * was activated by an earlier install that was never booted, give
	 * that activation up too (reject returns to the previous bank). */
	return fwu_reject(b, s, err);
}

static bool fwu_is_atomic(struct boot_backend *b)
{
	(void)b;
	return true;
}

static const struct boot_backend_ops fwu_ops = {
	.name = "fwu",
	.get_booted = fwu_get_booted,
	.get_primary = fwu_get_primary,
	.set_primary = fwu_set_primary,
	.get_state = fwu_get_state,
	.set_state = fwu_set_state,
	.accept = fwu_accept,
	.reject = fwu_reject,
	.is_atomic = fwu_is_atomic,
	.close = fwu_close,
};

int boot_fwu_open(const struct system_config *cfg, struct boot_backend **out,
		  struct abota_error *err)
{
	const struct config_fwu *f = &cfg->fwu;
	struct boot_backend *b = calloc(1, sizeof(*b));
	struct fwu_priv *p = calloc(1, sizeof(*p));
	int ret = 0;
	if (!b || !p) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	b->ops = &fwu_ops;
	b->cfg = cfg;
	b->priv = p;
	if (f->board) {
		if ((ret = board_load(f->board, &p->board, err)) < 0) {
			abota_error_prefix(err, "fwu: [fwu] board");
			goto out;
		}
		p->mdcfg = board_fwu_config(p->board);
		p->tfa = p->board->tfa;
		p->tfa_known = true;
	} else {
		/* version 0: whatever version the copies have, ST's shape */
		fwu_md_config_st(&p->mdcfg, 2);
		p->mdcfg.version = 0;
	}
	if (f->metadata_version && f->metadata_version != p->mdcfg.version) {
		p->mdcfg.version = f->metadata_version;
		if (f->metadata_version == 1)
			p->tfa = BOARD_TFA_V1;
	}
	if (f->tfa) {
		if ((ret = board_tfa_parse(f->tfa, &p->tfa, err)) < 0) {
			abota_error_prefix(err, "fwu: [fwu] tfa");
			goto out;
		}
		p->tfa_known = true;
	}
	if ((ret = open_store(cfg, p, err)) < 0) {
		abota_error_prefix(err, "fwu");
		goto out;
	}
	*out = b;
	b = NULL;
out:
	if (b) {
		b->priv = p;
		fwu_close(b);
		free(b);
	} else if (ret < 0) {
		free(p);
	}
	return ret;
}

int boot_fwu_trial_budget(struct boot_backend *b, unsigned *left, unsigned *max,
			  struct abota_error *err)
{
	uint32_t info = 0;
	struct fwu_metadata md;
	if (!boot_fwu_is(b))
		return abota_error_set(err, -EINVAL, "not the fwu backend");
	int ret = read_fwu_info(b, &info, err);
	if (ret < 0 || (ret = load(b, &md, err)) < 0)
		return ret;
	budget(tfa_of(b, md.version), (info >> 4) & 0xF, left, max);
	return 0;
}

int boot_fwu_check_budget(struct boot_backend *b, bool force, struct abota_error *err)
{
	unsigned left, max;
	struct abota_error e = { 0 };
	int ret = boot_fwu_trial_budget(b, &left, &max, &e);
	if (ret == -ENOTSUP) {
		log_info("fwu: trial boot budget unknown (%s)", e.msg);
		return 0;
	}
	if (ret < 0) {
		if (err)
			*err = e;
		return ret;
	}
	unsigned min = b->cfg->fwu.min_trial_boots ? b->cfg->fwu.min_trial_boots : 1;
	if (left < min && !force)
		return abota_error_set(err, -EAGAIN,
				       "only %u trial boot(s) left of %u (min-trial-boots=%u): TF-A "
				       "re-arms the FWU_INFO counter only when it boots an accepted "
				       "bank, and there was no plain reboot since the last update; "
				       "reboot first, or use --force",
				       left, max, min);
	if (left < max)
		log_warning("fwu: the new bank gets only %u trial boot(s) instead of %u (no plain "
			    "reboot since the last update)%s",
			    left, max, left < min ? "; continuing because of --force" : "");
	return 0;
}

int boot_fwu_get_status(struct boot_backend *b, struct boot_fwu_status *out,
			struct abota_error *err)
{
	struct fwu_store_state *state = NULL;
	struct boot_fwu_status r;
	int ret;
	if (!boot_fwu_is(b))
		return abota_error_set(err, -EINVAL, "not the fwu backend");
	memset(&r, 0, sizeof(r));
	r.booted_bank = r.failed_bank = -1;
	struct fwu_priv *p = priv(b);
	if (!(state = malloc(sizeof(*state))))
		return abota_error_set(err, -ENOMEM, "out of memory");
	if ((ret = fwu_store_read(p->st, state, err)) < 0)
		goto out;
	if (state->winner < 0) {
		ret = abota_error_set(err, -EBADMSG, "no valid FWU metadata copy (%s: %s; %s: %s)",
				      fwu_store_copy_name(p->st, 0), state->copy[0].error,
				      fwu_store_copy_name(p->st, 1), state->copy[1].error);
		goto out;
	}
	r.md = state->copy[state->winner].md;
	r.copy_in_effect = fwu_store_copy_name(p->st, (unsigned)state->winner);
	r.needs_repair = state->needs_repair;
	r.tfa = tfa_of(b, r.md.version);
	if (read_fwu_info(b, &r.fwu_info, NULL) == 0) {
		r.has_fwu_info = true;
		r.boot_index = r.fwu_info & 0xF;
		r.counter = (r.fwu_info >> 4) & 0xF;
		budget(r.tfa, r.counter, &r.trial_left, &r.trial_max);
	}
	unsigned bb;
	if (booted_bank(b, &bb, NULL) == 0)
		r.booted_bank = (int)bb;
	unsigned a = r.md.active_index, pv = r.md.previous_active_index;
	uint8_t pst = pv < r.md.num_banks ? fwu_md_bank_state(&r.md, pv) : FWU_BANK_INVALID;
	if (r.booted_bank >= 0 && (unsigned)r.booted_bank != a && switched_this_boot(b, a)) {
		r.reboot_pending = true;
	} else if (r.booted_bank >= 0 && (unsigned)r.booted_bank != a) {
		r.rolled_back = true;
		r.failed_bank = (int)a;
		snprintf(r.rollback_reason, sizeof(r.rollback_reason),
			 "booted bank %d but bank %u is active: the firmware fell back", r.booted_bank,
			 a);
	} else if (pv != a && pst == FWU_BANK_VALID && r.md.version == 2) {
		r.rolled_back = true;
		r.failed_bank = (int)pv;
		snprintf(r.rollback_reason, sizeof(r.rollback_reason),
			 "bank %u is an abandoned trial: the firmware fell back to bank %u", pv, a);
	} else if (pv != a && pst == FWU_BANK_INVALID) {
		r.rolled_back = true;
		r.failed_bank = (int)pv;
		snprintf(r.rollback_reason, sizeof(r.rollback_reason),
			 "bank %u is invalid (rejected, rolled back from, or an install did not "
			 "finish)",
			 pv);
	}
	*out = r;
out:
	free(state);
	return ret;
}
