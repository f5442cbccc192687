/* keyfile.c - GKeyFile-compatible parser and writer (see keyfile.h). */
#include "abota/keyfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abota/fileio.h"

struct kf_entry {
	char *key;
	char *raw;          /* value as written in the file (escaped) */
	unsigned line;
	bool consumed;
	char *decoded;      /* cache for get_string */
	char **list;        /* cache for get_list, NULL-terminated */
	size_t list_len;
};

struct kf_group {
	char *name;
	unsigned line;
	bool consumed;
	struct kf_entry *entries;
	size_t n_entries, cap_entries;
};

struct keyfile {
	char *name;
	struct kf_group *groups;
	size_t n_groups, cap_groups;
};

static void entry_clear_cache(struct kf_entry *e)
{
	free(e->decoded);
	e->decoded = NULL;
	if (e->list) {
		for (size_t i = 0; i < e->list_len; i++)
			free(e->list[i]);
		free(e->list);
		e->list = NULL;
		e->list_len = 0;
	}
}

void keyfile_free(struct keyfile *kf)
{
	if (!kf)
		return;
	for (size_t g = 0; g < kf->n_groups; g++) {
		struct kf_group *grp = &kf->groups[g];
		for (size_t i = 0; i < grp->n_entries; i++) {
			entry_clear_cache(&grp->entries[i]);
			free(grp->entries[i].key);
			free(grp->entries[i].raw);
		}
		free(grp->entries);
		free(grp->name);
	}
	free(kf->groups);
	free(kf->name);
	free(kf);
}

struct keyfile *keyfile_new(const char *name)
{
	struct keyfile *kf = calloc(1, sizeof(*kf));
	if (!kf)
		return NULL;
	kf->name = strdup(name ? name : "(keyfile)");
	if (!kf->name) {
		free(kf);
		return NULL;
	}
	return kf;
}

const char *keyfile_name(const struct keyfile *kf)
{
	return kf->name;
}

static struct kf_group *find_group(const struct keyfile *kf, const char *group)
{
	for (size_t i = 0; i < kf->n_groups; i++)
		if (strcmp(kf->groups[i].name, group) == 0)
			return &kf->groups[i];
	return NULL;
}

static struct kf_entry *find_entry(const struct kf_group *grp, const char *key)
{
	if (!grp)
		return NULL;
	for (size_t i = 0; i < grp->n_entries; i++)
		if (strcmp(grp->entries[i].key, key) == 0)
			return &grp->entries[i];
	return NULL;
}

static struct kf_group *add_group(struct keyfile *kf, const char *name, size_t name_len,
				  unsigned line)
{
	if (kf->n_groups == kf->cap_groups) {
		size_t cap = kf->cap_groups ? kf->cap_groups * 2 : 8;
		struct kf_group *g = realloc(kf->groups, cap * sizeof(*g));
		if (!g)
			return NULL;
		kf->groups = g;
		kf->cap_groups = cap;
	}
	struct kf_group *grp = &kf->groups[kf->n_groups];
	memset(grp, 0, sizeof(*grp));
	grp->name = strndup(name, name_len);
	if (!grp->name)
		return NULL;
	grp->line = line;
	kf->n_groups++;
	return grp;
}

static struct kf_entry *add_entry(struct kf_group *grp, const char *key, size_t key_len,
				  const char *raw, size_t raw_len, unsigned line)
{
	if (grp->n_entries == grp->cap_entries) {
		size_t cap = grp->cap_entries ? grp->cap_entries * 2 : 8;
		struct kf_entry *e = realloc(grp->entries, cap * sizeof(*e));
		if (!e)
			return NULL;
		grp->entries = e;
		grp->cap_entries = cap;
	}
	struct kf_entry *e = &grp->entries[grp->n_entries];
	memset(e, 0, sizeof(*e));
	e->key = strndup(key, key_len);
	e->raw = strndup(raw, raw_len);
	if (!e->key || !e->raw) {
		free(e->key);
		free(e->raw);
		return NULL;
	}
	e->line = line;
	grp->n_entries++;
	return e;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

static bool valid_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		unsigned char c = p[i];
		size_t n;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			n = 1;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			n = 2;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		for (size_t k = 1; k <= n; k++) {
			if (i + k >= len || (p[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3F);
		}
		/* Overlong forms, surrogates and out-of-range code points. */
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
			return false;
		i += n + 1;
	}
	return true;
}

static bool valid_name(const char *s, size_t len, bool group)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7F)
			return false;
		if (group && (c == '[' || c == ']'))
			return false;
		if (!group && c == '=')
			return false;
	}
	return valid_utf8(s, len);
}

