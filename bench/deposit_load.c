/* deposit_load.c — the caller side of bench/deposit: N voicemail deposit
 * calls against umservice over loopback, one RTP socket per call, timed.
 *
 * Each call: INVITE (SDP offer PCMU/PCMA/telephone-event) -> 1xx -> 200
 * (its SDP gives umservice's media port, its To gives the tag) -> ACK ->
 * RTP every 20 ms (tone bursts: speech to umservice's VAD) for --hold
 * seconds while umservice's RTP is received and timed -> BYE -> 200.
 * Calls start evenly over --ramp seconds. Everything runs on one thread:
 * an epoll loop over the SIP socket, every call's RTP and RTCP sockets and a
 * 1 ms timerfd that drives the send wheel, the call starts and the SIP
 * timers.
 *
 * Timing. Send jitter of umservice is measured from kernel receive
 * timestamps (SO_TIMESTAMPNS: taken when the loopback packet is queued,
 * i.e. at umservice's sendto), so this program's own scheduling delays do
 * not count against umservice; they are measured separately ("lag": user
 * space receive time minus kernel timestamp). Kernel timestamps are
 * CLOCK_REALTIME; they are mapped to CLOCK_MONOTONIC with an offset sampled
 * every 10 ms. For each pair of consecutive packets of a stream, the
 * deviation is |(arrival_j - arrival_i) - (ts_j - ts_i) / 8 kHz|, i.e. the
 * deviation of the inter-arrival time from 20 ms per packet (RFC 3550's D).
 *
 * Output: one CSV line per call (--csv) and one JSON summary on stdout.
 * Bounded: every call has timeouts, the whole run has --max-seconds; SIGINT
 * or SIGTERM ends the run early (the summary is still written).
 *
 * usage: deposit_load --port P --calls N [--ramp S] [--hold S]
 *                     [--mailbox EXT] [--rtp-base PORT] [--csv FILE]
 *                     [--max-seconds S] [--sip-trace FILE] */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000ULL
#define PTIME_NS (20 * MS)
#define WHEEL 20			/* 1 ms slots; one slot per 20 ms phase */
#define MAX_CALLS 10000
#define DEV_CAP_US 1000000u		/* deviations above 1 s are clipped */
#define LAG_HIST 100001			/* µs bins of the generator's lag */
#define JIT_HIST 1000001		/* µs bins of pooled jitter */
#define AUDIO_ABS 500			/* |sample| above this: not silence */

enum cstate { C_IDLE, C_INVITING, C_UP, C_BYEING, C_DONE, C_FAILED };

struct call {
	int idx;
	enum cstate st;
	int rtp_fd, rtcp_fd;
	uint16_t lport;
	struct sockaddr_in media;
	bool alaw;
	char callid[80], ftag[32], to_hdr[256], ruri[256];
	const char *fail;
	int code;			/* final status of the INVITE */
	bool server_bye, counted_up;
	/* times, CLOCK_MONOTONIC ns */
	uint64_t t_sched, t_inv, t_1xx, t_200, t_ack, t_bye, t_bye_ok;
	uint64_t t_first_rx, t_first_audio, t_last_rx;
	uint64_t next_retx, retx_ivl;
	int retx;
	/* sending */
	uint64_t next_tx;
	uint16_t tx_seq;
	uint32_t tx_ts, ssrc, tx_pkts, tx_pat;
	struct call *wnext;
	bool in_wheel;
	/* receiving (packets before our BYE) */
	uint32_t rx_pkts, rx_late, rx_dup, rx_reorder, rtcp_rx, drops;
	uint32_t first_ext, max_ext, rx_ssrc, prev_ts;
	uint16_t last_seq;
	bool have_rx;
	uint64_t prev_arr;
	uint32_t *dev;			/* |D| per packet pair, µs */
	uint32_t ndev, capdev;
};

static struct {
	int port, calls;
	double ramp, hold, max_s;
	const char *mailbox, *csv, *sip_trace;
	int rtp_base;
} opt = { 0, 0, 4.0, 20.0, 0, "1001", NULL, NULL, 20000 };

static struct call *calls;
static int sip_fd, tfd, ep;
static uint16_t sip_lport;
static struct sockaddr_in target;
static uint64_t t0, rt_off;		/* realtime - monotonic, ns */
static unsigned run_id;
static struct call *wheel[WHEEL];
static uint64_t last_ms;
static int next_start, active_up, peak_up, finished, next_rtp_port;
static uint32_t *lag_hist, *jit_hist;
/* Every arrival (kernel time) while calls are up: umservice sends a burst per
 * tick of its media clock; the bursts' widths show how long a tick takes. */
#define ARR_MAX (8u << 20)
static uint64_t *arrivals;
static size_t n_arrivals;
static uint64_t lag_n, jit_n, sip_rx, sip_tx, sip_bad, sip_retx;
static uint8_t pattern[2][30][160];	/* µ-law, A-law; 600 ms: 400 ms
					 * tone, 200 ms silence */
static volatile sig_atomic_t stop_sig;
static FILE *trace;			/* --sip-trace: one line a SIP message */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* now - t, 0 when t is later (t taken after now was sampled). */
static uint64_t since(uint64_t now, uint64_t t)
{
	return now > t ? now - t : 0;
}

static void sample_offset(void)
{
	struct timespec a, r, b;
	uint64_t ma, mb, rr;

	clock_gettime(CLOCK_MONOTONIC, &a);
	clock_gettime(CLOCK_REALTIME, &r);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ma = (uint64_t)a.tv_sec * 1000000000ULL + (uint64_t)a.tv_nsec;
	mb = (uint64_t)b.tv_sec * 1000000000ULL + (uint64_t)b.tv_nsec;
	rr = (uint64_t)r.tv_sec * 1000000000ULL + (uint64_t)r.tv_nsec;
	rt_off = rr - (ma + (mb - ma) / 2);
}

/* ---- G.711 ----------------------------------------------------------------- */

static uint8_t ulaw_enc(int s)
{
	int sign = s < 0 ? 0x80 : 0, exp = 7, mant;

	if (s < 0)
		s = -s;
	if (s > 32635)
		s = 32635;
	s += 0x84;
	for (int m = 0x4000; !(s & m) && exp > 0; m >>= 1)
		exp--;
	mant = (s >> (exp + 3)) & 0x0f;
	return (uint8_t)~(sign | (exp << 4) | mant);
}

