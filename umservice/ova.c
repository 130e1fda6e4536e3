/* ova.c — subscriber access by phone; see ova.h.
 *
 *   welcome ─ extension (unless the caller's number is one) ─ PIN
 *     └ logon (thread pool: PBKDF2, FailedLogons, lock)
 *   "You have N new messages" ─ messages: envelope, audio, after-prompt
 *     keys: # next (saved)  7 delete  9 unread  1/3 back/forward 5 s
 *           2 pause  0 help  * main menu  00 1 replay  00 5 envelope
 *           00 11 previous
 *   main menu: 1 voice mail  4 personal options
 *   personal options: 1 OOF on/off  2 record a greeting  3 change the PIN
 *
 * Prompts: say() plays a sequence of items (TTS texts, tones, recorded
 * audio) in order; the items are synthesised in parallel and queued as
 * they become ready. A key pressed while a prompt plays stops it
 * (barge-in); keys typed ahead wait in a queue until a state takes input.
 * Each say() and each job carries the generation it belongs to, so an
 * answer that arrives after the caller moved on is dropped.
 *
 * Lifetime: the call holds one reference until ova_end(); every job in
 * flight (synthesis, store, directory) holds one; the memory goes with the
 * last, after the timer handle is closed. */
#define LOG_MODULE "ova"
#include "umservice/ova.h"
#include "common/directory.h"
#include "common/log.h"
#include "common/pin.h"
#include "common/rtab.h"
#include "common/vmstore.h"
#include "common/vmwriter.h"
#include "umservice/audio.h"
#include "umservice/call.h"
#include "umservice/greetings.h"
#include "umservice/media.h"
#include "umservice/spoken.h"
#include "umservice/tts.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

/* ---- the words ------------------------------------------------------------ */

const char *const ova_prompts[] = {
#define P_WELCOME ova_prompts[0]
	"Welcome to OpenUM voice mail.",
#define P_ASK_EXT ova_prompts[1]
	"Please enter your extension, followed by the pound key.",
#define P_ASK_PIN ova_prompts[2]
	"Please enter your PIN, followed by the pound key.",
#define P_BAD_EXT ova_prompts[3]
	"That extension is not valid.",
#define P_BAD_PIN ova_prompts[4]
	"That PIN is not correct.",
#define P_LOCKED ova_prompts[5]
	"Your mailbox is locked. Please contact your administrator. Goodbye.",
#define P_GOODBYE ova_prompts[6]
	"Goodbye.",
#define P_TROUBLE ova_prompts[7]
	"Sorry, I am having trouble understanding you. Goodbye.",
#define P_AFTER ova_prompts[8]
	"To keep this message and hear the next one, press pound. To delete "
	"it, press 7. For help, press 0.",
#define P_HELP ova_prompts[9]
	"Press pound for the next message, 7 to delete it, 9 to mark it "
	"unread, 1 to rewind, 3 to fast forward, 2 to pause, and star for "
	"the main menu. Press 0 0 then 1 to replay the message, 0 0 then 5 "
	"to hear who sent it and when, and 0 0 then 1 1 for the previous "
	"message.",
#define P_DELETED ova_prompts[10]
	"Message deleted.",
#define P_UNREAD ova_prompts[11]
	"Message marked unread.",
#define P_NO_MORE_NEW ova_prompts[12]
	"There are no more new messages. To hear saved messages, press 1. "
	"For the main menu, press star.",
#define P_NO_MORE_SAVED ova_prompts[13]
	"There are no more saved messages.",
#define P_MAIN ova_prompts[14]
	"Main menu. For voice mail, press 1. For personal options, press 4.",
#define P_PERSONAL ova_prompts[15]
	"To turn your out-of-office greeting on or off, press 1. To record a "
	"greeting, press 2. To change your PIN, press 3. For the main menu, "
	"press star.",
#define P_OOF_ON ova_prompts[16]
	"Your out-of-office greeting is now on.",
#define P_OOF_OFF ova_prompts[17]
	"Your out-of-office greeting is now off.",
#define P_GREET_KIND ova_prompts[18]
	"To record your standard greeting, press 1. To record your "
	"out-of-office greeting, press 2.",
#define P_GREET_RECORD ova_prompts[19]
	"Record your greeting after the tone. When you have finished, press "
	"the pound key.",
#define P_GREET_CONFIRM ova_prompts[20]
	"To keep this greeting, press 1. To record it again, press 2.",
#define P_GREET_SAVED ova_prompts[21]
	"Your greeting has been saved.",
#define P_GREET_EMPTY ova_prompts[22]
	"I did not hear anything.",
#define P_PIN_NEW ova_prompts[23]
	"Please enter your new PIN, followed by the pound key.",
#define P_PIN_AGAIN ova_prompts[24]
	"Please enter your new PIN again, followed by the pound key.",
#define P_PIN_MISMATCH ova_prompts[25]
	"The two PINs do not match.",
#define P_PIN_REFUSED ova_prompts[26]
	"That PIN is not allowed.",
#define P_PIN_CHANGED ova_prompts[27]
	"Your PIN has been changed.",
#define P_NO_NEW ova_prompts[28]
	"You have no new messages.",
#define P_ONE_NEW ova_prompts[29]
	"You have 1 new message.",
#define P_INVALID ova_prompts[30]
	"That is not a valid choice.",
#define P_FAILED ova_prompts[31]
	"Sorry, that did not work. Please try again later.",
#define P_NO_PIN ova_prompts[32]
	"Your mailbox has no PIN. Please contact your administrator. Goodbye.",
#define P_SAVED_MENU ova_prompts[33]
	"To hear saved messages, press 1. For the main menu, press star.",
	NULL,
};

/* ---- state ------------------------------------------------------------------ */

enum ova_state {
	S_IDLE,		/* nothing yet (before ova_start) */
	S_EXT,		/* collecting the extension */
	S_PIN,		/* collecting the PIN */
	S_LOGON,	/* PIN check in flight */
	S_LOADING,	/* a message list or audio is being read */
	S_ENVELOPE,	/* "Message 1. From ... Received ..." */
	S_AUDIO,	/* the message itself */
	S_PAUSED,
	S_AFTER,	/* after-message prompt, waiting for a key */
	S_MORE,		/* "0 0" typed: waiting for 1, 5 or 1 1 */
	S_NEWDONE,	/* no more new: 1 saved, * main menu */
	S_MAIN,
	S_PERSONAL,
	S_BUSY,		/* a directory or store change in flight */
	S_GREET_KIND,
	S_GREET_PROMPT,	/* "record after the tone" + tone */
	S_GREET_REC,
	S_GREET_CONFIRM,
	S_PIN_NEW,
	S_PIN_AGAIN,
	S_INFO,		/* a statement, then `then` runs */
	S_BYE,		/* goodbye, then hang up */
};

enum timer_kind { T_NONE, T_NO_INPUT, T_INTERDIGIT, T_SECOND_KEY };

#define SAY_MAX 8

struct say_item {
	struct audio_buf *buf;
	bool ready;
};

