/* squashfs_writer.c - builds the bundle's squashfs image with libsquashfs.
 *
 * File data is streamed in as it is added: the calling thread reads the input
 * in large chunks, hashes it (SHA-256, optionally RAUC's per-4-KiB block
 * index) and hands it to libsquashfs' block processor, whose worker threads
 * compress the blocks while the next chunk is read.  All-zero blocks become
 * sparse blocks, tail ends go into shared fragment blocks, identical files and
 * fragments are stored once (all done by the block processor / block writer).
 * Inodes and directory tables are only written by squashfs_writer_finish(),
 * so the manifest (which holds the images' digests) can be added last.
 *
 * Layout of the result (as mksquashfs): super block, [compressor options],
 * data and fragment blocks, inode table, directory table, fragment table, id
 * table; no export table, no xattrs; zero padding to 4096.
 */
#include "abota/fileio.h"
#include "abota/squashfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libdeflate.h>
#include <openssl/evp.h>

#include <sqfs/block.h>
#include <sqfs/block_processor.h>
#include <sqfs/block_writer.h>
#include <sqfs/compressor.h>
#include <sqfs/dir_writer.h>
#include <sqfs/error.h>
#include <sqfs/frag_table.h>
#include <sqfs/id_table.h>
#include <sqfs/inode.h>
#include <sqfs/io.h>
#include <sqfs/meta_writer.h>
#include <sqfs/super.h>

#include "abota/log.h"
#include "bundle/squashfs_int.h"

/* Input chunk: small enough to stay in the L2 cache between read(), hashing
 * and the copy into the block processor, large enough that syscalls do not
 * matter. */
#define READ_CHUNK (512u * 1024u)
/* Blocks queued per compression thread before add_file waits. */
#define BACKLOG_PER_WORKER 10u
#define MAX_WORKERS 64u
/* RAUC: index size below 4 GiB, i.e. fewer than 2^27 blocks. */
#define BLOCK_INDEX_MAX_BLOCKS (1ull << 27)

/* --- output file: sqfs_file_t over the caller's fd --- */

struct out_file {
	sqfs_file_t base;
	int fd;
	uint64_t size;
	int error; /* errno of the last failed call, for messages */
};

static int out_read_at(sqfs_file_t *file, sqfs_u64 off, void *buf, size_t len)
{
	struct out_file *f = (struct out_file *)file;
	if (off > f->size || len > f->size - off)
		return SQFS_ERROR_OUT_OF_BOUNDS;
	struct abota_error e = { 0 };
	if (fileio_pread_full(f->fd, buf, len, off, &e) < 0) {
		f->error = -e.code;
		return SQFS_ERROR_IO;
	}
	return 0;
}

static int out_write_at(sqfs_file_t *file, sqfs_u64 off, const void *buf, size_t len)
{
	struct out_file *f = (struct out_file *)file;
	if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off)
		return SQFS_ERROR_OVERFLOW;
	struct abota_error e = { 0 };
	if (fileio_pwrite_full(f->fd, buf, len, off, &e) < 0) {
		f->error = -e.code;
		return SQFS_ERROR_IO;
	}
	if (off + len > f->size)
		f->size = off + len;
	return 0;
}

static sqfs_u64 out_get_size(const sqfs_file_t *file)
{
	return ((const struct out_file *)file)->size;
}

static int out_truncate(sqfs_file_t *file, sqfs_u64 size)
{
	struct out_file *f = (struct out_file *)file;
	if (size > (uint64_t)INT64_MAX)
		return SQFS_ERROR_OVERFLOW;
	if (ftruncate(f->fd, (off_t)size) < 0) {
		f->error = errno;
		return SQFS_ERROR_IO;
	}
	f->size = size;
	return 0;
}

static void out_destroy(sqfs_object_t *obj)
{
	/* Embedded in the writer; nothing to free. */
	(void)obj;
}

/* --- the tree of entries, serialized at finish --- */

struct node {
	char *name; /* NULL for the root */
	struct node *parent;
	struct node **kids;
	size_t nkids, kids_cap;
	uint16_t mode; /* S_IFxxx | permission bits */
	uint32_t mtime;
	bool explicit_dir;
	/* Regular files: created and updated by the block processor until
	 * sqfs_block_processor_finish(), so the node must not move. */
	sqfs_inode_generic_t *inode;
	char *target; /* symlinks */
	uint32_t ino;
	uint64_t iref;
};

struct squashfs_writer {
	struct out_file file;
	sqfs_compressor_t *cmp;
	sqfs_compressor_t *uncmp;
	sqfs_block_writer_t *blkwr;
	sqfs_frag_table_t *frag;
	sqfs_block_processor_t *proc;
	sqfs_id_table_t *ids;
	sqfs_meta_writer_t *im;
	sqfs_meta_writer_t *dm;
	sqfs_dir_writer_t *dirwr;
	sqfs_super_t super;
	struct node root;
	uint32_t mtime;
	uint32_t inode_count;
	uint8_t *buf;
	EVP_MD *sha256;
	void (*progress)(void *ctx, const char *path, uint64_t done);
	void *progress_ctx;
	bool failed;
	bool finished;
};

/* Recursion: one level per directory; the tree comes from bundle_create, which nests at
 * most 16 directories (add_tree). */
/* NOLINTNEXTLINE(misc-no-recursion) */
static void node_free(struct node *n)
{
	for (size_t i = 0; i < n->nkids; i++) {
		node_free(n->kids[i]);
		free(n->kids[i]);
	}
	free(n->kids);
	free(n->name);
	free(n->inode);
	free(n->target);
}

/* Writes an error for a failed libsquashfs call; I/O errors of the output
 * file carry their errno. */
static int sqfs_fail(struct squashfs_writer *w, struct abota_error *err, int ret,
		     const char *what)
{
	if (ret == SQFS_ERROR_IO && w->file.error != 0) {
		int e = w->file.error;
		return abota_error_set(err, -e, "squashfs: %s: %s", what, strerror(e));
	}
	return abota_error_set(err, squashfs_sqfs_errno(ret), "squashfs: %s: %s", what,
			       squashfs_sqfs_strerror(ret));
}

