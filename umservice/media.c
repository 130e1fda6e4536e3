/* media.c — per-call RTP sockets driven by one shared media clock.
 *
 * Why one clock: a timer per call costs a wakeup per call every 20 ms and
 * drifts with each timer's own rounding. The clock is a wheel of 20 one-
 * millisecond slots on an absolute schedule (slot j of cycle k is due at
 * t0 + k * 20 ms + j ms, from uv_hrtime): a call joins the slot of the
 * millisecond it starts in, so its first packet leaves at once, its packets
 * leave exactly 20 ms apart with no drift over minutes, and a thousand calls
 * are spread over twenty small bursts instead of one large one. A late
 * wakeup catches up at most a few cycles; beyond that the schedule skips.
 *
 * Sending: the clock here produces payloads (G.711 of the next 20 ms of
 * the play queue) a few packets ahead into the session's pacer ring;
 * pacer.c's thread stamps and sends them on an exact schedule, so a busy
 * loop delays nothing on the wire.
 *
 * Receiving: packets are decoded into a fixed-delay playout buffer keyed
 * by RTP timestamp (reordering, any packet size, gaps become silence); the
 * same clock pulls one 20 ms frame per tick out of it for the recorder. Telephone-events are handled on arrival.
 * Anything unexpected (source address, payload type, size) is counted and
 * dropped; nothing from the network reaches an assert. */
#define LOG_MODULE "media"
#include "umservice/media.h"
#include "common/log.h"
#include "common/netaddr.h"
#include "common/rtp.h"
#include "umservice/audio.h"
#include "umservice/pacer.h"
#include "umservice/playout.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>


#define PLAYQ_MAX 16
#define MEDIA_PLAYOUT_DELAY_MS 100

#define SLOTS MEDIA_PTIME_MS		/* one per millisecond of a cycle */
#define CATCH_UP_CYCLES 3

struct media_engine {
	uv_loop_t *loop;
	uv_timer_t clock;
	struct pacer *pacer;		/* the send clock (its own thread) */
	unsigned port_lo, port_hi, port_next;
	struct media *head;		/* sessions */
	size_t n;
	struct media *slot[SLOTS];	/* started sessions by phase */
	size_t slot_n[SLOTS];
	size_t running;			/* sessions started */
	uint64_t t0_ns;			/* clock origin */
	uint64_t next_ms;		/* next slot (ms since t0) not yet served */
	bool armed;
	double max_late_ms;
	uint64_t ticks;
};

struct media {
	struct media_engine *e;
	struct media *prev, *next;
	struct media *slot_next, *slot_prev;	/* in e->slot[phase] */
	unsigned phase;
	uint64_t start_ms;		/* clock ms of its first packet */
	struct media_handlers h;
	void *arg;
	int family;
	char local[INET6_ADDRSTRLEN];
	uint16_t port;
	uv_udp_t rtp, rtcp;
	int open_handles;
	bool closing, started, receiving, have_remote, hold;
	struct sockaddr_storage remote, remote_rtcp;
	int codec_pt, te_pt;
	bool alaw;
	struct rtp_tx tx;
	struct rtp_dtmf_rx dtmf;
	struct rtp_rx_stats rxst;
	struct playout *po;		/* what the caller says, for recording */
	struct audio_buf *playq[PLAYQ_MAX];
	size_t playq_n, play_pos;
	bool play_notify;
	/* Sending: payloads go to the pacer's ring a few packets ahead; the
	 * queue's end is reported once the pacer has sent its last packet. */
	struct pace_stream pace;
	bool end_pending;
	uint32_t audio_end;		/* ring index just past the queue's end */
	uint64_t last_rtcp_ms;
	struct media_stats st;
	uint8_t rxbuf[RTP_PKT_MAX + 64];
	bool rx_busy;
};

/* --- the clock ------------------------------------------------------------- */

static void tick_session(struct media *m);
static void clock_cb(uv_timer_t *t);

static uint64_t elapsed_ms(const struct media_engine *e)
{
	return (uv_hrtime() - e->t0_ns) / 1000000ULL;
}

