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
	{ "extract-signature", cmd_extract_signature,
	  "verify a bundle and write its CMS signature to a file (offline signing)" },
	{ "replace-signature", cmd_replace_signature,
	  "put a CMS signature made elsewhere (HSM) onto a bundle" },
	{ "install", cmd_install, "install a bundle into the inactive slots (trial boot next)" },
	{ "write-slot", cmd_write_slot, "write an image into one slot, without a bundle" },
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
	/* verb "" is a global option before the verb */
	const char *sep = verb[0] ? " " : "";
	va_start(ap, fmt);
	fprintf(stderr, "abota%s%s: ", sep, verb);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'abota %s%s--help')\n", verb, sep);
	return 2;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: abota [GLOBAL OPTIONS] VERB [OPTIONS] [ARGS]\n\n"
		   "Global options (before or after the verb; given twice, the later wins):\n"
		   "  -c, --conf=FILE              system configuration (default /etc/abota/system.conf)\n"
		   "  -C, --confopt=SEC:KEY=VALUE  override a system.conf key (repeatable)\n"
		   "      --mount=DIR              mount prefix for this run (system.conf's mountprefix)\n"
		   "      --keyring=FILE           keyring (trusted CA certificates, PEM)\n"
		   "      --intermediate=FILE      intermediate certificates for bundle, info, extract,\n"
		   "                               resign, extract-/replace-signature: as their own\n"
		   "                               --intermediate (repeatable)\n"
		   "      --override-boot-slot=S   treat S as the booted slot\n"
		   "  -d, --debug                  debug logging\n"
		   "      --version                print the version\n"
		   "  -h, --help                   this help\n\nVerbs:\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(f, "  %-18s %s\n", verbs[i].name, verbs[i].summary);
}

int main(int argc, char **argv)
{
	struct cli_globals g = { 0 };
	/* the globals the verbs also take, and those only before the verb */
	struct option opts[16];
	size_t n = cli_global_long_options(opts, 12);
	opts[n++] = (struct option){ "intermediate", required_argument, NULL, CLI_GOPT_INTERMEDIATE };
	opts[n++] = (struct option){ "version", no_argument, NULL, 'V' };
	opts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	opts[n] = (struct option){ 0 };
	/* '+' stops at the verb: its options are parsed by the verb (which also
	 * takes the global ones, see cli_getopt()). */
	int c;
	while ((c = getopt_long(argc, argv, "+c:C:dh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': c = CLI_GOPT_CONF; break;
		case 'C': c = CLI_GOPT_CONFOPT; break;
		case 'd': c = CLI_GOPT_DEBUG; break;
		case 'V':
			printf("abota %s\n", ABOTA_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			if (c >= CLI_GOPT_CONF && c <= CLI_GOPT_INTERMEDIATE)
				break;
			usage(stderr);
			return 2;
		}
		if (cli_global_option(&g, "", c, optarg) != 0)
			return 2;
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *name = argv[optind];
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(verbs[i].name, name) == 0) {
			/* RAUC uses --intermediate only when it signs (bundle, resign);
			 * abota's info/extract/resign also take it for verification.
			 * Anywhere else it would be silently ignored: refuse it. */
			if (g.n_intermediate && strcmp(name, "bundle") && strcmp(name, "info") &&
			    strcmp(name, "extract") && strcmp(name, "resign") &&
			    strcmp(name, "extract-signature") && strcmp(name, "replace-signature"))
				return cli_usage_error(name, "--intermediate is not used by '%s' "
						       "(only by bundle, info, extract, resign, "
						       "extract-signature and replace-signature)",
						       name);
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
