/* squashfs_reader.c - reads a (possibly hostile) squashfs through a source.
 *
 * libsquashfs supplies the decompressors and the metadata block reader; the
 * inodes, directory listings and the fragment table are decoded here, because
 * libsquashfs trusts sizes it reads (e.g. it allocates a block list for any
 * file size an inode claims) and we must not.  Every on-disk value is checked
 * against the image before it is used.
 *
 * File data (squashfs_reader_stream) has two paths:
 *  - fast: worker threads claim ~256 KiB batches in order, read their
 *    compressed blocks (one source read per batch, blocks are contiguous on
 *    disk; the verified source checks them on the worker too) and decompress
 *    them with libdeflate (gzip: zlib streams, ~4x faster than zlib),
 *    libzstd, or a copy of the libsquashfs compressor; the calling thread
 *    only hands finished batches to the sink in order, so hashing and
 *    writing overlap with reading and decompressing;
 *  - serial: libsquashfs' sqfs_data_reader on the calling thread.  Kept as
 *    the reference implementation and fallback (tests compare both).
 */
#include "abota/squashfs.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libdeflate.h>
#include <zstd.h>

#include <sqfs/block.h>
#include <sqfs/compressor.h>
#include <sqfs/data_reader.h>
#include <sqfs/error.h>
#include <sqfs/inode.h>
#include <sqfs/io.h>
#include <sqfs/meta_reader.h>
#include <sqfs/super.h>

#include "abota/batch_thread.h"
#include "abota/fileio.h"
#include "abota/log.h"
#include "bundle/squashfs_int.h"

#define SUPER_SIZE 96u
#define META_MAX SQFS_META_BLOCK_SIZE
#define NO_TABLE 0xFFFFFFFFFFFFFFFFull
#define NO_FRAG 0xFFFFFFFFu
#define BLOCK_UNCOMPRESSED (1u << 24)
#define BLOCK_SIZE_MASK ((1u << 24) - 1)
/* Fast path: bytes of file data per batch (at least one block), bytes of
 * batches in flight (at least one per worker plus the one being delivered),
 * batches in flight per thread at most, worker stack size. */
#define BATCH_BYTES (256u << 10)
#define SLOT_BUDGET (2u << 20)
#define SLOTS_PER_WORKER 3u
#define MAX_WORKERS 16u
#define WORKER_STACK (256u << 10)

/* --- the reader --- */

struct src_file {
	sqfs_file_t base;
	struct squashfs_reader *r;
};

struct decoder {
	int comp;
	struct libdeflate_decompressor *ld;
	ZSTD_DCtx *zd;
	sqfs_compressor_t *sq;
	/* compressed bytes of the batch being decoded: one buffer per worker,
	 * not per pipeline slot (a slot only holds decoded bytes) */
	uint8_t *in;
	size_t in_cap;
};

struct squashfs_reader {
	struct src_file file;
	struct source *src;
	uint64_t limit; /* reads beyond this fail: image size, then bytes_used */
	sqfs_super_t sb;
	const char *comp_name;
	sqfs_compressor_t *cmp;
	sqfs_meta_reader_t *mi; /* inode table */
	sqfs_meta_reader_t *md; /* directory table */
	sqfs_meta_reader_t *mf; /* fragment table entries */
	sqfs_data_reader_t *data; /* serial path, created on first use */
	uint64_t inode_span;   /* directory_table_start - inode_table_start */
	uint64_t dir_end;      /* end of the area the directory table may use */
	uint64_t data_end;     /* data and fragment blocks lie in [SUPER_SIZE, data_end) */
	uint64_t max_list_words; /* upper bound of 32-bit words the inode table holds */
	unsigned workers;
	/* The last error of the source, so messages can name the real cause
	 * (e.g. a verity mismatch) instead of libsquashfs' "I/O error". */
	bool io_failed;
	int io_code;
	struct abota_error io_err;
	/* Fast path: last decompressed fragment block. */
	struct decoder dec;
	bool dec_ready;
	uint8_t *frag_buf;
	size_t frag_len;
	uint32_t frag_idx;
	bool frag_valid;
	uint8_t *zeros; /* one zero block, serial path */
};

struct inode {
	uint64_t ref;
	uint16_t type; /* basic SQFS_INODE_* type 1..7 */
	uint16_t perm;
	uint32_t mtime;
	uint32_t ino;
	/* files */
	uint64_t size;
	uint64_t blocks_start;
	uint32_t frag_idx;
	uint32_t frag_off;
	size_t nblocks;
	uint32_t *blocks; /* only when asked for */
	/* directories */
	uint32_t dir_block;
	uint16_t dir_off;
	uint32_t dir_size;
	/* symlinks */
	uint32_t target_len;
	char *target; /* only when asked for */
};

static void inode_clear(struct inode *in)
{
	free(in->blocks);
	free(in->target);
	memset(in, 0, sizeof(*in));
}

/* --- errors --- */

/* The analyzer does not follow variadic functions: the wrappers below make
 * "every error is negative" visible to it (and to the reader). */
static inline int neg_code(int c)
{
	return c < 0 ? c : -EIO;
}
#define corrupt(...) neg_code(corrupt_(__VA_ARGS__))
#define sqfs_fail(...) neg_code(sqfs_fail_(__VA_ARGS__))

