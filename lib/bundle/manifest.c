/* manifest.c - RAUC manifest parsing, validation and emission. */
#include "abota/manifest.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abota/keyfile.h"
#include "abota/log.h"

/* Image sizes above this cannot be real and would invite overflow in
 * offset arithmetic downstream. */
#define MANIFEST_MAX_IMAGE_SIZE (UINT64_C(1) << 62)
#define MANIFEST_MAX_IMAGES 256

const char *bundle_format_name(enum bundle_format f)
{
	switch (f) {
	case BUNDLE_FORMAT_PLAIN: return "plain";
	case BUNDLE_FORMAT_VERITY: return "verity";
	case BUNDLE_FORMAT_CRYPT: return "crypt";
	}
	return "unknown";
}

void manifest_free(struct manifest *m)
{
	if (!m)
		return;
	free(m->compatible);
	free(m->version);
	free(m->description);
	free(m->build);
	free(m->min_rauc_version);
	free(m->hooks_filename);
	free(m->handler_filename);
	free(m->handler_args);
	for (size_t i = 0; i < m->n_images; i++) {
		free(m->images[i].slotclass);
		free(m->images[i].variant);
		free(m->images[i].filename);
		free(m->images[i].type);
	}
	free(m->images);
	for (size_t i = 0; i < m->n_meta; i++) {
		for (size_t k = 0; k < m->meta[i].n_kv; k++) {
			free(m->meta[i].kv[k].key);
			free(m->meta[i].kv[k].value);
		}
		free(m->meta[i].kv);
		free(m->meta[i].label);
	}
	free(m->meta);
	free(m);
}

struct ctx {
	struct keyfile *kf;
	const char *name;
	struct abota_error *err;
};

static int err_at(struct ctx *c, const char *group, const char *key, int code, const char *fmt,
		  const char *arg)
{
	unsigned line = key ? keyfile_key_line(c->kf, group, key) : 0;
	char what[512];
	snprintf(what, sizeof(what), fmt, arg ? arg : "");
	if (line)
		return abota_error_set(c->err, code, "%s:%u: [%s] %s: %s", c->name, line, group, key,
				       what);
	return abota_error_set(c->err, code, "%s: [%s]%s%s: %s", c->name, group, key ? " " : "",
			       key ? key : "", what);
}

/* Optional string; empty counts as absent.  Copies into *out. */
static int get_opt(struct ctx *c, const char *group, const char *key, char **out)
{
	const char *v;
	int ret = keyfile_get_string(c->kf, group, key, &v, c->err);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	if (strlen(v) > MANIFEST_MAX_VALUE)
		return err_at(c, group, key, -EINVAL, "value longer than %s bytes", "4096");
	if (v[0] == '\0')
		return 0;
	*out = strdup(v);
	return *out ? 0 : abota_error_set(c->err, -ENOMEM, "out of memory");
}

static int get_hex(struct ctx *c, const char *group, const char *key, char out[65], bool *present)
{
	const char *v;
	int ret = keyfile_get_string(c->kf, group, key, &v, c->err);
	*present = false;
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	if (strlen(v) != 64 || strspn(v, "0123456789abcdef") != 64)
		return err_at(c, group, key, -EINVAL, "must be 64 lowercase hexadecimal characters%s",
			      "");
	memcpy(out, v, 65);
	*present = true;
	return 0;
}

static bool valid_filename(const char *f)
{
	size_t len = strlen(f);
	if (len == 0 || len > 255 || strcmp(f, ".") == 0 || strcmp(f, "..") == 0)
		return false;
	for (const unsigned char *p = (const unsigned char *)f; *p; p++)
		if (*p == '/' || *p < 0x20 || *p == 0x7F)
			return false;
	return true;
}

static bool valid_meta_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return false;
	return true;
}

static const char *const known_types[] = {
	"raw", "ext4", "vfat", "squashfs", "tar", "ubifs", "emptyfs", "ext4-caibx", "vfat-caibx",
	"ubifs-caibx", "raw-caibx", "squashfs-caibx", "caidx", "catar", NULL,
};

