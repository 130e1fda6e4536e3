/* sipl.c — per-family nta agents bound on UDP+TCP of one port.
 *
 * sofia's "sip:0.0.0.0:P" and "sip:[::]:P" do not create wildcard sockets:
 * tport enumerates the interface addresses of that family at bind time and
 * binds each one (NOTES-stack.md §1). That gives us exactly the IPv4Only /
 * IPv6Only / Any split we need, with IPV6_V6ONLY semantics for free. The
 * price is that addresses added after the bind are not served until the next
 * rebind. */
#define LOG_MODULE "sipl"
#include "common/sipl.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <sofia-sip/nta_tport.h>
#include <sofia-sip/tport.h>
#include <sofia-sip/tport_tag.h>

#define SIPL_UDP_RMEM (4u * 1024 * 1024)

struct sipl {
	su_root_t *root;
	struct sipl_handlers h;
	char name[32];
	nta_agent_t *agent[SIPL_NFAMILIES];
	unsigned port[SIPL_NFAMILIES];
};

/* "IPv4" / "IPv6". */
const char *sipl_family_name(enum sipl_family family)
{
	return family == SIPL_FAMILY_IPV6 ? "IPv6" : "IPv4";
}

/* Creates an empty set of listeners; sipl_apply() binds them. */
int sipl_alloc(struct sipl **out, su_root_t *root,
	       const struct sipl_handlers *h, const char *name)
{
	struct sipl *s;

	if (!out || !root || !h)
		return EINVAL;
	s = calloc(1, sizeof *s);
	if (!s)
		return ENOMEM;
	s->root = root;
	s->h = *h;
	snprintf(s->name, sizeof s->name, "%s", name ? name : "sip");
	*out = s;
	return 0;
}

static void close_family(struct sipl *s, enum sipl_family f)
{
	if (!s->agent[f])
		return;
	if (s->h.down_h)
		s->h.down_h(s->h.arg, s->agent[f], f);
	nta_agent_destroy(s->agent[f]);
	s->agent[f] = NULL;
	log_notice("%s: closed %s listeners on port %u", s->name,
		   sipl_family_name(f), s->port[f]);
	s->port[f] = 0;
}

static int apply(struct sipl *s, const struct sipl_config *cfg, char **cause);

static int probe_one(int family, int type, unsigned port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, err = 0;

	memset(&ss, 0, sizeof ss);
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		len = sizeof *a;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		len = sizeof *a;
	}
	fd = socket(family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, len) != 0)
		err = errno;
	close(fd);
	return err;
}

static int probe_port(enum sipl_family f, unsigned port)
{
	int family = f == SIPL_FAMILY_IPV6 ? AF_INET6 : AF_INET;
	int err = probe_one(family, SOCK_DGRAM, port);

	if (!err)
		err = probe_one(family, SOCK_STREAM, port);
	return err ? err : EADDRNOTAVAIL;
}

static int open_family(struct sipl *s, enum sipl_family f, unsigned port,
		       char **cause)
{
	char url[64];
	const char *urlp = url;
	nta_agent_t *agent;
	int err;

	snprintf(url, sizeof url, "sip:%s:%u",
		 f == SIPL_FAMILY_IPV6 ? "[::]" : "0.0.0.0", port);
	errno = 0;
	agent = nta_agent_create(s->root, URL_STRING_MAKE(urlp), s->h.message_h,
				 s->h.message_arg, NTATAG_UA(s->h.ua ? 1 : 0),
				 NTATAG_SERVER_RPORT(1),
				 /* sofia answers STUN on the SIP port by default,
				  * to anyone: a SIP listener has no business doing
				  * that. */
				 TPTAG_STUN_SERVER(0),
				 /* A burst of INVITEs must wait in the socket, not be
				  * dropped by it: 4 MB (the kernel caps it at
				  * net.core.rmem_max). */
				 TPTAG_UDP_RMEM(SIPL_UDP_RMEM), TAG_END());
	if (!agent) {
		/* sofia's clean-up overwrites errno; find the real reason by
		 * trying the bind ourselves. */
		err = probe_port(f, port);
		if (cause && asprintf(cause,
				      "cannot listen on %s UDP/TCP port %u: %s",
				      sipl_family_name(f), port,
				      strerror(err)) < 0)
			*cause = NULL;
		log_error("%s: cannot listen on %s UDP/TCP port %u: %s",
			  s->name, sipl_family_name(f), port, strerror(err));
		return err;
	}
	s->agent[f] = agent;
	s->port[f] = port;
	if (s->h.up_h && s->h.up_h(s->h.arg, agent, f) != 0) {
		close_family(s, f);
		if (cause && asprintf(cause, "could not set up %s listeners",
				      sipl_family_name(f)) < 0)
			*cause = NULL;
		return EIO;
	}
	{
		struct sipl_endpoint eps[16];
		size_t n = sipl_endpoints(s, eps, 16);

		for (size_t i = 0; i < n && i < 16; i++) {
			if (eps[i].family != f)
				continue;
			log_notice("%s: listening on %s %s%s%s:%u", s->name,
				   eps[i].transport, f == SIPL_FAMILY_IPV6 ? "[" : "",
				   eps[i].host, f == SIPL_FAMILY_IPV6 ? "]" : "",
				   eps[i].port);
		}
	}
	return 0;
}

