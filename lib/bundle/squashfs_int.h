/* squashfs_int.h - helpers shared by the squashfs writer and reader. */
#ifndef ABOTA_SQUASHFS_INT_H
#define ABOTA_SQUASHFS_INT_H

#include <stdint.h>

#include <sqfs/compressor.h>
#include <sqfs/error.h>

/* Human-readable text for a libsquashfs SQFS_ERROR code. */
const char *squashfs_sqfs_strerror(int code);

/* Maps a libsquashfs SQFS_ERROR code to a negative errno-style code. */
int squashfs_sqfs_errno(int code);

/* Compressor id <-> name for the compressors we support; 0 / NULL if not. */
int squashfs_compressor_id(const char *name);
const char *squashfs_compressor_name(int id);

/* Little-endian decoding of on-disk fields (squashfs is little-endian). */
static inline uint16_t sq_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t sq_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static inline uint64_t sq_le64(const uint8_t *p)
{
	return (uint64_t)sq_le32(p) | ((uint64_t)sq_le32(p + 4) << 32);
}

#endif
