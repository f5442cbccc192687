/* firmware.c - one power-on of the simulated board: TF-A BL2 bank selection,
 * ST U-Boot's FWU hand-over, the kernel command line (specs/fwu-metadata.md
 * §2).  Everything is read from the disk image with the firmware's own rules;
 * the only mock is the TAMP FWU_INFO register (a file).
 *
 * BL2 variants (§2.3), c = FWU_INFO[7:4] at BL2 entry, a/p = active/previous:
 *   v1 (A, MAX 3): trial (an image of bank a not accepted): c == 0 -> boot p,
 *       else c := c-1, boot a.  Accepted: c := 3, boot a.
 *   r3 (B, MAX 4): ACCEPTED -> c := 4, boot a.  VALID -> if c > 1: c := c-1;
 *       c == 1 -> boot alternate() (c stays 1); c == 0 -> c := 4, boot a;
 *       else boot a.  Other -> boot alternate(), c := 0.
 *   upstream (C, MAX 3): ACCEPTED -> c := 3, boot a.  VALID -> c == 0 ->
 *       boot alternate(), else c := c-1, boot a.  Other -> alternate(), c := 0.
 * BL2 never writes metadata; it writes FWU_INFO (counter during selection,
 * boot index once BL33 is loaded).  U-Boot then repairs/reconciles the two
 * copies and, when boot index != active_index, rewrites both copies
 * (secondary first) with active = boot index, previous = old active (the
 * upstream flavour marks the old active bank INVALID first), and boots
 * bootfs-a ("Boot A", index 0) or bootfs-b ("Boot B").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <json-c/json.h>

#include "abota/fileio.h"
#include "abota/fwu_store.h"
#include "abota/gpt.h"
#include "abota/powercut.h"
#include "sim.h"

#define INVALID_BOOT_IDX 0xFFFFFFFFu

struct boot_ctx {
	struct sim *s;
	enum board_tfa tfa;
	enum sim_uboot uboot;
	char disk[SIM_PATH_MAX + 64];
	struct gpt_disk *gpt;
	struct fwu_md_config cfg;
	struct json_object *hist;
	struct json_object *actions;
	struct sim_boot_result *res;
};

static void action(struct boot_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void action(struct boot_ctx *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_object_array_add(c->actions, json_object_new_string(buf));
}

static unsigned max_trials(enum board_tfa t)
{
	return t == BOARD_TFA_R3 ? 4 : 3;
}

/* fwu_get_alternate_boot_bank() (same in r3 and upstream). */
static uint32_t alternate(const struct fwu_metadata *md)
{
	uint32_t a = md->active_index, p = md->previous_active_index, n = md->num_banks;
	if (p < n && md->bank_state[p] == FWU_BANK_ACCEPTED)
		return p;
	for (uint32_t b = 0; b < n; b++)
		if (b != a && b != p && md->bank_state[b] == FWU_BANK_ACCEPTED)
			return b;
	if (p < n && md->bank_state[p] == FWU_BANK_VALID)
		return p;
	for (uint32_t b = 0; b < n; b++)
		if (b != a && b != p && md->bank_state[b] == FWU_BANK_VALID)
			return b;
	return INVALID_BOOT_IDX;
}

/* Bank selection; updates *cnt (the counter BL2 writes back). */
static uint32_t select_bank(struct boot_ctx *c, const struct fwu_metadata *md, unsigned *cnt)
{
	struct sim *s = c->s;
	uint32_t a = md->active_index;
	unsigned max = max_trials(c->tfa);
	if (c->tfa == BOARD_TFA_V1) {
		bool trial = false;
		for (unsigned i = 0; i < md->num_images; i++)
			trial = trial || md->img[i].bank[a].accepted == 0;
		if (!trial) {
			*cnt = max;
			return a;
		}
		if (*cnt == 0) {
			sim_console(s, "WARNING: Trial FWU fails %u times", max);
			action(c, "BL2: trial budget exhausted, fallback to previous bank %u",
			       md->previous_active_index);
			return md->previous_active_index;
		}
		(*cnt)--;
		sim_console(s, "INFO:    Trial FWU: %u", *cnt);
		return a;
	}
	uint8_t st = md->bank_state[a];
	if (st == FWU_BANK_ACCEPTED) {
		*cnt = max;
		return a;
	}
	if (st == FWU_BANK_VALID) {
		if (c->tfa == BOARD_TFA_R3) {
			unsigned in = *cnt;
			if (in > 1)
				*cnt = in - 1;
			if (in == 1) {
				sim_console(s, "WARNING: Trial FWU fails %u times", max - 1);
				action(c, "BL2: trial budget exhausted, fallback");
				return alternate(md);
			}
			if (in == 0) {
				sim_console(s, "WARNING: Trial backup register empty : set max boot "
					       "count");
				action(c, "BL2: FWU_INFO counter empty, re-armed to %u", max);
				*cnt = max;
				return a;
			}
			sim_console(s, "INFO:    Trial FWU: %u", *cnt);
			return a;
		}
		if (*cnt == 0) {
			sim_console(s, "WARNING: Trial FWU fails %u times", max);
			action(c, "BL2: trial budget exhausted, fallback");
			return alternate(md);
		}
		(*cnt)--;
		sim_console(s, "INFO:    Trial FWU: %u", *cnt);
		return a;
	}
	sim_console(s, "ERROR:   The active bank(%u) of the platform is in Invalid State.", a);
	action(c, "BL2: active bank %u in state 0x%02x, booting the alternate bank", a, st);
	*cnt = 0;
	return alternate(md);
}

