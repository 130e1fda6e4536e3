/* sipnet.c — see sipnet.h.
 *
 * UDP is read with uv_poll + recvmmsg rather than uv_udp: one system call
 * brings up to BATCH datagrams with their destination address, which at
 * thousands of calls a second is most of what a redirect server's kernel
 * time goes to. Replies go out with sendmsg and an IP_PKTINFO source, so a
 * gateway always hears the router from the address it called. TCP, its
 * connections and their limits are siptcp.c's. */
#define LOG_MODULE "sipnet"
#include "callrouter/sipnet.h"
#include "callrouter/siptcp.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/netaddr.h"
#include "common/sipl.h"

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH 32
#define BATCHES_PER_WAKE 8	/* then let IPC and timers have a turn */
#define UDP_RCVBUF (4 * 1024 * 1024)
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
	unsigned port;
	struct outq q;
};

struct sipnet {
	uv_loop_t *uv;
	sipnet_msg_h *h;
	void *arg;
	struct fam fam[2];
	struct siptcp *tcp;		/* listeners and connections */
	char *rbuf;			/* BATCH datagrams */
	/* Responses written in a loop turn go out at the start of the next
	 * (an idle handle: the loop does not sleep in between), many per
	 * system call. */
	uv_idle_t *flush;
};

static int fam_index(int af)
{
	return af == AF_INET6 ? 1 : 0;
}

static const char *fam_name(int i)
{
	return i ? "IPv6" : "IPv4";
}


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
static void flush_cb(uv_idle_t *h)
{
	struct sipnet *s = h->data;

	uv_idle_stop(h);
	for (int fi = 0; fi < 2; fi++)
		udp_flush(s, fi);
}

/* See the header. */
int sipnet_send(struct sipnet *s, const struct sipnet_src *src,
		const struct sockaddr *dst, const char *buf, size_t len)
{
	if (src->tcp)
		return siptcp_send(s->tcp, src->conn, buf, len);
	return udp_send(s, src, dst ? dst : (const struct sockaddr *)&src->remote,
			buf, len);
}

/* --- opening and closing ---------------------------------------------------- */

static void close_family(struct sipnet *s, int fi, bool quiet)
{
	struct fam *f = &s->fam[fi];
	bool was_open = f->fd >= 0 || f->poll;

	if (f->fd >= 0)
		udp_flush(s, fi);
	if (f->poll) {
		uv_poll_stop(f->poll);
		uv_close((uv_handle_t *)f->poll, loop_close_free);
		f->poll = NULL;
	}
	if (f->fd >= 0) {
		/* libuv only stops watching a polled fd; closing it is ours.
		 * The handle is done with it once uv_close has returned. */
		close(f->fd);
		f->fd = -1;
	}
	if (s->tcp && siptcp_close(s->tcp, fi ? AF_INET6 : AF_INET))
		was_open = true;
	if (!was_open)
		return;
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

	wildcard(&ss, fi, port);
	return siptcp_listen(s->tcp, (struct sockaddr *)&ss);
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

int sipnet_alloc(struct sipnet **out, uv_loop_t *uv, sipnet_msg_h *h, void *arg)
{
	struct sipnet *s = calloc(1, sizeof *s);

	if (!s)
		return ENOMEM;
	s->rbuf = malloc((size_t)BATCH * 65536);
	s->fam[0].q.bytes = malloc(OUTQ_BYTES);
	s->fam[1].q.bytes = malloc(OUTQ_BYTES);
	s->flush = calloc(1, sizeof *s->flush);
	if (!s->rbuf || !s->fam[0].q.bytes || !s->fam[1].q.bytes || !s->flush ||
	    siptcp_alloc(&s->tcp, uv, h, arg) != 0) {
		free(s->rbuf);
		free(s->fam[0].q.bytes);
		free(s->fam[1].q.bytes);
		free(s->flush);
		free(s);
		return ENOMEM;
	}
	uv_idle_init(uv, s->flush);
	s->flush->data = s;
	s->uv = uv;
	s->h = h;
	s->arg = arg;
	s->fam[0].fd = s->fam[1].fd = -1;
	*out = s;
	return 0;
}

/* See the header. */
void sipnet_set_trust(struct sipnet *s, sipnet_trust_h *h, void *arg)
{
	siptcp_set_trust(s->tcp, h, arg);
}

/* See the header. */
void sipnet_free(struct sipnet *s)
{
	if (!s)
		return;
	flush_cb(s->flush);
	siptcp_free(s->tcp);
	s->tcp = NULL;
	close_family(s, 0, true);
	close_family(s, 1, true);
	uv_close((uv_handle_t *)s->flush, loop_close_free);
	free(s->rbuf);
	free(s->fam[0].q.bytes);
	free(s->fam[1].q.bytes);
	free(s);
}
