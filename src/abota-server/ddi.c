/* ddi.c - hawkBit Direct Device Integration API v1 (hawkbit-ddi.md §1):
 * base poll, deploymentBase, installedBase, cancelAction, feedback,
 * configData, artifact list and downloads. */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "abota/log.h"
#include "feedback.h"
#include "mwindow.h"
#include "server.h"

#define MAX_CONTROLLER_ID 256
#define MAX_STATUS_ENTRIES 1000
#define MAX_ATTRIBUTES 100
#define MAX_ATTRIBUTE_LEN 128
#define DEFAULT_POLLING "00:05:00"

struct ddi {
	struct request *r;
	struct store_target t;
	char base[1400]; /* .../{tenant}/controller/v1/{controllerId} */
};

static bool cfg_true(struct server *srv, const char *key, bool def)
{
	char *v = NULL;
	bool res = def;
	if (store_config_get(srv->store, key, &v) == 0) {
		res = strcmp(v, "true") == 0;
		free(v);
	}
	return res;
}

static bool token_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	return la == lb && la > 0 && CRYPTO_memcmp(a, b, la) == 0;
}

/* The target for a device that a gateway token or a trusted proxy vouches
 * for; unknown ids are registered on their base poll ("plug and play", as
 * hawkBit).  0, -ENOENT or -EIO. */
static int vouched_target(struct ddi *d, const char *controller_id, bool may_create)
{
	struct server *srv = d->r->srv;
	int ret = store_target_get(srv->store, controller_id, &d->t);
	if (ret == -ENOENT && may_create) {
		struct store_target nt = {0};
		char tok[33];
		server_random_token(tok, sizeof(tok));
		nt.controller_id = (char *)controller_id;
		nt.name = (char *)controller_id;
		nt.token = tok;
		nt.update_status = "registered";
		nt.request_attributes = true;
		ret = store_target_create(srv->store, &nt, NULL);
		if (ret == 0 || ret == -EEXIST)
			ret = store_target_get(srv->store, controller_id, &d->t);
	}
	return ret == 0 ? 0 : (ret == -ENOENT ? -ENOENT : -EIO);
}

/* Is one of the comma-separated items of `have` in the list `trusted`?
 * Compared case-insensitively (issuer hashes are hex), items trimmed. */
static bool list_meets(const char *have, const char *trusted)
{
	for (const char *a = have; *a;) {
		while (*a == ' ' || *a == ',')
			a++;
		size_t la = strcspn(a, ",");
		while (la && a[la - 1] == ' ')
			la--;
		for (const char *b = trusted; la && *b;) {
			while (*b == ' ' || *b == ',')
				b++;
			size_t lb = strcspn(b, ",");
			while (lb && b[lb - 1] == ' ')
				lb--;
			if (lb == la && strncasecmp(a, b, la) == 0)
				return true;
			b += lb;
			b += strcspn(b, ",");
		}
		a += la;
		a += strcspn(a, ",");
	}
	return false;
}

/* mTLS through a reverse proxy (hawkbit-ddi.md §1.2): the proxy checked the
 * client certificate and passes its CN in X-Controller-Id and the issuer's
 * hash in X-Authority (a list) or X-Authority-0..9.  Only when the tenant
 * enabled it and configured the trusted issuer hashes: without a proxy in
 * front that sets these headers, anyone could send them. */
static bool header_auth(struct ddi *d)
{
	struct server *srv = d->r->srv;
	char *trusted = NULL;
	bool ok = false;
	if (!cfg_true(srv, "authentication.header.enabled", false) ||
	    store_config_get(srv->store, "authentication.header.authority", &trusted) != 0)
		return false;
	const char *h = req_header(d->r, "X-Authority");
	if (h && list_meets(h, trusted))
		ok = true;
	for (int i = 0; i < 10 && !ok; i++) {
		char name[24];
		snprintf(name, sizeof(name), "X-Authority-%d", i);
		h = req_header(d->r, name);
		if (h && list_meets(h, trusted))
			ok = true;
	}
	free(trusted);
	return ok;
}

/* Authenticates the device.  0 and d->t filled; -ENOENT unknown target;
 * -EACCES bad credentials.  A gateway token or header authentication may
 * register new targets. */
