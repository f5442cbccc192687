/* test_crc.c - crc_zeros() gives what crc_update() gives over real zero
 * bytes, for every length class the slot writer meets (none, one byte,
 * odd, a page, a segment, beyond 4 GiB in its bit pattern), and continues
 * a CRC of data as the bytes would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "abota/crc.h"

static void test_zeros_match_bytes(void **state)
{
	(void)state;
	static const size_t lens[] = { 0, 1, 2, 3, 7, 8, 63, 64, 255, 4096, 4097, 65536, 131071,
				       1u << 20, (32u << 20) + 12345 };
	uint8_t *zeros = calloc(1, (32u << 20) + 12345);
	assert_non_null(zeros);
	static const uint32_t starts[] = { 0, 0xFFFFFFFFu, 0x12345678u, 0xCBF43926u };
	for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			uint32_t want = crc_update(starts[s], zeros, lens[i]);
			assert_int_equal(crc_zeros(starts[s], lens[i]), want);
		}
	}
	free(zeros);
}

static void test_continues_data(void **state)
{
	(void)state;
	/* "123456789" is the CRC-32 check string: 0xCBF43926 */
	assert_int_equal(crc_update(0, "123456789", 9), 0xCBF43926u);
	uint8_t buf[9 + 5000 + 3] = { 0 };
	memcpy(buf, "123456789", 9);
	buf[9 + 5000] = 'a';
	buf[9 + 5001] = 'b';
	buf[9 + 5002] = 'c';
	uint32_t c = crc_update(0, buf, 9);
	c = crc_zeros(c, 5000);
	c = crc_update(c, buf + 9 + 5000, 3);
	assert_int_equal(c, crc_update(0, buf, sizeof(buf)));
	/* zeros split anywhere add up */
	assert_int_equal(crc_zeros(crc_zeros(c, 1000), 24), crc_zeros(c, 1024));
}

static void test_large_counts(void **state)
{
	(void)state;
	/* lengths past 32 bits: composed from the same operator */
	uint64_t big = (5ull << 32) + 77;
	uint32_t a = crc_zeros(0x1234u, big);
	uint32_t b = crc_zeros(crc_zeros(0x1234u, 5ull << 32), 77);
	assert_int_equal(a, b);
	uint32_t c = 0x1234u;
	for (int i = 0; i < 5; i++)
		c = crc_zeros(c, 1ull << 32);
	assert_int_equal(crc_zeros(c, 77), a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zeros_match_bytes),
		cmocka_unit_test(test_continues_data),
		cmocka_unit_test(test_large_counts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
