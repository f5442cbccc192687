/* signature.c - CMS SignedData sign/verify with RAUC's trust policy. */
#include "abota/signature.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "abota/batch_thread.h"
#include "abota/digest.h"
#include "abota/fileio.h"

static int load_certs(const char *path, STACK_OF(X509) *into, bool single, X509 **first,
		      struct abota_error *err);

/* RAUC's own purpose (check-purpose=codesign): the leaf must carry EKU
 * codeSigning (and digitalSignature if it has a key usage); a CA that carries
 * an EKU must include codeSigning. OpenSSL 3.0 has no such purpose. */
#define PURPOSE_CODESIGN_RAUC 1017

/* --- a read-only BIO over a source window, with chunk callback --- */

/* With a chunk callback (plain bundles: a tag of every 64 KiB chunk,
 * chunk_mac.h), a second thread reads the content ahead and runs the
 * callback on each buffer before OpenSSL's digest sees it: OpenSSL's thread
 * only hashes.  Both see the same private buffer, so the tags and the CMS
 * digest are over the same bytes even if the file changes meanwhile.  Two
 * buffers alternate: one being hashed, one being read. */
struct prefetch {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct source *src;
	uint64_t pos, end; /* the reader's */
	int (*fn)(void *ctx, const uint8_t *data, size_t len);
	void *ctx;
	uint8_t **bufs;
	/* under lock */
	size_t lens[2];
	bool ready[2];
	bool done, stop;
	int ret;
	struct abota_error err;
};

struct source_bio {
	struct source *src;
	uint64_t pos, end;
	uint8_t *bufs[2];
	uint8_t *buf; /* bufs[cur] */
	unsigned cur;
	bool holding; /* prefetch: bufs[cur] is ours until the next refill */
	size_t buf_len, buf_pos;
	int (*on_chunk)(void *ctx, const uint8_t *data, size_t len);
	void *chunk_ctx;
	struct prefetch *pf; /* NULL: read and call on_chunk inline */
	struct abota_error *err;
	int failed;
};

/* Each of the two buffers; 512 KiB reads keep the kernel's read-ahead busy. */
#define SOURCE_BIO_BUF (512u << 10)

/* Reads the piece of [pos, end) at pos into buf (at most SOURCE_BIO_BUF
 * bytes) and runs the chunk callback on it, if any: its length, or a
 * negative errno with err set.  Both the read-ahead thread and the inline
 * path read through here, so they fail with the same words. */
static ssize_t read_piece(struct source *src, uint8_t *buf, uint64_t pos, uint64_t end,
			  int (*fn)(void *ctx, const uint8_t *data, size_t len), void *ctx,
			  struct abota_error *err)
{
	size_t n = end - pos < SOURCE_BIO_BUF ? (size_t)(end - pos) : SOURCE_BIO_BUF;
	int r = source_read_at(src, buf, n, pos, err);
	if (r == 0 && fn && fn(ctx, buf, n) < 0)
		r = abota_error_set(err, -EIO, "signature: checking the content's chunks failed");
	return r < 0 ? r : (ssize_t)n;
}

