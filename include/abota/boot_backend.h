/* boot_backend.h - one interface for every bootloader abota can drive.
 *
 * A backend is a struct of function pointers; each lives in its own file in
 * lib/boot/ (boot_<name>.c) and is selected by [system] bootloader=.
 * Semantics follow RAUC (specs/rauc-compat.md §4.4):
 *   primary  = the slot the bootloader will try first on the next boot
 *   good/bad = whether the bootloader may boot the slot at all
 *   accept   = confirm a slot after a (trial) boot (default: set good)
 *   reject   = give a slot up (default: set bad)
 * Slots passed in must have a bootname (parent-less, bootloader-managed).
 */
#ifndef ABOTA_BOOT_BACKEND_H
#define ABOTA_BOOT_BACKEND_H

#include <stdbool.h>

#include "abota/config.h"
#include "abota/error.h"
#include "abota/slot.h"

struct boot_backend;

struct boot_backend_ops {
	const char *name;
	/* Bootname of the slot the bootloader started, if it knows
	 * (custom: get-current); -ENOTSUP otherwise.  Caller frees. */
	int (*get_booted)(struct boot_backend *b, char **bootname, struct abota_error *err);
	/* *primary = NULL when the bootloader has no primary slot. */
	int (*get_primary)(struct boot_backend *b, struct slot **primary, struct abota_error *err);
	int (*set_primary)(struct boot_backend *b, const struct slot *s, struct abota_error *err);
	int (*get_state)(struct boot_backend *b, const struct slot *s, bool *good,
			 struct abota_error *err);
	int (*set_state)(struct boot_backend *b, const struct slot *s, bool good,
			 struct abota_error *err);
	/* Optional (NULL: set_state good / bad). */
	int (*accept)(struct boot_backend *b, const struct slot *s, struct abota_error *err);
	int (*reject)(struct boot_backend *b, const struct slot *s, struct abota_error *err);
	/* Whether one set_* call changes the bootloader state in a single
	 * power-cut-safe step (nothing half-applied after a crash). */
	bool (*is_atomic)(struct boot_backend *b);
	void (*close)(struct boot_backend *b);
};

struct boot_backend {
	const struct boot_backend_ops *ops;
	const struct system_config *cfg;
	void *priv;
};

/* Opens the backend named by cfg->bootloader.  barebox and efi (and fwu
 * until its backend exists) fail with -ENOTSUP "not supported". */
int boot_backend_open(const struct system_config *cfg, struct boot_backend **out,
		      struct abota_error *err);
void boot_backend_close(struct boot_backend *b);

const char *boot_backend_name(const struct boot_backend *b);
/* Wrappers: check that the slot has a bootname, prefix errors with the
 * backend name ("uboot: ..."). */
int boot_backend_get_booted(struct boot_backend *b, char **bootname, struct abota_error *err);
int boot_backend_get_primary(struct boot_backend *b, struct slot **primary,
			     struct abota_error *err);
int boot_backend_set_primary(struct boot_backend *b, const struct slot *s,
			     struct abota_error *err);
int boot_backend_get_state(struct boot_backend *b, const struct slot *s, bool *good,
			   struct abota_error *err);
int boot_backend_set_state(struct boot_backend *b, const struct slot *s, bool good,
			   struct abota_error *err);
int boot_backend_accept(struct boot_backend *b, const struct slot *s, struct abota_error *err);
int boot_backend_reject(struct boot_backend *b, const struct slot *s, struct abota_error *err);
bool boot_backend_is_atomic(struct boot_backend *b);

/* Booted-slot detection with the backend in RAUC's order (§4.2):
 * --override-boot-slot, then the kernel command line (external, rauc.slot=),
 * then the backend's get_booted (custom: get-current), then root=.  b may be
 * NULL (no backend).  Sets every slot's state; see slot_determine_states. */
int boot_backend_determine_states(struct boot_backend *b, struct system_config *cfg,
				  const char *override, slot_resolve_fn resolve, void *resolve_ctx,
				  char **booted_id, struct slot **booted, struct abota_error *err);

/* For backends with a space-separated boot order variable (uboot's
 * BOOT_ORDER, grub's ORDER): the first slot named there that usable() says
 * the bootloader would still boot, or NULL. */
struct slot *boot_backend_first_in_order(const struct system_config *cfg, const char *order,
					 bool (*usable)(void *ctx, const char *bootname),
					 void *ctx);

/* Constructors of the individual backends (lib/boot/boot_<name>.c). */
int boot_noop_open(const struct system_config *cfg, struct boot_backend **out,
		   struct abota_error *err);
int boot_custom_open(const struct system_config *cfg, struct boot_backend **out,
		     struct abota_error *err);
int boot_uboot_open(const struct system_config *cfg, struct boot_backend **out,
		    struct abota_error *err);
int boot_grub_open(const struct system_config *cfg, struct boot_backend **out,
		   struct abota_error *err);

#endif
