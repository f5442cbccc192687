/* mgmt_json.c - hawkBit management API representations of the store's
 * records (MgmtTarget, MgmtSoftwareModule, MgmtArtifact, ...). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mgmt.h"

/* ---------------- JSON representations ---------------- */

json_object *mgmt_target_json(struct request *r, const struct store_target *t)
{
	char base[1100];
	req_base_url(r, base, sizeof(base));
	json_object *o = json_object_new_object(), *l = json_object_new_object();
	json_add_str(o, "controllerId", t->controller_id);
	json_add_str(o, "name", t->name);
	json_add_str(o, "description", t->description ? t->description : "");
	json_add_str(o, "updateStatus", t->update_status);
	json_add_str(o, "securityToken", t->token);
	json_add_bool(o, "requestAttributes", t->request_attributes);
	json_add_int(o, "createdAt", t->created_at);
	json_add_str(o, "createdBy", "system");
	json_add_int(o, "lastModifiedAt", t->modified_at);
	json_add_str(o, "lastModifiedBy", "system");
	json_add_bool(o, "autoConfirmActive", false);
	if (t->address)
		json_add_str(o, "address", t->address);
	if (t->ip && t->ip[0]) {
		json_add_str(o, "ipAddress", t->ip);
		if (!t->address) {
			char a[128];
			snprintf(a, sizeof(a), "http://%s", t->ip);
			json_add_str(o, "address", a);
		}
	}
	if (t->installed_at)
		json_add_int(o, "installedAt", t->installed_at);
	if (t->last_seen) {
		json_object *ps = json_object_new_object();
		json_add_int(o, "lastControllerRequestAt", t->last_seen);
		json_add_int(ps, "lastRequestAt", t->last_seen);
		json_add_int(ps, "nextExpectedRequestAt", t->last_seen + 5 * 60 * 1000);
		json_add_bool(ps, "overdue", store_now_ms() > t->last_seen + 10 * 60 * 1000);
		json_object_object_add(o, "pollStatus", ps);
	}
	json_add_link(l, "self", "%s/rest/v1/targets/%s", base, t->controller_id);
	json_add_link(l, "assignedDS", "%s/rest/v1/targets/%s/assignedDS", base, t->controller_id);
	json_add_link(l, "installedDS", "%s/rest/v1/targets/%s/installedDS", base, t->controller_id);
	json_add_link(l, "attributes", "%s/rest/v1/targets/%s/attributes", base, t->controller_id);
	json_add_link(l, "actions", "%s/rest/v1/targets/%s/actions?offset=0&limit=50&sort=id%%3ADESC",
		      base, t->controller_id);
	json_object_object_add(o, "_links", l);
	return o;
}

json_object *mgmt_sm_json(struct request *r, const struct store_sm *m)
{
	char base[1100];
	req_base_url(r, base, sizeof(base));
	json_object *o = json_object_new_object(), *l = json_object_new_object();
	json_add_int(o, "id", m->id);
	json_add_str(o, "name", m->name);
	json_add_str(o, "version", m->version);
	json_add_str(o, "type", m->type);
	json_add_str(o, "typeName", strcmp(m->type, "os") == 0 ? "OS" : m->type);
	json_add_str(o, "vendor", m->vendor ? m->vendor : "");
	json_add_str(o, "description", m->description ? m->description : "");
	json_add_bool(o, "deleted", m->deleted);
	json_add_bool(o, "encrypted", m->encrypted);
	json_add_bool(o, "locked", m->locked);
	json_add_int(o, "createdAt", m->created_at);
	json_add_str(o, "createdBy", "system");
	json_add_int(o, "lastModifiedAt", m->modified_at);
	json_add_str(o, "lastModifiedBy", "system");
	json_add_link(l, "self", "%s/rest/v1/softwaremodules/%lld", base, (long long)m->id);
	json_add_link(l, "artifacts", "%s/rest/v1/softwaremodules/%lld/artifacts", base,
		      (long long)m->id);
	json_object_object_add(o, "_links", l);
	return o;
}

json_object *mgmt_artifact_json(struct request *r, const struct store_artifact *a)
{
	char base[1100];
	req_base_url(r, base, sizeof(base));
	json_object *o = json_object_new_object(), *h = json_object_new_object(),
		    *l = json_object_new_object();
	json_add_int(o, "id", a->id);
	json_add_str(o, "providedFilename", a->filename);
	json_add_int(o, "size", a->size);
	json_add_str(h, "sha1", a->sha1);
	json_add_str(h, "md5", a->md5);
	json_add_str(h, "sha256", a->sha256);
	json_object_object_add(o, "hashes", h);
	json_add_int(o, "createdAt", a->created_at);
	json_add_str(o, "createdBy", "system");
	json_add_int(o, "lastModifiedAt", a->created_at);
	json_add_str(o, "lastModifiedBy", "system");
	if (a->format) {
		/* abota's addition: what the verified bundle says about itself */
		json_object *b = json_object_new_object();
		json_add_str(b, "compatible", a->compatible);
		json_add_str(b, "version", a->version);
		json_add_str(b, "signer", a->signer);
		json_add_str(b, "format", a->format);
		json_object_object_add(o, "bundle", b);
	}
	json_add_link(l, "self", "%s/rest/v1/softwaremodules/%lld/artifacts/%lld", base,
		      (long long)a->sm_id, (long long)a->id);
	json_object_object_add(o, "_links", l);
	return o;
}

