/* sipnet.c — see sipnet.h.
 *
 * UDP is read with uv_poll + recvmmsg rather than uv_udp: one system call
 * brings up to BATCH datagrams with their destination address, which at
 * thousands of calls a second is most of what a redirect server's kernel
 * time goes to. Replies go out with sendmsg and an IP_PKTINFO source, so a
 * gateway always hears the router from the address it called. */
#define LOG_MODULE "sipnet"
#include "callrouter/sipnet.h"
#include "callrouter/sipmsg.h"
#include "common/growbuf.h"
#include "common/log.h"
#include "common/netaddr.h"
#include "common/sipl.h"

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define BATCH 32
#define BATCHES_PER_WAKE 8	/* then let IPC and timers have a turn */
#define UDP_RCVBUF (4 * 1024 * 1024)
#define CONN_MAX 4096		/* fewer when descriptors are fewer */
#define CONN_FD_RESERVE 64	/* descriptors kept for everything else */
#define STRANGER_IDLE_MS 10000	/* see sipnet_set_trust */
#define SWEEP_MS 2000
#define CONN_BUF_MAX (2 * SIPMSG_MAX)
#define CONN_WRITE_MAX (4 * 1024 * 1024)
#define OUTQ 64			/* UDP responses per sendmmsg */
#define OUTQ_BYTES (256 * 1024)

union ctlbuf {
	char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
	struct cmsghdr align;
};

/* UDP responses queued in one loop turn, for one sendmmsg. */
struct outq {
	struct mmsghdr mm[OUTQ];
	struct iovec iov[OUTQ];
	struct sockaddr_storage dst[OUTQ];
	union ctlbuf ctl[OUTQ];
	unsigned n;
	size_t used;
	char *bytes;		/* OUTQ_BYTES */
};

struct fam {
	int fd;
	uv_poll_t *poll;	/* heap: a reopened family must not reuse a
				 * handle whose close is still pending */
	uv_tcp_t *listener;
	unsigned port;
	struct outq q;
};

struct sipnet {
	uv_loop_t *uv;
	sipnet_msg_h *h;
	void *arg;
	struct fam fam[2];
	struct sipnet_conn *conns;	/* newest first */
	size_t n_conns, refused, conn_max;
	sipnet_trust_h *trust;
	void *trust_arg;
	uv_timer_t *sweep;		/* closes strangers' idle connections */
	char *rbuf;			/* BATCH datagrams */
	/* Responses written in a loop turn go out at the start of the next
	 * (an idle handle: the loop does not sleep in between), many per
	 * system call. */
	uv_idle_t *flush;
	struct sipnet_conn *dirty;	/* TCP connections with output */
};

struct sipnet_conn {
	struct sipnet_conn *prev, *next;
	struct sipnet *s;		/* NULL once s is freed */
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

static int fam_index(int af)
{
	return af == AF_INET6 ? 1 : 0;
}

static const char *fam_name(int i)
{
	return i ? "IPv6" : "IPv4";
}

/* --- TCP connections ------------------------------------------------------ */

/* See the header. */
struct sipnet_conn *sipnet_conn_ref(struct sipnet_conn *c)
{
	if (c)
		c->refs++;
	return c;
}

/* See the header. */
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
	if (c->s && c->is_dirty) {
		for (struct sipnet_conn **pp = &c->s->dirty; *pp; pp = &(*pp)->dirty_next) {
			if (*pp == c) {
				*pp = c->dirty_next;
				break;
			}
		}
		c->is_dirty = false;
	}
	if (c->s) {
		if (c->prev)
			c->prev->next = c->next;
		else
			c->s->conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
		c->s->n_conns--;
	}
	c->s = NULL;
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

/* Closes after what was written has gone out (a 400 before we hang up). */
static void tcp_flush(struct sipnet_conn *c);

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

