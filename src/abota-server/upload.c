/* upload.c - artifact upload (multipart/form-data, part "file"): streamed to
 * a temp file while hashing, bounded in size, checked as a signed bundle
 * with libabota, then stored by SHA-256 (rename + directory fsync) before
 * the database row that makes it visible is committed. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abota/bundle.h"
#include "abota/digest.h"
#include "abota/fileio.h"
#include "abota/log.h"
#include "multipart.h"
#include "server.h"

struct upload {
	struct MHD_PostProcessor *pp;
	char tmp[4200];
	int fd;
	uint64_t size;
	uint64_t next_off; /* offset the current part's next chunk has */
	char *filename;
	bool seen_file, failed, too_big, bad_name;
	char why[ABOTA_ERROR_MSG_MAX + 64];
	EVP_MD_CTX *sha1, *md5, *sha256;
};

void upload_free(struct upload *u)
{
	if (!u)
		return;
	if (u->pp)
		MHD_destroy_post_processor(u->pp);
	if (u->fd >= 0)
		close(u->fd);
	if (u->tmp[0])
		unlink(u->tmp);
	free(u->filename);
	EVP_MD_CTX_free(u->sha1);
	EVP_MD_CTX_free(u->md5);
	EVP_MD_CTX_free(u->sha256);
	free(u);
}

/* Artifact names end up in URLs and headers: a conservative set, no path. */
static bool filename_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 200 || s[0] == '.')
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-' || c == '+'))
			return false;
	}
	return true;
}

static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
			       const char *filename, const char *content_type,
			       const char *transfer_encoding, const char *data, uint64_t off,
			       size_t size)
{
	(void)kind;
	(void)content_type;
	(void)transfer_encoding;
	struct request *r = cls;
	struct upload *u = r->upload;
	if (strcmp(key, "file") != 0 || u->failed || u->too_big)
		return MHD_YES;
	/* the offset starts again at 0 for the next part: a second part named
	 * "file" would be appended to the first */
	if (u->seen_file && off < u->next_off) {
		u->failed = true;
		snprintf(u->why, sizeof(u->why), "more than one part named 'file'");
		return MHD_YES;
	}
	u->next_off = off + size;
	if (!u->seen_file) {
		u->seen_file = true;
		if (!u->filename && filename) {
			u->filename = strdup(filename);
			if (!u->filename)
				u->failed = true;
		}
	}
	if (size == 0)
		return MHD_YES;
	if (u->size + size > r->srv->max_artifact_size) {
		u->too_big = true;
		return MHD_YES;
	}
	struct abota_error err = {0};
	if (fileio_write_full(u->fd, data, size, &err) < 0) {
		u->failed = true;
		snprintf(u->why, sizeof(u->why), "%s", err.msg);
		return MHD_YES;
	}
	EVP_DigestUpdate(u->sha1, data, size);
	EVP_DigestUpdate(u->md5, data, size);
	EVP_DigestUpdate(u->sha256, data, size);
	u->size += size;
	return MHD_YES;
}

int upload_begin(struct request *r)
{
	struct upload *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->fd = -1;
	r->upload = u;
	/* checked here, not left to libmicrohttpd (see multipart.h) */
	char boundary[MULTIPART_BOUNDARY_MAX + 1];
	if (multipart_boundary(req_header(r, "Content-Type"), boundary, u->why, sizeof(u->why)) < 0)
		return -EINVAL;
	u->pp = MHD_create_post_processor(r->conn, 64 * 1024, on_part, r);
	if (!u->pp) {
		snprintf(u->why, sizeof(u->why), "multipart/form-data not accepted");
		return -EINVAL;
	}
	const char *fn = req_arg(r, "filename");
	if (fn) {
		u->filename = strdup(fn);
		if (!u->filename)
			return -ENOMEM;
	}
	snprintf(u->tmp, sizeof(u->tmp), "%s/upload-XXXXXX", r->srv->tmp_dir);
	u->fd = mkostemp(u->tmp, O_CLOEXEC);
	if (u->fd < 0) {
		int e = errno;
		u->tmp[0] = '\0';
		snprintf(u->why, sizeof(u->why), "cannot create a temporary file: %s", strerror(e));
		return -e;
	}
	u->sha1 = EVP_MD_CTX_new();
	u->md5 = EVP_MD_CTX_new();
	u->sha256 = EVP_MD_CTX_new();
	if (!u->sha1 || !u->md5 || !u->sha256 || !EVP_DigestInit_ex(u->sha1, EVP_sha1(), NULL) ||
	    !EVP_DigestInit_ex(u->md5, EVP_md5(), NULL) ||
	    !EVP_DigestInit_ex(u->sha256, EVP_sha256(), NULL)) {
		snprintf(u->why, sizeof(u->why), "cannot set up the digests");
		return -EIO;
	}
	return 0;
}

