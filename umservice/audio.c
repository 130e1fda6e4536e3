/* audio.c — 8 kHz int16 helpers: refcounted buffers, tones, levels, an energy
 * VAD and table-driven G.711. */
#include "umservice/audio.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

struct audio_buf {
	atomic_uint refs;
	size_t n;
	int16_t pcm[];
};

/* ---- buffers --------------------------------------------------------------- */

/* A buffer of `samples` zeroed samples, the caller's only reference. EINVAL
 * beyond AUDIO_MAX_SAMPLES. */
int audio_buf_alloc(struct audio_buf **out, size_t samples)
{
	struct audio_buf *b;

	if (!out || samples > AUDIO_MAX_SAMPLES)
		return EINVAL;
	b = calloc(1, sizeof *b + samples * sizeof b->pcm[0]);
	if (!b)
		return ENOMEM;
	atomic_init(&b->refs, 1);
	b->n = samples;
	*out = b;
	return 0;
}

/* A new buffer with a copy of pcm[0..n). */
int audio_buf_from(struct audio_buf **out, const int16_t *pcm, size_t n)
{
	struct audio_buf *b;
	int err;

	if (!out || (n && !pcm))
		return EINVAL;
	err = audio_buf_alloc(&b, n);
	if (err)
		return err;
	if (n)
		memcpy(b->pcm, pcm, n * sizeof *pcm);
	*out = b;
	return 0;
}

/* One more reference to b (NULL passes through). */
struct audio_buf *audio_buf_ref(struct audio_buf *b)
{
	if (b)
		atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
	return b;
}

/* Drops one reference; frees b with the last. Always returns NULL. */
struct audio_buf *audio_buf_unref(struct audio_buf *b)
{
	if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
		free(b);
	return NULL;
}

/* The samples, readable for as long as the caller holds a reference. */
const int16_t *audio_buf_pcm(const struct audio_buf *b)
{
	return b->pcm;
}

/* Writable samples: only for the creator, before the buffer is shared. */
int16_t *audio_buf_data(struct audio_buf *b)
{
	return b->pcm;
}

/* Number of samples. */
size_t audio_buf_samples(const struct audio_buf *b)
{
	return b->n;
}

/* Duration in milliseconds, rounded down. */
unsigned audio_buf_ms(const struct audio_buf *b)
{
	return (unsigned)(b->n * 1000u / AUDIO_RATE);
}

/* ---- generators ----------------------------------------------------------- */

/* A sine tone of ms milliseconds at freq_hz (1..3999) with peak amplitude
 * `amplitude` × full scale (0..1), faded in and out over 5 ms with a raised
 * cosine so that it starts and stops without a click. */
int audio_tone(struct audio_buf **out, unsigned freq_hz, unsigned ms,
	       double amplitude)
{
	const size_t fade = 5 * AUDIO_RATE / 1000;
	struct audio_buf *b;
	size_t n;
	int err;

	if (!out || freq_hz == 0 || freq_hz >= AUDIO_RATE / 2 ||
	    !(amplitude >= 0.0 && amplitude <= 1.0) ||
	    ms > AUDIO_MAX_SAMPLES / (AUDIO_RATE / 1000))
		return EINVAL;
	n = (size_t)ms * (AUDIO_RATE / 1000);
	err = audio_buf_alloc(&b, n);
	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		double g = amplitude * 32767.0;
		size_t edge = i < n - 1 - i ? i : n - 1 - i;

		if (edge < fade)
			g *= 0.5 - 0.5 * cos(M_PI * (double)edge / (double)fade);
		b->pcm[i] = (int16_t)lrint(
			g * sin(2.0 * M_PI * freq_hz * (double)i / AUDIO_RATE));
	}
	*out = b;
	return 0;
}

/* ms milliseconds of digital silence. */
int audio_silence(struct audio_buf **out, unsigned ms)
{
	if (ms > AUDIO_MAX_SAMPLES / (AUDIO_RATE / 1000))
		return EINVAL;
	return audio_buf_alloc(out, (size_t)ms * (AUDIO_RATE / 1000));
}

