/* playout.h — the receive side of a call's audio: a fixed-delay playout
 * buffer indexed by RTP timestamp. Packets of any size (10-80 ms) go in
 * where their timestamp says, in any order; the media clock takes one
 * 20 ms frame out per tick, a fixed delay behind the newest data. Missing
 * audio comes out as silence. Pure: no I/O, no clock. */
#ifndef OPENUM_PLAYOUT_H
#define OPENUM_PLAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 1 s of 8 kHz audio; a power of two so a timestamp indexes it directly. */
#define PLAYOUT_SAMPLES 8192u

struct playout {
	int16_t pcm[PLAYOUT_SAMPLES];
	uint8_t have[PLAYOUT_SAMPLES];
	bool started;
	uint32_t ssrc;
	uint32_t read_ts;	/* timestamp of the next sample to deliver */
	uint32_t delay;		/* samples kept between arrival and delivery */
	uint64_t late, resyncs;	/* packets too late; restarts of the timeline */
};

/* delay_samples: how far behind the first packet delivery starts (it
 * absorbs reordering and a busy loop; nobody listens live). */
void playout_init(struct playout *p, uint32_t delay_samples);
void playout_reset(struct playout *p);
/* Stores n decoded samples that start at RTP timestamp ts from ssrc. A new
 * SSRC or a jump of more than about a second restarts the timeline. */
void playout_put(struct playout *p, uint32_t ssrc, uint32_t ts,
		 const int16_t *pcm, size_t n);
/* Takes the next n samples (silence where nothing arrived). */
void playout_get(struct playout *p, int16_t *out, size_t n);

#endif
