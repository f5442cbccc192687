/* ddi_client.c - libcurl requests to a DDI server (see ddi_client.h). */
#include "abota/ddi_client.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "abota/fileio.h"
#include "abota/log.h"

#define SYNC_EVERY (8u << 20) /* fdatasync the download every 8 MiB */

struct ddi_client {
	const struct hawkbit_config *cfg;
	char *base;
	char *auth_header;          /* "Authorization: TargetToken …" or NULL */
	const char *auth_headers[2];
	char *host;                 /* server host, lowercase */
	long port;                  /* server port */
	bool auth_in_download;      /* send the token with downloads */
};

static int global_init(struct abota_error *err)
{
	static int done;
	if (!done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return abota_error_set(err, -EIO, "curl_global_init failed");
		done = 1;
	}
	return 0;
}

/* scheme, host (lowercase) and port (default filled in) of a URL. */
static int url_parts(const char *url, char **scheme, char **host, long *port)
{
	CURLU *u = curl_url();
	char *s = NULL, *h = NULL, *p = NULL;
	int ret = -EINVAL;
	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &s, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) != CURLUE_OK)
		goto out;
	for (char *q = h; *q; q++)
		*q = (char)tolower((unsigned char)*q);
	/* out-parameters only on success (the callers free them) */
	char *sc = strdup(s), *ho = strdup(h);
	if (!sc || !ho) {
		free(sc);
		free(ho);
		ret = -ENOMEM;
		goto out;
	}
	*port = strtol(p, NULL, 10);
	*scheme = sc;
	*host = ho;
	ret = 0;
out:
	curl_free(s);
	curl_free(h);
	curl_free(p);
	curl_url_cleanup(u);
	return ret;
}

int ddi_client_new(const struct hawkbit_config *cfg, struct ddi_client **out,
		   struct abota_error *err)
{
	int ret = global_init(err);
	if (ret < 0)
		return ret;
	struct ddi_client *c = calloc(1, sizeof(*c));
	if (!c)
		return abota_error_set(err, -ENOMEM, "out of memory");
	c->cfg = cfg;
	c->base = hawkbit_config_base_url(cfg);
	char *scheme = NULL;
	if (!c->base) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (url_parts(c->base, &scheme, &c->host, &c->port) < 0) {
		ret = abota_error_set(err, -EINVAL, "%s: cannot form a URL from hawkbit_server '%s'",
				      cfg->path, cfg->server);
		goto out;
	}
	free(scheme);
	if (cfg->auth_token || cfg->gateway_token) {
		if (asprintf(&c->auth_header, "Authorization: %s %s",
			     cfg->auth_token ? "TargetToken" : "GatewayToken",
			     cfg->auth_token ? cfg->auth_token : cfg->gateway_token) < 0) {
			c->auth_header = NULL;
			ret = abota_error_set(err, -ENOMEM, "out of memory");
			goto out;
		}
		c->auth_headers[0] = c->auth_header;
	}
	c->auth_in_download = cfg->send_download_authentication;
	*out = c;
	return 0;
out:
	ddi_client_free(c);
	return ret;
}

void ddi_client_free(struct ddi_client *c)
{
	if (!c)
		return;
	if (c->auth_header) {
		/* the token should not linger in freed memory */
		memset(c->auth_header, 0, strlen(c->auth_header));
		free(c->auth_header);
	}
	free(c->base);
	free(c->host);
	free(c);
}

const char *ddi_client_base_url(const struct ddi_client *c)
{
	return c->base;
}

static bool host_allowed(const struct ddi_client *c, const char *host, long port)
{
	if (!strcmp(host, c->host) && port == c->port)
		return true;
	for (const char *const *h = c->cfg->allowed_download_hosts; h && *h; h++) {
		char *url = NULL, *s = NULL, *ah = NULL;
		long ap = 0;
		if (asprintf(&url, "%s://%s/", c->cfg->ssl ? "https" : "http", *h) < 0)
			return false;
		/* an entry without a port allows any port on that host */
		bool has_port = (*h)[0] == '[' ? strstr(*h, "]:") != NULL : strchr(*h, ':') != NULL;
		bool match = url_parts(url, &s, &ah, &ap) == 0 && !strcmp(ah, host) &&
			     (!has_port || ap == port);
		free(url);
		free(s);
		free(ah);
		if (match)
			return true;
	}
	return false;
}

