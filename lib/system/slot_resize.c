/* slot_resize.c - grow a slot's ext4 file system to the slot (resize=true). */
#include "abota/slot_resize.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "abota/log.h"
#include "abota/slot_mount.h"

bool slot_resize_wanted(const struct slot *s, const char *img_type)
{
	return s->resize && s->type && strcmp(s->type, "ext4") == 0 && img_type &&
	       strcmp(img_type, "ext4") == 0;
}

/* Where e2fsprogs installs it; not $PATH, which the caller's environment
 * (a handler's, a D-Bus client's) should not choose for a root program. */
static const char *find_resize2fs(char *buf, size_t n)
{
	static const char *const dirs[] = { "/usr/sbin", "/sbin", "/usr/bin", "/bin" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (snprintf(buf, n, "%s/resize2fs", dirs[i]) < (int)n && access(buf, X_OK) == 0)
			return buf;
	return NULL;
}

static int run_resize2fs(const char *prog, const char *device, struct abota_error *err)
{
	pid_t pid = fork();
	if (pid < 0)
		return abota_error_set(err, -errno, "resize2fs: fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open("/dev/null", O_RDONLY);
		if (fd >= 0)
			dup2(fd, 0);
		dup2(2, 1); /* abota's stdout is for its own results */
		execl(prog, prog, device, (char *)NULL);
		fprintf(stderr, "abota: cannot execute %s: %s\n", prog, strerror(errno));
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return abota_error_set(err, -errno, "resize2fs: waitpid: %s", strerror(errno));
	if (WIFSIGNALED(status))
		return abota_error_set(err, -EINTR, "resize2fs %s killed by signal %d", device,
				       WTERMSIG(status));
	if (WEXITSTATUS(status) != 0)
		return abota_error_set(err, -EIO, "resize2fs %s failed with exit code %d", device,
				       WEXITSTATUS(status));
	return 0;
}

int slot_resize(const struct slot_device *dev, struct abota_error *err)
{
	char prog[64];
	if (!find_resize2fs(prog, sizeof(prog)))
		return abota_error_set(err, -ENOENT,
				       "resize=true: resize2fs (e2fsprogs) not found in /usr/sbin, /sbin, /usr/bin or /bin");
	struct slot_mount loop = { .loop_fd = -1 };
	const char *device = NULL;
	int ret = slot_mount_device(dev, &loop, &device, err);
	if (ret == 0) {
		log_info("resizing the file system on %s to the slot's %llu bytes", device,
			 (unsigned long long)dev->size);
		ret = run_resize2fs(prog, device, err);
	}
	struct abota_error e2 = { 0 };
	if (slot_umount(&loop, &e2) < 0 && ret == 0) {
		ret = -EIO;
		if (err)
			*err = e2;
	}
	return ret;
}
