/* dbus_client.h - `abota install` through a running D-Bus service (abotad's
 * or RAUC's de.pengutronix.rauc): InstallBundle, Progress forwarded, wait
 * for Completed. */
#ifndef ABOTA_DBUS_CLIENT_H
#define ABOTA_DBUS_CLIENT_H

#include <stdbool.h>

#include <systemd/sd-bus.h>

#include "abota/http_source.h"
#include "abota/install.h"

struct dbus_install_req {
	const char *bus;           /* "system" | "session" | a D-Bus address */
	const char *bundle;        /* absolute path or URL */
	bool ignore_compatible, ignore_version_limit, force;
	const char *transaction_id, *require_manifest_hash;
	const struct http_opts *http;
	install_progress_fn progress;
	void *progress_ctx;
};

/* Returns 1 when no service owns de.pengutronix.rauc on the bus (or there is
 * no bus): the caller installs by itself.  Otherwise the install ran
 * through the service; *exit_code is 0 (success), 1 (install failed or was
 * refused; message printed) or 2 (D-Bus error, service vanished), RAUC's
 * CLI codes. */
int dbus_client_install(const struct dbus_install_req *req, int *exit_code);

/* The parts, for other clients (abotad's D-Bus installer, src/abotad/agent_dbus.c). */

/* Connects to kind: "system", "session" or a D-Bus address; a negative errno. */
int dbus_client_connect(const char *kind, sd_bus **out);

/* InstallBundle(bundle, the options of req) on the service, Progress
 * forwarded to req->progress, then waits for Completed.  0 when the service
 * ran the install: *result is Completed's code, and when it is not 0,
 * *last_error the service's LastError (malloc'ed; NULL if it gave none).
 * Else a negative errno: the call was refused (e set: busy, bad arguments,
 * access denied), -ECONNRESET the service went away during the install, or
 * the connection failed.  (req->bus is not used: bus is the connection.) */
int dbus_client_run(sd_bus *bus, const struct dbus_install_req *req, const char *bundle,
		    sd_bus_error *e, int *result, char **last_error);

#endif
