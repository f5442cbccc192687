/* agent_state.c - the durable state file of abotad (see agent_state.h). */
#include "abota/agent_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abota/ddi.h"
#include "abota/fileio.h"
#include "abota/keyfile.h"

#define STATE_MAX_SIZE (64 * 1024)

static const char *const PHASES[] = { "idle", "downloading", "waiting", "installing",
				      "installed", "finished" };

const char *agent_phase_name(enum agent_phase p)
{
	return (unsigned)p < sizeof(PHASES) / sizeof(PHASES[0]) ? PHASES[p] : "?";
}

bool agent_phase_parse(const char *s, enum agent_phase *out)
{
	for (size_t i = 0; i < sizeof(PHASES) / sizeof(PHASES[0]); i++)
		if (!strcmp(s, PHASES[i])) {
			*out = (enum agent_phase)i;
			return true;
		}
	return false;
}

void agent_state_clear_action(struct agent_state *st)
{
	struct agent_state keep = *st;
	memset(st, 0, sizeof(*st));
	memcpy(st->download_sha256, keep.download_sha256, sizeof(st->download_sha256));
	memcpy(st->reported_version, keep.reported_version, sizeof(st->reported_version));
	memcpy(st->last_id, keep.last_id, sizeof(st->last_id));
	memcpy(st->last_execution, keep.last_execution, sizeof(st->last_execution));
	st->last_success = keep.last_success;
	memcpy(st->last_details, keep.last_details, sizeof(st->last_details));
	st->poll_success = keep.poll_success;
	st->poll_since = keep.poll_since;
}

static int get_str(struct keyfile *kf, const char *g, const char *k, char *out, size_t max,
		   struct abota_error *err)
{
	const char *v;
	int ret = keyfile_get_string(kf, g, k, &v, err);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	size_t l = strlen(v);
	if (l >= max)
		return abota_error_set(err, -EINVAL, "%s:%u: [%s] %s: value too long",
				       keyfile_name(kf), keyfile_key_line(kf, g, k), g, k);
	memcpy(out, v, l + 1);
	return 0;
}

static int get_bool(struct keyfile *kf, const char *g, const char *k, bool *out,
		    struct abota_error *err)
{
	int ret = keyfile_get_bool(kf, g, k, out, err);
	return ret == -ENOENT ? 0 : ret;
}


static bool hex64_or_empty(const char *s)
{
	if (!*s)
		return true;
	if (strlen(s) != 64)
		return false;
	for (; *s; s++)
		if (!strchr("0123456789abcdef", *s))
			return false;
	return true;
}

int agent_state_load(const char *path, struct agent_state *out, struct abota_error *err)
{
	struct keyfile *kf = NULL;
	struct agent_state st = { 0 };
	char phase[32] = "idle";
	int ret = keyfile_load(path, STATE_MAX_SIZE, &kf, err);
	if (ret == -ENOENT) {
		abota_error_clear(err);
		*out = st;
		return 0;
	}
	if (ret < 0)
		return ret;
	if (keyfile_has_group(kf, "action")) {
		keyfile_consume_group(kf, "action");
		if ((ret = get_str(kf, "action", "phase", phase, sizeof(phase), err)) < 0 ||
		    (ret = get_str(kf, "action", "id", st.action_id, sizeof(st.action_id), err)) < 0 ||
		    (ret = get_str(kf, "action", "artifact", st.artifact, sizeof(st.artifact), err)) <
			    0 ||
		    (ret = get_str(kf, "action", "sha256", st.sha256, sizeof(st.sha256), err)) < 0 ||
		    (ret = get_str(kf, "action", "version", st.version, sizeof(st.version), err)) < 0 ||
		    (ret = get_str(kf, "action", "name", st.name, sizeof(st.name), err)) < 0 ||
		    (ret = get_str(kf, "action", "target", st.target, sizeof(st.target), err)) < 0 ||
		    (ret = get_str(kf, "action", "booted_before", st.booted_before,
				   sizeof(st.booted_before), err)) < 0 ||
		    (ret = get_str(kf, "action", "details", st.details, sizeof(st.details), err)) < 0 ||
		    (ret = get_str(kf, "action", "boot_id", st.boot_id, sizeof(st.boot_id), err)) < 0 ||
		    (ret = get_bool(kf, "action", "download_only", &st.download_only, err)) < 0 ||
		    (ret = get_bool(kf, "action", "reported_start", &st.reported_start, err)) < 0 ||
		    (ret = get_bool(kf, "action", "reported_waiting", &st.reported_waiting, err)) < 0 ||
		    (ret = get_bool(kf, "action", "reported_installed", &st.reported_installed, err)) <
			    0 ||
		    (ret = get_bool(kf, "action", "reported_trial", &st.reported_trial, err)) < 0 ||
		    (ret = get_bool(kf, "action", "reboot_requested", &st.reboot_requested, err)) < 0 ||
		    (ret = get_bool(kf, "action", "success", &st.success, err)) < 0)
			goto out;
		ret = keyfile_get_u64(kf, "action", "size", &st.size, err);
		if (ret < 0 && ret != -ENOENT)
			goto out;
	}
	if (keyfile_has_group(kf, "download")) {
		keyfile_consume_group(kf, "download");
		if ((ret = get_str(kf, "download", "sha256", st.download_sha256,
				   sizeof(st.download_sha256), err)) < 0)
			goto out;
	}
	if (keyfile_has_group(kf, "installed")) {
		keyfile_consume_group(kf, "installed");
		if ((ret = get_str(kf, "installed", "reported_version", st.reported_version,
				   sizeof(st.reported_version), err)) < 0)
			goto out;
	}
	if (keyfile_has_group(kf, "last")) {
		keyfile_consume_group(kf, "last");
		if ((ret = get_str(kf, "last", "id", st.last_id, sizeof(st.last_id), err)) < 0 ||
		    (ret = get_str(kf, "last", "execution", st.last_execution,
				   sizeof(st.last_execution), err)) < 0 ||
		    (ret = get_bool(kf, "last", "success", &st.last_success, err)) < 0 ||
		    (ret = get_str(kf, "last", "details", st.last_details, sizeof(st.last_details),
				   err)) < 0)
			goto out;
		if (!ddi_valid_action_id(st.last_id) || (strcmp(st.last_execution, "closed") &&
							 strcmp(st.last_execution, "downloaded"))) {
			ret = abota_error_set(err, -EINVAL, "%s: malformed [last] group", path);
			goto out;
		}
	}
	if (keyfile_has_group(kf, "poll")) {
		keyfile_consume_group(kf, "poll");
		if (((ret = keyfile_get_u64(kf, "poll", "last_success", &st.poll_success, err)) < 0 &&
		     ret != -ENOENT) ||
		    ((ret = keyfile_get_u64(kf, "poll", "since", &st.poll_since, err)) < 0 &&
		     ret != -ENOENT))
			goto out;
		/* times as time_t (int64) later: a value past that is damage */
		if (st.poll_success > INT64_MAX / 2 || st.poll_since > INT64_MAX / 2) {
			ret = abota_error_set(err, -EINVAL, "%s: [poll]: time out of range", path);
			goto out;
		}
	}
	if ((ret = keyfile_check_consumed(kf, err)) < 0)
		goto out;
	if (!agent_phase_parse(phase, &st.phase)) {
		ret = abota_error_set(err, -EINVAL, "%s: unknown phase '%s'", path, phase);
		goto out;
	}
	if (st.phase != AGENT_IDLE && !ddi_valid_action_id(st.action_id)) {
		ret = abota_error_set(err, -EINVAL, "%s: phase %s without a valid action id", path,
				      phase);
		goto out;
	}
	if (!hex64_or_empty(st.sha256) || !hex64_or_empty(st.download_sha256)) {
		ret = abota_error_set(err, -EINVAL, "%s: malformed sha256", path);
		goto out;
	}
	*out = st;
	ret = 0;
out:
	keyfile_free(kf);
	return ret;
}

