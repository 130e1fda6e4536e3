/* tts.h — text to 8 kHz speech with espeak-ng's C library, off the loop
 * thread, cached by text.
 *
 * Threading: every tts_* function is called on the thread of `loop`, and
 * every handler runs there. espeak-ng keeps its state in globals and is not
 * re-entrant, so each tts object has one synthesis thread, and a process-wide
 * mutex serialises espeak between the synthesis threads of all tts objects
 * (normally there is one). Only those threads ever call espeak_*.
 *
 * Requests: every tts_speak() that returns 0 ends with exactly one call of
 * its handler, always from the loop and never from inside tts_speak() (a
 * cache hit too is answered on the next loop turn), unless tts_cancel()
 * withdraws it first. After tts_close() the outstanding requests are
 * answered with ECANCELED, from the loop, before the memory goes. Handlers
 * may call any tts function, tts_close() included.
 *
 * Audio: AUDIO_RATE mono int16, peak normalised to -3 dBFS (RMS capped at
 * -16 dBFS), espeak's own silence trimmed and TTS_PAD_MS of silence added at
 * each end. Buffers are shared with the cache and immutable: the handler's
 * buffer is borrowed for the call — audio_buf_ref() it to keep it.
 *
 * Text: untrusted UTF-8 (display names come from the directory), at most
 * TTS_TEXT_MAX bytes. It is cleaned before synthesis and the cleaned text is
 * the cache key: control characters (C0, DEL, C1), line/paragraph
 * separators and invalid UTF-8 become spaces; bidi, zero-width and other
 * invisible format characters (U+00AD, U+200B-U+200F, U+202A-U+202E,
 * U+2060-U+206F, U+FEFF) are removed; anything from '<' to the next '>' is
 * removed (markup) and a lone '<' or '>' becomes a space; white space is
 * collapsed and trimmed. espeak gets plain text (never espeakSSML nor
 * espeakPHONEMES). */
#ifndef OPENUM_TTS_H
#define OPENUM_TTS_H

#include <stddef.h>

#include <uv.h>

#include "umservice/audio.h"

/* Longest text accepted, in bytes before cleaning. */
#define TTS_TEXT_MAX 1000u
/* Audio kept in the cache (least recently used goes first). */
#define TTS_CACHE_BYTES (64u * 1024u * 1024u)
/* Most texts waiting for synthesis at once; beyond, tts_speak says EAGAIN. */
#define TTS_QUEUE_MAX 4096u
/* Silence before and after each synthesised text. */
#define TTS_PAD_MS 100u
#define TTS_DEFAULT_VOICE "en-us"

struct tts;

/* The answer to one tts_speak(). err 0: pcm holds the speech (borrowed, see
 * above). Otherwise pcm is NULL and err is ECANCELED (tts_close), EIO
 * (espeak failed) or ENOMEM. */
typedef void (tts_done_h)(void *arg, int err, struct audio_buf *pcm);

int tts_alloc(struct tts **out, uv_loop_t *loop, const char *voice,
	      char **cause);
int tts_speak(struct tts *t, const char *text, tts_done_h *h, void *arg);
void tts_cancel(struct tts *t, tts_done_h *h, void *arg);
struct audio_buf *tts_cached(struct tts *t, const char *text);
int tts_prewarm(struct tts *t, const char *const texts[], size_t n);
void tts_close(struct tts *t);

/* Exposed for tests: the cleaning described above into out (size TTS_TEXT_MAX
 * + 1 is always enough). 0, EINVAL (too long, or empty once cleaned). */
int tts_clean_text(char *out, size_t size, const char *text);

#endif
