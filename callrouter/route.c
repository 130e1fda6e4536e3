/* route.c — the router's INVITE path.
 *
 *   INVITE ─▶ trusted? (source address ∈ an enabled gateway)     else 403 / 503
 *          ─▶ classify (hunt group, Diversion/History-Info, ...)  else 404
 *          ─▶ choose an instance ─▶ CallRouted{token} over IPC    none: 503
 *          ─▶ CallRoutedAck within 200 ms ─▶ 302 Contact: instance;umtoken=…
 *                         no ack / refused ─▶ next instance, or 503
 *
 * SIP is handled statelessly: a redirect server keeps no transaction
 * memory, which is what bounds the router's memory at any rate
 * (NOTES-stack.md §5: stateful 302s cost ~50 KB per call/s and collapse).
 * Requests are read by sipmsg in place and answered with text written
 * straight from their own header bytes: no general SIP stack on this path,
 * which is what makes the router faster than a Kamailio redirect (issue 3).
 * The only state is the pending list of INVITEs waiting for an ack, bounded
 * by the 200 ms timeout. Retransmissions of a pending INVITE are absorbed;
 * one that comes over UDP after the 302 (the 302 was lost) gets the same 302
 * again, from a bounded table of recent ones (redirects.h), and is routed
 * again only when that has forgotten it. The To tag is derived from the
 * Call-ID and branch, so it is the same either way. */
#define LOG_MODULE "route"
#include "common/hex.h"
#include "callrouter/route.h"
#include "callrouter/redirects.h"
#include "callrouter/sipmsg.h"
#include "callrouter/sipnet.h"
#include "common/rtab.h"
#include "common/classify.h"
#include "common/daemon.h"
#include "common/ipc.h"
#include "common/log.h"
#include "common/netaddr.h"
#include "common/protolog.h"
#include "common/sipuri.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>


#define ROUTER_ALLOW "INVITE, ACK, CANCEL, OPTIONS"
#define MAX_TRIES 4
#define PENDING_MAX 10000
#define TOKEN_LEN 16
_Static_assert(TOKEN_LEN == REDIRECT_TOKEN_LEN, "a redirect keeps the token");

/* Where a request came from and where its responses go. */
struct pkt {
	struct sipnet_src src;	/* a TCP connection is referenced while pending */
	struct sockaddr_storage dst;	/* UDP: RFC 3261 18.2.2 / RFC 3581 */
};

struct pending {
	struct pending *prev, *next;		/* by deadline */
	struct pending *tok_next, *txn_next;	/* hash chains */
	unsigned txn_hash;
	char *echo;		/* the header lines every response carries: the
				 * tail of this allocation */
	size_t echo_len;
	size_t echo_cap;	/* room at the tail (kept when recycled) */
	struct pkt pkt;
	uint8_t token[TOKEN_LEN];
	uint64_t rkey;		/* its key in the recent 302s (UDP only) */
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
	uv_idle_t nudge;		/* ... which must not wait for more I/O */
	bool expire_on;
	uv_loop_t *uv;
	struct registry *reg;
	struct rtab *tab;
	struct protolog *plog;
	struct pending *head, *tail;	/* ordered by deadline */
	size_t n_pending;
	struct pending *spare;		/* freed calls kept for reuse (by next) */
	size_t n_spare;
	uv_timer_t timer;
	unsigned long long timer_ms;	/* the deadline it is armed for */
	unsigned rr;
	uint8_t rnd[4096];
	size_t rnd_used;
	struct sipnet *net;
	struct redirects *resent;	/* recent 302s, for retransmissions */
	uint64_t tag_secret;
	char echo[16384];		/* scratch for one response */
	char resp[20480];
};

/* --- small helpers ----------------------------------------------------- */

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

/* Responses go back to the source; over UDP, once the request is read,
 * sipmsg_reply_addr() may move them to the Via's port. */
static void pkt_of(struct pkt *p, const struct sipnet_src *src)
{
	p->src = *src;
	memcpy(&p->dst, &src->remote, sizeof p->dst);
}

