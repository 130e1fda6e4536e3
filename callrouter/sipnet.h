/* sipnet.h — the call router's SIP sockets. Per address family one UDP
 * socket and one TCP listener on the SIP port, bound to the wildcard of
 * that family only (IPV6_V6ONLY: IPv4 peers arrive on IPv4 sockets, never
 * as ::ffff: mapped addresses), so IPAddressFamily IPv4Only / IPv6Only / Any
 * is exactly which families are open, and an address added to the host
 * later is served at once. UDP datagrams are read in batches (recvmmsg) with
 * the address they were sent to (IP_PKTINFO), and answered from that
 * address; TCP streams are framed into messages (sipmsg_frame). Every
 * message goes to one handler; nothing here keeps SIP state. */
#ifndef OPENUM_SIPNET_H
#define OPENUM_SIPNET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

struct sipnet;
struct sipnet_conn;
struct sipl_endpoint;

/* Where a message came from and how to answer it. */
struct sipnet_src {
	struct sockaddr_storage local, remote;
	int family;			/* AF_INET / AF_INET6 */
	bool tcp;
	unsigned ifindex;		/* UDP: the interface it arrived on */
	struct sipnet_conn *conn;	/* TCP: its connection (not referenced) */
};

/* One message (framed, not parsed); buf is valid during the call only. */
typedef void (sipnet_msg_h)(void *arg, const struct sipnet_src *src,
			    const char *buf, size_t len);

int sipnet_alloc(struct sipnet **out, uv_loop_t *uv, sipnet_msg_h *h,
		 void *arg);
/* Opens the families wanted (family[0] IPv4, family[1] IPv6) on port and
 * closes the others; a changed port reopens both. When the new sockets
 * cannot all be opened the previous ones are restored and *cause says why. */
int sipnet_apply(struct sipnet *s, const bool family[2], unsigned port,
		 char **cause);
/* Sends a response: UDP to dst from the address the request arrived on,
 * TCP on the request's connection. 0 or an errno (ENOTCONN: the
 * connection has closed). */
int sipnet_send(struct sipnet *s, const struct sipnet_src *src,
		const struct sockaddr *dst, const char *buf, size_t len);
/* A connection held past its message (a call waiting for its handoff)
 * stays valid, if closed, until released. */
struct sipnet_conn *sipnet_conn_ref(struct sipnet_conn *c);
void sipnet_conn_unref(struct sipnet_conn *c);
/* The addresses the open sockets can be reached on: every address of the
 * host in an open family (link-local IPv6 left out), UDP and TCP each.
 * Returns how many there are (more than max: only max written). */
size_t sipnet_endpoints(const struct sipnet *s, struct sipl_endpoint *eps,
			size_t max);
/* Whether a TCP peer's address is a UM IP gateway's, asked once when it
 * connects. Connections from other addresses give way first: one that has
 * sent nothing for 10 s is closed, and at the connection limit (4096, or
 * the descriptors the process may open less 64) a gateway's new connection
 * closes the oldest of them instead of being refused. Without a hook every
 * peer counts as a gateway. */
typedef bool (sipnet_trust_h)(void *arg, const struct sockaddr *peer);
void sipnet_set_trust(struct sipnet *s, sipnet_trust_h *h, void *arg);
/* Closes everything; connections still referenced are freed on release. */
void sipnet_free(struct sipnet *s);

#endif
