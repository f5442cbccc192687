/* powercut.h - power-cut injection for the durable write paths.
 *
 * Every write whose ordering matters for power-loss safety (the two FWU
 * metadata copies, the slot images written by install, the slot status file
 * and grubenv, the simulator's firmware writes, ...) goes through
 * powercut_pwrite() and powercut_sync().  Normally they are a full pwrite and
 * an fdatasync.  A fault plan turns the N-th *write point* (1-based, writes
 * and syncs counted together, in this process) into a power cut:
 *
 *   - a write point: only the first BYTES bytes reach the media (a torn
 *     write; default: half of the write, rounded down), nothing after;
 *   - a sync point: the sync does not happen;
 *
 * and from then on every write point fails with -ECANCELED ("simulated power
 * cut"), so the process cannot write anything more, as if it had lost power.
 * Callers propagate the error; programs exit with status 137 on -ECANCELED.
 *
 * The plan comes from the environment (read once, at the first write point):
 *   ABOTA_POWERCUT=N[:BYTES]   cut at write point N
 *   ABOTA_POWERCUT_LOG=FILE    append "N write LABEL OFFSET LEN" and
 *                              "N sync LABEL" per write point, so a campaign
 *                              can enumerate the points first and then run
 *                              N = 1..count
 * or from powercut_plan() (tests, the simulator).
 *
 * Page-cache loss is modelled: while a cut is planned, every write keeps the
 * bytes it overwrites until a sync of the same file makes it durable; at the
 * cut, the writes not synced yet are undone (newest first, files that grew
 * get their old size back), as a real power cut loses the page cache.  The
 * write points of all threads are serialised then.  Without a plan nothing
 * is recorded.
 *
 * ABOTA_POWERCUT_NOSYNC=1 (tests only) makes the model behave like a build
 * without fsync: sync points are counted but neither sync nor make anything
 * durable, so a cut undoes every write of the process.  The power-cut tests
 * must fail under it (SC-152: tests/e2e/test_powercut.py).
 *
 * ABOTA_FAULT_BADMEDIUM=LABEL:OFFSET (tests only) models a medium that
 * stores a byte wrongly and reports success: the write of LABEL (a slot
 * name for install's image writes) that covers byte OFFSET (of the file or
 * device written) reaches the media with that byte's lowest bit flipped.
 * The install's read-back check must catch it.
 */
#ifndef ABOTA_POWERCUT_H
#define ABOTA_POWERCUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abota/error.h"

/* Exit status programs use after a simulated power cut. */
#define POWERCUT_EXIT_STATUS 137

/* Sets the plan: cut at write point n (0 = never) keeping `bytes` bytes of a
 * cut write (negative = half).  Resets the counter and the "cut" state and
 * re-reads ABOTA_POWERCUT_LOG. */
void powercut_plan(unsigned long n, long bytes);
/* True when a cut is planned or the write points are logged: code that
 * runs write points on several threads then keeps them in a fixed order
 * (install's read-back thread runs in lockstep with the writer), so that
 * write point N is the same in every run of a campaign. */
bool powercut_armed(void);
/* Number of write points passed so far. */
unsigned long powercut_count(void);
/* Non-zero once the cut happened. */
int powercut_happened(void);

/* pwrite of len bytes at off on fd (label names the target in messages and
 * the log).  -ECANCELED after/at the cut. */
int powercut_pwrite(int fd, const void *buf, size_t len, uint64_t off, const char *label,
		    struct abota_error *err);
/* fdatasync(fd). */
int powercut_sync(int fd, const char *label, struct abota_error *err);
/* A write point that makes [off, off + len) zeros (fileio_zero_range); its
 * log line says "zero" instead of "write". */
int powercut_zero(int fd, uint64_t off, size_t len, const char *label, struct abota_error *err);
/* A write point without data of its own (kind: "rename", ...): the caller
 * performs the operation only when this returns 0; at the cut it does not
 * happen. */
int powercut_point(const char *kind, const char *label, struct abota_error *err);

#endif
