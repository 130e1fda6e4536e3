/* cause.h — the optional readable reason (`char **cause`) that fallible
 * functions hand back next to their errno value (STYLE.md rule 3). */
#ifndef OPENUM_CAUSE_H
#define OPENUM_CAUSE_H

/* Replaces *cause with a newly formatted string (the caller frees it);
 * does nothing when cause is NULL. */
void cause_set(char **cause, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Sets *cause only if no reason is there yet: the first (innermost)
 * reason wins when several layers would explain the same failure. */
void cause_first(char **cause, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
