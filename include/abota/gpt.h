/* gpt.h - GUID partition tables of disks and disk images (libfdisk).
 *
 * The boot disk's partitions are resolved here, by unique GUID or by name on
 * that one disk (never through /dev/disk/by-partlabel, which is ambiguous on
 * boards with SD card and eMMC carrying the same labels).  Offsets and sizes
 * are in bytes.
 */
#ifndef ABOTA_GPT_H
#define ABOTA_GPT_H

#include <stddef.h>
#include <stdint.h>

#include "abota/error.h"
#include "abota/guid.h"

#define GPT_NAME_MAX 72 /* 36 UTF-16 code units, as UTF-8 */
#define GPT_ATTR_LEGACY_BIOS_BOOTABLE (1ull << 2)

struct gpt_part {
	unsigned number; /* 1-based entry number */
	char name[GPT_NAME_MAX + 1];
	struct guid type;
	struct guid uuid;
	uint64_t start; /* bytes */
	uint64_t size;  /* bytes; in gpt_write a size of 0 means "up to the end" */
	uint64_t attrs;
};

struct gpt_disk {
	uint64_t size;        /* bytes */
	unsigned sector_size; /* 512 for images */
	struct guid disk_guid;
	size_t nparts;
	struct gpt_part *parts; /* in entry order */
};

/* Reads the GPT of a disk or disk image (read-only). */
int gpt_read(const char *path, struct gpt_disk **out, struct abota_error *err);
void gpt_free(struct gpt_disk *disk);

/* Writes a new GPT (protective MBR, primary and backup tables, 128 entries)
 * with exactly the given partitions onto an existing file or device of
 * layout->size bytes (0 = its current size).  Partitions are created in
 * array order with their start, size, name, type, unique GUID and attributes;
 * nothing is aligned or moved. */
int gpt_write(const char *path, const struct gpt_disk *layout, struct abota_error *err);

/* Lookups on one disk.  gpt_find_name fails with -ENOENT when absent and
 * -ENOTUNIQ when the name is used twice. */
int gpt_find_name(const struct gpt_disk *disk, const char *name, const struct gpt_part **out,
		  struct abota_error *err);
const struct gpt_part *gpt_find_uuid(const struct gpt_disk *disk, const struct guid *uuid);

#endif