static void panic(struct boot_ctx *c, const char *why)
{
	sim_console(c->s, "PANIC at PC : 0x0000000030007e2c");
	snprintf(c->res->outcome, sizeof(c->res->outcome), "panic");
	snprintf(c->res->reason, sizeof(c->res->reason), "%s", why);
	c->res->bank = -1;
	action(c, "BL2: panic: %s", why);
}

/* TF-A's trusted NV counter check (auth_nvctr) on the loaded FIP: a FIP
 * whose counter is below the OTP counter fails authentication; the OTP
 * counter is raised to the FIP's only outside a trial run (upstream
 * fwu_is_trial_run_state(): the active bank not accepted; v1: an image of
 * it not accepted), so a bank that never gets accepted never consumes a
 * fuse and the previous bank stays bootable.  0 = ok, 1 = panic. */
static int anti_rollback(struct boot_ctx *c, const struct fwu_metadata *md, const uint8_t *fip,
			 size_t len, struct abota_error *err)
{
	struct sim *s = c->s;
	uint32_t otp, nv = sim_fip_nvctr(fip, len);
	int ret = sim_otp_nvctr_read(s, &otp, err);
	if (ret < 0)
		return ret;
	c->res->otp_nvctr_before = c->res->otp_nvctr_after = otp;
	if (nv < otp || nv > SIM_OTP_NVCTR_MAX) {
		sim_console(s, "ERROR:   BL2: Failed to load image id 5 (-80): NV counter %u %s", nv,
			    nv < otp ? "below the OTP anti-rollback counter"
				     : "beyond the OTP budget");
		panic(c, nv < otp ? "FIP rolled back: its NV counter is below the OTP counter"
				  : "FIP NV counter beyond the OTP budget");
		return 1;
	}
	bool trial = false;
	uint32_t a = md->active_index;
	if (md->version == 1) {
		for (unsigned i = 0; i < md->num_images; i++)
			trial = trial || md->img[i].bank[a].accepted == 0;
	} else {
		trial = md->bank_state[a] != FWU_BANK_ACCEPTED;
	}
	if (nv > otp) {
		if (trial) {
			action(c, "BL2: trial run: OTP counter kept at %u (FIP has %u)", otp, nv);
			return 0;
		}
		if ((ret = sim_otp_nvctr_advance(s, nv, err)) < 0)
			return ret;
		sim_console(s, "NOTICE:  BL2: anti-rollback counter %u -> %u", otp, nv);
		action(c, "BL2: OTP counter advanced %u -> %u", otp, nv);
		c->res->otp_nvctr_after = nv;
	}
	return 0;
}

static int open_regions(struct boot_ctx *c, const struct gpt_part *p[2], struct fwu_store **st,
			struct abota_error *err)
{
	uint64_t off[2] = { p[0]->start, p[1]->start }, size[2] = { p[0]->size, p[1]->size };
	const char *names[2] = { p[0]->name, p[1]->name };
	return fwu_store_open_regions(c->disk, off, size, names, &c->cfg, st, err);
}

