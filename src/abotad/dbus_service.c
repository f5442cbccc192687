/* dbus_service.c - RAUC's de.pengutronix.rauc.Installer and abota's
 * org.abota.Device1 with sd-bus (see dbus_service.h, docs/dbus.md).
 *
 * Shapes follow RAUC (specs/rauc-compat.md §6, checked against RAUC 1.8's
 * service by tests/e2e/test_dbus.py): same member names, argument names,
 * signatures and value types; errors use the name RAUC's GDBus service
 * sends, so clients that match on it keep working.
 *
 * Threads: the bus belongs to the thread that calls dbus_service_process.
 * An install runs on a worker thread; it only touches `job` under
 * job_lock and wakes the bus thread through an eventfd, which then emits
 * PropertiesChanged / Completed.  Nothing of the bus is used off-thread.
 */
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "abota/boot_backend.h"
#include "abota/boot_fwu.h"
#include "abota/bundle.h"
#include "abota/config.h"
#include "abota/event_log.h"
#include "abota/http_source.h"
#include "abota/install.h"
#include "abota/install_journal.h"
#include "abota/log.h"
#include "abota/mark.h"
#include "abota/slot.h"
#include "abota/slot_status.h"
#include "abota/system_info.h"
#include "dbus_service.h"

#define OBJ_PATH "/"
#define IFACE_RAUC "de.pengutronix.rauc.Installer"
#define IFACE_ABOTA "org.abota.Device1"
/* What RAUC's GDBus service returns for every failure (G_IO_ERROR_FAILED_HANDLED). */
#define ERR_RAUC "org.gtk.GDBus.UnmappedGError.Quark._g_2dio_2derror_2dquark.Code30"
#define MSG_BUSY "already processing a different method"
#define MAX_HEADERS 32

struct install_job {
	char *source;
	bool ignore_compatible, ignore_version_limit, force;
	char *transaction_id, *require_hash;
	char *tls_ca, *tls_cert, *tls_key;
	bool tls_no_verify;
	char *headers[MAX_HEADERS + 1];
};

struct dbus_service {
	struct dbus_service_opts opts;
	sd_event *event;
	sd_bus *bus;
	sd_bus_slot *slot_rauc, *slot_abota;
	sd_event_source *wake_src;
	int wake_fd;
	gid_t install_gid;
	bool has_install_gid;
	/* property values (bus thread) */
	char *compatible, *variant, *boot_slot;
	char *operation, *last_error;
	int progress_pct, progress_depth;
	char *progress_msg;
	/* install worker */
	pthread_t worker;
	bool running;              /* bus thread: worker started, not joined */
	pthread_mutex_t job_lock;
	struct install_job *job;   /* owned by the worker while running */
	/* under job_lock */
	bool job_done, progress_dirty;
	int job_ret;
	char job_error[ABOTA_ERROR_MSG_MAX];
	struct install_progress job_progress;
	char job_progress_msg[256];
};

/* ------------------------------------------------------------------ */
/* small helpers */

static int set_str(char **field, const char *v)
{
	char *n = strdup(v ? v : "");
	if (!n)
		return -ENOMEM;
	free(*field);
	*field = n;
	return 0;
}

static int reply_error(sd_bus_message *m, const struct abota_error *err)
{
	return sd_bus_reply_method_errorf(m, ERR_RAUC, "%s", err->msg[0] ? err->msg : "failed");
}

/* Loads a fresh configuration (each call sees the files as they are now,
 * as `abota status` would). */
static int load_config(struct dbus_service *s, struct system_config **out,
		       struct abota_error *err)
{
	return config_load_with_overrides(s->opts.system_conf, s->opts.confopt, out, err);
}

/* Who is calling: effective uid, and the effective gid followed by the
 * supplementary ones (*gids malloc'ed).  Negative errno if the bus cannot
 * tell; nothing is set then. */
static int caller_ids(sd_bus_message *m, uid_t *uid, gid_t **gids, int *n)
{
	sd_bus_creds *c = NULL;
	uid_t u;
	int r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_AUGMENT |
					  SD_BUS_CREDS_SUPPLEMENTARY_GIDS | SD_BUS_CREDS_EGID, &c);
	if (r < 0 || (r = sd_bus_creds_get_euid(c, &u)) < 0) {
		sd_bus_creds_unref(c);
		return r;
	}
	const gid_t *sup = NULL;
	int ns = sd_bus_creds_get_supplementary_gids(c, &sup);
	if (ns < 0)
		ns = 0;
	gid_t *g = calloc((size_t)ns + 1, sizeof(*g));
	if (!g) {
		sd_bus_creds_unref(c);
		return -ENOMEM;
	}
	int k = 0;
	gid_t egid;
	if (sd_bus_creds_get_egid(c, &egid) >= 0)
		g[k++] = egid;
	for (int i = 0; i < ns; i++)
		g[k++] = sup[i];
	sd_bus_creds_unref(c);
	*uid = u;
	*gids = g;
	*n = k;
	return 0;
}

/* root, or the user the service runs as (it could do it all anyway) */
static bool caller_is_self(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

/* Installs and marks change the device: root, or members of install_group. */
static int check_privileged(struct dbus_service *s, sd_bus_message *m, sd_bus_error *e)
{
	uid_t uid;
	gid_t *gids = NULL;
	int n = 0;
	if (caller_ids(m, &uid, &gids, &n) < 0)
		return sd_bus_error_set(e, SD_BUS_ERROR_ACCESS_DENIED,
					"cannot determine the caller's user id");
	bool ok = caller_is_self(uid);
	for (int i = 0; !ok && s->has_install_gid && i < n; i++)
		ok = gids[i] == s->install_gid;
	free(gids);
	if (!ok)
		return sd_bus_error_setf(e, SD_BUS_ERROR_ACCESS_DENIED,
					 "uid %u may not change the device (root%s%s only)",
					 (unsigned)uid, s->has_install_gid ? " and group " : "",
					 s->has_install_gid ? s->opts.install_group : "");
	return 1;
}

/* Whether the mode bits of st give uid (with groups gids) the access in
 * want (4 = read, 1 = search).  ACLs are not consulted: a file whose mode
 * refuses the caller but an ACL allows is refused too (stricter, never
 * looser). */
static bool mode_allows(const struct stat *st, uid_t uid, const gid_t *gids, int n,
			unsigned want)
{
	unsigned shift = 0;
	if (st->st_uid == uid) {
		shift = 6;
	} else {
		for (int i = 0; i < n; i++)
			if (gids[i] == st->st_gid)
				shift = 3;
	}
	return ((st->st_mode >> shift) & want) == want;
}

/* 0 when uid/gids could read path themselves: every directory on the way
 * searchable, the file readable; else -EACCES or the lookup's error. */
static int caller_can_read(const char *path, uid_t uid, const gid_t *gids, int n)
{
	char *real = realpath(path, NULL);
	if (!real)
		return -errno;
	int ret = 0;
	for (char *p = real + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		struct stat st;
		if (stat(real, &st) < 0)
			ret = -errno;
		else if (!mode_allows(&st, uid, gids, n, c ? 1u : 4u))
			ret = -EACCES;
		*p = c;
		if (ret < 0 || !c)
			break;
	}
	free(real);
	return ret;
}

/* The service reads the TLS files a call names as root (before its download
 * process drops privileges): a caller other than root may only name files it
 * could read itself, or the service would present root's client key to a
 * server of the caller's choosing (a confused deputy). */
static int check_caller_files(sd_bus_message *m, const struct install_job *j,
			      struct abota_error *err)
{
	const char *const files[][2] = { { "tls-ca", j->tls_ca },
					 { "tls-cert", j->tls_cert },
					 { "tls-key", j->tls_key } };
	if (!j->tls_ca && !j->tls_cert && !j->tls_key)
		return 0;
	uid_t uid;
	gid_t *gids = NULL;
	int n = 0;
	if (caller_ids(m, &uid, &gids, &n) < 0)
		return abota_error_set(err, -EACCES, "cannot determine the caller's user id");
	int ret = 0;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]) && ret == 0 && !caller_is_self(uid);
	     i++) {
		if (!files[i][1])
			continue;
		int r = caller_can_read(files[i][1], uid, gids, n);
		if (r < 0)
			ret = abota_error_set(err, -EACCES,
					      "%s: '%s' is not readable by the caller (uid %u): %s",
					      files[i][0], files[i][1], (unsigned)uid, strerror(-r));
	}
	free(gids);
	return ret;
}