static void *prefetch_main(void *p)
{
	struct prefetch *f = p;
	unsigned i = 0;
	batch_thread_mark();
	pthread_mutex_lock(&f->lock);
	while (f->pos < f->end && !f->stop) {
		while (f->ready[i] && !f->stop)
			pthread_cond_wait(&f->cond, &f->lock);
		if (f->stop)
			break;
		uint64_t pos = f->pos;
		pthread_mutex_unlock(&f->lock);
		struct abota_error e = { 0 };
		ssize_t n = read_piece(f->src, f->bufs[i], pos, f->end, f->fn, f->ctx, &e);
		pthread_mutex_lock(&f->lock);
		if (n < 0) {
			f->ret = (int)n;
			f->err = e;
			break;
		}
		f->lens[i] = (size_t)n;
		f->ready[i] = true;
		f->pos += (uint64_t)n;
		i ^= 1u;
		pthread_cond_broadcast(&f->cond);
	}
	f->done = true;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/* NULL when no thread can be had: the caller then reads inline. */
static struct prefetch *prefetch_start(struct source_bio *sb)
{
	struct prefetch *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->src = sb->src;
	f->pos = sb->pos;
	f->end = sb->end;
	f->fn = sb->on_chunk;
	f->ctx = sb->chunk_ctx;
	f->bufs = sb->bufs;
	if (pthread_mutex_init(&f->lock, NULL) != 0) {
		free(f);
		return NULL;
	}
	if (pthread_cond_init(&f->cond, NULL) != 0) {
		pthread_mutex_destroy(&f->lock);
		free(f);
		return NULL;
	}
	pthread_attr_t attr;
	bool ok = pthread_attr_init(&attr) == 0;
	/* reads and GMAC need little stack; the default 8 MiB would only be address space */
	if (ok && (pthread_attr_setstacksize(&attr, 64u << 10) != 0 ||
		   pthread_create(&f->thread, &attr, prefetch_main, f) != 0))
		ok = false;
	pthread_attr_destroy(&attr);
	if (!ok) {
		pthread_cond_destroy(&f->cond);
		pthread_mutex_destroy(&f->lock);
		free(f);
		return NULL;
	}
	return f;
}

/* Stops the thread (OpenSSL may stop reading early, on an error). */
static void prefetch_stop(struct prefetch *f)
{
	pthread_mutex_lock(&f->lock);
	f->stop = true;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->thread, NULL);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* The next buffer of the content into sb->buf: 1, 0 at the end, -1 on an
 * error (sb->err set). */
static int sbio_refill(struct source_bio *sb)
{
	if (!sb->pf) {
		if (sb->pos == sb->end)
			return 0;
		ssize_t n = read_piece(sb->src, sb->buf, sb->pos, sb->end, sb->on_chunk,
				       sb->chunk_ctx, sb->err);
		if (n < 0)
			return -1;
		sb->pos += (uint64_t)n;
		sb->buf_len = (size_t)n;
		sb->buf_pos = 0;
		return 1;
	}
	struct prefetch *f = sb->pf;
	int ret;
	pthread_mutex_lock(&f->lock);
	if (sb->holding) { /* done with it: the reader may fill it again */
		f->ready[sb->cur] = false;
		sb->holding = false;
		sb->cur ^= 1u;
		pthread_cond_broadcast(&f->cond);
	}
	while (!f->ready[sb->cur] && !f->done)
		pthread_cond_wait(&f->cond, &f->lock);
	if (f->ret < 0) {
		if (sb->err)
			*sb->err = f->err;
		ret = -1;
	} else if (!f->ready[sb->cur]) {
		ret = 0;
	} else {
		sb->holding = true;
		sb->buf = sb->bufs[sb->cur];
		sb->buf_len = f->lens[sb->cur];
		sb->buf_pos = 0;
		sb->pos += sb->buf_len;
		ret = 1;
	}
	pthread_mutex_unlock(&f->lock);
	return ret;
}

static int sbio_read_ex(BIO *b, char *out, size_t len, size_t *read)
{
	struct source_bio *sb = BIO_get_data(b);
	*read = 0;
	if (sb->failed)
		return 0;
	if (sb->buf_pos == sb->buf_len) {
		int r = sbio_refill(sb);
		if (r < 0)
			sb->failed = 1;
		if (r <= 0)
			return 0;
	}
	size_t n = sb->buf_len - sb->buf_pos;
	if (n > len)
		n = len;
	memcpy(out, sb->buf + sb->buf_pos, n);
	sb->buf_pos += n;
	*read = n;
	return 1;
}

static long sbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)num;
	(void)ptr;
	struct source_bio *sb = BIO_get_data(b);
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_EOF:
		return sb->pos == sb->end && sb->buf_pos == sb->buf_len;
	case BIO_CTRL_PENDING:
		return (long)(sb->buf_len - sb->buf_pos);
	default:
		return 0;
	}
}

static int sbio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD *sbio_method(void)
{
	static BIO_METHOD *m;
	if (!m) {
		m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "abota source");
		if (!m)
			return NULL;
		BIO_meth_set_read_ex(m, sbio_read_ex);
		BIO_meth_set_ctrl(m, sbio_ctrl);
		BIO_meth_set_create(m, sbio_create);
	}
	return m;
}

