/* mgmt_repo.c - /rest/v1/softwaremodules (with artifacts) and
 * /rest/v1/distributionsets. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mgmt.h"

/* ---------------- software modules ---------------- */

static enum MHD_Result sm_create(struct request *r)
{
	json_object *body = req_json_body(r, json_type_array);
	if (!body)
		return MHD_YES;
	json_object *out = json_object_new_array();
	enum MHD_Result ret = MHD_YES;
	for (size_t i = 0; i < json_object_array_length(body); i++) {
		json_object *e = json_object_array_get_idx(body, i), *v;
		bool ok = json_object_is_type(e, json_type_object);
		if (!ok) {
			ret = reply_error(r, 400, MGMT_BAD_BODY, "softwaremodules[%zu]: object expected", i);
			goto out;
		}
		struct store_sm m = {0};
		m.name = (char *)mgmt_opt_str(r, e, "name", MAX_NAME, true, &ok);
		m.version = (char *)mgmt_opt_str(r, e, "version", MAX_NAME, true, &ok);
		m.type = (char *)mgmt_opt_str(r, e, "type", 64, true, &ok);
		m.vendor = (char *)mgmt_opt_str(r, e, "vendor", MAX_NAME, false, &ok);
		m.description = (char *)mgmt_opt_str(r, e, "description", MAX_TEXT, false, &ok);
		if (!ok)
			goto out;
		if (strcmp(m.type, "os") && strcmp(m.type, "application")) {
			ret = reply_error(r, 400, MGMT_BAD_BODY,
					  "softwaremodules[%zu].type: 'os' or 'application'", i);
			goto out;
		}
		m.encrypted = json_object_object_get_ex(e, "encrypted", &v) && json_object_get_boolean(v);
		int64_t id;
		if (store_sm_create(r->srv->store, &m, &id) != 0) {
			ret = reply_empty(r, 500);
			goto out;
		}
		struct store_sm got;
		if (store_sm_get(r->srv->store, id, &got) == 0) {
			json_object_array_add(out, mgmt_sm_json(r, &got));
			store_sm_clear(&got);
		}
	}
	ret = reply_json(r, 201, out);
	out = NULL;
out:
	json_object_put(out);
	json_object_put(body);
	return ret;
}

