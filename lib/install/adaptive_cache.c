/* adaptive_cache.c - slot block indexes in the data directory (adaptive_cache.h). */
#include "abota/adaptive_cache.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "abota/digest.h"
#include "abota/fileio.h"

#define BLOCK 4096u
#define INDEX_NAME "block-hash-index"

/* The slot status's sha256 (lowercase hex, as manifests have it): a path component. */
static bool valid_digest(const char *h)
{
	uint8_t bin[32];
	return h && digest_from_hex(h, bin, sizeof(bin));
}

static bool valid_slot(const char *s)
{
	return s && *s && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static int check_args(const char *data_dir, const char *slot, const char *sha256_hex,
		      struct abota_error *err)
{
	if (!data_dir || !valid_slot(slot) || !valid_digest(sha256_hex))
		return abota_error_set(err, -EINVAL,
				       "adaptive index cache: no cache for slot '%s', image '%s'",
				       slot ? slot : "", sha256_hex ? sha256_hex : "");
	return 0;
}

int adaptive_cache_load(const char *data_dir, const char *slot, const char *sha256_hex,
			uint64_t size, struct adaptive_index *out, struct abota_error *err)
{
	int ret = check_args(data_dir, slot, sha256_hex, err);
	if (ret < 0)
		return ret;
	if (size == 0 || size % BLOCK != 0)
		return -ENOENT;
	uint64_t n = size / BLOCK;
	/* abota's compact form first: a quarter of the bytes to read */
	static const struct {
		const char *suffix;
		unsigned len;
	} forms[] = { { "-64", 8 }, { "", 32 } };
	for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
		if (n > SIZE_MAX / forms[f].len - 1)
			return -ENOENT;
		char path[4096];
		if (snprintf(path, sizeof(path), "%s/slot.%s/hash-%s/%s%s", data_dir, slot,
			     sha256_hex, INDEX_NAME, forms[f].suffix) >= (int)sizeof(path))
			return -ENOENT;
		char *data = NULL;
		size_t len = 0;
		size_t want = (size_t)n * forms[f].len;
		if (fileio_read_all(path, want + 1, &data, &len, NULL) < 0)
			continue; /* missing, unreadable or larger than the image's index */
		if (len != want) {
			free(data);
			continue;
		}
		*out = (struct adaptive_index){ .hashes = (uint8_t *)data,
						.hash_len = forms[f].len, .n = n };
		return 0;
	}
	return -ENOENT;
}

/* Removes <dir>/hash-* except keep. */
static void remove_stale(const char *dir, const char *keep)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "hash-", 5) != 0 || strcmp(e->d_name, keep) == 0)
			continue;
		char path[4096];
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < (int)sizeof(path))
			fileio_remove_tree(path);
	}
	closedir(d);
}

static int make_dir(const char *path, struct abota_error *err)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
	return 0;
}

int adaptive_cache_store(const char *data_dir, const char *slot, const char *sha256_hex,
			 const struct adaptive_index *idx, struct abota_error *err)
{
	int ret = check_args(data_dir, slot, sha256_hex, err);
	if (ret < 0)
		return ret;
	if (!idx || (idx->hash_len != 8 && idx->hash_len != 32) || idx->n == 0 ||
	    idx->n > SIZE_MAX / idx->hash_len)
		return abota_error_set(err, -EINVAL, "adaptive index cache: invalid index");
	char dir[4096], sub[4200], path[4300], keep[80];
	snprintf(keep, sizeof(keep), "hash-%s", sha256_hex);
	if (snprintf(dir, sizeof(dir), "%s/slot.%s", data_dir, slot) >= (int)sizeof(dir))
		return abota_error_set(err, -ENAMETOOLONG, "adaptive index cache: path too long");
	snprintf(sub, sizeof(sub), "%s/%s", dir, keep);
	snprintf(path, sizeof(path), "%s/%s-64", sub, INDEX_NAME);
	/* Always the compact form: a quarter of the space in the data directory (8 MiB for a
	 * 4 GiB slot); 8 bytes of a SHA-256 identify a block as well (adaptive.h). */
	uint8_t *compact = NULL;
	const uint8_t *data = idx->hashes;
	if (idx->hash_len == 32) {
		if (!(compact = malloc((size_t)idx->n * 8)))
			return abota_error_set(err, -ENOMEM, "out of memory");
		for (uint64_t b = 0; b < idx->n; b++)
			memcpy(compact + b * 8, idx->hashes + b * 32, 8);
		data = compact;
	}
	/* The old content's index first: from here on it describes nothing the slot holds. */
	remove_stale(dir, keep);
	ret = make_dir(dir, err);
	if (ret == 0)
		ret = make_dir(sub, err);
	if (ret == 0)
		ret = fileio_write_atomic(path, data, (size_t)idx->n * 8, 0644, err);
	free(compact);
	if (ret == 0)
		ret = fileio_fsync_dir(dir, 1, err);
	if (ret < 0)
		abota_error_prefix(err, "adaptive index cache of slot %s", slot);
	return ret;
}

void adaptive_index_free(struct adaptive_index *idx)
{
	if (!idx)
		return;
	free(idx->hashes);
	*idx = (struct adaptive_index){ 0 };
}
