/* cmd_install.c - abota install and abota write-slot. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abota/config.h"
#include "abota/install.h"
#include "abota/write_slot.h"
#include "cli.h"
#include "cli_http.h"
#include "dbus_client.h"
#include "sdbus_dl.h"

enum {
	OPT_IGNORE_COMPATIBLE = 1000,
	OPT_IGNORE_VERSION,
	OPT_FORCE,
	OPT_TRANSACTION,
	OPT_REQUIRE_HASH,
	OPT_PROGRESS,
	OPT_KEYRING,
	OPT_DBUS,
	OPT_HANDLER_ARGS,
	OPT_HELP,
};

struct progress_state {
	bool tty;
	bool enabled;
	unsigned last_pct;
	char last_msg[128];
};

/* A bar on a terminal, plain "NN% message" lines (as rauc) otherwise. */
static void on_progress(void *ctx, const struct install_progress *p)
{
	struct progress_state *ps = ctx;
	if (!ps->enabled)
		return;
	if (ps->tty) {
		unsigned width = 40, fill = p->percent * width / 100;
		char bar[64];
		memset(bar, '#', fill);
		memset(bar + fill, '.', width - fill);
		bar[width] = '\0';
		fprintf(stdout, "\r[%s] %3u%% %-40.40s", bar, p->percent, p->message);
		if (p->percent == 100)
			fputc('\n', stdout);
		fflush(stdout);
		return;
	}
	if (p->percent == ps->last_pct && strcmp(p->message, ps->last_msg) == 0)
		return;
	/* One line per percent step or message change; bytes stay for the bar. */
	ps->last_pct = p->percent;
	snprintf(ps->last_msg, sizeof(ps->last_msg), "%s", p->message);
	fprintf(stdout, "%3u%% %s\n", p->percent, p->message);
	fflush(stdout);
}

