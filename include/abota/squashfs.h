/* squashfs.h - the squashfs image inside a bundle: writing and reading.
 *
 * Bundles are RAUC-compatible: a squashfs 4.0 image whose root holds the bundle
 * content (images, manifest.raucm, hooks, *.block-hash-index files), every
 * inode owned by uid/gid 0 (like `mksquashfs -all-root`), no xattrs, padded
 * with zeros to a multiple of 4096 bytes.  Images written here are read by the
 * Linux kernel, `unsquashfs` and RAUC; images written by `mksquashfs` (RAUC's
 * `rauc bundle`) are read by the reader below.
 *
 * Built on libsquashfs (squashfs-tools-ng); never spawns mksquashfs.
 *
 * Error codes: 0 or a negative errno-style code, with a message in the
 * optional struct abota_error.  A malformed image yields -EBADMSG, an
 * unsupported feature -ENOTSUP, a missing path -ENOENT, a path of the wrong
 * type -ENOTDIR/-EISDIR/-EINVAL, a size limit -EFBIG.  Out-parameters are
 * untouched on failure.
 */
#ifndef ABOTA_SQUASHFS_H
#define ABOTA_SQUASHFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "abota/error.h"
#include "abota/source.h"

/* Block size of RAUC's block-hash-index and of the image padding. */
#define SQUASHFS_PAD_SIZE 4096u
#define SQUASHFS_DEFAULT_BLOCK_SIZE (128u * 1024u)
/* Default compressor and level of squashfs_writer_open().  The zstd level is
 * the fastest one whose images are no larger than mksquashfs' gzip ones
 * (RAUC's default) on a typical ext4 rootfs: 6 for blocks below 256 KiB, 5
 * below 1 MiB, 4 for 1 MiB blocks (numbers in squashfs_writer.c). */
#define SQUASHFS_DEFAULT_COMPRESSOR "zstd"
#define SQUASHFS_ZSTD_DEFAULT_LEVEL 6
/* gzip is written with libdeflate, whose level 6 is as small as zlib's -9
 * (what mksquashfs uses) at a fraction of the time. */
#define SQUASHFS_GZIP_DEFAULT_LEVEL 6

/* Name and path limits (the kernel's SQUASHFS_NAME_LEN and PATH_MAX). */
#define SQUASHFS_NAME_MAX 256u
#define SQUASHFS_PATH_MAX 4096u

/* ------------------------------------------------------------------ */
/* Writer                                                              */
/* ------------------------------------------------------------------ */

struct squashfs_writer;

struct squashfs_writer_opts {
	/* "zstd" (default when NULL), "gzip", "xz" or "lz4". */
	const char *compressor;
	/* Compression level; 0 = the module default for that compressor
	 * (zstd: SQUASHFS_ZSTD_DEFAULT_LEVEL, lower for larger blocks, see
	 * above; gzip: SQUASHFS_GZIP_DEFAULT_LEVEL; xz: 6).  lz4 has no
	 * levels: any non-zero level selects lz4hc. */
	int level;
	/* Data block size: a power of two from 4 KiB to 1 MiB; 0 = 128 KiB.
	 * Larger blocks compress better and faster (1 MiB with zstd is about
	 * twice as fast as 128 KiB for a smaller image) but every random read
	 * of a file (streaming, adaptive updates) costs a whole block. */
	uint32_t block_size;
	/* Compression threads; 0 = one per online CPU. */
	unsigned workers;
	/* Modification time of every inode and of the super block, seconds
	 * since the epoch; 0 = the time of squashfs_writer_open(). */
	uint32_t mtime;
	/* Optional progress callback, called from the calling thread after
	 * each chunk of file data read by squashfs_writer_add_file() with the
	 * bytes of that file read so far. */
	void (*progress)(void *ctx, const char *path, uint64_t done);
	void *progress_ctx;
};

/* squashfs_writer_add_file() flags. */
/* Also compute RAUC's block-hash-index: the raw 32-byte SHA-256 digests of
 * every 4096-byte block, no salt, no header.  The file size must then be a
 * non-zero multiple of 4096 below 2^27 blocks (RAUC's rule), else -EINVAL. */
#define SQUASHFS_ADD_BLOCK_INDEX 0x1u
/* Use the source file's mtime instead of opts.mtime. */
#define SQUASHFS_ADD_SOURCE_MTIME 0x2u

