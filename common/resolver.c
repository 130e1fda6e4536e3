/* resolver.c — asynchronous A/AAAA lookups with c-ares on the libuv loop: one
 * uv_poll_t per socket c-ares opens, one timer for its retries, a TTL cache,
 * and answers handed to callers from a zero timer, never from inside c-ares.
 *
 * Why the answers go through a queue: c-ares calls us back from inside
 * ares_process_fd(), ares_getaddrinfo() (literals, /etc/hosts, bad names) or
 * ares_destroy(). A caller's handler that frees the resolver or changes its
 * servers there would destroy the channel under c-ares' feet. So a finished
 * query only records its answer and queues the waiters; deliver_cb() calls
 * the handlers later from a timer callback where anything is allowed.
 *
 * Why a server change builds a new channel: c-ares 1.18 refuses
 * ares_set_servers_*() while any query is in flight (ARES_ENOTIMP) and cannot
 * go back to /etc/resolv.conf once servers were set. ares_destroy() ends the
 * old channel's queries (with ARES_EDESTRUCTION, or with ARES_SUCCESS and a
 * half answer when one of an A+AAAA pair had already arrived), so every
 * callback during the swap is ignored and its lookup restarted on the new
 * channel; the waiters never see the swap. */
#define LOG_MODULE "resolver"
#include "common/cause.h"
#include "common/resolver.h"
#include "common/log.h"

#include <ares.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define RESOLVER_BUG(what)                                                    \
	do {                                                                  \
		fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, what);     \
		abort();                                                      \
	} while (0)

/* Longest name we look up (RFC 1035: 253 characters without the root dot). */
#define RESOLVER_NAME_MAX 253
/* An answer that needed retries for an A+AAAA lookup may lack one family
 * (c-ares 1.18 reports success as soon as either family has addresses), so
 * it is kept no longer than this and its TTL is reported no larger (s). */
#define RESOLVER_PARTIAL_TTL_S 5u

/* One answer, shared by the cache entry and the waiters it was handed to. */
struct answer {
	unsigned refs;
	size_t n;
	struct resolver_addr addrs[];
};

/* One caller waiting for its handler call. */
struct waiter {
	struct waiter *next;
	resolver_h *h;
	void *arg;
	int err;
	unsigned ttl_s;
	struct answer *ans;         /* NULL on error */
};

/* One name and set of families: a query in flight, or a cached answer. */
struct entry {
	struct entry *next;
	struct resolver *r;
	char *name;                 /* lower case, no trailing dot */
	unsigned families;
	bool done;                  /* err/ans/ttl_s/expires are the answer */
	bool querying;              /* a c-ares query holds this entry */
	bool restart;               /* query lost in a channel swap: start again */
	int err;
	struct answer *ans;
	unsigned ttl_s;             /* as answered */
	uint64_t expires;           /* uv_now() ms */
	struct waiter *waiters;     /* waiting for the query */
	struct waiter **wtail;
};

/* One socket c-ares asked us to watch. */
struct rpoll {
	struct rpoll *next;
	struct resolver *r;
	uv_poll_t h;
	ares_socket_t fd;
};

struct resolver {
	uv_loop_t *loop;
	ares_channel channel;
	bool lib_ready;             /* ares_library_init() succeeded */
	bool closing;               /* resolver_free() called */
	bool swapping;              /* ares_destroy() of a replaced channel */
	int handles;                /* libuv handles whose close cb is pending */
	uv_timer_t ares_timer;      /* ares_timeout(): retries and timeouts */
	uv_timer_t deliver_timer;   /* zero timer that calls the handlers */
	bool timers_ready;
	struct rpoll *polls;
	struct entry *entries;
	size_t nentries;
	struct waiter *ready;       /* answered, handler not called yet */
	struct waiter **ready_tail;
	char servers[512];          /* for logs: "system" or the c-ares CSV */
};


/* "A", "AAAA" or "AAAA+A", for logs. */
const char *resolver_families_str(unsigned families)
{
	switch (families) {
	case RESOLVER_V4:
		return "A";
	case RESOLVER_V6:
		return "AAAA";
	case RESOLVER_V4 | RESOLVER_V6:
		return "AAAA+A";
	default:
		return "?";
	}
}

