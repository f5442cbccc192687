/* slot_mount.c - mount a slot for a slot hook (slot_mount.h). */
#include "abota/slot_mount.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abota/log.h"

bool slot_mount_type_supported(const char *type)
{
	static const char *const types[] = { "ext4", "ext3", "ext2", "vfat", "ubifs" };
	for (size_t i = 0; type && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(type, types[i]) == 0)
			return true;
	return false;
}

/* A loop device bound to [offset, offset + size) of fd, autoclear. */
static int loop_attach(int fd, uint64_t offset, uint64_t size, struct slot_mount *m,
		       struct abota_error *err)
{
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return abota_error_set(err, -errno, "/dev/loop-control: %s", strerror(errno));
	int ret = -EBUSY;
	/* Another process may take the free device first: try a few. */
	for (int attempt = 0; attempt < 8 && ret == -EBUSY; attempt++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0) {
			ret = abota_error_set(err, -errno, "no free loop device: %s", strerror(errno));
			break;
		}
		snprintf(m->loop_dev, sizeof(m->loop_dev), "/dev/loop%d", n);
		int lfd = open(m->loop_dev, O_RDWR | O_CLOEXEC);
		if (lfd < 0) {
			ret = abota_error_set(err, -errno, "%s: %s", m->loop_dev, strerror(errno));
			break;
		}
		struct loop_config lc;
		memset(&lc, 0, sizeof(lc));
		lc.fd = (unsigned)fd;
		lc.info.lo_offset = offset;
		lc.info.lo_sizelimit = size;
		lc.info.lo_flags = LO_FLAGS_AUTOCLEAR;
		if (ioctl(lfd, LOOP_CONFIGURE, &lc) == 0) {
			m->loop_fd = lfd;
			ret = 0;
		} else {
			ret = errno == EBUSY ? -EBUSY
					     : abota_error_set(err, -errno, "%s: LOOP_CONFIGURE: %s",
							       m->loop_dev, strerror(errno));
			close(lfd);
		}
	}
	if (ret == -EBUSY)
		abota_error_set(err, ret, "no free loop device");
	close(ctl);
	return ret;
}

int slot_mount(const struct system_config *cfg, const struct slot *s, const struct slot_device *dev,
	       const char *fstype, struct slot_mount *out, struct abota_error *err)
{
	struct slot_mount m = { .loop_fd = -1 };
	const char *prefix = cfg->mount_prefix ? cfg->mount_prefix : "/mnt/rauc";
	int ret = 0;
	if (mkdir(prefix, 0755) < 0 && errno != EEXIST)
		return abota_error_set(err, -errno, "mount prefix %s: %s", prefix, strerror(errno));
	if (asprintf(&m.mount_point, "%s/%s", prefix, s->name) < 0) {
		m.mount_point = NULL;
		return abota_error_set(err, -ENOMEM, "out of memory");
	}
	if (mkdir(m.mount_point, 0700) < 0) {
		ret = abota_error_set(err, -errno, "mount point %s: %s", m.mount_point,
				      errno == EEXIST ? "exists (still in use?)" : strerror(errno));
		free(m.mount_point);
		return ret;
	}
	ret = loop_attach(dev->fd, dev->offset, dev->size, &m, err);
	if (ret == 0 && mount(m.loop_dev, m.mount_point, fstype, MS_NOSUID | MS_NODEV, NULL) < 0)
		ret = abota_error_set(err, -errno, "mounting %s (%s, %s) at %s: %s", s->name,
				      m.loop_dev, fstype, m.mount_point, strerror(errno));
	if (ret < 0) {
		if (m.loop_fd >= 0)
			close(m.loop_fd); /* autoclear releases it */
		rmdir(m.mount_point);
		free(m.mount_point);
		return ret;
	}
	log_info("slot %s mounted at %s (%s)", s->name, m.mount_point, m.loop_dev);
	*out = m;
	return 0;
}

int slot_mount_loop(const struct slot_device *dev, struct slot_mount *out,
		    struct abota_error *err)
{
	struct slot_mount m = { .loop_fd = -1 };
	int ret = loop_attach(dev->fd, dev->offset, dev->size, &m, err);
	if (ret == 0)
		*out = m;
	return ret;
}

int slot_mount_device(const struct slot_device *dev, struct slot_mount *loop, const char **path,
		      struct abota_error *err)
{
	struct stat st;
	if (dev->offset == 0 && fstat(dev->fd, &st) == 0 &&
	    (S_ISBLK(st.st_mode) || (uint64_t)st.st_size == dev->size)) {
		*path = dev->path;
		return 0;
	}
	int ret = slot_mount_loop(dev, loop, err);
	if (ret == 0)
		*path = loop->loop_dev;
	return ret;
}

int slot_umount(struct slot_mount *m, struct abota_error *err)
{
	int ret = 0;
	if (m->mount_point && umount2(m->mount_point, 0) < 0)
		ret = abota_error_set(err, -errno, "unmounting %s: %s", m->mount_point,
				      strerror(errno));
	if (m->loop_fd >= 0)
		close(m->loop_fd); /* autoclear: the loop device goes with it */
	if (m->mount_point && ret == 0)
		rmdir(m->mount_point);
	free(m->mount_point);
	m->mount_point = NULL;
	m->loop_fd = -1;
	return ret;
}