/* Rebinds to match cfg; see the header. When the new listeners cannot all
 * be opened, the previous ones are restored, so a bad change (a port in
 * use) never leaves the service deaf on a family it was serving. */
int sipl_apply(struct sipl *s, const struct sipl_config *cfg, char **cause)
{
	struct sipl_config old;
	bool had_any = false;
	int err;

	if (!s || !cfg || cfg->port == 0 || cfg->port > 65535)
		return EINVAL;
	memset(&old, 0, sizeof old);
	for (int f = 0; f < SIPL_NFAMILIES; f++) {
		old.family[f] = s->agent[f] != NULL;
		if (s->agent[f]) {
			old.port = s->port[f];
			had_any = true;
		}
	}
	err = apply(s, cfg, cause);
	if (err && had_any) {
		log_warn("%s: restoring the previous listeners", s->name);
		apply(s, &old, NULL);
	}
	return err;
}

static int apply(struct sipl *s, const struct sipl_config *cfg, char **cause)
{
	int err = 0;

	/* Close first: a family whose port changes must release the old port,
	 * and nothing binds the same port twice. */
	for (int f = 0; f < SIPL_NFAMILIES; f++) {
		if (s->agent[f] && (!cfg->family[f] || s->port[f] != cfg->port))
			close_family(s, (enum sipl_family)f);
	}
	for (int f = 0; f < SIPL_NFAMILIES; f++) {
		if (cfg->family[f] && !s->agent[f]) {
			int e = open_family(s, (enum sipl_family)f, cfg->port,
					    err ? NULL : cause);
			if (e && !err)
				err = e;
		}
	}
	return err;
}

/* Lists the primary transports of every agent. */
size_t sipl_endpoints(const struct sipl *s, struct sipl_endpoint *eps,
		      size_t max)
{
	size_t n = 0;

	for (int f = 0; f < SIPL_NFAMILIES; f++) {
		tport_t *tp;

		if (!s->agent[f])
			continue;
		for (tp = tport_primaries(nta_agent_tports(s->agent[f])); tp;
		     tp = tport_next(tp)) {
			tp_name_t const *tpn = tport_name(tp);
			struct sipl_endpoint *e;
			const char *host;
			size_t hl;

			if (!tpn || !tpn->tpn_host || !tpn->tpn_proto)
				continue;
			if (n >= max) {
				n++;
				continue;
			}
			e = &eps[n++];
			memset(e, 0, sizeof *e);
			e->family = (enum sipl_family)f;
			snprintf(e->transport, sizeof e->transport, "%s",
				 tpn->tpn_proto);
			host = tpn->tpn_host;
			hl = strlen(host);
			if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
				host++;
				hl -= 2;
			}
			if (hl >= sizeof e->host)
				hl = sizeof e->host - 1;
			memcpy(e->host, host, hl);
			e->host[hl] = '\0';
			e->port = tpn->tpn_port ? (unsigned)atoi(tpn->tpn_port) : 0;
		}
	}
	return n;
}

unsigned sipl_listener_port(const struct sipl *s, enum sipl_family family,
			    const char *transport)
{
	struct sipl_endpoint eps[32];
	size_t n = sipl_endpoints(s, eps, 32);

	for (size_t i = 0; i < n && i < 32; i++) {
		if (eps[i].family == family && !strcmp(eps[i].transport, transport))
			return eps[i].port;
	}
	return 0;
}

/* The agent of a family, or NULL when that family is not listening. */
nta_agent_t *sipl_agent(const struct sipl *s, enum sipl_family family)
{
	if (!s || (unsigned)family >= SIPL_NFAMILIES)
		return NULL;
	return s->agent[family];
}

/* Closes all listeners and frees s. */
void sipl_free(struct sipl *s)
{
	if (!s)
		return;
	for (int f = 0; f < SIPL_NFAMILIES; f++)
		close_family(s, (enum sipl_family)f);
	free(s);
}