static int err_of_ares(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return 0;
	case ARES_ENODATA:
	case ARES_ENOTFOUND:
	case ARES_ENONAME:
		return ENOENT;
	case ARES_ETIMEOUT:
		return ETIMEDOUT;
	case ARES_ECONNREFUSED:
	case ARES_EREFUSED:
		return ECONNREFUSED;
	case ARES_ESERVFAIL:
		return EAGAIN;
	case ARES_EFORMERR:
	case ARES_EBADRESP:
		return EBADMSG;
	case ARES_EBADNAME:
	case ARES_EBADFAMILY:
	case ARES_EBADQUERY:
	case ARES_EBADSTR:
	case ARES_EBADFLAGS:
	case ARES_EBADHINTS:
		return EINVAL;
	case ARES_ENOMEM:
		return ENOMEM;
	case ARES_ENOTIMP:
		return ENOTSUP;
	case ARES_ECANCELLED:
	case ARES_EDESTRUCTION:
		return ECANCELED;
	default:
		return EIO;
	}
}

/* ---- server list --------------------------------------------------------- */

static int parse_port(const char *s, size_t len, unsigned *port)
{
	unsigned v = 0;

	if (len == 0 || len > 5)
		return EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return EINVAL;
	*port = v;
	return 0;
}

/* One entry, already trimmed: "ip", "ip:port", "[v6]", "[v6]:port" or a
 * bare IPv6 address (no port: "::1:53" is an address). Writes the canonical
 * "ip:port" / "[v6]:port" to out. */
static int parse_server(const char *e, size_t len, char *out, size_t outlen)
{
	char host[64];
	const char *port_s = NULL;
	size_t port_len = 0, host_len;
	unsigned port = 53;
	int family;
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} a;
	char str[INET6_ADDRSTRLEN];
	const char *colon = memchr(e, ':', len);
	int n;

	if (e[0] == '[') {
		const char *close = memchr(e, ']', len);

		if (!close)
			return EINVAL;
		host_len = (size_t)(close - e) - 1;
		if (host_len == 0 || host_len >= sizeof host)
			return EINVAL;
		memcpy(host, e + 1, host_len);
		host[host_len] = '\0';
		family = AF_INET6;
		if ((size_t)(close - e) + 1 < len) {
			if (close[1] != ':')
				return EINVAL;
			port_s = close + 2;
			port_len = len - (size_t)(port_s - e);
			if (port_len == 0)
				return EINVAL;
		}
	} else if (colon && !memchr(colon + 1, ':', len - (size_t)(colon - e) - 1)) {
		host_len = (size_t)(colon - e);
		if (host_len == 0 || host_len >= sizeof host)
			return EINVAL;
		memcpy(host, e, host_len);
		host[host_len] = '\0';
		family = AF_INET;
		port_s = colon + 1;
		port_len = len - host_len - 1;
		if (port_len == 0)
			return EINVAL;
	} else {
		if (len >= sizeof host)
			return EINVAL;
		memcpy(host, e, len);
		host[len] = '\0';
		family = colon ? AF_INET6 : AF_INET;
	}
	if (port_s && parse_port(port_s, port_len, &port) != 0)
		return EINVAL;
	/* inet_pton() takes no zone ("%eth0") and no names: exactly what
	 * c-ares 1.18's CSV parser accepts. */
	if (inet_pton(family, host, &a) != 1)
		return EINVAL;
	if (!inet_ntop(family, &a, str, sizeof str))
		return EINVAL;
	if (family == AF_INET6)
		n = snprintf(out, outlen, "[%s]:%u", str, port);
	else
		n = snprintf(out, outlen, "%s:%u", str, port);
	if (n < 0 || (size_t)n >= outlen)
		return ENOSPC;
	return 0;
}

/* Validates a configured server list and converts it to the CSV that
 * ares_set_servers_ports_csv() takes: "ip:port,[v6]:port", every port
 * explicit (53 by default), addresses in canonical form. servers NULL or
 * blank means "the system's /etc/resolv.conf" and gives "". Entries are
 * comma-separated "ip", "ip:port", "[v6]", "[v6]:port", or a bare IPv6
 * address without port; spaces around entries are ignored. EINVAL with a
 * cause naming the bad entry; ENOSPC when ares_csv is too small. Pure: no
 * I/O, no c-ares. */