enum MHD_Result mgmt_softwaremodules(struct request *r, size_t n, char **s)
{
	bool get = req_method(r, "GET");
	if (n == 0) {
		if (req_method(r, "POST"))
			return sm_create(r);
		if (!get)
			return reply_error(r, 405, "hawkbit.server.error.rest.methodNotAllowed", "not allowed");
		bool bad = false;
		int64_t off, lim, total = 0;
		mgmt_paging(r, &off, &lim, &bad);
		if (bad)
			return reply_error(r, 400, "hawkbit.server.error.rest.param.invalid",
					   "offset/limit out of range");
		struct store_sm *m = NULL;
		size_t cnt = 0;
		if (store_sm_list(r->srv->store, off, lim, &m, &cnt, &total) != 0)
			return reply_empty(r, 500);
		json_object *c = json_object_new_array();
		for (size_t i = 0; i < cnt; i++)
			json_object_array_add(c, mgmt_sm_json(r, &m[i]));
		store_sm_list_free(m, cnt);
		return reply_json(r, 200, mgmt_paged(c, total));
	}
	int64_t id;
	if (!parse_id(s[0], &id))
		return mgmt_not_found(r, "software module", s[0]);
	if (n == 2 && strcmp(s[1], "artifacts") == 0 && req_method(r, "POST") && r->upload)
		return upload_finish(r, id);
	struct store_sm m;
	if (store_sm_get(r->srv->store, id, &m) != 0)
		return mgmt_not_found(r, "software module", s[0]);
	enum MHD_Result ret;
	if (n == 1 && get) {
		ret = reply_json(r, 200, mgmt_sm_json(r, &m));
	} else if (n == 1 && req_method(r, "DELETE")) {
		int sr = store_sm_delete(r->srv->store, id);
		ret = sr == -ENOENT ? mgmt_not_found(r, "software module", s[0])
				    : sr ? reply_empty(r, 500) : reply_empty(r, 200);
	} else if (n == 2 && strcmp(s[1], "artifacts") == 0 && get) {
		struct store_artifact *a = NULL;
		size_t k = 0;
		if (store_artifact_list(r->srv->store, id, &a, &k) != 0) {
			ret = reply_empty(r, 500);
		} else {
			json_object *arr = json_object_new_array();
			for (size_t i = 0; i < k; i++)
				json_object_array_add(arr, mgmt_artifact_json(r, &a[i]));
			store_artifact_list_free(a, k);
			ret = reply_json(r, 200, arr);
		}
	} else if (n == 3 && strcmp(s[1], "artifacts") == 0) {
		int64_t aid;
		struct store_artifact a;
		if (!parse_id(s[2], &aid) || store_artifact_get(r->srv->store, id, aid, &a) != 0) {
			ret = mgmt_not_found(r, "artifact", s[2]);
		} else if (get) {
			ret = reply_json(r, 200, mgmt_artifact_json(r, &a));
			store_artifact_clear(&a);
		} else if (req_method(r, "DELETE")) {
			char sha[65];
			bool unused = false;
			store_artifact_clear(&a);
			if (store_artifact_delete(r->srv->store, id, aid, sha, &unused) != 0) {
				ret = reply_empty(r, 500);
			} else {
				if (unused) {
					char p[4300];
					snprintf(p, sizeof(p), "%s/%s", r->srv->artifacts_dir, sha);
					unlink(p);
				}
				ret = reply_empty(r, 200);
			}
		} else {
			store_artifact_clear(&a);
			ret = reply_error(r, 405, "hawkbit.server.error.rest.methodNotAllowed", "not allowed");
		}
	} else {
		ret = reply_error(r, 404, MGMT_NOT_FOUND, "no such resource");
	}
	store_sm_clear(&m);
	return ret;
}

/* ---------------- distribution sets ---------------- */

