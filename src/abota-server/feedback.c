/* feedback.c - device feedback to action state (see feedback.h). */
#include "feedback.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const executions[] = {"closed",  "proceeding", "canceled",   "scheduled",
					 "rejected", "resumed",   "downloaded", "download"};
static const char *const finisheds[] = {"success", "failure", "none"};

static bool in(const char *s, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, set[i]) == 0)
			return true;
	return false;
}

bool feedback_execution_valid(const char *s)
{
	return in(s, executions, sizeof(executions) / sizeof(executions[0]));
}

bool feedback_finished_valid(const char *s)
{
	return in(s, finisheds, sizeof(finisheds) / sizeof(finisheds[0]));
}

static void deployment(const struct store_action *a, const char *ex, const char *fin,
		       struct feedback_outcome *o)
{
	struct store_transition *t = &o->t;
	if (strcmp(ex, "closed") == 0) {
		t->close = 1;
		if (strcmp(fin, "failure") == 0) {
			t->status_type = "error";
			t->new_status = "error";
			t->target_update_status = "error";
			o->default_message = "Target reported CLOSED with ERROR!";
		} else {
			t->status_type = "finished";
			t->new_status = "finished";
			t->target_update_status = "in_sync";
			t->installed = true;
			t->request_attributes = true;
			o->default_message = "Target reported CLOSED with OK!";
		}
	} else if (strcmp(ex, "canceled") == 0) {
		t->status_type = "canceled";
		t->new_status = "canceled";
		t->close = 1;
		t->target_update_status = "settle";
		o->default_message = "Target confirmed cancellation.";
	} else if (strcmp(ex, "rejected") == 0) {
		t->status_type = "warning";
		o->default_message = "Target REJECTED update";
	} else if (strcmp(ex, "download") == 0) {
		t->status_type = "download";
		o->default_message = "Target reported DOWNLOAD";
	} else if (strcmp(ex, "downloaded") == 0) {
		t->status_type = "downloaded";
		o->default_message = "Target reported DOWNLOADED";
		/* final for download-only actions */
		if (strcmp(a->type, "downloadonly") == 0) {
			t->new_status = "downloaded";
			t->close = 1;
			t->target_update_status = "settle";
			t->request_attributes = true;
		}
	} else {
		t->status_type = "running";
		o->default_message = "Target reported RUNNING";
	}
}

static void cancel(const char *ex, const char *fin, struct feedback_outcome *o)
{
	struct store_transition *t = &o->t;
	if (strcmp(ex, "closed") == 0 && strcmp(fin, "failure") != 0) {
		t->status_type = "canceled";
		t->new_status = "canceled";
		t->close = 1;
		t->target_update_status = "settle";
		o->default_message = "Cancellation confirmed.";
	} else if (strcmp(ex, "closed") == 0) {
		t->status_type = "error";
		t->new_status = "running";
		o->default_message = "Target was not able to complete cancellation.";
	} else if (strcmp(ex, "rejected") == 0) {
		t->status_type = "cancel_rejected";
		t->new_status = "running";
		o->default_message = "Cancellation rejected.";
	} else if (strcmp(ex, "canceled") == 0) {
		/* hawkBit issue #952: not how a device accepts a cancel */
		t->status_type = "warning";
		o->default_message =
			"Target reported cancel for a cancel which is not supported by the server";
	} else {
		t->status_type = "running";
		o->default_message = "Target reported cancellation progress";
	}
}

void feedback_map(enum feedback_kind kind, const struct store_action *a, const char *execution,
		  const char *finished, struct feedback_outcome *out)
{
	memset(out, 0, sizeof(*out));
	if (!a->active) {
		out->http_status = 410;
		return;
	}
	if (kind == FEEDBACK_CANCEL) {
		if (strcmp(a->status, "canceling") != 0) {
			out->http_status = 405;
			return;
		}
		cancel(execution, finished, out);
	} else {
		deployment(a, execution, finished, out);
	}
	out->http_status = 200;
}

void feedback_report_clear(struct feedback_report *r)
{
	json_object_put(r->details);
	memset(r, 0, sizeof(*r));
}

static int bad(char *why, size_t n, const char *msg)
{
	snprintf(why, n, "%s", msg);
	return -EINVAL;
}

