/* mgmt_target.c - /rest/v1/targets: targets, attributes, actions and their
 * status, assignment (also for /distributionsets/{id}/assignedTargets). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mgmt.h"
#include "mwindow.h"

/* ---------------- targets ---------------- */


static enum MHD_Result targets_create(struct request *r)
{
	json_object *body = req_json_body(r, json_type_array);
	if (!body)
		return MHD_YES;
	json_object *out = json_object_new_array();
	enum MHD_Result ret;
	size_t n = json_object_array_length(body);
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(body, i);
		bool ok = json_object_is_type(e, json_type_object);
		if (!ok) {
			ret = reply_error(r, 400, MGMT_BAD_BODY, "targets[%zu]: object expected", i);
			goto out;
		}
		const char *cid = mgmt_opt_str(r, e, "controllerId", 256, true, &ok);
		const char *name = mgmt_opt_str(r, e, "name", MAX_NAME, false, &ok);
		const char *desc = mgmt_opt_str(r, e, "description", MAX_TEXT, false, &ok);
		const char *tok = mgmt_opt_str(r, e, "securityToken", MAX_TOKEN, false, &ok);
		const char *addr = mgmt_opt_str(r, e, "address", MAX_TEXT, false, &ok);
		if (!ok) {
			ret = MHD_YES;
			goto out;
		}
		if (!mgmt_id_ok(cid)) {
			ret = reply_error(r, 400, MGMT_BAD_BODY,
					  "targets[%zu].controllerId: no whitespace or slashes", i);
			goto out;
		}
		char gen[33];
		if (!tok || !*tok) {
			server_random_token(gen, sizeof(gen));
			tok = gen;
		}
		json_object *ra;
		struct store_target t = {
			.controller_id = (char *)cid,
			.name = (char *)(name ? name : cid),
			.description = (char *)desc,
			.token = (char *)tok,
			.address = (char *)addr,
			.update_status = "unknown",
			.request_attributes = !json_object_object_get_ex(e, "requestAttributes", &ra) ||
					      json_object_get_boolean(ra),
		};
		int sr = store_target_create(r->srv->store, &t, NULL);
		if (sr == -EEXIST) {
			ret = reply_error(r, 409, "hawkbit.server.error.repo.entitiyAlreadyExists",
					  "target %.80s exists (or its token is taken)", cid);
			goto out;
		}
		if (sr) {
			ret = reply_empty(r, 500);
			goto out;
		}
		struct store_target got;
		if (store_target_get(r->srv->store, cid, &got) == 0) {
			json_object_array_add(out, mgmt_target_json(r, &got));
			store_target_clear(&got);
		}
	}
	ret = reply_json(r, 201, out);
	out = NULL;
out:
	json_object_put(out);
	json_object_put(body);
	return ret;
}

static enum MHD_Result target_update(struct request *r, const char *cid)
{
	json_object *body = req_json_body(r, json_type_object), *ra;
	if (!body)
		return MHD_YES;
	bool ok = true;
	const char *name = mgmt_opt_str(r, body, "name", MAX_NAME, false, &ok);
	const char *desc = mgmt_opt_str(r, body, "description", MAX_TEXT, false, &ok);
	const char *tok = mgmt_opt_str(r, body, "securityToken", MAX_TOKEN, false, &ok);
	const char *addr = mgmt_opt_str(r, body, "address", MAX_TEXT, false, &ok);
	enum MHD_Result ret = MHD_YES;
	if (ok) {
		int req_attr = json_object_object_get_ex(body, "requestAttributes", &ra)
				       ? json_object_get_boolean(ra)
				       : -1;
		int sr = store_target_update(r->srv->store, cid, name, desc, tok && *tok ? tok : NULL,
					     addr, req_attr);
		struct store_target t;
		if (sr == -ENOENT)
			ret = mgmt_not_found(r, "target", cid);
		else if (sr)
			ret = reply_error(r, 409, "hawkbit.server.error.repo.entitiyAlreadyExists",
					  "target update conflicts");
		else if (store_target_get(r->srv->store, cid, &t) == 0) {
			ret = reply_json(r, 200, mgmt_target_json(r, &t));
			store_target_clear(&t);
		} else
			ret = reply_empty(r, 500);
	}
	json_object_put(body);
	return ret;
}

