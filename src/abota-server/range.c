/* range.c - HTTP Range header parsing (see range.h). */
#include "range.h"

#include <stdbool.h>
#include <string.h>

static void skip_ows(const char **p)
{
	while (**p == ' ' || **p == '\t')
		(*p)++;
}

/* Reads a decimal number; false on no digits or overflow. */
static bool read_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	if (*s < '0' || *s > '9')
		return false;
	while (*s >= '0' && *s <= '9') {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
		s++;
	}
	*p = s;
	*out = v;
	return true;
}

int range_parse(const char *hdr, uint64_t size, struct byte_range out[RANGE_MAX])
{
	const char *p = hdr;
	int n = 0;
	skip_ows(&p);
	if (strncmp(p, "bytes=", 6) != 0)
		return -1;
	p += 6;
	for (;;) {
		struct byte_range r;
		uint64_t a, b;
		skip_ows(&p);
		if (*p == '-') {
			p++;
			if (!read_u64(&p, &b) || b == 0 || size == 0)
				return -1;
			r.first = b >= size ? 0 : size - b;
			r.last = size - 1;
		} else {
			if (!read_u64(&p, &a) || *p != '-')
				return -1;
			p++;
			if (*p >= '0' && *p <= '9') {
				if (!read_u64(&p, &b) || b < a)
					return -1;
			} else {
				b = UINT64_MAX;
			}
			if (a >= size)
				return -1;
			r.first = a;
			r.last = b >= size ? size - 1 : b;
		}
		if (n == RANGE_MAX)
			return -1;
		/* hawkBit refuses overlapping and unordered ranges; so do we */
		if (n > 0 && r.first <= out[n - 1].last)
			return -1;
		out[n++] = r;
		skip_ows(&p);
		if (*p == '\0')
			return n;
		if (*p != ',')
			return -1;
		p++;
	}
}
