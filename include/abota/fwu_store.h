/* fwu_store.h - the two copies of the FWU metadata: read, repair, write.
 *
 * Copies live either in two GPT partitions of the boot disk (metadata1 =
 * primary, metadata2 = secondary; located as ST TF-A r3 and U-Boot locate
 * them, which must agree) or in one or two files / block devices at offset 0.
 *
 * Read: both copies, each checked (structure, CRC and every consumer rule,
 * fwu_md_validate).  The primary wins when both are valid, as in U-Boot; a
 * bad copy, or a valid one that differs from the winner, needs repair.
 * Write: one copy at a time, each made durable (fdatasync) before the other
 * is touched: secondary first, then primary (see fwu_store.c for why).
 */
#ifndef ABOTA_FWU_STORE_H
#define ABOTA_FWU_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abota/error.h"
#include "abota/fwu_metadata.h"
#include "abota/gpt.h"

struct fwu_store;

struct fwu_store_copy_state {
	bool valid;   /* decoded, CRC good, all consumer rules pass */
	bool decoded; /* the structure could be shown (maybe with a bad CRC) */
	int error_code;
	char error[ABOTA_ERROR_MSG_MAX]; /* why it is not valid */
	struct fwu_metadata md;
	size_t size; /* structure size of a valid copy */
	size_t raw_len;
	uint8_t raw[FWU_MD_READ_SIZE];
};

struct fwu_store_state {
	unsigned ncopies;
	struct fwu_store_copy_state copy[2];
	int winner;        /* copy in effect, -1 when none is valid */
	bool needs_repair; /* a copy is bad or differs from the winner */
};

/* How firmware finds the copies in a GPT (specs/fwu-metadata.md §1.5). */
enum fwu_md_lookup {
	FWU_LOOKUP_ST_R3, /* type GUID + fixed unique GUIDs, else names */
	FWU_LOOKUP_NAME,  /* upstream TF-A: names metadata1 / metadata2 */
	FWU_LOOKUP_UBOOT, /* first two entries with the metadata type GUID */
};
int fwu_store_locate(const struct gpt_disk *disk, enum fwu_md_lookup how,
		     const struct gpt_part *out[2], struct abota_error *err);

/* Copies in files or devices (1 or 2 paths; path[0] is the primary).  With
 * create, missing regular files are created on write. */
int fwu_store_open_files(const char *const *paths, unsigned n, const struct fwu_md_config *cfg,
			 bool create, struct fwu_store **out, struct abota_error *err);
/* Copies in the GPT partitions of a disk or disk image. */
int fwu_store_open_disk(const char *disk, const struct fwu_md_config *cfg,
			struct fwu_store **out, struct abota_error *err);
/* Copies at given byte ranges of one file or device (firmware emulation:
 * the simulator locates them with the lookup of the firmware it emulates).
 * names label the copies in messages. */
int fwu_store_open_regions(const char *path, const uint64_t offset[2], const uint64_t size[2],
			   const char *const names[2], const struct fwu_md_config *cfg,
			   struct fwu_store **out, struct abota_error *err);
void fwu_store_free(struct fwu_store *st);

unsigned fwu_store_ncopies(const struct fwu_store *st);
const char *fwu_store_copy_name(const struct fwu_store *st, unsigned i);
const struct fwu_md_config *fwu_store_config(const struct fwu_store *st);
/* The GPT when opened on a disk, else NULL. */
const struct gpt_disk *fwu_store_gpt(const struct fwu_store *st);

/* Reads and checks both copies.  Only I/O errors fail; invalid copies are
 * reported in *out (heap allocated by the caller: the struct is ~10 KiB). */
int fwu_store_read(struct fwu_store *st, struct fwu_store_state *out, struct abota_error *err);

/* Reads, fails when no copy is valid ("metadata1: ...; metadata2: ...") and
 * returns the winner.  With repair, a bad or stale copy is rewritten from the
 * winner first (*repaired set to the number of copies rewritten). */
int fwu_store_load(struct fwu_store *st, bool repair, struct fwu_metadata *out,
		   unsigned *repaired, struct abota_error *err);

/* Rewrites bad or stale copies from the winner of a state just read.
 * Refuses when no copy is valid (it never re-signs garbage). */
int fwu_store_repair(struct fwu_store *st, const struct fwu_store_state *state,
		     unsigned *repaired, struct abota_error *err);

/* Validates md (fwu_md_validate, and on a disk: every image GUID names a
 * partition), encodes it and writes both copies, secondary first, each
 * durable before the next. */
int fwu_store_write(struct fwu_store *st, const struct fwu_metadata *md,
		    struct abota_error *err);

/* Checks that every bank's image GUID is the unique GUID of a partition of
 * the disk (BL2 panics otherwise), recognising RFC 4122 byte order mistakes. */
int fwu_store_check_guids(const struct gpt_disk *disk, const struct fwu_metadata *md,
			  struct abota_error *err);

/* Raw access for firmware emulation: read up to cap bytes of copy i, write
 * len bytes to copy i and make them durable (through powercut.h). */
int fwu_store_read_raw(struct fwu_store *st, unsigned i, void *buf, size_t cap, size_t *len,
		       struct abota_error *err);
int fwu_store_write_raw(struct fwu_store *st, unsigned i, const void *buf, size_t len,
			struct abota_error *err);

#endif