/* -EINVAL with the reason in why (when it is more than the generic one). */
static int assign_one(struct request *r, int64_t ds_id, const char *cid, json_object *e,
		      int64_t *action, bool *already, char *why, size_t why_size)
{
	json_object *v;
	struct store_assign a = {.controller_id = cid, .type = "forced"};
	if (e && json_object_object_get_ex(e, "type", &v)) {
		const char *t = json_object_get_string(v);
		if (!json_object_is_type(v, json_type_string) ||
		    (strcmp(t, "soft") && strcmp(t, "forced") && strcmp(t, "timeforced") &&
		     strcmp(t, "downloadonly")))
			return -EINVAL;
		a.type = t;
	}
	if (e && json_object_object_get_ex(e, "forcetime", &v)) {
		if (!json_object_is_type(v, json_type_int))
			return -EINVAL;
		a.forcetime = json_object_get_int64(v);
	}
	if (e && json_object_object_get_ex(e, "weight", &v)) {
		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
		    json_object_get_int64(v) > 1000)
			return -EINVAL;
		a.weight = (int)json_object_get_int64(v);
	}
	if (e && json_object_object_get_ex(e, "maintenanceWindow", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		json_object *sch, *dur, *tz;
		struct mwindow w;
		if (!json_object_is_type(v, json_type_object) ||
		    !json_object_object_get_ex(v, "schedule", &sch) ||
		    !json_object_object_get_ex(v, "duration", &dur) ||
		    !json_object_object_get_ex(v, "timezone", &tz) ||
		    !json_object_is_type(sch, json_type_string) ||
		    !json_object_is_type(dur, json_type_string) ||
		    !json_object_is_type(tz, json_type_string)) {
			snprintf(why, why_size,
				 "maintenanceWindow: schedule, duration and timezone strings");
			return -EINVAL;
		}
		if (mwindow_parse(json_object_get_string(sch), json_object_get_string(dur),
				  json_object_get_string(tz), &w, why, why_size) < 0)
			return -EINVAL;
		a.mw_schedule = json_object_get_string(sch);
		a.mw_duration = json_object_get_string(dur);
		a.mw_timezone = json_object_get_string(tz);
	}
	if (e && json_object_object_get_ex(e, "confirmationRequired", &v) &&
	    json_object_get_boolean(v))
		return -ENOTSUP;
	return store_assign(r->srv->store, ds_id, &a, action, already);
}

/* Body: array of {id: controllerId | dsId, type, ...}. by_target: the path
 * names the target and the body names distribution sets. */
enum MHD_Result mgmt_assign(struct request *r, const char *path_id, bool by_target)
{
	json_object *body;
	/* /targets/{id}/assignedDS also takes a single object */
	if (r->body && r->body_len && by_target) {
		json_object *probe = json_tokener_parse(r->body);
		bool single = probe && json_object_is_type(probe, json_type_object);
		json_object_put(probe);
		body = req_json_body(r, single ? json_type_object : json_type_array);
		if (body && single) {
			json_object *arr = json_object_new_array();
			json_object_array_add(arr, body);
			body = arr;
		}
	} else {
		body = req_json_body(r, json_type_array);
	}
	if (!body)
		return MHD_YES;
	int64_t ds_path = 0;
	if (!by_target && !parse_id(path_id, &ds_path)) {
		json_object_put(body);
		return mgmt_not_found(r, "distribution set", path_id);
	}
	json_object *actions = json_object_new_array();
	int assigned = 0, already_n = 0;
	size_t n = json_object_array_length(body);
	enum MHD_Result ret;
	char base[1100];
	req_base_url(r, base, sizeof(base));
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(body, i), *idv;
		if (!json_object_is_type(e, json_type_object) ||
		    !json_object_object_get_ex(e, "id", &idv)) {
			ret = reply_error(r, 400, MGMT_BAD_BODY, "assignment[%zu]: 'id' is required", i);
			goto out;
		}
		const char *cid = by_target ? path_id : json_object_get_string(idv);
		int64_t ds = ds_path;
		if (by_target) {
			if (!json_object_is_type(idv, json_type_int) || json_object_get_int64(idv) <= 0) {
				ret = reply_error(r, 400, MGMT_BAD_BODY, "assignment[%zu].id: a distribution set id", i);
				goto out;
			}
			ds = json_object_get_int64(idv);
		} else if (!json_object_is_type(idv, json_type_string) || !mgmt_id_ok(cid)) {
			ret = reply_error(r, 400, MGMT_BAD_BODY, "assignment[%zu].id: a controllerId", i);
			goto out;
		}
		int64_t aid = 0;
		bool already = false;
		char why[256] = "";
		int sr = assign_one(r, ds, cid, e, &aid, &already, why, sizeof(why));
		if (sr == -EINVAL) {
			ret = reply_error(r, 400, MGMT_BAD_BODY, "assignment[%zu]: %s", i,
					  why[0] ? why
						 : "type must be soft, forced, timeforced or "
						   "downloadonly; forcetime and weight (0-1000) integers");
			goto out;
		}
		if (sr == -ENOTSUP) {
			ret = reply_error(r, 400, MGMT_BAD_BODY,
					  "assignment[%zu]: the confirmation flow is not supported by "
					  "abota-server", i);
			goto out;
		}
		if (sr == -ENOENT) {
			ret = reply_error(r, 404, MGMT_NOT_FOUND, "assignment[%zu]: target %.80s or "
					  "distribution set %lld not found", i, cid, (long long)ds);
			goto out;
		}
		if (sr) {
			ret = reply_empty(r, 500);
			goto out;
		}
		if (already) {
			already_n++;
			continue;
		}
		assigned++;
		json_object *a = json_object_new_object(), *l = json_object_new_object();
		json_add_int(a, "id", aid);
		json_add_link(l, "self", "%s/rest/v1/targets/%s/actions/%lld", base, cid, (long long)aid);
		json_object_object_add(a, "_links", l);
		json_object_array_add(actions, a);
	}
	json_object *o = json_object_new_object();
	json_add_int(o, "assigned", assigned);
	json_add_int(o, "alreadyAssigned", already_n);
	json_add_int(o, "total", assigned + already_n);
	json_object_object_add(o, "assignedActions", actions);
	actions = NULL;
	ret = reply_json(r, 200, o);