static uint8_t alaw_enc(int s)
{
	int sign = s >= 0 ? 0x80 : 0, exp = 7, mant;

	if (s < 0)
		s = -s - 1;
	if (s > 32767)
		s = 32767;
	s >>= 3;
	if (s < 32) {
		mant = s >> 1;
		exp = 0;
	} else {
		for (exp = 1; exp < 7 && s >= (32 << exp); exp++)
			;
		mant = (s >> exp) & 0x0f;
	}
	return (uint8_t)((sign | (exp << 4) | mant) ^ 0x55);
}

static int ulaw_dec(uint8_t u)
{
	int t;

	u = (uint8_t)~u;
	t = ((u & 0x0f) << 3) + 0x84;
	t <<= (u & 0x70) >> 4;
	return (u & 0x80) ? 0x84 - t : t - 0x84;
}

static int alaw_dec(uint8_t a)
{
	int t, seg;

	a ^= 0x55;
	t = (a & 0x0f) << 4;
	seg = (a & 0x70) >> 4;
	if (seg == 0)
		t += 8;
	else if (seg == 1)
		t += 0x108;
	else
		t = (t + 0x108) << (seg - 1);
	return (a & 0x80) ? t : -t;
}

/* Tone bursts, -12 dBFS: 400 ms of 440+660 Hz, then 200 ms of silence. */
static void make_pattern(void)
{
	for (int f = 0; f < 30; f++)
		for (int i = 0; i < 160; i++) {
			double t = (f * 160 + i) / 8000.0, v = 0;

			if (f < 20)
				v = 4100 * sin(2 * M_PI * 440 * t) +
				    4100 * sin(2 * M_PI * 660 * t);
			pattern[0][f][i] = ulaw_enc((int)lrint(v));
			pattern[1][f][i] = alaw_enc((int)lrint(v));
		}
}

/* ---- helpers ---------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct_u64(const uint64_t *v, size_t n, double q)
{
	size_t k;

	if (!n)
		return NAN;
	k = (size_t)ceil(q * (double)n);
	if (k < 1)
		k = 1;
	return (double)v[k - 1];
}

static double pct_hist(const uint32_t *h, size_t bins, uint64_t n, double q)
{
	uint64_t want, acc = 0;

	if (!n)
		return NAN;
	want = (uint64_t)ceil(q * (double)n);
	if (want < 1)
		want = 1;
	for (size_t i = 0; i < bins; i++) {
		acc += h[i];
		if (acc >= want)
			return (double)i;
	}
	return (double)(bins - 1);
}

/* --sip-trace: time since start, direction, first line, Call-ID, CSeq. */
static void trace_sip(char dir, const char *buf, size_t len)
{
	const char *eol = memchr(buf, '\r', len), *cid, *cseq;
	int cl, il = 0, sl = 0;

	if (!trace)
		return;
	cl = eol ? (int)(eol - buf) : (int)len;
	cid = strstr(buf, "\nCall-ID: ");
	cseq = strstr(buf, "\nCSeq: ");
	if (cid) {
		cid += 10;
		il = (int)strcspn(cid, "\r\n");
	}
	if (cseq) {
		cseq += 7;
		sl = (int)strcspn(cseq, "\r\n");
	}
	fprintf(trace, "%.3f %c %.*s | %.*s | %.*s\n",
		(double)(now_ns() - t0) / 1e6, dir, cl, buf, il, cid ? cid : "",
		sl, cseq ? cseq : "");
}

static int sendto_sip(const char *buf, size_t len)
{
	trace_sip('>', buf, len);
	ssize_t r = sendto(sip_fd, buf, len, 0, (struct sockaddr *)&target,
			   sizeof target);

	sip_tx++;
	return r == (ssize_t)len ? 0 : -1;
}

static void fail(struct call *c, const char *why)
{
	if (c->st == C_DONE || c->st == C_FAILED)
		return;
	if (c->st == C_UP || c->st == C_BYEING)
		active_up -= c->counted_up ? 1 : 0;
	c->counted_up = false;
	c->st = C_FAILED;
	c->fail = why;
	finished++;
}

static void close_media(struct call *c)
{
	if (c->rtp_fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->rtp_fd, NULL);
		close(c->rtp_fd);
	}
	if (c->rtcp_fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->rtcp_fd, NULL);
		close(c->rtcp_fd);
	}
	c->rtp_fd = c->rtcp_fd = -1;
}

static int bind_udp(uint16_t port, bool rtp)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1;

	if (fd < 0)
		return -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		return -1;
	}
	if (rtp) {
		setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
		setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
	}
	return fd;
}

/* An even/odd pair from --rtp-base up (below umservice's 40000-49999). */
static int open_media(struct call *c)
{
	for (int tries = 0; tries < 12000; tries++) {
		uint16_t p = (uint16_t)next_rtp_port;
		struct epoll_event ev = { .events = EPOLLIN };

		next_rtp_port += 2;
		if (next_rtp_port > 39998)
			next_rtp_port = opt.rtp_base;
		c->rtp_fd = bind_udp(p, true);
		if (c->rtp_fd < 0)
			continue;
		c->rtcp_fd = bind_udp((uint16_t)(p + 1), false);
		if (c->rtcp_fd < 0) {
			close(c->rtp_fd);
			c->rtp_fd = -1;
			continue;
		}
		c->lport = p;
		ev.data.u64 = ((uint64_t)c->idx << 2) | 1;
		epoll_ctl(ep, EPOLL_CTL_ADD, c->rtp_fd, &ev);
		ev.data.u64 = ((uint64_t)c->idx << 2) | 2;
		epoll_ctl(ep, EPOLL_CTL_ADD, c->rtcp_fd, &ev);
		return 0;
	}
	return -1;
}

/* ---- SIP ------------------------------------------------------------------- */

