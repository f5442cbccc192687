/* bundle.c - open and verify RAUC-compatible bundles; stream and extract. */
#include "abota/bundle.h"
#include "abota/config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abota/bundle_access.h"
#include "abota/checked_source.h"
#include "abota/chunk_mac.h"
#include "abota/digest.h"
#include "abota/fileio.h"
#include "abota/http_source.h"
#include "abota/sandbox_source.h"
#include "abota/log.h"
#include "abota/verity.h"

struct bundle {
	char *path;
	struct source *file;      /* the bundle file, opened once */
	struct source *content;   /* verified view of the squashfs */
	struct squashfs_reader *sqfs;
	uint64_t file_size, payload_size, sqfs_size;
	size_t sig_size; /* read_signature() keeps it below SIZE_MAX */
	uint8_t *sig;
	char *manifest_data;
	size_t manifest_len;
	char manifest_hash[DIGEST_SHA256_HEX_LEN + 1];
	struct manifest *manifest;
	struct sig_info *sig_info;
	enum bundle_format format;
};

void bundle_forget_cache(struct bundle *b)
{
	if (b && b->file)
		source_forget(b->file, 0, source_size(b->file));
}

void bundle_close(struct bundle *b)
{
	if (!b)
		return;
	squashfs_reader_free(b->sqfs);
	source_close(b->content);
	source_close(b->file);
	manifest_free(b->manifest);
	sig_info_free(b->sig_info);
	free(b->manifest_data);
	free(b->sig);
	free(b->path);
	free(b);
}

const char *bundle_path(const struct bundle *b) { return b->path; }
const struct manifest *bundle_get_manifest(const struct bundle *b) { return b->manifest; }
const char *bundle_manifest_hash(const struct bundle *b) { return b->manifest_hash; }
enum bundle_format bundle_get_format(const struct bundle *b) { return b->format; }
const struct sig_info *bundle_get_sig_info(const struct bundle *b) { return b->sig_info; }
bool bundle_is_verified(const struct bundle *b) { return b->sig_info != NULL; }
uint64_t bundle_file_size(const struct bundle *b) { return b->file_size; }
uint64_t bundle_payload_size(const struct bundle *b) { return b->payload_size; }
uint64_t bundle_signature_size(const struct bundle *b) { return b->sig_size; }

const uint8_t *bundle_signature_data(const struct bundle *b, size_t *len)
{
	if (len)
		*len = b->sig_size;
	return b->sig;
}
uint64_t bundle_squashfs_size(const struct bundle *b) { return b->sqfs_size; }
struct squashfs_reader *bundle_squashfs(struct bundle *b) { return b->sqfs; }

const char *bundle_manifest_data(const struct bundle *b, size_t *len)
{
	if (len)
		*len = b->manifest_len;
	return b->manifest_data;
}

/* Reads and checks the trailer and the CMS bytes. */
static int read_signature(struct bundle *b, uint64_t max_sig, struct abota_error *err)
{
	if (b->file_size < 8)
		return abota_error_set(err, -EINVAL, "bundle is too small (%llu bytes)",
				       (unsigned long long)b->file_size);
	uint8_t tr[8];
	int ret = source_read_at(b->file, tr, sizeof(tr), b->file_size - 8, err);
	if (ret < 0)
		return ret;
	uint64_t s = 0;
	for (int i = 0; i < 8; i++)
		s = (s << 8) | tr[i];
	uint64_t room = b->file_size - 8;
	if (s == 0)
		return abota_error_set(err, -EINVAL, "signature size in the trailer is 0");
	/* Compare without forming room - s first: s is attacker-controlled. */
	if (s > room)
		return abota_error_set(err, -EINVAL,
				       "signature size %llu exceeds bundle size %llu (truncated bundle or bad trailer)",
				       (unsigned long long)s, (unsigned long long)b->file_size);
	if (s > max_sig || s >= SIZE_MAX)
		return abota_error_set(err, -EINVAL, "signature size %llu exceeds the limit of %llu bytes",
				       (unsigned long long)s, (unsigned long long)max_sig);
	uint64_t p = room - s;
	if (s > p)
		return abota_error_set(err, -EINVAL,
				       "signature size %llu exceeds the payload size %llu (truncated bundle)",
				       (unsigned long long)s, (unsigned long long)p);
	if (p % 4096 != 0)
		return abota_error_set(err, -EINVAL,
				       "payload size %llu is not a multiple of 4096 (truncated or damaged bundle)",
				       (unsigned long long)p);
	b->sig = malloc((size_t)s);
	if (!b->sig)
		return abota_error_set(err, -ENOMEM, "out of memory");
	ret = source_read_at(b->file, b->sig, (size_t)s, p, err);
	if (ret < 0)
		return ret;
	b->sig_size = (size_t)s;
	b->payload_size = p;
	return 0;
}

