/* bundle_access.h - exclusive access to a local plain bundle (CVE-2020-25860).
 *
 * A plain bundle is verified by hashing all of it once; abota also keeps a
 * keyed tag of every 64 KiB chunk and re-checks each read (chunk_mac.h),
 * so a change after verification makes the install fail.  The checks here
 * make sure such a change cannot happen in the first place, as RAUC >= 1.5
 * does before it trusts a plain bundle:
 *
 *   - a regular file, owned by root or the caller, mode a subset of 0755;
 *     a bundle owned by someone else or writable by group/others is taken
 *     over first (chown to root when running as root, write bits for group
 *     and others dropped), then checked again;
 *   - not on FUSE or NFS, whose data come from an untrusted source, nor on
 *     an unknown file system type;
 *   - on a local file system, its block device is owned by root (a user who
 *     can write the device can change the file under the kernel's feet);
 *   - no other open file descriptor for writing (a read lease, F_SETLEASE,
 *     is refused with EAGAIN while any writer has the file open).
 *
 * Verity bundles need none of this: every block is checked against the
 * signed hash tree when it is read.
 */
#ifndef ABOTA_BUNDLE_ACCESS_H
#define ABOTA_BUNDLE_ACCESS_H

#include <stdbool.h>

#include "abota/error.h"

enum bundle_fs_trust {
	BUNDLE_FS_UNSAFE,        /* FUSE, NFS: data supplied by an untrusted party */
	BUNDLE_FS_LOCAL,         /* permissions enforced by the kernel: check the device */
	BUNDLE_FS_ROOT_PREPARED, /* tmpfs, overlayfs, ...: set up by root, no device */
	BUNDLE_FS_UNKNOWN,       /* refused: nothing known about who controls its data */
};

/* What the statfs f_type of the bundle's file system means for it. */
enum bundle_fs_trust bundle_access_fs_trust(unsigned long f_type);

/* Checks the rules above on fd (the bundle, opened read-only) without
 * changing anything.  Messages do not name the file: the caller prefixes. */
int bundle_access_check(int fd, struct abota_error *err);

/* Takes ownership where needed (see above), then bundle_access_check(). */
int bundle_access_enforce(int fd, struct abota_error *err);

#endif