const char *upload_why(const struct upload *u)
{
	return u && u->why[0] ? u->why : "out of memory";
}

int upload_feed(struct request *r, const char *data, size_t len)
{
	struct upload *u = r->upload;
	if (u->pp && MHD_post_process(u->pp, data, len) != MHD_YES) {
		if (!u->failed)
			snprintf(u->why, sizeof(u->why), "malformed multipart body");
		u->failed = true;
		return -EINVAL;
	}
	return 0;
}

static void hex_final(EVP_MD_CTX *c, char *out)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	EVP_DigestFinal_ex(c, md, &n);
	digest_to_hex(md, n, out);
}

/* Verifies the upload as a signed bundle with the configured keyring. */
static int verify_bundle(struct server *srv, const char *path, struct store_artifact *a,
			 struct abota_error *err)
{
	struct bundle *b = NULL;
	/* the server wrote this file itself, into its private tmp directory, and
	 * still holds it open for writing: the checks for foreign writers and
	 * owners (SC-31, SC-33) are not for it */
	struct bundle_open_opts o = {.policy = &srv->policy, .trust_environment = true};
	int ret;
	if (!srv->have_keyring)
		return abota_error_set(err, -EPERM,
				       "the server has no keyring (--keyring), so no bundle can be "
				       "verified");
	ret = bundle_open(path, &o, &b, err);
	if (ret == 0)
		ret = bundle_check_payload(b, err);
	if (ret == 0) {
		const struct manifest *m = bundle_get_manifest(b);
		const struct sig_info *si = bundle_get_sig_info(b);
		a->compatible = strdup(m->compatible ? m->compatible : "");
		a->version = strdup(m->version ? m->version : "");
		a->signer = strdup(si && si->n_chain ? si->chain[0].subject : "");
		a->format = strdup(bundle_format_name(bundle_get_format(b)));
		if (!a->compatible || !a->version || !a->signer || !a->format)
			ret = abota_error_set(err, -ENOMEM, "out of memory");
	}
	bundle_close(b);
	return ret;
}

static bool is_bundle_name(const char *n)
{
	size_t l = strlen(n);
	return l > 6 && strcmp(n + l - 6, ".raucb") == 0;
}



static enum MHD_Result finish(struct request *r, int64_t sm_id);

enum MHD_Result upload_finish(struct request *r, int64_t sm_id)
{
	enum MHD_Result ret = finish(r, sm_id);
	/* a refused upload leaves nothing behind, before the client hears of it */
	if (r->upload->tmp[0]) {
		unlink(r->upload->tmp);
		r->upload->tmp[0] = '\0';
	}
	return ret;
}

