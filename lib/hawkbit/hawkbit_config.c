/* hawkbit_config.c - strict parsing of hawkbit.conf (see hawkbit_config.h). */
#include "abota/hawkbit_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abota/keyfile.h"

#define CONFIG_MAX_SIZE (256 * 1024)

struct priv {
	struct keyfile *kf;
	char **trimmed; /* [device] values with trailing whitespace removed */
	size_t ntrimmed;
};

static int key_error(struct keyfile *kf, struct abota_error *err, const char *group,
		     const char *key, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int key_error(struct keyfile *kf, struct abota_error *err, const char *group,
		     const char *key, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	char w[4200];
	return abota_error_set(err, -EINVAL, "%s: key '%s' in group [%s]: %s",
			       keyfile_where(kf, keyfile_key_line(kf, group, key), w, sizeof(w)), key,
			       group, msg);
}

/* Optional keys: -ENOENT keeps the default. */
static int opt_str(struct keyfile *kf, const char *key, const char **out,
		   struct abota_error *err)
{
	int ret = keyfile_get_nonempty(kf, "client", key, out, err);
	return ret == -ENOENT ? 0 : ret;
}

static int opt_bool(struct keyfile *kf, const char *key, bool *out, struct abota_error *err)
{
	int ret = keyfile_get_bool(kf, "client", key, out, err);
	return ret == -ENOENT ? 0 : ret;
}

static int opt_u64(struct keyfile *kf, const char *key, uint64_t *out, uint64_t min,
		   uint64_t max, struct abota_error *err)
{
	uint64_t v;
	int ret = keyfile_get_u64(kf, "client", key, &v, err);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	if (v < min || v > max)
		return key_error(kf, err, "client", key, "%llu is out of range %llu..%llu",
				 (unsigned long long)v, (unsigned long long)min,
				 (unsigned long long)max);
	*out = v;
	return 0;
}

/* Characters that would let a value break out of an HTTP header or URL. */
static bool has_space_or_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return true;
	return false;
}

static bool valid_host_port(const char *s)
{
	/* host, host:port, [v6]:port -- no scheme, no path, no user info */
	if (!*s || strlen(s) > 255 || has_space_or_ctl(s))
		return false;
	for (const char *p = s; *p; p++)
		if (strchr("/?#@\\", *p))
			return false;
	const char *colon = strrchr(s, ':');
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end)
			return false;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] && end[1] != ':')
			return false;
	} else if (colon && strchr(s, ':') != colon) {
		return false; /* bare IPv6 needs brackets */
	}
	if (colon) {
		char *e;
		if (!isdigit((unsigned char)colon[1]))
			return false;
		unsigned long port = strtoul(colon + 1, &e, 10);
		if (*e || port == 0 || port > 65535)
			return false;
	}
	return true;
}

static const char *const LOG_LEVELS[] = { "debug", "info", "message", "warning", "critical",
					  "error", NULL };