static int emit_changed(struct dbus_service *s, const char *first, ...)
{
	/* sd_bus_emit_properties_changed takes a NULL-terminated list */
	const char *names[8];
	va_list ap;
	size_t n = 0;
	va_start(ap, first);
	for (const char *p = first; p && n < 7; p = va_arg(ap, const char *))
		names[n++] = p;
	va_end(ap);
	names[n] = NULL;
	return sd_bus_emit_properties_changed_strv(s->bus, OBJ_PATH, IFACE_RAUC, (char **)names);
}

/* ------------------------------------------------------------------ */
/* properties */

static int prop_str(sd_bus *bus, const char *path, const char *iface, const char *prop,
		    sd_bus_message *reply, void *userdata, sd_bus_error *e)
{
	(void)bus, (void)path, (void)iface, (void)prop, (void)e;
	char *const *field = userdata;
	return sd_bus_message_append(reply, "s", *field ? *field : "");
}

static int prop_progress(sd_bus *bus, const char *path, const char *iface, const char *prop,
			 sd_bus_message *reply, void *userdata, sd_bus_error *e)
{
	(void)bus, (void)path, (void)iface, (void)prop, (void)e;
	struct dbus_service *s = userdata;
	return sd_bus_message_append(reply, "(isi)", s->progress_pct,
				     s->progress_msg ? s->progress_msg : "", s->progress_depth);
}

/* ------------------------------------------------------------------ */
/* install args (a{sv}) */

static void job_free(struct install_job *j)
{
	if (!j)
		return;
	free(j->source);
	free(j->transaction_id);
	free(j->require_hash);
	free(j->tls_ca);
	free(j->tls_cert);
	free(j->tls_key);
	for (size_t i = 0; j->headers[i]; i++)
		free(j->headers[i]);
	free(j);
}

static int read_str(sd_bus_message *m, char **out)
{
	const char *v;
	int r = sd_bus_message_read(m, "v", "s", &v);
	if (r < 0)
		return r;
	char *n = strdup(v);
	if (!n)
		return -ENOMEM;
	free(*out);
	*out = n;
	return 0;
}

/* RAUC's keys: install-only ones when `install`, abota's `force` when
 * `abota_keys`.  Unknown keys and keys of the wrong type fail with RAUC's
 * message "Unsupported key: <key>". */
static int parse_args(sd_bus_message *m, struct install_job *j, bool install, bool abota_keys,
		      struct abota_error *err)
{
	int r = sd_bus_message_enter_container(m, 'a', "{sv}");
	if (r < 0)
		return abota_error_set(err, r, "malformed arguments");
	size_t nh = 0;
	while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		const char *key;
		if ((r = sd_bus_message_read(m, "s", &key)) < 0)
			return abota_error_set(err, r, "malformed arguments");
		char t;
		const char *contents;
		if ((r = sd_bus_message_peek_type(m, &t, &contents)) < 0)
			return abota_error_set(err, r, "malformed arguments");
		bool is_b = !strcmp(contents, "b"), is_s = !strcmp(contents, "s");
		int bv = 0;
		r = -1;
		if (install && !strcmp(key, "ignore-compatible") && is_b)
			r = sd_bus_message_read(m, "v", "b", &bv), j->ignore_compatible = bv;
		else if (install && !strcmp(key, "ignore-version-limit") && is_b)
			r = sd_bus_message_read(m, "v", "b", &bv), j->ignore_version_limit = bv;
		else if (install && abota_keys && !strcmp(key, "force") && is_b)
			r = sd_bus_message_read(m, "v", "b", &bv), j->force = bv;
		else if (install && !strcmp(key, "transaction-id") && is_s)
			r = read_str(m, &j->transaction_id);
		else if (install && !strcmp(key, "require-manifest-hash") && is_s)
			r = read_str(m, &j->require_hash);
		else if (!strcmp(key, "tls-ca") && is_s)
			r = read_str(m, &j->tls_ca);
		else if (!strcmp(key, "tls-cert") && is_s)
			r = read_str(m, &j->tls_cert);
		else if (!strcmp(key, "tls-key") && is_s)
			r = read_str(m, &j->tls_key);
		else if (!strcmp(key, "tls-no-verify") && is_b)
			r = sd_bus_message_read(m, "v", "b", &bv), j->tls_no_verify = bv;
		else if (!strcmp(key, "http-headers") && !strcmp(contents, "as")) {
			char **v = NULL;
			if ((r = sd_bus_message_enter_container(m, 'v', "as")) >= 0 &&
			    (r = sd_bus_message_read_strv(m, &v)) >= 0)
				r = sd_bus_message_exit_container(m);
			for (size_t i = 0; v && v[i]; i++) {
				if (nh >= MAX_HEADERS || !strchr(v[i], ':') || strpbrk(v[i], "\r\n")) {
					if (nh >= MAX_HEADERS)
						r = abota_error_set(err, -EINVAL,
								    "http-headers: more than %d headers",
								    MAX_HEADERS);
					else
						r = abota_error_set(err, -EINVAL,
								    "http-headers: '%s' is not 'Name: value'",
								    v[i]);
					for (size_t k = i; v[k]; k++)
						free(v[k]);
					free(v);
					return r;
				}
				j->headers[nh++] = v[i];
			}
			free(v);
		} else {
			return abota_error_set(err, -EINVAL, "Unsupported key: %s", key);
		}
		if (r < 0)
			return abota_error_set(err, r, "%s: %s", key, strerror(-r));
		if ((r = sd_bus_message_exit_container(m)) < 0)
			return abota_error_set(err, r, "malformed arguments");
	}
	if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
		return abota_error_set(err, r, "malformed arguments");
	if (!j->tls_cert != !j->tls_key)
		return abota_error_set(err, -EINVAL, "tls-cert and tls-key must be given together");
	return 0;
}

static void job_http(const struct install_job *j, struct http_opts *h)
{
	memset(h, 0, sizeof(*h));
	h->ca_file = j->tls_ca;
	h->client_cert = j->tls_cert;
	h->client_key = j->tls_key;
	h->insecure = j->tls_no_verify;
	h->headers = (const char *const *)j->headers;
}

/* The source must name a bundle unambiguously: the service's working
 * directory is not the caller's. */
