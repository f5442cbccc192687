/* config.c - system.conf parser (RAUC syntax and keys plus abota additions).
 *
 * Built on the strict keyfile parser: every known key is read, then
 * keyfile_check_consumed() rejects whatever is left (unknown key or group),
 * naming file:line.  The keyfile stays alive inside the config so strings can
 * point into it; resolved paths and other derived strings are owned by a
 * small list freed with the config.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abota/config.h"
#include "abota/fileio.h"
#include "abota/keyfile.h"
#include "abota/log.h"
#include "abota/slot_mount.h"

/* system.conf is small; a bigger file is a mistake, not a config. */
#define CONFIG_MAX_SIZE (1024 * 1024)

struct config_priv {
	struct keyfile *kf;
	char **owned;
	size_t nowned, capowned;
};

static const char *const bootloader_names[] = {
	[CONFIG_BOOT_BAREBOX] = "barebox", [CONFIG_BOOT_GRUB] = "grub",
	[CONFIG_BOOT_UBOOT] = "uboot",     [CONFIG_BOOT_EFI] = "efi",
	[CONFIG_BOOT_CUSTOM] = "custom",   [CONFIG_BOOT_NOOP] = "noop",
	[CONFIG_BOOT_FWU] = "fwu",
};

const char *config_bootloader_name(enum config_bootloader b)
{
	if ((size_t)b < sizeof(bootloader_names) / sizeof(bootloader_names[0]))
		return bootloader_names[b];
	return "?";
}

/* Takes ownership of s (freed with the config); NULL-safe. */
static const char *own(struct system_config *cfg, char *s)
{
	struct config_priv *p = cfg->priv;
	if (!s)
		return NULL;
	if (p->nowned == p->capowned) {
		size_t ncap = p->capowned ? p->capowned * 2 : 16;
		char **n = realloc(p->owned, ncap * sizeof(*n));
		if (!n) {
			free(s);
			return NULL;
		}
		p->owned = n;
		p->capowned = ncap;
	}
	p->owned[p->nowned++] = s;
	return s;
}

/* Error in the style of the keyfile parser: "file:line: key 'k' in group [g]: ..." */
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

/* Line of the first key of a group (the keyfile API has no group line);
 * good enough to point the user at the section. */
static unsigned group_line(const struct keyfile *kf, const char *group)
{
	if (keyfile_key_count(kf, group) == 0)
		return 0;
	unsigned l = keyfile_key_line(kf, group, keyfile_key_name(kf, group, 0));
	return l > 1 ? l - 1 : l;
}

/* Absolute paths are kept, relative ones are taken relative to the config
 * file's directory (as RAUC does). */
static int get_path(struct system_config *cfg, const char *group, const char *key,
		    const char **out, struct abota_error *err)
{
	struct config_priv *p = cfg->priv;
	const char *v;
	int ret = keyfile_get_nonempty(p->kf, group, key, &v, err);
	if (ret < 0)
		return ret;
	if (v[0] == '/') {
		*out = v;
		return 0;
	}
	char *abs = NULL;
	if (asprintf(&abs, "%s/%s", cfg->dir, v) < 0)
		return abota_error_set(err, -ENOMEM, "out of memory");
	if (!own(cfg, abs))
		return abota_error_set(err, -ENOMEM, "out of memory");
	*out = abs;
	return 0;
}

/* Optional getters: absent keys keep the default. */
static int opt_string(struct keyfile *kf, const char *g, const char *k, const char **out,
		      struct abota_error *err)
{
	int ret = keyfile_get_nonempty(kf, g, k, out, err);
	return ret == -ENOENT ? 0 : ret;
}
static int opt_bool(struct keyfile *kf, const char *g, const char *k, bool *out,
		    struct abota_error *err)
{
	int ret = keyfile_get_bool(kf, g, k, out, err);
	return ret == -ENOENT ? 0 : ret;
}
static int opt_path(struct system_config *cfg, const char *g, const char *k, const char **out,
		    struct abota_error *err)
{
	int ret = get_path(cfg, g, k, out, err);
	return ret == -ENOENT ? 0 : ret;
}

/* Unsigned number: decimal or 0x-hex, optional binary suffix K/M/G/T
 * (1024-based, as RAUC's region-* keys) when allow_suffix. */
static int parse_size(const char *v, bool allow_suffix, uint64_t *out)
{
	if (!v[0] || !(isdigit((unsigned char)v[0])))
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long n = strtoull(v, &end, 0);
	if (errno || end == v)
		return -EINVAL;
	uint64_t mul = 1;
	if (*end && allow_suffix) {
		switch (*end) {
		case 'K': mul = 1ull << 10; break;
		case 'M': mul = 1ull << 20; break;
		case 'G': mul = 1ull << 30; break;
		case 'T': mul = 1ull << 40; break;
		default: return -EINVAL;
		}
		end++;
	}
	if (*end)
		return -EINVAL;
	if (n > UINT64_MAX / mul)
		return -ERANGE;
	*out = (uint64_t)n * mul;
	return 0;
}

static int get_size(struct keyfile *kf, const char *g, const char *k, bool allow_suffix,
		    uint64_t *out, bool *present, struct abota_error *err)
{
	const char *v;
	int ret = keyfile_get_nonempty(kf, g, k, &v, err);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	if (parse_size(v, allow_suffix, out) < 0)
		return key_error(kf, err, g, k, "'%s' is not a valid %s", v,
				 allow_suffix ? "size (number with optional K/M/G/T suffix)"
					      : "number");
	if (present)
		*present = true;
	return 0;
}

