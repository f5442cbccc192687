/* store_action.c - actions: assignment, cancel, device feedback, status
 * history, installed base. */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abota/log.h"
#include "store_db.h"

/* ---------------- actions ---------------- */

#define ACT_COLS                                                                          \
	"a.id, a.target_id, a.ds_id, a.type, a.status, a.active, a.weight, a.forcetime,"   \
	" a.rollout_id, a.created_at, a.modified_at, a.last_code, t.controller_id,"       \
	" a.mw_schedule, a.mw_duration, a.mw_timezone"

static void action_row(sqlite3_stmt *st, struct store_action *a)
{
	memset(a, 0, sizeof(*a));
	a->id = sqlite3_column_int64(st, 0);
	a->target_id = sqlite3_column_int64(st, 1);
	a->ds_id = sqlite3_column_int64(st, 2);
	db_col_copy(st, 3, a->type, sizeof(a->type));
	db_col_copy(st, 4, a->status, sizeof(a->status));
	a->active = sqlite3_column_int(st, 5);
	a->weight = sqlite3_column_int(st, 6);
	a->forcetime = sqlite3_column_int64(st, 7);
	a->rollout_id = sqlite3_column_int64(st, 8);
	a->created_at = sqlite3_column_int64(st, 9);
	a->modified_at = sqlite3_column_int64(st, 10);
	a->has_last_code = sqlite3_column_type(st, 11) != SQLITE_NULL;
	a->last_code = sqlite3_column_int(st, 11);
	db_col_copy(st, 12, a->controller_id, sizeof(a->controller_id));
	db_col_copy(st, 13, a->mw_schedule, sizeof(a->mw_schedule));
	db_col_copy(st, 14, a->mw_duration, sizeof(a->mw_duration));
	db_col_copy(st, 15, a->mw_timezone, sizeof(a->mw_timezone));
}

static int action_row_cb(struct store *s, sqlite3_stmt *st, void *elem)
{
	(void)s;
	action_row(st, elem);
	return 0;
}

static int status_row_cb(struct store *s, sqlite3_stmt *st, void *elem)
{
	(void)s;
	struct store_status *e = elem;
	e->id = sqlite3_column_int64(st, 0);
	e->action_id = sqlite3_column_int64(st, 1);
	db_col_copy(st, 2, e->type, sizeof(e->type));
	e->reported_at = sqlite3_column_int64(st, 3);
	e->timestamp = sqlite3_column_int64(st, 4);
	e->has_code = sqlite3_column_type(st, 5) != SQLITE_NULL;
	e->code = sqlite3_column_int(st, 5);
	e->messages = db_col_dup(st, 6);
	return e->messages ? 0 : -ENOMEM;
}



