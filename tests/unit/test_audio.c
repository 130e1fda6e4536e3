/* test_audio.c — audio helpers: buffers and refcounts, the beep's frequency
 * (Goertzel), G.711 over every code and every 16-bit input, and the energy
 * VAD on silence, G.711 line noise, tones and a speech-like signal. */
#include "tests/unit/unit.h"
#include "umservice/audio.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

int test_audio_buf_refcount(void);
int test_audio_tone_goertzel(void);
int test_audio_g711(void);
int test_audio_vad_silence(void);
int test_audio_vad_speech(void);

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* Relative power of pcm at freq (Goertzel). */
static double goertzel(const int16_t *pcm, size_t n, double freq)
{
	double w = 2.0 * M_PI * freq / AUDIO_RATE, c = 2.0 * cos(w);
	double s1 = 0.0, s2 = 0.0;

	for (size_t i = 0; i < n; i++) {
		double s0 = pcm[i] / 32768.0 + c * s1 - s2;

		s2 = s1;
		s1 = s0;
	}
	return (s1 * s1 + s2 * s2 - c * s1 * s2) / ((double)n * n);
}

/* Deterministic Gaussian-ish noise (sum of 4 uniforms), rms about sigma. */
static double noise(unsigned *state, double sigma)
{
	double sum = 0.0;

	for (int i = 0; i < 4; i++) {
		*state = *state * 1103515245u + 12345u;
		sum += ((*state >> 8) & 0xFFFF) / 65535.0 - 0.5;
	}
	return sum * sigma * sqrt(3.0); /* var of sum = 4/12 */
}

int test_audio_buf_refcount(void)
{
	struct audio_buf *a = NULL, *b, *c, *sil, *parts[3];
	int16_t pcm[4] = {1, -2, 3, -4};

	UT_ASSERT_INT(audio_buf_alloc(&a, 8), 0);
	UT_ASSERT_INT(audio_buf_samples(a), 8);
	for (size_t i = 0; i < 8; i++)
		UT_ASSERT_INT(audio_buf_pcm(a)[i], 0);
	audio_buf_data(a)[0] = 7;
	b = audio_buf_ref(a);
	UT_ASSERT(b == a);
	UT_ASSERT(audio_buf_unref(a) == NULL);
	/* b still holds it (ASan would catch a use after free). */
	UT_ASSERT_INT(audio_buf_pcm(b)[0], 7);
	UT_ASSERT(audio_buf_ref(NULL) == NULL);
	UT_ASSERT(audio_buf_unref(NULL) == NULL);

	UT_ASSERT_INT(audio_buf_from(&c, pcm, 4), 0);
	UT_ASSERT_INT(audio_silence(&sil, 10), 0);
	parts[1] = sil;
	UT_ASSERT_INT(audio_buf_samples(parts[1]), 80);
	UT_ASSERT_INT(audio_buf_ms(parts[1]), 10);
	parts[0] = c;
	parts[2] = b;
	UT_ASSERT_INT(audio_concat(&a, parts, 3), 0);
	UT_ASSERT_INT(audio_buf_samples(a), 4 + 80 + 8);
	UT_ASSERT_INT(audio_buf_pcm(a)[3], -4);
	UT_ASSERT_INT(audio_buf_pcm(a)[50], 0);
	UT_ASSERT_INT(audio_buf_pcm(a)[84], 7);
	a = audio_buf_unref(a);
	parts[1] = NULL;
	UT_ASSERT_INT(audio_concat(&a, parts, 3), EINVAL);
	UT_ASSERT_INT(audio_concat(&a, parts, 1), 0); /* just c */
	UT_ASSERT_INT(audio_buf_samples(a), 4);
	a = audio_buf_unref(a);
	UT_ASSERT_INT(audio_buf_alloc(&a, (size_t)AUDIO_MAX_SAMPLES + 1), EINVAL);
	UT_ASSERT_INT(audio_tone(&a, 0, 100, 0.5), EINVAL);
	UT_ASSERT_INT(audio_tone(&a, 4000, 100, 0.5), EINVAL);
	UT_ASSERT_INT(audio_tone(&a, 1000, 100, 1.5), EINVAL);
	UT_ASSERT_INT(audio_tone(&a, 1000, 100, NAN), EINVAL);
	UT_ASSERT_INT(audio_buf_from(&a, NULL, 3), EINVAL);
	c = audio_buf_unref(c);
	b = audio_buf_unref(b);
	sil = audio_buf_unref(sil);
	return 0;
}