static BIO *sbio_new(struct source_bio *sb)
{
	BIO_METHOD *m = sbio_method();
	if (!m)
		return NULL;
	sb->bufs[0] = fileio_buffer_alloc(SOURCE_BIO_BUF);
	sb->bufs[1] = fileio_buffer_alloc(SOURCE_BIO_BUF);
	BIO *b = sb->bufs[0] && sb->bufs[1] ? BIO_new(m) : NULL;
	if (!b) {
		free(sb->bufs[0]);
		free(sb->bufs[1]);
		sb->bufs[0] = sb->bufs[1] = NULL;
		return NULL;
	}
	sb->buf = sb->bufs[0];
	BIO_set_data(b, sb);
	return b;
}

/* --- helpers --- */

static char *bio_to_str(BIO *b)
{
	char *data = NULL;
	long len = b ? BIO_get_mem_data(b, &data) : 0;
	char *s = len >= 0 ? strndup(data ? data : "", (size_t)len) : NULL;
	BIO_free(b);
	return s;
}

/* "Nov 22 12:48:01 2036 GMT", as rauc info prints it. */
static char *asn1_time_str(const ASN1_TIME *t)
{
	BIO *b = BIO_new(BIO_s_mem());
	if (b && (!t || ASN1_TIME_print(b, t) != 1)) {
		BIO_free(b);
		return strdup("(invalid time)");
	}
	return bio_to_str(b);
}

/* "O = Example Org, CN = Example Org Development-1", as rauc info prints it. */
static char *name_str(const X509_NAME *n)
{
	BIO *b = BIO_new(BIO_s_mem());
	if (b && X509_NAME_print_ex(b, n, 0, XN_FLAG_ONELINE) < 0) {
		BIO_free(b);
		return strdup("");
	}
	return bio_to_str(b);
}

static int fill_cert_info(X509 *x, struct sig_cert_info *ci)
{
	ci->subject = name_str(X509_get_subject_name(x));
	ci->issuer = name_str(X509_get_issuer_name(x));
	ci->not_before = asn1_time_str(X509_get0_notBefore(x));
	ci->not_after = asn1_time_str(X509_get0_notAfter(x));
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	ci->serial = strdup(hex ? hex : "");
	OPENSSL_free(hex);
	BN_free(bn);
	unsigned char *spki = NULL;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki);
	uint8_t md[DIGEST_SHA256_LEN];
	if (len > 0 && digest_sha256(spki, (size_t)len, md) == 0)
		digest_to_colon_hex(md, sizeof(md), ci->spki_hash);
	OPENSSL_free(spki);
	if (!ci->subject || !ci->issuer || !ci->not_before || !ci->not_after || !ci->serial)
		return -ENOMEM;
	return 0;
}

void sig_info_free(struct sig_info *info)
{
	if (!info)
		return;
	for (size_t i = 0; i < info->n_chain; i++) {
		free(info->chain[i].subject);
		free(info->chain[i].issuer);
		free(info->chain[i].serial);
		free(info->chain[i].not_before);
		free(info->chain[i].not_after);
	}
	free(info->chain);
	free(info->signing_time);
	free(info);
}

/* Parses DER, insists on SignedData with exactly one signer and no
 * trailing garbage. */
static int parse_cms(const uint8_t *der, size_t der_len, CMS_ContentInfo **out,
		     struct abota_error *err)
{
	if (der_len == 0 || der_len > INT32_MAX)
		return abota_error_set(err, -EINVAL, "signature: invalid size %zu", der_len);
	const unsigned char *p = der;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)der_len);
	if (!cms) {
		ERR_clear_error();
		return abota_error_set(err, -EBADMSG, "signature: signature data is no valid CMS");
	}
	if ((size_t)(p - der) != der_len) {
		CMS_ContentInfo_free(cms);
		return abota_error_set(err, -EBADMSG,
				       "signature: %zu trailing bytes after the CMS structure",
				       der_len - (size_t)(p - der));
	}
	int type = OBJ_obj2nid(CMS_get0_type(cms));
	if (type != NID_pkcs7_signed) {
		CMS_ContentInfo_free(cms);
		/* RAUC's crypt format: the SignedData is inside an EnvelopedData.
		 * abota cannot decrypt it; say so, and fail closed. */
		if (type == NID_pkcs7_enveloped)
			return abota_error_set(err, -ENOTSUP,
					       "signature: the bundle is encrypted (crypt format, CMS EnvelopedData); abota cannot decrypt crypt bundles and refuses them");
		return abota_error_set(err, -EBADMSG, "signature: CMS is not SignedData");
	}
	STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(cms);
	int n = sis ? sk_CMS_SignerInfo_num(sis) : 0;
	if (n != 1) {
		CMS_ContentInfo_free(cms);
		return abota_error_set(err, -EBADMSG, "signature: unsupported number of signers: %d",
				       n);
	}
	*out = cms;
	return 0;
}