/* --- compressor wrapper ---
 * libsquashfs' lz4 compressor returns its output even when it is not smaller
 * than the input, so tiny metadata blocks (the 4-byte id table) come out
 * "compressed" and larger; unsquashfs 4.5 rejects such blocks ("failed to
 * read id table block").  This wrapper stores every block that does not
 * shrink uncompressed, as mksquashfs does, for every compressor. */

struct shrink_cmp {
	sqfs_compressor_t base;
	sqfs_compressor_t *inner;
};

static sqfs_compressor_t *shrink_wrap(sqfs_compressor_t *inner);

static void shrink_get_configuration(const sqfs_compressor_t *cmp, sqfs_compressor_config_t *cfg)
{
	const struct shrink_cmp *s = (const struct shrink_cmp *)cmp;
	s->inner->get_configuration(s->inner, cfg);
}

static int shrink_write_options(sqfs_compressor_t *cmp, sqfs_file_t *file)
{
	struct shrink_cmp *s = (struct shrink_cmp *)cmp;
	return s->inner->write_options(s->inner, file);
}

static int shrink_read_options(sqfs_compressor_t *cmp, sqfs_file_t *file)
{
	struct shrink_cmp *s = (struct shrink_cmp *)cmp;
	return s->inner->read_options(s->inner, file);
}

static sqfs_s32 shrink_do_block(sqfs_compressor_t *cmp, const sqfs_u8 *in, sqfs_u32 size,
				sqfs_u8 *out, sqfs_u32 outsize)
{
	struct shrink_cmp *s = (struct shrink_cmp *)cmp;
	sqfs_s32 ret = s->inner->do_block(s->inner, in, size, out, outsize);
	/* 0 tells the callers to store the block uncompressed. */
	return ret > 0 && (sqfs_u32)ret >= size ? 0 : ret;
}

static void shrink_destroy(sqfs_object_t *obj)
{
	struct shrink_cmp *s = (struct shrink_cmp *)obj;
	sqfs_destroy(s->inner);
	free(s);
}

static sqfs_object_t *shrink_copy(const sqfs_object_t *obj)
{
	const struct shrink_cmp *s = (const struct shrink_cmp *)obj;
	sqfs_compressor_t *inner = sqfs_copy(s->inner);
	if (!inner)
		return NULL;
	sqfs_compressor_t *w = shrink_wrap(inner);
	if (!w)
		sqfs_destroy(inner);
	return (sqfs_object_t *)w;
}

/* Takes ownership of inner only on success. */
static sqfs_compressor_t *shrink_wrap(sqfs_compressor_t *inner)
{
	struct shrink_cmp *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->inner = inner;
	s->base.base.destroy = shrink_destroy;
	s->base.base.copy = shrink_copy;
	s->base.get_configuration = shrink_get_configuration;
	s->base.write_options = shrink_write_options;
	s->base.read_options = shrink_read_options;
	s->base.do_block = shrink_do_block;
	return &s->base;
}

/* --- gzip through libdeflate ---
 * squashfs "gzip" blocks are zlib streams.  libdeflate writes them several
 * times faster than zlib and smaller at the same level (on a 512 MiB ext4
 * rootfs, level 6 is as small as zlib -9 at a quarter of the time), so gzip
 * images stay practical for kernels without zstd support. */

struct deflate_cmp {
	sqfs_compressor_t base;
	struct libdeflate_compressor *c;
	int level;
	uint32_t block_size;
};

static sqfs_compressor_t *deflate_new(int level, uint32_t block_size);

static void deflate_get_configuration(const sqfs_compressor_t *cmp, sqfs_compressor_config_t *cfg)
{
	const struct deflate_cmp *d = (const struct deflate_cmp *)cmp;
	memset(cfg, 0, sizeof(*cfg));
	cfg->id = SQFS_COMP_GZIP;
	cfg->block_size = d->block_size;
	cfg->level = (sqfs_u32)d->level;
	cfg->opt.gzip.window_size = SQFS_GZIP_DEFAULT_WINDOW;
}

static int deflate_write_options(sqfs_compressor_t *cmp, sqfs_file_t *file)
{
	/* Informational only (readers need nothing to inflate), written in
	 * the layout squashfs-tools use: level, window, strategies. */
	const struct deflate_cmp *d = (const struct deflate_cmp *)cmp;
	if (d->level == SQFS_GZIP_DEFAULT_LEVEL)
		return 0;
	uint8_t b[10] = { 0x08, 0x80 }; /* uncompressed metadata block, 8 bytes */
	b[2] = (uint8_t)d->level;
	b[6] = SQFS_GZIP_DEFAULT_WINDOW;
	int ret = file->write_at(file, sizeof(sqfs_super_t), b, sizeof(b));
	return ret != 0 ? ret : (int)sizeof(b);
}

static int deflate_read_options(sqfs_compressor_t *cmp, sqfs_file_t *file)
{
	(void)cmp;
	(void)file;
	return 0;
}

static sqfs_s32 deflate_do_block(sqfs_compressor_t *cmp, const sqfs_u8 *in, sqfs_u32 size,
				 sqfs_u8 *out, sqfs_u32 outsize)
{
	struct deflate_cmp *d = (struct deflate_cmp *)cmp;
	/* 0 (does not fit) makes the caller store the block uncompressed. */
	return (sqfs_s32)libdeflate_zlib_compress(d->c, in, size, out, outsize);
}

static void deflate_destroy(sqfs_object_t *obj)
{
	struct deflate_cmp *d = (struct deflate_cmp *)obj;
	libdeflate_free_compressor(d->c);
	free(d);
}

static sqfs_object_t *deflate_copy(const sqfs_object_t *obj)
{
	/* A libdeflate compressor is not thread-safe: one per worker. */
	const struct deflate_cmp *d = (const struct deflate_cmp *)obj;
	return (sqfs_object_t *)deflate_new(d->level, d->block_size);
}

