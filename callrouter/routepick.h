/* routepick.h — the router's pure decisions about where a call goes: which
 * UM service instance, which of its addresses a gateway can reach (family,
 * scope, transport), and the Contact of the 302 that says so. No I/O, no
 * state: route.c calls them for every INVITE and the unit tests directly. */
#ifndef OPENUM_ROUTEPICK_H
#define OPENUM_ROUTEPICK_H

#include <stddef.h>
#include <sys/socket.h>

#include "callrouter/registry.h"

struct ipc_conn;

/* The Contact URI parameter that carries the token. */
#define ROUTE_TOKEN_PARAM "umtoken"

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
