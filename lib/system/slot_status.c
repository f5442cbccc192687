/* slot_status.c - RAUC-compatible central slot status file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "abota/fileio.h"
#include "abota/keyfile.h"
#include "abota/log.h"
#include "abota/slot_status.h"

/* A status file holds a handful of keys per slot; anything this big is not one. */
#define STATUS_MAX_SIZE (1024 * 1024)
#define BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"

struct status_entry {
	char *name; /* "rootfs.0" */
	struct slot_status st;
};

struct slot_status_store {
	char *path;
	bool broken;
	char *boot_id;
	char *saved_boot_id;
	size_t n, cap;
	struct status_entry *e;
};

int slot_status_set(char **field, const char *value)
{
	char *n = NULL;
	if (value && !(n = strdup(value)))
		return -ENOMEM;
	free(*field);
	*field = n;
	return 0;
}

void slot_status_clear(struct slot_status *s)
{
	free(s->bundle_compatible);
	free(s->bundle_version);
	free(s->bundle_description);
	free(s->bundle_build);
	free(s->bundle_hash);
	free(s->status);
	free(s->sha256);
	free(s->installed_transaction);
	free(s->installed_timestamp);
	free(s->activated_timestamp);
	memset(s, 0, sizeof(*s));
}

void slot_status_store_free(struct slot_status_store *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++) {
		free(st->e[i].name);
		slot_status_clear(&st->e[i].st);
	}
	free(st->e);
	free(st->path);
	free(st->boot_id);
	free(st->saved_boot_id);
	free(st);
}

const char *slot_status_path(const struct slot_status_store *st) { return st->path; }
bool slot_status_was_broken(const struct slot_status_store *st) { return st->broken; }
const char *slot_status_boot_id(const struct slot_status_store *st) { return st->boot_id; }
const char *slot_status_saved_boot_id(const struct slot_status_store *st) { return st->saved_boot_id; }

int slot_status_read_boot_id(const char *path, char *out, size_t cap)
{
	char *data = NULL;
	size_t len;
	int ret = fileio_read_all(path ? path : BOOT_ID_PATH, 256, &data, &len, NULL);
	if (ret < 0)
		return ret;
	data[strcspn(data, "\r\n")] = '\0';
	ret = data[0] && strlen(data) < cap ? 0 : -EINVAL;
	if (ret == 0)
		snprintf(out, cap, "%s", data);
	free(data);
	return ret;
}

int slot_status_set_boot_id(struct slot_status_store *st, const char *boot_id)
{
	return slot_status_set(&st->boot_id, boot_id);
}

const struct slot_status *slot_status_find(const struct slot_status_store *st, const char *slot)
{
	for (size_t i = 0; i < st->n; i++)
		if (!strcmp(st->e[i].name, slot))
			return &st->e[i].st;
	return NULL;
}

struct slot_status *slot_status_get(struct slot_status_store *st, const char *slot)
{
	struct slot_status *s = (struct slot_status *)slot_status_find(st, slot);
	if (s)
		return s;
	if (st->n == st->cap) {
		size_t ncap = st->cap ? st->cap * 2 : 8;
		struct status_entry *ne = realloc(st->e, ncap * sizeof(*ne));
		if (!ne)
			return NULL;
		st->e = ne;
		st->cap = ncap;
	}
	char *name = strdup(slot);
	if (!name)
		return NULL;
	memset(&st->e[st->n], 0, sizeof(st->e[0]));
	st->e[st->n].name = name;
	return &st->e[st->n++].st;
}

/* String keys in file order, with their field offsets. */
static char **str_field(struct slot_status *s, int i)
{
	char **f[] = { &s->bundle_compatible, &s->bundle_version, &s->bundle_description,
		       &s->bundle_build, &s->bundle_hash, &s->status, &s->sha256 };
	return f[i];
}
static const char *const str_keys[] = { "bundle.compatible", "bundle.version",
					"bundle.description", "bundle.build",
					"bundle.hash", "status", "sha256" };

/* Reading is lenient like RAUC's (missing or malformed keys fall back to
 * defaults) -- the file is our own state, and refusing to start because of
 * it would brick updates. */
