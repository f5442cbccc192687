/* store_repo.c - software modules, artifacts and distribution sets. */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abota/log.h"
#include "store_db.h"

/* ---------------- software modules ---------------- */

void store_sm_clear(struct store_sm *m)
{
	free(m->name);
	free(m->version);
	free(m->type);
	free(m->vendor);
	free(m->description);
	memset(m, 0, sizeof(*m));
}

void store_sm_list_free(struct store_sm *m, size_t n)
{
	for (size_t i = 0; m && i < n; i++)
		store_sm_clear(&m[i]);
	free(m);
}

#define SM_COLS                                                                      \
	"id, name, version, type, vendor, description, created_at, modified_at, deleted," \
	" encrypted, EXISTS(SELECT 1 FROM ds_modules dm JOIN actions a ON a.ds_id = dm.ds_id" \
	" WHERE dm.module_id = modules.id)"

static int sm_row(sqlite3_stmt *st, struct store_sm *m)
{
	memset(m, 0, sizeof(*m));
	m->id = sqlite3_column_int64(st, 0);
	m->name = db_col_dup(st, 1);
	m->version = db_col_dup(st, 2);
	m->type = db_col_dup(st, 3);
	m->vendor = db_col_dup(st, 4);
	m->description = db_col_dup(st, 5);
	m->created_at = sqlite3_column_int64(st, 6);
	m->modified_at = sqlite3_column_int64(st, 7);
	m->deleted = sqlite3_column_int(st, 8);
	m->encrypted = sqlite3_column_int(st, 9);
	m->locked = sqlite3_column_int(st, 10);
	if (!m->name || !m->version || !m->type) {
		store_sm_clear(m);
		return -ENOMEM;
	}
	return 0;
}

static int sm_row_cb(struct store *s, sqlite3_stmt *st, void *elem)
{
	(void)s;
	return sm_row(st, elem);
}