static int parse_image(struct ctx *c, const char *group, enum manifest_mode mode,
		       struct manifest_image *img)
{
	int ret;
	const char *spec = group + strlen("image.");
	if (strchr(spec, '/'))
		return err_at(c, group, NULL, -ENOTSUP, "artifacts (image.<repo>/<name>) are not supported%s", "");
	const char *dot = strchr(spec, '.');
	img->slotclass = dot ? strndup(spec, (size_t)(dot - spec)) : strdup(spec);
	if (!img->slotclass)
		return abota_error_set(c->err, -ENOMEM, "out of memory");
	if (dot) {
		img->variant = strdup(dot + 1);
		if (!img->variant)
			return abota_error_set(c->err, -ENOMEM, "out of memory");
	}
	if (img->slotclass[0] == '\0' || (img->variant && (img->variant[0] == '\0' ||
							   strchr(img->variant, '.'))))
		return err_at(c, group, NULL, -EINVAL, "invalid image group name%s", "");

	const char *v;
	ret = keyfile_get_string(c->kf, group, "filename", &v, c->err);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	if (ret == 0) {
		if (!valid_filename(v))
			return err_at(c, group, "filename", -EINVAL,
				      "'%s' is not a plain file name (no '/', '..', control characters; at most 255 bytes)",
				      v);
		img->filename = strdup(v);
		if (!img->filename)
			return abota_error_set(c->err, -ENOMEM, "out of memory");
	}

	bool has_sha = false;
	ret = get_hex(c, group, "sha256", img->sha256, &has_sha);
	if (ret < 0)
		return ret;
	ret = keyfile_get_u64(c->kf, group, "size", &img->size, c->err);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	img->has_size = ret == 0;
	if (img->has_size && img->size > MANIFEST_MAX_IMAGE_SIZE)
		return err_at(c, group, "size", -EINVAL, "image size is out of range%s", "");
	if (mode == MANIFEST_INPUT && (has_sha || img->has_size))
		return err_at(c, group, has_sha ? "sha256" : "size", -EINVAL,
			      "is generated by 'abota bundle' and must not be in the input manifest%s",
			      "");

	ret = get_opt(c, group, "type", &img->type);
	if (ret < 0)
		return ret;
	if (img->type) {
		bool ok = false;
		for (const char *const *t = known_types; *t; t++)
			if (strcmp(*t, img->type) == 0)
				ok = true;
		if (!ok)
			return err_at(c, group, "type", -EINVAL, "unknown image type '%s'", img->type);
	}

	const char *const *list;
	size_t n;
	ret = keyfile_get_list(c->kf, group, "hooks", &list, &n, c->err);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	for (size_t i = 0; ret == 0 && i < n; i++) {
		if (strcmp(list[i], "pre-install") == 0)
			img->hook_pre_install = true;
		else if (strcmp(list[i], "install") == 0)
			img->hook_install = true;
		else if (strcmp(list[i], "post-install") == 0)
			img->hook_post_install = true;
		else
			return err_at(c, group, "hooks", -EINVAL, "unknown hook '%s'", list[i]);
	}
	if (img->hook_install && (img->hook_pre_install || img->hook_post_install))
		return err_at(c, group, "hooks", -EINVAL,
			      "'install' cannot be combined with 'pre-install' or 'post-install'%s", "");

	ret = keyfile_get_list(c->kf, group, "adaptive", &list, &n, c->err);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	for (size_t i = 0; ret == 0 && i < n; i++) {
		if (strcmp(list[i], "block-hash-index") == 0)
			img->adaptive_block_hash_index = true;
		else
			return err_at(c, group, "adaptive", -EINVAL, "unsupported adaptive method '%s'",
				      list[i]);
	}

