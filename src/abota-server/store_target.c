/* store_target.c - targets, their poll bookkeeping (batched) and attributes. */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abota/log.h"
#include "store_db.h"

/* ---------------- targets ---------------- */

#define TARGET_COLS                                                                         \
	"id, controller_id, name, description, token, address, ip, update_status, created_at," \
	" modified_at, last_seen, installed_at, installed_ds, assigned_ds, installed_action,"  \
	" request_attributes"

void store_target_clear(struct store_target *t)
{
	free(t->controller_id);
	free(t->name);
	free(t->description);
	free(t->token);
	free(t->address);
	free(t->ip);
	free(t->update_status);
	memset(t, 0, sizeof(*t));
}

static int target_row(sqlite3_stmt *st, struct store_target *t)
{
	memset(t, 0, sizeof(*t));
	t->id = sqlite3_column_int64(st, 0);
	t->controller_id = db_col_dup(st, 1);
	t->name = db_col_dup(st, 2);
	t->description = db_col_dup(st, 3);
	t->token = db_col_dup(st, 4);
	t->address = db_col_dup(st, 5);
	t->ip = db_col_dup(st, 6);
	t->update_status = db_col_dup(st, 7);
	t->created_at = sqlite3_column_int64(st, 8);
	t->modified_at = sqlite3_column_int64(st, 9);
	t->last_seen = sqlite3_column_int64(st, 10);
	t->installed_at = sqlite3_column_int64(st, 11);
	t->installed_ds = sqlite3_column_int64(st, 12);
	t->assigned_ds = sqlite3_column_int64(st, 13);
	t->installed_action = sqlite3_column_int64(st, 14);
	t->request_attributes = sqlite3_column_int(st, 15) != 0;
	if (!t->controller_id || !t->name || !t->token || !t->update_status) {
		store_target_clear(t);
		return -ENOMEM;
	}
	return 0;
}

static int target_row_cb(struct store *s, sqlite3_stmt *st, void *elem)
{
	(void)s;
	return target_row(st, elem);
}

/* The newest pending touch of a target, merged into reads so that the
 * batching is invisible to the API. Caller holds no lock. */
/* Slot of a target id in the open-addressing table (touch_lock held). */
int32_t *db_touch_lookup(struct store *s, int64_t id)
{
	uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ULL;
	for (size_t i = 0;; i++) {
		int32_t *slot = &s->touch_slot[(h + i) & (TOUCH_SLOTS - 1)];
		if (*slot < 0 || s->touches[*slot].id == id)
			return slot;
	}
}

static void apply_touch(struct store *s, struct store_target *t)
{
	pthread_mutex_lock(&s->touch_lock);
	int32_t *slot = db_touch_lookup(s, t->id);
	if (*slot >= 0 && s->touches[*slot].when > t->last_seen) {
		t->last_seen = s->touches[*slot].when;
		char *ip = strdup(s->touches[*slot].ip);
		if (ip) {
			free(t->ip);
			t->ip = ip;
		}
	}
	pthread_mutex_unlock(&s->touch_lock);
}

int store_target_get(struct store *s, const char *controller_id, struct store_target *out)
{
	int ret = -ENOENT;
	struct store_target t;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = db_prep(s, "SELECT " TARGET_COLS " FROM targets WHERE controller_id = ?");
	if (!st) {
		ret = -EIO;
		goto out;
	}
	db_bind_text(st, 1, controller_id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		ret = target_row(st, &t);
	}
out:
	db_release(s, st);
	pthread_mutex_unlock(&s->lock);
	if (ret == 0) {
		apply_touch(s, &t);
		*out = t;
	}
	return ret;
}