static sqfs_compressor_t *deflate_new(int level, uint32_t block_size)
{
	struct deflate_cmp *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->c = libdeflate_alloc_compressor(level);
	if (!d->c) {
		free(d);
		return NULL;
	}
	d->level = level;
	d->block_size = block_size;
	d->base.base.destroy = deflate_destroy;
	d->base.base.copy = deflate_copy;
	d->base.get_configuration = deflate_get_configuration;
	d->base.write_options = deflate_write_options;
	d->base.read_options = deflate_read_options;
	d->base.do_block = deflate_do_block;
	return &d->base;
}

/* zstd: the fastest level whose images are no larger than mksquashfs' gzip
 * -9 ones (what `rauc bundle` makes), with room for a verity tree, measured
 * on a 512 MiB ext4 rootfs of binaries and libraries (bench/mkrootfs.sh).
 * Larger blocks give zstd more context, so a lower level suffices:
 *   block    level  size vs gzip   time (2 vCPU)
 *   128 KiB    5      +0.2 %        2.8 s   (too large)
 *   128 KiB    6      -1.8 %        3.7 s
 *   256 KiB    5      -1.2 %        3.0 s
 *   1 MiB      4      -2.6 %        2.0 s
 * (mksquashfs gzip: 30 s). */
static int zstd_default_level(uint32_t block_size)
{
	if (block_size >= 1024 * 1024)
		return 4;
	if (block_size >= 256 * 1024)
		return 5;
	return SQUASHFS_ZSTD_DEFAULT_LEVEL;
}

static int default_level(int comp_id, uint32_t block_size)
{
	switch (comp_id) {
	case SQFS_COMP_ZSTD:
		return zstd_default_level(block_size);
	case SQFS_COMP_GZIP:
		return SQUASHFS_GZIP_DEFAULT_LEVEL;
	case SQFS_COMP_XZ:
		return SQFS_XZ_DEFAULT_LEVEL;
	default:
		return 0;
	}
}

static int make_compressors(struct squashfs_writer *w, const char *name, int level,
			    uint32_t block_size, struct abota_error *err)
{
	int id = squashfs_compressor_id(name);
	if (id == 0)
		return abota_error_set(err, -ENOTSUP,
				       "squashfs: unsupported compressor '%s' (use zstd, gzip, xz or lz4)",
				       name);
	if (level == 0)
		level = default_level(id, block_size);
	uint16_t flags = 0;
	int min = 0, max = 0;
	switch (id) {
	case SQFS_COMP_ZSTD:
		min = SQFS_ZSTD_MIN_LEVEL;
		max = SQFS_ZSTD_MAX_LEVEL;
		break;
	case SQFS_COMP_GZIP:
		min = SQFS_GZIP_MIN_LEVEL;
		max = SQFS_GZIP_MAX_LEVEL;
		break;
	case SQFS_COMP_XZ:
		min = SQFS_XZ_MIN_LEVEL;
		max = SQFS_XZ_MAX_LEVEL;
		break;
	case SQFS_COMP_LZ4:
		/* lz4 has no levels; any level asks for the HC variant. */
		if (level != 0)
			flags |= SQFS_COMP_FLAG_LZ4_HC;
		break;
	}
	if (id != SQFS_COMP_LZ4 && (level < min || level > max))
		return abota_error_set(err, -EINVAL,
				       "squashfs: %s level %d out of range %d..%d", name, level,
				       min, max);
	sqfs_compressor_config_t cfg;
	int ret = sqfs_compressor_config_init(&cfg, (SQFS_COMPRESSOR)id, block_size, flags);
	if (ret != 0)
		return sqfs_fail(w, err, ret, "compressor configuration");
	if (id != SQFS_COMP_LZ4)
		cfg.level = (sqfs_u32)level;
	sqfs_compressor_t *inner = NULL;
	if (id == SQFS_COMP_GZIP) {
		inner = deflate_new(level, block_size);
		if (!inner)
			return abota_error_set(err, -ENOMEM, "squashfs: cannot create a gzip compressor");
	} else {
		ret = sqfs_compressor_create(&cfg, &inner);
		if (ret != 0)
			return sqfs_fail(w, err, ret, "creating the compressor");
	}
	w->cmp = shrink_wrap(inner);
	if (!w->cmp) {
		sqfs_destroy(inner);
		return abota_error_set(err, -ENOMEM, "out of memory");
	}
	/* The block processor reads fragment blocks back to make sure that
	 * deduplicated tail ends really are equal (not only their hashes). */
	cfg.flags |= SQFS_COMP_FLAG_UNCOMPRESS;
	ret = sqfs_compressor_create(&cfg, &w->uncmp);
	if (ret != 0)
		return sqfs_fail(w, err, ret, "creating the decompressor");
	return 0;
}

static unsigned online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1u : (unsigned)n;
}

int squashfs_writer_open(int out_fd, const struct squashfs_writer_opts *opts,
			 struct squashfs_writer **out, struct abota_error *err)
{
	static const struct squashfs_writer_opts defaults = { 0 };
	if (!opts)
		opts = &defaults;
	const char *comp = opts->compressor ? opts->compressor : SQUASHFS_DEFAULT_COMPRESSOR;
	uint32_t block_size = opts->block_size ? opts->block_size : SQUASHFS_DEFAULT_BLOCK_SIZE;
	if (block_size < SQFS_MIN_BLOCK_SIZE || block_size > SQFS_MAX_BLOCK_SIZE ||
	    (block_size & (block_size - 1)) != 0)
		return abota_error_set(err, -EINVAL,
				       "squashfs: block size %u is not a power of two from 4 KiB to 1 MiB",
				       block_size);

