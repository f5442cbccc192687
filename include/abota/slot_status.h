/* slot_status.h - RAUC's central slot status file (<data-directory>/central.raucs).
 *
 * Format (specs/rauc-compat.md §4.1): a key file with `[system] boot-id=` and
 * one `[slot.<class>.<idx>]` group per slot with bundle.*, status, sha256,
 * size, installed.* and activated.* keys, written in RAUC's order.  Saving is
 * an atomic file replacement.  A file that cannot be parsed is logged and
 * treated as empty; the next save renames it to `<file>.broken` first.
 * Per-slot status files (/slot.raucs inside the slot) are not supported.
 */
#ifndef ABOTA_SLOT_STATUS_H
#define ABOTA_SLOT_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abota/error.h"
#include "abota/slot.h"

#define SLOT_STATUS_TIMESTAMP_LEN 21 /* "2026-11-25T12:46:06Z" + NUL */

struct slot_status {
	/* NULL = not set (key absent) */
	char *bundle_compatible, *bundle_version, *bundle_description, *bundle_build;
	char *bundle_hash;
	char *status; /* "ok" | "failed" | "pending" */
	char *sha256;
	uint64_t size;
	bool has_size;
	char *installed_transaction;
	char *installed_timestamp;
	uint64_t installed_count;
	char *activated_timestamp;
	uint64_t activated_count;
};

struct slot_status_store;

/* Loads the file; a missing file gives an empty store, a broken one an
 * empty store that remembers to move the file aside on save.  Only I/O
 * errors other than ENOENT fail. */
int slot_status_load(const char *path, struct slot_status_store **out, struct abota_error *err);
void slot_status_store_free(struct slot_status_store *st);

const char *slot_status_path(const struct slot_status_store *st);
bool slot_status_was_broken(const struct slot_status_store *st);
/* boot-id written on save; default: /proc/sys/kernel/random/boot_id. */
const char *slot_status_boot_id(const struct slot_status_store *st);
int slot_status_set_boot_id(struct slot_status_store *st, const char *boot_id);
/* boot-id found in the file when it was loaded: the boot in which it was
 * last saved (NULL if none). */
const char *slot_status_saved_boot_id(const struct slot_status_store *st);
/* Reads the current boot id from path (NULL = /proc/sys/kernel/random/boot_id). */
int slot_status_read_boot_id(const char *path, char *out, size_t cap);

/* Status of a slot, NULL if the file has none. */
const struct slot_status *slot_status_find(const struct slot_status_store *st, const char *slot);
/* Status of a slot, created empty if absent (NULL only when out of memory). */
struct slot_status *slot_status_get(struct slot_status_store *st, const char *slot);

/* Replaces a string field (NULL clears it); -ENOMEM on failure. */
int slot_status_set(char **field, const char *value);
/* Clears every field of a status. */
void slot_status_clear(struct slot_status *s);

/* Writes the current UTC time as %Y-%m-%dT%H:%M:%SZ. */
void slot_status_timestamp_now(char buf[SLOT_STATUS_TIMESTAMP_LEN]);
/* mark-active bookkeeping: activated.timestamp = now, activated.count++. */
int slot_status_mark_activated(struct slot_status_store *st, const char *slot,
			       struct abota_error *err);

/* Saves atomically (temp file, fsync, rename, fsync dir); creates the
 * directory if missing (one level). */
int slot_status_save(struct slot_status_store *st, struct abota_error *err);

/* slot_rank_fn for slot_target_group (ctx = store): RAUC 1.15's A/B/C
 * preference -- status=failed first, then never installed, then the oldest
 * installed.timestamp. */
int slot_status_rank(void *store, const struct slot *a, const struct slot *b);

#endif
