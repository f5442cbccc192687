/* crc.c - CRC-32 of data and of runs of zeros (see crc.h). */
#include "abota/crc.h"

#include <libdeflate.h>

/* The CRC-32 polynomial, bit-reversed: in this representation bit 31 is
 * the coefficient of x^0 and bit 0 that of x^31. */
#define POLY 0xEDB88320u
#define X0 0x80000000u /* the polynomial 1 */

uint32_t crc_update(uint32_t crc, const void *buf, size_t len)
{
	return (uint32_t)libdeflate_crc32(crc, buf, len);
}

/* a * b mod P over GF(2), both bit-reversed. */
static uint32_t gf2_mulmod(uint32_t a, uint32_t b)
{
	uint32_t p = 0;
	for (unsigned i = 0; i < 32; i++) {
		if (a & (X0 >> i))
			p ^= b;
		/* b *= x: shift towards x^31; an x^32 term folds back as P */
		b = (b & 1u) ? (b >> 1) ^ POLY : b >> 1;
	}
	return p;
}

uint32_t crc_zeros(uint32_t crc, uint64_t n)
{
	/* Feeding a zero byte multiplies the CRC register by x^8 mod P (the
	 * register is the CRC before its final inversion), so n zero bytes
	 * multiply it by x^(8n): square-and-multiply over the bits of n. */
	uint32_t f = X0;          /* x^0 */
	uint32_t sq = X0 >> 8;    /* x^8, then x^16, x^32, ... */
	for (; n; n >>= 1) {
		if (n & 1u)
			f = gf2_mulmod(f, sq);
		sq = gf2_mulmod(sq, sq);
	}
	return ~gf2_mulmod(f, ~crc);
}