struct chunk_tags {
	struct chunk_mac *mac;
	struct chunk_mac_ctx *ctx;
	uint8_t *tags;
	uint64_t n, cap;
	size_t in_chunk;
};

/* Called with the content in order while the CMS digest is computed: cuts
 * it into BUNDLE_PLAIN_CHUNK pieces and tags each (chunk_mac.h). */
static int chunk_cb(void *p, const uint8_t *data, size_t len)
{
	struct chunk_tags *ct = p;
	while (len > 0) {
		if (ct->in_chunk == 0 && (ct->n >= ct->cap || chunk_mac_begin(ct->ctx, ct->n) < 0))
			return -EIO;
		size_t n = BUNDLE_PLAIN_CHUNK - ct->in_chunk;
		if (n > len)
			n = len;
		if (chunk_mac_update(ct->ctx, data, n) < 0)
			return -EIO;
		ct->in_chunk += n;
		data += n;
		len -= n;
		if (ct->in_chunk == BUNDLE_PLAIN_CHUNK) {
			if (chunk_mac_final(ct->ctx, ct->tags + ct->n * CHUNK_MAC_TAG_LEN) < 0)
				return -EIO;
			ct->n++;
			ct->in_chunk = 0;
		}
	}
	return 0;
}

static int open_plain(struct bundle *b, const struct bundle_open_opts *opts,
		      struct abota_error *err)
{
	int ret = 0;
	b->format = BUNDLE_FORMAT_PLAIN;
	/* A plain bundle can only be trusted after hashing all of it, and bytes
	 * read again later over the network are not covered: refuse, as RAUC. */
	if ((source_is_http(b->file) || source_is_sandboxed(b->file)) && !opts->no_verify)
		return abota_error_set(err, -ENOTSUP,
				       "bundle format 'plain' not supported in streaming mode (use a verity bundle, or download it first)");
	b->sqfs_size = b->payload_size;
	if (opts->no_verify)
		return source_new_window(b->file, 0, b->payload_size, &b->content, err);
	if (b->payload_size > BUNDLE_PLAIN_MAX_PAYLOAD)
		return abota_error_set(err, -EFBIG,
				       "plain bundle payload of %llu bytes is larger than 2 GiB; use the verity format",
				       (unsigned long long)b->payload_size);
	/* Nobody else may be able to change the file from here on (RAUC's
	 * CVE-2020-25860 fix).  Reads are also checked against the digests
	 * taken below, so this turns a late failure into an early one. */
	if (!opts->trust_environment) {
		int fd = source_file_fd(b->file);
		if (fd < 0)
			return abota_error_set(err, -EINVAL, "plain bundle is not a local file");
		ret = bundle_access_enforce(fd, err);
		if (ret < 0)
			return ret;
	}
	struct chunk_tags ct = { 0 };
	ct.cap = (b->payload_size + BUNDLE_PLAIN_CHUNK - 1) / BUNDLE_PLAIN_CHUNK;
	/* payload <= 2 GiB: at most 32768 chunks, 512 KiB of tags */
	ct.tags = malloc(ct.cap ? (size_t)ct.cap * CHUNK_MAC_TAG_LEN : 1);
	if (!ct.tags || chunk_mac_new(&ct.mac) < 0 || chunk_mac_ctx_new(ct.mac, &ct.ctx) < 0) {
		ret = abota_error_set(err, -ENOMEM, "cannot set up the chunk checks");
		goto out;
	}
	ret = signature_verify_detached(b->sig, b->sig_size, b->file, b->payload_size, opts->policy,
					chunk_cb, &ct, &b->sig_info, err);
	if (ret < 0)
		goto out;
	log_debug("%s: signature verified (plain)", b->path);
	if (ct.in_chunk > 0) {
		if (chunk_mac_final(ct.ctx, ct.tags + ct.n * CHUNK_MAC_TAG_LEN) < 0) {
			ret = abota_error_set(err, -EIO, "hashing failed");
			goto out;
		}
		ct.n++;
	}
	if (ct.n != ct.cap) {
		ret = abota_error_set(err, -EIO, "payload was not hashed completely");
		goto out;
	}
	ret = source_new_tag_checked(b->file, b->payload_size, BUNDLE_PLAIN_CHUNK, ct.mac, ct.tags,
				     &b->content, err);
	ct.mac = NULL;
	ct.tags = NULL;
out:
	chunk_mac_ctx_free(ct.ctx);
	chunk_mac_free(ct.mac);
	free(ct.tags);
	return ret;
}

