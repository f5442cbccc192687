#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "abota/source.h"
#include "abota/squashfs.h"

/* ---- helpers ---- */

static char dir[64];

struct mem_source {
	struct source base;
	const uint8_t *data;
	/* reads touching [fail_from, fail_to) fail, like a verity mismatch */
	uint64_t fail_from, fail_to;
};

static int mem_read_at(struct source *src, void *buf, size_t len, uint64_t off,
		       struct abota_error *err)
{
	struct mem_source *m = (struct mem_source *)src;
	if (off < m->fail_to && off + len > m->fail_from)
		return abota_error_set(err, -EIO, "mem: block at %llu failed verification",
				       (unsigned long long)off);
	memcpy(buf, m->data + off, len);
	return 0;
}

static const struct source_ops mem_ops = { .read_at = mem_read_at };

static struct source *mem_source(const void *data, size_t len)
{
	struct mem_source *m = source_alloc(sizeof(*m), &mem_ops, len, "mem");
	assert_non_null(m);
	m->data = data;
	return &m->base;
}

static void sha256(const void *data, size_t len, uint8_t out[32])
{
	assert_int_equal(EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL), 1);
}

static uint8_t *read_whole(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	uint8_t *buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static void write_file(const char *name, const void *data, size_t len, mode_t mode)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static int open_input(const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	return fd;
}

static int new_output(const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	return fd;
}

/* Compressible but not trivial content: words from a small dictionary. */
static void fill_text(uint8_t *p, size_t len, uint32_t seed)
{
	static const char *words[] = { "squashfs ", "bundle ", "rootfs ", "slot ", "verity ",
				       "install\n", "abota ", "0x1f2e ", "kernel ", "block " };
	size_t i = 0;
	while (i < len) {
		seed = seed * 1103515245u + 12345u;
		const char *w = words[(seed >> 16) % 10];
		for (; *w && i < len; w++)
			p[i++] = (uint8_t)*w;
	}
}

static void fill_random(uint8_t *p, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1664525u + 1013904223u;
		p[i] = (uint8_t)(seed >> 24);
	}
}

/* Input files of the round trip. */
#define BIG_SIZE (801u * 4096u)    /* 25 blocks of 128 KiB + a 4 KiB tail */
#define ODD_SIZE 300001u           /* not a multiple of anything */
#define ZERO_SIZE (3u * 131072u + 4096u)
static const char nested_txt[] = "nested file in a subdirectory\n";
static const char manifest_txt[] = "[update]\ncompatible=test\nversion=1\n";
static uint8_t *big, *odd, *zero;

static int group_setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/abota-squashfs-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	big = malloc(BIG_SIZE);
	odd = malloc(ODD_SIZE);
	zero = calloc(1, ZERO_SIZE);
	if (!big || !odd || !zero)
		return -1;
	fill_text(big, BIG_SIZE, 1);
	/* a whole zero block inside (sparse) and a random one (stored
	 * uncompressed because it does not compress) */
	memset(big + 2 * 131072, 0, 131072);
	fill_random(big + 5 * 131072, 131072, 7);
	fill_random(odd, 131072, 3);
	fill_text(odd + 131072, ODD_SIZE - 131072, 2);
	write_file("big.img", big, BIG_SIZE, 0640);
	write_file("odd.bin", odd, ODD_SIZE, 0755);
	write_file("zero.img", zero, ZERO_SIZE, 0644);
	write_file("empty", "", 0, 0600);
	write_file("nested.txt", nested_txt, strlen(nested_txt), 0644);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	free(big);
	free(odd);
	free(zero);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

struct built {
	uint8_t *img;
	size_t len;
	struct squashfs_file_digest big_d, zero_d, odd_d;
};

static void add_input(struct squashfs_writer *w, const char *path, const char *input,
		      unsigned flags, struct squashfs_file_digest *d)
{
	struct abota_error err = { 0 };
	int fd = open_input(input);
	int ret = squashfs_writer_add_file(w, path, fd, flags, d, &err);
	if (ret != 0)
		fail_msg("add %s: %s", path, err.msg);
	close(fd);
}

/* The standard image: files of every kind, the manifest added last. */
static void build(const char *comp, int level, uint32_t block_size, unsigned workers,
		  struct built *b)
{
	struct abota_error err = { 0 };
	int fd = new_output("image.sqfs");
	struct squashfs_writer_opts opts = { .compressor = comp, .level = level,
					     .block_size = block_size, .workers = workers,
					     .mtime = 1700000000 };
	struct squashfs_writer *w = NULL;
	int ret = squashfs_writer_open(fd, &opts, &w, &err);
	if (ret != 0)
		fail_msg("open: %s", err.msg);
	memset(b, 0, sizeof(*b));
	add_input(w, "big.img", "big.img", SQUASHFS_ADD_BLOCK_INDEX, &b->big_d);
	add_input(w, "odd.bin", "odd.bin", 0, &b->odd_d);
	add_input(w, "copy.bin", "odd.bin", 0, NULL); /* deduplicated */
	add_input(w, "zero.img", "zero.img", SQUASHFS_ADD_BLOCK_INDEX, &b->zero_d);
	add_input(w, "empty", "empty", 0, NULL);
	add_input(w, "sub/dir/nested.txt", "nested.txt", 0, NULL);
	assert_int_equal(squashfs_writer_add_dir(w, "emptydir", 0700, &err), 0);
	assert_int_equal(squashfs_writer_add_dir(w, "sub", 0750, &err), 0); /* implicit one */
	assert_int_equal(squashfs_writer_add_symlink(w, "link", "odd.bin", &err), 0);
	assert_int_equal(squashfs_writer_add_data(w, "big.img.block-hash-index",
						  b->big_d.block_index, b->big_d.block_index_len,
						  0644, &err),
			 0);
	/* the manifest comes last: it would hold the digests above */
	assert_int_equal(squashfs_writer_add_data(w, "manifest.raucm", manifest_txt,
						  strlen(manifest_txt), 0644, &err),
			 0);
	uint64_t size = 0;
	ret = squashfs_writer_finish(w, &size, &err);
	if (ret != 0)
		fail_msg("finish: %s", err.msg);
	squashfs_writer_free(w);
	close(fd);
	char path[256];
	snprintf(path, sizeof(path), "%s/image.sqfs", dir);
	b->img = read_whole(path, &b->len);
	assert_int_equal(b->len, size);
	assert_int_equal(size % 4096, 0);
}

static void built_free(struct built *b)
{
	free(b->img);
	free(b->big_d.block_index);
	free(b->zero_d.block_index);
	free(b->odd_d.block_index);
}

struct buf_sink {
	uint8_t *data;
	size_t len, cap;
	size_t calls;
};

static int buf_sink_cb(void *ctx, const void *buf, size_t len, struct abota_error *err)
{
	struct buf_sink *s = ctx;
	if (len > s->cap - s->len)
		return abota_error_set(err, -EOVERFLOW, "sink overflow");
	memcpy(s->data + s->len, buf, len);
	s->len += len;
	s->calls++;
	return 0;
}

