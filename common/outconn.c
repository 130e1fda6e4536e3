/* outconn.c — the outbound connection policy (see outconn.h).
 *
 * A round owns two timers (stagger, deadline) and one TCP handle per
 * attempt. However it ends — a winner, every attempt failed, the deadline,
 * a cancel — every handle is closed, and the handler runs once the last
 * one has closed (never inside outconn_start()); then the round is freed.
 * A round waiting for DNS stays allocated until the resolver answers. */
#define LOG_MODULE "outconn"
#include "common/outconn.h"
#include "common/log.h"
#include "common/netaddr.h"
#include "common/resolver.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bad_entry {
	struct sockaddr_storage a;
	uint64_t until_ms;		/* uv_now() */
};

/* Connect times seen per destination name (RFC 8305 §5: historical RTT
 * may shorten the delay between attempts). */
#define HIST_MAX 64
struct hist {
	char host[256];
	uint64_t srtt_us;		/* smoothed, 0: unused slot */
	uint64_t used_ms;
};

struct outconn {
	uv_loop_t *loop;
	struct hist hist[HIST_MAX];
	struct outconn_settings set;
	char dns[512];
	struct resolver *res;
	struct outconn_req *reqs;	/* every live round */
	struct bad_entry *bad;		/* OUTCONN_BAD_MAX, oldest first */
	size_t n_bad;
	bool closing;
};

struct attempt {
	struct outconn_req *r;
	uv_tcp_t tcp;
	uv_connect_t conn;
	size_t addr;			/* index into r->addrs */
	uint64_t started_ms;
	uint64_t started_ns;
	bool pending;
};

struct outconn_req {
	struct outconn *oc;
	struct outconn_req *prev, *next;
	outconn_h *h;
	void *arg;
	char host[256];
	unsigned port, fams;
	char who[160];
	struct sockaddr_storage addrs[OUTCONN_MAX_ADDRS];
	size_t n_addrs;
	size_t order[OUTCONN_MAX_ADDRS];
	size_t n_order, next_i;
	struct attempt att[OUTCONN_MAX_ADDRS];
	size_t n_att;
	uv_timer_t stagger, deadline;
	unsigned handles;		/* open uv handles */
	uint64_t t0_ns;
	unsigned delay_ms;		/* between attempts, this round */
	int last_err;
	bool resolving, done, cancelled;
	struct outconn_result res;
};

static uint64_t now_ms(struct outconn *oc)
{
	uv_update_time(oc->loop);	/* may run inside a sofia callback */
	return uv_now(oc->loop);
}

static bool same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
	return netaddr_same_host(a, b) && netaddr_port(a) == netaddr_port(b);
}

/* ---- pure ------------------------------------------------------------------ */

size_t outconn_order(const struct sockaddr_storage *addrs, size_t n,
		     unsigned fams, size_t *order)
{
	size_t k = 0;

	for (int pass = 0; pass < 2; pass++) {
		int want = pass == 0 ? AF_INET6 : AF_INET;
		unsigned bit = pass == 0 ? OUTCONN_V6 : OUTCONN_V4;

		if (!(fams & bit))
			continue;
		for (size_t i = 0; i < n; i++) {
			if (addrs[i].ss_family == want)
				order[k++] = i;
		}
	}
	return k;
}

/* ---- the bad-address list ----------------------------------------------------- */

static struct bad_entry *bad_find(struct outconn *oc, const struct sockaddr *a)
{
	uint64_t now = now_ms(oc);

	for (size_t i = 0; i < oc->n_bad; i++) {
		struct bad_entry *e = &oc->bad[i];

		if (!same_addr((const struct sockaddr *)&e->a, a))
			continue;
		if (e->until_ms > now)
			return e;
		/* Its interval has passed: it may be tried again. */
		memmove(e, e + 1, (oc->n_bad - i - 1) * sizeof *e);
		oc->n_bad--;
		return NULL;
	}
	return NULL;
}

bool outconn_is_bad(struct outconn *oc, const struct sockaddr *addr)
{
	return oc && addr && bad_find(oc, addr) != NULL;
}

