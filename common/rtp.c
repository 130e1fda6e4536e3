/* rtp.c — RTP/RTCP packets (RFC 3550), RFC 4733 telephone-events and the
 * receiver statistics of RFC 3550 appendix A, over untrusted bytes with no I/O
 * (rtp_tx_init reads the kernel's random source, nothing else does). */
#include "common/rtp.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

/* ---- byte order ------------------------------------------------------------ */

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* ---- RTP packets ----------------------------------------------------------- */

/* Parses one RTP packet of len bytes (RFC 3550 §5.1): version 2 only; the
 * CSRC list and a header extension are bounds-checked and skipped (the
 * extension is described in out->hdr), padding is checked and removed.
 * out->payload points into buf. A marker + payload type 72..76 is refused:
 * that is an RTCP SR/RR/SDES/BYE/APP on the RTP port (RFC 3550 A.1, RFC 5761
 * §4), not media. out is written only on success.
 * EINVAL: NULL argument; E2BIG: len > RTP_PKT_MAX; EBADMSG: shorter than a
 * header, not version 2, or a CSRC list, extension or padding count that
 * does not fit. */
int rtp_parse(struct rtp_pkt *out, const uint8_t *buf, size_t len)
{
	struct rtp_pkt p;
	size_t off = RTP_HDR_LEN, end = len;
	unsigned i;

	if (!out || (!buf && len))
		return EINVAL;
	if (len > RTP_PKT_MAX)
		return E2BIG;
	if (len < RTP_HDR_LEN || (buf[0] >> 6) != 2)
		return EBADMSG;
	memset(&p, 0, sizeof p);
	p.hdr.cc = buf[0] & 0x0f;
	p.hdr.marker = (buf[1] & 0x80) != 0;
	p.hdr.pt = buf[1] & 0x7f;
	if (p.hdr.pt >= 72 && p.hdr.pt <= 76)
		return EBADMSG;
	p.hdr.seq = rd16(buf + 2);
	p.hdr.ts = rd32(buf + 4);
	p.hdr.ssrc = rd32(buf + 8);
	if (len - off < (size_t)p.hdr.cc * 4)
		return EBADMSG;
	for (i = 0; i < p.hdr.cc; i++, off += 4)
		p.hdr.csrc[i] = rd32(buf + off);
	if (buf[0] & 0x10) {
		if (len - off < 4)
			return EBADMSG;
		p.hdr.ext = true;
		p.hdr.ext_profile = rd16(buf + off);
		p.hdr.ext_words = rd16(buf + off + 2);
		off += 4;
		if (len - off < (size_t)p.hdr.ext_words * 4)
			return EBADMSG;
		p.hdr.ext_data = buf + off;
		off += (size_t)p.hdr.ext_words * 4;
	}
	if (buf[0] & 0x20) {
		/* the last octet counts the padding, itself included */
		uint8_t pad = buf[len - 1];

		if (pad == 0 || pad > len - off)
			return EBADMSG;
		p.hdr.pad = pad;
		end = len - pad;
	}
	p.payload = buf + off;
	p.plen = end - off;
	*out = p;
	return 0;
}

/* Writes an RTP packet with header h (CSRCs, an optional extension of
 * h->ext_words words from h->ext_data, h->pad bytes of padding) and n payload
 * bytes into buf, its size into *len. EINVAL: NULL argument, pt > 127,
 * cc > 15; E2BIG: the packet would exceed RTP_PKT_MAX; ENOSPC: it does not
 * fit in cap. */
