/* http_source.c - byte source over HTTP range requests (see http_source.h). */
#include "abota/http_source.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* libcurl is loaded when the first URL is opened, not linked: it pulls in
 * some thirty libraries (gnutls, kerberos, ldap, ssh, ...) that a device
 * installing from local files would map at every start for nothing (see
 * docs/benchmarks.md, peak RSS).  The header is still used for the types
 * and constants. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <dlfcn.h>

#include "abota/log.h"

/* The first read after a jump (squashfs metadata, the superblock) fetches
 * this much; sequential reads double it up to max_readahead.  Image data is
 * planned (source_plan) and fetched as planned. */
#define MIN_READAHEAD (64u << 10)
#define DEFAULT_MAX_READAHEAD (8u << 20)
#define WINDOWS 4
/* Planned ranges closer than this are fetched as one: the gap costs less
 * than another request (and hawkBit counts requests). */
#define PLAN_GAP (64u << 10)

/* A window is fetched whole and handed out in the readers' pieces.  One
 * fetched for planned bytes knows how many of them it holds (expect); once
 * that many have been copied out (taken) every planned byte has been read
 * -- the readers read each once -- and its memory goes back at once, not
 * when a later fetch needs the slot: most of a streamed install's peak
 * memory was windows already read to the end.  A byte read twice makes the
 * window go early; a later read of it fetches again, which costs a
 * request, never a wrong byte.  A plan can also promise bytes nobody reads
 * again (a block the layer above already holds): a planned window no read
 * has touched while STALE_BYTES more were fetched goes too.  (The verity
 * hash blocks' window is read once per 8 MiB of data.) */
#define STALE_BYTES (32u << 20)
/* A window's memory also goes back in steps while it is read: it is held
 * in segments of a sixteenth of the largest window, and a segment whose
 * planned bytes have all been read leaves the window (a read of it fetches
 * again).  A streamed install then holds about one window (the next one,
 * fetched while the current one is read to its end) instead of two.
 * Segments given back wait in a pool for the next window instead of going
 * back to the kernel, where every window would fault in and zero fresh
 * pages (40,700 page faults streaming a 148 MB bundle, 5,500 with the
 * pool); the next window needs about as many as the last one gave back. */
#define SEGS 16u
#define POOL SEGS
struct window {
	uint64_t off;
	size_t len;
	size_t seg;    /* bytes per segment: hs->seg, or more for one oversized read */
	uint8_t *segs[SEGS]; /* NULL: given back (or beyond len) */
	uint64_t used; /* LRU stamp */
	uint64_t expect, taken; /* planned bytes in [off, off + len), and copied out */
	uint64_t seen; /* hs->fetched when last read from (or fetched) */
	uint64_t seg_expect[SEGS], seg_taken[SEGS];
	bool filling;  /* a request is writing segs (off, len already set) */
	size_t avail;  /* while filling: bytes from the start that have arrived */
};

/* Where a fetch writes: segments of seg bytes (one with seg = SIZE_MAX for
 * a plain buffer). */
struct dest {
	uint8_t *const *segs;
	size_t seg;
};

/* Two connections: the squashfs reader's two workers fetch their chunks
 * at the same time, so one decompresses while the other waits for the
 * network (one connection serialised download and decompression). */
#define CONNS 2

struct http_source;

/* One connection and the state of the request running on it. */
struct conn {
	struct http_source *hs;
	CURL *curl;
	bool busy;
	struct window *win; /* the window being filled, or NULL */
	const struct dest *dst;
	size_t pos; /* of the request's first byte in dst */
	size_t want, got;
	bool too_much;
	bool bad_status;
	long status;
	char content_range[128];
	char etag[256], last_modified[128];
	char retry_after[32];
};

struct http_source {
	struct source base;
	/* The workers read concurrently (through the checked source, which
	 * passes whole blocks straight down).  The lock protects the windows,
	 * the plan, the statistics and the connection pool; requests run
	 * without it. */
	pthread_mutex_t lock;
	pthread_cond_t changed; /* a window filled or a connection freed */
	bool lock_ready;
	struct conn conn[CONNS];
	struct curl_slist *headers;
	char *url;
	char validator[300]; /* "If-Range: " + ETag or Last-Modified of the first response */
	struct http_opts opts;
	struct window win[WINDOWS];
	uint64_t stamp;
	uint64_t fetched; /* bytes of all windows claimed so far */
	uint64_t held;    /* bytes of segments in windows and in the pool */
	unsigned waiting; /* readers waiting for bytes of a window being filled */
	size_t seg;       /* segment size: a sixteenth of max_readahead, in pages */
	uint8_t *pool[POOL]; /* segments given back, for the next window */
	unsigned pool_n;
	uint64_t last_end;   /* end of the previous read, for sequential detection */
	size_t readahead;
	struct source_range *plan; /* source_plan(), merged over gaps; sorted */
	size_t plan_n;
	struct source_range *need; /* the same, merged only where they touch */
	size_t need_n;
	struct http_stats stats;
};

/* --- libcurl, loaded on first use --- */

