/* tts.c — espeak-ng synthesis on one thread per tts object, speexdsp
 * resampling to 8 kHz, level normalisation and an LRU cache by text, answered
 * on the loop through a uv_async_t. */
#include "umservice/tts.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <espeak-ng/speak_lib.h>
#include <speex/speex_resampler.h>

#define LOG_MODULE "tts"
#include "common/log.h"

#define TTS_BUG(msg)                                                        \
	do {                                                                \
		log_error("BUG %s:%d: %s", __FILE__, __LINE__, msg);        \
		abort();                                                    \
	} while (0)

#define BUCKETS 4096u
/* espeak words per minute: a little slower than its default 175, which
 * helps over a narrow-band line. */
#define SPEECH_RATE_WPM 160
/* speexdsp quality 3 ("VoIP"): at the default 4, 22.05 → 8 kHz took longer
 * than the synthesis itself (10 ms for the 5 s greeting); 3 is plenty for a
 * G.711 line. */
#define RESAMPLE_QUALITY 3
/* Normalisation targets: peak -3 dBFS, RMS at most -16 dBFS, gain ≤ 30. */
#define TARGET_PEAK (0.7079 * 32767.0)
#define TARGET_RMS (0.1585 * 32768.0)
#define MAX_GAIN 30.0
/* Longest native audio one synthesis may produce (5 min at 22050 Hz). */
#define SYNTH_MAX_SAMPLES (300u * 22050u)

/* One request waiting for its answer (loop thread only). */
struct waiter {
	struct waiter *next;
	tts_done_h *h;
	void *arg;
	int err;
	struct audio_buf *pcm; /* a reference, once answered */
};

enum entry_state { ENTRY_PENDING, ENTRY_READY };

/* One cleaned text: synthesising (on the pending list, with waiters) or
 * ready (on the LRU list, with audio). Loop thread only. */
struct entry {
	struct entry *hnext;
	struct entry *prev, *next; /* pending list or LRU list */
	uint32_t hash;
	enum entry_state state;
	struct audio_buf *pcm;
	size_t bytes;
	struct waiter *waiters, **wtail;
	char text[];
};

/* One synthesis handed to the thread. The thread reads text and writes pcm
 * and err; e is only touched on the loop thread. */
struct job {
	struct job *next;
	struct entry *e;
	struct audio_buf *pcm;
	int err;
	char text[];
};

struct tts {
	uv_loop_t *loop;
	uv_async_t async;
	bool async_ready;
	bool closing;
	char voice[64];

	/* Loop thread only. */
	struct entry *buckets[BUCKETS];
	struct entry *lru_head, *lru_tail; /* most recent first */
	struct entry *pend_head;
	size_t npending;
	size_t cache_bytes;
	struct waiter *ready, **ready_tail; /* answered, handler not called */

	/* Shared with the synthesis thread, under mu. */
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool mu_ready;
	struct job *todo, **todo_tail;
	struct job *done, **done_tail;
	bool stop;
	bool init_done;
	int init_err;
	char init_cause[160];
	atomic_bool abort; /* read by the espeak callback */

	pthread_t thread;
	bool thread_started;
};

/* ---- text cleaning ----------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1..4) with its code point, or 0. */
static size_t utf8_decode(const unsigned char *s, uint32_t *cp)
{
	uint32_t c = s[0];
	size_t len, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		c &= 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		c &= 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		c &= 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
	    c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return len;
}

/* Invisible format characters that are dropped. */
static bool is_format(uint32_t c)
{
	return c == 0xAD || (c >= 0x200B && c <= 0x200F) ||
	       (c >= 0x202A && c <= 0x202E) || (c >= 0x2060 && c <= 0x206F) ||
	       c == 0xFEFF;
}

/* Characters that separate words and become one space. */
static bool is_space(uint32_t c)
{
	return c < 0x20 || c == ' ' || c == 0x7F || (c >= 0x80 && c <= 0x9F) ||
	       c == 0xA0 || c == 0x2028 || c == 0x2029;
}

