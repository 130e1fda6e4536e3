/* outcall.c — Play on Phone: one outbound call per request that plays a
 * voice message; see outcall.h.
 *
 * States of a call:
 *   LOADING     the message is read on the voicemail writer's thread
 *   CONNECTING  outconn round toward one gateway (the next on failure)
 *   INVITING    INVITE out; the ring timer runs
 *   CANCELLING  CANCEL out (ring time over, or told to end); guard timer
 *   PLAYING     2xx ACKed; the message plays
 *   BYE         our BYE out; guard timer
 *   DONE        nothing of the SIP side or media is left
 *
 * Every request is reported exactly once (report()); what ends the SIP
 * side is teardown(), which may come later (a CANCEL or BYE still out).
 * Nothing here blocks the loop: the store is read by the writer's thread,
 * connections are opened by outconn on libuv, SIP goes through nta. */
#define LOG_MODULE "outcall"
#include "umservice/outcall.h"
#include "common/daemon.h"
#include "common/hex.h"
#include "common/log.h"
#include "common/netaddr.h"
#include "common/outconn.h"
#include "common/playonphone.h"
#include "common/rtab.h"
#include "common/sdp.h"
#include "common/sipl.h"
#include "common/vmwriter.h"
#include "umservice/audio.h"
#include "umservice/call.h"
#include "umservice/media.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>

#define OUTCALL_ALLOW "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"

enum oc_state {
	OC_LOADING,
	OC_CONNECTING,
	OC_INVITING,
	OC_CANCELLING,
	OC_PLAYING,
	OC_BYE,
	OC_DONE,
};

struct outcall {
	struct outcall_mod *m;
	struct outcall *prev, *next;	/* m->calls, until freed */
	int refs;			/* SIP side + a store job in flight */
	enum oc_state st;
	bool reported, counted, sip_ref;
	uint32_t id;			/* the router's request_id */
	char mailbox[POP_MAILBOX_MAX + 1], dialplan[DIR_NAME_MAX + 1];
	char to[POP_NUMBER_MAX + 2];
	int64_t message_id;
	/* gateways to try, by name (the snapshot may change meanwhile) */
	char gws[OUTCALL_MAX_GATEWAYS][DIR_NAME_MAX + 1];
	size_t n_gw, gi;
	/* the gateway of the current attempt */
	char gw[DIR_NAME_MAX + 1], gwaddr[256];
	unsigned gwport;
	char who[200];			/* for outconn's log lines */
	char last_fail[512];		/* why the last gateway could not be used */
	struct outconn_req *ocr;
	struct sockaddr_storage addr;	/* where the INVITE went */
	char addr_str[NETADDR_STRLEN];
	int family;
	/* the call */
	struct audio_buf *audio;
	struct media *media;
	nta_agent_t *agent;
	nta_leg_t *leg;
	nta_outgoing_t *invite, *bye;
	char route[160], call_id[80];
	uv_timer_t timer;
	bool provisional;
	uint64_t answered_ms;
	unsigned played_ms;
	uint64_t sess_id, sess_ver;
	bool played_all;
};

struct outcall_mod {
	struct call_env *env;
	struct sipl *sip;
	char instance_id[80];
	char fqdn[256];
	unsigned ring_s;
	void (*result_h)(void *arg, const Openum__PlayOnPhoneResult *r);
	void *arg;
	bool (*gw_down_h)(void *arg, const char *gateway);
	void *gw_down_arg;
	struct outcall *calls;
	unsigned n_alloc;		/* calls not yet freed */
	unsigned active;		/* calls not yet DONE */
	bool closing;
};

struct load_job {
	struct outcall *oc;
	int64_t id;
	char mailbox[POP_MAILBOX_MAX + 1], dialplan[DIR_NAME_MAX + 1];
	struct audio_buf *audio;
};

static void teardown(struct outcall *oc);
static void connect_next(struct outcall *oc);
static void send_bye(struct outcall *oc);

/* ---- lifetime -------------------------------------------------------------- */

static uint64_t now_ms(struct outcall_mod *m)
{
	uv_update_time(m->env->loop);	/* may run inside a sofia callback */
	return uv_now(m->env->loop);
}

static void maybe_free_module(struct outcall_mod *m)
{
	if (m->closing && m->n_alloc == 0)
		free(m);
}

static void timer_closed(uv_handle_t *h)
{
	struct outcall *oc = h->data;
	struct outcall_mod *m = oc->m;

	free(oc);
	m->n_alloc--;
	maybe_free_module(m);
}

static void oc_unref(struct outcall *oc)
{
	struct outcall_mod *m = oc->m;

	if (--oc->refs > 0)
		return;
	if (oc->prev)
		oc->prev->next = oc->next;
	else
		m->calls = oc->next;
	if (oc->next)
		oc->next->prev = oc->prev;
	oc->audio = audio_buf_unref(oc->audio);
	uv_close((uv_handle_t *)&oc->timer, timer_closed);
}

static void count(struct outcall *oc, bool on)
{
	struct call_env *e = oc->m->env;

	if (oc->counted == on)
		return;
	oc->counted = on;
	if (on) {
		e->active++;
		oc->m->active++;
	} else {
		e->active--;
		oc->m->active--;
	}
	if (e->load_h)
		e->load_h(e->load_arg);
}

static void set_timer(struct outcall *oc, uv_timer_cb cb, uint64_t ms)
{
	uv_update_time(oc->m->env->loop);
	uv_timer_start(&oc->timer, cb, ms, 0);
}

/* ---- reporting ----------------------------------------------------------- */

