/* fileio.h - file I/O that survives power cuts and reads with hard limits. */
#ifndef ABOTA_FILEIO_H
#define ABOTA_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "abota/error.h"

/* Replaces `path` with `len` bytes of `data` durably: write a temp file in the
 * same directory, fsync it, rename it over `path`, fsync the directory.  On
 * failure the old file is untouched and no temp file is left behind. */
int fileio_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
			struct abota_error *err);
/* The same for the device's own state (slot status file, grubenv): its
 * steps are write points of powercut.h (data, sync, rename + directory
 * fsync), so a fault-injection campaign can cut power at each. */
int fileio_write_atomic_device(const char *path, const void *data, size_t len, mode_t mode,
			       struct abota_error *err);

/* fsyncs the directory that contains `path` (path itself for a directory
 * when is_dir is non-zero). */
int fileio_fsync_dir(const char *path, int is_dir, struct abota_error *err);

/* Reads a whole regular file of at most max_size bytes.  The buffer is
 * NUL-terminated (not counted in *len_out) and must be freed by the caller.
 * Out-parameters are untouched on failure. */
int fileio_read_all(const char *path, size_t max_size, char **data_out, size_t *len_out,
		    struct abota_error *err);

/* pread/pwrite loops that handle short transfers and EINTR.  fileio_pread_full
 * fails with -EIO ("unexpected end of file") if fewer than len bytes exist. */
int fileio_pread_full(int fd, void *buf, size_t len, uint64_t off, struct abota_error *err);
int fileio_pwrite_full(int fd, const void *buf, size_t len, uint64_t off,
		       struct abota_error *err);
int fileio_write_full(int fd, const void *buf, size_t len, struct abota_error *err);

/* Removes path and everything below it, not following symlinks; for
 * scratch directories abota made itself.  Best effort: what cannot be
 * removed stays (nothing to report to a caller that is cleaning up). */
void fileio_remove_tree(const char *path);

/* A buffer for bulk pread/pwrite of file data, page aligned (free()).  The
 * kernel copies page-cache pages into a page-aligned buffer three times
 * faster than into malloc's (16 bytes past a page boundary: every 4 KiB
 * page straddles two): reading a 150 MB bundle cold took 0.03 s of system
 * time instead of 0.10 s.  NULL when out of memory (or len is 0). */
void *fileio_buffer_alloc(size_t len);

/* Makes [off, off + len) read as zeros without sending zeros through the
 * page cache: a regular file gets FALLOC_FL_ZERO_RANGE (ext4, XFS: the
 * extents become unwritten, no data is written, and reading them back costs
 * no I/O), a block device BLKZEROOUT (the device's write-zeroes, or the
 * block layer writing its zero page, without copies).  Where neither is
 * supported (tmpfs, some FUSE), zeros are written.  Like a pwrite, durable
 * only after an fdatasync. */
int fileio_zero_range(int fd, uint64_t off, uint64_t len, struct abota_error *err);

#endif