	struct stat st;
	if (fstat(out_fd, &st) < 0)
		return abota_error_set(err, -errno, "squashfs: output: %s", strerror(errno));
	if (!S_ISREG(st.st_mode) || st.st_size != 0)
		return abota_error_set(err, -EINVAL,
				       "squashfs: output must be an empty regular file");
	int fl = fcntl(out_fd, F_GETFL);
	if (fl < 0 || (fl & O_ACCMODE) != O_RDWR || (fl & O_APPEND))
		return abota_error_set(err, -EINVAL,
				       "squashfs: output must be opened O_RDWR without O_APPEND");

	int ret;
	struct squashfs_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return abota_error_set(err, -ENOMEM, "out of memory");
	w->file.base.base.destroy = out_destroy;
	w->file.base.read_at = out_read_at;
	w->file.base.write_at = out_write_at;
	w->file.base.get_size = out_get_size;
	w->file.base.truncate = out_truncate;
	w->file.fd = out_fd;
	w->root.mode = S_IFDIR | 0755;
	w->mtime = opts->mtime ? opts->mtime : (uint32_t)time(NULL);
	w->root.mtime = w->mtime;
	w->progress = opts->progress;
	w->progress_ctx = opts->progress_ctx;
	sqfs_file_t *file = &w->file.base;

	ret = make_compressors(w, comp, opts->level, block_size, err);
	if (ret < 0)
		goto out;

	w->buf = malloc(READ_CHUNK);
	w->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!w->buf || !w->sha256) {
		ret = abota_error_set(err, -ENOMEM, "squashfs: out of memory");
		abota_error_add_openssl(err);
		goto out;
	}

	ret = sqfs_super_init(&w->super, block_size, w->mtime,
			      (SQFS_COMPRESSOR)squashfs_compressor_id(comp));
	if (ret == 0)
		ret = sqfs_super_write(&w->super, file);
	if (ret != 0) {
		ret = sqfs_fail(w, err, ret, "writing the super block");
		goto out;
	}
	ret = w->cmp->write_options(w->cmp, file);
	if (ret < 0) {
		ret = sqfs_fail(w, err, ret, "writing compressor options");
		goto out;
	}
	if (ret > 0)
		w->super.flags |= SQFS_FLAG_COMPRESSOR_OPTIONS;

	/* Device block size only matters with SQFS_BLK_ALIGN, never used. */
	w->blkwr = sqfs_block_writer_create(file, SQFS_DEVBLK_SIZE, 0);
	w->frag = sqfs_frag_table_create(0);
	w->ids = sqfs_id_table_create(0);
	w->im = sqfs_meta_writer_create(file, w->cmp, 0);
	/* Directory entries are only known at finish but must follow the
	 * inode table, so they are collected in memory. */
	w->dm = sqfs_meta_writer_create(file, w->cmp, SQFS_META_WRITER_KEEP_IN_MEMORY);
	w->dirwr = w->dm ? sqfs_dir_writer_create(w->dm, 0) : NULL;
	if (!w->blkwr || !w->frag || !w->ids || !w->im || !w->dm || !w->dirwr) {
		ret = abota_error_set(err, -ENOMEM, "squashfs: out of memory");
		goto out;
	}

	unsigned workers = opts->workers ? opts->workers : online_cpus();
	if (workers > MAX_WORKERS)
		workers = MAX_WORKERS;
	sqfs_block_processor_desc_t desc;
	memset(&desc, 0, sizeof(desc));
	desc.size = sizeof(desc);
	desc.max_block_size = block_size;
	desc.num_workers = workers;
	desc.max_backlog = workers * BACKLOG_PER_WORKER;
	desc.cmp = w->cmp;
	desc.wr = w->blkwr;
	desc.tbl = w->frag;
	desc.file = file;
	desc.uncmp = w->uncmp;
	ret = sqfs_block_processor_create_ex(&desc, &w->proc);
	if (ret != 0) {
		ret = sqfs_fail(w, err, ret, "starting compression threads");
		goto out;
	}
	*out = w;
	w = NULL;
	ret = 0;
out:
	squashfs_writer_free(w);
	return ret;
}

void squashfs_writer_free(struct squashfs_writer *w)
{
	if (!w)
		return;
	/* The block processor first: it joins its threads and may still hold
	 * pointers to the inodes in the tree.  Blocks still queued in its
	 * thread pool are not freed by its destructor, so an abandoned image
	 * (an error before finish) is drained first; what it writes is
	 * garbage nobody reads. */
	if (w->proc) {
		if (!w->finished)
			(void)sqfs_block_processor_sync(w->proc);
		sqfs_destroy(w->proc);
	}
	/* sqfs_destroy() ignores NULL. */
	sqfs_destroy(w->dirwr);
	sqfs_destroy(w->dm);
	sqfs_destroy(w->im);
	sqfs_destroy(w->ids);
	sqfs_destroy(w->frag);
	sqfs_destroy(w->blkwr);
	sqfs_destroy(w->uncmp);
	sqfs_destroy(w->cmp);
	node_free(&w->root);
	EVP_MD_free(w->sha256);
	free(w->buf);
	free(w);
}

/* --- paths --- */

static int check_usable(struct squashfs_writer *w, struct abota_error *err)
{
	if (w->finished)
		return abota_error_set(err, -EINVAL, "squashfs: image already finished");
	if (w->failed)
		return abota_error_set(err, -EIO, "squashfs: image is incomplete after an earlier error");
	return 0;
}

static struct node *find_kid(const struct node *dir, const char *name, size_t len)
{
	for (size_t i = 0; i < dir->nkids; i++) {
		const char *n = dir->kids[i]->name;
		if (strncmp(n, name, len) == 0 && n[len] == '\0')
			return dir->kids[i];
	}
	return NULL;
}

static struct node *add_kid(struct node *dir, const char *name, size_t len, uint16_t mode,
			    uint32_t mtime)
{
	if (dir->nkids == dir->kids_cap) {
		size_t cap = dir->kids_cap ? dir->kids_cap * 2 : 8;
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
		struct node **k = realloc(dir->kids, cap * sizeof(*k));
		if (!k)
			return NULL;
		dir->kids = k;
		dir->kids_cap = cap;
	}
	struct node *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->name = strndup(name, len);
	if (!n->name) {
		free(n);
		return NULL;
	}
	n->parent = dir;
	n->mode = mode;
	n->mtime = mtime;
	dir->kids[dir->nkids++] = n;
	return n;
}