int keyfile_parse(const char *data, size_t len, const char *name, struct keyfile **out,
		  struct abota_error *err)
{
	int ret = 0;
	struct keyfile *kf = keyfile_new(name);
	if (!kf)
		return abota_error_set(err, -ENOMEM, "out of memory");
	if (memchr(data, '\0', len)) {
		ret = abota_error_set(err, -EINVAL, "%s: contains a NUL byte", kf->name);
		goto out;
	}
	struct kf_group *cur = NULL;
	size_t pos = 0;
	unsigned lineno = 0;
	while (pos < len) {
		const char *line = data + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t llen = nl ? (size_t)(nl - line) : len - pos;
		pos += llen + (nl ? 1 : 0);
		lineno++;
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		/* Leading whitespace is insignificant, as in GLib. */
		while (llen > 0 && is_space(*line)) {
			line++;
			llen--;
		}
		if (llen == 0 || line[0] == '#')
			continue;
		if (line[0] == '[') {
			const char *close = memchr(line, ']', llen);
			if (!close) {
				ret = abota_error_set(err, -EINVAL, "%s:%u: invalid group header",
						      kf->name, lineno);
				goto out;
			}
			size_t nlen = (size_t)(close - line - 1);
			for (const char *p = close + 1; p < line + llen; p++) {
				if (!is_space(*p)) {
					ret = abota_error_set(err, -EINVAL,
							      "%s:%u: trailing characters after group header",
							      kf->name, lineno);
					goto out;
				}
			}
			if (!valid_name(line + 1, nlen, true)) {
				ret = abota_error_set(err, -EINVAL, "%s:%u: invalid group name",
						      kf->name, lineno);
				goto out;
			}
			char *gname = strndup(line + 1, nlen);
			if (!gname) {
				ret = abota_error_set(err, -ENOMEM, "out of memory");
				goto out;
			}
			struct kf_group *dup = find_group(kf, gname);
			if (dup) {
				ret = abota_error_set(err, -EINVAL,
						      "%s:%u: duplicate group [%s] (first at line %u)",
						      kf->name, lineno, gname, dup->line);
				free(gname);
				goto out;
			}
			free(gname);
			cur = add_group(kf, line + 1, nlen, lineno);
			if (!cur) {
				ret = abota_error_set(err, -ENOMEM, "out of memory");
				goto out;
			}
			continue;
		}
		const char *eq = memchr(line, '=', llen);
		if (!eq) {
			ret = abota_error_set(err, -EINVAL,
					      "%s:%u: line is not a key=value pair, group or comment",
					      kf->name, lineno);
			goto out;
		}
		if (!cur) {
			ret = abota_error_set(err, -EINVAL, "%s:%u: key outside of any group",
					      kf->name, lineno);
			goto out;
		}
		size_t klen = (size_t)(eq - line);
		while (klen > 0 && is_space(line[klen - 1]))
			klen--;
		if (!valid_name(line, klen, false)) {
			ret = abota_error_set(err, -EINVAL, "%s:%u: invalid key name in group [%s]",
					      kf->name, lineno, cur->name);
			goto out;
		}
		const char *val = eq + 1;
		size_t vlen = llen - (size_t)(val - line);
		while (vlen > 0 && is_space(*val)) {
			val++;
			vlen--;
		}
		char *kname = strndup(line, klen);
		if (!kname) {
			ret = abota_error_set(err, -ENOMEM, "out of memory");
			goto out;
		}
		struct kf_entry *dup = find_entry(cur, kname);
		if (dup) {
			ret = abota_error_set(err, -EINVAL,
					      "%s:%u: duplicate key '%s' in group [%s] (first at line %u)",
					      kf->name, lineno, kname, cur->name, dup->line);
			free(kname);
			goto out;
		}
		free(kname);
		if (!add_entry(cur, line, klen, val, vlen, lineno)) {
			ret = abota_error_set(err, -ENOMEM, "out of memory");
			goto out;
		}
	}
	*out = kf;
	kf = NULL;
out:
	keyfile_free(kf);
	return ret;
}

int keyfile_load(const char *path, size_t max_size, struct keyfile **out,
		 struct abota_error *err)
{
	char *data = NULL;
	size_t len = 0;
	int ret = fileio_read_all(path, max_size, &data, &len, err);
	if (ret < 0)
		return ret;
	ret = keyfile_parse(data, len, path, out, err);
	free(data);
	return ret;
}

size_t keyfile_group_count(const struct keyfile *kf)
{
	return kf->n_groups;
}

