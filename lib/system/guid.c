/* guid.c - GUID text <-> EFI byte order. */
#include "abota/guid.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define G(a, b, c, d0, d1, d2, d3, d4, d5, d6, d7)                                                \
	{ { (uint8_t)(a), (uint8_t)((a) >> 8), (uint8_t)((a) >> 16), (uint8_t)((uint32_t)(a) >> 24), \
	    (uint8_t)(b), (uint8_t)((b) >> 8), (uint8_t)(c), (uint8_t)((c) >> 8), d0, d1, d2, d3,   \
	    d4, d5, d6, d7 } }

const struct guid GUID_FWU_METADATA_TYPE =
	G(0x8a7a84a0, 0x8387, 0x40f6, 0xab, 0x41, 0xa8, 0xb9, 0xa5, 0xa6, 0x0d, 0x23);
const struct guid GUID_FWU_METADATA1_UUID =
	G(0x5f91c128, 0xe120, 0x48d7, 0xbb, 0x64, 0x9f, 0xa9, 0xae, 0xd4, 0xc7, 0xe3);
const struct guid GUID_FWU_METADATA2_UUID =
	G(0xf469f981, 0x5985, 0x4206, 0x8f, 0xb3, 0x83, 0x99, 0x56, 0x03, 0x5a, 0x65);
const struct guid GUID_ST_FIP_TYPE =
	G(0x19d5df83, 0x11b0, 0x457b, 0xbe, 0x2c, 0x75, 0x59, 0xc1, 0x31, 0x42, 0xa5);
const struct guid GUID_ST_FIP_A_UUID =
	G(0x4fd84c93, 0x54ef, 0x463f, 0xa7, 0xef, 0xae, 0x25, 0xff, 0x88, 0x70, 0x87);
const struct guid GUID_ST_FIP_B_UUID =
	G(0x09c54952, 0xd5bf, 0x45af, 0xac, 0xee, 0x33, 0x53, 0x03, 0x76, 0x6f, 0xb3);

/* Text position of each byte of the big-endian (RFC 4122) form. */
static const int text_pos[16] = { 0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34 };
/* EFI byte index of each RFC 4122 byte. */
static const int efi_index[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int guid_parse(const char *s, struct guid *out, struct abota_error *err)
{
	struct guid g;
	if (!s || strlen(s) != GUID_STR_LEN || s[8] != '-' || s[13] != '-' || s[18] != '-' ||
	    s[23] != '-')
		goto bad;
	for (int i = 0; i < 16; i++) {
		int hi = hexval(s[text_pos[i]]), lo = hexval(s[text_pos[i] + 1]);
		if (hi < 0 || lo < 0)
			goto bad;
		g.b[efi_index[i]] = (uint8_t)(hi << 4 | lo);
	}
	*out = g;
	return 0;
bad:
	return abota_error_set(err, -EINVAL,
			       "invalid GUID '%.64s' (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
			       s ? s : "");
}

char *guid_format(const struct guid *g, char *buf)
{
	char *p = buf;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		p += sprintf(p, "%02x", g->b[efi_index[i]]);
	}
	*p = '\0';
	return buf;
}

bool guid_equal(const struct guid *a, const struct guid *b)
{
	return memcmp(a->b, b->b, sizeof(a->b)) == 0;
}

bool guid_is_zero(const struct guid *g)
{
	static const struct guid zero;
	return guid_equal(g, &zero);
}

void guid_swap_rfc4122(const struct guid *in, struct guid *out)
{
	struct guid t;
	for (int i = 0; i < 16; i++)
		t.b[i] = in->b[efi_index[i]];
	*out = t;
}