struct ova {
	struct call_env *env;
	struct media *media;
	int refs;
	bool ended;
	char call_id[160], peer[64], caller[129], dialplan[DIR_NAME_MAX + 1];
	char mailbox[OVA_DIGITS_MAX + 1], display[513];
	unsigned input_failures_max, logon_failures_max, idle_s;
	unsigned max_greeting_s;

	void (*hangup_h)(void *arg, const char *why);
	void *hangup_arg;

	enum ova_state st;
	unsigned gen;			/* bumps when the caller moves on */
	bool caller_is_mailbox;
	bool after_logon;		/* the first list: say the count */
	char reason[256];		/* why a new PIN was refused (spoken) */

	/* prompt playing */
	struct say_item item[SAY_MAX];
	unsigned n_items, next_item;
	bool saying;
	void (*then)(struct ova *o);	/* after S_INFO / S_BYE statements */

	/* input */
	char keys[OVA_KEYS_MAX];
	unsigned n_keys;
	char digits[OVA_DIGITS_MAX + 1];
	unsigned n_digits;
	bool collecting;		/* a string state got its first key */
	unsigned input_failures, logon_failures;
	uv_timer_t timer;
	enum timer_kind tk;
	char pending;			/* '0' or '1' waiting for its second */
	const char *reprompt[SAY_MAX];	/* what the current state asks */
	unsigned n_reprompt;

	/* messages */
	struct vm_message *msgs;
	size_t n_msgs, cur;
	enum vm_state list_state;	/* VM_STATE_NEW or VM_STATE_SAVED */
	struct audio_buf *audio;	/* the current message's */
	size_t pos;			/* pause / skip position */
	bool unread_marked;		/* 9 pressed for the current message */
	bool heard;			/* played to its end */

	/* greeting recording */
	enum vm_greeting greet_kind;
	int16_t *rec;
	size_t rec_n, rec_cap, last_speech_end;
	unsigned speech_ms;
	struct audio_vad vad;
	struct audio_buf *recorded;

	/* PIN change */
	char new_pin[OVA_DIGITS_MAX + 1];
};

static void process_keys(struct ova *o);
static void main_menu(struct ova *o, const char *before);
static void personal_menu(struct ova *o, const char *before);
static void play_current(struct ova *o);
static void next_message(struct ova *o);
static void load_list(struct ova *o, enum vm_state which);

/* ---- lifetime ------------------------------------------------------------------ */

static void ova_ref(struct ova *o)
{
	o->refs++;
}

static void free_cb(uv_handle_t *h)
{
	free(h->data);
}

static void drop_say(struct ova *o)
{
	for (unsigned i = 0; i < o->n_items; i++) {
		audio_buf_unref(o->item[i].buf);
		o->item[i].buf = NULL;
	}
	o->n_items = o->next_item = 0;
	o->saying = false;
}

static void ova_unref(struct ova *o)
{
	if (--o->refs > 0)
		return;
	drop_say(o);
	vmstore_messages_free(o->msgs, o->n_msgs);
	audio_buf_unref(o->audio);
	audio_buf_unref(o->recorded);
	free(o->rec);
	OPENSSL_cleanse(o->digits, sizeof o->digits);
	OPENSSL_cleanse(o->new_pin, sizeof o->new_pin);
	uv_close((uv_handle_t *)&o->timer, free_cb);
}

static bool live(const struct ova *o)
{
	return !o->ended && o->media;
}

static void timer_stop(struct ova *o)
{
	uv_timer_stop(&o->timer);
	o->tk = T_NONE;
}

static void timer_cb(uv_timer_t *t);

static void timer_start(struct ova *o, enum timer_kind k, uint64_t ms)
{
	uv_update_time(o->env->loop);	/* may run inside a sofia callback */
	o->tk = k;
	uv_timer_start(&o->timer, timer_cb, ms, 0);
}

static void hangup(struct ova *o, const char *why)
{
	if (o->ended)
		return;
	o->st = S_IDLE;
	timer_stop(o);
	/* hangup_h ends the call, which calls ova_end(): keep o alive. */
	ova_ref(o);
	if (o->hangup_h)
		o->hangup_h(o->hangup_arg, why);
	ova_unref(o);
}

/* ---- speaking ------------------------------------------------------------------ */

struct say_req {
	struct ova *o;
	unsigned gen, index;
};

static void said(struct ova *o);

/* Queues the ready items in order; when all are queued and played, the
 * state's continuation runs. */
static void pump(struct ova *o)
{
	if (!live(o) || !o->saying)
		return;
	while (o->next_item < o->n_items && o->item[o->next_item].ready) {
		if (o->item[o->next_item].buf)
			media_play(o->media, o->item[o->next_item].buf);
		o->next_item++;
	}
	if (o->next_item >= o->n_items && !media_playing(o->media)) {
		o->saying = false;
		said(o);
	}
}

static void say_cb(void *arg, int err, struct audio_buf *pcm)
{
	struct say_req *r = arg;
	struct ova *o = r->o;

	if (!o->ended && r->gen == o->gen && r->index < o->n_items &&
	    !o->item[r->index].ready) {
		if (err)
			log_warn("Call-ID %s: speech synthesis failed: %s",
				 o->call_id, strerror(err));
		else
			o->item[r->index].buf = audio_buf_ref(pcm);
		o->item[r->index].ready = true;
		pump(o);
	}
	free(r);
	ova_unref(o);
}

/* Stops whatever plays and starts a new sequence. Items: texts (TTS) or,
 * where texts[i] is NULL, bufs[i]. */
static void say_mixed(struct ova *o, const char *const *texts,
		      struct audio_buf *const *bufs, unsigned n)
{
	if (!live(o))
		return;
	media_play_stop(o->media);
	drop_say(o);
	o->gen++;
	if (n > SAY_MAX)
		n = SAY_MAX;
	o->n_items = n;
	o->saying = true;
	for (unsigned i = 0; i < n; i++) {
		/* tts_cached() gives a reference of its own; a tone is ours
		 * to reference. */
		struct audio_buf *b = texts[i] ? tts_cached(o->env->tts, texts[i])
				      : bufs && bufs[i] ? audio_buf_ref(bufs[i])
							: NULL;
		struct say_req *r;

		o->item[i].buf = NULL;
		o->item[i].ready = false;
		if (b || !texts[i]) {
			o->item[i].buf = b;
			o->item[i].ready = true;
			continue;
		}
		r = malloc(sizeof *r);
		if (!r) {
			o->item[i].ready = true;
			continue;
		}
		r->o = o;
		r->gen = o->gen;
		r->index = i;
		ova_ref(o);
		if (tts_speak(o->env->tts, texts[i], say_cb, r) != 0) {
			free(r);
			ova_unref(o);
			o->item[i].ready = true;
		}
	}
	pump(o);
}

static void say(struct ova *o, const char *const *texts, unsigned n)
{
	say_mixed(o, texts, NULL, n);
}

/* A statement, then `then`. Keys typed meanwhile wait. */
static void inform(struct ova *o, const char *text, void (*then)(struct ova *))
{
	const char *t[1] = {text};

	timer_stop(o);
	o->st = S_INFO;
	o->then = then;
	say(o, t, 1);
}