/* What squashfs_writer_add_file() saw while streaming the file in. */
struct squashfs_file_digest {
	uint8_t sha256[32];
	uint64_t size;
	/* malloc'd index (SQUASHFS_ADD_BLOCK_INDEX only, else NULL); the caller
	 * frees it with free(). */
	uint8_t *block_index;
	size_t block_index_len;
};

/* Starts an image at offset 0 of out_fd, which must be an empty regular file
 * opened O_RDWR (data blocks are read back to deduplicate them).  opts may be
 * NULL for the defaults.  The fd stays owned by the caller. */
int squashfs_writer_open(int out_fd, const struct squashfs_writer_opts *opts,
			 struct squashfs_writer **out, struct abota_error *err);

/* Paths below are relative to the image root ("manifest.raucm",
 * "hooks/install-check"); components must not be empty, "." or "..", longer
 * than SQUASHFS_NAME_MAX.  Missing parent directories are created with mode
 * 0755.  A name that exists already is -EEXIST.  Argument and name errors
 * leave the writer usable; any other failure of an add_* call leaves it
 * failed (later calls return -EIO), because part of the data may be in the
 * image already. */

/* Streams the regular file (or pipe) src_fd from its current offset to its end
 * into the image, computing its SHA-256 (and the block index if asked) on the
 * way.  Mode bits (07777) come from src_fd.  `out` is optional. */
int squashfs_writer_add_file(struct squashfs_writer *w, const char *path, int src_fd,
			     unsigned flags, struct squashfs_file_digest *out,
			     struct abota_error *err);

/* Adds a small generated file (manifest, index file) from memory. */
int squashfs_writer_add_data(struct squashfs_writer *w, const char *path, const void *data,
			     size_t len, mode_t mode, struct abota_error *err);

/* Adds a directory (mode bits 07777).  Adding one that was created implicitly
 * as a parent just sets its mode. */
int squashfs_writer_add_dir(struct squashfs_writer *w, const char *path, mode_t mode,
			    struct abota_error *err);

/* Adds a symlink.  As RAUC allows it, the target must be a plain name in the
 * same directory: non-empty, no '/', not "." or "..". */
int squashfs_writer_add_symlink(struct squashfs_writer *w, const char *path,
				const char *target, struct abota_error *err);

/* Waits for the compression threads, writes inode, directory, fragment and id
 * tables and the super block, pads the image with zeros to a multiple of 4096
 * and returns the padded size (the file size of out_fd).  Nothing can be added
 * afterwards. */
int squashfs_writer_finish(struct squashfs_writer *w, uint64_t *image_size,
			   struct abota_error *err);

/* NULL-safe.  Stops the threads; does not remove what was written. */
void squashfs_writer_free(struct squashfs_writer *w);

/* ------------------------------------------------------------------ */
/* Reader                                                              */
/* ------------------------------------------------------------------ */

/* The image may be hostile: every structure is bounds-checked against the
 * image, recursion is limited to this depth and one walk to this many
 * entries. */
#define SQUASHFS_READER_MAX_DEPTH 64u
#define SQUASHFS_READER_MAX_ENTRIES (1u << 20)

/* A reader (like a writer) is used by one thread at a time. */
struct squashfs_reader;

enum squashfs_type {
	SQUASHFS_TYPE_FILE = 1,
	SQUASHFS_TYPE_DIR = 2,
	SQUASHFS_TYPE_SYMLINK = 3,
	SQUASHFS_TYPE_OTHER = 4, /* device, fifo, socket */
};

struct squashfs_entry {
	enum squashfs_type type;
	uint32_t mode;   /* permission bits, 07777 */
	uint64_t size;   /* file: bytes; symlink: target length; else 0 */
	uint32_t mtime;  /* seconds since the epoch */
	uint32_t inode;  /* inode number (for messages) */
};

struct squashfs_info {
	const char *compressor; /* "gzip", "zstd", ... (static string) */
	uint32_t block_size;
	uint64_t bytes_used;    /* without the padding */
	uint32_t inode_count;
	uint32_t mtime;
};

/* Opens the squashfs in [0, image_size) of src (image_size <= source size).
 * Every read goes through source_read_at(), on the calling thread only, so
 * the source may be a verified view that is not thread-safe.  Validates the
 * super block: magic, version 4.0, block size, bytes_used <= image_size, table
 * offsets inside the image, root inode reference, compressor supported.  src
 * must outlive the reader. */
