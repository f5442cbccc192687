/* cmd_service.c - `abota service`: RAUC's D-Bus service (as `rauc service`)
 * without the hawkBit agent; abotad embeds the same module
 * (src/abotad/dbus_service.c). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../abotad/dbus_service.h"
#include "abota/log.h"
#include "cli.h"
#include "sdbus_dl.h"

static volatile sig_atomic_t g_stop;
static int g_wake[2] = { -1, -1 };

static void on_signal(int sig)
{
	(void)sig;
	int saved = errno;
	g_stop = 1;
	ssize_t n = write(g_wake[1], "x", 1);
	(void)n;
	errno = saved;
}

int cmd_service(struct cli_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dbus", required_argument, NULL, 'b' },
		{ "install-group", required_argument, NULL, 'G' },
		/* rauc service's own option; abota refuses it, see below */
		{ "handler-args", required_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct dbus_service_opts so = { .bus = DBUS_BUS_SYSTEM };
	struct abota_error err = { 0 };
	bool none = false;
	int c;
	while ((c = cli_getopt(g, "service", argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'b':
			if (dbus_service_parse_bus(optarg, &so, &none, &err) < 0 || none)
				return cli_usage_error("service", "%s",
						       none ? "--dbus=none makes no sense here"
							    : err.msg);
			break;
		case 'G': so.install_group = optarg; break;
		case 'A':
			/* RAUC appends ARGS to the command line of a bundle's full
			 * custom [handler]; abota refuses such bundles, so the
			 * arguments would go nowhere: say so instead of dropping them. */
			return cli_usage_error("service", "--handler-args is not supported: abota does "
					       "not run a bundle's full custom [handler] (it refuses "
					       "those bundles), so there is nothing to pass '%s' to",
					       optarg);
		case 'h':
			printf("Usage: abota [GLOBAL OPTIONS] service [--dbus=system|session|ADDRESS] "
			       "[--install-group=GROUP]\n\n"
			       "Serves RAUC's D-Bus API (de.pengutronix.rauc) until SIGTERM.\n\n"
			       "The global options may also follow the verb, as with rauc:\n"
			       "  abota --mount=/run/rauc/mnt service --override-boot-slot=A\n");
			return 0;
		default: return 2;
		}
	}
	if (optind < argc)
		return cli_usage_error("service", "unexpected argument '%s'", argv[optind]);
	/* DBUS_STARTER_BUS_TYPE=session (D-Bus activation), as rauc */
	const char *starter = getenv("DBUS_STARTER_BUS_TYPE");
	if (so.bus == DBUS_BUS_SYSTEM && starter && !strcmp(starter, "session"))
		so.bus = DBUS_BUS_SESSION;
	so.system_conf = g->conf;
	so.confopt = g->confopt;
	so.keyring = g->keyring;
	so.override_boot_slot = g->override_boot_slot;
	if (!g->debug && !getenv("ABOTA_LOG"))
		log_set_level(LOG_LEVEL_INFO);
	const char *why = NULL;
	if (sdbus_dl_load(&why) < 0) {
		abota_error_set(&err, -ENOTSUP, "%s", why);
		return cli_fail("service", &err);
	}
	if (pipe2(g_wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		abota_error_set(&err, -errno, "pipe: %s", strerror(errno));
		return cli_fail("service", &err);
	}
	struct dbus_service *s = NULL;
	if (dbus_service_open(&so, &s, &err) < 0)
		return cli_fail("service", &err);
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	log_info("abota service: serving %s", DBUS_SERVICE_NAME);
	int ret = 0;
	while (!g_stop) {
		struct pollfd fds[2] = { { .fd = dbus_service_get_fd(s), .events = POLLIN },
					 { .fd = g_wake[0], .events = POLLIN } };
		if (poll(fds, 2, -1) < 0 && errno != EINTR) {
			ret = abota_error_set(&err, -errno, "poll: %s", strerror(errno));
			break;
		}
		if ((ret = dbus_service_process(s, &err)) < 0)
			break;
	}
	dbus_service_close(s);
	close(g_wake[0]);
	close(g_wake[1]);
	return ret < 0 ? cli_fail("service", &err) : 0;
}
