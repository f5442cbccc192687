/* slot_resize.h - grow a slot's ext4 file system to the slot (resize=true).
 *
 * RAUC's `resize=true` slot key: after an ext4 image is copied into an ext4
 * slot, resize2fs grows the file system to fill the slot, so one image
 * serves partitions of any size.  abota runs the same program (e2fsprogs):
 * libext2fs has no resize API, and resize2fs is what RAUC users' systems
 * already carry. */
#ifndef ABOTA_SLOT_RESIZE_H
#define ABOTA_SLOT_RESIZE_H

#include <stdbool.h>

#include "abota/error.h"
#include "abota/slot.h"
#include "abota/slot_device.h"

/* Does writing an image of RAUC type img_type into s call for a resize?
 * (resize=true, an ext4 slot and an ext4 image; other types ignore the key,
 * as in RAUC.) */
bool slot_resize_wanted(const struct slot *s, const char *img_type);

/* Runs resize2fs on the slot (a loop device bound to its range when it is
 * part of a disk); its output goes to stderr.  Not atomic: a cut while it
 * runs can leave the file system damaged, so the slot must count as not
 * written until this returns 0 (callers keep the boot away from it). */
int slot_resize(const struct slot_device *dev, struct abota_error *err);

#endif
