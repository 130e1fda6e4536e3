/* gwhealth.c — OPTIONS pings to the enabled gateways (see gwhealth.h).
 *
 * One entry per enabled gateway of the routing table, keyed by name. One
 * 250 ms timer drives everything: it starts the pings that are due (each
 * gateway every interval, never two at once for one gateway) and ends the
 * ones that went unanswered past GWHEALTH_TIMEOUT_MS. A ping is an
 * outbound-policy round (which address, IPv6 first, dead ones skipped)
 * and then an OPTIONS over TCP to the address found. An entry that leaves
 * the table while a ping is out is unlinked at once; its memory goes when
 * the ping's last callback is done. */
#define LOG_MODULE "gwhealth"
#include "umservice/gwhealth.h"
#include "common/log.h"
#include "common/netaddr.h"
#include "common/outconn.h"
#include "common/rtab.h"
#include "umservice/mwi.h"
#include "umservice/outreq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <sofia-sip/sip_status.h>

#define TICK_MS 250u

struct entry {
	struct gwhealth *g;
	struct entry *next;
	struct gwhealth_state st;
	char address[256];		/* the gateway's Address */
	unsigned port;
	enum dir_af af;
	bool seen;			/* in the table at the last sync */
	bool linked;
	/* a ping out */
	bool busy;
	struct outconn_req *oreq;
	nta_outgoing_t *orq;
	nta_agent_t *agent;
	struct sockaddr_storage addr;
	uint64_t due_ms;		/* uv_now() of the next ping */
	uint64_t deadline_ms;		/* of the OPTIONS out */
};

struct gwhealth {
	struct gwhealth_config cfg;
	unsigned interval_s;
	char fqdn[256];
	struct entry *list;
	uv_timer_t tick;
	bool closing;
};

bool gwhealth_is_up(int status, bool from_gateway)
{
	return from_gateway && status >= 200 && status < 700;
}

static uint64_t unix_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static uint64_t now_ms(struct gwhealth *g)
{
	uv_update_time(g->cfg.loop);	/* may run in a sofia callback */
	return uv_now(g->cfg.loop);
}

static void entry_free_if_done(struct entry *e)
{
	if (!e->linked && !e->busy)
		free(e);
}

/* The ping is over: record, log a transition once, schedule the next. */
static void ping_over(struct entry *e, bool up, unsigned status,
		      const char *reason)
{
	struct gwhealth *g = e->g;
	struct gwhealth_state *st = &e->st;
	bool was_checked = st->checked, was_up = st->up;
	uint64_t now = unix_ms();

	e->busy = false;
	e->oreq = NULL;
	e->orq = NULL;
	e->agent = NULL;
	if (!e->linked || g->closing) {
		entry_free_if_done(e);
		return;
	}
	st->checked = true;
	st->up = up;
	st->last_status = status;
	snprintf(st->last_reason, sizeof st->last_reason, "%s", reason);
	st->checked_unix_ms = now;
	if (up) {
		st->answered_unix_ms = now;
		netaddr_str((const struct sockaddr *)&e->addr, st->address,
			    sizeof st->address);
	}
	e->due_ms = now_ms(g) + (uint64_t)g->interval_s * 1000;
	if (was_checked && was_up == up) {
		log_debug("gateway %s: OPTIONS %s", st->gateway, reason);
		return;
	}
	st->changed_unix_ms = now;
	if (!up)
		log_warn("event 1400: UM IP gateway %s (%s) is not answering SIP "
			 "OPTIONS: %s; it is shown as down until it answers",
			 st->gateway, e->address, reason);
	else if (was_checked)
		log_notice("UM IP gateway %s (%s) answers SIP OPTIONS again: %u "
			   "from %s", st->gateway, e->address, status, st->address);
	else
		log_info("UM IP gateway %s (%s) answers SIP OPTIONS: %u from %s",
			 st->gateway, e->address, status, st->address);
	if (g->cfg.changed_h)
		g->cfg.changed_h(g->cfg.changed_arg);
}

static int options_cb(nta_outgoing_magic_t *magic, nta_outgoing_t *orq,
		      sip_t const *sip)
{
	struct entry *e = (struct entry *)magic;
	int status = nta_outgoing_status(orq);
	char reason[160], a[NETADDR_STRLEN];
	/* nta's own answers (transport error, timeout) are not the
	 * gateway's. */
	bool from_gw = sip && !nta_sip_is_internal(sip);

	if (status < 200)
		return 0;
	netaddr_str((const struct sockaddr *)&e->addr, a, sizeof a);
	if (from_gw) {
		/* sip belongs to orq: read before it goes. */
		snprintf(reason, sizeof reason, "%d %s", status,
			 sip->sip_status && sip->sip_status->st_phrase
				 ? sip->sip_status->st_phrase : "");
	}
	nta_outgoing_destroy(orq);
	e->orq = NULL;
	if (!from_gw) {
		snprintf(reason, sizeof reason, "no answer from %s (%d, transport)",
			 a, status);
		outconn_mark_bad(e->g->cfg.outconn, (const struct sockaddr *)&e->addr,
				 "an OPTIONS sent there got no answer");
	}
	ping_over(e, gwhealth_is_up(status, from_gw), from_gw ? (unsigned)status : 0,
		  reason);
	return 0;
}

