/* squashfs_common.c - helpers shared by the squashfs writer and reader. */
#include "bundle/squashfs_int.h"

#include <errno.h>
#include <string.h>

const char *squashfs_sqfs_strerror(int code)
{
	switch (code) {
	case 0:
		return "success";
	case SQFS_ERROR_ALLOC:
		return "out of memory";
	case SQFS_ERROR_IO:
		return "I/O error";
	case SQFS_ERROR_COMPRESSOR:
		return "compressor error (corrupt compressed data)";
	case SQFS_ERROR_INTERNAL:
		return "internal error";
	case SQFS_ERROR_CORRUPTED:
		return "corrupted data structure";
	case SQFS_ERROR_UNSUPPORTED:
		return "unsupported feature";
	case SQFS_ERROR_OVERFLOW:
		return "size overflow";
	case SQFS_ERROR_OUT_OF_BOUNDS:
		return "reference outside its table";
	case SFQS_ERROR_SUPER_MAGIC:
		return "bad magic";
	case SFQS_ERROR_SUPER_VERSION:
		return "unsupported version";
	case SQFS_ERROR_SUPER_BLOCK_SIZE:
		return "bad block size";
	case SQFS_ERROR_NOT_DIR:
		return "not a directory";
	case SQFS_ERROR_NO_ENTRY:
		return "no such entry";
	case SQFS_ERROR_LINK_LOOP:
		return "link loop";
	case SQFS_ERROR_NOT_FILE:
		return "not a regular file";
	case SQFS_ERROR_ARG_INVALID:
		return "invalid argument";
	case SQFS_ERROR_SEQUENCE:
		return "calls out of sequence";
	default:
		return "unknown libsquashfs error";
	}
}

int squashfs_sqfs_errno(int code)
{
	switch (code) {
	case SQFS_ERROR_ALLOC:
		return -ENOMEM;
	case SQFS_ERROR_IO:
		return -EIO;
	case SQFS_ERROR_UNSUPPORTED:
		return -ENOTSUP;
	case SQFS_ERROR_NOT_DIR:
		return -ENOTDIR;
	case SQFS_ERROR_NO_ENTRY:
		return -ENOENT;
	case SQFS_ERROR_ARG_INVALID:
	case SQFS_ERROR_SEQUENCE:
	case SQFS_ERROR_INTERNAL:
		return -EINVAL;
	default:
		/* Everything else means the image content does not make sense. */
		return -EBADMSG;
	}
}

/* lzma (id 2) is left out on purpose: the kernel cannot mount it and
 * squashfs-tools dropped writing it long ago; lzo is not in libsquashfs. */
static const struct {
	int id;
	const char *name;
} compressors[] = {
	{ SQFS_COMP_GZIP, "gzip" },
	{ SQFS_COMP_XZ, "xz" },
	{ SQFS_COMP_LZ4, "lz4" },
	{ SQFS_COMP_ZSTD, "zstd" },
};

int squashfs_compressor_id(const char *name)
{
	for (size_t i = 0; i < sizeof(compressors) / sizeof(compressors[0]); i++)
		if (strcmp(compressors[i].name, name) == 0)
			return compressors[i].id;
	return 0;
}

const char *squashfs_compressor_name(int id)
{
	for (size_t i = 0; i < sizeof(compressors) / sizeof(compressors[0]); i++)
		if (compressors[i].id == id)
			return compressors[i].name;
	return NULL;
}