static int check_source(const char *src, struct abota_error *err)
{
	if (!src[0])
		return abota_error_set(err, -EINVAL, "no bundle given");
	if (src[0] != '/' && !http_is_url(src))
		return abota_error_set(err, -EINVAL,
				       "'%s': the bundle must be an absolute path or an http(s):// URL",
				       src);
	return 0;
}

/* ------------------------------------------------------------------ */
/* install worker */

static void wake(struct dbus_service *s)
{
	uint64_t one = 1;
	ssize_t n = write(s->wake_fd, &one, sizeof(one));
	(void)n; /* a full counter still wakes the reader */
}

static void on_install_progress(void *ctx, const struct install_progress *p)
{
	struct dbus_service *s = ctx;
	pthread_mutex_lock(&s->job_lock);
	/* only what Progress shows; byte counts change far more often */
	bool changed = p->percent != s->job_progress.percent || p->depth != s->job_progress.depth ||
		       strcmp(p->message ? p->message : "", s->job_progress_msg) != 0;
	if (changed) {
		s->job_progress = *p;
		snprintf(s->job_progress_msg, sizeof(s->job_progress_msg), "%s",
			 p->message ? p->message : "");
		s->progress_dirty = true;
	}
	pthread_mutex_unlock(&s->job_lock);
	if (changed)
		wake(s);
}

static void *install_worker(void *arg)
{
	struct dbus_service *s = arg;
	struct install_job *j = s->job;
	struct abota_error err = { 0 };
	struct system_config *cfg = NULL;
	struct http_opts http;
	struct sig_policy pol;
	struct install_result res;
	struct install_opts io = { 0 };
	int ret = load_config(s, &cfg, &err);
	if (ret < 0)
		goto out;
	job_http(j, &http);
	io.bundle = j->source;
	io.http = &http;
	if (s->opts.keyring) {
		pol = cfg->keyring;
		pol.keyring_path = s->opts.keyring;
		pol.keyring_dir = NULL;
		io.keyring = &pol;
	}
	io.override_boot_slot = s->opts.override_boot_slot;
	io.ignore_compatible = j->ignore_compatible;
	io.ignore_version_limit = j->ignore_version_limit;
	io.force = j->force;
	io.transaction_id = j->transaction_id;
	io.require_manifest_hash = j->require_hash;
	io.progress = on_install_progress;
	io.progress_ctx = s;
	log_info("installing %s: started", j->source);
	ret = install_run(cfg, &io, &res, &err);
	if (ret < 0)
		log_error("installing %s failed: %s", j->source, err.msg);
	else
		log_info("installing %s: succeeded, next boot tries %s", j->source, res.target);
out:
	config_free(cfg);
	pthread_mutex_lock(&s->job_lock);
	s->job_done = true;
	s->job_ret = ret;
	snprintf(s->job_error, sizeof(s->job_error), "%s", ret < 0 ? err.msg : "");
	pthread_mutex_unlock(&s->job_lock);
	wake(s);
	return NULL;
}

/* Bus thread: the worker has news. */
static int on_wake(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	(void)src, (void)revents;
	struct dbus_service *s = userdata;
	uint64_t v;
	ssize_t n = read(fd, &v, sizeof(v));
	(void)n;
	pthread_mutex_lock(&s->job_lock);
	bool dirty = s->progress_dirty, done = s->job_done;
	int ret = s->job_ret;
	char msg[256], error[ABOTA_ERROR_MSG_MAX];
	struct install_progress p = s->job_progress;
	snprintf(msg, sizeof(msg), "%s", s->job_progress_msg);
	snprintf(error, sizeof(error), "%s", s->job_error);
	s->progress_dirty = false;
	pthread_mutex_unlock(&s->job_lock);
	if (dirty) {
		s->progress_pct = (int)p.percent;
		s->progress_depth = (int)p.depth;
		set_str(&s->progress_msg, msg);
		emit_changed(s, "Progress", NULL);
	}
	if (!done || !s->running)
		return 0;
	pthread_join(s->worker, NULL);
	s->running = false;
	job_free(s->job);
	s->job = NULL;
	/* RAUC's order at the end (observed with 1.8): Progress, LastError,
	 * Completed, then Operation "idle" */
	if (ret < 0) {
		s->progress_pct = 100;
		s->progress_depth = 1;
		set_str(&s->progress_msg, "Installing failed.");
		emit_changed(s, "Progress", NULL);
		set_str(&s->last_error, error);
		emit_changed(s, "LastError", NULL);
	}
	sd_bus_emit_signal(s->bus, OBJ_PATH, IFACE_RAUC, "Completed", "i", ret < 0 ? 1 : 0);
	set_str(&s->operation, "idle");
	emit_changed(s, "Operation", NULL);
	return 0;
}

static int start_install(struct dbus_service *s, struct install_job *j, struct abota_error *err)
{
	if (s->running)
		return abota_error_set(err, -EBUSY, MSG_BUSY);
	pthread_mutex_lock(&s->job_lock);
	s->job_done = false;
	s->progress_dirty = false;
	s->job_ret = 0;
	s->job_error[0] = '\0';
	memset(&s->job_progress, 0, sizeof(s->job_progress));
	s->job_progress_msg[0] = '\0';
	pthread_mutex_unlock(&s->job_lock);
	s->job = j;
	set_str(&s->last_error, "");
	set_str(&s->operation, "installing");
	s->progress_pct = 0;
	s->progress_depth = 1;
	set_str(&s->progress_msg, "Installing");
	int r = pthread_create(&s->worker, NULL, install_worker, s);
	if (r != 0) {
		s->job = NULL;
		set_str(&s->operation, "idle");
		return abota_error_set(err, -r, "cannot start the installer thread: %s",
				       strerror(r));
	}
	s->running = true;
	emit_changed(s, "Operation", "LastError", "Progress", NULL);
	return 0;
}

static int do_install(sd_bus_message *m, struct dbus_service *s, bool with_args, bool abota_keys,
		      sd_bus_error *e)
{
	int r = check_privileged(s, m, e);
	if (r < 0)
		return r;
	struct abota_error err = { 0 };
	struct install_job *j = calloc(1, sizeof(*j));
	const char *src;
	if (!j)
		return -ENOMEM;
	if ((r = sd_bus_message_read(m, "s", &src)) < 0) {
		job_free(j);
		return r;
	}
	if ((r = check_source(src, &err)) < 0 ||
	    (with_args && (r = parse_args(m, j, true, abota_keys, &err)) < 0) ||
	    (r = check_caller_files(m, j, &err)) < 0 ||
	    (r = (j->source = strdup(src)) ? 0 : abota_error_set(&err, -ENOMEM, "out of memory")) < 0 ||
	    (r = start_install(s, j, &err)) < 0) {
		job_free(j);
		return reply_error(m, &err);
	}
	return sd_bus_reply_method_return(m, "");
}

static int m_install(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	return do_install(m, userdata, false, false, e);
}

static int m_install_bundle(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	return do_install(m, userdata, true, false, e);
}

static int m_abota_install_bundle(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	return do_install(m, userdata, true, true, e);
}

/* ------------------------------------------------------------------ */
/* Info / InspectBundle */