static enum MHD_Result ds_create(struct request *r)
{
	json_object *body = req_json_body(r, json_type_array);
	if (!body)
		return MHD_YES;
	json_object *out = json_object_new_array();
	enum MHD_Result ret = MHD_YES;
	int64_t *mods = NULL;
	for (size_t i = 0; i < json_object_array_length(body); i++) {
		json_object *e = json_object_array_get_idx(body, i), *v;
		bool ok = json_object_is_type(e, json_type_object);
		if (!ok) {
			ret = reply_error(r, 400, MGMT_BAD_BODY, "distributionsets[%zu]: object expected", i);
			goto out;
		}
		struct store_ds d = {0};
		d.name = (char *)mgmt_opt_str(r, e, "name", MAX_NAME, true, &ok);
		d.version = (char *)mgmt_opt_str(r, e, "version", MAX_NAME, true, &ok);
		d.type = (char *)mgmt_opt_str(r, e, "type", 64, false, &ok);
		d.description = (char *)mgmt_opt_str(r, e, "description", MAX_TEXT, false, &ok);
		if (!ok)
			goto out;
		if (!d.type)
			d.type = "os";
		if (strcmp(d.type, "os") && strcmp(d.type, "os_app") && strcmp(d.type, "app")) {
			ret = reply_error(r, 400, MGMT_BAD_BODY,
					  "distributionsets[%zu].type: os, os_app or app", i);
			goto out;
		}
		d.required_migration = json_object_object_get_ex(e, "requiredMigrationStep", &v) &&
				       json_object_get_boolean(v);
		if (json_object_object_get_ex(e, "modules", &v)) {
			if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) > 100) {
				ret = reply_error(r, 400, MGMT_BAD_BODY,
						  "distributionsets[%zu].modules: array of {id} (at most 100)", i);
				goto out;
			}
			free(mods);
			mods = calloc(json_object_array_length(v) + 1, sizeof(*mods));
			if (!mods) {
				ret = reply_empty(r, 500);
				goto out;
			}
			for (size_t k = 0; k < json_object_array_length(v); k++) {
				json_object *m = json_object_array_get_idx(v, k), *mid;
				if (!json_object_is_type(m, json_type_object) ||
				    !json_object_object_get_ex(m, "id", &mid) ||
				    !json_object_is_type(mid, json_type_int)) {
					ret = reply_error(r, 400, MGMT_BAD_BODY,
							  "distributionsets[%zu].modules[%zu].id: integer", i, k);
					goto out;
				}
				mods[d.n_modules++] = json_object_get_int64(mid);
			}
			d.modules = mods;
		}
		int64_t id;
		int sr = store_ds_create(r->srv->store, &d, &id);
		if (sr == -ENOENT) {
			ret = reply_error(r, 404, MGMT_NOT_FOUND,
					  "distributionsets[%zu]: a software module does not exist", i);
			goto out;
		}
		if (sr == -EEXIST) {
			ret = reply_error(r, 409, "hawkbit.server.error.repo.entitiyAlreadyExists",
					  "distribution set %.80s %.80s exists", d.name, d.version);
			goto out;
		}
		if (sr) {
			ret = reply_empty(r, 500);
			goto out;
		}
		struct store_ds got;
		if (store_ds_get(r->srv->store, id, &got) == 0) {
			json_object_array_add(out, mgmt_ds_json(r, &got));
			store_ds_clear(&got);
		}
	}
	ret = reply_json(r, 201, out);
	out = NULL;
out:
	free(mods);
	json_object_put(out);
	json_object_put(body);
	return ret;
}

enum MHD_Result mgmt_distributionsets(struct request *r, size_t n, char **s)
{
	bool get = req_method(r, "GET");
	if (n == 0) {
		if (req_method(r, "POST"))
			return ds_create(r);
		if (!get)
			return reply_error(r, 405, "hawkbit.server.error.rest.methodNotAllowed", "not allowed");
		bool bad = false;
		int64_t off, lim, total = 0;
		mgmt_paging(r, &off, &lim, &bad);
		if (bad)
			return reply_error(r, 400, "hawkbit.server.error.rest.param.invalid",
					   "offset/limit out of range");
		struct store_ds *d = NULL;
		size_t cnt = 0;
		if (store_ds_list(r->srv->store, off, lim, &d, &cnt, &total) != 0)
			return reply_empty(r, 500);
		json_object *c = json_object_new_array();
		for (size_t i = 0; i < cnt; i++)
			json_object_array_add(c, mgmt_ds_json(r, &d[i]));
		store_ds_list_free(d, cnt);
		return reply_json(r, 200, mgmt_paged(c, total));
	}
	int64_t id;
	struct store_ds d;
	if (!parse_id(s[0], &id) || store_ds_get(r->srv->store, id, &d) != 0)
		return mgmt_not_found(r, "distribution set", s[0]);
	enum MHD_Result ret;
	if (n == 1 && get)
		ret = reply_json(r, 200, mgmt_ds_json(r, &d));
	else if (n == 1 && req_method(r, "DELETE")) {
		int sr = store_ds_delete(r->srv->store, id);
		ret = sr == -ENOENT ? mgmt_not_found(r, "distribution set", s[0])
				    : sr ? reply_empty(r, 500) : reply_empty(r, 200);
	} else if (n == 2 && strcmp(s[1], "assignedTargets") == 0 && req_method(r, "POST"))
		ret = mgmt_assign(r, s[0], false);
	else
		ret = reply_error(r, 404, MGMT_NOT_FOUND, "no such resource");
	store_ds_clear(&d);
	return ret;
}