static int load_group(struct slot_status_store *st, struct keyfile *kf, const char *group)
{
	struct slot_status *s = slot_status_get(st, group + 5);
	if (!s)
		return -ENOMEM;
	const char *v;
	for (int i = 0; i < 7; i++)
		if (keyfile_get_string(kf, group, str_keys[i], &v, NULL) == 0 &&
		    slot_status_set(str_field(s, i), v) < 0)
			return -ENOMEM;
	struct abota_error e = { 0 };
	int r = keyfile_get_u64(kf, group, "size", &s->size, &e);
	s->has_size = r == 0;
	if (r == -EINVAL)
		log_warning("%s", e.msg);
	if (keyfile_get_string(kf, group, "installed.transaction", &v, NULL) == 0 &&
	    slot_status_set(&s->installed_transaction, v) < 0)
		return -ENOMEM;
	if (keyfile_get_string(kf, group, "installed.timestamp", &v, NULL) == 0 &&
	    slot_status_set(&s->installed_timestamp, v) < 0)
		return -ENOMEM;
	if (keyfile_get_u64(kf, group, "installed.count", &s->installed_count, &e) == -EINVAL)
		log_warning("%s", e.msg);
	if (keyfile_get_string(kf, group, "activated.timestamp", &v, NULL) == 0 &&
	    slot_status_set(&s->activated_timestamp, v) < 0)
		return -ENOMEM;
	if (keyfile_get_u64(kf, group, "activated.count", &s->activated_count, &e) == -EINVAL)
		log_warning("%s", e.msg);
	return 0;
}

int slot_status_load(const char *path, struct slot_status_store **out, struct abota_error *err)
{
	struct slot_status_store *st = calloc(1, sizeof(*st));
	struct keyfile *kf = NULL;
	char *data = NULL;
	size_t len = 0;
	int ret = 0;
	if (!st || !(st->path = strdup(path))) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	struct abota_error e = { 0 };
	ret = fileio_read_all(path, STATUS_MAX_SIZE, &data, &len, &e);
	if (ret == -ENOENT) {
		ret = 0;
		goto done;
	}
	if (ret == -EFBIG || ret == -EINVAL) {
		log_warning("slot status %s: %s; using defaults", path, e.msg);
		st->broken = true;
		ret = 0;
		goto done;
	}
	if (ret < 0) {
		ret = abota_error_set(err, ret, "%s", e.msg);
		goto out;
	}
	if (keyfile_parse(data, len, path, &kf, &e) < 0) {
		log_warning("slot status %s is broken (%s); using defaults, it will be moved to "
			    "%s.broken on the next save",
			    path, e.msg, path);
		st->broken = true;
		goto done;
	}
	const char *v;
	/* the boot in which the file was last saved (see slot_status_saved_boot_id) */
	if (keyfile_get_string(kf, "system", "boot-id", &v, NULL) == 0)
		(void)slot_status_set(&st->saved_boot_id, v);
	for (size_t i = 0; i < keyfile_group_count(kf); i++) {
		const char *g = keyfile_group_name(kf, i);
		if (strncmp(g, "slot.", 5) || !g[5])
			continue;
		if (load_group(st, kf, g) < 0) {
			ret = abota_error_set(err, -ENOMEM, "out of memory");
			goto out;
		}
	}
done:
	*out = st;
	st = NULL;
out:
	keyfile_free(kf);
	free(data);
	slot_status_store_free(st);
	return ret;
}

void slot_status_timestamp_now(char buf[SLOT_STATUS_TIMESTAMP_LEN])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, SLOT_STATUS_TIMESTAMP_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int slot_status_mark_activated(struct slot_status_store *st, const char *slot,
			       struct abota_error *err)
{
	char ts[SLOT_STATUS_TIMESTAMP_LEN];
	struct slot_status *s = slot_status_get(st, slot);
	slot_status_timestamp_now(ts);
	if (!s || slot_status_set(&s->activated_timestamp, ts) < 0)
		return abota_error_set(err, -ENOMEM, "out of memory");
	s->activated_count++;
	return 0;
}

