/* bundle.h - RAUC-compatible bundles: create, open (verify), extract, resign.
 *
 * Layout: squashfs [+ dm-verity hash tree] || CMS (DER) || uint64 BE size of
 * the CMS.  The format follows from the CMS: detached SignedData = plain,
 * inline SignedData = verity (its content is the signed manifest).
 *
 * Trust: after bundle_open() every byte of the bundle's squashfs that is
 * read is checked before use -- against the dm-verity tree (verity) or against
 * digests taken in the same pass that verified the detached signature
 * (plain).  The file is opened once and never re-opened by path, so swapping
 * or modifying it afterwards is detected instead of trusted.
 */
#ifndef ABOTA_BUNDLE_H
#define ABOTA_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abota/digest.h"
#include "abota/error.h"
#include "abota/http_source.h"
#include "abota/manifest.h"
#include "abota/signature.h"
#include "abota/source.h"
#include "abota/squashfs.h"

#define BUNDLE_DEFAULT_MAX_SIGNATURE_SIZE 65536u
/* Plain bundles are hashed whole; above 2 GiB RAUC refuses them
 * (CVE-2026-34155) and so do we.  Use verity for anything big. */
#define BUNDLE_PLAIN_MAX_PAYLOAD (UINT64_C(2) << 30)
/* Chunk size of the digests that guard a plain bundle after verification. */
#define BUNDLE_PLAIN_CHUNK (64u * 1024u)

/* Default squashfs block size of a bundle; bundles with an adaptive image
 * use the smaller one. */
#define BUNDLE_DEFAULT_BLOCK_SIZE (1024u * 1024u)
#define BUNDLE_ADAPTIVE_BLOCK_SIZE (128u * 1024u)

/* Adaptive images (adaptive=block-hash-index) get RAUC's index -- the
 * SHA-256 of every 4 KiB block -- and abota's compact one: the first 8 bytes
 * of each of those hashes (see adaptive.h for why 8 bytes are enough). */
#define BUNDLE_INDEX_SUFFIX ".block-hash-index"
#define BUNDLE_COMPACT_INDEX_SUFFIX ".block-hash-index-64"

struct bundle_create_opts {
	struct sig_signer signer;
	int format;                 /* enum bundle_format, or -1 = manifest's or verity */
	const char *compressor;     /* NULL = squashfs default (zstd) */
	int level;                  /* 0 = compressor default */
	uint32_t block_size;        /* 0 = BUNDLE_DEFAULT_BLOCK_SIZE, or
				       BUNDLE_ADAPTIVE_BLOCK_SIZE with an adaptive image */
};

/* Builds OUT from CONTENT_DIR (which holds manifest.raucm and the images).
 * OUT must not exist; it appears complete (renamed into place after fsync)
 * or not at all. */
int bundle_create(const char *content_dir, const char *out_path,
		  const struct bundle_create_opts *opts, struct abota_error *err);

/* Bit mask of enum bundle_format values. */
#define BUNDLE_FORMATS_ALL ((1u << BUNDLE_FORMAT_PLAIN) | (1u << BUNDLE_FORMAT_VERITY))

/* The BUNDLE_FORMATS_ALL-style mask for system.conf's bundle-formats
 * (CONFIG_FORMAT_* of config.h); crypt bundles are not supported and drop
 * out.  -EPERM when that leaves no format abota can open. */
int bundle_formats_from_config(unsigned config_formats, unsigned *out, struct abota_error *err);

struct bundle_open_opts {
	const struct sig_policy *policy; /* required unless no_verify */
	bool no_verify;                  /* inspect only: nothing is trusted */
	uint64_t max_signature_size;     /* 0 = 64 KiB */
	unsigned allowed_formats;        /* 0 = all supported */
	const struct http_opts *http;    /* for http(s):// bundles; NULL = defaults */
	/* As root, an http(s):// bundle is read by a child running as this
	 * user (sandbox_source.h); NULL = "nobody".  Ignored when not root. */
	const char *sandbox_user;
	/* A local plain bundle is taken over and checked for exclusive access
	 * before it is verified (bundle_access.h).  Set this only when the
	 * caller vouches that nobody else can write the file -- RAUC's
	 * --trust-environment, e.g. a file the caller itself just wrote into
	 * its private directory and still holds open for writing. */
	bool trust_environment;
};

struct bundle;

/* path may be an http(s):// URL: the bundle is then read with range
 * requests, only verity bundles are accepted, and every block is checked
 * against the signed hash tree before use (no device-mapper, no NBD). */
int bundle_open(const char *path, const struct bundle_open_opts *opts, struct bundle **out,
		struct abota_error *err);
void bundle_close(struct bundle *b);
/* The caller is done with the bundle's bytes: a local bundle file's cached
 * pages are dropped (an install reads a bundle twice -- the signature check,
 * then the images -- and would otherwise leave all of it in the page cache
 * in place of the running system's own files).  NULL-safe; the bundle stays
 * usable (what is read again comes from the medium). */
