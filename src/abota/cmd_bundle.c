/* cmd_bundle.c - abota bundle | info | extract | resign | extract-signature |
 * replace-signature. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/x509.h>

#include "abota/bundle.h"
#include "abota/config.h"
#include "abota/digest.h"
#include "abota/fileio.h"
#include "abota/log.h"
#include "cli.h"
#include "cli_http.h"

#define MAX_LIST 32

/* Options shared by the verbs that verify a bundle: they mirror the
 * [keyring] section of system.conf. */
struct verify_opts {
	struct sig_policy policy;
	const char *cns[MAX_LIST + 1];
	size_t n_cns;
	const char *inter[MAX_LIST + 1];
	size_t n_inter;
	bool no_verify;
	bool trust_environment; /* --trust-environment, for the verbs that list it */
};

/* The option and help line of --trust-environment (extract and the
 * signature verbs, as in RAUC). */
#define TRUST_ENVIRONMENT_OPTION { "trust-environment", no_argument, NULL, OPT_TRUST_ENVIRONMENT }
#define TRUST_ENVIRONMENT_HELP                                                          \
	"      --trust-environment        skip the exclusive-access checks of a local\n"   \
	"                                 plain bundle (only for a file nobody else\n"     \
	"                                 can write)\n"

enum {
	OPT_KEYRING = 1000,
	OPT_KEYRING_DIR,
	OPT_INTERMEDIATE,
	OPT_NO_VERIFY,
	OPT_NO_CHECK_TIME,
	OPT_CHECK_PURPOSE,
	OPT_ALLOW_PARTIAL,
	OPT_CHECK_CRL,
	OPT_SIGNING_TIME,
	OPT_SIGNER_CN,
	OPT_OUTPUT,
	OPT_CERT,
	OPT_KEY,
	OPT_FORMAT,
	OPT_COMPRESSION,
	OPT_LEVEL,
	OPT_BLOCK_SIZE,
	OPT_SIGNING_KEYRING,
	OPT_TRUST_ENVIRONMENT,
	OPT_DUMP_CERT,
	OPT_DUMP_RECIPIENTS,
	OPT_HELP,
};

#define VERIFY_OPTIONS                                                          \
	{ "keyring", required_argument, NULL, OPT_KEYRING },                    \
	{ "keyring-directory", required_argument, NULL, OPT_KEYRING_DIR },      \
	{ "intermediate", required_argument, NULL, OPT_INTERMEDIATE },          \
	{ "no-verify", no_argument, NULL, OPT_NO_VERIFY },                      \
	{ "no-check-time", no_argument, NULL, OPT_NO_CHECK_TIME },              \
	{ "check-purpose", required_argument, NULL, OPT_CHECK_PURPOSE },        \
	{ "allow-partial-chain", no_argument, NULL, OPT_ALLOW_PARTIAL },        \
	{ "check-crl", no_argument, NULL, OPT_CHECK_CRL },                      \
	{ "use-bundle-signing-time", no_argument, NULL, OPT_SIGNING_TIME },     \
	{ "allowed-signer-cn", required_argument, NULL, OPT_SIGNER_CN }

static const char verify_help[] =
	"The trust policy is system.conf's [keyring] (-c, else the first default system.conf\n"
	"found, if any) and its bundle-formats; these options add to it, and --keyring or\n"
	"--keyring-directory replace its keyring files.\n\n"
	"      --keyring=FILE             trusted CA certificates (PEM); also a global option\n"
	"      --keyring-directory=DIR    OpenSSL hashed directory of trusted certificates\n"
	"      --intermediate=FILE        extra untrusted intermediate certificates (PEM)\n"
	"      --no-verify                do not verify the signature (inspection only)\n"
	"      --no-check-time            ignore certificate validity periods\n"
	"      --check-purpose=NAME       certificate purpose (codesign, smimesign, any, ...)\n"
	"      --allow-partial-chain      trust a chain that ends at an intermediate in the keyring\n"
	"      --check-crl                check CRLs in the keyring\n"
	"      --use-bundle-signing-time  check validity at the bundle's signing time\n"
	"      --allowed-signer-cn=CN     accept only this signer CN (repeatable)\n";

/* Returns 1 if the option was a verify option, -1 on error, 0 otherwise. */
static int verify_opt(struct verify_opts *v, const char *verb, int c)
{
	switch (c) {
	case OPT_TRUST_ENVIRONMENT: v->trust_environment = true; return 1;
	case OPT_KEYRING: v->policy.keyring_path = optarg; return 1;
	case OPT_KEYRING_DIR: v->policy.keyring_dir = optarg; return 1;
	case OPT_INTERMEDIATE:
		if (v->n_inter == MAX_LIST)
			return cli_usage_error(verb, "too many --intermediate options"), -1;
		v->inter[v->n_inter++] = optarg;
		v->policy.intermediates = v->inter;
		return 1;
	case OPT_NO_VERIFY: v->no_verify = true; return 1;
	case OPT_NO_CHECK_TIME: v->policy.no_check_time = true; return 1;
	case OPT_CHECK_PURPOSE: v->policy.check_purpose = optarg; return 1;
	case OPT_ALLOW_PARTIAL: v->policy.allow_partial_chain = true; return 1;
	case OPT_CHECK_CRL: v->policy.check_crl = true; return 1;
	case OPT_SIGNING_TIME: v->policy.use_bundle_signing_time = true; return 1;
	case OPT_SIGNER_CN:
		if (v->n_cns == MAX_LIST)
			return cli_usage_error(verb, "too many --allowed-signer-cn options"), -1;
		v->cns[v->n_cns++] = optarg;
		v->policy.allowed_signer_cns = v->cns;
		return 1;
	}
	return 0;
}

/* The global --intermediate options (given before the verb) come first in
 * the verb's own list, as if they had been given to the verb. */
static int take_global_intermediates(const struct cli_globals *g, const char *verb,
				     const char **list, size_t *n)
{
	for (unsigned i = 0; i < g->n_intermediate; i++) {
		if (*n == MAX_LIST)
			return cli_usage_error(verb, "too many --intermediate options");
		list[(*n)++] = g->intermediate[i];
	}
	return 0;
}

_Static_assert(CLI_MAX_INTERMEDIATE <= MAX_LIST, "global --intermediate list must fit");

static void verify_opts_init(struct verify_opts *v, const struct cli_globals *g)
{
	memset(v, 0, sizeof(*v));
	/* MAX_LIST == CLI_MAX_INTERMEDIATE: cannot overflow here */
	take_global_intermediates(g, "", v->inter, &v->n_inter);
	if (v->n_inter)
		v->policy.intermediates = v->inter;
}

