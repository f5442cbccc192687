/* mwindow.c - maintenance windows (see mwindow.h). */
#include "mwindow.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const months[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
				     "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const days[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

/* One value: a number or (months, days) a three-letter name. */
static bool value(const char **p, int lo, int hi, const char *const *names, int *out)
{
	const char *s = *p;
	if (names && isalpha((unsigned char)s[0])) {
		for (int i = 0; i <= hi - lo; i++) {
			if (strncasecmp(s, names[i], 3) == 0) {
				*out = lo + i;
				*p = s + 3;
				return true;
			}
		}
		return false;
	}
	if (!isdigit((unsigned char)*s))
		return false;
	long v = 0;
	while (isdigit((unsigned char)*s) && v <= 9999)
		v = v * 10 + (*s++ - '0');
	if (v < lo || v > hi)
		return false;
	*out = (int)v;
	*p = s;
	return true;
}

/* A field into a bit set of [lo, hi]; *any for "*" or "?". */
static bool field(const char *f, int lo, int hi, const char *const *names, uint64_t *bits,
		  bool *any)
{
	*bits = 0;
	*any = false;
	if (strcmp(f, "?") == 0 || strcmp(f, "*") == 0) {
		*any = true;
		for (int v = lo; v <= hi; v++)
			*bits |= UINT64_C(1) << v;
		return true;
	}
	const char *p = f;
	for (;;) {
		int a, b, step = 1;
		if (*p == '*') {
			a = lo;
			b = hi;
			p++;
		} else {
			if (!value(&p, lo, hi, names, &a))
				return false;
			b = a;
			if (*p == '-') {
				p++;
				if (!value(&p, lo, hi, names, &b) || b < a)
					return false;
			}
		}
		if (*p == '/') {
			p++;
			if (!value(&p, 1, hi, NULL, &step))
				return false;
			if (b == a)
				b = hi; /* "5/15": from 5 on, every 15 */
		}
		for (int v = a; v <= b; v += step)
			*bits |= UINT64_C(1) << v;
		if (*p == '\0')
			return true;
		if (*p != ',')
			return false;
		p++;
	}
}

static int bad(char *why, size_t n, const char *msg)
{
	snprintf(why, n, "maintenanceWindow.%s", msg);
	return -EINVAL;
}

int mwindow_parse(const char *schedule, const char *duration, const char *timezone,
		  struct mwindow *out, char *why, size_t why_size)
{
	struct mwindow w = {0};
	char buf[256], *f[8];
	int n = 0;
	if (!schedule || strlen(schedule) >= sizeof(buf))
		return bad(why, why_size, "schedule: a Quartz cron expression is required");
	snprintf(buf, sizeof(buf), "%s", schedule);
	for (char *save = NULL, *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (n == 8)
			break;
		f[n++] = t;
	}
	if (n != 6 && n != 7)
		return bad(why, why_size,
			   "schedule: 6 or 7 fields (seconds minutes hours day-of-month month "
			   "day-of-week [year])");
	uint64_t b;
	bool any;
	if (!field(f[0], 0, 59, NULL, &w.sec, &any) || !field(f[1], 0, 59, NULL, &w.min, &any))
		return bad(why, why_size, "schedule: bad seconds or minutes field");
	if (!field(f[2], 0, 23, NULL, &b, &any))
		return bad(why, why_size, "schedule: bad hours field");
	w.hour = (uint32_t)b;
	if (!field(f[3], 1, 31, NULL, &b, &w.dom_any))
		return bad(why, why_size, "schedule: bad day-of-month field (Quartz's L and W are not supported)");
	w.dom = (uint32_t)b;
	if (!field(f[4], 1, 12, months, &b, &any))
		return bad(why, why_size, "schedule: bad month field");
	w.mon = (uint32_t)b;
	if (!field(f[5], 1, 7, days, &b, &w.dow_any))
		return bad(why, why_size, "schedule: bad day-of-week field (Quartz's L and # are not supported)");
	w.dow = (uint32_t)b;
	if (n == 7 && strcmp(f[6], "*") != 0) {
		const char *p = f[6];
		if (!value(&p, 1970, 2199, NULL, &w.year_lo))
			return bad(why, why_size, "schedule: bad year field");
		w.year_hi = w.year_lo;
		if (*p == '-' && (p++, !value(&p, w.year_lo, 2199, NULL, &w.year_hi)))
			return bad(why, why_size, "schedule: bad year field");
		if (*p)
			return bad(why, why_size, "schedule: bad year field");
	}
	unsigned h, m, s;
	char tail;
	if (!duration || strlen(duration) != 8 ||
	    sscanf(duration, "%2u:%2u:%2u%c", &h, &m, &s, &tail) != 3 || h > 23 || m > 59 ||
	    s > 59 || (h | m | s) == 0)
		return bad(why, why_size, "duration: HH:MM:SS, more than zero and below one day");
	w.duration = (int)(h * 3600 + m * 60 + s);
	char sign;
	if (!timezone || strlen(timezone) != 6 ||
	    sscanf(timezone, "%c%2u:%2u%c", &sign, &h, &m, &tail) != 3 ||
	    (sign != '+' && sign != '-') || h > 14 || m > 59)
		return bad(why, why_size, "timezone: an offset such as +01:00 or -05:30");
	w.offset = (sign == '-' ? -1 : 1) * (int)(h * 3600 + m * 60);
	*out = w;
	return 0;
}

static bool matches(const struct mwindow *w, time_t t)
{
	struct tm tm;
	time_t local = t + w->offset;
	gmtime_r(&local, &tm);
	if (!(w->sec >> tm.tm_sec & 1) || !(w->min >> tm.tm_min & 1) ||
	    !(w->hour >> tm.tm_hour & 1) || !(w->mon >> (tm.tm_mon + 1) & 1))
		return false;
	int year = tm.tm_year + 1900;
	if (w->year_lo && (year < w->year_lo || year > w->year_hi))
		return false;
	bool dom = w->dom >> tm.tm_mday & 1, dow = w->dow >> (tm.tm_wday + 1) & 1;
	/* Quartz: one of the two is "?"; with both given, both must match */
	if (w->dom_any)
		return dow;
	if (w->dow_any)
		return dom;
	return dom && dow;
}

bool mwindow_open(const struct mwindow *w, time_t now)
{
	/* at most one day of seconds, each a few comparisons */
	for (int back = 0; back < w->duration; back++)
		if (matches(w, now - back))
			return true;
	return false;
}