static int get_uint(struct keyfile *kf, const char *g, const char *k, unsigned min, unsigned max,
		    unsigned *out, struct abota_error *err)
{
	uint64_t v;
	int ret = keyfile_get_u64(kf, g, k, &v, err);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	if (v < min || v > max)
		return key_error(kf, err, g, k, "%llu is out of range (%u..%u)",
				 (unsigned long long)v, min, max);
	*out = (unsigned)v;
	return 0;
}

/* SemVer core with optional pre-release ("1.2.3", "2026.11.0-rc1"). */
static bool semver_valid(const char *v)
{
	const char *p = v;
	for (int part = 0; part < 3; part++) {
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
		if (part < 2 && *p++ != '.')
			return false;
	}
	if (*p == '-') {
		p++;
		if (!*p)
			return false;
		for (; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
				return false;
	}
	return *p == '\0';
}

static int parse_bundle_formats(struct keyfile *kf, const char *v, unsigned *out,
				struct abota_error *err)
{
	static const struct {
		const char *name;
		unsigned bit;
	} fmts[] = { { "plain", CONFIG_FORMAT_PLAIN },
		     { "verity", CONFIG_FORMAT_VERITY },
		     { "crypt", CONFIG_FORMAT_CRYPT } };
	unsigned mask = 0;
	int relative = -1; /* unknown until the first word */
	const char *p = v;
	while (*p) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		size_t n = strcspn(p, " ");
		bool rel = *p == '+' || *p == '-';
		if (relative < 0) {
			relative = rel;
			mask = rel ? CONFIG_FORMAT_ALL : 0;
		} else if (relative != (int)rel) {
			return key_error(kf, err, "system", "bundle-formats",
					 "'%s' mixes absolute and relative formats", v);
		}
		const char *name = rel ? p + 1 : p;
		size_t nlen = rel ? n - 1 : n;
		unsigned bit = 0;
		for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++)
			if (strlen(fmts[i].name) == nlen && !strncmp(name, fmts[i].name, nlen))
				bit = fmts[i].bit;
		if (!bit)
			return key_error(kf, err, "system", "bundle-formats",
					 "unknown bundle format '%.*s'", (int)nlen, name);
		if (rel && *p == '-')
			mask &= ~bit;
		else
			mask |= bit;
		p += n;
	}
	if (!mask)
		return key_error(kf, err, "system", "bundle-formats",
				 "no bundle format is allowed by '%s'", v);
	*out = mask;
	return 0;
}