/* Arms the timer for the next slot that has sessions. */
static void clock_arm(struct media_engine *e)
{
	uint64_t now = elapsed_ms(e), due = 0;
	bool found = false;

	if (!e->running) {
		uv_timer_stop(&e->clock);
		e->armed = false;
		return;
	}
	for (unsigned k = 0; k < SLOTS; k++) {
		uint64_t ms = e->next_ms + k;

		if (e->slot_n[ms % SLOTS]) {
			due = ms;
			found = true;
			break;
		}
	}
	if (!found)
		return;
	uv_update_time(e->loop);	/* we may be inside a sofia callback */
	uv_timer_start(&e->clock, clock_cb, due > now ? due - now : 0, 0);
	e->armed = true;
}

static void clock_cb(uv_timer_t *t)
{
	struct media_engine *e = t->data;
	uint64_t now = elapsed_ms(e);

	/* Fell behind by more than a few cycles: skip ahead rather than
	 * send a burst of stale packets to every call. */
	if (now > e->next_ms + CATCH_UP_CYCLES * SLOTS)
		e->next_ms = now - CATCH_UP_CYCLES * SLOTS;
	while (e->next_ms <= now) {
		unsigned j = (unsigned)(e->next_ms % SLOTS);
		double late = (double)(now - e->next_ms);

		if (e->slot_n[j]) {
			if (late > e->max_late_ms)
				e->max_late_ms = late;
			for (struct media *m = e->slot[j], *n; m; m = n) {
				n = m->slot_next;
				/* Its first packet went at start; a late clock
				 * must not send that slot a second time. */
				if (!m->closing && m->start_ms < e->next_ms)
					tick_session(m);
			}
			e->ticks++;
		}
		e->next_ms++;
	}
	clock_arm(e);
}

static void slot_add(struct media *m)
{
	struct media_engine *e = m->e;
	uint64_t now;

	if (!e->running++) {
		e->t0_ns = uv_hrtime();
		e->next_ms = 0;
	}
	now = elapsed_ms(e);
	/* Its first packet goes now (see media_start); the next one in this
	 * slot of the next cycle. */
	m->start_ms = now;
	m->phase = (unsigned)(now % SLOTS);
	m->slot_prev = NULL;
	m->slot_next = e->slot[m->phase];
	if (m->slot_next)
		m->slot_next->slot_prev = m;
	e->slot[m->phase] = m;
	e->slot_n[m->phase]++;
	clock_arm(e);
}

static void slot_remove(struct media *m)
{
	struct media_engine *e = m->e;

	if (m->slot_prev)
		m->slot_prev->slot_next = m->slot_next;
	else
		e->slot[m->phase] = m->slot_next;
	if (m->slot_next)
		m->slot_next->slot_prev = m->slot_prev;
	e->slot_n[m->phase]--;
	if (--e->running == 0) {
		uv_timer_stop(&e->clock);
		e->armed = false;
	}
}

/* Creates the engine; RTP ports are taken from [port_lo, port_hi]. */
int media_engine_alloc(struct media_engine **out, uv_loop_t *loop,
		       unsigned port_lo, unsigned port_hi)
{
	struct media_engine *e;

	if (port_lo < 1024 || port_hi > 65534 || port_lo + 2 > port_hi)
		return EINVAL;
	e = calloc(1, sizeof *e);
	if (!e)
		return ENOMEM;
	e->loop = loop;
	e->port_lo = port_lo + (port_lo & 1);	/* RTP on even ports */
	e->port_hi = port_hi;
	e->port_next = e->port_lo;
	{
		char *cause = NULL;
		int err = pacer_alloc(&e->pacer, &cause);

		if (err) {
			log_error("%s", cause ? cause : strerror(err));
			free(cause);
			free(e);
			return err;
		}
	}
	uv_timer_init(loop, &e->clock);
	e->clock.data = e;
	*out = e;
	return 0;
}

static void engine_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Frees the engine; every session must have been closed. */
void media_engine_free(struct media_engine *e)
{
	if (!e)
		return;
	pacer_free(e->pacer);
	e->pacer = NULL;
	uv_close((uv_handle_t *)&e->clock, engine_closed);
}

/* Sessions open. */
size_t media_engine_active(const struct media_engine *e)
{
	return e->n;
}

/* The media clock's worst lateness and how many ticks it served. */
void media_engine_tick_stats(const struct media_engine *e, double *max_late_ms,
			     uint64_t *ticks)
{
	/* What reaches the wire is the pacer's lateness, not the loop's. */
	pacer_stats(e->pacer, max_late_ms, ticks);
}

/* --- sending ----------------------------------------------------------------- */

