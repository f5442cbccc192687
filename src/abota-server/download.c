/* download.c - artifact bytes: 200, single-range 206 (sendfile), multi-range
 * multipart/byteranges 206, 416 with "bytes * /size", If-Match 412, If-Range,
 * ETag = "<sha1>" as hawkBit. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "abota/log.h"
#include "range.h"
#include "server.h"

#define BOUNDARY "THIS_STRING_SEPARATES_MULTIPART"

struct multi {
	int fd;
	uint64_t size;
	struct byte_range r[RANGE_MAX];
	int n;
	/* generated stream: per part a header then the bytes; then the trailer */
	char head[RANGE_MAX][160];
	size_t head_len[RANGE_MAX];
	uint64_t total;
};

static uint64_t part_len(const struct multi *m, int i)
{
	return m->head_len[i] + (m->r[i].last - m->r[i].first + 1) + 2; /* CRLF after data */
}

static const char trailer[] = "--" BOUNDARY "--\r\n";

static ssize_t multi_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct multi *m = cls;
	uint64_t off = pos;
	for (int i = 0; i < m->n; i++) {
		uint64_t pl = part_len(m, i);
		if (off >= pl) {
			off -= pl;
			continue;
		}
		if (off < m->head_len[i]) {
			size_t n = m->head_len[i] - (size_t)off;
			if (n > max)
				n = max;
			memcpy(buf, m->head[i] + off, n);
			return (ssize_t)n;
		}
		off -= m->head_len[i];
		uint64_t dlen = m->r[i].last - m->r[i].first + 1;
		if (off < dlen) {
			size_t n = dlen - off > max ? max : (size_t)(dlen - off);
			ssize_t got = pread(m->fd, buf, n, (off_t)(m->r[i].first + off));
			return got > 0 ? got : MHD_CONTENT_READER_END_WITH_ERROR;
		}
		off -= dlen;
		const char *crlf = "\r\n";
		size_t n = 2 - (size_t)off > max ? max : 2 - (size_t)off;
		memcpy(buf, crlf + off, n);
		return (ssize_t)n;
	}
	size_t tl = sizeof(trailer) - 1;
	if (off >= tl)
		return MHD_CONTENT_READER_END_OF_STREAM;
	size_t n = tl - (size_t)off > max ? max : tl - (size_t)off;
	memcpy(buf, trailer + off, n);
	return (ssize_t)n;
}

static void multi_free(void *cls)
{
	struct multi *m = cls;
	close(m->fd);
	free(m);
}

/* Whole-file bodies are read in 1 MiB blocks: with thousands of busy
 * connections per worker, libmicrohttpd sends one block per connection and
 * loop iteration, and its sendfile path moves only 128 KiB per turn, which
 * starves a download behind a polling fleet (bench/server_load.py). */
#define FULL_BLOCK (1024 * 1024)

static ssize_t file_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	int fd = (int)(intptr_t)cls;
	ssize_t n = pread(fd, buf, max, (off_t)pos);
	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	return n > 0 ? n : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void file_free(void *cls)
{
	close((int)(intptr_t)cls);
}

static void common_headers(struct MHD_Response *resp, const struct store_artifact *a,
			   const char *etag, const char *lastmod)
{
	char cd[400];
	snprintf(cd, sizeof(cd), "attachment;filename=%s", a->filename);
	MHD_add_response_header(resp, "Content-Disposition", cd);
	MHD_add_response_header(resp, "ETag", etag);
	MHD_add_response_header(resp, "Last-Modified", lastmod);
	MHD_add_response_header(resp, "Accept-Ranges", "bytes");
}

/* If-Match / If-None-Match lists: "*" or one of the comma-separated tags,
 * each compared whole ("x<sha1>" or a tag list containing the SHA-1 as a
 * substring does not match).  A weak tag (W/"...") matches only where weak
 * comparison is allowed (If-None-Match, RFC 9110 §13.1). */
static bool etag_listed(const char *hdr, const char *etag, bool weak_ok)
{
	size_t el = strlen(etag);
	const char *p = hdr;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		size_t n = strcspn(p, ",");
		size_t t = n;
		while (t && (p[t - 1] == ' ' || p[t - 1] == '\t'))
			t--;
		const char *tag = p;
		if (weak_ok && t > 2 && strncmp(tag, "W/", 2) == 0) {
			tag += 2;
			t -= 2;
		}
		if ((t == 1 && tag[0] == '*') || (t == el && memcmp(tag, etag, el) == 0))
			return true;
		if (!p[n])
			return false;
		p += n + 1;
	}
}