static int parse_system(struct system_config *cfg, struct abota_error *err)
{
	struct keyfile *kf = ((struct config_priv *)cfg->priv)->kf;
	const char *g = "system", *v;
	int ret;

	if (!keyfile_has_group(kf, g))
		return abota_error_set(err, -EINVAL, "%s: missing group [system]", keyfile_name(kf));
	ret = keyfile_get_nonempty(kf, g, "compatible", &cfg->compatible, err);
	if (ret == -ENOENT)
		return abota_error_set(err, -EINVAL, "%s: [system]: missing key 'compatible'",
				       keyfile_name(kf));
	if (ret < 0)
		return ret;
	ret = keyfile_get_nonempty(kf, g, "bootloader", &v, err);
	if (ret == -ENOENT)
		return abota_error_set(err, -EINVAL, "%s: [system]: missing key 'bootloader'",
				       keyfile_name(kf));
	if (ret < 0)
		return ret;
	bool found = false;
	for (size_t i = 0; i < sizeof(bootloader_names) / sizeof(bootloader_names[0]); i++) {
		if (!strcmp(v, bootloader_names[i])) {
			cfg->bootloader = (enum config_bootloader)i;
			found = true;
		}
	}
	if (!found)
		return key_error(kf, err, g, "bootloader",
				 "unsupported bootloader '%s' (barebox, grub, uboot, efi, custom, "
				 "noop or fwu)",
				 v);
	cfg->bootloader_name = v;

	if ((ret = opt_path(cfg, g, "mountprefix", &cfg->mount_prefix, err)) < 0)
		return ret;
	if ((ret = opt_path(cfg, g, "data-directory", &cfg->data_directory, err)) < 0)
		return ret;
	ret = keyfile_get_nonempty(kf, g, "statusfile", &v, err);
	if (ret == 0) {
		if (strcmp(v, "per-slot") == 0) {
			/* RAUC keeps a status file in each slot's file system; abota
			 * keeps one central file.  Running without status would lose
			 * the history the user asked for. */
			return key_error(kf, err, g, "statusfile",
					 "per-slot status files are not supported by abota: set "
					 "data-directory (or statusfile=PATH) for the central status file");
		} else if ((ret = get_path(cfg, g, "statusfile", &cfg->statusfile, err)) < 0) {
			return ret;
		}
		if (cfg->data_directory)
			log_warning("%s: statusfile= is deprecated; it overrides data-directory",
				    keyfile_name(kf));
	} else if (ret != -ENOENT) {
		return ret;
	} else if (cfg->data_directory) {
		char *s = NULL;
		if (asprintf(&s, "%s/central.raucs", cfg->data_directory) < 0 || !own(cfg, s))
			return abota_error_set(err, -ENOMEM, "out of memory");
		cfg->statusfile = s;
	}

	ret = keyfile_get_string(kf, g, "bundle-formats", &v, err);
	if (ret == 0) {
		if ((ret = parse_bundle_formats(kf, v, &cfg->bundle_formats, err)) < 0)
			return ret;
	} else if (ret != -ENOENT) {
		return ret;
	}

	if ((ret = get_size(kf, g, "max-bundle-download-size", false,
			    &cfg->max_bundle_download_size, NULL, err)) < 0)
		return ret;
	if (cfg->max_bundle_download_size == 0)
		return key_error(kf, err, g, "max-bundle-download-size", "must not be 0");
	if ((ret = get_size(kf, g, "max-bundle-signature-size", false,
			    &cfg->max_bundle_signature_size, NULL, err)) < 0)
		return ret;
	if (cfg->max_bundle_signature_size == 0)
		return key_error(kf, err, g, "max-bundle-signature-size", "must not be 0");

	/* boot-attempts only mean something to counting bootloaders (uboot,
	 * barebox), but RAUC accepts them with any: a custom backend's
	 * configuration (ST's OTA demo) may carry them. */
	if ((ret = get_uint(kf, g, "boot-attempts", 1, 255, &cfg->boot_attempts, err)) < 0)
		return ret;
	if ((ret = get_uint(kf, g, "boot-attempts-primary", 1, 255, &cfg->boot_attempts_primary,
			    err)) < 0)
		return ret;
	if ((ret = opt_bool(kf, g, "activate-installed", &cfg->activate_installed, err)) < 0)
		return ret;
	ret = keyfile_get_nonempty(kf, g, "min-bundle-version", &v, err);
	if (ret == 0) {
		if (!semver_valid(v))
			return key_error(kf, err, g, "min-bundle-version",
					 "'%s' is not a semantic version (MAJOR.MINOR.PATCH[-PRE])",
					 v);
		cfg->min_bundle_version = v;
	} else if (ret != -ENOENT) {
		return ret;
	}

	if ((ret = opt_string(kf, g, "variant-name", &cfg->variant_name, err)) < 0)
		return ret;
	if ((ret = opt_path(cfg, g, "variant-file", &cfg->variant_file, err)) < 0)
		return ret;
	if ((ret = opt_bool(kf, g, "variant-dtb", &cfg->variant_dtb, err)) < 0)
		return ret;
	if ((cfg->variant_name != NULL) + (cfg->variant_file != NULL) + cfg->variant_dtb > 1)
		return abota_error_set(err, -EINVAL,
				       "%s: [system]: variant-name, variant-file and variant-dtb are "
				       "mutually exclusive",
				       keyfile_name(kf));
	if ((ret = opt_bool(kf, g, "perform-pre-check", &cfg->perform_pre_check, err)) < 0)
		return ret;
	if ((ret = opt_bool(kf, g, "prevent-late-fallback", &cfg->prevent_late_fallback, err)) < 0)
		return ret;

	/* Bootloader-specific keys are only read for their bootloader, so a
	 * grubenv= on a uboot system is an invalid key as in RAUC. */
	if (cfg->bootloader == CONFIG_BOOT_GRUB &&
	    (ret = opt_path(cfg, g, "grubenv", &cfg->grubenv, err)) < 0)
		return ret;
	if (cfg->bootloader == CONFIG_BOOT_BAREBOX) {
		if ((ret = opt_string(kf, g, "barebox-statename", &cfg->barebox_statename, err)) <
		    0)
			return ret;
		if ((ret = opt_path(cfg, g, "barebox-dtbpath", &cfg->barebox_dtbpath, err)) < 0)
			return ret;
	}
	if (cfg->bootloader == CONFIG_BOOT_EFI &&
	    (ret = opt_bool(kf, g, "efi-use-bootnext", &cfg->efi_use_bootnext, err)) < 0)
		return ret;
	if (cfg->bootloader == CONFIG_BOOT_UBOOT &&
	    (ret = opt_path(cfg, g, "fw-env-config", &cfg->fw_env_config, err)) < 0)
		return ret;

	/* abota additions */
	if ((ret = opt_path(cfg, g, "cmdline-file", &cfg->cmdline_file, err)) < 0)
		return ret;
	if ((ret = opt_path(cfg, g, "boot-id-file", &cfg->boot_id_file, err)) < 0)
		return ret;
	if ((ret = opt_path(cfg, g, "boot-disk", &cfg->boot_disk, err)) < 0)
		return ret;
	return 0;
}

static int parse_keyring(struct system_config *cfg, struct abota_error *err)
{
	struct keyfile *kf = ((struct config_priv *)cfg->priv)->kf;
	const char *g = "keyring";
	struct sig_policy *k = &cfg->keyring;
	int ret;
	if (!keyfile_has_group(kf, g))
		return 0;
	keyfile_consume_group(kf, g);
	cfg->keyring_present = true;
	if ((ret = opt_path(cfg, g, "path", &k->keyring_path, err)) < 0)
		return ret;
	if ((ret = opt_path(cfg, g, "directory", &k->keyring_dir, err)) < 0)
		return ret;
	if ((ret = opt_bool(kf, g, "check-crl", &k->check_crl, err)) < 0)
		return ret;
	if ((ret = opt_bool(kf, g, "allow-partial-chain", &k->allow_partial_chain, err)) < 0)
		return ret;
	if ((ret = opt_bool(kf, g, "use-bundle-signing-time", &k->use_bundle_signing_time, err)) <
	    0)
		return ret;
	const char *v;
	ret = keyfile_get_nonempty(kf, g, "check-purpose", &v, err);
	if (ret == 0) {
		static const char *const ok[] = { "any", "codesign", "codesign-rauc", "smimesign",
						  "sslserver", "sslclient", NULL };
		bool good = false;
		for (size_t i = 0; ok[i]; i++)
			good |= !strcmp(v, ok[i]);
		if (!good)
			return key_error(kf, err, g, "check-purpose", "unknown purpose '%s'", v);
		k->check_purpose = v;
	} else if (ret != -ENOENT) {
		return ret;
	}
	const char *const *list;
	size_t n;
	ret = keyfile_get_list(kf, g, "allowed-signer-cns", &list, &n, err);
	if (ret == 0) {
		if (n == 0)
			return key_error(kf, err, g, "allowed-signer-cns", "empty list");
		k->allowed_signer_cns = list;
	} else if (ret != -ENOENT) {
		return ret;
	}
	return 0;
}