static int content_copy(CMS_ContentInfo *cms, uint8_t **content, size_t *content_len,
			struct abota_error *err)
{
	ASN1_OCTET_STRING **pos = CMS_get0_content(cms);
	if (!pos || !*pos)
		return abota_error_set(err, -EBADMSG, "signature: no encapsulated content");
	int len = ASN1_STRING_length(*pos);
	uint8_t *c = malloc((size_t)len + 1);
	if (!c)
		return abota_error_set(err, -ENOMEM, "out of memory");
	memcpy(c, ASN1_STRING_get0_data(*pos), (size_t)len);
	c[len] = '\0';
	*content = c;
	*content_len = (size_t)len;
	return 0;
}

int signature_inspect(const uint8_t *der, size_t der_len, bool *detached, uint8_t **content,
		      size_t *content_len, struct abota_error *err)
{
	CMS_ContentInfo *cms = NULL;
	int ret = parse_cms(der, der_len, &cms, err);
	if (ret < 0)
		return ret;
	bool det = CMS_is_detached(cms) == 1;
	if (!det && content) {
		ret = content_copy(cms, content, content_len, err);
		if (ret < 0)
			goto out;
	}
	*detached = det;
out:
	CMS_ContentInfo_free(cms);
	return ret;
}

static int codesign_check(const X509_PURPOSE *p, const X509 *cx, int ca)
{
	(void)p;
	X509 *x = (X509 *)cx; /* OpenSSL 3.0 getters take non-const */
	uint32_t ex = X509_get_extension_flags(x);
	if (ca) {
		if ((ex & EXFLAG_XKUSAGE) && !(X509_get_extended_key_usage(x) & XKU_CODE_SIGN))
			return 0;
		return X509_check_ca(x) != 0;
	}
	if (!(ex & EXFLAG_XKUSAGE) || !(X509_get_extended_key_usage(x) & XKU_CODE_SIGN))
		return 0;
	if ((ex & EXFLAG_KUSAGE) && !(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE))
		return 0;
	return 1;
}

static int purpose_id(const char *name, struct abota_error *err)
{
	if (strcmp(name, "codesign") == 0 || strcmp(name, "codesign-rauc") == 0) {
		if (X509_PURPOSE_get_by_id(PURPOSE_CODESIGN_RAUC) < 0 &&
		    X509_PURPOSE_add(PURPOSE_CODESIGN_RAUC, X509_TRUST_DEFAULT, 0, codesign_check,
				     "Code signing (RAUC)", "codesign-rauc", NULL) != 1)
			return abota_error_set(err, -ENOMEM, "keyring: cannot register codesign purpose");
		return PURPOSE_CODESIGN_RAUC;
	}
	int idx = X509_PURPOSE_get_by_sname(name);
	if (idx < 0)
		return abota_error_set(err, -EINVAL, "keyring: unknown check-purpose '%s'", name);
	return X509_PURPOSE_get_id(X509_PURPOSE_get0(idx));
}

static time_t signing_time_of(CMS_ContentInfo *cms, char **str)
{
	CMS_SignerInfo *si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
	int idx = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1);
	if (idx < 0)
		return (time_t)-1;
	X509_ATTRIBUTE *attr = CMS_signed_get_attr(si, idx);
	ASN1_TYPE *t = X509_ATTRIBUTE_get0_type(attr, 0);
	if (!t || (t->type != V_ASN1_UTCTIME && t->type != V_ASN1_GENERALIZEDTIME))
		return (time_t)-1;
	struct tm tm;
	if (ASN1_TIME_to_tm((ASN1_TIME *)t->value.ptr, &tm) != 1)
		return (time_t)-1;
	if (str) {
		char buf[32];
		strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
		*str = strdup(buf);
	}
	return timegm(&tm);
}

