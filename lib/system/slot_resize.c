/* slot_resize.c - grow a slot's ext4 file system to the slot (resize=true). */
#include "abota/slot_resize.h"

#include <errno.h>
#include <string.h>

#include "abota/log.h"
#include "abota/prog.h"
#include "abota/slot_mount.h"

bool slot_resize_wanted(const struct slot *s, const char *img_type)
{
	return s->resize && s->type && strcmp(s->type, "ext4") == 0 && img_type &&
	       strcmp(img_type, "ext4") == 0;
}

int slot_resize(const struct slot_device *dev, struct abota_error *err)
{
	char prog[64];
	if (!prog_find("resize2fs", prog, sizeof(prog)))
		return abota_error_set(err, -ENOENT,
				       "resize=true: resize2fs (e2fsprogs) not found in /usr/sbin, /sbin, /usr/bin or /bin");
	struct slot_mount loop = { .loop_fd = -1 };
	const char *device = NULL;
	int ret = slot_mount_device(dev, &loop, &device, err);
	if (ret == 0) {
		log_info("resizing the file system on %s to the slot's %llu bytes", device,
			 (unsigned long long)dev->size);
		char *argv[] = { prog, (char *)device, NULL };
		ret = prog_run(argv, -1, err);
	}
	struct abota_error e2 = { 0 };
	if (slot_umount(&loop, &e2) < 0 && ret == 0) {
		ret = -EIO;
		if (err)
			*err = e2;
	}
	return ret;
}
