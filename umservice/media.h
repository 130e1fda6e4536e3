/* media.h — RTP media of the UM service's calls: one UDP socket pair
 * (RTP on an even port, RTCP on the next) per call in the call's family,
 * a shared 20 ms media clock that sends every call's next packet and pulls
 * every call's next received frame out of its jitter buffer, RFC 4733 key
 * presses, and RTCP reports. Everything runs on the loop thread. */
#ifndef OPENUM_MEDIA_H
#define OPENUM_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/sdp.h"

struct audio_buf;
struct media;
struct media_engine;

#define MEDIA_FRAME_SAMPLES 160		/* 20 ms at 8 kHz */
#define MEDIA_PTIME_MS 20
#define MEDIA_RTCP_INTERVAL_MS 5000

struct media_handlers {
	/* One 20 ms frame of what the caller said, after the jitter buffer
	 * (gaps are filled with silence); only while receiving is on. */
	void (*frame_h)(void *arg, const int16_t *pcm, size_t n);
	/* A key press (RFC 4733), reported once per press. */
	void (*dtmf_h)(void *arg, char key);
	/* Everything queued with media_play() has been sent. */
	void (*play_done_h)(void *arg);
};

/* Counters of one call, for logs and status. */
struct media_stats {
	uint64_t sent, received;
	uint64_t bad_source, bad_pt, malformed, oversized;
	uint64_t dtmf, rtcp_sent, rtcp_received, late_ticks;
};

int media_engine_alloc(struct media_engine **out, uv_loop_t *loop,
		       unsigned port_lo, unsigned port_hi);
void media_engine_free(struct media_engine *e);
size_t media_engine_active(const struct media_engine *e);
/* Send-interval statistics of the media clock (ms), for benchmarks. */
void media_engine_tick_stats(const struct media_engine *e, double *max_late_ms,
			     uint64_t *ticks);

/* Opens a call's sockets on local_addr (a literal of family). */
int media_open(struct media **out, struct media_engine *e, int family,
	       const char *local_addr, const struct media_handlers *h,
	       void *arg, char **cause);
/* The bound RTP address and port, for the SDP. */
void media_local(const struct media *m, const char **addr, uint16_t *port,
		 int *family);
/* Where to send and what: from the negotiated SDP. */
int media_set_remote(struct media *m, const struct sdp_choice *c);
/* Starts sending and receiving (on the ACK). */
void media_start(struct media *m);
/* Queues audio (8 kHz mono); play_done_h when the queue empties. */
int media_play(struct media *m, struct audio_buf *buf);
/* Plays buf from a sample offset (rewind, forward, resume); only when
 * nothing is queued (EBUSY), offset inside buf (ERANGE). */
int media_play_at(struct media *m, struct audio_buf *buf, size_t offset);
/* The buffer at the head of the queue (borrowed) and the samples of it
 * already sent; NULL when nothing plays. */
struct audio_buf *media_play_position(const struct media *m, size_t *pos);
/* Drops what is queued (barge-in); play_done_h is not called. */
void media_play_stop(struct media *m);
bool media_playing(const struct media *m);
/* Turns delivery of received frames on or off. */
void media_receive(struct media *m, bool on);
const struct media_stats *media_stats(const struct media *m);
/* Closes the sockets; the memory goes once libuv is done. */
void media_close(struct media *m);

/* The local address the kernel would use to reach remote (family literal):
 * the address a call's media socket should be bound to. */
int media_local_for(int family, const char *remote, char *out, size_t len);

#endif