int resolver_parse_servers(const char *servers, char *ares_csv, size_t len,
			   char **cause)
{
	const char *p = servers ? servers : "";
	size_t used = 0;
	int err = 0;

	if (!ares_csv || len == 0)
		return EINVAL;
	ares_csv[0] = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		goto out;
	for (;;) {
		const char *end = strchr(p, ',');
		const char *b = p, *e = end ? end : p + strlen(p);
		char one[80];

		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (b == e) {
			err = EINVAL;
			cause_set(cause, "empty entry in DNS server list \"%s\"",
				  servers);
			goto out;
		}
		err = parse_server(b, (size_t)(e - b), one, sizeof one);
		if (err) {
			err = EINVAL;
			cause_set(cause, "bad DNS server \"%.*s\": expected ip, "
				  "ip:port or [ipv6]:port", (int)(e - b), b);
			goto out;
		}
		if (used + (used ? 1 : 0) + strlen(one) + 1 > len) {
			err = ENOSPC;
			cause_set(cause, "DNS server list too long");
			goto out;
		}
		used += (size_t)sprintf(ares_csv + used, "%s%s",
					used ? "," : "", one);
		if (!end)
			break;
		p = end + 1;
	}
out:
	if (err)
		ares_csv[0] = '\0';
	return err;
}

/* ---- answers and waiters ------------------------------------------------- */

static struct answer *answer_ref(struct answer *a)
{
	if (a)
		a->refs++;
	return a;
}

static struct answer *answer_deref(struct answer *a)
{
	if (a && --a->refs == 0)
		free(a);
	return NULL;
}

static void waiter_free(struct waiter *w)
{
	answer_deref(w->ans);
	free(w);
}

static void waiters_free(struct waiter *w)
{
	while (w) {
		struct waiter *next = w->next;

		waiter_free(w);
		w = next;
	}
}

static void deliver_cb(uv_timer_t *t)
{
	struct resolver *r = t->data;
	struct waiter *w = r->ready;

	/* Take the whole queue: handlers may queue more (a cached lookup), and
	 * those wait for the next turn of the loop. */
	r->ready = NULL;
	r->ready_tail = &r->ready;
	while (w) {
		struct waiter *next = w->next;

		/* After resolver_free() in a handler, r lives on until its close
		 * callbacks run, after this callback: drop the rest unheard. */
		if (!r->closing)
			w->h(w->arg, w->err, w->ans ? w->ans->addrs : NULL,
			     w->ans ? w->ans->n : 0, w->ttl_s);
		waiter_free(w);
		w = next;
	}
}

static void queue_ready(struct resolver *r, struct waiter *w)
{
	w->next = NULL;
	*r->ready_tail = w;
	r->ready_tail = &w->next;
	if (!uv_is_active((uv_handle_t *)&r->deliver_timer))
		uv_timer_start(&r->deliver_timer, deliver_cb, 0, 0);
}

/* An error for the log: "NXDOMAIN or no records", "timed out", ... */
static const char *err_str(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case ENOENT:
		return "no such name or no records";
	case ETIMEDOUT:
		return "no server answered";
	case ECONNREFUSED:
		return "refused";
	case EAGAIN:
		return "server failure";
	default:
		return strerror(err);
	}
}

static void format_addrs(char *buf, size_t len, const struct answer *a)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; a && i < a->n; i++) {
		int n = snprintf(buf + used, len - used, "%s%s", i ? " " : "",
				 a->addrs[i].str);

		if (n < 0 || (size_t)n >= len - used) {
			if (len > 4)
				strcpy(buf + len - 4, "...");
			return;
		}
		used += (size_t)n;
	}
}

/* ---- cache --------------------------------------------------------------- */

static void entry_unlink(struct resolver *r, struct entry *e)
{
	for (struct entry **pp = &r->entries; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			r->nentries--;
			return;
		}
	}
	RESOLVER_BUG("resolver entry not in its list");
}

static void entry_free(struct entry *e)
{
	if (!e)
		return;
	waiters_free(e->waiters);
	answer_deref(e->ans);
	free(e->name);
	free(e);
}

static struct entry *entry_find(struct resolver *r, const char *name,
				unsigned families)
{
	for (struct entry *e = r->entries; e; e = e->next) {
		if (e->families == families && strcmp(e->name, name) == 0)
			return e;
	}
	return NULL;
}