int cmd_install(struct cli_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ignore-compatible", no_argument, NULL, OPT_IGNORE_COMPATIBLE },
		{ "ignore-version-limit", no_argument, NULL, OPT_IGNORE_VERSION },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "transaction-id", required_argument, NULL, OPT_TRANSACTION },
		{ "require-manifest-hash", required_argument, NULL, OPT_REQUIRE_HASH },
		{ "progress", no_argument, NULL, OPT_PROGRESS },
		{ "keyring", required_argument, NULL, OPT_KEYRING },
		{ "dbus", required_argument, NULL, OPT_DBUS },
		/* rauc install's own option (builds without the service) */
		{ "handler-args", required_argument, NULL, OPT_HANDLER_ARGS },
		CLI_HTTP_OPTIONS,
		{ "help", no_argument, NULL, OPT_HELP },
		{ 0 },
	};
	struct install_opts io = { 0 };
	struct progress_state ps = { .tty = isatty(STDOUT_FILENO) == 1, .last_pct = 101 };
	const char *keyring = g->keyring;
	const char *dbus = NULL;
	struct cli_http http = { 0 };
	int c;
	while ((c = cli_getopt(g, "install", argc, argv, "h", opts)) != -1) {
		int r = cli_http_option(&http, "install", c, optarg);
		if (r < 0)
			return 2;
		if (r > 0)
			continue;
		switch (c) {
		case OPT_IGNORE_COMPATIBLE: io.ignore_compatible = true; break;
		case OPT_IGNORE_VERSION: io.ignore_version_limit = true; break;
		case OPT_FORCE: io.force = true; break;
		case OPT_TRANSACTION: io.transaction_id = optarg; break;
		case OPT_REQUIRE_HASH: io.require_manifest_hash = optarg; break;
		case OPT_PROGRESS: ps.enabled = true; break;
		case OPT_KEYRING: keyring = optarg; break;
		case OPT_DBUS: dbus = optarg; break;
		case OPT_HANDLER_ARGS:
			/* RAUC appends ARGS to a bundle's full custom [handler]; abota
			 * refuses such bundles: refuse the option, never drop it. */
			return cli_usage_error("install", "--handler-args is not supported: abota "
					       "does not run a bundle's full custom [handler] (it "
					       "refuses those bundles), so there is nothing to pass "
					       "'%s' to", optarg);
		case 'h':
		case OPT_HELP:
			printf("Usage: abota [-c system.conf] [--keyring K] [--override-boot-slot S] install [OPTIONS] BUNDLE\n\n"
			       "Installs BUNDLE into the inactive slot group and selects it for a trial boot.\n\n"
			       "      --keyring=FILE               trust this keyring instead of system.conf's\n"
			       "      --ignore-compatible          install a bundle for another compatible\n"
			       "      --ignore-version-limit       allow downgrades and versions below min-bundle-version\n"
			       "      --force                      install although the FWU trial budget is short\n"
			       "      --transaction-id=UUID        transaction id to record (default: new)\n"
			       "      --require-manifest-hash=H    install only the bundle with this manifest hash\n"
			       "      --progress                   show progress (a bar on a terminal)\n"
			       "      --dbus=system|session|none|ADDRESS  install through the D-Bus service\n"
			       "                                   (de.pengutronix.rauc) on this bus if one runs\n"
			       "                                   (default: system, unless -c, -C, --keyring or\n"
			       "                                   --override-boot-slot name a local setup); none:\n"
			       "                                   always install in this process\n"
			       CLI_HTTP_HELP);
			return 0;
		default:
			return 2;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("install", "expected one BUNDLE argument");
	if (cli_http_check(&http, "install") < 0)
		return 2;
	io.bundle = argv[optind];
	/* A running service (abotad or rauc) installs, one install at a time;
	 * local configuration options mean "this process, this setup". */
	bool local = g->conf || g->n_confopt || keyring || g->override_boot_slot;
	if (dbus && local && strcmp(dbus, "none") != 0)
		return cli_usage_error("install", "--dbus=%s: the service uses its own configuration; "
				       "drop -c/-C/--keyring/--override-boot-slot", dbus);
	if (!dbus && !local)
		dbus = "system";
	if (dbus && strcmp(dbus, "system") && strcmp(dbus, "session") && strcmp(dbus, "none") &&
	    !(strchr(dbus, ':') && strchr(dbus, '=')))
		return cli_usage_error("install", "--dbus: '%s' is not system, session, none or a "
				       "D-Bus address", dbus);
	if (dbus && strcmp(dbus, "none") != 0) {
		struct dbus_install_req dr = {
			.bus = dbus, .bundle = io.bundle, .ignore_compatible = io.ignore_compatible,
			.ignore_version_limit = io.ignore_version_limit, .force = io.force,
			.transaction_id = io.transaction_id,
			.require_manifest_hash = io.require_manifest_hash, .http = &http.opts,
			.progress = on_progress, .progress_ctx = &ps,
		};
		int code = 0;
		const char *why = NULL;
		if (sdbus_dl_load(&why) < 0)
			/* as with no bus: the install lock still keeps a service
			 * and this process from installing at the same time */
			fprintf(stderr, "abota install: %s; installing in this process\n", why);
		else if (dbus_client_install(&dr, &code) == 0)
			return code;
		/* nobody serving: install here */
	}
	io.http = &http.opts;
	io.override_boot_slot = g->override_boot_slot;
	io.progress = on_progress;
	io.progress_ctx = &ps;
	struct abota_error err = { 0 };
	struct system_config *cfg = NULL;
	if (config_load_with_overrides(g->conf, g->confopt, &cfg, &err) < 0)
		return cli_fail("install", &err);
	struct sig_policy pol;
	if (keyring) {
		/* --keyring replaces the keyring files but keeps the policy flags */
		pol = cfg->keyring;
		pol.keyring_path = keyring;
		pol.keyring_dir = NULL;
		io.keyring = &pol;
	}
	struct install_result res;
	int ret = install_run(cfg, &io, &res, &err);
	config_free(cfg);
	if (ret < 0) {
		if (ps.tty && ps.enabled)
			fputc('\n', stdout);
		fprintf(stderr, "Installing `%s` failed\n", io.bundle);
		return cli_fail("install", &err);
	}
	char resumed[96] = "";
	if (res.resumed)
		snprintf(resumed, sizeof(resumed),
			 " (%u resumed after an interruption, %llu bytes not written again)",
			 res.resumed, (unsigned long long)res.resumed_bytes);
	char adaptive[96] = "";
	if (res.adaptive)
		snprintf(adaptive, sizeof(adaptive), " (adaptive: %llu bytes taken from local slots)",
			 (unsigned long long)res.adaptive_reused_bytes);
	/* activate-installed=false: written, but the boot is left alone */
	char next[160] = "";
	if (res.target[0] && res.activated)
		snprintf(next, sizeof(next), ", next boot tries %s", res.target);
	else if (res.target[0])
		snprintf(next, sizeof(next),
			 ", %s not activated (activate-installed=false; `abota status mark-active` "
			 "selects it)",
			 res.target);
	printf("Installing `%s` succeeded: %u image%s written%s%s%s\n", io.bundle, res.written,
	       res.written == 1 ? "" : "s", resumed, adaptive, next);
	return 0;
}

/* RAUC's write-slot: one local image into one slot, no bundle (write_slot.h
 * says what abota keeps of the install's safety). */
int cmd_write_slot(struct cli_globals *g, int argc, char **argv)
{
	enum { OPT_IMAGE_TYPE = 1100 };
	static const struct option opts[] = {
		{ "image-type", required_argument, NULL, OPT_IMAGE_TYPE },
		{ "progress", no_argument, NULL, OPT_PROGRESS },
		{ "help", no_argument, NULL, OPT_HELP },
		{ 0 },
	};
	struct write_slot_opts wo = { 0 };
	struct progress_state ps = { .tty = isatty(STDOUT_FILENO) == 1, .last_pct = 101 };
	int c;
	while ((c = cli_getopt(g, "write-slot", argc, argv, "h", opts)) != -1) {
		switch (c) {
		case OPT_IMAGE_TYPE: wo.image_type = optarg; break;
		case OPT_PROGRESS: ps.enabled = true; break;
		case 'h':
		case OPT_HELP:
			printf("Usage: abota [-c system.conf] [--override-boot-slot S] write-slot [OPTIONS] SLOTNAME IMAGE\n\n"
			       "Writes IMAGE (a file or block device) into slot SLOTNAME (as in system.conf,\n"
			       "e.g. rootfs.1) without a bundle: for development and manufacturing.  The slot\n"
			       "must not belong to the booted group; a bootable group is marked bad first and\n"
			       "stays bad (`abota status mark-active` selects it).  Every segment is read back\n"
			       "from the medium and checked; the slot status records the image's SHA-256.\n\n"
			       "      --image-type=TYPE  raw, ext4, vfat, squashfs or tar (default: from IMAGE's\n"
			       "                         name: *.img raw, *.ext4, *.vfat, *.squashfs, *.tar.gz ...)\n"
			       "      --progress         show progress (a bar on a terminal)\n");
			return 0;
		default:
			return 2;
		}
	}
	if (argc - optind < 1)
		return cli_usage_error("write-slot", "a target slot name must be given");
	if (argc - optind < 2)
		return cli_usage_error("write-slot", "an image must be given");
	if (argc - optind > 2)
		return cli_usage_error("write-slot", "excess argument: %s", argv[optind + 2]);
	wo.slot = argv[optind];
	wo.image = argv[optind + 1];
	wo.override_boot_slot = g->override_boot_slot;
	wo.progress = on_progress;
	wo.progress_ctx = &ps;
	struct abota_error err = { 0 };
	struct system_config *cfg = NULL;
	if (config_load_with_overrides(g->conf, g->confopt, &cfg, &err) < 0)
		return cli_fail("write-slot", &err);
	struct write_slot_result res;
	int ret = write_slot_run(cfg, &wo, &res, &err);
	config_free(cfg);
	if (ps.tty && ps.enabled && ret < 0)
		fputc('\n', stdout);
	if (ret < 0)
		return cli_fail("write-slot", &err);
	printf("Slot %s %s: %llu bytes, sha256 %s\n", wo.slot,
	       res.extracted ? "written (archive extracted into a new file system)"
			     : "written and verified",
	       (unsigned long long)res.size, res.sha256);
	if (res.marked_bad[0])
		printf("Slot group %s is marked bad; `abota status mark-active %s` selects it for the next boot\n",
		       res.marked_bad, res.root_slot);
	return 0;
}