/* BL2: load the metadata (primary, then backup); 0 = ok, 1 = panic. */
static int bl2_load(struct boot_ctx *c, struct fwu_metadata *md, struct abota_error *err)
{
	struct sim *s = c->s;
	const struct gpt_part *p[2];
	struct fwu_store *st = NULL;
	enum fwu_fw fw = c->tfa == BOARD_TFA_V1	   ? FWU_FW_TFA_V1
			 : c->tfa == BOARD_TFA_R3 ? FWU_FW_TFA_ST_R3
						  : FWU_FW_TFA_UPSTREAM;
	struct abota_error e = { 0 };
	enum fwu_md_lookup how = c->tfa == BOARD_TFA_R3 ? FWU_LOOKUP_ST_R3 : FWU_LOOKUP_NAME;
	if (fwu_store_locate(c->gpt, how, p, &e) < 0) {
		sim_console(s, "ERROR:   FWU metadata partition not found (%s)", e.msg);
		panic(c, "metadata partitions not found");
		return 1;
	}
	int ret = open_regions(c, p, &st, err);
	if (ret < 0)
		return ret;
	int rc = 1;
	for (unsigned i = 0; i < 2; i++) {
		uint8_t buf[FWU_MD_READ_SIZE];
		size_t len = 0;
		struct abota_error ce = { 0 };
		int r = fwu_store_read_raw(st, i, buf, sizeof(buf), &len, &ce);
		if (r == 0)
			r = fwu_md_fw_check(fw, buf, len, &c->cfg, md, &ce);
		if (r == 0) {
			json_object_object_add(c->hist, "bl2_metadata",
					       json_object_new_string(p[i]->name));
			rc = 0;
			break;
		}
		if (r == -EBADMSG)
			sim_console(s, "ERROR:   CRC check failed on FWU metadata (%s)", p[i]->name);
		else
			sim_console(s, "ERROR:   FWU metadata sanity check failed (%s: %s)",
				    p[i]->name, ce.msg);
		action(c, "BL2: %s rejected: %s", p[i]->name, ce.msg);
		if (i == 0)
			sim_console(s, "WARNING: loading of FWU-Metadata failed, using "
				       "Bkup-FWU-Metadata");
		else
			sim_console(s, "ERROR:   loading of Bkup-FWU-Metadata failed");
	}
	fwu_store_free(st);
	if (rc)
		panic(c, "no valid FWU metadata copy (device bricked until reflashed)");
	return rc;
}