int store_target_create(struct store *s, const struct store_target *in, int64_t *id)
{
	int ret = -EIO;
	int64_t now = store_now_ms();
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = db_prep(s, "INSERT INTO targets(controller_id, name, description, token,"
				   " address, update_status, created_at, modified_at,"
				   " request_attributes, last_seen, ip)"
				   " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
	if (st) {
		db_bind_text(st, 1, in->controller_id);
		db_bind_text(st, 2, in->name);
		db_bind_text(st, 3, in->description);
		db_bind_text(st, 4, in->token);
		db_bind_text(st, 5, in->address);
		db_bind_text(st, 6, in->update_status ? in->update_status : "unknown");
		sqlite3_bind_int64(st, 7, now);
		sqlite3_bind_int64(st, 8, now);
		sqlite3_bind_int(st, 9, in->request_attributes);
		db_bind_id(st, 10, in->last_seen);
		db_bind_text(st, 11, in->ip);
		ret = db_step_done(s, st, "target create");
		if (ret == 0 && id)
			*id = sqlite3_last_insert_rowid(s->db);
	}
	db_release(s, st);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int store_target_update(struct store *s, const char *controller_id, const char *name,
			const char *description, const char *token, const char *address,
			int request_attributes)
{
	int ret = -EIO;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = db_prep(s, "UPDATE targets SET name = COALESCE(?, name),"
				   " description = COALESCE(?, description),"
				   " token = COALESCE(?, token), address = COALESCE(?, address),"
				   " request_attributes = CASE WHEN ? < 0 THEN request_attributes"
				   " ELSE ? END, modified_at = ? WHERE controller_id = ?");
	if (st) {
		db_bind_text(st, 1, name);
		db_bind_text(st, 2, description);
		db_bind_text(st, 3, token);
		db_bind_text(st, 4, address);
		sqlite3_bind_int(st, 5, request_attributes);
		sqlite3_bind_int(st, 6, request_attributes);
		sqlite3_bind_int64(st, 7, store_now_ms());
		db_bind_text(st, 8, controller_id);
		ret = db_step_done(s, st, "target update");
		if (ret == 0 && sqlite3_changes(s->db) == 0)
			ret = -ENOENT;
	}
	db_release(s, st);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int store_target_delete(struct store *s, const char *controller_id)
{
	int ret;
	pthread_mutex_lock(&s->lock);
	ret = db_begin(s);
	if (ret)
		goto out;
	sqlite3_stmt *st = db_prep(s, "SELECT id FROM targets WHERE controller_id = ?");
	int64_t id = 0;
	if (!st) {
		ret = db_finish(s, -EIO);
		goto out;
	}
	db_bind_text(st, 1, controller_id);
	if (sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	db_release(s, st);
	if (!id) {
		ret = db_finish(s, -ENOENT);
		goto out;
	}
	static const char *const dels[] = {
		"DELETE FROM action_status WHERE action_id IN (SELECT id FROM actions WHERE target_id = ?1)",
		"DELETE FROM actions WHERE target_id = ?1",
		"DELETE FROM attributes WHERE target_id = ?1",
		"DELETE FROM targets WHERE id = ?1",
	};
	for (size_t i = 0; i < sizeof(dels) / sizeof(dels[0]) && ret == 0; i++) {
		st = db_prep(s, dels[i]);
		if (!st) {
			ret = -EIO;
			break;
		}
		sqlite3_bind_int64(st, 1, id);
		ret = db_step_done(s, st, "target delete");
		db_release(s, st);
	}
	ret = db_finish(s, ret);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

void store_target_list_free(struct store_target *t, size_t n)
{
	for (size_t i = 0; t && i < n; i++)
		store_target_clear(&t[i]);
	free(t);
}


int store_target_list(struct store *s, int64_t offset, int64_t limit, const char *search,
		      struct store_target **out, size_t *n, int64_t *total)
{
	int ret = 0;
	struct store_target *v = NULL;
	size_t cnt = 0;
	char like[300];
	snprintf(like, sizeof(like), "%%%s%%", search ? search : "");
	pthread_mutex_lock(&s->lock);
	ret = db_count(s, "SELECT COUNT(*) FROM targets WHERE controller_id LIKE ?1 OR name LIKE ?1",
			 like, 0, total);
	if (ret)
		goto out;
	sqlite3_stmt *st = db_prep(s, "SELECT " TARGET_COLS " FROM targets WHERE controller_id LIKE ?1"
				   " OR name LIKE ?1 ORDER BY id LIMIT ?2 OFFSET ?3");
	if (!st) {
		ret = -EIO;
		goto out;
	}
	db_bind_text(st, 1, like);
	sqlite3_bind_int64(st, 2, limit);
	sqlite3_bind_int64(st, 3, offset);
	ret = db_collect(s, st, limit, sizeof(*v), target_row_cb, (void **)&v, &cnt);
out:
	pthread_mutex_unlock(&s->lock);
	if (ret) {
		store_target_list_free(v, cnt);
		return ret;
	}
	for (size_t i = 0; i < cnt; i++)
		apply_touch(s, &v[i]);
	*out = v;
	*n = cnt;
	return 0;
}

void store_target_touch(struct store *s, int64_t id, int64_t now, const char *ip)
{
	pthread_mutex_lock(&s->touch_lock);
	int32_t *slot = db_touch_lookup(s, id);
	if (*slot < 0) {
		if (s->n_touches == TOUCH_MAX) {
			pthread_mutex_unlock(&s->touch_lock);
			return; /* flushed within a second; dropping one is harmless */
		}
		*slot = (int32_t)s->n_touches++;
	}
	struct touch *t = &s->touches[*slot];
	t->id = id;
	t->when = now;
	snprintf(t->ip, sizeof(t->ip), "%s", ip ? ip : "");
	pthread_mutex_unlock(&s->touch_lock);
}

int store_flush_touches(struct store *s)
{
	int ret = 0;
	struct touch *copy = NULL;
	size_t n;
	pthread_mutex_lock(&s->touch_lock);
	n = s->n_touches;
	if (n) {
		copy = malloc(n * sizeof(*copy));
		if (copy) {
			memcpy(copy, s->touches, n * sizeof(*copy));
			s->n_touches = 0;
			memset(s->touch_slot, 0xff, TOUCH_SLOTS * sizeof(*s->touch_slot));
		}
	}
	pthread_mutex_unlock(&s->touch_lock);
	if (!n)
		return 0;
	if (!copy)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	ret = db_begin(s);
	if (ret == 0) {
		sqlite3_stmt *st = db_prep(s, "UPDATE targets SET last_seen = ?, ip = ?,"
					   " update_status = CASE update_status WHEN 'unknown'"
					   " THEN 'registered' ELSE update_status END WHERE id = ?");
		for (size_t i = 0; st && i < n && ret == 0; i++) {
			sqlite3_bind_int64(st, 1, copy[i].when);
			db_bind_text(st, 2, copy[i].ip);
			sqlite3_bind_int64(st, 3, copy[i].id);
			ret = db_step_done(s, st, "touch");
			sqlite3_reset(st);
		}
		if (!st)
			ret = -EIO;
		db_release(s, st);
		ret = db_finish(s, ret);
	}
	pthread_mutex_unlock(&s->lock);
	free(copy);
	return ret;
}

void store_kv_free(struct store_kv *kv, size_t n)
{
	for (size_t i = 0; kv && i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

int store_attrs_get(struct store *s, int64_t target_id, struct store_kv **out, size_t *n)
{
	int ret = 0;
	struct store_kv *v = NULL;
	size_t cnt = 0, cap = 0;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = db_prep(s, "SELECT key, value FROM attributes WHERE target_id = ? ORDER BY key");
	if (!st) {
		ret = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, target_id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (cnt == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct store_kv *nv = realloc(v, nc * sizeof(*nv));
			if (!nv) {
				ret = -ENOMEM;
				break;
			}
			v = nv;
			cap = nc;
		}
		v[cnt].key = db_col_dup(st, 0);
		v[cnt].value = db_col_dup(st, 1);
		cnt++;
		if (!v[cnt - 1].key || !v[cnt - 1].value) {
			ret = -ENOMEM;
			break;
		}
	}
	db_release(s, st);
out:
	pthread_mutex_unlock(&s->lock);
	if (ret) {
		store_kv_free(v, cnt);
		return ret;
	}
	*out = v;
	*n = cnt;
	return 0;
}

int store_attrs_update(struct store *s, int64_t target_id, const char *mode,
		       const struct store_kv *kv, size_t n, size_t max)
{
	int ret;
	bool remove = strcmp(mode, "remove") == 0;
	pthread_mutex_lock(&s->lock);
	ret = db_begin(s);
	if (ret)
		goto out;
	sqlite3_stmt *st;
	if (strcmp(mode, "replace") == 0) {
		st = db_prep(s, "DELETE FROM attributes WHERE target_id = ?");
		if (!st) {
			ret = -EIO;
			goto done;
		}
		sqlite3_bind_int64(st, 1, target_id);
		ret = db_step_done(s, st, "attributes replace");
		db_release(s, st);
		if (ret)
			goto done;
	}
	st = db_prep(s, remove ? "DELETE FROM attributes WHERE target_id = ? AND key = ?"
			    : "INSERT INTO attributes(target_id, key, value) VALUES(?, ?, ?)"
			      " ON CONFLICT(target_id, key) DO UPDATE SET value = excluded.value");
	if (!st) {
		ret = -EIO;
		goto done;
	}
	for (size_t i = 0; i < n && ret == 0; i++) {
		sqlite3_bind_int64(st, 1, target_id);
		db_bind_text(st, 2, kv[i].key);
		if (!remove)
			db_bind_text(st, 3, kv[i].value);
		ret = db_step_done(s, st, "attributes");
		sqlite3_reset(st);
	}
	db_release(s, st);
	if (ret)
		goto done;
	int64_t total = 0;
	ret = db_count(s, "SELECT COUNT(*) FROM attributes WHERE target_id = ?", NULL, target_id,
			 &total);
	if (ret == 0 && (size_t)total > max)
		ret = -E2BIG;
	if (ret)
		goto done;
	st = db_prep(s, "UPDATE targets SET request_attributes = 0 WHERE id = ?");
	if (!st) {
		ret = -EIO;
		goto done;
	}
	sqlite3_bind_int64(st, 1, target_id);
	ret = db_step_done(s, st, "attributes flag");
	db_release(s, st);
done:
	ret = db_finish(s, ret);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}