const char *keyfile_group_name(const struct keyfile *kf, size_t idx)
{
	return idx < kf->n_groups ? kf->groups[idx].name : NULL;
}

bool keyfile_has_group(const struct keyfile *kf, const char *group)
{
	return find_group(kf, group) != NULL;
}

void keyfile_consume_group(struct keyfile *kf, const char *group)
{
	struct kf_group *g = find_group(kf, group);
	if (g)
		g->consumed = true;
}

size_t keyfile_key_count(const struct keyfile *kf, const char *group)
{
	struct kf_group *g = find_group(kf, group);
	return g ? g->n_entries : 0;
}

const char *keyfile_key_name(const struct keyfile *kf, const char *group, size_t idx)
{
	struct kf_group *g = find_group(kf, group);
	return (g && idx < g->n_entries) ? g->entries[idx].key : NULL;
}

unsigned keyfile_key_line(const struct keyfile *kf, const char *group, const char *key)
{
	struct kf_entry *e = find_entry(find_group(kf, group), key);
	return e ? e->line : 0;
}

const char *keyfile_where(const struct keyfile *kf, unsigned line, char *buf, size_t cap)
{
	if (line)
		snprintf(buf, cap, "%s:%u", kf->name, line);
	else
		snprintf(buf, cap, "%s (set by -C)", kf->name);
	return buf;
}

bool keyfile_has_key(const struct keyfile *kf, const char *group, const char *key)
{
	return find_entry(find_group(kf, group), key) != NULL;
}

/* Unescapes raw[0..len) into a new string.  With split, an unescaped `;`
 * ends the element: *consumed receives the number of raw bytes used (incl.
 * the separator). */
static int unescape(const struct keyfile *kf, const struct kf_group *g,
		    const struct kf_entry *e, const char *raw, size_t len, bool split,
		    char **out, size_t *consumed, struct abota_error *err)
{
	char w[4200]; /* where: "file:line" or "file (set by -C)" */
	char *s = malloc(len + 1);
	if (!s)
		return abota_error_set(err, -ENOMEM, "out of memory");
	size_t o = 0, i = 0;
	for (; i < len; i++) {
		char c = raw[i];
		if (split && c == ';') {
			i++;
			break;
		}
		if (c != '\\') {
			s[o++] = c;
			continue;
		}
		if (i + 1 >= len) {
			free(s);
			return abota_error_set(err, -EINVAL,
					       "%s: value of key '%s' in group [%s] ends with an escape character",
					       keyfile_where(kf, e->line, w, sizeof(w)), e->key, g->name);
		}
		char n = raw[++i];
		switch (n) {
		case 's': s[o++] = ' '; break;
		case 'n': s[o++] = '\n'; break;
		case 't': s[o++] = '\t'; break;
		case 'r': s[o++] = '\r'; break;
		case '\\': s[o++] = '\\'; break;
		case ';': s[o++] = ';'; break;
		default:
			free(s);
			return abota_error_set(err, -EINVAL,
					       "%s: value of key '%s' in group [%s] has an invalid escape sequence '\\%c'",
					       keyfile_where(kf, e->line, w, sizeof(w)), e->key, g->name, n);
		}
	}
	s[o] = '\0';
	if (!valid_utf8(s, o)) {
		free(s);
		return abota_error_set(err, -EINVAL,
				       "%s: value of key '%s' in group [%s] is not valid UTF-8",
				       keyfile_where(kf, e->line, w, sizeof(w)), e->key, g->name);
	}
	if (consumed)
		*consumed = i;
	*out = s;
	return 0;
}

static int lookup(struct keyfile *kf, const char *group, const char *key,
		  struct kf_group **gout, struct kf_entry **eout)
{
	struct kf_group *g = find_group(kf, group);
	struct kf_entry *e = find_entry(g, key);
	if (!e)
		return -ENOENT;
	*gout = g;
	*eout = e;
	return 0;
}

int keyfile_get_string(struct keyfile *kf, const char *group, const char *key,
		       const char **out, struct abota_error *err)
{
	struct kf_group *g;
	struct kf_entry *e;
	if (lookup(kf, group, key, &g, &e) < 0)
		return -ENOENT;
	if (!e->decoded) {
		int ret = unescape(kf, g, e, e->raw, strlen(e->raw), false, &e->decoded, NULL, err);
		if (ret < 0)
			return ret;
	}
	e->consumed = true;
	g->consumed = true;
	*out = e->decoded;
	return 0;
}