int test_audio_tone_goertzel(void)
{
	struct audio_buf *t;
	const int16_t *p;
	size_t n;
	double p1000, p700, p1300, peak = 0.0;

	UT_ASSERT_INT(audio_tone(&t, AUDIO_BEEP_HZ, AUDIO_BEEP_MS,
				 AUDIO_BEEP_AMPLITUDE), 0);
	p = audio_buf_pcm(t);
	n = audio_buf_samples(t);
	UT_ASSERT_INT(n, AUDIO_BEEP_MS * 8);
	p1000 = goertzel(p, n, 1000);
	p700 = goertzel(p, n, 700);
	p1300 = goertzel(p, n, 1300);
	UT_ASSERT(p1000 > 1000.0 * p700);
	UT_ASSERT(p1000 > 1000.0 * p1300);
	UT_ASSERT(goertzel(p, n, 950) < p1000 / 10.0);
	for (size_t i = 0; i < n; i++)
		peak = fmax(peak, fabs((double)p[i]));
	UT_ASSERT(fabs(peak - 0.25 * 32767) < 50);
	/* The fades: silent at the edges, under half at 2.5 ms from them. */
	UT_ASSERT(abs(p[0]) <= 1 && abs(p[n - 1]) <= 1);
	for (size_t i = 0; i < 20; i++) {
		UT_ASSERT(abs(p[i]) <= 0.25 * 32767 * 0.5 + 1);
		UT_ASSERT(abs(p[n - 1 - i]) <= 0.25 * 32767 * 0.5 + 1);
	}
	/* RMS of the steady part: amplitude / sqrt 2. */
	UT_ASSERT(fabs(audio_rms(p + 400, 2400) - 0.25 * 32767 / sqrt(2.0)) < 30);
	UT_ASSERT(fabs(audio_dbfs(32768.0) - 0.0) < 1e-9);
	UT_ASSERT_INT((int)audio_dbfs(0.0), -100);
	audio_buf_unref(t);
	return 0;
}

int test_audio_g711(void)
{
	int16_t pcm[512], back[512];
	uint8_t codes[512];
	unsigned ulaw_same = 0;

	/* Known points of the standard tables. */
	UT_ASSERT_INT(audio_ulaw_encode(0), 0xFF);
	UT_ASSERT_INT(audio_alaw_encode(0), 0xD5);
	UT_ASSERT_INT(audio_ulaw_decode(0x80), 32124);
	UT_ASSERT_INT(audio_ulaw_decode(0x00), -32124);
	UT_ASSERT_INT(audio_ulaw_decode(0xFF), 0);
	UT_ASSERT_INT(audio_ulaw_decode(0x7F), 0);
	UT_ASSERT_INT(audio_alaw_decode(0xAA), 32256);
	UT_ASSERT_INT(audio_alaw_decode(0x2A), -32256);
	UT_ASSERT_INT(audio_alaw_decode(0xD5), 8);
	UT_ASSERT_INT(audio_alaw_decode(0x55), -8);

	/* Every code survives decode → encode (µ-law's two zeros aside). */
	for (unsigned c = 0; c < 256; c++) {
		UT_ASSERT_INT(audio_alaw_encode(audio_alaw_decode((uint8_t)c)), c);
		if (audio_ulaw_encode(audio_ulaw_decode((uint8_t)c)) == c)
			ulaw_same++;
		else
			UT_ASSERT_INT(c, 0x7F);
	}
	UT_ASSERT_INT(ulaw_same, 255);

	/* Every 16-bit input: the error is under half a quantisation step
	 * (about 1/32 of the value, at least 8–16 at the bottom), except in
	 * the clipped range above 32124 (µ-law) / 32256 (A-law). */
	for (long s = -32768; s <= 32767; s++) {
		int16_t x = (int16_t)s;
		long eu = labs(audio_ulaw_decode(audio_ulaw_encode(x)) - s);
		long ea = labs(audio_alaw_decode(audio_alaw_encode(x)) - s);
		long bound = labs(s) / 30 + 16;

		if (labs(s) > 32124)
			UT_ASSERT(eu <= labs(s) - 32124 + 512);
		else if (eu > bound)
			UT_ASSERT_INT(eu, bound);
		if (labs(s) > 32256)
			UT_ASSERT(ea <= labs(s) - 32256 + 512);
		else if (ea > bound)
			UT_ASSERT_INT(ea, bound);
		/* The sign is kept. */
		UT_ASSERT(s < 8 || audio_ulaw_decode(audio_ulaw_encode(x)) >= 0);
		UT_ASSERT(s > -8 || audio_alaw_decode(audio_alaw_encode(x)) < 0);
	}
	/* Decoding is monotonic in the magnitude bits. */
	for (unsigned c = 0x80; c < 0xFF; c++)
		UT_ASSERT(audio_ulaw_decode((uint8_t)c) >
			  audio_ulaw_decode((uint8_t)(c + 1)));

	/* Bulk == per sample. */
	for (size_t i = 0; i < 512; i++)
		pcm[i] = (int16_t)(i * 128 - 32768);
	audio_ulaw_encode_buf(codes, pcm, 512);
	audio_ulaw_decode_buf(back, codes, 512);
	for (size_t i = 0; i < 512; i++) {
		UT_ASSERT_INT(codes[i], audio_ulaw_encode(pcm[i]));
		UT_ASSERT_INT(back[i], audio_ulaw_decode(codes[i]));
	}
	audio_alaw_encode_buf(codes, pcm, 512);
	audio_alaw_decode_buf(back, codes, 512);
	for (size_t i = 0; i < 512; i++) {
		UT_ASSERT_INT(codes[i], audio_alaw_encode(pcm[i]));
		UT_ASSERT_INT(back[i], audio_alaw_decode(codes[i]));
	}
	return 0;
}