static int parse_handlers(struct system_config *cfg, struct abota_error *err)
{
	const char *g = "handlers";
	int ret;
	keyfile_consume_group(((struct config_priv *)cfg->priv)->kf, g); /* may be empty */
	if ((ret = opt_path(cfg, g, "system-info", &cfg->system_info_handler, err)) < 0 ||
	    (ret = opt_path(cfg, g, "pre-install", &cfg->pre_install_handler, err)) < 0 ||
	    (ret = opt_path(cfg, g, "post-install", &cfg->post_install_handler, err)) < 0 ||
	    (ret = opt_path(cfg, g, "bootloader-custom-backend", &cfg->custom_backend, err)) < 0)
		return ret;
	if (cfg->bootloader == CONFIG_BOOT_CUSTOM && !cfg->custom_backend)
		return abota_error_set(err, -EINVAL,
				       "%s: bootloader=custom needs [handlers] "
				       "bootloader-custom-backend",
				       keyfile_name(((struct config_priv *)cfg->priv)->kf));
	return 0;
}

static int parse_streaming(struct system_config *cfg, struct abota_error *err)
{
	struct keyfile *kf = ((struct config_priv *)cfg->priv)->kf;
	const char *g = "streaming";
	struct config_streaming *s = &cfg->streaming;
	int ret;
	if (!keyfile_has_group(kf, g))
		return 0;
	keyfile_consume_group(kf, g);
	if ((ret = opt_string(kf, g, "sandbox-user", &s->sandbox_user, err)) < 0 ||
	    (ret = opt_path(cfg, g, "tls-cert", &s->tls_cert, err)) < 0 ||
	    (ret = opt_path(cfg, g, "tls-key", &s->tls_key, err)) < 0 ||
	    (ret = opt_path(cfg, g, "tls-ca", &s->tls_ca, err)) < 0)
		return ret;
	const char *const *list;
	size_t n;
	ret = keyfile_get_list(kf, g, "send-headers", &list, &n, err);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	static const char *const ok[] = { "boot-id", "machine-id", "system-version", "serial",
					  "variant", "transaction-id", "uptime", NULL };
	for (size_t i = 0; i < n; i++) {
		bool good = false;
		for (size_t j = 0; ok[j]; j++)
			good |= !strcmp(list[i], ok[j]);
		if (!good)
			return key_error(kf, err, g, "send-headers", "unknown header '%s'", list[i]);
	}
	s->send_headers = list;
	return 0;
}

static int parse_fwu(struct system_config *cfg, struct abota_error *err)
{
	struct keyfile *kf = ((struct config_priv *)cfg->priv)->kf;
	const char *g = "fwu", *v;
	struct config_fwu *f = &cfg->fwu;
	int ret;
	if (!keyfile_has_group(kf, g))
		return 0;
	keyfile_consume_group(kf, g);
	f->present = true;
	/* A board name stays a name; only something that looks like a path is
	 * resolved against the config directory. */
	ret = keyfile_get_nonempty(kf, g, "board", &v, err);
	if (ret == 0) {
		if (strchr(v, '/') && (ret = get_path(cfg, g, "board", &f->board, err)) < 0)
			return ret;
		if (!strchr(v, '/'))
			f->board = v;
	} else if (ret != -ENOENT) {
		return ret;
	}
	/* metadata1/2: label, PARTUUID=... or path; only paths are resolved. */
	const char *mkeys[2] = { "metadata1", "metadata2" };
	const char **mout[2] = { &f->metadata1, &f->metadata2 };
	for (int i = 0; i < 2; i++) {
		ret = keyfile_get_nonempty(kf, g, mkeys[i], &v, err);
		if (ret == -ENOENT)
			continue;
		if (ret < 0)
			return ret;
		if (strchr(v, '/') && strncmp(v, "PARTUUID=", 9)) {
			if ((ret = get_path(cfg, g, mkeys[i], mout[i], err)) < 0)
				return ret;
		} else {
			*mout[i] = v;
		}
	}
	if (!f->metadata1 != !f->metadata2)
		return key_error(kf, err, g, f->metadata1 ? "metadata1" : "metadata2",
				 "metadata1 and metadata2 must be given together");
	if ((ret = opt_path(cfg, g, "fwu-info", &f->fwu_info, err)) < 0)
		return ret;
	if ((ret = get_size(kf, g, "fwu-info-offset", false, &f->fwu_info_offset, NULL, err)) < 0)
		return ret;
	if ((ret = get_uint(kf, g, "metadata-version", 1, 2, &f->metadata_version, err)) < 0)
		return ret;
	if ((ret = get_uint(kf, g, "min-trial-boots", 1, 15, &f->min_trial_boots, err)) < 0)
		return ret;
	/* BL2 flavour (trial counter rules); checked by the fwu backend with
	 * board_tfa_parse, here only that it is one of the names. */
	if ((ret = opt_string(kf, g, "tfa", &f->tfa, err)) < 0)
		return ret;
	if (f->tfa && strcmp(f->tfa, "r3") && strcmp(f->tfa, "upstream") && strcmp(f->tfa, "v1"))
		return key_error(kf, err, g, "tfa", "must be r3, upstream or v1");
	/* The simulator and boards/<name>/system.conf name the command line file
	 * here; it is the same setting as [system] cmdline-file. */
	if (keyfile_has_key(kf, g, "cmdline")) {
		/* [system] cmdline-file wins (it is also what -C overrides). */
		const char *alias;
		if ((ret = get_path(cfg, g, "cmdline", &alias, err)) < 0)
			return ret;
		if (cfg->cmdline_file)
			log_warning("%s: [fwu] cmdline ignored, [system] cmdline-file is set",
				    keyfile_name(kf));
		else
			cfg->cmdline_file = alias;
	}
	return 0;
}

