/* siptcp.c — see siptcp.h.
 *
 * A connection is a libuv stream whose bytes are framed into SIP messages
 * (sipmsg_frame) and handed to the router one by one. Responses written
 * during a loop turn are gathered per connection and go out at the start of
 * the next, one write for many. A connection held past its message (a call
 * waiting for its handoff) is referenced, so that closing it never frees
 * what the router still points to. */
#define LOG_MODULE "sipnet"
#include "callrouter/siptcp.h"
#include "callrouter/sipmsg.h"
#include "common/growbuf.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/netaddr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define CONN_MAX 4096		/* fewer when descriptors are fewer */
#define CONN_FD_RESERVE 64	/* descriptors kept for everything else */
#define STRANGER_IDLE_MS 10000	/* see sipnet_set_trust */
#define SWEEP_MS 2000
#define CONN_BUF_MAX (2 * SIPMSG_MAX)
#define CONN_WRITE_MAX (4 * 1024 * 1024)
#define CONN_OUT_BURST (64 * 1024)	/* written at once, not at turn's end */

struct siptcp {
	uv_loop_t *uv;
	sipnet_msg_h *h;
	void *arg;
	uv_tcp_t *listener[2];		/* IPv4, IPv6 */
	struct sipnet_conn *conns;	/* newest first */
	size_t n_conns, refused, conn_max;
	sipnet_trust_h *trust;
	void *trust_arg;
	uv_timer_t *sweep;		/* closes strangers' idle connections */
	uv_idle_t *flush;		/* the loop does not sleep while output waits */
	struct sipnet_conn *dirty;	/* connections with output */
};

struct sipnet_conn {
	struct sipnet_conn *prev, *next;
	struct siptcp *t;		/* NULL once closed */
	uv_tcp_t tcp;
	struct sipnet_src src;
	char *buf;
	size_t used, cap;
	char *out;			/* responses of this turn */
	size_t out_len, out_cap;
	struct sipnet_conn *dirty_next;
	bool is_dirty;
	unsigned refs;			/* the handle counts as one */
	bool closing;
	bool trusted;			/* from a UM IP gateway's address */
	uint64_t last_ms;		/* when it last sent something */
};

/* See sipnet.h. */
struct sipnet_conn *sipnet_conn_ref(struct sipnet_conn *c)
{
	if (c)
		c->refs++;
	return c;
}

/* See sipnet.h. */
void sipnet_conn_unref(struct sipnet_conn *c)
{
	if (!c || --c->refs > 0)
		return;
	free(c->out);
	free(c->buf);
	free(c);
}

static void conn_closed(uv_handle_t *h)
{
	sipnet_conn_unref(h->data);
}

static void conn_close(struct sipnet_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->t && c->is_dirty) {
		for (struct sipnet_conn **pp = &c->t->dirty; *pp; pp = &(*pp)->dirty_next) {
			if (*pp == c) {
				*pp = c->dirty_next;
				break;
			}
		}
		c->is_dirty = false;
	}
	if (c->t) {
		if (c->prev)
			c->prev->next = c->next;
		else
			c->t->conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
		c->t->n_conns--;
	}
	c->t = NULL;
	c->prev = c->next = NULL;
	uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void conn_shutdown_cb(uv_shutdown_t *req, int status)
{
	struct sipnet_conn *c = req->data;

	(void)status;
	free(req);
	conn_close(c);
}

static void tcp_flush(struct sipnet_conn *c);

/* Closes after what was written has gone out (a 400 before we hang up). */
static void conn_finish(struct sipnet_conn *c)
{
	uv_shutdown_t *req = malloc(sizeof *req);

	tcp_flush(c);
	if (c->closing) {
		free(req);
		return;
	}
	uv_read_stop((uv_stream_t *)&c->tcp);
	if (!req || (req->data = c,
		     uv_shutdown(req, (uv_stream_t *)&c->tcp, conn_shutdown_cb) != 0)) {
		free(req);
		conn_close(c);
	}
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct sipnet_conn *c = h->data;

	(void)suggested;
	/* at CONN_BUF_MAX a full buffer is a message too big (conn_process) */
	growbuf(&c->buf, &c->cap, c->used + 4096, 16384, CONN_BUF_MAX);
	*b = uv_buf_init(c->buf + c->used, (unsigned)(c->cap - c->used));
}

