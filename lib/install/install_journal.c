/* install_journal.c - the resume journal (see install_journal.h). */
#include "abota/install_journal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abota/fileio.h"
#include "abota/keyfile.h"
#include "abota/powercut.h"
#include "abota/slot_status.h"

/* A journal is a few hundred bytes; anything much larger is not ours. */
#define JOURNAL_MAX_SIZE (64u << 10)
#define JOURNAL_MAX_SLOTS 64u

static void slot_clear(struct journal_slot *s)
{
	free(s->name);
	free(s->image);
	free(s->sha256);
}

void install_journal_free(struct install_journal *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->n_slots; i++)
		slot_clear(&j->slots[i]);
	free(j->slots);
	free(j->bundle_hash);
	free(j->bundle);
	free(j->bundle_version);
	free(j->target);
	free(j->transaction);
	free(j->started);
	free(j);
}

static int dup_opt(char **dst, const char *src)
{
	if (!src) {
		*dst = NULL;
		return 0;
	}
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

int install_journal_new(const char *bundle_hash, const char *bundle, const char *bundle_version,
			const char *target, const char *transaction,
			struct install_journal **out, struct abota_error *err)
{
	struct install_journal *j = calloc(1, sizeof(*j));
	char ts[SLOT_STATUS_TIMESTAMP_LEN];
	slot_status_timestamp_now(ts);
	if (!j || dup_opt(&j->bundle_hash, bundle_hash) < 0 || dup_opt(&j->bundle, bundle) < 0 ||
	    dup_opt(&j->bundle_version, bundle_version) < 0 || dup_opt(&j->target, target) < 0 ||
	    dup_opt(&j->transaction, transaction) < 0 || dup_opt(&j->started, ts) < 0) {
		install_journal_free(j);
		return abota_error_set(err, -ENOMEM, "out of memory");
	}
	*out = j;
	return 0;
}

struct journal_slot *install_journal_find(const struct install_journal *j, const char *name)
{
	for (size_t i = 0; i < j->n_slots; i++)
		if (strcmp(j->slots[i].name, name) == 0)
			return &j->slots[i];
	return NULL;
}

struct journal_slot *install_journal_add_slot(struct install_journal *j, const char *name,
					      const char *image, const char *sha256,
					      uint64_t size)
{
	struct journal_slot *s = install_journal_find(j, name);
	if (s)
		return s;
	struct journal_slot *n = realloc(j->slots, (j->n_slots + 1) * sizeof(*n));
	if (!n)
		return NULL;
	j->slots = n;
	s = &n[j->n_slots];
	memset(s, 0, sizeof(*s));
	s->size = size;
	if (dup_opt(&s->name, name) < 0 || dup_opt(&s->image, image) < 0 ||
	    dup_opt(&s->sha256, sha256) < 0) {
		slot_clear(s);
		return NULL;
	}
	j->n_slots++;
	return s;
}

void install_journal_set_progress(struct journal_slot *s, uint64_t verified,
				  const struct digest_sha256_state *hash)
{
	s->verified = verified;
	if (verified < s->size && hash)
		s->hash = *hash;
	else
		memset(&s->hash, 0, sizeof(s->hash));
}

void install_journal_totals(const struct install_journal *j, uint64_t *verified,
			    uint64_t *total)
{
	uint64_t v = 0, t = 0;
	for (size_t i = 0; i < j->n_slots; i++) {
		v += j->slots[i].verified;
		t += j->slots[i].size;
	}
	*verified = v;
	*total = t;
}

/* --- reading --- */

static int get_str(struct keyfile *kf, const char *group, const char *key, bool required,
		   char **out, struct abota_error *err)
{
	const char *v = NULL;
	int ret = keyfile_get_nonempty(kf, group, key, &v, err);
	if (ret == -ENOENT) {
		if (!required)
			return 0;
		return abota_error_set(err, -EINVAL, "%s: [%s]: missing key '%s'", keyfile_name(kf),
				       group, key);
	}
	if (ret < 0)
		return ret;
	*out = strdup(v);
	return *out ? 0 : abota_error_set(err, -ENOMEM, "out of memory");
}

static int get_u64(struct keyfile *kf, const char *group, const char *key, uint64_t *out,
		   struct abota_error *err)
{
	int ret = keyfile_get_u64(kf, group, key, out, err);
	if (ret == -ENOENT)
		return abota_error_set(err, -EINVAL, "%s: [%s]: missing key '%s'", keyfile_name(kf),
				       group, key);
	return ret;
}

static int bad(struct keyfile *kf, const char *group, const char *key, const char *why,
	       struct abota_error *err)
{
	return abota_error_set(err, -EINVAL, "%s:%u: [%s] %s: %s", keyfile_name(kf),
			       keyfile_key_line(kf, group, key), group, key, why);
}

static int load_slot(struct keyfile *kf, const char *group, struct journal_slot *s,
		     struct abota_error *err)
{
	int ret;
	const char *hs = NULL;
	if (!(s->name = strdup(group + 5)))
		return abota_error_set(err, -ENOMEM, "out of memory");
	if ((ret = get_str(kf, group, "image", true, &s->image, err)) < 0 ||
	    (ret = get_str(kf, group, "sha256", true, &s->sha256, err)) < 0 ||
	    (ret = get_u64(kf, group, "size", &s->size, err)) < 0 ||
	    (ret = get_u64(kf, group, "verified", &s->verified, err)) < 0)
		return ret;
	uint8_t bin[DIGEST_SHA256_LEN];
	if (strlen(s->sha256) != DIGEST_SHA256_HEX_LEN || !digest_from_hex(s->sha256, bin, sizeof(bin)))
		return bad(kf, group, "sha256", "not a SHA-256 in lowercase hex", err);
	if (s->verified > s->size)
		return bad(kf, group, "verified", "larger than size", err);
	ret = keyfile_get_nonempty(kf, group, "hash-state", &hs, err);
	bool partial = s->verified > 0 && s->verified < s->size;
	if (ret == -ENOENT && partial)
		return abota_error_set(err, -EINVAL, "%s: [%s]: missing key 'hash-state'",
				       keyfile_name(kf), group);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	if (ret == 0 && !partial)
		return bad(kf, group, "hash-state", "only allowed while the slot is partly written", err);
	if (ret == 0 && (!digest_sha256_state_parse(hs, &s->hash) || s->hash.length != s->verified))
		return bad(kf, group, "hash-state", "malformed or not at the verified offset", err);
	return 0;
}

int install_journal_load(const char *path, struct install_journal **out,
			 struct abota_error *err)
{
	struct keyfile *kf = NULL;
	struct install_journal *j = NULL;
	struct abota_error e = { 0 };
	int ret = keyfile_load(path, JOURNAL_MAX_SIZE, &kf, &e);
	if (ret == -ENOENT)
		return ret;
	if (ret < 0)
		goto fail;
	if (!(j = calloc(1, sizeof(*j)))) {
		ret = abota_error_set(&e, -ENOMEM, "out of memory");
		goto fail;
	}
	if ((ret = get_str(kf, "install", "bundle-hash", true, &j->bundle_hash, &e)) < 0 ||
	    (ret = get_str(kf, "install", "bundle", true, &j->bundle, &e)) < 0 ||
	    (ret = get_str(kf, "install", "bundle-version", false, &j->bundle_version, &e)) < 0 ||
	    (ret = get_str(kf, "install", "target", true, &j->target, &e)) < 0 ||
	    (ret = get_str(kf, "install", "transaction", true, &j->transaction, &e)) < 0 ||
	    (ret = get_str(kf, "install", "started", true, &j->started, &e)) < 0)
		goto fail;
	for (size_t g = 0; g < keyfile_group_count(kf); g++) {
		const char *name = keyfile_group_name(kf, g);
		if (strncmp(name, "slot.", 5) != 0 || name[5] == '\0')
			continue; /* reported by keyfile_check_consumed */
		if (j->n_slots == JOURNAL_MAX_SLOTS) {
			ret = abota_error_set(&e, -EINVAL, "%s: more than %u slots", path,
					      JOURNAL_MAX_SLOTS);
			goto fail;
		}
		struct journal_slot *n = realloc(j->slots, (j->n_slots + 1) * sizeof(*n));
		if (!n) {
			ret = abota_error_set(&e, -ENOMEM, "out of memory");
			goto fail;
		}
		j->slots = n;
		memset(&n[j->n_slots], 0, sizeof(*n));
		j->n_slots++;
		ret = load_slot(kf, name, &n[j->n_slots - 1], &e);
		if (ret < 0)
			goto fail;
	}
	ret = keyfile_check_consumed(kf, &e);
	if (ret < 0)
		goto fail;
	keyfile_free(kf);
	*out = j;
	return 0;
fail:
	keyfile_free(kf);
	install_journal_free(j);
	if (err)
		*err = e;
	return ret;
}

/* --- writing --- */

int install_journal_save(const struct install_journal *j, const char *path,
			 struct abota_error *err)
{
	struct keyfile *kf = keyfile_new(path);
	char *data = NULL;
	size_t len = 0;
	int ret = -ENOMEM;
	if (!kf)
		goto out;
	if (keyfile_set_string(kf, "install", "bundle-hash", j->bundle_hash) < 0 ||
	    keyfile_set_string(kf, "install", "bundle", j->bundle) < 0 ||
	    (j->bundle_version &&
	     keyfile_set_string(kf, "install", "bundle-version", j->bundle_version) < 0) ||
	    keyfile_set_string(kf, "install", "target", j->target) < 0 ||
	    keyfile_set_string(kf, "install", "transaction", j->transaction) < 0 ||
	    keyfile_set_string(kf, "install", "started", j->started) < 0)
		goto out;
	for (size_t i = 0; i < j->n_slots; i++) {
		const struct journal_slot *s = &j->slots[i];
		char g[300], hs[DIGEST_SHA256_STATE_TEXT_LEN + 1];
		if (snprintf(g, sizeof(g), "slot.%s", s->name) >= (int)sizeof(g)) {
			ret = -ENAMETOOLONG;
			goto out;
		}
		if (keyfile_set_string(kf, g, "image", s->image) < 0 ||
		    keyfile_set_string(kf, g, "sha256", s->sha256) < 0 ||
		    keyfile_set_u64(kf, g, "size", s->size) < 0 ||
		    keyfile_set_u64(kf, g, "verified", s->verified) < 0)
			goto out;
		if (s->verified > 0 && s->verified < s->size) {
			digest_sha256_state_format(&s->hash, hs);
			if (keyfile_set_string(kf, g, "hash-state", hs) < 0)
				goto out;
		}
	}
	if (keyfile_to_data(kf, &data, &len) < 0)
		goto out;
	/* The data directory may not exist yet on a fresh system. */
	char *slash = strrchr(path, '/');
	if (slash && slash != path) {
		char *dir = strndup(path, (size_t)(slash - path));
		if (!dir)
			goto out;
		int r = mkdir(dir, 0755) < 0 && errno != EEXIST ? -errno : 0;
		if (r < 0)
			abota_error_set(err, r, "%s: %s", dir, strerror(-r));
		free(dir);
		if (r < 0) {
			ret = r;
			goto done;
		}
	}
	ret = fileio_write_atomic_device(path, data, len, 0600, err);
	if (ret < 0)
		abota_error_prefix(err, "resume journal");
	goto done;
out:
	abota_error_set(err, ret, "resume journal %s: %s", path, strerror(-ret));
done:
	free(data);
	keyfile_free(kf);
	return ret;
}

int install_journal_remove(const char *path, struct abota_error *err)
{
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return 0;
	int ret = powercut_point("unlink", path, err);
	if (ret < 0)
		return ret;
	if (unlink(path) < 0 && errno != ENOENT)
		return abota_error_set(err, -errno, "%s: cannot remove: %s", path, strerror(errno));
	return fileio_fsync_dir(path, 0, err);
}
