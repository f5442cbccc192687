/* fuzz_server_range.c - range_parse, abota-server's parser of the Range
 * header of artifact downloads.  Besides memory safety it checks what an
 * accepted header yields: 1..RANGE_MAX ranges inside the entity, ascending
 * and not overlapping (so a multipart body can never be asked for bytes
 * twice or outside the file). */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 8)
		return 0;
	/* the first 8 bytes choose the entity size, the rest is the header */
	uint64_t esize;
	memcpy(&esize, data, 8);
	esize %= UINT64_C(1) << 40;
	char *hdr = strndup((const char *)data + 8, size - 8);
	if (!hdr)
		return 0;
	struct byte_range r[RANGE_MAX];
	int n = range_parse(hdr, esize, r);
	FUZZ_CHECK(n == -1 || (n >= 1 && n <= RANGE_MAX));
	for (int i = 0; i < n; i++) {
		FUZZ_CHECK(r[i].first <= r[i].last && r[i].last < esize);
		if (i > 0)
			FUZZ_CHECK(r[i].first > r[i - 1].last);
	}
	free(hdr);
	return 0;
}
