/* mgmt.c - the subset of hawkBit's Management API (/rest/v1) that scripts
 * and the rauc-hawkbit-updater test harness use (hawkbit-ddi.md §1.13,
 * §2.10), with HTTP Basic auth for operators. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mgmt.h"

enum MHD_Result mgmt_not_found(struct request *r, const char *what, const char *id)
{
	return reply_error(r, 404, MGMT_NOT_FOUND, "%s %.80s not found", what, id);
}

/* Optional string member with a length limit; *ok false after answering. */
const char *mgmt_opt_str(struct request *r, json_object *o, const char *key, size_t max,
			   bool required, bool *ok)
{
	json_object *v;
	if (!*ok)
		return NULL;
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
		if (required) {
			reply_error(r, 400, MGMT_BAD_BODY, "'%s' is required", key);
			*ok = false;
		}
		return NULL;
	}
	if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) > (int)max ||
	    (required && json_object_get_string_len(v) == 0)) {
		reply_error(r, 400, MGMT_BAD_BODY, "'%s' must be a string of 1 to %zu characters", key, max);
		*ok = false;
		return NULL;
	}
	return json_object_get_string(v);
}

void mgmt_paging(struct request *r, int64_t *offset, int64_t *limit, bool *bad)
{
	*offset = arg_int(r, "offset", 0, 0, INT32_MAX, bad);
	*limit = arg_int(r, "limit", 50, 1, 500, bad);
}

json_object *mgmt_paged(json_object *content, int64_t total)
{
	json_object *o = json_object_new_object();
	json_add_int(o, "size", (int64_t)json_object_array_length(content));
	json_add_int(o, "total", total);
	json_object_object_add(o, "content", content);
	return o;
}

bool mgmt_id_ok(const char *s)
{
	if (!s || !*s || strlen(s) > 256)
		return false;
	for (const char *p = s; *p; p++)
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '/' || *p == '\\')
			return false;
	return true;
}

/* ---------------- tenant configuration ---------------- */

struct cfg_key {
	const char *key;
	bool boolean;
	const char *def;
};
static const struct cfg_key cfg_keys[] = {
	{"pollingTime", false, "00:05:00"},
	{"pollingOverdueTime", false, "00:05:00"},
	{"authentication.targettoken.enabled", true, "true"},
	{"authentication.gatewaytoken.enabled", true, "false"},
	{"authentication.gatewaytoken.key", false, ""},
	{"authentication.header.enabled", true, "false"},
	{"authentication.header.authority", false, ""},
	{"repository.actions.autoclose.enabled", true, "false"},
	{"user.confirmation.flow.enabled", true, "false"},
};

/* HH:MM:SS below one day (what SWUpdate and rauc-hawkbit-updater parse) */
static bool polling_ok(const char *v)
{
	unsigned h, m, s;
	char tail;
	return strlen(v) == 8 && sscanf(v, "%2u:%2u:%2u%c", &h, &m, &s, &tail) == 3 && h < 24 &&
	       m < 60 && s < 60 && (h || m || s);
}

enum MHD_Result mgmt_configs(struct request *r, const char *key)
{
	const struct cfg_key *k = NULL;
	for (size_t i = 0; i < sizeof(cfg_keys) / sizeof(cfg_keys[0]); i++)
		if (strcmp(cfg_keys[i].key, key) == 0)
			k = &cfg_keys[i];
	if (!k)
		return reply_error(r, 404, "hawkbit.server.error.configValue.notFound",
				   "configuration key %.80s not supported", key);
	if (req_method(r, "PUT")) {
		json_object *body = req_json_body(r, json_type_object), *v;
		if (!body)
			return MHD_YES;
		enum MHD_Result ret = MHD_YES;
		bool stored = false;
		char val[256];
		if (!json_object_object_get_ex(body, "value", &v) ||
		    (k->boolean && !json_object_is_type(v, json_type_boolean)) ||
		    (!k->boolean && !json_object_is_type(v, json_type_string)) ||
		    json_object_get_string_len(v) > 200) {
			ret = reply_error(r, 400, "hawkbit.server.error.configValue.invalid",
					  "%s: 'value' must be a %s", key, k->boolean ? "boolean" : "string");
		} else {
			snprintf(val, sizeof(val), "%s", json_object_get_string(v));
			if ((!strcmp(key, "pollingTime") || !strcmp(key, "pollingOverdueTime")) &&
			    !polling_ok(val))
				ret = reply_error(r, 400, "hawkbit.server.error.configValue.invalid",
						  "%s: HH:MM:SS, more than zero and below one day", key);
			else if (store_config_set(r->srv->store, key, val) != 0)
				ret = reply_empty(r, 500);
			else
				stored = true; /* answered with the new value below */
		}
		json_object_put(body);
		if (!stored)
			return ret;
	} else if (req_method(r, "DELETE")) {
		return store_config_delete(r->srv->store, key) ? reply_empty(r, 500)
								: reply_empty(r, 200);
	} else if (!req_method(r, "GET")) {
		return reply_error(r, 405, "hawkbit.server.error.rest.methodNotAllowed", "not allowed");
	}
	char *v = NULL;
	bool global = store_config_get(r->srv->store, key, &v) != 0;
	const char *val = v ? v : k->def;
	json_object *o = json_object_new_object();
	if (k->boolean)
		json_add_bool(o, "value", strcmp(val, "true") == 0);
	else
		json_add_str(o, "value", val);
	json_add_bool(o, "global", global);
	free(v);
	return reply_json(r, 200, o);
}

enum MHD_Result mgmt_handle(struct request *r)
{
	if (!auth_operator(r))
		return reply_unauthorized(r, true);
	size_t n = r->n_segs - 2;
	char **s = r->segs + 2;
	if (n >= 1 && strcmp(s[0], "targets") == 0)
		return mgmt_targets(r, n - 1, s + 1);
	if (n >= 1 && strcmp(s[0], "softwaremodules") == 0)
		return mgmt_softwaremodules(r, n - 1, s + 1);
	if (n >= 1 && strcmp(s[0], "distributionsets") == 0)
		return mgmt_distributionsets(r, n - 1, s + 1);
	if (n == 1 && strcmp(s[0], "actions") == 0 && req_method(r, "GET"))
		return mgmt_actions_list(r, 0);
	if (n == 3 && strcmp(s[0], "system") == 0 && strcmp(s[1], "configs") == 0)
		return mgmt_configs(r, s[2]);
	return reply_error(r, 404, MGMT_NOT_FOUND, "no such resource");
}