/* Sections RAUC accepts for features abota does not have: refusing them is
 * safer than silently running without what the user configured. */
static int reject_unsupported(struct system_config *cfg, struct abota_error *err)
{
	struct keyfile *kf = ((struct config_priv *)cfg->priv)->kf;
	static const struct {
		const char *prefix;
		bool is_prefix;
		const char *why;
	} unsup[] = {
		{ "encryption", false, "encrypted (crypt) bundles are not supported by abota" },
		{ "casync", false, "casync bundles are not supported by abota" },
		{ "autoinstall", false, "autoinstall is not supported by abota" },
		{ "polling", false, "polling is not supported by abota (use abotad's hawkBit agent)" },
		{ "artifacts.", true, "artifact repositories are not supported by abota" },
	};
	for (size_t i = 0; i < keyfile_group_count(kf); i++) {
		const char *name = keyfile_group_name(kf, i);
		for (size_t j = 0; j < sizeof(unsup) / sizeof(unsup[0]); j++) {
			bool hit = unsup[j].is_prefix
					   ? !strncmp(name, unsup[j].prefix, strlen(unsup[j].prefix))
					   : !strcmp(name, unsup[j].prefix);
			if (hit)
				return abota_error_set(err, -ENOTSUP, "%s:%u: group [%s]: %s",
						       keyfile_name(kf), group_line(kf, name),
						       name, unsup[j].why);
		}
	}
	return 0;
}

/* [log.<name>]: RAUC's event loggers (event_log.h). */
static int parse_logger(struct system_config *cfg, const char *g, struct config_logger *l,
			struct abota_error *err)
{
	struct keyfile *kf = ((struct config_priv *)cfg->priv)->kf;
	static const char *const formats[] = { "readable", "short", "json", "json-pretty" };
	static const char *const types[] = { "install", "boot", "mark", "service", "writeslot" };
	const char *v;
	int ret;
	l->name = g + 4;
	if (!l->name[0])
		return abota_error_set(err, -EINVAL, "%s:%u: group [%s]: a logger needs a name: [log.<name>]",
				       keyfile_name(kf), group_line(kf, g), g);
	l->events = CONFIG_EVENT_ALL;
	l->max_files = 10;
	if ((ret = keyfile_get_nonempty(kf, g, "filename", &v, err)) < 0)
		return ret != -ENOENT ? ret
				      : abota_error_set(err, -EINVAL, "%s:%u: group [%s]: filename= is required",
							keyfile_name(kf), group_line(kf, g), g);
	if (v[0] == '/') {
		l->filename = v;
	} else {
		char *abs = NULL;
		if (!cfg->data_directory)
			return key_error(kf, err, g, "filename",
					 "'%s' is relative, and there is no data-directory it could be in", v);
		if (asprintf(&abs, "%s/%s", cfg->data_directory, v) < 0 || !own(cfg, abs))
			return abota_error_set(err, -ENOMEM, "out of memory");
		l->filename = abs;
	}
	const char *const *list = NULL;
	size_t n = 0;
	ret = keyfile_get_list(kf, g, "events", &list, &n, err);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	if (ret == 0) {
		l->events = 0;
		for (size_t i = 0; i < n; i++) {
			unsigned bit = 0;
			if (!strcmp(list[i], "all")) {
				if (n > 1)
					return key_error(kf, err, g, "events",
							 "'all' cannot be combined with other events");
				bit = CONFIG_EVENT_ALL;
			}
			for (size_t t = 0; !bit && t < sizeof(types) / sizeof(types[0]); t++)
				if (!strcmp(list[i], types[t]))
					bit = 1u << t;
			if (!bit)
				return key_error(kf, err, g, "events",
						 "unknown event type '%s' (install, boot, mark, service, writeslot or all)",
						 list[i]);
			l->events |= bit;
		}
		if (!l->events)
			return key_error(kf, err, g, "events", "empty list");
	}
	if ((ret = opt_string(kf, g, "format", &v, err)) < 0)
		return ret;
	if (keyfile_has_key(kf, g, "format")) {
		size_t f = 0;
		while (f < sizeof(formats) / sizeof(formats[0]) && strcmp(v, formats[f]))
			f++;
		if (f == sizeof(formats) / sizeof(formats[0]))
			return key_error(kf, err, g, "format",
					 "unknown format '%s' (readable, short, json or json-pretty)", v);
		l->format = (enum config_log_format)f;
	}
	ret = keyfile_get_nonempty(kf, g, "max-size", &v, err);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	if (ret == 0 && (parse_size(v, true, &l->max_size) < 0 || l->max_size == 0))
		return key_error(kf, err, g, "max-size",
				 "'%s' is not a size in bytes above 0 (suffixes K, M, G, T)", v);
	uint64_t files = 0;
	ret = keyfile_get_u64(kf, g, "max-files", &files, err);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	if (ret == 0) {
		if (files < 1 || files > 1000)
			return key_error(kf, err, g, "max-files", "%llu is not in 1..1000",
					 (unsigned long long)files);
		l->max_files = (unsigned)files;
	}
	return 0;
}