static int open_inline(struct bundle *b, const struct bundle_open_opts *opts,
		       struct abota_error *err)
{
	uint8_t *content = NULL;
	size_t len = 0;
	int ret;
	if (opts->no_verify) {
		bool det;
		ret = signature_inspect(b->sig, b->sig_size, &det, &content, &len, err);
	} else {
		ret = signature_verify_inline(b->sig, b->sig_size, opts->policy, &content, &len,
					      &b->sig_info, err);
	}
	if (ret < 0)
		return ret;
	if (!opts->no_verify)
		log_debug("%s: signature verified (verity)", b->path);
	b->manifest_data = (char *)content;
	b->manifest_len = len;
	ret = manifest_parse(b->manifest_data, len, "manifest", MANIFEST_BUNDLE, &b->manifest, err);
	if (ret < 0) {
		abota_error_prefix(err, "signed manifest");
		return ret;
	}
	b->format = b->manifest->format;
	if (b->format == BUNDLE_FORMAT_PLAIN)
		return abota_error_set(err, -EBADMSG,
				       "manifest of an inline-signed bundle says format=plain (not allowed)");
	if (b->format == BUNDLE_FORMAT_CRYPT)
		return abota_error_set(err, -ENOTSUP,
				       "crypt bundle whose signature is not encrypted: refusing it (and crypt bundles are not supported yet)");
	if (b->manifest->verity_size >= b->payload_size)
		return abota_error_set(err, -EINVAL,
				       "verity-size %llu is not smaller than the payload (%llu bytes)",
				       (unsigned long long)b->manifest->verity_size,
				       (unsigned long long)b->payload_size);
	b->sqfs_size = b->payload_size - b->manifest->verity_size;
	if (opts->no_verify)
		return source_new_window(b->file, 0, b->sqfs_size, &b->content, err);
	struct verity_params vp = { .data_size = b->sqfs_size,
				    .hash_size = b->manifest->verity_size };
	if (!digest_from_hex(b->manifest->verity_salt, vp.salt, sizeof(vp.salt)) ||
	    !digest_from_hex(b->manifest->verity_hash, vp.root, sizeof(vp.root)))
		return abota_error_set(err, -EINVAL, "invalid verity-hash or verity-salt");
	return source_new_verity(b->file, &vp, &b->content, err);
}

/* Every image, hook and handler named by the manifest must be a regular file
 * in the bundle, of the declared size. */