int squashfs_reader_open(struct source *src, uint64_t image_size,
			 struct squashfs_reader **out, struct abota_error *err);

void squashfs_reader_info(const struct squashfs_reader *r, struct squashfs_info *info);

/* Looks a path up ("" or "/" is the root; a leading '/' is allowed; symlinks
 * are not followed).  -ENOENT if missing, -ENOTDIR if a parent is not a
 * directory. */
int squashfs_reader_lookup(struct squashfs_reader *r, const char *path,
			   struct squashfs_entry *out, struct abota_error *err);

/* Walk callback: path is relative ("dir/file"), valid during the call.
 * Return 0 to continue, a positive value to stop the walk (walk returns 0),
 * or a negative code to abort it (walk returns that code). */
typedef int (*squashfs_walk_fn)(void *ctx, const char *path, const struct squashfs_entry *e,
				struct abota_error *err);

/* Calls cb for every entry below the root, depth first, a directory before
 * its entries, names in the image's (sorted) order. */
int squashfs_reader_walk(struct squashfs_reader *r, squashfs_walk_fn cb, void *ctx,
			 struct abota_error *err);

/* Reads a whole regular file of at most max_size bytes (else -EFBIG) into a
 * malloc'd, NUL-terminated buffer (the NUL is not counted in *len). */
int squashfs_reader_read_file(struct squashfs_reader *r, const char *path, size_t max_size,
			      char **data, size_t *len, struct abota_error *err);

/* Sink for squashfs_reader_stream(): called in file order from the calling
 * thread with chunks of up to about 1 MiB; return 0 or a negative code to
 * stop (stream returns it). */
typedef int (*squashfs_sink_fn)(void *ctx, const void *buf, size_t len, struct abota_error *err);

/* Streams a regular file, in order, holes as zeros (-EISDIR/-EINVAL for
 * other types).  Data blocks are read on the calling thread and decompressed
 * by worker threads (libdeflate for gzip, libzstd for zstd, libsquashfs for
 * the others) while the sink runs.  The whole block list is checked before
 * the first chunk; a block that fails to decompress (or a source read error)
 * fails the call after the chunks before it were delivered, so the output of
 * a failed call must be discarded. */
int squashfs_reader_stream(struct squashfs_reader *r, const char *path, squashfs_sink_fn sink,
			   void *ctx, struct abota_error *err);

/* Part of a file, for resuming and for adaptive updates: blocks before
 * `start` (a multiple of the block size) and blocks `want` declines are not
 * read from the source (not downloaded, not decompressed); the sink gets
 * the image offset of every chunk it receives, still in file order.  `want`
 * is asked about every data block at or after start, and about the tail end
 * (the bytes after the last full block), with the block's offset and
 * length. */
typedef bool (*squashfs_want_fn)(void *ctx, uint64_t off, size_t len);
typedef int (*squashfs_sink_at_fn)(void *ctx, uint64_t off, const void *buf, size_t len,
				   struct abota_error *err);
struct squashfs_stream_opts {
	uint64_t start;
	squashfs_want_fn want; /* NULL = every block */
	void *want_ctx;
};

/* squashfs_reader_stream() of a selection of blocks (opts NULL = all). */
int squashfs_reader_stream_at(struct squashfs_reader *r, const char *path,
			      const struct squashfs_stream_opts *opts, squashfs_sink_at_fn sink,
			      void *ctx, struct abota_error *err);

/* Decompression threads for squashfs_reader_stream(), besides the calling
 * thread, which decodes too while it waits: 0 = one per online CPU but one
 * (the default; none on one CPU); SQUASHFS_READER_SERIAL = no threads,
 * decompress with libsquashfs's data reader on the calling thread (the
 * reference path). */
#define SQUASHFS_READER_SERIAL 0xFFFFFFFFu
void squashfs_reader_set_workers(struct squashfs_reader *r, unsigned workers);

/* Reads a symlink target into a malloc'd NUL-terminated string. */
int squashfs_reader_readlink(struct squashfs_reader *r, const char *path, char **target,
			     struct abota_error *err);

/* NULL-safe.  Does not close the source. */
void squashfs_reader_free(struct squashfs_reader *r);

#endif