/* Feeds seconds of frames made by gen; returns frames found speech. */
typedef int16_t(gen_fn)(size_t i, unsigned *st);

static unsigned feed(struct audio_vad *v, gen_fn *gen, double seconds,
		     size_t *clock, unsigned *st)
{
	int16_t f[AUDIO_FRAME];
	unsigned speech = 0;
	size_t frames = (size_t)(seconds * 50 + 0.5);

	for (size_t k = 0; k < frames; k++) {
		for (size_t i = 0; i < AUDIO_FRAME; i++)
			f[i] = gen((*clock)++, st);
		speech += audio_vad_feed(v, f, AUDIO_FRAME);
	}
	return speech;
}

static int16_t gen_zero(size_t i, unsigned *st)
{
	return 0;
}

/* µ-law idle codes as a gateway sends them: 0xFF/0x7F/0xFE dither. */
static int16_t gen_ulaw_idle(size_t i, unsigned *st)
{
	static const uint8_t c[] = {0xFF, 0x7F, 0xFE, 0xFF, 0x7E, 0xFF};

	return audio_ulaw_decode(c[i % sizeof c]);
}

/* Line noise at about -60 dBFS RMS, through A-law. */
static int16_t gen_line_noise(size_t i, unsigned *st)
{
	return audio_alaw_decode(audio_alaw_encode((int16_t)lrint(noise(st, 33.0))));
}

/* Steady noise at -35 dBFS (a car, a fan). */
static int16_t gen_loud_noise(size_t i, unsigned *st)
{
	return (int16_t)lrint(noise(st, 584.0));
}

/* A 1 kHz tone at -20 dBFS RMS: 300 ms on, 200 ms off. */
static int16_t gen_bursts(size_t i, unsigned *st)
{
	if (i % 4000 >= 2400)
		return 0;
	return (int16_t)lrint(3277.0 * sqrt(2.0) *
			      sin(2.0 * M_PI * 1000.0 * (double)i / AUDIO_RATE));
}

/* Speech-like: a 140 Hz voice with harmonics, syllables at 4 Hz (a
 * sin² envelope) and a word pause every 1.5 s, over -60 dBFS noise;
 * about -25 dBFS while voiced, through µ-law. */
static int16_t gen_speechlike(size_t i, unsigned *st)
{
	double t = (double)i / AUDIO_RATE, v = 0.0;
	double env = sin(M_PI * 4.0 * t);

	for (int h = 1; h <= 12; h++)
		v += sin(2.0 * M_PI * 140.0 * h * t + h) / h;
	env *= env;
	if (fmod(t, 1.5) > 1.2)
		env = 0.0;
	v = v * env * 2600.0 + noise(st, 33.0);
	return audio_ulaw_decode(audio_ulaw_encode((int16_t)lrint(v)));
}