static void goodbye(struct ova *o, const char *text, const char *why)
{
	const char *t[1] = {text};

	timer_stop(o);
	o->st = S_BYE;
	o->n_keys = 0;
	log_info("Call-ID %s: subscriber access ends: %s", o->call_id, why);
	say(o, t, 1);
}

/* ---- input ---------------------------------------------------------------------- */

static bool string_state(enum ova_state st)
{
	return st == S_EXT || st == S_PIN || st == S_PIN_NEW || st == S_PIN_AGAIN;
}

static bool menu_state(enum ova_state st)
{
	return st == S_NEWDONE || st == S_MAIN || st == S_PERSONAL ||
	       st == S_GREET_KIND || st == S_GREET_CONFIRM;
}

static bool message_state(enum ova_state st)
{
	return st == S_ENVELOPE || st == S_AUDIO || st == S_PAUSED ||
	       st == S_AFTER || st == S_MORE;
}

/* A missing or wrong input: the same state asks again (why_text first),
 * or goodbye after InputFailuresBeforeDisconnect of them in a row. What
 * was typed ahead belonged to the wrong input and is dropped. */
static void input_failed(struct ova *o, const char *why_text)
{
	const char *t[SAY_MAX];
	unsigned n = 0;

	timer_stop(o);
	o->n_digits = 0;
	o->collecting = false;
	o->pending = 0;
	o->n_keys = 0;
	if (++o->input_failures >= o->input_failures_max) {
		goodbye(o, P_TROUBLE, "InputFailuresBeforeDisconnect reached");
		return;
	}
	if (why_text)
		t[n++] = why_text;
	for (unsigned i = 0; i < o->n_reprompt && n < SAY_MAX; i++)
		t[n++] = o->reprompt[i];
	say(o, t, n);
}

/* Asks: speaks texts[0..n) and waits in st for input (barge-in allowed);
 * a timeout or a wrong input repeats `re` (the question alone). */
static void ask_re(struct ova *o, enum ova_state st, const char *const *texts,
		   unsigned n, const char *re)
{
	timer_stop(o);
	o->st = st;
	o->n_digits = 0;
	o->collecting = false;
	o->pending = 0;
	o->reprompt[0] = re;
	o->n_reprompt = 1;
	say(o, texts, n > SAY_MAX ? SAY_MAX : n);
	process_keys(o);
}

static void ask2(struct ova *o, enum ova_state st, const char *before,
		 const char *text, const char *re)
{
	const char *t[2];
	unsigned n = 0;

	if (before)
		t[n++] = before;
	t[n++] = text;
	ask_re(o, st, t, n, re);
}

static void ask1(struct ova *o, enum ova_state st, const char *before,
		 const char *text)
{
	ask2(o, st, before, text, text);
}

/* ---- logon (thread pool) ----------------------------------------------------------- */

enum logon_result { LOGON_OK, LOGON_BAD_PIN, LOGON_LOCKED, LOGON_NO_PIN,
		    LOGON_NO_MAILBOX, LOGON_ERROR };

struct dir_job {
	uv_work_t work;
	struct ova *o;
	unsigned gen;
	char path[PATH_MAX];
	char dialplan[DIR_NAME_MAX + 1], mailbox[OVA_DIGITS_MAX + 1];
	char pin[OVA_DIGITS_MAX + 1];
	bool oof;		/* oof: the new value */
	/* results */
	int err;
	enum logon_result result;
	unsigned failures;
	bool locked;
	char display[513];
	unsigned max_greeting_min;
	char *cause;
};

static void dir_job_free(struct dir_job *j)
{
	OPENSSL_cleanse(j->pin, sizeof j->pin);
	free(j->cause);
	free(j);
}

static void logon_work(uv_work_t *w)
{
	struct dir_job *j = w->data;
	struct dir *d = NULL;
	struct dir_mailbox m;
	struct dir_policy pol;
	int err;

	j->result = LOGON_ERROR;
	err = dir_open(&d, j->path, 0, NULL, &j->cause);
	if (err) {
		j->err = err;
		return;
	}
	err = dir_mailbox_find(d, j->dialplan, j->mailbox, &m);
	if (err == ENOENT || (!err && !m.enabled)) {
		j->result = LOGON_NO_MAILBOX;
		goto out;
	}
	if (!err)
		err = dir_policy_get(d, m.policy, &pol);
	if (err) {
		j->err = err;
		goto out;
	}
	snprintf(j->display, sizeof j->display, "%s", m.display_name);
	j->max_greeting_min = pol.max_greeting_min;
	if (m.locked) {
		j->result = LOGON_LOCKED;
		j->locked = true;
		j->failures = m.failed_logons;
		goto out;
	}
	if (!m.pin_hash[0]) {
		j->result = LOGON_NO_PIN;
		goto out;
	}
	j->result = pin_verify(m.pin_hash, j->pin) == 0 ? LOGON_OK
							 : LOGON_BAD_PIN;
	err = dir_mailbox_logon_result(d, m.id, j->result == LOGON_OK,
				       pol.max_logon_attempts, &j->failures,
				       &j->locked);
	if (err) {
		j->err = err;
		j->result = LOGON_ERROR;
	}
out:
	OPENSSL_cleanse(j->pin, sizeof j->pin);
	dir_close(d);
}

static void welcome_counts(struct ova *o);

static void logon_done(uv_work_t *w, int status)
{
	struct dir_job *j = w->data;
	struct ova *o = j->o;

	if (o->ended || j->gen != o->gen || o->st != S_LOGON)
		goto out;
	if (status != 0 || j->err) {
		log_error("Call-ID %s: logon to mailbox %s: %s", o->call_id,
			  o->mailbox, j->cause ? j->cause
				      : strerror(j->err ? j->err : EIO));
		goodbye(o, P_FAILED, "directory error at logon");
		goto out;
	}
	switch (j->result) {
	case LOGON_OK:
		snprintf(o->display, sizeof o->display, "%s", j->display);
		o->max_greeting_s = j->max_greeting_min * 60;
		o->input_failures = 0;
		log_notice("subscriber access: mailbox %s (%s) logged on from %s, "
			   "Call-ID %s", o->mailbox, o->dialplan, o->peer,
			   o->call_id);
		welcome_counts(o);
		break;
	case LOGON_BAD_PIN:
		o->logon_failures++;
		if (j->locked) {
			log_warn("mailbox %s (%s) locked after %u failed logons; "
				 "the last from %s, Call-ID %s", o->mailbox,
				 o->dialplan, j->failures, o->peer, o->call_id);
			goodbye(o, P_LOCKED, "mailbox locked");
			break;
		}
		log_notice("logon failure %u for mailbox %s (%s) from %s "
			   "(%u in this call), Call-ID %s", j->failures,
			   o->mailbox, o->dialplan, o->peer, o->logon_failures,
			   o->call_id);
		if (o->logon_failures >= o->logon_failures_max) {
			const char *t[2] = {P_BAD_PIN, P_GOODBYE};

			o->st = S_BYE;
			say(o, t, 2);
			log_info("Call-ID %s: LogonFailuresBeforeDisconnect (%u) "
				 "reached", o->call_id, o->logon_failures_max);
			break;
		}
		o->n_keys = 0;
		ask1(o, S_PIN, P_BAD_PIN, P_ASK_PIN);
		break;
	case LOGON_LOCKED:
		log_notice("logon to locked mailbox %s (%s) refused, from %s, "
			   "Call-ID %s", o->mailbox, o->dialplan, o->peer,
			   o->call_id);
		goodbye(o, P_LOCKED, "mailbox locked");
		break;
	case LOGON_NO_PIN:
		log_notice("logon to mailbox %s (%s) from %s: it has no PIN",
			   o->mailbox, o->dialplan, o->peer);
		goodbye(o, P_NO_PIN, "mailbox without PIN");
		break;
	case LOGON_NO_MAILBOX:
		/* Disabled or removed since the extension was checked. */
		o->n_keys = 0;
		ask1(o, S_EXT, P_BAD_EXT, P_ASK_EXT);
		break;
	case LOGON_ERROR:
		goodbye(o, P_FAILED, "logon error");
		break;
	}
out:
	dir_job_free(j);
	ova_unref(o);
}