/* Caller holds the lock and an open transaction. */
int db_assign_locked(struct store *s, int64_t ds_id, const struct store_assign *a,
			 int64_t *action_id, bool *already)
{
	int ret = 0;
	int64_t tid = 0, now = store_now_ms(), existing = 0, ds_ok = 0;
	sqlite3_stmt *st = db_prep(s, "SELECT id FROM targets WHERE controller_id = ?");
	if (!st)
		return -EIO;
	db_bind_text(st, 1, a->controller_id);
	if (sqlite3_step(st) == SQLITE_ROW)
		tid = sqlite3_column_int64(st, 0);
	db_release(s, st);
	if (tid)
		ret = db_count(s, "SELECT COUNT(*) FROM dsets WHERE id = ? AND deleted = 0", NULL,
				 ds_id, &ds_ok);
	if (ret == 0 && (!tid || !ds_ok))
		ret = -ENOENT;
	if (ret)
		return ret;
	st = db_prep(s, "SELECT id FROM actions WHERE target_id = ? AND ds_id = ? AND active = 1"
		     " AND status != 'canceling' ORDER BY id DESC LIMIT 1");
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_int64(st, 2, ds_id);
	if (sqlite3_step(st) == SQLITE_ROW)
		existing = sqlite3_column_int64(st, 0);
	db_release(s, st);
	if (existing) {
		*action_id = existing;
		*already = true;
		return 0;
	}
	/* a newer assignment supersedes the open ones: they are canceled
	 * through the device (hawkBit without autoclose) */
	ret = db_run(s, "UPDATE actions SET status = 'canceling', modified_at = ?2 WHERE target_id = ?1"
		      " AND active = 1 AND status != 'canceling'", tid, now, NULL);
	if (ret)
		return ret;
	st = db_prep(s, "INSERT INTO actions(target_id, ds_id, type, status, active, weight, forcetime,"
		     " rollout_id, created_at, modified_at, mw_schedule, mw_duration, mw_timezone)"
		     " VALUES(?, ?, ?, 'running', 1, ?, ?, ?, ?, ?, ?, ?, ?)");
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_int64(st, 2, ds_id);
	db_bind_text(st, 3, a->type ? a->type : "forced");
	sqlite3_bind_int(st, 4, a->weight);
	db_bind_id(st, 5, a->forcetime);
	db_bind_id(st, 6, a->rollout_id);
	sqlite3_bind_int64(st, 7, now);
	sqlite3_bind_int64(st, 8, now);
	db_bind_text(st, 9, a->mw_schedule);
	db_bind_text(st, 10, a->mw_duration);
	db_bind_text(st, 11, a->mw_timezone);
	ret = db_step_done(s, st, "action create");
	db_release(s, st);
	if (ret)
		return ret;
	int64_t aid = sqlite3_last_insert_rowid(s->db);
	ret = db_add_status(s, aid, "running", NULL, "[\"Assignment initiated by user\"]", 0);
	if (ret == 0)
		ret = db_run(s, "UPDATE targets SET assigned_ds = ?2, update_status = 'pending',"
			      " modified_at = ?3 WHERE id = ?1", tid, ds_id, &now);
	if (ret == 0) {
		*action_id = aid;
		*already = false;
	}
	return ret;
}