/* Streams path with the given worker setting and compares with expect. */
static void check_stream(struct squashfs_reader *r, const char *path, unsigned workers,
			 const uint8_t *expect, size_t len)
{
	struct abota_error err = { 0 };
	struct buf_sink s = { .cap = len + 1 };
	s.data = malloc(s.cap);
	assert_non_null(s.data);
	squashfs_reader_set_workers(r, workers);
	int ret = squashfs_reader_stream(r, path, buf_sink_cb, &s, &err);
	if (ret != 0)
		fail_msg("stream %s (workers %u): %s", path, workers, err.msg);
	assert_int_equal(s.len, len);
	assert_memory_equal(s.data, expect, len);
	free(s.data);
}

static const unsigned worker_modes[] = { SQUASHFS_READER_SERIAL, 0, 1, 3 };

/* squashfs_reader_stream_at(): from START, every third block declined.
 * Each chunk must be the expected bytes at its offset, in file order, and
 * exactly the wanted blocks (and only they) arrive. */
struct at_sink {
	const uint8_t *expect;
	size_t len;
	uint32_t bs;
	uint64_t next;      /* chunks come in order */
	uint64_t delivered; /* bytes */
	uint64_t wanted;    /* bytes the filter accepted */
};

static bool at_want(void *ctx, uint64_t off, size_t len)
{
	struct at_sink *s = ctx;
	bool w = (off / s->bs) % 3 != 1;
	if (w)
		s->wanted += len;
	return w;
}

static int at_sink_cb(void *ctx, uint64_t off, const void *buf, size_t len,
		      struct abota_error *err)
{
	(void)err;
	struct at_sink *s = ctx;
	assert_true(off >= s->next);
	assert_true(off + len <= s->len);
	for (uint64_t b = off; b < off + len; b += s->bs)
		assert_true((b / s->bs) % 3 != 1);
	assert_memory_equal(buf, s->expect + off, len);
	s->next = off + len;
	s->delivered += len;
	return 0;
}

static void check_stream_at(struct squashfs_reader *r, const char *path, unsigned workers,
			    const uint8_t *expect, size_t len, uint64_t start)
{
	struct abota_error err = { 0 };
	struct squashfs_info info;
	squashfs_reader_info(r, &info);
	if (start > len)
		start = 0;
	struct at_sink s = { .expect = expect, .len = len, .bs = info.block_size, .next = start };
	struct squashfs_stream_opts o = { .start = start, .want = at_want, .want_ctx = &s };
	squashfs_reader_set_workers(r, workers);
	if (squashfs_reader_stream_at(r, path, &o, at_sink_cb, &s, &err) != 0)
		fail_msg("stream_at %s (workers %u, start %llu): %s", path, workers,
			 (unsigned long long)start, err.msg);
	assert_int_equal(s.delivered, s.wanted);
	assert_true(s.wanted > 0 || start >= len);
	/* not a multiple of the block size: refused */
	if (info.block_size > 1) {
		o.start = start + 1;
		assert_int_equal(squashfs_reader_stream_at(r, path, &o, at_sink_cb, &s, &err),
				 -EINVAL);
	}
}

struct walk_rec {
	char list[2048];
	size_t n;
	int stop_after;
};

static int walk_cb(void *ctx, const char *path, const struct squashfs_entry *e,
		   struct abota_error *err)
{
	(void)err;
	struct walk_rec *w = ctx;
	static const char t[] = "?fdlo";
	size_t used = strlen(w->list);
	snprintf(w->list + used, sizeof(w->list) - used, "%s %c%o ", path, t[e->type], e->mode);
	w->n++;
	if (w->stop_after && (int)w->n == w->stop_after)
		return 1;
	return 0;
}

static void verify_image(const struct built *b)
{
	struct abota_error err = { 0 };
	struct source *src = mem_source(b->img, b->len);
	struct squashfs_reader *r = NULL;
	int ret = squashfs_reader_open(src, b->len, &r, &err);
	if (ret != 0)
		fail_msg("reader open: %s", err.msg);

	struct walk_rec wr = { 0 };
	assert_int_equal(squashfs_reader_walk(r, walk_cb, &wr, &err), 0);
	assert_string_equal(wr.list,
			    "big.img f640 big.img.block-hash-index f644 copy.bin f755 empty f600 "
			    "emptydir d700 link l777 manifest.raucm f644 odd.bin f755 sub d750 "
			    "sub/dir d755 sub/dir/nested.txt f644 zero.img f644 ");

	for (size_t i = 0; i < sizeof(worker_modes) / sizeof(worker_modes[0]); i++) {
		unsigned m = worker_modes[i];
		check_stream(r, "big.img", m, big, BIG_SIZE);
		check_stream(r, "odd.bin", m, odd, ODD_SIZE);
		check_stream(r, "copy.bin", m, odd, ODD_SIZE);
		check_stream(r, "zero.img", m, zero, ZERO_SIZE);
		check_stream(r, "empty", m, (const uint8_t *)"", 0);
		check_stream(r, "/sub/dir/nested.txt", m, (const uint8_t *)nested_txt,
			     strlen(nested_txt));
		check_stream(r, "big.img.block-hash-index", m, b->big_d.block_index,
			     b->big_d.block_index_len);
		struct squashfs_info info;
		squashfs_reader_info(r, &info);
		check_stream_at(r, "big.img", m, big, BIG_SIZE, 0);
		check_stream_at(r, "big.img", m, big, BIG_SIZE, 2 * (uint64_t)info.block_size);
		check_stream_at(r, "odd.bin", m, odd, ODD_SIZE, info.block_size);
		check_stream_at(r, "zero.img", m, zero, ZERO_SIZE, info.block_size);
	}

	/* digests reported while writing, against OpenSSL over the inputs */
	uint8_t d[32];
	sha256(big, BIG_SIZE, d);
	assert_memory_equal(b->big_d.sha256, d, 32);
	assert_int_equal(b->big_d.size, BIG_SIZE);
	sha256(odd, ODD_SIZE, d);
	assert_memory_equal(b->odd_d.sha256, d, 32);
	assert_int_equal(b->odd_d.size, ODD_SIZE);
	assert_null(b->odd_d.block_index);
	sha256(zero, ZERO_SIZE, d);
	assert_memory_equal(b->zero_d.sha256, d, 32);
	assert_int_equal(b->big_d.block_index_len, BIG_SIZE / 4096 * 32);
	assert_int_equal(b->zero_d.block_index_len, ZERO_SIZE / 4096 * 32);
	for (size_t i = 0; i < BIG_SIZE / 4096; i++) {
		sha256(big + i * 4096, 4096, d);
		assert_memory_equal(b->big_d.block_index + i * 32, d, 32);
	}
	for (size_t i = 0; i < ZERO_SIZE / 4096; i++) {
		sha256(zero + i * 4096, 4096, d);
		assert_memory_equal(b->zero_d.block_index + i * 32, d, 32);
	}

	char *data = NULL;
	size_t len = 0;
	assert_int_equal(squashfs_reader_read_file(r, "manifest.raucm", 4096, &data, &len, &err), 0);
	assert_int_equal(len, strlen(manifest_txt));
	assert_string_equal(data, manifest_txt);
	free(data);

	struct squashfs_entry e;
	assert_int_equal(squashfs_reader_lookup(r, "big.img", &e, &err), 0);
	assert_int_equal(e.type, SQUASHFS_TYPE_FILE);
	assert_int_equal(e.size, BIG_SIZE);
	assert_int_equal(e.mode, 0640);
	assert_int_equal(e.mtime, 1700000000);
	assert_int_equal(squashfs_reader_lookup(r, "", &e, &err), 0);
	assert_int_equal(e.type, SQUASHFS_TYPE_DIR);
	assert_int_equal(squashfs_reader_lookup(r, "sub/dir", &e, &err), 0);
	assert_int_equal(e.type, SQUASHFS_TYPE_DIR);
	char *target = NULL;
	assert_int_equal(squashfs_reader_readlink(r, "link", &target, &err), 0);
	assert_string_equal(target, "odd.bin");
	free(target);

	struct squashfs_info info;
	squashfs_reader_info(r, &info);
	assert_int_equal(info.mtime, 1700000000);
	assert_true(info.bytes_used <= b->len && info.bytes_used > b->len - 4096);

	squashfs_reader_free(r);
	source_close(src);
}