static int parse_client(struct hawkbit_config *c, struct keyfile *kf, struct abota_error *err)
{
	int ret;
	if (!keyfile_has_group(kf, "client"))
		return abota_error_set(err, -EINVAL, "%s: missing group [client]", keyfile_name(kf));
	keyfile_consume_group(kf, "client");
	if ((ret = keyfile_get_nonempty(kf, "client", "hawkbit_server", &c->server, err)) < 0) {
		if (ret == -ENOENT)
			return abota_error_set(err, -EINVAL, "%s: [client]: missing key 'hawkbit_server'",
					       keyfile_name(kf));
		return ret;
	}
	if (!valid_host_port(c->server))
		return key_error(kf, err, "client", "hawkbit_server",
				 "'%s' is not host[:port] (no scheme or path; the scheme comes from 'ssl')",
				 c->server);
	if ((ret = keyfile_get_nonempty(kf, "client", "target_name", &c->target_name, err)) < 0) {
		if (ret == -ENOENT)
			return abota_error_set(err, -EINVAL, "%s: [client]: missing key 'target_name'",
					       keyfile_name(kf));
		return ret;
	}
	if (strlen(c->target_name) > 256 || has_space_or_ctl(c->target_name) ||
	    strpbrk(c->target_name, "/?#%"))
		return key_error(kf, err, "client", "target_name",
				 "a controller id is 1..256 characters without whitespace, '/', '?', '#' or '%%'");
	if ((ret = opt_str(kf, "tenant_id", &c->tenant, err)) < 0)
		return ret;
	if (has_space_or_ctl(c->tenant) || strpbrk(c->tenant, "/?#%"))
		return key_error(kf, err, "client", "tenant_id", "invalid tenant name '%s'", c->tenant);
	if ((ret = opt_bool(kf, "ssl", &c->ssl, err)) < 0 ||
	    (ret = opt_bool(kf, "ssl_verify", &c->ssl_verify, err)) < 0 ||
	    (ret = opt_str(kf, "ssl_ca", &c->ssl_ca, err)) < 0 ||
	    (ret = opt_str(kf, "auth_token", &c->auth_token, err)) < 0 ||
	    (ret = opt_str(kf, "gateway_token", &c->gateway_token, err)) < 0 ||
	    (ret = opt_str(kf, "ssl_cert", &c->ssl_cert, err)) < 0 ||
	    (ret = opt_str(kf, "ssl_key", &c->ssl_key, err)) < 0 ||
	    (ret = opt_bool(kf, "send_download_authentication", &c->send_download_authentication,
			    err)) < 0 ||
	    (ret = opt_bool(kf, "stream_bundle", &c->stream_bundle, err)) < 0 ||
	    (ret = opt_str(kf, "bundle_download_location", &c->download_location, err)) < 0 ||
	    (ret = opt_bool(kf, "resume_downloads", &c->resume_downloads, err)) < 0 ||
	    (ret = opt_bool(kf, "post_update_reboot", &c->post_update_reboot, err)) < 0 ||
	    (ret = opt_str(kf, "reboot_command", &c->reboot_command, err)) < 0 ||
	    (ret = opt_u64(kf, "retry_wait", &c->retry_wait, 1, 86400, err)) < 0 ||
	    (ret = opt_u64(kf, "connect_timeout", &c->connect_timeout, 0, 3600, err)) < 0 ||
	    (ret = opt_u64(kf, "timeout", &c->timeout, 0, 3600, err)) < 0 ||
	    (ret = opt_u64(kf, "low_speed_time", &c->low_speed_time, 0, 3600, err)) < 0 ||
	    /* curl takes these as long, 32 bits on armhf: INT32_MAX keeps the cast exact */
	    (ret = opt_u64(kf, "low_speed_rate", &c->low_speed_rate, 0, INT32_MAX, err)) < 0 ||
	    (ret = opt_u64(kf, "poll_interval", &c->poll_interval, 0, 7 * 86400, err)) < 0 ||
	    (ret = opt_u64(kf, "action_poll_interval", &c->action_poll_interval, 1, 3600, err)) < 0 ||
	    (ret = opt_u64(kf, "max_artifact_size", &c->max_artifact_size, 1, UINT64_C(1) << 42,
			   err)) < 0 ||
	    (ret = opt_u64(kf, "stale_after", &c->stale_after, 60, 366 * 86400, err)) < 0 ||
	    (ret = opt_bool(kf, "allow_redirects", &c->allow_redirects, err)) < 0 ||
	    (ret = opt_str(kf, "log_level", &c->log_level, err)) < 0 ||
	    (ret = opt_bool(kf, "report_installed_base", &c->report_installed_base, err)) < 0 ||
	    (ret = opt_str(kf, "installed_base_name", &c->installed_base_name, err)) < 0 ||
	    (ret = opt_str(kf, "boot_id_file", &c->boot_id_file, err)) < 0 ||
	    (ret = opt_str(kf, "confirm_actions", &c->confirm_actions, err)) < 0 ||
	    (ret = opt_str(kf, "status_file", &c->status_file, err)) < 0)
		return ret;
	ret = keyfile_get_list(kf, "client", "allowed_download_hosts", &c->allowed_download_hosts,
			       NULL, err);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	for (const char *const *h = c->allowed_download_hosts; h && *h; h++)
		if (!valid_host_port(*h))
			return key_error(kf, err, "client", "allowed_download_hosts",
					 "'%s' is not host[:port]", *h);
	/* Tokens go into an HTTP header: no whitespace or control characters. */
	if (c->auth_token && has_space_or_ctl(c->auth_token))
		return key_error(kf, err, "client", "auth_token",
				 "contains whitespace or control characters");
	if (c->gateway_token && has_space_or_ctl(c->gateway_token))
		return key_error(kf, err, "client", "gateway_token",
				 "contains whitespace or control characters");
	bool token = c->auth_token || c->gateway_token;
	bool cert = c->ssl_cert || c->ssl_key;
	if (c->auth_token && c->gateway_token)
		return key_error(kf, err, "client", "gateway_token",
				 "both 'auth_token' and 'gateway_token' set; use one");
	if (cert && !(c->ssl_cert && c->ssl_key))
		return key_error(kf, err, "client", c->ssl_cert ? "ssl_cert" : "ssl_key",
				 "'ssl_cert' and 'ssl_key' must be set together");
	if (cert && !c->ssl)
		return key_error(kf, err, "client", "ssl_cert",
				 "a client certificate needs ssl=true");
	if (token && cert)
		return key_error(kf, err, "client", "ssl_cert",
				 "both token and client certificate authentication set; use one");
	if (!token && !cert)
		return abota_error_set(err, -EINVAL,
				       "%s: [client]: no authentication: set 'auth_token', "
				       "'gateway_token' or 'ssl_cert' + 'ssl_key'",
				       keyfile_name(kf));
	if (c->ssl_ca && !c->ssl)
		return key_error(kf, err, "client", "ssl_ca", "needs ssl=true");
	if (!c->stream_bundle && !c->download_location)
		return abota_error_set(err, -EINVAL,
				       "%s: [client]: 'bundle_download_location' is required unless "
				       "stream_bundle=true",
				       keyfile_name(kf));
	if (c->download_location && c->download_location[0] != '/')
		return key_error(kf, err, "client", "bundle_download_location",
				 "must be an absolute file path");
	if (c->connect_timeout && c->timeout && c->connect_timeout > c->timeout)
		return key_error(kf, err, "client", "connect_timeout",
				 "%llu s exceeds 'timeout' (%llu s)",
				 (unsigned long long)c->connect_timeout,
				 (unsigned long long)c->timeout);
	if (c->log_level) {
		bool ok = false;
		for (size_t i = 0; LOG_LEVELS[i]; i++)
			ok |= !strcmp(c->log_level, LOG_LEVELS[i]);
		if (!ok)
			return key_error(kf, err, "client", "log_level",
					 "'%s' is not debug|info|message|warning|critical|error",
					 c->log_level);
	}
	if (strcmp(c->confirm_actions, "wait") && strcmp(c->confirm_actions, "auto") &&
	    strcmp(c->confirm_actions, "deny"))
		return key_error(kf, err, "client", "confirm_actions", "'%s' is not wait|auto|deny",
				 c->confirm_actions);
	if (c->status_file && c->status_file[0] != '/')
		return key_error(kf, err, "client", "status_file", "must be an absolute path");
	return 0;
}

