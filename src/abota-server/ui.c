/* ui.c - what the web UI needs beyond hawkBit's management API: rollouts
 * (assign a distribution set to devices a group at a time, stop when too
 * many fail).  Operators only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define MAX_ROLLOUT_TARGETS 100000

static enum MHD_Result create(struct request *r)
{
	json_object *body = req_json_body(r, json_type_object), *v, *tl;
	if (!body)
		return MHD_YES;
	enum MHD_Result ret;
	const char **ids = NULL;
	size_t n = 0;
	int64_t ds = 0;
	int group = 0, thr = 100;
	const char *type = "forced";
	if (!json_object_object_get_ex(body, "distributionSetId", &v) ||
	    !json_object_is_type(v, json_type_int) || (ds = json_object_get_int64(v)) <= 0) {
		ret = reply_error(r, 400, "hawkbit.server.error.rest.body.notReadable",
				  "rollout: distributionSetId (integer) is required");
		goto out;
	}
	if (json_object_object_get_ex(body, "type", &v)) {
		type = json_object_get_string(v);
		if (!json_object_is_type(v, json_type_string) ||
		    (strcmp(type, "forced") && strcmp(type, "soft") && strcmp(type, "downloadonly"))) {
			ret = reply_error(r, 400, "hawkbit.server.error.rest.body.notReadable",
					  "rollout: type must be forced, soft or downloadonly");
			goto out;
		}
	}
	if (!json_object_object_get_ex(body, "targets", &tl) ||
	    !json_object_is_type(tl, json_type_array) || json_object_array_length(tl) == 0 ||
	    json_object_array_length(tl) > MAX_ROLLOUT_TARGETS) {
		ret = reply_error(r, 400, "hawkbit.server.error.rest.body.notReadable",
				  "rollout: targets must be a non-empty array of controller ids");
		goto out;
	}
	n = json_object_array_length(tl);
	ids = calloc(n, sizeof(*ids));
	if (!ids) {
		ret = reply_empty(r, 500);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(tl, i);
		if (!json_object_is_type(e, json_type_string)) {
			ret = reply_error(r, 400, "hawkbit.server.error.rest.body.notReadable",
					  "rollout: targets[%zu] must be a string", i);
			goto out;
		}
		ids[i] = json_object_get_string(e);
	}
	/* groupSize: "25%" of the targets, or a count; default all at once */
	group = (int)n;
	if (json_object_object_get_ex(body, "groupSize", &v)) {
		const char *g = json_object_get_string(v);
		char *end = NULL;
		long x = g ? strtol(g, &end, 10) : -1;
		bool pct = end && *end == '%' && end[1] == '\0';
		if (!g || !end || end == g || (*end && !pct) || x < 1 || (pct && x > 100) ||
		    x > MAX_ROLLOUT_TARGETS) {
			ret = reply_error(r, 400, "hawkbit.server.error.rest.body.notReadable",
					  "rollout: groupSize is a count (5) or a percentage (10%%)");
			goto out;
		}
		group = pct ? (int)(((long)n * x + 99) / 100) : (int)x;
		if (group < 1)
			group = 1;
	}
	if (json_object_object_get_ex(body, "errorThreshold", &v)) {
		if (!json_object_is_type(v, json_type_int) || json_object_get_int(v) < 0 ||
		    json_object_get_int(v) > 100) {
			ret = reply_error(r, 400, "hawkbit.server.error.rest.body.notReadable",
					  "rollout: errorThreshold is a percentage, 0 to 100");
			goto out;
		}
		thr = json_object_get_int(v);
	}
	int64_t id = 0;
	int sr = store_rollout_create(r->srv->store, ds, type, group, thr, ids, n, &id);
	if (sr == -ENOENT) {
		ret = reply_error(r, 404, "hawkbit.server.error.repo.entitiyNotFound",
				  "rollout: distribution set or target not found");
		goto out;
	}
	if (sr || store_rollout_tick(r->srv->store)) {
		ret = reply_empty(r, 500);
		goto out;
	}
	json_object *o = json_object_new_object();
	json_add_int(o, "id", id);
	json_add_int(o, "total", (int64_t)n);
	json_add_int(o, "assigned", group < (int)n ? group : (int64_t)n);
	json_add_int(o, "groupSize", group);
	ret = reply_json(r, 201, o);
out:
	free(ids);
	json_object_put(body);
	return ret;
}

static enum MHD_Result list(struct request *r)
{
	struct store_rollout *v = NULL;
	size_t n = 0;
	if (store_rollout_list(r->srv->store, &v, &n) != 0)
		return reply_empty(r, 500);
	json_object *a = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_new_object();
		json_add_int(o, "id", v[i].id);
		json_add_int(o, "distributionSetId", v[i].ds_id);
		json_add_str(o, "distributionSet", v[i].ds_name);
		json_add_str(o, "status", v[i].status);
		json_add_str(o, "type", v[i].type);
		json_add_str(o, "message", v[i].message);
		json_add_int(o, "groupSize", v[i].group_size);
		json_add_int(o, "errorThreshold", v[i].error_threshold);
		json_add_int(o, "total", v[i].total);
		json_add_int(o, "waiting", v[i].waiting);
		json_add_int(o, "running", v[i].running);
		json_add_int(o, "finished", v[i].finished);
		json_add_int(o, "failed", v[i].failed);
		json_add_int(o, "createdAt", v[i].created_at);
		json_add_int(o, "lastModifiedAt", v[i].modified_at);
		json_object_array_add(a, o);
	}
	free(v);
	return reply_json(r, 200, a);
}

enum MHD_Result ui_handle(struct request *r)
{
	if (!auth_operator(r))
		return reply_unauthorized(r, true);
	if (r->n_segs == 3 && strcmp(r->segs[2], "rollouts") == 0) {
		if (req_method(r, "POST"))
			return create(r);
		if (req_method(r, "GET"))
			return list(r);
		return reply_error(r, 405, "hawkbit.server.error.rest.methodNotAllowed", "not allowed");
	}
	return reply_error(r, 404, "hawkbit.server.error.repo.entitiyNotFound", "no such resource");
}
