/* test_tts.c — text to speech on a real libuv loop: the greeting's length
 * and level, handlers on the loop thread and never re-entrant, the cache,
 * concurrent requests from two engines (espeak is process-global), text
 * cleaning, bad input, cancel and close with requests in flight. */
#include "tests/unit/unit.h"
#include "umservice/tts.h"
#include "common/log.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

int test_tts_clean_text(void);
int test_tts_greeting(void);
int test_tts_concurrent(void);
int test_tts_control_chars(void);
int test_tts_bad_input(void);
int test_tts_cancel_and_close(void);
int test_tts_prewarm(void);

static const char greeting[] =
	"You have reached the voice mailbox of Alex Example, extension 1001.";

static const char *const texts[8] = {
	"Please leave a message after the tone.",
	"When you have finished, hang up or press the pound key.",
	"Your message has been recorded. Goodbye.",
	"You have reached the voice mailbox of Sarah Connor, extension 2002.",
	"The mailbox is full.",
	"You have one minute left.",
	"Hi, this is Michael Brown. Please call me back at five five five, one two three four.",
	"Goodbye.",
};

struct res {
	int calls;
	int err;
	struct audio_buf *pcm; /* a reference */
	bool on_loop_thread;
	double at_ms;
	struct tts *close_me;
};

static pthread_t loop_thread;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void done_h(void *arg, int err, struct audio_buf *pcm)
{
	struct res *r = arg;

	r->calls++;
	r->err = err;
	r->on_loop_thread = pthread_equal(pthread_self(), loop_thread);
	r->at_ms = now_ms();
	if (pcm) {
		audio_buf_unref(r->pcm);
		r->pcm = audio_buf_ref(pcm);
	}
	if (r->close_me)
		tts_close(r->close_me);
}

/* Runs loop until every r[0..n) is answered. */
static void wait_all(uv_loop_t *loop, struct res *r, size_t n)
{
	for (;;) {
		size_t left = 0;

		for (size_t i = 0; i < n; i++)
			left += r[i].calls == 0;
		if (!left)
			return;
		uv_run(loop, UV_RUN_ONCE);
	}
}

static void res_clear(struct res *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		audio_buf_unref(r[i].pcm);
	memset(r, 0, n * sizeof *r);
}

static int loop_close(uv_loop_t *loop)
{
	uv_run(loop, UV_RUN_DEFAULT); /* close callbacks */
	return uv_loop_close(loop);
}

int test_tts_clean_text(void)
{
	char out[TTS_TEXT_MAX + 1], big[TTS_TEXT_MAX + 2];

	UT_ASSERT_INT(tts_clean_text(out, sizeof out, "  Alex\tExample\r\n"), 0);
	UT_ASSERT_STR(out, "Alex Example");
	UT_ASSERT_INT(tts_clean_text(out, sizeof out, "A\x01\x07\x1b[31mB\x7f" "C"), 0);
	UT_ASSERT_STR(out, "A [31mB C");
	/* C1 controls (U+0085), bidi override, zero-width space, BOM. */
	UT_ASSERT_INT(tts_clean_text(out, sizeof out,
				     "Ana\xc2\x85Lu\xe2\x80\xaeis\xe2\x80\x8bx\xef\xbb\xbf"), 0);
	UT_ASSERT_STR(out, "Ana Luisx");
	/* Markup goes, a lone bracket is a space, text around stays. */
	UT_ASSERT_INT(tts_clean_text(out, sizeof out,
				     "Bob <speak><voice gender=\"female\">Evil</voice> 3 > 2 < 5"), 0);
	UT_ASSERT_STR(out, "Bob Evil 3 2 5");
	/* Invalid UTF-8 (lone continuation, overlong, surrogate) is a space;
	 * valid accents stay. */
	UT_ASSERT_INT(tts_clean_text(out, sizeof out,
				     "Ren\xc3\xa9\x80X\xc0\xafY\xed\xa0\x80Z"), 0);
	UT_ASSERT_STR(out, "Ren\xc3\xa9 X Y Z");
	/* Truncated sequence at the end. */
	UT_ASSERT_INT(tts_clean_text(out, sizeof out, "Jos\xc3"), 0);
	UT_ASSERT_STR(out, "Jos");
	UT_ASSERT_INT(tts_clean_text(out, sizeof out, ""), EINVAL);
	UT_ASSERT_INT(tts_clean_text(out, sizeof out, " \x01\n<b>"), EINVAL);
	memset(big, 'a', sizeof big);
	big[TTS_TEXT_MAX] = '\0';
	UT_ASSERT_INT(tts_clean_text(out, sizeof out, big), 0);
	UT_ASSERT_INT(strlen(out), TTS_TEXT_MAX);
	big[TTS_TEXT_MAX] = 'a';
	big[TTS_TEXT_MAX + 1] = '\0';
	UT_ASSERT_INT(tts_clean_text(out, sizeof out, big), EINVAL);
	UT_ASSERT_INT(tts_clean_text(out, 4, "hello"), EINVAL);
	return 0;
}