/* Drops cached answers past their time; with all, every cached answer
 * (queries in flight stay: their answers will be fresh). */
static void cache_sweep(struct resolver *r, bool all)
{
	uint64_t now = uv_now(r->loop);
	struct entry **pp = &r->entries;

	while (*pp) {
		struct entry *e = *pp;

		if (e->done && (all || now >= e->expires)) {
			*pp = e->next;
			r->nentries--;
			entry_free(e);
		} else {
			pp = &e->next;
		}
	}
}

/* ---- c-ares on libuv ----------------------------------------------------- */

static void handle_gone(struct resolver *r);
static void arm_timer(struct resolver *r);

static void ares_timer_cb(uv_timer_t *t)
{
	struct resolver *r = t->data;

	ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	arm_timer(r);
}

static void arm_timer(struct resolver *r)
{
	struct timeval tv, *tvp;
	uint64_t ms;

	if (r->closing || !r->channel)
		return;
	tvp = ares_timeout(r->channel, NULL, &tv);
	if (!tvp) {
		uv_timer_stop(&r->ares_timer);
		return;
	}
	/* Round up: a timer that fires a little early would find nothing due
	 * and spin until the deadline. */
	ms = (uint64_t)tvp->tv_sec * 1000 + ((uint64_t)tvp->tv_usec + 999) / 1000;
	uv_timer_start(&r->ares_timer, ares_timer_cb, ms, 0);
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
	struct rpoll *p = h->data;
	struct resolver *r = p->r;
	ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

	/* On a poll error let c-ares read: it sees the socket error itself
	 * and moves the query on to the next server or try. */
	if (status < 0 || (events & (UV_READABLE | UV_DISCONNECT)))
		rfd = p->fd;
	if (status >= 0 && (events & UV_WRITABLE))
		wfd = p->fd;
	/* May close this socket (sock_state_cb closes p; freed later). */
	ares_process_fd(r->channel, rfd, wfd);
	arm_timer(r);
}

static void poll_close_cb(uv_handle_t *h)
{
	struct rpoll *p = h->data;
	struct resolver *r = p->r;

	free(p);
	handle_gone(r);
}

/* c-ares opens, changes or closes a socket. The socket is closed right after
 * a (0, 0) call, so polling stops here: uv_close() removes the fd from epoll
 * at once, and a new socket on the same number gets a new rpoll. */
static void sock_state_cb(void *data, ares_socket_t fd, int readable,
			  int writable)
{
	struct resolver *r = data;
	struct rpoll **pp, *p;
	int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
	int uverr;

	for (pp = &r->polls; *pp && (*pp)->fd != fd; pp = &(*pp)->next)
		;
	p = *pp;
	if (!events) {
		if (p) {
			*pp = p->next;
			uv_close((uv_handle_t *)&p->h, poll_close_cb);
		}
		return;
	}
	if (!p) {
		p = calloc(1, sizeof *p);
		if (!p) {
			log_error("out of memory watching DNS socket %d", (int)fd);
			return;
		}
		uverr = uv_poll_init_socket(r->loop, &p->h, fd);
		if (uverr < 0) {
			log_error("cannot watch DNS socket %d: %s", (int)fd,
				  uv_strerror(uverr));
			free(p);
			return;
		}
		p->r = r;
		p->fd = fd;
		p->h.data = p;
		p->next = r->polls;
		r->polls = p;
		r->handles++;
	}
	uverr = uv_poll_start(&p->h, events, poll_cb);
	if (uverr < 0)
		log_error("cannot poll DNS socket %d: %s", (int)fd,
			  uv_strerror(uverr));
}

static int channel_create(struct resolver *r, ares_channel *out,
			  const char *csv, char **cause)
{
	struct ares_options o;
	ares_channel ch = NULL;
	int status, err = 0;

	memset(&o, 0, sizeof o);
	o.sock_state_cb = sock_state_cb;
	o.sock_state_cb_data = r;
	o.timeout = RESOLVER_TIMEOUT_MS;
	o.tries = RESOLVER_TRIES;
	o.domains = NULL;
	o.ndomains = 0; /* no search list: names are looked up as given */
	status = ares_init_options(&ch, &o, ARES_OPT_SOCK_STATE_CB |
				   ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
				   ARES_OPT_DOMAINS);
	if (status != ARES_SUCCESS) {
		err = err_of_ares(status);
		cause_set(cause, "c-ares: %s", ares_strerror(status));
		ch = NULL;
		goto out;
	}
	if (csv[0]) {
		status = ares_set_servers_ports_csv(ch, csv);
		if (status != ARES_SUCCESS) {
			err = status == ARES_ENOMEM ? ENOMEM : EINVAL;
			cause_set(cause, "c-ares rejected DNS servers %s: %s",
				  csv, ares_strerror(status));
			goto out;
		}
	}
	*out = ch;
	ch = NULL;
out:
	if (ch)
		ares_destroy(ch);
	return err;
}

