/* powercut.c - write points with optional power-cut injection (powercut.h). */
#include "abota/powercut.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
	bool nosync; /* ABOTA_POWERCUT_NOSYNC: syncs are not done (SC-152) */
	/* ABOTA_FAULT_BADMEDIUM=LABEL:OFFSET: the medium stores that byte of
	 * LABEL's writes (or zeroed runs) with its lowest bit flipped (and
	 * says nothing) */
	char bad_label[64];
	uint64_t bad_off;
	bool bad_medium;
} pc;

/* Page-cache loss.  While a cut is planned, each write keeps the bytes it
 * overwrites (and the file size before it) until a sync of the same file
 * makes it durable; at the cut the writes not yet synced are undone, newest
 * first, as a power cut loses what was still in the page cache.  The lock
 * also keeps writes, syncs and the cut from overlapping between threads. */
struct undo {
	int fd; /* a dup: the writer may close its own before the cut */
	dev_t dev;
	ino_t ino;
	bool regular;
	uint64_t old_size;
	uint64_t off;
	size_t old_len; /* bytes that existed at off (less at the end of a file) */
	uint8_t *old;
};

static struct {
	pthread_mutex_t lock;
	struct undo *v;
	size_t n, cap;
	bool failed; /* out of memory or an unreadable target: loss not modelled */
} un = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void undo_free(struct undo *u)
{
	close(u->fd);
	free(u->old);
}