static void send_result(struct outcall_mod *m, uint32_t id, bool ok,
			unsigned status, const char *reason, const char *gw,
			const char *addr, unsigned played_ms)
{
	Openum__PlayOnPhoneResult r = OPENUM__PLAY_ON_PHONE_RESULT__INIT;

	r.request_id = id;
	r.ok = ok;
	r.reason = (char *)reason;
	r.sip_status = status;
	r.gateway = (char *)(gw ? gw : "");
	r.address = (char *)(addr ? addr : "");
	r.played_ms = played_ms;
	r.instance_id = m->instance_id;
	if (m->result_h)
		m->result_h(m->arg, &r);
}

/* The request's one result, and its log line. */
static void report(struct outcall *oc, bool ok, unsigned status,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void report(struct outcall *oc, bool ok, unsigned status,
		   const char *fmt, ...)
{
	char reason[600];
	va_list ap;

	if (oc->reported)
		return;
	oc->reported = true;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	log_write(ok ? LOG_LEVEL_NOTICE : LOG_LEVEL_WARN, LOG_MODULE,
		  "Play on Phone request %u (asked through the router): message "
		  "%lld of mailbox %s (dial plan %s) to %s via gateway %s at %s: "
		  "%s: %s; %.1f s of the message sent%s%s", oc->id,
		  (long long)oc->message_id, oc->mailbox,
		  oc->dialplan[0] ? oc->dialplan : "?", oc->to,
		  oc->gw[0] ? oc->gw : "-", oc->addr_str[0] ? oc->addr_str : "-",
		  ok ? "done" : "failed", reason,
		  (double)oc->played_ms / 1000.0,
		  oc->call_id[0] ? ", Call-ID " : "", oc->call_id);
	send_result(oc->m, oc->id, ok, status, reason, oc->gw, oc->addr_str,
		    oc->played_ms);
}

/* How much of the message has been sent (ms). */
static unsigned played_now(struct outcall *oc)
{
	size_t pos = 0;

	if (oc->played_all && oc->audio)
		return audio_buf_ms(oc->audio);
	if (oc->media && oc->audio &&
	    media_play_position(oc->media, &pos) == oc->audio)
		return (unsigned)(pos / 8);
	return oc->played_ms;
}

/* ---- SIP helpers ------------------------------------------------------------ */

static bool af_allows(enum dir_af af, int family)
{
	return family == AF_INET6 ? af != DIR_AF_IPV4ONLY : af != DIR_AF_IPV6ONLY;
}

static const struct dir_gateway *gateway_named(struct outcall_mod *m,
					       const char *name)
{
	struct rtab *t = m->env->table_h(m->env->table_arg);

	for (size_t g = 0; t && g < rtab_gateway_count(t); g++) {
		if (!strcasecmp(rtab_gateway(t, g)->name, name))
			return rtab_gateway(t, g);
	}
	return NULL;
}

/* ---- the end ------------------------------------------------------------------ */

/* Undoes one attempt (its INVITE, BYE, dialog and media): before the dial
 * plan's next gateway is tried, and by teardown(). */
static void release_attempt(struct outcall *oc)
{
	uv_timer_stop(&oc->timer);
	if (oc->invite) {
		nta_outgoing_destroy(oc->invite);
		oc->invite = NULL;
	}
	if (oc->bye) {
		nta_outgoing_destroy(oc->bye);
		oc->bye = NULL;
	}
	if (oc->leg) {
		nta_leg_destroy(oc->leg);
		oc->leg = NULL;
	}
	if (oc->media) {
		media_close(oc->media);
		oc->media = NULL;
	}
	oc->agent = NULL;
	oc->provisional = false;
}

/* Ends the SIP side and the media for good: nothing more is sent. */
static void teardown(struct outcall *oc)
{
	if (oc->st == OC_DONE)
		return;
	/* Every path reports first; this only keeps a request from ever
	 * going unanswered. */
	if (!oc->reported) {
		oc->played_ms = played_now(oc);
		report(oc, oc->played_all, 0, "the call ended");
	}
	oc->st = OC_DONE;
	if (oc->ocr) {
		outconn_cancel(oc->ocr);
		oc->ocr = NULL;
	}
	release_attempt(oc);
	count(oc, false);
	if (oc->sip_ref) {
		oc->sip_ref = false;
		oc_unref(oc);
	}
}

/* The INVITE failed through the current gateway for the gateway's own
 * reason (text says it): on to the next one, if there is one. Returns
 * false when none is left (the caller reports). */
static bool try_next_gateway(struct outcall *oc, const char *text)
{
	if (oc->gi + 1 >= oc->n_gw)
		return false;
	snprintf(oc->last_fail, sizeof oc->last_fail, "%s", text);
	log_info("Play on Phone request %u: %s; trying the dial plan's next "
		 "gateway", oc->id, text);
	release_attempt(oc);
	oc->gi++;
	connect_next(oc);
	return true;
}

static void guard_due(uv_timer_t *t)
{
	struct outcall *oc = t->data;

	if (oc->st == OC_BYE) {
		log_info("Play on Phone request %u: no answer to our BYE within "
			 "%u ms; the call is over anyway", oc->id,
			 OUTCALL_GUARD_MS);
		report(oc, oc->played_all, 0, "played to the end; the phone did "
		       "not answer our BYE");
	} else if (oc->st == OC_CANCELLING) {
		log_info("Play on Phone request %u: no final answer to the "
			 "INVITE within %u ms of the CANCEL", oc->id,
			 OUTCALL_GUARD_MS);
	}
	teardown(oc);
}

/* Ends the call for a reason of ours (the gateway dropped, the service
 * stopping): reported now, CANCEL or BYE sent where one is due. */
static void end_now(struct outcall *oc, const char *why)
{
	switch (oc->st) {
	case OC_LOADING:
	case OC_CONNECTING:
		report(oc, false, 0, "%s", why);
		teardown(oc);
		break;
	case OC_INVITING:
		report(oc, false, 0, "%s before the phone answered", why);
		oc->st = OC_CANCELLING;
		if (nta_outgoing_cancel(oc->invite) != 0)
			teardown(oc);
		else
			set_timer(oc, guard_due, OUTCALL_GUARD_MS);
		break;
	case OC_PLAYING:
		oc->played_ms = played_now(oc);
		report(oc, false, 0, "%s after %.1f s of the message", why,
		       (double)oc->played_ms / 1000.0);
		send_bye(oc);
		break;
	case OC_CANCELLING:
	case OC_BYE:
	case OC_DONE:
		break;
	}
}

/* ---- in the call ------------------------------------------------------------------ */

static int bye_cb(nta_outgoing_magic_t *magic, nta_outgoing_t *orq,
		  sip_t const *sip)
{
	struct outcall *oc = (struct outcall *)magic;
	int status = nta_outgoing_status(orq);

	if (status < 200)
		return 0;
	nta_outgoing_destroy(orq);
	oc->bye = NULL;
	if (oc->played_all)
		report(oc, true, 200, "played to the end; the call ended with our "
		       "BYE (%d)", status);
	teardown(oc);
	return 0;
}

/* Our BYE; the media stops now. */
static void send_bye(struct outcall *oc)
{
	if (oc->media) {
		media_close(oc->media);
		oc->media = NULL;
	}
	oc->st = OC_BYE;
	if (oc->leg)
		oc->bye = nta_outgoing_tcreate(oc->leg, bye_cb,
					       (nta_outgoing_magic_t *)oc,
					       (url_string_t *)oc->route,
					       SIP_METHOD_BYE, NULL,
					       SIPTAG_USER_AGENT_STR("OpenUM"),
					       TAG_END());
	if (!oc->bye) {
		if (oc->played_all)
			report(oc, true, 200, "played to the end; our BYE could "
			       "not be sent");
		teardown(oc);
		return;
	}
	set_timer(oc, guard_due, OUTCALL_GUARD_MS);
}

static void on_play_done(void *arg)
{
	struct outcall *oc = arg;

	if (oc->st != OC_PLAYING)
		return;
	oc->played_all = true;
	oc->played_ms = audio_buf_ms(oc->audio);
	log_info("Play on Phone request %u: message %lld played (%.1f s); "
		 "hanging up", oc->id, (long long)oc->message_id,
		 (double)oc->played_ms / 1000.0);
	send_bye(oc);
}

static int sdp_for_us(struct outcall *oc, char *buf, size_t len,
		      const struct sdp_offer *offer, struct sdp_choice *ch)
{
	struct sdp_local l;
	const char *addr;
	uint16_t port;
	int fam;

	media_local(oc->media, &addr, &port, &fam);
	memset(&l, 0, sizeof l);
	l.family = fam;
	l.addr = addr;
	l.port = port;
	l.sess_id = oc->sess_id;
	l.sess_version = ++oc->sess_ver;
	l.username = "openum";
	if (offer)
		return sdp_answer_build(buf, len, offer, &l, ch);
	return sdp_offer_build(buf, len, &l);
}

/* A re-INVITE from the phone (hold, a new address): answered from the same
 * media socket; another family is refused. */
static void reinvite(struct outcall *oc, nta_incoming_t *irq, const sip_t *sip)
{
	struct sdp_offer o;
	struct sdp_choice ch;
	char sdp[1024], *cause = NULL;

	if (!oc->media || !sip->sip_payload ||
	    sdp_offer_parse(&o, sip->sip_payload->pl_data,
			    sip->sip_payload->pl_len, &cause) != 0 ||
	    o.family != oc->family ||
	    sdp_for_us(oc, sdp, sizeof sdp, &o, &ch) != 0 ||
	    media_set_remote(oc->media, &ch) != 0) {
		log_info("Play on Phone request %u: re-INVITE refused: %s", oc->id,
			 cause ? cause : "no usable SDP");
		free(cause);
		nta_incoming_treply(irq, SIP_488_NOT_ACCEPTABLE, TAG_END());
		return;
	}
	nta_incoming_treply(irq, SIP_200_OK, SIPTAG_ALLOW_STR(OUTCALL_ALLOW),
			    SIPTAG_CONTENT_TYPE_STR("application/sdp"),
			    SIPTAG_PAYLOAD_STR(sdp), TAG_END());
}

/* Requests from the phone inside the dialog. */
static int leg_request(nta_leg_magic_t *magic, nta_leg_t *leg,
		       nta_incoming_t *irq, sip_t const *sip)
{
	struct outcall *oc = (struct outcall *)magic;

	switch (sip->sip_request->rq_method) {
	case sip_method_ack:
		return 0;
	case sip_method_bye:
		nta_incoming_treply(irq, SIP_200_OK, TAG_END());
		nta_incoming_destroy(irq);
		if (oc->st == OC_PLAYING) {
			uint64_t up = now_ms(oc->m) - oc->answered_ms;

			oc->played_ms = played_now(oc);
			report(oc, false, 0, "the phone hung up after %.1f s "
			       "(%.1f s of %.1f s played)", (double)up / 1000.0,
			       (double)oc->played_ms / 1000.0,
			       (double)audio_buf_ms(oc->audio) / 1000.0);
		} else if (oc->played_all) {
			report(oc, true, 200, "played to the end; the phone hung "
			       "up as we did");
		}
		teardown(oc);
		return 0;
	case sip_method_invite:
		if (oc->st != OC_PLAYING)
			nta_incoming_treply(irq, 491, "Request Pending", TAG_END());
		else
			reinvite(oc, irq, sip);
		nta_incoming_destroy(irq);
		return 0;
	case sip_method_update:
	case sip_method_options:
		nta_incoming_treply(irq, SIP_200_OK, SIPTAG_ALLOW_STR(OUTCALL_ALLOW),
				    TAG_END());
		nta_incoming_destroy(irq);
		return 0;
	default:
		nta_incoming_treply(irq, SIP_405_METHOD_NOT_ALLOWED,
				    SIPTAG_ALLOW_STR(OUTCALL_ALLOW), TAG_END());
		nta_incoming_destroy(irq);
		return 0;
	}
}

static void send_ack(struct outcall *oc, const sip_t *sip)
{
	nta_outgoing_t *ack;

	ack = nta_outgoing_tcreate(oc->leg, NULL, NULL, (url_string_t *)oc->route,
				   SIP_METHOD_ACK, NULL, SIPTAG_CSEQ(sip->sip_cseq),
				   TAG_END());
	if (ack)
		nta_outgoing_destroy(ack);
	else
		log_warn("Play on Phone request %u: the ACK could not be sent",
			 oc->id);
}

/* 2xx: the dialog is set up, ACK goes, the message starts. */
static void answered(struct outcall *oc, const sip_t *sip, int status)
{
	struct sdp_offer ans;
	struct sdp_choice ch;
	char *cause = NULL;
	int err = 0;

	uv_timer_stop(&oc->timer);
	if (sip->sip_to && sip->sip_to->a_tag)
		nta_leg_rtag(oc->leg, sip->sip_to->a_tag);
	nta_leg_client_route(oc->leg, sip->sip_record_route, sip->sip_contact);
	send_ack(oc, sip);
	if (!sip->sip_payload || !sip->sip_payload->pl_len) {
		cause = strdup("no SDP answer in the 200");
		err = EBADMSG;
	} else if ((err = sdp_answer_parse(&ans, sip->sip_payload->pl_data,
					   sip->sip_payload->pl_len, &cause)) == 0) {
		if (ans.family != oc->family) {
			cause = strdup(ans.family == AF_INET6
				       ? "the SDP answer is IPv6, the offer IPv4"
				       : "the SDP answer is IPv4, the offer IPv6");
			err = EAFNOSUPPORT;
		} else if ((err = sdp_choose(&ch, &ans)) != 0) {
			cause = strdup("no codec in common (PCMU, PCMA)");
		} else if ((err = media_set_remote(oc->media, &ch)) != 0) {
			cause = strdup("the media address of the answer is not usable");
		}
	}
	oc->answered_ms = now_ms(oc->m);
	oc->st = OC_PLAYING;
	if (err) {
		report(oc, false, (unsigned)status, "the phone answered (%d) but %s",
		       status, cause ? cause : strerror(err));
		free(cause);
		send_bye(oc);
		return;
	}
	log_info("Play on Phone request %u: answered (%d) by %s, media %s "
		 "%s:%u; playing message %lld (%.1f s)", oc->id, status,
		 oc->addr_str, ch.codec == SDP_CODEC_PCMA ? "PCMA" : "PCMU",
		 ch.addr, ch.port, (long long)oc->message_id,
		 (double)audio_buf_ms(oc->audio) / 1000.0);
	media_play(oc->media, oc->audio);
	media_start(oc->media);
}

static int invite_cb(nta_outgoing_magic_t *magic, nta_outgoing_t *orq,
		     sip_t const *sip)
{
	struct outcall *oc = (struct outcall *)magic;
	int status = nta_outgoing_status(orq);
	char phrase[80] = "", text[300];
	bool internal = nta_sip_is_internal(sip);

	if (sip && sip->sip_status && sip->sip_status->st_phrase)
		snprintf(phrase, sizeof phrase, "%s", sip->sip_status->st_phrase);
	pop_sanitize(phrase);
	if (status < 200) {
		if (!oc->provisional && !internal)
			log_info("Play on Phone request %u: %d %s from %s", oc->id,
				 status, phrase, oc->addr_str);
		if (!internal)
			oc->provisional = true;
		return 0;
	}
	if (status < 300) {
		nta_outgoing_destroy(orq);
		oc->invite = NULL;
		if (oc->st != OC_INVITING) {
			/* Answered after our CANCEL: the call is already over
			 * for us. */
			if (sip && sip->sip_to && sip->sip_to->a_tag)
				nta_leg_rtag(oc->leg, sip->sip_to->a_tag);
			if (sip)
				nta_leg_client_route(oc->leg, sip->sip_record_route,
						     sip->sip_contact);
			if (sip)
				send_ack(oc, sip);
			send_bye(oc);
			return 0;
		}
		answered(oc, sip, status);
		return 0;
	}
	nta_outgoing_destroy(orq);
	oc->invite = NULL;
	if (oc->st == OC_CANCELLING) {
		teardown(oc);
		return 0;
	}
	if (internal) {
		/* Nothing came back from the gateway (nta's own 408/503). */
		char t2[512];

		snprintf(text, sizeof text, "%d %s", status, phrase);
		outconn_mark_bad(oc->m->env->outconn,
				 (const struct sockaddr *)&oc->addr, text);
		snprintf(t2, sizeof t2, "gateway %s at %s did not answer the "
			 "INVITE (%s)", oc->gw, oc->addr_str, text);
		if (try_next_gateway(oc, t2))
			return 0;
		report(oc, false, 0, "%s", t2);
	} else {
		pop_status_text(text, sizeof text, (unsigned)status, phrase, oc->gw,
				oc->addr_str);
		if (pop_try_next_gateway((unsigned)status, false) &&
		    try_next_gateway(oc, text))
			return 0;
		report(oc, false, (unsigned)status, "%s", text);
	}
	teardown(oc);
	return 0;
}

static void ring_due(uv_timer_t *t)
{
	struct outcall *oc = t->data;
	unsigned s = oc->m->ring_s;

	if (oc->st != OC_INVITING)
		return;
	if (!oc->provisional) {
		char why[64], text[400];

		/* Not even a 100 Trying: the gateway is not there. */
		snprintf(why, sizeof why, "no response to an INVITE within %u s", s);
		outconn_mark_bad(oc->m->env->outconn,
				 (const struct sockaddr *)&oc->addr, why);
		snprintf(text, sizeof text, "gateway %s at %s sent no response "
			 "to the INVITE within %u s", oc->gw, oc->addr_str, s);
		if (try_next_gateway(oc, text))
			return;
		report(oc, false, 0, "%s", text);
		teardown(oc);
		return;
	}
	report(oc, false, 0, "no answer within %u s", s);
	oc->st = OC_CANCELLING;
	if (nta_outgoing_cancel(oc->invite) != 0)
		teardown(oc);
	else
		set_timer(oc, guard_due, OUTCALL_GUARD_MS);
}

/* The round found the gateway's address: media socket, offer, INVITE. */
static int send_invite(struct outcall *oc, char *why, size_t len)
{
	struct outcall_mod *m = oc->m;
	enum sipl_family f = oc->family == AF_INET6 ? SIPL_FAMILY_IPV6
						    : SIPL_FAMILY_IPV4;
	char host[NETADDR_STRLEN], local[300], lhost[304], gwhost[260];
	char mlocal[NETADDR_STRLEN], sdp[1024], ruri[400], to[404], from[420];
	char contact[420], tag[20], *cause = NULL;
	unsigned lport = sipl_listener_port(m->sip, f, "tcp");
	bool v6 = oc->family == AF_INET6;
	struct media_handlers mh = {.play_done_h = on_play_done};
	int err;

	oc->agent = sipl_agent(m->sip, f);
	if (!oc->agent) {
		snprintf(why, len, "the UM service has no SIP listener of %s any "
			 "more", v6 ? "IPv6" : "IPv4");
		return ENOENT;
	}
	netaddr_host((const struct sockaddr *)&oc->addr, host, sizeof host);
	err = media_local_for(oc->family, host, mlocal, sizeof mlocal);
	if (!err)
		err = media_open(&oc->media, m->env->media, oc->family, mlocal, &mh,
				 oc, &cause);
	if (err) {
		snprintf(why, len, "no media socket toward %s: %s", host,
			 cause ? cause : strerror(err));
		free(cause);
		return err;
	}
	if (m->fqdn[0])
		snprintf(local, sizeof local, "%s", m->fqdn);
	else
		snprintf(local, sizeof local, "%s", mlocal);
	snprintf(lhost, sizeof lhost, strchr(local, ':') ? "[%s]" : "%s", local);
	snprintf(gwhost, sizeof gwhost, strchr(oc->gwaddr, ':') ? "[%s]" : "%s",
		 oc->gwaddr);
	oc->sess_id = oc->sess_ver = (uint64_t)now_ms(m) * 1000u + oc->id;
	if (sdp_for_us(oc, sdp, sizeof sdp, NULL, NULL) != 0) {
		snprintf(why, len, "cannot build the SDP offer");
		return EINVAL;
	}
	snprintf(oc->route, sizeof oc->route, "sip:%s%s%s:%u;transport=tcp",
		 v6 ? "[" : "", host, v6 ? "]" : "", netaddr_port(
			 (const struct sockaddr *)&oc->addr));
	snprintf(ruri, sizeof ruri, "sip:%s@%s:%u", oc->to, gwhost, oc->gwport);
	snprintf(to, sizeof to, "<%s>", ruri);
	snprintf(from, sizeof from, "\"OpenUM Play on Phone\" <sip:%s@%s>",
		 oc->mailbox, lhost);
	snprintf(contact, sizeof contact, "<sip:%s@%s:%u;transport=tcp>",
		 oc->mailbox, lhost, lport);
	hex_random(tag, 8);
	hex_random(oc->call_id, 16);
	oc->leg = nta_leg_tcreate(oc->agent, leg_request, (nta_leg_magic_t *)oc,
				  SIPTAG_CALL_ID_STR(oc->call_id),
				  SIPTAG_FROM_STR(from), SIPTAG_TO_STR(to),
				  TAG_END());
	if (!oc->leg || !nta_leg_tag(oc->leg, tag)) {
		snprintf(why, len, "cannot create the SIP dialog");
		return ENOMEM;
	}
	oc->invite = nta_outgoing_tcreate(oc->leg, invite_cb,
					  (nta_outgoing_magic_t *)oc,
					  (url_string_t *)oc->route,
					  SIP_METHOD_INVITE, (url_string_t *)ruri,
					  TAG_IF(lport, SIPTAG_CONTACT_STR(contact)),
					  SIPTAG_ALLOW_STR(OUTCALL_ALLOW),
					  SIPTAG_USER_AGENT_STR("OpenUM"),
					  SIPTAG_CONTENT_TYPE_STR("application/sdp"),
					  SIPTAG_PAYLOAD_STR(sdp), TAG_END());
	if (!oc->invite) {
		snprintf(why, len, "cannot send the INVITE");
		return EIO;
	}
	oc->st = OC_INVITING;
	set_timer(oc, ring_due, (uint64_t)m->ring_s * 1000u);
	log_info("Play on Phone request %u: INVITE sip:%s@%s to gateway %s at %s "
		 "(media %s), Call-ID %s", oc->id, oc->to, gwhost, oc->gw,
		 oc->addr_str, mlocal, oc->call_id);
	return 0;
}

/* ---- connecting ---------------------------------------------------------------- */

static void connected(void *arg, const struct outconn_result *r)
{
	struct outcall *oc = arg;
	char why[300];

	oc->ocr = NULL;
	if (oc->st != OC_CONNECTING)
		return;
	if (r->err) {
		pop_connect_text(oc->last_fail, sizeof oc->last_fail, oc->gw,
				 oc->gwaddr, r->err, r->why, oc->who);
		log_info("Play on Phone request %u: %s", oc->id, oc->last_fail);
		oc->gi++;
		connect_next(oc);
		return;
	}
	oc->addr = r->addr;
	oc->family = r->addr.ss_family;
	snprintf(oc->addr_str, sizeof oc->addr_str, "%s", r->addr_str);
	log_debug("Play on Phone request %u: gateway %s answers at %s (%llu ms, "
		  "%u address%s skipped as bad)", oc->id, oc->gw, oc->addr_str,
		  (unsigned long long)r->elapsed_ms, r->skipped,
		  r->skipped == 1 ? "" : "es");
	if (send_invite(oc, why, sizeof why) != 0) {
		report(oc, false, 0, "gateway %s at %s: %s", oc->gw, oc->addr_str,
		       why);
		teardown(oc);
	}
}

/* Starts a round toward the next usable gateway; when none is left, the
 * last failure is the result. */
static void connect_next(struct outcall *oc)
{
	struct outcall_mod *m = oc->m;

	for (; oc->gi < oc->n_gw; oc->gi++) {
		const struct dir_gateway *gw = gateway_named(m, oc->gws[oc->gi]);
		unsigned fams = 0;
		int err;

		if (!gw || gw->status != DIR_GW_ENABLED || !gw->outcalls_allowed) {
			snprintf(oc->last_fail, sizeof oc->last_fail, "gateway %s is "
				 "no longer Enabled with OutcallsAllowed",
				 oc->gws[oc->gi]);
			continue;
		}
		if (af_allows(gw->af, AF_INET6) && af_allows(m->env->af, AF_INET6) &&
		    sipl_agent(m->sip, SIPL_FAMILY_IPV6))
			fams |= OUTCONN_V6;
		if (af_allows(gw->af, AF_INET) && af_allows(m->env->af, AF_INET) &&
		    sipl_agent(m->sip, SIPL_FAMILY_IPV4))
			fams |= OUTCONN_V4;
		snprintf(oc->gw, sizeof oc->gw, "%s", gw->name);
		snprintf(oc->gwaddr, sizeof oc->gwaddr, "%s", gw->address);
		oc->gwport = gw->port;
		if (!fams) {
			snprintf(oc->last_fail, sizeof oc->last_fail, "gateway %s (%s, "
				 "IPAddressFamily %s): the UM service (IPAddressFamily "
				 "%s) has no SIP listener of a family the gateway "
				 "allows", gw->name, gw->address, dir_af_name(gw->af),
				 dir_af_name(m->env->af));
			continue;
		}
		snprintf(oc->who, sizeof oc->who, "Play on Phone to %s via gateway %s",
			 oc->to, gw->name);
		oc->st = OC_CONNECTING;
		err = outconn_start(m->env->outconn, gw->address, gw->port, fams,
				    oc->who, connected, oc, &oc->ocr);
		if (!err)
			return;
		oc->ocr = NULL;
		snprintf(oc->last_fail, sizeof oc->last_fail, "gateway %s (%s): "
			 "cannot start connecting: %s", gw->name, gw->address,
			 strerror(err));
	}
	report(oc, false, 0, "%s", oc->last_fail);
	teardown(oc);
}

/* ---- the message ------------------------------------------------------------------- */

static int load_run(struct vmstore *vs, void *arg)
{
	struct load_job *j = arg;
	struct vm_message *msg = NULL;
	int16_t *pcm = NULL;
	size_t n = 0;
	int err;

	err = vmstore_get(vs, j->id, &msg);
	if (err)
		return err;
	if (strcmp(msg->mailbox, j->mailbox) != 0 ||
	    strcasecmp(msg->dialplan, j->dialplan) != 0)
		err = EPERM;
	else if (msg->state == VM_STATE_RECORDING)
		err = EINPROGRESS;
	else if (msg->state == VM_STATE_DELETED)
		err = ESTALE;
	vmstore_messages_free(msg, 1);
	if (err)
		return err;
	err = vmstore_get_audio(vs, j->id, &pcm, &n);
	if (!err && n == 0)
		err = ENODATA;
	if (!err)
		err = audio_buf_from(&j->audio, pcm, n);
	free(pcm);
	return err;
}

static void load_done(int err, int64_t id, int64_t ms, void *arg)
{
	struct load_job *j = arg;
	struct outcall *oc = j->oc;

	(void)id;
	(void)ms;
	if (oc->st == OC_LOADING) {
		long long mid = (long long)oc->message_id;

		switch (err) {
		case 0:
			oc->audio = audio_buf_ref(j->audio);
			connect_next(oc);
			break;
		case ENOENT:
		case EPERM:
			report(oc, false, 0, "message %lld is not in mailbox %s",
			       mid, oc->mailbox);
			teardown(oc);
			break;
		case ESTALE:
			report(oc, false, 0, "message %lld of mailbox %s is deleted",
			       mid, oc->mailbox);
			teardown(oc);
			break;
		case EINPROGRESS:
			report(oc, false, 0, "message %lld of mailbox %s is still "
			       "being recorded", mid, oc->mailbox);
			teardown(oc);
			break;
		case ENODATA:
			report(oc, false, 0, "message %lld of mailbox %s has no "
			       "audio", mid, oc->mailbox);
			teardown(oc);
			break;
		default:
			report(oc, false, 0, "cannot read message %lld: %s", mid,
			       strerror(err));
			teardown(oc);
			break;
		}
	}
	audio_buf_unref(j->audio);
	free(j);
	oc_unref(oc);
}

/* ---- requests ----------------------------------------------------------------------- */

/* The dial plan of the request: the one named, or the only one the mailbox
 * is in. 0, or a reason in why. */
static int pick_dialplan(struct outcall_mod *m, const struct rtab *t,
			 const char *asked, const char *mailbox, char *out,
			 size_t outlen, char *why, size_t len)
{
	struct classify_ctx ctx;
	size_t found = 0;
	char names[200] = "";

	if (asked && *asked) {
		const struct dir_dialplan *dp = rtab_dialplan(t, asked);

		if (!dp) {
			snprintf(why, len, "no UM dial plan %s", asked);
			return ENOENT;
		}
		if (!rtab_mailbox_name(t, dp->name, mailbox)) {
			snprintf(why, len, "mailbox %s is not an enabled UM mailbox "
				 "of dial plan %s", mailbox, dp->name);
			return ENOENT;
		}
		snprintf(out, outlen, "%s", dp->name);
		return 0;
	}
	rtab_classify_ctx(t, &ctx);
	for (size_t i = 0; i < ctx.n_dialplans; i++) {
		const char *dp = ctx.dialplans[i].name;
		size_t used = strlen(names);

		if (!rtab_mailbox_name(t, dp, mailbox))
			continue;
		if (found++ == 0)
			snprintf(out, outlen, "%s", dp);
		snprintf(names + used, sizeof names - used, "%s%s",
			 used ? ", " : "", dp);
	}
	(void)m;
	if (found == 1)
		return 0;
	if (found == 0)
		snprintf(why, len, "mailbox %s is not an enabled UM mailbox of any "
			 "dial plan", mailbox);
	else
		snprintf(why, len, "mailbox %s is in %zu dial plans (%s): name one "
			 "with --dial-plan", mailbox, found, names);
	return found ? EEXIST : ENOENT;
}

/* The gateways a dial plan's outbound calls may use, by name, in
 * directory order; or why there are none. */
/* Gateways whose OPTIONS ping went unanswered go after the others (a
 * blackholed gateway would cost a connect round's whole deadline); the
 * order within each group stays the name order. */
static void down_last(struct outcall_mod *m, struct outcall *oc)
{
	char tmp[OUTCALL_MAX_GATEWAYS][DIR_NAME_MAX + 1];
	bool down[OUTCALL_MAX_GATEWAYS];
	size_t k = 0;

	if (oc->n_gw < 2)
		return;
	for (size_t i = 0; i < oc->n_gw; i++)
		down[i] = m->gw_down_h(m->gw_down_arg, oc->gws[i]);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < oc->n_gw; i++) {
			if (down[i] != (pass == 1))
				continue;
			if (down[i])
				log_info("Play on Phone request %u: gateway %s is "
					 "down (no answer to OPTIONS): tried after "
					 "the others", oc->id, oc->gws[i]);
			memcpy(tmp[k++], oc->gws[i], sizeof tmp[0]);
		}
	}
	memcpy(oc->gws, tmp, oc->n_gw * sizeof tmp[0]);
}

