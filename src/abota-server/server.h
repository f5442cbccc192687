/* server.h - abota-server: shared context and the request/response helpers
 * the handlers use (HTTP glue in http.c). */
#ifndef ABOTA_SERVER_SERVER_H
#define ABOTA_SERVER_SERVER_H

#include <json-c/json.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abota/signature.h"
#include "store.h"

/* Request bodies other than artifact uploads: JSON, a few KiB in practice. */
#define SERVER_MAX_BODY (1024 * 1024)
#define SERVER_MAX_PATH_SEGMENTS 12
/* All request bodies being received at once, so that thousands of
 * connections each sending a large body cannot exhaust memory (503). */
#define SERVER_BODY_BUDGET (64 * 1024 * 1024)

struct server {
	struct store *store;
	char *data_dir, *artifacts_dir, *tmp_dir, *web_dir;
	struct sig_policy policy;
	bool have_keyring;
	bool allow_foreign_artifacts;
	uint64_t max_artifact_size;
	bool tls;
	char listen[128];
	size_t body_bytes; /* buffered request bodies, all connections (atomic) */
	/* recently verified operator credentials (see auth.c) */
	pthread_mutex_t auth_lock;
	unsigned char auth_cache[8][32];
	unsigned auth_next;
	struct dosfilter *dos; /* device API rate limits; NULL = off */
};

struct upload;

struct request {
	struct server *srv;
	struct MHD_Connection *conn;
	const char *method, *url;
	char *body;
	size_t body_len, body_cap;
	bool body_too_big, over_budget;
	struct upload *upload;
	char *segs[SERVER_MAX_PATH_SEGMENTS];
	size_t n_segs;
	bool replied;
	bool too_deep;
	bool started;     /* the access handler has seen the request */
	bool encoded_nul; /* the raw URI holds %00 (see http.c) */
};

/* ---- responses (http.c) ---- */
enum MHD_Result reply_raw(struct request *r, unsigned status, const char *ctype, const void *body,
			  size_t len);
/* Takes ownership of obj (NULL = empty body). */
enum MHD_Result reply_json(struct request *r, unsigned status, json_object *obj);
/* hawkBit's ExceptionInfo body. */
enum MHD_Result reply_error(struct request *r, unsigned status, const char *error_code,
			    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
enum MHD_Result reply_empty(struct request *r, unsigned status);
enum MHD_Result reply_unauthorized(struct request *r, bool basic);
enum MHD_Result queue(struct request *r, unsigned status, struct MHD_Response *resp);

/* ---- request helpers (http.c) ---- */
const char *req_header(struct request *r, const char *name);
const char *req_arg(struct request *r, const char *name);
/* "scheme://host[:port]" of the request, for HAL links. */
void req_base_url(struct request *r, char *out, size_t size);
const char *req_client_ip(struct request *r, char *buf, size_t size);
/* A Content-Type that names JSON: application/json or application/...+json. */
bool content_type_json(const char *ct);
/* Parses the body as JSON; on failure answers 400/415 and returns NULL. */
json_object *req_json_body(struct request *r, json_type want);
bool req_method(struct request *r, const char *m);
/* Parses a non-negative decimal id; false on anything else. */
bool parse_id(const char *s, int64_t *out);
int64_t arg_int(struct request *r, const char *name, int64_t def, int64_t min, int64_t max,
		bool *bad);

/* ---- handlers ---- */
enum MHD_Result ddi_handle(struct request *r);        /* /{tenant}/controller/v1/... */
enum MHD_Result mgmt_handle(struct request *r);       /* /rest/v1/... */
enum MHD_Result web_handle(struct request *r);        /* /, /web/... */
enum MHD_Result ui_handle(struct request *r);         /* /ui/v1/... (rollouts) */

/* auth.c */
bool auth_operator(struct request *r);
int auth_set_password(struct store *s, const char *user, const char *password);

/* download.c: serves an artifact blob with Range/ETag handling. */
enum MHD_Result download_artifact(struct request *r, const struct store_artifact *a,
				  int64_t action_id);

/* upload.c: multipart artifact uploads streamed to disk */
/* upload_begin: -EINVAL for a request to refuse with 400, other negative
 * errno for a server-side failure; the reason in upload_why(r->upload). */
int upload_begin(struct request *r);
const char *upload_why(const struct upload *u);
int upload_feed(struct request *r, const char *data, size_t len);
enum MHD_Result upload_finish(struct request *r, int64_t sm_id);
void upload_free(struct upload *u);

/* main.c: random alphanumeric token of n-1 characters */
void server_random_token(char *out, size_t n);
/* mgmt.c */
json_object *mgmt_artifact_json(struct request *r, const struct store_artifact *a);

/* json helpers (http.c) */
void json_add_str(json_object *o, const char *k, const char *v); /* skipped when v NULL */
void json_add_int(json_object *o, const char *k, int64_t v);
void json_add_bool(json_object *o, const char *k, bool v);
void json_add_link(json_object *links, const char *rel, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
