/* pacer.c — see pacer.h.
 *
 * The schedule is a wheel of 20 one-millisecond slots (slot j of cycle k is
 * due at t0 + k * 20 ms + j ms): a stream joins the slot after the
 * millisecond it is added in and stays there, so a wakeup serves exactly
 * the streams that are due (a thousand calls: fifty per wakeup, a thousand
 * wakeups a second) instead of scanning them all. The thread sleeps on a
 * condition variable (CLOCK_MONOTONIC) until the next slot that has
 * streams; adding a stream signals it. Its timer slack is 1 µs so that the
 * kernel does not round the wakeups. Everything is under one mutex. */
#define LOG_MODULE "pacer"
#include "umservice/pacer.h"
#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#define SLOTS 20		/* one per millisecond of a 20 ms cycle */
#define SLOT_NS 1000000ULL

struct pacer {
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	struct pace_stream *slot[SLOTS];
	size_t slot_n[SLOTS];
	size_t n;
	uint64_t t0_ns;		/* the wheel's origin */
	uint64_t next_ms;	/* next slot (ms since t0) not yet served */
	uint64_t max_late_ns, slots, late1, late2;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- producer side ------------------------------------------------------------ */

void pace_init(struct pace_stream *s)
{
	memset(s, 0, sizeof *s);
	s->fd = -1;
	atomic_init(&s->head, 0);
	atomic_init(&s->tail, 0);
	atomic_init(&s->gen, 0);
}

unsigned pace_room(const struct pace_stream *s)
{
	uint32_t head = atomic_load_explicit(&s->head, memory_order_relaxed);
	uint32_t tail = atomic_load_explicit(&s->tail, memory_order_acquire);
	/* Fresh payloads start at the later of tail and the last flush. */
	uint32_t from = (int32_t)(s->fresh_from - tail) > 0 ? s->fresh_from : tail;
	uint32_t fresh = head - from, used = head - tail;

	/* Stale payloads still in the ring take room but not depth. */
	if (fresh >= PACE_DEPTH || used >= PACE_RING)
		return 0;
	return PACE_DEPTH - fresh < PACE_RING - used ? PACE_DEPTH - fresh
						      : PACE_RING - used;
}

uint8_t *pace_slot(struct pace_stream *s)
{
	uint32_t head = atomic_load_explicit(&s->head, memory_order_relaxed);

	return s->payload[head % PACE_RING];
}

void pace_commit(struct pace_stream *s, size_t len)
{
	uint32_t head = atomic_load_explicit(&s->head, memory_order_relaxed);

	s->plen[head % PACE_RING] = (uint16_t)(len > PACE_PAYLOAD_MAX
					       ? PACE_PAYLOAD_MAX : len);
	s->pgen[head % PACE_RING] = s->produce_gen;
	atomic_store_explicit(&s->head, head + 1, memory_order_release);
}

void pace_flush(struct pace_stream *s)
{
	s->produce_gen++;
	s->fresh_from = atomic_load_explicit(&s->head, memory_order_relaxed);
}

void pace_publish(struct pace_stream *s)
{
	atomic_store_explicit(&s->gen, s->produce_gen, memory_order_release);
}

unsigned pace_pending(const struct pace_stream *s)
{
	return atomic_load_explicit(&s->head, memory_order_relaxed) -
	       atomic_load_explicit(&s->tail, memory_order_acquire);
}

/* ---- the thread ------------------------------------------------------------------ */

/* Serves one due slot of s: the next fresh payload, if any. */
static void serve(struct pace_stream *s)
{
	uint32_t tail = atomic_load_explicit(&s->tail, memory_order_relaxed);
	uint32_t head = atomic_load_explicit(&s->head, memory_order_acquire);
	uint32_t gen = atomic_load_explicit(&s->gen, memory_order_acquire);
	uint8_t pkt[RTP_HDR_LEN + PACE_PAYLOAD_MAX + 16];
	size_t len = 0;

	/* Stale payloads (flushed) cost neither time nor sequence numbers;
	 * payloads newer than the published generation are already valid
	 * (they were written before it was published). */
	while (tail != head && (int32_t)(s->pgen[tail % PACE_RING] - gen) < 0)
		tail++;
	if (!s->send) {
		if (tail != head)
			tail++;	/* on hold: produced audio is dropped */
		atomic_store_explicit(&s->tail, tail, memory_order_release);
		rtp_tx_skip(&s->tx, s->tx.spp);
		s->skipped_slots++;
		return;
	}
	if (tail == head) {
		/* The loop is far behind: silence keeps the stream going (the
		 * prompt resumes a slot later, as a late clock would have it). */
		uint8_t silence[PACE_PAYLOAD_MAX];

		memset(silence, s->silence, sizeof silence);
		s->underruns++;
		if (rtp_tx_next(&s->tx, pkt, sizeof pkt, silence, sizeof silence,
				false, &len) == 0 &&
		    sendto(s->fd, pkt, len, MSG_DONTWAIT,
			   (const struct sockaddr *)&s->dest, s->dest_len) >= 0)
			s->sent++;
		atomic_store_explicit(&s->tail, tail, memory_order_release);
		return;
	}
	if (rtp_tx_next(&s->tx, pkt, sizeof pkt, s->payload[tail % PACE_RING],
			s->plen[tail % PACE_RING], false, &len) == 0) {
		/* A full socket buffer drops this packet: real time. */
		if (sendto(s->fd, pkt, len, MSG_DONTWAIT,
			   (const struct sockaddr *)&s->dest, s->dest_len) >= 0)
			s->sent++;
	}
	atomic_store_explicit(&s->tail, tail + 1, memory_order_release);
}

/* The time of the next slot that has streams, or UINT64_MAX. */
static uint64_t next_due(const struct pacer *p)
{
	for (unsigned k = 0; k < SLOTS; k++) {
		uint64_t ms = p->next_ms + k;

		if (p->slot_n[ms % SLOTS])
			return p->t0_ns + ms * SLOT_NS;
	}
	return UINT64_MAX;
}

static void *run(void *arg)
{
	struct pacer *p = arg;

	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		uint64_t now = mono_ns(), now_ms, due;

		now_ms = (now - p->t0_ns) / SLOT_NS;
		/* Far behind (a stopped machine): resume now rather than
		 * burst the missed cycles; the streams' timelines go on. */
		if (p->n && now_ms > p->next_ms + PACE_CATCH_UP_NS / SLOT_NS)
			p->next_ms = now_ms - PACE_CATCH_UP_NS / SLOT_NS;
		while (p->n && p->next_ms <= now_ms) {
			unsigned j = (unsigned)(p->next_ms % SLOTS);
			uint64_t late = now - (p->t0_ns + p->next_ms * SLOT_NS);

			if (p->slot_n[j]) {
				if (late > p->max_late_ns)
					p->max_late_ns = late;
				p->late1 += late > 1000000;
				p->late2 += late > 2000000;
				for (struct pace_stream *s = p->slot[j]; s; s = s->next)
					serve(s);
				p->slots++;
			}
			p->next_ms++;
		}
		due = next_due(p);
		if (due == UINT64_MAX) {
			pthread_cond_wait(&p->cv, &p->mu);
		} else {
			struct timespec ts = {
				.tv_sec = (time_t)(due / 1000000000ULL),
				.tv_nsec = (long)(due % 1000000000ULL),
			};

			pthread_cond_timedwait(&p->cv, &p->mu, &ts);
		}
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int pacer_alloc(struct pacer **out, char **cause)
{
	struct pacer *p = calloc(1, sizeof *p);
	pthread_condattr_t ca;
	sigset_t all, old;
	int err;

	if (!p)
		return ENOMEM;
	{
		/* Priority inheritance: the loop thread holding the lock for a
		 * moment must not keep the real-time pacer waiting while
		 * ordinary threads run. */
		pthread_mutexattr_t ma;

		pthread_mutexattr_init(&ma);
		pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT);
		pthread_mutex_init(&p->mu, &ma);
		pthread_mutexattr_destroy(&ma);
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	/* signals stay with the loop thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&p->thread, NULL, run, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		if (cause && asprintf(cause, "cannot start the RTP pacer: %s",
				      strerror(err)) < 0)
			*cause = NULL;
		pthread_cond_destroy(&p->cv);
		pthread_mutex_destroy(&p->mu);
		free(p);
		return err;
	}
	pthread_setname_np(p->thread, "rtp-pacer");
	p->started = true;
	/* Real-time priority, as media servers run their timing threads: on
	 * two busy cores an ordinary thread can wait milliseconds for a CPU
	 * after its wakeup, and that wait is send jitter. The thread sleeps
	 * between slots and does a few microseconds of work per packet, so it
	 * cannot starve the machine. Without the privilege it runs as an
	 * ordinary thread, and says so. */
	{
		struct sched_param sp = {.sched_priority = PACE_RT_PRIORITY};
		int rc = pthread_setschedparam(p->thread, SCHED_FIFO, &sp);

		if (rc)
			log_notice("RTP pacer without real-time priority (%s): "
				   "send timing depends on the load",
				   strerror(rc));
		else
			log_info("RTP pacer at real-time priority %d (SCHED_FIFO)",
				 PACE_RT_PRIORITY);
	}
	*out = p;
	return 0;
}

void pacer_free(struct pacer *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (p->started)
		pthread_join(p->thread, NULL);
	if (p->n)
		log_error("pacer freed with %zu streams still listed", p->n);
	if (p->slots)
		log_info("RTP pacer: %llu slots served, latest wakeup %.3f ms "
			 "after its slot; wakeups > 1 ms late: %llu, > 2 ms: %llu",
			 (unsigned long long)p->slots,
			 (double)p->max_late_ns / 1e6,
			 (unsigned long long)p->late1, (unsigned long long)p->late2);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

void pacer_add(struct pacer *p, struct pace_stream *s, int fd,
	       const struct rtp_tx *tx)
{
	pthread_mutex_lock(&p->mu);
	if (!s->listed) {
		uint64_t now = mono_ns(), ms;

		if (p->n == 0) {
			/* A new wheel: its first slot is now. */
			p->t0_ns = now;
			p->next_ms = 0;
		}
		/* The first slot not yet served: within a millisecond. */
		ms = (now - p->t0_ns) / SLOT_NS + 1;
		if (ms < p->next_ms)
			ms = p->next_ms;
		s->fd = fd;
		s->tx = *tx;
		s->phase = (unsigned)(ms % SLOTS);
		s->prev = NULL;
		s->next = p->slot[s->phase];
		if (s->next)
			s->next->prev = s;
		p->slot[s->phase] = s;
		p->slot_n[s->phase]++;
		s->listed = true;
		p->n++;
		pthread_cond_signal(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
}

void pacer_remove(struct pacer *p, struct pace_stream *s)
{
	pthread_mutex_lock(&p->mu);
	if (s->listed) {
		if (s->prev)
			s->prev->next = s->next;
		else
			p->slot[s->phase] = s->next;
		if (s->next)
			s->next->prev = s->prev;
		s->prev = s->next = NULL;
		s->listed = false;
		p->slot_n[s->phase]--;
		p->n--;
	}
	pthread_mutex_unlock(&p->mu);
}

void pacer_update(struct pacer *p, struct pace_stream *s,
		  const struct sockaddr *dest, socklen_t dest_len, int pt,
		  bool alaw)
{
	if (dest_len > sizeof s->dest)
		dest = NULL;
	pthread_mutex_lock(&p->mu);
	if (dest) {
		memset(&s->dest, 0, sizeof s->dest);
		memcpy(&s->dest, dest, dest_len);
		s->dest_len = dest_len;
	}
	s->send = dest != NULL;
	if (pt >= 0 && pt < 128)
		s->tx.pt = (uint8_t)pt;
	s->silence = alaw ? 0xD5 : 0xFF;	/* G.711 zero */
	pthread_mutex_unlock(&p->mu);
}

void pacer_tx(struct pacer *p, const struct pace_stream *s, struct rtp_tx *out,
	      uint64_t *sent)
{
	pthread_mutex_lock(&p->mu);
	*out = s->tx;
	if (sent)
		*sent = s->sent;
	pthread_mutex_unlock(&p->mu);
}

void pacer_stats(struct pacer *p, double *max_late_ms, uint64_t *slots)
{
	pthread_mutex_lock(&p->mu);
	*max_late_ms = (double)p->max_late_ns / 1e6;
	*slots = p->slots;
	pthread_mutex_unlock(&p->mu);
}
