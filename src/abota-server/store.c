/* store.c - the server's SQLite database: connection, schema, statement
 * helpers, tenant configuration and operators (see store.h). */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abota/log.h"
#include "store_db.h"
#include <time.h>

static const char *schema =
	"CREATE TABLE IF NOT EXISTS config(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS users(name TEXT PRIMARY KEY, salt TEXT NOT NULL,"
	" hash TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS targets(id INTEGER PRIMARY KEY,"
	" controller_id TEXT UNIQUE NOT NULL, name TEXT NOT NULL, description TEXT,"
	" token TEXT NOT NULL, address TEXT, ip TEXT, update_status TEXT NOT NULL,"
	" created_at INTEGER NOT NULL, modified_at INTEGER NOT NULL, last_seen INTEGER,"
	" installed_at INTEGER, installed_ds INTEGER, assigned_ds INTEGER,"
	" installed_action INTEGER, request_attributes INTEGER NOT NULL DEFAULT 1);"
	"CREATE UNIQUE INDEX IF NOT EXISTS targets_token ON targets(token);"
	"CREATE TABLE IF NOT EXISTS attributes(target_id INTEGER NOT NULL, key TEXT NOT NULL,"
	" value TEXT NOT NULL, PRIMARY KEY(target_id, key));"
	"CREATE TABLE IF NOT EXISTS modules(id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
	" version TEXT NOT NULL, type TEXT NOT NULL, vendor TEXT, description TEXT,"
	" created_at INTEGER NOT NULL, modified_at INTEGER NOT NULL,"
	" deleted INTEGER NOT NULL DEFAULT 0, encrypted INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS artifacts(id INTEGER PRIMARY KEY, module_id INTEGER NOT NULL,"
	" filename TEXT NOT NULL, size INTEGER NOT NULL, sha1 TEXT NOT NULL, md5 TEXT NOT NULL,"
	" sha256 TEXT NOT NULL, created_at INTEGER NOT NULL, compatible TEXT, version TEXT,"
	" signer TEXT, format TEXT, UNIQUE(module_id, filename));"
	"CREATE TABLE IF NOT EXISTS dsets(id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
	" version TEXT NOT NULL, type TEXT NOT NULL, description TEXT,"
	" created_at INTEGER NOT NULL, modified_at INTEGER NOT NULL,"
	" required_migration INTEGER NOT NULL DEFAULT 0, deleted INTEGER NOT NULL DEFAULT 0,"
	" locked INTEGER NOT NULL DEFAULT 0);"
	"CREATE UNIQUE INDEX IF NOT EXISTS dsets_nv ON dsets(name, version) WHERE deleted = 0;"
	"CREATE TABLE IF NOT EXISTS ds_modules(ds_id INTEGER NOT NULL, module_id INTEGER NOT NULL,"
	" PRIMARY KEY(ds_id, module_id));"
	"CREATE TABLE IF NOT EXISTS actions(id INTEGER PRIMARY KEY, target_id INTEGER NOT NULL,"
	" ds_id INTEGER NOT NULL, type TEXT NOT NULL, status TEXT NOT NULL,"
	" active INTEGER NOT NULL, weight INTEGER NOT NULL DEFAULT 0, forcetime INTEGER,"
	" rollout_id INTEGER, created_at INTEGER NOT NULL, modified_at INTEGER NOT NULL,"
	" last_code INTEGER, retrieved INTEGER NOT NULL DEFAULT 0, mw_schedule TEXT,"
	" mw_duration TEXT, mw_timezone TEXT);"
	"CREATE INDEX IF NOT EXISTS actions_target ON actions(target_id, active);"
	"CREATE TABLE IF NOT EXISTS action_status(id INTEGER PRIMARY KEY,"
	" action_id INTEGER NOT NULL, type TEXT NOT NULL, reported_at INTEGER NOT NULL,"
	" timestamp INTEGER NOT NULL, code INTEGER, messages TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS status_action ON action_status(action_id);"
	"CREATE TABLE IF NOT EXISTS rollouts(id INTEGER PRIMARY KEY, ds_id INTEGER NOT NULL,"
	" type TEXT NOT NULL, group_size INTEGER NOT NULL, error_threshold INTEGER NOT NULL,"
	" status TEXT NOT NULL, message TEXT, created_at INTEGER NOT NULL,"
	" modified_at INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS rollout_targets(rollout_id INTEGER NOT NULL,"
	" pos INTEGER NOT NULL, controller_id TEXT NOT NULL, action_id INTEGER,"
	" PRIMARY KEY(rollout_id, pos));";