int rtp_build(uint8_t *buf, size_t cap, const struct rtp_hdr *h,
	      const uint8_t *payload, size_t n, size_t *len)
{
	size_t need, off = RTP_HDR_LEN;
	unsigned i;

	if (!buf || !h || !len || (!payload && n) || h->pt > 127 ||
	    h->cc > RTP_CSRC_MAX || (h->ext && h->ext_words && !h->ext_data))
		return EINVAL;
	if (n > RTP_PKT_MAX)
		return E2BIG;
	need = RTP_HDR_LEN + (size_t)h->cc * 4 + n + h->pad;
	if (h->ext)
		need += 4 + (size_t)h->ext_words * 4;
	if (need > RTP_PKT_MAX)
		return E2BIG;
	if (need > cap)
		return ENOSPC;
	buf[0] = (uint8_t)(2 << 6 | (h->pad ? 0x20 : 0) | (h->ext ? 0x10 : 0) |
			   h->cc);
	buf[1] = (uint8_t)((h->marker ? 0x80 : 0) | h->pt);
	wr16(buf + 2, h->seq);
	wr32(buf + 4, h->ts);
	wr32(buf + 8, h->ssrc);
	for (i = 0; i < h->cc; i++, off += 4)
		wr32(buf + off, h->csrc[i]);
	if (h->ext) {
		wr16(buf + off, h->ext_profile);
		wr16(buf + off + 2, h->ext_words);
		off += 4;
		if (h->ext_words)
			memcpy(buf + off, h->ext_data, (size_t)h->ext_words * 4);
		off += (size_t)h->ext_words * 4;
	}
	if (n)
		memcpy(buf + off, payload, n);
	off += n;
	if (h->pad) {
		memset(buf + off, 0, h->pad);
		off += h->pad;
		buf[off - 1] = h->pad;
	}
	*len = off;
	return 0;
}

/* ---- sender ---------------------------------------------------------------- */

/* Starts a sending stream of payload type pt at clock_rate Hz: random SSRC,
 * initial sequence number and timestamp (RFC 3550 §5.1, so that a known
 * plaintext attack has nothing to start from and restarted streams are told
 * apart), 20 ms packets, the first packet marked. EINVAL: pt > 127 or a clock
 * rate under 50 Hz; or the error of getrandom(2). */
int rtp_tx_init(struct rtp_tx *tx, uint8_t pt, uint32_t clock_rate)
{
	uint8_t rnd[10];
	size_t got = 0;

	if (!tx || pt > 127 || clock_rate < 50)
		return EINVAL;
	while (got < sizeof rnd) {
		ssize_t r = getrandom(rnd + got, sizeof rnd - got, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		got += (size_t)r;
	}
	memset(tx, 0, sizeof *tx);
	tx->ssrc = rd32(rnd);
	tx->seq = rd16(rnd + 4);
	tx->ts = rd32(rnd + 6);
	tx->last_ts = tx->ts;
	tx->pt = pt;
	tx->clock_rate = clock_rate;
	tx->spp = clock_rate / 50;
	return 0;
}

/* Builds the stream's next packet around n payload bytes into buf: sequence
 * number + 1 and timestamp + spp per packet (both wrap), the marker bit on
 * the first packet of a talkspurt — the stream's first packet, the first
 * after rtp_tx_skip, or whenever marker_hint says the caller starts one (after
 * silence it did not send). The state advances only on success. Errors as
 * rtp_build. */
int rtp_tx_next(struct rtp_tx *tx, uint8_t *buf, size_t cap,
		const uint8_t *payload, size_t n, bool marker_hint, size_t *len)
{
	struct rtp_hdr h;
	int err;

	if (!tx)
		return EINVAL;
	memset(&h, 0, sizeof h);
	h.pt = tx->pt;
	h.marker = marker_hint || !tx->talkspurt;
	h.seq = tx->seq;
	h.ts = tx->ts;
	h.ssrc = tx->ssrc;
	err = rtp_build(buf, cap, &h, payload, n, len);
	if (err)
		return err;
	tx->talkspurt = true;
	tx->last_ts = tx->ts;
	tx->seq++;
	tx->ts += tx->spp;
	tx->packets++;
	tx->octets += (uint32_t)n;
	return 0;
}

/* Accounts for units of timestamp time in which nothing was sent (silence
 * suppression, a pause): the next packet's timestamp moves on by that much
 * and the packet is marked as the start of a talkspurt; the sequence number
 * does not move (RFC 3550 §5.1: it counts packets, not time). */
void rtp_tx_skip(struct rtp_tx *tx, uint32_t units)
{
	tx->ts += units;
	tx->talkspurt = false;
}

/* ---- RFC 4733 telephone-events --------------------------------------------- */

/* Parses a telephone-event payload (RFC 4733 §2.3): event, E bit, volume,
 * duration; events 0..15 get their key. Bytes past the first 4 are ignored.
 * out is written only on success. EINVAL: NULL argument; EBADMSG: n < 4. */
int rtp_dtmf_parse(struct rtp_dtmf *out, const uint8_t *payload, size_t n)
{
	static const char keys[] = "0123456789*#ABCD";

	if (!out || (!payload && n))
		return EINVAL;
	if (n < 4)
		return EBADMSG;
	out->event = payload[0];
	out->key = payload[0] < 16 ? keys[payload[0]] : 0;
	out->end = (payload[1] & 0x80) != 0;
	out->volume = payload[1] & 0x3f;
	out->duration = rd16(payload + 2);
	return 0;
}

/* Resets rx for a stream whose telephone-events use payload type pt. */
void rtp_dtmf_rx_init(struct rtp_dtmf_rx *rx, uint8_t pt)
{
	memset(rx, 0, sizeof *rx);
	rx->pt = pt;
}

/* Signed distance from timestamp b to a, wrap-aware (RFC 1982). */
static int32_t ts_diff(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b);
}