static int parse_device(struct hawkbit_config *c, struct priv *p, struct keyfile *kf,
			struct abota_error *err)
{
	if (!keyfile_has_group(kf, "device"))
		return abota_error_set(err, -EINVAL,
				       "%s: missing group [device] (controller attributes, at least one)",
				       keyfile_name(kf));
	keyfile_consume_group(kf, "device");
	size_t n = keyfile_key_count(kf, "device");
	if (n == 0)
		return abota_error_set(err, -EINVAL, "%s: [device]: needs at least one attribute",
				       keyfile_name(kf));
	if (n > HAWKBIT_MAX_ATTRIBUTES)
		return abota_error_set(err, -EINVAL,
				       "%s: [device]: %zu attributes, hawkBit accepts at most %d",
				       keyfile_name(kf), n, HAWKBIT_MAX_ATTRIBUTES);
	c->attributes = calloc(n, sizeof(*c->attributes));
	p->trimmed = calloc(n, sizeof(*p->trimmed));
	if (!c->attributes || !p->trimmed)
		return abota_error_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *key = keyfile_key_name(kf, "device", i), *v;
		int ret = keyfile_get_string(kf, "device", key, &v, err);
		if (ret < 0)
			return ret;
		char *t = strdup(v);
		if (!t)
			return abota_error_set(err, -ENOMEM, "out of memory");
		p->trimmed[p->ntrimmed++] = t;
		size_t l = strlen(t);
		while (l && isspace((unsigned char)t[l - 1]))
			t[--l] = '\0';
		if (strlen(key) > HAWKBIT_MAX_ATTRIBUTE_LEN || l > HAWKBIT_MAX_ATTRIBUTE_LEN)
			return key_error(kf, err, "device", key,
					 "keys and values are limited to %d characters by hawkBit",
					 HAWKBIT_MAX_ATTRIBUTE_LEN);
		if (l == 0)
			return key_error(kf, err, "device", key, "missing value");
		c->attributes[i].key = key;
		c->attributes[i].value = t;
		c->nattributes++;
	}
	return 0;
}

