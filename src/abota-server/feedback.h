/* feedback.h - hawkBit's mapping of device feedback to action state.
 *
 * Pure functions (no I/O) so that the table of hawkbit-ddi.md sections 1.5
 * and 1.6 is unit-tested directly.
 */
#ifndef ABOTA_SERVER_FEEDBACK_H
#define ABOTA_SERVER_FEEDBACK_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

enum feedback_kind {
	FEEDBACK_DEPLOYMENT,
	FEEDBACK_CANCEL,
};

struct feedback_outcome {
	int http_status;                /* 200, or the error to answer with */
	struct store_transition t;      /* valid when http_status == 200 */
	const char *default_message;    /* recorded when the device sent no details */
};

/* execution: closed|proceeding|canceled|scheduled|rejected|resumed|downloaded|download
 * finished: success|failure|none.  Both already validated. */
void feedback_map(enum feedback_kind kind, const struct store_action *a, const char *execution,
		  const char *finished, struct feedback_outcome *out);

bool feedback_execution_valid(const char *s);
bool feedback_finished_valid(const char *s);

#define FEEDBACK_MAX_DETAILS 50     /* hawkBit's maxMessagesPerActionStatus */
#define FEEDBACK_MAX_DETAIL_LEN 4096

/* A validated DdiActionFeedback body.  Unknown members (the legacy id and
 * time that SWUpdate and rauc-hawkbit-updater send) are ignored. */
struct feedback_report {
	char execution[16], finished[8];
	bool has_code;
	int code;
	int64_t timestamp;   /* 0 = absent */
	json_object *details; /* array of strings, owned */
};

/* Parses body[0..len).  0 on success; -EINVAL for a body to answer with 400
 * and -E2BIG for too many details (429), with the reason in why. */
int feedback_parse(const char *body, size_t len, struct feedback_report *out, char *why,
		   size_t why_size);
void feedback_report_clear(struct feedback_report *r);

#endif