/* Cleans untrusted UTF-8 into plain text for espeak (see tts.h). 0, or
 * EINVAL for text longer than TTS_TEXT_MAX bytes, text empty once cleaned or
 * an out buffer too small. */
int tts_clean_text(char *out, size_t size, const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t len, i = 0, o = 0;
	bool space = false;

	if (!out || !text)
		return EINVAL;
	len = strnlen(text, TTS_TEXT_MAX + 1);
	if (len > TTS_TEXT_MAX || size < len + 1)
		return EINVAL;
	while (i < len) {
		uint32_t c;
		size_t n = utf8_decode(s + i, &c);

		if (n == 0 || i + n > len) {
			space = true; /* invalid byte */
			i++;
			continue;
		}
		if (c == '<') {
			const char *gt = memchr(s + i, '>', len - i);

			space = true;
			i = gt ? (size_t)((const unsigned char *)gt - s) + 1
			       : i + 1;
			continue;
		}
		if (c == '>' || is_space(c)) {
			space = true;
			i += n;
			continue;
		}
		if (is_format(c)) {
			i += n;
			continue;
		}
		if (space && o > 0)
			out[o++] = ' ';
		space = false;
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return o ? 0 : EINVAL;
}

/* ---- the synthesis thread -------------------------------------------------------
 * espeak-ng keeps everything in globals: the synthesis callback, the voice,
 * the parameters. espeak_mu serialises all espeak calls of the process and
 * guards these statics. espeak is initialised once per process and never
 * terminated: espeak_Terminate() after AUDIO_OUTPUT_SYNCHRONOUS deadlocks
 * with the library's own internal thread (1.51). */

struct synth {
	int16_t *pcm;
	size_t n, cap;
	atomic_bool *abort;
	bool failed;
};

static pthread_mutex_t espeak_mu = PTHREAD_MUTEX_INITIALIZER;
static int espeak_rate;		/* native rate once initialised */
static char espeak_voice[64];	/* the voice set last */
static struct synth *espeak_cur; /* what synth_cb fills */

static int synth_cb(short *wav, int n, espeak_EVENT *ev)
{
	struct synth *s = espeak_cur;

	(void)ev;
	if (!s || atomic_load_explicit(s->abort, memory_order_relaxed))
		return 1;
	if (!wav || n <= 0)
		return 0;
	if (s->n + (size_t)n > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 65536;
		int16_t *p;

		while (cap < s->n + (size_t)n)
			cap *= 2;
		if (cap > SYNTH_MAX_SAMPLES) {
			s->failed = true;
			return 1;
		}
		p = realloc(s->pcm, cap * sizeof *p);
		if (!p) {
			s->failed = true;
			return 1;
		}
		s->pcm = p;
		s->cap = cap;
	}
	memcpy(s->pcm + s->n, wav, (size_t)n * sizeof *wav);
	s->n += (size_t)n;
	return 0;
}

/* Initialises espeak once and selects voice; espeak_mu held. */
static int espeak_prepare(const char *voice, char *cause, size_t cause_len)
{
	espeak_ERROR e;

	if (!espeak_rate) {
		int rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, NULL, 0);

		if (rate <= 0) {
			snprintf(cause, cause_len,
				 "espeak-ng initialisation failed (%d)", rate);
			return EIO;
		}
		espeak_rate = rate;
		espeak_SetSynthCallback(synth_cb);
		log_info("espeak-ng %s, %d Hz", espeak_Info(NULL), rate);
	}
	if (strcmp(espeak_voice, voice) == 0)
		return 0;
	e = espeak_SetVoiceByName(voice);
	if (e != EE_OK) {
		snprintf(cause, cause_len, "espeak-ng has no voice \"%s\"",
			 voice);
		espeak_voice[0] = '\0';
		return EINVAL;
	}
	espeak_SetParameter(espeakRATE, SPEECH_RATE_WPM, 0);
	snprintf(espeak_voice, sizeof espeak_voice, "%s", voice);
	return 0;
}

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Native-rate samples to 8 kHz through rs; *out is malloc'd. */
static int resample(SpeexResamplerState *rs, const int16_t *in, size_t n,
		    int16_t **out, size_t *out_n, unsigned in_rate)
{
	size_t want = (size_t)((uint64_t)n * AUDIO_RATE / in_rate);
	spx_uint32_t lat = (spx_uint32_t)speex_resampler_get_input_latency(rs);
	size_t cap = want + 64;
	int16_t *o = malloc(cap * sizeof *o);
	static const int16_t zeros[256];
	size_t got = 0, at = 0;

	if (!o)
		return ENOMEM;
	speex_resampler_reset_mem(rs);
	speex_resampler_skip_zeros(rs);
	/* The input, then the filter's latency in zeros to flush it out. */
	while (at < n + lat && got < cap) {
		const int16_t *src;
		spx_uint32_t ilen, olen = (spx_uint32_t)(cap - got);

		if (at < n) {
			src = in + at;
			ilen = (spx_uint32_t)(n - at);
		} else {
			src = zeros;
			ilen = (spx_uint32_t)(n + lat - at);
			if (ilen > 256)
				ilen = 256;
		}
		if (speex_resampler_process_int(rs, 0, src, &ilen, o + got,
						&olen) != RESAMPLER_ERR_SUCCESS) {
			free(o);
			return EIO;
		}
		if (ilen == 0 && olen == 0)
			break;
		at += ilen;
		got += olen;
	}
	*out = o;
	*out_n = got < want ? got : want;
	return 0;
}

