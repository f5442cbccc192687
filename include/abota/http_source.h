/* http_source.h - a byte source over HTTP(S) range requests (libcurl).
 *
 * Random reads become `Range: bytes=a-b` GETs.  Sequential reads are merged
 * into large requests with read-ahead that grows while the access stays
 * sequential (1 MiB up to 8 MiB), so a full install of a 150 MB bundle takes
 * well under 200 requests (hawkBit limits requests per action).  Every
 * response is checked: status 206, a Content-Range that starts where asked,
 * the total size unchanged, never more bytes than asked (an endless body is
 * cut off), and the ETag / Last-Modified of the first response (If-Range), so
 * a bundle replaced on the server is noticed.  Transfers that fail (dropped
 * connection, timeout, 5xx, 429) are retried with exponential backoff,
 * continuing after the bytes already received.
 *
 * The bytes themselves are not trusted: a bundle read over HTTP must be
 * checked block by block (verity) before use -- see bundle_open().
 */
#ifndef ABOTA_HTTP_SOURCE_H
#define ABOTA_HTTP_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abota/error.h"
#include "abota/source.h"

/* PEM text in memory. */
struct http_blob {
	const void *data;
	size_t len;
};

struct http_opts {
	const char *ca_file;          /* TLS trust anchors (default: the system's) */
	const char *client_cert;      /* TLS client certificate (PEM) */
	const char *client_key;       /* TLS client key (PEM) */
	/* The same as PEM text in memory, used instead of the files when set:
	 * the sandboxed download (sandbox_source.h) reads root-only files
	 * before it drops privileges and hands their contents over. */
	struct http_blob ca_pem, client_cert_pem, client_key_pem;
	bool insecure;                /* do not verify the server (tests only) */
	const char *const *headers;   /* extra request headers "Name: value", NULL-terminated */
	/* sent with the first request only (RAUC's send-headers: who is asking,
	 * not needed on every range request); NULL-terminated */
	const char *const *info_headers;
	long connect_timeout_s;       /* 0 = 20 s */
	long low_speed_time_s;        /* abort a request slower than low_speed_limit for this long; 0 = 60 s */
	long low_speed_limit;         /* bytes/s; 0 = 100 */
	unsigned max_retries;         /* per request; 0 = 5 */
	unsigned max_readahead;       /* bytes; 0 = 8 MiB */
};

struct http_stats {
	uint64_t requests;            /* HTTP requests made (incl. retries) */
	uint64_t bytes;               /* body bytes received */
	uint64_t retries;
	uint64_t held_max;            /* most bytes held in read-ahead windows at once */
};

/* Opens URL (http:// or https://): one request learns the size (and checks
 * that ranges are supported).  opts may be NULL for the defaults. */
int source_open_http(const char *url, const struct http_opts *opts, struct source **out,
		     struct abota_error *err);

/* True if src is an HTTP source. */
bool source_is_http(const struct source *src);
/* Counters of an HTTP source (zeros for other sources). */
void http_source_stats(const struct source *src, struct http_stats *stats);
/* Statistics as one info line naming the source (written when an HTTP
 * source closes; the streaming sandbox writes its child's). */
void http_stats_log(const char *name, const struct http_stats *st);

/* Parses a Content-Range value "bytes START-END/TOTAL" (START <= END < TOTAL).
 * Exposed for the unit tests and the fuzz target; false if malformed. */
bool http_parse_content_range(const char *s, uint64_t *start, uint64_t *end, uint64_t *total);

/* A URL for messages: without credentials, query and fragment (tokens
 * live there).  Caller frees; NULL if out of memory. */
char *http_url_display_name(const char *url);

/* True if the string looks like an http(s) URL. */
bool http_is_url(const char *s);

#endif