static struct {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *c, CURLoption opt, ...);
	CURLcode (*easy_perform)(CURL *c);
	CURLcode (*easy_getinfo)(CURL *c, CURLINFO info, ...);
	void (*easy_cleanup)(CURL *c);
	CURL *(*easy_duphandle)(CURL *c);
	const char *(*easy_strerror)(CURLcode code);
	struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
	void (*slist_free_all)(struct curl_slist *l);
} cu;

static pthread_once_t cu_once = PTHREAD_ONCE_INIT;
static char cu_error[200];

static void cu_load(void)
{
	void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(cu_error, sizeof(cu_error), "%s", dlerror());
		return;
	}
	struct {
		const char *name;
		void **slot;
	} syms[] = {
		{ "curl_global_init", (void **)&cu.global_init },
		{ "curl_easy_init", (void **)&cu.easy_init },
		{ "curl_easy_setopt", (void **)&cu.easy_setopt },
		{ "curl_easy_perform", (void **)&cu.easy_perform },
		{ "curl_easy_getinfo", (void **)&cu.easy_getinfo },
		{ "curl_easy_cleanup", (void **)&cu.easy_cleanup },
		{ "curl_easy_duphandle", (void **)&cu.easy_duphandle },
		{ "curl_easy_strerror", (void **)&cu.easy_strerror },
		{ "curl_slist_append", (void **)&cu.slist_append },
		{ "curl_slist_free_all", (void **)&cu.slist_free_all },
	};
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		*syms[i].slot = dlsym(h, syms[i].name);
		if (!*syms[i].slot) {
			snprintf(cu_error, sizeof(cu_error), "libcurl.so.4 has no %s", syms[i].name);
			memset(&cu, 0, sizeof(cu));
			return; /* the handle stays open: harmless */
		}
	}
	if (cu.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(cu_error, sizeof(cu_error), "cannot initialise libcurl");
		memset(&cu, 0, sizeof(cu));
	}
}

/* Loads libcurl once (thread-safe); -ENOTSUP with the reason if missing. */
static int cu_ready(const char *url, struct abota_error *err)
{
	pthread_once(&cu_once, cu_load);
	if (!cu.easy_init)
		return abota_error_set(err, -ENOTSUP,
				       "%s: http(s) needs libcurl (Debian package libcurl4): %s", url,
				       cu_error);
	return 0;
}

static const struct source_ops http_ops;

bool http_is_url(const char *s)
{
	return strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0;
}

bool source_is_http(const struct source *src)
{
	return src->ops == &http_ops;
}

void http_source_stats(const struct source *src, struct http_stats *stats)
{
	memset(stats, 0, sizeof(*stats));
	if (!source_is_http(src))
		return;
	struct http_source *hs = (struct http_source *)(uintptr_t)src;
	if (hs->lock_ready)
		pthread_mutex_lock(&hs->lock);
	*stats = hs->stats;
	if (hs->lock_ready)
		pthread_mutex_unlock(&hs->lock);
}

void http_stats_log(const char *name, const struct http_stats *st)
{
	log_info("%s: %" PRIu64 " requests (%" PRIu64 " retries), %" PRIu64
		 " bytes received, at most %" PRIu64 " KiB held in read-ahead windows",
		 name, st->requests, st->retries, st->bytes, st->held_max >> 10);
}

/* Copies a header value (trimmed) if the line is "name: value". */
static bool header_value(const char *line, size_t len, const char *name, char *out, size_t cap)
{
	size_t n = strlen(name);
	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return false;
	const char *v = line + n + 1;
	size_t vl = len - n - 1;
	while (vl && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		vl--;
	if (vl >= cap)
		vl = cap - 1;
	memcpy(out, v, vl);
	out[vl] = '\0';
	return true;
}

static size_t on_header(char *line, size_t size, size_t n, void *p)
{
	struct conn *hs = p;
	size_t len = size * n;
	/* A new status line (after a redirect or 100-continue) resets them. */
	if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		hs->content_range[0] = hs->etag[0] = hs->last_modified[0] = hs->retry_after[0] = '\0';
		return len;
	}
	header_value(line, len, "Content-Range", hs->content_range, sizeof(hs->content_range));
	header_value(line, len, "ETag", hs->etag, sizeof(hs->etag));
	header_value(line, len, "Last-Modified", hs->last_modified, sizeof(hs->last_modified));
	header_value(line, len, "Retry-After", hs->retry_after, sizeof(hs->retry_after));
	return len;
}

