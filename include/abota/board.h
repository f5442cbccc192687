/* board.h - board profiles: flash layout, FWU configuration, FWU_INFO register.
 *
 * A profile is a data file (key file, see docs/fwu.md "Board profiles"),
 * boards/<name>/board.conf, next to an example system.conf.  Users add boards
 * by dropping a directory into a search path; nothing is compiled in.
 * Search order for a name: $ABOTA_BOARDS_DIR (colon-separated), the source
 * tree's boards/ (development builds), <datadir>/abota/boards.  A path
 * (containing '/' or ending in ".conf") is loaded directly.
 */
#ifndef ABOTA_BOARD_H
#define ABOTA_BOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abota/error.h"
#include "abota/fwu_metadata.h"
#include "abota/gpt.h"

#define BOARD_NAME_MAX 63

/* TF-A BL2 bank selection variants (specs/fwu-metadata.md §2.3). */
enum board_tfa {
	BOARD_TFA_V1,       /* (A) v1 metadata, TF-A v2.10 / ST <= v2.8, MAX 3 */
	BOARD_TFA_R3,       /* (B) ST v2.10-stm32mp-r3, v2 metadata, MAX 4 */
	BOARD_TFA_UPSTREAM, /* (C) upstream TF-A HEAD, v2 metadata, MAX 3 */
};
const char *board_tfa_name(enum board_tfa t); /* "v1", "r3", "upstream" */
int board_tfa_parse(const char *s, enum board_tfa *out, struct abota_error *err);

/* Initial content the simulator writes into a partition. */
enum board_content {
	BOARD_CONTENT_NONE,
	BOARD_CONTENT_FSBL,
	BOARD_CONTENT_METADATA,
	BOARD_CONTENT_FIP,
	BOARD_CONTENT_ENV,
	BOARD_CONTENT_BOOTFS,
	BOARD_CONTENT_VENDORFS,
	BOARD_CONTENT_ROOTFS,
	BOARD_CONTENT_USERFS,
};
const char *board_content_name(enum board_content c);

struct board_partition {
	char name[GPT_NAME_MAX + 1];
	uint64_t offset;
	uint64_t size; /* 0 = up to the end of the disk (last partition only) */
	struct guid type;
	struct guid uuid; /* fixed unique GUID, zero = random (seeded in the simulator) */
	uint64_t attrs;   /* GPT attributes (bootable = legacy BIOS bootable, bit 2) */
	enum board_content content;
	int bank;      /* A/B bank (0, 1, ...) the partition belongs to, -1 = shared */
	int fwu_image; /* index of the FWU image it holds, -1 = none */
	char slot[32]; /* RAUC slot name "<class>.<index>", "" = none */
};

/* A bank fix-up rule of the profile ([fixup.<name>] groups): which file of
 * the new bank to rewrite so it names that bank (bank_fixup.h).  A profile
 * with fix-up groups replaces abota's default rules (extlinux.conf of
 * bootfs, fstab of rootfs) with its own. */
#define BOARD_MAX_FIXUPS 16
struct board_fixup {
	char sclass[64];  /* slot class whose file system holds the file */
	char path[256];   /* absolute path inside that file system */
	bool cmdline;     /* kind=cmdline (kernel command line) or kind=mounts (fstab) */
	bool required;    /* a missing file is an error */
};

struct board {
	char name[BOARD_NAME_MAX + 1];
	char description[256];
	char soc[32];
	char storage[16]; /* sdcard | emmc | ... */
	char *path;       /* the profile file */
	char *dir;        /* its directory (holds system.conf) */
	uint64_t disk_size; /* default disk image size */
	unsigned sector_size;
	enum board_tfa tfa;
	struct fwu_md_config fwu; /* version, banks, images, image types */
	struct guid location_guid;
	/* FWU_INFO (TAMP backup register) */
	char fwu_info_register[32];
	uint64_t fwu_info_address;
	bool has_nvmem_offset;
	uint64_t fwu_info_nvmem_offset;
	size_t nparts;
	struct board_partition *parts; /* in GPT entry order */
	size_t nfixups;
	struct board_fixup fixups[BOARD_MAX_FIXUPS];
};

/* Loads and validates a profile by name or path.  Every key is checked
 * (unknown keys are errors); validation covers alignment, overlaps, disk
 * size, duplicate names/GUIDs, metadata partitions (TF-A and U-Boot lookups
 * agree) and that every FWU image of every bank has a partition with a fixed
 * unique GUID and the image type. */
int board_load(const char *name_or_path, struct board **out, struct abota_error *err);
/* Parses a profile from memory (name used in messages). */
int board_parse(const char *data, size_t len, const char *name, struct board **out,
		struct abota_error *err);
void board_free(struct board *b);

/* Checks a disk size against the layout (everything fits, the backup GPT
 * included). */
int board_check_disk_size(const struct board *b, uint64_t size, struct abota_error *err);
/* The smallest disk the layout fits on. */
uint64_t board_min_disk_size(const struct board *b);

struct fwu_md_config board_fwu_config(const struct board *b);
/* Fills type/location/bank GUIDs of every image from the layout. */
int board_fill_metadata_guids(const struct board *b, struct fwu_metadata *md,
			      struct abota_error *err);
/* The partition holding image `image` of bank `bank`, or NULL. */
const struct board_partition *board_image_partition(const struct board *b, unsigned image,
						    unsigned bank);
/* Partition by name, or NULL. */
const struct board_partition *board_partition(const struct board *b, const char *name);
/* The partition of a bank with a given content (e.g. bootfs of bank 1). */
const struct board_partition *board_bank_partition(const struct board *b, unsigned bank,
						   enum board_content content);

/* Names of the boards found in the search path, sorted; free with
 * board_list_free. */
int board_list(char ***names, size_t *count, struct abota_error *err);
void board_list_free(char **names, size_t count);

/* Parses "123", "0x4400", "256KiB", "4MiB", "5GiB" (also K/M/G, 1024-based). */
int board_parse_size(const char *s, uint64_t *out);

#endif
