/* spoken.h — how numbers and times are written for the speech synthesiser:
 * digits one by one ("4 2 5 5", not "four thousand..."), and when a message
 * arrived as a person says it ("today at 3:42 PM", "yesterday at 9:05 AM",
 * "Monday at 11:00 PM" within the last week, else "November 3 at ...").
 * Local time (TZ). Pure. */
#ifndef OPENUM_SPOKEN_H
#define OPENUM_SPOKEN_H

#include <stddef.h>
#include <stdint.h>

void spoken_when(char *buf, size_t len, int64_t when_ms, int64_t now_ms);
void spoken_digits(char *buf, size_t len, const char *digits);

#endif
