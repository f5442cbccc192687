/* bundle_access.c - exclusive access to a local plain bundle (see bundle_access.h). */
#include "abota/bundle_access.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "abota/log.h"

/* statfs f_type values (linux/magic.h has most but not FUSE's; spelled out
 * here so the list is complete in one place). */
#define FS_FUSE 0x65735546ul
#define FS_NFS 0x6969ul
#define FS_BTRFS 0x9123683Eul
#define FS_CRAMFS 0x28cd3d45ul
#define FS_EXFAT 0x2011BAB0ul
#define FS_EXT4 0xEF53ul /* also ext2 and ext3 */
#define FS_F2FS 0xF2F52010ul
#define FS_ISOFS 0x9660ul
#define FS_JFFS2 0x72b6ul
#define FS_MSDOS 0x4d44ul
#define FS_NTFS 0x5346544eul
#define FS_NTFS3 0x7366746eul
#define FS_ROMFS 0x7275ul
#define FS_SQUASHFS 0x73717368ul
#define FS_UDF 0x15013346ul
#define FS_XFS 0x58465342ul
#define FS_HOSTFS 0x00c0ffeeul
#define FS_OVERLAYFS 0x794c7630ul
#define FS_RAMFS 0x858458f6ul
#define FS_TMPFS 0x01021994ul
#define FS_UBIFS 0x24051905ul
#define FS_ZFS 0x2fc12fc1ul

enum bundle_fs_trust bundle_access_fs_trust(unsigned long f_type)
{
	switch (f_type & 0xFFFFFFFFul) {
	/* the data come from a user-space daemon or a server */
	case FS_FUSE:
	case FS_NFS:
		return BUNDLE_FS_UNSAFE;
	/* on a block device; the kernel enforces the file's permissions */
	case FS_BTRFS:
	case FS_CRAMFS:
	case FS_EXFAT:
	case FS_EXT4:
	case FS_F2FS:
	case FS_ISOFS:
	case FS_JFFS2:
	case FS_MSDOS:
	case FS_NTFS:
	case FS_NTFS3:
	case FS_ROMFS:
	case FS_SQUASHFS:
	case FS_UDF:
	case FS_XFS:
		return BUNDLE_FS_LOCAL;
	/* no device an unprivileged user could write; only root mounts them */
	case FS_HOSTFS:
	case FS_OVERLAYFS:
	case FS_RAMFS:
	case FS_TMPFS:
	case FS_UBIFS:
	case FS_ZFS:
		return BUNDLE_FS_ROOT_PREPARED;
	default:
		return BUNDLE_FS_UNKNOWN;
	}
}

/* Undoes the octal escapes (\040 for a space, ...) of a mountinfo field. */
static void unescape_mountinfo(char *s)
{
	char *w = s;
	for (char *r = s; *r;) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

/* The owner of the block device the file system of st lives on, found as
 * the mount source in /proc/self/mountinfo (the device node that was
 * mounted).  -ENOENT when there is no such device node. */
static int device_owner(const struct stat *st, uid_t *uid, char *dev, size_t dev_len,
			struct abota_error *err)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return abota_error_set(err, -errno, "/proc/self/mountinfo: %s", strerror(errno));
	char *line = NULL;
	size_t cap = 0;
	int ret = -ENOENT;
	while (getline(&line, &cap, f) > 0) {
		/* "id parent major:minor ..." */
		char *p = strchr(line, ' ');
		p = p ? strchr(p + 1, ' ') : NULL;
		if (!p)
			continue;
		char *end;
		errno = 0;
		unsigned long maj = strtoul(p + 1, &end, 10);
		if (errno || *end != ':')
			continue;
		unsigned long min = strtoul(end + 1, &end, 10);
		if (errno || *end != ' ' || maj > UINT32_MAX || min > UINT32_MAX ||
		    makedev((unsigned)maj, (unsigned)min) != st->st_dev)
			continue;
		/* "... - fstype source super-options" */
		char *sep = strstr(line, " - ");
		if (!sep)
			continue;
		char *save = NULL;
		char *fstype = strtok_r(sep + 3, " \n", &save);
		char *source = fstype ? strtok_r(NULL, " \n", &save) : NULL;
		if (!source)
			continue;
		unescape_mountinfo(source);
		struct stat ds;
		if (source[0] != '/' || stat(source, &ds) != 0 || !S_ISBLK(ds.st_mode) ||
		    ds.st_rdev != st->st_dev)
			continue;
		*uid = ds.st_uid;
		snprintf(dev, dev_len, "%s", source);
		ret = 0;
		break;
	}
	free(line);
	fclose(f);
	return ret;
}