/* Trims near-silence at both ends, normalises the level and pads. */
static int finish_audio(struct audio_buf **out, const int16_t *pcm, size_t n)
{
	const size_t pad = TTS_PAD_MS * AUDIO_RATE / 1000;
	const size_t margin = 10 * AUDIO_RATE / 1000;
	size_t first = 0, last = n, len;
	struct audio_buf *b;
	int16_t *d;
	double peak = 0.0, rms, gain, thr;
	int err;

	for (size_t i = 0; i < n; i++) {
		double a = fabs((double)pcm[i]);

		if (a > peak)
			peak = a;
	}
	thr = peak * 0.003; /* -50 dB below the peak */
	if (peak > 0.0) {
		while (first < n && fabs((double)pcm[first]) <= thr)
			first++;
		while (last > first && fabs((double)pcm[last - 1]) <= thr)
			last--;
		first = first > margin ? first - margin : 0;
		last = last + margin < n ? last + margin : n;
	} else {
		first = last = 0;
	}
	len = last - first;
	err = audio_buf_alloc(&b, len + 2 * pad);
	if (err)
		return err;
	d = audio_buf_data(b);
	rms = audio_rms(pcm + first, len);
	gain = peak > 0.0 ? TARGET_PEAK / peak : 1.0;
	if (rms > 0.0 && gain * rms > TARGET_RMS)
		gain = TARGET_RMS / rms;
	if (gain > MAX_GAIN)
		gain = MAX_GAIN;
	for (size_t i = 0; i < len; i++) {
		long v = lrint(pcm[first + i] * gain);

		d[pad + i] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
	}
	*out = b;
	return 0;
}