void hawkbit_config_free(struct hawkbit_config *cfg)
{
	if (!cfg)
		return;
	struct priv *p = cfg->priv;
	if (p) {
		for (size_t i = 0; i < p->ntrimmed; i++)
			free(p->trimmed[i]);
		free(p->trimmed);
		keyfile_free(p->kf);
		free(p);
	}
	free(cfg->attributes);
	free(cfg);
}

/* Takes ownership of kf (NULL when keyfile parsing failed: ret < 0). */
static int config_from_keyfile(struct keyfile *kf, int ret, struct hawkbit_config **out,
			       struct abota_error *err)
{
	struct hawkbit_config *c = calloc(1, sizeof(*c));
	struct priv *p = calloc(1, sizeof(*p));
	if (ret < 0)
		goto out;
	if (!c || !p) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	c->priv = p;
	p->kf = kf;
	kf = NULL;
	p = NULL;
	c->path = keyfile_name(((struct priv *)c->priv)->kf);
	c->ssl = true;
	c->ssl_verify = true;
	c->tenant = "DEFAULT";
	c->send_download_authentication = true;
	c->resume_downloads = true;
	c->report_installed_base = true;
	c->reboot_command = "systemctl reboot";
	c->retry_wait = 300;
	c->connect_timeout = 20;
	c->timeout = 60;
	c->low_speed_time = 60;
	c->low_speed_rate = 100;
	c->action_poll_interval = 5;
	c->max_artifact_size = UINT64_C(4) << 30;
	c->stale_after = 7 * 86400;
	c->status_file = "/run/abota/hawkbit.status";
	c->boot_id_file = "/proc/sys/kernel/random/boot_id";
	c->confirm_actions = "wait";
	struct keyfile *k = ((struct priv *)c->priv)->kf;
	if ((ret = parse_client(c, k, err)) < 0 || (ret = parse_device(c, c->priv, k, err)) < 0 ||
	    (ret = keyfile_check_consumed(k, err)) < 0)
		goto out;
	*out = c;
	c = NULL;
out:
	keyfile_free(kf);
	free(p);
	hawkbit_config_free(c);
	return ret;
}

int hawkbit_config_parse(const char *data, size_t len, const char *name,
			 struct hawkbit_config **out, struct abota_error *err)
{
	struct keyfile *kf = NULL;
	int ret = keyfile_parse(data, len, name, &kf, err);
	return config_from_keyfile(kf, ret, out, err);
}

int hawkbit_config_load(const char *path, struct hawkbit_config **out, struct abota_error *err)
{
	struct keyfile *kf = NULL;
	int ret = keyfile_load(path, CONFIG_MAX_SIZE, &kf, err);
	return config_from_keyfile(kf, ret, out, err);
}

char *hawkbit_config_base_url(const struct hawkbit_config *cfg)
{
	char *u = NULL;
	if (asprintf(&u, "%s://%s/%s/controller/v1/%s", cfg->ssl ? "https" : "http", cfg->server,
		     cfg->tenant, cfg->target_name) < 0)
		return NULL;
	return u;
}