static size_t on_data(char *data, size_t size, size_t n, void *p)
{
	struct conn *hs = p;
	size_t len = size * n;
	long code = 0;
	cu.easy_getinfo(hs->curl, CURLINFO_RESPONSE_CODE, &code);
	if (code != 206) {
		/* Never take a body that is not the range we asked for. */
		hs->bad_status = true;
		return 0;
	}
	if (len > hs->want - hs->got) {
		/* More than asked: an endless or wrong body; stop reading it. */
		hs->too_much = true;
		return 0;
	}
	const uint8_t *d = (const uint8_t *)data;
	size_t at = hs->pos + hs->got;
	for (size_t left = len; left > 0;) {
		size_t o = at % hs->dst->seg;
		size_t k = hs->dst->seg - o < left ? hs->dst->seg - o : left;
		memcpy(hs->dst->segs[at / hs->dst->seg] + o, d, k);
		d += k;
		at += k;
		left -= k;
	}
	hs->got += len;
	if (hs->win) {
		/* Readers may take what has arrived; those waiting are woken
		 * once per segment, not per piece curl hands over. */
		struct http_source *src = hs->hs;
		struct window *w = hs->win;
		pthread_mutex_lock(&src->lock);
		size_t before = w->avail;
		w->avail = hs->pos + hs->got;
		if (src->waiting && (before / w->seg != w->avail / w->seg || w->avail == w->len))
			pthread_cond_broadcast(&src->changed);
		pthread_mutex_unlock(&src->lock);
	}
	return len;
}

/* One decimal number (1*DIGIT): no sign, no spaces, no overflow. */
static const char *parse_u64(const char *p, uint64_t *out)
{
	if (*p < '0' || *p > '9')
		return NULL;
	uint64_t v = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return NULL;
		v = v * 10 + d;
	}
	*out = v;
	return p;
}

/* "bytes START-END/TOTAL", strictly: sscanf's %llu took a sign ("-1" became
 * 2^64-1), leading spaces, and saturated on overflow. */
bool http_parse_content_range(const char *s, uint64_t *start, uint64_t *end, uint64_t *total)
{
	uint64_t a, b, t;
	if (strncmp(s, "bytes ", 6) != 0)
		return false;
	const char *p = parse_u64(s + 6, &a);
	if (!p || *p++ != '-')
		return false;
	p = parse_u64(p, &b);
	if (!p || *p++ != '/')
		return false;
	p = parse_u64(p, &t);
	if (!p || *p != '\0' || b < a || b >= t)
		return false;
	*start = a;
	*end = b;
	*total = t;
	return true;
}