/* Synthesises one job; the thread's own resampler. */
static void synth_job(struct tts *t, SpeexResamplerState **rs, struct job *j)
{
	struct synth s = {.abort = &t->abort};
	char cause[160] = "";
	int16_t *pcm8 = NULL;
	size_t n8 = 0;
	double t0 = mono_ms(), t1;
	unsigned rate;
	int err;

	pthread_mutex_lock(&espeak_mu);
	err = espeak_prepare(t->voice, cause, sizeof cause);
	if (!err) {
		espeak_ERROR e;

		espeak_cur = &s;
		e = espeak_Synth(j->text, strlen(j->text) + 1, 0, POS_CHARACTER,
				 0, espeakCHARS_UTF8, NULL, NULL);
		espeak_cur = NULL;
		if (s.failed)
			err = ENOMEM;
		else if (atomic_load(&t->abort))
			err = ECANCELED;
		else if (e != EE_OK)
			err = EIO;
	}
	rate = (unsigned)espeak_rate;
	pthread_mutex_unlock(&espeak_mu);
	if (err) {
		if (err != ECANCELED)
			log_warn("synthesis of %zu bytes failed: %s%s%s",
				 strlen(j->text), strerror(err),
				 cause[0] ? ": " : "", cause);
		goto out;
	}
	t1 = mono_ms();
	if (!*rs) {
		int rerr = 0;

		*rs = speex_resampler_init(1, rate, AUDIO_RATE,
					   RESAMPLE_QUALITY, &rerr);
		if (!*rs) {
			log_error("speex_resampler_init: %s",
				  speex_resampler_strerror(rerr));
			err = EIO;
			goto out;
		}
	}
	err = resample(*rs, s.pcm, s.n, &pcm8, &n8, rate);
	if (err)
		goto out;
	err = finish_audio(&j->pcm, pcm8, n8);
	if (err)
		goto out;
	log_debug("synthesised %zu bytes: %u ms of audio, espeak %.1f ms, "
		  "resampling %.1f ms",
		  strlen(j->text), audio_buf_ms(j->pcm), t1 - t0,
		  mono_ms() - t1);
out:
	j->err = err;
	free(pcm8);
	free(s.pcm);
}

static void *thread_main(void *arg)
{
	struct tts *t = arg;
	SpeexResamplerState *rs = NULL;
	char cause[sizeof t->init_cause] = "";
	int err;

	pthread_mutex_lock(&espeak_mu);
	err = espeak_prepare(t->voice, cause, sizeof cause);
	pthread_mutex_unlock(&espeak_mu);

	pthread_mutex_lock(&t->mu);
	t->init_err = err;
	memcpy(t->init_cause, cause, sizeof cause);
	t->init_done = true;
	pthread_cond_broadcast(&t->cond);
	while (!err && !t->stop) {
		struct job *j = t->todo;

		if (!j) {
			pthread_cond_wait(&t->cond, &t->mu);
			continue;
		}
		t->todo = j->next;
		if (!t->todo)
			t->todo_tail = &t->todo;
		j->next = NULL;
		pthread_mutex_unlock(&t->mu);

		synth_job(t, &rs, j);

		pthread_mutex_lock(&t->mu);
		*t->done_tail = j;
		t->done_tail = &j->next;
		uv_async_send(&t->async);
	}
	pthread_mutex_unlock(&t->mu);
	if (rs)
		speex_resampler_destroy(rs);
	return NULL;
}

/* ---- the cache (loop thread) ---------------------------------------------------- */