static size_t pick_gateways(const struct rtab *t, const char *dialplan,
			    char (*out)[DIR_NAME_MAX + 1], size_t max,
			    char *why, size_t len)
{
	struct classify_ctx ctx;
	size_t n = 0, linked = 0, allowed = 0;
	char off[160] = "";

	rtab_classify_ctx(t, &ctx);
	for (size_t g = 0; g < rtab_gateway_count(t); g++) {
		const struct dir_gateway *gw = rtab_gateway(t, g);
		bool in_dp = false;

		for (size_t h = 0; h < ctx.n_huntgroups && !in_dp; h++)
			in_dp = !strcasecmp(ctx.huntgroups[h].dialplan, dialplan) &&
				!strcasecmp(ctx.huntgroups[h].gateway, gw->name);
		if (!in_dp)
			continue;
		linked++;
		if (!gw->outcalls_allowed)
			continue;
		allowed++;
		if (gw->status != DIR_GW_ENABLED) {
			size_t used = strlen(off);

			snprintf(off + used, sizeof off - used, "%s%s is %s",
				 used ? ", " : "", gw->name,
				 gw->status == DIR_GW_DISABLED ? "Disabled"
							       : "NoNewCalls");
			continue;
		}
		if (n < max)
			snprintf(out[n++], DIR_NAME_MAX + 1, "%s", gw->name);
	}
	if (n)
		return n;
	if (!linked)
		snprintf(why, len, "no gateway of dial plan %s allows outcalls (no "
			 "UM IP gateway is linked to it by a hunt group)", dialplan);
	else if (!allowed)
		snprintf(why, len, "no gateway of dial plan %s allows outcalls",
			 dialplan);
	else
		snprintf(why, len, "no gateway of dial plan %s allows outcalls and "
			 "is Enabled (%s)", dialplan, off);
	return 0;
}

