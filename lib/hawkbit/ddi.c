/* ddi.c - hawkBit DDI JSON in and out (see ddi.h). */
#include "abota/ddi.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#define DDI_JSON_DEPTH 16

/* Members of all objects in a parsed tree. */
static size_t count_members(json_object *o) /* NOLINT(misc-no-recursion): depth <= DDI_JSON_DEPTH (16), enforced by the tokenizer */
{
	size_t n = 0;
	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, v)
		{
			(void)k;
			n += 1 + count_members(v);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		size_t l = json_object_array_length(o);
		for (size_t i = 0; i < l; i++)
			n += count_members(json_object_array_get_idx(o, i));
	}
	return n;
}

/* Members in the text of a document json-c accepted: in valid JSON every
 * ':' outside a string separates one object member from its value. */
static size_t count_colons(const char *json, size_t len)
{
	size_t n = 0;
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		if (in_string) {
			if (json[i] == '\\')
				i++;
			else if (json[i] == '"')
				in_string = false;
		} else if (json[i] == '"') {
			in_string = true;
		} else if (json[i] == ':') {
			n++;
		}
	}
	return n;
}

/* Parses a complete JSON document (nothing but whitespace after it), valid
 * UTF-8, without duplicate keys: json-c keeps the last of two equal keys,
 * and which one a peer believes is anybody's guess -- so it is rejected. */
static int parse_json(const char *json, size_t len, json_object **out, struct abota_error *err)
{
	/* json-c takes an int length; REST bodies are capped far below
	 * (DDI_CLIENT_MAX_BODY), so this only guards the API */
	if (len > INT32_MAX)
		return abota_error_set(err, -EINVAL, "JSON body too large");
	json_tokener *tok = json_tokener_new_ex(DDI_JSON_DEPTH);
	if (!tok)
		return abota_error_set(err, -ENOMEM, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	json_object *o = json_tokener_parse_ex(tok, json, (int)len);
	enum json_tokener_error e = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!o || e != json_tokener_success) {
		json_object_put(o);
		return abota_error_set(err, -EINVAL, "malformed JSON: %s",
				       e == json_tokener_continue ? "unexpected end of input"
								  : json_tokener_error_desc(e));
	}
	for (size_t i = used; i < len; i++)
		if (!isspace((unsigned char)json[i])) {
			json_object_put(o);
			return abota_error_set(err, -EINVAL, "malformed JSON: data after the document");
		}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return abota_error_set(err, -EINVAL, "JSON body is not an object");
	}
	if (count_members(o) != count_colons(json, used)) {
		json_object_put(o);
		return abota_error_set(err, -EINVAL, "malformed JSON: duplicate keys in an object");
	}
	*out = o;
	return 0;
}

/* Member of an object; -ENOENT if absent or null (DDI omits fields rather
 * than sending null, but null is treated as absent to be lenient), -EINVAL
 * if of another type.  *out is set exactly when 0 is returned.
 *
 * These helpers return their error code as a constant after setting the
 * message (not abota_error_set()'s result): the parsers nest deeper than
 * clang's analyzer inlines (scripts/static-analysis.sh), and a constant lets
 * it see that a non-zero return never leaves an out-parameter unset. */
static int member(json_object *o, const char *path, const char *name, enum json_type type,
		  json_object **out, struct abota_error *err)
{
	json_object *m;
	if (!json_object_object_get_ex(o, name, &m) || !m)
		return -ENOENT;
	if (!json_object_is_type(m, type)) {
		static const char *const names[] = { "null", "boolean", "number", "number",
						     "object", "array", "string" };
		abota_error_set(err, -EINVAL, "%s%s%s: expected %s", path, *path ? "." : "", name,
				names[type]);
		return -EINVAL;
	}
	*out = m;
	return 0;
}