static uint32_t hash_text(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static struct entry *entry_find(struct tts *t, const char *text, uint32_t h)
{
	for (struct entry *e = t->buckets[h % BUCKETS]; e; e = e->hnext) {
		if (e->hash == h && strcmp(e->text, text) == 0)
			return e;
	}
	return NULL;
}

/* Unlinks e from the list it is on (pending or LRU). */
static void entry_unlist(struct tts *t, struct entry *e)
{
	struct entry **head = e->state == ENTRY_READY ? &t->lru_head
						      : &t->pend_head;

	if (e->prev)
		e->prev->next = e->next;
	else
		*head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else if (e->state == ENTRY_READY)
		t->lru_tail = e->prev;
	e->prev = e->next = NULL;
}

/* Puts e at the head of its list (pending, or LRU as most recent). */
static void entry_list_front(struct tts *t, struct entry *e)
{
	struct entry **head = e->state == ENTRY_READY ? &t->lru_head
						      : &t->pend_head;

	e->prev = NULL;
	e->next = *head;
	if (*head)
		(*head)->prev = e;
	else if (e->state == ENTRY_READY)
		t->lru_tail = e;
	*head = e;
}

/* Removes e from the table and its list and frees it; its waiters must
 * have been moved away. */
static void entry_free(struct tts *t, struct entry *e)
{
	struct entry **pp = &t->buckets[e->hash % BUCKETS];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	entry_unlist(t, e);
	if (e->state == ENTRY_READY)
		t->cache_bytes -= e->bytes;
	else
		t->npending--;
	if (e->waiters)
		TTS_BUG("entry freed with waiters");
	audio_buf_unref(e->pcm);
	free(e);
}

static void evict(struct tts *t)
{
	while (t->cache_bytes > TTS_CACHE_BYTES && t->lru_tail &&
	       t->lru_tail != t->lru_head)
		entry_free(t, t->lru_tail);
}

/* Moves e's waiters to the ready list with (err, pcm). */
static void answer_waiters(struct tts *t, struct entry *e, int err,
			   struct audio_buf *pcm)
{
	struct waiter *w;

	while ((w = e->waiters)) {
		e->waiters = w->next;
		w->next = NULL;
		w->err = err;
		w->pcm = audio_buf_ref(pcm);
		*t->ready_tail = w;
		t->ready_tail = &w->next;
	}
	e->wtail = &e->waiters;
}

/* Calls the handlers of answered requests, one at a time, so that a
 * handler may cancel others or close t. */
static void deliver(struct tts *t)
{
	struct waiter *w;

	while (!t->closing && (w = t->ready)) {
		t->ready = w->next;
		if (!t->ready)
			t->ready_tail = &t->ready;
		w->h(w->arg, w->err, w->pcm);
		audio_buf_unref(w->pcm);
		free(w);
	}
}

static void async_cb(uv_async_t *a)
{
	struct tts *t = a->data;
	struct job *j, *done;

	pthread_mutex_lock(&t->mu);
	done = t->done;
	t->done = NULL;
	t->done_tail = &t->done;
	pthread_mutex_unlock(&t->mu);

	while ((j = done)) {
		struct entry *e = j->e;

		done = j->next;
		if (j->err) {
			answer_waiters(t, e, j->err, NULL);
			entry_free(t, e);
		} else {
			entry_unlist(t, e);
			t->npending--;
			e->state = ENTRY_READY;
			e->pcm = j->pcm;
			j->pcm = NULL;
			e->bytes = sizeof *e + strlen(e->text) + 1 +
				   audio_buf_samples(e->pcm) * sizeof(int16_t);
			t->cache_bytes += e->bytes;
			entry_list_front(t, e);
			answer_waiters(t, e, 0, e->pcm);
		}
		audio_buf_unref(j->pcm);
		free(j);
	}
	evict(t);
	deliver(t);
}

/* Finds or starts the synthesis of clean text; w (may be NULL) waits for
 * it. Takes w on success. */
static int request(struct tts *t, const char *text, struct waiter *w)
{
	uint32_t h = hash_text(text);
	struct entry *e = entry_find(t, text, h);
	size_t len;
	struct job *j;

	if (e && e->state == ENTRY_READY) {
		entry_unlist(t, e);
		entry_list_front(t, e);
		if (w) {
			w->pcm = audio_buf_ref(e->pcm);
			*t->ready_tail = w;
			t->ready_tail = &w->next;
			uv_async_send(&t->async);
		}
		return 0;
	}
	if (!e) {
		if (t->npending >= TTS_QUEUE_MAX)
			return EAGAIN;
		len = strlen(text) + 1;
		e = calloc(1, sizeof *e + len);
		j = calloc(1, sizeof *j + len);
		if (!e || !j) {
			free(e);
			free(j);
			return ENOMEM;
		}
		memcpy(e->text, text, len);
		memcpy(j->text, text, len);
		e->hash = h;
		e->state = ENTRY_PENDING;
		e->wtail = &e->waiters;
		e->hnext = t->buckets[h % BUCKETS];
		t->buckets[h % BUCKETS] = e;
		entry_list_front(t, e);
		t->npending++;
		j->e = e;
		pthread_mutex_lock(&t->mu);
		*t->todo_tail = j;
		t->todo_tail = &j->next;
		pthread_cond_signal(&t->cond);
		pthread_mutex_unlock(&t->mu);
	}
	if (w) {
		*e->wtail = w;
		e->wtail = &w->next;
	}
	return 0;
}

/* ---- API ------------------------------------------------------------------------ */

/* The end of tts_close(), once the uv_async_t is closed. */
static void destroy(struct tts *t)
{
	struct waiter *w;
	struct entry *e;

	/* Every outstanding request gets ECANCELED, one at a time (a
	 * handler may still call tts_cancel). */
	while ((e = t->pend_head)) {
		answer_waiters(t, e, ECANCELED, NULL);
		entry_free(t, e);
	}
	for (w = t->ready; w; w = w->next) {
		w->err = ECANCELED;
		w->pcm = audio_buf_unref(w->pcm);
	}
	while ((w = t->ready)) {
		t->ready = w->next;
		if (!t->ready)
			t->ready_tail = &t->ready;
		w->h(w->arg, w->err, NULL);
		free(w);
	}
	while ((e = t->lru_head))
		entry_free(t, e);
	if (t->mu_ready) {
		pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->mu);
	}
	free(t);
}