/* Hands every complete message in the buffer to the handler. */
static void conn_process(struct sipnet_conn *c)
{
	char peer[NETADDR_STRLEN];
	size_t off = 0;

	while (!c->closing && c->t && off < c->used) {
		const char *p = c->buf + off;
		size_t left = c->used - off, len = 0;
		int err;

		if (sipmsg_is_keepalive(p, left)) {
			/* RFC 5626 4.4.1: a CRLFCRLF ping gets a CRLF pong */
			if (left >= 4) {
				siptcp_send(c->t, c, "\r\n", 2);
				off += left;
			}
			break;
		}
		err = sipmsg_frame(p, left, &len);
		if (err == EAGAIN && sipmsg_stream_garbage(p, left)) {
			log_info("closing TCP connection from %s: %zu bytes that are "
				 "not SIP", netaddr_str((struct sockaddr *)&c->src.remote,
							peer, sizeof peer), left);
			conn_finish(c);
			return;
		}
		if (err == EAGAIN)
			break;
		/* headers too long to find: nothing to answer */
		if (err == EMSGSIZE && !len) {
			log_info("closing TCP connection from %s: a header part longer "
				 "than %u bytes", netaddr_str((struct sockaddr *)
							      &c->src.remote, peer, sizeof peer),
				 SIPMSG_MAX);
			conn_finish(c);
			return;
		}
		c->t->h(c->t->arg, &c->src, p, len);
		off += len;
		if (err == EBADMSG || err == EMSGSIZE) {
			/* The header part was answered (400, 513); its body is not
			 * read, so the stream cannot be framed any further. */
			netaddr_str((struct sockaddr *)&c->src.remote, peer, sizeof peer);
			if (err == EBADMSG)
				log_info("closing TCP connection from %s: bad "
					 "Content-Length", peer);
			else
				log_info("closing TCP connection from %s: a message "
					 "longer than %u bytes", peer, SIPMSG_MAX);
			conn_finish(c);
			return;
		}
	}
	if (off) {
		memmove(c->buf, c->buf + off, c->used - off);
		c->used -= off;
	}
	if (c->used == c->cap && c->cap >= CONN_BUF_MAX && !c->closing) {
		log_info("closing TCP connection from %s: no message fits the buffer",
			 netaddr_str((struct sockaddr *)&c->src.remote, peer, sizeof peer));
		conn_finish(c);
	}
}

static void conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct sipnet_conn *c = st->data;

	(void)b;
	if (n < 0) {
		conn_close(c);
		return;
	}
	if (c->t)
		c->last_ms = uv_now(c->t->uv);
	c->used += (size_t)n;
	conn_process(c);
}

/* At the connection limit, a gateway's new connection takes the place of
 * the oldest one from an address that is no gateway's; false if there is
 * none to close. */
static bool evict_stranger(struct siptcp *t, const struct sipnet_conn *newc)
{
	struct sipnet_conn *old = NULL;
	char who[NETADDR_STRLEN], gw[NETADDR_STRLEN];

	for (struct sipnet_conn *c = t->conns; c; c = c->next) {
		if (c != newc && !c->trusted && c->refs == 1)
			old = c;
	}
	if (!old)
		return false;
	log_warn("%zu TCP connections: closing the oldest from an address that is "
		 "no UM IP gateway's (%s) to make room for gateway %s", t->conn_max,
		 netaddr_str((struct sockaddr *)&old->src.remote, who, sizeof who),
		 netaddr_str((struct sockaddr *)&newc->src.remote, gw, sizeof gw));
	conn_close(old);
	return true;
}