static int check_contents(struct bundle *b, struct abota_error *err)
{
	const struct manifest *m = b->manifest;
	struct squashfs_entry e;
	for (size_t i = 0; i < m->n_images; i++) {
		const struct manifest_image *img = &m->images[i];
		if (!img->filename)
			continue;
		int ret = squashfs_reader_lookup(b->sqfs, img->filename, &e, err);
		if (ret == -ENOENT)
			return abota_error_set(err, -ENOENT, "image '%s' (slot class %s) is missing from the bundle",
					       img->filename, img->slotclass);
		if (ret < 0)
			return ret;
		if (e.type != SQUASHFS_TYPE_FILE)
			return abota_error_set(err, -EINVAL, "image '%s' is not a regular file",
					       img->filename);
		if (e.size != img->size)
			return abota_error_set(err, -EBADMSG,
					       "image '%s' is %llu bytes but the manifest says size=%llu",
					       img->filename, (unsigned long long)e.size,
					       (unsigned long long)img->size);
	}
	const char *extra[] = { m->hooks_filename, m->handler_filename };
	for (size_t i = 0; i < 2; i++) {
		if (!extra[i])
			continue;
		int ret = squashfs_reader_lookup(b->sqfs, extra[i], &e, err);
		if (ret == -ENOENT)
			return abota_error_set(err, -ENOENT, "'%s' named by the manifest is missing from the bundle",
					       extra[i]);
		if (ret < 0)
			return ret;
		if (e.type != SQUASHFS_TYPE_FILE)
			return abota_error_set(err, -EINVAL, "'%s' is not a regular file", extra[i]);
	}
	return 0;
}

int bundle_formats_from_config(unsigned config_formats, unsigned *out, struct abota_error *err)
{
	unsigned formats = 0;
	if (config_formats & CONFIG_FORMAT_PLAIN)
		formats |= 1u << BUNDLE_FORMAT_PLAIN;
	if (config_formats & CONFIG_FORMAT_VERITY)
		formats |= 1u << BUNDLE_FORMAT_VERITY;
	if (!formats)
		return abota_error_set(err, -EPERM, "bundle-formats allows %s",
				       config_formats ? "only crypt bundles, which abota does not support"
						      : "no bundle format");
	*out = formats;
	return 0;
}

int bundle_open(const char *path, const struct bundle_open_opts *opts, struct bundle **out,
		struct abota_error *err)
{
	int ret;
	struct bundle *b = calloc(1, sizeof(*b));
	if (!b)
		return abota_error_set(err, -ENOMEM, "out of memory");
	b->path = strdup(path);
	if (!b->path) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (http_is_url(path))
		ret = source_open_remote(path, opts->http, opts->sandbox_user, &b->file, err);
	else
		ret = source_open_file(path, &b->file, err);
	if (ret < 0)
		goto out_noprefix;
	b->file_size = source_size(b->file);
	uint64_t max_sig = opts->max_signature_size ? opts->max_signature_size
						     : BUNDLE_DEFAULT_MAX_SIGNATURE_SIZE;
	ret = read_signature(b, max_sig, err);
	if (ret < 0)
		goto out;
	bool detached = false;
	ret = signature_inspect(b->sig, b->sig_size, &detached, NULL, NULL, err);
	if (ret < 0)
		goto out;
	ret = detached ? open_plain(b, opts, err) : open_inline(b, opts, err);
	if (ret < 0)
		goto out;
	unsigned allowed = opts->allowed_formats ? opts->allowed_formats : BUNDLE_FORMATS_ALL;
	if (!(allowed & (1u << b->format))) {
		ret = abota_error_set(err, -EPERM, "bundle format '%s' not allowed",
				      bundle_format_name(b->format));
		goto out;
	}
	/* Only now, with the signature checked, is any squashfs byte parsed. */
	ret = squashfs_reader_open(b->content, b->sqfs_size, &b->sqfs, err);
	if (ret < 0)
		goto out;
	if (b->format == BUNDLE_FORMAT_PLAIN) {
		ret = squashfs_reader_read_file(b->sqfs, "manifest.raucm", MANIFEST_MAX_SIZE,
						&b->manifest_data, &b->manifest_len, err);
		if (ret == -ENOENT)
			ret = abota_error_set(err, -ENOENT, "no manifest.raucm in the bundle");
		if (ret < 0)
			goto out;
		ret = manifest_parse(b->manifest_data, b->manifest_len, "manifest.raucm",
				     MANIFEST_BUNDLE, &b->manifest, err);
		if (ret < 0)
			goto out;
		if (b->manifest->format != BUNDLE_FORMAT_PLAIN) {
			ret = abota_error_set(err, -EBADMSG,
					      "manifest says format=%s but the bundle has a detached (plain) signature",
					      bundle_format_name(b->manifest->format));
			goto out;
		}
	}
	uint8_t md[DIGEST_SHA256_LEN];
	if (digest_sha256(b->manifest_data, b->manifest_len, md) < 0) {
		ret = abota_error_set(err, -EIO, "hashing failed");
		goto out;
	}
	digest_to_hex(md, sizeof(md), b->manifest_hash);
	ret = check_contents(b, err);
	if (ret < 0)
		goto out;
	*out = b;
	return 0;
out:
	abota_error_prefix(err, "%s", path);
out_noprefix:
	bundle_close(b);
	return ret;
}