	while (!c->closing && c->s && off < c->used) {
		const char *p = c->buf + off;
		size_t left = c->used - off, len = 0;
		int err;

		if (sipmsg_is_keepalive(p, left)) {
			/* RFC 5626 4.4.1: a CRLFCRLF ping gets a CRLF pong */
			if (left >= 4) {
				sipnet_send(c->s, &c->src, NULL, "\r\n", 2);
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
		c->s->h(c->s->arg, &c->src, p, len);
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
	if (c->s)
		c->last_ms = uv_now(c->s->uv);
	c->used += (size_t)n;
	conn_process(c);
}

/* At the connection limit, a gateway's new connection takes the place of
 * the oldest one from an address that is no gateway's; false if there is
 * none to close. */
static bool evict_stranger(struct sipnet *s, const struct sipnet_conn *newc)
{
	struct sipnet_conn *old = NULL;
	char who[NETADDR_STRLEN], gw[NETADDR_STRLEN];

	for (struct sipnet_conn *c = s->conns; c; c = c->next) {
		if (c != newc && !c->trusted && c->refs == 1)
			old = c;
	}
	if (!old)
		return false;
	log_warn("%zu TCP connections: closing the oldest from an address that is "
		 "no UM IP gateway's (%s) to make room for gateway %s", s->conn_max,
		 netaddr_str((struct sockaddr *)&old->src.remote, who, sizeof who),
		 netaddr_str((struct sockaddr *)&newc->src.remote, gw, sizeof gw));
	conn_close(old);
	return true;
}

static void listener_cb(uv_stream_t *server, int status)
{
	struct sipnet *s = server->data;
	struct sipnet_conn *c;
	int len;

	if (status < 0)
		return;
	c = calloc(1, sizeof *c);
	if (!c || uv_tcp_init(s->uv, &c->tcp) != 0) {
		free(c);
		return;
	}
	c->s = s;
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
	c->trusted = !s->trust ||
		     s->trust(s->trust_arg, (const struct sockaddr *)&c->src.remote);
	c->last_ms = uv_now(s->uv);
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	if (s->n_conns > s->conn_max && !(c->trusted && evict_stranger(s, c))) {
		if (s->refused++ % 1000 == 0)
			log_warn("more than %zu TCP connections: refusing new ones "
				 "(%zu so far)", s->conn_max, s->refused);
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read) != 0)
		conn_close(c);
}

/* --- UDP -------------------------------------------------------------------- */

static void local_of(struct sipnet_src *src, struct msghdr *mh, unsigned port)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			struct sockaddr_in *a = (struct sockaddr_in *)&src->local;

			memcpy(&pi, CMSG_DATA(cm), sizeof pi);
			a->sin_family = AF_INET;
			a->sin_addr = pi.ipi_addr;
			a->sin_port = htons((uint16_t)port);
			src->ifindex = (unsigned)pi.ipi_ifindex;
		} else if (cm->cmsg_level == IPPROTO_IPV6 &&
			   cm->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&src->local;

			memcpy(&pi, CMSG_DATA(cm), sizeof pi);
			a->sin6_family = AF_INET6;
			a->sin6_addr = pi.ipi6_addr;
			a->sin6_port = htons((uint16_t)port);
			src->ifindex = pi.ipi6_ifindex;
			if (IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr))
				a->sin6_scope_id = pi.ipi6_ifindex;
		}
	}
}