out:
	json_object_put(actions);
	json_object_put(body);
	return ret;
}

/* The target's assigned or installed distribution set; 204 when none. */
static enum MHD_Result target_ds(struct request *r, int64_t ds_id)
{
	struct store_ds d;
	if (!ds_id || store_ds_get(r->srv->store, ds_id, &d) != 0)
		return reply_empty(r, 204);
	json_object *o = mgmt_ds_json(r, &d);
	store_ds_clear(&d);
	return reply_json(r, 200, o);
}

static enum MHD_Result action_one(struct request *r, const struct store_target *t,
				  const char *aid_s, size_t rest, char **s)
{
	int64_t aid;
	struct store_action a;
	if (!parse_id(aid_s, &aid) || store_action_get(r->srv->store, aid, &a) != 0 ||
	    a.target_id != t->id)
		return mgmt_not_found(r, "action", aid_s);
	if (rest == 0 && req_method(r, "GET"))
		return reply_json(r, 200, mgmt_action_json(r, &a));
	if (rest == 0 && req_method(r, "DELETE")) {
		const char *force = req_arg(r, "force");
		int sr = store_action_cancel(r->srv->store, aid, force && strcmp(force, "true") == 0);
		if (sr == -EALREADY)
			return reply_error(r, 400, "hawkbit.server.error.action.cancelNotAllowed",
					   "action %lld is closed or already being canceled",
					   (long long)aid);
		return sr ? reply_empty(r, 500) : reply_empty(r, 200);
	}
	if (rest == 1 && strcmp(s[0], "status") == 0 && req_method(r, "GET")) {
		bool bad = false;
		int64_t off, lim;
		mgmt_paging(r, &off, &lim, &bad);
		const char *sort = req_arg(r, "sort");
		bool desc = !sort || strstr(sort, "DESC") || strstr(sort, "desc");
		struct store_status *st = NULL;
		size_t n = 0;
		int64_t total = 0;
		if (bad)
			return reply_error(r, 400, "hawkbit.server.error.rest.param.invalid",
					   "offset/limit out of range");
		if (store_status_list(r->srv->store, aid, off, lim, desc, &st, &n, &total) != 0)
			return reply_empty(r, 500);
		json_object *c = json_object_new_array();
		for (size_t i = 0; i < n; i++)
			json_object_array_add(c, mgmt_status_json(&st[i]));
		store_status_list_free(st, n);
		return reply_json(r, 200, mgmt_paged(c, total));
	}
	return reply_error(r, 405, "hawkbit.server.error.rest.methodNotAllowed", "not allowed");
}