static int authenticate(struct ddi *d, const char *controller_id, bool may_create)
{
	struct request *r = d->r;
	struct server *srv = r->srv;
	const char *h = req_header(r, "Authorization");
	const char *cn = req_header(r, "X-Controller-Id");
	/* an identity asserted by a proxy must be the device the URL names,
	 * whatever the authentication mode (SC-167) */
	if (cn && strcmp(cn, controller_id) != 0)
		return -EACCES;
	if (!h)
		return cn && header_auth(d) ? vouched_target(d, controller_id, may_create) : -EACCES;
	if (strncmp(h, "TargetToken ", 12) == 0) {
		if (!cfg_true(srv, "authentication.targettoken.enabled", true))
			return -EACCES;
		if (store_target_get(srv->store, controller_id, &d->t) != 0)
			return -EACCES;
		if (!token_eq(h + 12, d->t.token)) {
			store_target_clear(&d->t);
			return -EACCES;
		}
		return 0;
	}
	if (strncmp(h, "GatewayToken ", 13) == 0) {
		char *key = NULL;
		bool ok = false;
		if (cfg_true(srv, "authentication.gatewaytoken.enabled", false) &&
		    store_config_get(srv->store, "authentication.gatewaytoken.key", &key) == 0)
			ok = token_eq(h + 13, key);
		free(key);
		if (!ok)
			return -EACCES;
		return vouched_target(d, controller_id, may_create);
	}
	return -EACCES;
}

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* The c= parameter: changes whenever what the device should do changes. */
static int32_t action_hash(const struct store_action *a)
{
	char buf[128];
	int n = snprintf(buf, sizeof(buf), "%lld/%s/%s/%lld", (long long)a->id, a->type, a->status,
			 (long long)a->forcetime);
	return (int32_t)(fnv1a(buf, (size_t)n) & 0x7fffffff);
}

static enum MHD_Result base_poll(struct ddi *d)
{
	struct request *r = d->r;
	struct server *srv = r->srv;
	char ip[64], *sleep = NULL;
	store_target_touch(srv->store, d->t.id, store_now_ms(), req_client_ip(r, ip, sizeof(ip)));
	json_object *o = json_object_new_object(), *cfg = json_object_new_object(),
		    *pol = json_object_new_object(), *links = json_object_new_object();
	if (store_config_get(srv->store, "pollingTime", &sleep) != 0)
		sleep = NULL;
	json_add_str(pol, "sleep", sleep ? sleep : DEFAULT_POLLING);
	free(sleep);
	json_object_object_add(cfg, "polling", pol);
	json_object_object_add(o, "config", cfg);
	struct store_action a;
	if (store_action_active(srv->store, d->t.id, &a) == 0) {
		if (strcmp(a.status, "canceling") == 0)
			json_add_link(links, "cancelAction", "%s/cancelAction/%lld", d->base,
				      (long long)a.id);
		else
			json_add_link(links, "deploymentBase", "%s/deploymentBase/%lld?c=%d", d->base,
				      (long long)a.id, action_hash(&a));
	}
	if (d->t.installed_action)
		json_add_link(links, "installedBase", "%s/installedBase/%lld", d->base,
			      (long long)d->t.installed_action);
	if (d->t.request_attributes)
		json_add_link(links, "configData", "%s/configData", d->base);
	json_object_object_add(o, "_links", links);

	/* shallow ETag over the body, as hawkBit: 304 when nothing changed */
	size_t len;
	const char *body = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	char etag[24];
	snprintf(etag, sizeof(etag), "\"%016llx\"", (unsigned long long)fnv1a(body, len));
	const char *inm = req_header(r, "If-None-Match");
	struct MHD_Response *resp;
	unsigned status = 200;
	if (inm && strcmp(inm, etag) == 0) {
		status = 304;
		resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
	} else {
		resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
		if (resp) {
			const char *acc = req_header(r, "Accept");
			MHD_add_response_header(resp, "Content-Type",
						acc && strstr(acc, "application/json") &&
								!strstr(acc, "hal+json")
							? "application/json"
							: "application/hal+json");
		}
	}
	if (resp)
		MHD_add_response_header(resp, "ETag", etag);
	json_object_put(o);
	return queue(r, status, resp);
}

/* download/update handling of hawkBit (hawkbit-ddi.md §1.4); *window is
 * "available"/"unavailable" for an action with a maintenance window, else NULL. */