int ddi_client_check_url(const struct ddi_client *c, const char *url, int kind,
			 struct abota_error *err)
{
	char *scheme = NULL, *host = NULL;
	long port = 0;
	if (url_parts(url, &scheme, &host, &port) < 0)
		return abota_error_set(err, -EINVAL, "malformed URL '%.200s'", url);
	int ret = 0;
	if (strcmp(scheme, "http") && strcmp(scheme, "https"))
		ret = abota_error_set(err, -EPERM, "URL scheme '%s' refused", scheme);
	else if (c->cfg->ssl && strcmp(scheme, "https"))
		ret = abota_error_set(err, -EPERM,
				      "plain http URL refused with ssl=true: %.200s", url);
	else if (kind == 0 ? !(strcmp(host, c->host) == 0 && port == c->port)
			   : !host_allowed(c, host, port))
		ret = abota_error_set(err, -EPERM,
				      "URL on host '%s:%ld' refused: only the server %s:%ld%s",
				      host, port, c->host, port == c->port ? port : c->port,
				      kind ? " and allowed_download_hosts may serve artifacts" : "");
	free(scheme);
	free(host);
	return ret;
}

/* Whether requests to url get the token: always for the server itself, for
 * downloads only with send_download_authentication, never for other hosts
 * (a CDN must not see the device's credentials). */
static bool send_auth(const struct ddi_client *c, const char *url, bool download)
{
	if (!c->auth_header || (download && !c->auth_in_download))
		return false;
	char *scheme = NULL, *host = NULL;
	long port = 0;
	bool same = url_parts(url, &scheme, &host, &port) == 0 && !strcmp(host, c->host) &&
		    port == c->port;
	free(scheme);
	free(host);
	return same;
}

static void setup_tls(const struct ddi_client *c, CURL *h, bool download)
{
	const struct hawkbit_config *cfg = c->cfg;
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, cfg->ssl_verify ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, cfg->ssl_verify ? 2L : 0L);
	if (cfg->ssl_ca)
		curl_easy_setopt(h, CURLOPT_CAINFO, cfg->ssl_ca);
	if (cfg->ssl_cert && (!download || c->auth_in_download)) {
		curl_easy_setopt(h, CURLOPT_SSLCERT, cfg->ssl_cert);
		curl_easy_setopt(h, CURLOPT_SSLKEY, cfg->ssl_key);
	}
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (cfg->allow_redirects) {
		curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(h, CURLOPT_MAXREDIRS, 3L);
		curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, cfg->ssl ? "https" : "http,https");
	}
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "abotad/" ABOTA_VERSION);
	/* timeouts <= 3600 s, low_speed_rate <= INT32_MAX (hawkbit_config):
	 * the casts to long below are exact, also where long has 32 bits */
	if (cfg->connect_timeout)
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)cfg->connect_timeout);
}

void ddi_client_http_opts(const struct ddi_client *c, const char *url, struct http_opts *out)
{
	const struct hawkbit_config *cfg = c->cfg;
	memset(out, 0, sizeof(*out));
	out->ca_file = cfg->ssl_ca;
	out->insecure = !cfg->ssl_verify;
	if (cfg->ssl_cert && c->auth_in_download) {
		out->client_cert = cfg->ssl_cert;
		out->client_key = cfg->ssl_key;
	}
	out->headers = send_auth(c, url, true) ? c->auth_headers : NULL;
	out->connect_timeout_s = (long)cfg->connect_timeout;
	out->low_speed_time_s = (long)cfg->low_speed_time;
	out->low_speed_limit = (long)cfg->low_speed_rate;
}

struct body {
	char *data;
	size_t len, cap, max;
	bool overflow;
	uint64_t retry_after;
	char etag[128];
};

static size_t body_write(char *p, size_t sz, size_t n, void *ud)
{
	struct body *b = ud;
	size_t len = sz * n;
	if (len > b->max - b->len) {
		b->overflow = true;
		return 0;
	}
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len + 1)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (!d)
			return 0;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
	return len;
}