/* ---- tests ---- */

static void test_roundtrip_zstd(void **state)
{
	(void)state;
	struct built b;
	build(NULL, 0, 0, 0, &b);
	struct abota_error err = { 0 };
	struct source *src = mem_source(b.img, b.len);
	struct squashfs_reader *r = NULL;
	assert_int_equal(squashfs_reader_open(src, b.len, &r, &err), 0);
	struct squashfs_info info;
	squashfs_reader_info(r, &info);
	assert_string_equal(info.compressor, "zstd");
	assert_int_equal(info.block_size, 131072);
	squashfs_reader_free(r);
	source_close(src);
	verify_image(&b);
	built_free(&b);
}

static void test_roundtrip_gzip(void **state)
{
	(void)state;
	struct built b;
	build("gzip", 0, 0, 2, &b);
	verify_image(&b);
	built_free(&b);
}

static void test_roundtrip_xz(void **state)
{
	(void)state;
	struct built b;
	build("xz", 1, 0, 2, &b);
	verify_image(&b);
	built_free(&b);
}

static void test_roundtrip_lz4(void **state)
{
	(void)state;
	struct built b;
	build("lz4", 0, 0, 1, &b);
	verify_image(&b);
	built_free(&b);
}

static void test_roundtrip_small_blocks(void **state)
{
	(void)state;
	struct built b;
	/* 4 KiB blocks: 801 blocks in 4 batches, no fragments for big.img */
	build("zstd", 3, 4096, 3, &b);
	verify_image(&b);
	built_free(&b);
}

static void test_roundtrip_large_blocks(void **state)
{
	(void)state;
	struct built b;
	build("gzip", 1, 1024 * 1024, 2, &b);
	verify_image(&b);
	built_free(&b);
}

static void test_writer_rejects(void **state)
{
	(void)state;
	struct abota_error err = { 0 };
	int fd = new_output("rejects.sqfs");
	struct squashfs_writer *w = NULL;
	struct squashfs_writer_opts bad = { .compressor = "lzo" };
	assert_int_equal(squashfs_writer_open(fd, &bad, &w, &err), -ENOTSUP);
	bad = (struct squashfs_writer_opts){ .block_size = 3000 };
	assert_int_equal(squashfs_writer_open(fd, &bad, &w, &err), -EINVAL);
	bad = (struct squashfs_writer_opts){ .compressor = "zstd", .level = 99 };
	assert_int_equal(squashfs_writer_open(fd, &bad, &w, &err), -EINVAL);
	assert_null(w);
	assert_int_equal(squashfs_writer_open(fd, NULL, &w, &err), 0);

	assert_int_equal(squashfs_writer_add_data(w, "a", "x", 1, 0644, &err), 0);
	assert_int_equal(squashfs_writer_add_data(w, "a", "y", 1, 0644, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "already"));
	assert_int_equal(squashfs_writer_add_dir(w, "a", 0755, &err), -EEXIST);
	assert_int_equal(squashfs_writer_add_data(w, "a/b", "y", 1, 0644, &err), -ENOTDIR);
	assert_int_equal(squashfs_writer_add_data(w, "/abs", "y", 1, 0644, &err), -EINVAL);
	assert_int_equal(squashfs_writer_add_data(w, "x/../y", "y", 1, 0644, &err), -EINVAL);
	assert_int_equal(squashfs_writer_add_data(w, "x//y", "y", 1, 0644, &err), -EINVAL);
	assert_int_equal(squashfs_writer_add_data(w, "", "y", 1, 0644, &err), -EINVAL);
	assert_int_equal(squashfs_writer_add_data(w, ".", "y", 1, 0644, &err), -EINVAL);
	assert_int_equal(squashfs_writer_add_symlink(w, "l", "../etc/passwd", &err), -EINVAL);
	assert_int_equal(squashfs_writer_add_symlink(w, "l", "", &err), -EINVAL);
	/* a block index needs whole 4 KiB blocks */
	int in = open_input("odd.bin");
	struct squashfs_file_digest d;
	memset(&d, 0x5a, sizeof(d));
	assert_int_equal(squashfs_writer_add_file(w, "odd", in, SQUASHFS_ADD_BLOCK_INDEX, &d, &err),
			 -EINVAL);
	assert_int_equal(d.size, 0x5a5a5a5a5a5a5a5aull); /* untouched */
	close(in);
	in = open_input("empty");
	assert_int_equal(squashfs_writer_add_file(w, "e", in, SQUASHFS_ADD_BLOCK_INDEX, NULL, &err),
			 -EINVAL);
	close(in);
	/* rejected names leave the writer usable */
	assert_int_equal(squashfs_writer_add_data(w, "b", "z", 1, 0644, &err), 0);
	uint64_t size = 0;
	assert_int_equal(squashfs_writer_finish(w, &size, &err), 0);
	assert_int_equal(squashfs_writer_add_data(w, "c", "z", 1, 0644, &err), -EINVAL);
	assert_int_equal(squashfs_writer_finish(w, &size, &err), -EINVAL);
	squashfs_writer_free(w);

	/* the image has exactly a and b */
	uint8_t *img = malloc(size);
	assert_non_null(img);
	assert_int_equal(pread(fd, img, size, 0), (ssize_t)size);
	struct source *src = mem_source(img, size);
	struct squashfs_reader *r = NULL;
	assert_int_equal(squashfs_reader_open(src, size, &r, &err), 0);
	struct walk_rec wr = { 0 };
	assert_int_equal(squashfs_reader_walk(r, walk_cb, &wr, &err), 0);
	assert_string_equal(wr.list, "a f644 b f644 ");
	squashfs_reader_free(r);
	source_close(src);
	free(img);
	close(fd);

	/* output must be an empty O_RDWR regular file */
	fd = open_input("odd.bin");
	assert_int_equal(squashfs_writer_open(fd, NULL, &w, &err), -EINVAL);
	close(fd);
	fd = new_output("wronly.sqfs");
	close(fd);
	char path[256];
	snprintf(path, sizeof(path), "%s/wronly.sqfs", dir);
	fd = open(path, O_WRONLY);
	assert_int_equal(squashfs_writer_open(fd, NULL, &w, &err), -EINVAL);
	close(fd);
}

static int count_cb(void *ctx, const char *path, const struct squashfs_entry *e,
		    struct abota_error *err);