static void udp_cb(uv_poll_t *h, int status, int events)
{
	struct sipnet *s = h->data;
	int fi = h == s->fam[1].poll ? 1 : 0;
	struct mmsghdr mm[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_storage from[BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + 64];
		struct cmsghdr align;
	} ctl[BATCH];

	(void)events;
	if (status < 0)
		return;
	for (int round = 0; round < BATCHES_PER_WAKE; round++) {
		int n;

		for (int i = 0; i < BATCH; i++) {
			iov[i].iov_base = s->rbuf + (size_t)i * 65536;
			iov[i].iov_len = 65535;
			memset(&mm[i].msg_hdr, 0, sizeof mm[i].msg_hdr);
			mm[i].msg_hdr.msg_name = &from[i];
			mm[i].msg_hdr.msg_namelen = sizeof from[i];
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
			mm[i].msg_hdr.msg_control = ctl[i].buf;
			mm[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
		}
		n = recvmmsg(s->fam[fi].fd, mm, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			struct sipnet_src src;

			memset(&src, 0, sizeof src);
			memcpy(&src.remote, &from[i],
			       mm[i].msg_hdr.msg_namelen <= sizeof src.remote
				       ? mm[i].msg_hdr.msg_namelen : sizeof src.remote);
			src.family = fi ? AF_INET6 : AF_INET;
			local_of(&src, &mm[i].msg_hdr, s->fam[fi].port);
			if (mm[i].msg_hdr.msg_flags & MSG_TRUNC)
				continue;	/* cannot happen below 64 KiB */
			s->h(s->arg, &src, iov[i].iov_base, mm[i].msg_len);
		}
		if (n < BATCH)
			return;
	}
}

static void flush_cb(uv_idle_t *h);

static void want_flush(struct sipnet *s)
{
	if (!uv_is_active((uv_handle_t *)s->flush))
		uv_idle_start(s->flush, flush_cb);
}

/* Sends the queued datagrams of a family; a datagram the kernel refuses
 * (no route, a full buffer) is lost like any UDP packet: the client
 * retransmits. */
static void udp_flush(struct sipnet *s, int fi)
{
	struct outq *q = &s->fam[fi].q;
	unsigned done = 0;

	while (s->fam[fi].fd >= 0 && done < q->n) {
		int k = sendmmsg(s->fam[fi].fd, q->mm + done, q->n - done, MSG_DONTWAIT);

		if (k < 0) {
			char dst[NETADDR_STRLEN];

			if (errno == EINTR)
				continue;
			log_info("could not send a response to %s: %s",
				 netaddr_str((struct sockaddr *)&q->dst[done], dst,
					     sizeof dst), strerror(errno));
			k = 1;		/* skip it */
		}
		done += (unsigned)k;
	}
	q->n = 0;
	q->used = 0;
}

static int udp_send(struct sipnet *s, const struct sipnet_src *src,
		    const struct sockaddr *dst, const char *buf, size_t len)
{
	int fi = fam_index(src->family);
	struct outq *q = &s->fam[fi].q;
	struct msghdr *mh;
	struct cmsghdr *cm;
	unsigned i;

	if (s->fam[fi].fd < 0)
		return ENOTCONN;
	if (len > OUTQ_BYTES)
		return EMSGSIZE;
	if (q->n == OUTQ || q->used + len > OUTQ_BYTES)
		udp_flush(s, fi);
	i = q->n++;
	memcpy(q->bytes + q->used, buf, len);
	q->iov[i] = (struct iovec){q->bytes + q->used, len};
	q->used += len;
	memset(&q->dst[i], 0, sizeof q->dst[i]);
	memcpy(&q->dst[i], dst, dst->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
							  : sizeof(struct sockaddr_in));
	mh = &q->mm[i].msg_hdr;
	memset(mh, 0, sizeof *mh);
	memset(&q->ctl[i], 0, sizeof q->ctl[i]);
	mh->msg_name = &q->dst[i];
	mh->msg_namelen = dst->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						    : sizeof(struct sockaddr_in);
	mh->msg_iov = &q->iov[i];
	mh->msg_iovlen = 1;
	cm = &q->ctl[i].align;
	/* from the address the request was sent to */
	if (fi == 1 && src->local.ss_family == AF_INET6) {
		struct in6_pktinfo pi;

		memset(&pi, 0, sizeof pi);
		pi.ipi6_addr = ((const struct sockaddr_in6 *)&src->local)->sin6_addr;
		pi.ipi6_ifindex = src->ifindex;
		mh->msg_control = q->ctl[i].buf;
		mh->msg_controllen = CMSG_SPACE(sizeof pi);
		cm->cmsg_level = IPPROTO_IPV6;
		cm->cmsg_type = IPV6_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof pi);
		memcpy(CMSG_DATA(cm), &pi, sizeof pi);
	} else if (fi == 0 && src->local.ss_family == AF_INET) {
		struct in_pktinfo pi;

		memset(&pi, 0, sizeof pi);
		pi.ipi_spec_dst = ((const struct sockaddr_in *)&src->local)->sin_addr;
		mh->msg_control = q->ctl[i].buf;
		mh->msg_controllen = CMSG_SPACE(sizeof pi);
		cm->cmsg_level = IPPROTO_IP;
		cm->cmsg_type = IP_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof pi);
		memcpy(CMSG_DATA(cm), &pi, sizeof pi);
	}
	want_flush(s);
	return 0;
}

