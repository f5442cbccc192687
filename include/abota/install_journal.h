/* install_journal.h - the resume journal of an interrupted install.
 *
 * One small keyfile, <data-directory>/install.journal, replaced durably
 * (temp file, fsync, rename, fsync of the directory; each step a write point
 * of powercut.h) at every checkpoint.  It names the bundle by its manifest
 * hash, the target group, and per slot how many bytes of the image are
 * proven on the medium -- written, synced, read back and matched -- with the
 * SHA-256 state of the image over exactly those bytes.  An install of the
 * same bundle into the same target continues after them: they are neither
 * rewritten nor read again, and the whole image is still checked against
 * the manifest's hash at the end.  Any other install discards the journal
 * before it writes.
 *
 *   [install]
 *   bundle-hash=<manifest hash>     bundle=<path or URL>
 *   bundle-version=<version>        target=<bootname or slot>
 *   transaction=<uuid>              started=<timestamp>
 *   [slot.rootfs.1]
 *   image=rootfs.ext4  sha256=<hex>  size=<bytes>  verified=<bytes>
 *   hash-state=<digest_sha256_state text; when 0 < verified < size>
 */
#ifndef ABOTA_INSTALL_JOURNAL_H
#define ABOTA_INSTALL_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "abota/digest.h"
#include "abota/error.h"

#define INSTALL_JOURNAL_NAME "install.journal"

struct journal_slot {
	char *name;     /* slot name ("rootfs.1") */
	char *image;    /* image file name in the bundle */
	char *sha256;   /* the image's hash (manifest) */
	uint64_t size;  /* the image's size */
	uint64_t verified;               /* bytes proven on the medium */
	struct digest_sha256_state hash; /* image SHA-256 over [0, verified) */
};

struct install_journal {
	char *bundle_hash;
	char *bundle;
	char *bundle_version; /* may be NULL */
	char *target;
	char *transaction;
	char *started;
	struct journal_slot *slots;
	size_t n_slots;
};

/* Reads and validates PATH.  -ENOENT (err untouched) if there is none;
 * -EINVAL with the file, line and key for a malformed one. */
int install_journal_load(const char *path, struct install_journal **out,
			 struct abota_error *err);

/* A new, empty journal (all strings copied). */
int install_journal_new(const char *bundle_hash, const char *bundle, const char *bundle_version,
			const char *target, const char *transaction,
			struct install_journal **out, struct abota_error *err);

/* Adds (or returns the existing) entry of slot NAME for IMAGE; a new entry
 * has verified = 0.  NULL on out of memory.  Adding may move the entries:
 * pointers from earlier calls are invalid afterwards. */
struct journal_slot *install_journal_add_slot(struct install_journal *j, const char *name,
					      const char *image, const char *sha256,
					      uint64_t size);
struct journal_slot *install_journal_find(const struct install_journal *j, const char *name);

/* Records progress: verified bytes (a multiple of 64 unless == size) and
 * the hash state over them (ignored when verified == size). */
void install_journal_set_progress(struct journal_slot *s, uint64_t verified,
				  const struct digest_sha256_state *hash);

/* Durable replacement of PATH (write points of powercut.h). */
int install_journal_save(const struct install_journal *j, const char *path,
			 struct abota_error *err);

/* Removes PATH durably (unlink, fsync of the directory); no journal is fine. */
int install_journal_remove(const char *path, struct abota_error *err);

/* Bytes proven / total over all slots. */
void install_journal_totals(const struct install_journal *j, uint64_t *verified,
			    uint64_t *total);

void install_journal_free(struct install_journal *j);

#endif