static struct dir_job *dir_job_new(struct ova *o)
{
	struct dir_job *j = calloc(1, sizeof *j);

	if (!j)
		return NULL;
	j->work.data = j;
	j->o = o;
	j->gen = o->gen;
	snprintf(j->path, sizeof j->path, "%s", o->env->dir_path);
	snprintf(j->dialplan, sizeof j->dialplan, "%s", o->dialplan);
	snprintf(j->mailbox, sizeof j->mailbox, "%s", o->mailbox);
	return j;
}

static int dir_job_queue(struct ova *o, struct dir_job *j, uv_work_cb work,
			 uv_after_work_cb after)
{
	int err;

	ova_ref(o);
	err = uv_queue_work(o->env->loop, &j->work, work, after);
	if (err) {
		ova_unref(o);
		dir_job_free(j);
		return -err;
	}
	return 0;
}

static void logon(struct ova *o, const char *pin)
{
	struct dir_job *j = dir_job_new(o);

	o->st = S_LOGON;
	if (!j) {
		goodbye(o, P_FAILED, "out of memory");
		return;
	}
	snprintf(j->pin, sizeof j->pin, "%s", pin);
	if (dir_job_queue(o, j, logon_work, logon_done) != 0)
		goodbye(o, P_FAILED, "cannot queue the logon");
}

/* ---- the store (voicemail writer's thread) ----------------------------------------- */

enum store_kind { ST_LIST, ST_COUNTS, ST_AUDIO, ST_STATE };

struct store_job {
	struct ova *o;
	unsigned gen;
	enum store_kind kind;
	char dialplan[DIR_NAME_MAX + 1], mailbox[OVA_DIGITS_MAX + 1];
	enum vm_state state;
	int64_t id;
	/* results */
	struct vm_message *msgs;
	size_t n;
	struct vm_counts counts;
	struct audio_buf *audio;
	void (*done)(struct ova *o, struct store_job *j, int err);
};

static int store_run(struct vmstore *vs, void *arg)
{
	struct store_job *j = arg;
	struct vm_filter f = {.mailbox = j->mailbox, .dialplan = j->dialplan,
			      .state = j->state};
	int16_t *pcm = NULL;
	size_t n = 0;
	int err;

	switch (j->kind) {
	case ST_LIST:
		return vmstore_list(vs, &f, &j->msgs, &j->n);
	case ST_COUNTS:
		return vmstore_counts(vs, j->mailbox, j->dialplan, &j->counts);
	case ST_AUDIO:
		err = vmstore_get_audio(vs, j->id, &pcm, &n);
		if (!err && n == 0)
			err = ENODATA;
		if (!err)
			err = audio_buf_from(&j->audio, pcm, n);
		free(pcm);
		return err;
	case ST_STATE:
		return vmstore_set_state(vs, j->id, j->state);
	}
	return EINVAL;
}

static void store_done(int err, int64_t id, int64_t ms, void *arg)
{
	struct store_job *j = arg;
	struct ova *o = j->o;

	(void)id;
	(void)ms;
	if (j->kind == ST_STATE && !err && o->env->mailbox_changed_h)
		o->env->mailbox_changed_h(o->env->mailbox_changed_arg,
					  j->dialplan, j->mailbox);
	if (j->kind == ST_STATE && err)
		log_warn("mailbox %s: message %lld not set to %s: %s",
			 j->mailbox, (long long)j->id,
			 vmstore_state_name(j->state), strerror(err));
	if (!o->ended && j->gen == o->gen && j->done)
		j->done(o, j, err);
	vmstore_messages_free(j->msgs, j->n);
	audio_buf_unref(j->audio);
	free(j);
	ova_unref(o);
}

static int store(struct ova *o, enum store_kind kind, enum vm_state state,
		 int64_t id,
		 void (*done)(struct ova *, struct store_job *, int))
{
	struct store_job *j = calloc(1, sizeof *j);
	int err;

	if (!j)
		return ENOMEM;
	j->o = o;
	j->gen = o->gen;
	j->kind = kind;
	j->state = state;
	j->id = id;
	j->done = done;
	snprintf(j->dialplan, sizeof j->dialplan, "%s", o->dialplan);
	snprintf(j->mailbox, sizeof j->mailbox, "%s", o->mailbox);
	ova_ref(o);
	err = vmwriter_run(o->env->vm, store_run, store_done, j);
	if (err) {
		free(j);
		ova_unref(o);
	}
	return err;
}

/* A state change that nobody waits for (the caller goes on at once). */
static void set_state(struct ova *o, int64_t id, enum vm_state state)
{
	log_info("mailbox %s: message %lld %s by phone, Call-ID %s", o->mailbox,
		 (long long)id,
		 state == VM_STATE_SAVED ? "saved"
		 : state == VM_STATE_DELETED ? "deleted" : "marked unread",
		 o->call_id);
	/* No continuation: the caller goes on at once. */
	if (store(o, ST_STATE, state, id, NULL) != 0)
		log_warn("mailbox %s: message %lld: the store is busy; its "
			 "state is unchanged", o->mailbox, (long long)id);
}

/* ---- after logon ---------------------------------------------------------------- */

static void count_words(char *buf, size_t len, unsigned n)
{
	if (n == 0)
		snprintf(buf, len, "%s", P_NO_NEW);
	else if (n == 1)
		snprintf(buf, len, "%s", P_ONE_NEW);
	else
		snprintf(buf, len, "You have %u new messages.", n);
}