int64_t store_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int db_fail(struct store *s, const char *what)
{
	log_error("store: %s: %s", what, sqlite3_errmsg(s->db));
	int ext = sqlite3_extended_errcode(s->db);
	if ((ext & 0xff) == SQLITE_CONSTRAINT)
		return -EEXIST;
	if ((ext & 0xff) == SQLITE_FULL)
		return -ENOSPC;
	return -EIO;
}

int db_exec(struct store *s, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_error("store: %s: %s", sql, msg ? msg : "?");
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

/* Statements on SQL built at run time: never cached. */
sqlite3_stmt *db_prep_dyn(struct store *s, const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_error("store: prepare %s: %s", sql, sqlite3_errmsg(s->db));
		return NULL;
	}
	return st;
}

/* sql must be a string literal (its address is the cache key). */
sqlite3_stmt *db_prep(struct store *s, const char *sql)
{
	for (size_t i = 0; i < s->n_stmts; i++)
		if (s->stmts[i].sql == sql)
			return s->stmts[i].st;
	sqlite3_stmt *st = db_prep_dyn(s, sql);
	if (st && s->n_stmts < STMT_CACHE) {
		s->stmts[s->n_stmts].sql = sql;
		s->stmts[s->n_stmts].st = st;
		s->n_stmts++;
	}
	return st;
}

void db_release(struct store *s, sqlite3_stmt *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < s->n_stmts; i++) {
		if (s->stmts[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return;
		}
	}
	sqlite3_finalize(st);
}

void db_bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

void db_bind_id(sqlite3_stmt *st, int i, int64_t v)
{
	if (v)
		sqlite3_bind_int64(st, i, v);
	else
		sqlite3_bind_null(st, i);
}

char *db_col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? strdup((const char *)t) : NULL;
}

void db_col_copy(sqlite3_stmt *st, int i, char *dst, size_t size)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	snprintf(dst, size, "%s", t ? (const char *)t : "");
}

/* Runs a statement that returns no rows. */
int db_step_done(struct store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		return db_fail(s, what);
	return 0;
}

int db_begin(struct store *s)
{
	return db_exec(s, "BEGIN IMMEDIATE");
}

int db_finish(struct store *s, int ret)
{
	if (ret == 0)
		return db_exec(s, "COMMIT");
	db_exec(s, "ROLLBACK");
	return ret;
}

int store_open(const char *path, struct store **out, struct abota_error *err)
{
	struct store *s = calloc(1, sizeof(*s));
	int ret = 0;
	if (!s)
		return abota_error_set(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->touch_lock, NULL);
	s->touches = calloc(TOUCH_MAX, sizeof(*s->touches));
	s->touch_slot = malloc(TOUCH_SLOTS * sizeof(*s->touch_slot));
	if (s->touch_slot)
		memset(s->touch_slot, 0xff, TOUCH_SLOTS * sizeof(*s->touch_slot));
	if (!s->touches || !s->touch_slot) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		ret = abota_error_set(err, -EIO, "%s: %s", path,
				      s->db ? sqlite3_errmsg(s->db) : "cannot open");
		goto out;
	}
	sqlite3_busy_timeout(s->db, 5000);
	char *msg = NULL;
	if (sqlite3_exec(s->db,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;",
			 NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(s->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
		ret = abota_error_set(err, -EIO, "%s: %s", path, msg ? msg : "schema failed");
		sqlite3_free(msg);
		goto out;
	}
	/* A quick structural check: refuse to run on a damaged database
	 * instead of answering from it. */
	sqlite3_stmt *st = db_prep(s, "PRAGMA quick_check");
	if (!st || sqlite3_step(st) != SQLITE_ROW ||
	    strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
		ret = abota_error_set(err, -EIO, "%s: database failed its integrity check", path);
		db_release(s, st);
		goto out;
	}
	db_release(s, st);
	*out = s;
	return 0;
out:
	store_close(s);
	return ret;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->db) {
		store_flush_touches(s);
		for (size_t i = 0; i < s->n_stmts; i++)
			sqlite3_finalize(s->stmts[i].st);
		sqlite3_close(s->db);
	}
	for (size_t i = 0; i < s->n_config; i++) {
		free(s->config[i].key);
		free(s->config[i].value);
	}
	free(s->touch_slot);
	free(s->touches);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->touch_lock);
	free(s);
}

