/* error.h - error reporting with context prefixes.
 *
 * Library functions return 0 or a negative errno-style code and, when given a
 * non-NULL struct abota_error, fill it with a human-readable message.  Callers
 * add context with abota_error_prefix() so the user reads one line such as
 *   bundle.raucb: signature: certificate has expired
 */
#ifndef ABOTA_ERROR_H
#define ABOTA_ERROR_H

#include <stddef.h>

#define ABOTA_ERROR_MSG_MAX 1024

struct abota_error {
	int code;                       /* negative errno-style code, 0 = none */
	char msg[ABOTA_ERROR_MSG_MAX];  /* NUL-terminated message */
};

/* Sets the error (if err is not NULL) and returns code, so callers can write
 * `return abota_error_set(err, -EINVAL, "bad size %zu", n);`.
 * code must be negative; 0 or positive values are turned into -EIO. */
int abota_error_set(struct abota_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#ifdef __clang_analyzer__
/* For clang-tidy's static analyzer (scripts/static-analysis.sh), which sees one file at a
 * time: abota_error_set() never returns 0 or more.  Without this model the analyzer follows
 * impossible paths on which `return abota_error_set(...)` reported success and the caller
 * read out-parameters that were never set. */
static inline int abota_error_set_result_(int code)
{
	if (code >= 0)
		__builtin_unreachable();
	return code;
}
#define abota_error_set(...) abota_error_set_result_(abota_error_set(__VA_ARGS__))
#endif

/* Prepends "<context>: " to an existing message. No-op when err is NULL. */
void abota_error_prefix(struct abota_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Clears the error. */
void abota_error_clear(struct abota_error *err);

/* Adds the newest OpenSSL error queue entry (if any) to the message and
 * clears the queue.  Used right after a failed OpenSSL call. */
void abota_error_add_openssl(struct abota_error *err);

#endif