/* Thousands of entries in one directory: several directory headers, a
 * listing over 64 KiB (extended directory inode with an index), inodes
 * spread over many metadata blocks; plus a file streamed from a pipe. */
static void test_many_entries(void **state)
{
	(void)state;
	struct abota_error err = { 0 };
	int fd = new_output("many.sqfs");
	struct squashfs_writer *w = NULL;
	struct squashfs_writer_opts opts = { .compressor = "zstd", .level = 1, .workers = 2 };
	assert_int_equal(squashfs_writer_open(fd, &opts, &w, &err), 0);
	enum { N = 3000 };
	char name[64];
	for (int i = N - 1; i >= 0; i--) { /* reverse order: the writer sorts */
		snprintf(name, sizeof(name), "many/entry-with-a-longish-name-%05d", i);
		assert_int_equal(squashfs_writer_add_data(w, name, name, strlen(name), 0644, &err), 0);
	}
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], big, 40000), 40000);
	close(p[1]);
	struct squashfs_file_digest d;
	assert_int_equal(squashfs_writer_add_file(w, "piped", p[0], 0, &d, &err), 0);
	close(p[0]);
	assert_int_equal(d.size, 40000);
	uint64_t size = 0;
	assert_int_equal(squashfs_writer_finish(w, &size, &err), 0);
	squashfs_writer_free(w);
	uint8_t *img = malloc(size);
	assert_non_null(img);
	assert_int_equal(pread(fd, img, size, 0), (ssize_t)size);
	close(fd);

	struct source *src = mem_source(img, size);
	struct squashfs_reader *r = NULL;
	assert_int_equal(squashfs_reader_open(src, size, &r, &err), 0);
	size_t n = 0;
	assert_int_equal(squashfs_reader_walk(r, count_cb, &n, &err), 0);
	assert_int_equal(n, N + 2);
	for (int i = 0; i < N; i += 997) {
		snprintf(name, sizeof(name), "many/entry-with-a-longish-name-%05d", i);
		check_stream(r, name, 0, (const uint8_t *)name, strlen(name));
	}
	snprintf(name, sizeof(name), "many/entry-with-a-longish-name-%05d", N - 1);
	check_stream(r, name, SQUASHFS_READER_SERIAL, (const uint8_t *)name, strlen(name));
	check_stream(r, "piped", 0, big, 40000);
	struct squashfs_entry e;
	assert_int_equal(squashfs_reader_lookup(r, "many/entry-with-a-longish-name-0300", &e, &err),
			 -ENOENT);
	squashfs_reader_free(r);
	source_close(src);
	free(img);
}

/* An image abandoned half-way (the caller hit an error) is freed without
 * leaks (ASan) or hangs, also with blocks still being compressed. */
static void test_writer_abandon(void **state)
{
	(void)state;
	struct abota_error err = { 0 };
	for (int stage = 0; stage < 3; stage++) {
		int fd = new_output("abandon.sqfs");
		struct squashfs_writer *w = NULL;
		struct squashfs_writer_opts opts = { .workers = 2, .level = 1 };
		assert_int_equal(squashfs_writer_open(fd, &opts, &w, &err), 0);
		if (stage >= 1)
			add_input(w, "big.img", "big.img", 0, NULL);
		if (stage >= 2)
			assert_int_equal(squashfs_writer_add_data(w, "x", "tail", 4, 0644, &err), 0);
		squashfs_writer_free(w);
		close(fd);
	}
}

/* A small valid image shared by the reader tests below. */
static struct built small;

static void build_small(void)
{
	if (small.img)
		return;
	build("zstd", 1, 0, 1, &small);
}

struct opened {
	struct source *src;
	struct squashfs_reader *r;
	uint8_t *copy;
};

static int open_copy(const uint8_t *img, size_t len, size_t image_size, struct opened *o,
		     struct abota_error *err)
{
	o->copy = malloc(len);
	assert_non_null(o->copy);
	memcpy(o->copy, img, len);
	o->src = mem_source(o->copy, len);
	o->r = NULL;
	return squashfs_reader_open(o->src, image_size, &o->r, err);
}

static void close_copy(struct opened *o)
{
	squashfs_reader_free(o->r);
	source_close(o->src);
	free(o->copy);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Patches the super block of a copy and expects open to fail. */
static void expect_super_error(size_t off, size_t width, uint64_t value, int code,
			       const char *needle)
{
	build_small();
	uint8_t *img = malloc(small.len);
	memcpy(img, small.img, small.len);
	for (size_t i = 0; i < width; i++)
		img[off + i] = (uint8_t)(value >> (8 * i));
	struct abota_error err = { 0 };
	struct opened o;
	int ret = open_copy(img, small.len, small.len, &o, &err);
	if (ret != code || !strstr(err.msg, needle))
		fail_msg("patch at %zu: got %d '%s', want %d '%s'", off, ret, err.msg, code, needle);
	assert_null(o.r);
	close_copy(&o);
	free(img);
}

static void test_super_block_checks(void **state)
{
	(void)state;
	build_small();
	uint64_t bytes_used = get_le64(small.img + 40);
	expect_super_error(0, 4, 0x12345678, -EBADMSG, "bad magic");
	expect_super_error(28, 2, 3, -ENOTSUP, "unsupported version 3.0");
	expect_super_error(12, 4, 3000, -EBADMSG, "bad block size");
	expect_super_error(12, 4, 1u << 30, -EBADMSG, "bad block size");
	expect_super_error(22, 2, 16, -EBADMSG, "bad block size"); /* log mismatch */
	expect_super_error(20, 2, 3, -ENOTSUP, "unsupported compressor"); /* lzo */
	expect_super_error(20, 2, 77, -ENOTSUP, "unsupported compressor");
	expect_super_error(40, 8, small.len + 1, -EBADMSG, "bytes_used");
	expect_super_error(64, 8, bytes_used + 10, -EBADMSG, "inode/directory table");
	expect_super_error(72, 8, 50, -EBADMSG, "inode/directory table");
	expect_super_error(48, 8, 1ull << 40, -EBADMSG, "id table");
	expect_super_error(80, 8, bytes_used - 1, -EBADMSG, "fragment table");
	expect_super_error(16, 4, 0xFFFFFFFF, -EBADMSG, "fragment table");
	expect_super_error(32, 8, 1ull << 50, -EBADMSG, "root inode reference");
	expect_super_error(56, 8, 7, -EBADMSG, "xattr table");
	expect_super_error(4, 4, 0, -EBADMSG, "no inodes");

	/* truncated: the image (or the region given) is shorter than bytes_used */
	struct abota_error err = { 0 };
	struct opened o;
	assert_int_equal(open_copy(small.img, small.len, bytes_used - 1, &o, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "bytes_used"));
	close_copy(&o);
	assert_int_equal(open_copy(small.img, 4096, 4096, &o, &err), -EBADMSG);
	close_copy(&o);
	assert_int_equal(open_copy(small.img, 50, 50, &o, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "too small"));
	close_copy(&o);
	/* image_size larger than the source */
	assert_int_equal(open_copy(small.img, small.len, small.len + 4096, &o, &err), -EINVAL);
	close_copy(&o);
	/* the unmodified copy opens */
	assert_int_equal(open_copy(small.img, small.len, small.len, &o, &err), 0);
	close_copy(&o);
}

static int count_cb(void *ctx, const char *path, const struct squashfs_entry *e,
		    struct abota_error *err)
{
	(void)path;
	(void)e;
	(void)err;
	(*(size_t *)ctx)++;
	return 0;
}

static int null_sink(void *ctx, const void *buf, size_t len, struct abota_error *err)
{
	(void)ctx;
	(void)buf;
	(void)len;
	(void)err;
	return 0;
}

/* A small image for bit flipping: every kind of entry, little data. */
static void build_fuzz(struct built *b)
{
	struct abota_error err = { 0 };
	int fd = new_output("fuzz.sqfs");
	struct squashfs_writer_opts opts = { .compressor = "zstd", .level = 1,
					     .block_size = 32768, .workers = 1, .mtime = 1 };
	struct squashfs_writer *w = NULL;
	assert_int_equal(squashfs_writer_open(fd, &opts, &w, &err), 0);
	memset(b, 0, sizeof(*b));
	assert_int_equal(squashfs_writer_add_data(w, "a.txt", big, 20000, 0644, &err), 0);
	assert_int_equal(squashfs_writer_add_data(w, "b.bin", odd + 100000, 200000, 0644, &err), 0);
	assert_int_equal(squashfs_writer_add_data(w, "zero", zero, 32768 * 3 + 100, 0644, &err), 0);
	assert_int_equal(squashfs_writer_add_data(w, "sub/dir/nested.txt", nested_txt,
						  strlen(nested_txt), 0644, &err),
			 0);
	assert_int_equal(squashfs_writer_add_symlink(w, "link", "a.txt", &err), 0);
	assert_int_equal(squashfs_writer_add_data(w, "empty", "", 0, 0644, &err), 0);
	uint64_t size = 0;
	assert_int_equal(squashfs_writer_finish(w, &size, &err), 0);
	squashfs_writer_free(w);
	b->img = malloc(size);
	assert_non_null(b->img);
	assert_int_equal(pread(fd, b->img, size, 0), (ssize_t)size);
	b->len = size;
	close(fd);
}

/* Runs every operation; returns how many failed (never crashes, we hope). */
static int exercise(struct squashfs_reader *r)
{
	static const char *paths[] = { "a.txt", "b.bin", "zero", "sub/dir/nested.txt", "empty" };
	struct abota_error err = { 0 };
	int failures = 0;
	size_t n = 0;
	failures += squashfs_reader_walk(r, count_cb, &n, &err) < 0;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		for (int m = 0; m < 2; m++) {
			squashfs_reader_set_workers(r, m ? 2 : SQUASHFS_READER_SERIAL);
			failures += squashfs_reader_stream(r, paths[i], null_sink, NULL, &err) < 0;
		}
	}
	char *t = NULL;
	if (squashfs_reader_readlink(r, "link", &t, &err) < 0)
		failures++;
	free(t);
	return failures;
}