enum MHD_Result download_artifact(struct request *r, const struct store_artifact *a,
				  int64_t action_id)
{
	char path[4200], etag[48], lastmod[64];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", r->srv->artifacts_dir, a->sha256);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || (uint64_t)st.st_size != (uint64_t)a->size) {
		log_error("artifact %s: blob %s missing or wrong size", a->filename, path);
		if (fd >= 0)
			close(fd);
		return reply_error(r, 500, "hawkbit.server.error.artifact.loadFailed",
				   "artifact content unavailable");
	}
	uint64_t size = (uint64_t)st.st_size;
	snprintf(etag, sizeof(etag), "\"%s\"", a->sha1);
	time_t mt = (time_t)(a->created_at / 1000);
	struct tm tm;
	gmtime_r(&mt, &tm);
	strftime(lastmod, sizeof(lastmod), "%a, %d %b %Y %H:%M:%S GMT", &tm);

	const char *im = req_header(r, "If-Match");
	if (im && !etag_listed(im, etag, false)) {
		close(fd);
		return reply_empty(r, 412);
	}
	const char *inm = req_header(r, "If-None-Match");
	if (inm && etag_listed(inm, etag, true)) {
		close(fd);
		struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
		if (resp)
			MHD_add_response_header(resp, "ETag", etag);
		return queue(r, 304, resp);
	}
	const char *rh = req_header(r, "Range");
	const char *ir = req_header(r, "If-Range");
	/* If-Range: ranges only while the entity is unchanged (ETag or date) */
	if (rh && ir && strcmp(ir, etag) != 0 && strcmp(ir, lastmod) != 0)
		rh = NULL;
	if (!rh || !req_method(r, "GET")) {
		if (action_id) {
			char msg[1200];
			snprintf(msg, sizeof(msg), "[\"Target downloads %s\"]", a->filename);
			store_action_note(r->srv->store, action_id, "download", msg);
		}
		struct MHD_Response *resp = MHD_create_response_from_callback(
			size, FULL_BLOCK, file_read, (void *)(intptr_t)fd, file_free);
		if (!resp) {
			close(fd);
			return MHD_NO;
		}
		MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
		common_headers(resp, a, etag, lastmod);
		return queue(r, 200, resp);
	}
	struct multi *m = calloc(1, sizeof(*m));
	if (!m) {
		close(fd);
		return MHD_NO;
	}
	m->n = range_parse(rh, size, m->r);
	if (m->n < 0) {
		free(m);
		close(fd);
		char cr[64];
		snprintf(cr, sizeof(cr), "bytes */%" PRIu64, size);
		struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
		if (resp)
			MHD_add_response_header(resp, "Content-Range", cr);
		return queue(r, 416, resp);
	}
	struct MHD_Response *resp;
	if (m->n == 1) {
		uint64_t first = m->r[0].first, len = m->r[0].last - m->r[0].first + 1;
		char cr[96];
		snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first,
			 m->r[0].last, size);
		free(m);
		resp = MHD_create_response_from_fd_at_offset64(len, fd, first);
		if (!resp) {
			close(fd);
			return MHD_NO;
		}
		MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
		MHD_add_response_header(resp, "Content-Range", cr);
	} else {
		m->fd = fd;
		m->size = size;
		for (int i = 0; i < m->n; i++) {
			int hl = snprintf(m->head[i], sizeof(m->head[i]),
					  "--" BOUNDARY "\r\nContent-Type: application/octet-stream\r\n"
					  "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n\r\n",
					  m->r[i].first, m->r[i].last, size);
			m->head_len[i] = (size_t)hl;
			m->total += part_len(m, i);
		}
		m->total += sizeof(trailer) - 1;
		resp = MHD_create_response_from_callback(m->total, 64 * 1024, multi_read, m, multi_free);
		if (!resp) {
			multi_free(m);
			return MHD_NO;
		}
		MHD_add_response_header(resp, "Content-Type",
					"multipart/byteranges; boundary=" BOUNDARY);
	}
	common_headers(resp, a, etag, lastmod);
	return queue(r, 206, resp);
}