/* See the header. */
void outcall_request(struct outcall_mod *m, const Openum__PlayOnPhoneRequest *r)
{
	struct call_env *e = m->env;
	struct rtab *t = e->table_h(e->table_arg);
	struct outcall *oc;
	struct load_job *j;
	char why[400];
	int err;

	if (pop_request_check(r, true, why, sizeof why) != 0) {
		log_warn("Play on Phone request %u from the router refused: %s",
			 r ? r->request_id : 0, why);
		send_result(m, r ? r->request_id : 0, false, 0, why, NULL, NULL, 0);
		return;
	}
	oc = calloc(1, sizeof *oc);
	if (!oc) {
		send_result(m, r->request_id, false, 0, "the UM service is out of "
			    "memory", NULL, NULL, 0);
		return;
	}
	oc->m = m;
	oc->refs = 1;
	oc->sip_ref = true;
	oc->id = r->request_id;
	oc->message_id = r->message_id;
	snprintf(oc->mailbox, sizeof oc->mailbox, "%s", r->mailbox);
	snprintf(oc->to, sizeof oc->to, "%s", r->to);
	uv_timer_init(e->loop, &oc->timer);
	oc->timer.data = oc;
	m->n_alloc++;
	oc->next = m->calls;
	if (m->calls)
		m->calls->prev = oc;
	m->calls = oc;
	oc->st = OC_LOADING;
	count(oc, true);

	if (m->closing) {
		report(oc, false, 0, "the UM service is stopping");
		goto refuse;
	}
	if (e->active > e->max_calls) {
		report(oc, false, 0, "UM service %s has MaxCallsAllowed (%u) calls "
		       "already", m->instance_id, e->max_calls);
		goto refuse;
	}
	if (!t) {
		report(oc, false, 0, "UM service %s has no directory snapshot",
		       m->instance_id);
		goto refuse;
	}
	if (pick_dialplan(m, t, r->dial_plan, oc->mailbox, oc->dialplan,
			  sizeof oc->dialplan, why, sizeof why) != 0) {
		report(oc, false, 0, "%s", why);
		goto refuse;
	}
	oc->n_gw = pick_gateways(t, oc->dialplan, oc->gws, OUTCALL_MAX_GATEWAYS,
				 why, sizeof why);
	if (!oc->n_gw) {
		report(oc, false, 0, "%s", why);
		goto refuse;
	}
	if (m->gw_down_h)
		down_last(m, oc);
	log_info("Play on Phone request %u: message %lld of mailbox %s (dial plan "
		 "%s) to %s; gateways: %s%s", oc->id, (long long)oc->message_id,
		 oc->mailbox, oc->dialplan, oc->to, oc->gws[0],
		 oc->n_gw > 1 ? " and more" : "");
	j = calloc(1, sizeof *j);
	if (!j) {
		report(oc, false, 0, "the UM service is out of memory");
		goto refuse;
	}
	j->oc = oc;
	j->id = oc->message_id;
	snprintf(j->mailbox, sizeof j->mailbox, "%s", oc->mailbox);
	snprintf(j->dialplan, sizeof j->dialplan, "%s", oc->dialplan);
	oc->refs++;
	err = vmwriter_run(e->vm, load_run, load_done, j);
	if (err) {
		oc->refs--;
		free(j);
		report(oc, false, 0, "the voicemail store is busy (%s)",
		       strerror(err));
		goto refuse;
	}
	return;
refuse:
	teardown(oc);
}