/* Feeds one received packet; returns true, with the key in *key_out, when it
 * reveals a key press not reported before.
 *
 * Why it works this way: every packet of one event — start, continuations,
 * the three end retransmissions — carries the RTP timestamp of the event's
 * start, and each new event gets a new, later timestamp (RFC 4733 §2.5.1).
 * So the press is reported on the FIRST packet seen with a new timestamp,
 * whatever kind it is (low latency: # during a greeting acts at once; lost
 * start packets are covered by the first continuation or end packet) and
 * never again for that timestamp (end retransmissions and late, reordered
 * packets of it collapse). A packet whose timestamp is older than the newest
 * event's is a straggler of an event already handled — or of one overtaken
 * entirely by its successor, which is then lost rather than reported out of
 * order. Two presses of the same key have different timestamps and are both
 * reported. An event longer than the 16-bit duration (> 8 s at 8 kHz) goes
 * on under a timestamp advanced by exactly the previous duration (§2.5.1.5):
 * that is still the same press. Another SSRC starts afresh. Packets of other
 * payload types, bad payloads and events above 15 (flash etc.) are ignored. */
bool rtp_dtmf_rx_feed(struct rtp_dtmf_rx *rx, const struct rtp_pkt *p,
		      char *key_out)
{
	struct rtp_dtmf ev;
	uint32_t ts;

	if (!rx || !p || p->hdr.pt != rx->pt ||
	    rtp_dtmf_parse(&ev, p->payload, p->plen) != 0 || !ev.key)
		return false;
	ts = p->hdr.ts;
	if (rx->seen && rx->ssrc == p->hdr.ssrc) {
		if (ts == rx->ts) {
			if (ev.duration > rx->duration)
				rx->duration = ev.duration;
			rx->ended = rx->ended || ev.end;
			return false;
		}
		if (ts_diff(ts, rx->ts) < 0)
			return false;
		if (!rx->ended && ev.event == rx->event &&
		    rx->duration == 0xffff && ts == rx->ts + 0xffff) {
			/* long-duration segment of the same press */
			rx->ts = ts;
			rx->duration = ev.duration;
			rx->ended = ev.end;
			return false;
		}
	}
	rx->seen = true;
	rx->ssrc = p->hdr.ssrc;
	rx->ts = ts;
	rx->event = ev.event;
	rx->duration = ev.duration;
	rx->ended = ev.end;
	if (key_out)
		*key_out = ev.key;
	return true;
}

/* ---- receiver statistics --------------------------------------------------- */

#define SEQ_MOD (1u << 16)
#define MAX_DROPOUT 3000
#define MAX_MISORDER 100

/* Resets st; jitter is measured on packets of payload type jitter_pt only
 * (-1: all). Telephone-event packets keep their event's start timestamp while
 * time passes, so counting them would inflate the jitter. */