static int parse_loggers(struct system_config *cfg, struct abota_error *err)
{
	struct keyfile *kf = ((struct config_priv *)cfg->priv)->kf;
	size_t n = 0;
	for (size_t i = 0; i < keyfile_group_count(kf); i++)
		n += !strncmp(keyfile_group_name(kf, i), "log.", 4);
	if (n == 0)
		return 0;
	cfg->loggers = calloc(n, sizeof(*cfg->loggers));
	if (!cfg->loggers)
		return abota_error_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < keyfile_group_count(kf); i++) {
		const char *g = keyfile_group_name(kf, i);
		if (strncmp(g, "log.", 4) != 0)
			continue;
		int ret = parse_logger(cfg, g, &cfg->loggers[cfg->nloggers], err);
		if (ret < 0)
			return ret;
		for (size_t j = 0; j < cfg->nloggers; j++)
			if (!strcmp(cfg->loggers[j].filename, cfg->loggers[cfg->nloggers].filename))
				return key_error(kf, err, g, "filename",
						 "'%s' is also the file of [log.%s]",
						 cfg->loggers[j].filename, cfg->loggers[j].name);
		cfg->nloggers++;
	}
	return 0;
}

static bool type_needs_region(const char *t)
{
	return !strcmp(t, "boot-mbr-switch") || !strcmp(t, "boot-gpt-switch") ||
	       !strcmp(t, "boot-raw-fallback");
}

/* Parses one [slot.<class>.<idx>] group into s (parent resolved later). */
static int parse_slot(struct system_config *cfg, const char *group, struct slot *s,
		      const char **parent_name, struct abota_error *err)
{
	struct keyfile *kf = ((struct config_priv *)cfg->priv)->kf;
	const char *name = group + 5; /* after "slot." */
	const char *dot = strchr(name, '.');
	int ret;
	keyfile_consume_group(kf, group);
	/* exactly two dots: slot.<class>.<idx>, class and idx non-empty */
	if (!dot || dot == name || !dot[1] || strchr(dot + 1, '.'))
		return abota_error_set(err, -EINVAL,
				       "%s:%u: invalid slot name [%s] (must be slot.<class>.<index>)",
				       keyfile_name(kf), group_line(kf, group), group);
	for (const char *p = dot + 1; *p; p++)
		if (!isdigit((unsigned char)*p))
			return abota_error_set(err, -EINVAL,
					       "%s:%u: invalid slot name [%s] (index must be a number)",
					       keyfile_name(kf), group_line(kf, group), group);
	unsigned long idx = strtoul(dot + 1, NULL, 10);
	if (idx > UINT_MAX)
		return abota_error_set(err, -EINVAL, "%s: [%s]: slot index out of range",
				       keyfile_name(kf), group);
	char *cls = strndup(name, (size_t)(dot - name));
	if (!cls || !own(cfg, cls))
		return abota_error_set(err, -ENOMEM, "out of memory");
	s->name = name;
	s->sclass = cls;
	s->index = (unsigned)idx;
	s->type = "raw";
	s->install_same = true;

	/* device=PARTLABEL=x / PARTUUID=x name a partition of the boot disk
	 * (lib/system/slot_device.c), not a path relative to the config. */
	const char *dv = NULL;
	if ((ret = opt_string(kf, group, "device", &dv, err)) < 0)
		return ret;
	if (dv && (!strncmp(dv, "PARTLABEL=", 10) || !strncmp(dv, "PARTUUID=", 9)))
		s->device = dv;
	else if ((ret = opt_path(cfg, group, "device", &s->device, err)) < 0)
		return ret;
	if ((ret = opt_string(kf, group, "partition", &s->partition, err)) < 0)
		return ret;
	if (s->device && s->partition)
		return key_error(kf, err, group, "partition", "device and partition are exclusive");
	if (!s->device && !s->partition)
		return abota_error_set(err, -EINVAL, "%s:%u: slot [%s]: missing key 'device'",
				       keyfile_name(kf), group_line(kf, group), group);
	/* Without [system] boot-disk the boot disk is derived from root= at
	 * run time (slot_device.c), refusing when that is ambiguous. */

	const char *v;
	ret = keyfile_get_nonempty(kf, group, "type", &v, err);
	if (ret == 0) {
		if (!slot_type_valid(v))
			return key_error(kf, err, group, "type", "Unsupported slot type '%s'", v);
		s->type = v;
	} else if (ret != -ENOENT) {
		return ret;
	}
	ret = keyfile_get_nonempty(kf, group, "bootname", &v, err);
	if (ret == 0) {
		for (const char *p = v; *p; p++)
			if (isspace((unsigned char)*p))
				return key_error(kf, err, group, "bootname",
						 "'%s' contains whitespace", v);
		s->bootname = v;
	} else if (ret != -ENOENT) {
		return ret;
	}
	if ((ret = opt_string(kf, group, "parent", parent_name, err)) < 0)
		return ret;
	if (*parent_name && s->bootname)
		return key_error(kf, err, group, "bootname",
				 "a slot with a parent must not have a bootname");
	if ((ret = opt_string(kf, group, "description", &s->description, err)) < 0 ||
	    (ret = opt_bool(kf, group, "readonly", &s->readonly, err)) < 0 ||
	    (ret = opt_bool(kf, group, "allow-mounted", &s->allow_mounted, err)) < 0 ||
	    (ret = opt_bool(kf, group, "resize", &s->resize, err)) < 0 ||
	    (ret = opt_string(kf, group, "extra-mkfs-opts", &s->extra_mkfs_opts, err)) < 0 ||
	    (ret = opt_string(kf, group, "extra-mount-opts", &s->extra_mount_opts, err)) < 0)
		return ret;
	if (s->extra_mount_opts) {
		/* checked now, not when a hook's mount fails halfway through an install */
		unsigned long flags;
		char *data = NULL;
		struct abota_error e = { 0 };
		if (slot_mount_options(s->extra_mount_opts, &flags, &data, &e) < 0)
			return key_error(kf, err, group, "extra-mount-opts", "%s",
					 strncmp(e.msg, "extra-mount-opts: ", 18) ? e.msg : e.msg + 18);
		free(data);
	}

	/* install-same and its deprecated spellings (same meaning: true =
	 * always write); giving more than one is ambiguous. */
	static const char *const same_keys[] = { "install-same", "force-install-same",
						 "ignore-checksum" };
	const char *same_seen = NULL;
	for (size_t i = 0; i < 3; i++) {
		if (!keyfile_has_key(kf, group, same_keys[i]))
			continue;
		if (same_seen)
			return key_error(kf, err, group, same_keys[i], "conflicts with '%s'",
					 same_seen);
		if ((ret = keyfile_get_bool(kf, group, same_keys[i], &s->install_same, err)) < 0)
			return ret;
		if (i > 0)
			log_warning("%s: [%s] %s is deprecated, use install-same", keyfile_name(kf),
				    group, same_keys[i]);
		same_seen = same_keys[i];
	}

	/* Region keys only exist for the boot-* switch types (RAUC reads
	 * them only there, so elsewhere they are invalid keys). */
	if (type_needs_region(s->type)) {
		bool has_start = false, has_size = false;
		if ((ret = get_size(kf, group, "region-start", true, &s->region_start, &has_start,
				    err)) < 0 ||
		    (ret = get_size(kf, group, "region-size", true, &s->region_size, &has_size,
				    err)) < 0)
			return ret;
		if (!has_start || !has_size)
			return abota_error_set(err, -EINVAL,
					       "%s:%u: slot [%s]: type %s needs region-start and "
					       "region-size",
					       keyfile_name(kf), group_line(kf, group), group,
					       s->type);
		if (s->region_size == 0)
			return key_error(kf, err, group, "region-size", "must not be 0");
		if (s->region_start > UINT64_MAX - s->region_size)
			return key_error(kf, err, group, "region-size", "region end overflows");
		s->has_region = true;
	}
	if (!strcmp(s->type, "boot-emmc") &&
	    (ret = get_size(kf, group, "size-limit", true, &s->size_limit, NULL, err)) < 0)
		return ret;
	if (cfg->bootloader == CONFIG_BOOT_EFI) {
		/* Accepted for RAUC compatibility; the efi backend is not implemented. */
		const char *ign;
		if ((ret = opt_string(kf, group, "efi-loader", &ign, err)) < 0 ||
		    (ret = opt_string(kf, group, "efi-cmdline", &ign, err)) < 0)
			return ret;
	}
	return 0;
}