static int open_bundle(struct dbus_service *s, const char *src, const struct install_job *j,
		       struct bundle **out, struct abota_error *err)
{
	struct system_config *cfg = NULL;
	struct http_opts http;
	int ret;
	if ((ret = check_source(src, err)) < 0 || (ret = load_config(s, &cfg, err)) < 0)
		return ret;
	struct sig_policy pol = cfg->keyring;
	if (s->opts.keyring) {
		pol.keyring_path = s->opts.keyring;
		pol.keyring_dir = NULL;
	}
	job_http(j, &http);
	/* the same limits as an install: what Info shows is what would install */
	struct bundle_open_opts bo = { .policy = &pol,
				       .http = &http,
				       .max_signature_size = cfg->max_bundle_signature_size,
				       .sandbox_user = cfg->streaming.sandbox_user };
	ret = bundle_formats_from_config(cfg->bundle_formats, &bo.allowed_formats, err);
	if (ret == 0)
		ret = bundle_open(src, &bo, out, err);
	config_free(cfg);
	return ret;
}

static int m_info(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	(void)e;
	struct dbus_service *s = userdata;
	struct install_job j = { 0 };
	struct abota_error err = { 0 };
	struct bundle *b = NULL;
	const char *src;
	int r = sd_bus_message_read(m, "s", &src);
	if (r < 0)
		return r;
	if (open_bundle(s, src, &j, &b, &err) < 0)
		return reply_error(m, &err);
	const struct manifest *mf = bundle_get_manifest(b);
	r = sd_bus_reply_method_return(m, "ss", mf->compatible ? mf->compatible : "",
				       mf->version ? mf->version : "");
	bundle_close(b);
	return r;
}

static int append_kv_s(sd_bus_message *r, const char *k, const char *v)
{
	return v ? sd_bus_message_append(r, "{sv}", k, "s", v) : 0;
}

static int append_image(sd_bus_message *r, const struct manifest_image *img)
{
	int ret;
	const char *type = manifest_image_type(img);
	if ((ret = sd_bus_message_open_container(r, 'a', "{sv}")) < 0 ||
	    (ret = append_kv_s(r, "slot-class", img->slotclass)) < 0 ||
	    (ret = append_kv_s(r, "variant", img->variant)) < 0 ||
	    (ret = append_kv_s(r, "filename", img->filename)) < 0 ||
	    (ret = append_kv_s(r, "type", type)) < 0 ||
	    (ret = append_kv_s(r, "checksum", img->sha256[0] ? img->sha256 : NULL)) < 0)
		return ret;
	if (img->has_size && (ret = sd_bus_message_append(r, "{sv}", "size", "t", img->size)) < 0)
		return ret;
	const char *hooks[4];
	size_t nh = 0;
	if (img->hook_pre_install)
		hooks[nh++] = "pre-install";
	if (img->hook_install)
		hooks[nh++] = "install";
	if (img->hook_post_install)
		hooks[nh++] = "post-install";
	hooks[nh] = NULL;
	if ((ret = sd_bus_message_open_container(r, 'e', "sv")) < 0 ||
	    (ret = sd_bus_message_append(r, "s", "hooks")) < 0 ||
	    (ret = sd_bus_message_open_container(r, 'v', "as")) < 0 ||
	    (ret = sd_bus_message_append_strv(r, (char **)hooks)) < 0 ||
	    (ret = sd_bus_message_close_container(r)) < 0 ||
	    (ret = sd_bus_message_close_container(r)) < 0)
		return ret;
	const char *adaptive[2] = { img->adaptive_block_hash_index ? "block-hash-index" : NULL,
				    NULL };
	if ((ret = sd_bus_message_open_container(r, 'e', "sv")) < 0 ||
	    (ret = sd_bus_message_append(r, "s", "adaptive")) < 0 ||
	    (ret = sd_bus_message_open_container(r, 'v', "as")) < 0 ||
	    (ret = sd_bus_message_append_strv(r, (char **)adaptive)) < 0 ||
	    (ret = sd_bus_message_close_container(r)) < 0 ||
	    (ret = sd_bus_message_close_container(r)) < 0)
		return ret;
	return sd_bus_message_close_container(r);
}

/* InspectBundle's a{sv} (specs/rauc-compat.md §6). */
static int append_inspect(sd_bus_message *r, struct bundle *b)
{
	const struct manifest *mf = bundle_get_manifest(b);
	int ret;
	if ((ret = sd_bus_message_open_container(r, 'a', "{sv}")) < 0 ||
	    (ret = append_kv_s(r, "manifest-hash", bundle_manifest_hash(b))) < 0)
		return ret;
	/* update */
	if ((ret = sd_bus_message_open_container(r, 'e', "sv")) < 0 ||
	    (ret = sd_bus_message_append(r, "s", "update")) < 0 ||
	    (ret = sd_bus_message_open_container(r, 'v', "a{sv}")) < 0 ||
	    (ret = sd_bus_message_open_container(r, 'a', "{sv}")) < 0 ||
	    (ret = append_kv_s(r, "compatible", mf->compatible)) < 0 ||
	    (ret = append_kv_s(r, "version", mf->version)) < 0 ||
	    (ret = append_kv_s(r, "description", mf->description)) < 0 ||
	    (ret = append_kv_s(r, "build", mf->build)) < 0 ||
	    (ret = sd_bus_message_close_container(r)) < 0 ||
	    (ret = sd_bus_message_close_container(r)) < 0 ||
	    (ret = sd_bus_message_close_container(r)) < 0)
		return ret;
	/* bundle */
	enum bundle_format f = bundle_get_format(b);
	if ((ret = sd_bus_message_open_container(r, 'e', "sv")) < 0 ||
	    (ret = sd_bus_message_append(r, "s", "bundle")) < 0 ||
	    (ret = sd_bus_message_open_container(r, 'v', "a{sv}")) < 0 ||
	    (ret = sd_bus_message_open_container(r, 'a', "{sv}")) < 0 ||
	    (ret = append_kv_s(r, "format", bundle_format_name(f))) < 0)
		return ret;
	if (f != BUNDLE_FORMAT_PLAIN &&
	    ((ret = sd_bus_message_append(r, "{sv}", "verity-size", "t", mf->verity_size)) < 0 ||
	     (ret = append_kv_s(r, "verity-salt", mf->verity_salt)) < 0 ||
	     (ret = append_kv_s(r, "verity-hash", mf->verity_hash)) < 0))
		return ret;
	if ((ret = sd_bus_message_close_container(r)) < 0 ||
	    (ret = sd_bus_message_close_container(r)) < 0 ||
	    (ret = sd_bus_message_close_container(r)) < 0)
		return ret;
	/* hooks, handler: only when the manifest has them */
	if (mf->hooks_filename) {
		const char *hooks[2] = { mf->hook_install_check ? "install-check" : NULL, NULL };
		if ((ret = sd_bus_message_open_container(r, 'e', "sv")) < 0 ||
		    (ret = sd_bus_message_append(r, "s", "hooks")) < 0 ||
		    (ret = sd_bus_message_open_container(r, 'v', "a{sv}")) < 0 ||
		    (ret = sd_bus_message_open_container(r, 'a', "{sv}")) < 0 ||
		    (ret = append_kv_s(r, "filename", mf->hooks_filename)) < 0 ||
		    (ret = sd_bus_message_append(r, "{sv}", "hooks", "as", hooks[0] ? 1 : 0,
						 hooks[0])) < 0 ||
		    (ret = sd_bus_message_close_container(r)) < 0 ||
		    (ret = sd_bus_message_close_container(r)) < 0 ||
		    (ret = sd_bus_message_close_container(r)) < 0)
			return ret;
	}
	if (mf->handler_filename) {
		if ((ret = sd_bus_message_open_container(r, 'e', "sv")) < 0 ||
		    (ret = sd_bus_message_append(r, "s", "handler")) < 0 ||
		    (ret = sd_bus_message_open_container(r, 'v', "a{sv}")) < 0 ||
		    (ret = sd_bus_message_open_container(r, 'a', "{sv}")) < 0 ||
		    (ret = append_kv_s(r, "filename", mf->handler_filename)) < 0 ||
		    (ret = append_kv_s(r, "args", mf->handler_args)) < 0 ||
		    (ret = sd_bus_message_close_container(r)) < 0 ||
		    (ret = sd_bus_message_close_container(r)) < 0 ||
		    (ret = sd_bus_message_close_container(r)) < 0)
			return ret;
	}
	/* images */
	if ((ret = sd_bus_message_open_container(r, 'e', "sv")) < 0 ||
	    (ret = sd_bus_message_append(r, "s", "images")) < 0 ||
	    (ret = sd_bus_message_open_container(r, 'v', "aa{sv}")) < 0 ||
	    (ret = sd_bus_message_open_container(r, 'a', "a{sv}")) < 0)
		return ret;
	for (size_t i = 0; i < mf->n_images; i++)
		if ((ret = append_image(r, &mf->images[i])) < 0)
			return ret;
	if ((ret = sd_bus_message_close_container(r)) < 0 ||
	    (ret = sd_bus_message_close_container(r)) < 0 ||
	    (ret = sd_bus_message_close_container(r)) < 0)
		return ret;
	/* meta: a{sa{ss}} */
	if ((ret = sd_bus_message_open_container(r, 'e', "sv")) < 0 ||
	    (ret = sd_bus_message_append(r, "s", "meta")) < 0 ||
	    (ret = sd_bus_message_open_container(r, 'v', "a{sa{ss}}")) < 0 ||
	    (ret = sd_bus_message_open_container(r, 'a', "{sa{ss}}")) < 0)
		return ret;
	for (size_t i = 0; i < mf->n_meta; i++) {
		const struct manifest_meta *mm = &mf->meta[i];
		if ((ret = sd_bus_message_open_container(r, 'e', "sa{ss}")) < 0 ||
		    (ret = sd_bus_message_append(r, "s", mm->label)) < 0 ||
		    (ret = sd_bus_message_open_container(r, 'a', "{ss}")) < 0)
			return ret;
		for (size_t k = 0; k < mm->n_kv; k++)
			if ((ret = sd_bus_message_append(r, "{ss}", mm->kv[k].key,
							 mm->kv[k].value)) < 0)
				return ret;
		if ((ret = sd_bus_message_close_container(r)) < 0 ||
		    (ret = sd_bus_message_close_container(r)) < 0)
			return ret;
	}
	if ((ret = sd_bus_message_close_container(r)) < 0 ||
	    (ret = sd_bus_message_close_container(r)) < 0 ||
	    (ret = sd_bus_message_close_container(r)) < 0)
		return ret;
	return sd_bus_message_close_container(r);
}

