/* hawkbit_config.h - /etc/abota/hawkbit.conf, the configuration of abotad.
 *
 * Key file syntax (keyfile.h).  Keys of [client] follow rauc-hawkbit-updater
 * where they mean the same (hawkbit_server, ssl, ssl_verify, tenant_id,
 * target_name, auth_token, gateway_token, ssl_key, ssl_cert,
 * bundle_download_location, retry_wait, connect_timeout, timeout,
 * low_speed_time, low_speed_rate, resume_downloads, stream_bundle,
 * post_update_reboot, log_level, send_download_authentication); abota's
 * additions are documented in docs/hawkbit.md.  [device] holds the controller
 * attributes sent as configData.  Parsing is strict: an unknown key, a
 * malformed value or an inconsistent combination fails with one message
 * naming file:line and key.
 */
#ifndef ABOTA_HAWKBIT_CONFIG_H
#define ABOTA_HAWKBIT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abota/error.h"

#define HAWKBIT_CONFIG_DEFAULT_PATH "/etc/abota/hawkbit.conf"
#define HAWKBIT_MAX_ATTRIBUTES 100    /* hawkBit's maxAttributeEntriesPerTarget */
#define HAWKBIT_MAX_ATTRIBUTE_LEN 128 /* hawkBit's limit for keys and values */

struct hawkbit_attribute {
	const char *key, *value;
};

struct hawkbit_config {
	const char *path;
	/* [client]; strings point into the parsed file */
	const char *server;          /* host[:port] (hawkbit_server) */
	bool ssl;                    /* https (default true) */
	bool ssl_verify;             /* verify the server (default true) */
	const char *ssl_ca;          /* CA file (abota; default: system store) */
	const char *tenant;          /* tenant_id, default DEFAULT */
	const char *target_name;     /* controllerId */
	const char *auth_token;      /* TargetToken */
	const char *gateway_token;   /* GatewayToken */
	const char *ssl_cert, *ssl_key; /* client certificate (mTLS) */
	bool send_download_authentication; /* default true */
	bool stream_bundle;          /* default false */
	const char *download_location; /* bundle_download_location (file path) */
	bool resume_downloads;       /* default true (abota) */
	bool post_update_reboot;     /* default false */
	const char *reboot_command;  /* abota; default "systemctl reboot" */
	uint64_t retry_wait;         /* s, default 300 */
	uint64_t connect_timeout;    /* s, default 20 */
	uint64_t timeout;            /* s, REST requests, default 60 */
	uint64_t low_speed_time;     /* s, downloads, default 60 */
	uint64_t low_speed_rate;     /* B/s, downloads, default 100 */
	uint64_t poll_interval;      /* abota: local override in s, 0 = the server's */
	uint64_t action_poll_interval; /* abota: poll interval while an action runs, default 5 */
	uint64_t max_artifact_size;  /* abota: bytes, default 4 GiB */
	uint64_t stale_after;        /* abota: s without a successful poll until the device
				      * is reported stale, default 7 days */
	bool allow_redirects;        /* abota: follow HTTP redirects (default false) */
	const char *const *allowed_download_hosts; /* abota: extra hosts for artifacts */
	const char *log_level;       /* debug|info|message|warning|critical|error */
	bool report_installed_base;  /* abota: PUT installedBase with the running version (default true) */
	const char *installed_base_name; /* abota: its DS name, NULL = system.conf compatible */
	const char *confirm_actions; /* abota: consent flow: "wait" (default), "auto", "deny" */
	const char *boot_id_file;    /* abota: default /proc/sys/kernel/random/boot_id */
	const char *status_file;     /* abota: runtime status, default /run/abota/hawkbit.status */
	/* [device] */
	size_t nattributes;
	struct hawkbit_attribute *attributes;
	/* private */
	void *priv;
};

/* Loads and validates a hawkbit.conf. */
int hawkbit_config_load(const char *path, struct hawkbit_config **out, struct abota_error *err);
/* Parses text (name used in messages). */
int hawkbit_config_parse(const char *data, size_t len, const char *name,
			 struct hawkbit_config **out, struct abota_error *err);
void hawkbit_config_free(struct hawkbit_config *cfg);

/* "https://host:port/TENANT/controller/v1/TARGET" (caller frees). */
char *hawkbit_config_base_url(const struct hawkbit_config *cfg);

#endif