static void connected(void *arg, const struct outconn_result *r)
{
	struct entry *e = arg;
	struct gwhealth *g = e->g;
	struct outreq rq = {
		.method = "OPTIONS", .addr = &e->addr, .gw_host = e->address,
		.gw_port = e->port, .user = "", .fqdn = g->fqdn,
		.accept = "application/sdp",
	};
	char why[300];
	int err;

	e->oreq = NULL;
	if (r->err) {
		ping_over(e, false, 0, r->why);
		return;
	}
	if (!e->linked || g->closing) {
		ping_over(e, false, 0, "gateway removed");
		return;
	}
	e->addr = r->addr;
	e->agent = sipl_agent(g->cfg.sip, e->addr.ss_family == AF_INET6
						  ? SIPL_FAMILY_IPV6
						  : SIPL_FAMILY_IPV4);
	e->orq = outreq_send(g->cfg.sip, &rq, options_cb,
			     (nta_outgoing_magic_t *)e, &err);
	if (!e->orq) {
		snprintf(why, sizeof why, "OPTIONS not sent to %s: %s", r->addr_str,
			 strerror(err));
		ping_over(e, false, 0, why);
		return;
	}
	e->deadline_ms = now_ms(g) + GWHEALTH_TIMEOUT_MS;
}

static void ping(struct entry *e)
{
	struct gwhealth *g = e->g;
	unsigned fams = mwi_families(e->af,
				     sipl_agent(g->cfg.sip, SIPL_FAMILY_IPV4) != NULL,
				     sipl_agent(g->cfg.sip, SIPL_FAMILY_IPV6) != NULL);
	char who[200], why[200];
	int err;

	e->busy = true;
	e->deadline_ms = 0;
	if (!fams) {
		snprintf(why, sizeof why, "the UM service has no listener of a "
			 "family IPAddressFamily %s allows", dir_af_name(e->af));
		ping_over(e, false, 0, why);
		return;
	}
	snprintf(who, sizeof who, "OPTIONS to gateway %s", e->st.gateway);
	err = outconn_start(g->cfg.outconn, e->address, e->port, fams, who,
			    connected, e, &e->oreq);
	if (err) {
		snprintf(why, sizeof why, "outbound connection: %s", strerror(err));
		ping_over(e, false, 0, why);
	}
}

static void tick(uv_timer_t *t)
{
	struct gwhealth *g = t->data;
	uint64_t now = now_ms(g);
	struct entry *e, *next;

	for (e = g->list; e; e = next) {
		next = e->next;
		if (e->busy) {
			if (e->orq && e->deadline_ms && now >= e->deadline_ms) {
				char a[NETADDR_STRLEN], why[160];

				nta_outgoing_destroy(e->orq);
				e->orq = NULL;
				netaddr_str((const struct sockaddr *)&e->addr, a,
					    sizeof a);
				snprintf(why, sizeof why, "no answer from %s within "
					 "%u s", a, GWHEALTH_TIMEOUT_MS / 1000);
				outconn_mark_bad(g->cfg.outconn,
						 (const struct sockaddr *)&e->addr,
						 "an OPTIONS sent there got no "
						 "answer");
				ping_over(e, false, 0, why);
			}
			continue;
		}
		if (now >= e->due_ms)
			ping(e);
	}
}

/* Ends a ping out (the entry is leaving, or closing). */
static void abort_ping(struct entry *e)
{
	if (!e->busy)
		return;
	if (e->orq) {
		nta_outgoing_destroy(e->orq);
		e->orq = NULL;
	}
	if (e->oreq) {
		outconn_cancel(e->oreq);
		e->oreq = NULL;
	}
	e->busy = false;
}

static void unlink_entry(struct gwhealth *g, struct entry *e)
{
	struct entry **pp;

	for (pp = &g->list; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	}
	e->linked = false;
	abort_ping(e);
	entry_free_if_done(e);
}

static struct entry *find(struct gwhealth *g, const char *name)
{
	for (struct entry *e = g->list; e; e = e->next) {
		if (!strcasecmp(e->st.gateway, name))
			return e;
	}
	return NULL;
}

