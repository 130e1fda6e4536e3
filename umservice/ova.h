/* ova.h — subscriber access by phone ("Outlook Voice Access", touch-tone):
 * logon with extension and PIN, the voice mail menus (play, save, delete,
 * mark unread, rewind, forward, pause, replay, envelope, previous), and
 * personal options (out-of-office greeting on/off, record a greeting,
 * change the PIN).
 *
 * call.c owns the SIP dialog and the media session; it creates an ova for a
 * subscriber access call, feeds it the media events and ends it when the
 * call ends. The ova speaks through the media session, reads and changes
 * the store through the voicemail writer's thread, checks PINs and changes
 * the directory on libuv's thread pool: nothing here blocks the loop.
 * Everything runs on the loop thread. */
#ifndef OPENUM_OVA_H
#define OPENUM_OVA_H

#include <stddef.h>
#include <stdint.h>

struct call_env;
struct media;
struct ova;

/* Digit collection and prompt timing (ms). */
#define OVA_NO_INPUT_MS 5000
#define OVA_INTERDIGIT_MS 3000
#define OVA_SECOND_KEY_MS 1000	/* "0" vs "0 0", "0 0 1" vs "0 0 1 1" */
#define OVA_SKIP_MS 5000	/* rewind / forward step */
#define OVA_KEYS_MAX 64		/* typed-ahead keys kept; more are dropped */
#define OVA_DIGITS_MAX 24	/* longest extension or PIN collected */

/* What the application needs of its call. Strings are copied. */
struct ova_call {
	struct call_env *env;
	struct media *media;
	const char *call_id, *peer, *caller, *dialplan;
	/* Ends the call (BYE); the call then calls ova_end(). */
	void (*hangup_h)(void *arg, const char *why);
	void *arg;
};

int ova_alloc(struct ova **out, const struct ova_call *c);
/* Media flows: the welcome prompt starts. */
void ova_start(struct ova *o);
void ova_dtmf(struct ova *o, char key);
void ova_play_done(struct ova *o);
void ova_frame(struct ova *o, const int16_t *pcm, size_t n);
/* The call is over: the media is gone; the memory follows its jobs. */
void ova_end(struct ova *o);

/* The fixed prompts, for pre-synthesis at start-up (NULL-terminated). */
extern const char *const ova_prompts[];

#endif