static enum MHD_Result finish(struct request *r, int64_t sm_id)
{
	struct upload *u = r->upload;
	struct server *srv = r->srv;
	struct store_artifact a = {0};
	struct abota_error err = {0};
	char blob[4300];
	enum MHD_Result ret;
	if (u->too_big)
		return reply_error(r, 413, "hawkbit.server.error.quota.artifact.maxArtifactSize",
				   "upload: artifact larger than %llu bytes",
				   (unsigned long long)srv->max_artifact_size);
	if (u->failed)
		return reply_error(r, 400, "hawkbit.server.error.artifact.uploadFailed",
				   "upload: %s", u->why[0] ? u->why : "failed");
	/* The post processor holds back what might be the start of a boundary;
	 * a body that stops before its closing boundary would otherwise be
	 * stored without its tail (SC-46). */
	enum MHD_Result complete = MHD_destroy_post_processor(u->pp);
	u->pp = NULL;
	if (complete != MHD_YES)
		return reply_error(r, 400, "hawkbit.server.error.artifact.uploadFailed",
				   "upload: the multipart body ends before its closing boundary");
	if (!u->seen_file)
		return reply_error(r, 400, "hawkbit.server.error.artifact.uploadFailed",
				   "upload: no multipart part named 'file'");
	if (!u->filename || !filename_ok(u->filename))
		return reply_error(r, 400, "hawkbit.server.error.artifact.uploadFailed",
				   "upload: file name '%.100s' not allowed (letters, digits, . _ - +; "
				   "no path, not starting with a dot)", u->filename ? u->filename : "");
	if (fsync(u->fd) != 0)
		return reply_error(r, 500, "hawkbit.server.error.artifact.uploadFailed",
				   "upload: cannot sync the data");
	a.sm_id = sm_id;
	a.size = (int64_t)u->size;
	hex_final(u->sha1, a.sha1);
	hex_final(u->md5, a.md5);
	hex_final(u->sha256, a.sha256);
	static const char *const names[3] = {"md5sum", "sha1sum", "sha256sum"};
	const char *have[3] = {a.md5, a.sha1, a.sha256};
	for (int i = 0; i < 3; i++) {
		const char *want = req_arg(r, names[i]);
		if (want && strcasecmp(want, have[i]) != 0)
			return reply_error(r, 400, "hawkbit.server.error.artifact.hashMismatch",
					   "upload: %s does not match (got %s)", names[i], have[i]);
	}
	struct store_sm sm = {0};
	if (store_sm_get(srv->store, sm_id, &sm) != 0 || sm.deleted) {
		if (sm.name)
			store_sm_clear(&sm);
		return reply_error(r, 404, "hawkbit.server.error.repo.entitiyNotFound",
				   "software module %lld not found", (long long)sm_id);
	}
	store_sm_clear(&sm);
	if (is_bundle_name(u->filename) || !srv->allow_foreign_artifacts) {
		if (verify_bundle(srv, u->tmp, &a, &err) < 0) {
			ret = reply_error(r, 400, "hawkbit.server.error.artifact.invalidBundle",
					  "upload refused: %s: %s", u->filename, err.msg);
			goto out;
		}
	}
	a.filename = u->filename;
	snprintf(blob, sizeof(blob), "%s/%s", srv->artifacts_dir, a.sha256);
	if (rename(u->tmp, blob) != 0 || fileio_fsync_dir(srv->artifacts_dir, 1, &err) < 0) {
		ret = reply_error(r, 500, "hawkbit.server.error.artifact.uploadFailed",
				  "upload: cannot store the artifact");
		a.filename = NULL;
		goto out;
	}
	u->tmp[0] = '\0';
	int64_t id = 0;
	int sr = store_artifact_create(srv->store, &a, &id);
	if (sr == 0) {
		a.id = id;
		a.created_at = store_now_ms();
		ret = reply_json(r, 201, mgmt_artifact_json(r, &a));
	} else {
		bool used = true;
		if (store_artifact_blob_referenced(srv->store, a.sha256, &used) == 0 && !used)
			unlink(blob);
		if (sr == -EEXIST)
			ret = reply_error(r, 409, "hawkbit.server.error.repo.entitiyAlreadyExists",
					  "artifact %s exists in module %lld", a.filename,
					  (long long)sm_id);
		else if (sr == -ENOENT)
			ret = reply_error(r, 404, "hawkbit.server.error.repo.entitiyNotFound",
					  "software module %lld not found", (long long)sm_id);
		else
			ret = reply_error(r, 500, "hawkbit.server.error.artifact.uploadFailed",
					  "upload: not stored");
	}
	a.filename = NULL; /* owned by the upload */
out:
	store_artifact_clear(&a);
	return ret;
}