/* --- TCP output ----------------------------------------------------------------- */

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
	struct sipnet *s = h->data;

	uv_idle_stop(h);
	for (int fi = 0; fi < 2; fi++)
		udp_flush(s, fi);
	while (s->dirty) {
		struct sipnet_conn *c = s->dirty;

		s->dirty = c->dirty_next;
		c->is_dirty = false;
		tcp_flush(c);
	}
}

/* See the header. */
int sipnet_send(struct sipnet *s, const struct sipnet_src *src,
		const struct sockaddr *dst, const char *buf, size_t len)
{
	struct sipnet_conn *c = src->conn;

	if (!src->tcp)
		return udp_send(s, src, dst ? dst : (const struct sockaddr *)&src->remote,
				buf, len);
	if (!c || c->closing || !c->s)
		return ENOTCONN;
	if (!growbuf(&c->out, &c->out_cap, c->out_len + len, 4096, 0))
		return ENOMEM;
	memcpy(c->out + c->out_len, buf, len);
	c->out_len += len;
	if (!c->is_dirty) {
		c->is_dirty = true;
		c->dirty_next = s->dirty;
		s->dirty = c;
	}
	if (c->out_len >= 64 * 1024) {
		/* a big burst: do not let one connection's output grow */
		tcp_flush(c);
	}
	want_flush(s);
	return 0;
}

/* --- opening and closing ---------------------------------------------------- */

static void listener_closed(uv_handle_t *h)
{
	free(h);
}

static void handle_freed(uv_handle_t *h)
{
	free(h);
}

static void close_family(struct sipnet *s, int fi, bool quiet)
{
	struct fam *f = &s->fam[fi];

	if (f->fd < 0 && !f->listener && !f->poll)
		return;
	if (f->fd >= 0)
		udp_flush(s, fi);
	if (f->poll) {
		uv_poll_stop(f->poll);
		uv_close((uv_handle_t *)f->poll, handle_freed);
		f->poll = NULL;
	}
	if (f->fd >= 0) {
		/* libuv only stops watching a polled fd; closing it is ours.
		 * The handle is done with it once uv_close has returned. */
		close(f->fd);
		f->fd = -1;
	}
	if (f->listener) {
		uv_close((uv_handle_t *)f->listener, listener_closed);
		f->listener = NULL;
	}
	for (struct sipnet_conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		if (c->src.family == (fi ? AF_INET6 : AF_INET))
			conn_close(c);
	}
	if (!quiet)
		log_notice("sip: closed %s listeners on port %u", fam_name(fi), f->port);
	f->port = 0;
}

static void wildcard(struct sockaddr_storage *ss, int fi, unsigned port)
{
	memset(ss, 0, sizeof *ss);
	if (fi) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_any;
		a->sin6_port = htons((uint16_t)port);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_ANY);
		a->sin_port = htons((uint16_t)port);
	}
}

