/* slot_device.h - open the storage behind a slot, resolved on the boot disk.
 *
 * A slot names its storage in one of these ways (system.conf):
 *   partition=NAME            GPT partition name on the boot disk (abota)
 *   device=PARTLABEL=NAME     the same, RAUC-style spelling
 *   device=PARTUUID=GUID      GPT unique partition GUID on the boot disk
 *   device=/path              a block device (size: BLKGETSIZE64) or a
 *                             regular file (disk images, tests)
 * Labels and PARTUUIDs are looked up in the boot disk's own GPT, never
 * through /dev/disk/by-partlabel: boards with SD card and eMMC (STM32MP257F-EV1)
 * carry the same labels on both, and udev's links then point at whichever
 * disk appeared last.
 *
 * The boot disk is [system] boot-disk, or derived from the booted root on
 * the kernel command line (root=PARTUUID=, root=PARTLABEL=, root=/dev/...):
 * the disk whose GPT holds that partition (/sys/class/block parent for a
 * device path).  When it cannot be derived and a label exists on more than
 * one disk, opening refuses and lists the disks; when it can, the copy on
 * the boot disk is used and the others are named in an info message.
 */
#ifndef ABOTA_SLOT_DEVICE_H
#define ABOTA_SLOT_DEVICE_H

#include <stdint.h>

#include "abota/config.h"
#include "abota/error.h"
#include "abota/gpt.h"
#include "abota/slot.h"

struct slot_device {
	int fd;          /* open with the requested flags, O_CLOEXEC */
	uint64_t offset; /* byte offset of the slot inside path */
	uint64_t size;   /* bytes available to the slot */
	char *path;      /* the disk (GPT partitions) or the device/file itself */
	char *desc;      /* "rootfs-b on /dev/mmcblk0 (p13)", for messages */
	char partuuid[GUID_STR_LEN + 1];  /* lower case; "" if not a GPT partition */
	char partlabel[GPT_NAME_MAX + 1]; /* "" if not a GPT partition */
	unsigned partno; /* 1-based GPT entry number, 0 if not a partition */
};

/* Where disks and the booted root are found; every field is optional and
 * replaces the system's view (tests inject disk images here). */
struct slot_device_probe {
	const char *const *disks; /* NULL-terminated whole-disk paths; NULL: scan sysfs */
	const char *sysfs_block;  /* default /sys/class/block */
	const char *cmdline;      /* kernel command line text; NULL: cfg->cmdline_file */
};

/* The boot disk: [system] boot-disk, else derived from root= on the kernel
 * command line.  -ENOENT when it cannot be derived (no root=, root=UUID=,
 * partition on no known disk), -ENOTUNIQ when root= names a partition found
 * on several disks (cloned cards); the message lists the disks.
 * *disk is malloc'd. */
int slot_device_boot_disk(const struct system_config *cfg, char **disk, struct abota_error *err);
int slot_device_boot_disk_probe(const struct system_config *cfg,
				const struct slot_device_probe *probe, char **disk,
				struct abota_error *err);

/* Opens the storage of slot s with open_flags (O_RDONLY or O_RDWR; O_CLOEXEC
 * is added).  Errors name the slot and the reason.  On failure *out is
 * untouched. */
int slot_device_open(const struct system_config *cfg, const struct slot *s, int open_flags,
		     struct slot_device *out, struct abota_error *err);
int slot_device_open_probe(const struct system_config *cfg, const struct slot_device_probe *probe,
			   const struct slot *s, int open_flags, struct slot_device *out,
			   struct abota_error *err);

/* Resolves without opening the slot for I/O (status display, fix-ups that
 * need another slot's PARTUUID).  Same rules; out->fd is -1. */
int slot_device_resolve(const struct system_config *cfg, const struct slot_device_probe *probe,
			const struct slot *s, struct slot_device *out, struct abota_error *err);

/* -EBUSY, naming the mount point, when the storage of slot s (opened in d)
 * is mounted anywhere (mount_check.h): RAUC's refusal to write a file system
 * in use, which allow-mounted=true lifts (the caller checks that). */
int slot_device_check_unmounted(const struct slot *s, const struct slot_device *d,
				struct abota_error *err);

/* Flushes written data to the media (fdatasync). */
int slot_device_sync(struct slot_device *d, struct abota_error *err);

/* Closes the fd and frees the strings; safe on a zeroed or closed struct. */
void slot_device_close(struct slot_device *d);

#endif
