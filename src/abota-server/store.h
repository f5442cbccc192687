/* store.h - the server's state in SQLite (WAL): targets, software modules,
 * artifacts, distribution sets, actions and their status history, config.
 *
 * One connection behind a mutex: every call is one transaction, committed
 * with synchronous=FULL, so an answered request is on disk.  Only the poll
 * bookkeeping (last seen, address) is batched in memory and flushed once a
 * second (store_flush_touches), because a fleet polling thousands of times a
 * second must not cost one fsync per poll; losing a second of "last seen"
 * on a crash is harmless.
 */
#ifndef ABOTA_SERVER_STORE_H
#define ABOTA_SERVER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abota/error.h"

struct store;

int store_open(const char *path, struct store **out, struct abota_error *err);
void store_close(struct store *s);
int64_t store_now_ms(void);

/* ---- config (tenant configuration keys, string values) ---- */
int store_config_get(struct store *s, const char *key, char **value); /* -ENOENT */
int store_config_set(struct store *s, const char *key, const char *value);
int store_config_delete(struct store *s, const char *key);

/* ---- operators ---- */
int store_user_get(struct store *s, const char *name, char **salt, char **hash);
int store_user_set(struct store *s, const char *name, const char *salt, const char *hash);
int store_user_count(struct store *s, int64_t *n);

/* ---- targets ---- */
struct store_target {
	int64_t id;
	char *controller_id, *name, *description, *token, *address, *ip;
	char *update_status; /* unknown|registered|pending|in_sync|error */
	int64_t created_at, modified_at, last_seen, installed_at;
	int64_t installed_ds, assigned_ds, installed_action; /* 0 = none */
	bool request_attributes;
};
void store_target_clear(struct store_target *t);
int store_target_get(struct store *s, const char *controller_id, struct store_target *out);
int store_target_create(struct store *s, const struct store_target *in, int64_t *id);
int store_target_update(struct store *s, const char *controller_id, const char *name,
			const char *description, const char *token, const char *address,
			int request_attributes /* -1 = keep */);
int store_target_delete(struct store *s, const char *controller_id);
int store_target_list(struct store *s, int64_t offset, int64_t limit, const char *search,
		      struct store_target **out, size_t *n, int64_t *total);
void store_target_list_free(struct store_target *t, size_t n);
/* Poll bookkeeping, batched (see above). */
void store_target_touch(struct store *s, int64_t id, int64_t now, const char *ip);
int store_flush_touches(struct store *s);

struct store_kv {
	char *key, *value;
};
void store_kv_free(struct store_kv *kv, size_t n);
int store_attrs_get(struct store *s, int64_t target_id, struct store_kv **out, size_t *n);
/* mode: "merge", "replace" or "remove".  Clears the request-attributes flag.
 * -E2BIG when the target would have more than max attributes. */
int store_attrs_update(struct store *s, int64_t target_id, const char *mode,
		       const struct store_kv *kv, size_t n, size_t max);

/* ---- software modules and artifacts ---- */
struct store_sm {
	int64_t id;
	char *name, *version, *type, *vendor, *description;
	int64_t created_at, modified_at;
	bool deleted, encrypted, locked;
};
void store_sm_clear(struct store_sm *m);
int store_sm_create(struct store *s, const struct store_sm *in, int64_t *id);
int store_sm_get(struct store *s, int64_t id, struct store_sm *out);
int store_sm_list(struct store *s, int64_t offset, int64_t limit, struct store_sm **out,
		  size_t *n, int64_t *total);
void store_sm_list_free(struct store_sm *m, size_t n);
/* Soft delete when a distribution set uses it (as hawkBit), else removal. */
int store_sm_delete(struct store *s, int64_t id);

struct store_artifact {
	int64_t id, sm_id, size, created_at;
	char *filename;
	char sha1[41], md5[33], sha256[65];
	/* Set when the artifact is a verified bundle: */
	char *compatible, *version, *signer, *format;
};
void store_artifact_clear(struct store_artifact *a);
int store_artifact_create(struct store *s, const struct store_artifact *in, int64_t *id);
int store_artifact_get(struct store *s, int64_t sm_id, int64_t id, struct store_artifact *out);
int store_artifact_find(struct store *s, int64_t sm_id, const char *filename,
			struct store_artifact *out);
int store_artifact_list(struct store *s, int64_t sm_id, struct store_artifact **out, size_t *n);
void store_artifact_list_free(struct store_artifact *a, size_t n);
/* Deletes the row; *blob_unused tells whether no other artifact shares
 * the blob (so the caller may remove the file). */
int store_artifact_delete(struct store *s, int64_t sm_id, int64_t id, char sha256_out[65],
			  bool *blob_unused);
/* Calls fn for every sha256 referenced (startup clean-up of orphan blobs). */
int store_artifact_blob_referenced(struct store *s, const char *sha256, bool *referenced);

