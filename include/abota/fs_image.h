/* fs_image.h - RAUC's file-system image types: `tar` (a new ext4 file
 * system in the slot, filled from a tar archive) and `emptyfs` (a new,
 * empty one).
 *
 * The slot gets `mkfs.ext4 -F -L <slot name> -I 256` plus its
 * extra-mkfs-opts (as RAUC), through a loop device bound to the slot when it
 * is part of a disk; for tar it is mounted at <mountprefix>/<slot name>
 * (nosuid, nodev, extra-mount-opts) and GNU tar extracts the archive, read
 * from a pipe the caller fills with the verified image, keeping numeric
 * owners, ACLs and extended attributes; then syncfs and unmount.  Unlike a
 * raw image nothing can be read back and compared: what proves the content
 * is the image's SHA-256 over the bytes tar read, and tar's exit status. */
#ifndef ABOTA_FS_IMAGE_H
#define ABOTA_FS_IMAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "abota/config.h"
#include "abota/error.h"
#include "abota/slot.h"
#include "abota/slot_device.h"

/* Does abota make a file system for an image of RAUC type img_type in a slot
 * of slot_type?  (tar and emptyfs into ext4.) */
bool fs_image_supported(const char *img_type, const char *slot_type);

/* The pipe to tar.  fs_image_pipe_write() keeps taking bytes after tar
 * has stopped reading (EPIPE: it has what it needs, past the archive's
 * end-of-archive blocks), so the feeder can go on hashing the whole image. */
struct fs_image_pipe {
	int fd;
	bool closed;
};
int fs_image_pipe_write(struct fs_image_pipe *p, const void *buf, size_t len,
			struct abota_error *err);

/* Writes the archive into p (with fs_image_pipe_write) and returns 0 or an
 * error; fs_image_write closes the pipe afterwards. */
typedef int (*fs_image_feed_fn)(void *ctx, struct fs_image_pipe *p, struct abota_error *err);

/* Makes the file system in the slot (dev open O_RDWR) and, for tar, fills
 * it: filename picks tar's decompression (.tar, .tar.gz or .tgz, .tar.xz,
 * .tar.bz2, .tar.zst) and feed delivers the archive.  A failure leaves the
 * slot with a broken or partial file system: the caller records it
 * failed. */
int fs_image_write(const struct system_config *cfg, const struct slot *s,
		   const struct slot_device *dev, const char *img_type, const char *filename,
		   fs_image_feed_fn feed, void *ctx, struct abota_error *err);

#endif