static int build_store(const struct sig_policy *pol, CMS_ContentInfo *cms, X509_STORE **out,
		       struct abota_error *err)
{
	if (!pol || ((!pol->keyring_path || !*pol->keyring_path) &&
		     (!pol->keyring_dir || !*pol->keyring_dir)))
		return abota_error_set(err, -ENOKEY,
				       "no keyring configured: refusing to trust any bundle (give --keyring or set [keyring] path)");
	int ret = 0;
	X509_STORE *store = X509_STORE_new();
	if (!store)
		return abota_error_set(err, -ENOMEM, "out of memory");
	if (pol->keyring_path && *pol->keyring_path &&
	    X509_STORE_load_file(store, pol->keyring_path) != 1) {
		ERR_clear_error();
		ret = abota_error_set(err, -EINVAL,
				      "keyring %s: cannot load certificates (missing, unreadable or not PEM)",
				      pol->keyring_path);
		goto out;
	}
	if (pol->keyring_dir && *pol->keyring_dir &&
	    X509_STORE_load_path(store, pol->keyring_dir) != 1) {
		ERR_clear_error();
		ret = abota_error_set(err, -EINVAL, "keyring directory %s: cannot be used",
				      pol->keyring_dir);
		goto out;
	}
	if (pol->keyring_path && *pol->keyring_path) {
		STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
		int certs = 0;
		for (int i = 0; i < sk_X509_OBJECT_num(objs); i++)
			if (X509_OBJECT_get_type(sk_X509_OBJECT_value(objs, i)) == X509_LU_X509)
				certs++;
		if (certs == 0 && !(pol->keyring_dir && *pol->keyring_dir)) {
			ret = abota_error_set(err, -ENOKEY, "keyring %s: contains no certificate",
					      pol->keyring_path);
			goto out;
		}
	}
	unsigned long flags = 0;
	if (pol->check_crl)
		flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL |
			 X509_V_FLAG_EXTENDED_CRL_SUPPORT;
	if (pol->allow_partial_chain)
		flags |= X509_V_FLAG_PARTIAL_CHAIN;
	if (pol->no_check_time)
		flags |= X509_V_FLAG_NO_CHECK_TIME;
	X509_STORE_set_flags(store, flags);
	if (pol->check_purpose) {
		int id = purpose_id(pol->check_purpose, err);
		if (id < 0) {
			ret = id;
			goto out;
		}
		X509_STORE_set_purpose(store, id);
	}
	if (pol->use_bundle_signing_time && !pol->no_check_time) {
		time_t t = signing_time_of(cms, NULL);
		if (t == (time_t)-1) {
			ret = abota_error_set(err, -EBADMSG,
					      "signature: use-bundle-signing-time is set but the signature has no signing time");
			goto out;
		}
		X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(store), t);
	}
	*out = store;
	store = NULL;
out:
	X509_STORE_free(store);
	return ret;
}

/* Finds the signer certificate among the certificates in the CMS. */
static X509 *find_signer(CMS_ContentInfo *cms, STACK_OF(X509) *certs)
{
	CMS_SignerInfo *si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
	for (int i = 0; i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);
		if (CMS_SignerInfo_cert_cmp(si, x) == 0)
			return x;
	}
	return NULL;
}

static char *signer_cn(X509 *x)
{
	X509_NAME *n = X509_get_subject_name(x);
	int idx = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
	if (idx < 0)
		return NULL;
	ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, idx));
	unsigned char *utf8 = NULL;
	int len = ASN1_STRING_to_UTF8(&utf8, s);
	if (len < 0)
		return NULL;
	char *r = strndup((char *)utf8, (size_t)len);
	OPENSSL_free(utf8);
	return r;
}

/* Checks the signer's chain against the store the way CMS_verify will (same
 * store, same purpose) to explain failures precisely, and records the chain. */
