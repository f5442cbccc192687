/* event_log.h - RAUC's event loggers ([log.<name>] in system.conf): a
 * lasting history of installs, boots and slot marking, kept apart from the
 * journal, which rotates.
 *
 * Each event is one record: a message, a type and RAUC's structured fields
 * (MESSAGE_ID, TRANSACTION_ID, BUNDLE_HASH, SLOT_NAME ...).  It is appended
 * to every configured logger that takes its type, in the logger's format
 * (readable, short, json, json-pretty), with rotation by size.  A record is
 * written with one append under the file's lock and made durable before
 * event_log_emit() returns: a power cut loses no event that was reported.
 *
 * Logging never fails what is being logged: a logger that cannot write (disk
 * full, bad path) is reported once per process with a warning and skipped
 * from then on, as RAUC marks it broken. */
#ifndef ABOTA_EVENT_LOG_H
#define ABOTA_EVENT_LOG_H

#include <stddef.h>
#include <time.h>

#include "abota/config.h"

struct event_field {
	const char *key;   /* RAUC's field name, e.g. "BUNDLE_HASH" */
	const char *value; /* NULL: left out */
};

/* RAUC's MESSAGE_IDs (journald catalog ids), so tools that filter RAUC's
 * events find abota's. */
#define EVENT_ID_INSTALL_STARTED   "b05410e8a93345389cd061aab1e9516d"
#define EVENT_ID_INSTALL_SUCCEEDED "0163db5468ac4237b090d28490c301ed"
#define EVENT_ID_INSTALL_FAILED    "c48141f7fd49443aafff862b4809168f"
#define EVENT_ID_INSTALL_REJECTED  "60bea7e4fea549ccad68af457308b13a"
#define EVENT_ID_BOOTED            "e60e0addd3454cb8b796eae0d497af96"
#define EVENT_ID_MARKED_ACTIVE     "8b5e7435e1054d86858278e7544fe6da"
#define EVENT_ID_MARKED_GOOD       "3304e15a7a9a447885eb208ba7ae3a05"
#define EVENT_ID_MARKED_BAD        "ccb0e584a47043d7a5316994bce77ae5"

/* Appends the event (type: one CONFIG_EVENT_* bit; message_id may be NULL)
 * to the loggers of cfg that take it.  No loggers: nothing happens. */
void event_log_emit(const struct system_config *cfg, unsigned type, const char *message_id,
		    const struct event_field *fields, size_t n_fields, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* The record as it is written (with its trailing newline), for time `when`:
 * 0 or -ENOMEM.  Exposed for the unit tests. */
int event_log_format(enum config_log_format format, time_t when, unsigned type,
		     const char *message_id, const char *message,
		     const struct event_field *fields, size_t n_fields, char **out);

/* Name of an event type bit ("install", "boot", "mark", "service", "writeslot"). */
const char *event_log_type_name(unsigned type);

/* The boot event, for a service that starts: if this boot (boot id read from
 * cfg->boot_id_file) was not logged yet, logs "Booted into <slot>" and
 * remembers the boot id in the data directory (boot events need one).
 * booted may be NULL (booted from elsewhere). */
void event_log_boot(const struct system_config *cfg, const char *slot_name,
		    const char *bootname, const char *bundle_hash);

#endif