int store_assign(struct store *s, int64_t ds_id, const struct store_assign *a,
		 int64_t *action_id, bool *already)
{
	int ret;
	pthread_mutex_lock(&s->lock);
	ret = db_begin(s);
	if (ret == 0)
		ret = db_finish(s, db_assign_locked(s, ds_id, a, action_id, already));
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int store_action_get(struct store *s, int64_t id, struct store_action *out)
{
	int ret = -ENOENT;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = db_prep(s, "SELECT " ACT_COLS " FROM actions a JOIN targets t"
				   " ON t.id = a.target_id WHERE a.id = ?");
	if (!st) {
		ret = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		action_row(st, out);
		ret = 0;
	}
	db_release(s, st);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int store_action_active(struct store *s, int64_t target_id, struct store_action *out)
{
	int ret = -ENOENT;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = db_prep(s, "SELECT " ACT_COLS " FROM actions a JOIN targets t"
				   " ON t.id = a.target_id WHERE a.target_id = ? AND a.active = 1"
				   " ORDER BY a.weight DESC, a.id ASC LIMIT 1");
	if (!st) {
		ret = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, target_id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		action_row(st, out);
		ret = 0;
	}
	db_release(s, st);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int store_action_list(struct store *s, int64_t target_id, int64_t offset, int64_t limit,
		      bool desc, struct store_action **out, size_t *n, int64_t *total)
{
	int ret;
	struct store_action *v = NULL;
	size_t cnt = 0;
	pthread_mutex_lock(&s->lock);
	ret = db_count(s, target_id ? "SELECT COUNT(*) FROM actions WHERE target_id = ?"
				      : "SELECT COUNT(*) FROM actions",
			 NULL, target_id, total);
	if (ret)
		goto out;
	sqlite3_stmt *st = db_prep(s, desc ? "SELECT " ACT_COLS " FROM actions a JOIN targets t"
					  " ON t.id = a.target_id WHERE (?1 = 0 OR a.target_id = ?1)"
					  " ORDER BY a.id DESC LIMIT ?2 OFFSET ?3"
					: "SELECT " ACT_COLS " FROM actions a JOIN targets t"
					  " ON t.id = a.target_id WHERE (?1 = 0 OR a.target_id = ?1)"
					  " ORDER BY a.id ASC LIMIT ?2 OFFSET ?3");
	if (!st) {
		ret = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, target_id);
	sqlite3_bind_int64(st, 2, limit);
	sqlite3_bind_int64(st, 3, offset);
	ret = db_collect(s, st, limit, sizeof(*v), action_row_cb, (void **)&v, &cnt);
out:
	pthread_mutex_unlock(&s->lock);
	if (ret) {
		free(v);
		return ret;
	}
	*out = v;
	*n = cnt;
	return 0;
}

int store_action_cancel(struct store *s, int64_t id, bool force)
{
	int ret;
	struct store_action a;
	bool found = false;
	pthread_mutex_lock(&s->lock);
	ret = db_begin(s);
	if (ret)
		goto out;
	sqlite3_stmt *st = db_prep(s, "SELECT " ACT_COLS " FROM actions a JOIN targets t"
				   " ON t.id = a.target_id WHERE a.id = ?");
	if (!st) {
		ret = db_finish(s, -EIO);
		goto out;
	}
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		action_row(st, &a);
		found = true;
	}
	db_release(s, st);
	if (!found)
		ret = -ENOENT;
	else if (!a.active)
		ret = -EALREADY; /* closed actions cannot be canceled */
	else if (!force && strcmp(a.status, "canceling") == 0)
		ret = -EALREADY;
	if (ret)
		goto done;
	if (force) {
		ret = db_run(s, "UPDATE actions SET status = 'canceled', active = 0, modified_at = ?2"
			      " WHERE id = ?1", id, store_now_ms(), NULL);
		if (ret == 0)
			ret = db_add_status(s, id, "canceled", NULL,
					 "[\"A force quit has been performed.\"]", 0);
	} else {
		ret = db_run(s, "UPDATE actions SET status = 'canceling', modified_at = ?2 WHERE id = ?1",
			   id, store_now_ms(), NULL);
		if (ret == 0)
			ret = db_add_status(s, id, "canceling", NULL,
					 "[\"Update Server: cancel obsolete action due to new update\"]",
					 0);
	}
	if (ret == 0 && force)
		/* the target's assignment falls back to what it has installed */
		ret = db_run(s, "UPDATE targets SET assigned_ds = installed_ds, update_status ="
			      " CASE WHEN installed_ds IS NULL THEN 'registered' ELSE 'in_sync' END"
			      " WHERE id = ?1 AND NOT EXISTS(SELECT 1 FROM actions WHERE target_id = ?1"
			      " AND active = 1)", a.target_id, 0, NULL);
done:
	ret = db_finish(s, ret);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int store_action_mark_retrieved(struct store *s, int64_t id, bool *first)
{
	int ret;
	pthread_mutex_lock(&s->lock);
	ret = db_begin(s);
	if (ret)
		goto out;
	ret = db_run(s, "UPDATE actions SET retrieved = 1 WHERE id = ?1 AND retrieved = 0", id, 0, NULL);
	bool f = ret == 0 && sqlite3_changes(s->db) > 0;
	if (ret == 0 && f)
		ret = db_add_status(s, id, "retrieved", NULL,
				 "[\"Update Server: Target retrieved update action and should start now"
				 " the download.\"]",
				 0);
	ret = db_finish(s, ret);
	if (ret == 0)
		*first = f;
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

void store_status_list_free(struct store_status *st, size_t n)
{
	for (size_t i = 0; st && i < n; i++)
		free(st[i].messages);
	free(st);
}

int store_status_count(struct store *s, int64_t action_id, int64_t *n)
{
	pthread_mutex_lock(&s->lock);
	int ret = db_count(s, "SELECT COUNT(*) FROM action_status WHERE action_id = ?", NULL,
			     action_id, n);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int store_status_list(struct store *s, int64_t action_id, int64_t offset, int64_t limit,
		      bool desc, struct store_status **out, size_t *n, int64_t *total)
{
	int ret;
	struct store_status *v = NULL;
	size_t cnt = 0;
	pthread_mutex_lock(&s->lock);
	ret = db_count(s, "SELECT COUNT(*) FROM action_status WHERE action_id = ?", NULL,
			 action_id, total);
	if (ret)
		goto out;
	sqlite3_stmt *st = db_prep(s, desc ? "SELECT id, action_id, type, reported_at, timestamp, code,"
					  " messages FROM action_status WHERE action_id = ?"
					  " ORDER BY id DESC LIMIT ? OFFSET ?"
					: "SELECT id, action_id, type, reported_at, timestamp, code,"
					  " messages FROM action_status WHERE action_id = ?"
					  " ORDER BY id ASC LIMIT ? OFFSET ?");
	if (!st) {
		ret = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, action_id);
	sqlite3_bind_int64(st, 2, limit);
	sqlite3_bind_int64(st, 3, offset);
	ret = db_collect(s, st, limit, sizeof(*v), status_row_cb, (void **)&v, &cnt);
out:
	pthread_mutex_unlock(&s->lock);
	if (ret) {
		store_status_list_free(v, cnt);
		return ret;
	}
	*out = v;
	*n = cnt;
	return 0;
}

int store_action_apply(struct store *s, int64_t action_id, const struct store_transition *t,
		       const int *code, const char *messages_json, int64_t timestamp)
{
	int ret;
	int64_t now = store_now_ms(), tid = 0, ds = 0;
	pthread_mutex_lock(&s->lock);
	ret = db_begin(s);
	if (ret)
		goto out;
	sqlite3_stmt *st = db_prep(s, "SELECT target_id, ds_id, active FROM actions WHERE id = ?");
	if (!st) {
		ret = db_finish(s, -EIO);
		goto out;
	}
	sqlite3_bind_int64(st, 1, action_id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		tid = sqlite3_column_int64(st, 0);
		ds = sqlite3_column_int64(st, 1);
		/* closed by a concurrent request since the caller looked */
		if (!sqlite3_column_int(st, 2))
			ret = -ESTALE;
	} else {
		ret = -ENOENT;
	}
	db_release(s, st);
	if (ret == 0)
		ret = db_add_status(s, action_id, t->status_type, code, messages_json, timestamp);
	if (ret == 0) {
		st = db_prep(s, "UPDATE actions SET status = COALESCE(?2, status),"
			     " active = CASE WHEN ?3 THEN 0 ELSE active END, modified_at = ?4,"
			     " last_code = COALESCE(?5, last_code) WHERE id = ?1");
		if (!st)
			ret = -EIO;
		else {
			sqlite3_bind_int64(st, 1, action_id);
			db_bind_text(st, 2, t->new_status);
			sqlite3_bind_int(st, 3, t->close);
			sqlite3_bind_int64(st, 4, now);
			if (code)
				sqlite3_bind_int(st, 5, *code);
			else
				sqlite3_bind_null(st, 5);
			ret = db_step_done(s, st, "action update");
			db_release(s, st);
		}
	}
	if (ret == 0 && t->installed)
		ret = db_run(s, "UPDATE targets SET installed_ds = ?2 WHERE id = ?1", tid, ds, NULL);
	if (ret == 0 && t->installed) {
		/* installed_action and time: a second statement keeps run1 simple */
		st = db_prep(s, "UPDATE targets SET installed_action = ?, installed_at = ? WHERE id = ?");
		if (!st)
			ret = -EIO;
		else {
			sqlite3_bind_int64(st, 1, action_id);
			sqlite3_bind_int64(st, 2, now);
			sqlite3_bind_int64(st, 3, tid);
			ret = db_step_done(s, st, "installed");
			db_release(s, st);
		}
	}
	if (ret == 0 && t->target_update_status) {
		/* in sync only when nothing else is open for the target */
		/* "settle": in sync with what is installed, unless something
		 * else is still open for the target */
		st = db_prep(s, "UPDATE targets SET update_status = CASE"
			     " WHEN ?2 IN ('in_sync', 'settle') AND EXISTS(SELECT 1 FROM actions"
			     " WHERE target_id = ?1 AND active = 1) THEN 'pending'"
			     " WHEN ?2 = 'settle' THEN CASE WHEN installed_ds IS NULL THEN 'registered'"
			     " ELSE 'in_sync' END ELSE ?2 END, modified_at = ?3 WHERE id = ?1");
		if (!st)
			ret = -EIO;
		else {
			sqlite3_bind_int64(st, 1, tid);
			db_bind_text(st, 2, t->target_update_status);
			sqlite3_bind_int64(st, 3, now);
			ret = db_step_done(s, st, "target status");
			db_release(s, st);
		}
	}
	if (ret == 0 && t->request_attributes)
		ret = db_run(s, "UPDATE targets SET request_attributes = 1 WHERE id = ?1", tid, 0, NULL);
	ret = db_finish(s, ret);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int store_action_note(struct store *s, int64_t action_id, const char *type,
		      const char *messages_json)
{
	pthread_mutex_lock(&s->lock);
	int ret = db_add_status(s, action_id, type, NULL, messages_json, 0);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int store_installed_base(struct store *s, int64_t target_id, const char *name,
			 const char *version, bool *created)
{
	int ret;
	int64_t ds = 0, installed = 0, now = store_now_ms();
	pthread_mutex_lock(&s->lock);
	ret = db_begin(s);
	if (ret)
		goto out;
	sqlite3_stmt *st = db_prep(s, "SELECT d.id, COALESCE(t.installed_ds, 0) FROM dsets d, targets t"
				   " WHERE d.name = ? AND d.version = ? AND d.deleted = 0 AND t.id = ?");
	if (!st) {
		ret = db_finish(s, -EIO);
		goto out;
	}
	db_bind_text(st, 1, name);
	db_bind_text(st, 2, version);
	sqlite3_bind_int64(st, 3, target_id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		ds = sqlite3_column_int64(st, 0);
		installed = sqlite3_column_int64(st, 1);
	} else {
		ret = -ENOENT;
	}
	db_release(s, st);
	if (ret || ds == installed) {
		ret = db_finish(s, ret);
		if (ret == 0)
			*created = false;
		goto out;
	}
	st = db_prep(s, "INSERT INTO actions(target_id, ds_id, type, status, active, created_at,"
		     " modified_at, retrieved) VALUES(?, ?, 'forced', 'finished', 0, ?, ?, 1)");
	if (!st)
		ret = -EIO;
	else {
		sqlite3_bind_int64(st, 1, target_id);
		sqlite3_bind_int64(st, 2, ds);
		sqlite3_bind_int64(st, 3, now);
		sqlite3_bind_int64(st, 4, now);
		ret = db_step_done(s, st, "offline action");
		db_release(s, st);
	}
	int64_t aid = sqlite3_last_insert_rowid(s->db);
	if (ret == 0)
		ret = db_add_status(s, aid, "finished", NULL,
				 "[\"Installed base reported by the device (offline assignment)\"]", 0);
	if (ret == 0) {
		st = db_prep(s, "UPDATE targets SET installed_ds = ?2, installed_action = ?3,"
			     " installed_at = ?4, modified_at = ?4, update_status = CASE WHEN EXISTS("
			     "SELECT 1 FROM actions WHERE target_id = ?1 AND active = 1) THEN 'pending'"
			     " ELSE 'in_sync' END, assigned_ds = CASE WHEN EXISTS(SELECT 1 FROM actions"
			     " WHERE target_id = ?1 AND active = 1) THEN assigned_ds ELSE ?2 END"
			     " WHERE id = ?1");
		if (!st)
			ret = -EIO;
		else {
			sqlite3_bind_int64(st, 1, target_id);
			sqlite3_bind_int64(st, 2, ds);
			sqlite3_bind_int64(st, 3, aid);
			sqlite3_bind_int64(st, 4, now);
			ret = db_step_done(s, st, "installed base");
			db_release(s, st);
		}
	}
	ret = db_finish(s, ret);
	if (ret == 0)
		*created = true;
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}
