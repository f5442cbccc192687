/* fuzz_http_range.c - http_parse_content_range, the parser of the
 * Content-Range header of every HTTP range response.  Besides memory
 * safety it checks the grammar: anything accepted is exactly
 * "bytes START-END/TOTAL" in plain decimal with START <= END < TOTAL. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "abota/http_source.h"
#include "fuzz_common.h"

/* Reference grammar: 1*DIGIT, no sign, no spaces, no overflow. */
static const char *ref_num(const char *p, uint64_t *v)
{
	if (*p < '0' || *p > '9')
		return NULL;
	uint64_t x = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (x > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return NULL;
		x = x * 10 + (uint64_t)(*p - '0');
	}
	*v = x;
	return p;
}

static bool ref_parse(const char *s, uint64_t *a, uint64_t *b, uint64_t *t)
{
	if (strncmp(s, "bytes ", 6) != 0)
		return false;
	const char *p = ref_num(s + 6, a);
	if (!p || *p++ != '-')
		return false;
	p = ref_num(p, b);
	if (!p || *p++ != '/')
		return false;
	p = ref_num(p, t);
	return p && *p == '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 256)
		return 0;
	char s[257];
	memcpy(s, data, size);
	s[size] = '\0';
	uint64_t a = 0, b = 0, t = 0;
	if (!http_parse_content_range(s, &a, &b, &t))
		return 0;
	FUZZ_CHECK(a <= b && b < t);
	uint64_t ra, rb, rt;
	if (!ref_parse(s, &ra, &rb, &rt) || ra != a || rb != b || rt != t) {
		fprintf(stderr, "accepted malformed Content-Range '%s' as %" PRIu64 "-%" PRIu64
				"/%" PRIu64 "\n", s, a, b, t);
		abort();
	}
	return 0;
}
