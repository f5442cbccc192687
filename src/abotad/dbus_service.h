/* dbus_service.h - RAUC's D-Bus API (de.pengutronix.rauc.Installer on object
 * "/", bus name de.pengutronix.rauc) plus abota's own interface
 * org.abota.Device1, served with sd-bus.  See docs/dbus.md.
 *
 * The service runs inside an existing poll(2) loop: poll dbus_service_get_fd()
 * for POLLIN (it is an sd-event epoll fd that also covers timers and the
 * install worker's wake-ups) and call dbus_service_process() when it is
 * readable.  Installs run on a worker thread, so the bus stays responsive
 * (Progress, GetSlotStatus) while one runs; only one install at a time.
 */
#ifndef ABOTA_DBUS_SERVICE_H
#define ABOTA_DBUS_SERVICE_H

#include <stdbool.h>

#include "abota/error.h"

#define DBUS_SERVICE_NAME "de.pengutronix.rauc"

enum dbus_bus_kind {
	DBUS_BUS_SYSTEM,  /* $DBUS_SYSTEM_BUS_ADDRESS or the system bus */
	DBUS_BUS_SESSION, /* $DBUS_SESSION_BUS_ADDRESS */
	DBUS_BUS_ADDRESS, /* opts.address */
};

struct dbus_service_opts {
	enum dbus_bus_kind bus;
	const char *address;            /* for DBUS_BUS_ADDRESS */
	const char *system_conf;        /* NULL = abota's search path */
	const char *const *confopt;     /* "SECTION:KEY=VALUE" overrides, NULL-terminated */
	const char *keyring;            /* replaces system.conf's keyring files; NULL = keep */
	const char *override_boot_slot; /* RAUC's --override-boot-slot */
	/* Besides root, members of this group may install and mark (the
	 * D-Bus policy file must let them send, too); NULL = root only. */
	const char *install_group;
};

/* Parses "system" | "session" | "none" | a D-Bus address ("unix:path=...").
 * *none is set for "none" (no D-Bus service wanted). */
int dbus_service_parse_bus(const char *s, struct dbus_service_opts *o, bool *none,
			   struct abota_error *err);

struct dbus_service;

/* Loads the configuration (errors name the file and key), connects, exports
 * the object and takes the bus name (-EEXIST if another process has it). */
int dbus_service_open(const struct dbus_service_opts *opts, struct dbus_service **out,
		      struct abota_error *err);
/* The fd to poll for POLLIN. */
int dbus_service_get_fd(struct dbus_service *s);
/* Handles everything pending without blocking.  -ENOTCONN when the bus
 * connection is gone (the caller should stop or reconnect). */
int dbus_service_process(struct dbus_service *s, struct abota_error *err);
/* Whether an install is running. */
bool dbus_service_busy(struct dbus_service *s);
/* Waits for a running install to finish, releases the name, disconnects. */
void dbus_service_close(struct dbus_service *s);

#endif