	bool needs_file = !img->hook_install && !(img->type && strcmp(img->type, "emptyfs") == 0);
	if (!img->filename && needs_file)
		return err_at(c, group, NULL, -EINVAL, "missing key 'filename'%s", "");
	if (mode == MANIFEST_BUNDLE && img->filename && (!has_sha || !img->has_size))
		return err_at(c, group, NULL, -EINVAL,
			      "image '%s' has no sha256 or size: every installed byte must be covered by the signed manifest",
			      img->filename);
	return 0;
}

static int parse_meta(struct ctx *c, const char *group, struct manifest_meta *meta)
{
	const char *label = group + strlen("meta.");
	if (!valid_meta_name(label))
		return err_at(c, group, NULL, -EINVAL, "meta label must use only [A-Za-z0-9_-]%s", "");
	meta->label = strdup(label);
	size_t n = keyfile_key_count(c->kf, group);
	meta->kv = calloc(n ? n : 1, sizeof(*meta->kv));
	if (!meta->label || !meta->kv)
		return abota_error_set(c->err, -ENOMEM, "out of memory");
	keyfile_consume_group(c->kf, group);
	for (size_t i = 0; i < n; i++) {
		const char *key = keyfile_key_name(c->kf, group, i);
		const char *v;
		if (!valid_meta_name(key))
			return err_at(c, group, key, -EINVAL, "meta key must use only [A-Za-z0-9_-]%s", "");
		int ret = keyfile_get_nonempty(c->kf, group, key, &v, c->err);
		if (ret < 0)
			return ret;
		meta->kv[i].key = strdup(key);
		meta->kv[i].value = strdup(v);
		meta->n_kv++;
		if (!meta->kv[i].key || !meta->kv[i].value)
			return abota_error_set(c->err, -ENOMEM, "out of memory");
	}
	return 0;
}