static int m_inspect_bundle(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	(void)e;
	struct dbus_service *s = userdata;
	struct install_job j = { 0 };
	struct abota_error err = { 0 };
	struct bundle *b = NULL;
	sd_bus_message *reply = NULL;
	const char *src;
	int r = sd_bus_message_read(m, "s", &src);
	if (r < 0)
		return r;
	if (parse_args(m, &j, false, false, &err) < 0 || check_caller_files(m, &j, &err) < 0 ||
	    open_bundle(s, src, &j, &b, &err) < 0) {
		r = reply_error(m, &err);
		goto out;
	}
	if ((r = sd_bus_message_new_method_return(m, &reply)) < 0 ||
	    (r = append_inspect(reply, b)) < 0)
		goto out;
	r = sd_bus_send(NULL, reply, NULL);
out:
	sd_bus_message_unref(reply);
	bundle_close(b);
	free(j.tls_ca);
	free(j.tls_cert);
	free(j.tls_key);
	for (size_t i = 0; j.headers[i]; i++)
		free(j.headers[i]);
	return r;
}

/* ------------------------------------------------------------------ */
/* slot status, primary, mark: a fresh look at the device per call */

struct device {
	struct system_config *cfg;
	struct boot_backend *boot;
	struct slot_status_store *store;
	char *booted_id;
	struct slot *booted;
};

static void device_close(struct device *d)
{
	boot_backend_close(d->boot);
	slot_status_store_free(d->store);
	free(d->booted_id);
	config_free(d->cfg);
	memset(d, 0, sizeof(*d));
}

static int device_open(struct dbus_service *s, bool need_backend, struct device *d,
		       struct abota_error *err)
{
	int ret;
	memset(d, 0, sizeof(*d));
	if ((ret = load_config(s, &d->cfg, err)) < 0)
		goto fail;
	struct abota_error e = { 0 };
	if ((ret = boot_backend_open(d->cfg, &d->boot, &e)) < 0) {
		if (need_backend) {
			*err = e;
			goto fail;
		}
		log_warning("%s (boot status unknown)", e.msg);
		d->boot = NULL;
	}
	if ((ret = boot_backend_determine_states(d->boot, d->cfg, s->opts.override_boot_slot, NULL,
						 NULL, &d->booted_id, &d->booted, err)) < 0)
		goto fail;
	if (d->cfg->statusfile && (ret = slot_status_load(d->cfg->statusfile, &d->store, err)) < 0)
		goto fail;
	return 0;
fail:
	device_close(d);
	return ret;
}

static const char *boot_status(struct device *d, const struct slot *sl)
{
	bool good;
	struct abota_error e = { 0 };
	if (!d->boot || boot_backend_get_state(d->boot, sl, &good, &e) < 0) {
		if (e.msg[0])
			log_warning("%s", e.msg);
		return "unknown";
	}
	return good ? "good" : "bad";
}

/* GetSlotStatus' per-slot dict: RAUC's keys and types (size t, counts u). */
static int append_slot(sd_bus_message *r, struct device *d, const struct slot *sl)
{
	int ret;
	if ((ret = sd_bus_message_open_container(r, 'r', "sa{sv}")) < 0 ||
	    (ret = sd_bus_message_append(r, "s", sl->name)) < 0 ||
	    (ret = sd_bus_message_open_container(r, 'a', "{sv}")) < 0 ||
	    (ret = append_kv_s(r, "class", sl->sclass)) < 0 ||
	    (ret = append_kv_s(r, "device", sl->device ? sl->device : sl->partition)) < 0 ||
	    (ret = append_kv_s(r, "type", sl->type)) < 0 ||
	    (ret = append_kv_s(r, "bootname", sl->bootname)) < 0 ||
	    (ret = append_kv_s(r, "state", slot_state_name(sl->state))) < 0 ||
	    (ret = append_kv_s(r, "description", sl->description)) < 0 ||
	    (ret = append_kv_s(r, "parent", sl->parent ? sl->parent->name : NULL)) < 0 ||
	    (ret = append_kv_s(r, "mountpoint", sl->mount_point)) < 0 ||
	    (ret = append_kv_s(r, "boot-status", sl->bootname ? boot_status(d, sl) : NULL)) < 0)
		return ret;
	const struct slot_status *st = d->store ? slot_status_find(d->store, sl->name) : NULL;
	if (st) {
		if ((ret = append_kv_s(r, "bundle.compatible", st->bundle_compatible)) < 0 ||
		    (ret = append_kv_s(r, "bundle.version", st->bundle_version)) < 0 ||
		    (ret = append_kv_s(r, "bundle.description", st->bundle_description)) < 0 ||
		    (ret = append_kv_s(r, "bundle.build", st->bundle_build)) < 0 ||
		    (ret = append_kv_s(r, "bundle.hash", st->bundle_hash)) < 0 ||
		    (ret = append_kv_s(r, "status", st->status)) < 0 ||
		    (ret = append_kv_s(r, "sha256", st->sha256)) < 0)
			return ret;
		if (st->sha256 && (ret = sd_bus_message_append(r, "{sv}", "size", "t", st->size)) < 0)
			return ret;
		if ((ret = append_kv_s(r, "installed.transaction", st->installed_transaction)) < 0 ||
		    (ret = append_kv_s(r, "installed.timestamp", st->installed_timestamp)) < 0)
			return ret;
		if (st->installed_timestamp &&
		    (ret = sd_bus_message_append(r, "{sv}", "installed.count", "u",
						 (uint32_t)st->installed_count)) < 0)
			return ret;
		if ((ret = append_kv_s(r, "activated.timestamp", st->activated_timestamp)) < 0)
			return ret;
		if (st->activated_timestamp &&
		    (ret = sd_bus_message_append(r, "{sv}", "activated.count", "u",
						 (uint32_t)st->activated_count)) < 0)
			return ret;
	}
	if ((ret = sd_bus_message_close_container(r)) < 0)
		return ret;
	return sd_bus_message_close_container(r);
}