static void listener_cb(uv_stream_t *server, int status)
{
	struct siptcp *t = server->data;
	struct sipnet_conn *c;
	int len;

	if (status < 0)
		return;
	c = calloc(1, sizeof *c);
	if (!c || uv_tcp_init(t->uv, &c->tcp) != 0) {
		free(c);
		return;
	}
	c->t = t;
	c->refs = 1;
	c->tcp.data = c;
	c->src.tcp = true;
	c->src.conn = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		c->closing = true;
		uv_close((uv_handle_t *)&c->tcp, conn_closed);
		return;
	}
	len = sizeof c->src.local;
	uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&c->src.local, &len);
	len = sizeof c->src.remote;
	uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->src.remote, &len);
	c->src.family = c->src.local.ss_family;
	c->trusted = !t->trust ||
		     t->trust(t->trust_arg, (const struct sockaddr *)&c->src.remote);
	c->last_ms = uv_now(t->uv);
	c->next = t->conns;
	if (t->conns)
		t->conns->prev = c;
	t->conns = c;
	t->n_conns++;
	if (t->n_conns > t->conn_max && !(c->trusted && evict_stranger(t, c))) {
		if (t->refused++ % 1000 == 0)
			log_warn("more than %zu TCP connections: refusing new ones "
				 "(%zu so far)", t->conn_max, t->refused);
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read) != 0)
		conn_close(c);
}

struct wreq {
	uv_write_t req;
	char data[];
};

static void write_cb(uv_write_t *req, int status)
{
	(void)status;
	free(req);
}

/* Writes a connection's queued responses: what the socket takes now, the
 * rest through libuv's write queue. */
static void tcp_flush(struct sipnet_conn *c)
{
	uv_buf_t b = uv_buf_init(c->out, (unsigned)c->out_len);
	size_t len = c->out_len;
	struct wreq *w;
	int n;

	c->out_len = 0;
	if (!len || c->closing)
		return;
	n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
	if (n == (int)len)
		return;
	if (n < 0 && n != UV_EAGAIN) {
		conn_close(c);
		return;
	}
	if (n < 0)
		n = 0;
	if (c->tcp.write_queue_size > CONN_WRITE_MAX) {
		char peer[NETADDR_STRLEN];

		log_info("closing TCP connection from %s: it reads no responses",
			 netaddr_str((struct sockaddr *)&c->src.remote, peer, sizeof peer));
		conn_close(c);
		return;
	}
	w = malloc(sizeof *w + len - (size_t)n);
	if (!w) {
		conn_close(c);
		return;
	}
	memcpy(w->data, c->out + n, len - (size_t)n);
	b = uv_buf_init(w->data, (unsigned)(len - (size_t)n));
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, write_cb) != 0) {
		free(w);
		conn_close(c);
	}
}

static void flush_cb(uv_idle_t *h)
{
	struct siptcp *t = h->data;

	uv_idle_stop(h);
	while (t->dirty) {
		struct sipnet_conn *c = t->dirty;

		t->dirty = c->dirty_next;
		c->is_dirty = false;
		tcp_flush(c);
	}
}

/* See the header. */
int siptcp_send(struct siptcp *t, struct sipnet_conn *c, const char *buf,
		size_t len)
{
	if (!c || c->closing || !c->t)
		return ENOTCONN;
	if (!growbuf(&c->out, &c->out_cap, c->out_len + len, 4096, 0))
		return ENOMEM;
	memcpy(c->out + c->out_len, buf, len);
	c->out_len += len;
	if (c->out_len >= CONN_OUT_BURST) {
		/* a big burst: do not let one connection's output grow */
		tcp_flush(c);
		return 0;
	}
	if (!c->is_dirty) {
		c->is_dirty = true;
		c->dirty_next = t->dirty;
		t->dirty = c;
	}
	if (!uv_is_active((uv_handle_t *)t->flush))
		uv_idle_start(t->flush, flush_cb);
	return 0;
}