int manifest_parse(const char *data, size_t len, const char *name, enum manifest_mode mode,
		   struct manifest **out, struct abota_error *err)
{
	struct keyfile *kf = NULL;
	struct manifest *m = NULL;
	log_debug("%s: parsing the manifest (%zu bytes)", name, len);
	if (len > MANIFEST_MAX_SIZE)
		return abota_error_set(err, -EFBIG, "%s: manifest larger than %d bytes", name,
				       MANIFEST_MAX_SIZE);
	int ret = keyfile_parse(data, len, name, &kf, err);
	if (ret < 0)
		return ret;
	struct ctx c = { .kf = kf, .name = name, .err = err };
	m = calloc(1, sizeof(*m));
	if (!m) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}

	/* [update] */
	if (!keyfile_has_group(kf, "update")) {
		ret = abota_error_set(err, -EINVAL, "%s: missing group [update]", name);
		goto out;
	}
	const char *v;
	ret = keyfile_get_nonempty(kf, "update", "compatible", &v, err);
	if (ret == -ENOENT)
		ret = abota_error_set(err, -EINVAL, "%s: [update] missing key 'compatible'", name);
	if (ret < 0)
		goto out;
	if (strlen(v) > MANIFEST_MAX_VALUE) {
		ret = err_at(&c, "update", "compatible", -EINVAL, "value longer than %s bytes", "4096");
		goto out;
	}
	m->compatible = strdup(v);
	if (!m->compatible) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if ((ret = get_opt(&c, "update", "version", &m->version)) < 0 ||
	    (ret = get_opt(&c, "update", "description", &m->description)) < 0 ||
	    (ret = get_opt(&c, "update", "build", &m->build)) < 0 ||
	    (ret = get_opt(&c, "update", "min-rauc-version", &m->min_rauc_version)) < 0)
		goto out;

	/* [bundle] */
	m->has_bundle_section = keyfile_has_group(kf, "bundle");
	m->format = BUNDLE_FORMAT_PLAIN;
	if (m->has_bundle_section) {
		keyfile_consume_group(kf, "bundle");
		ret = keyfile_get_string(kf, "bundle", "format", &v, err);
		if (ret < 0 && ret != -ENOENT)
			goto out;
		if (ret == 0) {
			if (strcmp(v, "plain") == 0)
				m->format = BUNDLE_FORMAT_PLAIN;
			else if (strcmp(v, "verity") == 0)
				m->format = BUNDLE_FORMAT_VERITY;
			else if (strcmp(v, "crypt") == 0)
				m->format = BUNDLE_FORMAT_CRYPT;
			else {
				ret = err_at(&c, "bundle", "format", -EINVAL,
					     "unknown bundle format '%s' (plain, verity or crypt)", v);
				goto out;
			}
		}
		bool has_hash, has_salt, has_key;
		if ((ret = get_hex(&c, "bundle", "verity-hash", m->verity_hash, &has_hash)) < 0 ||
		    (ret = get_hex(&c, "bundle", "verity-salt", m->verity_salt, &has_salt)) < 0 ||
		    (ret = get_hex(&c, "bundle", "crypt-key", m->crypt_key, &has_key)) < 0)
			goto out;
		ret = keyfile_get_u64(kf, "bundle", "verity-size", &m->verity_size, err);
		if (ret < 0 && ret != -ENOENT)
			goto out;
		bool has_size = ret == 0;
		ret = 0;
		if (mode == MANIFEST_INPUT && (has_hash || has_salt || has_size || has_key)) {
			ret = err_at(&c, "bundle", has_hash ? "verity-hash" : has_salt ? "verity-salt" : has_size ? "verity-size" : "crypt-key",
				     -EINVAL, "is generated by 'abota bundle' and must not be in the input manifest%s", "");
			goto out;
		}
		if (mode == MANIFEST_BUNDLE && m->format != BUNDLE_FORMAT_PLAIN) {
			if (!has_hash || !has_salt || !has_size) {
				ret = abota_error_set(err, -EINVAL,
						      "%s: [bundle] format=%s needs verity-hash, verity-salt and verity-size",
						      name, bundle_format_name(m->format));
				goto out;
			}
			if (m->verity_size == 0 || m->verity_size % 4096 != 0) {
				ret = err_at(&c, "bundle", "verity-size", -EINVAL,
					     "must be a non-zero multiple of 4096%s", "");
				goto out;
			}
			if (m->format == BUNDLE_FORMAT_CRYPT && !has_key) {
				ret = abota_error_set(err, -EINVAL, "%s: [bundle] format=crypt needs crypt-key", name);
				goto out;
			}
		}
		if (m->format == BUNDLE_FORMAT_PLAIN && (has_hash || has_salt || has_size || has_key)) {
			ret = abota_error_set(err, -EINVAL,
					      "%s: [bundle] a plain bundle must not carry verity or crypt keys",
					      name);
			goto out;
		}
	}

	/* [hooks] */
	if (keyfile_has_group(kf, "hooks")) {
		keyfile_consume_group(kf, "hooks");
		if ((ret = get_opt(&c, "hooks", "filename", &m->hooks_filename)) < 0)
			goto out;
		if (m->hooks_filename && !valid_filename(m->hooks_filename)) {
			ret = err_at(&c, "hooks", "filename", -EINVAL, "'%s' is not a plain file name",
				     m->hooks_filename);
			goto out;
		}
		const char *const *list;
		size_t n;
		ret = keyfile_get_list(kf, "hooks", "hooks", &list, &n, err);
		if (ret < 0 && ret != -ENOENT)
			goto out;
		for (size_t i = 0; ret == 0 && i < n; i++) {
			if (strcmp(list[i], "install-check") != 0) {
				ret = err_at(&c, "hooks", "hooks", -EINVAL, "unknown hook '%s'", list[i]);
				goto out;
			}
			m->hook_install_check = true;
		}
		ret = 0;
	}

	/* [handler] */
	if (keyfile_has_group(kf, "handler")) {
		keyfile_consume_group(kf, "handler");
		if ((ret = get_opt(&c, "handler", "filename", &m->handler_filename)) < 0 ||
		    (ret = get_opt(&c, "handler", "args", &m->handler_args)) < 0)
			goto out;
		if (m->handler_args && !m->handler_filename) {
			ret = abota_error_set(err, -EINVAL, "%s: [handler] 'args' given without 'filename'",
					      name);
			goto out;
		}
		if (m->handler_filename && !valid_filename(m->handler_filename)) {
			ret = err_at(&c, "handler", "filename", -EINVAL, "'%s' is not a plain file name",
				     m->handler_filename);
			goto out;
		}
	}

	/* [image.*], [meta.*], [rollout] */
	size_t ng = keyfile_group_count(kf);
	m->images = calloc(ng ? ng : 1, sizeof(*m->images));
	m->meta = calloc(ng ? ng : 1, sizeof(*m->meta));
	if (!m->images || !m->meta) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	bool any_hooks = m->hook_install_check;
	for (size_t i = 0; i < ng; i++) {
		const char *g = keyfile_group_name(kf, i);
		if (strncmp(g, "image.", 6) == 0) {
			if (m->n_images == MANIFEST_MAX_IMAGES) {
				ret = abota_error_set(err, -EINVAL, "%s: more than %d images", name,
						      MANIFEST_MAX_IMAGES);
				goto out;
			}
			struct manifest_image *img = &m->images[m->n_images++];
			ret = parse_image(&c, g, mode, img);
			if (ret < 0)
				goto out;
			any_hooks |= img->hook_install || img->hook_pre_install || img->hook_post_install;
		} else if (strncmp(g, "meta.", 5) == 0) {
			ret = parse_meta(&c, g, &m->meta[m->n_meta++]);
			if (ret < 0)
				goto out;
		} else if (strcmp(g, "rollout") == 0) {
			/* Accepted and ignored, as RAUC >= 1.14 does; never emitted. */
			keyfile_consume_group(kf, g);
			for (size_t k = 0; k < keyfile_key_count(kf, g); k++) {
				const char *dummy;
				ret = keyfile_get_string(kf, g, keyfile_key_name(kf, g, k), &dummy, err);
				if (ret < 0)
					goto out;
			}
		}
	}
	if (any_hooks && !m->hooks_filename) {
		ret = abota_error_set(err, -EINVAL,
				      "%s: hooks are declared but [hooks] has no 'filename'", name);
		goto out;
	}
	if (m->n_images == 0 && !m->handler_filename) {
		ret = abota_error_set(err, -EINVAL, "%s: no [image.<slot-class>] group", name);
		goto out;
	}
	ret = keyfile_check_consumed(kf, err);
	if (ret < 0)
		goto out;
	*out = m;
	m = NULL;