void rtp_rx_stats_init(struct rtp_rx_stats *st, int jitter_pt)
{
	memset(st, 0, sizeof *st);
	st->jitter_pt = jitter_pt;
}

static void stats_init_seq(struct rtp_rx_stats *st, uint16_t seq)
{
	st->base_seq = seq;
	st->max_seq = seq;
	st->bad_seq = SEQ_MOD + 1;
	st->cycles = 0;
	st->received = 0;
	st->received_prior = 0;
	st->expected_prior = 0;
}

/* Counts one received packet that arrived at time arrival (in the stream's
 * timestamp units, from any monotonic clock): sequence tracking with wrap,
 * misorder and resync as RFC 3550 A.1 (without its probation: the media
 * layer only lets the negotiated peer's packets through, so the first packet
 * starts the count; a new SSRC restarts it), and the A.8 jitter estimator.
 * Returns false for a packet the sequence check rejects (a jump of more than
 * MAX_DROPOUT not confirmed by its successor), true otherwise. */
bool rtp_rx_stats_update(struct rtp_rx_stats *st, const struct rtp_pkt *p,
			 uint32_t arrival)
{
	uint16_t seq = p->hdr.seq, udelta;

	if (!st->seen || st->ssrc != p->hdr.ssrc) {
		int jpt = st->jitter_pt;

		rtp_rx_stats_init(st, jpt);
		st->seen = true;
		st->ssrc = p->hdr.ssrc;
		stats_init_seq(st, seq);
	} else {
		udelta = (uint16_t)(seq - st->max_seq);
		if (udelta < MAX_DROPOUT) {
			if (seq < st->max_seq)
				st->cycles += SEQ_MOD;
			st->max_seq = seq;
		} else if (udelta <= SEQ_MOD - MAX_MISORDER) {
			if (seq == st->bad_seq) {
				/* two sequential packets after a jump: the
				 * peer restarted its sequence */
				stats_init_seq(st, seq);
			} else {
				st->bad_seq = (seq + 1u) & (SEQ_MOD - 1);
				st->invalid++;
				return false;
			}
		}
		/* else a duplicate or reordered packet: counted */
	}
	st->received++;

	if (st->jitter_pt < 0 || st->jitter_pt == p->hdr.pt) {
		uint32_t transit = arrival - p->hdr.ts;

		if (st->transit_set) {
			int32_t d = (int32_t)(transit - st->transit);
			uint32_t ad = d < 0 ? (uint32_t)-(int64_t)d : (uint32_t)d;

			/* J += (|D| - J) / 16, kept * 16 in integers (A.8) */
			st->jitter_q4 += ad - ((st->jitter_q4 + 8) >> 4);
		}
		st->transit = transit;
		st->transit_set = true;
	}
	return true;
}

/* Records a sender report received from the source: the middle 32 bits of
 * its NTP timestamp and our NTP time of arrival, for LSR/DLSR. */
void rtp_rx_stats_sr(struct rtp_rx_stats *st, uint64_t sr_ntp,
		     uint64_t arrival_ntp)
{
	st->lsr = (uint32_t)(sr_ntp >> 16);
	st->lsr_arrival = arrival_ntp;
}

/* Fills a report block on the source at NTP time now_ntp (RFC 3550 A.3):
 * cumulative loss (clamped to 24 bits signed), fraction lost since the
 * previous call (which this call starts anew), extended highest sequence,
 * jitter, LSR/DLSR. */
