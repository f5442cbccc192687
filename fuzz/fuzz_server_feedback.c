/* fuzz_server_feedback.c - feedback_parse, abota-server's parser of the
 * JSON bodies devices post as DDI feedback.  An accepted body yields a known
 * execution and result, and at most FEEDBACK_MAX_DETAILS string details. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "feedback.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct feedback_report r;
	char why[256];
	int ret = feedback_parse((const char *)data, size, &r, why, sizeof(why));
	FUZZ_CHECK(ret == 0 || ret == -EINVAL || ret == -E2BIG);
	if (ret == 0) {
		FUZZ_CHECK(feedback_execution_valid(r.execution));
		FUZZ_CHECK(feedback_finished_valid(r.finished));
		FUZZ_CHECK(json_object_array_length(r.details) <= FEEDBACK_MAX_DETAILS);
		feedback_report_clear(&r);
	} else {
		FUZZ_CHECK(why[0] != '\0');
	}
	return 0;
}
