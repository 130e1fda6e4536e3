/* protolog.h — the SIP protocol log: every message in and out with time,
 * transport, local and remote address ("[v6]:port"), so an administrator
 * can see which address family every hop used. */
#ifndef OPENUM_PROTOLOG_H
#define OPENUM_PROTOLOG_H

#include <stddef.h>
#include <sys/socket.h>

struct protolog;

int protolog_open(struct protolog **out, const char *path, char **cause);
void protolog_close(struct protolog *p);
const char *protolog_path(const struct protolog *p);
/* dir is "in" or "out"; transport "udp"/"tcp"/"tls". */
void protolog_write(struct protolog *p, const char *dir, const char *transport,
		    const struct sockaddr *local, const struct sockaddr *remote,
		    const char *msg, size_t len);

#endif