static void close_cb(uv_handle_t *hd)
{
	destroy(hd->data);
}

static void free_jobs(struct job *j)
{
	while (j) {
		struct job *next = j->next;

		audio_buf_unref(j->pcm);
		free(j);
		j = next;
	}
}

/* Starts a text-to-speech engine on loop with an espeak-ng voice (NULL for
 * TTS_DEFAULT_VOICE; "en-us+klatt" style variants work). Waits for the
 * synthesis thread to initialise espeak and select the voice (a few ms, at
 * start-up), so that a bad voice is reported here: EINVAL with cause. EIO
 * when espeak cannot start. */
int tts_alloc(struct tts **out, uv_loop_t *loop, const char *voice,
	      char **cause)
{
	struct tts *t = NULL;
	int err;

	if (!out || !loop)
		return EINVAL;
	if (!voice)
		voice = TTS_DEFAULT_VOICE;
	if (!voice[0] || strlen(voice) >= sizeof t->voice ||
	    strspn(voice, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			  "0123456789-_+") != strlen(voice)) {
		if (cause)
			*cause = strdup("bad voice name");
		return EINVAL;
	}
	t = calloc(1, sizeof *t);
	if (!t)
		return ENOMEM;
	t->loop = loop;
	snprintf(t->voice, sizeof t->voice, "%s", voice);
	t->ready_tail = &t->ready;
	t->todo_tail = &t->todo;
	t->done_tail = &t->done;
	atomic_init(&t->abort, false);
	if (pthread_mutex_init(&t->mu, NULL)) {
		free(t);
		return ENOMEM;
	}
	if (pthread_cond_init(&t->cond, NULL)) {
		pthread_mutex_destroy(&t->mu);
		free(t);
		return ENOMEM;
	}
	t->mu_ready = true;
	err = uv_async_init(loop, &t->async, async_cb);
	if (err) {
		pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->mu);
		free(t);
		return ENOMEM;
	}
	t->async.data = t;
	t->async_ready = true;
	err = pthread_create(&t->thread, NULL, thread_main, t);
	if (err)
		goto out;
	t->thread_started = true;
	pthread_mutex_lock(&t->mu);
	while (!t->init_done)
		pthread_cond_wait(&t->cond, &t->mu);
	err = t->init_err;
	pthread_mutex_unlock(&t->mu);
	if (err) {
		if (cause)
			*cause = strdup(t->init_cause);
		goto out;
	}
	log_info("voice %s ready", t->voice);
	*out = t;
	t = NULL;
out:
	if (t)
		tts_close(t);
	return err;
}

/* Asks for text as speech: h(arg, ...) is called once from the loop, also
 * for a cached text (next loop turn). 0; EINVAL for a bad text (too long,
 * empty once cleaned) or no handler; EAGAIN when TTS_QUEUE_MAX texts wait;
 * ESHUTDOWN after tts_close(); ENOMEM. On error h is never called. */
