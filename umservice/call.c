/* call.c — the UM service's calls: SIP dialog as a UAS on nta, SDP
 * offer/answer, media, and call answering (greeting, tone, recording,
 * storage).
 *
 *   INVITE ─ trusted? token or classification ─ SDP ─ media socket
 *          ─ 180, greeting synthesis starts ─ 200 (SDP answer)
 *   ACK ─ greeting ─ tone ─ recording (chunks to the writer every second)
 *   # / BYE / RecordingIdleTimeout / MaxRecordingDuration ─ finish message
 *
 * Lifetime: a call is referenced by its SIP side (until the dialog is over),
 * by each synthesis in flight and by each writer job in flight; it is freed
 * when the last reference goes (call_unref). The media session is closed as
 * soon as the call ends; its memory follows libuv's close callbacks. */
#define LOG_MODULE "call"
#include "umservice/call.h"
#include "common/classify.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/netaddr.h"
#include "common/rtab.h"
#include "common/sdp.h"
#include "common/vmwriter.h"
#include "proto/openum.pb-c.h"
#include "umservice/audio.h"
#include "umservice/greetings.h"
#include "umservice/media.h"
#include "umservice/ova.h"
#include "umservice/spoken.h"
#include "umservice/tokens.h"
#include "umservice/tts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/nta_tport.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/tport.h>

#define SERVICE_ALLOW "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"
#define ACK_TIMEOUT_MS 32000
#define CHUNK_SAMPLES 8000		/* one second per store write */
#define WARN_BEFORE_END_S 15
#define MIN_SPEECH_MS 300		/* less than this is not a message */
#define TRAIL_KEEP_MS 500		/* silence kept after the last speech */
#define GREETING_PIECES 5
#define MIN_SE 90			/* RFC 4028 minimum session interval */

const char *const call_prompts[] = {
	"Your message has been recorded. Goodbye.",
	"You have fifteen seconds left.",
	"You have reached the voice mailbox of",
	"extension",
	"Please leave a message after the tone. When you have finished, hang "
	"up or press the pound key.",
	"The owner of this mailbox is out of the office. Please leave a "
	"message after the tone. When you have finished, hang up or press the "
	"pound key.",
	NULL,
};
#define PROMPT_REACHED call_prompts[2]
#define PROMPT_EXTENSION call_prompts[3]
#define PROMPT_LEAVE call_prompts[4]
#define PROMPT_RECORDED call_prompts[0]
#define PROMPT_WARNING call_prompts[1]
#define PROMPT_OOF_LEAVE call_prompts[5]

enum call_state { CS_INVITED, CS_ANSWERED, CS_ACTIVE, CS_ENDED };
enum app_state { AS_WAIT, AS_GREETING, AS_TONE, AS_RECORDING, AS_GOODBYE, AS_DONE };

struct call {
	struct call_env *env;
	struct call *prev, *next;	/* env->calls */
	bool listed;
	int refs;
	enum call_state cs;
	enum app_state as;
	nta_agent_t *agent;
	nta_incoming_t *irq;		/* the INVITE, until ACKed */
	nta_leg_t *leg;
	nta_outgoing_t *bye;
	struct media *media;
	uv_timer_t timer;		/* ACK timeout, then session expiry */
	bool timer_open;
	bool counted;
	char call_id[160];
	char peer[NETADDR_STRLEN];
	char contact[300];
	char mailbox[21], dialplan[DIR_NAME_MAX + 1], display[160];
	char gateway[DIR_NAME_MAX + 1];	/* the UM IP gateway it came through */
	char caller[129], caller_name[129];
	unsigned idle_ms, max_ms;
	unsigned session_expires;	/* RFC 4028 interval (s), 0 = none */
	struct sdp_offer offer;
	bool have_offer;
	uint64_t sess_id, sess_ver;
	/* The greeting, in pieces: the fixed ones are synthesised at start-up,
	 * so the first packet can leave right after the ACK while the name
	 * and extension are still being synthesised. */
	struct audio_buf *piece[GREETING_PIECES];
	bool piece_done[GREETING_PIECES];
	unsigned next_piece;		/* next piece to queue for playing */
	bool greeting_failed;
	bool oof;			/* the out-of-office greeting is on */
	bool subscriber;		/* subscriber access: ova runs it */
	struct ova *ova;
	/* recording */
	struct vmwriter_msg *msg;
	struct audio_vad vad;
	int16_t chunk[CHUNK_SAMPLES];
	size_t chunk_n;
	size_t rec_samples, last_speech_end;
	unsigned speech_ms;
	bool warned;
};

static void call_end(struct call *c, const char *why, bool send_bye);

/* --- lifetime ----------------------------------------------------------- */

static void call_ref(struct call *c)
{
	c->refs++;
}

static void timer_closed(uv_handle_t *h)
{
	struct call *c = h->data;

	free(c);
}

