/* slot_mount.c - mount a slot for a slot hook (slot_mount.h). */
#include "abota/slot_mount.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdbool.h>
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

int slot_mount_options(const char *opts, unsigned long *flags, char **data,
		       struct abota_error *err)
{
	static const struct {
		const char *name;
		unsigned long set, clear;
	} known[] = {
		{ "ro", MS_RDONLY, 0 },		 { "rw", 0, MS_RDONLY },
		{ "noatime", MS_NOATIME, 0 },	 { "nodiratime", MS_NODIRATIME, 0 },
		{ "relatime", MS_RELATIME, 0 },	 { "strictatime", MS_STRICTATIME, 0 },
		{ "lazytime", MS_LAZYTIME, 0 },	 { "noexec", MS_NOEXEC, 0 },
		{ "exec", 0, MS_NOEXEC },	 { "sync", MS_SYNCHRONOUS, 0 },
		{ "async", 0, MS_SYNCHRONOUS },	 { "dirsync", MS_DIRSYNC, 0 },
		{ "nosuid", MS_NOSUID, 0 },	 { "nodev", MS_NODEV, 0 },
	};
	unsigned long f = MS_NOSUID | MS_NODEV;
	size_t len = opts ? strlen(opts) : 0;
	char *copy = strdup(opts ? opts : "");
	char *d = calloc(1, len + 1);
	if (!copy || !d) {
		free(copy);
		free(d);
		return abota_error_set(err, -ENOMEM, "out of memory");
	}
	int ret = 0;
	char *save = NULL;
	for (char *o = strtok_r(copy, ",", &save); o && ret == 0; o = strtok_r(NULL, ",", &save)) {
		bool flag = false;
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]) && !flag; i++) {
			if (strcmp(o, known[i].name) != 0)
				continue;
			f = (f | known[i].set) & ~known[i].clear;
			flag = true;
		}
		/* abota mounts slots nosuid,nodev for hooks and keeps it so */
		if (!strcmp(o, "suid") || !strcmp(o, "dev") || !strcmp(o, "remount") ||
		    !strcmp(o, "bind") || !strcmp(o, "move") || !strcmp(o, "loop"))
			ret = abota_error_set(err, -EINVAL,
					      "extra-mount-opts: '%s' is not allowed for a slot mount", o);
		else if (!flag) /* file system options go to the file system */
			snprintf(d + strlen(d), len + 1 - strlen(d), "%s%s", d[0] ? "," : "", o);
	}
	free(copy);
	if (ret < 0) {
		free(d);
		return ret;
	}
	*flags = f;
	if (d[0]) {
		*data = d;
	} else {
		free(d);
		*data = NULL;
	}
	return 0;
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
	unsigned long flags = 0;
	char *data = NULL;
	ret = slot_mount_options(s->extra_mount_opts, &flags, &data, err);
	if (ret == 0)
		ret = loop_attach(dev->fd, dev->offset, dev->size, &m, err);
	if (ret == 0 && mount(m.loop_dev, m.mount_point, fstype, flags, data) < 0)
		ret = abota_error_set(err, -errno, "mounting %s (%s, %s%s%s) at %s: %s", s->name,
				      m.loop_dev, fstype, data ? ", " : "", data ? data : "",
				      m.mount_point, strerror(errno));
	free(data);
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