/* rename() that never replaces an existing `to`.  RENAME_NOREPLACE where the
 * file system has it, else link() (which fails on an existing name), else --
 * for file systems without hard links (vfat) -- a plain rename() after a
 * check, which is the best they allow. */
static int rename_noreplace(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (link(from, to) == 0)
		return unlink(from);
	if (errno != EPERM && errno != EOPNOTSUPP)
		return -1;
	struct stat st;
	if (lstat(to, &st) == 0) {
		errno = EEXIST;
		return -1;
	}
	return rename(from, to);
}

/* Makes OUT through a staging file next to it: write() fills the staging
 * file, which -- when a keyring is known -- is then opened and verified as a
 * device would (keyring and the certificates embedded in the signature
 * only, none of the command line's --intermediate), before it is renamed
 * to OUT.  RAUC checks every new signature this way; a bundle no device can
 * verify is refused and nothing is left behind. */
struct signed_output {
	const char *out;
	const char *check_keyring;          /* --signing-keyring, else the keyring */
	const char *check_keyring_dir;
	const struct sig_policy *flags;     /* purpose, CRL, time checks; may be NULL */
	const struct bundle_open_opts *oo;  /* formats and limits; may be NULL */
	/* Also read the whole payload of the result against its signed
	 * manifest (verity; a plain one is hashed whole when opened): for a
	 * signature made elsewhere, which may belong to another payload.  Its
	 * failures are explained with hint. */
	bool check_payload;
	const char *hint;
};

static int write_signed_output(const struct signed_output *so,
			       int (*write)(void *ctx, const char *path, struct abota_error *err),
			       void *ctx, struct abota_error *err)
{
	char *stage = NULL;
	int ret;
	struct stat st;
	if (lstat(so->out, &st) == 0)
		return abota_error_set(err, -EEXIST, "%s: output file already exists", so->out);
	if (asprintf(&stage, "%s.abota-XXXXXX", so->out) < 0) {
		stage = NULL;
		return abota_error_set(err, -ENOMEM, "out of memory");
	}
	/* a fresh name next to OUT; the writer creates the file itself and
	 * refuses an existing one */
	int fd = mkstemp(stage);
	if (fd < 0) {
		ret = abota_error_set(err, -errno, "%s: cannot create a file next to it: %s", so->out,
				      strerror(errno));
		free(stage);
		return ret;
	}
	close(fd);
	unlink(stage);
	ret = write(ctx, stage, err);
	if (ret == 0 && (so->check_keyring || so->check_keyring_dir)) {
		struct sig_policy p = so->flags ? *so->flags : (struct sig_policy){ 0 };
		p.keyring_path = so->check_keyring;
		p.keyring_dir = so->check_keyring_dir;
		p.intermediates = NULL;
		/* a constraint on the signer of the input, not of the new one */
		p.allowed_signer_cns = NULL;
		struct bundle_open_opts o = { 0 };
		if (so->oo) {
			o.max_signature_size = so->oo->max_signature_size;
			o.allowed_formats = so->oo->allowed_formats;
		}
		o.policy = &p;
		struct bundle *b = NULL;
		ret = bundle_open(stage, &o, &b, err);
		if (ret == 0 && so->check_payload)
			ret = bundle_check_payload(b, err);
		bundle_close(b);
		/* the staging name means nothing to the user, and is gone */
		size_t sl = strlen(stage);
		while (ret < 0 && err && strncmp(err->msg, stage, sl) == 0 && err->msg[sl] == ':' &&
		       err->msg[sl + 1] == ' ')
			memmove(err->msg, err->msg + sl + 2, strlen(err->msg + sl + 2) + 1);
		if (ret < 0 && so->check_payload)
			abota_error_prefix(err, "%s: the new signature is not valid for this bundle "
					   "with %s%s (%s)", so->out,
					   so->check_keyring ? so->check_keyring : so->check_keyring_dir,
					   so->check_keyring ? "" : "/", so->hint);
		else if (ret < 0)
			abota_error_prefix(err, "%s: the new signature does not verify with %s%s (%s)",
					   so->out,
					   so->check_keyring ? so->check_keyring : so->check_keyring_dir,
					   so->check_keyring ? "" : "/",
					   "give the CA of the new certificate with "
					   "--signing-keyring=FILE; nothing was written");
	}
	/* never replace a file that appeared meanwhile */
	if (ret == 0 && rename_noreplace(stage, so->out) < 0)
		ret = abota_error_set(err, -errno, "%s: %s", so->out,
				      errno == EEXIST ? "output file already exists" : strerror(errno));
	if (ret == 0)
		ret = fileio_fsync_dir(so->out, 0, err);
	else
		unlink(stage);
	free(stage);
	return ret;
}

/* The trust policy and limits for info, extract and resign, as RAUC's
 * "auto" configuration mode has them: system.conf (-c, or the first default
 * one that exists; none on a build host) gives [keyring] and bundle-formats,
 * the command line adds to it -- a --keyring or --keyring-directory replaces
 * the keyring files and keeps the policy flags, as for install.  *cfg owns
 * the strings in *pol: free it after the bundle is closed. */
static int open_opts_load(const struct verify_opts *v, const struct cli_globals *g,
			  struct bundle_open_opts *o, struct sig_policy *pol,
			  struct system_config **cfg, struct abota_error *err)
{
	struct system_config *c = NULL;
	int ret;
	if (!g->conf && g->n_mount && g->n_confopt == g->n_mount) {
		/* --mount alone does not call for a system.conf (rauc takes it on a
		 * build host too): it applies to the default one if there is one. */
		if ((ret = config_load_auto(NULL, NULL, &c, err)) < 0)
			return ret;
		if (c) {
			config_free(c);
			c = NULL;
			ret = config_load_auto(NULL, g->confopt, &c, err);
		}
	} else {
		ret = config_load_auto(g->conf, g->confopt, &c, err);
	}
	if (ret < 0)
		return ret;
	const struct sig_policy *cl = &v->policy;
	struct sig_policy p = c && c->keyring_present ? c->keyring : (struct sig_policy){ 0 };
	const char *keyring = cl->keyring_path ? cl->keyring_path : g->keyring;
	if (keyring || cl->keyring_dir) {
		p.keyring_path = keyring;
		p.keyring_dir = cl->keyring_dir;
	}
	if (cl->check_purpose)
		p.check_purpose = cl->check_purpose;
	if (cl->allowed_signer_cns)
		p.allowed_signer_cns = cl->allowed_signer_cns;
	if (cl->intermediates)
		p.intermediates = cl->intermediates;
	p.check_crl |= cl->check_crl;
	p.allow_partial_chain |= cl->allow_partial_chain;
	p.use_bundle_signing_time |= cl->use_bundle_signing_time;
	p.no_check_time |= cl->no_check_time;
	memset(o, 0, sizeof(*o));
	if (c) {
		o->max_signature_size = c->max_bundle_signature_size;
		o->sandbox_user = c->streaming.sandbox_user;
		if ((ret = bundle_formats_from_config(c->bundle_formats, &o->allowed_formats, err)) < 0) {
			config_free(c);
			return ret;
		}
	}
	*pol = p;
	o->policy = pol;
	o->no_verify = v->no_verify;
	o->trust_environment = v->trust_environment;
	*cfg = c;
	return 0;
}

