/* manifest.h - RAUC's manifest.raucm: strict parsing, validation, emission.
 *
 * Parsing is strict like RAUC's (unknown keys/groups, duplicates rejected),
 * so a bundle that abota accepts is one RAUC accepts too.  See
 * specs/rauc-compat.md section 2.
 */
#ifndef ABOTA_MANIFEST_H
#define ABOTA_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abota/error.h"

enum bundle_format {
	BUNDLE_FORMAT_PLAIN = 0,
	BUNDLE_FORMAT_VERITY = 1,
	BUNDLE_FORMAT_CRYPT = 2,
};

const char *bundle_format_name(enum bundle_format f);

/* What the manifest is being read for. */
enum manifest_mode {
	/* The input of `abota bundle`: sha256/size/verity keys must be absent
	 * (they are generated). */
	MANIFEST_INPUT,
	/* A manifest inside a bundle: images need sha256 and size. */
	MANIFEST_BUNDLE,
};

/* Longest accepted free-text value (version, description, ...): well above
 * any real use, far below anything that could hurt. */
#define MANIFEST_MAX_VALUE 4096
/* Largest manifest file accepted. */
#define MANIFEST_MAX_SIZE (256 * 1024)

struct manifest_image {
	char *slotclass;
	char *variant;        /* NULL if none */
	char *filename;       /* NULL only for hooks=install images */
	char sha256[65];      /* lowercase hex, "" if absent */
	uint64_t size;
	bool has_size;
	char *type;           /* explicit `type=` (RAUC 1.15) or NULL */
	bool hook_pre_install, hook_install, hook_post_install;
	bool adaptive_block_hash_index;
};

struct manifest_meta_kv {
	char *key, *value;
};

struct manifest_meta {
	char *label;
	struct manifest_meta_kv *kv;
	size_t n_kv;
};

struct manifest {
	char *compatible;
	char *version, *description, *build; /* NULL if absent or empty */
	char *min_rauc_version;
	bool has_bundle_section;
	enum bundle_format format;
	char verity_hash[65], verity_salt[65]; /* "" if absent */
	uint64_t verity_size;
	char crypt_key[65];
	char *hooks_filename;
	bool hook_install_check;
	char *handler_filename, *handler_args;
	struct manifest_image *images;
	size_t n_images;
	struct manifest_meta *meta;
	size_t n_meta;
};

/* Parses and validates. `name` names the manifest in messages. */
int manifest_parse(const char *data, size_t len, const char *name, enum manifest_mode mode,
		   struct manifest **out, struct abota_error *err);
void manifest_free(struct manifest *m);

/* Serializes in the order `rauc bundle` writes:
 * [update] [bundle] [handler] [hooks] [image.*] [meta.*].
 * With with_verity, the [bundle] verity keys the manifest carries are written
 * (the signed copy of a verity bundle; an input manifest has none); without,
 * they are left out (the copy in the squashfs). */
int manifest_to_data(const struct manifest *m, bool with_verity, char **out, size_t *len,
		     struct abota_error *err);

/* RAUC's variant rule: for each slot class an image for the system's
 * variant wins, else the variant-less one; a class that only has images for
 * other variants is an install error (-ENOENT).  variant may be NULL (the
 * system has none). */
int manifest_check_variants(const struct manifest *m, const char *variant,
			    struct abota_error *err);

/* RAUC's image type derived from the filename (or the explicit type=):
 * "ext4", "vfat", "raw", "squashfs", "tar", "ubifs", ... NULL if unknown. */
const char *manifest_image_type(const struct manifest_image *img);

#endif