static void test_corrupt_metadata(void **state)
{
	(void)state;
	struct built fz;
	build_fuzz(&fz);
	{
		/* the unflipped image works */
		struct abota_error err = { 0 };
		struct opened o;
		assert_int_equal(open_copy(fz.img, fz.len, fz.len, &o, &err), 0);
		assert_int_equal(exercise(o.r), 0);
		close_copy(&o);
	}
	uint64_t inode_start = get_le64(fz.img + 64);
	uint64_t bytes_used = get_le64(fz.img + 40);
	/* Flip bytes all over the metadata; errors are fine, crashes (or
	 * ASan reports) are not.  Some flips must be detected. */
	int detected = 0, runs = 0;
	for (uint64_t off = inode_start; off < bytes_used; off += 2) {
		for (int bit = 0; bit < 8; bit += 7) {
			uint8_t *img = malloc(fz.len);
			memcpy(img, fz.img, fz.len);
			img[off] ^= (uint8_t)(1u << bit);
			struct abota_error err = { 0 };
			struct opened o;
			if (open_copy(img, fz.len, fz.len, &o, &err) == 0)
				detected += exercise(o.r) > 0;
			else
				detected++;
			close_copy(&o);
			free(img);
			runs++;
		}
	}
	print_message("flips %d, detected %d\n", runs, detected);
	assert_true(runs > 20);
	assert_true(detected > runs / 2);
	built_free(&fz);
	build_small();

	/* a source error reaches the message (e.g. a verity mismatch) */
	struct abota_error err = { 0 };
	struct opened o;
	assert_int_equal(open_copy(small.img, small.len, small.len, &o, &err), 0);
	((struct mem_source *)o.src)->fail_from = 4096;
	((struct mem_source *)o.src)->fail_to = 8192;
	squashfs_reader_set_workers(o.r, 2);
	int ret = squashfs_reader_stream(o.r, "big.img", null_sink, NULL, &err);
	assert_int_equal(ret, -EIO);
	assert_non_null(strstr(err.msg, "failed verification"));
	assert_non_null(strstr(err.msg, "big.img"));
	close_copy(&o);
}

/* ---- hand-made hostile images ---- */

/* An image built by hand with uncompressed metadata, so that single fields
 * can be set to hostile values:
 *   root (inode 3): d/ (inode 2), f (inode 1), s -> "f" (inode 4)
 *   d:  g -> inode 1
 *   f:  one uncompressed 4 KiB block at offset 96 */
struct craft {
	uint32_t f_type, f_blocks_start, f_size, f_block, f_frag;
	uint16_t root_dir_size_extra; /* added to the root listing size */
	const char *name_d, *name_f;
	uint16_t f_entry_type, f_entry_offset;
	uint16_t g_entry_offset, g_entry_type;
	int16_t g_entry_diff;
	uint32_t hdr_start_block;
	uint32_t s_len;
	uint16_t meta_header_clear; /* bits cleared from the inode block header */
};

static const struct craft craft_ok = {
	.f_type = 2, .f_blocks_start = 96, .f_size = 4096, .f_block = 0x01001000,
	.f_frag = 0xFFFFFFFF, .name_d = "d", .name_f = "f", .f_entry_type = 2,
	.g_entry_offset = 0, .g_entry_type = 2, .s_len = 1,
};

struct image {
	uint8_t b[8192];
	size_t len;
};

static size_t put_dir_entry(uint8_t *p, uint16_t offset, int16_t diff, uint16_t type,
			    const char *name)
{
	put_le16(p, offset);
	put_le16(p + 2, (uint16_t)diff);
	put_le16(p + 4, type);
	put_le16(p + 6, (uint16_t)(strlen(name) - 1));
	memcpy(p + 8, name, strlen(name));
	return 8 + strlen(name);
}