out:
	manifest_free(m);
	keyfile_free(kf);
	return ret;
}

int manifest_to_data(const struct manifest *m, bool with_verity, char **out, size_t *len,
		     struct abota_error *err)
{
	int ret = -ENOMEM;
	struct keyfile *kf = keyfile_new("manifest.raucm");
	if (!kf)
		goto out;
#define SET(g, k, v)                                                   \
	do {                                                           \
		if ((v) && keyfile_set_string(kf, g, k, v) < 0)        \
			goto out;                                      \
	} while (0)
	SET("update", "compatible", m->compatible);
	SET("update", "version", m->version);
	SET("update", "description", m->description);
	SET("update", "build", m->build);
	/* Only the keys the manifest carries: an input manifest (format=verity,
	 * nothing generated yet) wrote "verity-hash=" and the like, which no
	 * parser accepts (found by fuzz_manifest's round trip). */
	if (with_verity && m->format == BUNDLE_FORMAT_CRYPT && m->crypt_key[0])
		SET("bundle", "crypt-key", m->crypt_key);
	SET("bundle", "format", bundle_format_name(m->format));
	if (with_verity && m->format != BUNDLE_FORMAT_PLAIN) {
		if (m->verity_hash[0])
			SET("bundle", "verity-hash", m->verity_hash);
		if (m->verity_salt[0])
			SET("bundle", "verity-salt", m->verity_salt);
		if (m->verity_size && keyfile_set_u64(kf, "bundle", "verity-size", m->verity_size) < 0)
			goto out;
	}
	SET("handler", "filename", m->handler_filename);
	SET("handler", "args", m->handler_args);
	SET("hooks", "filename", m->hooks_filename);
	if (m->hook_install_check) {
		const char *h[] = { "install-check" };
		if (keyfile_set_list(kf, "hooks", "hooks", h, 1) < 0)
			goto out;
	}
	for (size_t i = 0; i < m->n_images; i++) {
		const struct manifest_image *img = &m->images[i];
		char group[600];
		if (img->variant)
			snprintf(group, sizeof(group), "image.%s.%s", img->slotclass, img->variant);
		else
			snprintf(group, sizeof(group), "image.%s", img->slotclass);
		if (img->sha256[0])
			SET(group, "sha256", img->sha256);
		if (img->has_size && keyfile_set_u64(kf, group, "size", img->size) < 0)
			goto out;
		SET(group, "filename", img->filename);
		SET(group, "type", img->type);
		const char *hooks[3];
		size_t nh = 0;
		if (img->hook_pre_install)
			hooks[nh++] = "pre-install";
		if (img->hook_install)
			hooks[nh++] = "install";
		if (img->hook_post_install)
			hooks[nh++] = "post-install";
		if (nh && keyfile_set_list(kf, group, "hooks", hooks, nh) < 0)
			goto out;
		if (img->adaptive_block_hash_index) {
			const char *a[] = { "block-hash-index" };
			if (keyfile_set_list(kf, group, "adaptive", a, 1) < 0)
				goto out;
		}
	}
	for (size_t i = 0; i < m->n_meta; i++) {
		char group[600];
		snprintf(group, sizeof(group), "meta.%s", m->meta[i].label);
		for (size_t k = 0; k < m->meta[i].n_kv; k++)
			SET(group, m->meta[i].kv[k].key, m->meta[i].kv[k].value);
	}
#undef SET
	ret = keyfile_to_data(kf, out, len);
out:
	keyfile_free(kf);
	if (ret < 0)
		return abota_error_set(err, ret, "manifest: cannot serialize");
	return 0;
}

