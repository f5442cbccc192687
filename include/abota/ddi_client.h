/* ddi_client.h - HTTP(S) requests to a hawkBit DDI server (libcurl).
 *
 * Every request carries the configured authentication (TargetToken or
 * GatewayToken header, or the TLS client certificate); tokens live only in
 * this client's memory and are never logged.  Response bodies are bounded
 * (DDI_CLIENT_MAX_BODY for JSON, the artifact size for downloads).
 * Redirects are refused unless allow_redirects=true (then at most 3, http(s)
 * only).  URLs the server hands out are checked before use: REST links must
 * point to the configured server, artifact downloads to it or to one of
 * allowed_download_hosts, and with ssl=true never to plain http.
 */
#ifndef ABOTA_DDI_CLIENT_H
#define ABOTA_DDI_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abota/error.h"
#include "abota/hawkbit_config.h"
#include "abota/http_source.h"

#define DDI_CLIENT_MAX_BODY (1024 * 1024)

struct ddi_client;

struct ddi_response {
	long status;          /* HTTP status */
	char *body;           /* NUL-terminated, NULL when empty */
	size_t len;
	uint64_t retry_after; /* Retry-After in seconds (0 if absent) */
	char etag[128];       /* ETag header ("" if absent or too long) */
};

int ddi_client_new(const struct hawkbit_config *cfg, struct ddi_client **out,
		   struct abota_error *err);
void ddi_client_free(struct ddi_client *c);

/* "http(s)://server/TENANT/controller/v1/TARGET" */
const char *ddi_client_base_url(const struct ddi_client *c);

/* Whether url may be used: kind 0 = a REST link (server only), 1 = an
 * artifact download (server or allowed_download_hosts). */
int ddi_client_check_url(const struct ddi_client *c, const char *url, int kind,
			 struct abota_error *err);

/* One request.  method "GET", "POST" or "PUT"; json body or NULL.  Only
 * transport failures, an over-long body or a refused redirect fail; any
 * HTTP status is returned in resp for the caller to judge. */
int ddi_client_request(struct ddi_client *c, const char *method, const char *url,
		       const char *json, struct ddi_response *resp, struct abota_error *err);
void ddi_response_clear(struct ddi_response *r);
/* A GET with If-None-Match: etag (NULL/"" = none): 304 when unchanged. */
int ddi_client_get_if_none_match(struct ddi_client *c, const char *url, const char *etag,
				 struct ddi_response *resp, struct abota_error *err);

/* Downloads url into path, resuming from the bytes already in the file
 * (Range: bytes=N-).  size: the artifact size (required, the body is cut
 * off there).  The file is fdatasync'ed as it grows, so a power cut loses
 * at most the unsynced tail; it is never truncated except when the server
 * ignores the range (200: restart from 0).  Transient failures (dropped
 * connection, timeout, 5xx, 429) are retried with backoff up to max_retries
 * times, continuing where the file ends; other statuses (404: artifact gone)
 * fail at once.  cancel (optional) is called about once a second and aborts
 * with -ECANCELED when it returns true.  Does not check the hash. */
struct ddi_download {
	const char *url;
	const char *path;
	uint64_t size;
	unsigned max_retries;                 /* 0 = 5 */
	bool (*cancel)(void *ctx);
	void *ctx;
	/* results */
	uint64_t resumed_from;                /* bytes present before */
	uint64_t transferred;                 /* bytes received */
	double seconds;
};
int ddi_client_download(struct ddi_client *c, struct ddi_download *d, struct abota_error *err);

/* http_opts for streaming installs of url (install_run): TLS settings and,
 * when authentication is sent for that URL, the auth header.  Valid while
 * the client lives. */
void ddi_client_http_opts(const struct ddi_client *c, const char *url, struct http_opts *out);

/* Hashes a file: "sha256" or "sha1" (lowercase hex into out). */
int ddi_hash_file(const char *path, const char *algo, char *out, size_t outlen,
		  struct abota_error *err);

#endif