static void send_invite(struct call *c)
{
	char sdp[512], msg[2048];
	int sl, ml;

	sl = snprintf(sdp, sizeof sdp,
		      "v=0\r\no=bench %d 1 IN IP4 127.0.0.1\r\ns=bench\r\n"
		      "c=IN IP4 127.0.0.1\r\nt=0 0\r\n"
		      "m=audio %u RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n"
		      "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
		      "a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
		      c->idx, c->lport);
	ml = snprintf(msg, sizeof msg,
		      "INVITE sip:%s@127.0.0.1:%d SIP/2.0\r\n"
		      "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bK%x-%d-i;rport\r\n"
		      "Max-Forwards: 70\r\n"
		      "From: \"Bench %d\" <sip:55%05d@127.0.0.1:%u>;tag=%s\r\n"
		      "To: <sip:%s@127.0.0.1:%d>\r\n"
		      "Call-ID: %s\r\n"
		      "CSeq: 1 INVITE\r\n"
		      "Contact: <sip:55%05d@127.0.0.1:%u>\r\n"
		      "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS\r\n"
		      "Content-Type: application/sdp\r\n"
		      "Content-Length: %d\r\n\r\n%s",
		      opt.mailbox, opt.port, sip_lport, run_id, c->idx, c->idx,
		      c->idx, sip_lport, c->ftag, opt.mailbox, opt.port, c->callid,
		      c->idx, sip_lport, sl, sdp);
	sendto_sip(msg, (size_t)ml);
}

/* ACK: for a 2xx a new transaction to the Contact; for a failure the
 * INVITE's own (same branch, same Request-URI). */
static void send_ack(struct call *c, bool ok)
{
	char msg[1024], ruri[160];
	int ml;

	snprintf(ruri, sizeof ruri, "sip:%s@127.0.0.1:%d", opt.mailbox, opt.port);
	ml = snprintf(msg, sizeof msg,
		      "ACK %s SIP/2.0\r\n"
		      "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bK%x-%d-%c;rport\r\n"
		      "Max-Forwards: 70\r\n"
		      "From: \"Bench %d\" <sip:55%05d@127.0.0.1:%u>;tag=%s\r\n"
		      "To: %s\r\nCall-ID: %s\r\nCSeq: 1 ACK\r\n"
		      "Content-Length: 0\r\n\r\n",
		      ok ? c->ruri : ruri, sip_lport, run_id, c->idx, ok ? 'a' : 'i',
		      c->idx, c->idx, sip_lport, c->ftag, c->to_hdr, c->callid);
	sendto_sip(msg, (size_t)ml);
}

static void send_bye(struct call *c)
{
	char msg[1024];
	int ml = snprintf(msg, sizeof msg,
			  "BYE %s SIP/2.0\r\n"
			  "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bK%x-%d-b;rport\r\n"
			  "Max-Forwards: 70\r\n"
			  "From: \"Bench %d\" <sip:55%05d@127.0.0.1:%u>;tag=%s\r\n"
			  "To: %s\r\nCall-ID: %s\r\nCSeq: 2 BYE\r\n"
			  "Content-Length: 0\r\n\r\n",
			  c->ruri, sip_lport, run_id, c->idx, c->idx, c->idx,
			  sip_lport, c->ftag, c->to_hdr, c->callid);

	sendto_sip(msg, (size_t)ml);
}

/* Value of header name (or its compact form) in the head [p, end); the
 * first occurrence, copied into out. */
static bool header(const char *p, const char *end, const char *name,
		   const char *compact, char *out, size_t len)
{
	size_t nl = strlen(name);

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *v = NULL;

		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > nl && !strncasecmp(p, name, nl) &&
		    (p[nl] == ':' || p[nl] == ' '))
			v = p + nl;
		else if (compact && (size_t)(eol - p) > 1 &&
			 (p[0] == compact[0] || p[0] == (compact[0] ^ 0x20)) &&
			 (p[1] == ':' || p[1] == ' '))
			v = p + 1;
		if (v) {
			size_t n;

			while (v < eol && (*v == ' ' || *v == ':' || *v == '\t'))
				v++;
			n = (size_t)(eol - v);
			while (n && (v[n - 1] == '\r' || v[n - 1] == ' '))
				n--;
			if (n >= len)
				n = len - 1;
			memcpy(out, v, n);
			out[n] = '\0';
			return true;
		}
		p = eol + 1;
	}
	return false;
}

static struct call *call_of(const char *callid)
{
	unsigned rid;
	int idx;

	if (sscanf(callid, "dep-%x-%d@", &rid, &idx) != 2 || rid != run_id ||
	    idx < 0 || idx >= opt.calls)
		return NULL;
	return &calls[idx];
}

/* A request from umservice (a BYE ending the call from its side, or
 * anything else): 200 with the transaction's headers echoed. */
static void answer_request(const char *buf, size_t len, struct call *c,
			   const char *method)
{
	char out[4096];
	size_t o = 0;
	const char *p = buf, *end = buf + len;
	const char *hdr_end = strstr(buf, "\r\n\r\n");

	if (hdr_end)
		end = hdr_end + 2;
	o += (size_t)snprintf(out, sizeof out, "SIP/2.0 200 OK\r\n");
	p = memchr(buf, '\n', len);
	p = p ? p + 1 : end;
	while (p < end && o < sizeof out - 512) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t n;

		if (!eol)
			break;
		n = (size_t)(eol - p + 1);
		if (!strncasecmp(p, "Via", 3) || !strncasecmp(p, "v:", 2) ||
		    !strncasecmp(p, "From", 4) || !strncasecmp(p, "f:", 2) ||
		    !strncasecmp(p, "To", 2) || !strncasecmp(p, "t:", 2) ||
		    !strncasecmp(p, "Call-ID", 7) || !strncasecmp(p, "i:", 2) ||
		    !strncasecmp(p, "CSeq", 4)) {
			if (n < sizeof out - o - 64) {
				memcpy(out + o, p, n);
				o += n;
			}
		}
		p = eol + 1;
	}
	o += (size_t)snprintf(out + o, sizeof out - o, "Content-Length: 0\r\n\r\n");
	sendto_sip(out, o);
	if (c && !strcmp(method, "BYE") && (c->st == C_UP || c->st == C_INVITING)) {
		c->server_bye = true;
		c->t_bye = now_ns();
		fail(c, "umservice hung up during the call");
		close_media(c);
	} else if (c && !strcmp(method, "BYE") && c->st == C_BYEING) {
		/* Our BYE went unanswered so long that umservice ended the
		 * call itself (RecordingIdleTimeout after our RTP stopped). */
		c->server_bye = true;
		c->t_bye_ok = now_ns();
		fail(c, "our BYE unanswered until umservice hung up itself");
		close_media(c);
	}
}

