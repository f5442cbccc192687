/* mount_check.c - is a slot's storage mounted? */
#include "abota/mount_check.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define SECTOR 512u

/* A block device whose storage overlaps the range: its major:minor. */
struct candidates {
	unsigned (*dev)[2];
	size_t n, cap;
};

static int add(struct candidates *c, unsigned maj, unsigned min)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;
		unsigned(*n)[2] = realloc(c->dev, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		c->dev = n;
		c->cap = cap;
	}
	c->dev[c->n][0] = maj;
	c->dev[c->n][1] = min;
	c->n++;
	return 0;
}

/* The first line of a sysfs attribute, without the newline; "" if absent. */
static void read_attr(const char *dir, const char *name, char *buf, size_t n)
{
	char p[PATH_MAX];
	buf[0] = '\0';
	if (snprintf(p, sizeof(p), "%s/%s", dir, name) >= (int)sizeof(p))
		return;
	FILE *f = fopen(p, "re");
	if (!f)
		return;
	if (!fgets(buf, (int)n, f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}

static bool attr_u64(const char *dir, const char *name, uint64_t *out)
{
	char b[64];
	read_attr(dir, name, b, sizeof(b));
	char *end;
	errno = 0;
	unsigned long long v = strtoull(b, &end, 10);
	if (!b[0] || errno || *end)
		return false;
	*out = v;
	return true;
}

/* "MAJ:MIN" as sysfs and mountinfo write it. */
static bool parse_devno(const char *s, unsigned *maj, unsigned *min, const char **end)
{
	char *e;
	errno = 0;
	unsigned long a = strtoul(s, &e, 10);
	if (errno || e == s || *e != ':' || a > UINT32_MAX)
		return false;
	const char *m = e + 1;
	unsigned long b = strtoul(m, &e, 10);
	if (errno || e == m || b > UINT32_MAX)
		return false;
	*maj = (unsigned)a;
	*min = (unsigned)b;
	if (end)
		*end = e;
	return true;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int add_dev_attr(struct candidates *c, const char *dir)
{
	char b[32];
	unsigned maj, min;
	read_attr(dir, "dev", b, sizeof(b));
	const char *end;
	if (!parse_devno(b, &maj, &min, &end) || *end)
		return 0;
	return add(c, maj, min);
}

/* Every partition of block device `name` overlapping [off, off + len) of
 * it (base: where the device starts in the backing storage, for loops). */
static int add_partitions(struct candidates *c, const char *sysfs, const char *name, uint64_t off,
			  uint64_t len)
{
	char dir[PATH_MAX];
	if (snprintf(dir, sizeof(dir), "%s/%s", sysfs, name) >= (int)sizeof(dir))
		return 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int ret = 0;
	struct dirent *e;
	while (ret == 0 && (e = readdir(d))) {
		if (strncmp(e->d_name, name, strlen(name)) != 0)
			continue;
		char pdir[PATH_MAX];
		uint64_t start, size;
		if (snprintf(pdir, sizeof(pdir), "%s/%s", dir, e->d_name) >= (int)sizeof(pdir))
			continue;
		if (!attr_u64(pdir, "partition", &start) || !attr_u64(pdir, "start", &start) ||
		    !attr_u64(pdir, "size", &size))
			continue;
		if (overlaps(start * SECTOR, size * SECTOR, off, len))
			ret = add_dev_attr(c, pdir);
	}
	closedir(d);
	return ret;
}

/* The block device node's sysfs name ("mmcblk0", "loop3p2"). */
static bool sysfs_name_of(const char *sysfs, dev_t rdev, char *buf, size_t n)
{
	DIR *d = opendir(sysfs);
	if (!d)
		return false;
	bool found = false;
	struct dirent *e;
	while (!found && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char dir[PATH_MAX], b[32];
		unsigned maj, min;
		if (snprintf(dir, sizeof(dir), "%s/%s", sysfs, e->d_name) >= (int)sizeof(dir))
			continue;
		read_attr(dir, "dev", b, sizeof(b));
		if (parse_devno(b, &maj, &min, NULL) && maj == major(rdev) && min == minor(rdev)) {
			snprintf(buf, n, "%s", e->d_name);
			found = true;
		}
	}
	closedir(d);
	return found;
}

/* Loop devices over `real` (the file or disk holding the slot) whose window
 * overlaps the slot, and their partitions. */
static int add_loops(struct candidates *c, const char *sysfs, const char *real, uint64_t off,
		     uint64_t len)
{
	DIR *d = opendir(sysfs);
	if (!d)
		return 0;
	int ret = 0;
	struct dirent *e;
	while (ret == 0 && (e = readdir(d))) {
		if (strncmp(e->d_name, "loop", 4) != 0)
			continue;
		char dir[PATH_MAX], backing[PATH_MAX];
		if (snprintf(dir, sizeof(dir), "%s/%s/loop", sysfs, e->d_name) >= (int)sizeof(dir))
			continue;
		read_attr(dir, "backing_file", backing, sizeof(backing));
		if (strcmp(backing, real) != 0)
			continue;
		uint64_t loff = 0, limit = 0;
		attr_u64(dir, "offset", &loff);
		attr_u64(dir, "sizelimit", &limit);
		uint64_t llen = limit ? limit : UINT64_MAX - loff;
		if (!overlaps(loff, llen, off, len))
			continue;
		char ldir[PATH_MAX];
		snprintf(ldir, sizeof(ldir), "%s/%s", sysfs, e->d_name);
		ret = add_dev_attr(c, ldir);
		/* the slot's range as seen inside the loop device */
		uint64_t in = off > loff ? off - loff : 0;
		uint64_t in_len = off + len - (off > loff ? off : loff);
		if (ret == 0)
			ret = add_partitions(c, sysfs, e->d_name, in, in_len);
	}
	closedir(d);
	return ret;
}

/* The first mount of any candidate in mountinfo: 1 and *where, or 0. */
static int find_mount(const struct candidates *c, const char *mountinfo, char **where,
		      struct abota_error *err)
{
	FILE *f = fopen(mountinfo, "re");
	if (!f)
		return abota_error_set(err, -errno, "%s: %s", mountinfo, strerror(errno));
	char *line = NULL;
	size_t cap = 0;
	int ret = 0;
	while (ret == 0 && getline(&line, &cap, f) > 0) {
		/* id parent major:minor root mount-point ... */
		char *save = NULL, *f[5] = { 0 };
		f[0] = strtok_r(line, " ", &save);
		for (size_t i = 1; i < 5 && f[i - 1]; i++)
			f[i] = strtok_r(NULL, " ", &save);
		unsigned maj, min;
		const char *end;
		if (!f[4] || !parse_devno(f[2], &maj, &min, &end) || *end)
			continue;
		const char *mnt = f[4];
		for (size_t i = 0; i < c->n; i++) {
			if (c->dev[i][0] != maj || c->dev[i][1] != min)
				continue;
			ret = 1;
			if (where && asprintf(where, "%s (block device %u:%u)", mnt, maj, min) < 0)
				*where = NULL;
			break;
		}
	}
	free(line);
	fclose(f);
	return ret;
}

int mount_check_range(const char *path, uint64_t offset, uint64_t size,
		      const struct mount_check_probe *probe, char **where,
		      struct abota_error *err)
{
	const char *sysfs = probe && probe->sysfs_block ? probe->sysfs_block : "/sys/class/block";
	const char *mountinfo = probe && probe->mountinfo ? probe->mountinfo
							   : "/proc/self/mountinfo";
	struct candidates c = { 0 };
	struct stat st;
	char real[PATH_MAX];
	int ret = 0;
	if (stat(path, &st) < 0 || !realpath(path, real))
		return abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
	if (S_ISBLK(st.st_mode)) {
		/* the device itself (a file system on all of it covers the
		 * range), and its partitions that overlap the range */
		char name[256];
		ret = add(&c, major(st.st_rdev), minor(st.st_rdev));
		if (ret == 0 && sysfs_name_of(sysfs, st.st_rdev, name, sizeof(name)))
			ret = add_partitions(&c, sysfs, name, offset, size);
	}
	if (ret == 0)
		ret = add_loops(&c, sysfs, real, offset, size);
	if (ret == 0)
		ret = find_mount(&c, mountinfo, where, err);
	else
		ret = abota_error_set(err, ret, "out of memory");
	free(c.dev);
	return ret;
}
