/* abotad - the abota device daemon: takes updates from a hawkBit (DDI)
 * server.  The hawkBit loop is lib/hawkbit/agent.c (hawkbit_agent.h); this
 * file only parses options, handles signals and waits between iterations
 * with poll(2), so another event source (a D-Bus connection) can be added
 * to the same pollfd set.  Logs go to stderr (the journal under systemd). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "abota/hawkbit_agent.h"
#include "abota/hawkbit_config.h"
#include "abota/log.h"
#include "abota/powercut.h"
#include "agent_dbus.h"
#include "dbus_service.h"

#define MAX_CONFOPT 32

/* exit codes, as rauc-hawkbit-updater's where they overlap */
enum { EXIT_OK = 0, EXIT_RUN_FAILED = 1, EXIT_USAGE = 2, EXIT_CONFIG = 4 };

static struct hawkbit_agent *g_agent;
/* RAUC's D-Bus API (dbus_service.h), NULL without --dbus */
static struct dbus_service *g_dbus;
static int g_wake[2] = { -1, -1 };
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	int saved = errno;
	g_stop = 1;
	if (g_agent)
		hawkbit_agent_request_stop(g_agent);
	if (g_wake[1] >= 0) {
		ssize_t n = write(g_wake[1], "x", 1);
		(void)n;
	}
	errno = saved;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: abotad [OPTIONS]\n\n"
		"Polls a hawkBit (DDI) server and installs the updates it assigns.\n\n"
		"  -c, --config=FILE          hawkbit.conf (default " HAWKBIT_CONFIG_DEFAULT_PATH ")\n"
		"  -s, --system-config=FILE   system.conf (default: abota's search path)\n"
		"  -C, --confopt=SEC:KEY=VAL  override a system.conf key (repeatable)\n"
		"      --keyring=FILE         trust this keyring instead of system.conf's\n"
		"      --dbus=BUS             also serve RAUC's D-Bus API (de.pengutronix.rauc) on\n"
		"                             BUS: system, session, none (default) or an address\n"
		"      --installer=WHO        who installs: in-process (default; abotad must be root)\n"
		"                             or dbus[:BUS]: the root service `abota service` on BUS\n"
		"                             (default system), so abotad runs unprivileged\n"
		"      --state-dir=DIR        the agent's state (hawkbit.state) in DIR instead of\n"
		"                             system.conf's data-directory (an unprivileged agent)\n"
		"  -r, --run-once             one iteration (poll and what it asks for), then exit\n"
		"      --check-config         validate the configuration and exit\n"
		"  -d, --debug                debug logging\n"
		"      --version              print the version\n"
		"  -h, --help                 this help\n");
}

static enum log_level level_of(const char *s)
{
	if (!s || !strcmp(s, "info") || !strcmp(s, "message"))
		return LOG_LEVEL_INFO;
	if (!strcmp(s, "debug"))
		return LOG_LEVEL_DEBUG;
	if (!strcmp(s, "warning"))
		return LOG_LEVEL_WARNING;
	return LOG_LEVEL_ERROR;
}

/* Waits up to s seconds or until a signal arrives.  The place where a D-Bus
 * fd joins: add it to fds and dispatch it here. */