static int corrupt_(struct abota_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int corrupt_(struct abota_error *err, const char *fmt, ...)
{
	char msg[ABOTA_ERROR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	abota_error_set(err, -EBADMSG, "squashfs: %s", msg);
	return -EBADMSG; /* visibly negative: callers test ret < 0 */
}

/* Error for a failed libsquashfs call (or read through the adapter). */
static int sqfs_fail_(struct squashfs_reader *r, struct abota_error *err, int ret,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int sqfs_fail_(struct squashfs_reader *r, struct abota_error *err, int ret,
		      const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	int code;
	if (ret == SQFS_ERROR_IO && r->io_failed) {
		r->io_failed = false;
		code = r->io_code < 0 ? r->io_code : -EIO;
		abota_error_set(err, code, "squashfs: %s: %s", what, r->io_err.msg);
		return code;
	}
	code = squashfs_sqfs_errno(ret);
	if (code >= 0 || code == -EINVAL || code == -ENOENT || code == -ENOTDIR)
		code = -EBADMSG; /* from libsquashfs these mean a bad image */
	abota_error_set(err, code, "squashfs: %s: %s", what, squashfs_sqfs_strerror(ret));
	return code;
}

/* --- sqfs_file_t over the source --- */

static int src_read_at(sqfs_file_t *file, sqfs_u64 off, void *buf, size_t len)
{
	struct squashfs_reader *r = ((struct src_file *)file)->r;
	if (off > r->limit || len > r->limit - off)
		return SQFS_ERROR_OUT_OF_BOUNDS;
	int ret = source_read_at(r->src, buf, len, off, &r->io_err);
	if (ret < 0) {
		r->io_failed = true;
		r->io_code = ret;
		return SQFS_ERROR_IO;
	}
	return 0;
}

static int src_write_at(sqfs_file_t *file, sqfs_u64 off, const void *buf, size_t len)
{
	(void)file;
	(void)off;
	(void)buf;
	(void)len;
	return SQFS_ERROR_UNSUPPORTED; /* read-only */
}

static sqfs_u64 src_get_size(const sqfs_file_t *file)
{
	return ((const struct src_file *)file)->r->limit;
}

static int src_truncate(sqfs_file_t *file, sqfs_u64 size)
{
	(void)file;
	(void)size;
	return SQFS_ERROR_UNSUPPORTED;
}

static void src_destroy(sqfs_object_t *obj)
{
	(void)obj; /* embedded in the reader */
}

/* Reads raw bytes (inside the image) through the adapter. */
static int read_raw(struct squashfs_reader *r, uint64_t off, void *buf, size_t len,
		    struct abota_error *err, const char *what)
{
	int ret = r->file.base.read_at(&r->file.base, off, buf, len);
	if (ret == SQFS_ERROR_OUT_OF_BOUNDS)
		return corrupt(err, "%s at offset %llu (%zu bytes) is outside the image", what,
			       (unsigned long long)off, len);
	if (ret != 0)
		return sqfs_fail(r, err, ret, "reading %s", what);
	return 0;
}

/* --- metadata access --- */

static sqfs_meta_reader_t **meta_slot(struct squashfs_reader *r, int which)
{
	return which == 0 ? &r->mi : which == 1 ? &r->md : &r->mf;
}

static int make_meta(struct squashfs_reader *r, int which)
{
	uint64_t start, limit;
	switch (which) {
	case 0:
		start = r->sb.inode_table_start;
		limit = r->sb.directory_table_start;
		break;
	case 1:
		start = r->sb.directory_table_start;
		limit = r->dir_end;
		break;
	default:
		start = r->sb.directory_table_start;
		limit = r->sb.fragment_entry_count ? r->sb.fragment_table_start : start;
		break;
	}
	sqfs_meta_reader_t **m = meta_slot(r, which);
	*m = sqfs_meta_reader_create(&r->file.base, r->cmp, start, limit);
	return *m ? 0 : -ENOMEM;
}

/* Reads len bytes of table `which` (0 inodes, 1 directories, 2 fragments)
 * at (block, offset) and returns the position after them.  After a failure
 * libsquashfs may keep a half-read block cached under the old address, so
 * the meta reader is replaced. */
static int meta_read(struct squashfs_reader *r, int which, uint64_t *block, size_t *offset,
		     void *buf, size_t len, struct abota_error *err, const char *what)
{
	static const char *const names[] = { "inode table", "directory table", "fragment table" };
	sqfs_meta_reader_t **m = meta_slot(r, which);
	int ret = sqfs_meta_reader_seek(*m, *block, *offset);
	if (ret == 0)
		ret = sqfs_meta_reader_read(*m, buf, len);
	if (ret == 0) {
		sqfs_meta_reader_get_position(*m, block, offset);
		return 0;
	}
	sqfs_destroy(*m);
	*m = NULL;
	int code = ret == SQFS_ERROR_OUT_OF_BOUNDS
			   ? corrupt(err, "%s: %s points outside the table", what, names[which])
			   : sqfs_fail(r, err, ret, "%s: reading the %s", what, names[which]);
	if (make_meta(r, which) < 0)
		return abota_error_set(err, -ENOMEM, "out of memory");
	return code;
}

/* --- super block --- */

static uint64_t list_bytes(uint64_t table_bytes)
{
	/* A table is stored as metadata blocks plus a list of their 64-bit
	 * locations, one per 8 KiB of table. */
	return (table_bytes + META_MAX - 1) / META_MAX * 8;
}

static int parse_super(struct squashfs_reader *r, uint64_t image_size, struct abota_error *err)
{
	uint8_t b[SUPER_SIZE];
	if (image_size < SUPER_SIZE)
		return corrupt(err, "image of %llu bytes is too small for a super block",
			       (unsigned long long)image_size);
	int ret = read_raw(r, 0, b, sizeof(b), err, "super block");
	if (ret < 0)
		return ret;
	sqfs_super_t *s = &r->sb;
	s->magic = sq_le32(b + 0);
	s->inode_count = sq_le32(b + 4);
	s->modification_time = sq_le32(b + 8);
	s->block_size = sq_le32(b + 12);
	s->fragment_entry_count = sq_le32(b + 16);
	s->compression_id = sq_le16(b + 20);
	s->block_log = sq_le16(b + 22);
	s->flags = sq_le16(b + 24);
	s->id_count = sq_le16(b + 26);
	s->version_major = sq_le16(b + 28);
	s->version_minor = sq_le16(b + 30);
	s->root_inode_ref = sq_le64(b + 32);
	s->bytes_used = sq_le64(b + 40);
	s->id_table_start = sq_le64(b + 48);
	s->xattr_id_table_start = sq_le64(b + 56);
	s->inode_table_start = sq_le64(b + 64);
	s->directory_table_start = sq_le64(b + 72);
	s->fragment_table_start = sq_le64(b + 80);
	s->export_table_start = sq_le64(b + 88);

	if (s->magic != SQFS_MAGIC)
		return corrupt(err, "bad magic 0x%08x (not a squashfs image)", s->magic);
	if (s->version_major != 4 || s->version_minor != 0)
		return abota_error_set(err, -ENOTSUP, "squashfs: unsupported version %u.%u (need 4.0)",
				       s->version_major, s->version_minor);
	if (s->block_size < SQFS_MIN_BLOCK_SIZE || s->block_size > SQFS_MAX_BLOCK_SIZE ||
	    (s->block_size & (s->block_size - 1)) != 0 || s->block_log > 20 ||
	    (1u << s->block_log) != s->block_size)
		return corrupt(err, "bad block size %u (log %u)", s->block_size, s->block_log);
	r->comp_name = squashfs_compressor_name(s->compression_id);
	if (!r->comp_name)
		return abota_error_set(err, -ENOTSUP, "squashfs: unsupported compressor id %u",
				       s->compression_id);
	if (s->bytes_used <= SUPER_SIZE || s->bytes_used > image_size)
		return corrupt(err, "bytes_used %llu is outside the %llu-byte image",
			       (unsigned long long)s->bytes_used, (unsigned long long)image_size);
	uint64_t used = s->bytes_used;
	if (s->inode_count == 0)
		return corrupt(err, "no inodes");
	if (s->inode_table_start < SUPER_SIZE || s->inode_table_start >= s->directory_table_start ||
	    s->directory_table_start >= used)
		return corrupt(err, "inode/directory table offsets %llu/%llu are not inside the image",
			       (unsigned long long)s->inode_table_start,
			       (unsigned long long)s->directory_table_start);
	/* Tables after the directory table: fragment, export, id, xattr. */
	uint64_t xattr_end = used;
	if (s->xattr_id_table_start != NO_TABLE) {
		if (s->xattr_id_table_start <= s->directory_table_start ||
		    s->xattr_id_table_start >= used)
			return corrupt(err, "xattr table offset %llu is not inside the image",
				       (unsigned long long)s->xattr_id_table_start);
		xattr_end = s->xattr_id_table_start;
	}
	if (s->id_count == 0 || s->id_table_start <= s->directory_table_start ||
	    s->id_table_start >= used ||
	    list_bytes((uint64_t)s->id_count * 4) > xattr_end - s->id_table_start)
		return corrupt(err, "id table (offset %llu, %u ids) is not inside the image",
			       (unsigned long long)s->id_table_start, s->id_count);
	uint64_t next = s->id_table_start;
	r->dir_end = next;
	if (s->export_table_start != NO_TABLE) {
		if (s->export_table_start <= s->directory_table_start ||
		    s->export_table_start >= s->id_table_start)
			return corrupt(err, "export table offset %llu is not inside the image",
				       (unsigned long long)s->export_table_start);
		next = s->export_table_start;
		r->dir_end = next;
	}
	if (s->fragment_entry_count > 0) {
		if (s->fragment_table_start == NO_TABLE ||
		    s->fragment_table_start <= s->directory_table_start ||
		    s->fragment_table_start >= next ||
		    list_bytes((uint64_t)s->fragment_entry_count * 16) >
			    next - s->fragment_table_start)
			return corrupt(err, "fragment table (offset %llu, %u entries) is not inside the image",
				       (unsigned long long)s->fragment_table_start,
				       s->fragment_entry_count);
		r->dir_end = s->fragment_table_start;
	}
	uint64_t rblock = s->root_inode_ref >> 16, roff = s->root_inode_ref & 0xFFFF;
	r->inode_span = s->directory_table_start - s->inode_table_start;
	if ((s->root_inode_ref >> 48) != 0 || rblock >= r->inode_span || roff >= META_MAX)
		return corrupt(err, "root inode reference 0x%llx is outside the inode table",
			       (unsigned long long)s->root_inode_ref);
	r->data_end = s->inode_table_start;
	/* Each metadata block holds at most 8 KiB and takes at least 3 bytes
	 * (2-byte header, 1 byte of data), which bounds what any inode can
	 * claim before we allocate for it. */
	r->max_list_words = (r->inode_span / 3 + 1) * (META_MAX / 4);
	return 0;
}

/* --- decompression (fast path) --- */

static int decoder_init(struct decoder *d, const struct squashfs_reader *r)
{
	memset(d, 0, sizeof(*d));
	d->comp = r->sb.compression_id;
	switch (d->comp) {
	case SQFS_COMP_GZIP:
		d->ld = libdeflate_alloc_decompressor();
		return d->ld ? 0 : -ENOMEM;
	case SQFS_COMP_ZSTD:
		d->zd = ZSTD_createDCtx();
		return d->zd ? 0 : -ENOMEM;
	default:
		/* Each thread needs its own libsquashfs decompressor state. */
		d->sq = sqfs_copy(r->cmp);
		return d->sq ? 0 : -ENOMEM;
	}
}

static void decoder_free(struct decoder *d)
{
	if (d->ld)
		libdeflate_free_decompressor(d->ld);
	if (d->zd)
		ZSTD_freeDCtx(d->zd);
	sqfs_destroy(d->sq);
	free(d->in);
	memset(d, 0, sizeof(*d));
}

/* Decompresses one block into out (capacity cap); *got = bytes produced.
 * Returns 0 or -EBADMSG. */
static int decode(struct decoder *d, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
		  size_t *got)
{
	switch (d->comp) {
	case SQFS_COMP_GZIP: {
		/* squashfs "gzip" blocks are zlib streams (RFC 1950): a 2-byte
		 * header, deflate data, the Adler-32 of the output.  The
		 * header is checked here and the deflate data inflated as
		 * such; the Adler-32 is not computed (~1 % of an install's
		 * CPU): the bytes were authenticated with the bundle (its
		 * signature, or the verity tree) and the image they make up
		 * is checked against its SHA-256, which catches what the
		 * Adler-32 would and more. */
		if (in_len < 6 || (in[0] & 0x0F) != 8 || (in[0] >> 4) > 7 || (in[1] & 0x20) ||
		    ((unsigned)in[0] << 8 | in[1]) % 31 != 0)
			return -EBADMSG;
		size_t used = 0, n = 0;
		if (libdeflate_deflate_decompress_ex(d->ld, in + 2, in_len - 6, out, cap, &used, &n) !=
			    LIBDEFLATE_SUCCESS ||
		    used != in_len - 6)
			return -EBADMSG;
		*got = n;
		return 0;
	}
	case SQFS_COMP_ZSTD: {
		size_t n = ZSTD_decompressDCtx(d->zd, out, cap, in, in_len);
		if (ZSTD_isError(n))
			return -EBADMSG;
		*got = n;
		return 0;
	}
	default: {
		if (in_len > UINT32_MAX || cap > UINT32_MAX)
			return -EBADMSG;
		sqfs_s32 n = d->sq->do_block(d->sq, in, (sqfs_u32)in_len, out, (sqfs_u32)cap);
		if (n <= 0)
			return -EBADMSG;
		*got = (size_t)n;
		return 0;
	}
	}
}

/* --- open / free --- */

int squashfs_reader_open(struct source *src, uint64_t image_size,
			 struct squashfs_reader **out, struct abota_error *err)
{
	if (image_size > source_size(src))
		return abota_error_set(err, -EINVAL,
				       "squashfs: image size %llu exceeds the %llu-byte source %s",
				       (unsigned long long)image_size,
				       (unsigned long long)source_size(src), source_name(src));
	/* the tests check with this line that nothing parsed an unverified
	 * bundle (security case SC-70) */
	log_debug("squashfs: parsing the image in %s", source_name(src));
	int ret;
	struct squashfs_reader *r = calloc(1, sizeof(*r));
	if (!r)
		return abota_error_set(err, -ENOMEM, "out of memory");
	r->file.base.base.destroy = src_destroy;
	r->file.base.read_at = src_read_at;
	r->file.base.write_at = src_write_at;
	r->file.base.get_size = src_get_size;
	r->file.base.truncate = src_truncate;
	r->file.r = r;
	r->src = src;
	r->limit = image_size;

	ret = parse_super(r, image_size, err);
	if (ret < 0)
		goto out;
	/* Nothing of the image lies beyond bytes_used; the rest is padding. */
	r->limit = r->sb.bytes_used;

	sqfs_compressor_config_t cfg;
	ret = sqfs_compressor_config_init(&cfg, (SQFS_COMPRESSOR)r->sb.compression_id,
					  r->sb.block_size, SQFS_COMP_FLAG_UNCOMPRESS);
	if (ret == 0)
		ret = sqfs_compressor_create(&cfg, &r->cmp);
	if (ret != 0) {
		ret = abota_error_set(err, -ENOTSUP, "squashfs: %s decompressor: %s", r->comp_name,
				      squashfs_sqfs_strerror(ret));
		goto out;
	}
	if (r->sb.flags & SQFS_FLAG_COMPRESSOR_OPTIONS) {
		ret = r->cmp->read_options(r->cmp, &r->file.base);
		if (ret != 0) {
			ret = sqfs_fail(r, err, ret, "%s compressor options", r->comp_name);
			goto out;
		}
	}
	if (make_meta(r, 0) < 0 || make_meta(r, 1) < 0 || make_meta(r, 2) < 0) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	*out = r;
	r = NULL;
	ret = 0;
out:
	squashfs_reader_free(r);
	return ret;
}

void squashfs_reader_free(struct squashfs_reader *r)
{
	if (!r)
		return;
	/* NULL is fine: sqfs_destroy checks. */
	sqfs_destroy(r->data);
	sqfs_destroy(r->mi);
	sqfs_destroy(r->md);
	sqfs_destroy(r->mf);
	sqfs_destroy(r->cmp);
	decoder_free(&r->dec);
	free(r->frag_buf);
	free(r->zeros);
	free(r);
}

void squashfs_reader_info(const struct squashfs_reader *r, struct squashfs_info *info)
{
	info->compressor = r->comp_name;
	info->block_size = r->sb.block_size;
	info->bytes_used = r->sb.bytes_used;
	info->inode_count = r->sb.inode_count;
	info->mtime = r->sb.modification_time;
}

void squashfs_reader_set_workers(struct squashfs_reader *r, unsigned workers)
{
	r->workers = workers;
}

/* --- inodes --- */

static uint16_t basic_type(uint16_t t)
{
	return t >= SQFS_INODE_EXT_DIR ? (uint16_t)(t - 7) : t;
}

static enum squashfs_type entry_type(uint16_t basic)
{
	switch (basic) {
	case SQFS_INODE_FILE:
		return SQUASHFS_TYPE_FILE;
	case SQFS_INODE_DIR:
		return SQUASHFS_TYPE_DIR;
	case SQFS_INODE_SLINK:
		return SQUASHFS_TYPE_SYMLINK;
	default:
		return SQUASHFS_TYPE_OTHER;
	}
}

enum { WANT_BLOCKS = 1, WANT_TARGET = 2 };

/* Reads and checks the inode at ref (block relative to the inode table in
 * bits 16..47, offset in bits 0..15). */
static int read_inode(struct squashfs_reader *r, uint64_t ref, unsigned want, struct inode *out,
		      struct abota_error *err)
{
	uint64_t rel = ref >> 16;
	size_t off = ref & 0xFFFF;
	if ((ref >> 48) != 0 || rel >= r->inode_span || off >= META_MAX)
		return corrupt(err, "inode reference 0x%llx is outside the inode table",
			       (unsigned long long)ref);
	uint64_t block = r->sb.inode_table_start + rel;
	uint8_t b[56] = { 0 };
	char what[64];
	snprintf(what, sizeof(what), "inode at 0x%llx", (unsigned long long)ref);
	int ret = meta_read(r, 0, &block, &off, b, 16, err, what);
	if (ret < 0)
		return ret;
	struct inode in = { .ref = ref };
	uint16_t type = sq_le16(b);
	in.perm = sq_le16(b + 2) & 07777;
	in.mtime = sq_le32(b + 8);
	in.ino = sq_le32(b + 12);
	if (type < SQFS_INODE_DIR || type > SQFS_INODE_EXT_SOCKET)
		return corrupt(err, "inode %u: unknown type %u", in.ino, type);
	if (in.ino == 0 || in.ino > r->sb.inode_count)
		return corrupt(err, "inode number %u outside 1..%u", in.ino, r->sb.inode_count);
	in.type = basic_type(type);
	snprintf(what, sizeof(what), "inode %u", in.ino);

	size_t need;
	switch (type) {
	case SQFS_INODE_DIR:
		need = 16;
		break;
	case SQFS_INODE_EXT_DIR:
		need = 24;
		break;
	case SQFS_INODE_FILE:
		need = 16;
		break;
	case SQFS_INODE_EXT_FILE:
		need = 40;
		break;
	case SQFS_INODE_SLINK:
	case SQFS_INODE_EXT_SLINK:
		need = 8;
		break;
	default:
		need = 0; /* devices, fifos, sockets: nothing we use */
	}
	if (need && (ret = meta_read(r, 0, &block, &off, b, need, err, what)) < 0)
		return ret;

	switch (type) {
	case SQFS_INODE_DIR:
		in.dir_block = sq_le32(b);
		in.dir_size = sq_le16(b + 8);
		in.dir_off = sq_le16(b + 10);
		break;
	case SQFS_INODE_EXT_DIR:
		in.dir_size = sq_le32(b + 4);
		in.dir_block = sq_le32(b + 8);
		in.dir_off = sq_le16(b + 18);
		break;
	case SQFS_INODE_FILE:
		in.blocks_start = sq_le32(b);
		in.frag_idx = sq_le32(b + 4);
		in.frag_off = sq_le32(b + 8);
		in.size = sq_le32(b + 12);
		break;
	case SQFS_INODE_EXT_FILE:
		in.blocks_start = sq_le64(b);
		in.size = sq_le64(b + 8);
		in.frag_idx = sq_le32(b + 28);
		in.frag_off = sq_le32(b + 32);
		break;
	case SQFS_INODE_SLINK:
	case SQFS_INODE_EXT_SLINK:
		in.target_len = sq_le32(b + 4);
		in.size = in.target_len;
		break;
	}

	if (in.type == SQFS_INODE_DIR) {
		if (in.dir_size < 3)
			return corrupt(err, "inode %u: directory size %u below 3", in.ino, in.dir_size);
		if (in.dir_size > 3 &&
		    ((uint64_t)in.dir_block >= r->dir_end - r->sb.directory_table_start ||
		     in.dir_off >= META_MAX))
			return corrupt(err, "inode %u: directory listing outside the directory table",
				       in.ino);
	} else if (in.type == SQFS_INODE_SLINK) {
		if (in.target_len == 0 || in.target_len >= SQUASHFS_PATH_MAX)
			return corrupt(err, "inode %u: symlink target length %u", in.ino,
				       in.target_len);
		if (want & WANT_TARGET) {
			in.target = malloc((size_t)in.target_len + 1);
			if (!in.target)
				return abota_error_set(err, -ENOMEM, "out of memory");
			ret = meta_read(r, 0, &block, &off, in.target, in.target_len, err, what);
			if (ret < 0) {
				inode_clear(&in);
				return ret;
			}
			in.target[in.target_len] = '\0';
			if (strlen(in.target) != in.target_len) {
				inode_clear(&in);
				return corrupt(err, "inode %u: NUL byte in symlink target", in.ino);
			}
		}
	} else if (in.type == SQFS_INODE_FILE) {
		uint32_t bs = r->sb.block_size;
		uint64_t tail = in.size % bs;
		bool frag = in.frag_idx != NO_FRAG;
		if (frag) {
			/* The kernel reads the block holding the last byte
			 * from the fragment; libsquashfs only if the size is
			 * not a block multiple.  Refuse the ambiguous case. */
			if (tail == 0)
				return corrupt(err, "inode %u: fragment for a file of whole blocks",
					       in.ino);
			if (in.frag_idx >= r->sb.fragment_entry_count)
				return corrupt(err, "inode %u: fragment %u beyond the fragment table",
					       in.ino, in.frag_idx);
			if (in.frag_off >= bs || tail > bs - in.frag_off)
				return corrupt(err, "inode %u: fragment offset %u outside the block",
					       in.ino, in.frag_off);
		}
		uint64_t n = in.size / bs + (tail != 0 && !frag ? 1 : 0);
		if (n > r->max_list_words)
			return corrupt(err, "inode %u: file size %llu needs more block sizes than the inode table holds",
				       in.ino, (unsigned long long)in.size);
		in.nblocks = (size_t)n;
		if ((want & WANT_BLOCKS) && n > 0) {
			in.blocks = malloc((size_t)n * 4);
			if (!in.blocks)
				return abota_error_set(err, -ENOMEM, "out of memory");
			ret = meta_read(r, 0, &block, &off, in.blocks, (size_t)n * 4, err, what);
			if (ret < 0) {
				inode_clear(&in);
				return ret;
			}
			for (size_t i = 0; i < (size_t)n; i++)
				in.blocks[i] = sq_le32((const uint8_t *)&in.blocks[i]);
		}
	}
	*out = in;
	return 0;
}

/* Expected uncompressed size of data block i. */
static size_t block_len(const struct squashfs_reader *r, const struct inode *in, size_t i)
{
	uint32_t bs = r->sb.block_size;
	if (i + 1 < in->nblocks || in->frag_idx != NO_FRAG || in->size % bs == 0)
		return bs;
	return (size_t)(in->size % bs);
}

/* Checks that the block list describes data inside the image. */
static int check_blocks(const struct squashfs_reader *r, const struct inode *in,
			struct abota_error *err)
{
	uint64_t pos = in->blocks_start;
	for (size_t i = 0; i < in->nblocks; i++) {
		uint32_t b = in->blocks[i];
		uint32_t disk = b & BLOCK_SIZE_MASK;
		if ((b & ~(BLOCK_SIZE_MASK | BLOCK_UNCOMPRESSED)) != 0 || disk > r->sb.block_size)
			return corrupt(err, "inode %u: block %zu has a bad size 0x%08x", in->ino, i, b);
		if (disk == 0)
			continue; /* sparse: zeros, nothing on disk */
		if ((b & BLOCK_UNCOMPRESSED) && disk != block_len(r, in, i))
			return corrupt(err, "inode %u: uncompressed block %zu holds %u bytes, not %zu",
				       in->ino, i, disk, block_len(r, in, i));
		/* Data blocks lie between the super block and the inode table. */
		if (pos < SUPER_SIZE || pos > r->data_end || disk > r->data_end - pos)
			return corrupt(err, "inode %u data outside the image", in->ino);
		pos += disk;
	}
	return 0;
}

/* --- directories --- */

struct dir_it {
	uint64_t block;
	size_t offset;
	uint32_t left;     /* listing bytes not read yet */
	uint32_t hdr_left; /* entries left under the current header */
	uint32_t hdr_block;
	uint32_t hdr_ino;
	uint32_t dir_ino;
	char prev[SQUASHFS_NAME_MAX + 1];
};

struct dir_ent {
	char name[SQUASHFS_NAME_MAX + 1];
	size_t len;
	uint64_t ref;
	uint16_t type;
	uint32_t ino;
};

static void dir_open(const struct squashfs_reader *r, const struct inode *dir, struct dir_it *it)
{
	memset(it, 0, sizeof(*it));
	it->block = r->sb.directory_table_start + dir->dir_block;
	it->offset = dir->dir_off;
	it->left = dir->dir_size - 3; /* the size counts "." and ".." */
	it->dir_ino = dir->ino;
}

/* Returns 1 with the next entry, 0 at the end, or a negative code. */
static int dir_next(struct squashfs_reader *r, struct dir_it *it, struct dir_ent *e,
		    struct abota_error *err)
{
	char what[64];
	snprintf(what, sizeof(what), "directory inode %u", it->dir_ino);
	uint8_t b[12];
	int ret;
	if (it->hdr_left == 0) {
		if (it->left == 0)
			return 0;
		if (it->left < 12)
			return corrupt(err, "%s: listing ends inside a header", what);
		ret = meta_read(r, 1, &it->block, &it->offset, b, 12, err, what);
		if (ret < 0)
			return ret;
		it->left -= 12;
		uint32_t count = sq_le32(b) + 1;
		if (count == 0 || count > 256)
			return corrupt(err, "%s: header with %u entries", what, sq_le32(b));
		it->hdr_left = count;
		it->hdr_block = sq_le32(b + 4);
		it->hdr_ino = sq_le32(b + 8);
	}
	if (it->left < 8)
		return corrupt(err, "%s: listing ends inside an entry", what);
	ret = meta_read(r, 1, &it->block, &it->offset, b, 8, err, what);
	if (ret < 0)
		return ret;
	it->left -= 8;
	uint16_t ioff = sq_le16(b);
	int16_t diff = (int16_t)sq_le16(b + 2);
	uint16_t type = sq_le16(b + 4);
	size_t len = (size_t)sq_le16(b + 6) + 1;
	if (len > SQUASHFS_NAME_MAX || len > it->left)
		return corrupt(err, "%s: name of %zu bytes", what, len);
	ret = meta_read(r, 1, &it->block, &it->offset, e->name, len, err, what);
	if (ret < 0)
		return ret;
	it->left -= (uint32_t)len;
	it->hdr_left--;
	e->name[len] = '\0';
	e->len = len;
	if (strlen(e->name) != len || memchr(e->name, '/', len) || strcmp(e->name, ".") == 0 ||
	    strcmp(e->name, "..") == 0)
		return corrupt(err, "%s: bad name '%s'", what, e->name);
	/* Sorted, unique names: squashfs requires the order for lookups and
	 * it also rules out duplicates. */
	if (it->prev[0] != '\0' && strcmp(it->prev, e->name) >= 0)
		return corrupt(err, "%s: names out of order or duplicated ('%s' after '%s')", what,
			       e->name, it->prev);
	memcpy(it->prev, e->name, len + 1);
	if (type < SQFS_INODE_DIR || type > SQFS_INODE_SOCKET)
		return corrupt(err, "%s: '%s' has bad type %u", what, e->name, type);
	int64_t ino = (int64_t)it->hdr_ino + diff;
	if (ino < 1 || ino > (int64_t)r->sb.inode_count)
		return corrupt(err, "%s: '%s' has inode number %lld outside 1..%u", what, e->name,
			       (long long)ino, r->sb.inode_count);
	if (ioff >= META_MAX || it->hdr_block >= r->inode_span)
		return corrupt(err, "%s: '%s' points outside the inode table", what, e->name);
	e->ref = ((uint64_t)it->hdr_block << 16) | ioff;
	e->type = type;
	e->ino = (uint32_t)ino;
	return 1;
}

/* Reads the inode of a directory entry and checks it matches the entry. */
static int entry_inode(struct squashfs_reader *r, const struct dir_ent *e, unsigned want,
		       struct inode *out, struct abota_error *err)
{
	struct inode in = { 0 };
	int ret = read_inode(r, e->ref, want, &in, err);
	if (ret < 0)
		return ret;
	if (in.type != e->type || in.ino != e->ino) {
		uint32_t ino = in.ino;
		inode_clear(&in);
		return corrupt(err, "'%s': entry (type %u, inode %u) does not match inode %u", e->name,
			       e->type, e->ino, ino);
	}
	*out = in;
	return 0;
}

static void fill_entry(const struct inode *in, struct squashfs_entry *e)
{
	e->type = entry_type(in->type);
	e->mode = in->perm;
	e->size = in->type == SQFS_INODE_FILE || in->type == SQFS_INODE_SLINK ? in->size : 0;
	e->mtime = in->mtime;
	e->inode = in->ino;
}

/* Resolves a path to its inode (see squashfs_reader_lookup). */
static int resolve(struct squashfs_reader *r, const char *path, unsigned want, struct inode *out,
		   struct abota_error *err)
{
	size_t plen = strlen(path);
	if (plen >= SQUASHFS_PATH_MAX)
		return abota_error_set(err, -ENAMETOOLONG, "squashfs: path too long");
	struct inode cur = { 0 };
	int ret = read_inode(r, r->sb.root_inode_ref, want, &cur, err);
	if (ret < 0)
		return ret;
	if (cur.type != SQFS_INODE_DIR) {
		inode_clear(&cur);
		return corrupt(err, "root inode is not a directory");
	}
	const char *p = path;
	for (;;) {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) {
			inode_clear(&cur);
			return abota_error_set(err, -EINVAL, "squashfs: '%s': '.' and '..' not allowed",
					       path);
		}
		if (cur.type != SQFS_INODE_DIR) {
			inode_clear(&cur);
			return abota_error_set(err, -ENOTDIR, "squashfs: '%s': not a directory on the way",
					       path);
		}
		struct dir_it it;
		struct dir_ent e = { 0 };
		dir_open(r, &cur, &it);
		bool found = false;
		while ((ret = dir_next(r, &it, &e, err)) == 1) {
			int c = len > SQUASHFS_NAME_MAX ? 1 : strncmp(e.name, p, len);
			if (c == 0 && e.len == len) {
				found = true;
				break;
			}
			if (c > 0)
				break; /* sorted: it is not there */
		}
		inode_clear(&cur);
		if (ret < 0)
			return ret;
		if (!found)
			return abota_error_set(err, -ENOENT, "squashfs: '%s': no such file or directory",
					       path);
		ret = entry_inode(r, &e, want, &cur, err);
		if (ret < 0)
			return ret;
		p += len;
	}
	*out = cur;
	return 0;
}

int squashfs_reader_lookup(struct squashfs_reader *r, const char *path,
			   struct squashfs_entry *out, struct abota_error *err)
{
	struct inode in;
	int ret = resolve(r, path, 0, &in, err);
	if (ret < 0)
		return ret;
	fill_entry(&in, out);
	inode_clear(&in);
	return 0;
}

int squashfs_reader_readlink(struct squashfs_reader *r, const char *path, char **target,
			     struct abota_error *err)
{
	struct inode in;
	int ret = resolve(r, path, WANT_TARGET, &in, err);
	if (ret < 0)
		return ret;
	if (in.type != SQFS_INODE_SLINK) {
		inode_clear(&in);
		return abota_error_set(err, -EINVAL, "squashfs: '%s': not a symlink", path);
	}
	*target = in.target;
	in.target = NULL;
	inode_clear(&in);
	return 0;
}

/* --- walk --- */

struct walk {
	squashfs_walk_fn cb;
	void *ctx;
	size_t entries;
	uint64_t ancestors[SQUASHFS_READER_MAX_DEPTH + 1];
	char path[SQUASHFS_PATH_MAX];
};

/* Returns 0, 1 (callback asked to stop) or a negative code.  Recursive,
 * bounded: depth stops at SQUASHFS_READER_MAX_DEPTH and loops are refused
 * through w->ancestors. */
/* NOLINTNEXTLINE(misc-no-recursion): depth-limited, see above */
static int walk_dir(struct squashfs_reader *r, struct walk *w, const struct inode *dir,
		    size_t plen, unsigned depth, struct abota_error *err)
{
	struct dir_it it;
	struct dir_ent e = { 0 };
	int ret;
	dir_open(r, dir, &it);
	while ((ret = dir_next(r, &it, &e, err)) == 1) {
		if (++w->entries > SQUASHFS_READER_MAX_ENTRIES)
			return corrupt(err, "more than %u entries", SQUASHFS_READER_MAX_ENTRIES);
		size_t need = plen + (plen ? 1 : 0) + e.len;
		if (need >= sizeof(w->path))
			return corrupt(err, "path longer than %u bytes", SQUASHFS_PATH_MAX);
		if (plen)
			w->path[plen] = '/';
		memcpy(w->path + plen + (plen ? 1 : 0), e.name, e.len + 1);
		struct inode in = { 0 };
		ret = entry_inode(r, &e, 0, &in, err);
		if (ret < 0)
			return ret;
		struct squashfs_entry se;
		fill_entry(&in, &se);
		ret = w->cb(w->ctx, w->path, &se, err);
		if (ret == 0 && in.type == SQFS_INODE_DIR) {
			if (depth + 1 > SQUASHFS_READER_MAX_DEPTH) {
				ret = corrupt(err, "'%s': directories nested deeper than %u", w->path,
					      SQUASHFS_READER_MAX_DEPTH);
			} else {
				for (unsigned i = 0; i <= depth; i++)
					if (w->ancestors[i] == in.ref)
						ret = corrupt(err, "'%s': directory loop", w->path);
				if (ret == 0) {
					w->ancestors[depth + 1] = in.ref;
					ret = walk_dir(r, w, &in, need, depth + 1, err);
				}
			}
		}
		inode_clear(&in);
		if (ret != 0)
			return ret < 0 ? ret : 1;
		w->path[plen] = '\0';
	}
	return ret;
}

int squashfs_reader_walk(struct squashfs_reader *r, squashfs_walk_fn cb, void *ctx,
			 struct abota_error *err)
{
	struct walk *w = calloc(1, sizeof(*w));
	if (!w)
		return abota_error_set(err, -ENOMEM, "out of memory");
	w->cb = cb;
	w->ctx = ctx;
	struct inode root = { 0 };
	int ret = read_inode(r, r->sb.root_inode_ref, 0, &root, err);
	if (ret == 0 && root.type != SQFS_INODE_DIR)
		ret = corrupt(err, "root inode is not a directory");
	if (ret == 0) {
		w->ancestors[0] = root.ref;
		ret = walk_dir(r, w, &root, 0, 0, err);
		if (ret > 0)
			ret = 0;
	}
	inode_clear(&root);
	free(w);
	return ret;
}

/* --- fragments --- */

struct frag {
	uint64_t start;
	uint32_t size; /* on-disk size word (bit 24 = uncompressed) */
};

static int frag_lookup(struct squashfs_reader *r, const struct inode *in, struct frag *f,
		       struct abota_error *err)
{
	uint32_t idx = in->frag_idx;
	uint8_t b[16];
	char what[64];
	snprintf(what, sizeof(what), "fragment %u of inode %u", idx, in->ino);
	int ret = read_raw(r, r->sb.fragment_table_start + (uint64_t)(idx / 512) * 8, b, 8, err,
			   what);
	if (ret < 0)
		return ret;
	uint64_t block = sq_le64(b);
	size_t off = (size_t)(idx % 512) * 16;
	ret = meta_read(r, 2, &block, &off, b, 16, err, what);
	if (ret < 0)
		return ret;
	f->start = sq_le64(b);
	f->size = sq_le32(b + 8);
	uint32_t disk = f->size & BLOCK_SIZE_MASK;
	if ((f->size & ~(BLOCK_SIZE_MASK | BLOCK_UNCOMPRESSED)) != 0 || disk == 0 ||
	    disk > r->sb.block_size)
		return corrupt(err, "%s: bad block size 0x%08x", what, f->size);
	if (f->start < SUPER_SIZE || f->start > r->data_end || disk > r->data_end - f->start)
		return corrupt(err, "%s: block outside the image", what);
	return 0;
}

/* --- streaming: which blocks, and where they go --- */

struct stream_sel {
	size_t first; /* first block to deliver (start / block size) */
	squashfs_want_fn want;
	void *want_ctx;
	squashfs_sink_at_fn sink;
	void *ctx;
};

/* Is block i (or the tail end, i == nblocks) of the file delivered? */
static bool sel_wants(const struct squashfs_reader *r, const struct stream_sel *sel, size_t i,
		      size_t len)
{
	if (i < sel->first)
		return false;
	return !sel->want || sel->want(sel->want_ctx, (uint64_t)i * r->sb.block_size, len);
}

/* --- streaming: serial path (libsquashfs data reader) --- */

/* A file's data blocks, once delivered, are not read again: the source may
 * forget them (a local bundle's cached pages: installing a 150 MB bundle
 * left it all in the page cache, pushing out the running system's own
 * files), a few MiB at a time.  Each call names the whole prefix since the
 * file's first block: the kernel drops a folio only when all of it lies in
 * the range, and a large folio (up to 2 MiB of the bundle) straddled every
 * boundary between two calls that each named only their new bytes.
 * Walking the pages already dropped again costs next to nothing. */
#define FORGET_STEP (4u << 20)

struct forget {
	uint64_t start; /* the file's first block */
	uint64_t upto;  /* forgotten up to here */
};

static void forget_read(struct squashfs_reader *r, struct forget *f, uint64_t upto, bool last)
{
	if (upto <= f->upto || (!last && upto - f->upto < FORGET_STEP))
		return;
	source_forget(r->src, f->start, upto - f->start);
	f->upto = upto;
}

static int stream_serial(struct squashfs_reader *r, const struct inode *in,
			 const struct stream_sel *sel, struct abota_error *err)
{
	uint32_t bs = r->sb.block_size;
	if (!r->data) {
		r->data = sqfs_data_reader_create(&r->file.base, bs, r->cmp, 0);
		if (!r->data)
			return abota_error_set(err, -ENOMEM, "out of memory");
	}
	if (!r->zeros && !(r->zeros = calloc(1, bs)))
		return abota_error_set(err, -ENOMEM, "out of memory");
	/* A one-block inode per block: sqfs_data_reader_get_block() walks the
	 * block list from the start on every call, which is quadratic. */
	sqfs_inode_generic_t *one = calloc(1, sizeof(*one) + sizeof(sqfs_u32));
	if (!one)
		return abota_error_set(err, -ENOMEM, "out of memory");
	one->base.type = SQFS_INODE_EXT_FILE;
	one->payload_bytes_available = one->payload_bytes_used = sizeof(sqfs_u32);
	one->data.file_ext.fragment_idx = NO_FRAG;
	one->data.file_ext.fragment_offset = NO_FRAG;
	int ret = 0;
	uint64_t pos = in->blocks_start;
	struct forget forgot = { .start = pos, .upto = pos };
	for (size_t i = 0; ret == 0 && i < in->nblocks; i++) {
		size_t want = block_len(r, in, i);
		uint32_t disk = in->blocks[i] & BLOCK_SIZE_MASK;
		uint64_t off = (uint64_t)i * bs;
		forget_read(r, &forgot, pos, false);
		if (!sel_wants(r, sel, i, want)) {
			pos += disk;
			continue;
		}
		if (disk == 0) {
			ret = sel->sink(sel->ctx, off, r->zeros, want, err);
			continue;
		}
		one->data.file_ext.blocks_start = pos;
		one->data.file_ext.file_size = want;
		one->extra[0] = in->blocks[i];
		size_t got = 0;
		sqfs_u8 *buf = NULL;
		ret = sqfs_data_reader_get_block(r->data, one, 0, &got, &buf);
		if (ret != 0)
			ret = sqfs_fail(r, err, ret, "inode %u: block %zu", in->ino, i);
		else if (got != want)
			ret = corrupt(err, "inode %u: block %zu holds %zu bytes, not %zu", in->ino, i,
				      got, want);
		else
			ret = sel->sink(sel->ctx, off, buf, got, err);
		free(buf);
		pos += disk;
	}
	if (ret == 0)
		forget_read(r, &forgot, pos, true);
	size_t tail = (size_t)(in->size % bs);
	if (ret == 0 && in->frag_idx != NO_FRAG && sel_wants(r, sel, in->nblocks, tail)) {
		struct frag f;
		ret = frag_lookup(r, in, &f, err);
		if (ret == 0) {
			one->data.file_ext.blocks_start = f.start;
			one->data.file_ext.file_size = bs;
			one->extra[0] = f.size;
			size_t got = 0;
			sqfs_u8 *buf = NULL;
			ret = sqfs_data_reader_get_block(r->data, one, 0, &got, &buf);
			if (ret != 0)
				ret = sqfs_fail(r, err, ret, "inode %u: fragment block %u", in->ino,
						in->frag_idx);
			else if (in->frag_off > got || tail > got - in->frag_off)
				ret = corrupt(err, "inode %u: tail end beyond fragment block %u",
					      in->ino, in->frag_idx);
			else
				ret = sel->sink(sel->ctx, (uint64_t)in->nblocks * bs, buf + in->frag_off,
						tail, err);
			free(buf);
		}
	}
	free(one);
	return ret;
}

/* --- streaming: fast path --- */

enum { SLOT_FREE, SLOT_BUSY, SLOT_DONE };

struct slot {
	int state;
	uint64_t seq;
	size_t first, count; /* blocks */
	uint64_t pos;        /* image offset of the first block's bytes */
	size_t disk;         /* on-disk bytes of the batch */
	uint8_t *out;
	size_t out_len;
	int ret;
	bool read_failed;    /* ret is the source's error, in err */
	size_t bad_block;    /* otherwise: the block that does not decompress */
	struct abota_error *err; /* the read error, allocated on first use */
};

/* A run of consecutive wanted blocks, read with one source read. */
struct batch {
	size_t first, count;
	uint64_t pos; /* image offset of the first block's bytes */
	size_t disk;  /* on-disk bytes */
};

struct pipeline {
	struct squashfs_reader *r;
	const struct inode *in;
	size_t per, nbatches;
	size_t batch_bytes; /* per * block size */
	struct batch *batches;
	pthread_mutex_t lock;
	pthread_cond_t work;
	pthread_cond_t done;
	struct slot *slots;
	size_t nslots;
	/* under lock */
	uint64_t next_claim; /* next batch to read and decode */
	unsigned idle;       /* workers waiting for a free slot */
	size_t in_flight;    /* slots claimed or done, not yet delivered */
	bool waiting;        /* the calling thread waits for slot seq `wants` */
	uint64_t wants;
	bool quit;
};

/* Decompresses the blocks of one slot; in holds their on-disk bytes back to
 * back. */
static void decode_slot(const struct squashfs_reader *r, const struct inode *in,
			struct decoder *d, const uint8_t *src, struct slot *s)
{
	size_t ipos = 0, opos = 0;
	s->ret = 0;
	for (size_t i = s->first; i < s->first + s->count; i++) {
		uint32_t b = in->blocks[i];
		size_t disk = b & BLOCK_SIZE_MASK;
		size_t want = block_len(r, in, i);
		if (disk == 0) {
			memset(s->out + opos, 0, want);
		} else if (b & BLOCK_UNCOMPRESSED) {
			memcpy(s->out + opos, src + ipos, want); /* disk == want, checked */
		} else {
			size_t got = 0;
			if (decode(d, src + ipos, disk, s->out + opos, want, &got) < 0 ||
			    got != want) {
				s->ret = -EBADMSG;
				s->bad_block = i;
				return;
			}
		}
		ipos += disk;
		opos += want;
	}
	s->out_len = opos;
}

/* Reads the compressed bytes of a claimed slot (one source read: the blocks
 * are contiguous, and check_blocks() put them inside the image) and
 * decompresses them.  Runs on any thread: the source is positional and
 * thread-safe, errors stay in the slot. */
static void fill_slot(struct pipeline *p, struct decoder *d, struct slot *s)
{
	s->ret = 0;
	s->read_failed = false;
	if (s->disk > 0) {
		if (!s->err && !(s->err = calloc(1, sizeof(*s->err)))) {
			s->ret = -ENOMEM;
			return;
		}
		if (d->in_cap < s->disk) {
			uint8_t *n = fileio_buffer_alloc(p->batch_bytes);
			if (!n) {
				s->ret = -ENOMEM;
				return;
			}
			free(d->in);
			d->in = n;
			d->in_cap = p->batch_bytes;
		}
		s->ret = source_read_at(p->r->src, d->in, s->disk, s->pos, s->err);
		if (s->ret < 0) {
			s->read_failed = true;
			return;
		}
	}
	decode_slot(p->r, p->in, d, d->in, s);
}

/* Takes the next batch if its slot is free (call with the lock held). */
static struct slot *claim_slot(struct pipeline *p)
{
	if (p->next_claim >= p->nbatches)
		return NULL;
	struct slot *s = &p->slots[p->next_claim % p->nslots];
	if (s->state != SLOT_FREE)
		return NULL;
	s->state = SLOT_BUSY;
	s->seq = p->next_claim++;
	p->in_flight++;
	const struct batch *b = &p->batches[s->seq];
	s->first = b->first;
	s->count = b->count;
	s->disk = b->disk;
	s->pos = b->pos;
	return s;
}

struct worker_arg {
	struct pipeline *p;
	struct decoder dec;
};

/* Workers read as well as decompress: reading on the calling thread made
 * the workers wait for it while it hashed and wrote the previous batch. */
static void *worker_main(void *arg)
{
	struct worker_arg *wa = arg;
	struct pipeline *p = wa->p;
	batch_thread_mark();
	pthread_mutex_lock(&p->lock);
	while (!p->quit) {
		struct slot *s = claim_slot(p);
		if (!s) {
			p->idle++;
			pthread_cond_wait(&p->work, &p->lock);
			p->idle--;
			continue;
		}
		pthread_mutex_unlock(&p->lock);
		fill_slot(p, &wa->dec, s);
		pthread_mutex_lock(&p->lock);
		s->state = SLOT_DONE;
		/* Wake the calling thread only for the slot it waits for. */
		if (p->waiting && s->seq == p->wants)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* One per online CPU but one: the calling thread decodes as well while it
 * waits (stream_fast).  On two cores, one worker and a 3-slot ring took the
 * same time as two workers and 6 slots, with 0.8 MiB less memory. */
static unsigned default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN) - 1;
	return n < 1 ? 0u : n > (long)MAX_WORKERS ? MAX_WORKERS : (unsigned)n;
}

static int deliver_fragment(struct squashfs_reader *r, const struct inode *in,
			    const struct stream_sel *sel, struct abota_error *err)
{
	uint32_t bs = r->sb.block_size;
	size_t tail = (size_t)(in->size % bs);
	if (!r->frag_valid || r->frag_idx != in->frag_idx) {
		struct frag f;
		int ret = frag_lookup(r, in, &f, err);
		if (ret < 0)
			return ret;
		if (!r->frag_buf && !(r->frag_buf = malloc(2 * (size_t)bs)))
			return abota_error_set(err, -ENOMEM, "out of memory");
		r->frag_valid = false;
		size_t disk = f.size & BLOCK_SIZE_MASK;
		uint8_t *raw = r->frag_buf + bs;
		ret = read_raw(r, f.start, raw, disk, err, "fragment block");
		if (ret < 0)
			return ret;
		if (f.size & BLOCK_UNCOMPRESSED) {
			memcpy(r->frag_buf, raw, disk);
			r->frag_len = disk;
		} else if (decode(&r->dec, raw, disk, r->frag_buf, bs, &r->frag_len) < 0) {
			return corrupt(err, "inode %u: fragment block %u does not decompress", in->ino,
				       in->frag_idx);
		}
		r->frag_idx = in->frag_idx;
		r->frag_valid = true;
	}
	if (in->frag_off > r->frag_len || tail > r->frag_len - in->frag_off)
		return corrupt(err, "inode %u: tail end beyond fragment block %u", in->ino,
			       in->frag_idx);
	return sel->sink(sel->ctx, (uint64_t)in->nblocks * bs, r->frag_buf + in->frag_off, tail, err);
}

/* Slots in flight: enough to keep every worker busy while the calling
 * thread runs the sink, few enough that the buffers stay small. */
static size_t pipeline_slots(unsigned workers, size_t batch_bytes, size_t nbatches)
{
	size_t n = workers ? SLOT_BUDGET / batch_bytes : 1;
	if (workers && n < workers + 1u)
		n = workers + 1u;
	if (workers && n > SLOTS_PER_WORKER * workers)
		n = SLOTS_PER_WORKER * workers;
	return n > nbatches && nbatches > 0 ? nbatches : n;
}

static int pipeline_alloc(struct pipeline *p, size_t batch_bytes, struct abota_error *err)
{
	p->slots = calloc(p->nslots, sizeof(*p->slots));
	if (!p->slots)
		return abota_error_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < p->nslots; i++) {
		p->slots[i].out = fileio_buffer_alloc(batch_bytes); /* pwrite from it */
		if (!p->slots[i].out)
			return abota_error_set(err, -ENOMEM, "out of memory");
	}
	return 0;
}

static void pipeline_free(struct pipeline *p)
{
	if (!p->slots)
		return;
	for (size_t i = 0; i < p->nslots; i++) {
		free(p->slots[i].out);
		free(p->slots[i].err);
	}
	free(p->slots);
}

/* The error of a failed slot, in the words of the serial path. */
static int slot_error(const struct pipeline *p, const struct slot *s, struct abota_error *err)
{
	if (!s->read_failed && s->ret == -EBADMSG)
		return corrupt(err, "inode %u: block %zu does not decompress to %zu bytes",
			       p->in->ino, s->bad_block, block_len(p->r, p->in, s->bad_block));
	if (!s->read_failed)
		return abota_error_set(err, -ENOMEM, "out of memory");
	if (err)
		*err = *s->err;
	abota_error_prefix(err, "squashfs: inode %u: reading file data", p->in->ino);
	return s->ret;
}

/* Groups the wanted blocks into batches of at most p->per consecutive
 * blocks (skipped blocks are neither read nor decoded). */
static int plan_batches(struct pipeline *p, const struct stream_sel *sel, struct abota_error *err)
{
	const struct inode *in = p->in;
	uint64_t pos = in->blocks_start;
	size_t n = 0, cap = 0;
	struct batch *b = NULL;
	for (size_t i = 0; i < in->nblocks; i++) {
		size_t disk = in->blocks[i] & BLOCK_SIZE_MASK;
		if (sel_wants(p->r, sel, i, block_len(p->r, in, i))) {
			if (n > 0 && b[n - 1].first + b[n - 1].count == i && b[n - 1].count < p->per) {
				b[n - 1].count++;
				b[n - 1].disk += disk;
			} else {
				if (n == cap) {
					size_t ncap = cap ? cap * 2 : 64;
					struct batch *nb = realloc(b, ncap * sizeof(*nb));
					if (!nb) {
						free(b);
						return abota_error_set(err, -ENOMEM, "out of memory");
					}
					b = nb;
					cap = ncap;
				}
				b[n++] = (struct batch){ .first = i, .count = 1, .pos = pos, .disk = disk };
			}
		}
		pos += disk;
	}
	p->batches = b;
	p->nbatches = n;
	/* Tell the source what will be read (an HTTP source then asks for
	 * exactly these bytes, in few requests). */
	struct source_range *r = n ? malloc(n * sizeof(*r)) : NULL;
	size_t k = 0;
	for (size_t i = 0; r && i < n; i++)
		if (b[i].disk)
			r[k++] = (struct source_range){ .off = b[i].pos, .len = b[i].disk };
	if (r)
		source_plan(p->r->src, r, k);
	free(r);
	return 0;
}

static int stream_fast(struct squashfs_reader *r, const struct inode *in, unsigned workers,
		       const struct stream_sel *sel, struct abota_error *err)
{
	uint32_t bs = r->sb.block_size;
	struct pipeline p = { .r = r, .in = in };
	p.per = BATCH_BYTES / bs ? BATCH_BYTES / bs : 1;
	p.batch_bytes = p.per * bs;
	int ret = plan_batches(&p, sel, err);
	if (ret < 0)
		return ret;
	if (!r->dec_ready) {
		if (decoder_init(&r->dec, r) < 0) {
			free(p.batches);
			return abota_error_set(err, -ENOMEM, "out of memory");
		}
		r->dec_ready = true;
	}
	/* Small files are not worth threads. */
	if (p.nbatches <= 1)
		workers = 0;
	p.nslots = pipeline_slots(workers, p.per * bs, p.nbatches);
	struct worker_arg *args = NULL;
	pthread_t *threads = NULL;
	unsigned started = 0;
	bool sync_ready = false;
	if (p.nbatches > 0) {
		ret = pipeline_alloc(&p, p.per * bs, err);
		if (ret < 0)
			goto out;
	}
	if (workers > 0) {
		if (pthread_mutex_init(&p.lock, NULL) != 0) {
			ret = abota_error_set(err, -ENOMEM, "cannot create a mutex");
			goto out;
		}
		if (pthread_cond_init(&p.work, NULL) != 0) {
			pthread_mutex_destroy(&p.lock);
			ret = abota_error_set(err, -ENOMEM, "cannot create a condition variable");
			goto out;
		}
		if (pthread_cond_init(&p.done, NULL) != 0) {
			pthread_cond_destroy(&p.work);
			pthread_mutex_destroy(&p.lock);
			ret = abota_error_set(err, -ENOMEM, "cannot create a condition variable");
			goto out;
		}
		sync_ready = true;
		args = calloc(workers, sizeof(*args));
		threads = calloc(workers, sizeof(*threads));
		if (!args || !threads) {
			ret = abota_error_set(err, -ENOMEM, "out of memory");
			goto out;
		}
		pthread_attr_t attr;
		if (pthread_attr_init(&attr) != 0) {
			ret = abota_error_set(err, -ENOMEM, "cannot create threads");
			goto out;
		}
		/* Decoders keep their state on the heap; a small stack keeps the
		 * RSS down. */
		pthread_attr_setstacksize(&attr, WORKER_STACK);
		for (unsigned i = 0; i < workers; i++) {
			args[i].p = &p;
			if (decoder_init(&args[i].dec, r) < 0)
				break;
			if (pthread_create(&threads[i], &attr, worker_main, &args[i]) != 0) {
				decoder_free(&args[i].dec);
				break;
			}
			started++;
		}
		pthread_attr_destroy(&attr);
		/* Without threads the calling thread reads and decodes each batch. */
	}

	struct forget forgot = { .start = in->blocks_start, .upto = in->blocks_start };
	for (size_t delivered = 0; ret == 0 && delivered < p.nbatches; delivered++) {
		struct slot *s = &p.slots[delivered % p.nslots];
		if (started) {
			pthread_mutex_lock(&p.lock);
			while (s->state != SLOT_DONE || s->seq != delivered) {
				/* The calling thread is a decoder too: rather than
				 * sleep until a worker delivers this batch, it
				 * decodes the next free one (one worker fewer than
				 * CPUs, default_workers()). */
				struct slot *ahead = claim_slot(&p);
				if (ahead) {
					pthread_mutex_unlock(&p.lock);
					fill_slot(&p, &r->dec, ahead);
					pthread_mutex_lock(&p.lock);
					ahead->state = SLOT_DONE;
					continue;
				}
				p.waiting = true;
				p.wants = delivered;
				pthread_cond_wait(&p.done, &p.lock);
				p.waiting = false;
			}
			pthread_mutex_unlock(&p.lock);
		} else {
			s = claim_slot(&p);
			fill_slot(&p, &r->dec, s);
		}
		ret = s->ret < 0 ? slot_error(&p, s, err)
				 : sel->sink(sel->ctx, (uint64_t)s->first * bs, s->out, s->out_len,
					     err);
		if (ret == 0)
			forget_read(r, &forgot, p.batches[delivered].pos + p.batches[delivered].disk,
				    delivered + 1 == p.nbatches);
		if (started)
			pthread_mutex_lock(&p.lock);
		s->state = SLOT_FREE;
		if (started) {
			/* Wake an idle worker only when the slots ahead run low:
			 * it then fills several in a row instead of being woken
			 * (and preempting this thread) for every batch.  One at a
			 * time: the next freed slot wakes another if needed. */
			p.in_flight--;
			if (p.idle && p.in_flight <= p.nslots / 2)
				pthread_cond_signal(&p.work);
			pthread_mutex_unlock(&p.lock);
		}
	}
out:
	if (started) {
		pthread_mutex_lock(&p.lock);
		p.quit = true;
		pthread_cond_broadcast(&p.work);
		pthread_mutex_unlock(&p.lock);
		for (unsigned i = 0; i < started; i++) {
			pthread_join(threads[i], NULL);
			decoder_free(&args[i].dec);
		}
	}
	if (sync_ready) {
		pthread_cond_destroy(&p.done);
		pthread_cond_destroy(&p.work);
		pthread_mutex_destroy(&p.lock);
	}
	free(args);
	free(threads);
	pipeline_free(&p);
	free(p.batches);
	/* The tail end last, once the ring and the workers are gone: its
	 * buffer (two blocks) then takes memory they gave back instead of
	 * adding to the peak. */
	if (ret == 0 && in->frag_idx != NO_FRAG &&
	    sel_wants(r, sel, in->nblocks, (size_t)(in->size % bs)))
		ret = deliver_fragment(r, in, sel, err);
	return ret;
}

int squashfs_reader_stream_at(struct squashfs_reader *r, const char *path,
			      const struct squashfs_stream_opts *opts, squashfs_sink_at_fn sink,
			      void *ctx, struct abota_error *err)
{
	struct inode in;
	uint32_t bs = r->sb.block_size;
	struct stream_sel sel = { .sink = sink, .ctx = ctx };
	uint64_t start = opts ? opts->start : 0;
	if (opts) {
		sel.want = opts->want;
		sel.want_ctx = opts->want_ctx;
	}
	if (start % bs != 0)
		return abota_error_set(err, -EINVAL,
				       "squashfs: '%s': start offset %llu is not a multiple of the block size %u",
				       path, (unsigned long long)start, bs);
	int ret = resolve(r, path, WANT_BLOCKS, &in, err);
	if (ret < 0)
		return ret;
	if (in.type != SQFS_INODE_FILE) {
		ret = abota_error_set(err, in.type == SQFS_INODE_DIR ? -EISDIR : -EINVAL,
				      "squashfs: '%s': not a regular file", path);
		goto out;
	}
	if (start > in.size) {
		ret = abota_error_set(err, -EINVAL, "squashfs: '%s': start offset %llu beyond its %llu bytes",
				      path, (unsigned long long)start, (unsigned long long)in.size);
		goto out;
	}
	sel.first = (size_t)(start / bs);
	ret = check_blocks(r, &in, err);
	if (ret < 0)
		goto out;
	if (r->workers == SQUASHFS_READER_SERIAL) {
		ret = stream_serial(r, &in, &sel, err);
	} else {
		unsigned workers = r->workers ? r->workers : default_workers();
		if (workers > MAX_WORKERS)
			workers = MAX_WORKERS;
		ret = stream_fast(r, &in, workers, &sel, err);
	}
	if (ret < 0)
		abota_error_prefix(err, "%s", path);
out:
	inode_clear(&in);
	return ret;
}

/* squashfs_reader_stream() on top of the offset-passing form. */
struct seq_sink {
	squashfs_sink_fn sink;
	void *ctx;
};

static int seq_sink_cb(void *p, uint64_t off, const void *buf, size_t len, struct abota_error *err)
{
	(void)off; /* every block is delivered, in order */
	struct seq_sink *s = p;
	return s->sink(s->ctx, buf, len, err);
}

int squashfs_reader_stream(struct squashfs_reader *r, const char *path, squashfs_sink_fn sink,
			   void *ctx, struct abota_error *err)
{
	struct seq_sink s = { .sink = sink, .ctx = ctx };
	return squashfs_reader_stream_at(r, path, NULL, seq_sink_cb, &s, err);
}

struct mem_sink {
	char *buf;
	size_t len, cap;
};

static int mem_sink_cb(void *ctx, const void *buf, size_t len, struct abota_error *err)
{
	struct mem_sink *m = ctx;
	if (len > m->cap - m->len)
		return abota_error_set(err, -EBADMSG, "squashfs: file longer than its size");
	memcpy(m->buf + m->len, buf, len);
	m->len += len;
	return 0;
}

int squashfs_reader_read_file(struct squashfs_reader *r, const char *path, size_t max_size,
			      char **data, size_t *len, struct abota_error *err)
{
	struct squashfs_entry e;
	int ret = squashfs_reader_lookup(r, path, &e, err);
	if (ret < 0)
		return ret;
	if (e.type != SQUASHFS_TYPE_FILE)
		return abota_error_set(err, e.type == SQUASHFS_TYPE_DIR ? -EISDIR : -EINVAL,
				       "squashfs: '%s': not a regular file", path);
	if (e.size > max_size || e.size >= SIZE_MAX)
		return abota_error_set(err, -EFBIG, "squashfs: '%s': %llu bytes exceed the limit of %zu",
				       path, (unsigned long long)e.size, max_size);
	struct mem_sink m = { .cap = (size_t)e.size };
	m.buf = malloc(m.cap + 1);
	if (!m.buf)
		return abota_error_set(err, -ENOMEM, "out of memory");
	ret = squashfs_reader_stream(r, path, mem_sink_cb, &m, err);
	if (ret == 0 && m.len != m.cap)
		ret = abota_error_set(err, -EBADMSG, "squashfs: '%s': short file", path);
	if (ret < 0) {
		free(m.buf);
		return ret;
	}
	m.buf[m.len] = '\0';
	*data = m.buf;
	*len = m.len;
	return 0;
}