/* The servers a channel uses, for the log. */
static void describe_servers(struct resolver *r, const char *csv)
{
	struct ares_addr_port_node *list = NULL;
	size_t used = 0;

	snprintf(r->servers, sizeof r->servers, "%s", csv[0] ? csv : "system");
	if (csv[0] || ares_get_servers_ports(r->channel, &list) != ARES_SUCCESS)
		return;
	used = (size_t)snprintf(r->servers, sizeof r->servers,
				"/etc/resolv.conf:");
	for (struct ares_addr_port_node *s = list; s; s = s->next) {
		char str[INET6_ADDRSTRLEN];
		int n;

		if (!inet_ntop(s->family, &s->addr, str, sizeof str))
			continue;
		n = snprintf(r->servers + used, sizeof r->servers - used,
			     s->family == AF_INET6 ? " [%s]:%d" : " %s:%d", str,
			     s->udp_port ? s->udp_port : 53);
		if (n < 0 || (size_t)n >= sizeof r->servers - used)
			break;
		used += (size_t)n;
	}
	ares_free_data(list);
}

/* ---- lookups ------------------------------------------------------------- */

static struct answer *answer_from_ai(const struct ares_addrinfo *ai,
				     unsigned *ttl_s)
{
	size_t n = 0, i = 0;
	struct answer *a;
	int ttl = INT_MAX;

	for (const struct ares_addrinfo_node *nd = ai->nodes; nd;
	     nd = nd->ai_next) {
		if (nd->ai_family == AF_INET || nd->ai_family == AF_INET6)
			n++;
	}
	a = calloc(1, sizeof *a + n * sizeof a->addrs[0]);
	if (!a)
		return NULL;
	a->refs = 1;
	/* IPv6 first, then IPv4, each in the order c-ares kept (ARES_AI_NOSORT:
	 * the order of the answer, no RFC 6724 sorting). */
	for (int pass = 0; pass < 2; pass++) {
		int fam = pass == 0 ? AF_INET6 : AF_INET;

		for (const struct ares_addrinfo_node *nd = ai->nodes; nd;
		     nd = nd->ai_next) {
			struct resolver_addr *ra;

			if (nd->ai_family != fam)
				continue;
			ra = &a->addrs[i];
			ra->family = fam;
			if (fam == AF_INET6)
				ra->a.v6 = ((const struct sockaddr_in6 *)
					    (const void *)nd->ai_addr)->sin6_addr;
			else
				ra->a.v4 = ((const struct sockaddr_in *)
					    (const void *)nd->ai_addr)->sin_addr;
			inet_ntop(fam, &ra->a, ra->str, sizeof ra->str);
			if (nd->ai_ttl < ttl)
				ttl = nd->ai_ttl;
			i++;
		}
	}
	a->n = i;
	for (const struct ares_addrinfo_cname *c = ai->cnames; c; c = c->next) {
		if (c->ttl < ttl)
			ttl = c->ttl;
	}
	*ttl_s = ttl < 0 ? 0 : ttl == INT_MAX ? 0 : (unsigned)ttl;
	return a;
}

static void start_query(struct entry *e);

static void addrinfo_cb(void *arg, int status, int timeouts,
			struct ares_addrinfo *ai)
{
	struct entry *e = arg;
	struct resolver *r = e->r;
	uint64_t keep_ms = 0;
	char addrs[256];
	struct waiter *w;