/* See the header. */
int siptcp_listen(struct siptcp *t, const struct sockaddr *addr)
{
	int fi = addr->sa_family == AF_INET6;
	uv_tcp_t *l;
	int err;

	if (t->listener[fi])
		return EBUSY;
	l = calloc(1, sizeof *l);
	if (!l)
		return ENOMEM;
	if ((err = uv_tcp_init_ex(t->uv, l, addr->sa_family)) != 0) {
		free(l);
		return -err;
	}
	l->data = t;
	if ((err = uv_tcp_bind(l, addr, fi ? UV_TCP_IPV6ONLY : 0)) != 0 ||
	    (err = uv_listen((uv_stream_t *)l, 511, listener_cb)) != 0) {
		uv_close((uv_handle_t *)l, loop_close_free);
		return -err;
	}
	t->listener[fi] = l;
	return 0;
}

/* See the header. */
bool siptcp_close(struct siptcp *t, int family)
{
	int fi = family == AF_INET6;
	bool was = t->listener[fi] != NULL;

	if (was) {
		uv_close((uv_handle_t *)t->listener[fi], loop_close_free);
		t->listener[fi] = NULL;
	}
	for (struct sipnet_conn *c = t->conns, *next; c; c = next) {
		next = c->next;
		if (c->src.family == family)
			conn_close(c);
	}
	return was;
}

/* Closes the connections from strangers that have been silent too long. */
static void sweep_cb(uv_timer_t *timer)
{
	struct siptcp *t = timer->data;
	uint64_t now = uv_now(t->uv);
	char who[NETADDR_STRLEN] = "";
	unsigned n = 0;

	for (struct sipnet_conn *c = t->conns, *next; c; c = next) {
		next = c->next;
		if (c->trusted || c->refs > 1 || now - c->last_ms < STRANGER_IDLE_MS)
			continue;
		/* asked again: a gateway's name may have resolved since */
		if (t->trust(t->trust_arg, (const struct sockaddr *)&c->src.remote)) {
			c->trusted = true;
			continue;
		}
		if (!n++)
			netaddr_str((struct sockaddr *)&c->src.remote, who, sizeof who);
		conn_close(c);
	}
	if (n)
		log_info("closed %u TCP connection%s from addresses that are no UM IP "
			 "gateway's (%s%s), silent for %d s", n, n == 1 ? "" : "s",
			 who, n > 1 ? " and others" : "", STRANGER_IDLE_MS / 1000);
}

/* See the header. */
void siptcp_set_trust(struct siptcp *t, sipnet_trust_h *h, void *arg)
{
	t->trust = h;
	t->trust_arg = arg;
	if (!h)
		uv_timer_stop(t->sweep);
	else if (!uv_is_active((uv_handle_t *)t->sweep))
		uv_timer_start(t->sweep, sweep_cb, SWEEP_MS, SWEEP_MS);
}


/* See the header. */
int siptcp_alloc(struct siptcp **out, uv_loop_t *uv, sipnet_msg_h *h, void *arg)
{
	struct siptcp *t = calloc(1, sizeof *t);
	struct rlimit rl;

	if (!t)
		return ENOMEM;
	t->flush = calloc(1, sizeof *t->flush);
	t->sweep = calloc(1, sizeof *t->sweep);
	if (!t->flush || !t->sweep) {
		free(t->flush);
		free(t->sweep);
		free(t);
		return ENOMEM;
	}
	uv_idle_init(uv, t->flush);
	t->flush->data = t;
	uv_timer_init(uv, t->sweep);
	uv_unref((uv_handle_t *)t->sweep);
	t->sweep->data = t;
	/* Past the descriptors there are, accept() fails for gateways and
	 * strangers alike: the limit must be reached first. */
	t->conn_max = CONN_MAX;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < CONN_MAX + CONN_FD_RESERVE)
		t->conn_max = rl.rlim_cur > 2 * CONN_FD_RESERVE
				      ? rl.rlim_cur - CONN_FD_RESERVE : CONN_FD_RESERVE;
	t->uv = uv;
	t->h = h;
	t->arg = arg;
	*out = t;
	return 0;
}

/* See the header. */
void siptcp_free(struct siptcp *t)
{
	if (!t)
		return;
	flush_cb(t->flush);
	siptcp_close(t, AF_INET);
	siptcp_close(t, AF_INET6);
	uv_close((uv_handle_t *)t->flush, loop_close_free);
	uv_close((uv_handle_t *)t->sweep, loop_close_free);
	free(t);
}