static void wait_next(uint64_t s)
{
	struct timespec end, now;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += (time_t)s;
	while (!g_stop) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		long long ms = (long long)(end.tv_sec - now.tv_sec) * 1000 +
			       (end.tv_nsec - now.tv_nsec) / 1000000;
		if (ms <= 0)
			return;
		/* poll ignores the fd -1 entry when there is no D-Bus service */
		struct pollfd fds[2] = { { .fd = g_wake[0], .events = POLLIN },
					 { .fd = g_dbus ? dbus_service_get_fd(g_dbus) : -1,
					   .events = POLLIN } };
		int n = poll(fds, 2, ms > 60000 ? 60000 : (int)ms);
		if (n > 0 && (fds[0].revents & POLLIN)) {
			char buf[16];
			while (read(g_wake[0], buf, sizeof(buf)) > 0)
				;
		}
		if (n > 0 && g_dbus && (fds[1].revents & POLLIN)) {
			struct abota_error e = { 0 };
			if (dbus_service_process(g_dbus, &e) < 0) {
				log_error("abotad: %s", e.msg);
				g_stop = 1;
			}
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "system-config", required_argument, NULL, 's' },
		{ "confopt", required_argument, NULL, 'C' },
		{ "keyring", required_argument, NULL, 'k' },
		{ "dbus", required_argument, NULL, 'D' },
		{ "installer", required_argument, NULL, 'I' },
		{ "state-dir", required_argument, NULL, 'S' },
		{ "run-once", no_argument, NULL, 'r' },
		{ "once", no_argument, NULL, 'r' },
		{ "check-config", no_argument, NULL, 'K' },
		{ "debug", no_argument, NULL, 'd' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct hawkbit_agent_opts ao = { 0 };
	const char *confopt[MAX_CONFOPT + 1] = { 0 };
	unsigned nconfopt = 0;
	bool once = false, check = false, debug = false;
	const char *dbus_bus = NULL;
	const char *installer = NULL;
	static char state_buf[4200];
	const char *state_opt = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "c:s:C:rdh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': ao.hawkbit_conf = optarg; break;
		case 's': ao.system_conf = optarg; break;
		case 'C':
			if (nconfopt >= MAX_CONFOPT) {
				fprintf(stderr, "abotad: too many -C options\n");
				return EXIT_USAGE;
			}
			confopt[nconfopt++] = optarg;
			break;
		case 'k': ao.keyring = optarg; break;
		case 'D': dbus_bus = optarg; break;
		case 'I': installer = optarg; break;
		case 'S':
			/* the agent keeps its state in system.conf's data-directory:
			 * an override of that key, for the agent only */
			if (optarg[0] != '/' ||
			    (size_t)snprintf(state_buf, sizeof(state_buf), "system:data-directory=%s",
					     optarg) >= sizeof(state_buf)) {
				fprintf(stderr, "abotad: --state-dir: '%s' is not an absolute path\n",
					optarg);
				return EXIT_USAGE;
			}
			state_opt = state_buf;
			break;
		case 'r': once = true; break;
		case 'K': check = true; break;
		case 'd': debug = true; break;
		case 'V': printf("abotad %s\n", ABOTA_VERSION); return EXIT_OK;
		case 'h': usage(stdout); return EXIT_OK;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "abotad: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	const char *dbus_installer = NULL;
	if (installer && !strncmp(installer, "dbus", 4) &&
	    (installer[4] == '\0' || installer[4] == ':')) {
		dbus_installer = installer[4] ? installer + 5 : "system";
		if (!*dbus_installer) {
			fprintf(stderr, "abotad: --installer=dbus: missing bus after ':'\n");
			return EXIT_USAGE;
		}
	} else if (installer && strcmp(installer, "in-process") != 0) {
		fprintf(stderr, "abotad: --installer: '%s' is not in-process or dbus[:BUS]\n",
			installer);
		return EXIT_USAGE;
	}
	if (dbus_installer && dbus_bus && strcmp(dbus_bus, "none") != 0) {
		fprintf(stderr, "abotad: --dbus=%s serves the install API in this process; with "
				"--installer=dbus the root service does (use one or the other)\n",
			dbus_bus);
		return EXIT_USAGE;
	}
	/* The service's confopts are the caller's; the state directory is the
	 * agent's own. */
	const char *agent_confopt[MAX_CONFOPT + 2] = { 0 };
	for (unsigned i = 0; i < nconfopt; i++)
		agent_confopt[i] = confopt[i];
	if (state_opt)
		agent_confopt[nconfopt] = state_opt;
	ao.confopt = agent_confopt;
	ao.check_only = check;
	struct dbus_service_opts dso = { .system_conf = ao.system_conf, .confopt = confopt,
					 .keyring = ao.keyring };
	bool dbus_none = true;
	struct abota_error derr = { 0 };
	if (dbus_bus && dbus_service_parse_bus(dbus_bus, &dso, &dbus_none, &derr) < 0) {
		fprintf(stderr, "abotad: %s\n", derr.msg);
		return EXIT_USAGE;
	}
	if (debug)
		log_set_level(LOG_LEVEL_DEBUG);
	else if (!getenv("ABOTA_LOG"))
		log_set_level(LOG_LEVEL_INFO);
	signal(SIGPIPE, SIG_IGN);

	struct abota_error err = { 0 };
	struct hawkbit_agent *a = NULL;
	struct agent_installer *inst = NULL;
	if (dbus_installer && agent_installer_dbus(dbus_installer, &inst, &err) < 0) {
		fprintf(stderr, "abotad: %s\n", err.msg);
		return EXIT_RUN_FAILED;
	}
	ao.installer = inst;
	if (hawkbit_agent_new(&ao, &a, &err) < 0) {
		fprintf(stderr, "abotad: %s\n", err.msg);
		agent_installer_free(inst);
		return err.code == -EBUSY ? EXIT_RUN_FAILED : EXIT_CONFIG;
	}
	const struct hawkbit_config *hc = hawkbit_agent_config(a);
	if (!debug && !getenv("ABOTA_LOG"))
		log_set_level(level_of(hc->log_level));
	if (check) {
		printf("abotad: %s: OK (server %s, target %s)\n", hc->path, hc->server,
		       hc->target_name);
		hawkbit_agent_free(a);
		agent_installer_free(inst);
		return EXIT_OK;
	}
	if (pipe2(g_wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		fprintf(stderr, "abotad: pipe: %s\n", strerror(errno));
		hawkbit_agent_free(a);
		agent_installer_free(inst);
		return EXIT_RUN_FAILED;
	}
	if (!dbus_none && !once && dbus_service_open(&dso, &g_dbus, &err) < 0) {
		fprintf(stderr, "abotad: %s\n", err.msg);
		hawkbit_agent_free(a);
		agent_installer_free(inst);
		return EXIT_CONFIG;
	}
	g_agent = a;
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	log_info("abotad %s: polling %s as '%s'", ABOTA_VERSION, hc->server, hc->target_name);
	int rc = EXIT_OK;
	while (!g_stop) {
		uint64_t next = 0;
		/* one installer at a time: the agent waits while a D-Bus client's
		 * install runs (the bus is not served during an iteration, so no
		 * D-Bus install can start while the agent installs) */
		if (g_dbus && dbus_service_busy(g_dbus)) {
			wait_next(1);
			continue;
		}
		abota_error_clear(&err);
		int ret = hawkbit_agent_iterate(a, &next, &err);
		if (ret == -ECANCELED && powercut_happened()) {
			/* simulated power cut: exit as the process would have died */
			fprintf(stderr, "abotad: %s\n", err.msg);
			hawkbit_agent_free(a);
			agent_installer_free(inst);
			return POWERCUT_EXIT_STATUS;
		}
		if (ret < 0) {
			log_error("%s", err.msg);
			rc = EXIT_RUN_FAILED;
		} else {
			rc = EXIT_OK;
		}
		if (once)
			break;
		log_debug("next poll in %llu s", (unsigned long long)next);
		wait_next(next);
	}
	if (g_stop)
		log_info("abotad: stopping (signal); state saved");
	g_agent = NULL;
	dbus_service_close(g_dbus);
	g_dbus = NULL;
	hawkbit_agent_free(a);
	agent_installer_free(inst);
	close(g_wake[0]);
	close(g_wake[1]);
	return g_stop && !once ? EXIT_OK : rc;
}
