/* mark.h - `mark-good|mark-bad|mark-active [booted|other|SLOT]` with RAUC's
 * semantics (specs/rauc-compat.md §4.4), shared by `abota status` and the
 * D-Bus Mark method.
 *
 *   booted  the booted slot's root (must have a bootname)
 *   other   every parent-less slot with a bootname of the booted slot's
 *           class except the booted one; good/active refuse more than one
 *   SLOT    a slot by name; it must have a bootname
 * good -> backend accept, bad -> backend reject, active -> backend
 * set-primary plus activated.timestamp/count in the status file.  With
 * prevent-late-fallback=true, `good booted` also marks `other` bad.
 */
#ifndef ABOTA_MARK_H
#define ABOTA_MARK_H

#include <stddef.h>

#include "abota/boot_backend.h"
#include "abota/config.h"
#include "abota/error.h"
#include "abota/slot.h"
#include "abota/slot_status.h"

enum mark_state { MARK_GOOD, MARK_BAD, MARK_ACTIVE };

/* "good" | "bad" | "active" -> state; -EINVAL (with message) otherwise. */
int mark_parse_state(const char *s, enum mark_state *out, struct abota_error *err);

/* Resolves `what` to slots.  out must hold cfg->nslots entries.  booted is
 * the booted slot (NULL for an external boot, then booted_id names it). */
int mark_targets(const struct system_config *cfg, const struct slot *booted,
		 const char *booted_id, const char *what, bool allow_many,
		 const struct slot **out, size_t *n, struct abota_error *err);

struct mark_result {
	const struct slot **marked;    /* slots marked as requested */
	size_t n_marked;
	const struct slot **late_bad;  /* prevent-late-fallback: also marked bad */
	size_t n_late_bad;
	char message[256];             /* "marked slot(s) rootfs.0 as good" / "activated slot rootfs.1" */
};

/* Marks and fills *res (release with mark_result_free).  store may be NULL
 * (no central status file: activated.* is not recorded).  On failure *res
 * is left empty; slots marked before the failing one stay marked (the
 * bootloader has no transactions across slots). */
int mark_apply(const struct system_config *cfg, struct boot_backend *boot,
	       struct slot_status_store *store, const struct slot *booted,
	       const char *booted_id, enum mark_state state, const char *what,
	       struct mark_result *res, struct abota_error *err);
void mark_result_free(struct mark_result *res);

#endif