void bundle_forget_cache(struct bundle *b);

const char *bundle_path(const struct bundle *b);
const struct manifest *bundle_get_manifest(const struct bundle *b);
/* SHA-256 of the exact manifest bytes, lowercase hex (RAUC's manifest hash). */
const char *bundle_manifest_hash(const struct bundle *b);
/* The exact manifest bytes (signed content for verity, manifest.raucm for plain). */
const char *bundle_manifest_data(const struct bundle *b, size_t *len);
enum bundle_format bundle_get_format(const struct bundle *b);
/* NULL when opened with no_verify. */
const struct sig_info *bundle_get_sig_info(const struct bundle *b);
bool bundle_is_verified(const struct bundle *b);
uint64_t bundle_file_size(const struct bundle *b);
uint64_t bundle_payload_size(const struct bundle *b);   /* squashfs (+ hash tree) */
uint64_t bundle_signature_size(const struct bundle *b);
/* The CMS signature (DER) exactly as bundle_open() read it -- and verified it,
 * unless opened with no_verify -- so it need not be read from the file again
 * (which may have changed since).  Valid until bundle_close(). */
const uint8_t *bundle_signature_data(const struct bundle *b, size_t *len);
uint64_t bundle_squashfs_size(const struct bundle *b);
struct squashfs_reader *bundle_squashfs(struct bundle *b);

/* Reads payload bytes: the squashfs through the verified view, the hash
 * tree (verity) from the file -- it was checked against the signed root when
 * the bundle was opened, and is re-checked by whoever uses a copy. */
int bundle_read_payload(struct bundle *b, void *buf, size_t len, uint64_t off,
			struct abota_error *err);

/* Reads the whole squashfs through the verified view, so a corrupted verity
 * bundle is refused before anything is installed (plain bundles were hashed
 * whole when opened; this is then a no-op).  RAUC's perform-pre-check. */
int bundle_check_payload(struct bundle *b, struct abota_error *err);

/* Streams one image of the manifest to sink, checking its size and SHA-256
 * against the signed manifest.  A mismatch fails the call after the data was
 * delivered: the caller must discard what the sink wrote when it fails
 * (every byte already passed the bundle's verified source, so this is a
 * second, end-to-end check). */
int bundle_stream_image(struct bundle *b, const struct manifest_image *img,
			squashfs_sink_fn sink, void *ctx, struct abota_error *err);

/* bundle_stream_image() for resuming and adaptive updates.  The sink gets
 * the image's bytes [start, size) in order; bytes the bundle is not asked
 * for come from fill(), so the whole image is still hashed and checked. */
struct bundle_stream_opts {
	/* Resume: the first byte to deliver (a multiple of the squashfs block
	 * size), with `hash` holding the image's SHA-256 state over [0, start).
	 * `hash` (optional when start is 0) is the caller's: it is updated
	 * before each sink call, so the sink may save it, and finalised at the
	 * end. */
	uint64_t start;
	struct digest_sha256_ctx *hash;
	/* Adaptive: want(off, len) is asked for each squashfs block; declined
	 * blocks are not read from the bundle and fill() must provide them. */
	squashfs_want_fn want;
	void *want_ctx;
	int (*fill)(void *ctx, uint64_t off, void *buf, size_t len, struct abota_error *err);
	void *fill_ctx;
};

int bundle_stream_image_ex(struct bundle *b, const struct manifest_image *img,
			   const struct bundle_stream_opts *o, squashfs_sink_fn sink, void *ctx,
			   struct abota_error *err);

/* Reads bytes [off, off + len) of an image (only the squashfs blocks that
 * hold them are read).  Not hash-checked beyond the bundle's verified
 * source: for adaptive updates, whose result is checked whole. */
int bundle_read_image_at(struct bundle *b, const struct manifest_image *img, uint64_t off,
			 void *buf, size_t len, struct abota_error *err);

/* Extracts every file of the bundle into DIR (which must not exist; it is
 * created complete or not at all).  Images are checked against the manifest. */
int bundle_extract(struct bundle *b, const char *dir, struct abota_error *err);

/* What an install's handlers and hooks see of the bundle (RAUC mounts it at
 * RAUC_BUNDLE_MOUNT_POINT): every file except the images and their
 * block-hash indexes -- those go to the slots -- extracted from the verified
 * bundle into dir, an existing empty private directory.  Files that would
 * take the total past max_bytes (0: no limit) are left out with a warning,
 * so a bundle's large extras cost the install nothing unless a handler
 * reads them (and then it fails on the missing file, loudly). */
int bundle_extract_files(struct bundle *b, const char *dir, uint64_t max_bytes,
			 struct abota_error *err);

/* Writes OUT: the payload of the (verified, unless opts->no_verify) bundle
 * IN with a new signature by signer.  For verity bundles the signed manifest
 * is kept byte for byte. */
int bundle_resign(const char *in_path, const char *out_path, const struct bundle_open_opts *opts,
		  const struct sig_signer *signer, struct abota_error *err);

#endif
