/* agent.c - the hawkBit DDI agent state machine (see hawkbit_agent.h).
 *
 * Phases (agent_state.h): idle -> downloading -> [waiting] -> installing ->
 * installed -> finished -> idle.  Every phase change is saved before the
 * step it announces, so a restart continues where the device was: a partial
 * download resumes, an interrupted install runs again (install_run resumes
 * it), an installed update is judged from what the board booted.
 */
#include "abota/hawkbit_agent.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "abota/agent_installer.h"
#include "abota/config.h"
#include "abota/ddi.h"
#include "abota/ddi_client.h"
#include "abota/fileio.h"
#include "abota/install.h"
#include "abota/log.h"
#include "abota/powercut.h"

#define FEEDBACK_RETRIES 10

struct hawkbit_agent {
	struct hawkbit_config *cfg;
	struct ddi_client *client;
	const char *system_conf;
	const char *const *confopt;
	const char *keyring;
	/* installs and reads the board: in-process or through the root
	 * service (agent_installer.h) */
	struct agent_installer *installer;
	bool own_installer;
	char *compatible;          /* system.conf compatible (installedBase name) */
	char *state_path;
	char *lock_path;
	int lock_fd;
	struct agent_state st;
	volatile sig_atomic_t stop;
	bool reboot_attempted;     /* this process ran the reboot command */
	bool resent_last;          /* offered_again() sent the last result */
	char confirm_logged[DDI_MAX_ACTION_ID + 1]; /* "waits for confirmation" logged */
	char waiting_confirmation[DDI_MAX_ACTION_ID + 1]; /* for the status file */
	/* during a download or install: server-side cancel seen */
	char cancel_href[DDI_MAX_HREF + 1];
	bool cancel_seen;
	time_t last_cancel_poll;
	const struct ddi_download *dl; /* the download in progress */
	/* progress feedback throttle */
	unsigned last_pct_sent;
	time_t last_progress_sent;
	/* runtime status */
	time_t last_poll;
	char last_result[512];
	uint64_t server_sleep;
	bool has_server_sleep;
	/* the last poll answer and its ETag: a 304 reuses it */
	char *poll_body;
	size_t poll_len;
	char poll_etag[128];
	uint64_t polls_not_modified;
	/* staleness (agent_state_stale): st.poll_success as last saved, and
	 * whether "stale" was logged */
	uint64_t poll_success_saved;
	bool stale_logged;
	bool status_dir_warned;    /* the status directory is unsafe: said once */
	uint64_t logged_sleep;     /* an odd server poll interval was logged */
};

const struct hawkbit_config *hawkbit_agent_config(const struct hawkbit_agent *a)
{
	return a->cfg;
}

const struct agent_state *hawkbit_agent_state(const struct hawkbit_agent *a)
{
	return &a->st;
}

void hawkbit_agent_request_stop(struct hawkbit_agent *a)
{
	a->stop = 1;
}

bool hawkbit_agent_stop_requested(const struct hawkbit_agent *a)
{
	return a->stop != 0;
}

