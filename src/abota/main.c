/* main.c - global options and verb dispatch of the abota CLI. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abota/log.h"
#include "abota/powercut.h"
#include "cli.h"

struct verb {
	const char *name;
	cli_verb_fn fn;
	const char *summary;
};

static const struct verb verbs[] = {
	{ "bundle", cmd_bundle, "create a signed bundle from a content directory" },
	{ "info", cmd_info, "verify a bundle and show its manifest" },
	{ "extract", cmd_extract, "verify a bundle and extract its contents" },
	{ "resign", cmd_resign, "replace a bundle's signature" },
	{ "install", cmd_install, "install a bundle into the inactive slots (trial boot next)" },
	{ "status", cmd_status, "show slot states; mark-good|mark-bad|mark-active" },
	{ "fwu", cmd_fwu, "FWU metadata tools (dump, create, set-active, accept, reject, repair)" },
	{ "hawkbit", cmd_hawkbit, "hawkBit agent (abotad) status" },
	{ "service", cmd_service, "serve RAUC's D-Bus API (de.pengutronix.rauc), as `rauc service`" },
};

bool cli_parse_output_format(const char *s, enum cli_output_format *out)
{
	if (strcmp(s, "readable") == 0)
		*out = CLI_OUTPUT_READABLE;
	else if (strcmp(s, "json") == 0)
		*out = CLI_OUTPUT_JSON;
	else if (strcmp(s, "json-pretty") == 0)
		*out = CLI_OUTPUT_JSON_PRETTY;
	else if (strcmp(s, "shell") == 0)
		*out = CLI_OUTPUT_SHELL;
	else
		return false;
	return true;
}

int cli_fail(const char *verb, const struct abota_error *err)
{
	fprintf(stderr, "abota %s: %s\n", verb, err->msg[0] ? err->msg : "failed");
	/* A simulated power cut (powercut.h): the process "lost power". */
	return err->code == -ECANCELED && powercut_happened() ? POWERCUT_EXIT_STATUS : 1;
}

int cli_usage_error(const char *verb, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "abota %s: ", verb);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'abota %s --help')\n", verb);
	return 2;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: abota [GLOBAL OPTIONS] VERB [OPTIONS] [ARGS]\n\n"
		   "Global options:\n"
		   "  -c, --conf=FILE              system configuration (default /etc/abota/system.conf)\n"
		   "  -C, --confopt=SEC:KEY=VALUE  override a system.conf key (repeatable)\n"
		   "      --keyring=FILE           keyring (trusted CA certificates, PEM)\n"
		   "      --override-boot-slot=S   treat S as the booted slot\n"
		   "  -d, --debug                  debug logging\n"
		   "      --version                print the version\n"
		   "  -h, --help                   this help\n\nVerbs:\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
}

int main(int argc, char **argv)
{
	struct cli_globals g = { 0 };
	static const struct option opts[] = {
		{ "conf", required_argument, NULL, 'c' },
		{ "confopt", required_argument, NULL, 'C' },
		{ "keyring", required_argument, NULL, 'k' },
		{ "override-boot-slot", required_argument, NULL, 'o' },
		{ "debug", no_argument, NULL, 'd' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	/* '+' stops at the verb: its options are parsed by the verb. */
	int c;
	while ((c = getopt_long(argc, argv, "+c:C:dh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': g.conf = optarg; break;
		case 'C':
			if (g.n_confopt >= CLI_MAX_CONFOPT) {
				fprintf(stderr, "abota: too many -C options\n");
				return 2;
			}
			g.confopt[g.n_confopt++] = optarg;
			break;
		case 'k': g.keyring = optarg; break;
		case 'o': g.override_boot_slot = optarg; break;
		case 'd':
			g.debug = true;
			log_set_level(LOG_LEVEL_DEBUG);
			break;
		case 'V':
			printf("abota %s\n", ABOTA_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *name = argv[optind];
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(verbs[i].name, name) == 0) {
			int vargc = argc - optind;
			char **vargv = argv + optind;
			optind = 0; /* reset getopt for the verb (GNU: 0 re-initialises) */
			return verbs[i].fn(&g, vargc, vargv);
		}
	}
	fprintf(stderr, "abota: unknown verb '%s'\n", name);
	usage(stderr);
	return 2;
}
