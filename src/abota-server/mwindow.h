/* mwindow.h - hawkBit maintenance windows: a Quartz cron schedule (when a
 * window opens), a duration and a UTC offset.  An action with a window may
 * be downloaded at any time and installed only while a window is open. */
#ifndef ABOTA_SERVER_MWINDOW_H
#define ABOTA_SERVER_MWINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct mwindow {
	/* allowed values as bit sets: seconds, minutes, hours, days of the
	 * month (1-31), months (1-12), days of the week (1-7, Sunday = 1) */
	uint64_t sec, min;
	uint32_t hour, dom, mon, dow;
	bool dom_any, dow_any;     /* "?" or "*" */
	int year_lo, year_hi;      /* 0 = any */
	int duration;              /* seconds, 1 .. 1 day */
	int offset;                /* seconds east of UTC */
};

/* schedule: 6 or 7 fields "s m h dom mon dow [year]" with numbers, names
 * (JAN-DEC, SUN-SAT), '*', '?', lists, ranges and /steps (Quartz's L, W and
 * # are refused); duration "HH:MM:SS"; timezone "+HH:MM" / "-HH:MM".
 * 0, or -EINVAL with the reason in why. */
int mwindow_parse(const char *schedule, const char *duration, const char *timezone,
		  struct mwindow *out, char *why, size_t why_size);

/* Whether a window is open at `now`: a start time matching the schedule
 * lies in (now - duration, now]. */
bool mwindow_open(const struct mwindow *w, time_t now);

#endif
