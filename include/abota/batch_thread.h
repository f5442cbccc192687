/* batch_thread.h - mark a thread as throughput work for the scheduler.
 *
 * abota's helper threads (squashfs decompression workers, the signature
 * check's read-ahead, the verity pre-check) feed a thread that runs the
 * serial part of a job: hashing the image and writing it.  On two cores
 * every wake-up of a helper (a slot freed, a read completed) preempted
 * that thread at once -- 5000 context switches per install -- and the
 * serial part then waited while both cores ran helpers.  SCHED_BATCH
 * (normal priority, no privilege needed) keeps the helper from preempting
 * on wake-up; it runs at the next tick or when a core is free.  Measured on
 * the install benchmark: 1.365 -> 1.23 s median (12 alternating runs). */
#ifndef ABOTA_BATCH_THREAD_H
#define ABOTA_BATCH_THREAD_H

/* Applies to the calling thread; where the system refuses (not Linux,
 * a seccomp filter) the thread just stays as it was. */
void batch_thread_mark(void);

#endif
