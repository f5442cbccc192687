/* install.h - install a bundle into the inactive slot group.
 *
 * Order (RAUC's, specs/rauc-compat.md section 0.10, plus abota's checks):
 * determine the booted slot -> open and verify the bundle (format allow-list,
 * signature size limit, keyring) -> pre-install handler -> compatible check ->
 * version policy -> plan (target group, image -> slot, sizes, types) ->
 * boot-backend checks (FWU trial budget) -> mark the target bad -> write every
 * image (status pending -> ok/failed; verified by reading the slot back) ->
 * bank fix-ups -> switch the boot backend to the target (trial) ->
 * post-install handler.  Nothing is written before the plan is complete and
 * checked, and the boot switch happens only after every slot is written and
 * verified.
 */
#ifndef ABOTA_INSTALL_H
#define ABOTA_INSTALL_H

#include <stdbool.h>
#include <stdint.h>

#include "abota/config.h"
#include "abota/error.h"
#include "abota/http_source.h"
#include "abota/signature.h"

struct install_progress {
	unsigned percent;        /* 0..100 over the whole install */
	const char *message;     /* what is happening */
	unsigned depth;          /* nesting, as RAUC's Progress property */
	uint64_t bytes_done;     /* of the image being written */
	uint64_t bytes_total;
};

typedef void (*install_progress_fn)(void *ctx, const struct install_progress *p);

struct install_opts {
	const char *bundle;                  /* path or http(s):// URL of the bundle */
	const struct http_opts *http;        /* TLS and headers for a URL; NULL = defaults */
	const struct sig_policy *keyring;    /* NULL = the config's [keyring] */
	const char *override_boot_slot;      /* RAUC's --override-boot-slot */
	bool ignore_compatible;
	bool ignore_version_limit;           /* allow downgrades / older than min-bundle-version */
	bool force;                          /* install although the FWU trial budget is short */
	const char *transaction_id;          /* NULL = generated UUID */
	const char *require_manifest_hash;   /* NULL = any */
	install_progress_fn progress;
	void *progress_ctx;
};

/* What an install did, for the caller's messages. */
struct install_result {
	char target[64];       /* bootname (or slot name) of the installed group */
	bool activated;        /* the boot backend now boots target (activate-installed) */
	char transaction[37];
	unsigned written, skipped; /* images written / skipped (install-same) */
	unsigned resumed;          /* images continued from the resume journal */
	uint64_t resumed_bytes;    /* bytes proven before the interruption, not rewritten */
	unsigned adaptive;         /* images installed adaptively */
	uint64_t adaptive_reused_bytes; /* image bytes taken from local copies (or zeros) */
};

int install_run(struct system_config *cfg, const struct install_opts *opts,
		struct install_result *result, struct abota_error *err);

/* One install (or write-slot) at a time per device, whoever starts it (abota
 * install, the D-Bus service, the hawkBit agent): an flock on
 * <data-directory>/install.lock, released when *fd_out is closed or the
 * process ends (also by a crash).  -EBUSY when another one holds it.  No
 * data-directory: 0 and *fd_out untouched (nothing to lock). */
int install_lock_take(const struct system_config *cfg, int *fd_out, struct abota_error *err);

/* A random (version 4) UUID, as RAUC's transaction ids. */
void install_new_transaction_id(char out[37]);

#endif