static int parse_slots(struct system_config *cfg, struct abota_error *err)
{
	struct keyfile *kf = ((struct config_priv *)cfg->priv)->kf;
	size_t n = 0, ng = keyfile_group_count(kf);
	const char **parents = NULL;
	int ret = 0;
	for (size_t i = 0; i < ng; i++)
		if (!strncmp(keyfile_group_name(kf, i), "slot.", 5))
			n++;
	if (n == 0) {
		cfg->nslots = 0;
		return 0;
	}
	cfg->slots = calloc(n, sizeof(*cfg->slots));
	parents = calloc(n, sizeof(*parents));
	if (!cfg->slots || !parents) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	size_t k = 0;
	for (size_t i = 0; i < ng; i++) {
		const char *gname = keyfile_group_name(kf, i);
		if (strncmp(gname, "slot.", 5))
			continue;
		if ((ret = parse_slot(cfg, gname, &cfg->slots[k], &parents[k], err)) < 0)
			goto out;
		k++;
	}
	cfg->nslots = n;
	/* Cross-slot rules: parents exist and are parent-less (which also
	 * excludes loops and self-parents), bootnames are unique. */
	for (size_t i = 0; i < n; i++) {
		struct slot *s = &cfg->slots[i];
		char group[256];
		snprintf(group, sizeof(group), "slot.%s", s->name);
		if (parents[i]) {
			struct slot *p = slot_find(cfg, parents[i]);
			if (!p) {
				ret = key_error(kf, err, group, "parent",
						"parent slot '%s' not found", parents[i]);
				goto out;
			}
			if (p == s) {
				ret = key_error(kf, err, group, "parent",
						"slot '%s' cannot be its own parent", s->name);
				goto out;
			}
			if (parents[p - cfg->slots]) {
				ret = key_error(kf, err, group, "parent",
						"parent slot '%s' has a parent itself ('%s'); only "
						"one level of parents is allowed",
						p->name, parents[p - cfg->slots]);
				goto out;
			}
			s->parent = p;
		}
		if (s->bootname) {
			for (size_t j = 0; j < i; j++) {
				if (cfg->slots[j].bootname &&
				    !strcmp(cfg->slots[j].bootname, s->bootname)) {
					ret = key_error(kf, err, group, "bootname",
							"bootname '%s' is already used by slot %s",
							s->bootname, cfg->slots[j].name);
					goto out;
				}
			}
		}
	}
out:
	free(parents);
	return ret;
}

static int apply_overrides(struct keyfile *kf, const char *const *overrides,
			   struct abota_error *err)
{
	for (size_t i = 0; overrides && overrides[i]; i++) {
		const char *o = overrides[i];
		const char *colon = strchr(o, ':');
		const char *eq = colon ? strchr(colon + 1, '=') : NULL;
		if (!colon || !eq || colon == o || eq == colon + 1)
			return abota_error_set(err, -EINVAL,
					       "invalid config override '%s' (SECTION:KEY=VALUE)", o);
		char *sec = strndup(o, (size_t)(colon - o));
		char *key = strndup(colon + 1, (size_t)(eq - colon - 1));
		int ret = (sec && key) ? keyfile_set_string(kf, sec, key, eq + 1) : -ENOMEM;
		free(sec);
		free(key);
		if (ret < 0)
			return abota_error_set(err, ret, "config override '%s' failed", o);
	}
	return 0;
}