/* ---------------- abota bundle ---------------- */

struct create_ctx {
	const char *content_dir;
	const struct bundle_create_opts *bo;
};

static int create_into(void *ctx, const char *path, struct abota_error *err)
{
	const struct create_ctx *c = ctx;
	return bundle_create(c->content_dir, path, c->bo, err);
}

int cmd_bundle(struct cli_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "signing-keyring", required_argument, NULL, OPT_SIGNING_KEYRING },
		{ "cert", required_argument, NULL, OPT_CERT },
		{ "key", required_argument, NULL, OPT_KEY },
		{ "intermediate", required_argument, NULL, OPT_INTERMEDIATE },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "compression", required_argument, NULL, OPT_COMPRESSION },
		{ "compression-level", required_argument, NULL, OPT_LEVEL },
		{ "block-size", required_argument, NULL, OPT_BLOCK_SIZE },
		{ "help", no_argument, NULL, OPT_HELP },
		{ 0 },
	};
	struct bundle_create_opts bo = { .format = -1 };
	const char *inter[MAX_LIST + 1] = { 0 };
	size_t n_inter = 0;
	const char *signing_keyring = NULL;
	if (take_global_intermediates(g, "bundle", inter, &n_inter) != 0)
		return 2;
	if (n_inter)
		bo.signer.intermediates = inter;
	int c;
	while ((c = cli_getopt(g, "bundle", argc, argv, "h", opts)) != -1) {
		switch (c) {
		case OPT_SIGNING_KEYRING: signing_keyring = optarg; break;
		case OPT_CERT: bo.signer.cert_path = optarg; break;
		case OPT_KEY: bo.signer.key_path = optarg; break;
		case OPT_INTERMEDIATE:
			if (n_inter == MAX_LIST)
				return cli_usage_error("bundle", "too many --intermediate options");
			inter[n_inter++] = optarg;
			bo.signer.intermediates = inter;
			break;
		case OPT_FORMAT:
			if (strcmp(optarg, "verity") == 0)
				bo.format = BUNDLE_FORMAT_VERITY;
			else if (strcmp(optarg, "plain") == 0)
				bo.format = BUNDLE_FORMAT_PLAIN;
			else
				return cli_usage_error("bundle", "--format: '%s' is not verity or plain",
						       optarg);
			break;
		case OPT_COMPRESSION:
			if (strcmp(optarg, "zstd") && strcmp(optarg, "xz") && strcmp(optarg, "gzip") &&
			    strcmp(optarg, "lz4"))
				return cli_usage_error("bundle",
						       "--compression: '%s' is not zstd, xz, gzip or lz4",
						       optarg);
			bo.compressor = optarg;
			break;
		case OPT_LEVEL: {
			char *end;
			long l = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end || l < 1 || l > 22)
				return cli_usage_error("bundle",
						       "--compression-level: '%s' is not a number from 1 to 22",
						       optarg);
			bo.level = (int)l;
			break;
		}
		case OPT_BLOCK_SIZE: {
			char *end;
			unsigned long l = strtoul(optarg, &end, 10);
			if (*end == 'k' || *end == 'K') {
				l *= 1024;
				end++;
			} else if (*end == 'm' || *end == 'M') {
				l *= 1024 * 1024;
				end++;
			}
			if (*optarg == '\0' || *end || l < 4096 || l > (1u << 20) || (l & (l - 1)))
				return cli_usage_error("bundle",
						       "--block-size: '%s' is not a power of two from 4096 to 1M",
						       optarg);
			bo.block_size = (uint32_t)l;
			break;
		}
		case 'h':
		case OPT_HELP:
			printf("Usage: abota bundle --cert=PEM --key=PEM [OPTIONS] CONTENT_DIR OUT.raucb\n\n"
			       "Builds a signed RAUC-compatible bundle from CONTENT_DIR (manifest.raucm + images).\n\n"
			       "  --cert=FILE              signer certificate (PEM)\n"
			       "  --key=FILE               signer private key (PEM; passphrase in ABOTA_KEY_PASSPHRASE)\n"
			       "  --intermediate=FILE      intermediate certificates to embed (repeatable)\n"
			       "  --format=verity|plain    bundle format (default: the manifest's, else verity)\n"
			       "  --compression=zstd|xz|gzip|lz4   squashfs compression (default zstd)\n"
			       "  --compression-level=N    compressor level (default: zstd 4 for 1M blocks,\n"
			       "                           5 from 256K, 6 below; gzip 6; xz 6)\n"
			       "  --block-size=N[K|M]      squashfs block size, 4K..1M (default 1M, or 128K\n"
			       "                           when an image is adaptive)\n"
			       "  --signing-keyring=FILE   verify the new bundle with this keyring (default:\n"
			       "                           the global --keyring, if given); a bundle that does\n"
			       "                           not verify is not written\n");
			return 0;
		default:
			return 2;
		}
	}
	if (argc - optind != 2)
		return cli_usage_error("bundle", "expected CONTENT_DIR and OUT arguments");
	if (!bo.signer.cert_path || !bo.signer.key_path)
		return cli_usage_error("bundle", "--cert and --key are required");
	struct abota_error err = { 0 };
	struct create_ctx cc = { .content_dir = argv[optind], .bo = &bo };
	struct signed_output so = {
		.out = argv[optind + 1],
		.check_keyring = signing_keyring ? signing_keyring : g->keyring,
	};
	if (write_signed_output(&so, create_into, &cc, &err) < 0)
		return cli_fail("bundle", &err);
	printf("Creating '%s' succeeded\n", argv[optind + 1]);
	return 0;
}

/* ---------------- abota info ---------------- */

static void print_shell_quoted(const char *key, const char *v)
{
	printf("%s='", key);
	for (const char *p = v ? v : ""; *p; p++) {
		if (*p == '\'')
			fputs("'\\''", stdout);
		else
			putchar(*p);
	}
	puts("'");
}

static json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static json_object *hooks_json(const struct manifest_image *img)
{
	json_object *a = json_object_new_array();
	if (img->hook_pre_install)
		json_object_array_add(a, json_object_new_string("pre-install"));
	if (img->hook_install)
		json_object_array_add(a, json_object_new_string("install"));
	if (img->hook_post_install)
		json_object_array_add(a, json_object_new_string("post-install"));
	return a;
}

