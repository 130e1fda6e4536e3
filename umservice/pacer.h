/* pacer.h — the RTP send clock of the UM service on a thread of its own.
 *
 * Why a thread: the event loop also reads every caller's audio, runs SIP and
 * sofia's timers; with a thousand calls one loop turn takes milliseconds and
 * packets sent from the loop leave that late. The pacer thread does nothing
 * but wake at each stream's due time (absolute, CLOCK_MONOTONIC, 20 ms
 * apart, no drift) and send: the loop's lateness no longer reaches the
 * wire.
 *
 * Split of work: the loop thread produces payloads (the next 20 ms of the
 * prompt, G.711-encoded) a few packets ahead into each stream's ring; the
 * pacer writes the RTP header (sequence, timestamp, SSRC, marker: it owns
 * the stream's struct rtp_tx once added) and sends. On hold a slot
 * advances the timestamp and sends nothing; a slot with nothing produced
 * (the loop more than PACE_DEPTH packets behind) sends silence. pace_flush() discards what was
 * produced but not sent (barge-in); the pacer skips those payloads without
 * spending their time slots or sequence numbers.
 *
 * Threads: pace_room/pace_slot/pace_commit/pace_flush/pace_pending are the
 * producer's (the loop thread), lock-free; pacer_add/remove/update and
 * pacer_tx take the pacer's lock briefly. */
#ifndef OPENUM_PACER_H
#define OPENUM_PACER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/rtp.h"

#define PACE_PTIME_NS 20000000ULL
#define PACE_PAYLOAD_MAX 160	/* 20 ms of G.711 */
#define PACE_RING 16		/* power of two, > 2 * PACE_DEPTH */
#define PACE_DEPTH 6		/* payloads produced ahead of their slot (120 ms) */
/* A pacer that wakes later than this skips the slots it missed rather
 * than sending them in a burst. */
#define PACE_CATCH_UP_NS (3 * PACE_PTIME_NS)
/* SCHED_FIFO priority of the pacer thread when allowed (1-99; low: above
 * every ordinary thread, below the kernel's own). */
#define PACE_RT_PRIORITY 10

struct pacer;

struct pace_stream {
	/* the ring: slots written by the producer before head moves */
	uint8_t payload[PACE_RING][PACE_PAYLOAD_MAX];
	uint16_t plen[PACE_RING];
	uint32_t pgen[PACE_RING];
	_Atomic uint32_t head;		/* produced (producer) */
	_Atomic uint32_t tail;		/* sent or skipped (pacer) */
	_Atomic uint32_t gen;		/* payloads of older generations are stale */
	uint32_t fresh_from;		/* producer: head at the last flush */
	uint32_t produce_gen;		/* producer: generation of new payloads */
	/* under the pacer's lock */
	int fd;
	struct sockaddr_storage dest;
	socklen_t dest_len;
	bool send;			/* a destination and not on hold */
	struct rtp_tx tx;
	unsigned phase;			/* its millisecond of the 20 ms cycle */
	uint8_t silence;		/* the codec's zero, for underruns */
	uint64_t sent, skipped_slots, underruns;
	struct pace_stream *prev, *next;
	bool listed;
};

int pacer_alloc(struct pacer **out, char **cause);
/* Every stream must have been removed. */
void pacer_free(struct pacer *p);

/* Starts sending s from fd, its first slot now. tx is taken over. */
void pacer_add(struct pacer *p, struct pace_stream *s, int fd,
	       const struct rtp_tx *tx);
/* After it returns the pacer never touches s again. */
void pacer_remove(struct pacer *p, struct pace_stream *s);
/* New destination, payload type or hold state (re-INVITE). dest NULL:
 * nothing is sent. */
void pacer_update(struct pacer *p, struct pace_stream *s,
		  const struct sockaddr *dest, socklen_t dest_len, int pt,
		  bool alaw);
/* A copy of the stream's sender state (RTCP sender reports). */
void pacer_tx(struct pacer *p, const struct pace_stream *s,
	      struct rtp_tx *out, uint64_t *sent);
/* Worst lateness of a wakeup so far (ms) and slots served, for benchmarks. */
void pacer_stats(struct pacer *p, double *max_late_ms, uint64_t *slots);

/* ---- producer side (lock-free) ----------------------------------------------- */

void pace_init(struct pace_stream *s);
/* How many payloads may be produced now (0..PACE_DEPTH). */
unsigned pace_room(const struct pace_stream *s);
/* Where the next payload goes, then commit its length. */
uint8_t *pace_slot(struct pace_stream *s);
void pace_commit(struct pace_stream *s, size_t len);
/* Drops what is produced and not yet sent: the payloads committed after
 * it replace those before, from pace_publish() on. Flush, produce the new
 * payloads, publish: the pacer never finds the ring empty in between. */
void pace_flush(struct pace_stream *s);
void pace_publish(struct pace_stream *s);
/* Payloads produced and not yet sent (or skipped). */
unsigned pace_pending(const struct pace_stream *s);

#endif