static void handling(const struct store_action *a, const char **download, const char **update,
		     const char **window)
{
	const char *t = a->type;
	*window = NULL;
	if (strcmp(t, "downloadonly") == 0) {
		*download = "forced";
		*update = "skip";
	} else if (strcmp(t, "soft") == 0) {
		*download = *update = "attempt";
	} else if (strcmp(t, "timeforced") == 0) {
		*download = *update = store_now_ms() >= a->forcetime ? "forced" : "attempt";
	} else {
		*download = *update = "forced";
	}
	struct mwindow w;
	char why[160];
	if (a->mw_schedule[0] &&
	    mwindow_parse(a->mw_schedule, a->mw_duration, a->mw_timezone, &w, why, sizeof(why)) == 0) {
		bool open = mwindow_open(&w, time(NULL));
		*window = open ? "available" : "unavailable";
		if (!open && strcmp(t, "downloadonly") != 0)
			*update = "skip";
	}
}

static json_object *artifact_json(struct ddi *d, const struct store_artifact *a)
{
	json_object *o = json_object_new_object(), *h = json_object_new_object(),
		    *l = json_object_new_object();
	json_add_str(o, "filename", a->filename);
	json_add_str(h, "sha1", a->sha1);
	json_add_str(h, "md5", a->md5);
	json_add_str(h, "sha256", a->sha256);
	json_object_object_add(o, "hashes", h);
	json_add_int(o, "size", a->size);
	/* both names, same (request) scheme: clients take "download" first and
	 * fall back to "download-http" (hawkbit-ddi.md §1.4) */
	/* file names are restricted at upload to need no escaping in a URL */
	const char *esc = a->filename;
	json_add_link(l, "download", "%s/softwaremodules/%lld/artifacts/%s", d->base,
		      (long long)a->sm_id, esc);
	json_add_link(l, "download-http", "%s/softwaremodules/%lld/artifacts/%s", d->base,
		      (long long)a->sm_id, esc);
	json_add_link(l, "md5sum", "%s/softwaremodules/%lld/artifacts/%s.MD5SUM", d->base,
		      (long long)a->sm_id, esc);
	json_add_link(l, "md5sum-http", "%s/softwaremodules/%lld/artifacts/%s.MD5SUM", d->base,
		      (long long)a->sm_id, esc);
	json_object_object_add(o, "_links", l);
	return o;
}

static json_object *chunks_json(struct ddi *d, int64_t ds_id)
{
	struct server *srv = d->r->srv;
	struct store_ds ds;
	json_object *chunks = json_object_new_array();
	if (store_ds_get(srv->store, ds_id, &ds) != 0)
		return chunks;
	for (size_t i = 0; i < ds.n_modules; i++) {
		struct store_sm sm;
		struct store_artifact *arts = NULL;
		size_t n = 0;
		if (store_sm_get(srv->store, ds.modules[i], &sm) != 0)
			continue;
		json_object *c = json_object_new_object(), *al = json_object_new_array();
		json_add_str(c, "part", sm.type);
		json_add_str(c, "version", sm.version);
		json_add_str(c, "name", sm.name);
		if (sm.encrypted)
			json_add_bool(c, "encrypted", true);
		if (store_artifact_list(srv->store, sm.id, &arts, &n) == 0) {
			for (size_t j = 0; j < n; j++)
				json_object_array_add(al, artifact_json(d, &arts[j]));
			store_artifact_list_free(arts, n);
		}
		json_object_object_add(c, "artifacts", al);
		json_object_array_add(chunks, c);
		store_sm_clear(&sm);
	}
	store_ds_clear(&ds);
	return chunks;
}

static json_object *history_json(struct ddi *d, const struct store_action *a)
{
	bool bad = false;
	int64_t n = arg_int(d->r, "actionHistory", 0, -1, 1000, &bad);
	if (bad || n == 0)
		return NULL;
	struct store_status *st = NULL;
	size_t cnt = 0;
	int64_t total = 0;
	if (store_status_list(d->r->srv->store, a->id, 0, n < 0 ? 1000 : n, true, &st, &cnt,
			      &total) != 0)
		return NULL;
	json_object *h = json_object_new_object(), *msgs = json_object_new_array();
	char up[24];
	snprintf(up, sizeof(up), "%s", a->status);
	for (char *p = up; *p; p++)
		*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
	json_add_str(h, "status", up);
	for (size_t i = 0; i < cnt; i++) {
		json_object *m = json_tokener_parse(st[i].messages);
		if (m && json_object_is_type(m, json_type_array))
			for (size_t k = 0; k < json_object_array_length(m); k++)
				json_object_array_add(msgs, json_object_get(json_object_array_get_idx(m, k)));
		json_object_put(m);
	}
	store_status_list_free(st, cnt);
	json_object_object_add(h, "messages", msgs);
	return h;
}