int db_count(struct store *s, const char *sql, const char *arg1, int64_t id,
		      int64_t *total)
{
	sqlite3_stmt *st = db_prep(s, sql);
	if (!st)
		return -EIO;
	if (arg1)
		db_bind_text(st, 1, arg1);
	else if (id)
		sqlite3_bind_int64(st, 1, id);
	int ret = -EIO;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*total = sqlite3_column_int64(st, 0);
		ret = 0;
	}
	db_release(s, st);
	return ret;
}

int db_collect(struct store *s, sqlite3_stmt *st, int64_t limit, size_t elem_size,
	       int (*row)(struct store *s, sqlite3_stmt *st, void *elem), void **v, size_t *n)
{
	size_t cnt = 0, max = limit > 0 ? (size_t)limit : 0;
	char *a = calloc(max ? max : 1, elem_size);
	int ret = a ? 0 : -ENOMEM;
	while (ret == 0 && cnt < max && sqlite3_step(st) == SQLITE_ROW) {
		ret = row(s, st, a + cnt * elem_size);
		if (ret == 0)
			cnt++;
	}
	db_release(s, st);
	*v = a;
	*n = cnt;
	return ret;
}

int db_add_status(struct store *s, int64_t action_id, const char *type, const int *code,
		      const char *messages, int64_t timestamp)
{
	int64_t now = store_now_ms();
	sqlite3_stmt *st = db_prep(s, "INSERT INTO action_status(action_id, type, reported_at,"
				   " timestamp, code, messages) VALUES(?, ?, ?, ?, ?, ?)");
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, action_id);
	db_bind_text(st, 2, type);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_int64(st, 4, timestamp ? timestamp : now);
	if (code)
		sqlite3_bind_int(st, 5, *code);
	else
		sqlite3_bind_null(st, 5);
	db_bind_text(st, 6, messages ? messages : "[]");
	int ret = db_step_done(s, st, "status insert");
	db_release(s, st);
	return ret;
}

int db_run(struct store *s, const char *sql, int64_t a, int64_t b, const int64_t *c)
{
	sqlite3_stmt *st = db_prep(s, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, a);
	if (b)
		sqlite3_bind_int64(st, 2, b);
	if (c)
		sqlite3_bind_int64(st, 3, *c);
	int ret = db_step_done(s, st, sql);
	db_release(s, st);
	return ret;
}

/* ---------------- config and users ---------------- */

/* Caller holds the lock. */
static int config_load(struct store *s)
{
	if (s->config_loaded)
		return 0;
	int ret = 0;
	sqlite3_stmt *st = db_prep(s, "SELECT key, value FROM config");
	if (!st)
		return -EIO;
	while (ret == 0 && sqlite3_step(st) == SQLITE_ROW) {
		if (s->n_config == CONFIG_CACHE) {
			ret = -E2BIG;
			break;
		}
		struct config_slot *c = &s->config[s->n_config];
		c->key = db_col_dup(st, 0);
		c->value = db_col_dup(st, 1);
		if (!c->key || !c->value) {
			free(c->key);
			free(c->value);
			ret = -ENOMEM;
			break;
		}
		s->n_config++;
	}
	db_release(s, st);
	s->config_loaded = ret == 0;
	return ret;
}