static void craft(const struct craft *c, struct image *img)
{
	memset(img, 0, sizeof(*img));
	uint8_t *b = img->b;
	size_t pos = 96;
	fill_text(b + pos, 4096, 9); /* the data block of f */
	pos += 4096;

	/* inode table: one uncompressed metadata block */
	uint64_t itab = pos;
	uint8_t *ib = b + itab + 2;
	size_t ip = 0;
	/* inode 1: f */
	size_t f_off = ip;
	put_le16(ib + ip, (uint16_t)c->f_type);
	put_le16(ib + ip + 2, 0644);
	put_le32(ib + ip + 12, 1);
	put_le32(ib + ip + 16, c->f_blocks_start);
	put_le32(ib + ip + 20, c->f_frag);
	put_le32(ib + ip + 24, 0);
	put_le32(ib + ip + 28, c->f_size);
	put_le32(ib + ip + 32, c->f_block);
	ip += 36;
	/* inode 2: d (listing at directory offset 40 + 2 bytes of the header) */
	size_t d_off = ip;
	put_le16(ib + ip, 1);
	put_le16(ib + ip + 2, 0755);
	put_le32(ib + ip + 12, 2);
	size_t g_listing = 12 + 8 + 1;
	ip += 32;
	/* inode 3: root */
	size_t root_off = ip;
	put_le16(ib + ip, 1);
	put_le16(ib + ip + 2, 0755);
	put_le32(ib + ip + 12, 3);
	ip += 32;
	/* inode 4: symlink s -> f */
	size_t s_off = ip;
	put_le16(ib + ip, 3);
	put_le16(ib + ip + 2, 0777);
	put_le32(ib + ip + 12, 4);
	put_le32(ib + ip + 16, 1);
	put_le32(ib + ip + 20, c->s_len);
	ib[ip + 24] = 'f';
	ip += 25;
	put_le16(b + itab, (uint16_t)((0x8000 | ip) & ~c->meta_header_clear));
	pos += 2 + ip;

	/* directory table: root listing, then d's listing */
	uint64_t dtab = pos;
	uint8_t *db = b + dtab + 2;
	size_t dp = 0;
	put_le32(db + dp, 2); /* 3 entries */
	put_le32(db + dp + 4, c->hdr_start_block);
	put_le32(db + dp + 8, 2);
	dp += 12;
	dp += put_dir_entry(db + dp, (uint16_t)d_off, 0, 1, c->name_d);
	dp += put_dir_entry(db + dp, c->f_entry_offset ? c->f_entry_offset : (uint16_t)f_off, -1,
			    c->f_entry_type, c->name_f);
	dp += put_dir_entry(db + dp, (uint16_t)s_off, 2, 3, "s");
	size_t root_listing = dp;
	size_t d_listing_off = dp;
	put_le32(db + dp, 0);
	put_le32(db + dp + 4, 0);
	put_le32(db + dp + 8, 1);
	dp += 12;
	dp += put_dir_entry(db + dp, c->g_entry_offset ? c->g_entry_offset : (uint16_t)f_off,
			    c->g_entry_diff, c->g_entry_type, "g");
	assert_int_equal(dp - d_listing_off, g_listing);
	put_le16(b + dtab, (uint16_t)(0x8000 | dp));
	pos += 2 + dp;
	/* directory inodes now that the listing positions are known */
	put_le32(ib + d_off + 16, 0);
	put_le32(ib + d_off + 20, 2);
	put_le16(ib + d_off + 24, (uint16_t)(g_listing + 3));
	put_le16(ib + d_off + 26, (uint16_t)d_listing_off);
	put_le32(ib + d_off + 28, 3);
	put_le32(ib + root_off + 16, 0);
	put_le32(ib + root_off + 20, 3);
	put_le16(ib + root_off + 24, (uint16_t)(root_listing + 3 + c->root_dir_size_extra));
	put_le16(ib + root_off + 26, 0);
	put_le32(ib + root_off + 28, 5);

	/* id table: one metadata block with uid 0, then its location */
	uint64_t idblk = pos;
	put_le16(b + pos, 0x8000 | 4);
	pos += 6;
	uint64_t idtab = pos;
	put_le64(b + pos, idblk);
	pos += 8;

	/* super block */
	put_le32(b + 0, 0x73717368);
	put_le32(b + 4, 4);
	put_le32(b + 12, 4096);
	put_le32(b + 16, 0);
	put_le16(b + 20, 1); /* gzip; nothing is compressed */
	put_le16(b + 22, 12);
	put_le16(b + 24, 0x0010 | 0x0200); /* no fragments, no xattrs */
	put_le16(b + 26, 1);
	put_le16(b + 28, 4);
	put_le16(b + 30, 0);
	put_le64(b + 32, root_off);
	put_le64(b + 40, pos);
	put_le64(b + 48, idtab);
	put_le64(b + 56, ~0ull);
	put_le64(b + 64, itab);
	put_le64(b + 72, dtab);
	put_le64(b + 80, ~0ull);
	put_le64(b + 88, ~0ull);
	img->len = (pos + 4095) / 4096 * 4096;
}

enum op { OP_WALK, OP_STREAM_F, OP_STREAM_G, OP_LOOKUP_F, OP_READLINK };

static int run_op(const struct craft *c, enum op op, unsigned workers, struct abota_error *err)
{
	struct image img;
	craft(c, &img);
	struct source *src = mem_source(img.b, img.len);
	struct squashfs_reader *r = NULL;
	int ret = squashfs_reader_open(src, img.len, &r, err);
	if (ret == 0) {
		squashfs_reader_set_workers(r, workers);
		struct squashfs_entry e;
		size_t n = 0;
		char *t = NULL;
		switch (op) {
		case OP_WALK:
			ret = squashfs_reader_walk(r, count_cb, &n, err);
			if (ret == 0 && n != 4)
				ret = abota_error_set(err, -ERANGE, "walk saw %zu entries", n);
			break;
		case OP_STREAM_F:
		case OP_STREAM_G: {
			struct buf_sink s = { .cap = 8192 };
			s.data = malloc(s.cap);
			ret = squashfs_reader_stream(r, op == OP_STREAM_F ? "f" : "d/g", buf_sink_cb,
						     &s, err);
			if (ret == 0 && (s.len != 4096 || memcmp(s.data, img.b + 96, 4096) != 0))
				ret = abota_error_set(err, -ERANGE, "wrong content");
			free(s.data);
			break;
		}
		case OP_LOOKUP_F:
			ret = squashfs_reader_lookup(r, "f", &e, err);
			break;
		case OP_READLINK:
			ret = squashfs_reader_readlink(r, "s", &t, err);
			if (ret == 0 && strcmp(t, "f") != 0)
				ret = abota_error_set(err, -ERANGE, "wrong target");
			free(t);
			break;
		}
	}
	squashfs_reader_free(r);
	source_close(src);
	return ret;
}

static void expect_op(const struct craft *c, enum op op, int code, const char *needle)
{
	for (int m = 0; m < 2; m++) {
		struct abota_error err = { 0 };
		int ret = run_op(c, op, m ? 2 : SQUASHFS_READER_SERIAL, &err);
		if (ret != code || (needle && !strstr(err.msg, needle)))
			fail_msg("op %d: got %d '%s', want %d '%s'", op, ret, err.msg, code,
				 needle ? needle : "");
	}
}

static void test_crafted_valid(void **state)
{
	(void)state;
	/* the hand-made image itself is fine: everything works */
	expect_op(&craft_ok, OP_WALK, 0, NULL);
	expect_op(&craft_ok, OP_STREAM_F, 0, NULL);
	expect_op(&craft_ok, OP_STREAM_G, 0, NULL);
	expect_op(&craft_ok, OP_READLINK, 0, NULL);
}