int test_tts_greeting(void)
{
	uv_loop_t loop;
	struct tts *t = NULL;
	struct res r[2] = {0};
	struct audio_buf *c;
	const int16_t *p;
	size_t n, lead = 0;
	double t0, t1, rms, peak = 0.0;
	char *cause = NULL;

	loop_thread = pthread_self();
	log_set_level(LOG_LEVEL_DEBUG); /* the synthesis timings */
	UT_ASSERT_INT(uv_loop_init(&loop), 0);
	UT_ASSERT_INT(tts_alloc(&t, &loop, NULL, &cause), 0);
	UT_ASSERT(tts_cached(t, greeting) == NULL);

	t0 = now_ms();
	UT_ASSERT_INT(tts_speak(t, greeting, done_h, &r[0]), 0);
	wait_all(&loop, r, 1);
	t1 = r[0].at_ms;
	UT_ASSERT_INT(r[0].calls, 1);
	UT_ASSERT_INT(r[0].err, 0);
	UT_ASSERT(r[0].on_loop_thread);
	p = audio_buf_pcm(r[0].pcm);
	n = audio_buf_samples(r[0].pcm);
	fprintf(stderr, "  greeting: %zu samples (%.2f s) in %.1f ms\n", n,
		n / 8000.0, t1 - t0);
	UT_ASSERT(n >= 2.5 * 8000 && n <= 8.0 * 8000);
	rms = audio_rms(p, n);
	for (size_t i = 0; i < n; i++)
		peak = fmax(peak, fabs((double)p[i]));
	fprintf(stderr, "  level: peak %.1f dBFS, rms %.1f dBFS\n",
		audio_dbfs(peak), audio_dbfs(rms));
	UT_ASSERT(rms > 1000.0);
	UT_ASSERT(peak <= 0.71 * 32767 && peak >= 0.3 * 32767);
	UT_ASSERT(audio_dbfs(rms) <= -15.9);
	/* TTS_PAD_MS of digital silence first, speech soon after. */
	while (lead < n && p[lead] == 0)
		lead++;
	UT_ASSERT(lead >= TTS_PAD_MS * 8 && lead <= TTS_PAD_MS * 8 + 400);
	UT_ASSERT(audio_rms(p, TTS_PAD_MS * 8) == 0.0);
	UT_ASSERT(audio_rms(p + n - TTS_PAD_MS * 8, TTS_PAD_MS * 8) == 0.0);

	/* Cached: the same buffer, answered on the next loop turn, never from
	 * inside tts_speak(). */
	t0 = now_ms();
	UT_ASSERT_INT(tts_speak(t, greeting, done_h, &r[1]), 0);
	UT_ASSERT_INT(r[1].calls, 0);
	wait_all(&loop, &r[1], 1);
	UT_ASSERT(r[1].at_ms - t0 < 5.0);
	UT_ASSERT_INT(r[1].err, 0);
	UT_ASSERT(r[1].pcm == r[0].pcm);
	UT_ASSERT(r[1].on_loop_thread);
	c = tts_cached(t, greeting);
	UT_ASSERT(c == r[0].pcm);
	c = audio_buf_unref(c);

	tts_close(t);
	/* The caller's references outlive the engine. */
	UT_ASSERT_INT(loop_close(&loop), 0);
	UT_ASSERT(audio_buf_samples(r[0].pcm) == n);
	res_clear(r, 2);
	UT_ASSERT_INT(r[0].calls, 0);
	return 0;
}

