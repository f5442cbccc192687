/* mount_check.h - is a slot's storage mounted?
 *
 * RAUC refuses to write a slot whose device is mounted (a file system in
 * use would be overwritten under the kernel's feet) unless the slot says
 * allow-mounted=true.  abota's slots are often a byte range of a disk (a GPT
 * partition found on the boot disk) or a file, never just a device node, so
 * "mounted" means: a mounted block device whose storage overlaps the range --
 *   - the device itself (a slot that is a whole block device),
 *   - a partition of that disk overlapping the range (sysfs start/size),
 *   - a loop device backed by the file or disk, overlapping the range
 *     (loop/backing_file, offset, sizelimit), or a partition of such a loop
 *     device (losetup -P of a disk image),
 * matched by major:minor against /proc/self/mountinfo. */
#ifndef ABOTA_MOUNT_CHECK_H
#define ABOTA_MOUNT_CHECK_H

#include <stdint.h>

#include "abota/error.h"

/* Where the kernel's view is read (tests point these at copies); NULL
 * fields: /sys/class/block and /proc/self/mountinfo. */
struct mount_check_probe {
	const char *sysfs_block;
	const char *mountinfo;
};

/* 1 when [offset, offset + size) of path (a block device or a regular file)
 * is mounted -- *where (malloc'd, may be NULL) then says "/mnt/x (/dev/loop3)"
 * -- 0 when not, a negative errno when the kernel's view cannot be read. */
int mount_check_range(const char *path, uint64_t offset, uint64_t size,
		      const struct mount_check_probe *probe, char **where,
		      struct abota_error *err);

#endif