/* ---- the module ------------------------------------------------------------------------ */

int outcall_alloc(struct outcall_mod **out, const struct outcall_config *c)
{
	struct outcall_mod *m;

	if (!out || !c || !c->env || !c->sip)
		return EINVAL;
	m = calloc(1, sizeof *m);
	if (!m)
		return ENOMEM;
	m->env = c->env;
	m->sip = c->sip;
	snprintf(m->instance_id, sizeof m->instance_id, "%s",
		 c->instance_id ? c->instance_id : "");
	m->ring_s = c->ring_s ? c->ring_s : POP_RING_TIMEOUT_S;
	m->result_h = c->result_h;
	m->arg = c->arg;
	m->gw_down_h = c->gw_down_h;
	m->gw_down_arg = c->gw_down_arg;
	*out = m;
	return 0;
}

void outcall_configure(struct outcall_mod *m, const char *fqdn)
{
	if (m)
		snprintf(m->fqdn, sizeof m->fqdn, "%s", fqdn ? fqdn : "");
}

unsigned outcall_active(const struct outcall_mod *m)
{
	return m ? m->active : 0;
}

/* See the header. */
unsigned outcall_drop_gateway(struct outcall_mod *m, const char *gateway)
{
	struct outcall *oc, *next;
	unsigned n = 0;
	char why[160];

	if (!m || !gateway)
		return 0;
	snprintf(why, sizeof why, "gateway %s was disabled with --drop-calls",
		 gateway);
	for (oc = m->calls; oc; oc = next) {
		next = oc->next;
		if (oc->st == OC_DONE || oc->st == OC_LOADING ||
		    strcasecmp(oc->gw, gateway) != 0)
			continue;
		if (oc->st == OC_CANCELLING || oc->st == OC_BYE)
			continue;
		end_now(oc, why);
		n++;
	}
	return n;
}