/* Before a write of len bytes at off (lock held). */
static void undo_record(int fd, uint64_t off, size_t len)
{
	struct stat st;
	struct undo u = { .fd = -1, .off = off };
	int rfd = fd, own = -1;
	if (fstat(fd, &st) < 0)
		goto fail;
	/* A write-only fd (the FWU metadata writer's) cannot read the bytes
	 * it overwrites: read them through a second, read-only open of the
	 * same file; without them the loss would silently not be modelled. */
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_ACCMODE) == O_WRONLY) {
		char proc[64];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		if ((own = open(proc, O_RDONLY | O_CLOEXEC)) < 0)
			goto fail;
		rfd = own;
	}
	u.dev = st.st_dev;
	u.ino = st.st_ino;
	u.regular = S_ISREG(st.st_mode);
	u.old_size = (uint64_t)st.st_size;
	if (!(u.old = malloc(len ? len : 1)))
		goto fail;
	for (size_t got = 0; got < len;) {
		ssize_t r = pread(rfd, u.old + got, len - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		got += (size_t)r;
		u.old_len = got;
	}
	if ((u.fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
		goto fail;
	if (un.n == un.cap) {
		size_t cap = un.cap ? un.cap * 2 : 64;
		struct undo *v = realloc(un.v, cap * sizeof(*v));
		if (!v)
			goto fail;
		un.v = v;
		un.cap = cap;
	}
	un.v[un.n++] = u;
	if (own >= 0)
		close(own);
	return;
fail:
	if (own >= 0)
		close(own);
	if (u.fd >= 0)
		close(u.fd);
	free(u.old);
	un.failed = true;
}

/* After a successful sync of fd: its writes are durable (lock held).  The
 * others keep their order. */
static void undo_synced(int fd)
{
	struct stat st;
	if (un.n == 0 || fstat(fd, &st) < 0)
		return;
	size_t k = 0;
	for (size_t i = 0; i < un.n; i++) {
		if (un.v[i].dev == st.st_dev && un.v[i].ino == st.st_ino)
			undo_free(&un.v[i]);
		else
			un.v[k++] = un.v[i];
	}
	un.n = k;
}

/* The cut: what was not synced is lost (lock held).  Newest first, so a
 * byte written twice gets its oldest content back, and a file a write
 * made longer gets its old size back. */
static void undo_apply(void)
{
	while (un.n > 0) {
		struct undo *u = &un.v[--un.n];
		struct stat st;
		/* an undo that fails leaves newer bytes in place: the cut's message
		 * then no longer claims the unsynced writes were lost */
		if (u->old_len && fileio_pwrite_full(u->fd, u->old, u->old_len, u->off, NULL) < 0)
			un.failed = true;
		if (u->regular && fstat(u->fd, &st) == 0 && (uint64_t)st.st_size > u->old_size &&
		    ftruncate(u->fd, (off_t)u->old_size) < 0)
			un.failed = true;
		(void)fdatasync(u->fd);
		undo_free(u);
	}
	free(un.v);
	un.v = NULL;
	un.cap = 0;
}

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
	const char *ns = getenv("ABOTA_POWERCUT_NOSYNC");
	pc.nosync = ns && !strcmp(ns, "1");
	const char *bm = getenv("ABOTA_FAULT_BADMEDIUM");
	const char *colon = bm ? strrchr(bm, ':') : NULL;
	if (colon && colon > bm && (size_t)(colon - bm) < sizeof(pc.bad_label)) {
		char *end;
		errno = 0;
		unsigned long long off = strtoull(colon + 1, &end, 10);
		if (errno == 0 && end != colon + 1 && *end == '\0') {
			memcpy(pc.bad_label, bm, (size_t)(colon - bm));
			pc.bad_label[colon - bm] = '\0';
			pc.bad_off = off;
			pc.bad_medium = true;
		}
	}
}

void powercut_plan(unsigned long n, long bytes)
{
	load_env();
	pthread_mutex_lock(&un.lock);
	for (size_t i = 0; i < un.n; i++)
		undo_free(&un.v[i]);
	un.n = 0;
	un.failed = false;
	pthread_mutex_unlock(&un.lock);
	pc.cut_at = n;
	pc.bytes = bytes;
	atomic_store(&pc.count, 0);
	atomic_store(&pc.cut, 0);
	pc.log = getenv("ABOTA_POWERCUT_LOG");
}

bool powercut_armed(void)
{
	load_env();
	return pc.cut_at > 0 || (pc.log && *pc.log);
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

/* With a cut planned, the write points of all threads are serialised (see
 * the undo list); without one, they run concurrently as in production. */
static bool lock_points(void)
{
	if (!pc.cut_at)
		return false;
	pthread_mutex_lock(&un.lock);
	return true;
}

static void unlock_points(bool locked)
{
	if (locked)
		pthread_mutex_unlock(&un.lock);
}

/* The cut itself (lock held when a cut is planned, which it is). */
static void cut_now(void)
{
	atomic_store(&pc.cut, 1);
	undo_apply();
}

/* buf NULL: zeros (fileio_zero_range) */
static int write_point(int fd, const void *buf, size_t len, uint64_t off, const char *label,
		       struct abota_error *err)
{
	load_env();
	bool locked = lock_points();
	int ret = 0;
	if (atomic_load(&pc.cut)) {
		ret = abota_error_set(err, -ECANCELED, "%s: simulated power cut", label);
		goto out;
	}
	unsigned long n = atomic_fetch_add(&pc.count, 1) + 1;
	log_point(n, buf ? "write" : "zero", label, off, len);
	if (pc.cut_at && n == pc.cut_at) {
		size_t keep = pc.bytes < 0 ? len / 2 : (size_t)pc.bytes;
		if (keep > len)
			keep = len;
		cut_now();
		/* a torn write: its first bytes reached the media */
		if (keep && buf)
			(void)fileio_pwrite_full(fd, buf, keep, off, NULL);
		else if (keep)
			(void)fileio_zero_range(fd, off, keep, NULL);
		(void)fdatasync(fd);
		ret = abota_error_set(err, -ECANCELED,
				      "%s: simulated power cut at write point %lu (%zu of %zu bytes "
				      "written%s)",
				      label, n, keep, len,
				      un.failed ? "" : "; unsynced writes before it lost");
		goto out;
	}
	if (locked)
		undo_record(fd, off, len);
	ret = buf ? fileio_pwrite_full(fd, buf, len, off, err) : fileio_zero_range(fd, off, len, err);
	if (ret < 0)
		abota_error_prefix(err, "%s", label);
	else if (pc.bad_medium && pc.bad_off >= off && pc.bad_off - off < len &&
		 strcmp(label, pc.bad_label) == 0) {
		/* a zeroed run: the medium keeps a 1 there */
		uint8_t b = (uint8_t)((buf ? ((const uint8_t *)buf)[pc.bad_off - off] : 0) ^ 1u);
		(void)fileio_pwrite_full(fd, &b, 1, pc.bad_off, NULL);
	}
out:
	unlock_points(locked);
	return ret;
}

int powercut_pwrite(int fd, const void *buf, size_t len, uint64_t off, const char *label,
		    struct abota_error *err)
{
	return write_point(fd, buf, len, off, label, err);
}

int powercut_zero(int fd, uint64_t off, size_t len, const char *label, struct abota_error *err)
{
	return write_point(fd, NULL, len, off, label, err);
}

int powercut_sync(int fd, const char *label, struct abota_error *err)
{
	load_env();
	bool locked = lock_points();
	int ret = 0;
	if (atomic_load(&pc.cut)) {
		ret = abota_error_set(err, -ECANCELED, "%s: simulated power cut", label);
		goto out;
	}
	unsigned long n = atomic_fetch_add(&pc.count, 1) + 1;
	log_point(n, "sync", label, 0, 0);
	if (pc.cut_at && n == pc.cut_at) {
		cut_now();
		ret = abota_error_set(err, -ECANCELED,
				      "%s: simulated power cut at write point %lu (before sync)",
				      label, n);
		goto out;
	}
	/* The negative test of the fault model (SC-152): as a build without
	 * fsync, nothing becomes durable at a sync, so a cut loses every write
	 * of the process; the power-cut campaign must then find violations. */
	if (pc.nosync)
		goto out;
	if (fdatasync(fd) < 0) {
		ret = abota_error_set(err, -errno, "%s: fdatasync failed: %s", label,
				      strerror(errno));
		goto out;
	}
	if (locked)
		undo_synced(fd);
out:
	unlock_points(locked);
	return ret;
}

int powercut_point(const char *kind, const char *label, struct abota_error *err)
{
	load_env();
	bool locked = lock_points();
	int ret = 0;
	if (atomic_load(&pc.cut)) {
		ret = abota_error_set(err, -ECANCELED, "%s: simulated power cut", label);
		goto out;
	}
	unsigned long n = atomic_fetch_add(&pc.count, 1) + 1;
	log_point(n, kind, label, 0, 0);
	if (pc.cut_at && n == pc.cut_at) {
		cut_now();
		ret = abota_error_set(err, -ECANCELED,
				      "%s: simulated power cut at write point %lu (before %s)",
				      label, n, kind);
	}
out:
	unlock_points(locked);
	return ret;
}
