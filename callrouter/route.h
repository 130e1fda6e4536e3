/* route.h — call routing in the router: every INVITE from a trusted UM IP
 * gateway is classified, handed to a UM service instance over IPC under a
 * one-time token, and answered with a 302 whose Contact is that instance in
 * an address family the gateway can use. Stateless SIP (no transaction
 * memory): the only state is the short wait for the instance's ack. */
#ifndef OPENUM_ROUTE_H
#define OPENUM_ROUTE_H

#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

#include "callrouter/registry.h"
#include "callrouter/routepick.h"
#include "common/directory.h"
#include "proto/openum.pb-c.h"

struct route;
struct rtab;
struct protolog;
struct sipnet;
struct sipnet_src;

/* How long the router waits for an instance's CallRoutedAck. */
#define ROUTE_ACK_TIMEOUT_MS 200
/* How long an instance that let an ack time out gets calls only when no
 * other instance can take them (unless it acks something meanwhile). */
#define ROUTE_NOACK_AVOID_S 10
#define ROUTE_NOACK_AVOID_MS (ROUTE_NOACK_AVOID_S * 1000)
/* How long a token is valid at the instance. */
#define ROUTE_TOKEN_TTL_MS 30000
/* How long a 302 is kept for a retransmission of its INVITE over UDP
 * (redirects.h): the token's life less the time to follow the 302. */
#define ROUTE_RESEND_MS (ROUTE_TOKEN_TTL_MS - 5000)
/* ... in a table of 2^16 entries: 2 MiB at most, at any rate. */
#define ROUTE_RESEND_SLOTS_LOG2 16
/* Retry-After on 503 when no instance can take the call. */
#define ROUTE_RETRY_AFTER "30"

int route_alloc(struct route **out, uv_loop_t *uv, struct registry *reg);
void route_free(struct route *r);
/* Installs a new routing snapshot (owned by route from now on). */
void route_set_table(struct route *r, struct rtab *t);
struct rtab *route_table(const struct route *r);
/* Protocol log to write to, or NULL (not owned). */
void route_set_protolog(struct route *r, struct protolog *p);
/* The sockets responses go out on (not owned). */
void route_set_net(struct route *r, struct sipnet *net);
/* Every SIP message the router receives (a sipnet_msg_h; arg: the route). */
void route_sip_cb(void *arg, const struct sipnet_src *src, const char *buf,
		  size_t len);
/* An instance acknowledged (or refused) a CallRouted. */
void route_ack(struct route *r, struct ipc_conn *from,
	       const Openum__CallRoutedAck *ack);
/* An instance's connection is going away: its pending calls move on. */
void route_instance_gone(struct route *r, struct ipc_conn *c);

#endif