int test_tts_concurrent(void)
{
	uv_loop_t loop;
	struct tts *t = NULL, *t2 = NULL;
	struct res alone[8] = {0}, r[8] = {0}, r2[8] = {0}, dup = {0};
	size_t len[8];

	loop_thread = pthread_self();
	UT_ASSERT_INT(uv_loop_init(&loop), 0);

	/* Each text alone. */
	UT_ASSERT_INT(tts_alloc(&t, &loop, "en-us", NULL), 0);
	for (size_t i = 0; i < 8; i++) {
		UT_ASSERT_INT(tts_speak(t, texts[i], done_h, &alone[i]), 0);
		wait_all(&loop, &alone[i], 1);
		UT_ASSERT_INT(alone[i].err, 0);
		len[i] = audio_buf_samples(alone[i].pcm);
	}
	tts_close(t);
	uv_run(&loop, UV_RUN_NOWAIT);

	/* Then all at once, on two engines at once (two synthesis threads
	 * sharing the process-global espeak), plus a duplicate request that
	 * must share its synthesis. */
	UT_ASSERT_INT(tts_alloc(&t, &loop, "en-us", NULL), 0);
	UT_ASSERT_INT(tts_alloc(&t2, &loop, "en-us", NULL), 0);
	for (size_t i = 0; i < 8; i++) {
		UT_ASSERT_INT(tts_speak(t, texts[i], done_h, &r[i]), 0);
		UT_ASSERT_INT(tts_speak(t2, texts[7 - i], done_h, &r2[7 - i]), 0);
	}
	UT_ASSERT_INT(tts_speak(t, texts[3], done_h, &dup), 0);
	wait_all(&loop, r, 8);
	wait_all(&loop, r2, 8);
	wait_all(&loop, &dup, 1);
	for (size_t i = 0; i < 8; i++) {
		size_t a = audio_buf_samples(r[i].pcm);
		size_t b = audio_buf_samples(r2[i].pcm);

		UT_ASSERT_INT(r[i].calls, 1);
		UT_ASSERT_INT(r[i].err, 0);
		UT_ASSERT_INT(r2[i].err, 0);
		UT_ASSERT(r[i].on_loop_thread && r2[i].on_loop_thread);
		if (fabs((double)a - len[i]) > 0.02 * len[i] ||
		    fabs((double)b - len[i]) > 0.02 * len[i]) {
			fprintf(stderr, "  text %zu: alone %zu, now %zu and %zu\n",
				i, len[i], a, b);
			return 1;
		}
	}
	UT_ASSERT(dup.pcm == r[3].pcm);
	UT_ASSERT_INT(dup.calls, 1);
	tts_close(t);
	tts_close(t2);
	UT_ASSERT_INT(loop_close(&loop), 0);
	res_clear(alone, 8);
	res_clear(r, 8);
	res_clear(r2, 8);
	res_clear(&dup, 1);
	return 0;
}