static enum MHD_Result deployment(struct ddi *d, const char *id_s, bool installed)
{
	struct request *r = d->r;
	struct store_action a;
	int64_t id;
	if (!parse_id(id_s, &id) || store_action_get(r->srv->store, id, &a) != 0 ||
	    a.target_id != d->t.id)
		return reply_error(r, 404, "hawkbit.server.error.repo.entitiyNotFound",
				   "action %.40s not found for this target", id_s);
	if (installed) {
		if (id != d->t.installed_action)
			return reply_error(r, 404, "hawkbit.server.error.repo.entitiyNotFound",
					   "action %lld is not the installed one", (long long)id);
	} else if (!a.active || strcmp(a.status, "canceling") == 0) {
		return reply_error(r, 404, "hawkbit.server.error.repo.entitiyNotFound",
				   "action %lld is not open for deployment", (long long)id);
	}
	const char *dl, *up, *mw;
	handling(&a, &dl, &up, &mw);
	json_object *o = json_object_new_object(), *dep = json_object_new_object();
	char ids[24];
	snprintf(ids, sizeof(ids), "%lld", (long long)a.id);
	json_add_str(o, "id", ids);
	json_add_str(dep, "download", dl);
	json_add_str(dep, "update", up);
	json_add_str(dep, "maintenanceWindow", mw);
	json_object_object_add(dep, "chunks", chunks_json(d, a.ds_id));
	json_object_object_add(o, "deployment", dep);
	json_object *h = history_json(d, &a);
	if (h)
		json_object_object_add(o, "actionHistory", h);
	if (!installed) {
		bool first = false;
		store_action_mark_retrieved(r->srv->store, a.id, &first);
	}
	return reply_json(r, 200, o);
}

static enum MHD_Result cancel_action(struct ddi *d, const char *id_s)
{
	struct request *r = d->r;
	struct store_action a;
	int64_t id;
	if (!parse_id(id_s, &id) || store_action_get(r->srv->store, id, &a) != 0 ||
	    a.target_id != d->t.id || !a.active || strcmp(a.status, "canceling") != 0)
		return reply_error(r, 404, "hawkbit.server.error.repo.entitiyNotFound",
				   "no cancellation %.40s for this target", id_s);
	json_object *o = json_object_new_object(), *c = json_object_new_object();
	char ids[24];
	snprintf(ids, sizeof(ids), "%lld", (long long)a.id);
	json_add_str(o, "id", ids);
	json_add_str(c, "stopId", ids);
	json_object_object_add(o, "cancelAction", c);
	return reply_json(r, 200, o);
}