enum MHD_Result mgmt_actions_list(struct request *r, int64_t target_id)
{
	bool bad = false;
	int64_t off, lim, total = 0;
	mgmt_paging(r, &off, &lim, &bad);
	if (bad)
		return reply_error(r, 400, "hawkbit.server.error.rest.param.invalid",
				   "offset/limit out of range");
	const char *sort = req_arg(r, "sort");
	bool desc = !sort || strstr(sort, "DESC") || strstr(sort, "desc");
	struct store_action *a = NULL;
	size_t n = 0;
	if (store_action_list(r->srv->store, target_id, off, lim, desc, &a, &n, &total) != 0)
		return reply_empty(r, 500);
	json_object *c = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(c, mgmt_action_json(r, &a[i]));
	free(a);
	return reply_json(r, 200, mgmt_paged(c, total));
}

enum MHD_Result mgmt_targets(struct request *r, size_t n, char **s)
{
	if (n == 0) {
		if (req_method(r, "POST"))
			return targets_create(r);
		if (!req_method(r, "GET"))
			return reply_error(r, 405, "hawkbit.server.error.rest.methodNotAllowed", "not allowed");
		bool bad = false;
		int64_t off, lim, total = 0;
		mgmt_paging(r, &off, &lim, &bad);
		const char *q = req_arg(r, "q");
		if (bad || (q && strlen(q) > 200))
			return reply_error(r, 400, "hawkbit.server.error.rest.param.invalid",
					   "offset/limit/q out of range");
		/* FIQL "controllerId==x*" or "name==x*" reduced to a substring
		 * search; anything else is taken as plain text */
		char qs[256] = "";
		if (q) {
			const char *eq = strstr(q, "==");
			snprintf(qs, sizeof(qs), "%s", eq ? eq + 2 : q);
			for (char *p = qs; *p; p++)
				if (*p == '*')
					*p = '%';
		}
		struct store_target *t = NULL;
		size_t cnt = 0;
		if (store_target_list(r->srv->store, off, lim, qs, &t, &cnt, &total) != 0)
			return reply_empty(r, 500);
		json_object *c = json_object_new_array();
		for (size_t i = 0; i < cnt; i++)
			json_object_array_add(c, mgmt_target_json(r, &t[i]));
		store_target_list_free(t, cnt);
		return reply_json(r, 200, mgmt_paged(c, total));
	}
	const char *cid = s[0];
	if (n == 1 && req_method(r, "PUT"))
		return target_update(r, cid);
	if (n == 1 && req_method(r, "DELETE")) {
		int sr = store_target_delete(r->srv->store, cid);
		return sr == -ENOENT ? mgmt_not_found(r, "target", cid)
				     : sr ? reply_empty(r, 500) : reply_empty(r, 200);
	}
	struct store_target t;
	if (store_target_get(r->srv->store, cid, &t) != 0)
		return mgmt_not_found(r, "target", cid);
	enum MHD_Result ret;
	bool get = req_method(r, "GET");
	if (n == 1 && get) {
		ret = reply_json(r, 200, mgmt_target_json(r, &t));
	} else if (n == 2 && strcmp(s[1], "attributes") == 0 && get) {
		struct store_kv *kv = NULL;
		size_t k = 0;
		if (store_attrs_get(r->srv->store, t.id, &kv, &k) != 0) {
			ret = reply_empty(r, 500);
		} else {
			json_object *o = json_object_new_object();
			for (size_t i = 0; i < k; i++)
				json_add_str(o, kv[i].key, kv[i].value);
			store_kv_free(kv, k);
			ret = reply_json(r, 200, o);
		}
	} else if (n == 2 && strcmp(s[1], "actions") == 0 && get) {
		ret = mgmt_actions_list(r, t.id);
	} else if (n >= 3 && strcmp(s[1], "actions") == 0) {
		ret = action_one(r, &t, s[2], n - 3, s + 3);
	} else if (n == 2 && strcmp(s[1], "assignedDS") == 0 && req_method(r, "POST")) {
		ret = mgmt_assign(r, cid, true);
	} else if (n == 2 && strcmp(s[1], "assignedDS") == 0 && get) {
		ret = target_ds(r, t.assigned_ds);
	} else if (n == 2 && strcmp(s[1], "installedDS") == 0 && get) {
		ret = target_ds(r, t.installed_ds);
	} else {
		ret = reply_error(r, 404, MGMT_NOT_FOUND, "no such resource");
	}
	store_target_clear(&t);
	return ret;
}