/* A new buffer with bufs[0..n) one after the other (none may be NULL). */
int audio_concat(struct audio_buf **out, struct audio_buf *const bufs[],
		 size_t n)
{
	struct audio_buf *b;
	size_t total = 0, at = 0;
	int err;

	if (!out || (n && !bufs))
		return EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!bufs[i] || bufs[i]->n > AUDIO_MAX_SAMPLES - total)
			return EINVAL;
		total += bufs[i]->n;
	}
	err = audio_buf_alloc(&b, total);
	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		if (bufs[i]->n)
			memcpy(b->pcm + at, bufs[i]->pcm,
			       bufs[i]->n * sizeof b->pcm[0]);
		at += bufs[i]->n;
	}
	*out = b;
	return 0;
}

/* ---- levels ---------------------------------------------------------------- */

/* Root mean square of pcm[0..n) in sample units. */
double audio_rms(const int16_t *pcm, size_t n)
{
	double sum = 0.0;

	if (!n)
		return 0.0;
	for (size_t i = 0; i < n; i++)
		sum += (double)pcm[i] * pcm[i];
	return sqrt(sum / (double)n);
}

/* RMS to dBFS (full-scale square = 0 dB), floored at -100. */
double audio_dbfs(double rms)
{
	if (rms <= 32768.0 * 1e-5)
		return -100.0;
	return 20.0 * log10(rms / 32768.0);
}

/* ---- voice activity -------------------------------------------------------- */

/* The floor may rise this much per ms (2.5 dB/s). */
#define VAD_FLOOR_RISE_DB_PER_MS 0.0025
#define VAD_FLOOR_MIN_DB -100.0

/* Resets v; threshold_db 0 means AUDIO_VAD_DEFAULT_DB. */
void audio_vad_init(struct audio_vad *v, double threshold_db)
{
	memset(v, 0, sizeof *v);
	v->threshold_db = threshold_db != 0.0 ? threshold_db
					      : AUDIO_VAD_DEFAULT_DB;
	/* Start where the floor does not raise the threshold yet. */
	v->floor_db = v->threshold_db - AUDIO_VAD_FLOOR_MARGIN_DB;
	v->level_db = -100.0;
}

/* Classifies one frame, updates the counters and returns the speech state. */
bool audio_vad_feed(struct audio_vad *v, const int16_t *pcm, size_t n)
{
	unsigned ms;
	double thr;
	bool active;

	if (!n)
		return v->speech;
	ms = (unsigned)((n * 1000u + AUDIO_RATE / 2) / AUDIO_RATE);
	v->level_db = audio_dbfs(audio_rms(pcm, n));
	thr = v->threshold_db;
	if (v->floor_db + AUDIO_VAD_FLOOR_MARGIN_DB > thr)
		thr = v->floor_db + AUDIO_VAD_FLOOR_MARGIN_DB;
	active = v->level_db >= thr;

	/* Follow the quietest frames at once, rise slowly. */
	if (v->level_db < v->floor_db)
		v->floor_db = v->level_db < VAD_FLOOR_MIN_DB ? VAD_FLOOR_MIN_DB
							     : v->level_db;
	else
		v->floor_db += VAD_FLOOR_RISE_DB_PER_MS * ms;

	v->total_ms += ms;
	if (active) {
		v->run++;
		if (v->speech) {
			v->speech_ms += ms;
		} else if (v->run >= AUDIO_VAD_ONSET_FRAMES) {
			/* The onset frames were speech too. */
			v->speech = true;
			v->speech_ms += ms * v->run;
		}
	} else {
		v->run = 0;
	}
	if (v->speech && active) {
		v->hang_ms = AUDIO_VAD_HANGOVER_MS;
		v->trailing_silence_ms = 0;
	} else {
		v->trailing_silence_ms += ms;
		if (v->speech) {
			v->hang_ms = v->hang_ms > ms ? v->hang_ms - ms : 0;
			if (!v->hang_ms)
				v->speech = false;
		}
	}
	return v->speech;
}

/* ---- G.711 -------------------------------------------------------------------
 * The reference algorithms (Sun's public-domain g711.c) fill the tables once
 * at load time; µ-law works on 14-bit and A-law on 13-bit magnitudes, so the
 * encode tables are indexed by the top 14 / 13 bits of the sample. */

static uint8_t ulaw_enc[1u << 14];
static uint8_t alaw_enc[1u << 13];
static int16_t ulaw_dec[256];
static int16_t alaw_dec[256];

static unsigned seg_search(int val, const int *table)
{
	unsigned i;

	for (i = 0; i < 8; i++) {
		if (val <= table[i])
			break;
	}
	return i;
}

