/* audio.h — small pure audio helpers for 8 kHz mono int16 PCM, shared by
 * TTS, recording and prompts: refcounted immutable buffers, tones and
 * silence, RMS and an energy voice-activity detector, G.711 µ-law/A-law.
 *
 * Threading: everything here is pure and thread-safe; an audio_buf's
 * reference count is atomic, so a buffer may be shared between the loop and
 * worker threads (its samples never change once it has been shared). */
#ifndef OPENUM_AUDIO_H
#define OPENUM_AUDIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The one telephone format: 8000 Hz, mono, signed 16-bit native endian. */
#define AUDIO_RATE 8000u
/* One 20 ms packet's worth of samples. */
#define AUDIO_FRAME 160u
/* Longest buffer audio_buf_alloc() accepts: one hour (57.6 MB). */
#define AUDIO_MAX_SAMPLES (3600u * AUDIO_RATE)

/* ---- refcounted buffers ----------------------------------------------------
 * struct audio_buf is opaque. audio_buf_alloc() hands back the only
 * reference with zeroed samples; its creator fills them through
 * audio_buf_data() and must not write again once it has handed out another
 * reference (audio_buf_ref) — from then on the buffer is immutable and any
 * thread may read it. Each reference is dropped once with
 * `b = audio_buf_unref(b)`; the last one frees the buffer. */
struct audio_buf;

int audio_buf_alloc(struct audio_buf **out, size_t samples);
/* A new buffer holding a copy of pcm[0..n). */
int audio_buf_from(struct audio_buf **out, const int16_t *pcm, size_t n);
struct audio_buf *audio_buf_ref(struct audio_buf *b);
struct audio_buf *audio_buf_unref(struct audio_buf *b);
const int16_t *audio_buf_pcm(const struct audio_buf *b);
int16_t *audio_buf_data(struct audio_buf *b);
size_t audio_buf_samples(const struct audio_buf *b);
unsigned audio_buf_ms(const struct audio_buf *b);

/* ---- generators --------------------------------------------------------- */
/* The record beep: 1000 Hz, 400 ms, amplitude 0.25 (peak -12 dBFS). */
#define AUDIO_BEEP_HZ 1000u
#define AUDIO_BEEP_MS 400u
#define AUDIO_BEEP_AMPLITUDE 0.25

int audio_tone(struct audio_buf **out, unsigned freq_hz, unsigned ms,
	       double amplitude);
int audio_silence(struct audio_buf **out, unsigned ms);
int audio_concat(struct audio_buf **out, struct audio_buf *const bufs[],
		 size_t n);

/* ---- levels ------------------------------------------------------------- */
/* RMS in sample units (0..32768); 0 for n == 0. */
double audio_rms(const int16_t *pcm, size_t n);
/* 20·log10(rms / 32768): a full-scale square wave is 0 dBFS, a full-scale
 * sine -3 dBFS; floored at -100 for digital silence. */
double audio_dbfs(double rms);

/* ---- voice activity ----------------------------------------------------------
 * Energy detection per 20 ms frame. A frame is *active* when its RMS level
 * is at or above the threshold, which is the larger of
 *   - the fixed threshold given to audio_vad_init() (AUDIO_VAD_DEFAULT_DB,
 *     -45 dBFS ≈ RMS 184, when 0 is passed), and
 *   - the tracked noise floor + AUDIO_VAD_FLOOR_MARGIN_DB (10 dB).
 * Why -45 dBFS: G.711 idle/comfort silence decodes to 0 or ±8..±24 (below
 * -60 dBFS) and ordinary line noise sits at -55..-65 dBFS, while speech at a
 * normal level is -15..-30 dBFS in its voiced frames and a quiet talker's
 * vowels stay above -40; a tone at -20 dBFS is clearly active.
 * The noise floor follows the quietest frames at once and rises by only
 * 2.5 dB per second, so steady noise (a car, a hum, a dial tone left on the
 * line) stops counting as speech after a few seconds while pauses between
 * words keep the floor at the real background level.
 * Speech starts after AUDIO_VAD_ONSET_FRAMES active frames in a row (so a
 * single click is not speech) and ends after AUDIO_VAD_HANGOVER_MS without
 * an active frame.
 *
 * The fields are public so the struct can live inside the caller's; read
 * them, never write them. */
#define AUDIO_VAD_DEFAULT_DB -45.0
#define AUDIO_VAD_FLOOR_MARGIN_DB 10.0
#define AUDIO_VAD_ONSET_FRAMES 2u
#define AUDIO_VAD_HANGOVER_MS 200u

struct audio_vad {
	double threshold_db;	    /* the fixed part of the threshold */
	double floor_db;	    /* tracked noise floor */
	double level_db;	    /* level of the last frame */
	bool speech;		    /* state after the last frame (hangover incl.) */
	unsigned total_ms;	    /* audio fed so far */
	unsigned speech_ms;	    /* active frames belonging to speech */
	unsigned trailing_silence_ms; /* since the last speech frame ended (all
				     * of total_ms while there was no speech) */
	unsigned run;		    /* active frames in a row */
	unsigned hang_ms;	    /* hangover left */
};

/* threshold_db: the fixed threshold in dBFS, or 0 for the default. */
void audio_vad_init(struct audio_vad *v, double threshold_db);
/* Feeds one frame (normally AUDIO_FRAME samples; any n > 0 is accepted and
 * counted as n/8 ms); returns v->speech. */
bool audio_vad_feed(struct audio_vad *v, const int16_t *pcm, size_t n);

/* ---- G.711 ---------------------------------------------------------------
 * ITU-T G.711 µ-law (PCMU) and A-law (PCMA), table-driven. Encoding
 * truncates like the reference coder; decoding gives the interval's middle,
 * so decode(encode(decode(c))) == decode(c) for every code. */
uint8_t audio_ulaw_encode(int16_t s);
int16_t audio_ulaw_decode(uint8_t c);
uint8_t audio_alaw_encode(int16_t s);
int16_t audio_alaw_decode(uint8_t c);
void audio_ulaw_encode_buf(uint8_t *dst, const int16_t *src, size_t n);
void audio_ulaw_decode_buf(int16_t *dst, const uint8_t *src, size_t n);
void audio_alaw_encode_buf(uint8_t *dst, const int16_t *src, size_t n);
void audio_alaw_decode_buf(int16_t *dst, const uint8_t *src, size_t n);

#endif
