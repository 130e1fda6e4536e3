/* routepick.c — which instance takes a call, which of its addresses goes in
 * the Contact, and the Contact text (routepick.h). */
#include "callrouter/routepick.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <netinet/in.h>

static const char *transport_name(int tr)
{
	return tr == OPENUM__TRANSPORT__TRANSPORT_TCP ? "tcp"
	       : tr == OPENUM__TRANSPORT__TRANSPORT_TLS ? "tls" : "udp";
}

static int proto_family(int af)
{
	return af == AF_INET6 ? OPENUM__ADDRESS_FAMILY__AF_IPV6
			      : OPENUM__ADDRESS_FAMILY__AF_IPV4;
}

/* See the header. The address the gateway reached the router on says which
 * of the instance's addresses it can reach too: the same address (router
 * and instance on one host) is best, then one of the same scope (loopback
 * callers get loopback, others never do), then any of the family. Compared
 * in binary: this runs twice for every call. */
const struct reg_endpoint *route_pick_endpoint(const struct reg_instance *in,
					       const struct sockaddr *local,
					       int family, int transport)
{
	const struct reg_endpoint *best = NULL;
	int want = proto_family(family), best_score = -1;
	const unsigned char *laddr = NULL;
	size_t alen = family == AF_INET6 ? 16 : 4;
	bool local_lo = false;

	if (local && local->sa_family == family && family == AF_INET) {
		laddr = (const unsigned char *)&((const struct sockaddr_in *)local)->sin_addr;
		local_lo = laddr[0] == 127;
	} else if (local && local->sa_family == family && family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)local)->sin6_addr;

		laddr = a->s6_addr;
		local_lo = IN6_IS_ADDR_LOOPBACK(a);
	}
	for (size_t i = 0; i < in->n_ep; i++) {
		const struct reg_endpoint *e = &in->ep[i];
		int score = 0;

		if (e->family != want)
			continue;
		if (e->transport != transport &&
		    e->transport == OPENUM__TRANSPORT__TRANSPORT_TLS)
			continue;
		if (laddr && !memcmp(laddr, e->addr, alen))
			score += 4;
		else if (laddr && e->loopback == local_lo)
			score += 2;
		else if (laddr)
			score -= 8;	/* unreachable scope: last resort only */
		if (e->transport == transport)
			score += 1;
		if (score > best_score) {
			best_score = score;
			best = e;
		}
	}
	/* A loopback address is never handed to a remote caller. */
	if (best && laddr && !local_lo && best->loopback)
		return NULL;
	return best;
}

static bool excluded(struct ipc_conn *c, struct ipc_conn *const *ex, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ex[i] == c)
			return true;
	}
	return false;
}

/* See the header. */
struct reg_instance *route_choose(struct registry *reg, unsigned long long now,
				  const struct sockaddr *local, int family,
				  int transport, struct ipc_conn *const *exclude,
				  size_t n_exclude, unsigned *rr,
				  const struct reg_endpoint **ep)
{
	size_t n = reg_count(reg);
	struct reg_instance *best = NULL;
	const struct reg_endpoint *best_ep = NULL;
	unsigned start = rr ? *rr : 0;
	bool best_avoid = false;

	for (size_t k = 0; k < n; k++) {
		struct reg_instance *in = reg_at(reg, (start + k) % n);
		const struct reg_endpoint *e;
		bool avoid;

		if (!in->accepting || in->active_calls >= in->max_calls ||
		    excluded(in->conn, exclude, n_exclude))
			continue;
		e = route_pick_endpoint(in, local, family, transport);
		if (!e)
			continue;
		avoid = in->avoid_until_ms > now;
		if (!best || avoid < best_avoid ||
		    (avoid == best_avoid && in->active_calls < best->active_calls)) {
			best = in;
			best_ep = e;
			best_avoid = avoid;
		}
	}
	if (best && rr)
		*rr = start + 1;
	if (best && ep)
		*ep = best_ep;
	return best;
}

/* See the header. */
int route_contact(char *buf, size_t len, const char *user,
		  const struct reg_instance *in, const struct reg_endpoint *ep,
		  const char *token_hex)
{
	bool v6 = ep->family == OPENUM__ADDRESS_FAMILY__AF_IPV6 && !in->fqdn[0];
	const char *host = in->fqdn[0] ? in->fqdn : ep->host;
	const char *port = "";

	/* The user is the caller's (decoded) Request-URI user: only plain
	 * characters go back into a header; anything else is left out. */
	if (user && user[strspn(user, "0123456789abcdefghijklmnopqrstuvwxyz"
				      "ABCDEFGHIJKLMNOPQRSTUVWXYZ+-._")])
		user = NULL;
	if (user && !*user)
		user = NULL;
	{
		/* one call per INVITE: plain appends, not snprintf */
		const char *parts[] = {"<sip:", user ? user : "", user ? "@" : "",
				       v6 ? "[" : "", host, v6 ? "]" : "", ":", port,
				       ";transport=", transport_name(ep->transport),
				       ";" ROUTE_TOKEN_PARAM "=", token_hex, ">"};
		char port_s[8];
		unsigned v = ep->port, k = sizeof port_s - 1;
		size_t at = 0;

		port_s[k] = 0;
		do {
			port_s[--k] = (char)('0' + v % 10);
			v /= 10;
		} while (v && k > 0);
		parts[7] = port_s + k;
		for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
			size_t l = strlen(parts[i]);

			if (at + l >= len)
				return ENOSPC;
			memcpy(buf + at, parts[i], l);
			at += l;
		}
		buf[at] = 0;
	}
	return 0;
}
