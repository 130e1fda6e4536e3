/* playout.c — fixed-delay playout by RTP timestamp.
 *
 * Why not an adaptive jitter buffer: a recording is not listened to live,
 * so there is nothing to gain from a small delay and a lot to lose from
 * adapting it: speex's buffer opens its delay by inserting silence into
 * the middle of what the caller says. A fixed 100 ms never does; audio is
 * only missing when it really was lost or came more than 100 ms late. */
#include "umservice/playout.h"

#include <string.h>

#define MASK (PLAYOUT_SAMPLES - 1u)
/* Beyond this distance ahead of the read point a packet restarts the
 * timeline (a new stream, or a gateway's timestamp jump). */
#define MAX_AHEAD (PLAYOUT_SAMPLES / 2u)

/* Initialises an empty buffer. */
void playout_init(struct playout *p, uint32_t delay_samples)
{
	memset(p, 0, sizeof *p);
	p->delay = delay_samples < MAX_AHEAD / 2 ? delay_samples : MAX_AHEAD / 2;
}

/* Forgets everything; the next packet starts a new timeline. */
void playout_reset(struct playout *p)
{
	memset(p->have, 0, sizeof p->have);
	p->started = false;
}

static void restart(struct playout *p, uint32_t ssrc, uint32_t ts)
{
	if (p->started)
		p->resyncs++;
	memset(p->have, 0, sizeof p->have);
	p->started = true;
	p->ssrc = ssrc;
	p->read_ts = ts - p->delay;
}

/* See the header. */
void playout_put(struct playout *p, uint32_t ssrc, uint32_t ts,
		 const int16_t *pcm, size_t n)
{
	int32_t ahead;

	if (n == 0 || n > MAX_AHEAD)
		return;
	if (!p->started || ssrc != p->ssrc)
		restart(p, ssrc, ts);
	ahead = (int32_t)(ts - p->read_ts);
	if (ahead < 0) {
		/* Older than what was already delivered. A packet from far
		 * behind is a timestamp jump, not lateness; one that straddles
		 * the read point keeps its part still to come. */
		if (ahead < -(int32_t)MAX_AHEAD) {
			restart(p, ssrc, ts);
		} else if ((size_t)-ahead < n) {
			pcm += -ahead;
			n -= (size_t)-ahead;
			ts = p->read_ts;
		} else {
			p->late++;
			return;
		}
	} else if ((uint32_t)ahead + n > MAX_AHEAD) {
		restart(p, ssrc, ts);
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t k = (ts + (uint32_t)i) & MASK;

		p->pcm[k] = pcm[i];
		p->have[k] = 1;
	}
}

/* See the header. */
void playout_get(struct playout *p, int16_t *out, size_t n)
{
	if (!p->started) {
		memset(out, 0, n * sizeof *out);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t k = (p->read_ts + (uint32_t)i) & MASK;

		out[i] = p->have[k] ? p->pcm[k] : 0;
		p->have[k] = 0;
	}
	p->read_ts += (uint32_t)n;
}
