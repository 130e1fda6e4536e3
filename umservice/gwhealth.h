/* gwhealth.h — gateway health: the UM service sends SIP OPTIONS to every
 * enabled UM IP gateway each GatewayPingInterval through the outbound
 * connection policy, and keeps what it learned (up or down, the last
 * answer, which address answered). A gateway that stops answering is
 * logged once as a warning (Exchange event 1400), and once more when it
 * answers again. The router shows the state in get-umipgateway. */
#ifndef OPENUM_GWHEALTH_H
#define OPENUM_GWHEALTH_H

#include "common/directory.h"
#include "common/sipl.h"

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

/* How long one OPTIONS may go unanswered. */
#define GWHEALTH_TIMEOUT_MS 8000u
/* A new or changed gateway is pinged this soon after the change. */
#define GWHEALTH_FIRST_MS 200u

struct gwhealth;
struct outconn;
struct rtab;

struct gwhealth_state {
	char gateway[DIR_NAME_MAX + 1];
	bool checked;			/* a ping has ended */
	bool up;
	unsigned last_status;		/* 0: no answer */
	char last_reason[160];
	char address[64];		/* "[2001:db8::1]:5060" */
	uint64_t checked_unix_ms, answered_unix_ms, changed_unix_ms;
};

struct gwhealth_config {
	uv_loop_t *loop;
	struct sipl *sip;
	struct outconn *outconn;
	struct rtab *(*table_h)(void *arg);
	void *table_arg;
	/* Called when a gateway's state changes (to tell the router). */
	void (*changed_h)(void *arg);
	void *changed_arg;
};

int gwhealth_alloc(struct gwhealth **out, const struct gwhealth_config *cfg);
/* After every directory change: the interval, ExternalHostFqdn, and the
 * gateways of the current routing table (new ones pinged soon, removed or
 * disabled ones dropped). */
void gwhealth_sync(struct gwhealth *g, unsigned interval_s, const char *fqdn);
/* The state of every gateway pinged, in no order; returns how many were
 * written (at most max). */
size_t gwhealth_states(const struct gwhealth *g, struct gwhealth_state *out,
		       size_t max);
size_t gwhealth_count(const struct gwhealth *g);
/* Whether the last ping of gateway name went unanswered (false when it
 * answered, was never pinged, or is unknown). */
bool gwhealth_is_down(const struct gwhealth *g, const char *name);
/* A SIP agent is about to be destroyed: pings out on it end as failed. */
void gwhealth_agent_gone(struct gwhealth *g, nta_agent_t *agent);
void gwhealth_free(struct gwhealth *g);

/* Pure: whether a ping's outcome means the gateway is up. Any SIP answer
 * from the gateway itself counts (even 404 or 503: it is there and
 * speaking SIP); no answer, or a connect that failed, is down. */
bool gwhealth_is_up(int status, bool from_gateway);

#endif
