/* cli.h - shared pieces of the abota command line: global options, verb table,
 * output formats.  Each verb group lives in its own cmd_<group>.c. */
#ifndef ABOTA_CLI_H
#define ABOTA_CLI_H

#include <getopt.h>
#include <stdbool.h>

#include "abota/error.h"

enum cli_output_format {
	CLI_OUTPUT_READABLE,
	CLI_OUTPUT_JSON,
	CLI_OUTPUT_JSON_PRETTY,
	CLI_OUTPUT_SHELL,
};

#define CLI_MAX_CONFOPT 32
#define CLI_MAX_INTERMEDIATE 32

/* Global options.  As with RAUC (GOption), they may come before or after the
 * verb:  abota -c system.conf --override-boot-slot=A install B
 *        abota install -c system.conf B
 * When one is given twice, the later one wins (-C and --intermediate add up). */
struct cli_globals {
	const char *conf;             /* -c/--conf */
	const char *keyring;          /* --keyring (verbs may also take it) */
	const char *override_boot_slot;
	bool debug;
	/* -C/--confopt SECTION:KEY=VALUE overrides of system.conf (NULL-terminated);
	 * --mount=DIR is one more entry "system:mountprefix=DIR" at its place. */
	const char *confopt[CLI_MAX_CONFOPT + 1];
	unsigned n_confopt;
	unsigned n_mount;             /* how many confopt entries came from --mount */
	/* --intermediate=FILE before the verb (NULL-terminated); the verbs that have
	 * an --intermediate of their own (bundle, info, extract, resign) take these
	 * first. */
	const char *intermediate[CLI_MAX_INTERMEDIATE + 1];
	unsigned n_intermediate;
	/* storage of the --mount entry: one buffer, since every --mount entry
	 * sets the same key and only the last one given counts */
	char mount_opt[4200];
};

/* The global options' getopt values (beyond any char and verb enum). */
enum {
	CLI_GOPT_CONF = 0x10000,
	CLI_GOPT_CONFOPT,
	CLI_GOPT_KEYRING,
	CLI_GOPT_OVERRIDE_BOOT_SLOT,
	CLI_GOPT_DEBUG,
	CLI_GOPT_MOUNT,
	CLI_GOPT_INTERMEDIATE,
};

/* Applies global option c (a CLI_GOPT_* value) with argument arg.  Returns 0,
 * or 2 after printing one usage error (bad --mount, too many -C). */
int cli_global_option(struct cli_globals *g, const char *verb, int c, const char *arg);

/* Copies the long global options (not --intermediate, --version, --help)
 * into out, which has room for cap entries; returns how many. */
size_t cli_global_long_options(struct option *out, size_t cap);

/* getopt_long() for a verb that also accepts the global options after the
 * verb (-c/--conf, -C/--confopt, --keyring, --override-boot-slot, -d/--debug,
 * --mount).  An option the verb defines itself (e.g. install --keyring) stays
 * the verb's; the others are applied to *g and skipped.  Returns what
 * getopt_long() returns for the verb's own options, -1 at the end, '?' for
 * an unknown option or missing argument (getopt printed why), and
 * CLI_GETOPT_REPORTED after a bad global option's usage error was printed
 * (the verb just returns 2). */
#define CLI_GETOPT_REPORTED (-2)
int cli_getopt(struct cli_globals *g, const char *verb, int argc, char **argv,
	       const char *shortopts, const struct option *longopts);

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
int cmd_extract_signature(struct cli_globals *g, int argc, char **argv);
int cmd_replace_signature(struct cli_globals *g, int argc, char **argv);
int cmd_fwu(struct cli_globals *g, int argc, char **argv);
int cmd_install(struct cli_globals *g, int argc, char **argv);
int cmd_write_slot(struct cli_globals *g, int argc, char **argv);
int cmd_status(struct cli_globals *g, int argc, char **argv);
int cmd_hawkbit(struct cli_globals *g, int argc, char **argv);
int cmd_service(struct cli_globals *g, int argc, char **argv);

#endif