static int m_get_slot_status(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	(void)e;
	struct device d;
	struct abota_error err = { 0 };
	sd_bus_message *reply = NULL;
	int r;
	if (device_open(userdata, false, &d, &err) < 0)
		return reply_error(m, &err);
	if ((r = sd_bus_message_new_method_return(m, &reply)) < 0 ||
	    (r = sd_bus_message_open_container(reply, 'a', "(sa{sv})")) < 0)
		goto out;
	for (size_t i = 0; i < d.cfg->nslots; i++)
		if ((r = append_slot(reply, &d, &d.cfg->slots[i])) < 0)
			goto out;
	if ((r = sd_bus_message_close_container(reply)) < 0)
		goto out;
	r = sd_bus_send(NULL, reply, NULL);
out:
	sd_bus_message_unref(reply);
	device_close(&d);
	return r;
}

static int m_get_primary(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	(void)e;
	struct device d;
	struct abota_error err = { 0 };
	struct slot *p = NULL;
	int r;
	if (device_open(userdata, true, &d, &err) < 0)
		return reply_error(m, &err);
	if (boot_backend_get_primary(d.boot, &p, &err) < 0)
		r = reply_error(m, &err);
	else if (!p)
		r = sd_bus_reply_method_errorf(m, ERR_RAUC, "Unable to obtain primary element");
	else
		r = sd_bus_reply_method_return(m, "s", p->name);
	device_close(&d);
	return r;
}

static int m_mark(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct dbus_service *s = userdata;
	int r = check_privileged(s, m, e);
	if (r < 0)
		return r;
	const char *state, *ident;
	if ((r = sd_bus_message_read(m, "ss", &state, &ident)) < 0)
		return r;
	struct abota_error err = { 0 };
	struct device d = { 0 };
	struct mark_result res = { 0 };
	enum mark_state st;
	/* as RAUC: marking while an install rewrites the boot state is refused */
	if (s->running)
		return sd_bus_reply_method_errorf(m, ERR_RAUC, MSG_BUSY);
	if (mark_parse_state(state, &st, &err) < 0 || device_open(s, true, &d, &err) < 0 ||
	    mark_apply(d.cfg, d.boot, d.store, d.booted, d.booted_id, st, ident, &res, &err) < 0) {
		r = reply_error(m, &err);
		goto out;
	}
	log_info("mark: %s", res.message);
	r = sd_bus_reply_method_return(m, "ss", res.marked[0]->name, res.message);
out:
	mark_result_free(&res);
	device_close(&d);
	return r;
}

/* ------------------------------------------------------------------ */
/* org.abota.Device1 */

static int m_get_interrupted(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	(void)e;
	struct system_config *cfg = NULL;
	struct install_journal *j = NULL;
	struct abota_error err = { 0 };
	sd_bus_message *reply = NULL;
	int r;
	if (load_config(userdata, &cfg, &err) < 0)
		return reply_error(m, &err);
	if (cfg->data_directory) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", cfg->data_directory, INSTALL_JOURNAL_NAME);
		r = install_journal_load(path, &j, &err);
		if (r < 0 && r != -ENOENT) {
			r = reply_error(m, &err);
			goto out;
		}
	}
	if ((r = sd_bus_message_new_method_return(m, &reply)) < 0 ||
	    (r = sd_bus_message_open_container(reply, 'a', "{sv}")) < 0)
		goto out;
	if (j) {
		uint64_t v = 0, t = 0;
		install_journal_totals(j, &v, &t);
		if ((r = append_kv_s(reply, "bundle", j->bundle)) < 0 ||
		    (r = append_kv_s(reply, "manifest-hash", j->bundle_hash)) < 0 ||
		    (r = append_kv_s(reply, "version", j->bundle_version)) < 0 ||
		    (r = append_kv_s(reply, "target", j->target)) < 0 ||
		    (r = append_kv_s(reply, "transaction", j->transaction)) < 0 ||
		    (r = append_kv_s(reply, "started", j->started)) < 0 ||
		    (r = sd_bus_message_append(reply, "{sv}", "verified-bytes", "t", v)) < 0 ||
		    (r = sd_bus_message_append(reply, "{sv}", "total-bytes", "t", t)) < 0 ||
		    (r = sd_bus_message_append(reply, "{sv}", "percent", "u",
					       (uint32_t)(t ? v * 100 / t : 0))) < 0)
			goto out;
	}
	if ((r = sd_bus_message_close_container(reply)) < 0)
		goto out;
	r = sd_bus_send(NULL, reply, NULL);
out:
	sd_bus_message_unref(reply);
	install_journal_free(j);
	config_free(cfg);
	return r;
}