static void send_to(struct media *m, uv_udp_t *sock,
		    const struct sockaddr_storage *to, const uint8_t *buf,
		    size_t len)
{
	uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);

	/* try_send: no allocation, no callback; a full socket buffer drops
	 * this one packet, which is what real time wants anyway. */
	uv_udp_try_send(sock, &b, 1, (const struct sockaddr *)to);
	(void)m;
}

static void next_frame(struct media *m, int16_t *pcm)
{
	size_t got = 0;

	while (got < MEDIA_FRAME_SAMPLES && m->playq_n > 0) {
		struct audio_buf *b = m->playq[0];
		size_t len = audio_buf_samples(b), take = len - m->play_pos;

		if (take > MEDIA_FRAME_SAMPLES - got)
			take = MEDIA_FRAME_SAMPLES - got;
		memcpy(pcm + got, audio_buf_pcm(b) + m->play_pos,
		       take * sizeof *pcm);
		got += take;
		m->play_pos += take;
		if (m->play_pos >= len) {
			audio_buf_unref(b);
			memmove(m->playq, m->playq + 1,
				(m->playq_n - 1) * sizeof m->playq[0]);
			m->playq_n--;
			m->play_pos = 0;
		}
	}
	if (got < MEDIA_FRAME_SAMPLES)
		memset(pcm + got, 0, (MEDIA_FRAME_SAMPLES - got) * sizeof *pcm);
}

static uint64_t ntp_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)(ts.tv_sec + 2208988800UL) << 32) |
	       (uint64_t)(((double)ts.tv_nsec / 1e9) * 4294967296.0);
}

static void send_rtcp(struct media *m)
{
	uint8_t buf[512];
	size_t len = 0;
	char cname[96];

	snprintf(cname, sizeof cname, "openum@%s", m->local);
	/* The sender's counts live with the pacer. */
	pacer_tx(m->e->pacer, &m->pace, &m->tx, &m->st.sent);
	if (rtcp_build_report(buf, sizeof buf, &m->tx, &m->rxst, cname, ntp_now(),
			      m->tx.ts, &len) == 0) {
		send_to(m, &m->rtcp, &m->remote_rtcp, buf, len);
		m->st.rtcp_sent++;
	}
}

/* Delivers the next 20 ms of what the caller said to the recorder. */
static void receive_frame(struct media *m)
{
	int16_t frame[MEDIA_FRAME_SAMPLES];

	/* Nobody listens (the greeting is playing): nothing to deliver. */
	if (!m->receiving)
		return;
	playout_get(m->po, frame, MEDIA_FRAME_SAMPLES);
	if (m->h.frame_h)
		m->h.frame_h(m->arg, frame, MEDIA_FRAME_SAMPLES);
}

/* Tops the pacer's ring up with the next payloads of the play queue
 * (silence when it is empty), encoded for the call's codec. */
static void produce(struct media *m)
{
	for (unsigned room = pace_room(&m->pace); room > 0; room--) {
		int16_t pcm[MEDIA_FRAME_SAMPLES];
		uint8_t *slot = pace_slot(&m->pace);
		bool was_playing = m->playq_n > 0;

		next_frame(m, pcm);
		if (m->alaw)
			audio_alaw_encode_buf(slot, pcm, MEDIA_FRAME_SAMPLES);
		else
			audio_ulaw_encode_buf(slot, pcm, MEDIA_FRAME_SAMPLES);
		pace_commit(&m->pace, MEDIA_FRAME_SAMPLES);
		if (was_playing && m->playq_n == 0 && m->play_notify) {
			m->end_pending = true;
			m->audio_end = atomic_load_explicit(&m->pace.head,
							    memory_order_relaxed);
		}
	}
	pace_publish(&m->pace);
}

static void tick_session(struct media *m)
{
	produce(m);
	if (m->have_remote) {
		uint64_t now = uv_now(m->e->loop);

		if (now - m->last_rtcp_ms >= MEDIA_RTCP_INTERVAL_MS) {
			m->last_rtcp_ms = now;
			send_rtcp(m);
		}
	}
	receive_frame(m);
	/* The queue's last packet has left: play_done. */
	if (m->end_pending && !m->closing &&
	    (int32_t)(atomic_load_explicit(&m->pace.tail, memory_order_acquire) -
		      m->audio_end) >= 0) {
		m->end_pending = false;
		if (m->play_notify && m->playq_n == 0) {
			m->play_notify = false;
			if (m->h.play_done_h)
				m->h.play_done_h(m->arg);
		}
	}
}