static int check_chain(X509_STORE *store, CMS_ContentInfo *cms, const struct sig_policy *pol,
		       struct sig_info *info, struct abota_error *err)
{
	int ret = 0;
	char *cn = NULL;
	STACK_OF(X509) *chain = NULL;
	STACK_OF(X509) *certs = CMS_get1_certs(cms);
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509 *signer = certs ? find_signer(cms, certs) : NULL;
	if (!signer) {
		ret = abota_error_set(err, -EBADMSG,
				      "signature: signer certificate is not included in the signature");
		goto out;
	}
	if (pol->allowed_signer_cns) {
		cn = signer_cn(signer);
		bool ok = false;
		for (const char *const *p = pol->allowed_signer_cns; cn && *p; p++)
			if (strcmp(*p, cn) == 0)
				ok = true;
		if (!ok) {
			ret = abota_error_set(err, -EPERM,
					      "signature: signer CN '%s' is not in allowed-signer-cns",
					      cn ? cn : "(none)");
			goto out;
		}
	}
	if (!ctx || X509_STORE_CTX_init(ctx, store, signer, certs) != 1) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	/* CMS_verify defaults to the S/MIME signing purpose unless the store sets
	 * one; mirror that here. */
	X509_STORE_CTX_set_default(ctx, "smime_sign");
	if (X509_verify_cert(ctx) != 1) {
		int e = X509_STORE_CTX_get_error(ctx);
		X509 *cur = X509_STORE_CTX_get_current_cert(ctx);
		char *subj = cur ? name_str(X509_get_subject_name(cur)) : NULL;
		char *when = NULL;
		if (e == X509_V_ERR_CERT_HAS_EXPIRED && cur)
			when = asn1_time_str(X509_get0_notAfter(cur));
		else if (e == X509_V_ERR_CERT_NOT_YET_VALID && cur)
			when = asn1_time_str(X509_get0_notBefore(cur));
		ret = abota_error_set(err, -EPERM, "signature: %s%s%s%s%s%s",
				      X509_verify_cert_error_string(e),
				      when ? (e == X509_V_ERR_CERT_HAS_EXPIRED ? " (notAfter " : " (notBefore ") : "",
				      when ? when : "", when ? ")" : "",
				      subj ? " for " : "", subj ? subj : "");
		free(subj);
		free(when);
		ERR_clear_error();
		goto out;
	}
	chain = X509_STORE_CTX_get1_chain(ctx);
	info->n_chain = (size_t)sk_X509_num(chain);
	info->chain = calloc(info->n_chain ? info->n_chain : 1, sizeof(*info->chain));
	if (!info->chain) {
		info->n_chain = 0;
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < info->n_chain; i++) {
		if (fill_cert_info(sk_X509_value(chain, (int)i), &info->chain[i]) < 0) {
			ret = abota_error_set(err, -ENOMEM, "out of memory");
			goto out;
		}
	}
out:
	free(cn);
	sk_X509_pop_free(chain, X509_free);
	X509_STORE_CTX_free(ctx);
	sk_X509_pop_free(certs, X509_free);
	return ret;
}

static int add_intermediates(CMS_ContentInfo *cms, const struct sig_policy *pol,
			     struct abota_error *err)
{
	int ret = 0;
	STACK_OF(X509) *extra = sk_X509_new_null();
	if (!extra)
		return abota_error_set(err, -ENOMEM, "out of memory");
	for (const char *const *p = pol->intermediates; p && *p; p++) {
		ret = load_certs(*p, extra, false, NULL, err);
		if (ret < 0)
			goto out;
	}
	for (int i = 0; i < sk_X509_num(extra); i++) {
		if (CMS_add1_cert(cms, sk_X509_value(extra, i)) != 1) {
			/* Already present is fine. */
			ERR_clear_error();
		}
	}
out:
	sk_X509_pop_free(extra, X509_free);
	return ret;
}