static void test_crafted_hostile(void **state)
{
	(void)state;
	struct craft c;

	c = craft_ok;
	c.f_blocks_start = 0x7FFFFFF0; /* data outside the image */
	expect_op(&c, OP_STREAM_F, -EBADMSG, "inode 1 data outside the image");
	expect_op(&c, OP_WALK, 0, NULL); /* listing is fine */

	c = craft_ok;
	c.f_blocks_start = 8; /* inside the super block */
	expect_op(&c, OP_STREAM_F, -EBADMSG, "outside the image");

	c = craft_ok;
	c.f_size = 0xFFFFFFF0; /* a block list far larger than the inode table */
	expect_op(&c, OP_LOOKUP_F, -EBADMSG, "more block sizes");

	c = craft_ok;
	c.f_size = 2 * 4096; /* block list runs into the next inode: wrong sizes */
	expect_op(&c, OP_STREAM_F, -EBADMSG, NULL);

	c = craft_ok;
	c.f_block = 0x00002000; /* compressed block larger than the block size */
	expect_op(&c, OP_STREAM_F, -EBADMSG, "bad size");

	c = craft_ok;
	c.f_block = 0x01000800; /* uncompressed block shorter than it must be */
	expect_op(&c, OP_STREAM_F, -EBADMSG, "uncompressed block 0");

	c = craft_ok;
	c.f_block = 0x00000800; /* "compressed" data that is not gzip */
	expect_op(&c, OP_STREAM_F, -EBADMSG, NULL);

	c = craft_ok;
	c.f_frag = 5; /* fragment with no fragment table */
	c.f_size = 4000;
	expect_op(&c, OP_LOOKUP_F, -EBADMSG, "fragment 5 beyond");

	c = craft_ok;
	c.f_type = 99;
	expect_op(&c, OP_WALK, -EBADMSG, "unknown type 99");

	c = craft_ok;
	c.f_type = 9; /* extended file: the fields mean something else now */
	expect_op(&c, OP_STREAM_F, -EBADMSG, NULL);

	c = craft_ok;
	c.g_entry_offset = 68 + 0; /* d/g points at the root directory: a loop */
	c.g_entry_type = 1;
	c.g_entry_diff = 2;
	expect_op(&c, OP_WALK, -EBADMSG, "directory loop");

	c = craft_ok;
	c.name_d = ".."; /* hostile names */
	expect_op(&c, OP_WALK, -EBADMSG, "bad name");
	c.name_d = "a/b";
	expect_op(&c, OP_WALK, -EBADMSG, "bad name");

	c = craft_ok;
	c.name_d = "x"; /* "x" after... no: "x" before "f" breaks the order */
	expect_op(&c, OP_WALK, -EBADMSG, "out of order");
	c.name_d = "f"; /* duplicate */
	expect_op(&c, OP_WALK, -EBADMSG, "duplicated");

	c = craft_ok;
	c.f_entry_type = 1; /* entry says directory, inode is a file */
	expect_op(&c, OP_WALK, -EBADMSG, "does not match");

	c = craft_ok;
	c.f_entry_offset = 9000; /* offset beyond a metadata block */
	expect_op(&c, OP_WALK, -EBADMSG, "outside the inode table");

	c = craft_ok;
	c.hdr_start_block = 1u << 20; /* inode block far outside */
	expect_op(&c, OP_WALK, -EBADMSG, "outside the inode table");

	c = craft_ok;
	c.root_dir_size_extra = 40000; /* listing longer than the table */
	expect_op(&c, OP_WALK, -EBADMSG, NULL);
	c.root_dir_size_extra = 5; /* trailing bytes that are not an entry */
	expect_op(&c, OP_WALK, -EBADMSG, NULL);

	c = craft_ok;
	c.s_len = 100000; /* symlink target longer than PATH_MAX */
	expect_op(&c, OP_READLINK, -EBADMSG, "symlink target length");

	c = craft_ok;
	c.meta_header_clear = 0x8000; /* inode block claims to be compressed */
	expect_op(&c, OP_WALK, -EBADMSG, NULL);
}

static void test_reader_api(void **state)
{
	(void)state;
	build_small();
	struct abota_error err = { 0 };
	struct opened o;
	assert_int_equal(open_copy(small.img, small.len, small.len, &o, &err), 0);
	struct squashfs_entry e;
	assert_int_equal(squashfs_reader_lookup(o.r, "nope", &e, &err), -ENOENT);
	assert_int_equal(squashfs_reader_lookup(o.r, "sub/nope", &e, &err), -ENOENT);
	assert_int_equal(squashfs_reader_lookup(o.r, "big.img/x", &e, &err), -ENOTDIR);
	assert_int_equal(squashfs_reader_lookup(o.r, "sub/../big.img", &e, &err), -EINVAL);
	char *data = NULL;
	size_t len = 0;
	assert_int_equal(squashfs_reader_read_file(o.r, "odd.bin", 1000, &data, &len, &err), -EFBIG);
	assert_int_equal(squashfs_reader_read_file(o.r, "sub", 1000, &data, &len, &err), -EISDIR);
	assert_int_equal(squashfs_reader_read_file(o.r, "link", 1000, &data, &len, &err), -EINVAL);
	assert_null(data);
	assert_int_equal(squashfs_reader_read_file(o.r, "empty", 0, &data, &len, &err), 0);
	assert_int_equal(len, 0);
	assert_string_equal(data, "");
	free(data);
	char *t = NULL;
	assert_int_equal(squashfs_reader_readlink(o.r, "odd.bin", &t, &err), -EINVAL);
	assert_null(t);

	/* walk stops when the callback asks */
	struct walk_rec wr = { .stop_after = 2 };
	assert_int_equal(squashfs_reader_walk(o.r, walk_cb, &wr, &err), 0);
	assert_int_equal(wr.n, 2);
	close_copy(&o);
}

static int failing_sink(void *ctx, const void *buf, size_t len, struct abota_error *err)
{
	(void)buf;
	(void)len;
	size_t *calls = ctx;
	if (++*calls == 2)
		return abota_error_set(err, -ECANCELED, "sink gave up");
	return 0;
}

static void test_sink_error(void **state)
{
	(void)state;
	build_small();
	struct abota_error err = { 0 };
	struct opened o;
	assert_int_equal(open_copy(small.img, small.len, small.len, &o, &err), 0);
	for (int m = 0; m < 3; m++) {
		size_t calls = 0;
		squashfs_reader_set_workers(o.r, m == 0 ? SQUASHFS_READER_SERIAL : (unsigned)m);
		assert_int_equal(squashfs_reader_stream(o.r, "big.img", failing_sink, &calls, &err),
				 -ECANCELED);
		assert_int_equal(calls, 2);
		assert_non_null(strstr(err.msg, "sink gave up"));
	}
	close_copy(&o);
}