int store_sm_create(struct store *s, const struct store_sm *in, int64_t *id)
{
	int ret = -EIO;
	int64_t now = store_now_ms();
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = db_prep(s, "INSERT INTO modules(name, version, type, vendor, description,"
				   " created_at, modified_at, encrypted) VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
	if (st) {
		db_bind_text(st, 1, in->name);
		db_bind_text(st, 2, in->version);
		db_bind_text(st, 3, in->type);
		db_bind_text(st, 4, in->vendor);
		db_bind_text(st, 5, in->description);
		sqlite3_bind_int64(st, 6, now);
		sqlite3_bind_int64(st, 7, now);
		sqlite3_bind_int(st, 8, in->encrypted);
		ret = db_step_done(s, st, "module create");
		if (ret == 0)
			*id = sqlite3_last_insert_rowid(s->db);
	}
	db_release(s, st);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int store_sm_get(struct store *s, int64_t id, struct store_sm *out)
{
	int ret = -ENOENT;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = db_prep(s, "SELECT " SM_COLS " FROM modules WHERE id = ?");
	if (!st) {
		ret = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		ret = sm_row(st, out);
	db_release(s, st);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int store_sm_list(struct store *s, int64_t offset, int64_t limit, struct store_sm **out,
		  size_t *n, int64_t *total)
{
	int ret;
	struct store_sm *v = NULL;
	size_t cnt = 0;
	pthread_mutex_lock(&s->lock);
	ret = db_count(s, "SELECT COUNT(*) FROM modules WHERE deleted = 0", NULL, 0, total);
	if (ret)
		goto out;
	sqlite3_stmt *st = db_prep(s, "SELECT " SM_COLS " FROM modules WHERE deleted = 0"
				   " ORDER BY id DESC LIMIT ? OFFSET ?");
	if (!st) {
		ret = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, limit);
	sqlite3_bind_int64(st, 2, offset);
	ret = db_collect(s, st, limit, sizeof(*v), sm_row_cb, (void **)&v, &cnt);
out:
	pthread_mutex_unlock(&s->lock);
	if (ret) {
		store_sm_list_free(v, cnt);
		return ret;
	}
	*out = v;
	*n = cnt;
	return 0;
}

int store_sm_delete(struct store *s, int64_t id)
{
	int ret;
	int64_t used = 0, exists = 0;
	pthread_mutex_lock(&s->lock);
	ret = db_begin(s);
	if (ret)
		goto out;
	/* deleting a soft-deleted module again succeeds, as in hawkBit */
	ret = db_count(s, "SELECT COUNT(*) FROM modules WHERE id = ?", NULL, id, &exists);
	if (ret == 0 && !exists)
		ret = -ENOENT;
	if (ret == 0)
		ret = db_count(s, "SELECT COUNT(*) FROM ds_modules WHERE module_id = ?", NULL, id,
				 &used);
	if (ret == 0) {
		sqlite3_stmt *st = db_prep(s, used ? "UPDATE modules SET deleted = 1 WHERE id = ?"
						: "DELETE FROM modules WHERE id = ?");
		if (!st)
			ret = -EIO;
		else {
			sqlite3_bind_int64(st, 1, id);
			ret = db_step_done(s, st, "module delete");
			db_release(s, st);
		}
	}
	/* a module no set refers to goes with its artifacts (their blobs, once
	 * unreferenced, are removed at the next start) */
	if (ret == 0 && !used)
		ret = db_run(s, "DELETE FROM artifacts WHERE module_id = ?1", id, 0, NULL);
	ret = db_finish(s, ret);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* ---------------- artifacts ---------------- */

void store_artifact_clear(struct store_artifact *a)
{
	free(a->filename);
	free(a->compatible);
	free(a->version);
	free(a->signer);
	free(a->format);
	memset(a, 0, sizeof(*a));
}

void store_artifact_list_free(struct store_artifact *a, size_t n)
{
	for (size_t i = 0; a && i < n; i++)
		store_artifact_clear(&a[i]);
	free(a);
}

#define ART_COLS                                                                     \
	"id, module_id, filename, size, sha1, md5, sha256, created_at, compatible, version," \
	" signer, format"

static int artifact_row(sqlite3_stmt *st, struct store_artifact *a)
{
	memset(a, 0, sizeof(*a));
	a->id = sqlite3_column_int64(st, 0);
	a->sm_id = sqlite3_column_int64(st, 1);
	a->filename = db_col_dup(st, 2);
	a->size = sqlite3_column_int64(st, 3);
	db_col_copy(st, 4, a->sha1, sizeof(a->sha1));
	db_col_copy(st, 5, a->md5, sizeof(a->md5));
	db_col_copy(st, 6, a->sha256, sizeof(a->sha256));
	a->created_at = sqlite3_column_int64(st, 7);
	a->compatible = db_col_dup(st, 8);
	a->version = db_col_dup(st, 9);
	a->signer = db_col_dup(st, 10);
	a->format = db_col_dup(st, 11);
	if (!a->filename) {
		store_artifact_clear(a);
		return -ENOMEM;
	}
	return 0;
}

int store_artifact_create(struct store *s, const struct store_artifact *in, int64_t *id)
{
	int ret;
	int64_t exists = 0;
	pthread_mutex_lock(&s->lock);
	ret = db_begin(s);
	if (ret)
		goto out;
	ret = db_count(s, "SELECT COUNT(*) FROM modules WHERE id = ? AND deleted = 0", NULL,
			 in->sm_id, &exists);
	if (ret == 0 && !exists)
		ret = -ENOENT;
	if (ret == 0) {
		sqlite3_stmt *st = db_prep(s, "INSERT INTO artifacts(module_id, filename, size, sha1, md5,"
					   " sha256, created_at, compatible, version, signer, format)"
					   " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
		if (!st)
			ret = -EIO;
		else {
			sqlite3_bind_int64(st, 1, in->sm_id);
			db_bind_text(st, 2, in->filename);
			sqlite3_bind_int64(st, 3, in->size);
			db_bind_text(st, 4, in->sha1);
			db_bind_text(st, 5, in->md5);
			db_bind_text(st, 6, in->sha256);
			sqlite3_bind_int64(st, 7, store_now_ms());
			db_bind_text(st, 8, in->compatible);
			db_bind_text(st, 9, in->version);
			db_bind_text(st, 10, in->signer);
			db_bind_text(st, 11, in->format);
			ret = db_step_done(s, st, "artifact create");
			if (ret == 0)
				*id = sqlite3_last_insert_rowid(s->db);
			db_release(s, st);
		}
	}
	ret = db_finish(s, ret);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int artifact_one(struct store *s, const char *sql, int64_t sm_id, int64_t id,
			const char *name, struct store_artifact *out)
{
	int ret = -ENOENT;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = db_prep(s, sql);
	if (!st) {
		ret = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, sm_id);
	if (name)
		db_bind_text(st, 2, name);
	else
		sqlite3_bind_int64(st, 2, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		ret = artifact_row(st, out);
	db_release(s, st);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int store_artifact_get(struct store *s, int64_t sm_id, int64_t id, struct store_artifact *out)
{
	return artifact_one(s, "SELECT " ART_COLS " FROM artifacts WHERE module_id = ? AND id = ?",
			    sm_id, id, NULL, out);
}

int store_artifact_find(struct store *s, int64_t sm_id, const char *filename,
			struct store_artifact *out)
{
	return artifact_one(s,
			    "SELECT " ART_COLS " FROM artifacts WHERE module_id = ? AND filename = ?",
			    sm_id, 0, filename, out);
}

int store_artifact_list(struct store *s, int64_t sm_id, struct store_artifact **out, size_t *n)
{
	int ret = 0;
	struct store_artifact *v = NULL;
	size_t cnt = 0, cap = 0;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = db_prep(s, "SELECT " ART_COLS " FROM artifacts WHERE module_id = ? ORDER BY id");
	if (!st) {
		ret = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, sm_id);
	while (ret == 0 && sqlite3_step(st) == SQLITE_ROW) {
		if (cnt == cap) {
			size_t nc = cap ? cap * 2 : 4;
			struct store_artifact *nv = realloc(v, nc * sizeof(*nv));
			if (!nv) {
				ret = -ENOMEM;
				break;
			}
			v = nv;
			cap = nc;
		}
		ret = artifact_row(st, &v[cnt]);
		if (ret == 0)
			cnt++;
	}
	db_release(s, st);
out:
	pthread_mutex_unlock(&s->lock);
	if (ret) {
		store_artifact_list_free(v, cnt);
		return ret;
	}
	*out = v;
	*n = cnt;
	return 0;
}

int store_artifact_delete(struct store *s, int64_t sm_id, int64_t id, char sha256_out[65],
			  bool *blob_unused)
{
	int ret;
	char sha[65] = "";
	pthread_mutex_lock(&s->lock);
	ret = db_begin(s);
	if (ret)
		goto out;
	sqlite3_stmt *st = db_prep(s, "SELECT sha256 FROM artifacts WHERE module_id = ? AND id = ?");
	if (!st) {
		ret = db_finish(s, -EIO);
		goto out;
	}
	sqlite3_bind_int64(st, 1, sm_id);
	sqlite3_bind_int64(st, 2, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		db_col_copy(st, 0, sha, sizeof(sha));
	else
		ret = -ENOENT;
	db_release(s, st);
	if (ret == 0) {
		st = db_prep(s, "DELETE FROM artifacts WHERE id = ?");
		if (!st)
			ret = -EIO;
		else {
			sqlite3_bind_int64(st, 1, id);
			ret = db_step_done(s, st, "artifact delete");
			db_release(s, st);
		}
	}
	int64_t refs = 0;
	if (ret == 0)
		ret = db_count(s, "SELECT COUNT(*) FROM artifacts WHERE sha256 = ?", sha, 0, &refs);
	ret = db_finish(s, ret);
	if (ret == 0) {
		memcpy(sha256_out, sha, sizeof(sha));
		*blob_unused = refs == 0;
	}
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int store_artifact_blob_referenced(struct store *s, const char *sha256, bool *referenced)
{
	int64_t refs = 0;
	pthread_mutex_lock(&s->lock);
	int ret = db_count(s, "SELECT COUNT(*) FROM artifacts WHERE sha256 = ?", sha256, 0, &refs);
	pthread_mutex_unlock(&s->lock);
	if (ret == 0)
		*referenced = refs > 0;
	return ret;
}

/* ---------------- distribution sets ---------------- */

void store_ds_clear(struct store_ds *d)
{
	free(d->name);
	free(d->version);
	free(d->type);
	free(d->description);
	free(d->modules);
	memset(d, 0, sizeof(*d));
}

void store_ds_list_free(struct store_ds *d, size_t n)
{
	for (size_t i = 0; d && i < n; i++)
		store_ds_clear(&d[i]);
	free(d);
}

#define DS_COLS                                                                      \
	"id, name, version, type, description, created_at, modified_at, required_migration," \
	" deleted, locked OR EXISTS(SELECT 1 FROM actions a WHERE a.ds_id = dsets.id)"

static int ds_modules_load(struct store *s, struct store_ds *d)
{
	int ret = 0;
	size_t cap = 0;
	sqlite3_stmt *st = db_prep(s, "SELECT module_id FROM ds_modules WHERE ds_id = ? ORDER BY module_id");
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, d->id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (d->n_modules == cap) {
			size_t nc = cap ? cap * 2 : 4;
			int64_t *nv = realloc(d->modules, nc * sizeof(*nv));
			if (!nv) {
				ret = -ENOMEM;
				break;
			}
			d->modules = nv;
			cap = nc;
		}
		d->modules[d->n_modules++] = sqlite3_column_int64(st, 0);
	}
	db_release(s, st);
	return ret;
}

static int ds_row(struct store *s, sqlite3_stmt *st, struct store_ds *d)
{
	memset(d, 0, sizeof(*d));
	d->id = sqlite3_column_int64(st, 0);
	d->name = db_col_dup(st, 1);
	d->version = db_col_dup(st, 2);
	d->type = db_col_dup(st, 3);
	d->description = db_col_dup(st, 4);
	d->created_at = sqlite3_column_int64(st, 5);
	d->modified_at = sqlite3_column_int64(st, 6);
	d->required_migration = sqlite3_column_int(st, 7);
	d->deleted = sqlite3_column_int(st, 8);
	d->locked = sqlite3_column_int(st, 9);
	int ret = (!d->name || !d->version || !d->type) ? -ENOMEM : ds_modules_load(s, d);
	if (ret)
		store_ds_clear(d);
	return ret;
}

static int ds_row_cb(struct store *s, sqlite3_stmt *st, void *elem)
{
	return ds_row(s, st, elem);
}

int store_ds_create(struct store *s, const struct store_ds *in, int64_t *id)
{
	int ret;
	int64_t now = store_now_ms(), new_id = 0;
	pthread_mutex_lock(&s->lock);
	ret = db_begin(s);
	if (ret)
		goto out;
	sqlite3_stmt *st = db_prep(s, "INSERT INTO dsets(name, version, type, description, created_at,"
				   " modified_at, required_migration, locked) VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
	if (!st) {
		ret = db_finish(s, -EIO);
		goto out;
	}
	db_bind_text(st, 1, in->name);
	db_bind_text(st, 2, in->version);
	db_bind_text(st, 3, in->type);
	db_bind_text(st, 4, in->description);
	sqlite3_bind_int64(st, 5, now);
	sqlite3_bind_int64(st, 6, now);
	sqlite3_bind_int(st, 7, in->required_migration);
	sqlite3_bind_int(st, 8, in->locked);
	ret = db_step_done(s, st, "ds create");
	db_release(s, st);
	new_id = sqlite3_last_insert_rowid(s->db);
	for (size_t i = 0; ret == 0 && i < in->n_modules; i++) {
		int64_t exists = 0;
		ret = db_count(s, "SELECT COUNT(*) FROM modules WHERE id = ? AND deleted = 0", NULL,
				 in->modules[i], &exists);
		if (ret == 0 && !exists)
			ret = -ENOENT;
		if (ret)
			break;
		st = db_prep(s, "INSERT OR IGNORE INTO ds_modules(ds_id, module_id) VALUES(?, ?)");
		if (!st) {
			ret = -EIO;
			break;
		}
		sqlite3_bind_int64(st, 1, new_id);
		sqlite3_bind_int64(st, 2, in->modules[i]);
		ret = db_step_done(s, st, "ds module");
		db_release(s, st);
	}
	ret = db_finish(s, ret);
	if (ret == 0)
		*id = new_id;
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int store_ds_get(struct store *s, int64_t id, struct store_ds *out)
{
	int ret = -ENOENT;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = db_prep(s, "SELECT " DS_COLS " FROM dsets WHERE id = ?");
	if (!st) {
		ret = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		ret = ds_row(s, st, out);
	db_release(s, st);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int store_ds_list(struct store *s, int64_t offset, int64_t limit, struct store_ds **out,
		  size_t *n, int64_t *total)
{
	int ret;
	struct store_ds *v = NULL;
	size_t cnt = 0;
	pthread_mutex_lock(&s->lock);
	ret = db_count(s, "SELECT COUNT(*) FROM dsets WHERE deleted = 0", NULL, 0, total);
	if (ret)
		goto out;
	sqlite3_stmt *st = db_prep(s, "SELECT " DS_COLS " FROM dsets WHERE deleted = 0"
				   " ORDER BY id DESC LIMIT ? OFFSET ?");
	if (!st) {
		ret = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, limit);
	sqlite3_bind_int64(st, 2, offset);
	ret = db_collect(s, st, limit, sizeof(*v), ds_row_cb, (void **)&v, &cnt);
out:
	pthread_mutex_unlock(&s->lock);
	if (ret) {
		store_ds_list_free(v, cnt);
		return ret;
	}
	*out = v;
	*n = cnt;
	return 0;
}

int store_ds_delete(struct store *s, int64_t id)
{
	int ret;
	int64_t used = 0, exists = 0;
	pthread_mutex_lock(&s->lock);
	ret = db_begin(s);
	if (ret)
		goto out;
	ret = db_count(s, "SELECT COUNT(*) FROM dsets WHERE id = ?", NULL, id, &exists);
	if (ret == 0 && !exists)
		ret = -ENOENT;
	if (ret == 0)
		ret = db_count(s, "SELECT COUNT(*) FROM actions WHERE ds_id = ?", NULL, id, &used);
	if (ret == 0) {
		sqlite3_stmt *st = db_prep(s, used ? "UPDATE dsets SET deleted = 1 WHERE id = ?"
						: "DELETE FROM dsets WHERE id = ?");
		if (!st)
			ret = -EIO;
		else {
			sqlite3_bind_int64(st, 1, id);
			ret = db_step_done(s, st, "ds delete");
			db_release(s, st);
		}
		if (ret == 0 && !used) {
			st = db_prep(s, "DELETE FROM ds_modules WHERE ds_id = ?");
			if (!st)
				ret = -EIO;
			else {
				sqlite3_bind_int64(st, 1, id);
				ret = db_step_done(s, st, "ds delete");
				db_release(s, st);
			}
		}
	}
	ret = db_finish(s, ret);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}