size_t outconn_bad_count(struct outconn *oc)
{
	uint64_t now;
	size_t n = 0;

	if (!oc)
		return 0;
	now = now_ms(oc);
	for (size_t i = 0; i < oc->n_bad; i++)
		n += oc->bad[i].until_ms > now;
	return n;
}

void outconn_mark_bad(struct outconn *oc, const struct sockaddr *addr,
		      const char *why)
{
	struct bad_entry *e;
	char s[NETADDR_STRLEN];

	if (!oc || !addr || (addr->sa_family != AF_INET &&
			     addr->sa_family != AF_INET6))
		return;
	e = bad_find(oc, addr);
	if (!e) {
		if (oc->n_bad == OUTCONN_BAD_MAX) {
			memmove(oc->bad, oc->bad + 1,
				(OUTCONN_BAD_MAX - 1) * sizeof *oc->bad);
			oc->n_bad--;
		}
		e = &oc->bad[oc->n_bad++];
		memset(&e->a, 0, sizeof e->a);
		memcpy(&e->a, addr, addr->sa_family == AF_INET6
					    ? sizeof(struct sockaddr_in6)
					    : sizeof(struct sockaddr_in));
	}
	e->until_ms = now_ms(oc) + (uint64_t)oc->set.bad_interval_s * 1000;
	log_info("%s is on the bad-address list for %u s: %s",
		 netaddr_str(addr, s, sizeof s), oc->set.bad_interval_s,
		 why ? why : "unavailable");
}

void outconn_forget(struct outconn *oc)
{
	if (oc)
		oc->n_bad = 0;
}

/* ---- connect-time history ----------------------------------------------------------- */

static struct hist *hist_find(struct outconn *oc, const char *host, bool add)
{
	struct hist *oldest = &oc->hist[0];

	for (size_t i = 0; i < HIST_MAX; i++) {
		struct hist *h = &oc->hist[i];

		if (h->srtt_us && !strcmp(h->host, host))
			return h;
		if (!h->srtt_us || (oldest->srtt_us && h->used_ms < oldest->used_ms))
			oldest = h;
	}
	if (!add)
		return NULL;
	memset(oldest, 0, sizeof *oldest);
	snprintf(oldest->host, sizeof oldest->host, "%s", host);
	return oldest;
}

static void hist_add(struct outconn *oc, const char *host, uint64_t rtt_us)
{
	struct hist *h = hist_find(oc, host, true);

	if (!rtt_us)
		rtt_us = 1;
	h->srtt_us = h->srtt_us ? (7 * h->srtt_us + rtt_us) / 8 : rtt_us;
	h->used_ms = now_ms(oc);
}

/* The delay between attempts toward host: OutboundStagger without
 * history, else twice the smoothed connect time, within
 * [OUTCONN_STAGGER_MIN_MS, OutboundStagger]. */
unsigned outconn_delay_ms(struct outconn *oc, const char *host)
{
	struct hist *h = oc ? hist_find(oc, host, false) : NULL;
	unsigned max = oc ? oc->set.stagger_ms : OUTCONN_STAGGER_DEFAULT_MS;
	uint64_t d;

	if (!h)
		return max;
	d = (2 * h->srtt_us + 999) / 1000;
	if (d < OUTCONN_STAGGER_MIN_MS)
		d = OUTCONN_STAGGER_MIN_MS;
	return d > max ? max : (unsigned)d;
}

/* ---- a round ------------------------------------------------------------------ */

static void req_free(struct outconn_req *r)
{
	struct outconn *oc = r->oc;

	if (r->prev)
		r->prev->next = r->next;
	else
		oc->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	free(r);
	if (oc->closing && !oc->reqs) {
		resolver_free(oc->res);
		free(oc->bad);
		free(oc);
	}
}

/* The last handle has closed (or none was opened) and DNS is not out:
 * the handler, then the memory. */
