/* outcall.h — Play on Phone in the UM service: an outbound call that plays
 * one voice message to a phone.
 *
 *   request (from the router) ─ fields, mailbox, dial plan checked
 *   ─ gateways of the dial plan (hunt groups) that are Enabled and
 *     OutcallsAllowed ─ the message read on the voicemail writer's thread
 *     (it must be the mailbox's) ─ outconn round to the gateway (IPv6
 *     first, bad-address list, staggered connects) ─ INVITE over TCP to
 *     the winning address (SDP offer PCMU, PCMA, telephone-event from a
 *     media socket of its family) ─ 1xx ─ 2xx: ACK, play, BYE
 *   3xx-6xx, no answer within the ring time (CANCEL), the phone's BYE,
 *   the gateway disabled with --drop-calls, the service stopping: each
 *   ends the call and is reported.
 *
 * Every request gets exactly one result (result_h), with the reason in
 * words when it did not play to the end; the log has one line per request
 * with the mailbox, message, gateway, address and outcome.
 *
 * Lifetime: a call is held by its SIP side and by a store job in flight;
 * it is freed when both are done and its timer has closed. Everything runs
 * on the loop thread. */
#ifndef OPENUM_OUTCALL_H
#define OPENUM_OUTCALL_H

#include <stdbool.h>
#include <stdio.h>

#include <sofia-sip/nta.h>

#include "proto/openum.pb-c.h"

struct call_env;
struct outcall_mod;
struct sipl;

/* Gateways of a dial plan tried in turn when connecting fails. */
#define OUTCALL_MAX_GATEWAYS 8
/* How long a CANCEL or BYE may go unanswered before the call is dropped. */
#define OUTCALL_GUARD_MS 5000u

struct outcall_config {
	struct call_env *env;		/* media, store, directory, outconn, load */
	struct sipl *sip;		/* the service's agents, per family */
	const char *instance_id;	/* copied */
	unsigned ring_s;		/* 0 = POP_RING_TIMEOUT_S */
	/* Each request's one result (request_id set). */
	void (*result_h)(void *arg, const Openum__PlayOnPhoneResult *r);
	void *arg;
	/* Whether a gateway is known to be down (its OPTIONS ping went
	 * unanswered): tried after the others. NULL: no such knowledge. */
	bool (*gw_down_h)(void *arg, const char *gateway);
	void *gw_down_arg;
};

int outcall_alloc(struct outcall_mod **out, const struct outcall_config *c);
/* ExternalHostFqdn ("" = none: From and Contact carry the local address). */
void outcall_configure(struct outcall_mod *m, const char *fqdn);
/* A request from the router: never fails; a refusal is a result. */
void outcall_request(struct outcall_mod *m, const Openum__PlayOnPhoneRequest *r);
/* Ends the calls through UM IP gateway `gateway` (--drop-calls); returns
 * how many. */
unsigned outcall_drop_gateway(struct outcall_mod *m, const char *gateway);
/* Ends every call (BYE or CANCEL) with reason why: the service stops. */
void outcall_end_all(struct outcall_mod *m, const char *why);
/* A SIP agent is going away: its calls end at once (nothing more is sent
 * on it). */
void outcall_agent_gone(struct outcall_mod *m, nta_agent_t *agent);
/* Calls in progress. */
unsigned outcall_active(const struct outcall_mod *m);
/* Tears everything down (before the SIP agents, the media engine and the
 * voicemail writer go); the memory follows the last job and handle. */
void outcall_free(struct outcall_mod *m);

/* --pop-ring-timeout SECONDS (or =SECONDS): taken out of argv into
 * *ring_s (1-POP_RING_TIMEOUT_MAX_S). 0, or EINVAL after printing what was
 * wrong. */
int outcall_take_args(int *argc, char **argv, unsigned *ring_s);
void outcall_usage(FILE *f);

#endif