/* Validates `path` and finds (creating missing directories) its parent.  On
 * success (and on -EEXIST) *leaf points into path at the last component. */
static int resolve_parent(struct squashfs_writer *w, const char *path, struct node **parent,
			  const char **leaf, struct abota_error *err)
{
	size_t total = strlen(path);
	if (total == 0 || total >= SQUASHFS_PATH_MAX)
		return abota_error_set(err, -EINVAL, "squashfs: '%s': empty or too long path", path);
	if (path[0] == '/')
		return abota_error_set(err, -EINVAL, "squashfs: '%s': path must be relative", path);
	/* Validate all components before creating anything. */
	for (const char *p = path;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (len == 0 || len > SQUASHFS_NAME_MAX || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.'))
			return abota_error_set(err, -EINVAL,
					       "squashfs: '%s': empty, '.', '..' or overlong component",
					       path);
		if (!slash)
			break;
		p = slash + 1;
	}
	struct node *dir = &w->root;
	const char *p = path;
	for (;;) {
		const char *slash = strchr(p, '/');
		if (!slash)
			break;
		size_t len = (size_t)(slash - p);
		struct node *k = find_kid(dir, p, len);
		if (!k) {
			k = add_kid(dir, p, len, S_IFDIR | 0755, w->mtime);
			if (!k)
				return abota_error_set(err, -ENOMEM, "out of memory");
		} else if (!S_ISDIR(k->mode)) {
			return abota_error_set(err, -ENOTDIR, "squashfs: '%s': '%.*s' is not a directory",
					       path, (int)len, p);
		}
		dir = k;
		p = slash + 1;
	}
	/* Set for -EEXIST too: add_dir may take over an implicit directory. */
	*parent = dir;
	*leaf = p;
	if (find_kid(dir, p, strlen(p)))
		return abota_error_set(err, -EEXIST, "squashfs: '%s': already in the image", path);
	return 0;
}

/* --- adding entries --- */

/* Digests of 4 KiB blocks for RAUC's block-hash-index.  Blocks may straddle
 * chunk boundaries, so a partial block is carried over. */
struct block_index {
	uint8_t *digests;
	size_t count, cap; /* in blocks */
	uint8_t carry[SQUASHFS_PAD_SIZE];
	size_t carry_len;
	EVP_MD_CTX *ctx;
	const EVP_MD *md;
	uint8_t zero_digest[32];
};

static bool block_is_zero(const uint8_t *p)
{
	/* Zero blocks are common in filesystem images; comparing is an order
	 * of magnitude faster than hashing. */
	static const uint8_t zero[16];
	return memcmp(p, zero, 16) == 0 && memcmp(p, p + 16, SQUASHFS_PAD_SIZE - 16) == 0;
}

static int index_block(struct block_index *bi, const uint8_t *blk)
{
	if (bi->count == bi->cap) {
		size_t cap = bi->cap ? bi->cap * 2 : 1024;
		uint8_t *d = realloc(bi->digests, cap * 32);
		if (!d)
			return -ENOMEM;
		bi->digests = d;
		bi->cap = cap;
	}
	uint8_t *out = bi->digests + bi->count * 32;
	if (block_is_zero(blk)) {
		memcpy(out, bi->zero_digest, 32);
	} else if (EVP_DigestInit_ex2(bi->ctx, bi->md, NULL) != 1 ||
		   EVP_DigestUpdate(bi->ctx, blk, SQUASHFS_PAD_SIZE) != 1 ||
		   EVP_DigestFinal_ex(bi->ctx, out, NULL) != 1) {
		return -EIO;
	}
	bi->count++;
	return 0;
}

static int index_update(struct block_index *bi, const uint8_t *p, size_t n)
{
	int ret;
	if (bi->carry_len > 0) {
		size_t take = SQUASHFS_PAD_SIZE - bi->carry_len;
		if (take > n)
			take = n;
		memcpy(bi->carry + bi->carry_len, p, take);
		bi->carry_len += take;
		p += take;
		n -= take;
		if (bi->carry_len < SQUASHFS_PAD_SIZE)
			return 0;
		if ((ret = index_block(bi, bi->carry)) < 0)
			return ret;
		bi->carry_len = 0;
	}
	for (; n >= SQUASHFS_PAD_SIZE; p += SQUASHFS_PAD_SIZE, n -= SQUASHFS_PAD_SIZE)
		if ((ret = index_block(bi, p)) < 0)
			return ret;
	memcpy(bi->carry, p, n);
	bi->carry_len = n;
	return 0;
}

static int read_some(int fd, uint8_t *buf, size_t len, size_t *got)
{
	for (;;) {
		ssize_t n = read(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		*got = (size_t)n;
		return 0;
	}
}

int squashfs_writer_add_file(struct squashfs_writer *w, const char *path, int src_fd,
			     unsigned flags, struct squashfs_file_digest *out,
			     struct abota_error *err)
{
	int ret = check_usable(w, err);
	if (ret < 0)
		return ret;
	if (flags & ~(SQUASHFS_ADD_BLOCK_INDEX | SQUASHFS_ADD_SOURCE_MTIME))
		return abota_error_set(err, -EINVAL, "squashfs: '%s': unknown flags 0x%x", path, flags);
	struct stat st;
	if (fstat(src_fd, &st) < 0)
		return abota_error_set(err, -errno, "squashfs: '%s': %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
		return abota_error_set(err, -EINVAL, "squashfs: '%s': source is not a regular file",
				       path);
	bool want_index = flags & SQUASHFS_ADD_BLOCK_INDEX;
	if (want_index && S_ISREG(st.st_mode)) {
		off_t pos = lseek(src_fd, 0, SEEK_CUR);
		uint64_t left = pos >= 0 && pos <= st.st_size ? (uint64_t)(st.st_size - pos) : 0;
		if (left == 0 || left % SQUASHFS_PAD_SIZE != 0 ||
		    left / SQUASHFS_PAD_SIZE >= BLOCK_INDEX_MAX_BLOCKS)
			return abota_error_set(err, -EINVAL,
					       "squashfs: '%s': a block-hash-index needs a size that is a non-zero multiple of 4096 below 512 GiB (size %llu)",
					       path, (unsigned long long)left);
	}
	struct node *parent;
	const char *leaf;
	ret = resolve_parent(w, path, &parent, &leaf, err);
	if (ret < 0)
		return ret;

	struct block_index bi = { 0 };
	EVP_MD_CTX *sha = EVP_MD_CTX_new();
	if (!sha || EVP_DigestInit_ex2(sha, w->sha256, NULL) != 1) {
		ret = abota_error_set(err, -ENOMEM, "squashfs: '%s': cannot start SHA-256", path);
		abota_error_add_openssl(err);
		goto out_free;
	}
	if (want_index) {
		static const uint8_t zero[SQUASHFS_PAD_SIZE];
		bi.md = w->sha256;
		bi.ctx = EVP_MD_CTX_new();
		if (!bi.ctx || EVP_Digest(zero, sizeof(zero), bi.zero_digest, NULL, w->sha256, NULL) != 1) {
			ret = abota_error_set(err, -ENOMEM, "squashfs: '%s': cannot start SHA-256",
					      path);
			abota_error_add_openssl(err);
			goto out_free;
		}
	}
	uint32_t mtime = w->mtime;
	if (flags & SQUASHFS_ADD_SOURCE_MTIME)
		mtime = st.st_mtime < 0 ? 0
			: (uint64_t)st.st_mtime > UINT32_MAX ? UINT32_MAX
							      : (uint32_t)st.st_mtime;
	struct node *n = add_kid(parent, leaf, strlen(leaf), (uint16_t)(S_IFREG | (st.st_mode & 07777)),
				 mtime);
	if (!n) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out_free;
	}
	/* From here on data may reach the image: failures poison the writer. */
	(void)posix_fadvise(src_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	ret = sqfs_block_processor_begin_file(w->proc, &n->inode, NULL, 0);
	if (ret != 0) {
		ret = sqfs_fail(w, err, ret, "starting a file");
		abota_error_prefix(err, "%s", path);
		goto out_fail;
	}
	uint64_t total = 0;
	for (;;) {
		size_t got = 0;
		ret = read_some(src_fd, w->buf, READ_CHUNK, &got);
		if (ret < 0) {
			ret = abota_error_set(err, ret, "squashfs: '%s': read failed: %s", path,
					      strerror(-ret));
			goto out_fail;
		}
		if (got == 0)
			break;
		if (EVP_DigestUpdate(sha, w->buf, got) != 1) {
			ret = abota_error_set(err, -EIO, "squashfs: '%s': SHA-256 failed", path);
			goto out_fail;
		}
		if (want_index && (ret = index_update(&bi, w->buf, got)) < 0) {
			ret = abota_error_set(err, ret, "squashfs: '%s': block index failed", path);
			goto out_fail;
		}
		ret = sqfs_block_processor_append(w->proc, w->buf, got);
		if (ret != 0) {
			ret = sqfs_fail(w, err, ret, "compressing");
			abota_error_prefix(err, "%s", path);
			goto out_fail;
		}
		total += got;
		if (w->progress)
			w->progress(w->progress_ctx, path, total);
	}
	ret = sqfs_block_processor_end_file(w->proc);
	if (ret != 0) {
		ret = sqfs_fail(w, err, ret, "finishing a file");
		abota_error_prefix(err, "%s", path);
		goto out_fail;
	}
	if (want_index && (total == 0 || bi.carry_len != 0 ||
			   total / SQUASHFS_PAD_SIZE >= BLOCK_INDEX_MAX_BLOCKS)) {
		ret = abota_error_set(err, -EINVAL,
				      "squashfs: '%s': a block-hash-index needs a size that is a non-zero multiple of 4096 below 512 GiB (read %llu bytes)",
				      path, (unsigned long long)total);
		goto out_fail;
	}
	struct squashfs_file_digest d = { .size = total };
	if (EVP_DigestFinal_ex(sha, d.sha256, NULL) != 1) {
		ret = abota_error_set(err, -EIO, "squashfs: '%s': SHA-256 failed", path);
		goto out_fail;
	}
	if (want_index) {
		d.block_index = bi.digests;
		d.block_index_len = bi.count * 32;
		bi.digests = NULL;
	}
	if (out)
		*out = d;
	else
		free(d.block_index);
	ret = 0;
	goto out_free;
out_fail:
	w->failed = true;
out_free:
	EVP_MD_CTX_free(sha);
	EVP_MD_CTX_free(bi.ctx);
	free(bi.digests);
	return ret;
}

int squashfs_writer_add_data(struct squashfs_writer *w, const char *path, const void *data,
			     size_t len, mode_t mode, struct abota_error *err)
{
	int ret = check_usable(w, err);
	if (ret < 0)
		return ret;
	struct node *parent;
	const char *leaf;
	ret = resolve_parent(w, path, &parent, &leaf, err);
	if (ret < 0)
		return ret;
	struct node *n = add_kid(parent, leaf, strlen(leaf), (uint16_t)(S_IFREG | (mode & 07777)),
				 w->mtime);
	if (!n)
		return abota_error_set(err, -ENOMEM, "out of memory");
	ret = sqfs_block_processor_begin_file(w->proc, &n->inode, NULL, 0);
	/* append must not see len 0: it would touch a block it never made. */
	if (ret == 0 && len > 0)
		ret = sqfs_block_processor_append(w->proc, data, len);
	if (ret == 0)
		ret = sqfs_block_processor_end_file(w->proc);
	if (ret != 0) {
		w->failed = true;
		ret = sqfs_fail(w, err, ret, "adding data");
		abota_error_prefix(err, "%s", path);
		return ret;
	}
	return 0;
}

int squashfs_writer_add_dir(struct squashfs_writer *w, const char *path, mode_t mode,
			    struct abota_error *err)
{
	int ret = check_usable(w, err);
	if (ret < 0)
		return ret;
	struct node *parent;
	const char *leaf;
	ret = resolve_parent(w, path, &parent, &leaf, err);
	if (ret == -EEXIST) {
		/* An implicitly created parent may be "added" once to set its
		 * mode; resolve_parent already proved the path is valid. */
		struct node *k = find_kid(parent, leaf, strlen(leaf));
		if (k && S_ISDIR(k->mode) && !k->explicit_dir) {
			k->mode = (uint16_t)(S_IFDIR | (mode & 07777));
			k->explicit_dir = true;
			abota_error_clear(err);
			return 0;
		}
		return ret;
	}
	if (ret < 0)
		return ret;
	struct node *n = add_kid(parent, leaf, strlen(leaf), (uint16_t)(S_IFDIR | (mode & 07777)),
				 w->mtime);
	if (!n)
		return abota_error_set(err, -ENOMEM, "out of memory");
	n->explicit_dir = true;
	return 0;
}

int squashfs_writer_add_symlink(struct squashfs_writer *w, const char *path,
				const char *target, struct abota_error *err)
{
	int ret = check_usable(w, err);
	if (ret < 0)
		return ret;
	size_t tlen = strlen(target);
	if (tlen == 0 || tlen > SQUASHFS_NAME_MAX || strchr(target, '/') ||
	    strcmp(target, ".") == 0 || strcmp(target, "..") == 0)
		return abota_error_set(err, -EINVAL,
				       "squashfs: '%s': symlink target '%s' must be a plain name in the same directory",
				       path, target);
	struct node *parent;
	const char *leaf;
	ret = resolve_parent(w, path, &parent, &leaf, err);
	if (ret < 0)
		return ret;
	char *t = strdup(target);
	struct node *n = t ? add_kid(parent, leaf, strlen(leaf), S_IFLNK | 0777, w->mtime) : NULL;
	if (!n) {
		free(t);
		return abota_error_set(err, -ENOMEM, "out of memory");
	}
	n->target = t;
	return 0;
}

/* --- finish --- */

static int cmp_nodes(const void *a, const void *b)
{
	const struct node *x = *(const struct node *const *)a;
	const struct node *y = *(const struct node *const *)b;
	/* Byte order as mksquashfs and the kernel's lookup expect. */
	return strcmp(x->name, y->name);
}

/* Numbers inodes children-first (root last, as mksquashfs does) and sorts
 * every directory, because entries must be written in name order. */
/* Recursion: one level per directory; the tree comes from bundle_create, which nests at
 * most 16 directories (add_tree). */
/* NOLINTNEXTLINE(misc-no-recursion) */
static void number_nodes(struct squashfs_writer *w, struct node *n)
{
	if (S_ISDIR(n->mode)) {
		if (n->nkids > 1)
			/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
			qsort(n->kids, n->nkids, sizeof(n->kids[0]), cmp_nodes);
		for (size_t i = 0; i < n->nkids; i++)
			number_nodes(w, n->kids[i]);
	}
	n->ino = ++w->inode_count;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Writes a regular file inode.  libsquashfs' generic inode writer copies the
 * block list to the stack (alloca), which a multi-GiB image with small blocks
 * would overflow, so the block list goes out in chunks. */
static int write_file_inode(sqfs_meta_writer_t *im, const sqfs_inode_generic_t *in)
{
	uint8_t hdr[16 + 40];
	put16(hdr + 0, in->base.type);
	put16(hdr + 2, in->base.mode & 07777);
	put16(hdr + 4, in->base.uid_idx);
	put16(hdr + 6, in->base.gid_idx);
	put32(hdr + 8, in->base.mod_time);
	put32(hdr + 12, in->base.inode_number);
	size_t len;
	if (in->base.type == SQFS_INODE_FILE) {
		put32(hdr + 16, in->data.file.blocks_start);
		put32(hdr + 20, in->data.file.fragment_index);
		put32(hdr + 24, in->data.file.fragment_offset);
		put32(hdr + 28, in->data.file.file_size);
		len = 32;
	} else {
		put64(hdr + 16, in->data.file_ext.blocks_start);
		put64(hdr + 24, in->data.file_ext.file_size);
		put64(hdr + 32, in->data.file_ext.sparse);
		put32(hdr + 40, in->data.file_ext.nlink);
		put32(hdr + 44, in->data.file_ext.fragment_idx);
		put32(hdr + 48, in->data.file_ext.fragment_offset);
		put32(hdr + 52, in->data.file_ext.xattr_idx);
		len = 56;
	}
	int ret = sqfs_meta_writer_append(im, hdr, len);
	size_t count = sqfs_inode_get_file_block_count(in);
	uint8_t chunk[1024];
	for (size_t i = 0; ret == 0 && i < count;) {
		size_t k = 0;
		for (; k < sizeof(chunk) / 4 && i < count; k++, i++)
			put32(chunk + 4 * k, in->extra[i]);
		ret = sqfs_meta_writer_append(im, chunk, 4 * k);
	}
	return ret;
}

/* Recursion: one level per directory; the tree comes from bundle_create, which nests at
 * most 16 directories (add_tree). */
/* NOLINTNEXTLINE(misc-no-recursion) */
static int serialize(struct squashfs_writer *w, struct node *n, struct abota_error *err)
{
	int ret = 0;
	sqfs_inode_generic_t *inode = NULL;
	bool owned = true;
	if (S_ISDIR(n->mode)) {
		size_t subdirs = 0;
		for (size_t i = 0; i < n->nkids; i++) {
			ret = serialize(w, n->kids[i], err);
			if (ret < 0)
				return ret;
			subdirs += S_ISDIR(n->kids[i]->mode) ? 1 : 0;
		}
		ret = sqfs_dir_writer_begin(w->dirwr, 0);
		for (size_t i = 0; ret == 0 && i < n->nkids; i++) {
			struct node *k = n->kids[i];
			ret = sqfs_dir_writer_add_entry(w->dirwr, k->name, k->ino, k->iref, k->mode);
		}
		if (ret == 0)
			ret = sqfs_dir_writer_end(w->dirwr);
		if (ret != 0)
			return sqfs_fail(w, err, ret, "writing a directory");
		/* The root's parent is one past the last inode, as mksquashfs. */
		uint32_t parent = n->parent ? n->parent->ino : w->inode_count + 1;
		inode = sqfs_dir_writer_create_inode(w->dirwr, 0, 0xFFFFFFFF, parent);
		if (!inode)
			return abota_error_set(err, -ENOMEM, "out of memory");
		uint32_t nlink = (uint32_t)(2 + subdirs);
		if (inode->base.type == SQFS_INODE_DIR)
			inode->data.dir.nlink = nlink;
		else
			inode->data.dir_ext.nlink = nlink;
	} else if (S_ISREG(n->mode)) {
		inode = n->inode;
		owned = false;
		if (!inode)
			return abota_error_set(err, -EINVAL, "squashfs: '%s': file without data", n->name);
		if (inode->base.type == SQFS_INODE_EXT_FILE)
			inode->data.file_ext.nlink = 1;
	} else {
		size_t tlen = strlen(n->target);
		inode = calloc(1, sizeof(*inode) + tlen);
		if (!inode)
			return abota_error_set(err, -ENOMEM, "out of memory");
		inode->base.type = SQFS_INODE_SLINK;
		inode->data.slink.nlink = 1;
		inode->data.slink.target_size = (sqfs_u32)tlen;
		memcpy(inode->extra, n->target, tlen);
		inode->payload_bytes_available = (sqfs_u32)tlen;
		inode->payload_bytes_used = (sqfs_u32)tlen;
	}
	inode->base.mode = n->mode;
	inode->base.mod_time = n->mtime;
	inode->base.inode_number = n->ino;
	/* Everything is owned by root, as `mksquashfs -all-root`. */
	ret = sqfs_id_table_id_to_index(w->ids, 0, &inode->base.uid_idx);
	if (ret == 0)
		ret = sqfs_id_table_id_to_index(w->ids, 0, &inode->base.gid_idx);
	if (ret == 0) {
		sqfs_u64 block;
		sqfs_u32 offset;
		sqfs_meta_writer_get_position(w->im, &block, &offset);
		n->iref = (block << 16) | offset;
		if (S_ISREG(n->mode))
			ret = write_file_inode(w->im, inode);
		else
			ret = sqfs_meta_writer_write_inode(w->im, inode);
	}
	if (owned)
		free(inode);
	if (ret != 0)
		return sqfs_fail(w, err, ret, "writing an inode");
	return 0;
}

static int pad_image(struct squashfs_writer *w, uint64_t *padded, struct abota_error *err)
{
	uint64_t size = w->file.size;
	size_t rest = (size_t)(size % SQUASHFS_PAD_SIZE);
	if (rest != 0) {
		static const uint8_t zero[SQUASHFS_PAD_SIZE];
		int ret = w->file.base.write_at(&w->file.base, size, zero, SQUASHFS_PAD_SIZE - rest);
		if (ret != 0)
			return sqfs_fail(w, err, ret, "padding the image");
	}
	*padded = w->file.size;
	return 0;
}

int squashfs_writer_finish(struct squashfs_writer *w, uint64_t *image_size,
			   struct abota_error *err)
{
	int ret = check_usable(w, err);
	if (ret < 0)
		return ret;
	/* Whatever happens now, nothing more can be added. */
	w->finished = true;
	sqfs_file_t *file = &w->file.base;

	ret = sqfs_block_processor_finish(w->proc);
	if (ret != 0)
		return sqfs_fail(w, err, ret, "compressing");

	w->inode_count = 0;
	number_nodes(w, &w->root);
	w->super.inode_count = w->inode_count;

	w->super.inode_table_start = w->file.size;
	ret = serialize(w, &w->root, err);
	if (ret < 0)
		return ret;
	if ((ret = sqfs_meta_writer_flush(w->im)) != 0 ||
	    (ret = sqfs_meta_writer_flush(w->dm)) != 0)
		return sqfs_fail(w, err, ret, "writing the inode table");
	w->super.root_inode_ref = w->root.iref;
	w->super.directory_table_start = w->file.size;
	ret = sqfs_meta_write_write_to_file(w->dm);
	if (ret != 0)
		return sqfs_fail(w, err, ret, "writing the directory table");
	ret = sqfs_frag_table_write(w->frag, file, &w->super, w->cmp);
	if (ret != 0)
		return sqfs_fail(w, err, ret, "writing the fragment table");
	ret = sqfs_id_table_write(w->ids, file, &w->super, w->cmp);
	if (ret != 0)
		return sqfs_fail(w, err, ret, "writing the id table");
	/* Identical files and tail ends are stored once. */
	w->super.flags &= (sqfs_u16)~SQFS_FLAG_NO_DUPLICATES;
	w->super.bytes_used = w->file.size;
	ret = sqfs_super_write(&w->super, file);
	if (ret != 0)
		return sqfs_fail(w, err, ret, "writing the super block");
	uint64_t padded = 0;
	ret = pad_image(w, &padded, err);
	if (ret < 0)
		return ret;
	const sqfs_block_processor_stats_t *st = sqfs_block_processor_get_stats(w->proc);
	log_debug("squashfs: %llu bytes in, %llu bytes image; %llu blocks, %llu sparse, %llu fragments",
		  (unsigned long long)st->input_bytes_read, (unsigned long long)padded,
		  (unsigned long long)st->data_block_count,
		  (unsigned long long)st->sparse_block_count,
		  (unsigned long long)st->actual_frag_count);
	*image_size = padded;
	return 0;
}