static enum MHD_Result feedback(struct ddi *d, const char *id_s, enum feedback_kind kind)
{
	struct request *r = d->r;
	struct store_action a;
	struct feedback_report fr = {0};
	int64_t id;
	enum MHD_Result ret;
	char why[256];
	const char *ct = req_header(r, "Content-Type");
	if (ct && !content_type_json(ct))
		return reply_error(r, 415, "hawkbit.server.error.rest.body.notReadable",
				   "unsupported content type %.100s (use application/json)", ct);
	int pr = feedback_parse(r->body ? r->body : "", r->body_len, &fr, why, sizeof(why));
	if (pr == -E2BIG)
		return reply_error(r, 429, "hawkbit.server.error.quota.tooManyStatusMessages", "%s",
				   why);
	if (pr)
		return reply_error(r, 400, "hawkbit.server.error.rest.body.notReadable", "%s", why);
	const char *execution = fr.execution, *finished = fr.finished;
	json_object *details = fr.details;
	int code = fr.code;
	bool has_code = fr.has_code;
	int64_t ts = fr.timestamp;
	if (!parse_id(id_s, &id) || store_action_get(r->srv->store, id, &a) != 0 ||
	    a.target_id != d->t.id) {
		ret = reply_error(r, 404, "hawkbit.server.error.repo.entitiyNotFound",
				  "action %.40s not found for this target", id_s);
		goto out;
	}
	struct feedback_outcome fo;
	feedback_map(kind, &a, execution, finished, &fo);
	if (fo.http_status == 410) {
		ret = reply_error(r, 410, "hawkbit.server.error.action.closed",
				  "action %lld is closed", (long long)id);
		goto out;
	}
	if (fo.http_status == 405) {
		ret = reply_error(r, 405, "hawkbit.server.error.action.cancelNotAllowed",
				  "action %lld is not being canceled", (long long)id);
		goto out;
	}
	int64_t entries = 0;
	if (!fo.t.close && store_status_count(r->srv->store, id, &entries) == 0 &&
	    entries >= MAX_STATUS_ENTRIES) {
		ret = reply_error(r, 429, "hawkbit.server.error.quota.tooManyStatusEntries",
				  "action %lld has %d status entries already", (long long)id,
				  MAX_STATUS_ENTRIES);
		goto out;
	}
	if (json_object_array_length(details) == 0)
		json_object_array_add(details, json_object_new_string(fo.default_message));
	if (has_code) {
		char m[64];
		snprintf(m, sizeof(m), "Device reported status code: %d", code);
		json_object_array_add(details, json_object_new_string(m));
	}
	int sr = store_action_apply(r->srv->store, id, &fo.t, has_code ? &code : NULL,
				    json_object_to_json_string_ext(details, JSON_C_TO_STRING_PLAIN),
				    ts);
	if (sr == -ESTALE) {
		ret = reply_error(r, 410, "hawkbit.server.error.action.closed",
				  "action %lld is closed", (long long)id);
		goto out;
	}
	if (sr != 0) {
		ret = reply_error(r, 500, "hawkbit.server.error.internal", "feedback not stored");
		goto out;
	}
	if (fo.t.close && a.rollout_id)
		store_rollout_tick(r->srv->store); /* the next group need not wait */
	ret = reply_empty(r, 200);
out:
	feedback_report_clear(&fr);
	return ret;
}

static enum MHD_Result config_data(struct ddi *d)
{
	struct request *r = d->r;
	json_object *body = req_json_body(r, json_type_object), *data, *v;
	struct store_kv *kv = NULL;
	size_t n = 0;
	enum MHD_Result ret;
	const char *mode = "merge";
	if (!body)
		return MHD_YES;
	if (!json_object_object_get_ex(body, "data", &data) ||
	    !json_object_is_type(data, json_type_object) || json_object_object_length(data) == 0) {
		ret = reply_error(r, 400, "hawkbit.server.error.rest.body.notReadable",
				  "configData: 'data' must be a non-empty object of strings");
		goto out;
	}
	if (json_object_object_get_ex(body, "mode", &v) && !json_object_is_type(v, json_type_null)) {
		mode = json_object_get_string(v);
		if (!json_object_is_type(v, json_type_string) ||
		    (strcmp(mode, "merge") && strcmp(mode, "replace") && strcmp(mode, "remove"))) {
			ret = reply_error(r, 400, "hawkbit.server.error.rest.body.notReadable",
					  "configData: 'mode' must be merge, replace or remove");
			goto out;
		}
	}
	size_t cnt = (size_t)json_object_object_length(data);
	if (cnt > MAX_ATTRIBUTES) {
		ret = reply_error(r, 429, "hawkbit.server.error.quota.tooManyEntries",
				  "configData: more than %d attributes", MAX_ATTRIBUTES);
		goto out;
	}
	kv = calloc(cnt, sizeof(*kv));
	if (!kv) {
		ret = reply_empty(r, 500);
		goto out;
	}
	json_object_object_foreach(data, key, val)
	{
		if (!json_object_is_type(val, json_type_string) || strlen(key) == 0 ||
		    strlen(key) > MAX_ATTRIBUTE_LEN ||
		    json_object_get_string_len(val) > MAX_ATTRIBUTE_LEN) {
			ret = reply_error(r, 400, "hawkbit.server.error.target.attributesInvalid",
					  "configData: attribute '%.140s' must be a string and key and "
					  "value at most %d characters", key, MAX_ATTRIBUTE_LEN);
			goto out;
		}
		kv[n].key = (char *)key;
		kv[n].value = (char *)json_object_get_string(val);
		n++;
	}
	int sr = store_attrs_update(r->srv->store, d->t.id, mode, kv, n, MAX_ATTRIBUTES);
	if (sr == -E2BIG)
		ret = reply_error(r, 429, "hawkbit.server.error.quota.tooManyEntries",
				  "configData: a target has at most %d attributes", MAX_ATTRIBUTES);
	else if (sr)
		ret = reply_error(r, 500, "hawkbit.server.error.internal", "attributes not stored");
	else
		ret = reply_empty(r, 200);
out:
	free(kv); /* strings belong to the JSON */
	json_object_put(body);
	return ret;
}

