/* agent_state.h - abotad's durable state: the hawkBit action in progress.
 *
 * A key file (<data-directory>/hawkbit.state) replaced atomically
 * (fileio_write_atomic: temp file, fsync, rename, fsync dir) at every phase
 * change, so after a power cut the agent knows which action it was working
 * on, whether writing had begun (a cancel is then rejected), which bank it
 * installed and whether the final result still has to be reported.
 *
 *   [action]     id, phase, artifact (name, sha256, size, url kind), version,
 *                download_only, target (bootname installed into),
 *                booted_before, reported_* flags, result, details
 *   [download]   sha256 of the artifact the file at bundle_download_location
 *                belongs to (kept across actions: a partial file of the same
 *                artifact is resumed, never deleted on start)
 *   [installed]  the version last reported with PUT installedBase
 *   [last]       id, execution, success and details of the last closed action
 *   [poll]       last_success: when a poll last got a valid answer; since:
 *                when the agent first polled with this state (the reference
 *                while no poll ever succeeded) -- what "stale" is judged by
 */
#ifndef ABOTA_AGENT_STATE_H
#define ABOTA_AGENT_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "abota/error.h"

enum agent_phase {
	AGENT_IDLE = 0,      /* no action */
	AGENT_DOWNLOADING,   /* artifact being downloaded (resumable) */
	AGENT_WAITING,       /* downloaded (or streaming), waiting for the maintenance window */
	AGENT_INSTALLING,    /* install_run started: writing has begun, cancel is rejected */
	AGENT_INSTALLED,     /* written + trial selected: waiting for reboot and acceptance */
	AGENT_FINISHED,      /* result known, final feedback not yet delivered */
};

struct agent_state {
	enum agent_phase phase;
	char action_id[20];
	char artifact[256];         /* file name */
	char sha256[65];            /* expected, "" if the server gave none */
	uint64_t size;
	char version[257];          /* chunk version being installed */
	char name[257];             /* chunk name */
	bool download_only;
	char target[64];            /* bootname installed into */
	char booted_before[64];     /* bootname running when installing */
	char boot_id[64];           /* kernel boot id when the install finished */
	bool reported_start;        /* "downloading"/"installing" feedback delivered */
	bool reported_waiting;      /* "waiting for maintenance window" delivered */
	bool reported_installed;    /* "installed, rebooting" delivered */
	bool reported_trial;        /* "booted in trial" delivered */
	bool reboot_requested;
	bool success;               /* AGENT_FINISHED: the result */
	char details[512];          /* AGENT_FINISHED: message */
	/* [download] */
	char download_sha256[65];
	/* [installed] */
	char reported_version[257];
	/* [last]: the action closed most recently, so a server that offers it
	 * again gets its result again instead of a second installation */
	char last_id[20];
	char last_execution[16];    /* "closed" | "downloaded" */
	bool last_success;
	char last_details[512];
	/* [poll] (seconds since the epoch, 0 = never): kept across restarts
	 * so that a device that cannot reach its server is reported stale
	 * (agent_state_stale below) */
	uint64_t poll_success;
	uint64_t poll_since;
};

const char *agent_phase_name(enum agent_phase p);
/* false for unknown names */
bool agent_phase_parse(const char *s, enum agent_phase *out);

/* Loads path; a missing file gives an idle state.  A file that cannot be
 * parsed fails (the caller decides: the daemon moves it aside). */
int agent_state_load(const char *path, struct agent_state *out, struct abota_error *err);
/* Saves atomically. */
int agent_state_save(const char *path, const struct agent_state *st, struct abota_error *err);
/* Forgets the action (keeps [download], [installed] and [last]). */
void agent_state_clear_action(struct agent_state *st);

/* <data_directory>/hawkbit.state (data_directory NULL: /var/lib/abota);
 * malloc'ed, NULL when out of memory.  Here rather than in the agent so that
 * readers of the state (`abota hawkbit status`) do not link the agent and
 * its HTTP client. */
char *agent_state_path(const char *data_directory);

/* Clock readings before this (2023-11-14) are not trusted: no staleness
 * is judged and no poll time recorded. */
#define AGENT_STATE_PLAUSIBLE_CLOCK 1700000000u

/* Whether the device's update state is stale at time now (seconds since
 * the epoch): no successful poll for more than stale_after seconds (the
 * hawkbit.conf key), counted from poll_since while no poll ever succeeded
 * ([poll] above).  *ref (may be NULL) receives the time counted from
 * (0 = none).  False when the clock is not plausible or went back. */
bool agent_state_stale(uint64_t stale_after, uint64_t poll_success, uint64_t poll_since,
		       uint64_t now, uint64_t *ref);

#endif