static bool parse_sdp(struct call *c, const char *body)
{
	const char *m = strstr(body, "m=audio "), *cl = strstr(body, "c=IN IP4 ");
	char addr[64];
	unsigned port, pt;

	if (!m || !cl || sscanf(cl + 9, "%63[0-9.]", addr) != 1 ||
	    sscanf(m + 8, "%u RTP/AVP %u", &port, &pt) != 2 || port == 0 ||
	    port > 65535)
		return false;
	memset(&c->media, 0, sizeof c->media);
	c->media.sin_family = AF_INET;
	c->media.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &c->media.sin_addr) != 1)
		return false;
	c->alaw = pt == 8;
	return true;
}

static void wheel_add(struct call *c)
{
	unsigned slot = (unsigned)((c->next_tx / MS) % WHEEL);

	c->wnext = wheel[slot];
	wheel[slot] = c;
	c->in_wheel = true;
}

static void on_response(struct call *c, int code, const char *method,
			const char *head, const char *hend, const char *body)
{
	uint64_t now = now_ns();

	if (!strcmp(method, "INVITE")) {
		if (code < 200) {
			if (!c->t_1xx)
				c->t_1xx = now;
			return;
		}
		if (code >= 300) {
			if (c->st == C_INVITING) {
				header(head, hend, "To", "t", c->to_hdr,
				       sizeof c->to_hdr);
				c->code = code;
				send_ack(c, false);
				fail(c, "INVITE refused");
				close_media(c);
			}
			return;
		}
		if (c->st != C_INVITING) {
			/* A retransmitted 200: our ACK was lost or late. */
			if (c->t_ack && c->st != C_FAILED)
				send_ack(c, true);
			return;
		}
		c->code = code;
		c->t_200 = now;
		if (!c->t_1xx)
			c->t_1xx = now;
		{
			char contact[256];
			const char *lt, *gt;

			if (!header(head, hend, "To", "t", c->to_hdr,
				    sizeof c->to_hdr) ||
			    !strstr(c->to_hdr, "tag=") ||
			    !header(head, hend, "Contact", "m", contact,
				    sizeof contact) ||
			    !(lt = strchr(contact, '<')) ||
			    !(gt = strchr(lt, '>')) || gt - lt - 1 >= (long)sizeof c->ruri ||
			    !body || !parse_sdp(c, body)) {
				c->t_ack = now_ns();
				send_ack(c, true);
				fail(c, "bad 200 (To tag, Contact or SDP)");
				close_media(c);
				return;
			}
			memcpy(c->ruri, lt + 1, (size_t)(gt - lt - 1));
			c->ruri[gt - lt - 1] = '\0';
		}
		c->t_ack = now_ns();
		send_ack(c, true);
		c->st = C_UP;
		c->counted_up = true;
		if (++active_up > peak_up)
			peak_up = active_up;
		c->next_tx = c->t_ack;
		wheel_add(c);
		return;
	}
	if (!strcmp(method, "BYE") && c->st == C_BYEING && code >= 200) {
		c->t_bye_ok = now;
		if (code == 200) {
			c->st = C_DONE;
			finished++;
		} else {
			c->code = code;
			fail(c, "BYE refused");
		}
		active_up -= c->counted_up ? 1 : 0;
		c->counted_up = false;
		close_media(c);
	}
}

static void on_sip(char *buf, size_t len)
{
	char *hend = strstr(buf, "\r\n\r\n"), *body = NULL;
	char callid[128], cseq[64], method[16];
	unsigned seqno;
	struct call *c;

	sip_rx++;
	trace_sip('<', buf, len);
	if (!hend) {
		sip_bad++;
		return;
	}
	body = hend + 4;
	if (!header(buf, hend, "Call-ID", "i", callid, sizeof callid) ||
	    !header(buf, hend, "CSeq", NULL, cseq, sizeof cseq) ||
	    sscanf(cseq, "%u %15s", &seqno, method) != 2) {
		sip_bad++;
		return;
	}
	c = call_of(callid);
	if (!strncmp(buf, "SIP/2.0 ", 8)) {
		int code = atoi(buf + 8);

		if (!c || code < 100) {
			sip_bad++;
			return;
		}
		on_response(c, code, method, buf, hend, *body ? body : NULL);
		return;
	}
	if (!strncmp(buf, "ACK ", 4))
		return;
	answer_request(buf, len, c, method);
}

/* ---- RTP ------------------------------------------------------------------- */

static void send_rtp(struct call *c)
{
	uint8_t pkt[12 + 160];

	pkt[0] = 0x80;
	pkt[1] = (uint8_t)((c->tx_pkts == 0 ? 0x80 : 0) | (c->alaw ? 8 : 0));
	pkt[2] = (uint8_t)(c->tx_seq >> 8);
	pkt[3] = (uint8_t)c->tx_seq;
	pkt[4] = (uint8_t)(c->tx_ts >> 24);
	pkt[5] = (uint8_t)(c->tx_ts >> 16);
	pkt[6] = (uint8_t)(c->tx_ts >> 8);
	pkt[7] = (uint8_t)c->tx_ts;
	pkt[8] = (uint8_t)(c->ssrc >> 24);
	pkt[9] = (uint8_t)(c->ssrc >> 16);
	pkt[10] = (uint8_t)(c->ssrc >> 8);
	pkt[11] = (uint8_t)c->ssrc;
	memcpy(pkt + 12, pattern[c->alaw][c->tx_pat], 160);
	c->tx_pat = (c->tx_pat + 1) % 30;
	sendto(c->rtp_fd, pkt, sizeof pkt, 0, (struct sockaddr *)&c->media,
	       sizeof c->media);
	c->tx_seq++;
	c->tx_ts += 160;
	c->tx_pkts++;
}