static int pkt_tr(const struct pkt *p)
{
	return p->src.tcp ? OPENUM__TRANSPORT__TRANSPORT_TCP
			  : OPENUM__TRANSPORT__TRANSPORT_UDP;
}

static const char *pkt_name(const struct pkt *p)
{
	return p->src.tcp ? "tcp" : "udp";
}

static void plog(struct route *r, const char *dir, const struct pkt *p,
		 const char *msg, size_t len)
{
	if (r->plog)
		protolog_write(r->plog, dir, pkt_name(p),
			       (const struct sockaddr *)&p->src.local,
			       (const struct sockaddr *)(strcmp(dir, "out") || p->src.tcp
							       ? &p->src.remote : &p->dst),
			       msg, len);
}

/* Sends a response made of echo (the request's Via ... CSeq) and extra
 * header lines, and protocol-logs it. */
static void send_response(struct route *r, const struct pkt *p, int status,
			  const char *phrase, const char *echo, size_t echo_len,
			  const char *extra)
{
	size_t n = sipmsg_response(r->resp, sizeof r->resp, status, phrase, echo,
				   echo_len, extra);
	char dst[NETADDR_STRLEN];
	int err;

	if (!n)
		return;
	err = sipnet_send(r->net, &p->src, (const struct sockaddr *)&p->dst,
			  r->resp, n);
	if (err)
		log_info("could not send %d to %s (%s): %s", status,
			 netaddr_str((const struct sockaddr *)&p->dst, dst, sizeof dst),
			 pkt_name(p), strerror(err));
	plog(r, "out", p, r->resp, n);
}

