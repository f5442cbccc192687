/* version.c - version comparison for min-bundle-version and downgrades. */
#include "abota/version.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>

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
		if (*pre_len == 0)
			return false;
		return true;
	}
	return *p == '\0' || *p == '+';
}

bool version_compare(const char *a, const char *b, int *cmp)
{
	uint64_t fa[8] = { 0 }, fb[8] = { 0 };
	int na, nb;
	const char *pa, *pb;
	size_t la, lb;
	if (!a || !b || !parse(a, fa, &na, &pa, &la) || !parse(b, fb, &nb, &pb, &lb))
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
