/* signature.h - CMS SignedData for bundles: sign, verify, trust policy.
 *
 * RAUC-compatible: SHA-256, signed attributes contentType, signingTime and
 * messageDigest (no SMIMECapabilities), binary mode, signer certificate
 * embedded, optional intermediates, root never embedded, exactly one signer.
 * Trust policy as RAUC's [keyring] section.
 */
#ifndef ABOTA_SIGNATURE_H
#define ABOTA_SIGNATURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "abota/error.h"
#include "abota/source.h"

struct sig_policy {
	const char *keyring_path;       /* PEM file: CA certificates (and CRLs) */
	const char *keyring_dir;        /* OpenSSL hashed directory */
	const char *check_purpose;      /* NULL = smimesign (OpenSSL's CMS default);
					   "codesign"/"codesign-rauc" = RAUC's purpose;
					   else an OpenSSL purpose short name */
	bool check_crl;
	bool allow_partial_chain;
	bool use_bundle_signing_time;
	bool no_check_time;
	const char *const *allowed_signer_cns; /* NULL-terminated, NULL = any */
	const char *const *intermediates;      /* extra untrusted PEM files, NULL-terminated */
};

struct sig_cert_info {
	char *subject;   /* one-line, "O = ..., CN = ..." */
	char *issuer;
	char *serial;    /* hex */
	char *not_before, *not_after; /* "Nov 22 12:48:01 2036 GMT" */
	char spki_hash[96]; /* SHA-256 of SubjectPublicKeyInfo, "AA:BB:..." */
};

struct sig_info {
	bool detached;
	char *signing_time;            /* ISO 8601 UTC, or NULL */
	size_t n_chain;                /* verified chain, leaf first; 0 if not verified */
	struct sig_cert_info *chain;
};

void sig_info_free(struct sig_info *info);

/* Parses DER and checks the shape (SignedData, exactly one SignerInfo, no
 * trailing bytes).  Reports whether it is detached and, if not, a copy of the
 * encapsulated content -- without verifying anything (for --no-verify). */
int signature_inspect(const uint8_t *der, size_t der_len, bool *detached, uint8_t **content,
		      size_t *content_len, struct abota_error *err);

/* Verifies a detached signature over [0, content_len) of src.  While the
 * content is streamed through the digest, on_chunk (if set) is called with
 * consecutive pieces of it, in order, so the caller can take per-chunk
 * digests in the same pass. */
int signature_verify_detached(const uint8_t *der, size_t der_len, struct source *src,
			      uint64_t content_len, const struct sig_policy *policy,
			      int (*on_chunk)(void *ctx, const uint8_t *data, size_t len),
			      void *chunk_ctx, struct sig_info **info, struct abota_error *err);

/* Verifies an inline signature and returns the encapsulated content. */
int signature_verify_inline(const uint8_t *der, size_t der_len, const struct sig_policy *policy,
			    uint8_t **content, size_t *content_len, struct sig_info **info,
			    struct abota_error *err);

struct sig_signer {
	const char *cert_path;
	const char *key_path;
	const char *const *intermediates; /* NULL-terminated or NULL */
};

/* Signs [0, content_len) of src (detached) or the given content (inline,
 * src NULL).  Key passphrase from ABOTA_KEY_PASSPHRASE or RAUC_KEY_PASSPHRASE. */
int signature_sign(const struct sig_signer *signer, struct source *src, uint64_t content_len,
		   const uint8_t *content, size_t inline_len, bool detached, uint8_t **der,
		   size_t *der_len, struct abota_error *err);

#endif
