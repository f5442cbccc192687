/* system_info.h - what the running system says about itself, as RAUC
 * gathers it on the target: the variant ([system] variant-name, the
 * contents of variant-file, or the device tree's compatible with
 * variant-dtb) and the output of the [handlers] system-info program
 * (RAUC_SYSTEM_SERIAL, RAUC_SYSTEM_VARIANT -- which overrides the
 * configured variant --, RAUC_SYSTEM_VERSION and any other RAUC_* lines,
 * all of which handlers and hooks receive in their environment).
 *
 * Loaded by the verbs that act on the device (install, status, the D-Bus
 * service), not by those that only read bundles. */
#ifndef ABOTA_SYSTEM_INFO_H
#define ABOTA_SYSTEM_INFO_H

#include <stddef.h>

#include "abota/config.h"
#include "abota/error.h"

struct system_info {
	char *variant; /* NULL: none */
	char *serial;  /* RAUC_SYSTEM_SERIAL, NULL if not given */
	char *version; /* RAUC_SYSTEM_VERSION, NULL if not given */
	/* every RAUC_*=value line of the system-info program, in output order */
	size_t n_vars;
	char **vars;
};

/* Where variant-dtb reads the compatible (the first string of the root's
 * compatible property). */
#define SYSTEM_INFO_DTB_COMPATIBLE "/sys/firmware/devicetree/base/compatible"

/* dtb_path NULL = SYSTEM_INFO_DTB_COMPATIBLE.  A variant file or device tree
 * that cannot be read is a warning and no variant, as in RAUC; a system-info
 * program that is missing, cannot run, or exits non-zero is an error (RAUC
 * refuses to work on a system it cannot identify). */
int system_info_load(const struct system_config *cfg, const char *dtb_path,
		     struct system_info **out, struct abota_error *err);
void system_info_free(struct system_info *si);

/* RAUC's streaming info headers: those [streaming] send-headers names
 * (RAUC-Boot-ID, -Machine-ID, -System-Version, -Serial, -Variant,
 * -Transaction-ID, -Uptime; a value the system does not have is left out)
 * and RAUC-<X> for each RAUC_HTTP_<X> variable of the system-info handler.
 * Fills out (cap entries, the last one always NULL) with malloc'ed
 * "Name: value" strings the caller frees; -ENOMEM, out then holds what was
 * made so far. */
int system_info_http_headers(const struct system_config *cfg, const struct system_info *si,
			     const char *transaction, char **out, size_t cap,
			     struct abota_error *err);

#endif