static size_t header_cb(char *p, size_t sz, size_t n, void *ud)
{
	struct body *b = ud;
	size_t len = sz * n;
	static const char name[] = "retry-after:";
	static const char etag[] = "etag:";
	if (len > sizeof(etag) && !strncasecmp(p, etag, sizeof(etag) - 1)) {
		const char *v = p + sizeof(etag) - 1;
		size_t l = len - (sizeof(etag) - 1);
		while (l && *v == ' ')
			v++, l--;
		while (l && (v[l - 1] == '\r' || v[l - 1] == '\n' || v[l - 1] == ' '))
			l--;
		b->etag[0] = '\0';
		/* an ETag goes back into a header: printable, bounded */
		bool ok = l > 0 && l < sizeof(b->etag);
		for (size_t i = 0; ok && i < l; i++)
			ok = (unsigned char)v[i] > 0x20 && v[i] != 0x7f;
		if (ok) {
			memcpy(b->etag, v, l);
			b->etag[l] = '\0';
		}
	}
	if (len > sizeof(name) && !strncasecmp(p, name, sizeof(name) - 1)) {
		const char *v = p + sizeof(name) - 1;
		while (*v == ' ')
			v++;
		if (isdigit((unsigned char)*v)) {
			unsigned long long s = strtoull(v, NULL, 10);
			b->retry_after = s > 86400 ? 86400 : s;
		}
	}
	return len;
}

static int curl_failed(CURLcode rc, const char *errbuf, const char *url,
		       struct abota_error *err)
{
	return abota_error_set(err, rc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO,
			       "%s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

static int request(struct ddi_client *c, const char *method, const char *url, const char *json,
		   const char *etag, struct ddi_response *resp, struct abota_error *err);

int ddi_client_request(struct ddi_client *c, const char *method, const char *url,
		       const char *json, struct ddi_response *resp, struct abota_error *err)
{
	return request(c, method, url, json, NULL, resp, err);
}

int ddi_client_get_if_none_match(struct ddi_client *c, const char *url, const char *etag,
				 struct ddi_response *resp, struct abota_error *err)
{
	return request(c, "GET", url, NULL, etag, resp, err);
}

static int request(struct ddi_client *c, const char *method, const char *url, const char *json,
		   const char *etag, struct ddi_response *resp, struct abota_error *err)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	struct body b = { .max = DDI_CLIENT_MAX_BODY };
	char errbuf[CURL_ERROR_SIZE] = "";
	int ret = 0;
	if (!h)
		return abota_error_set(err, -ENOMEM, "out of memory");
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (json)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json;charset=UTF-8");
	if (send_auth(c, url, false))
		hdrs = curl_slist_append(hdrs, c->auth_header);
	char inm[160];
	if (etag && *etag) {
		snprintf(inm, sizeof(inm), "If-None-Match: %s", etag);
		hdrs = curl_slist_append(hdrs, inm);
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &b);
	setup_tls(c, h, false);
	if (c->cfg->timeout)
		curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)c->cfg->timeout);
	if (json) {
		/* our own JSON (feedback, configData): bounded like the answers,
		 * so the length fits a long */
		size_t jl = strlen(json);
		if (jl > DDI_CLIENT_MAX_BODY) {
			ret = abota_error_set(err, -EMSGSIZE, "%s: request body of %zu bytes too large",
					      url, jl);
			goto out;
		}
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)jl);
	}
	if (strcmp(method, "GET") && strcmp(method, "POST"))
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	CURLcode rc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (b.overflow) {
		ret = abota_error_set(err, -EMSGSIZE, "%s: response body exceeds %d bytes", url,
				      DDI_CLIENT_MAX_BODY);
		goto out;
	}
	if (rc != CURLE_OK) {
		ret = rc == CURLE_TOO_MANY_REDIRECTS
			      ? abota_error_set(err, -ELOOP, "%s: too many redirects", url)
			      : curl_failed(rc, errbuf, url, err);
		goto out;
	}
	if (status >= 300 && status < 400 && status != 304) {
		char *loc = NULL;
		curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &loc);
		ret = abota_error_set(err, -EPERM,
				      "%s: server redirected (%ld) to %.200s; not followed "
				      "(allow_redirects=false)",
				      url, status, loc ? loc : "?");
		goto out;
	}
	resp->status = status;
	resp->body = b.data;
	resp->len = b.len;
	resp->retry_after = b.retry_after;
	memcpy(resp->etag, b.etag, sizeof(resp->etag));
	b.data = NULL;
out:
	free(b.data);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	return ret;
}