int test_tts_control_chars(void)
{
	uv_loop_t loop;
	struct tts *t = NULL;
	struct res r[2] = {0};

	loop_thread = pthread_self();
	UT_ASSERT_INT(uv_loop_init(&loop), 0);
	UT_ASSERT_INT(tts_alloc(&t, &loop, NULL, NULL), 0);
	UT_ASSERT_INT(tts_speak(t, "Alex\x01\x07 Example\n", done_h, &r[0]), 0);
	wait_all(&loop, r, 1);
	UT_ASSERT_INT(r[0].err, 0);
	/* Same cleaned text, same cache entry. */
	UT_ASSERT_INT(tts_speak(t, "<voice gender='female'>Alex</voice>\tExample",
				done_h, &r[1]), 0);
	wait_all(&loop, &r[1], 1);
	UT_ASSERT(r[1].pcm == r[0].pcm);
	UT_ASSERT(audio_buf_ms(r[0].pcm) > 500 && audio_buf_ms(r[0].pcm) < 3000);
	tts_close(t);
	UT_ASSERT_INT(loop_close(&loop), 0);
	res_clear(r, 2);
	return 0;
}

int test_tts_bad_input(void)
{
	uv_loop_t loop;
	struct tts *t = NULL;
	struct res r = {0};
	char big[TTS_TEXT_MAX + 2];
	char *cause = NULL;
	const char *bad[] = {"fine", ""};

	loop_thread = pthread_self();
	UT_ASSERT_INT(uv_loop_init(&loop), 0);
	UT_ASSERT_INT(tts_alloc(&t, &loop, "xx-no-such-voice", &cause), EINVAL);
	UT_ASSERT(t == NULL && cause && strstr(cause, "xx-no-such-voice"));
	free(cause);
	cause = NULL;
	UT_ASSERT_INT(tts_alloc(&t, &loop, "en-us; rm -rf", &cause), EINVAL);
	free(cause);
	uv_run(&loop, UV_RUN_NOWAIT);

	UT_ASSERT_INT(tts_alloc(&t, &loop, "en-us", NULL), 0);
	memset(big, 'a', sizeof big);
	big[TTS_TEXT_MAX + 1] = '\0';
	UT_ASSERT_INT(tts_speak(t, big, done_h, &r), EINVAL);
	UT_ASSERT_INT(tts_speak(t, "\x01\x02 <x>", done_h, &r), EINVAL);
	UT_ASSERT_INT(tts_speak(t, NULL, done_h, &r), EINVAL);
	UT_ASSERT_INT(tts_speak(t, "hello", NULL, &r), EINVAL);
	UT_ASSERT_INT(tts_prewarm(t, bad, 2), EINVAL);
	UT_ASSERT(tts_cached(t, big) == NULL);
	/* Nothing was queued: "fine" is not synthesised. */
	uv_run(&loop, UV_RUN_NOWAIT);
	UT_ASSERT(tts_cached(t, "fine") == NULL);
	/* The longest text is fine. */
	for (size_t i = 0; i < TTS_TEXT_MAX; i++)
		big[i] = i % 6 == 5 ? ' ' : 'a' + (char)(i % 7);
	big[TTS_TEXT_MAX] = '\0';
	UT_ASSERT_INT(tts_speak(t, big, done_h, &r), 0);
	wait_all(&loop, &r, 1);
	UT_ASSERT_INT(r.err, 0);
	UT_ASSERT_INT(r.calls, 1);
	tts_close(t);
	UT_ASSERT_INT(tts_speak(t, "hello", done_h, &r), ESHUTDOWN);
	UT_ASSERT_INT(loop_close(&loop), 0);
	res_clear(&r, 1);
	return 0;
}

