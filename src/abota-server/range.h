/* range.h - HTTP Range header parsing for artifact downloads (RFC 7233).
 *
 * Only the "bytes" unit.  Forms: a-b, a-, -n (suffix), comma-separated.
 * Like hawkBit, a range the server cannot satisfy (start beyond the end),
 * a syntactically invalid header and overlapping or unordered multi-ranges
 * are all answered with 416, so the parser only says "ok" or "no".
 */
#ifndef ABOTA_SERVER_RANGE_H
#define ABOTA_SERVER_RANGE_H

#include <stddef.h>
#include <stdint.h>

/* More ranges than this in one header are refused (a DoS guard: each range
 * costs a multipart header and a seek). */
#define RANGE_MAX 16

struct byte_range {
	uint64_t first, last; /* inclusive, last < size */
};

/* Parses hdr against a resource of `size` bytes.  Returns the number of
 * ranges (>= 1) written to out, or -1 when the header must be answered with
 * 416 (invalid, unsatisfiable, overlapping, unordered or too many). */
int range_parse(const char *hdr, uint64_t size, struct byte_range out[RANGE_MAX]);

#endif
