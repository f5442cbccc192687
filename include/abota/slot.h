/* slot.h - the slot model of system.conf and booted-slot detection.
 *
 * Slots are owned by struct system_config (config.h) and live as long as it.
 * A slot is "<class>.<index>" ([slot.<class>.<index>] in system.conf); a slot
 * with a bootname is bootloader-managed; `parent` groups child slots (e.g. a
 * bootloader or bootfs partition) with the bootable slot they belong to.
 *
 * Booted-slot detection follows RAUC (specs/rauc-compat.md §4.2): the kernel
 * command line is searched for `rauc.external` / `root=/dev/nfs` (external
 * boot: no slot booted), `rauc.slot=`, then (after the bootloader backend,
 * which the caller may consult) `root=` / `systemd.verity_root_data=`; the
 * value is matched against bootname, slot name, then realpath(device).
 */
#ifndef ABOTA_SLOT_H
#define ABOTA_SLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abota/error.h"

struct system_config;

enum slot_state {
	SLOT_STATE_INACTIVE = 0, /* neither booted nor part of the booted group */
	SLOT_STATE_BOOTED,       /* the running slot */
	SLOT_STATE_ACTIVE,       /* child of the booted slot (mounted/used with it) */
};

struct slot {
	const char *name;        /* "rootfs.0" */
	const char *sclass;      /* "rootfs" */
	unsigned index;          /* 0 */
	const char *description; /* NULL if unset */
	const char *device;      /* absolute path; NULL when only `partition` is set */
	const char *partition;   /* abota: GPT partition name on [system] boot-disk, or NULL */
	const char *type;        /* "raw", "ext4", ... (default "raw") */
	const char *bootname;    /* NULL if not bootloader-managed */
	struct slot *parent;     /* NULL for root slots */
	bool readonly;
	bool install_same;       /* default true */
	bool allow_mounted;
	bool resize;
	const char *extra_mkfs_opts;
	const char *extra_mount_opts;
	bool has_region;         /* region-start/region-size given */
	uint64_t region_start, region_size;
	uint64_t size_limit;     /* boot-emmc only, 0 = none */
	/* runtime */
	enum slot_state state;
	const char *mount_point; /* external mount point, NULL if unknown */
};

const char *slot_state_name(enum slot_state s); /* "booted", "active", "inactive" */

/* Looks a slot up by its name ("rootfs.1"); NULL if absent. */
struct slot *slot_find(const struct system_config *cfg, const char *name);
/* Looks a root slot up by its bootname; NULL if absent. */
struct slot *slot_find_bootname(const struct system_config *cfg, const char *bootname);
/* The topmost ancestor of a slot (the slot itself when it has no parent). */
const struct slot *slot_root(const struct slot *s);
/* Whether the slot type is one RAUC accepts in system.conf. */
bool slot_type_valid(const char *type);

/* Maps "PARTLABEL=x", "PARTUUID=x", "UUID=x" to a device path (normally
 * /dev/disk/by-partlabel/x etc.) and resolves symlinks.  Injectable for
 * tests; the default is slot_resolve_device_default. */
typedef int (*slot_resolve_fn)(void *ctx, const char *spec, char **out_path);
int slot_resolve_device_default(void *ctx, const char *spec, char **out_path);

/* Result of parsing the kernel command line. */
struct slot_cmdline {
	bool external;     /* rauc.external or root=/dev/nfs */
	char *rauc_slot;   /* value of rauc.slot=, or NULL */
	char *root;        /* value of root= or systemd.verity_root_data= (raw), or NULL */
};
/* Parses a command line (whitespace-separated words; the last occurrence of
 * a key wins, as in the kernel). */
int slot_cmdline_parse(const char *cmdline, struct slot_cmdline *out, struct abota_error *err);
void slot_cmdline_clear(struct slot_cmdline *c);

/* Matches a boot identifier against the slots: bootname, then slot name,
 * then realpath of the device (the identifier itself is resolved through
 * `resolve` first when it is a PARTLABEL=/PARTUUID=/UUID= spec, and through
 * realpath when it is a path).  NULL if nothing matches. */
struct slot *slot_match_boot_id(const struct system_config *cfg, const char *id,
				slot_resolve_fn resolve, void *resolve_ctx);

/* Determines the booted slot and sets every slot's state.
 *   override      --override-boot-slot value or NULL (wins over everything)
 *   cmdline       kernel command line text (NULL: read cfg->cmdline_file)
 *   backend_current  identifier from the bootloader backend (custom
 *                 get-current), or NULL; used after rauc.slot=, before root=
 * On success *booted_id is the raw identifier (RAUC's BootSlot; "external"
 * for external boots; caller frees) and *booted the matched slot (NULL only
 * for external boots).  No match is an error (-ENOENT) naming the id. */
int slot_determine_states(struct system_config *cfg, const char *override, const char *cmdline,
			  const char *backend_current, slot_resolve_fn resolve, void *resolve_ctx,
			  char **booted_id, struct slot **booted, struct abota_error *err);

/* The booted slot after slot_determine_states (NULL if external/unknown). */
struct slot *slot_get_booted(const struct system_config *cfg);

/* Chooses the target install group (RAUC's determine_target_install_group):
 * for every root class (classes of parent-less slots) one inactive,
 * non-readonly slot, then all descendants of the chosen roots.  `pick` may
 * rank candidates of one class (return <0 if a is better than b); NULL
 * takes the first in config order.  *out is a malloc'd array of slot
 * pointers in config order (caller frees the array only). */
typedef int (*slot_rank_fn)(void *ctx, const struct slot *a, const struct slot *b);
int slot_target_group(const struct system_config *cfg, slot_rank_fn rank, void *rank_ctx,
		      struct slot ***out, size_t *count, struct abota_error *err);

#endif
