/* cmd_hawkbit.c - `abota hawkbit status`: abotad's view of the hawkBit
 * server and the action in progress, from its durable state file and its
 * runtime status file (no request is made to the server). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "abota/agent_state.h"
#include "abota/config.h"
#include "abota/fileio.h"
#include "abota/hawkbit_config.h"
#include "abota/log.h"
#include "cli.h"

struct view {
	struct hawkbit_config *hc;
	struct agent_state st;
	char *state_path;
	json_object *rt; /* runtime status, NULL if abotad never wrote one */
	bool running;
};

static const char *auth_mode(const struct hawkbit_config *hc)
{
	return hc->auth_token ? "TargetToken" : hc->gateway_token ? "GatewayToken"
								 : "client certificate";
}

static const char *phase_text(const struct agent_state *st)
{
	switch (st->phase) {
	case AGENT_IDLE: return "no action";
	case AGENT_DOWNLOADING: return "downloading";
	case AGENT_WAITING: return "downloaded, waiting for the maintenance window";
	case AGENT_INSTALLING: return "installing";
	case AGENT_INSTALLED:
		return st->reported_trial ? "booted in trial, waiting for acceptance"
					  : "installed, waiting for the reboot";
	case AGENT_FINISHED: return "result known, not yet reported";
	}
	return "?";
}

static int64_t rt_int(struct view *v, const char *key)
{
	json_object *o;
	if (!v->rt || !json_object_object_get_ex(v->rt, key, &o) || !o)
		return -1;
	return json_object_get_int64(o);
}

static const char *rt_str(struct view *v, const char *key)
{
	json_object *o;
	if (!v->rt || !json_object_object_get_ex(v->rt, key, &o) ||
	    !json_object_is_type(o, json_type_string))
		return NULL;
	return json_object_get_string(o);
}