	if (r->closing) {
		/* resolver_free() destroys the channel and frees e after. */
		ares_freeaddrinfo(ai);
		return;
	}
	e->querying = false;
	if (r->swapping || status == ARES_EDESTRUCTION) {
		/* Lost in resolver_set_servers(): asked again on the new
		 * channel. A half A+AAAA answer given here is dropped too. */
		e->restart = true;
		ares_freeaddrinfo(ai);
		return;
	}
	e->done = true;
	e->err = err_of_ares(status);
	if (!e->err && ai) {
		e->ans = answer_from_ai(ai, &e->ttl_s);
		if (!e->ans)
			e->err = ENOMEM;
		else if (e->ans->n == 0)
			e->err = ENOENT;
	} else if (!e->err) {
		e->err = EIO;
	}
	ares_freeaddrinfo(ai);
	if (e->err) {
		e->ans = answer_deref(e->ans);
		e->ttl_s = 0;
	}
	if (!e->err && timeouts > 0 && e->families == (RESOLVER_V4 | RESOLVER_V6) &&
	    e->ttl_s > RESOLVER_PARTIAL_TTL_S) {
		log_debug("lookup %s %s needed %d retries: TTL %u s cut to %u s "
			  "(one family may be missing)", e->name,
			  resolver_families_str(e->families), timeouts,
			  e->ttl_s, RESOLVER_PARTIAL_TTL_S);
		e->ttl_s = RESOLVER_PARTIAL_TTL_S;
	}

	if (e->err == 0)
		keep_ms = e->ttl_s ? (uint64_t)e->ttl_s * 1000
				   : RESOLVER_TTL0_CACHE_MS;
	else if (e->err == ENOENT)
		keep_ms = RESOLVER_NEG_CACHE_MS;
	e->expires = uv_now(r->loop) + keep_ms;

	if (log_get_level() <= LOG_LEVEL_DEBUG) {
		format_addrs(addrs, sizeof addrs, e->ans);
		if (e->err)
			log_debug("lookup %s %s: %s (c-ares: %s), %d timeouts, "
				  "cached %u ms", e->name,
				  resolver_families_str(e->families),
				  err_str(e->err), ares_strerror(status),
				  timeouts, (unsigned)keep_ms);
		else
			log_debug("lookup %s %s: [%s] TTL %u s, %d timeouts, "
				  "cached %u ms", e->name,
				  resolver_families_str(e->families), addrs,
				  e->ttl_s, timeouts, (unsigned)keep_ms);
	}

	while ((w = e->waiters)) {
		e->waiters = w->next;
		w->err = e->err;
		w->ttl_s = e->ttl_s;
		w->ans = answer_ref(e->ans);
		queue_ready(r, w);
	}
	e->wtail = &e->waiters;
	if (keep_ms == 0) {
		entry_unlink(r, e);
		entry_free(e);
	}
}

/* Starts the c-ares query of e. The callback may run before this returns
 * (/etc/hosts, bad names) and free e: e is not touched afterwards. */
static void start_query(struct entry *e)
{
	struct resolver *r = e->r;
	struct ares_addrinfo_hints hints;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = e->families == RESOLVER_V4 ? AF_INET
			  : e->families == RESOLVER_V6 ? AF_INET6 : AF_UNSPEC;
	hints.ai_flags = ARES_AI_NOSORT;
	e->querying = true;
	e->restart = false;
	ares_getaddrinfo(r->channel, e->name, NULL, &hints, addrinfo_cb, e);
	arm_timer(r);
}

/* A literal address as the name: answered without DNS. 1 if it was one. */
static int lookup_literal(struct resolver *r, const char *name,
			  unsigned families, struct waiter *w)
{
	char buf[INET6_ADDRSTRLEN + 2];
	size_t len = strlen(name);
	struct resolver_addr ra;

	memset(&ra, 0, sizeof ra);
	if (inet_pton(AF_INET, name, &ra.a.v4) == 1) {
		ra.family = AF_INET;
	} else {
		if (name[0] == '[' && len >= 3 && len < sizeof buf &&
		    name[len - 1] == ']') {
			memcpy(buf, name + 1, len - 2);
			buf[len - 2] = '\0';
			name = buf;
		}
		if (inet_pton(AF_INET6, name, &ra.a.v6) != 1)
			return 0;
		ra.family = AF_INET6;
	}
	inet_ntop(ra.family, &ra.a, ra.str, sizeof ra.str);
	if (!(families & (ra.family == AF_INET6 ? RESOLVER_V6 : RESOLVER_V4))) {
		w->err = ENOENT;
		log_debug("lookup %s %s: literal of the other family", ra.str,
			  resolver_families_str(families));
	} else {
		w->ans = calloc(1, sizeof *w->ans + sizeof ra);
		if (!w->ans) {
			w->err = ENOMEM;
		} else {
			w->ans->refs = 1;
			w->ans->n = 1;
			w->ans->addrs[0] = ra;
			w->ttl_s = RESOLVER_TTL_LITERAL;
		}
		log_debug("lookup %s %s: literal, no DNS", ra.str,
			  resolver_families_str(families));
	}
	queue_ready(r, w);
	return 1;
}

