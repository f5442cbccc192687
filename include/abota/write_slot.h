/* write_slot.h - write one local image into one slot (abota write-slot).
 *
 * RAUC's `write-slot` for development and factory use: no bundle, no
 * signature, no handlers or hooks -- the caller (root) vouches for the
 * image.  What abota keeps from the install is what protects the device:
 *   - never a slot of the booted group (the running system), never a
 *     read-only slot, nothing that does not fit, one writer at a time (the
 *     install lock);
 *   - a bootable group is marked bad in the boot backend before its first
 *     byte changes and stays bad (it boots after `status mark-active`), so
 *     a power cut can never leave a half-written group the bootloader picks;
 *   - the install's writer (read-back check of every segment);
 *   - the central status tells the truth: pending while writing, then ok
 *     with the image's SHA-256 and no bundle.* keys (or failed); an
 *     interrupted install's resume journal that names the slot is dropped.
 */
#ifndef ABOTA_WRITE_SLOT_H
#define ABOTA_WRITE_SLOT_H

#include <stdint.h>

#include "abota/config.h"
#include "abota/digest.h"
#include "abota/error.h"
#include "abota/install.h"

struct write_slot_opts {
	const char *slot;               /* slot name from system.conf, "rootfs.1" */
	const char *image;              /* a regular file or a block device */
	const char *image_type;         /* NULL: from the file name, as RAUC */
	const char *override_boot_slot; /* RAUC's --override-boot-slot */
	install_progress_fn progress;   /* NULL: none */
	void *progress_ctx;
};

struct write_slot_result {
	uint64_t size;                           /* image bytes written */
	char sha256[DIGEST_SHA256_LEN * 2 + 1];  /* of the image */
	char marked_bad[64]; /* bootname of the group marked bad, "" if none */
	char root_slot[64];  /* and the name of its root slot (what mark-active takes) */
	bool extracted;      /* a tar archive extracted into a new file system (nothing
				to read back), not an image written and read back */
};

/* On failure *result is untouched. */
int write_slot_run(struct system_config *cfg, const struct write_slot_opts *opts,
		   struct write_slot_result *result, struct abota_error *err);

#endif