static void read_boot_id(struct slot_status_store *st)
{
	char *data = NULL;
	size_t len;
	if (fileio_read_all(BOOT_ID_PATH, 256, &data, &len, NULL) < 0)
		return;
	data[strcspn(data, "\r\n")] = '\0';
	if (data[0])
		(void)slot_status_set(&st->boot_id, data);
	free(data);
}

int slot_status_save(struct slot_status_store *st, struct abota_error *err)
{
	struct keyfile *kf = keyfile_new(st->path);
	char *data = NULL, *dir = NULL, *broken = NULL;
	size_t len = 0;
	int ret = 0;
	if (!kf) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (!st->boot_id)
		read_boot_id(st);
	if (st->boot_id && (ret = keyfile_set_string(kf, "system", "boot-id", st->boot_id)) < 0)
		goto oom;
	for (size_t i = 0; i < st->n; i++) {
		struct slot_status *s = &st->e[i].st;
		char g[300];
		if (snprintf(g, sizeof(g), "slot.%s", st->e[i].name) >= (int)sizeof(g)) {
			ret = abota_error_set(err, -ENAMETOOLONG, "slot name too long");
			goto out;
		}
		/* keep RAUC's key order (§4.1) */
		for (int k = 0; k < 7; k++) {
			const char *v = *str_field(s, k);
			if (v && (ret = keyfile_set_string(kf, g, str_keys[k], v)) < 0)
				goto oom;
			if (k == 6 && s->has_size && (ret = keyfile_set_u64(kf, g, "size", s->size)) < 0)
				goto oom;
		}
		if (s->installed_transaction &&
		    (ret = keyfile_set_string(kf, g, "installed.transaction",
					      s->installed_transaction)) < 0)
			goto oom;
		if (s->installed_timestamp) {
			if ((ret = keyfile_set_string(kf, g, "installed.timestamp",
						      s->installed_timestamp)) < 0 ||
			    (ret = keyfile_set_u64(kf, g, "installed.count", s->installed_count)) < 0)
				goto oom;
		}
		if (s->activated_timestamp) {
			if ((ret = keyfile_set_string(kf, g, "activated.timestamp",
						      s->activated_timestamp)) < 0 ||
			    (ret = keyfile_set_u64(kf, g, "activated.count", s->activated_count)) < 0)
				goto oom;
		}
	}
	if ((ret = keyfile_to_data(kf, &data, &len)) < 0)
		goto oom;
	/* The data directory may not exist yet on a fresh system (RAUC
	 * creates it too); one level is enough for data-directory. */
	if (!(dir = strdup(st->path)))
		goto oom;
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			ret = abota_error_set(err, -errno, "%s: %s", dir, strerror(errno));
			goto out;
		}
	}
	if (st->broken) {
		/* Keep the unreadable file for inspection instead of silently
		 * overwriting it. */
		if (asprintf(&broken, "%s.broken", st->path) < 0) {
			broken = NULL;
			goto oom;
		}
		if (rename(st->path, broken) < 0 && errno != ENOENT) {
			ret = abota_error_set(err, -errno, "%s: cannot move aside: %s", st->path,
					      strerror(errno));
			goto out;
		}
		st->broken = false;
	}
	ret = fileio_write_atomic_device(st->path, data, len, 0644, err);
	goto out;
oom:
	ret = abota_error_set(err, -ENOMEM, "out of memory");
out:
	free(broken);
	free(dir);
	free(data);
	keyfile_free(kf);
	return ret;
}

int slot_status_rank(void *store, const struct slot *a, const struct slot *b)
{
	const struct slot_status_store *st = store;
	const struct slot_status *sa = st ? slot_status_find(st, a->name) : NULL;
	const struct slot_status *sb = st ? slot_status_find(st, b->name) : NULL;
	bool fa = sa && sa->status && !strcmp(sa->status, "failed");
	bool fb = sb && sb->status && !strcmp(sb->status, "failed");
	if (fa != fb)
		return fa ? -1 : 1;
	const char *ta = sa ? sa->installed_timestamp : NULL;
	const char *tb = sb ? sb->installed_timestamp : NULL;
	if (!ta != !tb)
		return !ta ? -1 : 1;
	if (ta && tb) /* ISO 8601 UTC sorts lexicographically */
		return strcmp(ta, tb);
	return 0;
}