/* Lower case, one trailing dot removed, LDH-and-underscore labels of 1..63
 * characters, 253 at most. 0 or EINVAL. */
static int normalize_name(const char *name, char *out, size_t outlen)
{
	size_t len = strlen(name), label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > RESOLVER_NAME_MAX || len >= outlen)
		return EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.') {
			if (label == 0)
				return EINVAL;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			if (++label > 63)
				return EINVAL;
		} else {
			return EINVAL;
		}
		out[i] = (char)tolower(c);
	}
	if (label == 0)
		return EINVAL;
	out[len] = '\0';
	return 0;
}

/* Looks name up for the families asked (RESOLVER_V4 and/or RESOLVER_V6) and
 * calls h(arg, ...) once, later, from the loop (see resolver_h). A cached
 * answer is served while its TTL runs (the reported TTL is what remains);
 * a lookup of a name and families already being asked joins that query.
 * Returns 0 (h will be called), EINVAL for a bad name or families (h is not
 * called), ENOMEM. */
int resolver_lookup(struct resolver *r, const char *name, unsigned families,
		    resolver_h *h, void *arg)
{
	char norm[RESOLVER_NAME_MAX + 2];
	struct waiter *w = NULL;
	struct entry *e;
	int err = 0;

	if (!r || r->closing || !name || !h || families == 0 ||
	    (families & ~(unsigned)(RESOLVER_V4 | RESOLVER_V6)))
		return EINVAL;
	w = calloc(1, sizeof *w);
	if (!w)
		return ENOMEM;
	w->h = h;
	w->arg = arg;
	if (lookup_literal(r, name, families, w))
		return 0;
	if (normalize_name(name, norm, sizeof norm) != 0) {
		log_debug("lookup of a bad name refused");
		err = EINVAL;
		goto out;
	}

	e = entry_find(r, norm, families);
	if (e && e->done && uv_now(r->loop) >= e->expires) {
		entry_unlink(r, e);
		entry_free(e);
		e = NULL;
	}
	if (e && e->done) {
		uint64_t left = (e->expires - uv_now(r->loop) + 999) / 1000;

		w->err = e->err;
		w->ans = answer_ref(e->ans);
		w->ttl_s = left < e->ttl_s ? (unsigned)left : e->ttl_s;
		if (log_get_level() <= LOG_LEVEL_DEBUG) {
			char addrs[256];

			format_addrs(addrs, sizeof addrs, e->ans);
			if (e->err)
				log_debug("lookup %s %s: cache hit: %s", norm,
					  resolver_families_str(families),
					  err_str(e->err));
			else
				log_debug("lookup %s %s: cache hit: [%s] TTL "
					  "%u s", norm,
					  resolver_families_str(families),
					  addrs, w->ttl_s);
		}
		queue_ready(r, w);
		w = NULL;
		goto out;
	}
	if (e) {
		log_debug("lookup %s %s: cache miss, joins the query in flight",
			  norm, resolver_families_str(families));
		*e->wtail = w;
		e->wtail = &w->next;
		w = NULL;
		goto out;
	}

	cache_sweep(r, false);
	e = calloc(1, sizeof *e);
	if (!e || !(e->name = strdup(norm))) {
		free(e);
		err = ENOMEM;
		goto out;
	}
	e->r = r;
	e->families = families;
	e->waiters = w;
	e->wtail = &w->next;
	w = NULL;
	e->next = r->entries;
	r->entries = e;
	r->nentries++;
	log_debug("lookup %s %s: cache miss, asking %s", norm,
		  resolver_families_str(families), r->servers);
	start_query(e);
out:
	free(w);
	return err;
}

/* Forgets every cached answer (lookups in flight go on). */
void resolver_flush(struct resolver *r)
{
	if (!r || r->closing)
		return;
	cache_sweep(r, true);
	log_debug("cache flushed");
}

