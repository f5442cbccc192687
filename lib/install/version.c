/* version.c - version comparison for min-bundle-version and downgrades,
 * and the persisted version floor (version.h). */
#include "abota/version.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abota/fileio.h"

/* SemVer identifiers: pre-release and build metadata are dot-separated
 * [0-9A-Za-z-]; anything else (spaces, control bytes, '/') is not a
 * version, so it cannot sort somewhere surprising. */
static bool ident_chars(const char *s, size_t len)
{
	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && c != '-' && c != '.')
			return false;
		if (c == '.' && s[i + 1] == '.')
			return false;
	}
	return true;
}

/* Parses up to 8 numeric fields; *pre points at the pre-release (after '-')
 * or NULL.  Build metadata ('+...') is ignored, as SemVer says. */
static bool parse(const char *s, uint64_t f[8], int *n, const char **pre, size_t *pre_len)
{
	*n = 0;
	*pre = NULL;
	*pre_len = 0;
	const char *p = s;
	while (*n < 8) {
		if (!isdigit((unsigned char)*p))
			return false;
		uint64_t v = 0;
		while (isdigit((unsigned char)*p)) {
			if (v > (UINT64_MAX - 9) / 10)
				return false;
			v = v * 10 + (uint64_t)(*p - '0');
			p++;
		}
		f[(*n)++] = v;
		if (*p != '.')
			break;
		p++;
	}
	if (*p == '-') {
		*pre = p + 1;
		const char *plus = strchr(*pre, '+');
		*pre_len = plus ? (size_t)(plus - *pre) : strlen(*pre);
		if (!ident_chars(*pre, *pre_len))
			return false;
		p = *pre + *pre_len;
	}
	if (*p == '+')
		return ident_chars(p + 1, strlen(p + 1));
	return *p == '\0';
}

bool version_compare(const char *a, const char *b, int *cmp)
{
	uint64_t fa[8] = { 0 }, fb[8] = { 0 };
	int na, nb;
	const char *pa, *pb;
	size_t la, lb;
	if (!a || !b || strnlen(a, VERSION_MAX_LEN + 1) > VERSION_MAX_LEN ||
	    strnlen(b, VERSION_MAX_LEN + 1) > VERSION_MAX_LEN || !parse(a, fa, &na, &pa, &la) ||
	    !parse(b, fb, &nb, &pb, &lb))
		return false;
	int n = na > nb ? na : nb;
	for (int i = 0; i < n; i++) {
		if (fa[i] != fb[i]) {
			*cmp = fa[i] < fb[i] ? -1 : 1;
			return true;
		}
	}
	/* A pre-release sorts before the release; two pre-releases compare as
	 * strings (good enough for rc1 < rc2; SemVer's field rules are finer). */
	if (!pa || !pb) {
		*cmp = (!pa && !pb) ? 0 : (pa ? -1 : 1);
		return true;
	}
	size_t l = la < lb ? la : lb;
	int c = strncmp(pa, pb, l);
	*cmp = c != 0 ? (c < 0 ? -1 : 1) : (la == lb ? 0 : (la < lb ? -1 : 1));
	return true;
}

int version_floor_load(const char *path, char **floor, struct abota_error *err)
{
	char *data = NULL;
	size_t len = 0;
	struct abota_error e = { 0 };
	int ret = fileio_read_all(path, VERSION_MAX_LEN + 2, &data, &len, &e);
	if (ret == -ENOENT) {
		*floor = NULL;
		return 0;
	}
	if (ret < 0)
		return abota_error_set(err, ret, "version floor %s: %s", path, e.msg);
	if (len > 0 && data[len - 1] == '\n')
		data[--len] = '\0';
	int cmp;
	if (strlen(data) != len || !version_compare(data, data, &cmp)) {
		ret = abota_error_set(err, -EINVAL,
				      "version floor %s: not a version (expected one line such as "
				      "1.2.3; remove the file to reset the floor)",
				      path);
		free(data);
		return ret;
	}
	*floor = data;
	return 0;
}

int version_floor_raise(const char *path, const char *version, bool *raised,
			struct abota_error *err)
{
	char *cur = NULL;
	char line[VERSION_MAX_LEN + 2];
	int cmp = 1, self;
	int ret;
	if (!version || !version_compare(version, version, &self))
		return abota_error_set(err, -EINVAL, "version floor %s: '%s' is not a version",
				       path, version ? version : "(none)");
	if ((ret = version_floor_load(path, &cur, err)) < 0)
		return ret;
	if (cur)
		(void)version_compare(version, cur, &cmp);
	free(cur);
	if (cmp <= 0) {
		if (raised)
			*raised = false;
		return 0;
	}
	int n = snprintf(line, sizeof(line), "%s\n", version);
	ret = fileio_write_atomic_device(path, line, (size_t)n, 0644, err);
	if (ret < 0)
		return ret;
	if (raised)
		*raised = true;
	return 0;
}