/* Answers m at once. */
static void reply(struct route *r, const struct sipmsg *m, const struct pkt *p,
		  int status, const char *phrase, const char *extra)
{
	char tag[17];
	size_t n;

	sipmsg_to_tag(m, r->tag_secret, tag);
	n = sipmsg_echo(r->echo, sizeof r->echo, m,
			(const struct sockaddr *)&p->src.remote, tag);
	if (!n) {
		log_info("no %d sent: the request's Via/From/To do not fit a response",
			 status);
		return;
	}
	send_response(r, p, status, phrase, r->echo, n, extra);
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

/* Calls are kept for reuse up to this many: a calloc (clearing 1.5 KiB)
 * and a free per call showed in the router's profile at 24,000 calls a
 * second, about 2 % together. */
#define PEND_SPARE_MAX 256

static void pend_free(struct route *r, struct pending *p)
{
	sipnet_conn_unref(p->pkt.src.conn);
	if (r->n_spare < PEND_SPARE_MAX) {
		p->next = r->spare;
		r->spare = p;
		r->n_spare++;
		return;
	}
	free(p);
}

static void timer_cb(uv_timer_t *t);

/* libuv's cached clock only advances once per loop turn, and a turn can
 * read hundreds of INVITEs: refresh it first, or the ack deadline would be
 * judged from a stale start. */
static unsigned long long now_ms(struct route *r)
{
	uv_update_time(r->uv);
	return uv_now(r->uv);
}

/* Arms the timer for the earliest deadline. A timer already armed for that
 * one or an earlier one is left alone (when it fires early it finds nothing
 * due and comes back here): deadlines only grow, so for most calls this is a
 * comparison instead of a clock read and two timer-heap updates. */
static void arm_timer(struct route *r)
{
	unsigned long long now;

	if (!r->head)
		return;
	if (uv_is_active((uv_handle_t *)&r->timer) && r->timer_ms <= r->head->deadline_ms)
		return;
	now = now_ms(r);
	uv_timer_start(&r->timer, timer_cb,
		       r->head->deadline_ms > now ? r->head->deadline_ms - now : 0, 0);
	r->timer_ms = r->head->deadline_ms;
}

/* --- routing ------------------------------------------------------------- */

static void finish(struct route *r, struct pending *p, int status,
		   const char *phrase, const char *extra)
{
	send_response(r, &p->pkt, status, phrase, p->echo, p->echo_len, extra);
	pend_free(r, p);
}

#define RETRY_AFTER "Retry-After: " ROUTE_RETRY_AFTER "\r\n"
#define ALLOW "Allow: " ROUTER_ALLOW "\r\n"


/* Hands the call to the next instance that can take it, or answers 503. */
static void try_next(struct route *r, struct pending *p)
{
	Openum__Envelope env;
	Openum__CallRouted cr = OPENUM__CALL_ROUTED__INIT;
	const struct reg_endpoint *ep = NULL;
	struct reg_instance *in;

	for (;;) {
		in = p->n_tried < MAX_TRIES
			     ? route_choose(r->reg, uv_now(r->uv),
					    (const struct sockaddr *)&p->pkt.src.local,
					    p->pkt.src.family, pkt_tr(&p->pkt), p->tried,
					    p->n_tried, &r->rr, &ep)
			     : NULL;
		if (!in) {
			log_warn("INVITE %s from gateway %s (Call-ID %s): no UM service "
				 "instance available over %s%s; 503",
				 p->user, p->gateway, p->call_id,
				 p->pkt.src.family == AF_INET6 ? "IPv6" : "IPv4",
				 p->n_tried ? " after failed handoffs" : "");
			finish(r, p, 503, "Service Unavailable (no UM service instance)",
			       RETRY_AFTER);
			return;
		}
		p->tried[p->n_tried++] = in->conn;
		if (new_token(r, p->token) != 0) {
			finish(r, p, 500, "Server Internal Error", NULL);
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

#define STR_(x) #x
#define STR(x) STR_(x)

static void expire_cb(uv_check_t *h);

static void nudge_cb(uv_idle_t *h)
{
	(void)h;
}

/* libuv runs timers before it reads sockets: judging a deadline right here
 * would time out calls whose ack is already waiting in the IPC socket after
 * a busy turn. So the timer only asks for a check after this turn's I/O.
 * The idle handle makes that I/O a look, not a wait: without it a quiet
 * loop slept in epoll with no timer left, and a call whose instance never
 * acked waited for the next packet to arrive instead of ~200 ms. */
static void timer_cb(uv_timer_t *t)
{
	struct route *r = t->data;

	if (!r->expire_on) {
		r->expire_on = true;
		uv_check_start(&r->expire, expire_cb);
		uv_idle_start(&r->nudge, nudge_cb);
	}
}

static void expire_cb(uv_check_t *h)
{
	struct route *r = h->data;
	unsigned long long now = now_ms(r);

	uv_check_stop(&r->expire);
	uv_idle_stop(&r->nudge);
	r->expire_on = false;

	while (r->head && r->head->deadline_ms <= now) {
		struct pending *p = r->head;
		struct reg_instance *in = reg_find_conn(r->reg, p->current);

		pend_unlink(r, p);
		log_warn("no CallRoutedAck for Call-ID %s from instance %s within "
			 "%d ms; trying another%s", p->call_id, in ? in->id : "(gone)",
			 ROUTE_ACK_TIMEOUT_MS,
			 in && in->avoid_until_ms <= now
				 ? ", and other instances first for "
				   STR(ROUTE_NOACK_AVOID_S) " s or until it acks" : "");
		if (in) {
			in->avoid_until_ms = now + ROUTE_NOACK_AVOID_MS;
			in->ack_timeouts++;
		}
		try_next(r, p);
	}
	arm_timer(r);
}

/* The Contact header line of a 302 to instance in (endpoint ep) under
 * token: "Contact: <sip:...;umtoken=...>\r\n". */
static int contact_line(char *line, size_t len, const char *user,
			const struct reg_instance *in, const struct reg_endpoint *ep,
			const uint8_t *token)
{
	char tokhex[2 * TOKEN_LEN + 1];
	size_t n;

	hex_encode(tokhex, token, TOKEN_LEN);
	if (len < 12 || route_contact(line + 9, len - 11, user, in, ep, tokhex))
		return ENOSPC;
	memcpy(line, "Contact: ", 9);
	n = 9 + strlen(line + 9);
	memcpy(line + n, "\r\n", 3);
	return 0;
}

/* See the header. */
void route_ack(struct route *r, struct ipc_conn *from,
	       const Openum__CallRoutedAck *ack)
{
	struct pending *p;
	char contact[640];
	struct reg_instance *in;
	const struct reg_endpoint *ep;

	if (ack->token.len != TOKEN_LEN)
		return;
	in = reg_find_conn(r->reg, from);
	if (in)
		in->avoid_until_ms = 0;	/* it answers, even if late */
	p = find_token(r, ack->token.data);
	if (!p || p->current != from)
		return;		/* late ack: the call has moved on */
	pend_unlink(r, p);
	if (!p->pkt.src.tcp)
		redirects_prefetch(r->resent, p->rkey);	/* the put below */
	if (!ack->accepted || !in) {
		log_warn("instance %s refused Call-ID %s: %s", in ? in->id : "?",
			 p->call_id, ack->reason && *ack->reason ? ack->reason : "no reason");
		try_next(r, p);
		arm_timer(r);
		return;
	}
	ep = route_pick_endpoint(in, (const struct sockaddr *)&p->pkt.src.local,
				 p->pkt.src.family, pkt_tr(&p->pkt));
	if (!ep || contact_line(contact, sizeof contact, p->user, in, ep, p->token)) {
		/* The instance re-registered without that family meanwhile. */
		try_next(r, p);
		arm_timer(r);
		return;
	}
	in->calls_routed++;
	log_debug("INVITE %s Call-ID %s from %s: %s %s -> %.*s", p->user, p->call_id,
		  p->gateway, p->cls.kind == CLASSIFY_SUBSCRIBER_ACCESS
				  ? "subscriber access" : "call answering",
		  p->cls.mailbox, (int)strcspn(contact + 9, "\r"), contact + 9);
	if (!p->pkt.src.tcp) {
		struct redirect rd = {.serial = in->serial};

		memcpy(rd.token, p->token, TOKEN_LEN);
		redirects_put(r->resent, p->rkey, uv_now(r->uv), &rd);
	}
	finish(r, p, 302, "Moved Temporarily", contact);
	arm_timer(r);
}

/* The key of m's transaction among the recent 302s. */
static uint64_t resend_key(const struct route *r, const struct sipmsg *m,
			   const struct pkt *pk)
{
	return redirects_key(r->resent, m->call_id.p, m->call_id.n, m->branch.p,
			     m->branch.n, m->cseq_num,
			     (const struct sockaddr *)&pk->src.remote);
}

/* A retransmission of an INVITE answered with a 302 not long ago (over UDP:
 * the 302 was lost, or is still on its way) gets the same 302 again, as long
 * as the instance is still registered as it was. false: route it anew. */
static bool resend(struct route *r, const struct sipmsg *m, const struct pkt *pk,
		   uint64_t key, const char *ruser, const char *gateway)
{
	struct redirect rd;
	struct reg_instance *in;
	const struct reg_endpoint *ep;
	char contact[640];

	if (!redirects_get(r->resent, key, uv_now(r->uv), &rd))
		return false;
	in = reg_find_serial(r->reg, rd.serial);
	ep = in ? route_pick_endpoint(in, (const struct sockaddr *)&pk->src.local,
				      pk->src.family, pkt_tr(pk))
		: NULL;
	if (!ep || contact_line(contact, sizeof contact, ruser, in, ep, rd.token))
		return false;
	in->redirects_resent++;
	log_debug("INVITE %s Call-ID %.*s from %s again: the same 302 (instance %s)",
		  ruser, (int)m->call_id.n, m->call_id.p, gateway, in->id);
	reply(r, m, pk, 302, "Moved Temporarily", contact);
	return true;
}

/* 403 to an INVITE from src, which is no gateway's address. When gateways
 * given by FQDN exclude the family it came over, the log line names them:
 * a dual-stack PBX set IPv4Only that calls over IPv6 is refused like a
 * stranger (its name is never looked up for AAAA), and that is the setting
 * to check. The peer only learns that it is no gateway. */
static void refuse_untrusted(struct route *r, const struct sipmsg *m,
			     const struct pkt *pk, const char *src,
			     const char *call_id)
{
	int fam = pk->src.remote.ss_family;
	char names[256];
	size_t n = r->tab ? rtab_fqdn_excluding(r->tab, fam, names, sizeof names) : 0;

	if (n)
		log_notice("403 to INVITE from %s (%s, Call-ID %s): the source is "
			   "not a UM IP gateway (%s %s %s %s: the %s addresses of "
			   "%s are neither looked up nor trusted)", src,
			   pkt_name(pk), call_id, n > 1 ? "gateways" : "gateway",
			   names, n > 1 ? "are" : "is",
			   fam == AF_INET6 ? "IPv4Only" : "IPv6Only",
			   fam == AF_INET6 ? "IPv6" : "IPv4",
			   n > 1 ? "their names" : "its name");
	else
		log_notice("403 to INVITE from %s (%s, Call-ID %s): the source is "
			   "not a UM IP gateway", src, pkt_name(pk), call_id);
	reply(r, m, pk, 403, "Forbidden (not a UM IP gateway)", NULL);
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

/* strlcpy: snprintf("%s") was a visible share of the router's time. */
static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = 0;
}

/* Room a new pending call gets for its echoed lines: enough for a typical
 * INVITE's, so that a recycled one rarely has to be replaced. */
#define PEND_ECHO_MIN 1024

/* A pending call for m, with the header lines every response to m carries
 * (kept while it waits) in the same allocation: a spare one when its room
 * suffices, else one malloc. Fields the caller does not set are cleared. */
static struct pending *pend_alloc(struct route *r, const struct sipmsg *m,
				  const struct pkt *pk)
{
	struct pending *p = r->spare;
	char tag[17];
	size_t n;

	sipmsg_to_tag(m, r->tag_secret, tag);
	n = sipmsg_echo(r->echo, sizeof r->echo, m,
			(const struct sockaddr *)&pk->src.remote, tag);
	if (!n)
		return NULL;	/* the caller's reply says which */
	if (p && p->echo_cap >= n) {
		r->spare = p->next;
		r->n_spare--;
	} else {
		size_t cap = n > PEND_ECHO_MIN ? n : PEND_ECHO_MIN;

		if (!(p = malloc(sizeof *p + cap)))
			return NULL;
		p->echo_cap = cap;
	}
	p->prev = p->next = p->tok_next = p->txn_next = NULL;
	p->n_tried = 0;
	p->current = NULL;
	p->echo = (char *)(p + 1);
	memcpy(p->echo, r->echo, n);
	p->echo_len = n;
	p->pkt = *pk;
	return p;
}

static void route_invite(struct route *r, const struct sipmsg *m,
			 const struct pkt *pk)
{
	const struct dir_gateway *gw;
	struct classify_ctx ctx;
	struct classify_request req;
	struct classify_result cls;
	struct pending *p;
	char src[NETADDR_STRLEN], call_id[128], branch[128], ruser[65], to_user[65];
	char div[SIPURI_VALUE_MAX + 1], hi[SIPURI_VALUE_MAX + 1];
	uint64_t rkey = 0;

	sipmsg_copy(call_id, sizeof call_id, m->call_id);
	sipmsg_copy(branch, sizeof branch, m->branch);
	if (find_txn(r, call_id, branch))
		return;		/* a retransmission while we wait for the ack */
	if (!pk->src.tcp) {	/* over TCP a client never retransmits */
		rkey = resend_key(r, m, pk);
		redirects_prefetch(r->resent, rkey);	/* read after the checks */
	}
	src[0] = 0;
	gw = r->tab ? rtab_gateway_by_addr(r->tab,
					   (const struct sockaddr *)&pk->src.remote,
					   NULL)
		    : NULL;
	if (!gw || gw->status != DIR_GW_ENABLED)
		netaddr_str((const struct sockaddr *)&pk->src.remote, src, sizeof src);
	if (!gw) {
		refuse_untrusted(r, m, pk, src, call_id);
		return;
	}
	if (gw->status != DIR_GW_ENABLED) {
		log_notice("503 to INVITE from %s: UM IP gateway %s is %s", src,
			   gw->name, dir_gw_status_name(gw->status));
		reply(r, m, pk, 503,
		      gw->status == DIR_GW_DISABLED
			      ? "Service Unavailable (gateway disabled)"
			      : "Service Unavailable (gateway takes no new calls)",
		      RETRY_AFTER);
		return;
	}
	sipmsg_ruri_user(m, ruser, sizeof ruser);
	if (!pk->src.tcp && resend(r, m, pk, rkey, ruser, gw->name))
		return;
	sipmsg_to_user(m, to_user, sizeof to_user);
	memset(&req, 0, sizeof req);
	req.gateway = gw->name;
	req.ruri_user = ruser;
	req.to_user = to_user;
	/* Too long to join is too long for sipuri to parse: 400 below. */
	if (m->n_diversion)
		req.diversion = sipmsg_join(m->diversion, m->n_diversion, div, sizeof div)
					? div : "<too long>";
	if (m->n_history_info)
		req.history_info = sipmsg_join(m->history_info, m->n_history_info,
					       hi, sizeof hi) ? hi : "<too long>";
	rtab_classify_ctx(r->tab, &ctx);
	classify_call(&ctx, &req, &cls);
	if (cls.kind == CLASSIFY_REJECT) {
		netaddr_str((const struct sockaddr *)&pk->src.remote, src, sizeof src);
		log_notice("%d to INVITE %s from gateway %s (%s): %s",
			   cls.status ? cls.status : 404, ruser, gw->name, src,
			   cls.reason);
		reply(r, m, pk, cls.status ? cls.status : 404,
		      cls.reason[0] ? cls.reason : "Not Found", NULL);
		return;
	}
	if (r->n_pending >= PENDING_MAX || !(p = pend_alloc(r, m, pk))) {
		reply(r, m, pk, 503, "Service Unavailable (overloaded)",
		      "Retry-After: 5\r\n");
		return;
	}
	p->cls = cls;
	p->rkey = rkey;
	sipnet_conn_ref(p->pkt.src.conn);
	copy_str(p->user, sizeof p->user, ruser);
	copy_str(p->call_id, sizeof p->call_id, call_id);
	copy_str(p->branch, sizeof p->branch, branch);
	copy_str(p->gateway, sizeof p->gateway, gw->name);
	sipmsg_from_user(m, p->caller, sizeof p->caller);
	try_next(r, p);
}

static void route_cancel(struct route *r, const struct sipmsg *m,
			 const struct pkt *pk)
{
	char call_id[128], branch[128];
	struct pending *p;

	sipmsg_copy(call_id, sizeof call_id, m->call_id);
	sipmsg_copy(branch, sizeof branch, m->branch);
	p = find_txn(r, call_id, branch);
	if (p) {
		pend_unlink(r, p);
		finish(r, p, 487, "Request Terminated", NULL);
		arm_timer(r);
	}
	/* Stateless: a CANCEL that matches nothing pending came after our final
	 * answer; 200 is still the right thing to tell the client (RFC 3261
	 * 16.10 lets a stateless element answer it). */
	reply(r, m, pk, 200, "OK", NULL);
}

/* See the header. */
void route_sip_cb(void *arg, const struct sipnet_src *src, const char *buf,
		  size_t len)
{
	struct route *r = arg;
	struct sipmsg m;
	struct pkt pk;
	const char *why = NULL;
	int status;

	pkt_of(&pk, src);
	plog(r, "in", &pk, buf, len);
	status = sipmsg_parse(&m, buf, len, src->tcp, &why);
	if (status < 0) {
		char from[NETADDR_STRLEN];

		log_info("dropping a message from %s (%s, %zu bytes): %s",
			 netaddr_str((const struct sockaddr *)&src->remote, from,
				     sizeof from), pkt_name(&pk), len, why);
		return;
	}
	if (m.response)
		return;		/* a redirect server sends no requests */
	if (!src->tcp)
		sipmsg_reply_addr(&m, (const struct sockaddr *)&src->remote, &pk.dst);
	if (status > 0) {
		char from[NETADDR_STRLEN];

		log_info("%d to %.*s from %s (%s): %s", status, (int)m.method_name.n,
			 m.method_name.p, netaddr_str((const struct sockaddr *)
						      &src->remote, from, sizeof from),
			 pkt_name(&pk), why);
		if (m.method != SIPMSG_ACK)
			reply(r, &m, &pk, status, why, NULL);
		return;
	}
	switch (m.method) {
	case SIPMSG_INVITE:
		route_invite(r, &m, &pk);
		break;
	case SIPMSG_ACK:
		break;		/* the ACK of our 302 */
	case SIPMSG_CANCEL:
		route_cancel(r, &m, &pk);
		break;
	case SIPMSG_OPTIONS:
		reply(r, &m, &pk, 200, "OK",
		      ALLOW "Accept: application/sdp\r\nAccept-Language: en\r\n");
		break;
	case SIPMSG_OTHER:
		reply(r, &m, &pk, 501, "Not Implemented", ALLOW);
		break;
	default:
		reply(r, &m, &pk, 405, "Method Not Allowed", ALLOW);
		break;
	}
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
	int err;

	if (!r)
		return ENOMEM;
	err = redirects_alloc(&r->resent, ROUTE_RESEND_SLOTS_LOG2, ROUTE_RESEND_MS);
	if (err) {
		free(r);
		return err;
	}
	r->uv = uv;
	r->reg = reg;
	r->rnd_used = sizeof r->rnd;	/* empty: the first token refills */
	if (getrandom(&r->tag_secret, sizeof r->tag_secret, 0) !=
	    (ssize_t)sizeof r->tag_secret)
		r->tag_secret = (uint64_t)daemon_now_ms();
	uv_timer_init(uv, &r->timer);
	r->timer.data = r;
	uv_check_init(uv, &r->expire);
	r->expire.data = r;
	uv_idle_init(uv, &r->nudge);
	r->nudge.data = r;
	*out = r;
	return 0;
}

static void nudge_closed(uv_handle_t *h)
{
	struct route *r = h->data;

	uv_close((uv_handle_t *)&r->expire, check_closed);
}

static void timer_closed(uv_handle_t *h)
{
	struct route *r = h->data;

	uv_close((uv_handle_t *)&r->nudge, nudge_closed);
}

/* Drops pending calls and frees once the timer is closed. */
void route_free(struct route *r)
{
	if (!r)
		return;
	while (r->head) {
		struct pending *p = r->head;

		pend_unlink(r, p);
		pend_free(r, p);
	}
	while (r->spare) {
		struct pending *p = r->spare;

		r->spare = p->next;
		free(p);
	}
	rtab_free(r->tab);
	r->tab = NULL;
	redirects_free(r->resent);
	r->resent = NULL;
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

/* A TCP peer is a gateway's when its address is any UM IP gateway's
 * (enabled or not: a disabled one is still answered, with 503). */
static bool peer_trusted(void *arg, const struct sockaddr *peer)
{
	struct route *r = arg;

	return r->tab && rtab_gateway_by_addr(r->tab, peer, NULL);
}

/* Sets the sockets responses go out on. */
void route_set_net(struct route *r, struct sipnet *net)
{
	r->net = net;
	sipnet_set_trust(net, peer_trusted, r);
}

/* Sets the protocol log. */
void route_set_protolog(struct route *r, struct protolog *p)
{
	r->plog = p;
}