static void backoff(unsigned attempt, const char *retry_after)
{
	/* 100 ms doubling up to 5 s; a server's Retry-After (seconds, capped
	 * at 30 s) wins. */
	long ms = 100L << (attempt < 6 ? attempt : 6);
	if (ms > 5000)
		ms = 5000;
	if (retry_after && *retry_after && isdigit((unsigned char)retry_after[0])) {
		long s = strtol(retry_after, NULL, 10);
		if (s > 30)
			s = 30;
		ms = s * 1000;
	}
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Fetches exactly len bytes at off into dst, retrying after failures and
 * continuing after what already arrived. */
/* Adds a finished request's numbers (lock held by no one). */
static void count(struct http_source *hs, uint64_t requests, uint64_t bytes, uint64_t retries)
{
	pthread_mutex_lock(&hs->lock);
	hs->stats.requests += requests;
	hs->stats.bytes += bytes;
	hs->stats.retries += retries;
	pthread_mutex_unlock(&hs->lock);
}

static int fetch_on(struct http_source *src, struct conn *hs, const struct dest *dst, size_t len,
		    uint64_t off, struct abota_error *err)
{
	unsigned max = src->opts.max_retries ? src->opts.max_retries : 5;
	size_t done = 0;
	char range[96];
	char last[256] = "";
	for (unsigned attempt = 0;; attempt++) {
		uint64_t start = off + done;
		snprintf(range, sizeof(range), "%" PRIu64 "-%" PRIu64, start, off + len - 1);
		hs->dst = dst;
		hs->pos = done;
		hs->want = len - done;
		hs->got = 0;
		hs->too_much = hs->bad_status = false;
		hs->status = 0;
		cu.easy_setopt(hs->curl, CURLOPT_RANGE, range);
		log_debug("%s: GET bytes=%s", src->base.name, range);
		CURLcode rc = cu.easy_perform(hs->curl);
		cu.easy_getinfo(hs->curl, CURLINFO_RESPONSE_CODE, &hs->status);
		done += hs->got;
		count(src, 1, hs->got, attempt > 0);
		if (hs->too_much)
			return abota_error_set(err, -EPROTO,
					       "%s: server sent more data than the requested range",
					       src->base.name);
		if (hs->status == 200 || (hs->bad_status && hs->status >= 200 && hs->status < 300)) {
			if (src->validator[0])
				return abota_error_set(err, -ESTALE,
						       "%s: the file changed on the server (range request answered with the whole file)",
						       src->base.name);
			return abota_error_set(err, -ENOTSUP,
					       "%s: range requests not supported by server (HTTP %ld)",
					       src->base.name, hs->status);
		}
		if (rc == CURLE_OK && hs->status == 206) {
			uint64_t s, e, t;
			if (!http_parse_content_range(hs->content_range, &s, &e, &t) || s != start ||
			    t != src->base.size)
				return abota_error_set(err, -EPROTO,
						       "%s: bad Content-Range '%s' for bytes %s",
						       src->base.name, hs->content_range, range);
			if (done == len)
				return 0;
			snprintf(last, sizeof(last), "short response (%zu of %zu bytes)", done, len);
		} else if (rc != CURLE_OK) {
			snprintf(last, sizeof(last), "%s", cu.easy_strerror(rc));
		} else if (hs->status == 416) {
			return abota_error_set(err, -EPROTO,
					       "%s: server refused range %s (416): file shorter than expected",
					       src->base.name, range);
		} else if (hs->status == 429 || hs->status == 408 || hs->status >= 500) {
			snprintf(last, sizeof(last), "HTTP %ld", hs->status);
		} else {
			return abota_error_set(err, hs->status == 404 || hs->status == 410 ? -ENOENT : -EACCES,
					       "%s: HTTP %ld", src->base.name, hs->status);
		}
		if (attempt >= max)
			return abota_error_set(err, -EIO, "%s: giving up after %u attempts: %s",
					       src->base.name, attempt + 1, last);
		log_info("%s: %s; retrying from byte %" PRIu64, src->base.name, last, off + done);
		backoff(attempt, hs->status == 429 || hs->status == 503 ? hs->retry_after : NULL);
	}
}

/* Planned bytes (hs->need) in [off, off + len). */
static uint64_t need_in(const struct http_source *hs, uint64_t off, uint64_t len)
{
	size_t lo = 0, hi = hs->need_n;
	while (lo < hi) { /* the first range ending after off */
		size_t mid = lo + (hi - lo) / 2;
		if (hs->need[mid].off + hs->need[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	uint64_t sum = 0, end = off + len;
	for (size_t i = lo; i < hs->need_n && hs->need[i].off < end; i++) {
		uint64_t a = hs->need[i].off > off ? hs->need[i].off : off;
		uint64_t b = hs->need[i].off + hs->need[i].len;
		if (b > end)
			b = end;
		sum += b - a;
	}
	return sum;
}

/* A segment of hs->seg bytes: from the pool, else new; NULL if out of memory. */
static uint8_t *seg_get(struct http_source *hs, size_t size)
{
	if (size == hs->seg && hs->pool_n > 0)
		return hs->pool[--hs->pool_n];
	/* fd -1 as MAP_ANONYMOUS wants (cppcheck's posix model expects a file) */
	/* cppcheck-suppress invalidFunctionArg */
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	hs->held += size;
	if (hs->held > hs->stats.held_max)
		hs->stats.held_max = hs->held;
	return p;
}

/* Gives a segment back: to the pool while it has room, else to the kernel. */
static void seg_put(struct http_source *hs, uint8_t *p, size_t size)
{
	if (size == hs->seg && hs->pool_n < POOL) {
		hs->pool[hs->pool_n++] = p;
		return;
	}
	munmap(p, size);
	hs->held -= size;
}

/* Gives a window's segments back; the slot is free again. */
static void window_release(struct http_source *hs, struct window *w)
{
	for (unsigned i = 0; i < SEGS; i++)
		if (w->segs[i]) {
			seg_put(hs, w->segs[i], w->seg);
			w->segs[i] = NULL;
		}
	w->len = 0;
	w->expect = w->taken = 0;
}

/* Counts n bytes copied out at rel (from the window's start) and gives back
 * what has been read completely: the whole window, or segments of it (not
 * the last: it goes with the window). */
static void window_taken(struct http_source *hs, struct window *w, uint64_t rel, size_t n)
{
	w->taken += n;
	if (!w->expect)
		return; /* not planned: kept until a fetch needs the slot */
	if (w->taken >= w->expect && !w->filling) {
		window_release(hs, w); /* (a filling one goes when its fetch ends) */
		return;
	}
	while (n > 0) {
		size_t i = (size_t)(rel / w->seg);
		uint64_t k = (i + 1) * w->seg - rel;
		if (k > n)
			k = n;
		w->seg_taken[i] += k;
		rel += k;
		n -= (size_t)k;
	}
	/* only segments written to the end: the fetch may still write the
	 * unplanned tail of one whose planned bytes have all been read */
	size_t written = w->filling ? w->avail : w->len;
	for (unsigned i = 0; i + 1 < SEGS && (uint64_t)(i + 1) * w->seg < w->len &&
			     (uint64_t)(i + 1) * w->seg <= written;
	     i++)
		if (w->segs[i] && w->seg_taken[i] >= w->seg_expect[i]) {
			seg_put(hs, w->segs[i], w->seg);
			w->segs[i] = NULL;
		}
}

/* Gives a claimed window the segments for want bytes and counts the planned
 * bytes of each.  -ENOMEM (the window released) if memory runs out. */
static int window_fill_plan(struct http_source *hs, struct window *w, uint64_t off, size_t want)
{
	size_t seg = hs->seg;
	if (want > SEGS * seg) /* one read larger than a window: bigger segments */
		seg = (want / SEGS + hs->seg - 1) / hs->seg * hs->seg;
	if (w->len && w->seg != seg)
		window_release(hs, w);
	unsigned n = (unsigned)((want + seg - 1) / seg);
	for (unsigned i = 0; i < SEGS; i++) {
		if (i >= n && w->segs[i]) {
			seg_put(hs, w->segs[i], w->seg);
			w->segs[i] = NULL;
		} else if (i < n && !w->segs[i]) {
			w->segs[i] = seg_get(hs, seg);
			if (!w->segs[i]) {
				w->seg = seg;
				window_release(hs, w);
				return -ENOMEM;
			}
		}
	}
	w->seg = seg;
	w->off = off;
	w->len = want;
	w->expect = 0;
	w->taken = 0;
	memset(w->seg_taken, 0, sizeof(w->seg_taken));
	for (unsigned i = 0; i < SEGS; i++) {
		uint64_t a = (uint64_t)i * seg;
		uint64_t b = a + seg < want ? a + seg : want;
		w->seg_expect[i] = a < want ? need_in(hs, off + a, b - a) : 0;
		w->expect += w->seg_expect[i];
	}
	return 0;
}

/* The window holding off (filled, or being filled), or NULL. */
static struct window *window_for(struct http_source *hs, uint64_t off)
{
	for (unsigned i = 0; i < WINDOWS; i++) {
		struct window *w = &hs->win[i];
		if (w->len && off >= w->off && off < w->off + w->len &&
		    w->segs[(off - w->off) / w->seg]) {
			w->used = ++hs->stamp;
			w->seen = hs->fetched;
			return w;
		}
	}
	return NULL;
}

/* A free window, else the least recently used one no request is filling,
 * or NULL.  Stale planned windows are let go first. */
static struct window *window_victim(struct http_source *hs)
{
	struct window *v = NULL;
	for (unsigned i = 0; i < WINDOWS; i++) {
		struct window *w = &hs->win[i];
		if (w->len && w->expect && !w->filling && hs->fetched - w->seen >= STALE_BYTES)
			window_release(hs, w);
	}
	for (unsigned i = 0; i < WINDOWS; i++)
		if (!hs->win[i].filling && hs->win[i].len == 0)
			return &hs->win[i];
	for (unsigned i = 0; i < WINDOWS; i++)
		if (!hs->win[i].filling && (!v || hs->win[i].used < v->used))
			v = &hs->win[i];
	return v;
}

/* Takes a free connection, waiting for one (lock held). */
static struct conn *conn_get(struct http_source *hs)
{
	for (;;) {
		for (unsigned i = 0; i < CONNS; i++)
			if (hs->conn[i].curl && !hs->conn[i].busy) {
				hs->conn[i].busy = true;
				return &hs->conn[i];
			}
		pthread_cond_wait(&hs->changed, &hs->lock);
	}
}

/* Runs one fetch on a free connection without holding the lock (called
 * and returning with the lock held). */
static int fetch(struct http_source *hs, struct window *w, const struct dest *dst, size_t len,
		 uint64_t off, struct abota_error *err)
{
	struct conn *c = conn_get(hs);
	c->win = w;
	pthread_mutex_unlock(&hs->lock);
	int ret = fetch_on(hs, c, dst, len, off, err);
	pthread_mutex_lock(&hs->lock);
	c->busy = false;
	c->win = NULL;
	pthread_cond_broadcast(&hs->changed);
	return ret;
}

/* The merged planned range holding off, or NULL. */
static const struct source_range *plan_find(const struct http_source *hs, uint64_t off)
{
	size_t lo = 0, hi = hs->plan_n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct source_range *r = &hs->plan[mid];
		if (off < r->off)
			hi = mid;
		else if (off >= r->off + r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

/* Merges sorted ranges into m (room for n): touching or overlapping ones,
 * and with gap > 0 also those at most gap apart -- but never onto a merged
 * range already `cap` long: a long run (a whole image streamed) and a small
 * one just past it (the verity hash blocks read alongside the image) stay
 * apart, so the small one gets a window of its own size instead of sharing
 * the run's last window, which would be held from the first hash read to the
 * end.  Returns how many. */
static size_t plan_merge(const struct source_range *r, size_t n, uint64_t gap, uint64_t cap,
			 struct source_range *m)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (r[i].len == 0)
			continue;
		struct source_range *l = k > 0 ? &m[k - 1] : NULL;
		bool touch = l && r[i].off >= l->off && r[i].off <= l->off + l->len;
		bool near = l && r[i].off >= l->off && r[i].off <= l->off + l->len + gap &&
			    l->len < cap;
		if (touch || near) {
			uint64_t e = r[i].off + r[i].len;
			if (e > l->off + l->len)
				l->len = e - l->off;
		} else if (!l || r[i].off > l->off) {
			m[k++] = r[i];
		}
	}
	return k;
}

static size_t max_readahead(const struct http_source *hs)
{
	return hs->opts.max_readahead ? hs->opts.max_readahead : DEFAULT_MAX_READAHEAD;
}

static void http_plan(struct source *src, const struct source_range *r, size_t n)
{
	struct http_source *hs = (struct http_source *)src;
	struct source_range *m = n ? malloc(n * sizeof(*m)) : NULL;
	struct source_range *x = m ? malloc(n * sizeof(*x)) : NULL;
	size_t k = 0, kx = 0;
	if (m && x) {
		k = plan_merge(r, n, PLAN_GAP, max_readahead(hs), m);
		kx = plan_merge(r, n, 0, 0, x);
	} else {
		free(m); /* no plan if out of memory: a hint only */
		m = NULL;
	}
	pthread_mutex_lock(&hs->lock);
	free(hs->plan);
	free(hs->need);
	hs->plan = m;
	hs->plan_n = k;
	hs->need = x;
	hs->need_n = kx;
	pthread_mutex_unlock(&hs->lock);
}



static int read_at_locked(struct source *src, void *buf, size_t len, uint64_t off,
			  struct abota_error *err)
{
	struct http_source *hs = (struct http_source *)src;
	uint8_t *dst = buf;
	size_t max_ra = max_readahead(hs);
	while (len > 0) {
		struct window *w = window_for(hs, off);
		if (w && w->filling && off - w->off >= w->avail) {
			/* another worker is fetching these bytes: wait for them */
			hs->waiting++;
			pthread_cond_wait(&hs->changed, &hs->lock);
			hs->waiting--;
			continue;
		}
		if (w) {
			/* up to the segment's end: the next may be gone (or, while
			 * the window fills, up to what has arrived) */
			uint64_t rel = off - w->off;
			size_t n = (size_t)(w->seg - rel % w->seg);
			size_t end = w->filling ? w->avail : w->len;
			if (n > end - rel)
				n = (size_t)(end - rel);
			if (n > len)
				n = len;
			memcpy(dst, w->segs[rel / w->seg] + rel % w->seg, n);
			window_taken(hs, w, rel, n);
			dst += n;
			off += n;
			len -= n;
			hs->last_end = off;
			continue;
		}
		uint64_t left = src->size - off;
		uint64_t foff = off; /* where the request starts */
		size_t want;
		const struct source_range *pr = plan_find(hs, off);
		if (pr && off + len <= pr->off + pr->len) {
			/* Planned: the merged range in chunks of max_ra counted
			 * from its start, nothing beyond it.  Fixed chunks, so
			 * the workers' reads, which arrive slightly out of order,
			 * land in the same window instead of overlapping
			 * requests. */
			uint64_t c = pr->off + (off - pr->off) / max_ra * max_ra;
			uint64_t e = c + max_ra < pr->off + pr->len ? c + max_ra : pr->off + pr->len;
			if (off + len > e)
				c = off, e = off + len; /* straddles two chunks */
			foff = c;
			want = (size_t)(e - c);
			left = src->size - foff;
		} else {
			/* Read-ahead grows while reads stay sequential, and falls
			 * back to the minimum on a jump. */
			if (off == hs->last_end) {
				if (hs->readahead < max_ra)
					hs->readahead = hs->readahead * 2 > max_ra ? max_ra
										  : hs->readahead * 2;
			} else {
				hs->readahead = MIN_READAHEAD;
			}
			want = len > hs->readahead ? len : hs->readahead;
		}
		if (want > left)
			want = (size_t)left;
		if (foff == off && want == len && len >= MIN_READAHEAD) {
			/* A large read goes straight to the caller: no copy. */
			const struct dest d = { &dst, SIZE_MAX };
			int ret = fetch(hs, NULL, &d, len, off, err);
			if (ret < 0)
				return ret;
			hs->last_end = off + len;
			return 0;
		}
		w = window_victim(hs);
		if (!w) {
			/* every window is being filled: wait for one */
			pthread_cond_wait(&hs->changed, &hs->lock);
			continue;
		}
		if (window_fill_plan(hs, w, foff, want) < 0)
			return abota_error_set(err, -ENOMEM, "out of memory");
		/* Claimed: readers of these bytes wait instead of fetching. */
		hs->fetched += want;
		w->seen = hs->fetched;
		w->filling = true;
		w->avail = 0;
		w->used = ++hs->stamp;
		const struct dest d = { w->segs, w->seg };
		int ret = fetch(hs, w, &d, want, foff, err);
		w->filling = false;
		if (ret < 0 || (w->expect && w->taken >= w->expect))
			window_release(hs, w); /* failed, or read while it filled */
		pthread_cond_broadcast(&hs->changed);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int http_read_at(struct source *src, void *buf, size_t len, uint64_t off,
			struct abota_error *err)
{
	struct http_source *hs = (struct http_source *)src;
	pthread_mutex_lock(&hs->lock);
	int ret = read_at_locked(src, buf, len, off, err);
	pthread_mutex_unlock(&hs->lock);
	return ret;
}

static void http_close(struct source *src)
{
	struct http_source *hs = (struct http_source *)src;
	if (hs->stats.requests)
		http_stats_log(src->name, &hs->stats);
	if (hs->lock_ready) {
		pthread_cond_destroy(&hs->changed);
		pthread_mutex_destroy(&hs->lock);
	}
	free(hs->plan);
	free(hs->need);
	for (unsigned i = 0; i < WINDOWS; i++)
		window_release(hs, &hs->win[i]);
	while (hs->pool_n > 0)
		munmap(hs->pool[--hs->pool_n], hs->seg);
	for (unsigned i = 0; i < CONNS; i++)
		if (hs->conn[i].curl)
			cu.easy_cleanup(hs->conn[i].curl);
	cu.slist_free_all(hs->headers);
	free(hs->url);
}

static const struct source_ops http_ops = {
	.read_at = http_read_at,
	.close = http_close,
	.plan = http_plan,
};

char *http_url_display_name(const char *url)
{
	char *s = strdup(url);
	if (!s)
		return NULL;
	char *q = strpbrk(s, "?#");
	if (q)
		*q = '\0';
	char *scheme = strstr(s, "://");
	char *at = scheme ? strchr(scheme + 3, '@') : NULL;
	char *slash = scheme ? strchr(scheme + 3, '/') : NULL;
	if (at && (!slash || at < slash))
		memmove(scheme + 3, at + 1, strlen(at + 1) + 1);
	return s;
}

/* The in-memory PEM options (libcurl copies them: CURL_BLOB_COPY). */
static int set_blobs(CURL *c, const struct http_opts *o, const char *name,
		     struct abota_error *err)
{
	const struct {
		const struct http_blob *b;
		CURLoption opt;
	} blobs[] = {
#if LIBCURL_VERSION_NUM >= 0x074D00
		{ &o->ca_pem, CURLOPT_CAINFO_BLOB },
		{ &o->client_cert_pem, CURLOPT_SSLCERT_BLOB },
		{ &o->client_key_pem, CURLOPT_SSLKEY_BLOB },
#endif
	};
	size_t n = 0;
	for (size_t i = 0; i < sizeof(blobs) / sizeof(blobs[0]); i++) {
		if (!blobs[i].b->data)
			continue;
		struct curl_blob cb = { .data = (void *)(uintptr_t)blobs[i].b->data,
					.len = blobs[i].b->len, .flags = CURL_BLOB_COPY };
		if (cu.easy_setopt(c, blobs[i].opt, &cb) != CURLE_OK)
			return abota_error_set(err, -ENOTSUP,
					       "%s: this libcurl cannot take TLS certificates from memory",
					       name);
		n++;
	}
	if ((o->ca_pem.data || o->client_cert_pem.data || o->client_key_pem.data) && n == 0)
		return abota_error_set(err, -ENOTSUP,
				       "%s: built against a libcurl without in-memory TLS certificates (7.77 or later needed)",
				       name);
	return 0;
}

int source_open_http(const char *url, const struct http_opts *opts, struct source **out,
		     struct abota_error *err)
{
	if (!http_is_url(url))
		return abota_error_set(err, -EINVAL, "%s: not an http:// or https:// URL", url);
	char *name = http_url_display_name(url);
	if (name && cu_ready(name, err) < 0) {
		free(name);
		return -ENOTSUP;
	}
	if (!name)
		return abota_error_set(err, -ENOMEM, "out of memory");
	struct http_source *hs = source_alloc(sizeof(*hs), &http_ops, 0, name);
	free(name);
	if (!hs)
		return abota_error_set(err, -ENOMEM, "out of memory");
	int ret = 0;
	if (opts)
		hs->opts = *opts;
	hs->readahead = MIN_READAHEAD;
	long page = sysconf(_SC_PAGESIZE);
	size_t pg = page > 0 ? (size_t)page : 4096;
	hs->seg = (max_readahead(hs) / SEGS + pg - 1) / pg * pg;
	if (pthread_mutex_init(&hs->lock, NULL) != 0) {
		ret = abota_error_set(err, -ENOMEM, "cannot create a mutex");
		goto fail;
	}
	if (pthread_cond_init(&hs->changed, NULL) != 0) {
		pthread_mutex_destroy(&hs->lock);
		ret = abota_error_set(err, -ENOMEM, "cannot create a condition variable");
		goto fail;
	}
	hs->lock_ready = true;
	hs->url = strdup(url);
	struct conn *c0 = &hs->conn[0];
	c0->hs = hs;
	c0->curl = cu.easy_init();
	if (!hs->url || !c0->curl) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	CURL *c = c0->curl;
	cu.easy_setopt(c, CURLOPT_URL, url);
	cu.easy_setopt(c, CURLOPT_USERAGENT, "abota/" ABOTA_VERSION);
	cu.easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	cu.easy_setopt(c, CURLOPT_MAXREDIRS, 8L);
#if LIBCURL_VERSION_NUM >= 0x075500
	cu.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	cu.easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
	cu.easy_setopt(c, CURLOPT_CONNECTTIMEOUT, hs->opts.connect_timeout_s ? hs->opts.connect_timeout_s : 20L);
	cu.easy_setopt(c, CURLOPT_LOW_SPEED_TIME, hs->opts.low_speed_time_s ? hs->opts.low_speed_time_s : 60L);
	cu.easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, hs->opts.low_speed_limit ? hs->opts.low_speed_limit : 100L);
	cu.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	cu.easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	cu.easy_setopt(c, CURLOPT_HEADERDATA, c0);
	cu.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	cu.easy_setopt(c, CURLOPT_WRITEDATA, c0);
	/* Ranges of the bundle must arrive as sent, not re-encoded. */
	cu.easy_setopt(c, CURLOPT_HTTP_CONTENT_DECODING, 0L);
	if (hs->opts.ca_file)
		cu.easy_setopt(c, CURLOPT_CAINFO, hs->opts.ca_file);
	if (hs->opts.client_cert)
		cu.easy_setopt(c, CURLOPT_SSLCERT, hs->opts.client_cert);
	if (hs->opts.client_key)
		cu.easy_setopt(c, CURLOPT_SSLKEY, hs->opts.client_key);
	ret = set_blobs(c, &hs->opts, hs->base.name, err);
	if (ret < 0)
		goto fail;
	if (hs->opts.insecure) {
		cu.easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		cu.easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	for (const char *const *h = hs->opts.headers; h && *h; h++) {
		struct curl_slist *l = cu.slist_append(hs->headers, *h);
		if (!l) {
			ret = abota_error_set(err, -ENOMEM, "out of memory");
			goto fail;
		}
		hs->headers = l;
	}
	hs->opts.headers = NULL; /* the caller's strings are not kept */
	/* The first request carries the info headers as well (libcurl copies
	 * the strings; the list itself must live until the request is done). */
	struct curl_slist *first_headers = NULL;
	for (const char *const *h = hs->opts.info_headers; h && *h; h++) {
		struct curl_slist *l = cu.slist_append(first_headers, *h);
		if (!l) {
			cu.slist_free_all(first_headers);
			ret = abota_error_set(err, -ENOMEM, "out of memory");
			goto fail;
		}
		first_headers = l;
	}
	for (const struct curl_slist *h = first_headers ? hs->headers : NULL; h; h = h->next) {
		struct curl_slist *l = cu.slist_append(first_headers, h->data);
		if (!l) {
			cu.slist_free_all(first_headers);
			ret = abota_error_set(err, -ENOMEM, "out of memory");
			goto fail;
		}
		first_headers = l;
	}
	hs->opts.info_headers = NULL;
	if (first_headers || hs->headers)
		cu.easy_setopt(c, CURLOPT_HTTPHEADER, first_headers ? first_headers : hs->headers);

	/* First request: 4 bytes, to learn the size (RAUC does the same). */
	uint8_t first[4];
	uint8_t *first_seg = first;
	const struct dest first_dst = { &first_seg, SIZE_MAX };
	hs->base.size = UINT64_MAX; /* unknown until the Content-Range */
	c0->dst = &first_dst;
	c0->pos = 0;
	c0->want = sizeof(first);
	c0->got = 0;
	cu.easy_setopt(c, CURLOPT_RANGE, "0-3");
	hs->stats.requests++;
	CURLcode rc = cu.easy_perform(c);
	cu.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &c0->status);
	if (first_headers) {
		cu.easy_setopt(c, CURLOPT_HTTPHEADER, hs->headers);
		cu.slist_free_all(first_headers);
	}
	if (c0->status == 200 || c0->bad_status) {
		ret = abota_error_set(err, -ENOTSUP,
				      "%s: range requests not supported by server (HTTP %ld to a range request)",
				      hs->base.name, c0->status);
		goto fail;
	}
	if (rc != CURLE_OK) {
		ret = abota_error_set(err, -EIO, "%s: %s", hs->base.name, cu.easy_strerror(rc));
		goto fail;
	}
	if (c0->status != 206) {
		ret = abota_error_set(err, c0->status == 404 ? -ENOENT : -EIO, "%s: HTTP %ld",
				      hs->base.name, c0->status);
		goto fail;
	}
	uint64_t s, e, t;
	if (!http_parse_content_range(c0->content_range, &s, &e, &t) || s != 0) {
		ret = abota_error_set(err, -EPROTO, "%s: bad Content-Range '%s'", hs->base.name,
				      c0->content_range);
		goto fail;
	}
	hs->base.size = t;
	/* Later ranges only if the file is still the same one (If-Range). */
	const char *v = c0->etag[0] && c0->etag[0] != 'W' ? c0->etag : c0->last_modified;
	if (v[0]) {
		snprintf(hs->validator, sizeof(hs->validator), "If-Range: %s", v);
		struct curl_slist *l = cu.slist_append(hs->headers, hs->validator);
		if (!l) {
			ret = abota_error_set(err, -ENOMEM, "out of memory");
			goto fail;
		}
		hs->headers = l;
		cu.easy_setopt(c, CURLOPT_HTTPHEADER, hs->headers);
	}
	/* The other connections: the same options (and the same server), their
	 * own request state.  Opened on first use by libcurl. */
	for (unsigned i = 1; i < CONNS; i++) {
		struct conn *ci = &hs->conn[i];
		ci->hs = hs;
		ci->curl = cu.easy_duphandle(c);
		if (!ci->curl) {
			ret = abota_error_set(err, -ENOMEM, "out of memory");
			goto fail;
		}
		cu.easy_setopt(ci->curl, CURLOPT_HEADERDATA, ci);
		cu.easy_setopt(ci->curl, CURLOPT_WRITEDATA, ci);
	}
	*out = &hs->base;
	return 0;
fail:
	source_close(&hs->base);
	return ret;
}