/* --- receiving ----------------------------------------------------------------- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct media *m = h->data;

	(void)suggested;
	if (m->rx_busy) {
		buf->base = NULL;
		buf->len = 0;
		return;
	}
	m->rx_busy = true;
	buf->base = (char *)m->rxbuf;
	buf->len = sizeof m->rxbuf;
}

static bool from_remote(const struct media *m, const struct sockaddr *src)
{
	return m->have_remote &&
	       netaddr_same_host(src, (const struct sockaddr *)&m->remote);
}

static void rtp_recv_cb(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
			const struct sockaddr *src, unsigned flags)
{
	struct media *m = h->data;
	struct rtp_pkt p;
	char key;
	int err;

	m->rx_busy = false;
	if (nread <= 0 || !src || m->closing)
		return;
	if (flags & UV_UDP_PARTIAL) {
		m->st.oversized++;
		return;
	}
	if (!from_remote(m, src)) {
		m->st.bad_source++;
		return;
	}
	err = rtp_parse(&p, (const uint8_t *)buf->base, (size_t)nread);
	if (err) {
		if (err == E2BIG)
			m->st.oversized++;
		else
			m->st.malformed++;
		return;
	}
	if (m->te_pt >= 0 && p.hdr.pt == m->te_pt) {
		if (rtp_dtmf_rx_feed(&m->dtmf, &p, &key)) {
			m->st.dtmf++;
			if (m->h.dtmf_h)
				m->h.dtmf_h(m->arg, key);
		}
		return;
	}
	if (p.hdr.pt != m->codec_pt || p.plen == 0 ||
	    p.plen > 4 * MEDIA_FRAME_SAMPLES) {
		m->st.bad_pt++;
		return;
	}
	m->st.received++;
	rtp_rx_stats_update(&m->rxst, &p, (uint32_t)(uv_now(m->e->loop) * 8));
	if (!m->receiving)
		return;
	{
		int16_t pcm[4 * MEDIA_FRAME_SAMPLES];

		/* G.711: a byte a sample (plen is bounded above). */
		if (m->alaw)
			audio_alaw_decode_buf(pcm, p.payload, p.plen);
		else
			audio_ulaw_decode_buf(pcm, p.payload, p.plen);
		playout_put(m->po, p.hdr.ssrc, p.hdr.ts, pcm, p.plen);
	}
}

static void rtcp_recv_cb(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
			 const struct sockaddr *src, unsigned flags)
{
	struct media *m = h->data;
	struct rtcp_info info;

	m->rx_busy = false;
	if (nread <= 0 || !src || m->closing)
		return;
	if ((flags & UV_UDP_PARTIAL) || !from_remote(m, src)) {
		m->st.bad_source++;
		return;
	}
	if (rtcp_parse(&info, (const uint8_t *)buf->base, (size_t)nread) != 0) {
		m->st.malformed++;
		return;
	}
	m->st.rtcp_received++;
	if (info.sr)
		rtp_rx_stats_sr(&m->rxst, info.ntp, ntp_now());
}

/* --- sessions ------------------------------------------------------------------ */

static int fill_addr(struct sockaddr_storage *ss, int family, const char *host,
		     unsigned port)
{
	memset(ss, 0, sizeof *ss);
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		return inet_pton(AF_INET6, host, &s6->sin6_addr) == 1 ? 0 : EINVAL;
	}
	{
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		return inet_pton(AF_INET, host, &s4->sin_addr) == 1 ? 0 : EINVAL;
	}
}

static int bind_one(int family, const struct sockaddr_storage *a)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;

	if (fd < 0)
		return -errno;
	/* An IPv6 media socket carries IPv6 only: an IPv4 peer of a dual
	 * stack host must never show up as ::ffff:a.b.c.d. */
	if (family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) {
		int err = errno;

		close(fd);
		return -err;
	}
	if (bind(fd, (const struct sockaddr *)a,
		 family == AF_INET6 ? sizeof(struct sockaddr_in6)
				    : sizeof(struct sockaddr_in)) != 0) {
		int err = errno;

		close(fd);
		return -err;
	}
	return fd;
}

/* Finds a free even/odd port pair with plain sockets first, so that a
 * taken port never leaves a half-initialised libuv handle behind. */
