/* floor302.c — the least a redirect server can do, for bench/router's
 * "Floor" row: answer every INVITE with a 302 built from its own headers,
 * and nothing else. No trust check, no classification, no choice of
 * instance, no IPC, no token, no log.
 *
 * Why it exists: bench/router measures redirect servers with SIPp on the
 * same two cores, and SIPp costs more per call than either server. How far
 * any server can get past Kamailio there is then a property of the machine
 * and the load, not of the server. This program measures that bound in the
 * same run: its sustained rate over Kamailio's is the most any redirect
 * server reached on this machine, whatever it does for the call (it still
 * pays the kernel for receiving the INVITE and the ACK and sending the 302).
 *
 * The 302 is shaped like Kamailio's sl_send_reply 302 (the request's Via,
 * From, To with a tag, Call-ID and CSeq, a Contact, Content-Length), so that
 * SIPp reads a message of the same size from both. ACK: nothing. Other
 * methods: 405, as Kamailio's bench configuration does (bench/router's
 * readiness probe is an OPTIONS and wants any answer).
 *
 * The I/O is what umcallrouter does at its cheapest: one thread, epoll,
 * recvmmsg/sendmmsg in batches of 64 over UDP; over TCP one read per
 * wakeup per connection, framed by umcallrouter's own sipmsg_frame, one
 * write per batch of answers.
 *
 * usage: floor302 PORT  (UDP and TCP on 127.0.0.1:PORT and [::1]:PORT,
 *                        until SIGTERM/SIGINT)
 *
 * floor302_answer() is a parser of bytes from the network, so it does no
 * I/O and has a fuzz harness (tests/fuzz/fuzz_floor302.c, which builds this
 * file with FLOOR302_NO_MAIN). */
#include "callrouter/sipmsg.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

size_t floor302_answer(const char *msg, size_t n, char *out, size_t cap);

#define CONTACT "Contact: <sip:1001@127.0.0.1:5062;transport=udp>\r\n"
#define TO_TAG ";tag=f1007302"

/* Appends n bytes at *o if they fit below end; false when they do not. */
static bool put(char **o, const char *end, const char *s, size_t n)
{
	if ((size_t)(end - *o) < n)
		return false;
	memcpy(*o, s, n);
	*o += n;
	return true;
}

/* True when the header line [l, l+n) is named name (or its compact form
 * c, when c is not 0): "name:" or "name  :" at the start, any case. */
static bool named(const char *l, size_t n, const char *name, char c)
{
	size_t k = strlen(name), i;

	if (n > k && strncasecmp(l, name, k) == 0)
		i = k;
	else if (c && n > 1 && (l[0] == c || l[0] == (c ^ 0x20)))
		i = 1;
	else
		return false;
	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	return i < n && l[i] == ':';
}

/* The answer to the SIP request msg[0..n) (one whole message) in out, or 0
 * when there is none (an ACK, or a message without Via, Call-ID or CSeq,
 * or an answer that does not fit in cap). Header folding is not read: a
 * folded line is copied as a line of its own if it belongs to a copied
 * header, else skipped (SIPp folds nothing). */