/* PUT installedBase (hawkBit's experimental offline report, DdiAssignedVersion). */
static enum MHD_Result installed_base_put(struct ddi *d)
{
	struct request *r = d->r;
	json_object *body = req_json_body(r, json_type_object), *n, *v;
	if (!body)
		return MHD_YES;
	enum MHD_Result ret;
	bool created = false;
	if (!json_object_object_get_ex(body, "name", &n) || !json_object_is_type(n, json_type_string) ||
	    !json_object_object_get_ex(body, "version", &v) || !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(n) == 0 || json_object_get_string_len(v) == 0) {
		ret = reply_error(r, 400, "hawkbit.server.error.rest.body.notReadable",
				  "installedBase: 'name' and 'version' strings are required");
	} else {
		int sr = store_installed_base(r->srv->store, d->t.id, json_object_get_string(n),
					      json_object_get_string(v), &created);
		if (sr == -ENOENT)
			ret = reply_error(r, 404, "hawkbit.server.error.repo.entitiyNotFound",
					  "installedBase: no distribution set %.100s %.100s",
					  json_object_get_string(n), json_object_get_string(v));
		else if (sr)
			ret = reply_empty(r, 500);
		else /* hawkBit's code answers 201 for a new offline action, its
		      * OpenAPI document only 200; clients that accept only 200
		      * (rauc-hawkbit-updater) decide */
			ret = reply_empty(r, 200);
	}
	json_object_put(body);
	return ret;
}

/* The module must belong to an open action of the target or to the one it
 * has installed (hawkBit's access check).  Returns the action id, 0 if none. */
static int64_t module_access(struct ddi *d, int64_t sm_id)
{
	struct server *srv = d->r->srv;
	int64_t ids[2] = {0, d->t.installed_action};
	struct store_action a;
	if (store_action_active(srv->store, d->t.id, &a) == 0)
		ids[0] = a.id;
	for (int i = 0; i < 2; i++) {
		struct store_action x;
		struct store_ds ds;
		if (!ids[i] || store_action_get(srv->store, ids[i], &x) != 0)
			continue;
		if (store_ds_get(srv->store, x.ds_id, &ds) != 0)
			continue;
		bool found = false;
		for (size_t k = 0; k < ds.n_modules; k++)
			found |= ds.modules[k] == sm_id;
		store_ds_clear(&ds);
		if (found)
			return ids[i];
	}
	return 0;
}

static enum MHD_Result artifacts(struct ddi *d, const char *sm_s, const char *file)
{
	struct request *r = d->r;
	int64_t sm_id, action;
	if (!parse_id(sm_s, &sm_id) || !(action = module_access(d, sm_id)))
		return reply_error(r, 404, "hawkbit.server.error.repo.entitiyNotFound",
				   "software module %.40s not found for this target", sm_s);
	if (!file) {
		struct store_artifact *arts = NULL;
		size_t n = 0;
		if (store_artifact_list(r->srv->store, sm_id, &arts, &n) != 0)
			return reply_empty(r, 500);
		json_object *a = json_object_new_array();
		for (size_t i = 0; i < n; i++)
			json_object_array_add(a, artifact_json(d, &arts[i]));
		store_artifact_list_free(arts, n);
		return reply_json(r, 200, a);
	}
	struct store_artifact art;
	if (store_artifact_find(r->srv->store, sm_id, file, &art) == 0) {
		/* downloads for the installed action are re-installs, not progress */
		struct store_action a;
		int64_t note = store_action_active(r->srv->store, d->t.id, &a) == 0 && a.id == action
				       ? action
				       : 0;
		enum MHD_Result ret = download_artifact(r, &art, note);
		store_artifact_clear(&art);
		return ret;
	}
	size_t fl = strlen(file);
	if (fl > 7 && strcmp(file + fl - 7, ".MD5SUM") == 0) {
		char *base = strndup(file, fl - 7);
		int fr = base ? store_artifact_find(r->srv->store, sm_id, base, &art) : -ENOMEM;
		free(base);
		if (fr == 0) {
			char line[1200];
			int n = snprintf(line, sizeof(line), "%s  %s", art.md5, art.filename);
			store_artifact_clear(&art);
			return reply_raw(r, 200, "text/plain", line, (size_t)n);
		}
	}
	return reply_error(r, 404, "hawkbit.server.error.repo.entitiyNotFound",
			   "artifact not found");
}