void gwhealth_sync(struct gwhealth *g, unsigned interval_s, const char *fqdn)
{
	struct rtab *t;
	struct entry *e, *next;
	uint64_t now;
	bool changed = false;

	if (!g || g->closing)
		return;
	now = now_ms(g);
	if (interval_s && interval_s != g->interval_s) {
		if (g->interval_s)
			log_info("gateways are pinged every %u s", interval_s);
		g->interval_s = interval_s;
		/* Pings already scheduled come no later than the new interval. */
		for (e = g->list; e; e = e->next) {
			if (!e->busy && e->due_ms > now + (uint64_t)interval_s * 1000)
				e->due_ms = now + (uint64_t)interval_s * 1000;
		}
	}
	snprintf(g->fqdn, sizeof g->fqdn, "%s", fqdn ? fqdn : "");
	t = g->cfg.table_h(g->cfg.table_arg);
	for (e = g->list; e; e = e->next)
		e->seen = false;
	for (size_t i = 0; t && i < rtab_gateway_count(t); i++) {
		const struct dir_gateway *gw = rtab_gateway(t, i);

		if (gw->status != DIR_GW_ENABLED)
			continue;
		e = find(g, gw->name);
		if (!e) {
			e = calloc(1, sizeof *e);
			if (!e) {
				log_error("out of memory: gateway %s not pinged",
					  gw->name);
				continue;
			}
			e->g = g;
			snprintf(e->st.gateway, sizeof e->st.gateway, "%s", gw->name);
			e->linked = true;
			e->next = g->list;
			g->list = e;
			e->due_ms = now + GWHEALTH_FIRST_MS;
			changed = true;
		} else if (strcmp(e->address, gw->address) || e->port != gw->port ||
			   e->af != gw->af) {
			/* Somewhere else now: what was learned no longer holds. */
			abort_ping(e);
			memset(&e->st, 0, sizeof e->st);
			snprintf(e->st.gateway, sizeof e->st.gateway, "%s", gw->name);
			e->due_ms = now + GWHEALTH_FIRST_MS;
			changed = true;
		}
		snprintf(e->address, sizeof e->address, "%s", gw->address);
		e->port = gw->port;
		e->af = gw->af;
		e->seen = true;
	}
	for (e = g->list; e; e = next) {
		next = e->next;
		if (!e->seen) {
			log_info("gateway %s is no longer pinged (removed or not "
				 "Enabled)", e->st.gateway);
			unlink_entry(g, e);
			changed = true;
		}
	}
	if (changed && g->cfg.changed_h)
		g->cfg.changed_h(g->cfg.changed_arg);
}

size_t gwhealth_states(const struct gwhealth *g, struct gwhealth_state *out,
		       size_t max)
{
	size_t n = 0;

	for (const struct entry *e = g ? g->list : NULL; e && n < max; e = e->next)
		out[n++] = e->st;
	return n;
}

bool gwhealth_is_down(const struct gwhealth *g, const char *name)
{
	for (const struct entry *e = g ? g->list : NULL; e; e = e->next) {
		if (!strcasecmp(e->st.gateway, name))
			return e->st.checked && !e->st.up;
	}
	return false;
}

size_t gwhealth_count(const struct gwhealth *g)
{
	size_t n = 0;

	for (const struct entry *e = g ? g->list : NULL; e; e = e->next)
		n++;
	return n;
}

void gwhealth_agent_gone(struct gwhealth *g, nta_agent_t *agent)
{
	struct entry *e, *next;

	for (e = g ? g->list : NULL; e; e = next) {
		next = e->next;
		if (!e->busy || !e->orq || e->agent != agent)
			continue;
		nta_outgoing_destroy(e->orq);
		e->orq = NULL;
		/* Not the gateway's fault: try again soon, no verdict. */
		e->busy = false;
		e->agent = NULL;
		e->due_ms = now_ms(g) + GWHEALTH_FIRST_MS;
	}
}

int gwhealth_alloc(struct gwhealth **out, const struct gwhealth_config *cfg)
{
	struct gwhealth *g;

	if (!out || !cfg || !cfg->loop || !cfg->sip || !cfg->outconn ||
	    !cfg->table_h)
		return EINVAL;
	g = calloc(1, sizeof *g);
	if (!g)
		return ENOMEM;
	g->cfg = *cfg;
	g->interval_s = 60;
	uv_timer_init(cfg->loop, &g->tick);
	g->tick.data = g;
	uv_timer_start(&g->tick, tick, TICK_MS, TICK_MS);
	*out = g;
	return 0;
}

static void tick_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Ends every ping (before the SIP agents and the policy go). */
void gwhealth_free(struct gwhealth *g)
{
	if (!g || g->closing)
		return;
	g->closing = true;
	while (g->list)
		unlink_entry(g, g->list);
	uv_close((uv_handle_t *)&g->tick, tick_closed);
}