/* See the header. */
void outcall_end_all(struct outcall_mod *m, const char *why)
{
	struct outcall *oc, *next;

	if (!m)
		return;
	for (oc = m->calls; oc; oc = next) {
		next = oc->next;
		end_now(oc, why);
	}
}

/* See the header. */
void outcall_agent_gone(struct outcall_mod *m, nta_agent_t *agent)
{
	struct outcall *oc, *next;

	if (!m)
		return;
	for (oc = m->calls; oc; oc = next) {
		next = oc->next;
		if (oc->st == OC_DONE || !oc->agent || oc->agent != agent)
			continue;
		oc->played_ms = played_now(oc);
		report(oc, false, 0, "the UM service's SIP listener closed during "
		       "the call");
		teardown(oc);
	}
}

/* See the header. */
void outcall_free(struct outcall_mod *m)
{
	struct outcall *oc, *next;

	if (!m || m->closing)
		return;
	m->closing = true;
	for (oc = m->calls; oc; oc = next) {
		next = oc->next;
		oc->played_ms = played_now(oc);
		report(oc, false, 0, "the UM service stopped");
		teardown(oc);
	}
	maybe_free_module(m);
}

/* ---- command line ------------------------------------------------------------------------ */

int outcall_take_args(int *argc, char **argv, unsigned *ring_s)
{
	return daemon_take_seconds(argc, argv, "--pop-ring-timeout",
				   POP_RING_TIMEOUT_MAX_S, ring_s);
}

void outcall_usage(FILE *f)
{
	fprintf(f, "  --pop-ring-timeout SECONDS (umservice) how long a Play on "
		"Phone call rings\n"
		"                       before it is cancelled (1-%u, default %u)\n",
		POP_RING_TIMEOUT_MAX_S, POP_RING_TIMEOUT_S);
}