static void on_rtp(struct call *c)
{
	for (int n = 0; n < 64; n++) {
		uint8_t buf[2048];
		char cbuf[256];
		struct iovec iov = { buf, sizeof buf };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = cbuf,
				     .msg_controllen = sizeof cbuf };
		ssize_t r = recvmsg(c->rtp_fd, &mh, 0);
		uint64_t user = now_ns(), karr = 0;
		uint16_t seq;
		uint32_t ts, ssrc;
		int16_t d;

		if (r < 0)
			return;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm;
		     cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level == SOL_SOCKET &&
			    cm->cmsg_type == SO_TIMESTAMPNS) {
				struct timespec ts_k;

				memcpy(&ts_k, CMSG_DATA(cm), sizeof ts_k);
				karr = (uint64_t)ts_k.tv_sec * 1000000000ULL +
				       (uint64_t)ts_k.tv_nsec - rt_off;
			} else if (cm->cmsg_level == SOL_SOCKET &&
				   cm->cmsg_type == SO_RXQ_OVFL) {
				uint32_t d32;

				memcpy(&d32, CMSG_DATA(cm), sizeof d32);
				c->drops = d32;
			}
		}
		if (!karr)
			karr = user;
		if (r < 12 || (buf[0] & 0xc0) != 0x80)
			continue;
		if (c->st != C_UP) {
			c->rx_late++;
			continue;
		}
		{
			uint64_t lag = user > karr ? (user - karr) / 1000 : 0;

			lag_hist[lag < LAG_HIST - 1 ? lag : LAG_HIST - 1]++;
			lag_n++;
		}
		seq = (uint16_t)(buf[2] << 8 | buf[3]);
		ts = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 |
		     (uint32_t)buf[6] << 8 | buf[7];
		ssrc = (uint32_t)buf[8] << 24 | (uint32_t)buf[9] << 16 |
		       (uint32_t)buf[10] << 8 | buf[11];
		if (!c->have_rx) {
			c->have_rx = true;
			c->t_first_rx = karr;
			c->first_ext = c->max_ext = seq;
			c->last_seq = seq;
			c->rx_ssrc = ssrc;
			c->rx_pkts = 1;
			c->prev_arr = karr;
			c->prev_ts = ts;
		} else {
			d = (int16_t)(seq - c->last_seq);
			if (d == 0) {
				c->rx_dup++;
				continue;
			}
			c->rx_pkts++;
			if (d < 0) {
				c->rx_reorder++;
				continue;
			}
			c->max_ext += (uint32_t)d;
			c->last_seq = seq;
			{
				int64_t ia = (int64_t)(karr - c->prev_arr);
				int64_t exp = (int64_t)(uint32_t)(ts - c->prev_ts) *
					      125000;	/* ns per 8 kHz unit */
				int64_t dev = ia - exp;
				uint64_t us = (uint64_t)(dev < 0 ? -dev : dev) / 1000;

				if (us > DEV_CAP_US)
					us = DEV_CAP_US;
				if (c->ndev == c->capdev) {
					uint32_t nc = c->capdev ? 2 * c->capdev : 1024;
					uint32_t *nd = realloc(c->dev, nc * sizeof *nd);

					if (nd) {
						c->dev = nd;
						c->capdev = nc;
					}
				}
				if (c->ndev < c->capdev)
					c->dev[c->ndev++] = (uint32_t)us;
				jit_hist[us < JIT_HIST - 1 ? us : JIT_HIST - 1]++;
				jit_n++;
			}
			c->prev_arr = karr;
			c->prev_ts = ts;
		}
		c->t_last_rx = karr;
		if (arrivals && n_arrivals < ARR_MAX)
			arrivals[n_arrivals++] = karr;
		if (!c->t_first_audio && r > 12) {
			for (ssize_t i = 12; i < r; i++) {
				int s = c->alaw ? alaw_dec(buf[i]) : ulaw_dec(buf[i]);

				if (s > AUDIO_ABS || s < -AUDIO_ABS) {
					c->t_first_audio = karr;
					break;
				}
			}
		}
	}
}

static void on_rtcp(struct call *c)
{
	for (int n = 0; n < 16; n++) {
		uint8_t buf[1500];

		if (recv(c->rtcp_fd, buf, sizeof buf, 0) < 0)
			return;
		c->rtcp_rx++;
	}
}

/* ---- timers ---------------------------------------------------------------- */

static void start_call(struct call *c)
{
	c->t_inv = now_ns();
	if (open_media(c) != 0) {
		fail(c, "no local RTP port");
		return;
	}
	c->st = C_INVITING;
	c->retx_ivl = 500 * MS;
	c->next_retx = c->t_inv + c->retx_ivl;
	send_invite(c);
}

static void run_wheel(uint64_t now)
{
	uint64_t now_ms = now / MS;

	if (!last_ms || now_ms - last_ms > WHEEL)
		last_ms = now_ms > WHEEL ? now_ms - WHEEL : 0;
	for (uint64_t ms = last_ms + 1; ms <= now_ms; ms++) {
		struct call **pp = &wheel[ms % WHEEL];

		while (*pp) {
			struct call *c = *pp;

			if (c->st != C_UP) {
				*pp = c->wnext;
				c->in_wheel = false;
				continue;
			}
			/* At most two packets at once if this loop fell behind. */
			for (int k = 0; k < 2 && c->next_tx <= now; k++) {
				send_rtp(c);
				c->next_tx += PTIME_NS;
			}
			if (c->next_tx <= now)
				c->next_tx = now + PTIME_NS - (now - c->next_tx) % PTIME_NS;
			pp = &c->wnext;
		}
	}
	last_ms = now_ms;
}