const char *manifest_image_type(const struct manifest_image *img)
{
	if (img->type)
		return img->type;
	if (!img->filename)
		return NULL;
	/* RAUC's filename patterns, first match wins (rauc-compat.md 2.5);
	 * *.bin is raw as ST's meta-st-ota patch makes it. */
	static const struct {
		const char *glob, *type;
	} map[] = {
		{ "*.ext4.caibx", "ext4-caibx" }, { "*.vfat.caibx", "vfat-caibx" },
		{ "*.ubifs.caibx", "ubifs-caibx" }, { "*.img.caibx", "raw-caibx" },
		{ "*.squashfs.caibx", "squashfs-caibx" }, { "*.squashfs-*.caibx", "squashfs-caibx" },
		{ "*.catar", "catar" }, { "*.caidx", "caidx" }, { "*.tar*", "tar" },
		{ "*.tgz", "tar" }, { "*.ext4", "ext4" }, { "*.vfat", "vfat" }, { "*.img", "raw" },
		{ "*.bin", "raw" }, { "*.squashfs-*", "squashfs" }, { "*.squashfs", "squashfs" },
		{ "*.ubifs", "ubifs" },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (fnmatch(map[i].glob, img->filename, 0) == 0)
			return map[i].type;
	return NULL;
}

int manifest_check_variants(const struct manifest *m, const char *variant,
			    struct abota_error *err)
{
	for (size_t i = 0; i < m->n_images; i++) {
		const struct manifest_image *img = &m->images[i];
		bool usable = false;
		for (size_t k = 0; k < m->n_images && !usable; k++) {
			const struct manifest_image *o = &m->images[k];
			if (strcmp(o->slotclass, img->slotclass) != 0)
				continue;
			usable = !o->variant || (variant && strcmp(o->variant, variant) == 0);
		}
		if (!usable)
			return abota_error_set(err, -ENOENT,
					       "no image for slot class '%s' matches the system variant '%s' (the bundle has only '%s')",
					       img->slotclass, variant ? variant : "(none)", img->variant);
	}
	return 0;
}
