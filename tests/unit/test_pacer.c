/* test_pacer.c — the RTP pacer thread on loopback sockets: packets leave
 * 20 ms apart with consecutive sequence numbers and timestamps, the ring
 * wraps, a slot with nothing produced sends silence and the stream stays
 * consecutive, flushed payloads are never sent and cost no sequence
 * number, hold sends nothing, and removal stops the stream at once. */
#include "common/rtp.h"
#include "tests/unit/unit.h"
#include "umservice/pacer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int test_pacer_schedule(void);
int test_pacer_flush_and_hold(void);

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int udp_on(struct sockaddr_in *a)
{
	socklen_t l = sizeof *a;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	memset(a, 0, sizeof *a);
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;

	if (fd < 0 || bind(fd, (struct sockaddr *)a, sizeof *a) != 0 ||
	    getsockname(fd, (struct sockaddr *)a, &l) != 0)
		return -1;
	/* Arrival times from the kernel: the test thread may be late. */
	setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
	return fd;
}

struct got {
	uint16_t seq;
	uint32_t ts;
	uint8_t first;
	bool marker;
	uint64_t at;
};

/* Receives one packet within ms, or returns 1. */
static int recv_one(int fd, struct got *g, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint8_t buf[400], ctl[256];
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = ctl, .msg_controllen = sizeof ctl};
	struct rtp_pkt pkt;
	ssize_t n;

	if (poll(&p, 1, ms) != 1)
		return 1;
	n = recvmsg(fd, &mh, 0);
	if (n <= 0 || rtp_parse(&pkt, buf, (size_t)n) != 0)
		return 1;
	g->at = now_ns();
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
			struct timespec ts;

			memcpy(&ts, CMSG_DATA(c), sizeof ts);
			g->at = (uint64_t)ts.tv_sec * 1000000000ULL +
				(uint64_t)ts.tv_nsec;
		}
	}
	g->seq = pkt.hdr.seq;
	g->ts = pkt.hdr.ts;
	g->marker = pkt.hdr.marker;
	g->first = pkt.plen ? pkt.payload[0] : 0;
	return 0;
}

static void produce(struct pace_stream *s, uint8_t value)
{
	for (unsigned room = pace_room(s); room > 0; room--) {
		memset(pace_slot(s), value, PACE_PAYLOAD_MAX);
		pace_commit(s, PACE_PAYLOAD_MAX);
	}
	pace_publish(s);
}

static struct pace_stream *stream_new(void)
{
	struct pace_stream *s = malloc(sizeof *s);

	if (s)
		pace_init(s);
	return s;
}

int test_pacer_schedule(void)
{
	struct pacer *p = NULL;
	struct pace_stream *s = stream_new();
	struct sockaddr_in rx, tx;
	int rfd = udp_on(&rx), tfd = udp_on(&tx);
	struct rtp_tx t;
	struct got g[40];
	uint64_t sent = 0;

	UT_ASSERT(s && rfd >= 0 && tfd >= 0);
	UT_ASSERT_INT(pacer_alloc(&p, NULL), 0);
	UT_ASSERT_INT(rtp_tx_init(&t, 8, 8000), 0);
	UT_ASSERT_INT(pace_room(s), PACE_DEPTH);
	produce(s, 0x55);
	UT_ASSERT_INT(pace_room(s), 0);
	UT_ASSERT_INT(pace_pending(s), PACE_DEPTH);
	pacer_update(p, s, (struct sockaddr *)&rx, sizeof rx, 8, true);
	pacer_add(p, s, tfd, &t);
	for (int i = 0; i < 40; i++) {
		UT_ASSERT_INT(recv_one(rfd, &g[i], 200), 0);
		produce(s, (uint8_t)(0x56 + i));
	}
	{
		double gaps[39], x;

		for (int i = 1; i < 40; i++) {
			UT_ASSERT_INT((uint16_t)(g[i].seq - g[i - 1].seq), 1);
			UT_ASSERT_INT(g[i].ts - g[i - 1].ts, 160);
			gaps[i - 1] = (double)(g[i].at - g[i - 1].at) / 1e6;
		}
		/* Paced, not bursts: the median gap is 20 ms (kernel arrival
		 * times), and the schedule is absolute, so 39 gaps span 780 ms
		 * give or take one late wakeup on a loaded machine. */
		for (int i = 0; i < 39; i++)
			for (int k = i + 1; k < 39; k++)
				if (gaps[k] < gaps[i])
					x = gaps[i], gaps[i] = gaps[k], gaps[k] = x;
		UT_ASSERT(gaps[19] > 18.0 && gaps[19] < 22.0);
		x = (double)(g[39].at - g[0].at) / 1e6;
		UT_ASSERT(x > 740.0 && x < 840.0);
	}
	UT_ASSERT_INT(g[0].first, 0x55);
	UT_ASSERT_INT(g[PACE_DEPTH].first, 0x56);
	/* 40 packets without a flush: the ring wraps many times. */
	pacer_tx(p, s, &t, &sent);
	UT_ASSERT(sent >= 40);
	UT_ASSERT(t.packets >= 40);
	pacer_remove(p, s);
	while (recv_one(rfd, &g[0], 60) == 0)
		;
	UT_ASSERT_INT(recv_one(rfd, &g[0], 100), 1);	/* nothing after */
	pacer_free(p);
	free(s);
	close(rfd);
	close(tfd);
	return 0;
}

