/* test_rtp.c — RTP header codec, the sender's sequence/timestamp/marker, RFC
 * 4733 key presses (bursts, repeats, loss, reordering), receiver statistics
 * and compound RTCP. */
#include "common/rtp.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <stdlib.h>

int test_rtp_roundtrip(void);
int test_rtp_parse_bad(void);
int test_rtp_build_bad(void);
int test_rtp_tx_progression(void);
int test_rtp_tx_wrap(void);
int test_rtp_dtmf_parse(void);
int test_rtp_dtmf_burst(void);
int test_rtp_dtmf_same_key_twice(void);
int test_rtp_dtmf_lost_start(void);
int test_rtp_dtmf_reorder(void);
int test_rtp_dtmf_other_pt_and_ssrc(void);
int test_rtp_rx_stats_loss(void);
int test_rtp_rx_stats_wrap_and_jump(void);
int test_rtp_jitter(void);
int test_rtcp_roundtrip(void);
int test_rtcp_parse_bad(void);

int test_rtp_roundtrip(void)
{
	uint8_t buf[RTP_PKT_MAX], pl[160];
	const uint8_t ext[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	struct rtp_hdr h;
	struct rtp_pkt p;
	size_t len;

	for (size_t i = 0; i < sizeof pl; i++)
		pl[i] = (uint8_t)i;

	/* plain */
	memset(&h, 0, sizeof h);
	h.pt = 0;
	h.marker = true;
	h.seq = 65535;
	h.ts = 0xdeadbeef;
	h.ssrc = 0x01020304;
	UT_ASSERT_INT(rtp_build(buf, sizeof buf, &h, pl, 160, &len), 0);
	UT_ASSERT_INT(len, 172);
	UT_ASSERT_INT(buf[0], 0x80);
	UT_ASSERT_INT(buf[1], 0x80);
	UT_ASSERT_INT(rtp_parse(&p, buf, len), 0);
	UT_ASSERT_INT(p.hdr.pt, 0);
	UT_ASSERT(p.hdr.marker);
	UT_ASSERT_INT(p.hdr.seq, 65535);
	UT_ASSERT_INT(p.hdr.ts, 0xdeadbeef);
	UT_ASSERT_INT(p.hdr.ssrc, 0x01020304);
	UT_ASSERT_INT(p.hdr.cc, 0);
	UT_ASSERT(!p.hdr.ext);
	UT_ASSERT_INT(p.hdr.pad, 0);
	UT_ASSERT_INT(p.plen, 160);
	UT_ASSERT(p.payload == buf + 12);
	UT_ASSERT(memcmp(p.payload, pl, 160) == 0);

	/* CSRCs, an extension and padding */
	h.marker = false;
	h.pt = 101;
	h.cc = 2;
	h.csrc[0] = 0x11111111;
	h.csrc[1] = 0x22222222;
	h.ext = true;
	h.ext_profile = 0xbede;
	h.ext_words = 2;
	h.ext_data = ext;
	h.pad = 3;
	UT_ASSERT_INT(rtp_build(buf, sizeof buf, &h, pl, 4, &len), 0);
	UT_ASSERT_INT(len, 12 + 8 + 4 + 8 + 4 + 3);
	UT_ASSERT_INT(buf[0], 0x80 | 0x20 | 0x10 | 2);
	UT_ASSERT_INT(buf[len - 1], 3);
	UT_ASSERT_INT(rtp_parse(&p, buf, len), 0);
	UT_ASSERT_INT(p.hdr.pt, 101);
	UT_ASSERT(!p.hdr.marker);
	UT_ASSERT_INT(p.hdr.cc, 2);
	UT_ASSERT_INT(p.hdr.csrc[0], 0x11111111);
	UT_ASSERT_INT(p.hdr.csrc[1], 0x22222222);
	UT_ASSERT(p.hdr.ext);
	UT_ASSERT_INT(p.hdr.ext_profile, 0xbede);
	UT_ASSERT_INT(p.hdr.ext_words, 2);
	UT_ASSERT(memcmp(p.hdr.ext_data, ext, 8) == 0);
	UT_ASSERT_INT(p.hdr.pad, 3);
	UT_ASSERT_INT(p.plen, 4);
	UT_ASSERT(memcmp(p.payload, pl, 4) == 0);

	/* an extension with no words, padding of exactly the count byte, no payload */
	h.cc = 0;
	h.ext_words = 0;
	h.ext_data = NULL;
	h.pad = 1;
	UT_ASSERT_INT(rtp_build(buf, sizeof buf, &h, NULL, 0, &len), 0);
	UT_ASSERT_INT(len, 17);
	UT_ASSERT_INT(rtp_parse(&p, buf, len), 0);
	UT_ASSERT(p.hdr.ext);
	UT_ASSERT_INT(p.plen, 0);
	UT_ASSERT_INT(p.hdr.pad, 1);
	return 0;
}

int test_rtp_parse_bad(void)
{
	uint8_t buf[RTP_PKT_MAX + 1], pl[200] = {0};
	struct rtp_hdr h;
	struct rtp_pkt p, keep;
	size_t len;

	memset(&h, 0, sizeof h);
	h.pt = 8;
	UT_ASSERT_INT(rtp_build(buf, sizeof buf, &h, pl, 160, &len), 0);
	memset(&keep, 0x5a, sizeof keep);
	p = keep;

	/* truncated headers */
	for (size_t n = 0; n < 12; n++)
		UT_ASSERT_INT(rtp_parse(&p, buf, n), EBADMSG);
	UT_ASSERT(memcmp(&p, &keep, sizeof p) == 0);
	UT_ASSERT_INT(rtp_parse(&p, buf, 12), 0);
	UT_ASSERT_INT(p.plen, 0);

	/* oversized: the limit is RTP_PKT_MAX */
	memset(buf + 12, 0, sizeof buf - 12);
	UT_ASSERT_INT(rtp_parse(&p, buf, RTP_PKT_MAX), 0);
	UT_ASSERT_INT(rtp_parse(&p, buf, RTP_PKT_MAX + 1), E2BIG);

	/* versions 0, 1, 3 */
	for (unsigned v = 0; v < 4; v++) {
		if (v == 2)
			continue;
		buf[0] = (uint8_t)(v << 6);
		UT_ASSERT_INT(rtp_parse(&p, buf, 172), EBADMSG);
	}

	/* CSRC list past the end */
	buf[0] = 0x80 | 15;
	UT_ASSERT_INT(rtp_parse(&p, buf, 12 + 59), EBADMSG);
	UT_ASSERT_INT(rtp_parse(&p, buf, 12 + 60), 0);
	UT_ASSERT_INT(p.plen, 0);

	/* extension header, then its words, past the end */
	buf[0] = 0x90;
	UT_ASSERT_INT(rtp_parse(&p, buf, 15), EBADMSG);
	buf[12] = 0xbe;
	buf[13] = 0xde;
	buf[14] = 0xff;
	buf[15] = 0xff;
	UT_ASSERT_INT(rtp_parse(&p, buf, 172), EBADMSG);
	buf[14] = 0;
	buf[15] = 39; /* 16 + 156 = 172 exactly */
	UT_ASSERT_INT(rtp_parse(&p, buf, 172), 0);
	UT_ASSERT_INT(p.plen, 0);

	/* padding: count 0, count past the header, count = whole payload */
	buf[0] = 0xa0;
	buf[171] = 0;
	UT_ASSERT_INT(rtp_parse(&p, buf, 172), EBADMSG);
	buf[171] = 161;
	UT_ASSERT_INT(rtp_parse(&p, buf, 172), EBADMSG);
	buf[171] = 160;
	UT_ASSERT_INT(rtp_parse(&p, buf, 172), 0);
	UT_ASSERT_INT(p.plen, 0);
	/* padding bit with the count in the header itself */
	buf[11] = 1;
	UT_ASSERT_INT(rtp_parse(&p, buf, 12), EBADMSG);

	/* RTCP SR/RR on the RTP port: marker + PT 72..76 */
	buf[0] = 0x80;
	for (unsigned pt = 72; pt <= 76; pt++) {
		buf[1] = (uint8_t)(0x80 | pt);
		UT_ASSERT_INT(rtp_parse(&p, buf, 172), EBADMSG);
	}
	buf[1] = 0x80 | 71;
	UT_ASSERT_INT(rtp_parse(&p, buf, 172), 0);

	UT_ASSERT_INT(rtp_parse(NULL, buf, 172), EINVAL);
	UT_ASSERT_INT(rtp_parse(&p, NULL, 0), EBADMSG);
	return 0;
}

int test_rtp_build_bad(void)
{
	uint8_t buf[RTP_PKT_MAX + 100], pl[RTP_PKT_MAX] = {0};
	struct rtp_hdr h;
	size_t len = 0;

	memset(&h, 0, sizeof h);
	UT_ASSERT_INT(rtp_build(buf, 171, &h, pl, 160, &len), ENOSPC);
	UT_ASSERT_INT(rtp_build(buf, 172, &h, pl, 160, &len), 0);
	UT_ASSERT_INT(len, 172);
	UT_ASSERT_INT(rtp_build(buf, sizeof buf, &h, pl, RTP_PKT_MAX - 12, &len), 0);
	UT_ASSERT_INT(rtp_build(buf, sizeof buf, &h, pl, RTP_PKT_MAX - 11, &len), E2BIG);
	h.pt = 128;
	UT_ASSERT_INT(rtp_build(buf, sizeof buf, &h, pl, 10, &len), EINVAL);
	h.pt = 0;
	h.cc = 16;
	UT_ASSERT_INT(rtp_build(buf, sizeof buf, &h, pl, 10, &len), EINVAL);
	h.cc = 0;
	h.ext = true;
	h.ext_words = 1;
	UT_ASSERT_INT(rtp_build(buf, sizeof buf, &h, pl, 10, &len), EINVAL);
	UT_ASSERT_INT(rtp_build(buf, sizeof buf, NULL, pl, 10, &len), EINVAL);
	return 0;
}

int test_rtp_tx_progression(void)
{
	struct rtp_tx tx, tx2;
	uint8_t buf[200], pl[160] = {0xff};
	struct rtp_pkt p;
	size_t len;
	uint16_t seq0;
	uint32_t ts0;

	UT_ASSERT_INT(rtp_tx_init(&tx, 0, 8000), 0);
	UT_ASSERT_INT(rtp_tx_init(&tx2, 0, 8000), 0);
	/* random SSRC, sequence and timestamp: two streams differ (a 2^-80
	 * chance of a false failure) */
	UT_ASSERT(tx.ssrc != tx2.ssrc || tx.seq != tx2.seq || tx.ts != tx2.ts);
	UT_ASSERT_INT(tx.spp, 160);
	seq0 = tx.seq;
	ts0 = tx.ts;

	for (unsigned i = 0; i < 5; i++) {
		UT_ASSERT_INT(rtp_tx_next(&tx, buf, sizeof buf, pl, 160, false, &len), 0);
		UT_ASSERT_INT(len, 172);
		UT_ASSERT_INT(rtp_parse(&p, buf, len), 0);
		UT_ASSERT_INT(p.hdr.ssrc, tx.ssrc);
		UT_ASSERT_INT(p.hdr.pt, 0);
		UT_ASSERT_INT(p.hdr.seq, (uint16_t)(seq0 + i));
		UT_ASSERT_INT(p.hdr.ts, (uint32_t)(ts0 + 160 * i));
		/* only the first packet of the stream is marked */
		UT_ASSERT_INT(p.hdr.marker, i == 0);
	}
	UT_ASSERT_INT(tx.packets, 5);
	UT_ASSERT_INT(tx.octets, 800);
	UT_ASSERT_INT(tx.last_ts, (uint32_t)(ts0 + 640));

	/* the caller starts a talkspurt */
	UT_ASSERT_INT(rtp_tx_next(&tx, buf, sizeof buf, pl, 160, true, &len), 0);
	UT_ASSERT_INT(rtp_parse(&p, buf, len), 0);
	UT_ASSERT(p.hdr.marker);

	/* 1 s of silence not sent: time moves on, sequence does not, marked */
	rtp_tx_skip(&tx, 8000);
	UT_ASSERT_INT(rtp_tx_next(&tx, buf, sizeof buf, pl, 160, false, &len), 0);
	UT_ASSERT_INT(rtp_parse(&p, buf, len), 0);
	UT_ASSERT(p.hdr.marker);
	UT_ASSERT_INT(p.hdr.seq, (uint16_t)(seq0 + 6));
	UT_ASSERT_INT(p.hdr.ts, (uint32_t)(ts0 + 160 * 6 + 8000));
	UT_ASSERT_INT(rtp_tx_next(&tx, buf, sizeof buf, pl, 160, false, &len), 0);
	UT_ASSERT_INT(rtp_parse(&p, buf, len), 0);
	UT_ASSERT(!p.hdr.marker);

	/* a failed build does not advance the state */
	seq0 = tx.seq;
	UT_ASSERT_INT(rtp_tx_next(&tx, buf, 100, pl, 160, false, &len), ENOSPC);
	UT_ASSERT_INT(tx.seq, seq0);

	UT_ASSERT_INT(rtp_tx_init(&tx, 128, 8000), EINVAL);
	UT_ASSERT_INT(rtp_tx_init(&tx, 0, 0), EINVAL);
	return 0;
}

int test_rtp_tx_wrap(void)
{
	struct rtp_tx tx;
	uint8_t buf[200], pl[160] = {0};
	struct rtp_pkt p;
	size_t len;

	UT_ASSERT_INT(rtp_tx_init(&tx, 8, 8000), 0);
	tx.seq = 65534;
	tx.ts = 0xffffffff - 200;
	for (unsigned i = 0; i < 3; i++) {
		UT_ASSERT_INT(rtp_tx_next(&tx, buf, sizeof buf, pl, 160, false, &len), 0);
		UT_ASSERT_INT(rtp_parse(&p, buf, len), 0);
		UT_ASSERT_INT(p.hdr.pt, 8);
		UT_ASSERT_INT(p.hdr.seq, (uint16_t)(65534 + i));
		UT_ASSERT_INT(p.hdr.ts, (uint32_t)(0xffffffffu - 200 + 160 * i));
	}
	UT_ASSERT_INT(tx.seq, 1);
	UT_ASSERT_INT(tx.ts, (uint32_t)(0xffffffffu - 200 + 480));
	return 0;
}

int test_rtp_dtmf_parse(void)
{
	static const char keys[] = "0123456789*#ABCD";
	struct rtp_dtmf ev;
	uint8_t pl[4];

	for (unsigned e = 0; e < 16; e++) {
		pl[0] = (uint8_t)e;
		pl[1] = 0x80 | 10;
		pl[2] = 0x03;
		pl[3] = 0x20;
		UT_ASSERT_INT(rtp_dtmf_parse(&ev, pl, 4), 0);
		UT_ASSERT_INT(ev.event, e);
		UT_ASSERT_INT(ev.key, keys[e]);
		UT_ASSERT(ev.end);
		UT_ASSERT_INT(ev.volume, 10);
		UT_ASSERT_INT(ev.duration, 800);
	}
	pl[0] = 16; /* flash: not a key */
	pl[1] = 0x7f; /* R bit and volume 63 */
	UT_ASSERT_INT(rtp_dtmf_parse(&ev, pl, 4), 0);
	UT_ASSERT_INT(ev.key, 0);
	UT_ASSERT(!ev.end);
	UT_ASSERT_INT(ev.volume, 63);
	UT_ASSERT_INT(rtp_dtmf_parse(&ev, pl, 3), EBADMSG);
	UT_ASSERT_INT(rtp_dtmf_parse(&ev, NULL, 0), EBADMSG);
	return 0;
}

/* A telephone-event packet (PT 101) of event ev at timestamp ts. */
static struct rtp_pkt *te(struct rtp_pkt *p, uint8_t *pl, uint32_t ssrc,
			  uint16_t seq, uint32_t ts, uint8_t ev, bool end,
			  uint16_t dur)
{
	memset(p, 0, sizeof *p);
	p->hdr.pt = 101;
	p->hdr.ssrc = ssrc;
	p->hdr.seq = seq;
	p->hdr.ts = ts;
	pl[0] = ev;
	pl[1] = (uint8_t)((end ? 0x80 : 0) | 10);
	pl[2] = (uint8_t)(dur >> 8);
	pl[3] = (uint8_t)dur;
	p->payload = pl;
	p->plen = 4;
	return p;
}

/* Feeds a typical burst of event ev at ts: start (marked), 5 continuations,
 * 3 end retransmissions; counts the keys reported into *n, the last in *key. */
static void burst(struct rtp_dtmf_rx *rx, uint16_t *seq, uint32_t ts,
		  uint8_t ev, unsigned *n, char *key)
{
	struct rtp_pkt p;
	uint8_t pl[4];
	char k;

	for (unsigned i = 0; i < 9; i++) {
		bool end = i >= 6;
		uint16_t dur = (uint16_t)(end ? 960 : 160 * (i + 1));

		te(&p, pl, 0xabc, (*seq)++, ts, ev, end, dur);
		p.hdr.marker = i == 0;
		if (rtp_dtmf_rx_feed(rx, &p, &k)) {
			(*n)++;
			*key = k;
		}
	}
}

int test_rtp_dtmf_burst(void)
{
	struct rtp_dtmf_rx rx;
	struct rtp_pkt p;
	uint8_t pl[4];
	uint16_t seq = 100;
	unsigned n = 0;
	char key = 0;

	rtp_dtmf_rx_init(&rx, 101);
	/* reported on the first (start) packet, not again */
	te(&p, pl, 0xabc, seq++, 5000, 11, false, 160);
	UT_ASSERT(rtp_dtmf_rx_feed(&rx, &p, &key));
	UT_ASSERT_INT(key, '#');
	burst(&rx, &seq, 5000, 11, &n, &key);
	UT_ASSERT_INT(n, 0);

	burst(&rx, &seq, 9000, 5, &n, &key);
	UT_ASSERT_INT(n, 1);
	UT_ASSERT_INT(key, '5');
	/* the end retransmissions of that event arriving once more */
	te(&p, pl, 0xabc, seq++, 9000, 5, true, 960);
	UT_ASSERT(!rtp_dtmf_rx_feed(&rx, &p, &key));
	return 0;
}

int test_rtp_dtmf_same_key_twice(void)
{
	struct rtp_dtmf_rx rx;
	uint16_t seq = 65530; /* wraps during the second press */
	unsigned n = 0;
	char key = 0;

	rtp_dtmf_rx_init(&rx, 101);
	burst(&rx, &seq, 0xfffffe00u, 1, &n, &key);
	UT_ASSERT_INT(n, 1);
	/* the same key again: a new timestamp (across the 32-bit wrap) */
	burst(&rx, &seq, 0x00000400u, 1, &n, &key);
	UT_ASSERT_INT(n, 2);
	UT_ASSERT_INT(key, '1');
	burst(&rx, &seq, 0x00002000u, 1, &n, &key);
	UT_ASSERT_INT(n, 3);
	return 0;
}

int test_rtp_dtmf_lost_start(void)
{
	struct rtp_dtmf_rx rx;
	struct rtp_pkt p;
	uint8_t pl[4];
	char key = 0;
	unsigned n = 0;

	rtp_dtmf_rx_init(&rx, 101);
	/* start and first continuations lost: the third continuation reports */
	te(&p, pl, 7, 13, 16000, 9, false, 480);
	UT_ASSERT(rtp_dtmf_rx_feed(&rx, &p, &key));
	UT_ASSERT_INT(key, '9');
	for (unsigned i = 0; i < 3; i++) {
		te(&p, pl, 7, (uint16_t)(14 + i), 16000, 9, true, 800);
		n += rtp_dtmf_rx_feed(&rx, &p, &key);
	}
	UT_ASSERT_INT(n, 0);

	/* a short press of which only an end packet arrives */
	te(&p, pl, 7, 30, 24000, 0, true, 640);
	UT_ASSERT(rtp_dtmf_rx_feed(&rx, &p, &key));
	UT_ASSERT_INT(key, '0');
	te(&p, pl, 7, 31, 24000, 0, true, 640);
	UT_ASSERT(!rtp_dtmf_rx_feed(&rx, &p, &key));
	return 0;
}

int test_rtp_dtmf_reorder(void)
{
	struct rtp_dtmf_rx rx;
	struct rtp_pkt p;
	uint8_t pl[4];
	char key = 0;

	rtp_dtmf_rx_init(&rx, 101);
	/* an end packet before the continuations */
	te(&p, pl, 7, 5, 8000, 2, true, 800);
	UT_ASSERT(rtp_dtmf_rx_feed(&rx, &p, &key));
	UT_ASSERT_INT(key, '2');
	te(&p, pl, 7, 3, 8000, 2, false, 320);
	UT_ASSERT(!rtp_dtmf_rx_feed(&rx, &p, &key));
	te(&p, pl, 7, 2, 8000, 2, false, 160);
	UT_ASSERT(!rtp_dtmf_rx_feed(&rx, &p, &key));
	UT_ASSERT_INT(rx.duration, 800);
	UT_ASSERT(rx.ended);

	/* the next press, then a straggler of the previous one */
	te(&p, pl, 7, 9, 12000, 3, false, 160);
	UT_ASSERT(rtp_dtmf_rx_feed(&rx, &p, &key));
	UT_ASSERT_INT(key, '3');
	te(&p, pl, 7, 6, 8000, 2, true, 800);
	UT_ASSERT(!rtp_dtmf_rx_feed(&rx, &p, &key));
	te(&p, pl, 7, 10, 12000, 3, false, 320);
	UT_ASSERT(!rtp_dtmf_rx_feed(&rx, &p, &key));
	return 0;
}

int test_rtp_dtmf_other_pt_and_ssrc(void)
{
	struct rtp_dtmf_rx rx;
	struct rtp_pkt p;
	uint8_t pl[4];
	char key = 'x';

	rtp_dtmf_rx_init(&rx, 101);
	/* audio packet, short payload, non-key event: ignored */
	te(&p, pl, 7, 1, 100, 4, false, 160);
	p.hdr.pt = 0;
	UT_ASSERT(!rtp_dtmf_rx_feed(&rx, &p, &key));
	te(&p, pl, 7, 1, 100, 4, false, 160);
	p.plen = 3;
	UT_ASSERT(!rtp_dtmf_rx_feed(&rx, &p, &key));
	te(&p, pl, 7, 1, 100, 16, false, 160);
	UT_ASSERT(!rtp_dtmf_rx_feed(&rx, &p, &key));
	UT_ASSERT_INT(key, 'x');

	/* a long press spanning a duration overflow is one press */
	te(&p, pl, 7, 2, 1000, 4, false, 0xffff);
	UT_ASSERT(rtp_dtmf_rx_feed(&rx, &p, &key));
	te(&p, pl, 7, 3, 1000 + 0xffff, 4, false, 160);
	UT_ASSERT(!rtp_dtmf_rx_feed(&rx, &p, &key));
	te(&p, pl, 7, 4, 1000 + 0xffff, 4, true, 800);
	UT_ASSERT(!rtp_dtmf_rx_feed(&rx, &p, &key));

	/* a new SSRC (the peer restarted its stream) with an older timestamp */
	te(&p, pl, 8, 1, 50, 4, false, 160);
	UT_ASSERT(rtp_dtmf_rx_feed(&rx, &p, &key));
	UT_ASSERT_INT(key, '4');
	return 0;
}

static struct rtp_pkt *audio(struct rtp_pkt *p, uint16_t seq, uint32_t ts)
{
	memset(p, 0, sizeof *p);
	p->hdr.pt = 0;
	p->hdr.ssrc = 0x5555;
	p->hdr.seq = seq;
	p->hdr.ts = ts;
	return p;
}

int test_rtp_rx_stats_loss(void)
{
	struct rtp_rx_stats st;
	struct rtcp_rb rb;
	struct rtp_pkt p;

	rtp_rx_stats_init(&st, 0);
	rtp_rx_stats_block(&rb, &st, 0);
	UT_ASSERT_INT(rb.ssrc, 0); /* nothing received: an empty block */

	/* 100 packets, every 10th lost */
	for (unsigned i = 0; i < 100; i++)
		if (i % 10 != 5)
			UT_ASSERT(rtp_rx_stats_update(&st, audio(&p, (uint16_t)(1000 + i), 160 * i), 160 * i));
	rtp_rx_stats_block(&rb, &st, 0);
	UT_ASSERT_INT(rb.ssrc, 0x5555);
	UT_ASSERT_INT(rb.lost, 10);
	UT_ASSERT_INT(rb.fraction, 10 * 256 / 100);
	UT_ASSERT_INT(rb.ext_max_seq, 1099);
	UT_ASSERT_INT(rb.jitter, 0);

	/* the next interval without loss: fraction 0, cumulative stays */
	for (unsigned i = 100; i < 150; i++)
		rtp_rx_stats_update(&st, audio(&p, (uint16_t)(1000 + i), 160 * i), 160 * i);
	rtp_rx_stats_block(&rb, &st, 0);
	UT_ASSERT_INT(rb.fraction, 0);
	UT_ASSERT_INT(rb.lost, 10);

	/* a duplicate: received > expected in the interval, loss goes down */
	rtp_rx_stats_update(&st, audio(&p, 1149, 160 * 149), 160 * 149);
	rtp_rx_stats_block(&rb, &st, 0);
	UT_ASSERT_INT(rb.fraction, 0);
	UT_ASSERT_INT(rb.lost, 9);

	/* LSR / DLSR: SR NTP 0x0001_2345_6789_0000, answered 1.5 s later */
	rtp_rx_stats_sr(&st, 0x0001234567890000ull, 10ull << 32);
	rtp_rx_stats_block(&rb, &st, (10ull << 32) + (3ull << 31));
	UT_ASSERT_INT(rb.lsr, 0x23456789);
	UT_ASSERT_INT(rb.dlsr, 0x18000);
	return 0;
}

int test_rtp_rx_stats_wrap_and_jump(void)
{
	struct rtp_rx_stats st;
	struct rtcp_rb rb;
	struct rtp_pkt p;

	rtp_rx_stats_init(&st, -1);
	for (unsigned i = 0; i < 20; i++)
		rtp_rx_stats_update(&st, audio(&p, (uint16_t)(65530 + i), 0), 0);
	rtp_rx_stats_block(&rb, &st, 0);
	UT_ASSERT_INT(rb.ext_max_seq, 65536 + 13);
	UT_ASSERT_INT(rb.lost, 0);

	/* a wild jump is rejected once... */
	UT_ASSERT(!rtp_rx_stats_update(&st, audio(&p, 30000, 0), 0));
	UT_ASSERT_INT(st.invalid, 1);
	/* ...and taken as a restart when the next packet follows it */
	UT_ASSERT(rtp_rx_stats_update(&st, audio(&p, 30001, 0), 0));
	rtp_rx_stats_block(&rb, &st, 0);
	UT_ASSERT_INT(rb.ext_max_seq, 30001);
	UT_ASSERT_INT(rb.lost, 0);

	/* a late packet from before the wrap is counted, not a jump */
	UT_ASSERT(rtp_rx_stats_update(&st, audio(&p, 29990, 0), 0));
	UT_ASSERT_INT(st.max_seq, 30001);
	return 0;
}

int test_rtp_jitter(void)
{
	struct rtp_rx_stats st;
	struct rtcp_rb rb;
	struct rtp_pkt p;
	double j = 0;
	uint32_t arrival;

	/* perfectly paced: no jitter, whatever the clock offset */
	rtp_rx_stats_init(&st, 0);
	for (unsigned i = 0; i < 50; i++)
		rtp_rx_stats_update(&st, audio(&p, (uint16_t)i, 1000 + 160 * i),
				    777777 + 160 * i);
	UT_ASSERT_INT(st.jitter_q4 >> 4, 0);

	/* arrivals alternately 40 units (5 ms) early and late: |D| = 80 each
	 * time; the estimator converges to 80 and tracks the float version
	 * of A.8 within half a unit */
	rtp_rx_stats_init(&st, 0);
	for (unsigned i = 0; i < 400; i++) {
		arrival = 160 * i + (i % 2 ? 40 : -40) + 100000;
		rtp_rx_stats_update(&st, audio(&p, (uint16_t)i, 160 * i), arrival);
		if (i > 0)
			j += (80.0 - j) / 16.0;
		UT_ASSERT(st.jitter_q4 / 16.0 >= j - 0.5 &&
			  st.jitter_q4 / 16.0 <= j + 0.5);
	}
	rtp_rx_stats_block(&rb, &st, 0);
	UT_ASSERT(rb.jitter >= 79 && rb.jitter <= 80);

	/* telephone-event packets (another PT) do not count toward jitter */
	rtp_rx_stats_init(&st, 0);
	for (unsigned i = 0; i < 50; i++) {
		audio(&p, (uint16_t)i, i < 20 ? 160 * i : 3200);
		if (i >= 20)
			p.hdr.pt = 101;
		rtp_rx_stats_update(&st, &p, 160 * i);
	}
	UT_ASSERT_INT(st.jitter_q4 >> 4, 0);
	UT_ASSERT_INT(st.received, 50);
	return 0;
}

int test_rtcp_roundtrip(void)
{
	struct rtp_tx tx;
	struct rtp_rx_stats st;
	struct rtcp_info info;
	struct rtp_pkt p;
	uint8_t buf[RTP_PKT_MAX], pl[160] = {0};
	size_t len, l2;
	char cname[300];

	UT_ASSERT_INT(rtp_tx_init(&tx, 0, 8000), 0);
	rtp_rx_stats_init(&st, 0);

	/* nothing sent, nothing received: RR without blocks + SDES */
	UT_ASSERT_INT(rtcp_build_report(buf, sizeof buf, &tx, &st, "um@host",
					1ull << 32, 0, &len), 0);
	UT_ASSERT_INT(len % 4, 0);
	UT_ASSERT_INT(buf[1], RTCP_RR);
	UT_ASSERT_INT(rtcp_parse(&info, buf, len), 0);
	UT_ASSERT_INT(info.packets, 2);
	UT_ASSERT(!info.sr);
	UT_ASSERT_INT(info.ssrc, tx.ssrc);
	UT_ASSERT_INT(info.rb_count, 0);
	UT_ASSERT_STR(info.cname, "um@host");
	UT_ASSERT(!info.bye);

	/* sent and received: SR with a block */
	for (unsigned i = 0; i < 10; i++)
		UT_ASSERT_INT(rtp_tx_next(&tx, buf, sizeof buf, pl, 160, false, &l2), 0);
	for (unsigned i = 0; i < 10; i++)
		if (i != 4)
			rtp_rx_stats_update(&st, audio(&p, (uint16_t)(500 + i), 160 * i), 160 * i);
	UT_ASSERT_INT(rtcp_build_report(buf, sizeof buf, &tx, &st, "openum",
					0x1122334455667788ull, 4242, &len), 0);
	UT_ASSERT_INT(buf[1], RTCP_SR);
	UT_ASSERT_INT(rtcp_parse(&info, buf, len), 0);
	UT_ASSERT(info.sr);
	UT_ASSERT_INT(info.ntp, 0x1122334455667788ull);
	UT_ASSERT_INT(info.rtp_ts, 4242);
	UT_ASSERT_INT(info.pkt_count, 10);
	UT_ASSERT_INT(info.octet_count, 1600);
	UT_ASSERT_INT(info.rb_count, 1);
	UT_ASSERT_INT(info.rb.ssrc, 0x5555);
	UT_ASSERT_INT(info.rb.lost, 1);
	UT_ASSERT_INT(info.rb.fraction, 256 / 10);
	UT_ASSERT_INT(info.rb.ext_max_seq, 509);
	UT_ASSERT_STR(info.cname, "openum");

	/* negative cumulative loss survives the 24-bit field */
	for (unsigned i = 0; i < 3; i++)
		rtp_rx_stats_update(&st, audio(&p, 509, 0), 0);
	UT_ASSERT_INT(rtcp_build_report(buf, sizeof buf, &tx, &st, "x", 0, 0, &len), 0);
	UT_ASSERT_INT(rtcp_parse(&info, buf, len), 0);
	UT_ASSERT_INT(info.rb.lost, -2);

	/* the longest CNAME; one too long; too small a buffer */
	memset(cname, 'c', 255);
	cname[255] = '\0';
	UT_ASSERT_INT(rtcp_build_report(buf, sizeof buf, &tx, NULL, cname, 0, 0, &len), 0);
	UT_ASSERT_INT(rtcp_parse(&info, buf, len), 0);
	UT_ASSERT_STR(info.cname, cname);
	UT_ASSERT_INT(info.rb_count, 0);
	cname[255] = 'c';
	cname[256] = '\0';
	UT_ASSERT_INT(rtcp_build_report(buf, sizeof buf, &tx, NULL, cname, 0, 0, &len), EINVAL);
	UT_ASSERT_INT(rtcp_build_report(buf, 40, &tx, &st, "openum", 0, 0, &len), ENOSPC);
	return 0;
}

int test_rtcp_parse_bad(void)
{
	static const uint8_t rr_bye[] = {
		0x80, 201, 0, 1, 0, 0, 0, 1,                    /* RR, no blocks */
		0x81, 203, 0, 1, 0, 0, 0, 1,                    /* BYE */
	};
	uint8_t b[64];
	struct rtcp_info info;

	UT_ASSERT_INT(rtcp_parse(&info, rr_bye, sizeof rr_bye), 0);
	UT_ASSERT_INT(info.packets, 2);
	UT_ASSERT(info.bye);

	/* every truncation is refused */
	for (size_t n = 0; n < sizeof rr_bye; n++)
		UT_ASSERT(n == 8 ? rtcp_parse(&info, rr_bye, n) == 0 :
			  rtcp_parse(&info, rr_bye, n) == EBADMSG);

	/* first packet not SR/RR, or padded; wrong version later */
	memcpy(b, rr_bye, sizeof rr_bye);
	b[1] = 202;
	UT_ASSERT_INT(rtcp_parse(&info, b, 16), EBADMSG);
	memcpy(b, rr_bye, sizeof rr_bye);
	b[0] = 0xa0;
	UT_ASSERT_INT(rtcp_parse(&info, b, 16), EBADMSG);
	memcpy(b, rr_bye, sizeof rr_bye);
	b[8] = 0x41;
	UT_ASSERT_INT(rtcp_parse(&info, b, 16), EBADMSG);

	/* a report count larger than the packet */
	memcpy(b, rr_bye, sizeof rr_bye);
	b[0] = 0x81;
	UT_ASSERT_INT(rtcp_parse(&info, b, 16), EBADMSG);

	/* a length past the end; a BYE count past its packet */
	memcpy(b, rr_bye, sizeof rr_bye);
	b[11] = 2;
	UT_ASSERT_INT(rtcp_parse(&info, b, 16), EBADMSG);
	memcpy(b, rr_bye, sizeof rr_bye);
	b[8] = 0x82;
	UT_ASSERT_INT(rtcp_parse(&info, b, 16), EBADMSG);

	/* padding on the last packet: valid and invalid counts */
	memcpy(b, rr_bye, sizeof rr_bye);
	b[8] = 0xa0; /* BYE with padding, count 0 */
	b[15] = 4;
	UT_ASSERT_INT(rtcp_parse(&info, b, 16), 0);
	b[15] = 5;
	UT_ASSERT_INT(rtcp_parse(&info, b, 16), EBADMSG);
	b[15] = 0;
	UT_ASSERT_INT(rtcp_parse(&info, b, 16), EBADMSG);

	/* SDES with an item running past its packet */
	{
		static const uint8_t sdes[] = {
			0x80, 201, 0, 1, 0, 0, 0, 1,
			0x81, 202, 0, 2, 0, 0, 0, 1, 1, 9, 'a', 'b',
		};
		UT_ASSERT_INT(rtcp_parse(&info, sdes, sizeof sdes), EBADMSG);
	}

	UT_ASSERT_INT(rtcp_parse(NULL, rr_bye, sizeof rr_bye), EINVAL);
	{
		uint8_t *big = calloc(1, RTP_PKT_MAX + 4);

		UT_ASSERT(big);
		big[0] = 0x80;
		big[1] = 201;
		UT_ASSERT_INT(rtcp_parse(&info, big, RTP_PKT_MAX + 4), E2BIG);
		free(big);
	}
	return 0;
}