static void call_list(struct call *c, bool on)
{
	struct call_env *e = c->env;

	if (c->listed == on)
		return;
	c->listed = on;
	if (on) {
		c->next = e->calls;
		c->prev = NULL;
		if (e->calls)
			e->calls->prev = c;
		e->calls = c;
		return;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		e->calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static void call_unref(struct call *c)
{
	if (--c->refs > 0)
		return;
	call_list(c, false);
	for (int i = 0; i < GREETING_PIECES; i++)
		audio_buf_unref(c->piece[i]);
	if (c->timer_open) {
		c->timer_open = false;
		uv_close((uv_handle_t *)&c->timer, timer_closed);
	} else {
		free(c);
	}
}

static void set_timer(struct call *c, uv_timer_cb cb, uint64_t ms)
{
	uv_update_time(c->env->loop);	/* may run inside a sofia callback */
	uv_timer_start(&c->timer, cb, ms, 0);
}

static void count(struct call *c, bool on)
{
	if (c->counted == on)
		return;
	c->counted = on;
	if (on)
		c->env->active++;
	else
		c->env->active--;
	if (c->env->load_h)
		c->env->load_h(c->env->load_arg);
}

/* --- recording ------------------------------------------------------------ */

static void stored_cb(int err, int64_t id, int64_t duration_ms, void *arg)
{
	struct call *c = arg;

	if (err)
		log_error("Call-ID %s: message for %s could not be stored: %s "
			  "(its chunks stay; the next start recovers it)",
			  c->call_id, c->mailbox, strerror(err));
	else {
		c->env->messages_stored++;
		log_notice("message %lld stored for mailbox %s (dial plan %s) from "
			   "%s, %.1f s, Call-ID %s", (long long)id, c->mailbox,
			   c->dialplan, c->caller[0] ? c->caller : "unknown",
			   (double)duration_ms / 1000.0, c->call_id);
	}
	if (!err && c->env->mailbox_changed_h)
		c->env->mailbox_changed_h(c->env->mailbox_changed_arg,
					  c->dialplan, c->mailbox);
	call_unref(c);
}

static void discarded_cb(int err, int64_t id, int64_t duration_ms, void *arg)
{
	struct call *c = arg;

	(void)id;
	(void)duration_ms;
	if (err)
		log_warn("Call-ID %s: discarding an empty recording failed: %s",
			 c->call_id, strerror(err));
	call_unref(c);
}

static void begun_cb(int err, int64_t id, int64_t duration_ms, void *arg)
{
	struct call *c = arg;

	(void)duration_ms;
	if (err)
		log_error("Call-ID %s: cannot start a message for %s: %s",
			  c->call_id, c->mailbox, strerror(err));
	else
		log_info("Call-ID %s: recording message %lld for mailbox %s",
			 c->call_id, (long long)id, c->mailbox);
	call_unref(c);
}

static void flush_chunk(struct call *c)
{
	if (!c->msg || c->chunk_n == 0)
		return;
	if (vmwriter_append(c->env->vm, c->msg, c->chunk, c->chunk_n) != 0)
		log_warn("Call-ID %s: the store is behind; a second of audio was "
			 "dropped", c->call_id);
	c->chunk_n = 0;
}

/* Ends the recording: a message with speech is finished (trailing silence
 * trimmed), anything else is discarded and logged as a missed call. */
static void stop_recording(struct call *c, const char *why)
{
	size_t keep;

	if (c->as != AS_RECORDING)
		return;
	c->as = AS_DONE;
	media_receive(c->media, false);
	if (!c->msg)
		return;
	flush_chunk(c);
	keep = c->last_speech_end + TRAIL_KEEP_MS * 8;
	if (keep > c->rec_samples)
		keep = c->rec_samples;
	call_ref(c);
	if (c->speech_ms < MIN_SPEECH_MS) {
		log_notice("missed call for mailbox %s from %s: %s after %.1f s "
			   "without speech; no message (Call-ID %s)", c->mailbox,
			   c->caller[0] ? c->caller : "unknown", why,
			   (double)c->rec_samples / 8000.0, c->call_id);
		c->env->missed_calls++;
		vmwriter_discard(c->env->vm, c->msg, discarded_cb, c);
	} else {
		log_info("Call-ID %s: recording ended (%s): %.1f s, %.1f s kept",
			 c->call_id, why, (double)c->rec_samples / 8000.0,
			 (double)keep / 8000.0);
		vmwriter_finish(c->env->vm, c->msg, keep, stored_cb, c);
	}
	c->msg = NULL;
}

static void play_text(struct call *c, const char *text);

static void on_frame(void *arg, const int16_t *pcm, size_t n)
{
	struct call *c = arg;

	if (c->ova) {
		ova_frame(c->ova, pcm, n);
		return;
	}
	if (c->as != AS_RECORDING)
		return;
	if (audio_vad_feed(&c->vad, pcm, n)) {
		c->speech_ms += (unsigned)(n / 8);
		c->last_speech_end = c->rec_samples + n;
	}
	memcpy(c->chunk + c->chunk_n, pcm, n * sizeof *pcm);
	c->chunk_n += n;
	c->rec_samples += n;
	if (c->chunk_n + n > CHUNK_SAMPLES)
		flush_chunk(c);
	if ((c->rec_samples - c->last_speech_end) / 8 >= c->idle_ms) {
		stop_recording(c, "RecordingIdleTimeout");
		play_text(c, PROMPT_RECORDED);
		c->as = AS_GOODBYE;
		return;
	}
	if (!c->warned && c->rec_samples / 8 + WARN_BEFORE_END_S * 1000 >= c->max_ms &&
	    c->max_ms > 2 * WARN_BEFORE_END_S * 1000) {
		c->warned = true;
		play_text(c, PROMPT_WARNING);
	}
	if (c->rec_samples / 8 >= c->max_ms) {
		stop_recording(c, "MaxRecordingDuration");
		play_text(c, PROMPT_RECORDED);
		c->as = AS_GOODBYE;
	}
}

static void start_recording(struct call *c)
{
	struct vm_meta meta;

	c->as = AS_RECORDING;
	audio_vad_init(&c->vad, 0);
	memset(&meta, 0, sizeof meta);
	meta.mailbox = c->mailbox;
	meta.dialplan = c->dialplan;
	meta.caller_number = c->caller;
	meta.caller_name = c->caller_name;
	meta.call_id = c->call_id;
	call_ref(c);
	if (vmwriter_begin(&c->msg, c->env->vm, &meta, begun_cb, c) != 0) {
		call_unref(c);
		c->msg = NULL;
		log_error("Call-ID %s: the voicemail store is not accepting "
			  "messages", c->call_id);
	}
	media_receive(c->media, true);
}

/* --- prompts ---------------------------------------------------------------- */

static void spoken_cb(void *arg, int err, struct audio_buf *pcm)
{
	struct call *c = arg;

	if (!err && (c->cs == CS_ACTIVE || c->cs == CS_ANSWERED) && c->media)
		media_play(c->media, pcm);
	call_unref(c);
}

static void play_text(struct call *c, const char *text)
{
	call_ref(c);
	if (tts_speak(c->env->tts, text, spoken_cb, c) != 0)
		call_unref(c);
}

static bool greeting_complete(const struct call *c)
{
	return c->next_piece >= GREETING_PIECES;
}

/* Queues the greeting pieces that are ready, in order, once the call is up. */
static void pump_greeting(struct call *c)
{
	if ((c->cs != CS_ACTIVE && c->cs != CS_ANSWERED) || !c->media ||
	    !c->have_offer)
		return;
	if (c->ova) {
		ova_start(c->ova);
		return;
	}
	if (c->as == AS_WAIT) {
		if (!c->piece_done[0])
			return;
		c->as = AS_GREETING;
	}
	if (c->as != AS_GREETING)
		return;
	while (c->next_piece < GREETING_PIECES && c->piece_done[c->next_piece]) {
		if (c->piece[c->next_piece])
			media_play(c->media, c->piece[c->next_piece]);
		c->next_piece++;
	}
	if (greeting_complete(c) && !media_playing(c->media)) {
		c->as = AS_TONE;
		media_play(c->media, c->env->beep);
	}
}

struct piece_req {
	struct call *c;
	unsigned index;
};

static void piece_cb(void *arg, int err, struct audio_buf *pcm)
{
	struct piece_req *pr = arg;
	struct call *c = pr->c;

	if (err) {
		log_warn("Call-ID %s: greeting synthesis failed: %s", c->call_id,
			 strerror(err));
		c->greeting_failed = true;
	} else {
		c->piece[pr->index] = audio_buf_ref(pcm);
	}
	c->piece_done[pr->index] = true;
	free(pr);
	pump_greeting(c);
	call_unref(c);
}

/* Starts synthesising the greeting: "You have reached the voice mailbox of
 * <name>, extension <digits>. Please leave a message ..." (or, with the
 * out-of-office greeting on, "The owner of this mailbox is out of the
 * office. ..."). */
static void synthesise_greeting(struct call *c)
{
	char digits[64];
	const char *text[GREETING_PIECES];

	/* Digits spoken one by one: "1 0 0 1", not "one thousand and one". */
	spoken_digits(digits, sizeof digits, c->mailbox);
	text[0] = PROMPT_REACHED;
	text[1] = c->display;
	text[2] = PROMPT_EXTENSION;
	text[3] = digits;
	text[4] = c->oof ? PROMPT_OOF_LEAVE : PROMPT_LEAVE;
	for (unsigned i = 0; i < GREETING_PIECES; i++) {
		struct piece_req *pr = malloc(sizeof *pr);

		if (!pr) {
			c->piece_done[i] = true;
			continue;
		}
		pr->c = c;
		pr->index = i;
		call_ref(c);
		if (tts_speak(c->env->tts, text[i], piece_cb, pr) != 0) {
			free(pr);
			c->piece_done[i] = true;
			call_unref(c);
		}
	}
}

/* The mailbox's recorded greeting arrived from the store: it is the whole
 * greeting. Without it (an error), the spoken one. */
static void recorded_cb(void *arg, int err, struct audio_buf *pcm)
{
	struct call *c = arg;

	if (err) {
		log_warn("Call-ID %s: recorded greeting of %s unavailable (%s); "
			 "speaking one", c->call_id, c->mailbox, strerror(err));
		synthesise_greeting(c);
	} else {
		c->piece[0] = audio_buf_ref(pcm);
		for (unsigned i = 0; i < GREETING_PIECES; i++)
			c->piece_done[i] = true;
		log_info("Call-ID %s: playing the %s greeting recorded for %s",
			 c->call_id, c->oof ? "out-of-office" : "standard",
			 c->mailbox);
		pump_greeting(c);
	}
	call_unref(c);
}

/* The greeting: recorded (out-of-office when it is on, else standard) if
 * the mailbox has one, else spoken. */
static void prepare_greeting(struct call *c)
{
	struct rtab *t = c->env->table_h(c->env->table_arg);
	enum vm_greeting kind;

	c->oof = t && rtab_mailbox_oof(t, c->dialplan, c->mailbox);
	kind = c->oof ? VM_GREETING_OOF : VM_GREETING_STANDARD;
	if (c->env->greetings &&
	    greetings_has(c->env->greetings, c->dialplan, c->mailbox, kind)) {
		call_ref(c);
		if (greetings_fetch(c->env->greetings, c->dialplan, c->mailbox,
				    kind, recorded_cb, c) == 0)
			return;
		call_unref(c);
	}
	synthesise_greeting(c);
}

static void on_play_done(void *arg)
{
	struct call *c = arg;

	if (c->ova) {
		ova_play_done(c->ova);
		return;
	}
	switch (c->as) {
	case AS_GREETING:
		/* The queue can run dry between pieces; wait for the rest. */
		if (greeting_complete(c)) {
			c->as = AS_TONE;
			media_play(c->media, c->env->beep);
		}
		break;
	case AS_TONE:
		start_recording(c);
		break;
	case AS_GOODBYE:
		call_end(c, "goodbye", true);
		break;
	default:
		break;
	}
}

static void on_dtmf(void *arg, char key)
{
	struct call *c = arg;

	log_debug("Call-ID %s: key %c", c->call_id, key);
	if (c->ova) {
		ova_dtmf(c->ova, key);
		return;
	}
	if (key != '#')
		return;
	switch (c->as) {
	case AS_GREETING:
		/* # skips the greeting straight to the tone. */
		c->next_piece = GREETING_PIECES;
		media_play_stop(c->media);
		c->as = AS_TONE;
		media_play(c->media, c->env->beep);
		break;
	case AS_RECORDING:
		stop_recording(c, "#");
		media_play_stop(c->media);
		c->as = AS_GOODBYE;
		play_text(c, PROMPT_RECORDED);
		break;
	default:
		break;
	}
}

/* --- SIP --------------------------------------------------------------------- */

static int leg_request(nta_leg_magic_t *magic, nta_leg_t *leg,
		       nta_incoming_t *irq, sip_t const *sip);

static void local_contact(struct call *c, nta_agent_t *agent,
			  nta_incoming_t *irq, const sip_t *sip)
{
	tport_t *tp = nta_incoming_transport(agent, irq, NULL);
	tport_t *primary = tp && tport_is_secondary(tp) ? tport_parent(tp) : tp;
	su_addrinfo_t const *la = primary ? tport_get_address(primary) : NULL;
	char host[NETADDR_STRLEN] = "";
	const char *proto = tp ? tport_name(tp)->tpn_proto : "udp";
	const char *user = sip->sip_request->rq_url->url_user;

	if (la && la->ai_addr)
		netaddr_str(la->ai_addr, host, sizeof host);
	/* The address the caller reached us on, in its family: never the
	 * first interface sofia happens to list (NOTES-stack.md §3). */
	snprintf(c->contact, sizeof c->contact, "<sip:%s%s%s;transport=%s>",
		 user ? user : "", user ? "@" : "", host, proto);
	tport_unref(tp);
}

static bool family_allowed(enum dir_af af, int family)
{
	return family == AF_INET ? af != DIR_AF_IPV6ONLY : af != DIR_AF_IPV4ONLY;
}

/* Builds our SDP (answer to the offer, or an offer) into buf. */
static int local_sdp(struct call *c, char *buf, size_t len, struct sdp_choice *ch)
{
	struct sdp_local l;
	const char *addr;
	uint16_t port;
	int fam;

	media_local(c->media, &addr, &port, &fam);
	memset(&l, 0, sizeof l);
	l.family = fam;
	l.addr = addr;
	l.port = port;
	l.sess_id = c->sess_id;
	l.sess_version = ++c->sess_ver;
	l.username = "openum";
	if (c->have_offer)
		return sdp_answer_build(buf, len, &c->offer, &l, ch);
	return sdp_offer_build(buf, len, &l);
}

static void reply(nta_incoming_t *irq, int status, const char *phrase)
{
	nta_incoming_treply(irq, status, phrase, SIPTAG_ALLOW_STR(SERVICE_ALLOW),
			    TAG_END());
}

static void ack_timeout(uv_timer_t *t)
{
	struct call *c = t->data;

	log_warn("Call-ID %s: no ACK within %d s; ending the call", c->call_id,
		 ACK_TIMEOUT_MS / 1000);
	call_end(c, "no ACK", true);
}

static void session_expired(uv_timer_t *t)
{
	struct call *c = t->data;

	log_notice("Call-ID %s: session expired (no refresh within %u s)",
		   c->call_id, c->session_expires);
	call_end(c, "session expired", true);
}

/* RFC 4028: the caller refreshes (refresher=uac); if no refresh arrives
 * before the interval ends, the call is over. */
static void session_refreshed(struct call *c)
{
	if (c->session_expires && c->cs == CS_ACTIVE)
		set_timer(c, session_expired, (uint64_t)c->session_expires * 1000);
}

static void session_headers(const struct call *c, char *se, size_t len)
{
	if (c->session_expires)
		snprintf(se, len, "%u;refresher=uac", c->session_expires);
	else
		se[0] = '\0';
}

static void on_ack(struct call *c, const sip_t *sip)
{
	if (c->cs != CS_ANSWERED)
		return;
	uv_timer_stop(&c->timer);
	if (!c->have_offer) {
		/* We offered in the 200; the answer is in the ACK. */
		struct sdp_choice ch;
		char *cause = NULL;

		if (!sip->sip_payload ||
		    sdp_answer_parse(&c->offer, sip->sip_payload->pl_data,
				     sip->sip_payload->pl_len, &cause) != 0 ||
		    sdp_choose(&ch, &c->offer) != 0 ||
		    media_set_remote(c->media, &ch) != 0) {
			log_warn("Call-ID %s: no usable SDP answer in the ACK%s%s; "
				 "ending", c->call_id, cause ? ": " : "",
				 cause ? cause : "");
			free(cause);
			c->cs = CS_ACTIVE;
			call_end(c, "bad SDP in ACK", true);
			return;
		}
		c->have_offer = true;
	}
	if (c->irq) {
		nta_incoming_destroy(c->irq);
		c->irq = NULL;
	}
	c->cs = CS_ACTIVE;
	session_refreshed(c);
	pump_greeting(c);
	media_start(c->media);		/* no-op if it started with the 200 */
}

/* CANCEL (and other events) on the INVITE transaction. */
static int irq_event(nta_incoming_magic_t *magic, nta_incoming_t *irq,
		     sip_t const *sip)
{
	struct call *c = (struct call *)magic;

	if (sip && sip->sip_request &&
	    sip->sip_request->rq_method == sip_method_cancel &&
	    c->cs == CS_INVITED) {
		log_info("Call-ID %s: cancelled by the caller", c->call_id);
		reply(c->irq, SIP_487_REQUEST_TERMINATED);
		call_end(c, "CANCEL", false);
	} else if (sip && sip->sip_request &&
		   sip->sip_request->rq_method == sip_method_ack) {
		on_ack(c, sip);
	}
	return 0;
}

static void reinvite(struct call *c, nta_incoming_t *irq, const sip_t *sip)
{
	struct sdp_offer o;
	struct sdp_choice ch;
	char sdp[1024], *cause = NULL;

	if (!sip->sip_payload ||
	    sdp_offer_parse(&o, sip->sip_payload->pl_data, sip->sip_payload->pl_len,
			    &cause) != 0 ||
	    o.family != c->offer.family) {
		log_info("Call-ID %s: re-INVITE refused: %s", c->call_id,
			 cause ? cause : "no usable SDP");
		free(cause);
		reply(irq, SIP_488_NOT_ACCEPTABLE);
		return;
	}
	c->offer = o;
	if (local_sdp(c, sdp, sizeof sdp, &ch) != 0 ||
	    media_set_remote(c->media, &ch) != 0) {
		reply(irq, SIP_488_NOT_ACCEPTABLE);
		return;
	}
	log_info("Call-ID %s: re-INVITE: %s", c->call_id,
		 ch.hold ? "on hold" : "media resumed");
	{
		char se[32];

		session_headers(c, se, sizeof se);
		nta_incoming_treply(irq, SIP_200_OK, SIPTAG_CONTACT_STR(c->contact),
				    TAG_IF(se[0], SIPTAG_SESSION_EXPIRES_STR(se)),
				    SIPTAG_CONTENT_TYPE_STR("application/sdp"),
				    SIPTAG_PAYLOAD_STR(sdp), TAG_END());
	}
	session_refreshed(c);
}

static int leg_request(nta_leg_magic_t *magic, nta_leg_t *leg,
		       nta_incoming_t *irq, sip_t const *sip)
{
	struct call *c = (struct call *)magic;

	switch (sip->sip_request->rq_method) {
	case sip_method_ack:
		on_ack(c, sip);
		return 0;
	case sip_method_bye:
		nta_incoming_treply(irq, SIP_200_OK, TAG_END());
		nta_incoming_destroy(irq);
		log_info("Call-ID %s: caller hung up", c->call_id);
		call_end(c, "BYE", false);
		return 0;
	case sip_method_invite:
		if (c->cs != CS_ACTIVE) {
			reply(irq, 491, "Request Pending");
		} else {
			reinvite(c, irq, sip);
		}
		nta_incoming_destroy(irq);
		return 0;
	case sip_method_update: {
		char se[32];

		/* A session refresh without SDP (RFC 4028 with UPDATE). */
		session_headers(c, se, sizeof se);
		nta_incoming_treply(irq, SIP_200_OK, SIPTAG_CONTACT_STR(c->contact),
				    TAG_IF(se[0], SIPTAG_SESSION_EXPIRES_STR(se)),
				    TAG_END());
		nta_incoming_destroy(irq);
		session_refreshed(c);
		return 0;
	}
	case sip_method_options:
		nta_incoming_treply(irq, SIP_200_OK, SIPTAG_ALLOW_STR(SERVICE_ALLOW),
				    TAG_END());
		nta_incoming_destroy(irq);
		return 0;
	default:
		reply(irq, SIP_405_METHOD_NOT_ALLOWED);
		nta_incoming_destroy(irq);
		return 0;
	}
}

static int bye_done(nta_outgoing_magic_t *magic, nta_outgoing_t *orq,
		    sip_t const *sip)
{
	struct call *c = (struct call *)magic;
	int status = nta_outgoing_status(orq);

	if (status < 200)
		return 0;
	nta_outgoing_destroy(orq);
	c->bye = NULL;
	if (c->leg) {
		nta_leg_destroy(c->leg);
		c->leg = NULL;
	}
	call_unref(c);
	return 0;
}

/* Ends the call: the recording is finished or discarded, media closes, and
 * a BYE goes out when the call was up and the caller did not hang up. */
static void call_end(struct call *c, const char *why, bool send_bye)
{
	if (c->cs == CS_ENDED)
		return;
	stop_recording(c, why);
	if (c->irq && c->cs == CS_INVITED && strcmp(why, "CANCEL") != 0)
		reply(c->irq, 480, "Temporarily Unavailable");
	if (c->irq) {
		nta_incoming_destroy(c->irq);
		c->irq = NULL;
	}
	if (c->ova) {
		ova_end(c->ova);
		c->ova = NULL;
	}
	if (c->media) {
		media_close(c->media);
		c->media = NULL;
	}
	if (c->timer_open)
		uv_timer_stop(&c->timer);
	if (send_bye && c->leg && c->cs != CS_INVITED) {
		c->bye = nta_outgoing_tcreate(c->leg, bye_done, (nta_outgoing_magic_t *)c,
					      NULL, SIP_METHOD_BYE, NULL, TAG_END());
	}
	c->cs = CS_ENDED;
	c->as = AS_DONE;
	count(c, false);
	log_info("Call-ID %s ended (%s)", c->call_id, why);
	if (c->bye)
		return;	/* bye_done drops the SIP reference */
	if (c->leg) {
		nta_leg_destroy(c->leg);
		c->leg = NULL;
	}
	call_unref(c);
}

static void ova_hangup(void *arg, const char *why)
{
	call_end(arg, why, true);
}

/* Decides what a new INVITE is: the router's token, else the same
 * classification the router would make. Returns a SIP status to refuse
 * with, or 0. */
static int admit(struct call *c, const sip_t *sip, const struct sockaddr *src,
		 const char **phrase)
{
	struct rtab *t = c->env->table_h(c->env->table_arg);
	const struct dir_gateway *gw;
	const struct dir_dialplan *dp;
	const char *params = sip->sip_request->rq_url->url_params;
	char hex[2 * TOKEN_LEN + 8];
	int kind;

	gw = t ? rtab_gateway_by_addr(t, src, NULL) : NULL;
	if (!gw) {
		*phrase = "Forbidden (not a UM IP gateway)";
		return 403;
	}
	if (gw->status != DIR_GW_ENABLED) {
		*phrase = "Service Unavailable (gateway not enabled)";
		return 503;
	}
	snprintf(c->gateway, sizeof c->gateway, "%s", gw->name);
	if (params && url_param(params, "umtoken", hex, sizeof hex) > 0) {
		uint8_t tok[TOKEN_LEN];
		struct token_ctx ctx;
		int err = tokens_unhex(tok, hex);

		if (!err)
			err = tokens_take(c->env->tokens, tok, daemon_now_ms(), &ctx);
		if (err) {
			*phrase = err == ETIMEDOUT ? "Forbidden (routing token expired)"
						   : "Forbidden (unknown routing token)";
			return 403;
		}
		kind = ctx.kind == OPENUM__CALL_KIND__CALL_KIND_SUBSCRIBER_ACCESS
			       ? CLASSIFY_SUBSCRIBER_ACCESS : CLASSIFY_CALL_ANSWERING;
		snprintf(c->mailbox, sizeof c->mailbox, "%s", ctx.mailbox);
		snprintf(c->dialplan, sizeof c->dialplan, "%s", ctx.dialplan);
	} else {
		struct classify_ctx cx;
		struct classify_request req;
		struct classify_result res;

		memset(&req, 0, sizeof req);
		req.gateway = gw->name;
		req.ruri_user = sip->sip_request->rq_url->url_user;
		req.to_user = sip->sip_to ? sip->sip_to->a_url->url_user : NULL;
		for (sip_unknown_t const *u = sip->sip_unknown; u; u = u->un_next) {
			if (u->un_name && !strcasecmp(u->un_name, "Diversion") &&
			    !req.diversion)
				req.diversion = u->un_value;
			if (u->un_name && !strcasecmp(u->un_name, "History-Info") &&
			    !req.history_info)
				req.history_info = u->un_value;
		}
		rtab_classify_ctx(t, &cx);
		classify_call(&cx, &req, &res);
		if (res.kind == CLASSIFY_REJECT) {
			*phrase = "Not Found";
			log_notice("Call-ID %s from %s: %s", c->call_id, c->peer,
				   res.reason);
			return res.status ? res.status : 404;
		}
		kind = res.kind;
		snprintf(c->mailbox, sizeof c->mailbox, "%s", res.mailbox);
		snprintf(c->dialplan, sizeof c->dialplan, "%s", res.dialplan);
	}
	if (kind == CLASSIFY_SUBSCRIBER_ACCESS) {
		c->subscriber = true;
		c->mailbox[0] = '\0';	/* the caller says which, with a PIN */
		if (!rtab_dialplan(t, c->dialplan)) {
			*phrase = "Not Found (no such dial plan)";
			return 404;
		}
		return 0;
	}
	{
		const char *name = rtab_mailbox_name(t, c->dialplan, c->mailbox);

		if (!name) {
			*phrase = "Not Found (no such mailbox)";
			return 404;
		}
		snprintf(c->display, sizeof c->display, "%s", name);
	}
	dp = rtab_dialplan(t, c->dialplan);
	c->idle_ms = (dp ? dp->recording_idle_s : 5) * 1000;
	c->max_ms = (dp ? dp->max_recording_min : 20) * 60000;
	return 0;
}

/* See the header. */
void call_invite(struct call_env *env, nta_agent_t *agent, nta_incoming_t *irq,
		 const sip_t *sip)
{
	struct call *c;
	msg_t *msg = nta_incoming_getrequest(irq);
	su_addrinfo_t *ai = msg ? msg_addrinfo(msg) : NULL;
	struct sockaddr_storage src;
	const char *phrase = NULL;
	char sdp[1024], local[INET6_ADDRSTRLEN], *cause = NULL;
	struct sdp_choice ch;
	int status, family, err;

	memset(&src, 0, sizeof src);
	if (ai && ai->ai_addr && ai->ai_addrlen <= sizeof src)
		memcpy(&src, ai->ai_addr, ai->ai_addrlen);
	msg_destroy(msg);
	c = calloc(1, sizeof *c);
	if (!c) {
		reply(irq, SIP_500_INTERNAL_SERVER_ERROR);
		nta_incoming_destroy(irq);
		return;
	}
	c->env = env;
	c->refs = 1;			/* the SIP side */
	c->agent = agent;
	c->irq = irq;
	uv_timer_init(env->loop, &c->timer);
	c->timer.data = c;
	c->timer_open = true;
	snprintf(c->call_id, sizeof c->call_id, "%s",
		 sip->sip_call_id ? sip->sip_call_id->i_id : "-");
	netaddr_str((struct sockaddr *)&src, c->peer, sizeof c->peer);
	if (sip->sip_from && sip->sip_from->a_url->url_user)
		snprintf(c->caller, sizeof c->caller, "%s",
			 sip->sip_from->a_url->url_user);
	if (sip->sip_from && sip->sip_from->a_display) {
		/* sofia keeps the quotes of a quoted display name. */
		const char *d = sip->sip_from->a_display;
		size_t n = strlen(d);

		if (n >= 2 && d[0] == '"' && d[n - 1] == '"') {
			d++;
			n -= 2;
		}
		snprintf(c->caller_name, sizeof c->caller_name, "%.*s", (int)n, d);
	}
	c->sess_id = (uint64_t)daemon_now_ms();
	c->sess_ver = c->sess_id;
	count(c, true);
	call_list(c, true);

	if (env->active > env->max_calls) {
		log_warn("Call-ID %s from %s: MaxCallsAllowed (%u) reached: 503",
			 c->call_id, c->peer, env->max_calls);
		nta_incoming_treply(irq, 503, "Service Unavailable (MaxCallsAllowed)",
				    SIPTAG_RETRY_AFTER_STR("30"), TAG_END());
		goto refuse;
	}
	if (sip->sip_session_expires) {
		unsigned se = (unsigned)sip->sip_session_expires->x_delta;

		if (se < MIN_SE) {
			log_notice("Call-ID %s: Session-Expires %u below %u: 422",
				   c->call_id, se, MIN_SE);
			nta_incoming_treply(irq, 422, "Session Interval Too Small",
					    SIPTAG_MIN_SE_STR("90"), TAG_END());
			goto refuse;
		}
		c->session_expires = se > 86400 ? 86400 : se;
	}
	status = admit(c, sip, (struct sockaddr *)&src, &phrase);
	if (status) {
		log_notice("Call-ID %s from %s: %d %s", c->call_id, c->peer, status,
			   phrase);
		reply(irq, status, phrase);
		goto refuse;
	}
	/* SDP offer (or none: we offer in the 200). */
	if (sip->sip_payload && sip->sip_payload->pl_len) {
		err = sdp_offer_parse(&c->offer, sip->sip_payload->pl_data,
				      sip->sip_payload->pl_len, &cause);
		if (err) {
			log_notice("Call-ID %s from %s: SDP refused: %s", c->call_id,
				   c->peer, cause ? cause : strerror(err));
			if (err == EBADMSG)
				reply(irq, 400, "Bad Request (malformed SDP)");
			else
				reply(irq, SIP_488_NOT_ACCEPTABLE);
			free(cause);
			goto refuse;
		}
		c->have_offer = true;
		family = c->offer.family;
		if (!family_allowed(env->af, family)) {
			log_notice("Call-ID %s: SDP offers %s media but the UM service "
				   "is %s: 488", c->call_id,
				   family == AF_INET6 ? "IPv6" : "IPv4",
				   dir_af_name(env->af));
			reply(irq, SIP_488_NOT_ACCEPTABLE);
			goto refuse;
		}
	} else {
		family = src.ss_family;
	}
	/* Media on the address the kernel routes toward the peer's media (or
	 * its signalling when it made no offer). */
	{
		char rem[INET6_ADDRSTRLEN];
		const char *target = c->have_offer && !c->offer.hold ? c->offer.addr
				     : netaddr_host((struct sockaddr *)&src, rem,
						    sizeof rem);

		err = media_local_for(family, target, local, sizeof local);
	}
	if (!err) {
		struct media_handlers mh = {
			.frame_h = on_frame, .dtmf_h = on_dtmf,
			.play_done_h = on_play_done,
		};

		err = media_open(&c->media, env->media, family, local, &mh, c, &cause);
	}
	if (err) {
		log_error("Call-ID %s: no media socket: %s", c->call_id,
			  cause ? cause : strerror(err));
		free(cause);
		reply(irq, SIP_500_INTERNAL_SERVER_ERROR);
		goto refuse;
	}
	if (local_sdp(c, sdp, sizeof sdp, &ch) != 0) {
		reply(irq, SIP_488_NOT_ACCEPTABLE);
		goto refuse;
	}
	if (c->have_offer && media_set_remote(c->media, &ch) != 0) {
		reply(irq, SIP_488_NOT_ACCEPTABLE);
		goto refuse;
	}
	/* The dialog. */
	c->leg = nta_leg_tcreate(agent, leg_request, (nta_leg_magic_t *)c,
				 SIPTAG_CALL_ID(sip->sip_call_id),
				 SIPTAG_FROM(sip->sip_to), SIPTAG_TO(sip->sip_from),
				 TAG_END());
	if (!c->leg || !nta_leg_tag(c->leg, NULL)) {
		reply(irq, SIP_500_INTERNAL_SERVER_ERROR);
		goto refuse;
	}
	nta_leg_server_route(c->leg, sip->sip_record_route, sip->sip_contact);
	nta_incoming_tag(irq, nta_leg_get_tag(c->leg));
	nta_incoming_bind(irq, irq_event, (nta_incoming_magic_t *)c);
	local_contact(c, agent, irq, sip);

	/* Start the greeting now, so it is ready when the ACK comes; a
	 * subscriber access call gets its application instead. */
	if (c->subscriber) {
		struct ova_call oc = {
			.env = env, .media = c->media, .call_id = c->call_id,
			.peer = c->peer, .caller = c->caller,
			.dialplan = c->dialplan, .hangup_h = ova_hangup, .arg = c,
		};

		if (ova_alloc(&c->ova, &oc) != 0) {
			reply(irq, SIP_500_INTERNAL_SERVER_ERROR);
			goto refuse;
		}
	} else {
		prepare_greeting(c);
	}
	nta_incoming_treply(irq, SIP_180_RINGING, SIPTAG_CONTACT_STR(c->contact),
			    TAG_END());
	{
		char se[32];
		bool timer = sip_has_supported(sip->sip_supported, "timer");

		session_headers(c, se, sizeof se);
		nta_incoming_treply(irq, SIP_200_OK, SIPTAG_CONTACT_STR(c->contact),
				    SIPTAG_ALLOW_STR(SERVICE_ALLOW),
				    TAG_IF(se[0], SIPTAG_SESSION_EXPIRES_STR(se)),
				    TAG_IF(se[0] && timer, SIPTAG_REQUIRE_STR("timer")),
				    SIPTAG_CONTENT_TYPE_STR("application/sdp"),
				    SIPTAG_PAYLOAD_STR(sdp), TAG_END());
	}
	c->cs = CS_ANSWERED;
	set_timer(c, ack_timeout, ACK_TIMEOUT_MS);
	/* The caller has our answer in the 200: media may flow now (RFC 3261
	 * 13.3.1.4). Starting here rather than on the ACK means a lost or
	 * late ACK (a UAS under load) delays nothing and loses no message. */
	if (c->have_offer) {
		/* Queued first, so the very first packet carries it. */
		pump_greeting(c);
		media_start(c->media);
	}
	log_info("Call-ID %s from %s (caller %s): %s%s, media %s %s", c->call_id,
		 c->peer, c->caller[0] ? c->caller : "?",
		 c->subscriber ? "subscriber access" : "call answering for mailbox ",
		 c->mailbox, family == AF_INET6 ? "IPv6" : "IPv4", local);
	return;
refuse:
	c->cs = CS_ENDED;
	if (c->media) {
		media_close(c->media);
		c->media = NULL;
	}
	if (c->leg) {
		nta_leg_destroy(c->leg);
		c->leg = NULL;
	}
	nta_incoming_destroy(irq);
	c->irq = NULL;
	count(c, false);
	call_list(c, false);
	call_unref(c);
}

/* See the header. A listener family going away takes its calls with it:
 * their dialogs live in that agent. */
void call_agent_gone(struct call_env *env, nta_agent_t *agent)
{
	struct call *c = env->calls, *next;

	for (; c; c = next) {
		next = c->next;
		if (c->agent != agent)
			continue;
		if (c->cs != CS_ENDED) {
			call_end(c, "listener closed", false);
		} else if (c->bye) {
			/* Ended, its BYE still in flight: drop it with the agent. */
			nta_outgoing_destroy(c->bye);
			c->bye = NULL;
			if (c->leg) {
				nta_leg_destroy(c->leg);
				c->leg = NULL;
			}
			call_unref(c);
		}
	}
}

/* See the header. */
unsigned call_drop_gateway(struct call_env *env, const char *gateway)
{
	struct call *c = env->calls, *next;
	unsigned n = 0;

	for (; c; c = next) {
		next = c->next;
		if (c->cs == CS_ENDED || strcasecmp(c->gateway, gateway) != 0)
			continue;
		log_notice("Call-ID %s from %s: gateway %s disabled with "
			   "--drop-calls: ending the call", c->call_id, c->peer,
			   gateway);
		call_end(c, "gateway disabled (--drop-calls)", true);
		n++;
	}
	return n;
}

/* See the header. */
void call_end_all(struct call_env *env)
{
	struct call *c = env->calls, *next;

	for (; c; c = next) {
		next = c->next;
		if (c->cs != CS_ENDED)
			call_end(c, "service stopping", true);
	}
}
