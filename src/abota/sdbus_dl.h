/* sdbus_dl.h - the `abota` CLI's sd-bus, loaded from libsystemd.so.0 when
 * it first speaks D-Bus.
 *
 * Only `abota service` and `abota install` without a local setup (which
 * hands the install to a running service) use D-Bus; every other command --
 * status, mark-good at boot, bundle info, an install with -c -- never does.
 * Linking libsystemd made each of them load it and the four libraries it
 * needs (libgcrypt, libgpg-error, libcap, liblz4): 0.55 MiB of resident
 * memory and ~4 ms of a cold start for nothing.  sdbus_dl.c defines the
 * sd_bus_* / sd_event_* functions the CLI calls, with libsystemd's own
 * prototypes, and forwards each to libsystemd.so.0, opened on the first
 * call (as http_source.c does with libcurl).  abotad links libsystemd as
 * usual: it always serves D-Bus. */
#ifndef ABOTA_SDBUS_DL_H
#define ABOTA_SDBUS_DL_H

/* Loads libsystemd.so.0 once (thread-safe): 0, or -ENOTSUP with *why set
 * to a static sentence naming the library and what failed.  Every
 * forwarding function calls it too and fails with -ENOTSUP (or returns
 * NULL / does nothing, for the unref and free functions) when it fails, so
 * callers need it only to say why. */
int sdbus_dl_load(const char **why);

#endif