int bundle_access_check(int fd, struct abota_error *err)
{
	struct stat st, root;
	struct statfs sfs;
	if (fstat(fd, &st) != 0 || fstatfs(fd, &sfs) != 0)
		return abota_error_set(err, -errno, "%s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return abota_error_set(err, -EPERM, "unsafe bundle: not a regular file");
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return abota_error_set(err, -EPERM,
				       "unsafe bundle: owned by uid %u (not root or the caller)",
				       (unsigned)st.st_uid);
	mode_t perm = st.st_mode & 07777;
	if (perm & ~(mode_t)0755)
		return abota_error_set(err, -EPERM,
				       "unsafe bundle: permissions 0%o allow others to write it",
				       (unsigned)perm);

	/* The root file system is the system's own: trusted. */
	bool trusted = stat("/", &root) == 0 && root.st_dev == st.st_dev;
	if (!trusted) {
		unsigned long type = (unsigned long)sfs.f_type & 0xFFFFFFFFul;
		switch (bundle_access_fs_trust(type)) {
		case BUNDLE_FS_UNSAFE:
			return abota_error_set(err, -EPERM,
					       "unsafe bundle: stored on %s, whose data nobody vouches for (copy it to local storage, or use a verity bundle)",
					       type == FS_FUSE ? "FUSE" : "NFS");
		case BUNDLE_FS_UNKNOWN:
			return abota_error_set(err, -EPERM,
					       "unsafe bundle: stored on an unknown file system (type 0x%lx)",
					       type);
		case BUNDLE_FS_ROOT_PREPARED:
			trusted = true;
			break;
		case BUNDLE_FS_LOCAL:
			break;
		}
	}
	if (!trusted) {
		uid_t owner = 0;
		char dev[512];
		int ret = device_owner(&st, &owner, dev, sizeof(dev), err);
		if (ret == -ENOENT)
			return abota_error_set(err, -EPERM,
					       "unsafe bundle: cannot find the block device of its file system (device %u:%u)",
					       major(st.st_dev), minor(st.st_dev));
		if (ret < 0)
			return ret;
		/* mode 0660 with a disk group is common and the integrator's
		 * choice; an owner other than root is not */
		if (owner != 0)
			return abota_error_set(err, -EPERM,
					       "unsafe bundle: its file system's device %s is owned by uid %u, not root",
					       dev, (unsigned)owner);
	}

	/* A read lease is refused while anyone has the file open for writing. */
	if (fcntl(fd, F_SETLEASE, F_RDLCK) != 0) {
		int e = errno;
		if (e == EAGAIN)
			return abota_error_set(err, -EBUSY,
					       "unsafe bundle: another process has it open for writing");
		return abota_error_set(err, -EPERM,
				       "cannot ensure exclusive access to the bundle (F_SETLEASE: %s)",
				       strerror(e));
	}
	if (fcntl(fd, F_GETLEASE) != F_RDLCK) {
		int e = errno;
		(void)fcntl(fd, F_SETLEASE, F_UNLCK);
		return abota_error_set(err, -EPERM,
				       "cannot ensure exclusive access to the bundle (F_GETLEASE: %s)",
				       strerror(e));
	}
	if (fcntl(fd, F_SETLEASE, F_UNLCK) != 0)
		return abota_error_set(err, -errno, "cannot release the lease: %s",
				       strerror(errno));
	return 0;
}

int bundle_access_enforce(int fd, struct abota_error *err)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return abota_error_set(err, -errno, "%s", strerror(errno));
	/* Take the bundle over first, so that nobody can open it for writing
	 * any more; the lease check in bundle_access_check() then shows that
	 * nobody had it open before. */
	uid_t euid = geteuid();
	if (S_ISREG(st.st_mode) && st.st_uid != 0 && st.st_uid != euid) {
		if (euid != 0)
			return abota_error_set(err, -EPERM,
					       "unsafe bundle: owned by uid %u; only root can take it over",
					       (unsigned)st.st_uid);
		if (fchown(fd, 0, (gid_t)-1) != 0)
			return abota_error_set(err, -errno,
					       "cannot take ownership of the bundle: %s",
					       strerror(errno));
		log_info("bundle was owned by uid %u, now by root", (unsigned)st.st_uid);
	}
	mode_t perm = st.st_mode & 07777;
	if (S_ISREG(st.st_mode) && (perm & ~(mode_t)0755)) {
		mode_t np = perm & 0644;
		if (fchmod(fd, np) != 0)
			return abota_error_set(err, -errno,
					       "cannot drop write permissions of the bundle: %s",
					       strerror(errno));
		log_info("bundle permissions changed from 0%o to 0%o", (unsigned)perm,
			 (unsigned)np);
	}
	return bundle_access_check(fd, err);
}