static int open_udp(struct sipnet *s, int fi, unsigned port)
{
	struct sockaddr_storage ss;
	int one = 1, rcv = UDP_RCVBUF, fd, err;

	wildcard(&ss, fi, port);
	fd = socket(fi ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	if (fi)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	/* A burst of INVITEs must wait in the socket, not be dropped by it
	 * (the kernel caps this at net.core.rmem_max unless we may force it). */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) != 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
	if (fi)
		err = setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
	else
		err = setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
	if (err != 0 || bind(fd, (struct sockaddr *)&ss,
			     fi ? sizeof(struct sockaddr_in6)
				: sizeof(struct sockaddr_in)) != 0) {
		err = errno;
		close(fd);
		return err;
	}
	s->fam[fi].poll = calloc(1, sizeof *s->fam[fi].poll);
	if (!s->fam[fi].poll ||
	    (err = -uv_poll_init_socket(s->uv, s->fam[fi].poll, fd)) != 0) {
		free(s->fam[fi].poll);
		s->fam[fi].poll = NULL;
		close(fd);
		return err ? err : ENOMEM;
	}
	s->fam[fi].poll->data = s;
	s->fam[fi].fd = fd;
	uv_poll_start(s->fam[fi].poll, UV_READABLE, udp_cb);
	return 0;
}

static int open_tcp(struct sipnet *s, int fi, unsigned port)
{
	struct sockaddr_storage ss;
	uv_tcp_t *l = calloc(1, sizeof *l);
	int err;

	if (!l)
		return ENOMEM;
	wildcard(&ss, fi, port);
	if ((err = uv_tcp_init_ex(s->uv, l, fi ? AF_INET6 : AF_INET)) != 0) {
		free(l);
		return -err;
	}
	l->data = s;
	s->fam[fi].listener = l;
	if ((err = uv_tcp_bind(l, (struct sockaddr *)&ss, fi ? UV_TCP_IPV6ONLY : 0)) != 0 ||
	    (err = uv_listen((uv_stream_t *)l, 511, listener_cb)) != 0)
		return -err;
	return 0;
}

static int open_family(struct sipnet *s, int fi, unsigned port, char **cause)
{
	int err = open_udp(s, fi, port);
	const char *what = "UDP";

	if (!err) {
		what = "TCP";
		err = open_tcp(s, fi, port);
	}
	s->fam[fi].port = port;
	if (err) {
		close_family(s, fi, true);
		if (cause && !*cause &&
		    asprintf(cause, "cannot listen on %s %s port %u: %s", fam_name(fi),
			     what, port, strerror(err)) < 0)
			*cause = NULL;
		log_error("sip: cannot listen on %s %s port %u: %s", fam_name(fi), what,
			  port, strerror(err));
		return err;
	}
	log_notice("sip: listening on udp and tcp %s:%u", fi ? "[::]" : "0.0.0.0",
		   port);
	return 0;
}

static int apply(struct sipnet *s, const bool family[2], unsigned port,
		 char **cause)
{
	int err = 0;

	/* close first: a family whose port changes must release the old one */
	for (int fi = 0; fi < 2; fi++) {
		if (s->fam[fi].fd >= 0 && (!family[fi] || s->fam[fi].port != port))
			close_family(s, fi, false);
	}
	for (int fi = 0; fi < 2; fi++) {
		if (family[fi] && s->fam[fi].fd < 0) {
			int e = open_family(s, fi, port, cause);

			if (e && !err)
				err = e;
		}
	}
	return err;
}

/* See the header. */
int sipnet_apply(struct sipnet *s, const bool family[2], unsigned port,
		 char **cause)
{
	bool old[2] = {s->fam[0].fd >= 0, s->fam[1].fd >= 0};
	unsigned old_port = s->fam[0].fd >= 0 ? s->fam[0].port : s->fam[1].port;
	int err;

	if (port == 0 || port > 65535)
		return EINVAL;
	err = apply(s, family, port, cause);
	if (err && (old[0] || old[1])) {
		log_warn("sip: restoring the previous listeners");
		apply(s, old, old_port, NULL);
	}
	return err;
}

