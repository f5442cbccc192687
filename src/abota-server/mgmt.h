/* mgmt.h - internals of the management API (/rest/v1): mgmt.c (auth,
 * dispatch, shared helpers, tenant configuration), mgmt_json.c (hawkBit's
 * JSON representations), mgmt_target.c (targets, actions, assignment),
 * mgmt_repo.c (software modules, artifacts, distribution sets). */
#ifndef ABOTA_SERVER_MGMT_H
#define ABOTA_SERVER_MGMT_H

#include "server.h"

#define MAX_NAME 128
#define MAX_TEXT 512
#define MAX_TOKEN 128
#define MGMT_NOT_FOUND "hawkbit.server.error.repo.entitiyNotFound"
#define MGMT_BAD_BODY "hawkbit.server.error.rest.body.notReadable"

enum MHD_Result mgmt_not_found(struct request *r, const char *what, const char *id);
/* Optional string member with a length limit; *ok false after answering. */
const char *mgmt_opt_str(struct request *r, json_object *o, const char *key, size_t max,
			 bool required, bool *ok);
void mgmt_paging(struct request *r, int64_t *offset, int64_t *limit, bool *bad);
/* {"content", "total", "size"}; takes content. */
json_object *mgmt_paged(json_object *content, int64_t total);
/* controllerId as a path segment: 1-256 characters, no whitespace or slashes */
bool mgmt_id_ok(const char *s);

json_object *mgmt_target_json(struct request *r, const struct store_target *t);
json_object *mgmt_sm_json(struct request *r, const struct store_sm *m);
json_object *mgmt_ds_json(struct request *r, const struct store_ds *d);
json_object *mgmt_action_json(struct request *r, const struct store_action *a);
json_object *mgmt_status_json(const struct store_status *s);

/* POST .../assignedDS (by_target: path names the target) or
 * .../assignedTargets (path names the distribution set). */
enum MHD_Result mgmt_assign(struct request *r, const char *path_id, bool by_target);
enum MHD_Result mgmt_actions_list(struct request *r, int64_t target_id);
enum MHD_Result mgmt_targets(struct request *r, size_t n, char **s);
enum MHD_Result mgmt_softwaremodules(struct request *r, size_t n, char **s);
enum MHD_Result mgmt_distributionsets(struct request *r, size_t n, char **s);
enum MHD_Result mgmt_configs(struct request *r, const char *key);

#endif