/* U-Boot: read both copies, reconcile, rewrite after a fallback. */
static int uboot_fwu(struct boot_ctx *c, uint32_t boot_idx, struct abota_error *err)
{
	struct sim *s = c->s;
	const struct gpt_part *p[2];
	struct fwu_store *st = NULL;
	struct abota_error e = { 0 };
	struct fwu_metadata md[2];
	uint8_t raw[2][FWU_MD_READ_SIZE];
	size_t len[2] = { 0, 0 };
	bool ok[2];
	int ret = 0;
	if (fwu_store_locate(c->gpt, FWU_LOOKUP_UBOOT, p, &e) < 0) {
		sim_console(s, "FWU metadata partitions not found: %s", e.msg);
		action(c, "U-Boot: no metadata partitions: %s", e.msg);
		return 0;
	}
	if ((ret = open_regions(c, p, &st, err)) < 0)
		return ret;
	for (unsigned i = 0; i < 2; i++) {
		struct abota_error ce = { 0 };
		int r = fwu_store_read_raw(st, i, raw[i], sizeof(raw[i]), &len[i], &ce);
		if (r == 0)
			r = fwu_md_fw_check(FWU_FW_UBOOT, raw[i], len[i], &c->cfg, &md[i], &ce);
		ok[i] = r == 0;
		if (!ok[i])
			action(c, "U-Boot: %s rejected: %s", p[i]->name, ce.msg);
	}
	size_t msize = 0;
	if (ok[0] && ok[1]) {
		msize = c->cfg.version == 1
				? fwu_md_size(1, c->cfg.num_banks, c->cfg.num_images)
				: md[0].metadata_size;
		if (md[0].metadata_size != md[1].metadata_size || memcmp(raw[0], raw[1], msize)) {
			sim_console(s, "Both FWU metadata copies are valid but do not match.");
			sim_console(s, "Restoring the secondary partition from the primary");
			action(c, "U-Boot: %s restored from %s (both valid, different)", p[1]->name,
			       p[0]->name);
			c->res->uboot_wrote = true;
			if ((ret = fwu_store_write_raw(st, 1, raw[0], msize, err)) < 0)
				goto out;
			md[1] = md[0];
		}
	} else if (ok[0] != ok[1]) {
		unsigned good = ok[0] ? 0 : 1, bad = 1 - good;
		msize = c->cfg.version == 1
				? fwu_md_size(1, c->cfg.num_banks, c->cfg.num_images)
				: md[good].metadata_size;
		sim_console(s, "FWU metadata %s is corrupted, restoring it from %s", p[bad]->name,
			    p[good]->name);
		action(c, "U-Boot: %s restored from %s", p[bad]->name, p[good]->name);
		c->res->uboot_wrote = true;
		if ((ret = fwu_store_write_raw(st, bad, raw[good], msize, err)) < 0)
			goto out;
		md[bad] = md[good];
		ok[bad] = true;
	} else {
		/* Both bad: U-Boot's loop copies secondary over primary and back,
		 * recomputing the CRC each time: garbage gets a valid CRC. */
		sim_console(s, "Both FWU metadata copies are corrupted");
		size_t m = c->cfg.version == 1
				   ? fwu_md_size(1, c->cfg.num_banks, c->cfg.num_images)
				   : (size_t)((uint32_t)raw[1][0x10] | (uint32_t)raw[1][0x11] << 8 |
					      (uint32_t)raw[1][0x12] << 16 |
					      (uint32_t)raw[1][0x13] << 24);
		if (m >= FWU_MD_V2_HEADER_SIZE && m <= len[1] && m <= len[0]) {
			uint32_t crc = fwu_md_crc32(raw[1] + 4, m - 4);
			raw[1][0] = (uint8_t)crc;
			raw[1][1] = (uint8_t)(crc >> 8);
			raw[1][2] = (uint8_t)(crc >> 16);
			raw[1][3] = (uint8_t)(crc >> 24);
			action(c, "U-Boot: both copies bad: re-signed %s's content into both",
			       p[1]->name);
			c->res->uboot_wrote = true;
			if ((ret = fwu_store_write_raw(st, 0, raw[1], m, err)) < 0 ||
			    (ret = fwu_store_write_raw(st, 1, raw[1], m, err)) < 0)
				goto out;
		}
		sim_console(s, "Unable to get valid FWU metadata");
		goto out;
	}
	struct fwu_metadata cur = md[0];
	if (boot_idx != cur.active_index) {
		sim_console(s, "Boot idx %u is not matching active idx %u, changing active_idx",
			    boot_idx, cur.active_index);
		uint32_t old = cur.active_index;
		if (c->uboot == SIM_UBOOT_UPSTREAM) {
			if (cur.version == 2)
				cur.bank_state[old] = FWU_BANK_INVALID;
			for (unsigned i = 0; i < cur.num_images; i++)
				cur.img[i].bank[old].accepted = 0;
		}
		cur.active_index = boot_idx;
		cur.previous_active_index = old;
		uint8_t buf[FWU_MD_MAX_SIZE];
		size_t blen;
		if ((ret = fwu_md_encode(&cur, buf, sizeof(buf), &blen, err)) < 0)
			goto out;
		action(c, "U-Boot: metadata rewritten: active %u, previous %u%s", boot_idx, old,
		       c->uboot == SIM_UBOOT_UPSTREAM ? ", old active bank INVALID" : "");
		c->res->uboot_wrote = true;
		/* fwu_sync_mdata(BOTH_PARTS): secondary, then primary. */
		if ((ret = fwu_store_write_raw(st, 1, buf, blen, err)) < 0 ||
		    (ret = fwu_store_write_raw(st, 0, buf, blen, err)) < 0)
			goto out;
	}
out:
	fwu_store_free(st);
	return ret;
}

/* extlinux.conf: the APPEND and KERNEL of the DEFAULT label (or the first). */
static int parse_extlinux(const char *text, char *kernel, size_t kcap, char *append, size_t acap)
{
	char def[128] = "";
	char label[128] = "";
	bool in_default = false, have_label = false, done = false;
	kernel[0] = append[0] = '\0';
	const char *line = text;
	/* First pass: DEFAULT. */
	for (const char *l = text; *l;) {
		const char *e = strchr(l, '\n');
		size_t n = e ? (size_t)(e - l) : strlen(l);
		while (n && (*l == ' ' || *l == '\t'))
			l++, n--;
		if (n > 8 && strncasecmp(l, "DEFAULT ", 8) == 0)
			snprintf(def, sizeof(def), "%.*s", (int)(n - 8), l + 8);
		l = e ? e + 1 : l + n;
	}
	for (; *line && !done;) {
		const char *e = strchr(line, '\n');
		size_t n = e ? (size_t)(e - line) : strlen(line);
		const char *l = line;
		while (n && (*l == ' ' || *l == '\t'))
			l++, n--;
		while (n && (l[n - 1] == '\r' || l[n - 1] == ' '))
			n--;
		if (n > 6 && strncasecmp(l, "LABEL ", 6) == 0) {
			if (have_label && in_default)
				done = true;
			else {
				snprintf(label, sizeof(label), "%.*s", (int)(n - 6), l + 6);
				in_default = !def[0] ? !have_label : strcmp(label, def) == 0;
				have_label = true;
			}
		} else if (in_default && n > 7 && strncasecmp(l, "KERNEL ", 7) == 0) {
			snprintf(kernel, kcap, "%.*s", (int)(n - 7), l + 7);
		} else if (in_default && n > 7 && strncasecmp(l, "APPEND ", 7) == 0) {
			snprintf(append, acap, "%.*s", (int)(n - 7), l + 7);
		}
		line = e ? e + 1 : line + strlen(line);
	}
	return kernel[0] ? 0 : -ENOENT;
}

