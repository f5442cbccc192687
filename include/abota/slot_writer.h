/* slot_writer.h - write an image into a slot, proven by reading it back.
 *
 * The writer behind `abota install` and `abota write-slot`.  The caller
 * hands over the image in order (slot_writer_write, which fits a bundle
 * stream sink); the writer
 *   - zeroes runs of zeros in one call instead of writing them
 *     (fileio_zero_range: no data moves on a file slot),
 *   - cuts the image into 32 MiB segments; each finished segment starts its
 *     writeback at once, and a thread of its own makes it durable
 *     (fdatasync), drops its cached pages, reads it back from the medium
 *     and compares it with a CRC-32 of the bytes that were written,
 *   - reports each proven segment (checkpoint: the resume journal) from that
 *     thread, so the writer never waits for the journal's syncs.
 * slot_writer_finish() syncs the rest, waits for the last check and gives
 * the verdict: 0 only when every byte handed over is on the medium as
 * written.  What the bytes should be (the image's SHA-256) is the caller's
 * business: it hashes what it hands over.
 */
#ifndef ABOTA_SLOT_WRITER_H
#define ABOTA_SLOT_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abota/digest.h"
#include "abota/error.h"
#include "abota/slot_device.h"

struct slot_writer;

/* Can an image of RAUC type img_type ("raw", "ext4", ...; NULL: unknown) be
 * copied raw into a slot of slot_type? */
bool slot_writer_can_write(const char *img_type, const char *slot_type);

/* The bytes [0, verified) of the image are durable and proven; state is the
 * image hash after them (NULL when the caller gave no hash).  Runs on the
 * read-back thread; an error fails the write. */
typedef int (*slot_writer_checkpoint_fn)(void *ctx, uint64_t verified,
					 const struct digest_sha256_state *state,
					 struct abota_error *err);
/* offset: the image bytes handed over so far (from 0, including start). */
typedef void (*slot_writer_progress_fn)(void *ctx, uint64_t offset);

struct slot_writer_opts {
	const char *label; /* the slot's name: messages and powercut.h points */
	uint64_t start;    /* image offset where writing begins (a resumed image) */
	/* The image's hash, which the caller updates before each write: its
	 * state at each segment end goes to checkpoint.  NULL: none. */
	struct digest_sha256_ctx *hash;
	slot_writer_checkpoint_fn checkpoint; /* NULL: none */
	void *checkpoint_ctx;
	slot_writer_progress_fn progress; /* NULL: none */
	void *progress_ctx;
	/* Optional: true if the slot already holds the image's bytes [off, off + len)
	 * at their place (an adaptive image's blocks found in place in the target's old
	 * content).  Those are not written again -- flash wear and time, as RAUC skips
	 * them -- but hashed, counted and read back from the medium like written ones,
	 * so a wrong answer fails the read-back check.  A write of whole 4 KiB blocks is
	 * asked block by block, so the blocks in place inside it are skipped too. */
	bool (*in_place)(void *ctx, uint64_t off, size_t len);
	void *in_place_ctx;
};

/* Starts writing into dev (open O_RDWR; it must outlive the writer) at
 * image offset o->start.  On failure *out is untouched. */
int slot_writer_start(struct slot_device *dev, const struct slot_writer_opts *o,
		      struct slot_writer **out, struct abota_error *err);

/* Writes the next len bytes of the image (w is a struct slot_writer *: the
 * signature of a bundle stream sink).  -ENOSPC past the slot's end; the
 * read-back thread's error as soon as it has one (a bad medium stops the
 * write early). */
int slot_writer_write(void *w, const void *buf, size_t len, struct abota_error *err);

/* Image bytes handed over so far, start included. */
uint64_t slot_writer_offset(const struct slot_writer *w);

/* Image bytes not written because the slot held them in place (opts.in_place). */
uint64_t slot_writer_in_place(const struct slot_writer *w);

/* complete: everything was handed over -- flush, fdatasync, check the last
 * segment and return the verdict; otherwise stop the read-back thread and
 * return 0 (the caller has its error already).  Frees w. */
int slot_writer_finish(struct slot_writer *w, bool complete, struct abota_error *err);

#endif
