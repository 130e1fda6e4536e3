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
/* Retry-After on 503 when no instance can take the call. */
#define ROUTE_RETRY_AFTER "30"
/* The Contact URI parameter that carries the token. */
#define ROUTE_TOKEN_PARAM "umtoken"

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

/* ---- pure parts, exposed for unit tests --------------------------------- */

/* The endpoint of instance in to put in a Contact for a call that came in
 * on local address local over family (AF_INET/AF_INET6) and transport
 * (OPENUM__TRANSPORT__*): that family only; the router's own address, then
 * one of the same scope (loopback or not), then the same transport
 * preferred. NULL when the instance has no endpoint the caller can reach. */
const struct reg_endpoint *route_pick_endpoint(const struct reg_instance *in,
					       const struct sockaddr *local,
					       int family, int transport);
/* The instance to route to: accepting, active calls below its
 * MaxCallsAllowed, with an endpoint usable for (family, transport), not in
 * exclude; those not avoided (avoid_until_ms after now, loop ms) first, then
 * least loaded first, round robin (*rr) among equals. */
struct reg_instance *route_choose(struct registry *reg, unsigned long long now,
				  const struct sockaddr *local, int family,
				  int transport, struct ipc_conn *const *exclude,
				  size_t n_exclude, unsigned *rr,
				  const struct reg_endpoint **ep);
/* Writes the Contact header value: <sip:user@host:port;transport=x;umtoken=hex>,
 * IPv6 hosts in brackets, the instance's FQDN instead of the literal when it
 * has one; no user part when user has characters beyond [A-Za-z0-9+-._]. */
int route_contact(char *buf, size_t len, const char *user,
		  const struct reg_instance *in, const struct reg_endpoint *ep,
		  const char *token_hex);

#endif