static void when(int64_t t, char *buf, size_t len)
{
	if (t <= 0) {
		snprintf(buf, len, "never");
		return;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int load_view(struct cli_globals *g, const char *hconf, struct view *v,
		     struct abota_error *err)
{
	struct system_config *sys = NULL;
	char *data = NULL;
	size_t len = 0;
	int ret;
	memset(v, 0, sizeof(*v));
	if ((ret = hawkbit_config_load(hconf, &v->hc, err)) < 0 ||
	    (ret = config_load_with_overrides(g->conf, g->confopt, &sys, err)) < 0)
		goto out;
	v->state_path = agent_state_path(sys->data_directory);
	if (!v->state_path) {
		ret = abota_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if ((ret = agent_state_load(v->state_path, &v->st, err)) < 0)
		goto out;
	struct abota_error e = { 0 };
	if (fileio_read_all(v->hc->status_file, 64 * 1024, &data, &len, &e) == 0) {
		v->rt = json_tokener_parse(data);
		if (v->rt && !json_object_is_type(v->rt, json_type_object)) {
			json_object_put(v->rt);
			v->rt = NULL;
		}
		if (!v->rt)
			log_warning("%s: not a status file", v->hc->status_file);
	}
	int64_t pid = rt_int(v, "pid");
	v->running = pid > 0 && pid < INT32_MAX && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
out:
	free(data);
	config_free(sys);
	return ret;
}

static void view_free(struct view *v)
{
	hawkbit_config_free(v->hc);
	free(v->state_path);
	json_object_put(v->rt);
}

/* Staleness (hawkbit.conf stale_after, SC-104): from the durable state,
 * or the runtime status when that is newer (the state file is saved at
 * most hourly for the poll time). */
static bool stale(struct view *v, uint64_t *last_success, uint64_t *ref)
{
	uint64_t ok = v->st.poll_success;
	int64_t rt = rt_int(v, "last_successful_poll");
	if (rt > 0 && (uint64_t)rt > ok)
		ok = (uint64_t)rt;
	*last_success = ok;
	time_t now = time(NULL);
	return agent_state_stale(v->hc->stale_after, ok, v->st.poll_since, now > 0 ? (uint64_t)now : 0, ref);
}

static json_object *jstr(const char *s)
{
	return s && *s ? json_object_new_string(s) : NULL;
}

static void print_json(struct view *v, bool pretty)
{
	char *base = hawkbit_config_base_url(v->hc);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "server", jstr(base));
	json_object_object_add(o, "target", jstr(v->hc->target_name));
	json_object_object_add(o, "authentication", jstr(auth_mode(v->hc)));
	json_object_object_add(o, "mode", jstr(v->hc->stream_bundle ? "stream" : "download"));
	json_object_object_add(o, "daemon_running", json_object_new_boolean(v->running));
	json_object_object_add(o, "last_poll", v->rt && rt_int(v, "last_poll") > 0
						       ? json_object_new_int64(rt_int(v, "last_poll"))
						       : NULL);
	json_object_object_add(o, "last_result", jstr(rt_str(v, "last_result")));
	json_object_object_add(o, "next_poll", v->rt && rt_int(v, "next_poll") > 0
						       ? json_object_new_int64(rt_int(v, "next_poll"))
						       : NULL);
	json_object_object_add(o, "server_poll_interval",
			       rt_int(v, "server_poll_interval") >= 0
				       ? json_object_new_int64(rt_int(v, "server_poll_interval"))
				       : NULL);
	json_object_object_add(o, "waiting_confirmation", jstr(rt_str(v, "waiting_confirmation")));
	uint64_t ok = 0, ref = 0;
	bool is_stale = stale(v, &ok, &ref);
	/* poll times are recorded only from a plausible clock: they fit int64 */
	json_object_object_add(o, "last_successful_poll",
			       ok ? json_object_new_int64((int64_t)ok) : NULL);
	json_object_object_add(o, "stale", json_object_new_boolean(is_stale));
	json_object_object_add(o, "stale_after", json_object_new_int64((int64_t)v->hc->stale_after));
	json_object_object_add(o, "state_file", jstr(v->state_path));
	if (v->st.phase == AGENT_IDLE) {
		json_object_object_add(o, "action", NULL);
	} else {
		json_object *a = json_object_new_object();
		json_object_object_add(a, "id", jstr(v->st.action_id));
		json_object_object_add(a, "phase", jstr(agent_phase_name(v->st.phase)));
		json_object_object_add(a, "description", jstr(phase_text(&v->st)));
		json_object_object_add(a, "name", jstr(v->st.name));
		json_object_object_add(a, "version", jstr(v->st.version));
		json_object_object_add(a, "artifact", jstr(v->st.artifact));
		json_object_object_add(a, "size", json_object_new_int64((int64_t)v->st.size));
		json_object_object_add(a, "sha256", jstr(v->st.sha256));
		json_object_object_add(a, "download_only", json_object_new_boolean(v->st.download_only));
		json_object_object_add(a, "target_slot", jstr(v->st.target));
		json_object_object_add(a, "booted_before", jstr(v->st.booted_before));
		if (v->st.phase == AGENT_FINISHED) {
			json_object_object_add(a, "result",
					       jstr(v->st.success ? "success" : "failure"));
			json_object_object_add(a, "details", jstr(v->st.details));
		}
		json_object_object_add(o, "action", a);
	}
	json_object_object_add(o, "reported_version", jstr(v->st.reported_version));
	printf("%s\n", json_object_to_json_string_ext(
			      o, JSON_C_TO_STRING_NOSLASHESCAPE |
					 (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
						 : JSON_C_TO_STRING_PLAIN)));
	json_object_put(o);
	free(base);
}

static void print_readable(struct view *v)
{
	char *base = hawkbit_config_base_url(v->hc);
	char t1[32], t2[32];
	printf("Server:          %s\n", base ? base : "?");
	printf("Authentication:  %s\n", auth_mode(v->hc));
	if (v->hc->stream_bundle)
		printf("Mode:            stream\n");
	else
		printf("Mode:            download to %s\n", v->hc->download_location);
	if (v->rt) {
		when(rt_int(v, "last_poll"), t1, sizeof(t1));
		when(rt_int(v, "next_poll"), t2, sizeof(t2));
		printf("Daemon:          %s\n", v->running ? "running" : "not running");
		printf("Last poll:       %s (%s)\n", t1,
		       rt_str(v, "last_result") ? rt_str(v, "last_result") : "?");
		if (v->running)
			printf("Next poll:       %s\n", t2);
	} else {
		printf("Daemon:          no status (abotad has not run)\n");
	}
	uint64_t ok = 0, ref = 0;
	bool is_stale = stale(v, &ok, &ref);
	when((int64_t)ok, t1, sizeof(t1));
	printf("Last success:    %s\n", t1);
	if (is_stale) {
		when((int64_t)ref, t1, sizeof(t1));
		printf("Stale:           yes: no successful poll since %s (stale_after=%llu s)\n",
		       t1, (unsigned long long)v->hc->stale_after);
	}
	if (rt_str(v, "waiting_confirmation"))
		printf("Confirmation:    action %s waits for the device's confirmation "
		       "(confirm_actions=%s)\n",
		       rt_str(v, "waiting_confirmation"), v->hc->confirm_actions);
	if (v->st.phase == AGENT_IDLE) {
		printf("Action:          none\n");
	} else {
		printf("Action:          %s: %s\n", v->st.action_id, phase_text(&v->st));
		printf("  Software:      %s %s (%s, %llu bytes)\n", v->st.name, v->st.version,
		       v->st.artifact, (unsigned long long)v->st.size);
		if (v->st.target[0])
			printf("  Installed to:  %s (was running %s)\n", v->st.target,
			       v->st.booted_before[0] ? v->st.booted_before : "?");
		if (v->st.phase == AGENT_FINISHED)
			printf("  Result:        %s: %s\n", v->st.success ? "success" : "failure",
			       v->st.details);
	}
	if (v->st.reported_version[0])
		printf("Reported version: %s\n", v->st.reported_version);
	free(base);
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: abota [-c system.conf] hawkbit status [--config=hawkbit.conf] "
		   "[--output-format=readable|json|json-pretty]\n");
}

int cmd_hawkbit(struct cli_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "output-format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *hconf = HAWKBIT_CONFIG_DEFAULT_PATH;
	enum cli_output_format fmt = CLI_OUTPUT_READABLE;
	int o;
	while ((o = cli_getopt(g, "hawkbit", argc, argv, "h", opts)) != -1) {
		switch (o) {
		case 'c': hconf = optarg; break;
		case 'f':
			if (!cli_parse_output_format(optarg, &fmt) || fmt == CLI_OUTPUT_SHELL)
				return cli_usage_error("hawkbit", "unknown output format '%s'",
						       optarg);
			break;
		case 'h': usage(stdout); return 0;
		case CLI_GETOPT_REPORTED: return 2;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc)
		return cli_usage_error("hawkbit", "missing sub-command (status)");
	if (strcmp(argv[optind], "status"))
		return cli_usage_error("hawkbit", "unknown sub-command '%s'", argv[optind]);
	if (argc - optind > 1)
		return cli_usage_error("hawkbit", "too many arguments");
	struct view v;
	struct abota_error err = { 0 };
	int ret = load_view(g, hconf, &v, &err);
	if (ret == 0) {
		if (fmt == CLI_OUTPUT_READABLE)
			print_readable(&v);
		else
			print_json(&v, fmt == CLI_OUTPUT_JSON_PRETTY);
	}
	view_free(&v);
	return ret < 0 ? cli_fail("hawkbit", &err) : 0;
}