static void maybe_deliver(struct outconn_req *r)
{
	if (!r->done || r->handles || r->resolving)
		return;
	if (!r->cancelled && r->h)
		r->h(r->arg, &r->res);
	req_free(r);
}

static void handle_closed(uv_handle_t *h)
{
	struct outconn_req *r = h->data;

	r->handles--;
	maybe_deliver(r);
}

static void close_handle(struct outconn_req *r, uv_handle_t *h)
{
	(void)r;
	if (!uv_is_closing(h))
		uv_close(h, handle_closed);
}

/* Ends the round: the outcome, every handle closed. */
static void finish(struct outconn_req *r, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void finish(struct outconn_req *r, int err, const char *fmt, ...)
{
	va_list ap;

	if (r->done)
		return;
	r->done = true;
	r->res.err = err;
	r->res.elapsed_ms = (uv_hrtime() - r->t0_ns) / 1000000;
	va_start(ap, fmt);
	vsnprintf(r->res.why, sizeof r->res.why, fmt, ap);
	va_end(ap);
	if (r->handles) {
		close_handle(r, (uv_handle_t *)&r->stagger);
		close_handle(r, (uv_handle_t *)&r->deadline);
		for (size_t i = 0; i < r->n_att; i++)
			close_handle(r, (uv_handle_t *)&r->att[i].tcp);
	}
	if (!r->cancelled)
		log_debug("%s%s%s after %llu ms (%u usable, %u skipped as bad, "
			  "%u tried)", err ? "" : r->who, err ? "" : ": ", r->res.why,
			  (unsigned long long)r->res.elapsed_ms, r->res.found,
			  r->res.skipped, r->res.tried);
	maybe_deliver(r);
}

static const struct sockaddr *att_addr(const struct attempt *a)
{
	return (const struct sockaddr *)&a->r->addrs[a->addr];
}

static bool any_pending(const struct outconn_req *r)
{
	for (size_t i = 0; i < r->n_att; i++) {
		if (r->att[i].pending)
			return true;
	}
	return false;
}

static void fail_round(struct outconn_req *r)
{
	int err = r->last_err ? r->last_err : ETIMEDOUT;

	finish(r, err, "%s: none of %u address%s of %s connected (last: %s)",
	       r->who, r->res.tried, r->res.tried == 1 ? "" : "es", r->host,
	       strerror(err));
}

static void connected(uv_connect_t *c, int status);
static void stagger_due(uv_timer_t *t);

/* Starts the next address that is not on the bad-address list; when none
 * is left and nothing is pending, the round has failed. */
static void start_next(struct outconn_req *r)
{
	struct outconn *oc = r->oc;

	while (!r->done && r->next_i < r->n_order) {
		struct attempt *a = &r->att[r->n_att];
		const struct sockaddr *sa;
		char s[NETADDR_STRLEN];
		int rc;

		a->r = r;
		a->addr = r->order[r->next_i++];
		sa = att_addr(a);
		netaddr_str(sa, s, sizeof s);
		if (uv_tcp_init(oc->loop, &a->tcp) != 0) {
			r->last_err = ENOMEM;
			continue;
		}
		r->n_att++;
		r->handles++;
		a->tcp.data = r;
		a->conn.data = a;
		a->started_ms = now_ms(oc);
		a->started_ns = uv_hrtime();
		r->res.tried++;
		rc = uv_tcp_connect(&a->conn, &a->tcp, sa, connected);
		if (rc != 0) {
			/* No route of that family, for instance: at once. */
			r->last_err = -rc;
			outconn_mark_bad(oc, sa, uv_strerror(rc));
			close_handle(r, (uv_handle_t *)&a->tcp);
			continue;
		}
		a->pending = true;
		log_debug("%s: trying %s (attempt %u)", r->who, s, r->res.tried);
		uv_timer_start(&r->stagger, stagger_due, r->delay_ms, 0);
		return;
	}
	if (!r->done && !any_pending(r))
		fail_round(r);
}

static void stagger_due(uv_timer_t *t)
{
	struct outconn_req *r = t->data;

	log_debug("%s: no connection after %u ms, starting the next address",
		  r->who, r->delay_ms);
	start_next(r);
}

static void deadline_due(uv_timer_t *t)
{
	struct outconn_req *r = t->data;
	unsigned ms = r->oc->set.round_timeout_ms;

	for (size_t i = 0; i < r->n_att; i++) {
		char why[64];

		if (!r->att[i].pending)
			continue;
		snprintf(why, sizeof why, "no answer within %u ms", ms);
		outconn_mark_bad(r->oc, att_addr(&r->att[i]), why);
	}
	r->last_err = ETIMEDOUT;
	finish(r, ETIMEDOUT, "%s: no address of %s connected within %u ms "
	       "(%u tried)", r->who, r->host, ms, r->res.tried);
}

static void connected(uv_connect_t *c, int status)
{
	struct attempt *a = c->data;
	struct outconn_req *r = a->r;
	struct outconn *oc = r->oc;
	char s[NETADDR_STRLEN];

	a->pending = false;
	if (r->done)		/* cancelled by the round's end (UV_ECANCELED) */
		return;
	netaddr_str(att_addr(a), s, sizeof s);
	if (status == 0) {
		uint64_t now = now_ms(oc);

		/* Addresses started before the winner that have not
		 * connected yet lost to a later one: unavailable. */
		for (size_t i = 0; i < r->n_att; i++) {
			struct attempt *o = &r->att[i];
			char why[128];

			if (!o->pending || o->started_ms > a->started_ms)
				continue;
			snprintf(why, sizeof why,
				 "no connection within %llu ms while %s connected",
				 (unsigned long long)(now - o->started_ms), s);
			outconn_mark_bad(oc, att_addr(o), why);
		}
		hist_add(oc, r->host, (uv_hrtime() - a->started_ns) / 1000);
		memcpy(&r->res.addr, att_addr(a), sizeof r->res.addr);
		snprintf(r->res.addr_str, sizeof r->res.addr_str, "%s", s);
		finish(r, 0, "connected to %s", s);
		return;
	}
	r->last_err = -status;
	log_debug("%s: %s failed: %s", r->who, s, uv_strerror(status));
	outconn_mark_bad(oc, att_addr(a), uv_strerror(status));
	/* A failure starts the next address at once (RFC 8305 §5). */
	start_next(r);
}

/* The addresses are known: filter, order, skip the bad ones, go. */
static void plan(struct outconn_req *r)
{
	struct outconn *oc = r->oc;
	size_t order[OUTCONN_MAX_ADDRS], n, k = 0;
	char list[512] = "";
	size_t used = 0;

	n = outconn_order(r->addrs, r->n_addrs, r->fams, order);
	r->res.found = (unsigned)n;
	for (size_t i = 0; i < n; i++) {
		const struct sockaddr *sa = (const struct sockaddr *)&r->addrs[order[i]];
		char s[NETADDR_STRLEN];
		int w;

		netaddr_str(sa, s, sizeof s);
		if (outconn_is_bad(oc, sa)) {
			r->res.skipped++;
			log_debug("%s: skipping %s (on the bad-address list)",
				  r->who, s);
			continue;
		}
		r->order[k++] = order[i];
		w = snprintf(list + used, sizeof list - used, "%s%s",
			     used ? ", " : "", s);
		if (w > 0 && (size_t)w < sizeof list - used)
			used += (size_t)w;
	}
	if (n && !k) {
		/* Skipping every address would fail for sure: the list only
		 * ever passes over an address in favour of another. */
		log_debug("%s: every address of %s (%zu) is on the bad-address "
			  "list: trying them anyway", r->who, r->host, n);
		for (size_t i = 0; i < n; i++)
			r->order[k++] = order[i];
		r->res.skipped = 0;
		r->res.all_bad = true;
	}
	r->n_order = k;
	if (!n) {
		finish(r, ENOENT, "%s: %s has no address of a family allowed "
		       "(%s%s%s)", r->who, r->host,
		       r->fams & OUTCONN_V6 ? "IPv6" : "",
		       r->fams == (OUTCONN_V4 | OUTCONN_V6) ? " or " : "",
		       r->fams & OUTCONN_V4 ? "IPv4" : "");
		return;
	}
	r->delay_ms = outconn_delay_ms(oc, r->host);
	log_debug("%s: order %s (next attempt after %u ms)", r->who, list,
		  r->delay_ms);
	uv_timer_start(&r->deadline, deadline_due, oc->set.round_timeout_ms, 0);
	start_next(r);
}

static void set_port(struct sockaddr_storage *ss, unsigned port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

static void resolved(void *arg, int err, const struct resolver_addr *addrs,
		     size_t n, unsigned ttl_s)
{
	struct outconn_req *r = arg;
	char list[512] = "";
	size_t used = 0;

	(void)ttl_s;
	r->resolving = false;
	if (r->done) {		/* cancelled meanwhile */
		maybe_deliver(r);
		return;
	}
	if (err) {
		finish(r, err, "%s: DNS lookup of %s: %s", r->who, r->host,
		       strerror(err));
		return;
	}
	for (size_t i = 0; i < n && r->n_addrs < OUTCONN_MAX_ADDRS; i++) {
		struct sockaddr_storage *ss = &r->addrs[r->n_addrs++];
		int w;

		memset(ss, 0, sizeof *ss);
		ss->ss_family = (sa_family_t)addrs[i].family;
		if (addrs[i].family == AF_INET6)
			((struct sockaddr_in6 *)ss)->sin6_addr = addrs[i].a.v6;
		else
			((struct sockaddr_in *)ss)->sin_addr = addrs[i].a.v4;
		set_port(ss, r->port);
		w = snprintf(list + used, sizeof list - used, "%s%s",
			     used ? ", " : "", addrs[i].str);
		if (w > 0 && (size_t)w < sizeof list - used)
			used += (size_t)w;
	}
	log_debug("%s: %s resolved to %s", r->who, r->host, list);
	plan(r);
}

static struct outconn_req *req_new(struct outconn *oc, const char *host,
				   unsigned port, unsigned fams, const char *who,
				   outconn_h *h, void *arg)
{
	struct outconn_req *r = calloc(1, sizeof *r);

	if (!r)
		return NULL;
	r->oc = oc;
	r->h = h;
	r->arg = arg;
	r->port = port;
	r->fams = fams;
	r->t0_ns = uv_hrtime();
	snprintf(r->host, sizeof r->host, "%s", host);
	snprintf(r->who, sizeof r->who, "%s", who ? who : "connection");
	uv_timer_init(oc->loop, &r->stagger);
	uv_timer_init(oc->loop, &r->deadline);
	r->stagger.data = r->deadline.data = r;
	r->handles = 2;
	r->next = oc->reqs;
	if (oc->reqs)
		oc->reqs->prev = r;
	oc->reqs = r;
	return r;
}

int outconn_start_addrs(struct outconn *oc, const struct sockaddr_storage *addrs,
			size_t n, unsigned fams, const char *who, outconn_h *h,
			void *arg, struct outconn_req **out)
{
	struct outconn_req *r;
	char host[NETADDR_STRLEN] = "";

	if (out)
		*out = NULL;
	if (!oc || oc->closing || !addrs || !n || n > OUTCONN_MAX_ADDRS ||
	    !(fams & (OUTCONN_V4 | OUTCONN_V6)) || !h)
		return EINVAL;
	netaddr_host((const struct sockaddr *)&addrs[0], host, sizeof host);
	r = req_new(oc, host, netaddr_port((const struct sockaddr *)&addrs[0]),
		    fams, who, h, arg);
	if (!r)
		return ENOMEM;
	memcpy(r->addrs, addrs, n * sizeof *addrs);
	r->n_addrs = n;
	if (out)
		*out = r;
	plan(r);	/* delivers only once the timers have closed */
	return 0;
}

int outconn_start(struct outconn *oc, const char *host, unsigned port,
		  unsigned fams, const char *who, outconn_h *h, void *arg,
		  struct outconn_req **out)
{
	struct outconn_req *r;
	struct sockaddr_storage ss;
	int err;

	if (out)
		*out = NULL;
	if (!oc || oc->closing || !host || !*host || !port || port > 65535 ||
	    !(fams & (OUTCONN_V4 | OUTCONN_V6)) || !h)
		return EINVAL;
	r = req_new(oc, host, port, fams, who, h, arg);
	if (!r)
		return ENOMEM;
	if (out)
		*out = r;
	if (netaddr_literal(host, &ss) == 0) {
		set_port(&ss, port);
		r->addrs[0] = ss;
		r->n_addrs = 1;
		plan(r);	/* delivers only once the timers have closed */
		return 0;
	}
	if (!oc->res) {
		char *cause = NULL;

		err = resolver_alloc(&oc->res, oc->loop, oc->dns, &cause);
		if (err) {
			finish(r, err, "%s: no DNS resolver for %s: %s", r->who,
			       host, cause ? cause : strerror(err));
			free(cause);
			return 0;
		}
	}
	r->resolving = true;
	err = resolver_lookup(oc->res, host,
			      (fams & OUTCONN_V6 ? RESOLVER_V6 : 0) |
			      (fams & OUTCONN_V4 ? RESOLVER_V4 : 0),
			      resolved, r);
	if (err) {
		r->resolving = false;
		finish(r, err, "%s: DNS lookup of %s: %s", r->who, host,
		       strerror(err));
	}
	return 0;
}

void outconn_cancel(struct outconn_req *r)
{
	if (!r || r->cancelled)
		return;
	r->cancelled = true;
	finish(r, ECANCELED, "cancelled");
}

/* ---- the policy ----------------------------------------------------------------- */

int outconn_alloc(struct outconn **out, uv_loop_t *loop)
{
	struct outconn *oc = calloc(1, sizeof *oc);

	if (!oc || !(oc->bad = calloc(OUTCONN_BAD_MAX, sizeof *oc->bad))) {
		free(oc);
		return ENOMEM;
	}
	oc->loop = loop;
	oc->set.stagger_ms = OUTCONN_STAGGER_DEFAULT_MS;
	oc->set.bad_interval_s = OUTCONN_BAD_INTERVAL_DEFAULT_S;
	oc->set.round_timeout_ms = OUTCONN_ROUND_TIMEOUT_MS;
	*out = oc;
	return 0;
}

int outconn_configure(struct outconn *oc, const char *dns_servers,
		      const struct outconn_settings *s, char **cause)
{
	const char *dns = dns_servers ? dns_servers : "";
	int err = 0;

	if (!oc)
		return EINVAL;
	if (s) {
		oc->set.stagger_ms = s->stagger_ms ? s->stagger_ms
						   : OUTCONN_STAGGER_DEFAULT_MS;
		oc->set.bad_interval_s = s->bad_interval_s;
		oc->set.round_timeout_ms = s->round_timeout_ms
						   ? s->round_timeout_ms
						   : OUTCONN_ROUND_TIMEOUT_MS;
	}
	if (strcmp(dns, oc->dns) != 0) {
		if (oc->res)
			err = resolver_set_servers(oc->res, dns, cause);
		if (!err)
			snprintf(oc->dns, sizeof oc->dns, "%s", dns);
	}
	return err;
}

void outconn_free(struct outconn *oc)
{
	struct outconn_req *r, *next;

	if (!oc)
		return;
	oc->closing = true;
	/* Rounds waiting for DNS are answered by nobody once the resolver is
	 * gone: they end here. */
	for (r = oc->reqs; r; r = r->next) {
		r->cancelled = true;
		r->resolving = false;
	}
	resolver_free(oc->res);
	oc->res = NULL;
	if (!oc->reqs) {
		free(oc->bad);
		free(oc);
		return;
	}
	for (r = oc->reqs; r; r = next) {
		next = r->next;
		if (!r->done)
			finish(r, ECANCELED, "closing");
		else
			maybe_deliver(r);
	}
}