void rtp_rx_stats_block(struct rtcp_rb *out, struct rtp_rx_stats *st,
			uint64_t now_ntp)
{
	uint32_t ext_max = st->cycles + st->max_seq;
	uint32_t expected = ext_max - st->base_seq + 1;
	int64_t lost = (int64_t)expected - st->received;
	uint32_t exp_int = expected - st->expected_prior;
	uint32_t rec_int = st->received - st->received_prior;
	int64_t lost_int = (int64_t)exp_int - rec_int;

	memset(out, 0, sizeof *out);
	if (!st->seen)
		return;
	st->expected_prior = expected;
	st->received_prior = st->received;
	if (lost > 0x7fffff)
		lost = 0x7fffff;
	if (lost < -0x800000)
		lost = -0x800000;
	out->ssrc = st->ssrc;
	out->lost = (int32_t)lost;
	if (exp_int && lost_int > 0) {
		uint64_t f = ((uint64_t)lost_int << 8) / exp_int;

		out->fraction = f > 255 ? 255 : (uint8_t)f;
	}
	out->ext_max_seq = ext_max;
	out->jitter = st->jitter_q4 >> 4;
	if (st->lsr) {
		out->lsr = st->lsr;
		out->dlsr = now_ntp > st->lsr_arrival ?
			    (uint32_t)((now_ntp - st->lsr_arrival) >> 16) : 0;
	}
}

/* ---- RTCP ------------------------------------------------------------------ */

static void put_rb(uint8_t *p, const struct rtcp_rb *rb)
{
	uint32_t lost24 = (uint32_t)rb->lost & 0xffffff;

	wr32(p, rb->ssrc);
	wr32(p + 4, (uint32_t)rb->fraction << 24 | lost24);
	wr32(p + 8, rb->ext_max_seq);
	wr32(p + 12, rb->jitter);
	wr32(p + 16, rb->lsr);
	wr32(p + 20, rb->dlsr);
}

static void get_rb(struct rtcp_rb *rb, const uint8_t *p)
{
	uint32_t w = rd32(p + 4);

	rb->ssrc = rd32(p);
	rb->fraction = (uint8_t)(w >> 24);
	/* sign-extend the 24-bit cumulative loss */
	rb->lost = (int32_t)((w & 0xffffff) ^ 0x800000) - 0x800000;
	rb->ext_max_seq = rd32(p + 8);
	rb->jitter = rd32(p + 12);
	rb->lsr = rd32(p + 16);
	rb->dlsr = rd32(p + 20);
}

/* Builds a compound RTCP packet for our stream tx: an SR when tx has sent
 * packets (NTP time now_ntp, RTP time now_rtp of the same instant, the
 * counts), an RR otherwise, with one report block on rx when rx is non-NULL
 * and has received (this updates rx's fraction-lost baseline), then an SDES
 * with cname. EINVAL: NULL tx/buf/len/cname or a cname longer than
 * RTCP_CNAME_MAX; ENOSPC: does not fit in cap. */
int rtcp_build_report(uint8_t *buf, size_t cap, const struct rtp_tx *tx,
		      struct rtp_rx_stats *rx, const char *cname,
		      uint64_t now_ntp, uint32_t now_rtp, size_t *len)
{
	bool sr, rb = rx && rx->seen;
	size_t clen, n1, n2, sdes_words;
	uint8_t *p;

	if (!buf || !tx || !cname || !len)
		return EINVAL;
	clen = strlen(cname);
	if (clen > RTCP_CNAME_MAX)
		return EINVAL;
	sr = tx->packets > 0;
	n1 = (sr ? 28 : 8) + (rb ? 24 : 0);
	/* SDES: header 4, SSRC 4, CNAME item 2 + clen, a null octet, padded */
	sdes_words = (8 + 2 + clen + 1 + 3) / 4;
	n2 = sdes_words * 4;
	if (n1 + n2 > cap)
		return ENOSPC;

	p = buf;
	p[0] = (uint8_t)(2 << 6 | (rb ? 1 : 0));
	p[1] = sr ? RTCP_SR : RTCP_RR;
	wr16(p + 2, (uint16_t)(n1 / 4 - 1));
	wr32(p + 4, tx->ssrc);
	p += 8;
	if (sr) {
		wr32(p, (uint32_t)(now_ntp >> 32));
		wr32(p + 4, (uint32_t)now_ntp);
		wr32(p + 8, now_rtp);
		wr32(p + 12, tx->packets);
		wr32(p + 16, tx->octets);
		p += 20;
	}
	if (rb) {
		struct rtcp_rb b;

		rtp_rx_stats_block(&b, rx, now_ntp);
		put_rb(p, &b);
		p += 24;
	}

	memset(p, 0, n2);
	p[0] = 2 << 6 | 1;
	p[1] = RTCP_SDES;
	wr16(p + 2, (uint16_t)(sdes_words - 1));
	wr32(p + 4, tx->ssrc);
	p[8] = 1; /* CNAME */
	p[9] = (uint8_t)clen;
	memcpy(p + 10, cname, clen);
	*len = n1 + n2;
	return 0;
}