int bundle_read_payload(struct bundle *b, void *buf, size_t len, uint64_t off,
			struct abota_error *err)
{
	if (off > b->payload_size || len > b->payload_size - off)
		return abota_error_set(err, -EINVAL, "read outside the bundle payload");
	uint8_t *p = buf;
	if (off < b->sqfs_size) {
		size_t n = b->sqfs_size - off < len ? (size_t)(b->sqfs_size - off) : len;
		int ret = source_read_at(b->content, p, n, off, err);
		if (ret < 0)
			return ret;
		p += n;
		off += n;
		len -= n;
	}
	return len ? source_read_at(b->file, p, len, off, err) : 0;
}

/* The pre-check reads the squashfs on two threads, every other 512 KiB
 * each: the verity hashing of one overlaps the other's reads, and the
 * check takes half the time on two cores.  The verified source is safe for
 * concurrent readers (the squashfs workers use it the same way). */
#define PRECHECK_PIECE (512u << 10)
#define PRECHECK_THREADS 2u

struct precheck {
	struct bundle *b;
	unsigned index;
	atomic_int *stop; /* set by a failing thread: the others stop early */
	uint64_t fail_off;
	int ret;
	struct abota_error err;
};

static void *precheck_main(void *p)
{
	struct precheck *pc = p;
	struct bundle *b = pc->b;
	uint8_t *buf = fileio_buffer_alloc(PRECHECK_PIECE);
	if (!buf) {
		pc->ret = abota_error_set(&pc->err, -ENOMEM, "out of memory");
		pc->fail_off = 0;
		atomic_store(pc->stop, 1);
		return NULL;
	}
	for (uint64_t off = (uint64_t)pc->index * PRECHECK_PIECE; off < b->sqfs_size && !atomic_load_explicit(pc->stop, memory_order_relaxed);
	     off += (uint64_t)PRECHECK_THREADS * PRECHECK_PIECE) {
		size_t n = b->sqfs_size - off < PRECHECK_PIECE ? (size_t)(b->sqfs_size - off)
							       : PRECHECK_PIECE;
		pc->ret = source_read_at(b->content, buf, n, off, &pc->err);
		if (pc->ret < 0) {
			pc->fail_off = off;
			atomic_store(pc->stop, 1);
			break;
		}
	}
	free(buf);
	return NULL;
}

