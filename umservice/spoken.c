/* spoken.c — see spoken.h. */
#include "umservice/spoken.h"

#include <stdio.h>
#include <time.h>

void spoken_when(char *buf, size_t len, int64_t when_ms, int64_t now_ms)
{
	static const char *const days[] = {"Sunday", "Monday", "Tuesday",
		"Wednesday", "Thursday", "Friday", "Saturday"};
	static const char *const months[] = {"January", "February", "March",
		"April", "May", "June", "July", "August", "September",
		"October", "November", "December"};
	time_t w = (time_t)(when_ms / 1000), n = (time_t)(now_ms / 1000);
	struct tm tw, tn, ty;
	time_t y = n - 86400;
	char day[40];
	int h;

	localtime_r(&w, &tw);
	localtime_r(&n, &tn);
	localtime_r(&y, &ty);
	if (tw.tm_year == tn.tm_year && tw.tm_yday == tn.tm_yday)
		snprintf(day, sizeof day, "today");
	else if (tw.tm_year == ty.tm_year && tw.tm_yday == ty.tm_yday)
		snprintf(day, sizeof day, "yesterday");
	else if (w < n && n - w < 6 * 86400)
		snprintf(day, sizeof day, "%s", days[tw.tm_wday % 7]);
	else
		snprintf(day, sizeof day, "%s %d", months[tw.tm_mon % 12],
			 tw.tm_mday);
	h = tw.tm_hour % 12;
	snprintf(buf, len, "%s at %d:%02d %s", day, h ? h : 12, tw.tm_min,
		 tw.tm_hour < 12 ? "AM" : "PM");
}

void spoken_digits(char *buf, size_t len, const char *digits)
{
	size_t used = 0;

	if (len == 0)
		return;
	for (const char *p = digits; *p && used + 3 < len; p++) {
		if (used)
			buf[used++] = ' ';
		buf[used++] = *p;
	}
	buf[used] = '\0';
}