int test_tts_cancel_and_close(void)
{
	uv_loop_t loop;
	struct tts *t = NULL;
	struct res r[8] = {0}, c1 = {0}, c2 = {0};

	loop_thread = pthread_self();
	UT_ASSERT_INT(uv_loop_init(&loop), 0);

	/* Cancel one of two requests for a text. */
	UT_ASSERT_INT(tts_alloc(&t, &loop, NULL, NULL), 0);
	UT_ASSERT_INT(tts_speak(t, texts[0], done_h, &c1), 0);
	UT_ASSERT_INT(tts_speak(t, texts[0], done_h, &c2), 0);
	tts_cancel(t, done_h, &c1);
	wait_all(&loop, &c2, 1);
	UT_ASSERT_INT(c2.err, 0);
	c2.calls = 0;
	/* A cancelled cache hit too. */
	UT_ASSERT_INT(tts_speak(t, texts[0], done_h, &c1), 0);
	tts_cancel(t, done_h, &c1);
	UT_ASSERT_INT(tts_speak(t, texts[0], done_h, &c2), 0);
	wait_all(&loop, &c2, 1);
	uv_run(&loop, UV_RUN_NOWAIT);
	UT_ASSERT_INT(c2.calls, 1);
	UT_ASSERT_INT(c1.calls, 0);

	/* Close with 8 requests in flight: each answered once, ECANCELED,
	 * on the loop, after tts_close() returned. */
	for (size_t i = 0; i < 8; i++)
		UT_ASSERT_INT(tts_speak(t, texts[i], done_h, &r[i]), 0);
	tts_close(t);
	for (size_t i = 0; i < 8; i++)
		UT_ASSERT_INT(r[i].calls, 0);
	UT_ASSERT_INT(loop_close(&loop), 0);
	for (size_t i = 0; i < 8; i++) {
		/* texts[0] is cached: its answer was queued but not yet
		 * delivered, so it is cancelled like the others. */
		UT_ASSERT_INT(r[i].calls, 1);
		UT_ASSERT_INT(r[i].err, ECANCELED);
		UT_ASSERT(r[i].pcm == NULL);
		UT_ASSERT(r[i].on_loop_thread);
	}
	res_clear(r, 8);

	/* Close from inside a handler: the rest are cancelled. */
	UT_ASSERT_INT(uv_loop_init(&loop), 0);
	UT_ASSERT_INT(tts_alloc(&t, &loop, NULL, NULL), 0);
	r[0].close_me = t;
	UT_ASSERT_INT(tts_speak(t, texts[7], done_h, &r[0]), 0);
	for (size_t i = 1; i < 8; i++)
		UT_ASSERT_INT(tts_speak(t, texts[i - 1], done_h, &r[i]), 0);
	UT_ASSERT_INT(loop_close(&loop), 0);
	UT_ASSERT_INT(r[0].calls, 1);
	UT_ASSERT_INT(r[0].err, 0);
	for (size_t i = 1; i < 8; i++) {
		UT_ASSERT_INT(r[i].calls, 1);
		UT_ASSERT(r[i].err == 0 || r[i].err == ECANCELED);
	}
	res_clear(r, 8);
	res_clear(&c1, 1);
	res_clear(&c2, 1);
	return 0;
}

int test_tts_prewarm(void)
{
	uv_loop_t loop;
	struct tts *t = NULL;
	struct audio_buf *b[3] = {NULL, NULL, NULL};
	double deadline = now_ms() + 20000;

	loop_thread = pthread_self();
	UT_ASSERT_INT(uv_loop_init(&loop), 0);
	UT_ASSERT_INT(tts_alloc(&t, &loop, "en-us+klatt", NULL), 0);
	UT_ASSERT_INT(tts_prewarm(t, texts, 3), 0);
	UT_ASSERT(tts_cached(t, texts[0]) == NULL);
	while (!(b[0] && b[1] && b[2])) {
		UT_ASSERT(now_ms() < deadline);
		uv_run(&loop, UV_RUN_ONCE);
		for (size_t i = 0; i < 3; i++) {
			if (!b[i])
				b[i] = tts_cached(t, texts[i]);
		}
	}
	for (size_t i = 0; i < 3; i++)
		UT_ASSERT(audio_buf_ms(b[i]) > 1000);
	tts_close(t);
	UT_ASSERT_INT(loop_close(&loop), 0);
	for (size_t i = 0; i < 3; i++)
		b[i] = audio_buf_unref(b[i]);
	return 0;
}