int test_audio_vad_silence(void)
{
	struct audio_vad v;
	size_t clock = 0;
	unsigned st = 1, n;
	int16_t click[AUDIO_FRAME] = {0};

	audio_vad_init(&v, 0);
	UT_ASSERT(v.threshold_db == AUDIO_VAD_DEFAULT_DB);
	UT_ASSERT_INT(feed(&v, gen_zero, 2.0, &clock, &st), 0);
	UT_ASSERT_INT(feed(&v, gen_ulaw_idle, 2.0, &clock, &st), 0);
	UT_ASSERT_INT(feed(&v, gen_line_noise, 5.0, &clock, &st), 0);
	UT_ASSERT_INT(v.speech_ms, 0);
	UT_ASSERT_INT(v.total_ms, 9000);
	UT_ASSERT_INT(v.trailing_silence_ms, 9000);
	UT_ASSERT(!v.speech);

	/* A single loud frame (a click) is not speech. */
	for (size_t i = 0; i < AUDIO_FRAME; i += 2)
		click[i] = 20000;
	UT_ASSERT(!audio_vad_feed(&v, click, AUDIO_FRAME));
	UT_ASSERT(!audio_vad_feed(&v, (int16_t[AUDIO_FRAME]){0}, AUDIO_FRAME));
	UT_ASSERT_INT(v.speech_ms, 0);

	/* Steady loud noise counts at first, then the floor catches up and it
	 * is silence: a recording on a noisy line still ends. */
	audio_vad_init(&v, 0);
	clock = 0;
	n = feed(&v, gen_loud_noise, 12.0, &clock, &st);
	UT_ASSERT(n > 0 && n < 400); /* out of 600 frames */
	UT_ASSERT(!v.speech);
	UT_ASSERT(v.trailing_silence_ms >= 5000);
	return 0;
}

int test_audio_vad_speech(void)
{
	struct audio_vad v;
	size_t clock = 0;
	unsigned st = 7, n;

	/* Tone bursts at -20 dBFS: speech, with the pauses bridged only by
	 * the hangover (200 ms off = 200 ms hangover). */
	audio_vad_init(&v, 0);
	n = feed(&v, gen_bursts, 5.0, &clock, &st);
	UT_ASSERT(n >= 200); /* of 250 frames: all on-frames at least */
	UT_ASSERT(v.speech_ms >= 2900 && v.speech_ms <= 3100); /* 10 × 300 */
	/* The last burst ended 200 ms before the end. */
	UT_ASSERT_INT(v.trailing_silence_ms, 200);
	UT_ASSERT_INT(feed(&v, gen_zero, 2.0, &clock, &st), 0);
	UT_ASSERT(!v.speech);
	UT_ASSERT_INT(v.trailing_silence_ms, 2200);
	UT_ASSERT_INT(v.total_ms, 7000);

	/* The speech-like signal over line noise, then 6 s of line noise:
	 * speech is seen, its syllables and words are bridged by the hangover
	 * only where short, and the trailing silence is counted. */
	audio_vad_init(&v, 0);
	clock = 0;
	n = feed(&v, gen_speechlike, 6.0, &clock, &st);
	UT_ASSERT(n >= 150); /* of 300 frames */
	UT_ASSERT(v.speech_ms >= 2500 && v.speech_ms <= 5000);
	n = feed(&v, gen_line_noise, 6.0, &clock, &st);
	UT_ASSERT(n <= 10); /* the hangover only */
	UT_ASSERT(!v.speech);
	UT_ASSERT(v.trailing_silence_ms >= 6000 && v.trailing_silence_ms <= 6400);

	/* A stricter threshold ignores a -40 dBFS signal the default takes. */
	audio_vad_init(&v, -30.0);
	UT_ASSERT(v.threshold_db == -30.0);
	{
		int16_t f[AUDIO_FRAME];

		for (size_t i = 0; i < AUDIO_FRAME; i++)
			f[i] = (int16_t)lrint(328.0 * sqrt(2.0) *
					      sin(2.0 * M_PI * 440.0 * i / 8000));
		for (int k = 0; k < 10; k++)
			UT_ASSERT(!audio_vad_feed(&v, f, AUDIO_FRAME));
		audio_vad_init(&v, 0);
		for (int k = 0; k < 10; k++)
			audio_vad_feed(&v, f, AUDIO_FRAME);
		UT_ASSERT(v.speech);
	}
	return 0;
}
