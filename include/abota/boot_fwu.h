/* boot_fwu.h - the `fwu` boot backend's extras for the installer and status.
 *
 * bootloader=fwu drives Arm PSA FWU metadata (v1 and v2) as ST's TF-A BL2 and
 * U-Boot read it (specs/fwu-metadata.md §4.5), through fwu_store (two copies,
 * one in flight at a time).  Mapping of the generic interface:
 *   get_booted   FWU_INFO bits[3:0] (the bank BL2 chose) -> bootname
 *   get_primary  slot of active_index
 *   get_state    good <=> bank ACCEPTED or VALID (v1: always bootable)
 *   set_state    bad: bank INVALID (the install target, before writing);
 *                good: only for the booted bank (= accept)
 *   set_primary  trial switch: active = bank, previous = old active,
 *                bank VALID with accepted flags cleared
 *   accept       only the booted bank: ACCEPTED, active = it, previous = the
 *                other bank, whose real state is kept
 *   reject       booted/active bank: INVALID, active = previous (which must be
 *                bootable), previous = it; another bank: INVALID
 *   is_atomic    true (one fwu_store_write per operation)
 * Reading never writes (no repair from status queries).
 *
 * Bank <-> slot: the board profile's partition slot=/bank= pairs, else a
 * one-letter bootname (A = 0, B = 1, ...), else the slot index.
 */
#ifndef ABOTA_BOOT_FWU_H
#define ABOTA_BOOT_FWU_H

#include <stdbool.h>
#include <stdint.h>

#include "abota/board.h"
#include "abota/boot_backend.h"
#include "abota/fwu_metadata.h"

int boot_fwu_open(const struct system_config *cfg, struct boot_backend **out,
		  struct abota_error *err);

/* Whether b is the fwu backend. */
bool boot_fwu_is(const struct boot_backend *b);

struct board;
/* The board profile of an fwu backend ([fwu] board), or NULL. */
const struct board *boot_fwu_board(struct boot_backend *b);

/* Everything `abota status` and the installer need, read in one go. */
struct boot_fwu_status {
	struct fwu_metadata md;    /* the copy in effect */
	const char *copy_in_effect; /* "metadata1" / "metadata2" */
	bool needs_repair;         /* a copy is bad or stale (U-Boot repairs it at boot) */
	enum board_tfa tfa;        /* BL2 flavour whose counter rules apply */
	bool has_fwu_info;         /* FWU_INFO could be read */
	uint32_t fwu_info;         /* raw register */
	unsigned boot_index;       /* bits[3:0]: bank BL2 booted */
	unsigned counter;          /* bits[7:4] */
	unsigned trial_left;       /* trial boots a bank made VALID now would get */
	unsigned trial_max;        /* trial boots after a plain (accepted) boot: 3 */
	int booted_bank;           /* from FWU_INFO, -1 if unknown */
	/* Rollback: the board is not running what the metadata activated
	 * (BL2 fell back, U-Boot did not rewrite yet), or the previous bank is
	 * a trial that was abandoned (ST U-Boot's rewrite after a fallback
	 * keeps it VALID) or INVALID (rejected, upstream U-Boot's fallback, or
	 * an install that did not finish). */
	bool rolled_back;
	int failed_bank;           /* the bank given up, -1 */
	char rollback_reason[256];
	/* Not a rollback: an install switched to the active bank in this boot
	 * (the status file's boot id is the current one); the next boot tries
	 * it. */
	bool reboot_pending;
};
int boot_fwu_get_status(struct boot_backend *b, struct boot_fwu_status *out,
			struct abota_error *err);

/* Bank index of a bootable slot; -ENOENT if it has none. */
int boot_fwu_slot_bank(struct boot_backend *b, const struct slot *s, unsigned *bank,
		       struct abota_error *err);
/* Bootname of a bank ("A"), NULL if no slot maps to it. */
const char *boot_fwu_bank_bootname(struct boot_backend *b, unsigned bank);

/* Trial boots the next trial would get (FWU_INFO counter under the TF-A
 * variant's rules, spec §2.3) and after a plain reboot (*max).  -ENOTSUP
 * without [fwu] fwu-info. */
int boot_fwu_trial_budget(struct boot_backend *b, unsigned *left, unsigned *max,
			  struct abota_error *err);

/* Installer gate, before anything is written: fails with -EAGAIN and an
 * explanation when fewer trial boots remain than [fwu] min-trial-boots
 * (default 1) unless force; logs a warning when fewer than a plain reboot
 * gives.  Without FWU_INFO it only logs that the budget is unknown. */
int boot_fwu_check_budget(struct boot_backend *b, bool force, struct abota_error *err);

#endif
