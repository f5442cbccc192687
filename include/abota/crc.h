/* crc.h - CRC-32 (the zlib/gzip one) of data and of runs of zeros.
 *
 * The slot writer checks what it reads back against the CRC-32 of what it
 * wrote.  A quarter of a typical rootfs image is zeros (ext4 free space),
 * which the writer zeroes without writing and a file slot then holds as
 * unwritten extents: their CRC is computed here from their length alone
 * (O(log n), no bytes touched) instead of over buffers of zeros. */
#ifndef ABOTA_CRC_H
#define ABOTA_CRC_H

#include <stddef.h>
#include <stdint.h>

/* The CRC of the bytes so far (0 to start), continued with buf. */
uint32_t crc_update(uint32_t crc, const void *buf, size_t len);
/* The same, continued with n zero bytes. */
uint32_t crc_zeros(uint32_t crc, uint64_t n);

#endif
