/* cause.c — formatting of readable error reasons. */
#include "common/cause.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* See the header. */
void cause_set(char **cause, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (!cause)
		return;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	free(*cause);
	*cause = s;
}

/* See the header. */
void cause_first(char **cause, const char *fmt, ...)
{
	va_list ap;

	if (!cause || *cause)
		return;
	va_start(ap, fmt);
	if (vasprintf(cause, fmt, ap) < 0)
		*cause = NULL;
	va_end(ap);
}