/* Reads the first chunk of an SDES packet body (b, n bytes after the common
 * header) for its CNAME. EBADMSG: an item runs past the packet. */
static int sdes_cname(char *cname, const uint8_t *b, size_t n)
{
	size_t off = 4;

	if (n < 4)
		return EBADMSG;
	while (off < n && b[off] != 0) {
		uint8_t type = b[off], ilen;

		if (n - off < 2)
			return EBADMSG;
		ilen = b[off + 1];
		if (n - off - 2 < ilen)
			return EBADMSG;
		if (type == 1 && !cname[0]) {
			memcpy(cname, b + off + 2, ilen);
			cname[ilen] = '\0';
		}
		off += 2 + (size_t)ilen;
	}
	return 0;
}

/* Validates a compound RTCP packet (RFC 3550 A.2): every packet version 2
 * with a length that fits exactly, the first an SR or RR without padding,
 * padding only on the last; and reports the first packet's sender info and
 * first report block, a BYE, the first CNAME. Packet types it does not know
 * (APP, feedback, XR) are counted and skipped. out is written only on
 * success. EINVAL: NULL argument; E2BIG: len > RTP_PKT_MAX; EBADMSG:
 * anything else. */
int rtcp_parse(struct rtcp_info *out, const uint8_t *buf, size_t len)
{
	struct rtcp_info info;
	size_t off = 0;

	if (!out || (!buf && len))
		return EINVAL;
	if (len > RTP_PKT_MAX)
		return E2BIG;
	if (len < 8 || (buf[0] & 0xe0) != 0x80 ||
	    (buf[1] != RTCP_SR && buf[1] != RTCP_RR))
		return EBADMSG;
	memset(&info, 0, sizeof info);
	while (off < len) {
		const uint8_t *p = buf + off;
		size_t plen, body;
		unsigned count;

		if (len - off < 4 || (p[0] >> 6) != 2)
			return EBADMSG;
		plen = ((size_t)rd16(p + 2) + 1) * 4;
		if (plen > len - off)
			return EBADMSG;
		body = plen;
		if (p[0] & 0x20) {
			/* padding: only in the last packet */
			if (off + plen != len || p[plen - 1] == 0 ||
			    p[plen - 1] > plen - 4)
				return EBADMSG;
			body = plen - p[plen - 1];
		}
		count = p[0] & 0x1f;
		switch (p[1]) {
		case RTCP_SR:
		case RTCP_RR: {
			size_t fixed = p[1] == RTCP_SR ? 28 : 8;

			if (body < fixed + (size_t)count * 24)
				return EBADMSG;
			if (info.packets == 0) {
				info.ssrc = rd32(p + 4);
				info.rb_count = count;
				if (p[1] == RTCP_SR) {
					info.sr = true;
					info.ntp = (uint64_t)rd32(p + 8) << 32 |
						   rd32(p + 12);
					info.rtp_ts = rd32(p + 16);
					info.pkt_count = rd32(p + 20);
					info.octet_count = rd32(p + 24);
				}
				if (count)
					get_rb(&info.rb, p + fixed);
			}
			break;
		}
		case RTCP_SDES:
			if (count && sdes_cname(info.cname, p + 4, body - 4))
				return EBADMSG;
			break;
		case RTCP_BYE:
			if (body < 4 + (size_t)count * 4)
				return EBADMSG;
			info.bye = true;
			break;
		default:
			break;
		}
		info.packets++;
		off += plen;
	}
	*out = info;
	return 0;
}