/* Value of key=... in a command line. */
static bool cmdline_get(const char *cmdline, const char *key, char *out, size_t cap)
{
	size_t klen = strlen(key);
	const char *p = cmdline;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *end = strchr(p, ' ');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			snprintf(out, cap, "%.*s", (int)(n - klen - 1), p + klen + 1);
			return true;
		}
		p += n;
	}
	return false;
}

static void boot_fail(struct boot_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void boot_fail(struct boot_ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->res->reason, sizeof(c->res->reason), fmt, ap);
	va_end(ap);
	snprintf(c->res->outcome, sizeof(c->res->outcome), "failed");
	action(c, "boot failed: %s", c->res->reason);
}

/* U-Boot distro boot of bootfs-<bank>, then the kernel's view. */
static int boot_linux(struct boot_ctx *c, unsigned bank, const struct sim_boot_opts *o,
		      char *cmdline, size_t ccap, struct abota_error *err)
{
	struct sim *s = c->s;
	const struct board *b = s->board;
	char *conf = NULL;
	size_t len;
	struct abota_error e = { 0 };
	char kernel[256], append[1024];
	(void)err;
	cmdline[0] = '\0';
	sim_console(s, bank == 0 ? "Boot A" : "Boot B");
	const struct board_partition *bp = board_bank_partition(b, bank, BOARD_CONTENT_BOOTFS);
	const struct gpt_part *gp;
	if (!bp || gpt_find_name(c->gpt, bp->name, &gp, &e) < 0) {
		sim_console(s, "** No partition bootfs-%c **", 'a' + bank);
		boot_fail(c, "no bootfs partition for bank %c", 'A' + bank);
		return 0;
	}
	static const char *const confs[] = { "/extlinux/extlinux.conf",
					     "/boot/extlinux/extlinux.conf" };
	int r = -ENOENT;
	const char *used = confs[0];
	for (size_t i = 0; i < 2 && r < 0; i++) {
		used = confs[i];
		memset(&e, 0, sizeof(e));
		r = ext4img_read(c->disk, gp->start, gp->size, confs[i], 64 * 1024, &conf, &len, &e);
		if (r < 0 && r != -ENOENT)
			break;
	}
	if (r < 0) {
		sim_console(s, "Scanning mmc 0:%u...", gp->number);
		sim_console(s, "** Unable to read file %s ** (%s)", used, e.msg);
		sim_console(s, "SCRIPT FAILED: continuing...");
		boot_fail(c, "%s: cannot read %s: %s", gp->name, used, e.msg);
		return 0;
	}
	sim_console(s, "Scanning mmc 0:%u...", gp->number);
	sim_console(s, "Found %s", used);
	if (parse_extlinux(conf, kernel, sizeof(kernel), append, sizeof(append)) < 0) {
		free(conf);
		sim_console(s, "SCRIPT FAILED: continuing...");
		boot_fail(c, "%s: %s has no bootable label", gp->name, used);
		return 0;
	}
	free(conf);
	sim_console(s, "Retrieving file: %s", kernel);
	char *kdata = NULL;
	memset(&e, 0, sizeof(e));
	if (ext4img_read(c->disk, gp->start, gp->size, kernel, 256ull << 20, &kdata, &len, &e) < 0 ||
	    len == 0) {
		free(kdata);
		sim_console(s, "** File not found %s **", kernel);
		boot_fail(c, "%s: kernel %s missing", gp->name, kernel);
		return 0;
	}
	free(kdata);
	sim_console(s, "append: %s", append);
	sim_console(s, "Starting kernel ...");
	sim_console(s, "[    0.000000] Kernel command line: %s", append);
	snprintf(cmdline, ccap, "%s", append);

	/* The kernel mounts root=PARTUUID=...; abota reads rauc.slot. */
	char root[128] = "", slot[16] = "";
	const struct board_partition *want = board_bank_partition(b, bank, BOARD_CONTENT_ROOTFS);
	if (!cmdline_get(append, "root", root, sizeof(root)) || strncmp(root, "PARTUUID=", 9)) {
		sim_console(s, "[    1.000000] Kernel panic - not syncing: VFS: Unable to mount "
			       "root fs on unknown-block(0,0)");
		boot_fail(c, "no root=PARTUUID= on the command line");
		return 0;
	}
	struct guid ru;
	const struct gpt_part *rp = NULL;
	if (guid_parse(root + 9, &ru, NULL) == 0)
		rp = gpt_find_uuid(c->gpt, &ru);
	if (!rp) {
		sim_console(s, "[    1.000000] VFS: Cannot open root device \"%s\"", root);
		sim_console(s, "[    1.000000] Kernel panic - not syncing: VFS: Unable to mount "
			       "root fs on unknown-block(0,0)");
		boot_fail(c, "root %s: no such partition", root);
		return 0;
	}
	memset(&e, 0, sizeof(e));
	if (ext4img_probe(c->disk, rp->start, rp->size, &e) < 0) {
		sim_console(s, "[    1.000000] Kernel panic - not syncing: VFS: Unable to mount "
			       "root fs on %s", rp->name);
		boot_fail(c, "%s: %s", rp->name, e.msg);
		return 0;
	}
	if (want && strcmp(rp->name, want->name) != 0) {
		sim_console(s, "abota-sim: bootfs-%c names root %s (%s): the command line belongs "
			       "to another bank",
			    'a' + bank, rp->name, root);
		boot_fail(c, "bank %c booted root %s (another bank's rootfs)", 'A' + bank,
			  rp->name);
		return 0;
	}
	if (!cmdline_get(append, "rauc.slot", slot, sizeof(slot)) || slot[0] != 'A' + (int)bank ||
	    slot[1]) {
		sim_console(s, "abota-sim: rauc.slot=%s on bank %c: the command line belongs to "
			       "another bank",
			    slot[0] ? slot : "(missing)", 'A' + bank);
		boot_fail(c, "bank %c booted with rauc.slot=%s", 'A' + bank,
			  slot[0] ? slot : "(missing)");
		return 0;
	}
	if (o->fail_boot) {
		sim_console(s, "[    9.000000] abota-sim: userspace fails before boot-complete "
			       "(watchdog reset pending)");
		snprintf(c->res->outcome, sizeof(c->res->outcome), "failed");
		snprintf(c->res->reason, sizeof(c->res->reason), "--fail-boot");
	} else if (o->hang) {
		sim_console(s, "[    9.000000] abota-sim: system hangs (watchdog reset pending)");
		snprintf(c->res->outcome, sizeof(c->res->outcome), "hung");
		snprintf(c->res->reason, sizeof(c->res->reason), "--hang");
	} else {
		sim_console(s, "[    9.000000] abota-sim: reached boot-complete.target on bank %c",
			    'A' + bank);
		snprintf(c->res->outcome, sizeof(c->res->outcome), "running");
	}
	return 0;
}

