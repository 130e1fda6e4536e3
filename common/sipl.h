/* sipl.h — the SIP listeners of a process, per IPAddressFamily: one sofia nta
 * agent per address family, each bound on UDP and TCP of one port, so that
 * IPv4 peers arrive on IPv4 sockets (never as ::ffff: mapped addresses) and
 * a family can be added or dropped live without touching the other. */
#ifndef OPENUM_SIPL_H
#define OPENUM_SIPL_H

#include <stdbool.h>
#include <stddef.h>

#include <sofia-sip/su_wait.h>
#include <sofia-sip/nta.h>

enum sipl_family {
	SIPL_FAMILY_IPV4 = 0,
	SIPL_FAMILY_IPV6 = 1,
};
#define SIPL_NFAMILIES 2

/* Which families to listen on and where. */
struct sipl_config {
	bool family[SIPL_NFAMILIES];
	unsigned port;
};

/* One bound socket, for status and registration. host is a literal without
 * brackets. */
struct sipl_endpoint {
	enum sipl_family family;
	char transport[8];	/* "udp", "tcp" */
	char host[64];
	unsigned port;
};

struct sipl;

/* Called after an agent for a family was created: the owner attaches its
 * request handling (a default leg, for instance). Non-zero refuses it. */
typedef int (sipl_agent_up_h)(void *arg, nta_agent_t *agent,
			      enum sipl_family family);
/* Called before an agent is destroyed: the owner drops its legs and any
 * state that points into the agent. */
typedef void (sipl_agent_down_h)(void *arg, nta_agent_t *agent,
				 enum sipl_family family);

struct sipl_handlers {
	/* Stateless message callback given to nta_agent_create(); NULL for a
	 * transaction-stateful agent whose legs are set up in up_h. */
	nta_message_f *message_h;
	nta_agent_magic_t *message_arg;
	/* true: a user agent (UAS dialogs: nta retransmits 2xx until the
	 * ACK and sends 100 Trying); false: a stateless/proxy-like element. */
	bool ua;
	sipl_agent_up_h *up_h;
	sipl_agent_down_h *down_h;
	void *arg;
};

int sipl_alloc(struct sipl **out, su_root_t *root,
	       const struct sipl_handlers *h, const char *name);
/* Binds or rebinds to match cfg: families no longer wanted are closed,
 * new ones opened, a changed port reopens both. On failure the families
 * that could be opened stay open, *cause says what failed. */
int sipl_apply(struct sipl *s, const struct sipl_config *cfg, char **cause);
/* Fills eps with the bound sockets; returns how many there are. */
size_t sipl_endpoints(const struct sipl *s, struct sipl_endpoint *eps,
		      size_t max);
nta_agent_t *sipl_agent(const struct sipl *s, enum sipl_family family);
/* The port of the listener of a family and transport ("tcp"), 0: none. */
unsigned sipl_listener_port(const struct sipl *s, enum sipl_family family,
			    const char *transport);
const char *sipl_family_name(enum sipl_family family);
/* Closes every agent (calling down_h) and frees s; NULL is fine. */
void sipl_free(struct sipl *s);

#endif