static void housekeeping(uint64_t now)
{
	uint64_t ramp_ns = (uint64_t)(opt.ramp * 1e9);

	while (next_start < opt.calls) {
		struct call *c = &calls[next_start];

		c->t_sched = t0 + (opt.calls > 1 ? ramp_ns * (uint64_t)next_start /
						   (uint64_t)(opt.calls - 1) : 0);
		if (c->t_sched > now)
			break;
		start_call(c);
		next_start++;
	}
	for (int i = 0; i < next_start; i++) {
		struct call *c = &calls[i];

		switch (c->st) {
		case C_INVITING:
			if (since(now, c->t_inv) > 32000 * MS) {
				fail(c, "no final response to INVITE in 32 s");
				close_media(c);
			} else if (!c->t_1xx && now >= c->next_retx && c->retx < 6) {
				send_invite(c);
				c->retx++;
				sip_retx++;
				c->retx_ivl *= 2;
				c->next_retx = now + c->retx_ivl;
			}
			break;
		case C_UP:
			if (since(now, c->t_ack) >= (uint64_t)(opt.hold * 1e9)) {
				c->st = C_BYEING;
				c->t_bye = now_ns();
				send_bye(c);
				c->retx_ivl = 500 * MS;
				c->next_retx = c->t_bye + c->retx_ivl;
			}
			break;
		case C_BYEING:
			if (since(now, c->t_bye) > 16000 * MS) {
				fail(c, "no response to BYE in 16 s");
				close_media(c);
			} else if (now >= c->next_retx && c->retx < 10) {
				send_bye(c);
				c->retx++;
				sip_retx++;
				c->retx_ivl = c->retx_ivl * 2 > 4000 * MS ? 4000 * MS
									  : c->retx_ivl * 2;
				c->next_retx = now + c->retx_ivl;
			}
			break;
		default:
			break;
		}
	}
}

/* ---- report ---------------------------------------------------------------- */

static void write_csv(void)
{
	FILE *f;

	if (!opt.csv || !(f = fopen(opt.csv, "w")))
		return;
	fprintf(f, "idx,call_id,state,fail,code,server_bye,t_inv_ms,"
		"setup_ms,ack_ms,first_pkt_ms,first_audio_ms,held_ms,bye_ok_ms,"
		"tx_pkts,rx_pkts,expected,lost,dup,reorder,late,rtcp_rx,drops,"
		"jit_p50_us,jit_p99_us,jit_max_us\n");
	for (int i = 0; i < opt.calls; i++) {
		struct call *c = &calls[i];
		double held = c->t_ack && c->t_bye ? (double)(c->t_bye - c->t_ack) / 1e6 : 0;
		long expected = (long)floor(held / 20.0);
		long lost = c->have_rx ? (long)(c->max_ext - c->first_ext + 1) -
						 (long)(c->rx_pkts - c->rx_reorder)
				       : 0;
		double p50 = NAN, p99 = NAN, mx = NAN;

		if (c->ndev) {
			qsort(c->dev, c->ndev, sizeof *c->dev, cmp_u32);
			p50 = c->dev[(size_t)ceil(0.50 * c->ndev) - 1];
			p99 = c->dev[(size_t)ceil(0.99 * c->ndev) - 1];
			mx = c->dev[c->ndev - 1];
		}
		fprintf(f, "%d,%s,%s,%s,%d,%d,%.3f,%.3f,%.3f,%.3f,%.3f,%.1f,%.3f,"
			"%u,%u,%ld,%ld,%u,%u,%u,%u,%u,%.0f,%.0f,%.0f\n",
			i, c->callid,
			c->st == C_DONE ? "done" : c->st == C_FAILED ? "failed"
						 : "unfinished",
			c->fail ? c->fail : "", c->code, c->server_bye,
			c->t_inv ? (double)(c->t_inv - t0) / 1e6 : -1,
			c->t_200 ? (double)(c->t_200 - c->t_inv) / 1e6 : -1,
			c->t_ack ? (double)(c->t_ack - t0) / 1e6 : -1,
			c->have_rx ? ((double)c->t_first_rx - (double)c->t_ack) / 1e6 : -1,
			c->t_first_audio ? ((double)c->t_first_audio - (double)c->t_ack) / 1e6 : -1,
			held,
			c->t_bye_ok ? (double)(c->t_bye_ok - c->t_bye) / 1e6 : -1,
			c->tx_pkts, c->rx_pkts, expected, lost, c->rx_dup,
			c->rx_reorder, c->rx_late, c->rtcp_rx, c->drops, p50, p99, mx);
	}
	fclose(f);
}