/* See the header. */
size_t sipnet_endpoints(const struct sipnet *s, struct sipl_endpoint *eps,
			size_t max)
{
	struct ifaddrs *ifa = NULL;
	size_t n = 0;

	if (getifaddrs(&ifa) != 0)
		return 0;
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
		int fi;

		if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET &&
				     i->ifa_addr->sa_family != AF_INET6))
			continue;
		fi = fam_index(i->ifa_addr->sa_family);
		if (s->fam[fi].fd < 0)
			continue;
		if (fi && IN6_IS_ADDR_LINKLOCAL(
			      &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr))
			continue;
		for (int t = 0; t < 2; t++, n++) {
			if (n >= max)
				continue;
			eps[n].family = fi ? SIPL_FAMILY_IPV6 : SIPL_FAMILY_IPV4;
			snprintf(eps[n].transport, sizeof eps[n].transport, "%s",
				 t ? "tcp" : "udp");
			netaddr_host(i->ifa_addr, eps[n].host, sizeof eps[n].host);
			eps[n].port = s->fam[fi].port;
		}
	}
	freeifaddrs(ifa);
	return n;
}

/* Closes the connections from strangers that have been silent too long. */
static void sweep_cb(uv_timer_t *t)
{
	struct sipnet *s = t->data;
	uint64_t now = uv_now(s->uv);
	char who[NETADDR_STRLEN] = "";
	unsigned n = 0;

	for (struct sipnet_conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		if (c->trusted || c->refs > 1 || now - c->last_ms < STRANGER_IDLE_MS)
			continue;
		/* asked again: a gateway's name may have resolved since */
		if (s->trust(s->trust_arg, (const struct sockaddr *)&c->src.remote)) {
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
void sipnet_set_trust(struct sipnet *s, sipnet_trust_h *h, void *arg)
{
	s->trust = h;
	s->trust_arg = arg;
	if (!h)
		uv_timer_stop(s->sweep);
	else if (!uv_is_active((uv_handle_t *)s->sweep))
		uv_timer_start(s->sweep, sweep_cb, SWEEP_MS, SWEEP_MS);
}

/* See the header. */
int sipnet_alloc(struct sipnet **out, uv_loop_t *uv, sipnet_msg_h *h, void *arg)
{
	struct sipnet *s = calloc(1, sizeof *s);
	struct rlimit rl;

	if (!s)
		return ENOMEM;
	s->rbuf = malloc((size_t)BATCH * 65536);
	s->fam[0].q.bytes = malloc(OUTQ_BYTES);
	s->fam[1].q.bytes = malloc(OUTQ_BYTES);
	s->flush = calloc(1, sizeof *s->flush);
	s->sweep = calloc(1, sizeof *s->sweep);
	if (!s->rbuf || !s->fam[0].q.bytes || !s->fam[1].q.bytes || !s->flush ||
	    !s->sweep) {
		free(s->rbuf);
		free(s->fam[0].q.bytes);
		free(s->fam[1].q.bytes);
		free(s->flush);
		free(s->sweep);
		free(s);
		return ENOMEM;
	}
	uv_idle_init(uv, s->flush);
	s->flush->data = s;
	uv_timer_init(uv, s->sweep);
	uv_unref((uv_handle_t *)s->sweep);
	s->sweep->data = s;
	/* Past the descriptors there are, accept() fails for gateways and
	 * strangers alike: the limit must be reached first. */
	s->conn_max = CONN_MAX;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < CONN_MAX + CONN_FD_RESERVE)
		s->conn_max = rl.rlim_cur > 2 * CONN_FD_RESERVE
				      ? rl.rlim_cur - CONN_FD_RESERVE : CONN_FD_RESERVE;
	s->uv = uv;
	s->h = h;
	s->arg = arg;
	s->fam[0].fd = s->fam[1].fd = -1;
	*out = s;
	return 0;
}

/* See the header. */
void sipnet_free(struct sipnet *s)
{
	if (!s)
		return;
	flush_cb(s->flush);
	close_family(s, 0, true);
	close_family(s, 1, true);
	for (struct sipnet_conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		conn_close(c);
	}
	uv_close((uv_handle_t *)s->flush, handle_freed);
	uv_close((uv_handle_t *)s->sweep, handle_freed);
	free(s->rbuf);
	free(s->fam[0].q.bytes);
	free(s->fam[1].q.bytes);
	free(s);
}
