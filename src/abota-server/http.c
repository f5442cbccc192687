/* http.c - libmicrohttpd glue: request lifecycle, bounded bodies, routing,
 * response helpers. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "abota/log.h"
#include "dosfilter.h"
#include "http.h"
#include "server.h"

enum MHD_Result queue(struct request *r, unsigned status, struct MHD_Response *resp)
{
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	r->replied = true;
	return ret;
}

enum MHD_Result reply_raw(struct request *r, unsigned status, const char *ctype, const void *body,
			  size_t len)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (resp && ctype)
		MHD_add_response_header(resp, "Content-Type", ctype);
	return queue(r, status, resp);
}

enum MHD_Result reply_empty(struct request *r, unsigned status)
{
	return reply_raw(r, status, NULL, "", 0);
}

static const char *json_ctype(struct request *r)
{
	const char *acc = req_header(r, "Accept");
	/* clients asking for plain JSON get it labelled so; HAL otherwise */
	if (acc && strstr(acc, "application/json") && !strstr(acc, "hal+json"))
		return "application/json";
	return "application/hal+json";
}

enum MHD_Result reply_json(struct request *r, unsigned status, json_object *obj)
{
	if (!obj)
		return reply_empty(r, status);
	size_t len = 0;
	const char *s = json_object_to_json_string_length(
		obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	enum MHD_Result ret = reply_raw(r, status, json_ctype(r), s, len);
	json_object_put(obj);
	return ret;
}

enum MHD_Result reply_error(struct request *r, unsigned status, const char *error_code,
			    const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object *o = json_object_new_object();
	if (!o)
		return reply_empty(r, 500);
	json_add_str(o, "errorCode", error_code);
	json_add_str(o, "message", msg);
	struct MHD_Response *resp;
	size_t len = 0;
	const char *s = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	resp = MHD_create_response_from_buffer(len, (void *)s, MHD_RESPMEM_MUST_COPY);
	json_object_put(o);
	if (resp)
		MHD_add_response_header(resp, "Content-Type", "application/json");
	return queue(r, status, resp);
}

enum MHD_Result reply_unauthorized(struct request *r, bool basic)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
	/* no WWW-Authenticate for the UI's fetch() calls, so the browser does not
	 * pop up its own dialog over the login form */
	if (resp && basic && !req_header(r, "X-Requested-With"))
		MHD_add_response_header(resp, "WWW-Authenticate", "Basic realm=\"abota-server\"");
	return queue(r, 401, resp);
}

const char *req_header(struct request *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *req_arg(struct request *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

bool req_method(struct request *r, const char *m)
{
	return strcmp(r->method, m) == 0;
}

bool parse_id(const char *s, int64_t *out)
{
	int64_t v = 0;
	if (!s || !*s || strlen(s) > 18)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (*p - '0');
	}
	*out = v;
	return true;
}

int64_t arg_int(struct request *r, const char *name, int64_t def, int64_t min, int64_t max,
		bool *bad)
{
	const char *v = req_arg(r, name);
	int64_t x;
	if (!v)
		return def;
	bool neg = v[0] == '-';
	if (!parse_id(neg ? v + 1 : v, &x)) {
		*bad = true;
		return def;
	}
	if (neg)
		x = -x;
	if (x < min || x > max) {
		*bad = true;
		return def;
	}
	return x;
}

/* Host header characters that may go into a link; anything else (a header
 * injection attempt, a stray quote) falls back to the listen address. */
static bool host_ok(const char *h)
{
	if (!h || !*h || strlen(h) > 255)
		return false;
	for (const char *p = h; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_'))
			return false;
	}
	return true;
}

void req_base_url(struct request *r, char *out, size_t size)
{
	const char *host = req_header(r, "Host");
	snprintf(out, size, "%s://%s", r->srv->tls ? "https" : "http",
		 host_ok(host) ? host : r->srv->listen);
}

const char *req_client_ip(struct request *r, char *buf, size_t size)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	buf[0] = '\0';
	if (!ci || !ci->client_addr)
		return buf;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, size);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, size);
	return buf;
}

bool content_type_json(const char *ct)
{
	/* the media type, not a substring anywhere ("text/plain; x=json"):
	 * application/json or a +json type (hal+json); parameters allowed */
	while (*ct == ' ' || *ct == '\t')
		ct++;
	size_t n = strcspn(ct, ";");
	while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
		return true;
	if (n < 18 || strncasecmp(ct, "application/", 12) != 0 ||
	    strncasecmp(ct + n - 5, "+json", 5) != 0)
		return false;
	for (size_t i = 12; i < n - 5; i++)
		if (!((ct[i] >= 'a' && ct[i] <= 'z') || (ct[i] >= 'A' && ct[i] <= 'Z') ||
		      (ct[i] >= '0' && ct[i] <= '9') || ct[i] == '.' || ct[i] == '-'))
			return false;
	return true;
}