/* Sleeps up to s seconds, waking early when a stop is requested. */
static void nap(struct hawkbit_agent *a, unsigned s)
{
	for (unsigned i = 0; i < s * 10 && !a->stop; i++) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

static int save(struct hawkbit_agent *a, struct abota_error *err)
{
	int ret = agent_state_save(a->state_path, &a->st, err);
	if (ret < 0)
		abota_error_prefix(err, "saving the agent state");
	return ret;
}

/* Saving failed in a path that already reports something else: log it. */
static void save_or_log(struct hawkbit_agent *a)
{
	struct abota_error e = { 0 };
	if (save(a, &e) < 0)
		log_error("%s", e.msg);
}

static int load_system(struct hawkbit_agent *a, struct system_config **cfg,
		       struct abota_error *err)
{
	int ret = config_load_with_overrides(a->system_conf, a->confopt, cfg, err);
	if (ret < 0)
		abota_error_prefix(err, "system configuration");
	return ret;
}

int hawkbit_agent_new(const struct hawkbit_agent_opts *opts, struct hawkbit_agent **out,
		      struct abota_error *err)
{
	struct hawkbit_agent *a = calloc(1, sizeof(*a));
	struct system_config *sys = NULL;
	int ret;
	if (!a)
		return abota_error_set(err, -ENOMEM, "out of memory");
	a->lock_fd = -1;
	a->logged_sleep = UINT64_MAX; /* no poll interval logged yet */
	a->system_conf = opts->system_conf;
	a->confopt = opts->confopt;
	a->keyring = opts->keyring;
	a->installer = opts->installer;
	if (!a->installer) {
		if ((ret = agent_installer_local(opts->system_conf, opts->confopt, opts->keyring,
						 &a->installer, err)) < 0)
			goto out;
		a->own_installer = true;
	}
	if ((ret = hawkbit_config_load(opts->hawkbit_conf ? opts->hawkbit_conf
							  : HAWKBIT_CONFIG_DEFAULT_PATH,
				       &a->cfg, err)) < 0 ||
	    (ret = load_system(a, &sys, err)) < 0 ||
	    (ret = ddi_client_new(a->cfg, &a->client, err)) < 0)
		goto out;
	a->compatible = strdup(sys->compatible);
	a->state_path = agent_state_path(sys->data_directory);
	if (!a->compatible || !a->state_path ||
	    asprintf(&a->lock_path, "%s.lock", a->state_path) < 0) {
		a->lock_path = NULL;
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (opts->check_only) {
		*out = a;
		a = NULL;
		ret = 0;
		goto out;
	}
	/* the data directory may not exist yet on a fresh device */
	char *dir = strdup(a->state_path);
	if (dir) {
		*strrchr(dir, '/') = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			log_warning("%s: %s", dir, strerror(errno));
		free(dir);
	}
	a->lock_fd = open(a->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (a->lock_fd < 0) {
		ret = abota_error_set(err, -errno, "%s: %s", a->lock_path, strerror(errno));
		goto out;
	}
	if (flock(a->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		ret = abota_error_set(err, -EBUSY, "%s: another abotad is running", a->lock_path);
		goto out;
	}
	struct abota_error e = { 0 };
	if (agent_state_load(a->state_path, &a->st, &e) < 0) {
		/* written atomically, so this is damage from outside: keep the
		 * evidence, start idle, say so loudly */
		char *broken = NULL;
		if (asprintf(&broken, "%s.broken", a->state_path) >= 0) {
			if (rename(a->state_path, broken) < 0)
				log_error("%s: %s", broken, strerror(errno));
			free(broken);
		}
		log_error("agent state unreadable (%s); moved aside to .broken, starting idle", e.msg);
		memset(&a->st, 0, sizeof(a->st));
	}
	if (a->st.phase != AGENT_IDLE)
		log_info("continuing action %s (%s)", a->st.action_id, agent_phase_name(a->st.phase));
	*out = a;
	a = NULL;
	ret = 0;
out:
	config_free(sys);
	hawkbit_agent_free(a);
	return ret;
}

void hawkbit_agent_free(struct hawkbit_agent *a)
{
	if (!a)
		return;
	if (a->lock_fd >= 0)
		close(a->lock_fd);
	if (a->own_installer)
		agent_installer_free(a->installer);
	ddi_client_free(a->client);
	hawkbit_config_free(a->cfg);
	free(a->compatible);
	free(a->state_path);
	free(a->lock_path);
	free(a->poll_body);
	free(a);
}

/* --- requests ----------------------------------------------------------- */

static char *resource_url(struct hawkbit_agent *a, const char *fmt, const char *id)
{
	char *u = NULL, *path = NULL;
	if (asprintf(&path, fmt, id) < 0)
		return NULL;
	if (asprintf(&u, "%s/%s", ddi_client_base_url(a->client), path) < 0)
		u = NULL;
	free(path);
	return u;
}

static bool status_ok(long s)
{
	return s == 200 || s == 201 || s == 204;
}

/* POST/PUT with DDI's retry rules: 409 and 429 are retried (Retry-After or
 * backoff, FEEDBACK_RETRIES times); 2xx succeed; 410 -> -ESTALE (action
 * gone), 404 -> -ENOENT, anything else -> -EIO. */
static int send_json(struct hawkbit_agent *a, const char *method, const char *url,
		     const char *body, struct abota_error *err)
{
	for (unsigned attempt = 0;; attempt++) {
		struct ddi_response r = { 0 };
		int ret = ddi_client_request(a->client, method, url, body, &r, err);
		if (ret < 0)
			return ret;
		long s = r.status;
		uint64_t ra = r.retry_after;
		ddi_response_clear(&r);
		log_debug("%s %s -> %ld: %s", method, url, s, body);
		if (status_ok(s))
			return 0;
		if ((s == 409 || s == 429) && attempt < FEEDBACK_RETRIES && !a->stop) {
			/* Retry-After is capped here at 30 s, so the cast is exact */
			unsigned wait = ra ? (unsigned)(ra > 30 ? 30 : ra) : (attempt < 3 ? 1u : 2u);
			log_warning("%s %s: HTTP %ld, retrying in %u s", method, url, s, wait);
			nap(a, wait);
			continue;
		}
		if (s == 410)
			return abota_error_set(err, -ESTALE, "%s: HTTP 410: the action is no longer active",
					       url);
		if (s == 404)
			return abota_error_set(err, -ENOENT, "%s: HTTP 404: not found", url);
		return abota_error_set(err, -EIO, "%s %s: HTTP %ld", method, url, s);
	}
}

static int feedback(struct hawkbit_agent *a, const char *resource, const char *id,
		    const char *execution, const char *finished, const char *detail,
		    unsigned pct, struct abota_error *err)
{
	char fmt[64];
	snprintf(fmt, sizeof(fmt), "%s/%%s/feedback", resource);
	const char *details[1] = { detail };
	struct ddi_feedback fb = { .execution = execution, .finished = finished,
				   .details = details, .ndetails = detail ? 1 : 0 };
	if (pct <= 100 && !strcmp(execution, "proceeding")) {
		fb.progress_cnt = pct;
		fb.progress_of = 100;
	}
	/* status code: 200 for success/progress, 500 for failure; lets hawkBit
	 * (>= 0.3) show "Device reported status code" */
	fb.has_code = true;
	fb.code = !strcmp(finished, "failure") ? 500 : 200;
	/* timestamp only with a plausible clock: hawkBit ignores a FINISHED
	 * report older than the stored installation date */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	if (now.tv_sec > 1700000000)
		fb.timestamp_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	char *url = resource_url(a, fmt, id);
	char *body = ddi_build_feedback(&fb);
	int ret;
	if (!url || !body)
		ret = abota_error_set(err, -ENOMEM, "out of memory");
	else
		ret = send_json(a, "POST", url, body, err);
	if (ret == 0)
		log_info("feedback %s action %s: %s/%s%s%s", resource, id, execution, finished,
			 detail ? ": " : "", detail ? detail : "");
	free(url);
	free(body);
	return ret;
}

/* Feedback whose loss is not fatal (progress, intermediate states). */
static bool feedback_soft(struct hawkbit_agent *a, const char *execution, const char *finished,
			  const char *detail, unsigned pct)
{
	struct abota_error e = { 0 };
	if (feedback(a, "deploymentBase", a->st.action_id, execution, finished, detail, pct, &e) <
	    0) {
		log_warning("feedback not delivered: %s", e.msg);
		return false;
	}
	return true;
}

/* Closes the action (closed/success|failure or downloaded) and forgets it,
 * also when the server says the action is gone (404/410). */
static int close_action(struct hawkbit_agent *a, const char *execution, bool success,
			const char *detail, struct abota_error *err)
{
	int ret = feedback(a, "deploymentBase", a->st.action_id, execution,
			   success ? "success" : "failure", detail, 101, err);
	bool delivered = ret == 0;
	if (ret == -ESTALE || ret == -ENOENT) {
		log_warning("action %s: %s; result not delivered, forgetting the action",
			    a->st.action_id, err->msg);
		abota_error_clear(err);
		ret = 0;
	}
	if (ret < 0)
		return ret;
	if (!success)
		log_error("action %s failed: %s", a->st.action_id, detail);
	else if (delivered && !strcmp(execution, "closed"))
		log_info("action %s closed: success: %s", a->st.action_id, detail);
	snprintf(a->st.last_id, sizeof(a->st.last_id), "%s", a->st.action_id);
	snprintf(a->st.last_execution, sizeof(a->st.last_execution), "%s", execution);
	a->st.last_success = success;
	snprintf(a->st.last_details, sizeof(a->st.last_details), "%s", detail);
	agent_state_clear_action(&a->st);
	return save(a, err);
}

/* The server offers an action this device closed already: never install it
 * twice; send its result once more (it may have been lost). */
static int offered_again(struct hawkbit_agent *a, const char *id, struct abota_error *err)
{
	if (a->resent_last)
		return 0;
	a->resent_last = true;
	log_warning("the server offers action %s again, which this device closed already (%s); "
		    "sending its result again, not installing it twice",
		    id, a->st.last_success ? "success" : "failure");
	int ret = feedback(a, "deploymentBase", id, a->st.last_execution,
			   a->st.last_success ? "success" : "failure", a->st.last_details, 101, err);
	if (ret == -ESTALE || ret == -ENOENT) {
		abota_error_clear(err);
		ret = 0;
	}
	return ret;
}

/* A failure before anything was installed: report and forget.  The
 * message of err becomes the feedback detail. */
static int fail_action(struct hawkbit_agent *a, const char *prefix, struct abota_error *err)
{
	char detail[600];
	snprintf(detail, sizeof(detail), "%.80s: %.500s", prefix, err->msg);
	int orig = err->code ? err->code : -EIO;
	struct abota_error e = { 0 };
	if (close_action(a, "closed", false, detail, &e) < 0)
		log_error("%s", e.msg);
	abota_error_set(err, orig, "%s", detail);
	return orig;
}

/* --- the running system ------------------------------------------------- */

struct running {
	char booted[64];      /* bootname of the booted root slot */
	char version[257];    /* its bundle.version from the slot status ("" unknown) */
};

static void running_info(struct hawkbit_agent *a, struct running *r)
{
	struct agent_board bd;
	struct abota_error e = { 0 };
	memset(r, 0, sizeof(*r));
	if (a->installer->ops->board(a->installer->ctx, &bd, &e) < 0) {
		log_debug("running system: %s", e.msg);
		return;
	}
	for (size_t i = 0; i < bd.n_banks; i++)
		if (bd.bank[i].booted) {
			snprintf(r->booted, sizeof(r->booted), "%s", bd.bank[i].bootname);
			snprintf(r->version, sizeof(r->version), "%s", bd.bank[i].version);
		}
}

enum outcome { OUT_PENDING_REBOOT, OUT_TRIAL, OUT_SUCCESS, OUT_FAILURE };

/* Judges an installed update from what the board booted and what the boot
 * backend says about the target bank. */
static int evaluate_boot(struct hawkbit_agent *a, enum outcome *out, char *why, size_t whylen,
			 struct abota_error *err)
{
	/* what the installer (this process or the root service) reports */
	struct agent_board bd;
	int ret = a->installer->ops->board(a->installer->ctx, &bd, err);
	if (ret < 0)
		return ret;
	int t = agent_board_index(&bd, a->st.target);
	if (t < 0)
		return abota_error_set(err, -ENOENT, "installed slot '%s' not in the system configuration",
				       a->st.target);
	const struct agent_bank *target = &bd.bank[t], *root = NULL;
	for (size_t i = 0; i < bd.n_banks; i++)
		if (bd.bank[i].booted)
			root = &bd.bank[i];
	if (!root)
		/* never conclude anything without knowing what runs */
		return abota_error_set(err, -ENOENT, "cannot tell which slot is booted (%s)",
				       bd.booted_id[0] ? bd.booted_id : "unknown");
	const char *now = root->bootname;
	bool on_target = root == target;
	if (bd.fwu) {
		const char *state = bd.fwu_state[t];
		if (on_target) {
			*out = !strcmp(state, "accepted") ? OUT_SUCCESS : OUT_TRIAL;
			snprintf(why, whylen, "bank %s is %s", a->st.target, state);
		} else if (bd.rolled_back && !strcmp(bd.failed_bootname, a->st.target)) {
			*out = OUT_FAILURE;
			snprintf(why, whylen, "the board fell back to %s: %s", now, bd.rollback_reason);
		} else if (!strcmp(state, "invalid")) {
			*out = OUT_FAILURE;
			snprintf(why, whylen, "bank %s was rejected (invalid); running %s", a->st.target,
				 now);
		} else if (bd.fwu_active[t]) {
			*out = OUT_PENDING_REBOOT;
			snprintf(why, whylen, "running %s, %s selected for the next boot", now,
				 a->st.target);
		} else {
			*out = OUT_FAILURE;
			snprintf(why, whylen, "the board runs %s and no longer selects %s", now,
				 a->st.target);
		}
		return 0;
	}
	bool good = target->good;
	if (on_target) {
		*out = good ? OUT_SUCCESS : OUT_FAILURE;
		snprintf(why, whylen, "booted %s, marked %s", a->st.target, good ? "good" : "bad");
		return 0;
	}
	if (target->primary && good) {
		*out = OUT_PENDING_REBOOT;
		snprintf(why, whylen, "running %s, %s selected for the next boot", now, a->st.target);
	} else {
		*out = OUT_FAILURE;
		snprintf(why, whylen, "the board fell back to %s; %s is %s", now, a->st.target,
			 good ? "no longer primary" : "marked bad");
	}
	return 0;
}

static void maybe_report_installed_base(struct hawkbit_agent *a)
{
	if (!a->cfg->report_installed_base || a->st.phase != AGENT_IDLE)
		return;
	struct running r;
	running_info(a, &r);
	if (!r.version[0] || !strcmp(r.version, a->st.reported_version))
		return;
	const char *name = a->cfg->installed_base_name ? a->cfg->installed_base_name
						       : a->compatible;
	char *body = ddi_build_installed_base(name, r.version);
	char *url = NULL;
	struct abota_error e = { 0 };
	if (!body || asprintf(&url, "%s/installedBase", ddi_client_base_url(a->client)) < 0) {
		url = NULL;
		goto out;
	}
	int ret = send_json(a, "PUT", url, body, &e);
	if (ret == -ENOENT) {
		/* no such distribution set on the server: nothing to correct,
		 * and no reason to ask again for this version */
		log_info("installedBase: the server knows no distribution set %s %s", name,
			 r.version);
	} else if (ret < 0) {
		log_warning("installedBase not reported: %s", e.msg);
		goto out;
	} else {
		log_info("reported installed version %s %s (running %s)", name, r.version, r.booted);
	}
	snprintf(a->st.reported_version, sizeof(a->st.reported_version), "%s", r.version);
	save_or_log(a);
out:
	free(body);
	free(url);
}

/* --- the installed update: reboot, acceptance, final report -------------- */

static int run_reboot(struct hawkbit_agent *a, struct abota_error *err)
{
	a->reboot_attempted = true;
	log_info("rebooting: %s", a->cfg->reboot_command);
	sync();
	pid_t pid = fork();
	if (pid < 0)
		return abota_error_set(err, -errno, "fork: %s", strerror(errno));
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", a->cfg->reboot_command, (char *)NULL);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return abota_error_set(err, -errno, "waitpid: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return abota_error_set(err, -EIO, "reboot command '%s' failed (status %d)",
				       a->cfg->reboot_command, status);
	return 0;
}

/* The kernel's boot id: what tells "not rebooted yet" from "rebooted and
 * fell back" (both run the old bank). */
static void read_boot_id(struct hawkbit_agent *a, char *out, size_t len)
{
	char *data = NULL;
	size_t n = 0;
	struct abota_error e = { 0 };
	out[0] = '\0';
	if (fileio_read_all(a->cfg->boot_id_file, 256, &data, &n, &e) < 0) {
		log_warning("boot id: %s", e.msg);
		return;
	}
	/* data is at most 256 bytes (fileio_read_all above): fits an int */
	snprintf(out, len, "%.*s", (int)strcspn(data, "\r\n"), data);
	free(data);
}

static int check_installed(struct hawkbit_agent *a, struct abota_error *err)
{
	enum outcome o = OUT_PENDING_REBOOT;
	char why[400] = "";
	char boot_id[64];
	read_boot_id(a, boot_id, sizeof(boot_id));
	if (boot_id[0] && !strcmp(boot_id, a->st.boot_id)) {
		log_info("action %s: installed into %s, waiting for the reboot", a->st.action_id,
			 a->st.target);
		/* the reboot was skipped (stopped before it, or the command
		 * failed): ask again */
		if (a->cfg->post_update_reboot && !a->st.reboot_requested && !a->stop &&
		    !a->reboot_attempted) {
			a->st.reboot_requested = true;
			int ret = save(a, err);
			if (ret < 0 || (ret = run_reboot(a, err)) < 0)
				return ret;
		}
		return 0;
	}
	int ret = evaluate_boot(a, &o, why, sizeof(why), err);
	if (ret < 0) {
		abota_error_prefix(err, "judging the installed update");
		return ret;
	}
	switch (o) {
	case OUT_PENDING_REBOOT:
		log_info("action %s: waiting for the reboot (%s)", a->st.action_id, why);
		return 0;
	case OUT_TRIAL:
		log_info("action %s: trial boot of %s, waiting for acceptance (%s)", a->st.action_id,
			 a->st.target, why);
		if (!a->st.reported_trial) {
			char d[512];
			snprintf(d, sizeof(d), "Booted %s in trial; waiting for acceptance.",
				 a->st.target);
			if (feedback_soft(a, "proceeding", "none", d, 101)) {
				a->st.reported_trial = true;
				return save(a, err);
			}
		}
		return 0;
	case OUT_SUCCESS:
		a->st.phase = AGENT_FINISHED;
		a->st.success = true;
		snprintf(a->st.details, sizeof(a->st.details),
			 "Update %.200s installed, booted from %.60s and accepted.",
			 a->st.version[0] ? a->st.version : "", a->st.target);
		return save(a, err);
	case OUT_FAILURE:
		a->st.phase = AGENT_FINISHED;
		a->st.success = false;
		snprintf(a->st.details, sizeof(a->st.details), "Update %.60s failed to boot from %.60s: %.360s",
			 a->st.version, a->st.target, why);
		return save(a, err);
	}
	return 0;
}

static int report_final(struct hawkbit_agent *a, struct abota_error *err)
{
	char detail[sizeof(a->st.details)];
	bool success = a->st.success;
	memcpy(detail, a->st.details, sizeof(detail));
	return close_action(a, "closed", success, detail, err);
}

/* --- cancel ------------------------------------------------------------- */

static void remove_download(struct hawkbit_agent *a)
{
	if (!a->cfg->download_location)
		return;
	if (unlink(a->cfg->download_location) == 0)
		log_info("removed %s", a->cfg->download_location);
	a->st.download_sha256[0] = '\0';
}

static int handle_cancel(struct hawkbit_agent *a, const char *href, struct abota_error *err)
{
	struct ddi_response r = { 0 };
	char stop[DDI_MAX_ACTION_ID + 1];
	int ret;
	if ((ret = ddi_client_check_url(a->client, href, 0, err)) < 0 ||
	    (ret = ddi_client_request(a->client, "GET", href, NULL, &r, err)) < 0)
		goto out;
	if (r.status != 200) {
		ret = abota_error_set(err, -EIO, "%s: HTTP %ld", href, r.status);
		goto out;
	}
	if ((ret = ddi_parse_cancel(r.body ? r.body : "", r.len, stop, err)) < 0) {
		abota_error_prefix(err, "cancelAction");
		goto out;
	}
	bool ours = a->st.phase != AGENT_IDLE && !strcmp(stop, a->st.action_id);
	if (ours && a->st.phase >= AGENT_INSTALLING) {
		ret = feedback(a, "cancelAction", stop, "rejected", "none",
			       "Cancellation impossible, installation has started already.", 101,
			       err);
		log_warning("cancel of action %s rejected: installation has begun", stop);
		goto out;
	}
	if (ours) {
		remove_download(a);
		agent_state_clear_action(&a->st);
		if ((ret = save(a, err)) < 0)
			goto out;
	}
	ret = feedback(a, "cancelAction", stop, "closed", "success",
		       ours ? "Action canceled." : "Action canceled (not started on this device).",
		       101, err);
	if (ret == 0)
		log_info("action %s canceled", stop);
out:
	ddi_response_clear(&r);
	return ret;
}

/* Asked during downloads and installs (about once a second): re-poll the
 * server every action_poll_interval for a cancel of this action. */
static bool poll_for_cancel(struct hawkbit_agent *a)
{
	if (a->stop)
		return true;
	time_t now = time(NULL);
	if (now - a->last_cancel_poll < (time_t)a->cfg->action_poll_interval)
		return false;
	a->last_cancel_poll = now;
	struct ddi_response r = { 0 };
	struct ddi_base b = { 0 };
	struct abota_error e = { 0 };
	char id[DDI_MAX_ACTION_ID + 1];
	bool cancel = false;
	if (ddi_client_request(a->client, "GET", ddi_client_base_url(a->client), NULL, &r, &e) ==
		    0 &&
	    r.status == 200 && ddi_parse_base(r.body ? r.body : "", r.len, &b, &e) == 0 &&
	    b.cancel_href && ddi_href_action_id(b.cancel_href, "cancelAction", id) &&
	    !strcmp(id, a->st.action_id)) {
		/* ddi_parse_base bounds links to DDI_MAX_HREF; checked again
		 * against the buffer rather than trusted */
		size_t l = strlen(b.cancel_href);
		if (l < sizeof(a->cancel_href)) {
			memcpy(a->cancel_href, b.cancel_href, l + 1);
			a->cancel_seen = true;
			cancel = true;
		} else {
			log_warning("cancelAction link longer than %zu bytes ignored",
				    sizeof(a->cancel_href) - 1);
		}
	}
	ddi_base_clear(&b);
	ddi_response_clear(&r);
	return cancel;
}

/* Called about once a second during a download: progress feedback (every
 * 10 %, at most one per 2 s) and the cancel check. */
static bool download_cancel_cb(void *ctx)
{
	struct hawkbit_agent *a = ctx;
	const struct ddi_download *d = a->dl;
	time_t now = time(NULL);
	if (d && d->size && d->resumed_from + d->transferred < d->size) {
		uint64_t done = d->resumed_from + d->transferred;
		/* done < size <= max_artifact_size (2^42): no overflow, pct < 100 */
		unsigned pct = (unsigned)(done * 100 / d->size);
		if (pct < 100 && pct >= a->last_pct_sent + 10 && now - a->last_progress_sent >= 2) {
			char detail[160];
			snprintf(detail, sizeof(detail), "Downloading: %u%% (%llu of %llu bytes).", pct,
				 (unsigned long long)done, (unsigned long long)d->size);
			feedback_soft(a, "proceeding", "none", detail, pct);
			a->last_pct_sent = pct - pct % 10;
			a->last_progress_sent = now;
		}
	}
	return poll_for_cancel(a);
}

/* --- deployment --------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
	size_t l = strlen(s), n = strlen(suffix);
	return l >= n && !strcmp(s + l - n, suffix);
}

/* The bundle to install: the only artifact, or else the only *.raucb one
 * (signatures or documents beside it are ignored). */
static int choose_artifact(const struct ddi_deployment *d, const struct ddi_chunk **chunk,
			   const struct ddi_artifact **art, struct abota_error *err)
{
	size_t total = 0, bundles = 0;
	const struct ddi_chunk *bc = NULL, *ac = NULL;
	const struct ddi_artifact *ba = NULL, *aa = NULL;
	for (size_t i = 0; i < d->nchunks; i++)
		for (size_t j = 0; j < d->chunks[i].nartifacts; j++) {
			total++;
			ac = &d->chunks[i];
			aa = &d->chunks[i].artifacts[j];
			if (ends_with(aa->filename, ".raucb")) {
				bundles++;
				bc = ac;
				ba = aa;
			}
		}
	if (total == 1) {
		*chunk = ac;
		*art = aa;
		return 0;
	}
	if (total == 0)
		return abota_error_set(err, -EINVAL, "deployment %s has no artifact", d->id);
	if (bundles == 1) {
		*chunk = bc;
		*art = ba;
		return 0;
	}
	return abota_error_set(err, -EINVAL,
			       "deployment %s has %zu artifacts and %zu bundles (*.raucb); "
			       "expected exactly one bundle",
			       d->id, total, bundles);
}

static int download_artifact(struct hawkbit_agent *a, const char *url, const char *sha1,
			     struct abota_error *err)
{
	const char *path = a->cfg->download_location;
	/* the file holds another artifact (or an unknown one): start over */
	if (a->st.sha256[0] ? strcmp(a->st.download_sha256, a->st.sha256) != 0 : true) {
		if (unlink(path) < 0 && errno != ENOENT)
			return abota_error_set(err, -errno, "%s: %s", path, strerror(errno));
		snprintf(a->st.download_sha256, sizeof(a->st.download_sha256), "%s", a->st.sha256);
		int ret = save(a, err);
		if (ret < 0)
			return ret;
	}
	/* room for the rest of the artifact, checked before the first byte */
	struct stat fst;
	uint64_t have = stat(path, &fst) == 0 ? (uint64_t)fst.st_size : 0;
	char *dir = strdup(path);
	struct statvfs vfs;
	if (dir) {
		char *slash = strrchr(dir, '/');
		if (slash == dir)
			slash[1] = '\0';
		else if (slash)
			*slash = '\0';
		if (statvfs(dir, &vfs) < 0) {
			int e = errno;
			free(dir);
			return abota_error_set(err, -e, "%s: %s", path, strerror(e));
		}
		free(dir);
		uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
		if (have < a->st.size && avail < a->st.size - have)
			return abota_error_set(err, -ENOSPC,
					       "%s: %llu bytes needed, %llu available", path,
					       (unsigned long long)(a->st.size - have),
					       (unsigned long long)avail);
	}
	struct ddi_download d = { .url = url, .path = path, .size = a->st.size,
				  .cancel = download_cancel_cb, .ctx = a };
	a->last_cancel_poll = time(NULL);
	/* a file larger than the artifact is started over (ddi_client_download);
	 * below the size, have * 100 / size < 100 and cannot overflow (2^42 cap) */
	a->last_pct_sent = have && have < a->st.size ? (unsigned)(have * 100 / a->st.size) / 10 * 10
						     : 0;
	a->last_progress_sent = time(NULL);
	a->dl = &d;
	int ret = ddi_client_download(a->client, &d, err);
	a->dl = NULL;
	if (ret < 0)
		return ret;
	char got[65];
	const char *algo = a->st.sha256[0] ? "sha256" : "sha1";
	const char *want = a->st.sha256[0] ? a->st.sha256 : sha1;
	if (!want) {
		log_warning("artifact %s has no sha256/sha1; relying on the bundle signature",
			    a->st.artifact);
	} else {
		if ((ret = ddi_hash_file(path, algo, got, sizeof(got), err)) < 0)
			return ret;
		if (strcmp(got, want)) {
			remove_download(a);
			save_or_log(a);
			return abota_error_set(err, -EBADMSG,
					       "%s checksum mismatch: expected %s, downloaded %s",
					       algo, want, got);
		}
	}
	double mbs = d.seconds > 0 ? (double)d.transferred / d.seconds / 1e6 : 0;
	char detail[256], resumed[64] = "";
	if (d.resumed_from)
		snprintf(resumed, sizeof(resumed), ", resumed at byte %llu",
			 (unsigned long long)d.resumed_from);
	snprintf(detail, sizeof(detail), "Download complete (%llu bytes%s, %.2f MB/s), checksum OK.",
		 (unsigned long long)a->st.size, resumed, mbs);
	log_info("%s", detail);
	feedback_soft(a, "proceeding", "none", detail, 101);
	return 0;
}

static void on_install_progress(void *ctx, const struct install_progress *p)
{
	struct hawkbit_agent *a = ctx;
	time_t now = time(NULL);
	/* hawkBit keeps at most 1000 status entries per action: one report per
	 * 10 % step and at most one per 2 s (about a dozen per install) */
	if (p->percent >= a->last_pct_sent + 10 && now - a->last_progress_sent >= 2) {
		char d[200];
		snprintf(d, sizeof(d), "%u%% %s", p->percent, p->message);
		feedback_soft(a, "proceeding", "none", d, p->percent);
		a->last_pct_sent = p->percent - p->percent % 10;
		a->last_progress_sent = now;
	}
	/* writing has begun: a cancel is answered with "rejected" */
	if (!a->cancel_seen && poll_for_cancel(a) && a->cancel_seen) {
		struct abota_error e = { 0 };
		if (feedback(a, "cancelAction", a->st.action_id, "rejected", "none",
			     "Cancellation impossible, installation has started already.", 101,
			     &e) < 0)
			log_warning("cancel rejection not delivered: %s", e.msg);
		else
			log_warning("cancel of action %s rejected: installing", a->st.action_id);
	}
}

static int install(struct hawkbit_agent *a, const char *url, struct abota_error *err)
{
	struct install_result res = { 0 };
	struct http_opts http;
	struct running r;
	int ret;
	running_info(a, &r);
	a->st.phase = AGENT_INSTALLING;
	snprintf(a->st.booted_before, sizeof(a->st.booted_before), "%s", r.booted);
	if ((ret = save(a, err)) < 0)
		return ret;
	char d[400];
	snprintf(d, sizeof(d), "Installing %.180s %.180s.", a->st.name, a->st.version);
	feedback_soft(a, "proceeding", "none", d, 0);
	struct agent_install_req io = { .progress = on_install_progress, .progress_ctx = a };
	if (a->cfg->stream_bundle && !a->st.download_only) {
		io.bundle = url;
		ddi_client_http_opts(a->client, url, &http);
		io.http = &http;
	} else {
		io.bundle = a->cfg->download_location;
	}
	a->last_pct_sent = 0;
	a->last_progress_sent = 0;
	a->cancel_seen = false;
	a->last_cancel_poll = time(NULL);
	log_info("installing action %s (%s installer): %s", a->st.action_id, a->installer->name,
		 io.bundle == url ? "streaming from the server" : io.bundle);
	ret = a->installer->ops->install(a->installer->ctx, &io, &res, err);
	if (ret == -ECANCELED && powercut_happened()) {
		/* a simulated power cut (powercut.h): the device "lost power"
		 * mid-install; nothing more may be written or reported */
		return ret;
	}
	if (!a->cfg->stream_bundle)
		remove_download(a);
	if (ret < 0)
		return fail_action(a, "Installation failed", err);
	if (res.resumed)
		log_info("install resumed %u image(s) from the journal (%llu bytes not rewritten)",
			 res.resumed, (unsigned long long)res.resumed_bytes);
	a->st.phase = AGENT_INSTALLED;
	snprintf(a->st.target, sizeof(a->st.target), "%s", res.target);
	read_boot_id(a, a->st.boot_id, sizeof(a->st.boot_id));
	if ((ret = save(a, err)) < 0)
		return ret;
	snprintf(d, sizeof(d), "Installed %s into %s; %s.", a->st.version, res.target,
		 a->cfg->post_update_reboot ? "rebooting" : "waiting for a reboot");
	log_info("%s", d);
	if (feedback_soft(a, "proceeding", "none", d, 100)) {
		a->st.reported_installed = true;
		if ((ret = save(a, err)) < 0)
			return ret;
	}
	if (a->cfg->post_update_reboot && a->stop) {
		log_info("stopping: the reboot is left to the next start");
	} else if (a->cfg->post_update_reboot) {
		a->st.reboot_requested = true;
		if ((ret = save(a, err)) < 0)
			return ret;
		if ((ret = run_reboot(a, err)) < 0) {
			/* asked again at the next iteration */
			a->st.reboot_requested = false;
			save_or_log(a);
			return ret;
		}
	}
	return 0;
}

static int handle_deployment(struct hawkbit_agent *a, const char *href, struct abota_error *err)
{
	char hid[DDI_MAX_ACTION_ID + 1];
	struct ddi_response r = { 0 };
	struct ddi_deployment d = { 0 };
	const struct ddi_chunk *chunk = NULL;
	const struct ddi_artifact *art = NULL;
	int ret;
	if (!ddi_href_action_id(href, "deploymentBase", hid))
		return abota_error_set(err, -EINVAL, "deploymentBase link without an action id: %.200s",
				       href);
	if (!strcmp(hid, a->st.last_id) &&
	    (a->st.phase == AGENT_IDLE || strcmp(hid, a->st.action_id)))
		return offered_again(a, hid, err);
	if (a->st.phase >= AGENT_INSTALLED) {
		if (strcmp(hid, a->st.action_id))
			log_info("action %s waits until the result of action %s is reported", hid,
				 a->st.action_id);
		return 0;
	}
	if ((ret = ddi_client_check_url(a->client, href, 0, err)) < 0 ||
	    (ret = ddi_client_request(a->client, "GET", href, NULL, &r, err)) < 0)
		goto out;
	if (r.status == 404 || r.status == 410) {
		log_info("action %s is gone from the server (HTTP %ld)", hid, r.status);
		goto out;
	}
	if (r.status != 200) {
		ret = abota_error_set(err, -EIO, "%s: HTTP %ld", href, r.status);
		goto out;
	}
	bool new_action = a->st.phase == AGENT_IDLE || strcmp(a->st.action_id, hid);
	if (new_action) {
		if (a->st.phase != AGENT_IDLE)
			log_warning("action %s superseded by action %s", a->st.action_id, hid);
		agent_state_clear_action(&a->st);
		snprintf(a->st.action_id, sizeof(a->st.action_id), "%s", hid);
	}
	if ((ret = ddi_parse_deployment(r.body ? r.body : "", r.len, &d, err)) < 0) {
		abota_error_prefix(err, "invalid deployment %s", hid);
		log_error("%s", err->msg);
		ret = fail_action(a, "Deployment rejected", err);
		goto out;
	}
	if (strcmp(d.id, hid)) {
		ret = abota_error_set(err, -EINVAL, "deployment id %s does not match its link (%s)",
				      d.id, hid);
		ret = fail_action(a, "Deployment rejected", err);
		goto out;
	}
	if ((ret = choose_artifact(&d, &chunk, &art, err)) < 0) {
		ret = fail_action(a, "Deployment rejected", err);
		goto out;
	}
	const char *url = art->download_href ? art->download_href : art->download_http_href;
	if (!url) {
		abota_error_set(err, -EINVAL, "artifact %s has no download link", art->filename);
		ret = fail_action(a, "Deployment rejected", err);
		goto out;
	}
	if ((ret = ddi_client_check_url(a->client, url, 1, err)) < 0) {
		abota_error_prefix(err, "artifact %s", art->filename);
		ret = fail_action(a, "Download refused", err);
		goto out;
	}
	bool download_only = d.update == DDI_SKIP && d.window == DDI_WINDOW_NONE;
	/* "skip" with a maintenance window (hawkBit sends it while the window
	 * is closed): download, wait */
	bool wait_window = d.update == DDI_SKIP && d.window != DDI_WINDOW_NONE;
	bool need_file = !a->cfg->stream_bundle || download_only ||
			 (wait_window && a->cfg->download_location);
	if (need_file && !art->has_size) {
		abota_error_set(err, -EINVAL, "artifact %s has no size", art->filename);
		ret = fail_action(a, "Deployment rejected", err);
		goto out;
	}
	if (art->has_size && art->size > a->cfg->max_artifact_size) {
		abota_error_set(err, -EFBIG, "artifact %s: %llu bytes exceeds max_artifact_size (%llu)",
				art->filename, (unsigned long long)art->size,
				(unsigned long long)a->cfg->max_artifact_size);
		ret = fail_action(a, "Deployment rejected", err);
		goto out;
	}
	if (need_file && !a->cfg->download_location) {
		abota_error_set(err, -EINVAL,
				"download-only deployments need bundle_download_location");
		ret = fail_action(a, "Deployment rejected", err);
		goto out;
	}
	if (a->st.phase == AGENT_IDLE) {
		snprintf(a->st.artifact, sizeof(a->st.artifact), "%s", art->filename);
		snprintf(a->st.sha256, sizeof(a->st.sha256), "%s", art->has_sha256 ? art->sha256 : "");
		a->st.size = art->has_size ? art->size : 0;
		snprintf(a->st.version, sizeof(a->st.version), "%s", chunk->version);
		snprintf(a->st.name, sizeof(a->st.name), "%s", chunk->name);
		a->st.download_only = download_only;
		a->st.phase = AGENT_DOWNLOADING;
		if ((ret = save(a, err)) < 0)
			goto out;
		log_info("action %s: %s %s (%s, update=%s%s)", hid, chunk->name, chunk->version,
			 art->filename, download_only ? "skip, download only" : wait_window ? "skip" : "yes",
			 wait_window ? ", maintenance window closed" : "");
	}
	if (d.download == DDI_SKIP) {
		log_info("action %s: the server asks not to download yet", hid);
		goto out;
	}
	if (need_file && a->st.phase == AGENT_DOWNLOADING) {
		if (!a->st.reported_start) {
			char detail[400];
			snprintf(detail, sizeof(detail), "Downloading %s (%llu bytes).", art->filename,
				 (unsigned long long)art->size);
			if (feedback_soft(a, "download", "none", detail, 101)) {
				a->st.reported_start = true;
				save_or_log(a);
			}
		}
		a->cancel_seen = false;
		ret = download_artifact(a, url, art->has_sha1 ? art->sha1 : NULL, err);
		if (ret == -ECANCELED) {
			abota_error_clear(err);
			if (a->cancel_seen)
				ret = handle_cancel(a, a->cancel_href, err);
			else
				ret = 0; /* stop requested: resumes next start */
			goto out;
		}
		if (ret < 0) {
			ret = fail_action(a, "Download failed", err);
			goto out;
		}
		if (!download_only)
			a->st.phase = AGENT_WAITING;
		if ((ret = save(a, err)) < 0)
			goto out;
	}
	if (download_only) {
		ret = close_action(a, "downloaded", true,
				   "Download complete, checksum OK; installation skipped (download only).",
				   err);
		goto out;
	}
	if (wait_window) {
		a->st.phase = AGENT_WAITING;
		if (!a->st.reported_waiting) {
			if (feedback_soft(a, "scheduled", "none",
					  "Waiting for the maintenance window to install.", 101))
				a->st.reported_waiting = true;
		}
		ret = save(a, err);
		log_info("action %s: waiting for the maintenance window", hid);
		goto out;
	}
	ret = install(a, url, err);
out:
	ddi_deployment_clear(&d);
	ddi_response_clear(&r);
	return ret;
}

/* --- consent (confirmationBase) ----------------------------------------- */

/* hawkBit's user-consent flow: the action waits until the device confirms
 * it.  confirm_actions=auto confirms (a headless device that trusts its
 * operator), deny refuses, wait leaves it to hawkBit's server-side
 * auto-confirm and shows it in `abota hawkbit status`. */
static int handle_confirmation(struct hawkbit_agent *a, const char *href,
			       struct abota_error *err)
{
	char id[DDI_MAX_ACTION_ID + 1];
	if (!ddi_href_action_id(href, "confirmationBase", id))
		return abota_error_set(err, -EINVAL,
				       "confirmationBase link without an action id: %.200s", href);
	int ret = ddi_client_check_url(a->client, href, 0, err);
	if (ret < 0)
		return ret;
	const char *mode = a->cfg->confirm_actions;
	if (!strcmp(mode, "wait")) {
		snprintf(a->waiting_confirmation, sizeof(a->waiting_confirmation), "%s", id);
		if (strcmp(a->confirm_logged, id))
			log_info("action %s waits for confirmation on the device (confirm_actions=wait)",
				 id);
		snprintf(a->confirm_logged, sizeof(a->confirm_logged), "%s", id);
		return 0;
	}
	bool yes = !strcmp(mode, "auto");
	char *body = ddi_build_confirmation(yes ? "confirmed" : "denied", 200,
					    yes ? "Confirmed by abotad (confirm_actions=auto)."
						: "Denied by abotad (confirm_actions=deny).");
	char *url = resource_url(a, "confirmationBase/%s/feedback", id);
	if (!body || !url)
		ret = abota_error_set(err, -ENOMEM, "out of memory");
	else
		ret = send_json(a, "POST", url, body, err);
	if (ret == 0)
		log_info("action %s %s", id, yes ? "confirmed" : "denied");
	free(body);
	free(url);
	return ret;
}

/* --- configData --------------------------------------------------------- */

static int send_config_data(struct hawkbit_agent *a, const char *href, struct abota_error *err)
{
	int ret = ddi_client_check_url(a->client, href, 0, err);
	if (ret < 0)
		return ret;
	char *body = ddi_build_config_data(a->cfg->attributes, a->cfg->nattributes, "merge");
	if (!body)
		return abota_error_set(err, -ENOMEM, "out of memory");
	ret = send_json(a, "PUT", href, body, err);
	free(body);
	if (ret == 0)
		log_info("sent %zu device attributes (configData)", a->cfg->nattributes);
	else
		abota_error_prefix(err, "configData");
	return ret;
}

/* --- staleness ----------------------------------------------------------- */

/* (A wall clock before AGENT_STATE_PLAUSIBLE_CLOCK is not set yet -- no RTC,
 * no NTP: no time is recorded and nothing is judged stale with it.)
 * st.poll_success is saved at most this often (flash wear) unless a save
 * happens anyway; the runtime status file has the exact time. */
#define POLL_SUCCESS_SAVE_EVERY 3600u

/* The longest wait between polls: half of stale_after, so that a device
 * whose server answers is never reported stale, and at most a week. */
static uint64_t max_poll_wait(const struct hawkbit_config *cfg)
{
	uint64_t m = cfg->stale_after / 2;
	return m > 7 * 86400 ? 7 * 86400 : m ? m : 1;
}

static void note_poll(struct hawkbit_agent *a, bool success)
{
	time_t t = time(NULL);
	if (t < (time_t)AGENT_STATE_PLAUSIBLE_CLOCK)
		return;
	uint64_t now = (uint64_t)t; /* >= AGENT_STATE_PLAUSIBLE_CLOCK > 0 */
	bool persist = false;
	bool was_stale = agent_state_stale(a->cfg->stale_after, a->st.poll_success, a->st.poll_since, now,
					     NULL);
	if (!a->st.poll_since) {
		a->st.poll_since = now;
		persist = true;
	}
	if (success) {
		a->st.poll_success = now;
		uint64_t every = a->cfg->stale_after / 10 < POLL_SUCCESS_SAVE_EVERY
					 ? a->cfg->stale_after / 10
					 : POLL_SUCCESS_SAVE_EVERY;
		if (now < a->poll_success_saved || now - a->poll_success_saved >= every)
			persist = true;
	}
	uint64_t ref = 0;
	bool stale = agent_state_stale(a->cfg->stale_after, a->st.poll_success, a->st.poll_since, now, &ref);
	if (stale && !a->stale_logged) {
		time_t rt = (time_t)ref; /* ref <= now, a time_t */
		struct tm tm;
		char when[32];
		gmtime_r(&rt, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		log_warning("no successful poll of the server since %s (%s, stale_after=%llu s): "
			    "this device's update state is stale",
			    when, a->st.poll_success ? "last success" : "never succeeded; first poll",
			    (unsigned long long)a->cfg->stale_after);
	} else if (!stale && was_stale) {
		log_info("the server answered again; no longer stale");
	}
	a->stale_logged = stale;
	if (persist) {
		struct abota_error e = { 0 };
		if (save(a, &e) < 0)
			log_warning("%s", e.msg);
		else
			a->poll_success_saved = a->st.poll_success;
	}
}

/* --- runtime status ----------------------------------------------------- */

/* The status file is read by `abota hawkbit status` and trusted as abotad's
 * word: only abotad may write it.  Its directory is created 0755; one that
 * exists but belongs to another user or is group/world-writable is not
 * used (others could replace the file, or plant a link at the temp name). */
static bool status_dir_safe(struct hawkbit_agent *a, const char *dir)
{
	struct stat st;
	const char *why = NULL;
	if ((mkdir(dir, 0755) < 0 && errno != EEXIST) || lstat(dir, &st) < 0)
		why = strerror(errno);
	else if (!S_ISDIR(st.st_mode))
		why = "not a directory";
	else if (st.st_uid != geteuid())
		why = "owned by another user";
	else if (st.st_mode & (S_IWGRP | S_IWOTH))
		why = "writable by group or others";
	if (!why)
		return true;
	if (!a->status_dir_warned)
		log_warning("%s: %s; the runtime status (status_file) is not written", dir, why);
	a->status_dir_warned = true;
	return false;
}

static void write_status(struct hawkbit_agent *a, uint64_t next)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "server", json_object_new_string(ddi_client_base_url(a->client)));
	json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(o, "last_poll", json_object_new_int64((int64_t)a->last_poll));
	json_object_object_add(o, "last_result", json_object_new_string(a->last_result));
	json_object_object_add(o, "next_poll",
			       json_object_new_int64((int64_t)(time(NULL) + (time_t)next)));
	json_object_object_add(o, "server_poll_interval",
			       a->has_server_sleep ? json_object_new_int64((int64_t)a->server_sleep)
						   : NULL);
	json_object_object_add(o, "polls_not_modified",
			       json_object_new_int64((int64_t)a->polls_not_modified));
	json_object_object_add(o, "waiting_confirmation",
			       a->waiting_confirmation[0]
				       ? json_object_new_string(a->waiting_confirmation)
				       : NULL);
	/* times below AGENT_STATE_PLAUSIBLE_CLOCK are never recorded: all fit int64 */
	json_object_object_add(o, "last_successful_poll",
			       a->st.poll_success ? json_object_new_int64((int64_t)a->st.poll_success)
						  : NULL);
	json_object_object_add(o, "first_poll",
			       a->st.poll_since ? json_object_new_int64((int64_t)a->st.poll_since)
						: NULL);
	json_object_object_add(o, "stale_after",
			       json_object_new_int64((int64_t)a->cfg->stale_after));
	time_t now = time(NULL);
	json_object_object_add(o, "stale",
			       json_object_new_boolean(agent_state_stale(a->cfg->stale_after, a->st.poll_success, a->st.poll_since,
				       now > 0 ? (uint64_t)now : 0, NULL)));
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE);
	struct abota_error e = { 0 };
	char *dir = strdup(a->cfg->status_file);
	if (dir) {
		/* status_file is an absolute path (hawkbit_config) */
		char *slash = strrchr(dir, '/');
		if (slash == dir)
			slash[1] = '\0';
		else if (slash)
			*slash = '\0';
		if (status_dir_safe(a, dir) &&
		    fileio_write_atomic(a->cfg->status_file, s, strlen(s), 0644, &e) < 0)
			log_debug("status file: %s", e.msg);
		free(dir);
	}
	json_object_put(o);
}

/* --- one iteration ------------------------------------------------------ */

static int poll_base(struct hawkbit_agent *a, struct ddi_base *b, uint64_t *retry,
		     struct abota_error *err)
{
	struct ddi_response r = { 0 };
	const char *url = ddi_client_base_url(a->client);
	int ret = ddi_client_get_if_none_match(a->client, url, a->poll_body ? a->poll_etag : NULL,
					       &r, err);
	a->last_poll = time(NULL);
	if (ret < 0)
		goto out;
	switch (r.status) {
	case 200:
		if ((ret = ddi_parse_base(r.body ? r.body : "", r.len, b, err)) < 0) {
			abota_error_prefix(err, "%s: invalid poll response", url);
			break;
		}
		free(a->poll_body);
		a->poll_body = NULL;
		if (r.etag[0] && r.body) {
			/* remembered for If-None-Match (hawkBit's shallow ETag) */
			a->poll_body = r.body;
			a->poll_len = r.len;
			r.body = NULL;
			memcpy(a->poll_etag, r.etag, sizeof(a->poll_etag));
		}
		break;
	case 304:
		if (!a->poll_body) {
			ret = abota_error_set(err, -EPROTO, "%s: HTTP 304 without a previous answer",
					      url);
			break;
		}
		a->polls_not_modified++;
		log_debug("poll: not modified (ETag %s)", a->poll_etag);
		ret = ddi_parse_base(a->poll_body, a->poll_len, b, err);
		break;
	case 401:
	case 403:
		ret = abota_error_set(err, -EACCES,
				      "%s: HTTP %ld: authentication failed; check %s", url, r.status,
				      a->cfg->auth_token      ? "auth_token"
				      : a->cfg->gateway_token ? "gateway_token"
							      : "ssl_cert / ssl_key");
		break;
	case 404:
		ret = abota_error_set(err, -ENOENT,
				      "%s: HTTP 404: target '%s' unknown to the server (tenant '%s')",
				      url, a->cfg->target_name, a->cfg->tenant);
		break;
	case 429:
		*retry = r.retry_after;
		ret = abota_error_set(err, -EAGAIN, "%s: HTTP 429: server busy, polling later", url);
		break;
	default:
		ret = abota_error_set(err, -EIO, "%s: HTTP %ld", url, r.status);
		break;
	}
out:
	ddi_response_clear(&r);
	return ret;
}

int hawkbit_agent_iterate(struct hawkbit_agent *a, uint64_t *next_s, struct abota_error *err)
{
	struct ddi_base b = { 0 };
	uint64_t retry = 0;
	int ret = 0;
	struct abota_error early = { 0 };
	*next_s = a->cfg->retry_wait;
	/* a failure to judge or report the installed update must not stop the
	 * poll (cancels, the server's view): logged, returned at the end */
	if (a->st.phase == AGENT_INSTALLED)
		check_installed(a, &early);
	if (a->st.phase == AGENT_FINISHED && !early.code)
		report_final(a, &early);
	ret = poll_base(a, &b, &retry, err);
	note_poll(a, ret == 0);
	if (ret < 0) {
		if (retry)
			*next_s = retry;
		goto out;
	}
	a->has_server_sleep = b.has_sleep;
	a->waiting_confirmation[0] = '\0';
	a->server_sleep = b.sleep_s;
	if (b.config_data_href && (ret = send_config_data(a, b.config_data_href, err)) < 0)
		log_warning("%s", err->msg); /* not fatal for the iteration */
	ret = 0;
	abota_error_clear(err);
	if (b.cancel_href) {
		ret = handle_cancel(a, b.cancel_href, err);
	} else if (b.deployment_href) {
		ret = handle_deployment(a, b.deployment_href, err);
	} else if (b.confirmation_href) {
		ret = handle_confirmation(a, b.confirmation_href, err);
	} else if (a->st.phase == AGENT_DOWNLOADING || a->st.phase == AGENT_WAITING ||
		   a->st.phase == AGENT_INSTALLING) {
		/* the server closed the action without telling us (force-quit) */
		log_warning("action %s is no longer offered by the server; forgetting it",
			    a->st.action_id);
		agent_state_clear_action(&a->st);
		ret = save(a, err);
	}
	if (ret < 0)
		goto out;
	if (a->st.phase == AGENT_IDLE)
		maybe_report_installed_base(a);
	/* config.polling.sleep 00:00:00 is taken as absent (SWUpdate does the
	 * same): never a busy loop; the upper bound is max_poll_wait() */
	if (b.has_sleep && (b.sleep_s == 0 || b.sleep_s > max_poll_wait(a->cfg)) &&
	    b.sleep_s != a->logged_sleep) {
		log_warning("server poll interval %llu s %s", (unsigned long long)b.sleep_s,
			    b.sleep_s ? "capped (half of stale_after, at most a week)"
				      : "ignored; using retry_wait");
		a->logged_sleep = b.sleep_s;
	}
	if (a->st.phase == AGENT_IDLE || a->st.phase == AGENT_WAITING)
		*next_s = a->cfg->poll_interval		? a->cfg->poll_interval
			  : b.has_sleep && b.sleep_s	? b.sleep_s
							: a->cfg->retry_wait;
	else
		*next_s = a->cfg->action_poll_interval;
	if (a->st.phase == AGENT_WAITING && *next_s > a->cfg->action_poll_interval * 12)
		*next_s = a->cfg->action_poll_interval * 12; /* notice the window opening */
	if (*next_s == 0)
		*next_s = 1;
out:
	if (*next_s > max_poll_wait(a->cfg))
		*next_s = max_poll_wait(a->cfg);
	if (early.code && ret == 0) {
		*err = early;
		ret = early.code;
		if (*next_s > a->cfg->retry_wait)
			*next_s = a->cfg->retry_wait;
	} else if (early.code) {
		log_error("%s", early.msg); /* the caller reports the later error */
	}
	if (ret < 0)
		snprintf(a->last_result, sizeof(a->last_result), "%.500s", err->msg);
	else
		snprintf(a->last_result, sizeof(a->last_result), "ok");
	write_status(a, *next_s);
	ddi_base_clear(&b);
	return ret;
}