/* Replaces the DNS servers (same syntax as resolver_alloc) and flushes the
 * cache. Lookups in flight are asked again of the new servers; their
 * handlers are called once as usual. On error (EINVAL with cause, ENOMEM)
 * the old servers stay. */
int resolver_set_servers(struct resolver *r, const char *servers, char **cause)
{
	char csv[sizeof r->servers];
	ares_channel ch = NULL, old;
	int err;

	if (!r || r->closing)
		return EINVAL;
	err = resolver_parse_servers(servers, csv, sizeof csv, cause);
	if (err)
		goto out;
	err = channel_create(r, &ch, csv, cause);
	if (err)
		goto out;
	old = r->channel;
	r->channel = ch;
	r->swapping = true;
	ares_destroy(old);
	r->swapping = false;
	describe_servers(r, csv);
	log_info("DNS servers: %s", r->servers);
	cache_sweep(r, true);
	/* start_query may free an entry (synchronous answer): rescan. */
	for (;;) {
		struct entry *e;

		for (e = r->entries; e && !e->restart; e = e->next)
			;
		if (!e)
			break;
		log_debug("lookup %s %s: asked again of the new servers",
			  e->name, resolver_families_str(e->families));
		start_query(e);
	}
	arm_timer(r);
out:
	return err;
}

/* Creates a resolver on loop. servers: NULL or "" for the system's
 * /etc/resolv.conf (its search list is not used), else a list as
 * resolver_parse_servers() takes. EINVAL with cause for a bad list. */
int resolver_alloc(struct resolver **out, uv_loop_t *loop, const char *servers,
		   char **cause)
{
	struct resolver *r = NULL;
	char csv[sizeof r->servers];
	int err, status;

	if (!out || !loop)
		return EINVAL;
	err = resolver_parse_servers(servers, csv, sizeof csv, cause);
	if (err)
		return err;
	r = calloc(1, sizeof *r);
	if (!r)
		return ENOMEM;
	r->loop = loop;
	r->ready_tail = &r->ready;
	uv_timer_init(loop, &r->ares_timer);
	uv_timer_init(loop, &r->deliver_timer);
	r->ares_timer.data = r;
	r->deliver_timer.data = r;
	r->timers_ready = true;
	r->handles = 2;
	status = ares_library_init(ARES_LIB_INIT_ALL);
	if (status != ARES_SUCCESS) {
		err = err_of_ares(status);
		cause_set(cause, "c-ares: %s", ares_strerror(status));
		goto out;
	}
	r->lib_ready = true;
	err = channel_create(r, &r->channel, csv, cause);
	if (err)
		goto out;
	describe_servers(r, csv);
	log_info("DNS servers: %s (c-ares %s)", r->servers, ares_version(NULL));
	*out = r;
	r = NULL;
out:
	if (r)
		resolver_free(r);
	return err;
}

/* One libuv handle of r is closed; the last one frees r. */
static void handle_gone(struct resolver *r)
{
	if (--r->handles > 0)
		return;
	if (r->lib_ready)
		ares_library_cleanup();
	free(r);
}

static void timer_close_cb(uv_handle_t *h)
{
	handle_gone(h->data);
}

/* Cancels every lookup (no handler is called any more, even from inside a
 * handler running now), closes the sockets and timers; the memory goes when
 * libuv has closed the handles, so the loop must run once more. */
void resolver_free(struct resolver *r)
{
	struct entry *e;

	if (!r || r->closing)
		return;
	r->closing = true;
	if (r->channel) {
		/* Calls addrinfo_cb (ignored) and sock_state_cb (closes polls). */
		ares_destroy(r->channel);
		r->channel = NULL;
	}
	while ((e = r->entries)) {
		r->entries = e->next;
		entry_free(e);
	}
	r->nentries = 0;
	waiters_free(r->ready);
	r->ready = NULL;
	r->ready_tail = &r->ready;
	if (r->polls)
		RESOLVER_BUG("DNS socket still watched after ares_destroy");
	if (r->timers_ready) {
		uv_close((uv_handle_t *)&r->ares_timer, timer_close_cb);
		uv_close((uv_handle_t *)&r->deliver_timer, timer_close_cb);
	} else {
		free(r);
	}
}
