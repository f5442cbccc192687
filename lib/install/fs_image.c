/* fs_image.c - RAUC's tar and emptyfs image types. */
#include "abota/fs_image.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "abota/fileio.h"
#include "abota/log.h"
#include "abota/prog.h"
#include "abota/slot_mount.h"

#define MAX_MKFS_ARGS 32

bool fs_image_supported(const char *img_type, const char *slot_type)
{
	return img_type && slot_type && strcmp(slot_type, "ext4") == 0 &&
	       (strcmp(img_type, "tar") == 0 || strcmp(img_type, "emptyfs") == 0);
}

/* tar's option for the archive's compression, from its name. */
static int tar_compression(const char *filename, const char **opt, struct abota_error *err)
{
	static const struct {
		const char *glob, *opt;
	} map[] = {
		{ "*.tar", NULL },	  { "*.tar.gz", "-z" },	 { "*.tgz", "-z" },
		{ "*.tar.xz", "-J" },	  { "*.txz", "-J" },	 { "*.tar.bz2", "-j" },
		{ "*.tbz2", "-j" },	  { "*.tar.zst", "--zstd" },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (fnmatch(map[i].glob, filename, 0) == 0) {
			*opt = map[i].opt;
			return 0;
		}
	}
	return abota_error_set(err, -EINVAL,
			       "image '%s': cannot tell the tar archive's compression from its name (*.tar, *.tar.gz, *.tgz, *.tar.xz, *.tar.bz2, *.tar.zst)",
			       filename);
}

static int make_fs(const struct slot *s, const char *device, struct abota_error *err)
{
	char prog[64], *argv[MAX_MKFS_ARGS + 9];
	if (!prog_find("mkfs.ext4", prog, sizeof(prog)))
		return abota_error_set(err, -ENOENT,
				       "mkfs.ext4 (e2fsprogs) not found in /usr/sbin, /sbin, /usr/bin or /bin");
	size_t n = 0;
	argv[n++] = prog;
	argv[n++] = "-F";
	argv[n++] = "-q";
	argv[n++] = "-L";
	argv[n++] = (char *)s->name;
	argv[n++] = "-I";
	argv[n++] = "256";
	/* extra-mkfs-opts: words separated by blanks, as RAUC splits them */
	char *opts = strdup(s->extra_mkfs_opts ? s->extra_mkfs_opts : "");
	if (!opts)
		return abota_error_set(err, -ENOMEM, "out of memory");
	char *save = NULL;
	for (char *w = strtok_r(opts, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		if (n - 7 == MAX_MKFS_ARGS) {
			free(opts);
			return abota_error_set(err, -E2BIG, "slot %s: more than %d extra-mkfs-opts",
					       s->name, MAX_MKFS_ARGS);
		}
		argv[n++] = w;
	}
	argv[n++] = (char *)device;
	argv[n] = NULL;
	log_info("slot %s: making an ext4 file system on %s", s->name, device);
	int ret = prog_run(argv, -1, err);
	free(opts);
	return ret;
}

int fs_image_pipe_write(struct fs_image_pipe *p, const void *buf, size_t len,
			struct abota_error *err)
{
	if (p->closed)
		return 0;
	int ret = fileio_write_full(p->fd, buf, len, err);
	if (ret == -EPIPE) {
		p->closed = true;
		ret = 0;
	}
	return ret;
}

/* Extracts the archive feed() writes into the mounted slot. */
static int extract(const char *mnt, const char *compression, fs_image_feed_fn feed, void *ctx,
		   struct abota_error *err)
{
	char prog[64];
	if (!prog_find("tar", prog, sizeof(prog)))
		return abota_error_set(err, -ENOENT, "tar not found in /usr/sbin, /sbin, /usr/bin or /bin");
	char *argv[] = { prog, "--extract", "--file=-", "--directory", (char *)mnt,
			 "--numeric-owner", "--preserve-permissions", "--acls", "--xattrs",
			 "--xattrs-include=*", (char *)compression, NULL };
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return abota_error_set(err, -errno, "pipe: %s", strerror(errno));
	int pid = prog_start(argv, p[0], err);
	close(p[0]);
	if (pid < 0) {
		close(p[1]);
		return pid;
	}
	/* tar failing mid-archive must not kill us with SIGPIPE */
	sigset_t pipe_set, old;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	struct abota_error ferr = { 0 };
	struct fs_image_pipe pipe = { .fd = p[1] };
	int fret = feed(ctx, &pipe, &ferr);
	close(p[1]);
	struct timespec zero = { 0, 0 };
	while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
		;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	int ret = prog_wait(pid, "tar", err);
	/* tar's verdict first: a feed error may just be tar having stopped */
	if (ret == 0 && fret < 0) {
		ret = fret;
		if (err)
			*err = ferr;
	}
	return ret;
}

int fs_image_write(const struct system_config *cfg, const struct slot *s,
		   const struct slot_device *dev, const char *img_type, const char *filename,
		   fs_image_feed_fn feed, void *ctx, struct abota_error *err)
{
	const char *compression = NULL;
	bool is_tar = strcmp(img_type, "tar") == 0;
	if (is_tar) {
		int r = tar_compression(filename ? filename : "", &compression, err);
		if (r < 0)
			return r;
	}
	struct slot_mount loop = { .loop_fd = -1 };
	const char *device = NULL;
	int ret = slot_mount_device(dev, &loop, &device, err);
	if (ret == 0)
		ret = make_fs(s, device, err);
	struct abota_error e2 = { 0 };
	slot_umount(&loop, &e2);
	if (ret < 0 || !is_tar)
		return ret;
	struct slot_mount m = { .loop_fd = -1 };
	ret = slot_mount(cfg, s, dev, "ext4", &m, err);
	if (ret < 0)
		return ret;
	ret = extract(m.mount_point, compression, feed, ctx, err);
	/* the files are durable before the slot counts as written */
	if (ret == 0) {
		int fd = open(m.mount_point, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || syncfs(fd) < 0)
			ret = abota_error_set(err, -errno, "slot %s: syncfs: %s", s->name,
					      strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	e2 = (struct abota_error){ 0 };
	int uret = slot_umount(&m, &e2);
	if (ret == 0 && uret < 0) {
		ret = uret;
		if (err)
			*err = e2;
	}
	return ret;
}