int tts_speak(struct tts *t, const char *text, tts_done_h *h, void *arg)
{
	char clean[TTS_TEXT_MAX + 1];
	struct waiter *w;
	int err;

	if (!t || !text || !h)
		return EINVAL;
	if (t->closing)
		return ESHUTDOWN;
	err = tts_clean_text(clean, sizeof clean, text);
	if (err)
		return err;
	w = calloc(1, sizeof *w);
	if (!w)
		return ENOMEM;
	w->h = h;
	w->arg = arg;
	err = request(t, clean, w);
	if (err)
		free(w);
	return err;
}

/* Withdraws every request of (h, arg) not answered yet: h is never called
 * with arg for them. The synthesis itself goes on and is cached. */
void tts_cancel(struct tts *t, tts_done_h *h, void *arg)
{
	struct waiter **pp, *w;

	if (!t)
		return;
	for (pp = &t->ready; (w = *pp);) {
		if (w->h == h && w->arg == arg) {
			*pp = w->next;
			audio_buf_unref(w->pcm);
			free(w);
		} else {
			pp = &w->next;
		}
	}
	t->ready_tail = pp;
	for (struct entry *e = t->pend_head; e; e = e->next) {
		for (pp = &e->waiters; (w = *pp);) {
			if (w->h == h && w->arg == arg) {
				*pp = w->next;
				free(w);
			} else {
				pp = &w->next;
			}
		}
		e->wtail = pp;
	}
}

/* The cached speech of text as a new reference (drop it with
 * audio_buf_unref), or NULL when it is not synthesised yet (or the text is
 * bad). Never starts a synthesis: see tts_prewarm(). */
struct audio_buf *tts_cached(struct tts *t, const char *text)
{
	char clean[TTS_TEXT_MAX + 1];
	struct entry *e;

	if (!t || !text || t->closing ||
	    tts_clean_text(clean, sizeof clean, text))
		return NULL;
	e = entry_find(t, clean, hash_text(clean));
	if (!e || e->state != ENTRY_READY)
		return NULL;
	entry_unlist(t, e);
	entry_list_front(t, e);
	return audio_buf_ref(e->pcm);
}

/* Starts synthesising texts[0..n) into the cache, with no handler (fixed
 * prompts at start-up; a call's greeting at INVITE time). EINVAL when any
 * text is bad, and then nothing is queued; EAGAIN, ESHUTDOWN, ENOMEM. */
int tts_prewarm(struct tts *t, const char *const texts[], size_t n)
{
	char clean[TTS_TEXT_MAX + 1];
	int err;

	if (!t || (n && !texts))
		return EINVAL;
	if (t->closing)
		return ESHUTDOWN;
	for (size_t i = 0; i < n; i++) {
		if (!texts[i] || tts_clean_text(clean, sizeof clean, texts[i]))
			return EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		tts_clean_text(clean, sizeof clean, texts[i]);
		err = request(t, clean, NULL);
		if (err)
			return err;
	}
	return 0;
}

/* Stops the synthesis thread (a synthesis under way is aborted within one
 * espeak buffer, so this blocks the loop for about a millisecond — longer
 * only if another tts object's thread holds espeak) and closes t. The
 * outstanding requests are answered with ECANCELED from the loop, then the
 * memory goes with the uv_async_t's close callback: the loop must run once
 * more. Cached buffers the caller still references stay valid. */
void tts_close(struct tts *t)
{
	if (!t || t->closing)
		return;
	t->closing = true;
	if (t->thread_started) {
		pthread_mutex_lock(&t->mu);
		t->stop = true;
		atomic_store(&t->abort, true);
		pthread_cond_broadcast(&t->cond);
		pthread_mutex_unlock(&t->mu);
		pthread_join(t->thread, NULL);
		t->thread_started = false;
	}
	/* The thread is gone: the queues are ours. Entries of finished or
	 * unstarted jobs stay pending and are cancelled in close_cb. */
	free_jobs(t->todo);
	free_jobs(t->done);
	t->todo = t->done = NULL;
	t->todo_tail = &t->todo;
	t->done_tail = &t->done;
	if (t->async_ready)
		uv_close((uv_handle_t *)&t->async, close_cb);
	else
		destroy(t);
}
