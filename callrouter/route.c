/* route.c — the router's INVITE path.
 *
 *   INVITE ─▶ trusted? (source address ∈ an enabled gateway)     else 403 / 503
 *          ─▶ classify (hunt group, Diversion/History-Info, ...)  else 404
 *          ─▶ choose an instance ─▶ CallRouted{token} over IPC    none: 503
 *          ─▶ CallRoutedAck within 200 ms ─▶ 302 Contact: instance;umtoken=…
 *                         no ack / refused ─▶ next instance, or 503
 *
 * SIP is handled statelessly (nta_msg_mreply): a redirect server keeps no
 * transaction memory, which is what bounds the router's memory at any rate
 * (NOTES-stack.md §5: stateful 302s cost ~50 KB per call/s and collapse).
 * The only state is the pending list of INVITEs waiting for an ack, bounded
 * by the 200 ms timeout. Retransmissions of a pending INVITE are absorbed;
 * a retransmission after the 302 is routed again with a fresh token. */
#define LOG_MODULE "route"
#include "common/hex.h"
#include "callrouter/route.h"
#include "common/rtab.h"
#include "common/classify.h"
#include "common/daemon.h"
#include "common/ipc.h"
#include "common/log.h"
#include "common/netaddr.h"
#include "common/protolog.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/nta_tport.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_tagarg.h>
#include <sofia-sip/tport.h>

#define ROUTER_ALLOW "INVITE, ACK, CANCEL, OPTIONS"
#define MAX_TRIES 4
#define PENDING_MAX 10000
#define TOKEN_LEN 16

/* Where a request came from and on what. */
struct pkt {
	/* The transport the request came in on: a deferred stateless reply
	 * must go out the same way (same source address for UDP, the same
	 * connection for TCP), and sofia only knows it while the request is
	 * being delivered. Referenced while a pending call holds it. */
	tport_t *tp;
	struct sockaddr_storage local, remote;
	char transport[8];
	int family;		/* AF_INET / AF_INET6 */
	int tr;			/* OPENUM__TRANSPORT__* */
};

struct pending {
	struct pending *prev, *next;		/* by deadline */
	struct pending *tok_next, *txn_next;	/* hash chains */
	unsigned txn_hash;
	msg_t *msg;
	nta_agent_t *agent;
	struct pkt pkt;
	uint8_t token[TOKEN_LEN];
	unsigned long long deadline_ms;
	struct ipc_conn *tried[MAX_TRIES];
	size_t n_tried;
	struct ipc_conn *current;
	char user[65];
	char call_id[128];
	char branch[128];
	char caller[129];
	char gateway[DIR_NAME_MAX + 1];
	struct classify_result cls;
};

/* Pending INVITEs are found by token (the ack) and by Call-ID + branch
 * (retransmissions, CANCEL) in O(1): at thousands of calls a second a list
 * scan per INVITE was the router's largest cost. */
#define PEND_BUCKETS 4096

struct route {
	struct pending *by_token[PEND_BUCKETS];
	struct pending *by_txn[PEND_BUCKETS];
	uv_check_t expire;		/* deadlines are judged after I/O */
	bool expire_on;
	uv_loop_t *uv;
	struct registry *reg;
	struct rtab *tab;
	struct protolog *plog;
	struct pending *head, *tail;	/* ordered by deadline */
	size_t n_pending;
	uv_timer_t timer;
	unsigned rr;
	uint8_t rnd[4096];
	size_t rnd_used;
};

/* --- small helpers ----------------------------------------------------- */

static int transport_id(const char *proto)
{
	if (!strcasecmp(proto, "tcp"))
		return OPENUM__TRANSPORT__TRANSPORT_TCP;
	if (!strcasecmp(proto, "tls"))
		return OPENUM__TRANSPORT__TRANSPORT_TLS;
	return OPENUM__TRANSPORT__TRANSPORT_UDP;
}

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

/* Tokens are 128 random bits; getrandom() refills a buffer so that a
 * burst of INVITEs costs one system call per 256 tokens. */