static int m_get_fwu_status(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	(void)e;
	struct device d;
	struct abota_error err = { 0 };
	struct boot_fwu_status st;
	sd_bus_message *reply = NULL;
	int r;
	if (device_open(userdata, true, &d, &err) < 0)
		return reply_error(m, &err);
	if (!boot_fwu_is(d.boot)) {
		r = sd_bus_reply_method_errorf(m, ERR_RAUC, "bootloader is %s, not fwu",
					       boot_backend_name(d.boot));
		goto out;
	}
	if (boot_fwu_get_status(d.boot, &st, &err) < 0) {
		r = reply_error(m, &err);
		goto out;
	}
	if ((r = sd_bus_message_new_method_return(m, &reply)) < 0 ||
	    (r = sd_bus_message_open_container(reply, 'a', "{sv}")) < 0 ||
	    (r = sd_bus_message_append(reply, "{sv}", "active-index", "u", st.md.active_index)) < 0 ||
	    (r = sd_bus_message_append(reply, "{sv}", "previous-active-index", "u",
				       st.md.previous_active_index)) < 0 ||
	    (r = append_kv_s(reply, "copy-in-effect", st.copy_in_effect)) < 0 ||
	    (r = sd_bus_message_append(reply, "{sv}", "needs-repair", "b", st.needs_repair)) < 0 ||
	    (r = sd_bus_message_open_container(reply, 'e', "sv")) < 0 ||
	    (r = sd_bus_message_append(reply, "s", "banks")) < 0 ||
	    (r = sd_bus_message_open_container(reply, 'v', "a(uss)")) < 0 ||
	    (r = sd_bus_message_open_container(reply, 'a', "(uss)")) < 0)
		goto out;
	for (unsigned i = 0; i < st.md.num_banks; i++) {
		const char *bn = boot_fwu_bank_bootname(d.boot, i);
		if ((r = sd_bus_message_append(reply, "(uss)", i, bn ? bn : "",
					       fwu_bank_state_name(fwu_md_bank_state(&st.md, i)))) < 0)
			goto out;
	}
	if ((r = sd_bus_message_close_container(reply)) < 0 ||
	    (r = sd_bus_message_close_container(reply)) < 0 ||
	    (r = sd_bus_message_close_container(reply)) < 0)
		goto out;
	if (st.has_fwu_info &&
	    ((r = sd_bus_message_append(reply, "{sv}", "trial-boots-left", "u", st.trial_left)) < 0 ||
	     (r = sd_bus_message_append(reply, "{sv}", "trial-boots-max", "u", st.trial_max)) < 0 ||
	     (r = sd_bus_message_append(reply, "{sv}", "fwu-info", "u", st.fwu_info)) < 0))
		goto out;
	if ((r = sd_bus_message_append(reply, "{sv}", "booted-bank", "i", st.booted_bank)) < 0 ||
	    (r = sd_bus_message_append(reply, "{sv}", "rollback", "b", st.rolled_back)) < 0 ||
	    (r = sd_bus_message_append(reply, "{sv}", "failed-bank", "i", st.failed_bank)) < 0 ||
	    (r = append_kv_s(reply, "rollback-reason", st.rolled_back ? st.rollback_reason : ""))
		    < 0 ||
	    (r = sd_bus_message_close_container(reply)) < 0)
		goto out;
	r = sd_bus_send(NULL, reply, NULL);
out:
	sd_bus_message_unref(reply);
	device_close(&d);
	return r;
}

/* Per bootable slot (bank): what it holds, when it was installed and
 * activated, and what the bootloader thinks of it now. */
static int m_get_bank_history(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	(void)e;
	struct device d;
	struct abota_error err = { 0 };
	sd_bus_message *reply = NULL;
	struct slot *primary = NULL;
	int r;
	if (device_open(userdata, false, &d, &err) < 0)
		return reply_error(m, &err);
	if (d.boot && boot_backend_get_primary(d.boot, &primary, &err) < 0) {
		log_warning("%s", err.msg);
		primary = NULL;
	}
	if ((r = sd_bus_message_new_method_return(m, &reply)) < 0 ||
	    (r = sd_bus_message_open_container(reply, 'a', "(sa{sv})")) < 0)
		goto out;
	for (size_t i = 0; i < d.cfg->nslots; i++) {
		const struct slot *sl = &d.cfg->slots[i];
		if (sl->parent || !sl->bootname)
			continue;
		const struct slot_status *st = d.store ? slot_status_find(d.store, sl->name) : NULL;
		if ((r = sd_bus_message_open_container(reply, 'r', "sa{sv}")) < 0 ||
		    (r = sd_bus_message_append(reply, "s", sl->name)) < 0 ||
		    (r = sd_bus_message_open_container(reply, 'a', "{sv}")) < 0 ||
		    (r = append_kv_s(reply, "bootname", sl->bootname)) < 0 ||
		    (r = sd_bus_message_append(reply, "{sv}", "booted", "b",
					       d.booted && slot_root(d.booted) == sl)) < 0 ||
		    (r = sd_bus_message_append(reply, "{sv}", "primary", "b", primary == sl)) < 0 ||
		    (r = append_kv_s(reply, "boot-status", boot_status(&d, sl))) < 0)
			goto out;
		if (st &&
		    ((r = append_kv_s(reply, "bundle.version", st->bundle_version)) < 0 ||
		     (r = append_kv_s(reply, "bundle.hash", st->bundle_hash)) < 0 ||
		     (r = append_kv_s(reply, "status", st->status)) < 0 ||
		     (r = append_kv_s(reply, "installed.transaction", st->installed_transaction)) < 0 ||
		     (r = append_kv_s(reply, "installed.timestamp", st->installed_timestamp)) < 0 ||
		     (r = sd_bus_message_append(reply, "{sv}", "installed.count", "u",
						(uint32_t)st->installed_count)) < 0 ||
		     (r = append_kv_s(reply, "activated.timestamp", st->activated_timestamp)) < 0 ||
		     (r = sd_bus_message_append(reply, "{sv}", "activated.count", "u",
						(uint32_t)st->activated_count)) < 0))
			goto out;
		if ((r = sd_bus_message_close_container(reply)) < 0 ||
		    (r = sd_bus_message_close_container(reply)) < 0)
			goto out;
	}
	if ((r = sd_bus_message_close_container(reply)) < 0)
		goto out;
	r = sd_bus_send(NULL, reply, NULL);
out:
	sd_bus_message_unref(reply);
	device_close(&d);
	return r;
}

/* ------------------------------------------------------------------ */