size_t floor302_answer(const char *msg, size_t n, char *out, size_t cap)
{
	const char *p = msg, *end = msg + n, *eol, *sp;
	char *o = out, *oend = out + cap;
	bool invite, have_via = false, have_cid = false, have_cseq = false;
	bool copying = false;

	while (p < end && (*p == '\r' || *p == '\n'))
		p++;	/* keep-alives framed into the message */
	n = (size_t)(end - p);
	eol = memchr(p, '\n', n);
	sp = memchr(p, ' ', n);
	if (!eol || !sp || sp > eol || sp == p)
		return 0;
	if (sp - p == 3 && memcmp(p, "ACK", 3) == 0)
		return 0;
	if (sp - p >= 4 && memcmp(p, "SIP/", 4) == 0)
		return 0;	/* a response: nothing to answer */
	invite = sp - p == 6 && memcmp(p, "INVITE", 6) == 0;
	if (!put(&o, oend, invite ? "SIP/2.0 302 Moved Temporarily\r\n" :
		 "SIP/2.0 405 Method Not Allowed\r\n",
		 invite ? 31 : 33))
		return 0;
	for (p = eol + 1; p < end; p = eol + 1) {
		size_t len;

		eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			return 0;	/* no blank line: not one whole message */
		len = (size_t)(eol - p);
		if (len && p[len - 1] == '\r')
			len--;
		if (len == 0)
			break;	/* end of the headers */
		if (p[0] == ' ' || p[0] == '\t') {
			if (copying && (!put(&o, oend, p, len) || !put(&o, oend, "\r\n", 2)))
				return 0;
			continue;
		}
		copying = true;
		if (named(p, len, "Via", 'v'))
			have_via = true;
		else if (named(p, len, "Call-ID", 'i'))
			have_cid = true;
		else if (named(p, len, "CSeq", 0))
			have_cseq = true;
		else if (named(p, len, "To", 't')) {
			/* "tag=" anywhere after the URI would do for SIPp;
			 * a To of a new INVITE has none, so add ours. */
			bool tagged = memmem(p, len, "tag=", 4) != NULL;

			if (!put(&o, oend, p, len) ||
			    (!tagged && !put(&o, oend, TO_TAG, sizeof TO_TAG - 1)) ||
			    !put(&o, oend, "\r\n", 2))
				return 0;
			continue;
		} else if (!named(p, len, "From", 'f')) {
			copying = false;
			continue;
		}
		if (!put(&o, oend, p, len) || !put(&o, oend, "\r\n", 2))
			return 0;
	}
	if (p >= end || !have_via || !have_cid || !have_cseq)
		return 0;
	if ((invite && !put(&o, oend, CONTACT, sizeof CONTACT - 1)) ||
	    !put(&o, oend, "Content-Length: 0\r\n\r\n", 21))
		return 0;
	return (size_t)(o - out);
}

#ifndef FLOOR302_NO_MAIN

#define BATCH 64
#define MSG_MAX 65535
#define CONN_MAX 256
#define ANSWER_MAX 4096

struct conn {
	int fd;
	size_t len;
	char buf[MSG_MAX + 1];
};

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

static int listen_on(int family, int type, int port)
{
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	int big = 4 << 20;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		s6->sin6_addr = in6addr_loopback;
		sl = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof *s4;
	}
	if (type == SOCK_DGRAM) {
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 1024) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads a batch of datagrams and answers them in one sendmmsg. */
static void udp_ready(int fd)
{
	static char in[BATCH][MSG_MAX + 1], out[BATCH][ANSWER_MAX];
	static struct sockaddr_storage from[BATCH];
	struct mmsghdr rm[BATCH], sm[BATCH];
	struct iovec riov[BATCH], siov[BATCH];

	for (int rounds = 0; rounds < 16; rounds++) {
		int got, ns = 0;

		for (int i = 0; i < BATCH; i++) {
			riov[i] = (struct iovec){in[i], MSG_MAX};
			rm[i].msg_hdr = (struct msghdr){.msg_name = &from[i],
				.msg_namelen = sizeof from[i], .msg_iov = &riov[i],
				.msg_iovlen = 1};
		}
		got = recvmmsg(fd, rm, BATCH, MSG_DONTWAIT, NULL);
		if (got <= 0)
			return;
		for (int i = 0; i < got; i++) {
			size_t a = floor302_answer(in[i], rm[i].msg_len, out[ns],
						   ANSWER_MAX);

			if (!a)
				continue;
			siov[ns] = (struct iovec){out[ns], a};
			sm[ns].msg_hdr = (struct msghdr){.msg_name = &from[i],
				.msg_namelen = rm[i].msg_hdr.msg_namelen,
				.msg_iov = &siov[ns], .msg_iovlen = 1};
			ns++;
		}
		for (int done = 0; done < ns; ) {
			int s = sendmmsg(fd, sm + done, (unsigned)(ns - done), 0);

			if (s <= 0)
				break;	/* a full buffer loses the rest, as UDP does */
			done += s;
		}
		if (got < BATCH)
			return;
	}
}

static void conn_close(int ep, struct conn **slot)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, (*slot)->fd, NULL);
	close((*slot)->fd);
	free(*slot);
	*slot = NULL;
}