static void list_loaded(struct ova *o, struct store_job *j, int err)
{
	char words[64];

	if (err) {
		log_error("Call-ID %s: cannot list the messages of %s: %s",
			  o->call_id, o->mailbox, strerror(err));
		goodbye(o, P_FAILED, "store error");
		return;
	}
	vmstore_messages_free(o->msgs, o->n_msgs);
	o->msgs = j->msgs;
	o->n_msgs = j->n;
	j->msgs = NULL;
	j->n = 0;
	o->cur = 0;
	if (o->n_msgs == 0) {
		o->after_logon = false;
		if (o->list_state == VM_STATE_NEW)
			ask1(o, S_NEWDONE, P_NO_NEW, P_SAVED_MENU);
		else
			main_menu(o, P_NO_MORE_SAVED);
		return;
	}
	if (o->after_logon) {
		/* Right after logon: "You have 2 new messages." */
		o->after_logon = false;
		count_words(words, sizeof words, (unsigned)o->n_msgs);
		inform(o, words, play_current);
		return;
	}
	play_current(o);
}

static void load_list(struct ova *o, enum vm_state which)
{
	o->st = S_LOADING;
	o->list_state = which;
	o->gen++;
	if (store(o, ST_LIST, which, 0, list_loaded) != 0)
		goodbye(o, P_FAILED, "store busy");
}

static void welcome_counts(struct ova *o)
{
	o->after_logon = true;
	load_list(o, VM_STATE_NEW);
}

/* ---- messages ---------------------------------------------------------------------- */