int test_pacer_flush_and_hold(void)
{
	struct pacer *p = NULL;
	struct pace_stream *s = stream_new();
	struct sockaddr_in rx, tx;
	int rfd = udp_on(&rx), tfd = udp_on(&tx);
	struct rtp_tx t;
	struct got a, b, c;

	UT_ASSERT(s && rfd >= 0 && tfd >= 0);
	UT_ASSERT_INT(pacer_alloc(&p, NULL), 0);
	UT_ASSERT_INT(rtp_tx_init(&t, 0, 8000), 0);
	pacer_update(p, s, (struct sockaddr *)&rx, sizeof rx, 0, false);
	produce(s, 0x11);
	pacer_add(p, s, tfd, &t);
	UT_ASSERT_INT(recv_one(rfd, &a, 200), 0);
	UT_ASSERT_INT(a.first, 0x11);
	/* Barge-in: the two 0x11 left are dropped, 0x22 comes next, with the
	 * next sequence number. */
	pace_flush(s);
	UT_ASSERT_INT(pace_room(s), PACE_DEPTH);
	produce(s, 0x22);
	UT_ASSERT_INT(recv_one(rfd, &b, 200), 0);
	UT_ASSERT_INT(b.first, 0x22);
	UT_ASSERT_INT((uint16_t)(b.seq - a.seq), 1);
	/* Nothing produced for a while (the loop far behind): the stream
	 * goes on with µ-law silence, consecutive, then 0x33 follows. */
	for (int i = 0; i < 6; i++) {
		UT_ASSERT_INT(recv_one(rfd, &c, 200), 0);
		if (c.first == 0x22)
			i--;	/* the rest of what was produced */
		else
			UT_ASSERT_INT(c.first, 0xFF);
		UT_ASSERT_INT((uint16_t)(c.seq - b.seq), 1);
		UT_ASSERT_INT(c.ts - b.ts, 160);
		b = c;
	}
	produce(s, 0x33);
	do {
		UT_ASSERT_INT(recv_one(rfd, &c, 200), 0);
		UT_ASSERT_INT((uint16_t)(c.seq - b.seq), 1);
		b = c;
	} while (c.first == 0xFF);
	UT_ASSERT_INT(c.first, 0x33);
	/* Hold: nothing is sent even with payloads produced. */
	pacer_update(p, s, NULL, 0, -1, false);
	while (recv_one(rfd, &c, 60) == 0)
		;
	produce(s, 0x44);
	UT_ASSERT_INT(recv_one(rfd, &c, 150), 1);
	pacer_remove(p, s);
	pacer_free(p);
	free(s);
	close(rfd);
	close(tfd);
	return 0;
}