static void hooks_str(const struct manifest_image *img, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", img->hook_pre_install ? "pre-install " : "",
		 img->hook_install ? "install " : "", img->hook_post_install ? "post-install " : "");
	size_t l = strlen(buf);
	if (l && buf[l - 1] == ' ')
		buf[l - 1] = '\0';
}

static void info_json(struct bundle *b, bool pretty)
{
	const struct manifest *m = bundle_get_manifest(b);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "compatible", jstr(m->compatible));
	json_object_object_add(o, "version", jstr(m->version));
	json_object_object_add(o, "description", jstr(m->description));
	json_object_object_add(o, "build", jstr(m->build));
	json_object *hooks = json_object_new_array();
	if (m->hook_install_check)
		json_object_array_add(hooks, json_object_new_string("install-check"));
	json_object_object_add(o, "hooks", hooks);
	json_object_object_add(o, "hash", jstr(bundle_manifest_hash(b)));
	json_object_object_add(o, "format", jstr(bundle_format_name(bundle_get_format(b))));
	if (bundle_get_format(b) != BUNDLE_FORMAT_PLAIN) {
		json_object *v = json_object_new_object();
		json_object_object_add(v, "verity-hash", jstr(m->verity_hash));
		json_object_object_add(v, "verity-salt", jstr(m->verity_salt));
		json_object_object_add(v, "verity-size", json_object_new_uint64(m->verity_size));
		json_object_object_add(o, "bundle", v);
	}
	json_object *imgs = json_object_new_array();
	for (size_t i = 0; i < m->n_images; i++) {
		const struct manifest_image *img = &m->images[i];
		json_object *w = json_object_new_object();
		json_object *d = json_object_new_object();
		json_object_object_add(d, "variant", jstr(img->variant));
		json_object_object_add(d, "filename", jstr(img->filename));
		json_object_object_add(d, "checksum", jstr(img->sha256[0] ? img->sha256 : NULL));
		json_object_object_add(d, "size", json_object_new_uint64(img->size));
		json_object_object_add(d, "hooks", hooks_json(img));
		json_object *ad = json_object_new_array();
		if (img->adaptive_block_hash_index)
			json_object_array_add(ad, json_object_new_string("block-hash-index"));
		json_object_object_add(d, "adaptive", ad);
		json_object_object_add(w, img->slotclass, d);
		json_object_array_add(imgs, w);
	}
	json_object_object_add(o, "images", imgs);
	if (m->n_meta) {
		json_object *meta = json_object_new_object();
		for (size_t i = 0; i < m->n_meta; i++) {
			json_object *g = json_object_new_object();
			for (size_t k = 0; k < m->meta[i].n_kv; k++)
				json_object_object_add(g, m->meta[i].kv[k].key,
						       jstr(m->meta[i].kv[k].value));
			json_object_object_add(meta, m->meta[i].label, g);
		}
		json_object_object_add(o, "meta", meta);
	}
	const struct sig_info *si = bundle_get_sig_info(b);
	json_object *sig = json_object_new_object();
	json_object_object_add(sig, "verified", json_object_new_boolean(si != NULL));
	if (si) {
		json_object_object_add(sig, "signing-time", jstr(si->signing_time));
		json_object *chain = json_object_new_array();
		for (size_t i = 0; i < si->n_chain; i++) {
			json_object *c = json_object_new_object();
			json_object_object_add(c, "subject", jstr(si->chain[i].subject));
			json_object_object_add(c, "issuer", jstr(si->chain[i].issuer));
			json_object_object_add(c, "serial", jstr(si->chain[i].serial));
			json_object_object_add(c, "spki-sha256", jstr(si->chain[i].spki_hash));
			json_object_object_add(c, "not-before", jstr(si->chain[i].not_before));
			json_object_object_add(c, "not-after", jstr(si->chain[i].not_after));
			json_object_array_add(chain, c);
		}
		json_object_object_add(sig, "chain", chain);
	}
	json_object_object_add(o, "signature", sig);
	puts(json_object_to_json_string_ext(o, pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
						      : JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

static void info_shell(struct bundle *b)
{
	const struct manifest *m = bundle_get_manifest(b);
	print_shell_quoted("RAUC_MF_COMPATIBLE", m->compatible);
	print_shell_quoted("RAUC_MF_VERSION", m->version);
	print_shell_quoted("RAUC_MF_DESCRIPTION", m->description);
	print_shell_quoted("RAUC_MF_BUILD", m->build);
	print_shell_quoted("RAUC_MF_HASH", bundle_manifest_hash(b));
	print_shell_quoted("RAUC_MF_FORMAT", bundle_format_name(bundle_get_format(b)));
	printf("RAUC_MF_IMAGES=%zu\n", m->n_images);
	print_shell_quoted("RAUC_MF_HOOKS", m->hook_install_check ? "install-check" : "");
	for (size_t i = 0; i < m->n_images; i++) {
		const struct manifest_image *img = &m->images[i];
		char key[64], hooks[64];
		snprintf(key, sizeof(key), "RAUC_IMAGE_NAME_%zu", i);
		print_shell_quoted(key, img->filename);
		snprintf(key, sizeof(key), "RAUC_IMAGE_CLASS_%zu", i);
		print_shell_quoted(key, img->slotclass);
		snprintf(key, sizeof(key), "RAUC_IMAGE_VARIANT_%zu", i);
		print_shell_quoted(key, img->variant);
		snprintf(key, sizeof(key), "RAUC_IMAGE_DIGEST_%zu", i);
		print_shell_quoted(key, img->sha256);
		printf("RAUC_IMAGE_SIZE_%zu=%llu\n", i, (unsigned long long)img->size);
		hooks_str(img, hooks, sizeof(hooks));
		snprintf(key, sizeof(key), "RAUC_IMAGE_HOOKS_%zu", i);
		print_shell_quoted(key, hooks);
		snprintf(key, sizeof(key), "RAUC_IMAGE_ADAPTIVE_%zu", i);
		print_shell_quoted(key, img->adaptive_block_hash_index ? "block-hash-index" : "");
	}
}

static void info_readable(struct bundle *b)
{
	const struct manifest *m = bundle_get_manifest(b);
	printf("Compatible: \t'%s'\n", m->compatible);
	printf("Version:    \t'%s'\n", m->version ? m->version : "");
	printf("Description:\t'%s'\n", m->description ? m->description : "");
	printf("Build:      \t'%s'\n", m->build ? m->build : "");
	printf("Hooks:      \t'%s'\n", m->hook_install_check ? "install-check" : "");
	printf("Bundle Format: \t%s\n", bundle_format_name(bundle_get_format(b)));
	if (bundle_get_format(b) != BUNDLE_FORMAT_PLAIN) {
		printf("  Verity Salt: \t'%s'\n", m->verity_salt);
		printf("  Verity Hash: \t'%s'\n", m->verity_hash);
		printf("  Verity Size: \t%llu\n", (unsigned long long)m->verity_size);
	}
	printf("Manifest Hash:\t'%s'\n", bundle_manifest_hash(b));
	printf("\n%zu Image%s:\n", m->n_images, m->n_images == 1 ? "" : "s");
	for (size_t i = 0; i < m->n_images; i++) {
		const struct manifest_image *img = &m->images[i];
		char hooks[64];
		hooks_str(img, hooks, sizeof(hooks));
		if (img->variant)
			printf("  [%s.%s]\n", img->slotclass, img->variant);
		else
			printf("  [%s]\n", img->slotclass);
		printf("\tFilename:  %s\n", img->filename ? img->filename : "");
		printf("\tChecksum:  %s\n", img->sha256);
		printf("\tSize:      %llu\n", (unsigned long long)img->size);
		printf("\tHooks:     %s\n", hooks);
		if (img->adaptive_block_hash_index)
			printf("\tAdaptive:  block-hash-index\n");
	}
}

static void info_readable_chain(struct bundle *b)
{
	const struct sig_info *si = bundle_get_sig_info(b);
	if (!si) {
		printf("\nSignature not verified (--no-verify)\n");
		return;
	}
	if (si->signing_time)
		printf("\nSigning Time: %s\n", si->signing_time);
	printf("\nCertificate Chain:\n");
	for (size_t i = 0; i < si->n_chain; i++) {
		printf("%2zu Subject: %s\n", i, si->chain[i].subject);
		printf("   Issuer: %s\n", si->chain[i].issuer);
		printf("   SPKI sha256: %s\n", si->chain[i].spki_hash);
		printf("   Not Before: %s\n", si->chain[i].not_before);
		printf("   Not After:  %s\n", si->chain[i].not_after);
	}
}

/* RAUC's info --dump-cert: the first certificate in the bundle's CMS
 * signature (normally the signer's) as OpenSSL's X509_print_ex() text, the
 * same text rauc prints.  The signature is read from the file again; when
 * it was verified, the certificate must be one of the verified chain, so a
 * file changed since the check cannot show another certificate. */
static int dump_cert(const struct bundle *b, struct abota_error *err)
{
	const char *path = bundle_path(b);
	uint64_t fsize = bundle_file_size(b), ssize = bundle_signature_size(b);
	uint8_t *der = NULL;
	CMS_ContentInfo *cms = NULL;
	STACK_OF(X509) *certs = NULL;
	BIO *mem = NULL;
	X509 *x = NULL;
	char *text = NULL;
	long n = 0;
	int fd = -1, ret;
	if (strncmp(path, "http://", 7) == 0 || strncmp(path, "https://", 8) == 0)
		return abota_error_set(err, -ENOTSUP, "--dump-cert needs a local bundle file");
	if (ssize == 0 || ssize > fsize - 8)
		return abota_error_set(err, -EINVAL, "%s: no signature to dump", path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	der = malloc((size_t)ssize);
	if (!der) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if ((ret = fileio_pread_full(fd, der, (size_t)ssize, fsize - 8 - ssize, err)) < 0)
		goto out;
	const unsigned char *p = der;
	cms = d2i_CMS_ContentInfo(NULL, &p, (long)ssize);
	certs = cms ? CMS_get1_certs(cms) : NULL;
	x = certs && sk_X509_num(certs) > 0 ? sk_X509_value(certs, 0) : NULL;
	if (!x) {
		ret = abota_error_set(err, -EINVAL, "%s: the signature holds no certificate", path);
		goto out;
	}
	const struct sig_info *si = bundle_get_sig_info(b);
	if (si) {
		unsigned char *spki = NULL;
		int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki);
		uint8_t md[DIGEST_SHA256_LEN];
		char hex[3 * DIGEST_SHA256_LEN + 1] = "";
		if (len > 0 && digest_sha256(spki, (size_t)len, md) == 0)
			digest_to_colon_hex(md, sizeof(md), hex);
		OPENSSL_free(spki);
		bool found = false;
		for (size_t i = 0; i < si->n_chain; i++)
			found = found || strcmp(si->chain[i].spki_hash, hex) == 0;
		if (!found) {
			ret = abota_error_set(err, -EIO,
					      "%s: the signature's first certificate is not in its "
					      "verified chain (did the file change since it was verified?)",
					      path);
			goto out;
		}
	}
	mem = BIO_new(BIO_s_mem());
	if (!mem || X509_print_ex(mem, x, 0, 0) != 1 || (n = BIO_get_mem_data(mem, &text)) <= 0) {
		ret = abota_error_set(err, -ENOMEM, "cannot print the certificate");
		goto out;
	}
	printf("%.*s\n", (int)n, text);
	ret = 0;
out:
	BIO_free(mem);
	sk_X509_pop_free(certs, X509_free);
	CMS_ContentInfo_free(cms);
	free(der);
	if (fd >= 0)
		close(fd);
	return ret;
}

int cmd_info(struct cli_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		VERIFY_OPTIONS,
		CLI_HTTP_OPTIONS,
		{ "output-format", required_argument, NULL, OPT_OUTPUT },
		{ "dump-cert", no_argument, NULL, OPT_DUMP_CERT },
		{ "dump-recipients", no_argument, NULL, OPT_DUMP_RECIPIENTS },
		{ "help", no_argument, NULL, OPT_HELP },
		{ 0 },
	};
	struct verify_opts v;
	verify_opts_init(&v, g);
	struct cli_http http = { 0 };
	enum cli_output_format fmt = CLI_OUTPUT_READABLE;
	bool dump_certificate = false, dump_recipients = false;
	int c;
	while ((c = cli_getopt(g, "info", argc, argv, "h", opts)) != -1) {
		int r = verify_opt(&v, "info", c);
		if (r == 0)
			r = cli_http_option(&http, "info", c, optarg);
		if (r < 0)
			return 2;
		if (r > 0)
			continue;
		switch (c) {
		case OPT_DUMP_CERT: dump_certificate = true; break;
		case OPT_DUMP_RECIPIENTS: dump_recipients = true; break;
		case OPT_OUTPUT:
			if (!cli_parse_output_format(optarg, &fmt))
				return cli_usage_error("info",
						       "--output-format: '%s' is not readable, json, json-pretty or shell",
						       optarg);
			break;
		case 'h':
		case OPT_HELP:
			printf("Usage: abota info [OPTIONS] BUNDLE\n\nVerifies BUNDLE and shows its manifest and signer.\n\n%s"
			       "      --output-format=readable|json|json-pretty|shell\n"
			       "      --dump-cert                also print the signer certificate (as rauc)\n"
			       "      --dump-recipients          print the recipients of an encrypted bundle\n"
			       "                                 (abota opens no encrypted bundles: says so)\n"
			       CLI_HTTP_HELP,
			       verify_help);
			return 0;
		default:
			return 2;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("info", "expected one BUNDLE argument");
	if (cli_http_check(&http, "info") < 0)
		return 2;
	struct bundle_open_opts oo;
	struct sig_policy pol;
	struct system_config *cfg = NULL;
	struct abota_error err = { 0 };
	if (open_opts_load(&v, g, &oo, &pol, &cfg, &err) < 0)
		return cli_fail("info", &err);
	oo.http = &http.opts;
	if (v.no_verify)
		log_warning("signature not verified (--no-verify): nothing shown can be trusted");
	struct bundle *b = NULL;
	int ret = bundle_open(argv[optind], &oo, &b, &err);
	if (ret == 0) {
		/* rauc's order: manifest, certificate, recipients, then the chain */
		switch (fmt) {
		case CLI_OUTPUT_READABLE: info_readable(b); break;
		case CLI_OUTPUT_JSON: info_json(b, false); break;
		case CLI_OUTPUT_JSON_PRETTY: info_json(b, true); break;
		case CLI_OUTPUT_SHELL: info_shell(b); break;
		}
		if (dump_certificate)
			ret = dump_cert(b, &err);
		/* crypt bundles are refused by bundle_open(): every bundle shown
		 * here is unencrypted, and rauc says this for those */
		if (ret == 0 && dump_recipients)
			printf("No recipient data to dump (bundle is not encrypted)\n\n");
		if (ret == 0 && fmt == CLI_OUTPUT_READABLE)
			info_readable_chain(b);
		bundle_close(b);
	}
	config_free(cfg);
	return ret < 0 ? cli_fail("info", &err) : 0;
}

/* ---------------- abota extract ---------------- */

int cmd_extract(struct cli_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		VERIFY_OPTIONS,
		CLI_HTTP_OPTIONS,
		TRUST_ENVIRONMENT_OPTION,
		{ "help", no_argument, NULL, OPT_HELP },
		{ 0 },
	};
	struct verify_opts v;
	verify_opts_init(&v, g);
	struct cli_http http = { 0 };
	int c;
	while ((c = cli_getopt(g, "extract", argc, argv, "h", opts)) != -1) {
		int r = verify_opt(&v, "extract", c);
		if (r == 0)
			r = cli_http_option(&http, "extract", c, optarg);
		if (r < 0)
			return 2;
		if (r > 0)
			continue;
		if (c == 'h' || c == OPT_HELP) {
			printf("Usage: abota extract [OPTIONS] BUNDLE DIR\n\n"
			       "Verifies BUNDLE and extracts its files into the new directory DIR.\n\n%s"
			       TRUST_ENVIRONMENT_HELP
			       CLI_HTTP_HELP,
			       verify_help);
			return 0;
		}
		return 2;
	}
	if (argc - optind != 2)
		return cli_usage_error("extract", "expected BUNDLE and DIR arguments");
	if (v.no_verify)
		return cli_usage_error("extract", "--no-verify is not allowed: extracted files must be verified");
	if (cli_http_check(&http, "extract") < 0)
		return 2;
	struct bundle_open_opts oo;
	struct sig_policy pol;
	struct system_config *cfg = NULL;
	struct abota_error err = { 0 };
	if (open_opts_load(&v, g, &oo, &pol, &cfg, &err) < 0)
		return cli_fail("extract", &err);
	oo.http = &http.opts;
	struct bundle *b = NULL;
	int ret = bundle_open(argv[optind], &oo, &b, &err);
	if (ret == 0) {
		ret = bundle_extract(b, argv[optind + 1], &err);
		bundle_close(b);
		if (ret < 0)
			abota_error_prefix(&err, "%s", argv[optind]);
	}
	config_free(cfg);
	if (ret < 0)
		return cli_fail("extract", &err);
	printf("Extracting '%s' to '%s' succeeded\n", argv[optind], argv[optind + 1]);
	return 0;
}

/* ---------------- abota resign ---------------- */

struct resign_ctx {
	const char *in;
	const struct bundle_open_opts *oo;
	const struct sig_signer *signer;
};

static int resign_into(void *ctx, const char *path, struct abota_error *err)
{
	const struct resign_ctx *c = ctx;
	return bundle_resign(c->in, path, c->oo, c->signer, err);
}

int cmd_resign(struct cli_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		VERIFY_OPTIONS,
		{ "signing-keyring", required_argument, NULL, OPT_SIGNING_KEYRING },
		{ "cert", required_argument, NULL, OPT_CERT },
		{ "key", required_argument, NULL, OPT_KEY },
		{ "signing-intermediate", required_argument, NULL, OPT_FORMAT },
		{ "help", no_argument, NULL, OPT_HELP },
		{ 0 },
	};
	struct verify_opts v;
	verify_opts_init(&v, g);
	const char *signing_keyring = NULL;
	struct sig_signer signer = { 0 };
	const char *inter[MAX_LIST + 1] = { 0 };
	size_t n_inter = 0;
	int c;
	while ((c = cli_getopt(g, "resign", argc, argv, "h", opts)) != -1) {
		int r = verify_opt(&v, "resign", c);
		if (r < 0)
			return 2;
		if (r > 0)
			continue;
		switch (c) {
		case OPT_SIGNING_KEYRING: signing_keyring = optarg; break;
		case OPT_CERT: signer.cert_path = optarg; break;
		case OPT_KEY: signer.key_path = optarg; break;
		case OPT_FORMAT:
			if (n_inter == MAX_LIST)
				return cli_usage_error("resign", "too many --signing-intermediate options");
			inter[n_inter++] = optarg;
			signer.intermediates = inter;
			break;
		case 'h':
		case OPT_HELP:
			printf("Usage: abota resign --cert=PEM --key=PEM [OPTIONS] IN OUT\n\n"
			       "Verifies IN with the keyring and writes OUT with a new signature.\n\n"
			       "      --cert=FILE                 new signer certificate (PEM)\n"
			       "      --key=FILE                  new signer key (PEM)\n"
			       "      --signing-intermediate=FILE intermediate to embed in the new signature\n"
			       "      --signing-keyring=FILE      keyring the new signature must verify with\n"
			       "                                  (default: the keyring IN is verified with);\n"
			       "                                  if it does not, OUT is not written\n%s",
			       verify_help);
			return 0;
		default:
			return 2;
		}
	}
	if (argc - optind != 2)
		return cli_usage_error("resign", "expected IN and OUT arguments");
	if (!signer.cert_path || !signer.key_path)
		return cli_usage_error("resign", "--cert and --key are required");
	struct bundle_open_opts oo;
	struct sig_policy pol;
	struct system_config *cfg = NULL;
	struct abota_error err = { 0 };
	if (open_opts_load(&v, g, &oo, &pol, &cfg, &err) < 0)
		return cli_fail("resign", &err);
	struct resign_ctx rc = { .in = argv[optind], .oo = &oo, .signer = &signer };
	struct signed_output so = {
		.out = argv[optind + 1], .flags = &pol, .oo = &oo,
		.check_keyring = signing_keyring ? signing_keyring : pol.keyring_path,
		.check_keyring_dir = signing_keyring ? NULL : pol.keyring_dir,
	};
	int ret = write_signed_output(&so, resign_into, &rc, &err);
	config_free(cfg);
	if (ret < 0)
		return cli_fail("resign", &err);
	printf("Resigning '%s' to '%s' succeeded\n", argv[optind], argv[optind + 1]);
	return 0;
}

/* ---------------- abota extract-signature / replace-signature ----------------
 *
 * The offline (HSM) signing workflow of RAUC: extract-signature writes a
 * bundle's CMS signature (DER) to a file -- for a verity bundle it carries
 * the signed manifest, which is what an offline signer re-signs --, and
 * replace-signature puts a signature made elsewhere onto the bundle's
 * payload.  Both write through a staging file, so OUT appears complete or
 * not at all, and never replace an existing file (as RAUC). */

struct sigfile_ctx {
	const uint8_t *sig;
	size_t sig_len;
};

/* Creates path (it must not exist yet) holding the signature, mode 0600 as
 * RAUC's extract-signature, and fsyncs it. */
static int sigfile_into(void *ctx, const char *path, struct abota_error *err)
{
	const struct sigfile_ctx *c = ctx;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
	int ret = fileio_write_full(fd, c->sig, c->sig_len, err);
	if (ret == 0 && fsync(fd) < 0)
		ret = abota_error_set(err, -errno, "%s: fsync: %s", path, strerror(errno));
	if (close(fd) < 0 && ret == 0)
		ret = abota_error_set(err, -errno, "%s: close: %s", path, strerror(errno));
	return ret;
}

int cmd_extract_signature(struct cli_globals *g, int argc, char **argv)
{
	static const char verb[] = "extract-signature";
	static const struct option opts[] = {
		VERIFY_OPTIONS,
		TRUST_ENVIRONMENT_OPTION,
		{ "help", no_argument, NULL, OPT_HELP },
		{ 0 },
	};
	struct verify_opts v;
	verify_opts_init(&v, g);
	int c;
	while ((c = cli_getopt(g, verb, argc, argv, "h", opts)) != -1) {
		int r = verify_opt(&v, verb, c);
		if (r < 0)
			return 2;
		if (r > 0)
			continue;
		if (c == 'h' || c == OPT_HELP) {
			printf("Usage: abota extract-signature [OPTIONS] BUNDLE OUTFILE\n\n"
			       "Verifies BUNDLE and writes its CMS signature (DER) to the new file OUTFILE\n"
			       "(mode 0600).  For a verity bundle the signature holds the signed manifest:\n"
			       "`openssl cms -verify -inform DER -in OUTFILE -CAfile KEYRING` prints it, and\n"
			       "an offline signer can re-sign it for `abota replace-signature`.\n"
			       "--no-verify is refused (as by rauc): only a verified signature is extracted.\n\n%s"
			       TRUST_ENVIRONMENT_HELP,
			       verify_help);
			return 0;
		}
		return 2;
	}
	if (argc - optind != 2)
		return cli_usage_error(verb, "expected BUNDLE and OUTFILE arguments");
	if (v.no_verify)
		return cli_usage_error(verb, "--no-verify is not allowed: only a verified signature "
					     "is extracted");
	const char *in = argv[optind], *out = argv[optind + 1];
	struct abota_error err = { 0 };
	struct stat st;
	/* before the bundle is read: RAUC refuses an existing OUTFILE too */
	if (lstat(out, &st) == 0) {
		abota_error_set(&err, -EEXIST, "%s: output file already exists", out);
		return cli_fail(verb, &err);
	}
	struct bundle_open_opts oo;
	struct sig_policy pol;
	struct system_config *cfg = NULL;
	if (open_opts_load(&v, g, &oo, &pol, &cfg, &err) < 0)
		return cli_fail(verb, &err);
	struct bundle *b = NULL;
	int ret = bundle_open(in, &oo, &b, &err);
	if (ret == 0) {
		/* the bytes bundle_open() verified, not a second read of the file */
		struct sigfile_ctx sc;
		sc.sig = bundle_signature_data(b, &sc.sig_len);
		struct signed_output so = { .out = out };
		ret = write_signed_output(&so, sigfile_into, &sc, &err);
		bundle_close(b);
	}
	config_free(cfg);
	if (ret < 0)
		return cli_fail(verb, &err);
	printf("Extracting the signature of '%s' to '%s' succeeded\n", in, out);
	return 0;
}

struct replace_ctx {
	struct bundle *b;
	const uint8_t *sig;
	size_t sig_len;
};

/* Creates path with the payload of the opened bundle (read through its
 * verified view) followed by the new signature and its size. */
static int replace_into(void *ctx, const char *path, struct abota_error *err)
{
	const struct replace_ctx *c = ctx;
	const size_t chunk = 1u << 20;
	uint64_t payload = bundle_payload_size(c->b);
	uint8_t *buf = malloc(chunk);
	if (!buf)
		return abota_error_set(err, -ENOMEM, "out of memory");
	int ret;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0) {
		ret = abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	for (uint64_t off = 0; off < payload; off += chunk) {
		size_t n = payload - off < chunk ? (size_t)(payload - off) : chunk;
		if ((ret = bundle_read_payload(c->b, buf, n, off, err)) < 0) {
			abota_error_prefix(err, "%s", bundle_path(c->b));
			goto out;
		}
		if ((ret = fileio_write_full(fd, buf, n, err)) < 0)
			goto out;
	}
	uint8_t trailer[8];
	for (int i = 0; i < 8; i++)
		trailer[i] = (uint8_t)((uint64_t)c->sig_len >> (56 - 8 * i));
	if ((ret = fileio_write_full(fd, c->sig, c->sig_len, err)) < 0 ||
	    (ret = fileio_write_full(fd, trailer, sizeof(trailer), err)) < 0)
		goto out;
	if (fsync(fd) < 0)
		ret = abota_error_set(err, -errno, "%s: fsync: %s", path, strerror(errno));
out:
	if (fd >= 0 && close(fd) < 0 && ret == 0)
		ret = abota_error_set(err, -errno, "%s: close: %s", path, strerror(errno));
	free(buf);
	return ret;
}

/* Reads and checks SIG: a regular file of 1..max bytes holding one DER CMS
 * SignedData (the shape every bundle signature has).  *detached says whether
 * it is a plain (detached) or verity (manifest inside) signature. */
static int read_new_signature(const char *path, uint64_t max, uint8_t **sig, size_t *len,
			      bool *detached, struct abota_error *err)
{
	char *data = NULL;
	size_t n = 0;
	int ret = fileio_read_all(path, (size_t)max, &data, &n, err);
	if (ret < 0) {
		if (ret == -EFBIG)
			abota_error_set(err, ret,
					"signature file %s is larger than the signature limit of %llu "
					"bytes (system.conf's max-bundle-signature-size; devices refuse "
					"bigger ones)", path, (unsigned long long)max);
		else
			abota_error_prefix(err, "cannot read the signature file");
		return ret;
	}
	if (n == 0) {
		free(data);
		return abota_error_set(err, -EINVAL, "signature file %s is empty", path);
	}
	ret = signature_inspect((const uint8_t *)data, n, detached, NULL, NULL, err);
	if (ret < 0) {
		free(data);
		abota_error_prefix(err, "signature file %s is not a DER CMS signature", path);
		return ret;
	}
	*sig = (uint8_t *)data;
	*len = n;
	return 0;
}

int cmd_replace_signature(struct cli_globals *g, int argc, char **argv)
{
	static const char verb[] = "replace-signature";
	static const struct option opts[] = {
		VERIFY_OPTIONS,
		{ "signing-keyring", required_argument, NULL, OPT_SIGNING_KEYRING },
		TRUST_ENVIRONMENT_OPTION,
		{ "help", no_argument, NULL, OPT_HELP },
		{ 0 },
	};
	struct verify_opts v;
	verify_opts_init(&v, g);
	const char *signing_keyring = NULL;
	int c;
	while ((c = cli_getopt(g, verb, argc, argv, "h", opts)) != -1) {
		int r = verify_opt(&v, verb, c);
		if (r < 0)
			return 2;
		if (r > 0)
			continue;
		switch (c) {
		case OPT_SIGNING_KEYRING: signing_keyring = optarg; break;
		case 'h':
		case OPT_HELP:
			printf("Usage: abota replace-signature [OPTIONS] BUNDLE SIGNATURE OUTFILE\n\n"
			       "Verifies BUNDLE with the keyring (unless --no-verify) and writes the new\n"
			       "file OUTFILE: BUNDLE's payload with the CMS signature (DER) from the file\n"
			       "SIGNATURE, e.g. made by an offline signer or HSM from the output of\n"
			       "`abota extract-signature`.  OUTFILE is written only when the new signature\n"
			       "verifies with the --signing-keyring (default: the keyring) and matches the\n"
			       "payload (a verity bundle's payload is read whole against the new manifest).\n\n"
			       "      --signing-keyring=FILE     keyring the new signature must verify with\n"
			       "                                 (default: the keyring BUNDLE is verified with)\n"
			       TRUST_ENVIRONMENT_HELP "%s",
			       verify_help);
			return 0;
		default:
			return 2;
		}
	}
	if (argc - optind != 3)
		return cli_usage_error(verb, "expected BUNDLE, SIGNATURE and OUTFILE arguments");
	const char *in = argv[optind], *sigpath = argv[optind + 1], *out = argv[optind + 2];
	struct abota_error err = { 0 };
	struct stat st, st_in, st_sig;
	/* cheap checks first, before the bundle is read; RAUC refuses an
	 * existing OUTFILE too (so OUTFILE can never be BUNDLE or SIGNATURE) */
	if (lstat(out, &st) == 0) {
		abota_error_set(&err, -EEXIST, "%s: output file already exists", out);
		return cli_fail(verb, &err);
	}
	if (stat(in, &st_in) == 0 && stat(sigpath, &st_sig) == 0 && st_in.st_dev == st_sig.st_dev &&
	    st_in.st_ino == st_sig.st_ino)
		return cli_usage_error(verb, "SIGNATURE %s is the bundle itself (give the file "
					     "that holds only the new CMS signature)", sigpath);
	struct bundle_open_opts oo;
	struct sig_policy pol;
	struct system_config *cfg = NULL;
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	bool detached = false;
	struct bundle *b = NULL;
	int ret = open_opts_load(&v, g, &oo, &pol, &cfg, &err);
	if (ret < 0)
		goto out;
	const char *check_keyring = signing_keyring ? signing_keyring : pol.keyring_path;
	const char *check_dir = signing_keyring ? NULL : pol.keyring_dir;
	if (!check_keyring && !check_dir) {
		/* RAUC then writes OUTFILE unchecked; a signature nobody checked
		 * is what this verb must not produce. */
		ret = abota_error_set(&err, -EINVAL,
				      "no keyring to check the new signature with: give "
				      "--signing-keyring=FILE (or --keyring=FILE)");
		goto out;
	}
	uint64_t max = oo.max_signature_size ? oo.max_signature_size
					     : BUNDLE_DEFAULT_MAX_SIGNATURE_SIZE;
	if ((ret = read_new_signature(sigpath, max, &sig, &sig_len, &detached, &err)) < 0)
		goto out;
	if ((ret = bundle_open(in, &oo, &b, &err)) < 0)
		goto out;
	bool plain = bundle_get_format(b) == BUNDLE_FORMAT_PLAIN;
	if (plain != detached) {
		ret = abota_error_set(&err, -EINVAL,
				      "signature file %s holds a %s signature, but %s is a %s bundle "
				      "(which needs a %s one)",
				      sigpath, detached ? "detached (plain)" : "manifest-carrying (verity)",
				      in, bundle_format_name(bundle_get_format(b)),
				      plain ? "detached" : "manifest-carrying");
		goto out;
	}
	printf("Replacing the signature of '%s' format bundle '%s'\n",
	       bundle_format_name(bundle_get_format(b)), in);
	struct replace_ctx rc = { .b = b, .sig = sig, .sig_len = sig_len };
	struct signed_output so = {
		.out = out, .flags = &pol, .oo = &oo, .check_payload = true,
		.check_keyring = check_keyring, .check_keyring_dir = check_dir,
		.hint = "it must sign this bundle's payload (plain) or a manifest that describes "
			"it (verity), by a signer whose CA is in the --signing-keyring; "
			"nothing was written",
	};
	ret = write_signed_output(&so, replace_into, &rc, &err);
out:
	bundle_close(b);
	free(sig);
	config_free(cfg);
	if (ret < 0)
		return cli_fail(verb, &err);
	printf("Replacing the signature of '%s' to '%s' succeeded\n", in, out);
	return 0;
}
