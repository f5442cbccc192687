/* ddi.h - hawkBit Direct Device Integration (DDI v1) JSON: strict parsing of
 * the server's responses into C structs, and the bodies the device sends.
 *
 * Parsing follows hawkBit's OpenAPI document (components.schemas Ddi*):
 * required fields must be present with the right JSON type, enums must hold
 * one of their values, unknown fields are ignored (the server may add some).
 * On top of the schema the parser bounds every value abota relies on (string
 * lengths, action ids, hashes as hex of the right length, sizes, hrefs that
 * are absolute http(s) URLs without whitespace, at most HAWKBIT quotas of
 * chunks and artifacts), so a hostile or broken server cannot push
 * unexpected values further.  Errors name the JSON path, e.g.
 *   deployment.chunks[0].artifacts[1].hashes.sha256: not 64 hex digits
 */
#ifndef ABOTA_DDI_H
#define ABOTA_DDI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abota/error.h"
#include "abota/hawkbit_config.h"

#define DDI_MAX_HREF 4096
#define DDI_MAX_STRING 1024
#define DDI_MAX_CHUNKS 100      /* hawkBit maxSoftwareModulesPerDistributionSet */
#define DDI_MAX_ARTIFACTS 50    /* hawkBit maxArtifactsPerSoftwareModule */
#define DDI_MAX_ACTION_ID 19    /* digits of a positive 64-bit id */
#define DDI_MAX_DETAILS 50      /* hawkBit maxMessagesPerActionStatus */

enum ddi_handling { DDI_HANDLING_NONE = 0, DDI_SKIP, DDI_ATTEMPT, DDI_FORCED };
enum ddi_window { DDI_WINDOW_NONE = 0, DDI_WINDOW_AVAILABLE, DDI_WINDOW_UNAVAILABLE };

/* GET {base}: the poll. */
struct ddi_base {
	bool has_sleep;
	uint64_t sleep_s;          /* config.polling.sleep */
	char *deployment_href;     /* _links.deploymentBase.href, NULL if absent */
	char *cancel_href;         /* _links.cancelAction.href */
	char *config_data_href;    /* _links.configData.href */
	char *installed_href;      /* _links.installedBase.href */
	char *confirmation_href;   /* _links.confirmationBase.href */
};

struct ddi_artifact {
	char *filename;
	bool has_sha1, has_md5, has_sha256;
	char sha1[41], md5[33], sha256[65]; /* lowercase hex */
	bool has_size;
	uint64_t size;
	char *download_href;       /* _links.download.href */
	char *download_http_href;  /* _links.download-http.href */
};

struct ddi_chunk {
	char *part, *version, *name;
	size_t nartifacts;
	struct ddi_artifact *artifacts;
};

/* GET deploymentBase/{id}. */
struct ddi_deployment {
	char id[DDI_MAX_ACTION_ID + 1];
	enum ddi_handling download, update;
	enum ddi_window window;
	size_t nchunks;
	struct ddi_chunk *chunks;
};

int ddi_parse_base(const char *json, size_t len, struct ddi_base *out, struct abota_error *err);
void ddi_base_clear(struct ddi_base *b);

int ddi_parse_deployment(const char *json, size_t len, struct ddi_deployment *out,
			 struct abota_error *err);
void ddi_deployment_clear(struct ddi_deployment *d);

/* GET cancelAction/{id}: the stopId. */
int ddi_parse_cancel(const char *json, size_t len, char stop_id[DDI_MAX_ACTION_ID + 1],
		     struct abota_error *err);

/* config.polling.sleep: "HH:MM:SS" (hawkBit below one day) or an ISO-8601
 * duration "PnDTnHnMnS" (hawkBit from one day up).  false if malformed. */
bool ddi_parse_sleep(const char *s, uint64_t *seconds);

/* An action id as DDI uses it: 1..19 decimal digits. */
bool ddi_valid_action_id(const char *s);

/* The action id at the end of a deploymentBase/cancelAction href path
 * ("…/deploymentBase/5?c=-21" -> "5"); false if there is none. */
bool ddi_href_action_id(const char *href, const char *resource,
			char id[DDI_MAX_ACTION_ID + 1]);

/* Feedback body (DdiActionFeedback).  execution: closed, proceeding,
 * canceled, scheduled, rejected, resumed, downloaded, download; finished:
 * success, failure, none.  progress_of 0 = no progress object.  timestamp_ms
 * 0 = left out (the server then uses its own time). */
struct ddi_feedback {
	const char *execution;
	const char *finished;
	bool has_code;
	int code;
	const char *const *details;
	size_t ndetails;
	unsigned progress_cnt, progress_of;
	int64_t timestamp_ms;
};
/* Caller frees.  NULL when out of memory or an enum is not one of DDI's. */
char *ddi_build_feedback(const struct ddi_feedback *fb);
/* DdiConfigData with mode "merge"|"replace"|"remove" (NULL = no mode). */
char *ddi_build_config_data(const struct hawkbit_attribute *attrs, size_t n, const char *mode);
/* DdiConfirmationFeedback: confirmation "confirmed"|"denied". */
char *ddi_build_confirmation(const char *confirmation, int code, const char *detail);
/* DdiAssignedVersion. */
char *ddi_build_installed_base(const char *name, const char *version);

#endif
