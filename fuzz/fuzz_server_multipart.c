/* fuzz_server_multipart.c - multipart_boundary, abota-server's check of an
 * upload's Content-Type (SC-46).  Besides memory safety: an accepted
 * boundary is 2..70 characters of RFC 2046's set, never ends in a space,
 * and is a substring of the header (nothing made up, no wrap when quotes
 * are stripped). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *ct = strndup((const char *)data, size);
	if (!ct)
		return 0;
	char out[MULTIPART_BOUNDARY_MAX + 1], why[160];
	int ret = multipart_boundary(ct, out, why, sizeof(why));
	FUZZ_CHECK(ret == 0 || ret == -EINVAL);
	if (ret == 0) {
		size_t n = strlen(out);
		FUZZ_CHECK(n >= MULTIPART_BOUNDARY_MIN && n <= MULTIPART_BOUNDARY_MAX);
		FUZZ_CHECK(out[n - 1] != ' ');
		FUZZ_CHECK(strspn(out, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "0123456789'()+_,-./:=? ") == n);
		FUZZ_CHECK(strstr(ct, out) != NULL);
	}
	free(ct);
	return 0;
}