json_object *req_json_body(struct request *r, json_type want)
{
	const char *ct = req_header(r, "Content-Type");
	/* hawkBit also takes CBOR; abota-server does not (415, as any other type).
	 * No Content-Type at all is read as JSON, as clients of old did. */
	if (ct && !content_type_json(ct)) {
		reply_error(r, 415, "hawkbit.server.error.rest.body.notReadable",
			    "unsupported content type %.100s (use application/json)", ct);
		return NULL;
	}
	if (!r->body || r->body_len == 0) {
		reply_error(r, 400, "hawkbit.server.error.rest.body.notReadable",
			    "request body: missing (JSON expected)");
		return NULL;
	}
	json_tokener *tok = json_tokener_new_ex(32);
	if (!tok) {
		reply_empty(r, 500);
		return NULL;
	}
	json_object *o = json_tokener_parse_ex(tok, r->body, (int)r->body_len);
	enum json_tokener_error e = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!o || e != json_tokener_success || used != r->body_len) {
		json_object_put(o);
		reply_error(r, 400, "hawkbit.server.error.rest.body.notReadable",
			    "request body: invalid JSON (%s)",
			    e != json_tokener_success ? json_tokener_error_desc(e)
						      : "trailing data");
		return NULL;
	}
	if (!json_object_is_type(o, want)) {
		json_object_put(o);
		reply_error(r, 400, "hawkbit.server.error.rest.body.notReadable",
			    "request body: a JSON %s is expected",
			    want == json_type_array ? "array" : "object");
		return NULL;
	}
	return o;
}

void json_add_str(json_object *o, const char *k, const char *v)
{
	if (v)
		json_object_object_add(o, k, json_object_new_string(v));
}

