/* slot_mount.h - mount a slot's file system for a slot hook.
 *
 * RAUC mounts a slot that holds a file system around its slot hooks
 * (slot-post-install after an image copy), at <mountprefix>/<slot name>,
 * and passes the path as RAUC_SLOT_MOUNT_POINT.  abota's slots are often a
 * range of a disk (a GPT partition found on the boot disk, or a region of a
 * disk image), so the mount goes through a loop device bound to exactly
 * that range (LOOP_CONFIGURE with offset and size limit, autoclear). */
#ifndef ABOTA_SLOT_MOUNT_H
#define ABOTA_SLOT_MOUNT_H

#include <stdbool.h>

#include "abota/config.h"
#include "abota/error.h"
#include "abota/slot_device.h"

struct slot_mount {
	char *mount_point;
	int loop_fd;       /* -1 when no loop device was needed */
	char loop_dev[32];
};

/* Slot types RAUC mounts for hooks: file systems the kernel can mount. */
bool slot_mount_type_supported(const char *type);

/* Mounts the file system of type fstype in dev (open O_RDWR) at
 * <mount_prefix>/<slot name> (created; must not be in use).  nosuid,nodev,
 * plus the slot's extra-mount-opts. */
int slot_mount(const struct system_config *cfg, const struct slot *s, const struct slot_device *dev,
	       const char *fstype, struct slot_mount *out, struct abota_error *err);

/* A slot's extra-mount-opts (RAUC passes them to mount -o): the generic
 * ones (ro, noatime, sync ...) become mount flags, the rest the file
 * system's data string (*data, malloc'd, NULL if none).  Always nosuid and
 * nodev; suid, dev, bind, move, remount and loop are refused by name.
 * opts may be NULL.  Out-parameters untouched on failure. */
int slot_mount_options(const char *opts, unsigned long *flags, char **data,
		       struct abota_error *err);

/* Only a loop device bound to the slot's range (for a slot-install hook
 * that writes the slot itself): out->loop_dev names it. */
int slot_mount_loop(const struct slot_device *dev, struct slot_mount *out,
		    struct abota_error *err);

/* The device node or file that is exactly the slot (RAUC_SLOT_DEVICE for
 * hooks, what resize2fs works on): dev->path when the slot is all of it (a
 * block device, or a file slot), else a loop device bound to the slot's
 * range of the disk (a GPT partition found on the boot disk), kept in
 * *loop until slot_umount(loop).  *path points into dev or loop. */
int slot_mount_device(const struct slot_device *dev, struct slot_mount *loop, const char **path,
		      struct abota_error *err);

/* Unmounts, releases the loop device and removes the mount point.  Safe to
 * call on a failed slot_mount or one initialised as { .loop_fd = -1 }. */
int slot_umount(struct slot_mount *m, struct abota_error *err);

#endif
