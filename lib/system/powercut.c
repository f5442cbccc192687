/* powercut.c - write points with optional power-cut injection (powercut.h). */
#include "abota/powercut.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abota/fileio.h"

/* count and cut are atomic: install's read-back thread syncs while the
 * writer writes.  The plan itself is set before any thread starts. */
static struct {
	int loaded;
	unsigned long cut_at; /* 0 = never */
	long bytes;           /* < 0 = half */
	atomic_ulong count;
	atomic_int cut;
	const char *log;
} pc;

static void load_env(void)
{
	if (pc.loaded)
		return;
	pc.loaded = 1;
	pc.bytes = -1;
	const char *s = getenv("ABOTA_POWERCUT");
	if (s && *s) {
		char *end;
		errno = 0;
		unsigned long n = strtoul(s, &end, 10);
		if (errno == 0 && end != s) {
			pc.cut_at = n;
			if (*end == ':') {
				const char *b = end + 1;
				long v = strtol(b, &end, 10);
				if (end != b && v >= 0)
					pc.bytes = v;
			}
		}
	}
	pc.log = getenv("ABOTA_POWERCUT_LOG");
}

void powercut_plan(unsigned long n, long bytes)
{
	load_env();
	pc.cut_at = n;
	pc.bytes = bytes;
	atomic_store(&pc.count, 0);
	atomic_store(&pc.cut, 0);
	pc.log = getenv("ABOTA_POWERCUT_LOG");
}

unsigned long powercut_count(void)
{
	return atomic_load(&pc.count);
}

int powercut_happened(void)
{
	return atomic_load(&pc.cut);
}

static void log_point(unsigned long n, const char *kind, const char *label, uint64_t off,
		      size_t len)
{
	if (!pc.log || !*pc.log)
		return;
	FILE *f = fopen(pc.log, "ae");
	if (!f)
		return;
	if (len || off)
		fprintf(f, "%lu %s %s %llu %zu\n", n, kind, label, (unsigned long long)off, len);
	else
		fprintf(f, "%lu %s %s\n", n, kind, label);
	fclose(f);
}

int powercut_pwrite(int fd, const void *buf, size_t len, uint64_t off, const char *label,
		    struct abota_error *err)
{
	load_env();
	if (atomic_load(&pc.cut))
		return abota_error_set(err, -ECANCELED, "%s: simulated power cut", label);
	unsigned long n = atomic_fetch_add(&pc.count, 1) + 1;
	log_point(n, "write", label, off, len);
	if (pc.cut_at && n == pc.cut_at) {
		size_t keep = pc.bytes < 0 ? len / 2 : (size_t)pc.bytes;
		if (keep > len)
			keep = len;
		atomic_store(&pc.cut, 1);
		if (keep)
			(void)fileio_pwrite_full(fd, buf, keep, off, NULL);
		(void)fdatasync(fd); /* what reached the media stays there */
		return abota_error_set(err, -ECANCELED,
				       "%s: simulated power cut at write point %lu (%zu of %zu bytes "
				       "written)",
				       label, n, keep, len);
	}
	int ret = fileio_pwrite_full(fd, buf, len, off, err);
	if (ret < 0)
		abota_error_prefix(err, "%s", label);
	return ret;
}

int powercut_sync(int fd, const char *label, struct abota_error *err)
{
	load_env();
	if (atomic_load(&pc.cut))
		return abota_error_set(err, -ECANCELED, "%s: simulated power cut", label);
	unsigned long n = atomic_fetch_add(&pc.count, 1) + 1;
	log_point(n, "sync", label, 0, 0);
	if (pc.cut_at && n == pc.cut_at) {
		atomic_store(&pc.cut, 1);
		return abota_error_set(err, -ECANCELED,
				       "%s: simulated power cut at write point %lu (before sync)",
				       label, n);
	}
	if (fdatasync(fd) < 0)
		return abota_error_set(err, -errno, "%s: fdatasync failed: %s", label,
				       strerror(errno));
	return 0;
}

int powercut_point(const char *kind, const char *label, struct abota_error *err)
{
	load_env();
	if (atomic_load(&pc.cut))
		return abota_error_set(err, -ECANCELED, "%s: simulated power cut", label);
	unsigned long n = atomic_fetch_add(&pc.count, 1) + 1;
	log_point(n, kind, label, 0, 0);
	if (pc.cut_at && n == pc.cut_at) {
		atomic_store(&pc.cut, 1);
		return abota_error_set(err, -ECANCELED,
				       "%s: simulated power cut at write point %lu (before %s)",
				       label, n, kind);
	}
	return 0;
}