static struct config_slot *config_find(struct store *s, const char *key)
{
	for (size_t i = 0; i < s->n_config; i++)
		if (strcmp(s->config[i].key, key) == 0)
			return &s->config[i];
	return NULL;
}

int store_config_get(struct store *s, const char *key, char **value)
{
	int ret;
	pthread_mutex_lock(&s->lock);
	ret = config_load(s);
	if (ret == 0) {
		struct config_slot *c = config_find(s, key);
		char *v = c ? strdup(c->value) : NULL;
		ret = !c ? -ENOENT : v ? 0 : -ENOMEM;
		if (v)
			*value = v;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int store_config_set(struct store *s, const char *key, const char *value)
{
	int ret = -EIO;
	pthread_mutex_lock(&s->lock);
	ret = config_load(s);
	struct config_slot *c = ret == 0 ? config_find(s, key) : NULL;
	char *k = NULL, *v = strdup(value);
	if (ret == 0 && (!v || (!c && !(k = strdup(key)))))
		ret = -ENOMEM;
	if (ret == 0 && !c && s->n_config == CONFIG_CACHE)
		ret = -E2BIG;
	sqlite3_stmt *st = NULL;
	if (ret == 0) {
		st = db_prep(s, "INSERT INTO config(key, value) VALUES(?, ?) "
			     "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
		ret = st ? 0 : -EIO;
	}
	if (ret == 0) {
		db_bind_text(st, 1, key);
		db_bind_text(st, 2, value);
		ret = db_step_done(s, st, "config set");
	}
	db_release(s, st);
	if (ret == 0) {
		if (!c) {
			c = &s->config[s->n_config++];
			c->key = k;
			k = NULL;
		} else {
			free(c->value);
		}
		c->value = v;
		v = NULL;
	}
	free(k);
	free(v);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int store_config_delete(struct store *s, const char *key)
{
	int ret;
	pthread_mutex_lock(&s->lock);
	ret = config_load(s);
	sqlite3_stmt *st = ret == 0 ? db_prep(s, "DELETE FROM config WHERE key = ?") : NULL;
	if (ret == 0 && !st)
		ret = -EIO;
	if (ret == 0) {
		db_bind_text(st, 1, key);
		ret = db_step_done(s, st, "config delete");
	}
	db_release(s, st);
	struct config_slot *c = ret == 0 ? config_find(s, key) : NULL;
	if (c) {
		free(c->key);
		free(c->value);
		*c = s->config[--s->n_config];
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int store_user_get(struct store *s, const char *name, char **salt, char **hash)
{
	int ret = -ENOENT;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = db_prep(s, "SELECT salt, hash FROM users WHERE name = ?");
	if (!st) {
		ret = -EIO;
		goto out;
	}
	db_bind_text(st, 1, name);
	if (sqlite3_step(st) == SQLITE_ROW) {
		char *a = db_col_dup(st, 0), *b = db_col_dup(st, 1);
		if (!a || !b) {
			free(a);
			free(b);
			ret = -ENOMEM;
		} else {
			*salt = a;
			*hash = b;
			ret = 0;
		}
	}
out:
	db_release(s, st);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int store_user_set(struct store *s, const char *name, const char *salt, const char *hash)
{
	int ret = -EIO;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = db_prep(s, "INSERT INTO users(name, salt, hash) VALUES(?, ?, ?) "
				   "ON CONFLICT(name) DO UPDATE SET salt = excluded.salt, "
				   "hash = excluded.hash");
	if (st) {
		db_bind_text(st, 1, name);
		db_bind_text(st, 2, salt);
		db_bind_text(st, 3, hash);
		ret = db_step_done(s, st, "user set");
	}
	db_release(s, st);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int store_user_count(struct store *s, int64_t *n)
{
	int ret = -EIO;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = db_prep(s, "SELECT COUNT(*) FROM users");
	if (st && sqlite3_step(st) == SQLITE_ROW) {
		*n = sqlite3_column_int64(st, 0);
		ret = 0;
	}
	db_release(s, st);
	pthread_mutex_unlock(&s->lock);
	return ret;
}