static int required(json_object *o, const char *path, const char *name, enum json_type type,
		    json_object **out, struct abota_error *err)
{
	int ret = member(o, path, name, type, out, err);
	if (ret == -ENOENT) {
		abota_error_set(err, -EINVAL, "%s%s%s: missing", path, *path ? "." : "", name);
		return -EINVAL;
	}
	return ret;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* A bounded string without control characters, duplicated. */
static int dup_string(json_object *s, const char *path, const char *name, size_t max,
		      char **out, struct abota_error *err)
{
	const char *v = json_object_get_string(s);
	/* json-c string lengths are ints >= 0 (the body is below 1 MiB) */
	size_t l = (size_t)json_object_get_string_len(s);
	if (l > max) {
		abota_error_set(err, -EINVAL, "%s.%s: longer than %zu characters", path, name, max);
		return -EINVAL;
	}
	if (strlen(v) != l || !printable(v)) {
		abota_error_set(err, -EINVAL, "%s.%s: contains control characters", path, name);
		return -EINVAL;
	}
	char *d = strdup(v);
	if (!d) {
		abota_error_set(err, -ENOMEM, "out of memory");
		return -ENOMEM;
	}
	*out = d;
	return 0;
}

static bool valid_href(const char *s)
{
	if (strncmp(s, "http://", 7) && strncmp(s, "https://", 8))
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* _links.<rel>.href of an object; *out stays NULL if the link is absent. */
static int link_href(json_object *links, const char *path, const char *rel, char **out,
		     struct abota_error *err)
{
	char p[256];
	json_object *l, *h;
	int ret = member(links, path, rel, json_type_object, &l, err);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	snprintf(p, sizeof(p), "%s.%s", path, rel);
	if ((ret = required(l, p, "href", json_type_string, &h, err)) < 0)
		return ret;
	char *v;
	if ((ret = dup_string(h, p, "href", DDI_MAX_HREF, &v, err)) < 0)
		return ret;
	if (!valid_href(v)) {
		free(v);
		return abota_error_set(err, -EINVAL, "%s.href: not an absolute http(s) URL", p);
	}
	*out = v;
	return 0;
}

bool ddi_parse_sleep(const char *s, uint64_t *seconds)
{
	if (!s)
		return false;
	size_t l = strlen(s);
	/* HH:MM:SS; hawkBit sends 00..23 hours, allow more for odd servers */
	if (l >= 8 && l <= 9 && s[l - 3] == ':' && s[l - 6] == ':') {
		unsigned v[3] = { 0 };
		const char *p = s;
		for (int i = 0; i < 3; i++) {
			size_t digits = i == 0 ? l - 6 : 2;
			for (size_t k = 0; k < digits; k++, p++) {
				if (!isdigit((unsigned char)*p))
					return false;
				/* a digit: 0..9; at most 3 digits per field */
				v[i] = v[i] * 10 + (unsigned)(*p - '0');
			}
			if (i < 2 && *p++ != ':')
				return false;
		}
		if (v[1] > 59 || v[2] > 59)
			return false;
		*seconds = (uint64_t)v[0] * 3600 + v[1] * 60 + v[2];
		return true;
	}
	/* ISO-8601 duration as java.time.Duration prints it: PT24H, P1DT2H,
	 * PT0.5S (fractions rounded down) */
	if (s[0] != 'P' || !s[1])
		return false;
	const char *p = s + 1;
	bool in_time = false, any = false;
	uint64_t total = 0;
	const char *order = "DHMS";
	const char *last = NULL;
	while (*p) {
		if (*p == 'T') {
			if (in_time || !p[1])
				return false;
			in_time = true;
			p++;
			continue;
		}
		if (!isdigit((unsigned char)*p))
			return false;
		uint64_t v = 0;
		int nd = 0;
		while (isdigit((unsigned char)*p)) {
			if (++nd > 9)
				return false;
			v = v * 10 + (uint64_t)(*p++ - '0'); /* a digit: 0..9 */
		}
		if (*p == '.') { /* fraction of seconds */
			p++;
			if (!isdigit((unsigned char)*p))
				return false;
			while (isdigit((unsigned char)*p))
				p++;
			if (*p != 'S')
				return false;
		}
		const char *u = strchr(order, *p);
		if (!*p || !u || (last && u <= last))
			return false;
		if ((*u == 'D') == in_time)
			return false; /* D before T, H/M/S after */
		static const uint64_t mult[] = { 86400, 3600, 60, 1 };
		total += v * mult[u - order];
		last = u;
		any = true;
		p++;
	}
	if (!any)
		return false;
	*seconds = total;
	return true;
}

bool ddi_valid_action_id(const char *s)
{
	size_t l = strlen(s);
	if (l == 0 || l > DDI_MAX_ACTION_ID)
		return false;
	for (size_t i = 0; i < l; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

bool ddi_href_action_id(const char *href, const char *resource, char id[DDI_MAX_ACTION_ID + 1])
{
	size_t hl = strcspn(href, "?#");
	size_t rl = strlen(resource);
	/* last two path segments: /<resource>/<id> */
	const char *end = href + hl;
	const char *slash = end;
	while (slash > href && slash[-1] != '/')
		slash--;
	/* slash walks back from end: end - slash >= 0 */
	if (slash == href || (size_t)(end - slash) > DDI_MAX_ACTION_ID || end == slash)
		return false;
	const char *prev = slash - 1;
	if ((size_t)(prev - href) < rl + 1 || strncmp(prev - rl, resource, rl) ||
	    *(prev - rl - 1) != '/')
		return false;
	char tmp[DDI_MAX_ACTION_ID + 1];
	memcpy(tmp, slash, (size_t)(end - slash));
	tmp[end - slash] = '\0';
	if (!ddi_valid_action_id(tmp))
		return false;
	memcpy(id, tmp, sizeof(tmp));
	return true;
}

void ddi_base_clear(struct ddi_base *b)
{
	free(b->deployment_href);
	free(b->cancel_href);
	free(b->config_data_href);
	free(b->installed_href);
	free(b->confirmation_href);
	memset(b, 0, sizeof(*b));
}

int ddi_parse_base(const char *json, size_t len, struct ddi_base *out, struct abota_error *err)
{
	json_object *root = NULL, *cfg, *polling, *sleep, *links;
	struct ddi_base b = { 0 };
	int ret = parse_json(json, len, &root, err);
	if (ret < 0)
		return ret;
	ret = member(root, "", "config", json_type_object, &cfg, err);
	if (ret == 0) {
		ret = member(cfg, "config", "polling", json_type_object, &polling, err);
		if (ret == 0) {
			ret = member(polling, "config.polling", "sleep", json_type_string, &sleep, err);
			if (ret == 0) {
				if (!ddi_parse_sleep(json_object_get_string(sleep), &b.sleep_s)) {
					ret = abota_error_set(err, -EINVAL,
							      "config.polling.sleep: '%.40s' is neither "
							      "HH:MM:SS nor an ISO-8601 duration",
							      json_object_get_string(sleep));
					goto out;
				}
				b.has_sleep = true;
			}
		}
	}
	if (ret < 0 && ret != -ENOENT)
		goto out;
	ret = member(root, "", "_links", json_type_object, &links, err);
	if (ret == -ENOENT) {
		ret = 0;
	} else if (ret == 0) {
		if ((ret = link_href(links, "_links", "deploymentBase", &b.deployment_href, err)) < 0 ||
		    (ret = link_href(links, "_links", "cancelAction", &b.cancel_href, err)) < 0 ||
		    (ret = link_href(links, "_links", "configData", &b.config_data_href, err)) < 0 ||
		    (ret = link_href(links, "_links", "installedBase", &b.installed_href, err)) < 0 ||
		    (ret = link_href(links, "_links", "confirmationBase", &b.confirmation_href,
				     err)) < 0)
			goto out;
	}
	if (ret < 0)
		goto out;
	*out = b;
	memset(&b, 0, sizeof(b));
out:
	ddi_base_clear(&b);
	json_object_put(root);
	return ret;
}

static int parse_enum(json_object *o, const char *path, const char *name,
		      const char *const *values, int *out, struct abota_error *err)
{
	json_object *m;
	int ret = member(o, path, name, json_type_string, &m, err);
	if (ret < 0)
		return ret;
	const char *v = json_object_get_string(m);
	for (int i = 0; values[i]; i++)
		if (!strcmp(v, values[i])) {
			*out = i + 1;
			return 0;
		}
	return abota_error_set(err, -EINVAL, "%s.%s: '%.40s' is not one of the allowed values",
			       path, name, v);
}

static int parse_hash(json_object *hashes, const char *path, const char *name, size_t hexlen,
		      char *out, bool *has, struct abota_error *err)
{
	json_object *m;
	int ret = member(hashes, path, name, json_type_string, &m, err);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	const char *v = json_object_get_string(m);
	/* json-c keeps strings with embedded NULs: both lengths must agree */
	bool ok = strlen(v) == hexlen && (size_t)json_object_get_string_len(m) == hexlen;
	for (size_t i = 0; ok && i < hexlen; i++)
		ok = isxdigit((unsigned char)v[i]) != 0;
	if (!ok) {
		abota_error_set(err, -EINVAL, "%s.%s: not %zu hex digits", path, name, hexlen);
		return -EINVAL;
	}
	/* tolower() of a hex digit is a hex digit: the cast back to char keeps it */
	for (size_t i = 0; i < hexlen; i++)
		out[i] = (char)tolower((unsigned char)v[i]);
	out[hexlen] = '\0';
	*has = true;
	return 0;
}

static int parse_artifact(json_object *o, const char *path, struct ddi_artifact *a,
			  struct abota_error *err)
{
	json_object *m, *hashes, *links;
	char p[256];
	int ret;
	if (!json_object_is_type(o, json_type_object))
		return abota_error_set(err, -EINVAL, "%s: expected object", path);
	if ((ret = required(o, path, "filename", json_type_string, &m, err)) < 0 ||
	    (ret = dup_string(m, path, "filename", 255, &a->filename, err)) < 0)
		return ret;
	/* the name becomes part of local messages only, but keep it a plain
	 * file name */
	if (!a->filename[0] || strchr(a->filename, '/') || !strcmp(a->filename, ".") ||
	    !strcmp(a->filename, ".."))
		return abota_error_set(err, -EINVAL, "%s.filename: not a plain file name", path);
	ret = member(o, path, "size", json_type_int, &m, err);
	if (ret == 0) {
		errno = 0;
		int64_t v = json_object_get_int64(m);
		if (v < 0 || errno == ERANGE || v == INT64_MAX)
			return abota_error_set(err, -EINVAL, "%s.size: out of range", path);
		a->size = (uint64_t)v; /* v >= 0 checked */
		a->has_size = true;
	} else if (ret != -ENOENT) {
		return ret;
	}
	ret = member(o, path, "hashes", json_type_object, &hashes, err);
	if (ret == 0) {
		snprintf(p, sizeof(p), "%s.hashes", path);
		if ((ret = parse_hash(hashes, p, "sha1", 40, a->sha1, &a->has_sha1, err)) < 0 ||
		    (ret = parse_hash(hashes, p, "md5", 32, a->md5, &a->has_md5, err)) < 0 ||
		    (ret = parse_hash(hashes, p, "sha256", 64, a->sha256, &a->has_sha256, err)) < 0)
			return ret;
	} else if (ret != -ENOENT) {
		return ret;
	}
	ret = member(o, path, "_links", json_type_object, &links, err);
	if (ret == 0) {
		snprintf(p, sizeof(p), "%s._links", path);
		if ((ret = link_href(links, p, "download", &a->download_href, err)) < 0 ||
		    (ret = link_href(links, p, "download-http", &a->download_http_href, err)) < 0)
			return ret;
	} else if (ret != -ENOENT) {
		return ret;
	}
	return 0;
}

static int parse_chunk(json_object *o, const char *path, struct ddi_chunk *c,
		       struct abota_error *err)
{
	json_object *m, *arts;
	int ret;
	if (!json_object_is_type(o, json_type_object))
		return abota_error_set(err, -EINVAL, "%s: expected object", path);
	if ((ret = required(o, path, "part", json_type_string, &m, err)) < 0 ||
	    (ret = dup_string(m, path, "part", 256, &c->part, err)) < 0 ||
	    (ret = required(o, path, "version", json_type_string, &m, err)) < 0 ||
	    (ret = dup_string(m, path, "version", 256, &c->version, err)) < 0 ||
	    (ret = required(o, path, "name", json_type_string, &m, err)) < 0 ||
	    (ret = dup_string(m, path, "name", 256, &c->name, err)) < 0)
		return ret;
	ret = member(o, path, "artifacts", json_type_array, &arts, err);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	size_t n = json_object_array_length(arts);
	if (n > DDI_MAX_ARTIFACTS)
		return abota_error_set(err, -EINVAL, "%s.artifacts: more than %d artifacts", path,
				       DDI_MAX_ARTIFACTS);
	if (n == 0)
		return 0;
	c->artifacts = calloc(n, sizeof(*c->artifacts));
	if (!c->artifacts)
		return abota_error_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		char p[192];
		snprintf(p, sizeof(p), "%s.artifacts[%zu]", path, i);
		c->nartifacts = i + 1;
		if ((ret = parse_artifact(json_object_array_get_idx(arts, i), p, &c->artifacts[i],
					  err)) < 0)
			return ret;
	}
	return 0;
}

void ddi_deployment_clear(struct ddi_deployment *d)
{
	/* the counts only grow with their arrays; checking the arrays as well
	 * keeps a half-built deployment (parse error midway) safe to clear */
	for (size_t i = 0; d->chunks && i < d->nchunks; i++) {
		struct ddi_chunk *c = &d->chunks[i];
		for (size_t j = 0; c->artifacts && j < c->nartifacts; j++) {
			free(c->artifacts[j].filename);
			free(c->artifacts[j].download_href);
			free(c->artifacts[j].download_http_href);
		}
		free(c->artifacts);
		free(c->part);
		free(c->version);
		free(c->name);
	}
	free(d->chunks);
	memset(d, 0, sizeof(*d));
}

/* The action id in string m, validated and copied into id (bounded: the
 * length is checked against the buffer, not only by ddi_valid_action_id). */
static int copy_action_id(json_object *m, const char *path, char id[DDI_MAX_ACTION_ID + 1],
			  struct abota_error *err)
{
	const char *v = json_object_get_string(m);
	size_t l = strlen(v);
	if (l != (size_t)json_object_get_string_len(m) || l > DDI_MAX_ACTION_ID ||
	    !ddi_valid_action_id(v)) {
		abota_error_set(err, -EINVAL, "%s: '%.40s' is not an action id", path, v);
		return -EINVAL;
	}
	memcpy(id, v, l + 1);
	return 0;
}

static int parse_id(json_object *root, char id[DDI_MAX_ACTION_ID + 1], struct abota_error *err)
{
	json_object *m;
	int ret = required(root, "", "id", json_type_string, &m, err);
	if (ret < 0)
		return ret;
	return copy_action_id(m, "id", id, err);
}

int ddi_parse_deployment(const char *json, size_t len, struct ddi_deployment *out,
			 struct abota_error *err)
{
	static const char *const handling[] = { "skip", "attempt", "forced", NULL };
	static const char *const window[] = { "available", "unavailable", NULL };
	json_object *root = NULL, *dep, *chunks;
	struct ddi_deployment d = { 0 };
	int ret = parse_json(json, len, &root, err);
	if (ret < 0)
		return ret;
	if ((ret = parse_id(root, d.id, err)) < 0 ||
	    (ret = required(root, "", "deployment", json_type_object, &dep, err)) < 0)
		goto out;
	int v = 0;
	ret = parse_enum(dep, "deployment", "download", handling, &v, err);
	if (ret < 0 && ret != -ENOENT)
		goto out;
	d.download = ret == -ENOENT ? DDI_HANDLING_NONE : (enum ddi_handling)v;
	ret = parse_enum(dep, "deployment", "update", handling, &v, err);
	if (ret < 0 && ret != -ENOENT)
		goto out;
	d.update = ret == -ENOENT ? DDI_HANDLING_NONE : (enum ddi_handling)v;
	ret = parse_enum(dep, "deployment", "maintenanceWindow", window, &v, err);
	if (ret < 0 && ret != -ENOENT)
		goto out;
	d.window = ret == -ENOENT ? DDI_WINDOW_NONE : (enum ddi_window)v;
	if ((ret = required(dep, "deployment", "chunks", json_type_array, &chunks, err)) < 0)
		goto out;
	size_t n = json_object_array_length(chunks);
	if (n > DDI_MAX_CHUNKS) {
		ret = abota_error_set(err, -EINVAL, "deployment.chunks: more than %d chunks",
				      DDI_MAX_CHUNKS);
		goto out;
	}
	if (n) {
		d.chunks = calloc(n, sizeof(*d.chunks));
		if (!d.chunks) {
			ret = abota_error_set(err, -ENOMEM, "out of memory");
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		char p[64];
		snprintf(p, sizeof(p), "deployment.chunks[%zu]", i);
		d.nchunks = i + 1;
		if ((ret = parse_chunk(json_object_array_get_idx(chunks, i), p, &d.chunks[i], err)) <
		    0)
			goto out;
	}
	ret = 0;
	*out = d;
	memset(&d, 0, sizeof(d));
out:
	ddi_deployment_clear(&d);
	json_object_put(root);
	return ret;
}

int ddi_parse_cancel(const char *json, size_t len, char stop_id[DDI_MAX_ACTION_ID + 1],
		     struct abota_error *err)
{
	json_object *root = NULL, *ca, *m;
	int ret = parse_json(json, len, &root, err);
	if (ret < 0)
		return ret;
	if ((ret = required(root, "", "cancelAction", json_type_object, &ca, err)) < 0 ||
	    (ret = required(ca, "cancelAction", "stopId", json_type_string, &m, err)) < 0)
		goto out;
	ret = copy_action_id(m, "cancelAction.stopId", stop_id, err);
out:
	json_object_put(root);
	return ret;
}

static bool one_of(const char *v, const char *const *values)
{
	for (; v && *values; values++)
		if (!strcmp(v, *values))
			return true;
	return false;
}

static char *to_string(json_object *o)
{
	if (!o)
		return NULL;
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE);
	char *d = s ? strdup(s) : NULL;
	json_object_put(o);
	return d;
}

char *ddi_build_feedback(const struct ddi_feedback *fb)
{
	static const char *const executions[] = { "closed",   "proceeding", "canceled",
						  "scheduled", "rejected",  "resumed",
						  "downloaded", "download",  NULL };
	static const char *const finished[] = { "success", "failure", "none", NULL };
	if (!one_of(fb->execution, executions) || !one_of(fb->finished, finished))
		return NULL;
	/* progress goes out as JSON ints: cnt <= of <= INT32_MAX keeps the casts exact */
	if (fb->progress_of > INT32_MAX || fb->progress_cnt > fb->progress_of)
		return NULL;
	json_object *root = json_object_new_object();
	json_object *status = json_object_new_object();
	json_object *result = json_object_new_object();
	json_object_object_add(result, "finished", json_object_new_string(fb->finished));
	if (fb->progress_of) {
		json_object *p = json_object_new_object();
		json_object_object_add(p, "cnt", json_object_new_int((int)fb->progress_cnt));
		json_object_object_add(p, "of", json_object_new_int((int)fb->progress_of));
		json_object_object_add(result, "progress", p);
	}
	json_object_object_add(status, "execution", json_object_new_string(fb->execution));
	json_object_object_add(status, "result", result);
	if (fb->has_code)
		json_object_object_add(status, "code", json_object_new_int(fb->code));
	json_object *details = json_object_new_array();
	for (size_t i = 0; i < fb->ndetails && i < DDI_MAX_DETAILS; i++)
		json_object_array_add(details, json_object_new_string(fb->details[i]));
	json_object_object_add(status, "details", details);
	json_object_object_add(root, "status", status);
	if (fb->timestamp_ms > 0)
		json_object_object_add(root, "timestamp", json_object_new_int64(fb->timestamp_ms));
	return to_string(root);
}

char *ddi_build_config_data(const struct hawkbit_attribute *attrs, size_t n, const char *mode)
{
	static const char *const modes[] = { "merge", "replace", "remove", NULL };
	if (mode && !one_of(mode, modes))
		return NULL;
	json_object *root = json_object_new_object();
	json_object *data = json_object_new_object();
	for (size_t i = 0; i < n; i++)
		json_object_object_add(data, attrs[i].key, json_object_new_string(attrs[i].value));
	json_object_object_add(root, "data", data);
	if (mode)
		json_object_object_add(root, "mode", json_object_new_string(mode));
	return to_string(root);
}

char *ddi_build_installed_base(const char *name, const char *version)
{
	if (!name || !version)
		return NULL;
	json_object *root = json_object_new_object();
	json_object_object_add(root, "name", json_object_new_string(name));
	json_object_object_add(root, "version", json_object_new_string(version));
	return to_string(root);
}

char *ddi_build_confirmation(const char *confirmation, int code, const char *detail)
{
	static const char *const values[] = { "confirmed", "denied", NULL };
	if (!one_of(confirmation, values))
		return NULL;
	json_object *root = json_object_new_object();
	json_object_object_add(root, "confirmation", json_object_new_string(confirmation));
	json_object_object_add(root, "code", json_object_new_int(code));
	json_object *details = json_object_new_array();
	if (detail)
		json_object_array_add(details, json_object_new_string(detail));
	json_object_object_add(root, "details", details);
	return to_string(root);
}