void json_add_int(json_object *o, const char *k, int64_t v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

void json_add_bool(json_object *o, const char *k, bool v)
{
	json_object_object_add(o, k, json_object_new_boolean(v));
}

void json_add_link(json_object *links, const char *rel, const char *fmt, ...)
{
	char href[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(href, sizeof(href), fmt, ap);
	va_end(ap);
	json_object *l = json_object_new_object();
	json_add_str(l, "href", href);
	json_object_object_add(links, rel, l);
}

/* ---- request lifecycle ---- */

static void split_path(struct request *r)
{
	/* MHD has already percent-decoded the path; segments are copies */
	const char *p = r->url;
	while (*p == '/')
		p++;
	while (*p && r->n_segs < SERVER_MAX_PATH_SEGMENTS) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		r->segs[r->n_segs] = strndup(p, n);
		if (!r->segs[r->n_segs])
			break;
		r->n_segs++;
		p += n;
		while (*p == '/')
			p++;
	}
	if (*p) /* deeper than any route */
		r->too_deep = true;
}

static bool is_upload(struct request *r)
{
	/* POST /rest/v1/softwaremodules/{id}/artifacts */
	return req_method(r, "POST") && r->n_segs == 5 && strcmp(r->segs[0], "rest") == 0 &&
	       strcmp(r->segs[1], "v1") == 0 && strcmp(r->segs[2], "softwaremodules") == 0 &&
	       strcmp(r->segs[4], "artifacts") == 0;
}

static bool is_ddi(struct request *r)
{
	return r->n_segs >= 4 && strcmp(r->segs[1], "controller") == 0 &&
	       strcmp(r->segs[2], "v1") == 0;
}

/* hawkBit's DoS filter on the device API, before authentication and before
 * a body is read: 429 with an empty body and a hint when to come back. */
static bool over_rate(struct request *r)
{
	if (!r->srv->dos || !is_ddi(r))
		return false;
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	bool write = !req_method(r, "GET") && !req_method(r, "HEAD");
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	return !dosfilter_allow(r->srv->dos, ci ? ci->client_addr : NULL, write, now);
}

static enum MHD_Result route(struct request *r)
{
	if (r->too_deep)
		return reply_error(r, 404, "hawkbit.server.error.repo.entitiyNotFound",
				   "no such resource");
	if (r->n_segs >= 2 && strcmp(r->segs[0], "rest") == 0 && strcmp(r->segs[1], "v1") == 0)
		return mgmt_handle(r);
	if (r->n_segs >= 2 && strcmp(r->segs[0], "ui") == 0 && strcmp(r->segs[1], "v1") == 0)
		return ui_handle(r);
	if (is_ddi(r))
		return ddi_handle(r);
	return web_handle(r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	(void)version;
	struct request *r = *con_cls;
	if (!r || !r->started) {
		if (!r && !(r = calloc(1, sizeof(*r))))
			return MHD_NO;
		r->srv = cls;
		r->conn = conn;
		r->method = method;
		r->url = url;
		r->started = true;
		*con_cls = r;
		split_path(r);
		const char *cl = req_header(r, "Content-Length");
		if (r->encoded_nul)
			return reply_error(r, 400, "hawkbit.server.error.rest.param.invalid",
					   "request URI: an encoded NUL (%%00) is not allowed");
		if (over_rate(r)) {
			struct MHD_Response *resp =
				MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
			if (resp)
				MHD_add_response_header(resp, "Retry-After", "1");
			return queue(r, 429, resp);
		}
		if (is_upload(r)) {
			/* operators only: refuse before accepting a byte */
			if (!auth_operator(r))
				return reply_unauthorized(r, true);
			int ur = upload_begin(r);
			if (ur < 0)
				return reply_error(r, ur == -EINVAL ? 400 : 500,
						   "hawkbit.server.error.artifact.uploadFailed",
						   "upload: %s (multipart/form-data with a "
						   "boundary of 2 to 70 characters and a part "
						   "named 'file' expected)",
						   upload_why(r->upload));
		} else if (cl && strtoull(cl, NULL, 10) > SERVER_MAX_BODY) {
			return reply_error(r, 413, "hawkbit.server.error.rest.body.tooLarge",
					   "request body: larger than %d bytes", SERVER_MAX_BODY);
		}
		return MHD_YES;
	}
	if (r->replied) {
		/* answered early (auth, size): drop what the client still sends */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (r->upload) {
			/* errors are kept in the upload and answered at the end */
			upload_feed(r, upload_data, *upload_data_size);
		} else if (!r->body_too_big) {
			size_t n = *upload_data_size;
			if (r->body_len + n > SERVER_MAX_BODY) {
				r->body_too_big = true;
				__atomic_fetch_sub(&r->srv->body_bytes, r->body_cap, __ATOMIC_RELAXED);
				free(r->body);
				r->body = NULL;
				r->body_len = 0;
				r->body_cap = 0;
			} else {
				if (r->body_len + n + 1 > r->body_cap) {
					size_t cap = (r->body_len + n + 1) * 2;
					if (cap > SERVER_MAX_BODY + 1)
						cap = SERVER_MAX_BODY + 1;
					size_t grow = cap - r->body_cap;
					size_t was = __atomic_fetch_add(&r->srv->body_bytes, grow,
									__ATOMIC_RELAXED);
					if (was + grow > SERVER_BODY_BUDGET) {
						/* discard the rest; 503 once it is in (libmicrohttpd
						 * takes no answer in the middle of a body) */
						__atomic_fetch_sub(&r->srv->body_bytes, grow,
								   __ATOMIC_RELAXED);
						r->over_budget = r->body_too_big = true;
						__atomic_fetch_sub(&r->srv->body_bytes, r->body_cap,
								   __ATOMIC_RELAXED);
						free(r->body);
						r->body = NULL;
						r->body_len = r->body_cap = 0;
						*upload_data_size = 0;
						return MHD_YES;
					}
					char *nb = realloc(r->body, cap);
					if (!nb) {
						__atomic_fetch_sub(&r->srv->body_bytes, grow,
								   __ATOMIC_RELAXED);
						return MHD_NO;
					}
					r->body = nb;
					r->body_cap = cap;
				}
				memcpy(r->body + r->body_len, upload_data, n);
				r->body_len += n;
				r->body[r->body_len] = '\0';
			}
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->over_budget)
		return reply_error(r, 503, "hawkbit.server.error.busy",
				   "too many request bodies in flight; retry later");
	if (r->body_too_big)
		return reply_error(r, 413, "hawkbit.server.error.rest.body.tooLarge",
				   "request body: larger than %d bytes", SERVER_MAX_BODY);
	return route(r);
}

/* libmicrohttpd hands the access handler the percent-decoded path as a C
 * string, so "/DEFAULT/controller/v1/dev1%00x/..." would arrive as the base
 * path of dev1, cut at the NUL.  The raw URI is only seen here (the URI log
 * callback, whose result becomes the request's context): such requests are
 * refused with 400, as Spring's strict firewall does for hawkBit. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct request *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->srv = cls;
	r->conn = conn;
	r->encoded_nul = uri && strstr(uri, "%00") != NULL;
	return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	struct request *r = *con_cls;
	if (!r)
		return;
	upload_free(r->upload);
	for (size_t i = 0; i < r->n_segs; i++)
		free(r->segs[i]);
	__atomic_fetch_sub(&r->srv->body_bytes, r->body_cap, __ATOMIC_RELAXED);
	free(r->body);
	free(r);
	*con_cls = NULL;
}

struct MHD_Daemon *http_start(struct server *srv, const struct sockaddr *addr, unsigned threads,
			      const char *tls_cert, const char *tls_key)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	if (addr->sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (tls_cert)
		flags |= MHD_USE_TLS;
	struct MHD_OptionItem opts[] = {
		{MHD_OPTION_SOCK_ADDR, 0, (void *)addr},
		{MHD_OPTION_THREAD_POOL_SIZE, threads, NULL},
		{MHD_OPTION_CONNECTION_LIMIT, 20000, NULL},
		{MHD_OPTION_CONNECTION_TIMEOUT, 120, NULL},
		{MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, NULL},
		{MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, srv},
		{MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096, NULL},
		{tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)tls_cert},
		{tls_key ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, (void *)tls_key},
		{MHD_OPTION_END, 0, NULL},
	};
	return MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_ARRAY, opts,
				MHD_OPTION_END);
}