/* One read; answers every whole message in the buffer, in writes of up
 * to BATCH answers. */
static void tcp_ready(int ep, struct conn **slot)
{
	static char out[BATCH * ANSWER_MAX];
	struct conn *c = *slot;
	size_t used = 0, no = 0;
	ssize_t r = read(c->fd, c->buf + c->len, MSG_MAX - c->len);

	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		conn_close(ep, slot);
		return;
	}
	if (r < 0)
		return;
	c->len += (size_t)r;
	for (;;) {
		size_t m = 0;
		int err = sipmsg_frame(c->buf + used, c->len - used, &m);

		if (!err && m == 0)
			err = EAGAIN;	/* nothing left */
		if (err && err != EAGAIN) {
			conn_close(ep, slot);	/* too long or no Content-Length */
			return;
		}
		if (!err)
			no += floor302_answer(c->buf + used, m, out + no, ANSWER_MAX);
		used += err ? 0 : m;
		if (no && (err || sizeof out - no < ANSWER_MAX)) {
			if (write(c->fd, out, no) != (ssize_t)no) {
				conn_close(ep, slot);	/* SIPp reads what it is sent */
				return;
			}
			no = 0;
		}
		if (err)
			break;
	}
	memmove(c->buf, c->buf + used, c->len - used);
	c->len -= used;
	if (c->len == MSG_MAX)
		conn_close(ep, slot);	/* one message larger than we read */
}

int main(int argc, char **argv)
{
	static struct conn *conns[CONN_MAX];
	struct epoll_event ev[BATCH];
	int port = argc == 2 ? atoi(argv[1]) : 0, ep, lfd[4], ltype[4], nl = 0;
	struct sigaction sa = {.sa_handler = on_stop};

	if (port <= 0 || port > 65535) {
		fprintf(stderr, "usage: floor302 PORT\n");
		return 2;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	ep = epoll_create1(EPOLL_CLOEXEC);
	for (int f = 0; f < 2; f++)
		for (int t = 0; t < 2; t++) {
			int fd = listen_on(f ? AF_INET6 : AF_INET,
					   t ? SOCK_STREAM : SOCK_DGRAM, port);

			if (fd < 0) {
				/* ::1 may be absent; 127.0.0.1 may not */
				if (f == 0) {
					perror("floor302: bind 127.0.0.1");
					return 1;
				}
				continue;
			}
			lfd[nl] = fd;
			ltype[nl] = t ? SOCK_STREAM : SOCK_DGRAM;
			epoll_ctl(ep, EPOLL_CTL_ADD, fd, &(struct epoll_event){
				.events = EPOLLIN, .data.u64 = (uint64_t)nl});
			nl++;
		}
	fprintf(stderr, "floor302: answering on port %d\n", port);
	while (!stopping) {
		int n = epoll_wait(ep, ev, BATCH, 500);

		for (int i = 0; i < n; i++) {
			uint64_t id = ev[i].data.u64;

			if (id >= 4 + CONN_MAX)
				continue;
			if (id >= 4) {
				if (conns[id - 4])
					tcp_ready(ep, &conns[id - 4]);
				continue;
			}
			if (ltype[id] == SOCK_DGRAM) {
				udp_ready(lfd[id]);
				continue;
			}
			for (int k = 0; k < CONN_MAX; k++) {
				int cfd, one = 1;

				if (conns[k])
					continue;
				cfd = accept4(lfd[id], NULL, NULL,
					      SOCK_NONBLOCK | SOCK_CLOEXEC);
				if (cfd < 0)
					break;
				conns[k] = malloc(sizeof *conns[k]);
				if (!conns[k]) {
					close(cfd);
					break;
				}
				conns[k]->fd = cfd;
				conns[k]->len = 0;
				setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
				epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &(struct epoll_event){
					.events = EPOLLIN, .data.u64 = (uint64_t)(4 + k)});
			}
		}
	}
	for (int k = 0; k < CONN_MAX; k++)
		if (conns[k])
			conn_close(ep, &conns[k]);
	for (int i = 0; i < nl; i++)
		close(lfd[i]);
	fprintf(stderr, "floor302: stopped\n");
	return 0;
}

#endif