static const sd_bus_vtable rauc_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD_WITH_NAMES("Install", "s", SD_BUS_PARAM(source), "", , m_install,
				 SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("InstallBundle", "sa{sv}", SD_BUS_PARAM(source) SD_BUS_PARAM(args),
				 "", , m_install_bundle, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Info", "s", SD_BUS_PARAM(bundle), "ss",
				 SD_BUS_PARAM(compatible) SD_BUS_PARAM(version), m_info,
				 SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("InspectBundle", "sa{sv}", SD_BUS_PARAM(source) SD_BUS_PARAM(args),
				 "a{sv}", SD_BUS_PARAM(info), m_inspect_bundle,
				 SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Mark", "ss", SD_BUS_PARAM(state) SD_BUS_PARAM(slot_identifier),
				 "ss", SD_BUS_PARAM(slot_name) SD_BUS_PARAM(message), m_mark,
				 SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("GetSlotStatus", "", , "a(sa{sv})",
				 SD_BUS_PARAM(slot_status_array), m_get_slot_status,
				 SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("GetPrimary", "", , "s", SD_BUS_PARAM(primary), m_get_primary,
				 SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_SIGNAL_WITH_NAMES("Completed", "i", SD_BUS_PARAM(result), 0),
	SD_BUS_PROPERTY("Operation", "s", prop_str, offsetof(struct dbus_service, operation),
			SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("LastError", "s", prop_str, offsetof(struct dbus_service, last_error),
			SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("Progress", "(isi)", prop_progress, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("Compatible", "s", prop_str, offsetof(struct dbus_service, compatible),
			SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("Variant", "s", prop_str, offsetof(struct dbus_service, variant),
			SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("BootSlot", "s", prop_str, offsetof(struct dbus_service, boot_slot),
			SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_VTABLE_END,
};

static const sd_bus_vtable abota_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD_WITH_NAMES("InstallBundle", "sa{sv}", SD_BUS_PARAM(source) SD_BUS_PARAM(args),
				 "", , m_abota_install_bundle, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("GetInterruptedInstall", "", , "a{sv}", SD_BUS_PARAM(journal),
				 m_get_interrupted, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("GetFwuStatus", "", , "a{sv}", SD_BUS_PARAM(status),
				 m_get_fwu_status, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("GetBankHistory", "", , "a(sa{sv})", SD_BUS_PARAM(banks),
				 m_get_bank_history, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_VTABLE_END,
};

int dbus_service_parse_bus(const char *str, struct dbus_service_opts *o, bool *none,
			   struct abota_error *err)
{
	*none = false;
	if (!strcmp(str, "system"))
		o->bus = DBUS_BUS_SYSTEM;
	else if (!strcmp(str, "session"))
		o->bus = DBUS_BUS_SESSION;
	else if (!strcmp(str, "none"))
		*none = true;
	else if (strchr(str, ':') && strchr(str, '=')) {
		o->bus = DBUS_BUS_ADDRESS;
		o->address = str;
	} else
		return abota_error_set(err, -EINVAL,
				       "--dbus: '%s' is not system, session, none or a D-Bus address",
				       str);
	return 0;
}

static int bus_connect(const struct dbus_service_opts *o, sd_bus **out)
{
	sd_bus *bus = NULL;
	int r;
	switch (o->bus) {
	case DBUS_BUS_SESSION: return sd_bus_open_user(out);
	case DBUS_BUS_ADDRESS:
		if ((r = sd_bus_new(&bus)) < 0)
			return r;
		if ((r = sd_bus_set_address(bus, o->address)) < 0 ||
		    (r = sd_bus_set_bus_client(bus, 1)) < 0 || (r = sd_bus_start(bus)) < 0) {
			sd_bus_unref(bus);
			return r;
		}
		*out = bus;
		return 0;
	default: return sd_bus_open_system(out);
	}
}

int dbus_service_open(const struct dbus_service_opts *opts, struct dbus_service **out,
		      struct abota_error *err)
{
	struct dbus_service *s = calloc(1, sizeof(*s));
	struct device d = { 0 };
	int r;
	if (!s)
		return abota_error_set(err, -ENOMEM, "out of memory");
	s->opts = *opts;
	s->wake_fd = -1;
	pthread_mutex_init(&s->job_lock, NULL);
	if (opts->install_group) {
		struct group *g = getgrnam(opts->install_group);
		if (!g) {
			r = abota_error_set(err, -ENOENT, "install group '%s' does not exist",
					    opts->install_group);
			goto fail;
		}
		s->install_gid = g->gr_gid;
		s->has_install_gid = true;
	}
	/* Validate the configuration and find the booted slot now, so a
	 * broken setup fails at start (as `rauc service`), not at the first call. */
	if ((r = device_open(s, false, &d, err)) < 0)
		goto fail;
	/* the variant as installs see it (variant-file, variant-dtb, system-info) */
	struct system_info *si = NULL;
	if ((r = system_info_load(d.cfg, NULL, &si, err)) < 0)
		goto fail;
	r = set_str(&s->variant, si->variant);
	system_info_free(si);
	if (r < 0 || (r = set_str(&s->compatible, d.cfg->compatible)) < 0 ||
	    (r = set_str(&s->boot_slot, d.booted_id)) < 0 || (r = set_str(&s->operation, "idle")) < 0 ||
	    (r = set_str(&s->last_error, "")) < 0 || (r = set_str(&s->progress_msg, "")) < 0) {
		abota_error_set(err, r, "out of memory");
		goto fail;
	}
	/* RAUC's boot and service events: the service starts once per boot,
	 * or again after a restart (the boot is then logged already). */
	{
		const struct slot *root = d.booted ? slot_root(d.booted) : NULL;
		struct slot_status *st = root && d.store ? slot_status_get(d.store, root->name) : NULL;
		event_log_boot(d.cfg, root ? root->name : NULL, root ? root->bootname : NULL,
			       st ? st->bundle_hash : NULL);
		event_log_emit(d.cfg, CONFIG_EVENT_SERVICE, NULL, NULL, 0, "Service started");
	}
	device_close(&d);
	if ((s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		r = abota_error_set(err, -errno, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if ((r = sd_event_new(&s->event)) < 0 ||
	    (r = sd_event_add_io(s->event, &s->wake_src, s->wake_fd, EPOLLIN, on_wake, s)) < 0) {
		abota_error_set(err, r, "sd-event: %s", strerror(-r));
		goto fail;
	}
	if ((r = bus_connect(opts, &s->bus)) < 0) {
		abota_error_set(err, r, "cannot connect to the %s bus: %s",
				opts->bus == DBUS_BUS_SESSION	? "session"
				: opts->bus == DBUS_BUS_ADDRESS ? opts->address
								: "system",
				strerror(-r));
		goto fail;
	}
	if ((r = sd_bus_add_object_vtable(s->bus, &s->slot_rauc, OBJ_PATH, IFACE_RAUC, rauc_vtable,
					  s)) < 0 ||
	    (r = sd_bus_add_object_vtable(s->bus, &s->slot_abota, OBJ_PATH, IFACE_ABOTA,
					  abota_vtable, s)) < 0) {
		abota_error_set(err, r, "cannot export %s: %s", OBJ_PATH, strerror(-r));
		goto fail;
	}
	if ((r = sd_bus_request_name(s->bus, DBUS_SERVICE_NAME, 0)) < 0) {
		abota_error_set(err, r == -EEXIST ? -EEXIST : r,
				"cannot own %s: %s", DBUS_SERVICE_NAME,
				r == -EEXIST ? "another service (rauc or abotad) has it"
					     : strerror(-r));
		goto fail;
	}
	if ((r = sd_bus_attach_event(s->bus, s->event, SD_EVENT_PRIORITY_NORMAL)) < 0) {
		abota_error_set(err, r, "sd-bus: %s", strerror(-r));
		goto fail;
	}
	/* Arms the epoll set: sd-event registers the bus fd (and handles what
	 * the name request already read) only when it prepares an iteration,
	 * so a poll on the fd before the first iteration could sleep forever. */
	if ((r = dbus_service_process(s, err)) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	device_close(&d);
	dbus_service_close(s);
	return r;
}

int dbus_service_get_fd(struct dbus_service *s)
{
	return sd_event_get_fd(s->event);
}

int dbus_service_process(struct dbus_service *s, struct abota_error *err)
{
	int r;
	do {
		r = sd_event_run(s->event, 0);
	} while (r > 0);
	if (r < 0)
		return abota_error_set(err, r, "D-Bus event loop: %s", strerror(-r));
	if (!sd_bus_is_open(s->bus))
		return abota_error_set(err, -ENOTCONN, "the D-Bus connection was closed");
	return 0;
}

bool dbus_service_busy(struct dbus_service *s)
{
	return s->running;
}

void dbus_service_close(struct dbus_service *s)
{
	if (!s)
		return;
	if (s->running) {
		log_info("waiting for the running install to finish");
		pthread_join(s->worker, NULL);
		s->running = false;
	}
	job_free(s->job);
	sd_bus_slot_unref(s->slot_rauc);
	sd_bus_slot_unref(s->slot_abota);
	if (s->bus) {
		sd_bus_flush(s->bus);
		sd_bus_detach_event(s->bus);
		sd_bus_flush_close_unref(s->bus);
	}
	sd_event_source_unref(s->wake_src);
	sd_event_unref(s->event);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	pthread_mutex_destroy(&s->job_lock);
	free(s->compatible);
	free(s->variant);
	free(s->boot_slot);
	free(s->operation);
	free(s->last_error);
	free(s->progress_msg);
	free(s);
}
