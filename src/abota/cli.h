/* cli.h - shared pieces of the abota command line: global options, verb table,
 * output formats.  Each verb group lives in its own cmd_<group>.c. */
#ifndef ABOTA_CLI_H
#define ABOTA_CLI_H

#include <stdbool.h>

#include "abota/error.h"

enum cli_output_format {
	CLI_OUTPUT_READABLE,
	CLI_OUTPUT_JSON,
	CLI_OUTPUT_JSON_PRETTY,
	CLI_OUTPUT_SHELL,
};

#define CLI_MAX_CONFOPT 32

/* Global options, given before the verb as with RAUC:
 *   abota -c system.conf --keyring K --override-boot-slot=A install B */
struct cli_globals {
	const char *conf;             /* -c/--conf */
	const char *keyring;          /* --keyring (verbs may also take it) */
	const char *override_boot_slot;
	bool debug;
	/* -C/--confopt SECTION:KEY=VALUE overrides of system.conf (NULL-terminated) */
	const char *confopt[CLI_MAX_CONFOPT + 1];
	unsigned n_confopt;
};

/* A verb returns the process exit code: 0 success, 1 failure, 2 usage. */
typedef int (*cli_verb_fn)(struct cli_globals *g, int argc, char **argv);

/* Parses "readable|json|json-pretty|shell". Returns false on anything else. */
bool cli_parse_output_format(const char *s, enum cli_output_format *out);

/* Prints "abota <verb>: <msg>" to stderr and returns 1. */
int cli_fail(const char *verb, const struct abota_error *err);
/* Prints a usage error and returns 2. */
int cli_usage_error(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Verbs (one file each group). */
int cmd_bundle(struct cli_globals *g, int argc, char **argv);
int cmd_info(struct cli_globals *g, int argc, char **argv);
int cmd_extract(struct cli_globals *g, int argc, char **argv);
int cmd_resign(struct cli_globals *g, int argc, char **argv);
int cmd_fwu(struct cli_globals *g, int argc, char **argv);
int cmd_install(struct cli_globals *g, int argc, char **argv);
int cmd_status(struct cli_globals *g, int argc, char **argv);
int cmd_hawkbit(struct cli_globals *g, int argc, char **argv);
int cmd_service(struct cli_globals *g, int argc, char **argv);

#endif