static int bind_pair(struct media *m)
{
	struct media_engine *e = m->e;
	unsigned span = (e->port_hi - e->port_lo) / 2 + 1;

	for (unsigned tries = 0; tries < span; tries++) {
		unsigned p = e->port_next;
		struct sockaddr_storage a, b;
		int f1, f2;

		e->port_next += 2;
		if (e->port_next + 1 > e->port_hi)
			e->port_next = e->port_lo;
		if (fill_addr(&a, m->family, m->local, p) ||
		    fill_addr(&b, m->family, m->local, p + 1))
			return EINVAL;
		f1 = bind_one(m->family, &a);
		if (f1 < 0) {
			if (f1 == -EADDRINUSE || f1 == -EACCES)
				continue;
			return -f1;
		}
		f2 = bind_one(m->family, &b);
		if (f2 < 0) {
			close(f1);
			if (f2 == -EADDRINUSE || f2 == -EACCES)
				continue;
			return -f2;
		}
		uv_udp_init(e->loop, &m->rtp);
		uv_udp_init(e->loop, &m->rtcp);
		uv_udp_open(&m->rtp, f1);
		uv_udp_open(&m->rtcp, f2);
		m->port = (uint16_t)p;
		return 0;
	}
	return EADDRINUSE;
}

/* Opens the sockets of a new call. */
int media_open(struct media **out, struct media_engine *e, int family,
	       const char *local_addr, const struct media_handlers *h,
	       void *arg, char **cause)
{
	struct media *m;
	int err;

	if (family != AF_INET && family != AF_INET6)
		return EINVAL;
	m = calloc(1, sizeof *m);
	if (!m)
		return ENOMEM;
	m->e = e;
	m->h = *h;
	m->arg = arg;
	pace_init(&m->pace);
	m->family = family;
	m->codec_pt = -1;
	m->te_pt = -1;
	snprintf(m->local, sizeof m->local, "%s", local_addr);
	err = bind_pair(m);
	if (err) {
		if (cause && asprintf(cause, "no free RTP port pair on %s in %u-%u: %s",
				      local_addr, e->port_lo, e->port_hi,
				      strerror(err)) < 0)
			*cause = NULL;
		free(m);
		return err;
	}
	m->rtp.data = m->rtcp.data = m;
	m->open_handles = 2;
	m->po = malloc(sizeof *m->po);
	if (!m->po || rtp_tx_init(&m->tx, 0, 8000) != 0) {
		media_close(m);
		return ENOMEM;
	}
	/* Nobody listens to a recording live: 100 ms of delay costs nothing
	 * and absorbs reordering and a busy loop (libuv runs overdue media
	 * ticks before it reads the sockets). */
	playout_init(m->po, MEDIA_PLAYOUT_DELAY_MS * 8);
	rtp_rx_stats_init(&m->rxst, -1);
	uv_udp_recv_start(&m->rtp, alloc_cb, rtp_recv_cb);
	uv_udp_recv_start(&m->rtcp, alloc_cb, rtcp_recv_cb);
	m->next = e->head;
	if (e->head)
		e->head->prev = m;
	e->head = m;
	e->n++;
	*out = m;
	return 0;
}

/* The RTP socket's address and port. */
void media_local(const struct media *m, const char **addr, uint16_t *port,
		 int *family)
{
	*addr = m->local;
	*port = m->port;
	*family = m->family;
}

/* Applies the negotiated remote address, codec and telephone-event type. */
int media_set_remote(struct media *m, const struct sdp_choice *c)
{
	struct sockaddr_storage r, rc;
	bool unspecified;

	if (c->family != m->family)
		return EAFNOSUPPORT;
	unspecified = !strcmp(c->addr, "0.0.0.0") || !strcmp(c->addr, "::");
	if (!unspecified && (fill_addr(&r, c->family, c->addr, c->port) ||
			     fill_addr(&rc, c->family, c->addr, c->port + 1u)))
		return EINVAL;
	if (!unspecified) {
		m->remote = r;
		m->remote_rtcp = rc;
		m->have_remote = c->port != 0;
	}
	m->hold = c->hold || unspecified;
	m->alaw = c->codec == SDP_CODEC_PCMA;
	m->codec_pt = c->pt;
	if (m->tx.pt != c->pt) {
		m->tx.pt = c->pt;
	}
	if (c->te_pt != m->te_pt) {
		m->te_pt = c->te_pt;
		rtp_dtmf_rx_init(&m->dtmf, (uint8_t)(c->te_pt >= 0 ? c->te_pt : 101));
	}
	pacer_update(m->e->pacer, &m->pace,
		     m->have_remote && !m->hold ? (struct sockaddr *)&m->remote
						: NULL,
		     m->family == AF_INET6 ? sizeof(struct sockaddr_in6)
					   : sizeof(struct sockaddr_in),
		     c->pt, m->alaw);
	return 0;
}

