/* event_log.c - RAUC's event loggers: records appended to files named in
 * [log.<name>], with rotation by size.  See event_log.h. */
#include "abota/event_log.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abota/fileio.h"
#include "abota/log.h"
#include "abota/slot_status.h"

static const char *const type_names[] = { "install", "boot", "mark", "service", "writeslot" };

const char *event_log_type_name(unsigned type)
{
	for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
		if (type == 1u << i)
			return type_names[i];
	return "unknown";
}

/* Labels of the fields the readable format shows, in RAUC's words. */
static const char *readable_label(const char *key)
{
	static const char *const map[][2] = {
		{ "TRANSACTION_ID", "transaction ID" }, { "BOOT_ID", "boot ID" },
		{ "BUNDLE_HASH", "bundle hash" },       { "BUNDLE_VERSION", "bundle version" },
		{ "SLOT_NAME", "slot" },                { "SLOT_BOOTNAME", "bootname" },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(key, map[i][0]))
			return map[i][1];
	return NULL;
}

static int format_readable(bool verbose, const char *ts, const char *message,
			   const struct event_field *fields, size_t n, char **out)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	/* the fields line up under the message: "2026-11-25T23:33:16Z: " is 22 wide */
	fprintf(f, "%s: %s", ts, message);
	for (size_t i = 0; verbose && i < n; i++) {
		const char *label = fields[i].value ? readable_label(fields[i].key) : NULL;
		if (label)
			fprintf(f, "\n%22s%s: %s", "", label, fields[i].value);
	}
	fputc('\n', f);
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*out = buf;
	return 0;
}