enum MHD_Result ddi_handle(struct request *r)
{
	struct ddi d = {.r = r};
	const char *tenant = r->segs[0], *cid = r->segs[3];
	enum MHD_Result ret;
	if (strcasecmp(tenant, "DEFAULT") != 0)
		return reply_error(r, 404, "hawkbit.server.error.repo.entitiyNotFound",
				   "unknown tenant");
	bool cid_ok = strlen(cid) <= MAX_CONTROLLER_ID;
	for (const char *p = cid; *p && cid_ok; p++) /* no whitespace or control characters */
		cid_ok = (unsigned char)*p > 0x20 && *p != 0x7f;
	if (!cid_ok)
		return reply_error(r, 400, "hawkbit.server.error.rest.param.invalid",
				   "controllerId: 1 to %d characters without whitespace",
				   MAX_CONTROLLER_ID);
	size_t n = r->n_segs - 4;
	char **s = r->segs + 4;
	bool base = n == 0;
	int ar = authenticate(&d, cid, base && req_method(r, "GET"));
	if (ar == -EACCES)
		return reply_unauthorized(r, false);
	if (ar == -ENOENT)
		return reply_error(r, 404, "hawkbit.server.error.repo.entitiyNotFound",
				   "target not found");
	if (ar)
		return reply_empty(r, 500);
	char url[1024];
	req_base_url(r, url, sizeof(url));
	snprintf(d.base, sizeof(d.base), "%s/%s/controller/v1/%s", url, tenant, cid);

	bool get = req_method(r, "GET") || req_method(r, "HEAD");
	bool post = req_method(r, "POST"), put = req_method(r, "PUT");
	if (base && get)
		ret = base_poll(&d);
	else if (n == 2 && strcmp(s[0], "deploymentBase") == 0 && get)
		ret = deployment(&d, s[1], false);
	else if (n == 2 && strcmp(s[0], "installedBase") == 0 && get)
		ret = deployment(&d, s[1], true);
	else if (n == 3 && strcmp(s[0], "deploymentBase") == 0 && strcmp(s[2], "feedback") == 0 && post)
		ret = feedback(&d, s[1], FEEDBACK_DEPLOYMENT);
	else if (n == 2 && strcmp(s[0], "cancelAction") == 0 && get)
		ret = cancel_action(&d, s[1]);
	else if (n == 3 && strcmp(s[0], "cancelAction") == 0 && strcmp(s[2], "feedback") == 0 && post)
		ret = feedback(&d, s[1], FEEDBACK_CANCEL);
	else if (n == 1 && strcmp(s[0], "configData") == 0 && put)
		ret = config_data(&d);
	else if (n == 1 && strcmp(s[0], "installedBase") == 0 && put)
		ret = installed_base_put(&d);
	else if (n == 3 && strcmp(s[0], "softwaremodules") == 0 && strcmp(s[2], "artifacts") == 0 && get)
		ret = artifacts(&d, s[1], NULL);
	else if (n == 4 && strcmp(s[0], "softwaremodules") == 0 && strcmp(s[2], "artifacts") == 0 && get)
		ret = artifacts(&d, s[1], s[3]);
	else if (base || (n <= 4 && (strcmp(s[0], "deploymentBase") == 0 ||
				     strcmp(s[0], "installedBase") == 0 ||
				     strcmp(s[0], "cancelAction") == 0 ||
				     strcmp(s[0], "configData") == 0 ||
				     strcmp(s[0], "softwaremodules") == 0)))
		ret = reply_error(r, 405, "hawkbit.server.error.rest.methodNotAllowed",
				  "method %s not allowed here", r->method);
	else
		ret = reply_error(r, 404, "hawkbit.server.error.repo.entitiyNotFound",
				  "no such resource");
	store_target_clear(&d.t);
	return ret;
}