int sim_boot(struct sim *s, const struct sim_boot_opts *o, struct sim_boot_result *res,
	     struct abota_error *err)
{
	struct boot_ctx c = { .s = s, .res = res };
	char path[SIM_PATH_MAX + 64];
	char cmdline[1024] = "";
	int ret = 0;
	memset(res, 0, sizeof(*res));
	res->bank = -1;
	c.tfa = o->tfa >= 0 ? (enum board_tfa)o->tfa : s->tfa;
	c.uboot = o->uboot >= 0 ? (enum sim_uboot)o->uboot : s->uboot;
	c.cfg = board_fwu_config(s->board);
	c.cfg.version = c.tfa == BOARD_TFA_V1 ? 1 : 2;
	sim_path(s, "disk.img", c.disk, sizeof(c.disk));
	c.hist = json_object_new_object();
	c.actions = json_object_new_array();
	const char *prev_state = s->state;
	s->boots++;
	sim_path(s, "console.log", path, sizeof(path));
	s->console = fopen(path, "ae");
	if (s->console)
		fprintf(s->console, "=== abota-sim power-on %lu (TF-A %s, U-Boot %s, after: %s) ===\n",
			s->boots, board_tfa_name(c.tfa),
			c.uboot == SIM_UBOOT_UPSTREAM ? "upstream" : "st", prev_state);
	json_object_object_add(c.hist, "event", json_object_new_string("boot"));
	json_object_object_add(c.hist, "n", json_object_new_int64((int64_t)s->boots));
	json_object_object_add(c.hist, "after", json_object_new_string(prev_state));
	json_object_object_add(c.hist, "tfa", json_object_new_string(board_tfa_name(c.tfa)));
	json_object_object_add(c.hist, "uboot", json_object_new_string(
							c.uboot == SIM_UBOOT_UPSTREAM ? "upstream"
										      : "st"));