/* A bundle made by `rauc bundle` (mksquashfs, gzip, export table). */
static void test_rauc_fixture(void **state)
{
	(void)state;
	const char *fixtures = getenv("ABOTA_FIXTURES");
	assert_non_null(fixtures);
	char path[512];
	snprintf(path, sizeof(path), "%s/rauc/sample-plain.raucb", fixtures);
	struct abota_error err = { 0 };
	struct source *file = NULL;
	int ret = source_open_file(path, &file, &err);
	if (ret != 0)
		fail_msg("%s", err.msg);
	struct squashfs_reader *r = NULL;
	assert_int_equal(squashfs_reader_open(file, 12288, &r, &err), 0);
	struct squashfs_info info;
	squashfs_reader_info(r, &info);
	assert_string_equal(info.compressor, "gzip");
	assert_int_equal(info.bytes_used, 9673);

	struct walk_rec wr = { 0 };
	assert_int_equal(squashfs_reader_walk(r, walk_cb, &wr, &err), 0);
	assert_string_equal(wr.list, "fip.img f644 manifest.raucm f644 rootfs.ext4 f644 ");

	static const struct {
		const char *name;
		size_t size;
		const char *sha;
	} files[] = {
		{ "rootfs.ext4", 262144,
		  "9b0a2133ed27521dc0b815266bf4c6e1503866e8f9d75408a8757e237450e6f9" },
		{ "fip.img", 8192, "7831d6ad8def664e6e4e9719f8c9eb2516ebc815f86b581a830f88c8658f0065" },
	};
	for (size_t i = 0; i < 2; i++) {
		for (size_t m = 0; m < sizeof(worker_modes) / sizeof(worker_modes[0]); m++) {
			struct buf_sink s = { .cap = files[i].size };
			s.data = malloc(s.cap);
			squashfs_reader_set_workers(r, worker_modes[m]);
			ret = squashfs_reader_stream(r, files[i].name, buf_sink_cb, &s, &err);
			if (ret != 0)
				fail_msg("%s: %s", files[i].name, err.msg);
			assert_int_equal(s.len, files[i].size);
			uint8_t d[32];
			char hex[65];
			sha256(s.data, s.len, d);
			for (int k = 0; k < 32; k++)
				snprintf(hex + 2 * k, 3, "%02x", d[k]);
			assert_string_equal(hex, files[i].sha);
			free(s.data);
		}
	}
	char *m = NULL;
	size_t len = 0;
	assert_int_equal(squashfs_reader_read_file(r, "manifest.raucm", 64 * 1024, &m, &len, &err), 0);
	assert_int_equal(len, 373);
	assert_non_null(strstr(m, "compatible=example-stm32mp1-ota"));
	free(m);
	squashfs_reader_free(r);
	source_close(file);
}

/* A source that serves an image from memory and records what the reader
 * tells it to forget, and whether anything forgotten is read again. */
struct forget_src {
	struct source base;
	const uint8_t *data;
	pthread_mutex_t lock; /* workers read while the calling thread forgets */
	size_t calls;
	uint64_t start, end; /* forgotten: [start, end) */
	bool prefix;         /* every call named the range from the first start */
	size_t reread;       /* reads inside the range after it was forgotten */
};

static int fs_read_at(struct source *src, void *buf, size_t len, uint64_t off,
		      struct abota_error *err)
{
	(void)err;
	struct forget_src *f = (struct forget_src *)src;
	pthread_mutex_lock(&f->lock);
	if (f->calls && off < f->end && off + len > f->start)
		f->reread++;
	pthread_mutex_unlock(&f->lock);
	memcpy(buf, f->data + off, len);
	return 0;
}

static void fs_forget(struct source *src, uint64_t off, uint64_t len)
{
	struct forget_src *f = (struct forget_src *)src;
	pthread_mutex_lock(&f->lock);
	if (f->calls == 0)
		f->start = off;
	f->prefix &= off == f->start && off + len >= f->end;
	f->end = off + len;
	f->calls++;
	pthread_mutex_unlock(&f->lock);
}

static const struct source_ops forget_ops = { .read_at = fs_read_at, .forget = fs_forget };

/* Streaming a file tells the source to forget its data blocks once they
 * were delivered, a few MiB at a time and always from the file's first
 * block (the kernel drops a large folio only whole, and one straddles
 * every boundary between two calls), and nothing forgotten is read again:
 * installing a bundle no longer leaves it in the page cache. */
static void test_stream_forgets_what_it_read(void **state)
{
	(void)state;
	enum { RAND_SIZE = 72 * 131072 }; /* 9 MiB that do not compress: 9 MiB on disk */
	uint8_t *data = malloc(RAND_SIZE);
	assert_non_null(data);
	fill_random(data, RAND_SIZE, 11);
	write_file("rand.bin", data, RAND_SIZE, 0644);
	struct abota_error err = { 0 };
	int fd = new_output("forget.sqfs");
	struct squashfs_writer_opts opts = { .compressor = "gzip", .mtime = 1700000000 };
	struct squashfs_writer *w = NULL;
	assert_int_equal(squashfs_writer_open(fd, &opts, &w, &err), 0);
	add_input(w, "odd.bin", "odd.bin", 0, NULL); /* data before rand.bin's */
	add_input(w, "rand.bin", "rand.bin", 0, NULL);
	uint64_t size = 0;
	assert_int_equal(squashfs_writer_finish(w, &size, &err), 0);
	squashfs_writer_free(w);
	close(fd);
	char path[256];
	snprintf(path, sizeof(path), "%s/forget.sqfs", dir);
	size_t len = 0;
	uint8_t *img = read_whole(path, &len);
	for (size_t m = 0; m < sizeof(worker_modes) / sizeof(worker_modes[0]); m++) {
		struct forget_src *f = source_alloc(sizeof(*f), &forget_ops, len, "forget");
		assert_non_null(f);
		f->data = img;
		f->prefix = true;
		pthread_mutex_init(&f->lock, NULL);
		struct squashfs_reader *r = NULL;
		assert_int_equal(squashfs_reader_open(&f->base, len, &r, &err), 0);
		check_stream(r, "rand.bin", worker_modes[m], data, RAND_SIZE);
		/* 9 MiB in 4 MiB steps, the rest at the end */
		assert_int_equal(f->calls, 3);
		assert_true(f->prefix);
		assert_int_equal(f->reread, 0);
		/* all of rand.bin's blocks, which follow odd.bin's */
		assert_int_equal(f->end - f->start, RAND_SIZE);
		assert_true(f->start > 96 && f->start < ODD_SIZE + 4096);
		squashfs_reader_free(r);
		pthread_mutex_destroy(&f->lock);
		source_close(&f->base);
	}
	free(img);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_zstd),
		cmocka_unit_test(test_roundtrip_gzip),
		cmocka_unit_test(test_roundtrip_xz),
		cmocka_unit_test(test_roundtrip_lz4),
		cmocka_unit_test(test_roundtrip_small_blocks),
		cmocka_unit_test(test_roundtrip_large_blocks),
		cmocka_unit_test(test_writer_rejects),
		cmocka_unit_test(test_many_entries),
		cmocka_unit_test(test_writer_abandon),
		cmocka_unit_test(test_super_block_checks),
		cmocka_unit_test(test_corrupt_metadata),
		cmocka_unit_test(test_crafted_valid),
		cmocka_unit_test(test_crafted_hostile),
		cmocka_unit_test(test_reader_api),
		cmocka_unit_test(test_sink_error),
		cmocka_unit_test(test_rauc_fixture),
		cmocka_unit_test(test_stream_forgets_what_it_read),
	};
	int ret = cmocka_run_group_tests(tests, group_setup, group_teardown);
	built_free(&small);
	return ret;
}