int bundle_check_payload(struct bundle *b, struct abota_error *err)
{
	if (b->format == BUNDLE_FORMAT_PLAIN || !b->sig_info)
		return 0;
	atomic_int stop = 0;
	struct precheck pc[PRECHECK_THREADS];
	pthread_t t[PRECHECK_THREADS];
	bool started[PRECHECK_THREADS] = { false };
	for (unsigned i = 0; i < PRECHECK_THREADS; i++) {
		pc[i] = (struct precheck){ .b = b, .index = i, .stop = &stop, .fail_off = UINT64_MAX };
		/* share 0 is read by this thread */
		if (i > 0)
			started[i] = pthread_create(&t[i], NULL, precheck_main, &pc[i]) == 0;
	}
	precheck_main(&pc[0]);
	/* a share whose thread could not be started is read here */
	for (unsigned i = 1; i < PRECHECK_THREADS; i++)
		if (!started[i])
			precheck_main(&pc[i]);
	int ret = 0;
	uint64_t first = UINT64_MAX;
	for (unsigned i = 0; i < PRECHECK_THREADS; i++) {
		if (started[i])
			pthread_join(t[i], NULL);
		/* report the lowest failing offset found (one bad block: always the same message) */
		if (pc[i].ret < 0 && pc[i].fail_off < first) {
			first = pc[i].fail_off;
			ret = pc[i].ret;
			if (err)
				*err = pc[i].err;
		}
	}
	if (ret < 0)
		abota_error_prefix(err, "%s", b->path);
	return ret;
}

/* --- streaming images with an end-to-end hash check --- */

/* Finishes md and compares it with the manifest's sha256. */
static int check_image_hash(const struct manifest_image *img, struct digest_sha256_ctx *md,
			    struct abota_error *err)
{
	uint8_t bin[DIGEST_SHA256_LEN];
	char hex[DIGEST_SHA256_HEX_LEN + 1];
	digest_sha256_final(md, bin);
	digest_to_hex(bin, sizeof(bin), hex);
	if (strcmp(hex, img->sha256) != 0)
		return abota_error_set(err, -EBADMSG, "%s: sha256 %s does not match the manifest's %s",
				       img->filename, hex, img->sha256);
	return 0;
}

#define FILL_CHUNK (1u << 20)

struct hash_sink {
	const struct manifest_image *img;
	const struct bundle_stream_opts *o;
	struct digest_sha256_ctx *md;
	squashfs_sink_fn sink;
	void *ctx;
	uint64_t next; /* image offset of the next byte for the sink */
	uint8_t *fill_buf;
};

static int hash_deliver(struct hash_sink *hs, const void *buf, size_t len,
			struct abota_error *err)
{
	digest_sha256_update(hs->md, buf, len);
	hs->next += len;
	return hs->sink ? hs->sink(hs->ctx, buf, len, err) : 0;
}

/* The bytes in [hs->next, upto) that the bundle does not deliver (want
 * declined them): the caller's fill() provides them, in order. */
static int hash_fill(struct hash_sink *hs, uint64_t upto, struct abota_error *err)
{
	int ret = 0;
	if (hs->next < upto && !(hs->o && hs->o->fill))
		return abota_error_set(err, -EINVAL, "%s: bytes %llu-%llu were skipped but nothing fills them",
				       hs->img->filename, (unsigned long long)hs->next,
				       (unsigned long long)upto);
	if (hs->next < upto && !hs->fill_buf && !(hs->fill_buf = malloc(FILL_CHUNK)))
		return abota_error_set(err, -ENOMEM, "out of memory");
	while (ret == 0 && hs->next < upto) {
		size_t n = upto - hs->next < FILL_CHUNK ? (size_t)(upto - hs->next) : FILL_CHUNK;
		ret = hs->o->fill(hs->o->fill_ctx, hs->next, hs->fill_buf, n, err);
		if (ret == 0)
			ret = hash_deliver(hs, hs->fill_buf, n, err);
	}
	return ret;
}

static int hash_sink_cb(void *p, uint64_t off, const void *buf, size_t len,
			struct abota_error *err)
{
	struct hash_sink *hs = p;
	if (off < hs->next || off > hs->img->size || len > hs->img->size - off)
		return abota_error_set(err, -EFBIG, "%s: data beyond the manifest's size=%llu",
				       hs->img->filename, (unsigned long long)hs->img->size);
	int ret = hash_fill(hs, off, err);
	return ret < 0 ? ret : hash_deliver(hs, buf, len, err);
}