/* ---- distribution sets ---- */
struct store_ds {
	int64_t id;
	char *name, *version, *type, *description;
	int64_t created_at, modified_at;
	bool deleted, locked, required_migration;
	int64_t *modules;
	size_t n_modules;
};
void store_ds_clear(struct store_ds *d);
/* -ENOENT when a module does not exist, -EEXIST for a duplicate name+version */
int store_ds_create(struct store *s, const struct store_ds *in, int64_t *id);
int store_ds_get(struct store *s, int64_t id, struct store_ds *out);
int store_ds_list(struct store *s, int64_t offset, int64_t limit, struct store_ds **out,
		  size_t *n, int64_t *total);
void store_ds_list_free(struct store_ds *d, size_t n);
int store_ds_delete(struct store *s, int64_t id);

/* ---- actions ---- */
struct store_action {
	int64_t id, target_id, ds_id, created_at, modified_at, forcetime, rollout_id;
	int weight;
	int last_code;
	bool has_last_code, active;
	char type[16];   /* soft|forced|timeforced|downloadonly */
	char status[24]; /* running|canceling|canceled|finished|error|downloaded|... */
	char controller_id[257];
	char mw_schedule[256], mw_duration[12], mw_timezone[8]; /* "" = no window */
};
struct store_assign {
	const char *controller_id;
	const char *type;
	int64_t forcetime;
	int weight;
	int64_t rollout_id;
	/* maintenance window (validated by mwindow_parse), or all NULL */
	const char *mw_schedule, *mw_duration, *mw_timezone;
};
/* Creates the action (older active actions of the target go to canceling,
 * as hawkBit without autoclose).  *already: the DS was already assigned
 * with an active action (nothing created, *action_id = that action). */
int store_assign(struct store *s, int64_t ds_id, const struct store_assign *a,
		 int64_t *action_id, bool *already);
int store_action_get(struct store *s, int64_t id, struct store_action *out);
/* The action a device should act on: highest weight, then oldest. -ENOENT */
int store_action_active(struct store *s, int64_t target_id, struct store_action *out);
int store_action_list(struct store *s, int64_t target_id /* 0 = all */, int64_t offset,
		      int64_t limit, bool desc, struct store_action **out, size_t *n,
		      int64_t *total);
/* Operator cancel: running -> canceling; force: -> canceled, closed. */
int store_action_cancel(struct store *s, int64_t id, bool force);
/* Marks the first deploymentBase retrieval (returns whether it was the first). */
int store_action_mark_retrieved(struct store *s, int64_t id, bool *first);

struct store_status {
	int64_t id, action_id, reported_at, timestamp;
	char type[24];
	int code;
	bool has_code;
	char *messages; /* JSON array text */
};
void store_status_list_free(struct store_status *st, size_t n);
int store_status_list(struct store *s, int64_t action_id, int64_t offset, int64_t limit,
		      bool desc, struct store_status **out, size_t *n, int64_t *total);
int store_status_count(struct store *s, int64_t action_id, int64_t *n);

/* One state change from device feedback, applied in one transaction. */
struct store_transition {
	const char *status_type;  /* entry recorded: finished|error|running|canceled|... */
	const char *new_status;   /* the action's new status, NULL = unchanged */
	int close;                /* 1: action becomes inactive */
	const char *target_update_status; /* NULL = unchanged */
	bool installed;           /* the DS becomes the target's installed DS */
	bool request_attributes;  /* ask the device for its attributes again */
};
/* -ESTALE: the action was closed meanwhile (nothing recorded). */
int store_action_apply(struct store *s, int64_t action_id, const struct store_transition *t,
		       const int *code, const char *messages_json, int64_t timestamp);
/* PUT installedBase: the device reports that it runs distribution set
 * name/version (installed offline, or what it fell back to).  *created: a
 * closed "finished" action was recorded (false: it was already the installed
 * set).  -ENOENT: no such distribution set. */
int store_installed_base(struct store *s, int64_t target_id, const char *name,
			 const char *version, bool *created);

/* A status entry without state change (retrieved, download). */
int store_action_note(struct store *s, int64_t action_id, const char *type,
		      const char *messages_json);

/* ---- rollouts: groups of targets assigned one after the other ---- */
struct store_rollout {
	int64_t id, ds_id, created_at, modified_at;
	int group_size, error_threshold; /* targets per group; stop above this failure % */
	char status[16];                 /* running|stopped|finished */
	char type[16];
	char message[200];
	char ds_name[300];
	int64_t total, waiting, running, finished, failed;
};
/* -ENOENT when the distribution set or one of the targets does not exist. */
int store_rollout_create(struct store *s, int64_t ds_id, const char *type, int group_size,
			 int error_threshold, const char *const *targets, size_t n, int64_t *id);
int store_rollout_list(struct store *s, struct store_rollout **out, size_t *n);
/* Advances every running rollout: stops it when the share of failed actions
 * among the closed ones exceeds its threshold, else assigns the next group
 * once no action of the rollout is open.  Called once a second and after
 * feedback. */
int store_rollout_tick(struct store *s);

#endif
