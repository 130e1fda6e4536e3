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
	if (fd < 0 || bind(fd, (struct sockaddr *)a, sizeof *a) != 0 ||
	    getsockname(fd, (struct sockaddr *)a, &l) != 0)
		return -1;
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
	uint8_t buf[400];
	struct rtp_pkt pkt;
	ssize_t n;

	if (poll(&p, 1, ms) != 1)
		return 1;
	n = recv(fd, buf, sizeof buf, 0);
	if (n <= 0 || rtp_parse(&pkt, buf, (size_t)n) != 0)
		return 1;
	g->seq = pkt.hdr.seq;
	g->ts = pkt.hdr.ts;
	g->marker = pkt.hdr.marker;
	g->first = pkt.plen ? pkt.payload[0] : 0;
	g->at = now_ns();
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
	pacer_update(p, s, (struct sockaddr_storage *)&rx, sizeof rx, 8, true);
	pacer_add(p, s, tfd, &t);
	for (int i = 0; i < 40; i++) {
		UT_ASSERT_INT(recv_one(rfd, &g[i], 200), 0);
		produce(s, (uint8_t)(0x56 + i));
	}
	for (int i = 1; i < 40; i++) {
		double gap_ms = (double)(g[i].at - g[i - 1].at) / 1e6;

		UT_ASSERT_INT((uint16_t)(g[i].seq - g[i - 1].seq), 1);
		UT_ASSERT_INT(g[i].ts - g[i - 1].ts, 160);
		/* Loose bounds: a loaded test machine; the bench measures. */
		UT_ASSERT(gap_ms > 5.0 && gap_ms < 60.0);
	}
	UT_ASSERT_INT(g[0].first, 0x55);
	UT_ASSERT_INT(g[PACE_DEPTH].first, 0x56);
	/* 40 packets without a flush: the ring wraps many times. */
	UT_ASSERT(g[39].at - g[0].at > 39 * 15000000ULL);
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
	pacer_update(p, s, (struct sockaddr_storage *)&rx, sizeof rx, 0, false);
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