static int verify_common(const uint8_t *der, size_t der_len, const struct sig_policy *pol,
			 BIO *dcont, uint8_t **content, size_t *content_len, bool want_detached,
			 struct sig_info **info_out, struct abota_error *err)
{
	CMS_ContentInfo *cms = NULL;
	X509_STORE *store = NULL;
	BIO *out = NULL;
	struct sig_info *info = NULL;
	int ret = parse_cms(der, der_len, &cms, err);
	if (ret < 0)
		return ret;
	bool det = CMS_is_detached(cms) == 1;
	if (det != want_detached) {
		ret = abota_error_set(err, -EBADMSG, "signature: expected %s signature, got %s",
				      want_detached ? "a detached" : "an inline",
				      det ? "a detached one" : "an inline one");
		goto out;
	}
	info = calloc(1, sizeof(*info));
	if (!info) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	info->detached = det;
	signing_time_of(cms, &info->signing_time);
	ret = build_store(pol, cms, &store, err);
	if (ret < 0)
		goto out;
	/* Extra untrusted intermediates join the certificates carried in the
	 * CMS: CMS_verify builds the chain from those. Only the parsed copy in
	 * memory changes, never signed content. */
	ret = add_intermediates(cms, pol, err);
	if (ret < 0)
		goto out;
	ret = check_chain(store, cms, pol, info, err);
	if (ret < 0)
		goto out;
	out = BIO_new(BIO_s_mem());
	if (!out) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (CMS_verify(cms, NULL, store, dcont, det ? NULL : out, CMS_BINARY) != 1) {
		ret = abota_error_set(err, -EBADMSG, "signature: CMS verification failed");
		/* The source BIO records read errors in err itself; keep those. */
		abota_error_add_openssl(err);
		goto out;
	}
	if (!det) {
		BUF_MEM *bm = NULL;
		BIO_get_mem_ptr(out, &bm);
		uint8_t *c = malloc(bm->length + 1);
		if (!c) {
			ret = abota_error_set(err, -ENOMEM, "out of memory");
			goto out;
		}
		memcpy(c, bm->data, bm->length);
		c[bm->length] = '\0';
		*content = c;
		*content_len = bm->length;
	}
	*info_out = info;
	info = NULL;
out:
	ERR_clear_error();
	sig_info_free(info);
	BIO_free(out);
	X509_STORE_free(store);
	CMS_ContentInfo_free(cms);
	return ret;
}

int signature_verify_detached(const uint8_t *der, size_t der_len, struct source *src,
			      uint64_t content_len, const struct sig_policy *policy,
			      int (*on_chunk)(void *ctx, const uint8_t *data, size_t len),
			      void *chunk_ctx, struct sig_info **info, struct abota_error *err)
{
	struct abota_error read_err = { 0 };
	struct source_bio sb = { .src = src, .pos = 0, .end = content_len, .on_chunk = on_chunk,
				 .chunk_ctx = chunk_ctx, .err = &read_err };
	if (content_len > src->size)
		return abota_error_set(err, -EINVAL, "signature: content outside the source");
	BIO *b = sbio_new(&sb);
	if (!b)
		return abota_error_set(err, -ENOMEM, "out of memory");
	if (on_chunk)
		sb.pf = prefetch_start(&sb);
	int ret = verify_common(der, der_len, policy, b, NULL, NULL, true, info, err);
	if (sb.pf)
		prefetch_stop(sb.pf);
	if (ret < 0 && sb.failed && read_err.code) {
		/* A read error explains the failure better than "content verify error". */
		ret = read_err.code;
		if (err)
			*err = read_err;
	} else if (ret == 0 && (sb.failed || sb.pos != sb.end)) {
		sig_info_free(*info);
		*info = NULL;
		ret = abota_error_set(err, -EIO, "signature: content was not read completely");
	}
	BIO_free(b);
	free(sb.bufs[0]);
	free(sb.bufs[1]);
	return ret;
}

int signature_verify_inline(const uint8_t *der, size_t der_len, const struct sig_policy *policy,
			    uint8_t **content, size_t *content_len, struct sig_info **info,
			    struct abota_error *err)
{
	return verify_common(der, der_len, policy, NULL, content, content_len, false, info, err);
}

/* --- signing --- */

static int pass_cb(char *buf, int size, int rwflag, void *u)
{
	(void)rwflag;
	(void)u;
	const char *p = getenv("ABOTA_KEY_PASSPHRASE");
	if (!p)
		p = getenv("RAUC_KEY_PASSPHRASE");
	if (!p)
		return 0;
	size_t len = strlen(p);
	if (len > (size_t)size)
		len = (size_t)size;
	/* OpenSSL's pem_password_cb: the length is returned, no NUL is expected */
	memcpy(buf, p, len); /* NOLINT(bugprone-not-null-terminated-result) */
	return (int)len;
}

