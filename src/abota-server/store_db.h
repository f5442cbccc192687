/* store_db.h - internals shared by the store's modules (store.c: the
 * connection, schema and statement helpers, config and users;
 * store_target.c, store_repo.c, store_action.c, store_rollout.c).  Every
 * db_* helper expects the caller to hold s->lock. */
#ifndef ABOTA_SERVER_STORE_DB_H
#define ABOTA_SERVER_STORE_DB_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

/* Pending poll bookkeeping, flushed once a second. */
struct touch {
	int64_t id, when;
	char ip[64];
};
#define TOUCH_MAX 65536
#define TOUCH_SLOTS (2 * TOUCH_MAX) /* power of two: open addressing by id */

/* Prepared statements, kept per SQL text (static strings: the pointer is
 * the key), because preparing costs more than running the simple queries of
 * a poll. */
#define STMT_CACHE 160
struct stmt_slot {
	const char *sql;
	sqlite3_stmt *st;
};

/* Tenant configuration mirrored in memory: read on every poll, rarely set. */
#define CONFIG_CACHE 32
struct config_slot {
	char *key, *value;
};

struct store {
	sqlite3 *db;
	struct stmt_slot stmts[STMT_CACHE];
	size_t n_stmts;
	struct config_slot config[CONFIG_CACHE];
	size_t n_config;
	bool config_loaded;
	int32_t *touch_slot; /* hash of target id -> index in touches, -1 = free */
	pthread_mutex_t lock;
	pthread_mutex_t touch_lock;
	struct touch *touches;
	size_t n_touches;
};

int db_fail(struct store *s, const char *what);
int db_exec(struct store *s, const char *sql);
/* Statements on SQL built at run time: never cached. */
sqlite3_stmt *db_prep_dyn(struct store *s, const char *sql);
/* sql must be a string literal (its address is the cache key). */
sqlite3_stmt *db_prep(struct store *s, const char *sql);
/* Resets a cached statement, finalizes any other. */
void db_release(struct store *s, sqlite3_stmt *st);
void db_bind_text(sqlite3_stmt *st, int i, const char *v); /* NULL binds NULL */
void db_bind_id(sqlite3_stmt *st, int i, int64_t v);       /* 0 binds NULL */
char *db_col_dup(sqlite3_stmt *st, int i);
void db_col_copy(sqlite3_stmt *st, int i, char *dst, size_t size);
/* Runs a statement that returns no rows. */
int db_step_done(struct store *s, sqlite3_stmt *st, const char *what);
int db_begin(struct store *s);
/* Commits when ret is 0, else rolls back; returns ret (or the commit error). */
int db_finish(struct store *s, int ret);
/* SELECT COUNT(*) with one parameter: arg1 (text) if set, else id if non-zero. */
int db_count(struct store *s, const char *sql, const char *arg1, int64_t id, int64_t *total);
/* One page of a list: steps st (parameters bound) and fills a new array of
 * up to limit elements of elem_size bytes, one per row, with row(); then
 * releases st.  *v and *n are set even on failure, to the rows filled so
 * far, so that the caller frees them with its list's own free function. */
int db_collect(struct store *s, sqlite3_stmt *st, int64_t limit, size_t elem_size,
	       int (*row)(struct store *s, sqlite3_stmt *st, void *elem), void **v, size_t *n);
/* A statement with up to three integer parameters (b: bound when non-zero). */
int db_run(struct store *s, const char *sql, int64_t a, int64_t b, const int64_t *c);
int db_add_status(struct store *s, int64_t action_id, const char *type, const int *code,
		  const char *messages, int64_t timestamp);
/* store_action.c: assignment inside an open transaction (rollouts use it). */
int db_assign_locked(struct store *s, int64_t ds_id, const struct store_assign *a,
		     int64_t *action_id, bool *already);
/* store_target.c: slot of a target id in the touch table (touch_lock held). */
int32_t *db_touch_lookup(struct store *s, int64_t id);

#endif