void config_free(struct system_config *cfg)
{
	if (!cfg)
		return;
	struct config_priv *p = cfg->priv;
	if (p) {
		for (size_t i = 0; i < p->nowned; i++)
			free(p->owned[i]);
		free(p->owned);
		keyfile_free(p->kf);
		free(p);
	}
	free(cfg->slots);
	free(cfg->loggers);
	free(cfg);
}

static int config_build(struct keyfile *kf, const char *name, const char *dir,
			const char *const *overrides, struct system_config **out,
			struct abota_error *err)
{
	struct system_config *cfg = calloc(1, sizeof(*cfg));
	struct config_priv *p = calloc(1, sizeof(*p));
	int ret;
	if (!cfg || !p) {
		free(cfg);
		free(p);
		keyfile_free(kf);
		return abota_error_set(err, -ENOMEM, "out of memory");
	}
	p->kf = kf;
	cfg->priv = p;
	/* RAUC's defaults */
	cfg->mount_prefix = "/mnt/rauc";
	cfg->bundle_formats = CONFIG_FORMAT_ALL;
	cfg->max_bundle_download_size = 8ull * 1024 * 1024;
	cfg->max_bundle_signature_size = 64 * 1024;
	cfg->boot_attempts = 3;
	cfg->boot_attempts_primary = 3;
	cfg->activate_installed = true;
	cfg->grubenv = "/boot/grub/grubenv";
	cfg->efi_use_bootnext = true;
	cfg->fw_env_config = "/etc/fw_env.config";
	cfg->streaming.sandbox_user = "nobody";

	if (!own(cfg, strdup(name)) || !own(cfg, strdup(dir))) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	cfg->path = p->owned[0];
	cfg->dir = p->owned[1];

	if ((ret = apply_overrides(kf, overrides, err)) < 0)
		goto out;
	if ((ret = reject_unsupported(cfg, err)) < 0)
		goto out;
	if ((ret = parse_system(cfg, err)) < 0)
		goto out;
	if ((ret = parse_keyring(cfg, err)) < 0)
		goto out;
	if ((ret = parse_handlers(cfg, err)) < 0)
		goto out;
	if ((ret = parse_streaming(cfg, err)) < 0)
		goto out;
	if ((ret = parse_fwu(cfg, err)) < 0)
		goto out;
	if ((ret = parse_slots(cfg, err)) < 0)
		goto out;
	if ((ret = parse_loggers(cfg, err)) < 0)
		goto out;
	if (!cfg->cmdline_file)
		cfg->cmdline_file = "/proc/cmdline";
	if ((ret = keyfile_check_consumed(kf, err)) < 0)
		goto out;
	*out = cfg;
	cfg = NULL;
out:
	config_free(cfg);
	return ret;
}

int config_parse(const char *data, size_t len, const char *name, const char *dir,
		 const char *const *overrides, struct system_config **out,
		 struct abota_error *err)
{
	struct keyfile *kf = NULL;
	int ret = keyfile_parse(data, len, name, &kf, err);
	if (ret < 0)
		return ret;
	return config_build(kf, name, dir ? dir : ".", overrides, out, err);
}

int config_load_with_overrides(const char *path, const char *const *overrides,
			       struct system_config **out, struct abota_error *err)
{
	char *dir = NULL, *found = NULL, *abs = NULL;
	struct keyfile *kf = NULL;
	int ret;
	if (!path) {
		/* First existing of the default locations (abota's, then RAUC's). */
		char *list = strdup(CONFIG_DEFAULT_PATHS), *save = NULL;
		if (!list)
			return abota_error_set(err, -ENOMEM, "out of memory");
		for (char *t = strtok_r(list, ":", &save); t; t = strtok_r(NULL, ":", &save)) {
			if (access(t, F_OK) == 0) {
				found = strdup(t);
				break;
			}
		}
		free(list);
		if (!found)
			return abota_error_set(err, -ENOENT,
					       "no system.conf found (looked in %s); use -c",
					       CONFIG_DEFAULT_PATHS);
		path = found;
	}
	/* Relative paths in the file are relative to its directory, so the
	 * directory must be absolute even if the file was given relatively.
	 * path is not NULL here (given, or the default found above); cppcheck loses
	 * the assignment in the branch. */
	/* cppcheck-suppress nullPointerRedundantCheck */
	abs = realpath(path, NULL);
	if (!abs) {
		ret = abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	dir = strdup(abs);
	if (!dir) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	ret = keyfile_load(path, CONFIG_MAX_SIZE, &kf, err);
	if (ret < 0)
		goto out;
	ret = config_build(kf, path, dir, overrides, out, err);
out:
	free(dir);
	free(abs);
	free(found);
	return ret;
}

int config_load_auto(const char *path, const char *const *overrides,
		     struct system_config **out, struct abota_error *err)
{
	bool any = path || (overrides && overrides[0]);
	if (!any) {
		char *list = strdup(CONFIG_DEFAULT_PATHS), *save = NULL;
		if (!list)
			return abota_error_set(err, -ENOMEM, "out of memory");
		for (char *t = strtok_r(list, ":", &save); t && !any; t = strtok_r(NULL, ":", &save))
			any = access(t, F_OK) == 0;
		free(list);
	}
	if (!any) {
		*out = NULL;
		return 0;
	}
	return config_load_with_overrides(path, overrides, out, err);
}

int config_load(const char *path, struct system_config **out, struct abota_error *err)
{
	return config_load_with_overrides(path, NULL, out, err);
}