static bool present(json_object *o, const char *key, json_object **v)
{
	return json_object_object_get_ex(o, key, v) && !json_object_is_type(*v, json_type_null);
}

int feedback_parse(const char *body, size_t len, struct feedback_report *out, char *why,
		   size_t why_size)
{
	struct feedback_report r = {0};
	json_object *root = NULL, *status, *result, *v;
	int ret = 0;
	json_tokener *tok = json_tokener_new_ex(32);
	if (!tok)
		return bad(why, why_size, "out of memory");
	if (len > INT32_MAX) {
		json_tokener_free(tok);
		return bad(why, why_size, "feedback: body too large");
	}
	root = json_tokener_parse_ex(tok, body, (int)len);
	bool complete = root && json_tokener_get_error(tok) == json_tokener_success &&
			json_tokener_get_parse_end(tok) == len;
	json_tokener_free(tok);
	if (!complete) {
		ret = bad(why, why_size, "feedback: invalid JSON");
		goto out;
	}
	if (!json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "status", &status) ||
	    !json_object_is_type(status, json_type_object)) {
		ret = bad(why, why_size, "feedback: 'status' object missing");
		goto out;
	}
	if (!json_object_object_get_ex(status, "execution", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    !feedback_execution_valid(json_object_get_string(v))) {
		ret = bad(why, why_size,
			  "feedback: status.execution missing or not one of closed, proceeding, "
			  "canceled, scheduled, rejected, resumed, downloaded, download");
		goto out;
	}
	snprintf(r.execution, sizeof(r.execution), "%s", json_object_get_string(v));
	if (!json_object_object_get_ex(status, "result", &result) ||
	    !json_object_is_type(result, json_type_object) ||
	    !json_object_object_get_ex(result, "finished", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    !feedback_finished_valid(json_object_get_string(v))) {
		ret = bad(why, why_size,
			  "feedback: status.result.finished missing or not one of success, failure, "
			  "none");
		goto out;
	}
	snprintf(r.finished, sizeof(r.finished), "%s", json_object_get_string(v));
	if (present(result, "progress", &v)) {
		json_object *cnt;
		if (!json_object_is_type(v, json_type_object) ||
		    !json_object_object_get_ex(v, "cnt", &cnt) ||
		    !json_object_is_type(cnt, json_type_int)) {
			ret = bad(why, why_size, "feedback: status.result.progress needs an integer 'cnt'");
			goto out;
		}
	}
	if (present(status, "code", &v)) {
		int64_t c = json_object_get_int64(v);
		if (!json_object_is_type(v, json_type_int) || c < INT32_MIN || c > INT32_MAX) {
			ret = bad(why, why_size, "feedback: status.code must be a 32-bit integer");
			goto out;
		}
		r.code = (int)c;
		r.has_code = true;
	}
	if (present(root, "timestamp", &v)) {
		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0) {
			ret = bad(why, why_size, "feedback: timestamp must be epoch milliseconds");
			goto out;
		}
		r.timestamp = json_object_get_int64(v);
	}
	r.details = json_object_new_array();
	if (!r.details) {
		ret = bad(why, why_size, "out of memory");
		goto out;
	}
	if (present(status, "details", &v)) {
		if (!json_object_is_type(v, json_type_array)) {
			ret = bad(why, why_size, "feedback: status.details must be an array of strings");
			goto out;
		}
		size_t n = json_object_array_length(v);
		if (n > FEEDBACK_MAX_DETAILS) {
			snprintf(why, why_size, "feedback: more than %d details", FEEDBACK_MAX_DETAILS);
			ret = -E2BIG;
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			json_object *e = json_object_array_get_idx(v, i);
			if (!json_object_is_type(e, json_type_string) ||
			    json_object_get_string_len(e) > FEEDBACK_MAX_DETAIL_LEN) {
				snprintf(why, why_size,
					 "feedback: status.details[%zu] must be a string of at most %d "
					 "characters", i, FEEDBACK_MAX_DETAIL_LEN);
				ret = -EINVAL;
				goto out;
			}
			json_object_array_add(r.details, json_object_get(e));
		}
	}
	*out = r;
	r.details = NULL;
out:
	feedback_report_clear(&r);
	json_object_put(root);
	return ret;
}
