/* error.c - error messages with context prefixes. */
#include "abota/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

/* the name in parentheses: error.h may define abota_error_set as a macro (analyzer model) */
int (abota_error_set)(struct abota_error *err, int code, const char *fmt, ...)
{
	if (code >= 0)
		code = -EIO;
	if (!err)
		return code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	err->code = code;
	return code;
}

void abota_error_prefix(struct abota_error *err, const char *fmt, ...)
{
	if (!err)
		return;
	char prefix[ABOTA_ERROR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* Truncation is acceptable: the message is for humans. */
	char joined[2 * ABOTA_ERROR_MSG_MAX + 2];
	snprintf(joined, sizeof(joined), "%s: %s", prefix, err->msg);
	memcpy(err->msg, joined, sizeof(err->msg) - 1);
	err->msg[sizeof(err->msg) - 1] = '\0';
}

void abota_error_clear(struct abota_error *err)
{
	if (!err)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}

void abota_error_add_openssl(struct abota_error *err)
{
	unsigned long e = 0, last;
	/* The newest entry usually names the root cause best. */
	while ((last = ERR_get_error()) != 0)
		e = last;
	if (!err || e == 0)
		return;
	char buf[256];
	ERR_error_string_n(e, buf, sizeof(buf));
	const char *reason = ERR_reason_error_string(e);
	size_t used = strlen(err->msg);
	if (used + 4 < sizeof(err->msg))
		snprintf(err->msg + used, sizeof(err->msg) - used, " (%s)", reason ? reason : buf);
}
