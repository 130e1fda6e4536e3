/* protolog.c — append-only SIP protocol log. One record per message:
 *
 *   2026-11-21T20:13:38.246123Z in udp local [::1]:5060 remote [::1]:40512 412 bytes
 *   INVITE sip:1001@[::1]:5060 SIP/2.0
 *   ...
 *   (blank line)
 *
 * The file is opened in append mode and written with one fwrite per record,
 * so `tail -f` shows whole messages. */
#define LOG_MODULE "protolog"
#include "common/protolog.h"
#include "common/log.h"
#include "common/netaddr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct protolog {
	FILE *f;
	char *path;
};

/* Opens (creating or appending to) the protocol log at path. */
int protolog_open(struct protolog **out, const char *path, char **cause)
{
	struct protolog *p;

	p = calloc(1, sizeof *p);
	if (!p)
		return ENOMEM;
	p->path = strdup(path);
	p->f = fopen(path, "a");
	if (!p->f || !p->path) {
		int err = errno ? errno : ENOMEM;

		if (cause && asprintf(cause, "cannot open protocol log %s: %s",
				      path, strerror(err)) < 0)
			*cause = NULL;
		protolog_close(p);
		return err;
	}
	*out = p;
	return 0;
}

/* Closes the log; NULL is fine. */
void protolog_close(struct protolog *p)
{
	if (!p)
		return;
	if (p->f)
		fclose(p->f);
	free(p->path);
	free(p);
}

/* The file the log writes to. */
const char *protolog_path(const struct protolog *p)
{
	return p->path;
}

/* Appends one message record. */
void protolog_write(struct protolog *p, const char *dir, const char *transport,
		    const struct sockaddr *local, const struct sockaddr *remote,
		    const char *msg, size_t len)
{
	char l[NETADDR_STRLEN], r[NETADDR_STRLEN], head[256];
	struct timespec ts;
	struct tm tm;
	int n;

	if (!p || !p->f)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(head, sizeof head,
		     "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ %s %s local %s remote %s %zu bytes\n",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000L, dir, transport,
		     local ? netaddr_str(local, l, sizeof l) : "?",
		     remote ? netaddr_str(remote, r, sizeof r) : "?", len);
	if (n < 0)
		return;
	fwrite(head, 1, (size_t)n, p->f);
	fwrite(msg, 1, len, p->f);
	if (len == 0 || msg[len - 1] != '\n')
		fputc('\n', p->f);
	fputc('\n', p->f);
	fflush(p->f);
}
