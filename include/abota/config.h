/* config.h - system.conf: RAUC's syntax and keys plus abota's additions.
 *
 * Parsing is strict like RAUC's: an unknown section or key, a malformed
 * value or an inconsistent slot layout is an error naming file:line and key.
 * Relative paths are resolved against the directory of the config file.
 * See docs/configuration.md for the reference of every key.
 */
#ifndef ABOTA_CONFIG_H
#define ABOTA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abota/error.h"
#include "abota/signature.h"
#include "abota/slot.h"

#define CONFIG_DEFAULT_PATHS "/etc/abota/system.conf:/etc/rauc/system.conf:/run/rauc/system.conf:/usr/lib/rauc/system.conf"

enum config_bootloader {
	CONFIG_BOOT_BAREBOX,
	CONFIG_BOOT_GRUB,
	CONFIG_BOOT_UBOOT,
	CONFIG_BOOT_EFI,
	CONFIG_BOOT_CUSTOM,
	CONFIG_BOOT_NOOP,
	CONFIG_BOOT_FWU,
};

/* Bundle formats for [system] bundle-formats (bit mask). */
#define CONFIG_FORMAT_PLAIN  (1u << 0)
#define CONFIG_FORMAT_VERITY (1u << 1)
#define CONFIG_FORMAT_CRYPT  (1u << 2)
#define CONFIG_FORMAT_ALL    (CONFIG_FORMAT_PLAIN | CONFIG_FORMAT_VERITY | CONFIG_FORMAT_CRYPT)

/* [log.<name>] event loggers (event_log.h): the event types each takes. */
#define CONFIG_EVENT_INSTALL   (1u << 0)
#define CONFIG_EVENT_BOOT      (1u << 1)
#define CONFIG_EVENT_MARK      (1u << 2)
#define CONFIG_EVENT_SERVICE   (1u << 3)
#define CONFIG_EVENT_WRITESLOT (1u << 4)
#define CONFIG_EVENT_ALL       ((1u << 5) - 1)

enum config_log_format {
	CONFIG_LOG_READABLE,    /* timestamp, message, known fields on lines below */
	CONFIG_LOG_SHORT,       /* timestamp and message on one line */
	CONFIG_LOG_JSON,        /* one JSON object per line */
	CONFIG_LOG_JSON_PRETTY, /* indented JSON objects */
};

struct config_logger {
	const char *name;     /* <name> of [log.<name>] */
	const char *filename; /* absolute: relative names are in data-directory */
	unsigned events;      /* CONFIG_EVENT_* mask, default all */
	enum config_log_format format;
	uint64_t max_size;    /* rotate before the file would exceed it; 0 = never */
	unsigned max_files;   /* files kept, the current one included; default 10 */
};

struct config_streaming {
	const char *sandbox_user; /* default "nobody" */
	const char *tls_cert, *tls_key, *tls_ca;
	const char *const *send_headers; /* NULL-terminated or NULL */
};

struct config_fwu {
	bool present;              /* [fwu] section given */
	const char *board;         /* board profile name or path */
	const char *metadata1;     /* partition label, PARTUUID=..., or path; NULL = from board */
	const char *metadata2;
	const char *fwu_info;      /* file holding the FWU_INFO register value */
	uint64_t fwu_info_offset;  /* byte offset inside fwu_info */
	unsigned metadata_version; /* 0 = from board profile, else 1 or 2 */
	unsigned min_trial_boots;  /* 0 = unset */
	const char *tfa;           /* BL2 flavour r3|upstream|v1; NULL = from board profile */
};

struct system_config {
	const char *path;           /* the file that was loaded */
	const char *dir;            /* its directory */
	/* [system] */
	const char *compatible;
	const char *bootloader_name;
	enum config_bootloader bootloader;
	const char *mount_prefix;   /* default /mnt/rauc */
	const char *data_directory; /* NULL if unset */
	const char *statusfile;     /* central status file path; NULL = per-slot */
	unsigned bundle_formats;    /* CONFIG_FORMAT_* mask, default all */
	uint64_t max_bundle_download_size;  /* default 8 MiB */
	uint64_t max_bundle_signature_size; /* default 64 KiB */
	unsigned boot_attempts, boot_attempts_primary; /* default 3 / 3 (uboot, barebox) */
	bool activate_installed;    /* default true */
	const char *min_bundle_version;
	const char *variant_name, *variant_file;
	bool variant_dtb;
	bool perform_pre_check;
	bool prevent_late_fallback;
	const char *grubenv;        /* default /boot/grub/grubenv */
	const char *barebox_statename, *barebox_dtbpath;
	bool efi_use_bootnext;      /* default true */
	/* abota additions to [system] */
	const char *cmdline_file;   /* default /proc/cmdline */
	const char *boot_disk;      /* boot disk image/device, NULL if unset */
	const char *boot_id_file;   /* abota: where the boot id is read; NULL =
				       /proc/sys/kernel/random/boot_id (the simulator
				       writes one per power-on) */
	const char *fw_env_config;  /* uboot: fw_env.config, default /etc/fw_env.config */
	/* [handlers] */
	const char *system_info_handler, *pre_install_handler, *post_install_handler;
	const char *custom_backend;
	/* [keyring]; strings owned by the config */
	struct sig_policy keyring;
	bool keyring_present;
	/* other sections */
	struct config_streaming streaming;
	struct config_fwu fwu;
	const char *autoinstall_path;
	/* [log.<name>] sections in file order */
	size_t nloggers;
	struct config_logger *loggers;
	/* slots in file order */
	size_t nslots;
	struct slot *slots;
	/* private */
	void *priv;
};

/* Loads and validates a system.conf.  `path` NULL searches
 * CONFIG_DEFAULT_PATHS. */
int config_load(const char *path, struct system_config **out, struct abota_error *err);
/* Same with RAUC-style overrides "SECTION:KEY=VALUE" (NULL-terminated list,
 * -C/--confopt) applied before validation; they add or replace keys. */
int config_load_with_overrides(const char *path, const char *const *overrides,
			       struct system_config **out, struct abota_error *err);
/* RAUC's "auto" mode, for the verbs that only read a bundle (info, extract,
 * resign): with a path or overrides, as config_load_with_overrides(); with
 * neither, the first of CONFIG_DEFAULT_PATHS that exists, and if none does,
 * 0 with *out = NULL (a build host has no system.conf).  A file that exists
 * but is invalid is an error, as in RAUC. */
int config_load_auto(const char *path, const char *const *overrides,
		     struct system_config **out, struct abota_error *err);
/* Parses config text (name used in messages, dir for relative paths). */
int config_parse(const char *data, size_t len, const char *name, const char *dir,
		 const char *const *overrides, struct system_config **out,
		 struct abota_error *err);
void config_free(struct system_config *cfg);

const char *config_bootloader_name(enum config_bootloader b);

#endif