/* This process's CPU seconds so far (user + system). */
static double cpu_self(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return NAN;
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void summary(double elapsed)
{
	int done = 0, failed = 0, unfinished = 0, answered = 0;
	uint64_t rx = 0, expected = 0, tx = 0, rtcp = 0, late = 0, drops = 0;
	long lost = 0;
	uint64_t *fp = calloc((size_t)opt.calls + 1, sizeof *fp);
	uint64_t *fa = calloc((size_t)opt.calls + 1, sizeof *fa);
	uint64_t *su = calloc((size_t)opt.calls + 1, sizeof *su);
	uint64_t *cp99 = calloc((size_t)opt.calls + 1, sizeof *cp99);
	size_t nfp = 0, nfa = 0, nsu = 0, ncp = 0;
	char reasons[1024] = "";
	size_t rl = 0, nb = 0;
	uint64_t *bw = NULL, *bn = NULL;

	for (int i = 0; i < opt.calls; i++) {
		struct call *c = &calls[i];

		if (c->st == C_DONE)
			done++;
		else if (c->st == C_FAILED)
			failed++;
		else
			unfinished++;
		if (c->t_200)
			answered++, su[nsu++] = c->t_200 - c->t_inv;
		if (c->t_ack && c->have_rx && c->t_first_rx >= c->t_ack)
			fp[nfp++] = c->t_first_rx - c->t_ack;
		else if (c->t_ack && c->have_rx)
			fp[nfp++] = 0;
		if (c->t_ack && c->t_first_audio)
			fa[nfa++] = c->t_first_audio > c->t_ack ? c->t_first_audio - c->t_ack : 0;
		if (c->t_ack && c->t_bye && c->st != C_FAILED) {
			expected += (c->t_bye - c->t_ack) / PTIME_NS;
			rx += c->rx_pkts;
			if (c->have_rx)
				lost += (long)(c->max_ext - c->first_ext + 1) -
					(long)(c->rx_pkts - c->rx_reorder);
		}
		tx += c->tx_pkts;
		rtcp += c->rtcp_rx;
		late += c->rx_late;
		drops += c->drops;
		if (c->ndev) {
			uint32_t *v = malloc(c->ndev * sizeof *v);

			if (v) {
				memcpy(v, c->dev, c->ndev * sizeof *v);
				qsort(v, c->ndev, sizeof *v, cmp_u32);
				cp99[ncp++] = v[(size_t)ceil(0.99 * c->ndev) - 1];
				free(v);
			}
		}
		if (c->st == C_FAILED && c->fail && rl < sizeof reasons - 200) {
			char item[160];

			if (c->code >= 300)
				snprintf(item, sizeof item, "%s (%d)", c->fail, c->code);
			else
				snprintf(item, sizeof item, "%s", c->fail);
			if (!strstr(reasons, item))
				rl += (size_t)snprintf(reasons + rl, sizeof reasons - rl,
						       "%s%s", rl ? "; " : "", item);
		}
	}
	/* Bursts: runs of arrivals (all calls) less than 1 ms apart. */
	{
		size_t cap = n_arrivals / 4 + 16;

		bw = calloc(cap, sizeof *bw);
		bn = calloc(cap, sizeof *bn);
		if (bw && bn && n_arrivals) {
			uint64_t start;
			size_t count = 1;

			qsort(arrivals, n_arrivals, sizeof *arrivals, cmp_u64);
			start = arrivals[0];
			for (size_t i = 1; i <= n_arrivals && nb < cap; i++) {
				if (i == n_arrivals || arrivals[i] - arrivals[i - 1] > MS) {
					/* bursts of >= 10 % of the calls up only */
					if (count * 10 >= (size_t)opt.calls) {
						bw[nb] = arrivals[i - 1] - start;
						bn[nb++] = count;
					}
					if (i < n_arrivals)
						start = arrivals[i];
					count = 1;
				} else {
					count++;
				}
			}
			qsort(bw, nb, sizeof *bw, cmp_u64);
			qsort(bn, nb, sizeof *bn, cmp_u64);
		}
	}
	qsort(fp, nfp, sizeof *fp, cmp_u64);
	qsort(fa, nfa, sizeof *fa, cmp_u64);
	qsort(su, nsu, sizeof *su, cmp_u64);
	qsort(cp99, ncp, sizeof *cp99, cmp_u64);
	printf("{\"calls\":%d,\"started\":%d,\"answered\":%d,\"completed\":%d,"
	       "\"failed\":%d,\"unfinished\":%d,\"fail_reasons\":\"%s\","
	       "\"peak_concurrent\":%d,\"elapsed_s\":%.3f,"
	       "\"rx_pkts\":%llu,\"expected_pkts\":%llu,\"lost_pkts\":%ld,"
	       "\"late_pkts\":%llu,\"our_drops\":%llu,\"tx_pkts\":%llu,"
	       "\"rtcp_rx\":%llu,"
	       "\"jit_pairs\":%llu,\"jit_p50_us\":%.0f,\"jit_p90_us\":%.0f,"
	       "\"jit_p99_us\":%.0f,\"jit_p999_us\":%.0f,\"jit_max_us\":%.0f,"
	       "\"call_p99_median_us\":%.0f,\"call_p99_max_us\":%.0f,"
	       "\"first_pkt_n\":%zu,\"first_pkt_p50_us\":%.0f,"
	       "\"first_pkt_p99_us\":%.0f,\"first_pkt_max_us\":%.0f,"
	       "\"first_audio_p50_us\":%.0f,\"first_audio_p99_us\":%.0f,"
	       "\"setup_p50_us\":%.0f,\"setup_p99_us\":%.0f,"
	       "\"lag_p50_us\":%.0f,\"lag_p99_us\":%.0f,\"lag_max_us\":%.0f,"
	       "\"sip_tx\":%llu,\"sip_rx\":%llu,\"sip_bad\":%llu,"
	       "\"sip_retx\":%llu,\"cpu_s\":%.3f,\"bursts\":%zu,"
	       "\"burst_pkts_p50\":%.0f,\"burst_us_p50\":%.0f,"
	       "\"burst_us_p99\":%.0f}\n",
	       opt.calls, next_start, answered, done, failed, unfinished, reasons,
	       peak_up, elapsed, (unsigned long long)rx,
	       (unsigned long long)expected, lost, (unsigned long long)late,
	       (unsigned long long)drops, (unsigned long long)tx,
	       (unsigned long long)rtcp, (unsigned long long)jit_n,
	       pct_hist(jit_hist, JIT_HIST, jit_n, 0.50),
	       pct_hist(jit_hist, JIT_HIST, jit_n, 0.90),
	       pct_hist(jit_hist, JIT_HIST, jit_n, 0.99),
	       pct_hist(jit_hist, JIT_HIST, jit_n, 0.999),
	       pct_hist(jit_hist, JIT_HIST, jit_n, 1.0),
	       pct_u64(cp99, ncp, 0.5), ncp ? (double)cp99[ncp - 1] : NAN,
	       nfp, pct_u64(fp, nfp, 0.5) / 1e3, pct_u64(fp, nfp, 0.99) / 1e3,
	       nfp ? (double)fp[nfp - 1] / 1e3 : NAN,
	       pct_u64(fa, nfa, 0.5) / 1e3, pct_u64(fa, nfa, 0.99) / 1e3,
	       pct_u64(su, nsu, 0.5) / 1e3, pct_u64(su, nsu, 0.99) / 1e3,
	       pct_hist(lag_hist, LAG_HIST, lag_n, 0.50),
	       pct_hist(lag_hist, LAG_HIST, lag_n, 0.99),
	       pct_hist(lag_hist, LAG_HIST, lag_n, 1.0),
	       (unsigned long long)sip_tx, (unsigned long long)sip_rx,
	       (unsigned long long)sip_bad, (unsigned long long)sip_retx,
	       cpu_self(), nb, pct_u64(bn, nb, 0.5), pct_u64(bw, nb, 0.5) / 1e3,
	       pct_u64(bw, nb, 0.99) / 1e3);
	fflush(stdout);
	free(fp);
	free(fa);
	free(su);
	free(cp99);
	free(bw);
	free(bn);
}

/* ---- main ------------------------------------------------------------------ */

static void on_signal(int s)
{
	(void)s;
	stop_sig = 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: deposit_load --port P --calls N [--ramp S] "
		"[--hold S] [--mailbox EXT] [--rtp-base PORT] [--csv FILE] "
		"[--max-seconds S] [--sip-trace FILE]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct itimerspec its = { { 0, 1000000 }, { 0, 1000000 } };
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof a;
	struct epoll_event ev = { .events = EPOLLIN };
	struct sigaction sa = { .sa_handler = on_signal };
	struct rlimit rl;
	uint64_t deadline, last_hk = 0;
	int bufsz = 4 << 20;

	for (int i = 1; i < argc; i += 2) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage();
		if (!strcmp(argv[i], "--port"))
			opt.port = atoi(v);
		else if (!strcmp(argv[i], "--calls"))
			opt.calls = atoi(v);
		else if (!strcmp(argv[i], "--ramp"))
			opt.ramp = atof(v);
		else if (!strcmp(argv[i], "--hold"))
			opt.hold = atof(v);
		else if (!strcmp(argv[i], "--mailbox"))
			opt.mailbox = v;
		else if (!strcmp(argv[i], "--rtp-base"))
			opt.rtp_base = atoi(v) & ~1;
		else if (!strcmp(argv[i], "--csv"))
			opt.csv = v;
		else if (!strcmp(argv[i], "--max-seconds"))
			opt.max_s = atof(v);
		else if (!strcmp(argv[i], "--sip-trace"))
			opt.sip_trace = v;
		else
			usage();
	}
	if (opt.port <= 0 || opt.port > 65535 || opt.calls <= 0 ||
	    opt.calls > MAX_CALLS || opt.ramp < 0 || opt.ramp > 600 ||
	    opt.hold <= 0 || opt.hold > 600 || opt.rtp_base < 1024 ||
	    opt.rtp_base > 39000)
		usage();
	if (opt.max_s <= 0)
		opt.max_s = opt.ramp + opt.hold + 60;
	/* Two sockets a call, and a few more. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)(2 * opt.calls + 64)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	make_pattern();
	if (opt.sip_trace && !(trace = fopen(opt.sip_trace, "w"))) {
		perror(opt.sip_trace);
		return 2;
	}
	run_id = ((unsigned)getpid() << 12) ^ (unsigned)time(NULL);
	calls = calloc((size_t)opt.calls, sizeof *calls);
	lag_hist = calloc(LAG_HIST, sizeof *lag_hist);
	jit_hist = calloc(JIT_HIST, sizeof *jit_hist);
	arrivals = malloc(ARR_MAX * sizeof *arrivals);
	if (!calls || !lag_hist || !jit_hist)
		return 1;
	for (int i = 0; i < opt.calls; i++) {
		struct call *c = &calls[i];

		c->idx = i;
		c->rtp_fd = c->rtcp_fd = -1;
		snprintf(c->callid, sizeof c->callid, "dep-%x-%d@127.0.0.1",
			 run_id, i);
		snprintf(c->ftag, sizeof c->ftag, "f%x%d", run_id, i);
		c->ssrc = (uint32_t)(run_id * 2654435761u) ^ (uint32_t)i;
		c->tx_seq = (uint16_t)(i * 7919);
		c->tx_ts = (uint32_t)i * 104729u;
	}
	next_rtp_port = opt.rtp_base;
	target.sin_family = AF_INET;
	target.sin_port = htons((uint16_t)opt.port);
	target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	ep = epoll_create1(EPOLL_CLOEXEC);
	sip_fd = bind_udp(0, false);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (ep < 0 || sip_fd < 0 || tfd < 0) {
		perror("deposit_load: setup");
		return 1;
	}
	setsockopt(sip_fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof bufsz);
	setsockopt(sip_fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof bufsz);
	getsockname(sip_fd, (struct sockaddr *)&a, &al);
	sip_lport = ntohs(a.sin_port);
	ev.data.u64 = UINT64_MAX;
	epoll_ctl(ep, EPOLL_CTL_ADD, sip_fd, &ev);
	ev.data.u64 = UINT64_MAX - 1;
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
	timerfd_settime(tfd, 0, &its, NULL);

	sample_offset();
	t0 = now_ns();
	deadline = t0 + (uint64_t)(opt.max_s * 1e9);
	while (!stop_sig && finished < opt.calls) {
		struct epoll_event evs[256];
		int n = epoll_wait(ep, evs, 256, 50);
		uint64_t now;

		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			uint64_t u = evs[i].data.u64;

			if (u == UINT64_MAX) {
				for (int k = 0; k < 256; k++) {
					char buf[8192];
					ssize_t r = recv(sip_fd, buf, sizeof buf - 1, 0);

					if (r <= 0)
						break;
					buf[r] = '\0';
					on_sip(buf, (size_t)r);
				}
			} else if (u == UINT64_MAX - 1) {
				uint64_t exp;

				if (read(tfd, &exp, sizeof exp) < 0)
					continue;
			} else {
				struct call *c = &calls[u >> 2];

				if ((u & 3) == 1 && c->rtp_fd >= 0)
					on_rtp(c);
				else if ((u & 3) == 2 && c->rtcp_fd >= 0)
					on_rtcp(c);
			}
		}
		now = now_ns();
		run_wheel(now);
		if (now - last_hk >= 10 * MS) {
			last_hk = now;
			sample_offset();
			housekeeping(now);
		}
		if (now > deadline)
			break;
	}
	{
		double elapsed = (double)(now_ns() - t0) / 1e9;

		write_csv();
		summary(elapsed);
		if (stop_sig || finished < opt.calls)
			fprintf(stderr, "deposit_load: stopped with %d of %d calls "
				"finished (%s)\n", finished, opt.calls,
				stop_sig ? "signal" : "time limit");
	}
	for (int i = 0; i < opt.calls; i++) {
		close_media(&calls[i]);
		free(calls[i].dev);
	}
	if (trace)
		fclose(trace);
	close(sip_fd);
	close(tfd);
	close(ep);
	free(calls);
	free(lag_hist);
	free(jit_hist);
	free(arrivals);
	return 0;
}
