/* multipart.h - the boundary of a multipart/form-data upload (RFC 2046 §5.1.1,
 * RFC 7578), checked before libmicrohttpd's post processor sees the body.
 *
 * libmicrohttpd takes everything after the first "boundary=" of the
 * Content-Type as the boundary and only refuses one shorter than 2 bytes or
 * longer than half its buffer; it also accepts urlencoded forms.  A boundary
 * that does not follow the RFC (too long, a parameter after it, an empty
 * quoted string, characters outside the RFC's set) would then be searched
 * for in the body under rules the client did not mean, so such a header is
 * refused here with the reason (security case SC-46).
 */
#ifndef ABOTA_SERVER_MULTIPART_H
#define ABOTA_SERVER_MULTIPART_H

#include <stddef.h>

/* The RFC's limit is 1 to 70; libmicrohttpd needs at least 2. */
#define MULTIPART_BOUNDARY_MIN 2
#define MULTIPART_BOUNDARY_MAX 70

/* Checks a Content-Type header (NULL = absent) for multipart/form-data with a
 * valid boundary as its last parameter.  0 and the boundary (without quotes)
 * in out[MULTIPART_BOUNDARY_MAX + 1]; -EINVAL with the reason in why. */
int multipart_boundary(const char *content_type, char out[MULTIPART_BOUNDARY_MAX + 1],
		       char *why, size_t why_size);

#endif
