/* keyfile.h - a GKeyFile-compatible key file parser and writer.
 *
 * Used for manifests, system.conf, status files and board profiles.
 * Syntax: `[group]` headers, `key=value` lines, `#` comments at the start of a
 * line, blank lines; CRLF accepted.  Whitespace around the key and after `=` is
 * dropped, trailing whitespace of a value is kept (as GLib does).  Values are
 * unescaped (\s \n \t \r \\ \;) when read.  Lists are `;`-separated, a
 * trailing `;` is optional.  Duplicate keys in a group and duplicate groups are
 * rejected; non-UTF-8 values and NUL bytes are rejected.
 *
 * Strict use: read every key you know, then call keyfile_check_consumed()
 * which fails on the first unknown (unread) group or key, naming file, line,
 * group and key.
 *
 * All strings returned point into the keyfile and live until keyfile_free().
 */
#ifndef ABOTA_KEYFILE_H
#define ABOTA_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abota/error.h"

struct keyfile;

/* Parses len bytes of data (need not be NUL-terminated).  `name` is used in
 * error messages (usually the file name). */
int keyfile_parse(const char *data, size_t len, const char *name, struct keyfile **out,
		  struct abota_error *err);
/* Reads and parses a file of at most max_size bytes. */
int keyfile_load(const char *path, size_t max_size, struct keyfile **out,
		 struct abota_error *err);
/* Creates an empty key file for writing. */
struct keyfile *keyfile_new(const char *name);
void keyfile_free(struct keyfile *kf);

const char *keyfile_name(const struct keyfile *kf);

/* Groups in file order. */
size_t keyfile_group_count(const struct keyfile *kf);
const char *keyfile_group_name(const struct keyfile *kf, size_t idx);
bool keyfile_has_group(const struct keyfile *kf, const char *group);
/* Marks a group as known (so check_consumed does not complain about it even
 * if it has no keys that were read). */
void keyfile_consume_group(struct keyfile *kf, const char *group);

/* Keys of a group in file order (NULL-safe count of 0 for unknown group). */
size_t keyfile_key_count(const struct keyfile *kf, const char *group);
const char *keyfile_key_name(const struct keyfile *kf, const char *group, size_t idx);
/* 1-based line number of a key (0 if unknown). */
unsigned keyfile_key_line(const struct keyfile *kf, const char *group, const char *key);
/* "file:line" for a line from the file, "file (set by -C)" for a value that
 * keyfile_set_*() put there (an override): where a message should point. */
const char *keyfile_where(const struct keyfile *kf, unsigned line, char *buf, size_t cap);

bool keyfile_has_key(const struct keyfile *kf, const char *group, const char *key);

/* Getters return -ENOENT (without touching err) when the key is absent, and
 * -EINVAL with a message naming file:line, group and key when the value is
 * malformed.  A successful get marks the key (and its group) consumed. */
int keyfile_get_string(struct keyfile *kf, const char *group, const char *key,
		       const char **out, struct abota_error *err);
/* Like get_string, but an empty value is an error "missing value". */
int keyfile_get_nonempty(struct keyfile *kf, const char *group, const char *key,
			 const char **out, struct abota_error *err);
/* Unsigned decimal, no sign, no leading/trailing spaces, fits uint64. */
int keyfile_get_u64(struct keyfile *kf, const char *group, const char *key, uint64_t *out,
		    struct abota_error *err);
/* Exactly true|false|1|0. */
int keyfile_get_bool(struct keyfile *kf, const char *group, const char *key, bool *out,
		     struct abota_error *err);
/* `;`-separated list.  *out is a NULL-terminated array owned by the keyfile;
 * *count (optional) receives the number of elements. */
int keyfile_get_list(struct keyfile *kf, const char *group, const char *key,
		     const char *const **out, size_t *count, struct abota_error *err);

/* Fails on the first group or key that was never consumed. */
int keyfile_check_consumed(const struct keyfile *kf, struct abota_error *err);

/* Writing: values are escaped as needed.  Groups and keys keep insertion
 * order; setting an existing key replaces its value in place. */
int keyfile_set_string(struct keyfile *kf, const char *group, const char *key,
		       const char *value);
int keyfile_set_u64(struct keyfile *kf, const char *group, const char *key, uint64_t value);
/* Written with a trailing `;` as RAUC does. */
int keyfile_set_list(struct keyfile *kf, const char *group, const char *key,
		     const char *const *values, size_t count);
/* Removes a key; -ENOENT if absent. */
int keyfile_remove_key(struct keyfile *kf, const char *group, const char *key);

/* Serializes: groups separated by a blank line.  Caller frees *out. */
int keyfile_to_data(const struct keyfile *kf, char **out, size_t *len);

#endif