static uint8_t ulaw_ref_encode(int pcm)
{
	static const int seg_uend[8] = {0x3F,  0x7F,  0xFF,   0x1FF,
					0x3FF, 0x7FF, 0xFFF, 0x1FFF};
	unsigned seg;
	int mask;

	pcm /= 4; /* exact: the low bits are zero */
	if (pcm < 0) {
		pcm = -pcm;
		mask = 0x7F;
	} else {
		mask = 0xFF;
	}
	if (pcm > 8159)
		pcm = 8159;
	pcm += 0x21;
	seg = seg_search(pcm, seg_uend);
	if (seg >= 8)
		return (uint8_t)(0x7F ^ mask);
	return (uint8_t)(((seg << 4) | ((unsigned)(pcm >> (seg + 1)) & 0xF)) ^
			 (unsigned)mask);
}

static int16_t ulaw_ref_decode(uint8_t c)
{
	unsigned u = (uint8_t)~c;
	int t = (int)(((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4);

	return (int16_t)((u & 0x80) ? (0x84 - t) : (t - 0x84));
}

static uint8_t alaw_ref_encode(int pcm)
{
	static const int seg_aend[8] = {0x1F,  0x3F,  0x7F,  0xFF,
					0x1FF, 0x3FF, 0x7FF, 0xFFF};
	unsigned seg, aval;
	int mask;

	pcm /= 8; /* exact: the low bits are zero */
	if (pcm >= 0) {
		mask = 0xD5;
	} else {
		mask = 0x55;
		pcm = -pcm - 1;
	}
	seg = seg_search(pcm, seg_aend);
	if (seg >= 8)
		return (uint8_t)(0x7F ^ mask);
	aval = seg << 4;
	if (seg < 2)
		aval |= (unsigned)(pcm >> 1) & 0x0F;
	else
		aval |= (unsigned)(pcm >> seg) & 0x0F;
	return (uint8_t)(aval ^ (unsigned)mask);
}

static int16_t alaw_ref_decode(uint8_t c)
{
	unsigned a = c ^ 0x55u;
	int t = (int)((a & 0x0F) << 4);
	unsigned seg = (a & 0x70) >> 4;

	switch (seg) {
	case 0:
		t += 8;
		break;
	case 1:
		t += 0x108;
		break;
	default:
		t += 0x108;
		t <<= seg - 1;
	}
	return (int16_t)((a & 0x80) ? t : -t);
}

__attribute__((constructor)) static void g711_tables(void)
{
	for (unsigned i = 0; i < (1u << 14); i++)
		ulaw_enc[i] = ulaw_ref_encode((int16_t)(uint16_t)(i << 2));
	for (unsigned i = 0; i < (1u << 13); i++)
		alaw_enc[i] = alaw_ref_encode((int16_t)(uint16_t)(i << 3));
	for (unsigned i = 0; i < 256; i++) {
		ulaw_dec[i] = ulaw_ref_decode((uint8_t)i);
		alaw_dec[i] = alaw_ref_decode((uint8_t)i);
	}
}

/* One sample to µ-law. */
uint8_t audio_ulaw_encode(int16_t s)
{
	return ulaw_enc[(uint16_t)s >> 2];
}

/* One µ-law code to a sample. */
int16_t audio_ulaw_decode(uint8_t c)
{
	return ulaw_dec[c];
}

/* One sample to A-law. */
uint8_t audio_alaw_encode(int16_t s)
{
	return alaw_enc[(uint16_t)s >> 3];
}

/* One A-law code to a sample. */
int16_t audio_alaw_decode(uint8_t c)
{
	return alaw_dec[c];
}

/* n samples to µ-law. */
void audio_ulaw_encode_buf(uint8_t *dst, const int16_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = ulaw_enc[(uint16_t)src[i] >> 2];
}

/* n µ-law codes to samples. */
void audio_ulaw_decode_buf(int16_t *dst, const uint8_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = ulaw_dec[src[i]];
}

/* n samples to A-law. */
void audio_alaw_encode_buf(uint8_t *dst, const int16_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = alaw_enc[(uint16_t)src[i] >> 3];
}

/* n A-law codes to samples. */
void audio_alaw_decode_buf(int16_t *dst, const uint8_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = alaw_dec[src[i]];
}