	/* --- BL2 --- */
	uint32_t reg;
	if ((ret = sim_fwu_info_read(s, &reg, err)) < 0)
		goto out;
	res->fwu_info_before = reg;
	unsigned cnt = (reg >> 4) & 0xF;
	switch (c.tfa) {
	case BOARD_TFA_R3: sim_console(s, "NOTICE:  BL2: v2.10-stm32mp-r3 (abota-sim)"); break;
	case BOARD_TFA_UPSTREAM: sim_console(s, "NOTICE:  BL2: v2.15 upstream FWU (abota-sim)"); break;
	case BOARD_TFA_V1: sim_console(s, "NOTICE:  BL2: v2.8-stm32mp, FWU metadata v1 (abota-sim)"); break;
	}
	sim_console(s, "NOTICE:  Model: %s", s->board->description[0] ? s->board->description
								       : s->board->name);
	struct abota_error ge = { 0 };
	if (gpt_read(c.disk, &c.gpt, &ge) < 0) {
		sim_console(s, "ERROR:   %s", ge.msg);
		panic(&c, "no GPT on the boot device");
		goto done;
	}
	struct fwu_metadata md;
	ret = bl2_load(&c, &md, err);
	if (ret < 0)
		goto out;
	if (ret == 1) {
		ret = 0;
		goto done;
	}
	uint32_t idx = select_bank(&c, &md, &cnt);
	json_object_object_add(c.hist, "active_index", json_object_new_int64(md.active_index));
	json_object_object_add(c.hist, "counter_in", json_object_new_int64((reg >> 4) & 0xF));
	json_object_object_add(c.hist, "counter_out", json_object_new_int64(cnt));
	/* The counter is written during selection. */
	reg = (reg & ~0xF0u) | (cnt & 0xF) << 4;
	if ((ret = sim_fwu_info_write(s, reg, err)) < 0)
		goto out;
	/* Every image entry must be of a type this BL2 knows (checked when
	 * the image sources are set, after the bank selection). */
	for (unsigned i = 0; i < md.num_images; i++) {
		bool known = c.cfg.num_image_types == 0;
		for (unsigned t = 0; t < c.cfg.num_image_types; t++)
			known = known || guid_equal(&md.img[i].type_guid, &c.cfg.image_types[t]);
		if (!known) {
			char g[GUID_STR_LEN + 1];
			sim_console(s, "ERROR:   Unknown image type %s in FWU metadata",
				    guid_format(&md.img[i].type_guid, g));
			panic(&c, "unknown img_type_guid in the metadata");
			goto done;
		}
	}
	if (idx == INVALID_BOOT_IDX) {
		sim_console(s, "ERROR:   No bootable bank (INVALID_BOOT_IDX)");
		panic(&c, "no bootable bank");
		goto done;
	}
	sim_console(s, "INFO:    Selecting to boot from bank %u", idx);
	/* FIP of the chosen bank: by unique GUID. */
	const struct gpt_part *fp = gpt_find_uuid(c.gpt, &md.img[0].bank[idx].img_guid);
	if (!fp) {
		sim_console(s, "ERROR:   No partition with the uuid mentioned in metadata");
		panic(&c, "FIP partition of the chosen bank not found");
		goto done;
	}
	uint8_t fip[128];
	struct abota_error fe = { 0 };
	int fd = open(c.disk, O_RDONLY | O_CLOEXEC);
	int fr = fd < 0 ? -errno : fileio_pread_full(fd, fip, sizeof(fip), fp->start, &fe);
	if (fd >= 0)
		close(fd);
	if (fr < 0 || !sim_fip_valid(fip, sizeof(fip))) {
		sim_console(s, "ERROR:   BL2: Failed to load image id 5 (-2)");
		panic(&c, "no valid FIP in the chosen bank");
		goto done;
	}
	if ((ret = anti_rollback(&c, &md, fip, sizeof(fip), err)) < 0)
		goto out;
	if (ret == 1) {
		ret = 0;
		goto done;
	}
	/* BL33 loaded: boot index into FWU_INFO. */
	reg = (reg & ~0xFu) | (idx & 0xF);
	if ((ret = sim_fwu_info_write(s, reg, err)) < 0)
		goto out;
	sim_console(s, "NOTICE:  BL2: Booting BL31");