void ddi_response_clear(struct ddi_response *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* --- downloads ---------------------------------------------------------- */

struct dl {
	CURL *h;
	int fd;
	uint64_t off;          /* where the next byte goes */
	uint64_t size;
	uint64_t since_sync;
	bool started;          /* status judged */
	bool restart;          /* 200: server ignored Range */
	int bad;               /* error while writing */
	char why[256];
	struct ddi_download *d;
	time_t last_cancel_check;
	bool canceled;
};

/* Judges the response once the first body byte arrives. */
static bool dl_start(struct dl *s, uint64_t asked)
{
	long status = 0;
	curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
	if (status == 206) {
		curl_off_t cl = -1;
		curl_easy_getinfo(s->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
		if (cl >= 0 && (uint64_t)cl != s->size - asked) {
			snprintf(s->why, sizeof(s->why),
				 "206 with %lld bytes, expected %llu from offset %llu", (long long)cl,
				 (unsigned long long)(s->size - asked), (unsigned long long)asked);
			return false;
		}
		return true;
	}
	if (status == 200) {
		if (asked) {
			/* the server ignored the range: start over */
			if (ftruncate(s->fd, 0) < 0) {
				snprintf(s->why, sizeof(s->why), "truncate: %s", strerror(errno));
				return false;
			}
			s->off = 0;
			s->d->resumed_from = 0; /* nothing of the old part is kept */
			log_info("server ignored the range request; downloading from the start");
		}
		return true;
	}
	snprintf(s->why, sizeof(s->why), "HTTP status %ld", status);
	return false;
}

static size_t dl_header(char *p, size_t sz, size_t n, void *ud)
{
	struct dl *s = ud;
	size_t len = sz * n;
	static const char name[] = "content-range:";
	if (len > sizeof(name) && !strncasecmp(p, name, sizeof(name) - 1)) {
		char v[128];
		size_t l = len - (sizeof(name) - 1);
		if (l >= sizeof(v))
			l = sizeof(v) - 1;
		memcpy(v, p + sizeof(name) - 1, l);
		v[l] = '\0';
		char *t = v;
		while (*t == ' ')
			t++;
		t[strcspn(t, "\r\n")] = '\0';
		uint64_t a, b, total;
		if (!strncmp(t, "bytes */", 8))
			return len; /* 416 answer */
		if (!http_parse_content_range(t, &a, &b, &total) || a != s->off ||
		    total != s->size || b != total - 1) {
			snprintf(s->why, sizeof(s->why), "unexpected Content-Range '%.60s'", t);
			s->bad = -EPROTO;
			return 0;
		}
	}
	return len;
}

static size_t dl_write(char *p, size_t sz, size_t n, void *ud)
{
	struct dl *s = ud;
	size_t len = sz * n;
	if (!s->started) {
		s->started = true;
		if (!dl_start(s, s->off)) {
			s->bad = -EPROTO;
			return 0;
		}
	}
	if (len > s->size - s->off) {
		snprintf(s->why, sizeof(s->why), "server sent more than the artifact's %llu bytes",
			 (unsigned long long)s->size);
		s->bad = -EMSGSIZE;
		return 0;
	}
	struct abota_error e = { 0 };
	if (fileio_pwrite_full(s->fd, p, len, s->off, &e) < 0) {
		snprintf(s->why, sizeof(s->why), "%.200s", e.msg);
		s->bad = e.code;
		return 0;
	}
	s->off += len;
	s->d->transferred += len;
	s->since_sync += len;
	if (s->since_sync >= SYNC_EVERY) {
		/* what is on disk survives a power cut and is resumed from */
		if (fdatasync(s->fd) < 0) {
			snprintf(s->why, sizeof(s->why), "fdatasync: %s", strerror(errno));
			s->bad = -errno;
			return 0;
		}
		s->since_sync = 0;
	}
	return len;
}

static int dl_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)dt, (void)dn, (void)ut, (void)un;
	struct dl *s = ud;
	if (!s->d->cancel)
		return 0;
	time_t now = time(NULL);
	if (now == s->last_cancel_check)
		return 0;
	s->last_cancel_check = now;
	if (s->d->cancel(s->d->ctx)) {
		s->canceled = true;
		return 1;
	}
	return 0;
}

static bool transient_status(long status)
{
	return status == 408 || status == 429 || status >= 500;
}