int keyfile_get_nonempty(struct keyfile *kf, const char *group, const char *key,
			 const char **out, struct abota_error *err)
{
	char w[4200]; /* where: "file:line" or "file (set by -C)" */
	const char *v;
	int ret = keyfile_get_string(kf, group, key, &v, err);
	if (ret < 0)
		return ret;
	if (v[0] == '\0')
		return abota_error_set(err, -EINVAL, "%s: missing value for key '%s' in group [%s]",
				       keyfile_where(kf, keyfile_key_line(kf, group, key), w, sizeof(w)),
				       key, group);
	*out = v;
	return 0;
}

int keyfile_get_u64(struct keyfile *kf, const char *group, const char *key, uint64_t *out,
		    struct abota_error *err)
{
	char w[4200]; /* where: "file:line" or "file (set by -C)" */
	const char *v;
	int ret = keyfile_get_string(kf, group, key, &v, err);
	if (ret < 0)
		return ret;
	uint64_t n = 0;
	bool ok = v[0] != '\0';
	for (const char *p = v; ok && *p; p++) {
		if (*p < '0' || *p > '9') {
			ok = false;
			break;
		}
		unsigned d = (unsigned)(*p - '0');
		if (n > (UINT64_MAX - d) / 10) {
			ok = false;
			break;
		}
		n = n * 10 + d;
	}
	if (!ok)
		return abota_error_set(err, -EINVAL,
				       "%s: key '%s' in group [%s]: '%s' is not an unsigned decimal number in range",
				       keyfile_where(kf, keyfile_key_line(kf, group, key), w, sizeof(w)),
				       key, group, v);
	*out = n;
	return 0;
}

int keyfile_get_bool(struct keyfile *kf, const char *group, const char *key, bool *out,
		     struct abota_error *err)
{
	char w[4200]; /* where: "file:line" or "file (set by -C)" */
	const char *v;
	int ret = keyfile_get_string(kf, group, key, &v, err);
	if (ret < 0)
		return ret;
	if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
		*out = true;
		return 0;
	}
	if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
		*out = false;
		return 0;
	}
	return abota_error_set(err, -EINVAL,
			       "%s: key '%s' in group [%s]: '%s' is not a boolean (true, false, 1 or 0)",
			       keyfile_where(kf, keyfile_key_line(kf, group, key), w, sizeof(w)), key,
			       group, v);
}

int keyfile_get_list(struct keyfile *kf, const char *group, const char *key,
		     const char *const **out, size_t *count, struct abota_error *err)
{
	struct kf_group *g;
	struct kf_entry *e;
	if (lookup(kf, group, key, &g, &e) < 0)
		return -ENOENT;
	if (!e->list) {
		size_t rlen = strlen(e->raw);
		/* At most one element per separator plus one. */
		size_t max = 2;
		for (size_t i = 0; i < rlen; i++)
			if (e->raw[i] == ';')
				max++;
		char **list = calloc(max, sizeof(char *));
		if (!list)
			return abota_error_set(err, -ENOMEM, "out of memory");
		size_t n = 0, i = 0;
		while (i < rlen) {
			size_t used = 0;
			char *item = NULL;
			int ret = unescape(kf, g, e, e->raw + i, rlen - i, true, &item, &used, err);
			if (ret < 0) {
				for (size_t k = 0; k < n; k++)
					free(list[k]);
				free(list);
				return ret;
			}
			list[n++] = item;
			i += used;
		}
		e->list = list;
		e->list_len = n;
	}
	e->consumed = true;
	g->consumed = true;
	*out = (const char *const *)e->list;
	if (count)
		*count = e->list_len;
	return 0;
}

int keyfile_check_consumed(const struct keyfile *kf, struct abota_error *err)
{
	char w[4200];
	for (size_t gi = 0; gi < kf->n_groups; gi++) {
		const struct kf_group *g = &kf->groups[gi];
		if (!g->consumed)
			return abota_error_set(err, -EINVAL, "%s: invalid group [%s]",
					       keyfile_where(kf, g->line, w, sizeof(w)), g->name);
		for (size_t i = 0; i < g->n_entries; i++)
			if (!g->entries[i].consumed)
				return abota_error_set(err, -EINVAL, "%s: invalid key '%s' in group [%s]",
						       keyfile_where(kf, g->entries[i].line, w,
								     sizeof(w)),
						       g->entries[i].key, g->name);
	}
	return 0;
}

/* Escapes a value as GLib does: leading space as \s, control characters and
 * backslashes; with list=true also `;`. */
