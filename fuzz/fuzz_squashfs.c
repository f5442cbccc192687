/* fuzz_squashfs.c - squashfs_reader_open over an in-memory source, then walk,
 * lookup, read_file, readlink and stream of every entry (bounded). */
#include <stdlib.h>
#include <string.h>

#include "abota/squashfs.h"
#include "fuzz_common.h"

#define MAX_ENTRIES 64
#define MAX_STREAM (4u << 20) /* bytes per file */

struct walk_ctx {
	struct squashfs_reader *r;
	unsigned n;
	bool serial;
};

static int on_entry(void *p, const char *path, const struct squashfs_entry *e,
		    struct abota_error *err)
{
	struct walk_ctx *c = p;
	(void)err;
	FUZZ_CHECK(path != NULL && path[0] != '\0');
	if (++c->n > MAX_ENTRIES)
		return 1;
	struct abota_error e2 = { 0 };
	struct squashfs_entry le;
	(void)squashfs_reader_lookup(c->r, path, &le, &e2);
	if (e->type == SQUASHFS_TYPE_FILE) {
		char *buf = NULL;
		size_t len = 0;
		if (squashfs_reader_read_file(c->r, path, 64 * 1024, &buf, &len, &e2) == 0) {
			FUZZ_CHECK(buf[len] == '\0');
			free(buf);
		}
		struct null_sink s = { .cap = MAX_STREAM };
		(void)squashfs_reader_stream(c->r, path, null_sink_fn, &s, &e2);
	} else if (e->type == SQUASHFS_TYPE_SYMLINK) {
		char *t = NULL;
		if (squashfs_reader_readlink(c->r, path, &t, &e2) == 0)
			free(t);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_quiet();
	if (size < 1)
		return 0;
	/* First byte: options (serial decompression or worker threads). */
	bool serial = (data[0] & 1) == 0;
	data++;
	size--;
	struct source *src = fuzz_mem_source(data, size);
	if (!src)
		return 0;
	struct abota_error err = { 0 };
	struct squashfs_reader *r = NULL;
	if (squashfs_reader_open(src, size, &r, &err) == 0) {
		squashfs_reader_set_workers(r, serial ? SQUASHFS_READER_SERIAL : 2);
		struct squashfs_info info;
		squashfs_reader_info(r, &info);
		FUZZ_CHECK(info.compressor != NULL);
		struct squashfs_entry e;
		(void)squashfs_reader_lookup(r, "", &e, &err);
		(void)squashfs_reader_lookup(r, "manifest.raucm", &e, &err);
		(void)squashfs_reader_lookup(r, "/a/../b", &e, &err);
		char *buf = NULL;
		size_t len = 0;
		if (squashfs_reader_read_file(r, "manifest.raucm", 256 * 1024, &buf, &len, &err) ==
		    0)
			free(buf);
		struct walk_ctx c = { .r = r, .serial = serial };
		(void)squashfs_reader_walk(r, on_entry, &c, &err);
		squashfs_reader_free(r);
	}
	source_close(src);
	return 0;
}