static int load_certs(const char *path, STACK_OF(X509) *into, bool single, X509 **first,
		      struct abota_error *err)
{
	BIO *b = BIO_new_file(path, "r");
	if (!b) {
		ERR_clear_error();
		return abota_error_set(err, -ENOENT, "%s: cannot open certificate file", path);
	}
	int n = 0;
	X509 *x;
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (n == 0 && first) {
			*first = x;
		} else if (into) {
			sk_X509_push(into, x);
		} else {
			X509_free(x);
		}
		n++;
		if (single)
			break;
	}
	ERR_clear_error();
	BIO_free(b);
	if (n == 0)
		return abota_error_set(err, -EINVAL, "%s: no PEM certificate found", path);
	return 0;
}

int signature_sign(const struct sig_signer *signer, struct source *src, uint64_t content_len,
		   const uint8_t *content, size_t inline_len, bool detached, uint8_t **der,
		   size_t *der_len, struct abota_error *err)
{
	int ret = 0;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	STACK_OF(X509) *extra = sk_X509_new_null();
	CMS_ContentInfo *cms = NULL;
	BIO *data = NULL;
	unsigned char *out = NULL;
	struct source_bio sb = { 0 };
	struct abota_error read_err = { 0 };
	if (!extra)
		return abota_error_set(err, -ENOMEM, "out of memory");
	ret = load_certs(signer->cert_path, NULL, true, &cert, err);
	if (ret < 0)
		goto out;
	for (const char *const *p = signer->intermediates; p && *p; p++) {
		ret = load_certs(*p, extra, false, NULL, err);
		if (ret < 0)
			goto out;
		/* load_certs put the first cert in *first only when asked; all go to extra here */
	}
	BIO *kb = BIO_new_file(signer->key_path, "r");
	if (!kb) {
		ret = abota_error_set(err, -ENOENT, "%s: cannot open key file", signer->key_path);
		goto out;
	}
	key = PEM_read_bio_PrivateKey(kb, NULL, pass_cb, NULL);
	BIO_free(kb);
	if (!key) {
		ret = abota_error_set(err, -EINVAL,
				      "%s: cannot read private key (not PEM, or wrong passphrase in ABOTA_KEY_PASSPHRASE)",
				      signer->key_path);
		goto out;
	}
	unsigned flags = CMS_BINARY | CMS_NOSMIMECAP | CMS_PARTIAL | (detached ? CMS_DETACHED : 0);
	cms = CMS_sign(NULL, NULL, extra, NULL, flags);
	if (!cms || !CMS_add1_signer(cms, cert, key, EVP_sha256(), flags)) {
		ret = abota_error_set(err, -EINVAL, "signing with %s failed", signer->cert_path);
		abota_error_add_openssl(err);
		goto out;
	}
	if (detached) {
		sb.src = src;
		sb.end = content_len;
		sb.err = &read_err;
		data = sbio_new(&sb);
	} else {
		if (inline_len > INT32_MAX) {
			ret = abota_error_set(err, -EFBIG, "signing: content too large");
			goto out;
		}
		data = BIO_new_mem_buf(content, (int)inline_len);
	}
	if (!data) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (CMS_final(cms, data, NULL, flags) != 1 || sb.failed) {
		if (sb.failed && read_err.code) {
			ret = read_err.code;
			if (err)
				*err = read_err;
		} else {
			ret = abota_error_set(err, -EIO, "signing failed");
			abota_error_add_openssl(err);
		}
		goto out;
	}
	int len = i2d_CMS_ContentInfo(cms, &out);
	if (len <= 0) {
		ret = abota_error_set(err, -EIO, "signing: cannot encode CMS");
		goto out;
	}
	uint8_t *copy = malloc((size_t)len);
	if (!copy) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	memcpy(copy, out, (size_t)len);
	*der = copy;
	*der_len = (size_t)len;
out:
	ERR_clear_error();
	OPENSSL_free(out);
	BIO_free(data);
	free(sb.bufs[0]);
	free(sb.bufs[1]);
	CMS_ContentInfo_free(cms);
	EVP_PKEY_free(key);
	X509_free(cert);
	sk_X509_pop_free(extra, X509_free);
	return ret;
}