static char *escape(const char *v, bool list)
{
	size_t len = strlen(v);
	char *s = malloc(len * 2 + 1);
	if (!s)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char c = v[i];
		if (c == ' ' && i == 0) {
			s[o++] = '\\';
			s[o++] = 's';
		} else if (c == '\n') {
			s[o++] = '\\';
			s[o++] = 'n';
		} else if (c == '\t') {
			s[o++] = '\\';
			s[o++] = 't';
		} else if (c == '\r') {
			s[o++] = '\\';
			s[o++] = 'r';
		} else if (c == '\\') {
			s[o++] = '\\';
			s[o++] = '\\';
		} else if (c == ';' && list) {
			s[o++] = '\\';
			s[o++] = ';';
		} else {
			s[o++] = c;
		}
	}
	s[o] = '\0';
	return s;
}

static int set_raw(struct keyfile *kf, const char *group, const char *key, char *raw)
{
	struct kf_group *g = find_group(kf, group);
	if (!g) {
		g = add_group(kf, group, strlen(group), 0);
		if (!g) {
			free(raw);
			return -ENOMEM;
		}
	}
	struct kf_entry *e = find_entry(g, key);
	if (e) {
		entry_clear_cache(e);
		free(e->raw);
		e->raw = raw;
		e->line = 0; /* the value no longer comes from the file */
		return 0;
	}
	e = add_entry(g, key, strlen(key), raw, strlen(raw), 0);
	free(raw);
	return e ? 0 : -ENOMEM;
}

int keyfile_set_string(struct keyfile *kf, const char *group, const char *key,
		       const char *value)
{
	char *raw = escape(value, false);
	if (!raw)
		return -ENOMEM;
	return set_raw(kf, group, key, raw);
}

int keyfile_set_u64(struct keyfile *kf, const char *group, const char *key, uint64_t value)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)value);
	return keyfile_set_string(kf, group, key, buf);
}

int keyfile_set_list(struct keyfile *kf, const char *group, const char *key,
		     const char *const *values, size_t count)
{
	size_t total = 1;
	char **parts = calloc(count ? count : 1, sizeof(char *));
	if (!parts)
		return -ENOMEM;
	int ret = 0;
	for (size_t i = 0; i < count; i++) {
		parts[i] = escape(values[i], true);
		if (!parts[i]) {
			ret = -ENOMEM;
			goto out;
		}
		total += strlen(parts[i]) + 1;
	}
	char *raw = malloc(total);
	if (!raw) {
		ret = -ENOMEM;
		goto out;
	}
	size_t o = 0;
	for (size_t i = 0; i < count; i++) {
		size_t l = strlen(parts[i]);
		memcpy(raw + o, parts[i], l);
		o += l;
		raw[o++] = ';';
	}
	raw[o] = '\0';
	ret = set_raw(kf, group, key, raw);
out:
	for (size_t i = 0; i < count; i++)
		free(parts[i]);
	free(parts);
	return ret;
}

int keyfile_remove_key(struct keyfile *kf, const char *group, const char *key)
{
	struct kf_group *g = find_group(kf, group);
	struct kf_entry *e = find_entry(g, key);
	if (!e)
		return -ENOENT;
	entry_clear_cache(e);
	free(e->key);
	free(e->raw);
	size_t idx = (size_t)(e - g->entries);
	memmove(e, e + 1, (g->n_entries - idx - 1) * sizeof(*e));
	g->n_entries--;
	return 0;
}

int keyfile_to_data(const struct keyfile *kf, char **out, size_t *len)
{
	size_t total = 1;
	for (size_t gi = 0; gi < kf->n_groups; gi++) {
		const struct kf_group *g = &kf->groups[gi];
		total += strlen(g->name) + 4;
		for (size_t i = 0; i < g->n_entries; i++)
			total += strlen(g->entries[i].key) + strlen(g->entries[i].raw) + 3;
	}
	char *s = malloc(total);
	if (!s)
		return -ENOMEM;
	size_t o = 0;
	for (size_t gi = 0; gi < kf->n_groups; gi++) {
		const struct kf_group *g = &kf->groups[gi];
		if (gi > 0)
			s[o++] = '\n';
		o += (size_t)sprintf(s + o, "[%s]\n", g->name);
		for (size_t i = 0; i < g->n_entries; i++) {
			/* A parsed raw value may end in a literal CR ("a\r\r\n" in
			 * the file); the parser takes one CR before the LF as a CRLF
			 * line end, so write one more to read the value back intact. */
			const char *raw = g->entries[i].raw;
			size_t rl = strlen(raw);
			o += (size_t)sprintf(s + o, "%s=%s%s\n", g->entries[i].key, raw,
					     rl && raw[rl - 1] == '\r' ? "\r" : "");
		}
	}
	s[o] = '\0';
	*out = s;
	*len = o;
	return 0;
}