static int new_token(struct route *r, uint8_t tok[TOKEN_LEN])
{
	if (r->rnd_used + TOKEN_LEN > sizeof r->rnd) {
		size_t got = 0;

		while (got < sizeof r->rnd) {
			ssize_t n = getrandom(r->rnd + got, sizeof r->rnd - got, 0);

			if (n <= 0)
				return EIO;
			got += (size_t)n;
		}
		r->rnd_used = 0;
	}
	memcpy(tok, r->rnd + r->rnd_used, TOKEN_LEN);
	memset(r->rnd + r->rnd_used, 0, TOKEN_LEN);
	r->rnd_used += TOKEN_LEN;
	return 0;
}

static void pkt_info(struct pkt *p, nta_agent_t *agent, msg_t *msg)
{
	tport_t *tp = tport_delivered_by(nta_agent_tports(agent), msg);
	su_addrinfo_t *ai = msg_addrinfo(msg);

	memset(p, 0, sizeof *p);
	p->tp = tp;
	if (ai && ai->ai_addr && ai->ai_addrlen <= sizeof p->remote)
		memcpy(&p->remote, ai->ai_addr, ai->ai_addrlen);
	if (tp) {
		tport_t *primary = tport_is_secondary(tp) ? tport_parent(tp) : tp;
		su_addrinfo_t const *la = primary ? tport_get_address(primary) : NULL;

		if (la && la->ai_addr && la->ai_addrlen <= sizeof p->local)
			memcpy(&p->local, la->ai_addr, la->ai_addrlen);
		snprintf(p->transport, sizeof p->transport, "%s",
			 tport_name(tp)->tpn_proto);
	} else {
		snprintf(p->transport, sizeof p->transport, "%s",
			 ai && ai->ai_protocol == IPPROTO_TCP ? "tcp" : "udp");
	}
	p->family = p->local.ss_family ? p->local.ss_family : p->remote.ss_family;
	p->tr = transport_id(p->transport);
}

static void plog_msg(struct route *r, const char *dir, const struct pkt *p,
		     msg_t *msg)
{
	su_home_t home[1] = {SU_HOME_INIT(home)};
	size_t len = 0;
	char *s;

	if (!r->plog)
		return;
	s = msg_as_string(home, msg, NULL, 0, &len);
	if (s)
		protolog_write(r->plog, dir, p->transport,
			       (const struct sockaddr *)&p->local,
			       (const struct sockaddr *)&p->remote, s, len);
	su_home_deinit(home);
}

/* Sends a stateless response to req (consumed) and protocol-logs it. */
static void reply(struct route *r, nta_agent_t *agent, msg_t *req,
		  const struct pkt *p, int status, const char *phrase,
		  tag_type_t tag, tag_value_t value, ...)
{
	msg_t *rep = nta_msg_create(agent, 0);
	ta_list ta;

	if (!rep) {
		msg_destroy(req);
		return;
	}
	if (r->plog)
		msg_ref_create(rep);	/* keep it to log what was sent */
	ta_start(ta, tag, value);
	nta_msg_mreply(agent, rep, sip_object(rep), status, phrase, req,
		       TAG_IF(p->tp, NTATAG_TPORT(p->tp)), ta_tags(ta));
	(void)ta_end(ta);
	if (r->plog) {
		plog_msg(r, "out", p, rep);
		msg_destroy(rep);
	}
}

/* --- pending list ---------------------------------------------------------- */