static int add_string(struct json_object *o, const char *key, const char *value)
{
	struct json_object *v = json_object_new_string(value);
	if (!v || json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

/* RAUC's JSON records: every field as a string, "TS" first. */
static int format_json(bool pretty, const char *ts, unsigned type, const char *message_id,
		       const char *message, const struct event_field *fields, size_t n,
		       char **out)
{
	struct json_object *o = json_object_new_object();
	int ret = o ? 0 : -ENOMEM;
	if (ret == 0)
		ret = add_string(o, "TS", ts);
	if (ret == 0)
		ret = add_string(o, "MESSAGE", message);
	if (ret == 0 && message_id)
		ret = add_string(o, "MESSAGE_ID", message_id);
	if (ret == 0)
		ret = add_string(o, "PRIORITY", "5");
	if (ret == 0)
		ret = add_string(o, "GLIB_DOMAIN", "rauc-event");
	if (ret == 0)
		ret = add_string(o, "RAUC_EVENT_TYPE", event_log_type_name(type));
	for (size_t i = 0; ret == 0 && i < n; i++)
		if (fields[i].value)
			ret = add_string(o, fields[i].key, fields[i].value);
	if (ret == 0) {
		int flags = JSON_C_TO_STRING_NOSLASHESCAPE |
			    (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
				    : JSON_C_TO_STRING_PLAIN);
		const char *s = json_object_to_json_string_ext(o, flags);
		if (!s || asprintf(out, "%s\n", s) < 0)
			ret = -ENOMEM;
	}
	json_object_put(o);
	return ret;
}

int event_log_format(enum config_log_format format, time_t when, unsigned type,
		     const char *message_id, const char *message,
		     const struct event_field *fields, size_t n_fields, char **out)
{
	struct tm tm;
	char ts[32];
	if (!gmtime_r(&when, &tm) || strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(ts, sizeof(ts), "%lld", (long long)when);
	switch (format) {
	case CONFIG_LOG_READABLE:
	case CONFIG_LOG_SHORT:
		return format_readable(format == CONFIG_LOG_READABLE, ts, message, fields, n_fields,
				       out);
	case CONFIG_LOG_JSON:
	case CONFIG_LOG_JSON_PRETTY:
		return format_json(format == CONFIG_LOG_JSON_PRETTY, ts, type, message_id, message,
				   fields, n_fields, out);
	}
	return -EINVAL;
}

/* Loggers that failed in this process are not tried again (RAUC's "broken"
 * loggers): one warning, not one per event. */
static pthread_mutex_t broken_lock = PTHREAD_MUTEX_INITIALIZER;
static char **broken;
static size_t n_broken;

static bool is_broken(const char *filename)
{
	bool hit = false;
	pthread_mutex_lock(&broken_lock);
	for (size_t i = 0; i < n_broken && !hit; i++)
		hit = !strcmp(broken[i], filename);
	pthread_mutex_unlock(&broken_lock);
	return hit;
}

static void set_broken(const struct config_logger *l, const struct abota_error *e)
{
	log_warning("event logger [log.%s]: %s; not used any more", l->name, e->msg);
	pthread_mutex_lock(&broken_lock);
	char **n = realloc(broken, (n_broken + 1) * sizeof(*n));
	if (n) {
		broken = n;
		if ((broken[n_broken] = strdup(l->filename)) != NULL)
			n_broken++;
	}
	pthread_mutex_unlock(&broken_lock);
}

static int open_locked(const char *path, int *fd_out, struct abota_error *err)
{
	for (int tries = 0; tries < 10; tries++) {
		int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd < 0 && errno == ENOENT && tries == 0) {
			/* the data directory before the first install created it */
			char dir[4096];
			snprintf(dir, sizeof(dir), "%s", path);
			char *slash = strrchr(dir, '/');
			if (slash && slash != dir) {
				*slash = '\0';
				if (mkdir(dir, 0755) == 0 || errno == EEXIST)
					continue;
			}
			errno = ENOENT;
		}
		if (fd < 0)
			return abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
		struct stat a, b;
		if (flock(fd, LOCK_EX) != 0 || fstat(fd, &a) != 0) {
			int e = errno;
			close(fd);
			return abota_error_set(err, -e, "%s: %s", path, strerror(e));
		}
		/* Another process rotated the file while we waited for the lock:
		 * the name now belongs to a new file, take that one. */
		if (stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			*fd_out = fd;
			return 0;
		}
		close(fd);
	}
	return abota_error_set(err, -EAGAIN, "%s: keeps being rotated by others", path);
}

/* Keeps max_files files: path.N-1 is dropped, path.K moves to path.K+1,
 * path to path.1 (or away, with max-files=1).  Called with the lock held on
 * the file that is moved; the caller then opens a new one. */
static int rotate(const struct config_logger *l, struct abota_error *err)
{
	char from[4096], to[4096];
	if (strlen(l->filename) + 8 > sizeof(from))
		return abota_error_set(err, -ENAMETOOLONG, "rotating %s: name too long", l->filename);
	for (unsigned k = l->max_files - 1; k >= 2; k--) {
		snprintf(from, sizeof(from), "%s.%u", l->filename, k - 1);
		snprintf(to, sizeof(to), "%s.%u", l->filename, k);
		if (rename(from, to) != 0 && errno != ENOENT)
			return abota_error_set(err, -errno, "rotating %s: %s", from, strerror(errno));
	}
	int r;
	if (l->max_files >= 2) {
		snprintf(to, sizeof(to), "%s.1", l->filename);
		r = rename(l->filename, to);
	} else {
		r = unlink(l->filename);
	}
	if (r != 0)
		return abota_error_set(err, -errno, "rotating %s: %s", l->filename, strerror(errno));
	return fileio_fsync_dir(l->filename, 0, err);
}

static int append(const struct config_logger *l, const char *rec, struct abota_error *err)
{
	size_t len = strlen(rec);
	int fd = -1;
	int ret = open_locked(l->filename, &fd, err);
	if (ret < 0)
		return ret;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		ret = abota_error_set(err, -errno, "%s: %s", l->filename, strerror(errno));
		goto out;
	}
	bool new_file = st.st_size == 0;
	/* Rotate before the file would grow past max-size; a record larger than
	 * max-size on its own still goes into a fresh file, whole. */
	if (l->max_size && st.st_size > 0 && (uint64_t)st.st_size + len > l->max_size) {
		if ((ret = rotate(l, err)) < 0)
			goto out;
		close(fd); /* releases the lock on the file that was moved away */
		fd = -1;
		if ((ret = open_locked(l->filename, &fd, err)) < 0)
			goto out;
		new_file = true;
	}
	if ((ret = fileio_write_full(fd, rec, len, err)) < 0)
		goto out;
	/* an install history must outlive a power cut right after the install */
	if (fdatasync(fd) != 0) {
		ret = abota_error_set(err, -errno, "%s: %s", l->filename, strerror(errno));
		goto out;
	}
	if (new_file)
		ret = fileio_fsync_dir(l->filename, 0, err); /* a new file's name */
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

void event_log_emit(const struct system_config *cfg, unsigned type, const char *message_id,
		    const struct event_field *fields, size_t n_fields, const char *fmt, ...)
{
	if (!cfg || cfg->nloggers == 0)
		return;
	char *message = NULL;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&message, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	log_debug("event (%s): %s", event_log_type_name(type), message);
	time_t now = time(NULL);
	for (size_t i = 0; i < cfg->nloggers; i++) {
		const struct config_logger *l = &cfg->loggers[i];
		if (!(l->events & type) || is_broken(l->filename))
			continue;
		struct abota_error e = { 0 };
		char *rec = NULL;
		if (event_log_format(l->format, now, type, message_id, message, fields, n_fields,
				     &rec) < 0)
			abota_error_set(&e, -ENOMEM, "out of memory");
		else
			append(l, rec, &e);
		free(rec);
		if (e.code)
			set_broken(l, &e);
	}
	free(message);
}

void event_log_boot(const struct system_config *cfg, const char *slot_name,
		    const char *bootname, const char *bundle_hash)
{
	bool wanted = false;
	for (size_t i = 0; cfg && i < cfg->nloggers; i++)
		wanted |= (cfg->loggers[i].events & CONFIG_EVENT_BOOT) != 0;
	if (!wanted)
		return;
	char boot_id[64];
	if (slot_status_read_boot_id(cfg->boot_id_file, boot_id, sizeof(boot_id)) < 0)
		return;
	/* The last boot logged is kept beside the status: services restart
	 * within a boot, and each boot is logged once. */
	if (!cfg->data_directory) {
		log_warning("event log: boot events need a data-directory to remember the boots logged");
		return;
	}
	char path[4096];
	if (snprintf(path, sizeof(path), "%s/event-log.boot-id", cfg->data_directory) >=
	    (int)sizeof(path))
		return;
	char *last = NULL;
	size_t len = 0;
	struct abota_error e = { 0 };
	if (fileio_read_all(path, 256, &last, &len, &e) == 0) {
		bool same = len > 0 && !strncmp(last, boot_id, strlen(boot_id)) &&
			    (last[strlen(boot_id)] == '\n' || last[strlen(boot_id)] == '\0');
		free(last);
		if (same)
			return;
	}
	struct event_field f[] = {
		{ "SLOT_NAME", slot_name },
		{ "SLOT_BOOTNAME", slot_name ? (bootname ? bootname : "") : NULL },
		{ "BOOT_ID", boot_id },
		{ "BUNDLE_HASH", slot_name ? (bundle_hash ? bundle_hash : "unknown") : NULL },
	};
	if (slot_name)
		event_log_emit(cfg, CONFIG_EVENT_BOOT, EVENT_ID_BOOTED, f, 4, "Booted into %s (%s)",
			       slot_name, bootname ? bootname : "");
	else
		event_log_emit(cfg, CONFIG_EVENT_BOOT, "dd237efdad1945d9b1e471bc2b994532", f, 4,
			       "Booted from external source");
	char line[80];
	int n = snprintf(line, sizeof(line), "%s\n", boot_id);
	if (fileio_write_atomic(path, line, (size_t)n, 0644, &e) < 0)
		log_warning("event log: %s", e.msg);
}