static void envelope_texts(struct ova *o, char (*t)[200])
{
	const struct vm_message *m = &o->msgs[o->cur];
	char from[160], when[64];
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	if (m->caller_name && m->caller_name[0])
		snprintf(from, sizeof from, "%s", m->caller_name);
	else if (m->caller_number && m->caller_number[0])
		spoken_digits(from, sizeof from, m->caller_number);
	else
		snprintf(from, sizeof from, "an unknown caller");
	spoken_when(when, sizeof when, m->received_utc_ms,
		      (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
	snprintf(t[0], sizeof t[0], "%sMessage %zu.", m->urgent ? "Urgent. " : "",
		 o->cur + 1);
	snprintf(t[1], sizeof t[1], "From %s.", from);
	snprintf(t[2], sizeof t[2], "Received %s.", when);
}

static void speak_envelope(struct ova *o)
{
	char t[3][200];
	const char *p[3] = {t[0], t[1], t[2]};

	envelope_texts(o, t);
	timer_stop(o);
	o->st = S_ENVELOPE;
	say(o, p, 3);
	process_keys(o);	/* keys typed ahead act on this message */
}

static void after_prompt(struct ova *o, const char *before)
{
	ask1(o, S_AFTER, before, P_AFTER);
}

/* The message's audio from o->pos. */
static void play_audio(struct ova *o)
{
	if (!live(o))
		return;
	timer_stop(o);
	media_play_stop(o->media);
	drop_say(o);
	o->gen++;
	if (!o->audio || o->pos >= audio_buf_samples(o->audio)) {
		o->st = S_AUDIO;
		ova_play_done(o);
		return;
	}
	o->st = S_AUDIO;
	media_play_at(o->media, o->audio, o->pos);
	process_keys(o);
}

static void audio_loaded(struct ova *o, struct store_job *j, int err)
{
	audio_buf_unref(o->audio);
	o->audio = NULL;
	if (err)
		log_warn("Call-ID %s: message %lld has no audio: %s", o->call_id,
			 (long long)j->id, strerror(err));
	else
		o->audio = audio_buf_ref(j->audio);
	o->pos = 0;
	speak_envelope(o);
}

/* Starts message o->cur: its audio is read, then the envelope plays. */
static void play_current(struct ova *o)
{
	if (o->cur >= o->n_msgs) {
		if (o->list_state == VM_STATE_NEW) {
			ask2(o, S_NEWDONE, NULL, P_NO_MORE_NEW, P_SAVED_MENU);
		} else
			main_menu(o, P_NO_MORE_SAVED);
		return;
	}
	o->unread_marked = false;
	o->heard = false;
	o->st = S_LOADING;
	o->gen++;
	if (store(o, ST_AUDIO, VM_STATE_ANY, o->msgs[o->cur].id,
		  audio_loaded) != 0)
		goodbye(o, P_FAILED, "store busy");
}

/* Leaving the current message: heard through or # makes a new one saved. */
static void leave_current(struct ova *o, bool save)
{
	struct vm_message *m;

	if (o->cur >= o->n_msgs)
		return;
	m = &o->msgs[o->cur];
	if (save && !o->unread_marked && m->state == VM_STATE_NEW) {
		m->state = VM_STATE_SAVED;
		set_state(o, m->id, VM_STATE_SAVED);
	}
}

static void next_message(struct ova *o)
{
	o->cur++;
	play_current(o);
}

static void to_next(struct ova *o)
{
	next_message(o);
}

static void message_key(struct ova *o, char key)
{
	struct vm_message *m = &o->msgs[o->cur];
	size_t len = o->audio ? audio_buf_samples(o->audio) : 0;
	size_t skip = OVA_SKIP_MS * 8;

	if (o->st == S_MORE) {
		if (o->pending == '1') {
			timer_stop(o);
			o->pending = 0;
			if (key == '1') {	/* 0 0 1 1: previous */
				if (o->cur > 0)
					o->cur--;
				play_current(o);
				return;
			}
		}
		switch (key) {
		case '1':
			o->pending = '1';
			timer_start(o, T_SECOND_KEY, OVA_SECOND_KEY_MS);
			return;
		case '5':
			speak_envelope(o);
			o->then = NULL;
			return;
		default:
			after_prompt(o, P_INVALID);
			return;
		}
	}
	if (o->pending == '0') {
		timer_stop(o);
		o->pending = 0;
		if (key == '0') {
			if (live(o) && o->st == S_AUDIO) {
				media_play_position(o->media, &o->pos);
				media_play_stop(o->media);
			}
			o->st = S_MORE;
			timer_start(o, T_NO_INPUT, OVA_NO_INPUT_MS);
			return;
		}
	}
	switch (key) {
	case '#':
		leave_current(o, true);
		to_next(o);
		break;
	case '7':
		m->state = VM_STATE_DELETED;
		set_state(o, m->id, VM_STATE_DELETED);
		inform(o, P_DELETED, to_next);
		break;
	case '9':
		o->unread_marked = true;
		if (m->state != VM_STATE_NEW) {
			m->state = VM_STATE_NEW;
			set_state(o, m->id, VM_STATE_NEW);
		}
		inform(o, P_UNREAD, to_next);
		break;
	case '1':
	case '3':
		if (!len || o->st == S_ENVELOPE ||
		    (o->st == S_AFTER && key == '3' && o->heard))
			break;
		if (o->st == S_AUDIO && live(o))
			media_play_position(o->media, &o->pos);
		else if (o->st == S_AFTER && o->heard)
			o->pos = len;	/* 1 after the end: its last 5 s */
		if (key == '1')
			o->pos = o->pos > skip ? o->pos - skip : 0;
		else
			o->pos += skip;
		if (o->st == S_PAUSED)
			break;	/* the new position plays on resume */
		if (o->pos >= len) {
			o->pos = len;
			if (o->st == S_AUDIO)
				ova_play_done(o);
			break;
		}
		play_audio(o);
		break;
	case '2':
		if (o->st == S_AUDIO && live(o) && media_playing(o->media)) {
			media_play_position(o->media, &o->pos);
			media_play_stop(o->media);
			o->st = S_PAUSED;
		} else if (o->st == S_PAUSED) {
			play_audio(o);
		}
		break;
	case '0':
		o->pending = '0';
		timer_start(o, T_SECOND_KEY, OVA_SECOND_KEY_MS);
		break;
	case '*':
		main_menu(o, NULL);
		break;
	default:
		break;
	}
}

/* ---- menus --------------------------------------------------------------------------- */

static void main_menu(struct ova *o, const char *before)
{
	ask1(o, S_MAIN, before, P_MAIN);
}

static void personal_menu(struct ova *o, const char *before)
{
	ask1(o, S_PERSONAL, before, P_PERSONAL);
}

/* OOF on/off and PIN change: the directory, on the thread pool. */
static void oof_work(uv_work_t *w)
{
	struct dir_job *j = w->data;
	struct dir *d = NULL;
	struct dir_mailbox m;

	j->err = dir_open(&d, j->path, 0, NULL, &j->cause);
	if (j->err)
		return;
	j->err = dir_mailbox_find(d, j->dialplan, j->mailbox, &m);
	if (!j->err) {
		j->oof = !m.oof_enabled;
		j->err = dir_mailbox_set_oof(d, m.id, j->oof);
	}
	dir_close(d);
}

static void oof_done(uv_work_t *w, int status)
{
	struct dir_job *j = w->data;
	struct ova *o = j->o;

	if (!status && !j->err) {
		log_notice("mailbox %s (%s): out-of-office greeting turned %s by "
			   "phone, Call-ID %s", j->mailbox, j->dialplan,
			   j->oof ? "on" : "off", o->call_id);
		if (o->env->directory_changed_h)
			o->env->directory_changed_h(o->env->directory_changed_arg,
						    "out-of-office set by phone");
	} else {
		log_error("mailbox %s: cannot change the out-of-office setting: "
			  "%s", j->mailbox, j->cause ? j->cause
				  : strerror(j->err ? j->err : EIO));
	}
	if (!o->ended && j->gen == o->gen)
		personal_menu(o, status || j->err ? P_FAILED
				 : j->oof ? P_OOF_ON : P_OOF_OFF);
	dir_job_free(j);
	ova_unref(o);
}

static void pin_work(uv_work_t *w)
{
	struct dir_job *j = w->data;
	struct dir *d = NULL;
	char identity[DIR_NAME_MAX + OVA_DIGITS_MAX + 2];
	struct dir_param p = {.name = "pin", .value = j->pin};

	j->err = dir_open(&d, j->path, 0, NULL, &j->cause);
	if (j->err)
		return;
	snprintf(identity, sizeof identity, "%s/%s", j->dialplan, j->mailbox);
	j->err = dir_obj_set(d, DIR_OBJ_MAILBOX, identity, &p, 1, &j->cause);
	OPENSSL_cleanse(j->pin, sizeof j->pin);
	dir_close(d);
}

/* "--pin: the PIN must ..." → "The PIN must ...". */
static void reason_text(char *buf, size_t len, const char *cause)
{
	const char *c = cause ? cause : "";

	if (!strncmp(c, "--pin: ", 7))
		c += 7;
	if (!strncmp(c, "refused: ", 9))
		c += 9;
	snprintf(buf, len, "%s", c);
	if (buf[0] >= 'a' && buf[0] <= 'z')
		buf[0] = (char)(buf[0] - 'a' + 'A');
	/* Spoken: "(PINHistoryCount)" and the like are for administrators. */
	{
		char *paren = strchr(buf, '(');

		if (paren)
			*paren = '\0';
	}
}

static void pin_done(uv_work_t *w, int status)
{
	struct dir_job *j = w->data;
	struct ova *o = j->o;

	if (!status && !j->err) {
		log_notice("mailbox %s (%s): PIN changed by phone from %s, "
			   "Call-ID %s", j->mailbox, j->dialplan, o->peer,
			   o->call_id);
		if (!o->ended && j->gen == o->gen)
			personal_menu(o, P_PIN_CHANGED);
	} else if (j->err == EINVAL) {
		log_notice("mailbox %s (%s): PIN change by phone refused: %s",
			   j->mailbox, j->dialplan, j->cause ? j->cause : "?");
		if (!o->ended && j->gen == o->gen) {
			/* The reason is said once; a timeout repeats only
			 * the question. */
			const char *t[3] = {P_PIN_REFUSED, o->reason, P_PIN_NEW};

			reason_text(o->reason, sizeof o->reason, j->cause);
			ask_re(o, S_PIN_NEW, t, 3, P_PIN_NEW);
		}
	} else {
		log_error("mailbox %s: PIN change failed: %s", j->mailbox,
			  j->cause ? j->cause : strerror(j->err ? j->err : EIO));
		if (!o->ended && j->gen == o->gen)
			personal_menu(o, P_FAILED);
	}
	dir_job_free(j);
	ova_unref(o);
}

static void start_dir_change(struct ova *o, uv_work_cb work,
			     uv_after_work_cb after, const char *pin)
{
	struct dir_job *j;

	timer_stop(o);
	o->st = S_BUSY;
	o->gen++;
	j = dir_job_new(o);
	if (!j) {
		personal_menu(o, P_FAILED);
		return;
	}
	if (pin)
		snprintf(j->pin, sizeof j->pin, "%s", pin);
	if (dir_job_queue(o, j, work, after) != 0)
		personal_menu(o, P_FAILED);
}

/* ---- greeting recording ------------------------------------------------------------ */

static void greeting_prompt(struct ova *o, const char *before)
{
	const char *t[3];
	struct audio_buf *b[3] = {NULL, NULL, NULL};
	unsigned n = 0;

	timer_stop(o);
	if (before)
		t[n++] = before;
	t[n++] = P_GREET_RECORD;
	t[n] = NULL;
	b[n++] = o->env->beep;
	o->st = S_GREET_PROMPT;
	o->rec_n = 0;
	o->speech_ms = 0;
	o->last_speech_end = 0;
	say_mixed(o, t, b, n);
}

static void greeting_end(struct ova *o, const char *why)
{
	size_t keep;

	if (o->st != S_GREET_REC)
		return;
	if (live(o))
		media_receive(o->media, false);
	timer_stop(o);
	log_info("Call-ID %s: greeting recording ended (%s): %.1f s, %u ms of "
		 "sound", o->call_id, why, (double)o->rec_n / 8000.0,
		 o->speech_ms);
	if (o->speech_ms < 300) {
		if (++o->input_failures >= o->input_failures_max) {
			goodbye(o, P_TROUBLE, "no greeting recorded");
			return;
		}
		greeting_prompt(o, P_GREET_EMPTY);
		return;
	}
	keep = o->last_speech_end + 4000;
	if (keep > o->rec_n)
		keep = o->rec_n;
	audio_buf_unref(o->recorded);
	o->recorded = NULL;
	if (audio_buf_from(&o->recorded, o->rec, keep) != 0) {
		personal_menu(o, P_FAILED);
		return;
	}
	ask1(o, S_GREET_CONFIRM, NULL, P_GREET_CONFIRM);
}

static void greeting_saved(void *arg, int err)
{
	struct ova *o = arg;

	if (!err)
		log_notice("mailbox %s (%s): %s greeting recorded by phone, "
			   "%.1f s, Call-ID %s", o->mailbox, o->dialplan,
			   o->greet_kind == VM_GREETING_OOF ? "out-of-office"
							    : "standard",
			   (double)audio_buf_samples(o->recorded) / 8000.0,
			   o->call_id);
	if (!o->ended && o->st == S_BUSY)
		personal_menu(o, err ? P_FAILED : P_GREET_SAVED);
	ova_unref(o);
}

static void greeting_keep(struct ova *o)
{
	timer_stop(o);
	o->st = S_BUSY;
	ova_ref(o);
	if (greetings_save(o->env->greetings, o->dialplan, o->mailbox,
			   o->greet_kind, o->recorded, greeting_saved, o) != 0) {
		ova_unref(o);
		personal_menu(o, P_FAILED);
	}
}

void ova_frame(struct ova *o, const int16_t *pcm, size_t n)
{
	size_t max = (size_t)o->max_greeting_s * 8000;

	if (o->st != S_GREET_REC)
		return;
	if (o->rec_n + n > o->rec_cap) {
		size_t nc = o->rec_cap ? o->rec_cap * 2 : 8000 * 8;
		int16_t *p = realloc(o->rec, nc * sizeof *p);

		if (!p) {
			greeting_end(o, "out of memory");
			return;
		}
		o->rec = p;
		o->rec_cap = nc;
	}
	if (audio_vad_feed(&o->vad, pcm, n)) {
		o->speech_ms += (unsigned)(n / 8);
		o->last_speech_end = o->rec_n + n;
	}
	memcpy(o->rec + o->rec_n, pcm, n * sizeof *pcm);
	o->rec_n += n;
	if (max && o->rec_n >= max)
		greeting_end(o, "MaxGreetingDuration");
	else if ((o->rec_n - o->last_speech_end) / 8 >= (size_t)o->idle_s * 1000)
		greeting_end(o, "RecordingIdleTimeout");
}

/* ---- the state machine ------------------------------------------------------------- */

/* A prompt or statement has played to its end. */
static void said(struct ova *o)
{
	void (*then)(struct ova *);

	switch (o->st) {
	case S_INFO:
		then = o->then;
		o->then = NULL;
		if (then)
			then(o);
		break;
	case S_BYE:
		hangup(o, "goodbye");
		break;
	case S_ENVELOPE:
		play_audio(o);
		break;
	case S_GREET_PROMPT:
		o->st = S_GREET_REC;
		audio_vad_init(&o->vad, 0);
		if (live(o))
			media_receive(o->media, true);
		process_keys(o);
		break;
	default:
		if (string_state(o->st) || menu_state(o->st) || o->st == S_AFTER) {
			if (!o->collecting && o->tk == T_NONE)
				timer_start(o, T_NO_INPUT, OVA_NO_INPUT_MS);
		}
		break;
	}
}

static void string_done(struct ova *o)
{
	char s[OVA_DIGITS_MAX + 1];

	timer_stop(o);
	memcpy(s, o->digits, sizeof s);
	s[o->n_digits] = '\0';
	o->n_digits = 0;
	o->collecting = false;
	OPENSSL_cleanse(o->digits, sizeof o->digits);
	if (!s[0]) {
		input_failed(o, NULL);
		return;
	}
	switch (o->st) {
	case S_EXT: {
		struct rtab *t = o->env->table_h(o->env->table_arg);

		if (!t || !rtab_mailbox_name(t, o->dialplan, s)) {
			log_notice("Call-ID %s from %s: extension %s is not a "
				   "mailbox of dial plan %s", o->call_id,
				   o->peer, s, o->dialplan);
			input_failed(o, P_BAD_EXT);
			break;
		}
		o->input_failures = 0;
		snprintf(o->mailbox, sizeof o->mailbox, "%s", s);
		ask1(o, S_PIN, NULL, P_ASK_PIN);
		break;
	}
	case S_PIN:
		o->input_failures = 0;
		logon(o, s);
		break;
	case S_PIN_NEW:
		o->input_failures = 0;
		snprintf(o->new_pin, sizeof o->new_pin, "%s", s);
		ask1(o, S_PIN_AGAIN, NULL, P_PIN_AGAIN);
		break;
	case S_PIN_AGAIN:
		o->input_failures = 0;
		if (strcmp(s, o->new_pin) != 0) {
			OPENSSL_cleanse(o->new_pin, sizeof o->new_pin);
			ask1(o, S_PIN_NEW, P_PIN_MISMATCH, P_PIN_NEW);
			break;
		}
		start_dir_change(o, pin_work, pin_done, o->new_pin);
		OPENSSL_cleanse(o->new_pin, sizeof o->new_pin);
		break;
	default:
		break;
	}
	OPENSSL_cleanse(s, sizeof s);
}

static void string_key(struct ova *o, char key)
{
	if (o->st == S_PIN && key == '*' && o->n_digits == 0) {
		/* Not this mailbox: ask which. */
		ask1(o, S_EXT, NULL, P_ASK_EXT);
		return;
	}
	if ((o->st == S_PIN_NEW || o->st == S_PIN_AGAIN) && key == '*' &&
	    o->n_digits == 0) {
		/* Changed their mind: the PIN stays. */
		OPENSSL_cleanse(o->new_pin, sizeof o->new_pin);
		personal_menu(o, NULL);
		return;
	}
	if (key == '#') {
		string_done(o);
		return;
	}
	if (key < '0' || key > '9')
		return;	/* * and A-D mean nothing in a number */
	if (o->n_digits < OVA_DIGITS_MAX)
		o->digits[o->n_digits++] = key;
	o->collecting = true;
	if (o->n_digits >= OVA_DIGITS_MAX) {
		string_done(o);
		return;
	}
	timer_start(o, T_INTERDIGIT, OVA_INTERDIGIT_MS);
}

static void menu_key(struct ova *o, char key)
{
	timer_stop(o);
	switch (o->st) {
	case S_NEWDONE:
		if (key == '1') {
			o->input_failures = 0;
			load_list(o, VM_STATE_SAVED);
			return;
		}
		if (key == '*') {
			o->input_failures = 0;
			main_menu(o, NULL);
			return;
		}
		break;
	case S_MAIN:
		if (key == '1') {
			o->input_failures = 0;
			load_list(o, VM_STATE_NEW);
			return;
		}
		if (key == '4') {
			o->input_failures = 0;
			personal_menu(o, NULL);
			return;
		}
		break;
	case S_PERSONAL:
		o->input_failures = 0;
		switch (key) {
		case '1':
			start_dir_change(o, oof_work, oof_done, NULL);
			return;
		case '2':
			ask1(o, S_GREET_KIND, NULL, P_GREET_KIND);
			return;
		case '3':
			ask1(o, S_PIN_NEW, NULL, P_PIN_NEW);
			return;
		case '*':
			main_menu(o, NULL);
			return;
		}
		break;
	case S_GREET_KIND:
		if (key == '1' || key == '2') {
			o->input_failures = 0;
			o->greet_kind = key == '1' ? VM_GREETING_STANDARD
						   : VM_GREETING_OOF;
			greeting_prompt(o, NULL);
			return;
		}
		if (key == '*') {
			personal_menu(o, NULL);
			return;
		}
		break;
	case S_GREET_CONFIRM:
		if (key == '1') {
			o->input_failures = 0;
			greeting_keep(o);
			return;
		}
		if (key == '2') {
			o->input_failures = 0;
			greeting_prompt(o, NULL);
			return;
		}
		break;
	default:
		return;
	}
	input_failed(o, P_INVALID);
}

/* Feeds typed-ahead keys to the state, as long as it takes input. */
static void process_keys(struct ova *o)
{
	while (o->n_keys > 0 && !o->ended) {
		enum ova_state st = o->st;
		char key = o->keys[0];

		if (st == S_INFO && o->saying && o->then) {
			/* A key cuts a statement short ("Message deleted.",
			 * "You have 2 new messages."): what follows it runs
			 * now and gets the key. */
			void (*then)(struct ova *) = o->then;

			if (live(o))
				media_play_stop(o->media);
			drop_say(o);
			o->gen++;
			o->then = NULL;
			o->st = S_IDLE;
			if (then)
				then(o);
			continue;
		}
		if (!string_state(st) && !menu_state(st) && !message_state(st) &&
		    st != S_GREET_REC)
			return;	/* busy: the keys wait */
		memmove(o->keys, o->keys + 1, --o->n_keys);
		/* Barge-in: a key stops the prompt it interrupts. */
		if (o->saying && st != S_ENVELOPE) {
			if (live(o))
				media_play_stop(o->media);
			drop_say(o);
			o->gen++;
		}
		if (o->tk == T_NO_INPUT)
			timer_stop(o);
		if (string_state(st))
			string_key(o, key);
		else if (menu_state(st))
			menu_key(o, key);
		else if (st == S_GREET_REC) {
			if (key == '#')
				greeting_end(o, "#");
		} else {
			if (st == S_ENVELOPE && o->saying &&
			    (key == '#' || key == '7' || key == '9' ||
			     key == '*')) {
				if (live(o))
					media_play_stop(o->media);
				drop_say(o);
				o->gen++;
			}
			message_key(o, key);
		}
	}
}

static void timer_cb(uv_timer_t *t)
{
	struct ova *o = t->data;
	enum timer_kind k = o->tk;

	o->tk = T_NONE;
	if (o->ended)
		return;
	switch (k) {
	case T_NO_INPUT:
		if (o->st == S_MORE) {
			after_prompt(o, NULL);
			break;
		}
		log_debug("Call-ID %s: no input", o->call_id);
		input_failed(o, NULL);
		break;
	case T_INTERDIGIT:
		if (string_state(o->st))
			string_done(o);
		break;
	case T_SECOND_KEY:
		if (o->pending == '0') {	/* a lone 0: help */
			o->pending = 0;
			if (live(o) && o->st == S_AUDIO) {
				/* Keep the place: 0 0 5, 1 and 3 go on from it. */
				media_play_position(o->media, &o->pos);
				media_play_stop(o->media);
			}
			ask2(o, S_AFTER, NULL, P_HELP, P_AFTER);
		} else if (o->pending == '1') {	/* 0 0 1: replay */
			o->pending = 0;
			o->pos = 0;
			play_audio(o);
		}
		break;
	default:
		break;
	}
}

/* ---- entry points ---------------------------------------------------------------------- */

int ova_alloc(struct ova **out, const struct ova_call *c)
{
	struct ova *o = calloc(1, sizeof *o);
	struct rtab *t;
	const struct dir_dialplan *dp;

	if (!o)
		return ENOMEM;
	o->env = c->env;
	o->media = c->media;
	o->refs = 1;
	o->hangup_h = c->hangup_h;
	o->hangup_arg = c->arg;
	snprintf(o->call_id, sizeof o->call_id, "%s", c->call_id ? c->call_id : "-");
	snprintf(o->peer, sizeof o->peer, "%s", c->peer ? c->peer : "?");
	snprintf(o->caller, sizeof o->caller, "%s", c->caller ? c->caller : "");
	snprintf(o->dialplan, sizeof o->dialplan, "%s", c->dialplan);
	uv_timer_init(c->env->loop, &o->timer);
	o->timer.data = o;
	t = o->env->table_h(o->env->table_arg);
	dp = t ? rtab_dialplan(t, o->dialplan) : NULL;
	o->input_failures_max = dp && dp->input_failures ? dp->input_failures : 3;
	o->logon_failures_max = dp && dp->logon_failures ? dp->logon_failures : 3;
	o->idle_s = dp && dp->recording_idle_s ? dp->recording_idle_s : 5;
	o->max_greeting_s = 5 * 60;
	/* A caller whose number is a mailbox of the dial plan is asked for
	 * that mailbox's PIN at once. */
	if (o->caller[0] && strlen(o->caller) <= OVA_DIGITS_MAX && t &&
	    rtab_mailbox_name(t, o->dialplan, o->caller)) {
		o->caller_is_mailbox = true;
		snprintf(o->mailbox, sizeof o->mailbox, "%s", o->caller);
	}
	*out = o;
	return 0;
}

void ova_start(struct ova *o)
{
	if (o->st != S_IDLE || !live(o))
		return;
	log_info("Call-ID %s from %s: subscriber access (dial plan %s)%s%s",
		 o->call_id, o->peer, o->dialplan,
		 o->caller_is_mailbox ? ", caller is mailbox " : "",
		 o->caller_is_mailbox ? o->mailbox : "");
	if (o->caller_is_mailbox)
		ask1(o, S_PIN, P_WELCOME, P_ASK_PIN);
	else
		ask1(o, S_EXT, P_WELCOME, P_ASK_EXT);
}

void ova_dtmf(struct ova *o, char key)
{
	if (o->ended || o->st == S_BYE)
		return;
	if (o->n_keys >= OVA_KEYS_MAX)
		return;	/* a flood: the excess is dropped */
	o->keys[o->n_keys++] = key;
	process_keys(o);
}

void ova_play_done(struct ova *o)
{
	if (o->ended)
		return;
	if (o->saying) {
		pump(o);
		return;
	}
	if (o->st == S_AUDIO) {
		/* Heard through: a new message becomes saved. */
		o->heard = true;
		leave_current(o, true);
		o->pos = o->audio ? audio_buf_samples(o->audio) : 0;
		after_prompt(o, NULL);
	}
}

void ova_end(struct ova *o)
{
	if (!o || o->ended)
		return;
	o->ended = true;
	o->media = NULL;
	timer_stop(o);
	drop_say(o);
	ova_unref(o);
}