/* Starts the call's media on the clock. */
void media_start(struct media *m)
{
	if (m->started || m->closing)
		return;
	m->started = true;
	m->last_rtcp_ms = uv_now(m->e->loop);
	slot_add(m);
	produce(m);
	/* The pacer's first slot is now: the first packet leaves at once. */
	{
		uv_os_fd_t fd = -1;

		uv_fileno((uv_handle_t *)&m->rtp, &fd);
		pacer_add(m->e->pacer, &m->pace, fd, &m->tx);
	}
}

/* Queues buf to play from sample offset on (offset only for the first). */
static int enqueue_audio(struct media *m, struct audio_buf *buf, size_t offset)
{
	if (m->closing)
		return ECANCELED;
	if (m->playq_n >= PLAYQ_MAX)
		return ENOSPC;
	m->playq[m->playq_n++] = audio_buf_ref(buf);
	if (m->playq_n == 1)
		m->play_pos = offset;
	m->play_notify = true;
	if (m->playq_n == 1 && m->started) {
		/* Nothing was playing: the silence already produced goes, and
		 * this starts at the next slot. */
		pace_flush(&m->pace);
		m->end_pending = false;
		produce(m);
	}
	return 0;
}

/* Queues audio to play. */
int media_play(struct media *m, struct audio_buf *buf)
{
	return enqueue_audio(m, buf, 0);
}

/* Plays buf from sample offset on, alone: EBUSY if something is queued. */
int media_play_at(struct media *m, struct audio_buf *buf, size_t offset)
{
	if (m->playq_n > 0)
		return EBUSY;
	if (offset >= audio_buf_samples(buf))
		return ERANGE;
	return enqueue_audio(m, buf, offset);
}

/* The buffer playing now and how far into it the clock has sent. */
struct audio_buf *media_play_position(const struct media *m, size_t *pos)
{
	if (m->playq_n == 0)
		return NULL;
	if (pos)
		*pos = m->play_pos;
	return m->playq[0];
}

/* Drops everything queued. */
void media_play_stop(struct media *m)
{
	for (size_t i = 0; i < m->playq_n; i++)
		audio_buf_unref(m->playq[i]);
	m->playq_n = 0;
	m->play_pos = 0;
	m->play_notify = false;
	m->end_pending = false;
	if (m->started && !m->closing) {
		pace_flush(&m->pace);	/* what was produced stops too */
		produce(m);
	}
}

/* Whether anything is still queued. */
bool media_playing(const struct media *m)
{
	return m->playq_n > 0;
}

/* Turns delivery of received frames on or off. */
void media_receive(struct media *m, bool on)
{
	if (on && !m->receiving && m->po)
		playout_reset(m->po);
	m->receiving = on;
}

/* The call's counters. */
const struct media_stats *media_stats(const struct media *m)
{
	return &m->st;
}

static void handle_closed(uv_handle_t *h)
{
	struct media *m = h->data;

	if (--m->open_handles == 0)
		free(m);
}

/* Closes the call's sockets; frees once both are closed. */
void media_close(struct media *m)
{
	struct media_engine *e;

	if (!m || m->closing)
		return;
	e = m->e;
	m->closing = true;
	media_play_stop(m);
	pacer_remove(e->pacer, &m->pace);
	if (m->started)
		slot_remove(m);
	if (m->prev)
		m->prev->next = m->next;
	else
		e->head = m->next;
	if (m->next)
		m->next->prev = m->prev;
	e->n--;
	free(m->po);
	m->po = NULL;
	uv_close((uv_handle_t *)&m->rtp, handle_closed);
	uv_close((uv_handle_t *)&m->rtcp, handle_closed);
}

/* Asks the kernel's routing which local address reaches remote. */
int media_local_for(int family, const char *remote, char *out, size_t len)
{
	struct sockaddr_storage ss, me;
	int err;

	if (fill_addr(&ss, family, remote, 9))
		return EINVAL;
	err = netaddr_route_source(&ss, &me);
	if (!err)
		netaddr_host((struct sockaddr *)&me, out, len);
	return err;
}