int ddi_client_download(struct ddi_client *c, struct ddi_download *d, struct abota_error *err)
{
	struct dl s = { .fd = -1, .size = d->size, .d = d };
	char errbuf[CURL_ERROR_SIZE];
	struct curl_slist *hdrs = NULL;
	unsigned max_retries = d->max_retries ? d->max_retries : 5, attempt = 0;
	struct timespec t0, t1;
	int ret;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	s.fd = open(d->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (s.fd < 0)
		return abota_error_set(err, -errno, "%s: %s", d->path, strerror(errno));
	struct stat st;
	if (fstat(s.fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		ret = abota_error_set(err, -EINVAL, "%s: not a regular file", d->path);
		goto out;
	}
	s.off = (uint64_t)st.st_size;
	if (s.off > d->size) {
		log_warning("%s: %llu bytes, more than the artifact's %llu: starting over", d->path,
			    (unsigned long long)s.off, (unsigned long long)d->size);
		if (ftruncate(s.fd, 0) < 0) {
			ret = abota_error_set(err, -errno, "%s: truncate: %s", d->path,
					      strerror(errno));
			goto out;
		}
		s.off = 0;
	}
	d->resumed_from = s.off;
	d->transferred = 0;
	if (s.off)
		log_info("resuming download of %s at byte %llu of %llu", d->path,
			 (unsigned long long)s.off, (unsigned long long)d->size);
	if (send_auth(c, d->url, true))
		hdrs = curl_slist_append(hdrs, c->auth_header);
	hdrs = curl_slist_append(hdrs, "Accept: application/octet-stream");
	while (s.off < d->size) {
		s.h = curl_easy_init();
		if (!s.h) {
			ret = abota_error_set(err, -ENOMEM, "out of memory");
			goto out;
		}
		char range[64];
		snprintf(range, sizeof(range), "%llu-", (unsigned long long)s.off);
		errbuf[0] = '\0';
		s.started = false;
		s.bad = 0;
		s.why[0] = '\0';
		curl_easy_setopt(s.h, CURLOPT_URL, d->url);
		curl_easy_setopt(s.h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(s.h, CURLOPT_ERRORBUFFER, errbuf);
		curl_easy_setopt(s.h, CURLOPT_WRITEFUNCTION, dl_write);
		curl_easy_setopt(s.h, CURLOPT_WRITEDATA, &s);
		curl_easy_setopt(s.h, CURLOPT_HEADERFUNCTION, dl_header);
		curl_easy_setopt(s.h, CURLOPT_HEADERDATA, &s);
		curl_easy_setopt(s.h, CURLOPT_XFERINFOFUNCTION, dl_progress);
		curl_easy_setopt(s.h, CURLOPT_XFERINFODATA, &s);
		curl_easy_setopt(s.h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(s.h, CURLOPT_TCP_KEEPALIVE, 1L);
		if (c->cfg->low_speed_time && c->cfg->low_speed_rate) {
			/* <= 3600 and <= INT32_MAX (hawkbit_config): exact as long */
			curl_easy_setopt(s.h, CURLOPT_LOW_SPEED_TIME, (long)c->cfg->low_speed_time);
			curl_easy_setopt(s.h, CURLOPT_LOW_SPEED_LIMIT, (long)c->cfg->low_speed_rate);
		}
		if (s.off)
			curl_easy_setopt(s.h, CURLOPT_RANGE, range);
		setup_tls(c, s.h, true);
		uint64_t before = s.off;
		struct timespec a0, a1;
		clock_gettime(CLOCK_MONOTONIC, &a0);
		CURLcode rc = curl_easy_perform(s.h);
		clock_gettime(CLOCK_MONOTONIC, &a1);
		/* milliseconds of this attempt (monotonic: a1 >= a0) */
		int64_t ms = (int64_t)(a1.tv_sec - a0.tv_sec) * 1000 +
			     (a1.tv_nsec - a0.tv_nsec) / 1000000;
		uint64_t attempt_ms = ms > 0 ? (uint64_t)ms : 1;
		long status = 0;
		curl_easy_getinfo(s.h, CURLINFO_RESPONSE_CODE, &status);
		char *loc = NULL;
		if (status >= 300 && status < 400)
			curl_easy_getinfo(s.h, CURLINFO_REDIRECT_URL, &loc);
		char locbuf[256] = "";
		if (loc)
			snprintf(locbuf, sizeof(locbuf), "%s", loc);
		curl_easy_cleanup(s.h);
		s.h = NULL;
		if (s.canceled) {
			ret = abota_error_set(err, -ECANCELED, "download canceled");
			goto out;
		}
		if (rc == CURLE_OK && status >= 300 && status < 400) {
			ret = abota_error_set(err, -EPERM,
					      "%s: redirected (%ld) to %.200s; not followed "
					      "(allow_redirects=false)",
					      d->url, status, locbuf[0] ? locbuf : "?");
			goto out;
		}
		if (rc == CURLE_OK && status == 416 && before == d->size)
			break; /* already complete */
		if (s.bad && s.bad != -EPROTO && s.bad != -EMSGSIZE) {
			ret = abota_error_set(err, s.bad, "%s: %s", d->path, s.why);
			goto out;
		}
		if (s.bad == -EMSGSIZE) {
			ret = abota_error_set(err, -EMSGSIZE, "%s: %s", d->url, s.why);
			goto out;
		}
		if (rc == CURLE_OK && !s.started && s.off < d->size) {
			/* a response without body: judge the status */
			if (status == 200 || status == 206)
				snprintf(s.why, sizeof(s.why), "empty body");
			else
				snprintf(s.why, sizeof(s.why), "HTTP status %ld", status);
		}
		if (rc == CURLE_OK && s.off == d->size)
			break;
		/* a redirect loop or chain longer than MAXREDIRS is the server's
		 * configuration, not a network hiccup: not retried */
		bool transient = (rc != CURLE_OK && !s.bad && rc != CURLE_TOO_MANY_REDIRECTS) ||
				 transient_status(status) ||
				 (rc == CURLE_OK && s.started && s.off > before);
		if (s.bad == -EPROTO && !transient_status(status) && status != 200 && status != 206)
			transient = false;
		const char *why = s.why[0] ? s.why : errbuf[0] ? errbuf : curl_easy_strerror(rc);
		/* the retry budget is per stall: progress resets it -- after a
		 * low-speed abort only if the attempt averaged low_speed_rate,
		 * or a server that drips a few bytes per low_speed_time (slow
		 * retrieval) would keep the download alive forever.  Bytes are
		 * below 2^42 (max_artifact_size): times 1000 fits 64 bits. */
		bool progressed = s.off > before &&
				  (rc != CURLE_OPERATION_TIMEDOUT ||
				   (s.off - before) * 1000 / attempt_ms >= c->cfg->low_speed_rate);
		attempt = progressed ? 0 : attempt + 1;
		if (!transient || !c->cfg->resume_downloads || attempt > max_retries) {
			ret = abota_error_set(err, status == 404 ? -ENOENT : -EIO,
					      "download of %s failed: %s%s", d->url, why,
					      transient && attempt > max_retries ? " (retries exhausted)"
										 : "");
			goto out;
		}
		unsigned wait = attempt ? 1u << (attempt < 5 ? attempt - 1 : 4) : 0;
		/* retry_wait (1..86400, hawkbit_config) also bounds the backoff */
		if (wait > c->cfg->retry_wait)
			wait = (unsigned)c->cfg->retry_wait;
		log_warning("download interrupted at byte %llu (%s); retrying in %u s",
			    (unsigned long long)s.off, why, wait);
		for (unsigned i = 0; i < wait; i++) {
			if (d->cancel && d->cancel(d->ctx)) {
				ret = abota_error_set(err, -ECANCELED, "download canceled");
				goto out;
			}
			sleep(1);
		}
	}
	if (fdatasync(s.fd) < 0) {
		ret = abota_error_set(err, -errno, "%s: fdatasync: %s", d->path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	clock_gettime(CLOCK_MONOTONIC, &t1);
	d->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	curl_slist_free_all(hdrs);
	if (s.fd >= 0)
		close(s.fd);
	return ret;
}

int ddi_hash_file(const char *path, const char *algo, char *out, size_t outlen,
		  struct abota_error *err)
{
	const EVP_MD *md = !strcmp(algo, "sha256") ? EVP_sha256() : EVP_sha1();
	unsigned char dig[EVP_MAX_MD_SIZE], *buf = NULL;
	unsigned dlen = 0;
	int ret = 0, fd = open(path, O_RDONLY | O_CLOEXEC);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (fd < 0) {
		ret = abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	buf = malloc(1 << 20);
	if (!ctx || !buf || !EVP_DigestInit_ex(ctx, md, NULL)) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, 1 << 20);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	}
	EVP_DigestFinal_ex(ctx, dig, &dlen);
	if (outlen < 2 * dlen + 1) {
		ret = abota_error_set(err, -EINVAL, "hash buffer too small");
		goto out;
	}
	for (unsigned i = 0; i < dlen; i++)
		snprintf(out + 2 * i, 3, "%02x", dig[i]);
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	if (fd >= 0)
		close(fd);
	return ret;
}
