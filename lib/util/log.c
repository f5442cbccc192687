/* log.c - leveled logging to stderr. */
#include "abota/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int current_level = -1;

static enum log_level level_from_env(void)
{
	const char *v = getenv("ABOTA_LOG");
	if (!v)
		return LOG_LEVEL_WARNING;
	if (strcmp(v, "error") == 0)
		return LOG_LEVEL_ERROR;
	if (strcmp(v, "info") == 0)
		return LOG_LEVEL_INFO;
	if (strcmp(v, "debug") == 0)
		return LOG_LEVEL_DEBUG;
	return LOG_LEVEL_WARNING;
}

void log_set_level(enum log_level level)
{
	current_level = (int)level;
}

enum log_level log_get_level(void)
{
	if (current_level < 0)
		current_level = (int)level_from_env();
	return (enum log_level)current_level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	if (level > log_get_level())
		return;
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write per line so lines of concurrent threads do not interleave. */
	fprintf(stderr, "abota: %s: %s\n", names[level], line);
}