json_object *mgmt_ds_json(struct request *r, const struct store_ds *d)
{
	char base[1100];
	req_base_url(r, base, sizeof(base));
	json_object *o = json_object_new_object(), *l = json_object_new_object(),
		    *mods = json_object_new_array();
	json_add_int(o, "id", d->id);
	json_add_str(o, "name", d->name);
	json_add_str(o, "version", d->version);
	json_add_str(o, "type", d->type);
	json_add_str(o, "typeName", strcmp(d->type, "os") == 0 ? "OS only" : d->type);
	json_add_str(o, "description", d->description ? d->description : "");
	json_add_bool(o, "deleted", d->deleted);
	json_add_bool(o, "locked", d->locked);
	json_add_bool(o, "complete", d->n_modules > 0);
	json_add_bool(o, "valid", true);
	json_add_bool(o, "requiredMigrationStep", d->required_migration);
	json_add_int(o, "createdAt", d->created_at);
	json_add_str(o, "createdBy", "system");
	json_add_int(o, "lastModifiedAt", d->modified_at);
	json_add_str(o, "lastModifiedBy", "system");
	for (size_t i = 0; i < d->n_modules; i++) {
		struct store_sm m;
		if (store_sm_get(r->srv->store, d->modules[i], &m) == 0) {
			json_object_array_add(mods, mgmt_sm_json(r, &m));
			store_sm_clear(&m);
		}
	}
	json_object_object_add(o, "modules", mods);
	json_add_link(l, "self", "%s/rest/v1/distributionsets/%lld", base, (long long)d->id);
	json_object_object_add(o, "_links", l);
	return o;
}

json_object *mgmt_action_json(struct request *r, const struct store_action *a)
{
	char base[1100];
	req_base_url(r, base, sizeof(base));
	json_object *o = json_object_new_object(), *l = json_object_new_object();
	json_add_int(o, "id", a->id);
	bool cancel = strcmp(a->status, "canceling") == 0 || strcmp(a->status, "canceled") == 0;
	json_add_str(o, "type", cancel ? "cancel" : "update");
	/* the action status in lower case, as hawkBit (and the rauc-hawkbit-updater
	 * harness, which asserts "canceled", "error", "downloaded") */
	json_add_str(o, "status", a->status);
	json_add_str(o, "detailStatus", a->status);
	json_add_str(o, "forceType", a->type);
	if (a->forcetime)
		json_add_int(o, "forceTime", a->forcetime);
	json_add_int(o, "weight", a->weight);
	if (a->has_last_code)
		json_add_int(o, "lastStatusCode", a->last_code);
	if (a->rollout_id)
		json_add_int(o, "rollout", a->rollout_id);
	json_add_int(o, "createdAt", a->created_at);
	json_add_str(o, "createdBy", "system");
	json_add_int(o, "lastModifiedAt", a->modified_at);
	json_add_str(o, "lastModifiedBy", "system");
	json_add_link(l, "self", "%s/rest/v1/targets/%s/actions/%lld", base, a->controller_id,
		      (long long)a->id);
	json_add_link(l, "target", "%s/rest/v1/targets/%s", base, a->controller_id);
	json_add_link(l, "distributionset", "%s/rest/v1/distributionsets/%lld", base,
		      (long long)a->ds_id);
	json_add_link(l, "status",
		      "%s/rest/v1/targets/%s/actions/%lld/status?offset=0&limit=50&sort=id%%3ADESC",
		      base, a->controller_id, (long long)a->id);
	json_object_object_add(o, "_links", l);
	return o;
}

json_object *mgmt_status_json(const struct store_status *s)
{
	json_object *o = json_object_new_object();
	json_add_int(o, "id", s->id);
	json_add_str(o, "type", s->type);
	json_object *m = json_tokener_parse(s->messages);
	json_object_object_add(o, "messages",
			       m && json_object_is_type(m, json_type_array) ? m
									      : json_object_new_array());
	if (m && !json_object_is_type(m, json_type_array))
		json_object_put(m);
	json_add_int(o, "reportedAt", s->reported_at);
	json_add_int(o, "timestamp", s->timestamp);
	if (s->has_code)
		json_add_int(o, "code", s->code);
	return o;
}