static unsigned txn_hash(const char *call_id, const char *branch)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	for (const char *c = call_id; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	h = (h ^ 0x1f) * 16777619u;
	for (const char *c = branch; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	return h;
}

static unsigned token_bucket(const uint8_t *tok)
{
	uint32_t h;

	memcpy(&h, tok, sizeof h);	/* random bytes: already uniform */
	return h % PEND_BUCKETS;
}

static void chain_remove(struct pending **head, struct pending *p, bool tok)
{
	for (struct pending **pp = head; *pp;
	     pp = tok ? &(*pp)->tok_next : &(*pp)->txn_next) {
		if (*pp == p) {
			*pp = tok ? p->tok_next : p->txn_next;
			return;
		}
	}
}

static struct pending *find_txn(struct route *r, const char *call_id,
				const char *branch)
{
	unsigned h = txn_hash(call_id, branch);

	for (struct pending *p = r->by_txn[h % PEND_BUCKETS]; p; p = p->txn_next) {
		if (p->txn_hash == h && !strcmp(p->call_id, call_id) &&
		    !strcmp(p->branch, branch))
			return p;
	}
	return NULL;
}

static struct pending *find_token(struct route *r, const uint8_t *tok)
{
	for (struct pending *p = r->by_token[token_bucket(tok)]; p; p = p->tok_next) {
		if (!memcmp(p->token, tok, TOKEN_LEN))
			return p;
	}
	return NULL;
}

static void pend_unlink(struct route *r, struct pending *p)
{
	chain_remove(&r->by_token[token_bucket(p->token)], p, true);
	chain_remove(&r->by_txn[p->txn_hash % PEND_BUCKETS], p, false);
	if (p->prev)
		p->prev->next = p->next;
	else
		r->head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		r->tail = p->prev;
	p->prev = p->next = NULL;
	r->n_pending--;
}

static void pend_append(struct route *r, struct pending *p)
{
	unsigned b = token_bucket(p->token);

	p->txn_hash = txn_hash(p->call_id, p->branch);
	p->tok_next = r->by_token[b];
	r->by_token[b] = p;
	p->txn_next = r->by_txn[p->txn_hash % PEND_BUCKETS];
	r->by_txn[p->txn_hash % PEND_BUCKETS] = p;
	p->prev = r->tail;
	p->next = NULL;
	if (r->tail)
		r->tail->next = p;
	else
		r->head = p;
	r->tail = p;
	r->n_pending++;
}

static void pend_free(struct pending *p)
{
	if (p->msg)
		msg_destroy(p->msg);
	tport_unref(p->pkt.tp);
	free(p);
}

static void timer_cb(uv_timer_t *t);

/* Timers are armed from sofia callbacks too, where libuv's cached clock
 * can be seconds old (it only advances inside uv_run): refresh it first,
 * or a 200 ms timer would fire at once. */
static unsigned long long now_ms(struct route *r)
{
	uv_update_time(r->uv);
	return uv_now(r->uv);
}

static void arm_timer(struct route *r)
{
	unsigned long long now = now_ms(r);

	if (!r->head) {
		uv_timer_stop(&r->timer);
		return;
	}
	uv_timer_start(&r->timer, timer_cb,
		       r->head->deadline_ms > now ? r->head->deadline_ms - now : 0, 0);
}

/* --- routing ------------------------------------------------------------- */

static bool host_is_loopback(const char *host, int family)
{
	if (family == OPENUM__ADDRESS_FAMILY__AF_IPV6)
		return !strcmp(host, "::1");
	return !strncmp(host, "127.", 4);
}

/* See the header. The address the gateway reached the router on says which
 * of the instance's addresses it can reach too: the same address (router
 * and instance on one host) is best, then one of the same scope (loopback
 * callers get loopback, others never do), then any of the family. */
const struct reg_endpoint *route_pick_endpoint(const struct reg_instance *in,
					       const struct sockaddr *local,
					       int family, int transport)
{
	const struct reg_endpoint *best = NULL;
	int want = proto_family(family), best_score = -1;
	char lhost[NETADDR_STRLEN] = "";
	bool local_lo = false;

	if (local && local->sa_family == family) {
		netaddr_host(local, lhost, sizeof lhost);
		local_lo = host_is_loopback(lhost, want);
	}
	for (size_t i = 0; i < in->n_ep; i++) {
		const struct reg_endpoint *e = &in->ep[i];
		int score = 0;

		if (e->family != want)
			continue;
		if (e->transport != transport &&
		    e->transport == OPENUM__TRANSPORT__TRANSPORT_TLS)
			continue;
		if (lhost[0] && !strcmp(lhost, e->host))
			score += 4;
		else if (lhost[0] && host_is_loopback(e->host, want) == local_lo)
			score += 2;
		else if (lhost[0] && local_lo != host_is_loopback(e->host, want))
			score -= 8;	/* unreachable scope: last resort only */
		if (e->transport == transport)
			score += 1;
		if (score > best_score) {
			best_score = score;
			best = e;
		}
	}
	/* A loopback address is never handed to a remote caller. */
	if (best && lhost[0] && !local_lo && host_is_loopback(best->host, want))
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
struct reg_instance *route_choose(struct registry *reg,
				  const struct sockaddr *local, int family,
				  int transport, struct ipc_conn *const *exclude,
				  size_t n_exclude, unsigned *rr,
				  const struct reg_endpoint **ep)
{
	size_t n = reg_count(reg);
	struct reg_instance *best = NULL;
	const struct reg_endpoint *best_ep = NULL;
	unsigned start = rr ? *rr : 0;

	for (size_t k = 0; k < n; k++) {
		struct reg_instance *in = reg_at(reg, (start + k) % n);
		const struct reg_endpoint *e;

		if (!in->accepting || in->active_calls >= in->max_calls ||
		    excluded(in->conn, exclude, n_exclude))
			continue;
		e = route_pick_endpoint(in, local, family, transport);
		if (!e)
			continue;
		if (!best || in->active_calls < best->active_calls) {
			best = in;
			best_ep = e;
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
	int n;

	n = snprintf(buf, len, "<sip:%s%s%s%s%s:%u;transport=%s;%s=%s>",
		     user && *user ? user : "", user && *user ? "@" : "",
		     v6 ? "[" : "", host, v6 ? "]" : "", ep->port,
		     transport_name(ep->transport), ROUTE_TOKEN_PARAM, token_hex);
	return n < 0 || (size_t)n >= len ? ENOSPC : 0;
}

static void finish(struct route *r, struct pending *p, int status,
		   const char *phrase, bool retry_after)
{
	reply(r, p->agent, p->msg, &p->pkt, status, phrase,
	      TAG_IF(retry_after, SIPTAG_RETRY_AFTER_STR(ROUTE_RETRY_AFTER)),
	      TAG_END());
	p->msg = NULL;
	pend_free(p);
}

/* Hands the call to the next instance that can take it, or answers 503. */
static void try_next(struct route *r, struct pending *p)
{
	Openum__Envelope env;
	Openum__CallRouted cr = OPENUM__CALL_ROUTED__INIT;
	const struct reg_endpoint *ep = NULL;
	struct reg_instance *in;

	for (;;) {
		in = p->n_tried < MAX_TRIES
			     ? route_choose(r->reg,
					    (const struct sockaddr *)&p->pkt.local,
					    p->pkt.family, p->pkt.tr, p->tried,
					    p->n_tried, &r->rr, &ep)
			     : NULL;
		if (!in) {
			log_warn("INVITE %s from gateway %s (Call-ID %s): no UM service "
				 "instance available over %s%s; 503",
				 p->user, p->gateway, p->call_id,
				 p->pkt.family == AF_INET6 ? "IPv6" : "IPv4",
				 p->n_tried ? " after failed handoffs" : "");
			finish(r, p, 503, "Service Unavailable (no UM service instance)",
			       true);
			return;
		}
		p->tried[p->n_tried++] = in->conn;
		if (new_token(r, p->token) != 0) {
			finish(r, p, 500, "Server Internal Error", false);
			return;
		}
		cr.token.data = p->token;
		cr.token.len = TOKEN_LEN;
		cr.call_id = p->call_id;
		cr.kind = p->cls.kind == CLASSIFY_SUBSCRIBER_ACCESS
				  ? OPENUM__CALL_KIND__CALL_KIND_SUBSCRIBER_ACCESS
				  : OPENUM__CALL_KIND__CALL_KIND_CALL_ANSWERING;
		cr.mailbox = p->cls.mailbox;
		cr.dial_plan = p->cls.dialplan;
		cr.gateway = p->gateway;
		cr.caller = p->caller;
		cr.expires_unix_ms = daemon_now_ms() + ROUTE_TOKEN_TTL_MS;
		ipc_envelope_init(&env);
		env.body_case = OPENUM__ENVELOPE__BODY_CALL_ROUTED;
		env.call_routed = &cr;
		if (ipc_conn_send(in->conn, &env) == 0)
			break;
		log_warn("could not hand Call-ID %s to instance %s", p->call_id,
			 in->id);
	}
	p->current = in->conn;
	p->deadline_ms = now_ms(r) + ROUTE_ACK_TIMEOUT_MS;
	pend_append(r, p);
	arm_timer(r);
}

static void expire_cb(uv_check_t *h);

/* libuv runs timers before it reads sockets: judging a deadline right here
 * would time out calls whose ack is already waiting in the IPC socket after
 * a busy turn. So the timer only asks for a check after this turn's I/O. */
static void timer_cb(uv_timer_t *t)
{
	struct route *r = t->data;

	if (!r->expire_on) {
		r->expire_on = true;
		uv_check_start(&r->expire, expire_cb);
	}
}

static void expire_cb(uv_check_t *h)
{
	struct route *r = h->data;
	unsigned long long now = now_ms(r);

	uv_check_stop(&r->expire);
	r->expire_on = false;

	while (r->head && r->head->deadline_ms <= now) {
		struct pending *p = r->head;
		struct reg_instance *in = reg_find_conn(r->reg, p->current);

		pend_unlink(r, p);
		log_warn("no CallRoutedAck for Call-ID %s from instance %s within "
			 "%d ms; trying another", p->call_id, in ? in->id : "(gone)",
			 ROUTE_ACK_TIMEOUT_MS);
		try_next(r, p);
	}
	arm_timer(r);
}

/* See the header. */
void route_ack(struct route *r, struct ipc_conn *from,
	       const Openum__CallRoutedAck *ack)
{
	struct pending *p;
	char contact[512], tokhex[2 * TOKEN_LEN + 1];
	struct reg_instance *in;
	const struct reg_endpoint *ep;

	if (ack->token.len != TOKEN_LEN)
		return;
	p = find_token(r, ack->token.data);
	if (!p || p->current != from)
		return;		/* late ack: the call has moved on */
	pend_unlink(r, p);
	in = reg_find_conn(r->reg, from);
	if (!ack->accepted || !in) {
		log_warn("instance %s refused Call-ID %s: %s", in ? in->id : "?",
			 p->call_id, ack->reason && *ack->reason ? ack->reason : "no reason");
		try_next(r, p);
		arm_timer(r);
		return;
	}
	ep = route_pick_endpoint(in, (const struct sockaddr *)&p->pkt.local,
				 p->pkt.family, p->pkt.tr);
	hex_encode(tokhex, p->token, TOKEN_LEN);
	if (!ep || route_contact(contact, sizeof contact, p->user, in, ep, tokhex)) {
		/* The instance re-registered without that family meanwhile. */
		try_next(r, p);
		arm_timer(r);
		return;
	}
	in->calls_routed++;
	log_debug("INVITE %s Call-ID %s from %s: %s %s -> %s", p->user, p->call_id,
		  p->gateway, p->cls.kind == CLASSIFY_SUBSCRIBER_ACCESS
				  ? "subscriber access" : "call answering",
		  p->cls.mailbox, contact);
	reply(r, p->agent, p->msg, &p->pkt, 302, "Moved Temporarily",
	      SIPTAG_CONTACT_STR(contact), TAG_END());
	p->msg = NULL;
	pend_free(p);
	arm_timer(r);
}

/* See the header. */
void route_instance_gone(struct route *r, struct ipc_conn *c)
{
	struct pending *p = r->head, *next;

	for (; p; p = next) {
		next = p->next;
		if (p->current != c)
			continue;
		pend_unlink(r, p);
		/* Let route_choose skip it: the registry still lists it. */
		try_next(r, p);
	}
	arm_timer(r);
}

/* See the header. */
void route_agent_gone(struct route *r, nta_agent_t *agent)
{
	struct pending *p = r->head, *next;

	for (; p; p = next) {
		next = p->next;
		if (p->agent != agent)
			continue;
		pend_unlink(r, p);
		pend_free(p);
	}
	arm_timer(r);
}

/* Joins every value of an unknown header (Diversion, History-Info) in
 * order, comma-separated, as the header grammar allows. */
static char *join_header(su_home_t *home, const sip_t *sip, const char *name)
{
	char *out = NULL;

	for (sip_unknown_t const *u = sip->sip_unknown; u; u = u->un_next) {
		if (!u->un_name || strcasecmp(u->un_name, name) || !u->un_value)
			continue;
		out = out ? su_sprintf(home, "%s, %s", out, u->un_value)
			  : su_strdup(home, u->un_value);
		if (!out || strlen(out) > 8192)
			return NULL;
	}
	return out;
}

static void route_invite(struct route *r, nta_agent_t *agent, msg_t *msg,
			 sip_t *sip, const struct pkt *pk)
{
	su_home_t home[1] = {SU_HOME_INIT(home)};
	const struct dir_gateway *gw;
	struct classify_ctx ctx;
	struct classify_request req;
	struct pending *p;
	char src[NETADDR_STRLEN];
	const char *branch = sip->sip_via && sip->sip_via->v_branch
				     ? sip->sip_via->v_branch : "";
	const char *ruser = sip->sip_request->rq_url->url_user;

	netaddr_str((const struct sockaddr *)&pk->remote, src, sizeof src);
	if (find_txn(r, sip->sip_call_id->i_id, branch)) {
		msg_destroy(msg);
		goto out;
	}
	gw = r->tab ? rtab_gateway_by_addr(r->tab,
					   (const struct sockaddr *)&pk->remote, NULL)
		    : NULL;
	if (!gw) {
		log_notice("403 to INVITE from %s (%s, Call-ID %s): the source is "
			   "not a UM IP gateway", src, pk->transport,
			   sip->sip_call_id->i_id);
		reply(r, agent, msg, pk, 403, "Forbidden (not a UM IP gateway)",
		      TAG_END());
		goto out;
	}
	if (gw->status != DIR_GW_ENABLED) {
		log_notice("503 to INVITE from %s: UM IP gateway %s is %s", src,
			   gw->name, dir_gw_status_name(gw->status));
		reply(r, agent, msg, pk, 503,
		      gw->status == DIR_GW_DISABLED
			      ? "Service Unavailable (gateway disabled)"
			      : "Service Unavailable (gateway takes no new calls)",
		      SIPTAG_RETRY_AFTER_STR(ROUTE_RETRY_AFTER), TAG_END());
		goto out;
	}
	p = calloc(1, sizeof *p);
	if (!p || r->n_pending >= PENDING_MAX) {
		free(p);
		reply(r, agent, msg, pk, 503, "Service Unavailable (overloaded)",
		      SIPTAG_RETRY_AFTER_STR("5"), TAG_END());
		goto out;
	}
	memset(&req, 0, sizeof req);
	req.gateway = gw->name;
	req.ruri_user = ruser;
	req.to_user = sip->sip_to ? sip->sip_to->a_url->url_user
							: NULL;
	req.diversion = join_header(home, sip, "Diversion");
	req.history_info = join_header(home, sip, "History-Info");
	rtab_classify_ctx(r->tab, &ctx);
	classify_call(&ctx, &req, &p->cls);
	if (p->cls.kind == CLASSIFY_REJECT) {
		log_notice("%d to INVITE %s from gateway %s (%s): %s",
			   p->cls.status ? p->cls.status : 404, ruser ? ruser : "",
			   gw->name, src, p->cls.reason);
		reply(r, agent, msg, pk, p->cls.status ? p->cls.status : 404,
		      p->cls.reason[0] ? p->cls.reason : "Not Found", TAG_END());
		free(p);
		goto out;
	}
	p->agent = agent;
	p->pkt = *pk;
	p->pkt.tp = tport_ref(pk->tp);
	snprintf(p->user, sizeof p->user, "%s", ruser ? ruser : "");
	snprintf(p->call_id, sizeof p->call_id, "%s", sip->sip_call_id->i_id);
	snprintf(p->branch, sizeof p->branch, "%s", branch);
	snprintf(p->gateway, sizeof p->gateway, "%s", gw->name);
	if (sip->sip_from && sip->sip_from->a_url->url_user)
		snprintf(p->caller, sizeof p->caller, "%s",
			 sip->sip_from->a_url->url_user);
	/* Keep a copy of just the request's headers: the original may share
	 * a buffer with the whole TCP backlog sofia read at once, and holding
	 * it for the handoff made memory grow with the call rate. */
	p->msg = msg_dup(msg);
	msg_destroy(msg);
	if (!p->msg) {
		tport_unref(p->pkt.tp);
		free(p);
		goto out;
	}
	try_next(r, p);
out:
	su_home_deinit(home);
}

static void route_cancel(struct route *r, nta_agent_t *agent, msg_t *msg,
			 sip_t *sip, const struct pkt *pk)
{
	const char *branch = sip->sip_via && sip->sip_via->v_branch
				     ? sip->sip_via->v_branch : "";

	{
		struct pending *p = find_txn(r, sip->sip_call_id->i_id, branch);

		if (p) {
			pend_unlink(r, p);
			finish(r, p, 487, "Request Terminated", false);
			arm_timer(r);
		}
	}
	/* Stateless: a CANCEL that matches nothing pending came after our final
	 * answer; 200 is still the right thing to tell the client (RFC 3261
	 * 16.10 lets a stateless element answer it). */
	reply(r, agent, msg, pk, 200, "OK", TAG_END());
}

/* See the header. */
int route_message_cb(nta_agent_magic_t *arg, nta_agent_t *agent, msg_t *msg,
		     sip_t *sip)
{
	struct route *r = (struct route *)arg;
	struct pkt pk;

	pkt_info(&pk, agent, msg);
	if (r->plog)
		plog_msg(r, "in", &pk, msg);
	if (!sip || !sip->sip_request) {
		/* A stray response: a redirect server sends no requests. */
		msg_destroy(msg);
		return 0;
	}
	if (!sip->sip_call_id || !sip->sip_via || !sip->sip_cseq ||
	    !sip->sip_from || !sip->sip_to) {
		char src[NETADDR_STRLEN];

		log_info("dropping a request without Call-ID/Via/CSeq/From/To "
			 "from %s", netaddr_str((struct sockaddr *)&pk.remote, src,
						sizeof src));
		if (sip->sip_via && sip->sip_request->rq_method != sip_method_ack)
			reply(r, agent, msg, &pk, 400, "Bad Request (missing headers)",
			      TAG_END());
		else
			msg_destroy(msg);
		return 0;
	}
	switch (sip->sip_request->rq_method) {
	case sip_method_invite:
		route_invite(r, agent, msg, sip, &pk);
		break;
	case sip_method_ack:
		msg_destroy(msg);	/* the ACK of our 302 */
		break;
	case sip_method_cancel:
		route_cancel(r, agent, msg, sip, &pk);
		break;
	case sip_method_options:
		reply(r, agent, msg, &pk, 200, "OK", SIPTAG_ALLOW_STR(ROUTER_ALLOW),
		      SIPTAG_ACCEPT_STR("application/sdp"),
		      SIPTAG_ACCEPT_LANGUAGE_STR("en"), TAG_END());
		break;
	case sip_method_unknown:
		reply(r, agent, msg, &pk, 501, "Not Implemented",
		      SIPTAG_ALLOW_STR(ROUTER_ALLOW), TAG_END());
		break;
	default:
		reply(r, agent, msg, &pk, 405, "Method Not Allowed",
		      SIPTAG_ALLOW_STR(ROUTER_ALLOW), TAG_END());
		break;
	}
	return 0;
}

/* --- life cycle ---------------------------------------------------------- */

static void check_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Creates the routing state. */
int route_alloc(struct route **out, uv_loop_t *uv, struct registry *reg)
{
	struct route *r = calloc(1, sizeof *r);

	if (!r)
		return ENOMEM;
	r->uv = uv;
	r->reg = reg;
	r->rnd_used = sizeof r->rnd;	/* empty: the first token refills */
	uv_timer_init(uv, &r->timer);
	r->timer.data = r;
	uv_check_init(uv, &r->expire);
	r->expire.data = r;
	*out = r;
	return 0;
}

static void timer_closed(uv_handle_t *h)
{
	struct route *r = h->data;

	uv_close((uv_handle_t *)&r->expire, check_closed);
}

/* Drops pending calls and frees once the timer is closed. */
void route_free(struct route *r)
{
	if (!r)
		return;
	while (r->head) {
		struct pending *p = r->head;

		pend_unlink(r, p);
		pend_free(p);
	}
	rtab_free(r->tab);
	r->tab = NULL;
	uv_close((uv_handle_t *)&r->timer, timer_closed);
}

/* Installs a new snapshot. */
void route_set_table(struct route *r, struct rtab *t)
{
	rtab_free(r->tab);
	r->tab = t;
}

/* The current snapshot. */
struct rtab *route_table(const struct route *r)
{
	return r->tab;
}

/* Sets the protocol log. */
void route_set_protolog(struct route *r, struct protolog *p)
{
	r->plog = p;
}