	/* --- U-Boot --- */
	sim_console(s, "U-Boot %s (abota-sim)",
		    c.uboot == SIM_UBOOT_UPSTREAM ? "2026.07" : "2023.10-stm32mp-r3");
	uint32_t boot_idx = reg & 0xF;
	powercut_plan(o->cut_uboot_write, o->cut_bytes);
	struct abota_error ue = { 0 };
	ret = uboot_fwu(&c, boot_idx, &ue);
	if (ret == -ECANCELED && powercut_happened()) {
		sim_console(s, "abota-sim: power cut during U-Boot's metadata write (%s)", ue.msg);
		snprintf(res->outcome, sizeof(res->outcome), "power-cut");
		snprintf(res->reason, sizeof(res->reason), "%.500s", ue.msg);
		action(&c, "power cut: %s", ue.msg);
		ret = 0;
		goto done;
	}
	if (ret < 0) {
		if (err)
			*err = ue;
		goto out;
	}
	res->bank = (int)boot_idx;
	ret = boot_linux(&c, boot_idx, o, cmdline, sizeof(cmdline), err);
	if (ret < 0)
		goto out;

done:
	res->fwu_info_after = 0;
	(void)sim_fwu_info_read(s, &res->fwu_info_after, NULL);
	(void)sim_otp_nvctr_read(s, &res->otp_nvctr_after, NULL);
	if (strcmp(res->outcome, "running") && strcmp(res->outcome, "failed") &&
	    strcmp(res->outcome, "hung"))
		res->bank = -1;
	{
		/* /proc/cmdline of the system now running (empty if none). */
		char line[1100];
		bool up = res->bank >= 0 && cmdline[0];
		snprintf(line, sizeof(line), "%s%s", up ? cmdline : "", up ? "\n" : "");
		sim_path(s, "cmdline", path, sizeof(path));
		if ((ret = fileio_write_atomic(path, line, strlen(line), 0644, err)) < 0)
			goto out;
		/* /proc/sys/kernel/random/boot_id of this power-on: a new one
		 * each boot, so the device side can tell "not rebooted yet". */
		char id[64];
		snprintf(id, sizeof(id), "5eb00000-0000-4000-8000-%012lx\n", s->boots);
		sim_path(s, "boot_id", path, sizeof(path));
		if ((ret = fileio_write_atomic(path, id, strlen(id), 0644, err)) < 0)
			goto out;
		if (up)
			json_object_object_add(c.hist, "cmdline", json_object_new_string(cmdline));
	}
	snprintf(s->state, sizeof(s->state), "%s", res->outcome[0] ? res->outcome : "off");
	s->booted_bank = res->bank;
	json_object_object_add(c.hist, "bank", res->bank >= 0
						       ? json_object_new_int64(res->bank)
						       : NULL);
	json_object_object_add(c.hist, "outcome", json_object_new_string(s->state));
	if (res->reason[0])
		json_object_object_add(c.hist, "reason", json_object_new_string(res->reason));
	json_object_object_add(c.hist, "fwu_info_before",
			       json_object_new_int64(res->fwu_info_before));
	json_object_object_add(c.hist, "fwu_info_after", json_object_new_int64(res->fwu_info_after));
	json_object_object_add(c.hist, "uboot_wrote", json_object_new_boolean(res->uboot_wrote));
	json_object_object_add(c.hist, "otp_nvctr", json_object_new_int64(res->otp_nvctr_after));
	json_object_object_add(c.hist, "actions", c.actions);
	c.actions = NULL;
	if ((ret = sim_save(s, err)) < 0)
		goto out;
	ret = sim_history(s, c.hist, err);
	c.hist = NULL;
out:
	powercut_plan(0, -1);
	if (c.actions)
		json_object_put(c.actions);
	if (c.hist)
		json_object_put(c.hist);
	gpt_free(c.gpt);
	if (s->console) {
		fclose(s->console);
		s->console = NULL;
	}
	return ret;
}
