/* multipart.c - multipart/form-data boundary check (see multipart.h). */
#include "multipart.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int fail(char *why, size_t n, const char *msg)
{
	snprintf(why, n, "%s", msg);
	return -EINVAL;
}

/* bchars of RFC 2046 (a space only inside, not last).  Unquoted, the value
 * is an RFC 2045 token, which leaves out the space and the tspecials. */
static bool bchar(char c, bool quoted)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr(quoted ? "'()+_,-./:=? " : "'+_-.", c) != NULL;
}

int multipart_boundary(const char *ct, char out[MULTIPART_BOUNDARY_MAX + 1], char *why,
		       size_t why_size)
{
	static const char type[] = "multipart/form-data";
	const size_t tl = sizeof(type) - 1;
	if (!ct)
		return fail(why, why_size, "no Content-Type (multipart/form-data expected)");
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, type, tl) != 0 || (ct[tl] && ct[tl] != ';' && ct[tl] != ' ' &&
					       ct[tl] != '\t'))
		return fail(why, why_size, "Content-Type is not multipart/form-data");
	/* the same parameter libmicrohttpd will use: the first "boundary=" */
	const char *b = strstr(ct + tl, "boundary=");
	if (!b)
		return fail(why, why_size, "multipart/form-data without a boundary parameter");
	/* it must be a parameter of its own, not the tail of another one */
	const char *q = b;
	while (q > ct + tl && (q[-1] == ' ' || q[-1] == '\t'))
		q--;
	if (q[-1] != ';')
		return fail(why, why_size, "boundary is not a parameter of its own");
	b += 9;
	/* the length is only ever compared, never subtracted from, before the
	 * quotes are known to be there (no size_t wrap on short values) */
	size_t n = strlen(b);
	bool quoted = n >= 2 && b[0] == '"' && b[n - 1] == '"';
	if (quoted) {
		b++;
		n -= 2;
	} else if (n && (b[0] == '"' || b[n - 1] == '"')) {
		return fail(why, why_size, "boundary: unbalanced quotes");
	}
	if (n < MULTIPART_BOUNDARY_MIN || n > MULTIPART_BOUNDARY_MAX) {
		snprintf(why, why_size, "boundary: %zu characters (%d to %d allowed)", n,
			 MULTIPART_BOUNDARY_MIN, MULTIPART_BOUNDARY_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		if (!bchar(b[i], quoted))
			return fail(why, why_size,
				    quoted ? "boundary: only letters, digits and '()+_,-./:=? "
					     "(RFC 2046)"
					   : "boundary: only letters, digits and '+_-. unless quoted, "
					     "and it must be the last parameter");
	if (b[n - 1] == ' ')
		return fail(why, why_size, "boundary: ends with a space");
	memcpy(out, b, n);
	out[n] = '\0';
	return 0;
}
