/* hawkbit_agent.h - the hawkBit DDI device agent behind abotad.
 *
 * One agent = one hawkbit.conf + one system.conf.  The daemon drives it with
 * hawkbit_agent_iterate() (one poll and whatever it asks for: configData,
 * cancel, deployment download / install, final report) and sleeps for the
 * returned interval; another event source (D-Bus) can share the same loop.
 * Durable state lives in <data-directory>/hawkbit.state (agent_state.h).
 *
 * The outcome is honest: after an install the action stays open
 * ("proceeding: installed, rebooting"); it is closed with success only once
 * the new bank booted and was accepted (mark-good), with failure and the
 * reason if the bootloader fell back.  See docs/hawkbit.md.
 */
#ifndef ABOTA_HAWKBIT_AGENT_H
#define ABOTA_HAWKBIT_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include "abota/agent_installer.h"
#include "abota/agent_state.h"
#include "abota/error.h"
#include "abota/hawkbit_config.h"

struct hawkbit_agent;

struct hawkbit_agent_opts {
	const char *hawkbit_conf;        /* NULL = HAWKBIT_CONFIG_DEFAULT_PATH */
	const char *system_conf;         /* NULL = the default search path */
	const char *const *confopt;      /* system.conf overrides SECTION:KEY=VALUE */
	const char *keyring;             /* replaces system.conf's keyring files; NULL = keep */
	bool check_only;                 /* load the configs only (no lock, no state) */
	/* Installs and reads the board (agent_installer.h); borrowed.  NULL =
	 * in-process (install_run and the boot backend here, as root). */
	struct agent_installer *installer;
};

/* Loads both configs, the state file (a corrupt one is moved aside to
 * .broken with an error logged) and takes the agent lock (one abotad per
 * state file). */
int hawkbit_agent_new(const struct hawkbit_agent_opts *opts, struct hawkbit_agent **out,
		      struct abota_error *err);
void hawkbit_agent_free(struct hawkbit_agent *a);

/* One iteration.  *next_s receives the seconds to wait before the next one
 * (the server's interval, action_poll_interval while an action runs,
 * retry_wait or Retry-After after errors).  Returns 0, or a negative code
 * with err set when the iteration failed (the daemon logs it and goes on). */
int hawkbit_agent_iterate(struct hawkbit_agent *a, uint64_t *next_s, struct abota_error *err);

/* Asks a running iteration to stop at the next safe point (downloads abort
 * and stay resumable; an install runs to its end).  Async-signal-safe. */
void hawkbit_agent_request_stop(struct hawkbit_agent *a);
bool hawkbit_agent_stop_requested(const struct hawkbit_agent *a);

const struct hawkbit_config *hawkbit_agent_config(const struct hawkbit_agent *a);
const struct agent_state *hawkbit_agent_state(const struct hawkbit_agent *a);

#endif