int bundle_stream_image_ex(struct bundle *b, const struct manifest_image *img,
			   const struct bundle_stream_opts *o, squashfs_sink_fn sink, void *ctx,
			   struct abota_error *err)
{
	if (!img->filename)
		return abota_error_set(err, -EINVAL, "image of slot class %s has no file",
				       img->slotclass);
	struct hash_sink hs = { .img = img, .o = o, .sink = sink, .ctx = ctx };
	struct digest_sha256_state st;
	int ret = 0;
	if (o && o->hash) {
		hs.md = o->hash;
		if (digest_sha256_save(o->hash, &st) < 0 || st.length != o->start)
			return abota_error_set(err, -EINVAL,
					       "%s: the hash state does not match the start offset %llu",
					       img->filename, (unsigned long long)o->start);
	} else if (o && o->start) {
		return abota_error_set(err, -EINVAL, "%s: a start offset needs the hash state",
				       img->filename);
	} else if (digest_sha256_new(&hs.md) < 0) {
		return abota_error_set(err, -ENOMEM, "out of memory");
	}
	hs.next = o ? o->start : 0;
	struct squashfs_stream_opts so = { .start = hs.next };
	if (o) {
		so.want = o->want;
		so.want_ctx = o->want_ctx;
	}
	ret = squashfs_reader_stream_at(b->sqfs, img->filename, &so, hash_sink_cb, &hs, err);
	if (ret == 0)
		ret = hash_fill(&hs, img->size, err);
	if (ret < 0)
		goto out;
	if (hs.next != img->size) {
		ret = abota_error_set(err, -EBADMSG, "%s: %llu bytes read, manifest says size=%llu",
				      img->filename, (unsigned long long)hs.next,
				      (unsigned long long)img->size);
		goto out;
	}
	ret = check_image_hash(img, hs.md, err);
out:
	free(hs.fill_buf);
	if (!(o && o->hash))
		digest_sha256_free(hs.md);
	return ret;
}

int bundle_stream_image(struct bundle *b, const struct manifest_image *img,
			squashfs_sink_fn sink, void *ctx, struct abota_error *err)
{
	return bundle_stream_image_ex(b, img, NULL, sink, ctx, err);
}

/* --- random access to an image --- */

struct range_copy {
	uint64_t off;
	size_t len;
	uint8_t *dst;
	size_t copied;
};

static bool range_want(void *p, uint64_t off, size_t len)
{
	const struct range_copy *rc = p;
	return off < rc->off + rc->len && off + len > rc->off;
}

static int range_sink(void *p, uint64_t off, const void *buf, size_t len, struct abota_error *err)
{
	(void)err;
	struct range_copy *rc = p;
	uint64_t a = off > rc->off ? off : rc->off;
	uint64_t e = off + len < rc->off + rc->len ? off + len : rc->off + rc->len;
	if (a < e) {
		memcpy(rc->dst + (a - rc->off), (const uint8_t *)buf + (a - off), (size_t)(e - a));
		rc->copied += (size_t)(e - a);
	}
	return 0;
}

int bundle_read_image_at(struct bundle *b, const struct manifest_image *img, uint64_t off,
			 void *buf, size_t len, struct abota_error *err)
{
	struct squashfs_info info;
	if (!img->filename || off > img->size || len > img->size - off)
		return abota_error_set(err, -EINVAL, "image range %llu+%zu outside the image",
				       (unsigned long long)off, len);
	squashfs_reader_info(b->sqfs, &info);
	struct range_copy rc = { .off = off, .len = len, .dst = buf };
	struct squashfs_stream_opts so = { .start = off - off % info.block_size,
					   .want = range_want, .want_ctx = &rc };
	int ret = squashfs_reader_stream_at(b->sqfs, img->filename, &so, range_sink, &rc, err);
	if (ret == 0 && rc.copied != len)
		ret = abota_error_set(err, -EBADMSG, "%s: short read at %llu", img->filename,
				      (unsigned long long)off);
	return ret;
}
