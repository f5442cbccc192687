/* store_rollout.c - rollouts: groups of targets assigned one after the
 * other, stopped above a failure rate. */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abota/log.h"
#include "store_db.h"

/* ---------------- rollouts ---------------- */

int store_rollout_create(struct store *s, int64_t ds_id, const char *type, int group_size,
			 int error_threshold, const char *const *targets, size_t n, int64_t *id)
{
	int ret;
	int64_t now = store_now_ms(), rid = 0, ds_ok = 0;
	pthread_mutex_lock(&s->lock);
	ret = db_begin(s);
	if (ret)
		goto out;
	ret = db_count(s, "SELECT COUNT(*) FROM dsets WHERE id = ? AND deleted = 0", NULL, ds_id,
			 &ds_ok);
	if (ret == 0 && !ds_ok)
		ret = -ENOENT;
	sqlite3_stmt *st = NULL;
	if (ret == 0) {
		st = db_prep(s, "INSERT INTO rollouts(ds_id, type, group_size, error_threshold, status,"
			     " created_at, modified_at) VALUES(?, ?, ?, ?, 'running', ?, ?)");
		if (!st)
			ret = -EIO;
	}
	if (ret == 0) {
		sqlite3_bind_int64(st, 1, ds_id);
		db_bind_text(st, 2, type);
		sqlite3_bind_int(st, 3, group_size);
		sqlite3_bind_int(st, 4, error_threshold);
		sqlite3_bind_int64(st, 5, now);
		sqlite3_bind_int64(st, 6, now);
		ret = db_step_done(s, st, "rollout create");
		rid = sqlite3_last_insert_rowid(s->db);
	}
	db_release(s, st);
	st = ret ? NULL : db_prep(s, "INSERT INTO rollout_targets(rollout_id, pos, controller_id)"
				  " SELECT ?, ?, controller_id FROM targets WHERE controller_id = ?");
	if (ret == 0 && !st)
		ret = -EIO;
	for (size_t i = 0; ret == 0 && i < n; i++) {
		sqlite3_bind_int64(st, 1, rid);
		sqlite3_bind_int64(st, 2, (int64_t)i);
		db_bind_text(st, 3, targets[i]);
		ret = db_step_done(s, st, "rollout target");
		if (ret == 0 && sqlite3_changes(s->db) == 0)
			ret = -ENOENT;
		sqlite3_reset(st);
	}
	db_release(s, st);
	ret = db_finish(s, ret);
	if (ret == 0)
		*id = rid;
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static const char *ROLLOUT_COUNTS =
	"SELECT r.id, r.ds_id, r.type, r.group_size, r.error_threshold, r.status,"
	" COALESCE(r.message, ''), r.created_at, r.modified_at, d.name || ' ' || d.version,"
	" (SELECT COUNT(*) FROM rollout_targets rt WHERE rt.rollout_id = r.id),"
	" (SELECT COUNT(*) FROM rollout_targets rt WHERE rt.rollout_id = r.id AND rt.action_id IS NULL),"
	" (SELECT COUNT(*) FROM rollout_targets rt JOIN actions a ON a.id = rt.action_id"
	"  WHERE rt.rollout_id = r.id AND a.active = 1),"
	" (SELECT COUNT(*) FROM rollout_targets rt JOIN actions a ON a.id = rt.action_id"
	"  WHERE rt.rollout_id = r.id AND a.active = 0 AND a.status IN ('finished', 'downloaded')),"
	" (SELECT COUNT(*) FROM rollout_targets rt JOIN actions a ON a.id = rt.action_id"
	"  WHERE rt.rollout_id = r.id AND a.active = 0 AND a.status NOT IN ('finished', 'downloaded'))"
	" FROM rollouts r JOIN dsets d ON d.id = r.ds_id";

static void rollout_row(sqlite3_stmt *st, struct store_rollout *r)
{
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	r->ds_id = sqlite3_column_int64(st, 1);
	db_col_copy(st, 2, r->type, sizeof(r->type));
	r->group_size = sqlite3_column_int(st, 3);
	r->error_threshold = sqlite3_column_int(st, 4);
	db_col_copy(st, 5, r->status, sizeof(r->status));
	db_col_copy(st, 6, r->message, sizeof(r->message));
	r->created_at = sqlite3_column_int64(st, 7);
	r->modified_at = sqlite3_column_int64(st, 8);
	db_col_copy(st, 9, r->ds_name, sizeof(r->ds_name));
	r->total = sqlite3_column_int64(st, 10);
	r->waiting = sqlite3_column_int64(st, 11);
	r->running = sqlite3_column_int64(st, 12);
	r->finished = sqlite3_column_int64(st, 13);
	r->failed = sqlite3_column_int64(st, 14);
}

int store_rollout_list(struct store *s, struct store_rollout **out, size_t *n)
{
	int ret = 0;
	size_t cnt = 0, cap = 0;
	struct store_rollout *v = NULL;
	char sql[2048];
	snprintf(sql, sizeof(sql), "%s ORDER BY r.id DESC LIMIT 100", ROLLOUT_COUNTS);
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = db_prep_dyn(s, sql);
	if (!st)
		ret = -EIO;
	while (ret == 0 && sqlite3_step(st) == SQLITE_ROW) {
		if (cnt == cap) {
			size_t nc = cap ? cap * 2 : 8;
			struct store_rollout *nv = realloc(v, nc * sizeof(*nv));
			if (!nv) {
				ret = -ENOMEM;
				break;
			}
			v = nv;
			cap = nc;
		}
		rollout_row(st, &v[cnt++]);
	}
	db_release(s, st);
	pthread_mutex_unlock(&s->lock);
	if (ret) {
		free(v);
		return ret;
	}
	*out = v;
	*n = cnt;
	return 0;
}

/* One rollout, lock and transaction held: stop on the failure rate, or
 * start the next group once the current one has no open action. */
static int rollout_advance(struct store *s, const struct store_rollout *r)
{
	int ret = 0;
	int64_t now = store_now_ms();
	/* as hawkBit's error condition: failed targets among those assigned so far */
	int64_t done = r->total - r->waiting;
	if (done > 0 && r->failed * 100 > (int64_t)r->error_threshold * done) {
		sqlite3_stmt *st = db_prep(s, "UPDATE rollouts SET status = 'stopped', message = ?,"
					   " modified_at = ? WHERE id = ?");
		char msg[200];
		snprintf(msg, sizeof(msg), "stopped: %lld of %lld failed (threshold %d%%)",
			 (long long)r->failed, (long long)done, r->error_threshold);
		if (!st)
			return -EIO;
		db_bind_text(st, 1, msg);
		sqlite3_bind_int64(st, 2, now);
		sqlite3_bind_int64(st, 3, r->id);
		ret = db_step_done(s, st, "rollout stop");
		db_release(s, st);
		return ret;
	}
	if (r->running > 0)
		return 0;
	if (r->waiting == 0) {
		return db_run(s, "UPDATE rollouts SET status = 'finished', modified_at = ?2 WHERE id = ?1",
			    r->id, now, NULL);
	}
	sqlite3_stmt *st = db_prep(s, "SELECT pos, controller_id FROM rollout_targets WHERE"
				   " rollout_id = ? AND action_id IS NULL ORDER BY pos LIMIT ?");
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, r->id);
	sqlite3_bind_int(st, 2, r->group_size);
	struct {
		int64_t pos;
		char cid[257];
	} *grp = calloc((size_t)r->group_size, sizeof(*grp));
	int k = 0;
	if (!grp)
		ret = -ENOMEM;
	while (ret == 0 && k < r->group_size && sqlite3_step(st) == SQLITE_ROW) {
		grp[k].pos = sqlite3_column_int64(st, 0);
		db_col_copy(st, 1, grp[k].cid, sizeof(grp[k].cid));
		k++;
	}
	db_release(s, st);
	for (int i = 0; ret == 0 && i < k; i++) {
		struct store_assign a = {.controller_id = grp[i].cid, .type = r->type,
					 .rollout_id = r->id};
		int64_t aid = 0;
		bool already = false;
		ret = db_assign_locked(s, r->ds_id, &a, &aid, &already);
		if (ret == -ENOENT) { /* target deleted meanwhile: skip it */
			ret = 0;
			aid = -1;
		}
		if (ret == 0) {
			st = db_prep(s, "UPDATE rollout_targets SET action_id = ? WHERE rollout_id = ?"
				     " AND pos = ?");
			if (!st) {
				ret = -EIO;
				break;
			}
			sqlite3_bind_int64(st, 1, aid);
			sqlite3_bind_int64(st, 2, r->id);
			sqlite3_bind_int64(st, 3, grp[i].pos);
			ret = db_step_done(s, st, "rollout assign");
			db_release(s, st);
		}
	}
	free(grp);
	if (ret == 0)
		ret = db_run(s, "UPDATE rollouts SET modified_at = ?2 WHERE id = ?1", r->id, now, NULL);
	return ret;
}

int store_rollout_tick(struct store *s)
{
	struct store_rollout *v = NULL;
	size_t n = 0;
	int ret = 0;
	char sql[2048];
	snprintf(sql, sizeof(sql), "%s WHERE r.status = 'running'", ROLLOUT_COUNTS);
	pthread_mutex_lock(&s->lock);
	ret = db_begin(s);
	if (ret)
		goto out;
	sqlite3_stmt *st = db_prep_dyn(s, sql);
	size_t cap = 0;
	if (!st)
		ret = -EIO;
	while (ret == 0 && sqlite3_step(st) == SQLITE_ROW) {
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 8;
			struct store_rollout *nv = realloc(v, nc * sizeof(*nv));
			if (!nv) {
				ret = -ENOMEM;
				break;
			}
			v = nv;
			cap = nc;
		}
		rollout_row(st, &v[n++]);
	}
	db_release(s, st);
	for (size_t i = 0; ret == 0 && i < n; i++)
		ret = rollout_advance(s, &v[i]);
	ret = db_finish(s, ret);
out:
	pthread_mutex_unlock(&s->lock);
	free(v);
	return ret;
}
