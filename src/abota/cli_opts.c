/* cli_opts.c - the global options of the abota CLI, accepted before and
 * after the verb (RAUC's GOption parser takes them anywhere on the line). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abota/log.h"
#include "cli.h"

/* The globals a verb's getopt loop also takes.  --intermediate is not here:
 * every verb that uses it has an --intermediate of its own, and for the
 * others it means nothing (main.c refuses it before them). */
static const struct option global_opts[] = {
	{ "conf", required_argument, NULL, CLI_GOPT_CONF },
	{ "confopt", required_argument, NULL, CLI_GOPT_CONFOPT },
	{ "keyring", required_argument, NULL, CLI_GOPT_KEYRING },
	{ "override-boot-slot", required_argument, NULL, CLI_GOPT_OVERRIDE_BOOT_SLOT },
	{ "debug", no_argument, NULL, CLI_GOPT_DEBUG },
	{ "mount", required_argument, NULL, CLI_GOPT_MOUNT },
};
#define N_GLOBAL (sizeof(global_opts) / sizeof(global_opts[0]))

/* Short forms of the globals: -c FILE, -C SEC:KEY=VALUE, -d. */
static const struct {
	char c;
	int val;
	bool arg;
} global_short[] = {
	{ 'c', CLI_GOPT_CONF, true },
	{ 'C', CLI_GOPT_CONFOPT, true },
	{ 'd', CLI_GOPT_DEBUG, false },
};
#define N_SHORT (sizeof(global_short) / sizeof(global_short[0]))

/* --mount=DIR: RAUC's mount prefix for this run.  A relative DIR is taken
 * from the current directory (as RAUC, which uses it as given), not from
 * system.conf's directory as a relative mountprefix= in the file would be. */
static int set_mount(struct cli_globals *g, const char *verb, const char *arg)
{
	char cwd[4096] = "";
	if (arg[0] == '\0')
		return cli_usage_error(verb, "--mount: empty directory");
	for (const char *p = arg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return cli_usage_error(verb, "--mount: control character in '%s'", arg);
	if (arg[0] != '/' && !getcwd(cwd, sizeof(cwd)))
		return cli_usage_error(verb, "--mount: cannot resolve '%s': current directory: %s",
				       arg, strerror(errno));
	int n = snprintf(g->mount_opt, sizeof(g->mount_opt), "system:mountprefix=%s%s%s", cwd,
			 cwd[0] ? "/" : "", arg);
	if (n < 0 || (size_t)n >= sizeof(g->mount_opt))
		return cli_usage_error(verb, "--mount: path too long");
	const char *dir = strchr(g->mount_opt, '=') + 1;
	struct stat st;
	/* It need not exist yet (mount points are created under it), but an
	 * existing non-directory can never work: say so now. */
	if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
		return cli_usage_error(verb, "--mount: '%s' is not a directory", dir);
	if (g->n_confopt >= CLI_MAX_CONFOPT)
		return cli_usage_error(verb, "too many -C/--mount options (at most %d)",
				       CLI_MAX_CONFOPT);
	g->confopt[g->n_confopt++] = g->mount_opt;
	g->n_mount++;
	return 0;
}

size_t cli_global_long_options(struct option *out, size_t cap)
{
	size_t n = N_GLOBAL < cap ? N_GLOBAL : cap;
	memcpy(out, global_opts, n * sizeof(*out));
	return n;
}

int cli_global_option(struct cli_globals *g, const char *verb, int c, const char *arg)
{
	switch (c) {
	case CLI_GOPT_CONF:
		if (arg[0] == '\0')
			return cli_usage_error(verb, "-c/--conf: empty file name");
		g->conf = arg;
		return 0;
	case CLI_GOPT_CONFOPT:
		if (g->n_confopt >= CLI_MAX_CONFOPT)
			return cli_usage_error(verb, "too many -C/--mount options (at most %d)",
					       CLI_MAX_CONFOPT);
		g->confopt[g->n_confopt++] = arg;
		return 0;
	case CLI_GOPT_KEYRING: g->keyring = arg; return 0;
	case CLI_GOPT_OVERRIDE_BOOT_SLOT:
		if (arg[0] == '\0')
			return cli_usage_error(verb, "--override-boot-slot: empty slot name");
		g->override_boot_slot = arg;
		return 0;
	case CLI_GOPT_DEBUG:
		g->debug = true;
		log_set_level(LOG_LEVEL_DEBUG);
		return 0;
	case CLI_GOPT_MOUNT: return set_mount(g, verb, arg);
	case CLI_GOPT_INTERMEDIATE:
		if (g->n_intermediate >= CLI_MAX_INTERMEDIATE)
			return cli_usage_error(verb, "too many --intermediate options (at most %d)",
					       CLI_MAX_INTERMEDIATE);
		g->intermediate[g->n_intermediate++] = arg;
		return 0;
	}
	return cli_usage_error(verb, "internal: unknown global option %d", c);
}

#define MAX_MERGED 128

int cli_getopt(struct cli_globals *g, const char *verb, int argc, char **argv,
	       const char *shortopts, const struct option *longopts)
{
	/* Built on the first call of a verb's loop: the verb's options first, then
	 * the globals whose names the verb does not define itself (its own
	 * --keyring must stay its own, with its meaning). */
	static struct option merged[MAX_MERGED];
	static char merged_short[128];
	static const struct option *built_for;
	if (built_for != longopts) {
		size_t n = 0;
		for (const struct option *o = longopts; o && o->name; o++) {
			if (n + N_GLOBAL + 1 >= MAX_MERGED) {
				cli_usage_error(verb, "internal: too many options");
				return CLI_GETOPT_REPORTED;
			}
			merged[n++] = *o;
		}
		size_t nverb = n;
		for (size_t i = 0; i < N_GLOBAL; i++) {
			bool dup = false;
			for (size_t k = 0; k < nverb; k++)
				dup = dup || strcmp(merged[k].name, global_opts[i].name) == 0;
			if (!dup)
				merged[n++] = global_opts[i];
		}
		memset(&merged[n], 0, sizeof(merged[n]));
		int len = snprintf(merged_short, sizeof(merged_short), "%s", shortopts);
		for (size_t i = 0; i < N_SHORT && len >= 0 && (size_t)len + 3 < sizeof(merged_short);
		     i++) {
			if (strchr(shortopts, global_short[i].c))
				continue;
			merged_short[len++] = global_short[i].c;
			if (global_short[i].arg)
				merged_short[len++] = ':';
			merged_short[len] = '\0';
		}
		built_for = longopts;
	}
	for (;;) {
		int idx = -1;
		int c = getopt_long(argc, argv, merged_short, merged, &idx);
		if (c == -1 || c == '?' || c == ':')
			return c;
		int gval = 0;
		if (idx >= 0) {
			/* a long option: global if it is one of the appended entries */
			if (c >= CLI_GOPT_CONF && c <= CLI_GOPT_INTERMEDIATE)
				gval = c;
		} else {
			for (size_t i = 0; i < N_SHORT; i++)
				if (c == global_short[i].c && !strchr(shortopts, c))
					gval = global_short[i].val;
		}
		if (!gval)
			return c;
		if (cli_global_option(g, verb, gval, optarg) != 0)
			return CLI_GETOPT_REPORTED;
	}
}
