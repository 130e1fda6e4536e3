/* siptcp.h — the TCP half of the router's SIP sockets (sipnet.h is the
 * interface the router uses; only sipnet.c calls this): per family a
 * listener, the connections it accepts framed into SIP messages, their
 * responses written once per loop turn, and the limits that keep
 * connections from addresses that are no UM IP gateway's from locking the
 * gateways out (sipnet_set_trust). */
#ifndef OPENUM_SIPTCP_H
#define OPENUM_SIPTCP_H

#include "callrouter/sipnet.h"

struct siptcp;

int siptcp_alloc(struct siptcp **out, uv_loop_t *uv, sipnet_msg_h *h, void *arg);
/* Listens on addr (a wildcard of its family, IPv6 only for IPv6); 0 or an
 * errno. */
int siptcp_listen(struct siptcp *t, const struct sockaddr *addr);
/* Stops listening in a family (AF_INET / AF_INET6) and closes its
 * connections; whether there was a listener. */
bool siptcp_close(struct siptcp *t, int family);
/* Queues a response on c for the end of this loop turn. 0 or an errno
 * (ENOTCONN: the connection has closed). */
int siptcp_send(struct siptcp *t, struct sipnet_conn *c, const char *buf,
		size_t len);
void siptcp_set_trust(struct siptcp *t, sipnet_trust_h *h, void *arg);
/* Writes what is queued, then closes everything; connections still
 * referenced are freed on release. */
void siptcp_free(struct siptcp *t);

#endif