int agent_state_save(const char *path, const struct agent_state *st, struct abota_error *err)
{
	struct keyfile *kf = keyfile_new(path);
	char *data = NULL;
	size_t len = 0;
	int ret = -ENOMEM;
	if (!kf)
		return abota_error_set(err, -ENOMEM, "out of memory");
#define S(g, k, v) \
	if (keyfile_set_string(kf, g, k, v) < 0) \
	goto oom
#define B(k, v) S("action", k, (v) ? "true" : "false")
	if (st->phase != AGENT_IDLE) {
		S("action", "phase", agent_phase_name(st->phase));
		S("action", "id", st->action_id);
		S("action", "artifact", st->artifact);
		S("action", "sha256", st->sha256);
		if (keyfile_set_u64(kf, "action", "size", st->size) < 0)
			goto oom;
		S("action", "version", st->version);
		S("action", "name", st->name);
		B("download_only", st->download_only);
		S("action", "target", st->target);
		S("action", "booted_before", st->booted_before);
		S("action", "boot_id", st->boot_id);
		B("reported_start", st->reported_start);
		B("reported_waiting", st->reported_waiting);
		B("reported_installed", st->reported_installed);
		B("reported_trial", st->reported_trial);
		B("reboot_requested", st->reboot_requested);
		B("success", st->success);
		S("action", "details", st->details);
	}
	if (st->download_sha256[0])
		S("download", "sha256", st->download_sha256);
	if (st->reported_version[0])
		S("installed", "reported_version", st->reported_version);
	if (st->last_id[0]) {
		S("last", "id", st->last_id);
		S("last", "execution", st->last_execution);
		S("last", "success", st->last_success ? "true" : "false");
		S("last", "details", st->last_details);
	}
	if ((st->poll_success &&
	     keyfile_set_u64(kf, "poll", "last_success", st->poll_success) < 0) ||
	    (st->poll_since && keyfile_set_u64(kf, "poll", "since", st->poll_since) < 0))
		goto oom;
#undef S
#undef B
	if (keyfile_to_data(kf, &data, &len) < 0)
		goto oom;
	ret = fileio_write_atomic(path, data, len, 0600, err);
	goto out;
oom:
	ret = abota_error_set(err, -ENOMEM, "out of memory");
out:
	free(data);
	keyfile_free(kf);
	return ret;
}

bool agent_state_stale(uint64_t stale_after, uint64_t poll_success, uint64_t poll_since,
		       uint64_t now, uint64_t *ref)
{
	uint64_t r = poll_success ? poll_success : poll_since;
	if (ref)
		*ref = r;
	if (now < AGENT_STATE_PLAUSIBLE_CLOCK || !r || r > now)
		return false; /* unknown clock, or it went back: no claim */
	return now - r > stale_after;
}

char *agent_state_path(const char *data_directory)
{
	char *p = NULL;
	if (asprintf(&p, "%s/hawkbit.state", data_directory ? data_directory : "/var/lib/abota") < 0)
		return NULL;
	return p;
}
