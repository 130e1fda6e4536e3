/* popfwd.c — Play on Phone requests relayed by the router; see popfwd.h. */
#define LOG_MODULE "popfwd"
#include "callrouter/popfwd.h"
#include "common/ipc.h"
#include "common/log.h"
#include "common/playonphone.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pending {
	struct pending *next;
	uint32_t id;
	struct ipc_conn *ctl;		/* the umctl connection that asked */
	struct ipc_conn *inst;		/* the instance asked */
	char instance_id[65];
	char mailbox[POP_MAILBOX_MAX + 1];
	int64_t message_id;
	char to[POP_NUMBER_MAX + 2];
	unsigned ctl_pid;
};

struct popfwd {
	struct registry *reg;
	struct pending *list;
	size_t n;
	uint32_t next_id;
};

int popfwd_alloc(struct popfwd **out, struct registry *reg)
{
	struct popfwd *p;

	if (!out || !reg)
		return EINVAL;
	p = calloc(1, sizeof *p);
	if (!p)
		return ENOMEM;
	p->reg = reg;
	p->next_id = 1;
	*out = p;
	return 0;
}

void popfwd_free(struct popfwd *p)
{
	if (!p)
		return;
	while (p->list) {
		struct pending *q = p->list;

		p->list = q->next;
		free(q);
	}
	free(p);
}

size_t popfwd_pending(const struct popfwd *p)
{
	return p ? p->n : 0;
}

/* See the header. */
struct reg_instance *popfwd_choose(struct registry *reg)
{
	struct reg_instance *best = NULL;

	for (size_t i = 0; reg && i < reg_count(reg); i++) {
		struct reg_instance *in = reg_at(reg, i);

		if (!in->accepting || in->active_calls >= in->max_calls)
			continue;
		if (!best || in->active_calls < best->active_calls)
			best = in;
	}
	return best;
}

/* Answers umctl connection c with a failure of request id (0: none was
 * assigned) in words. */
static void answer_failure(struct ipc_conn *c, uint32_t id, const char *inst,
			   const char *reason)
{
	Openum__Envelope env;
	Openum__PlayOnPhoneResult r = OPENUM__PLAY_ON_PHONE_RESULT__INIT;

	r.request_id = id;
	r.ok = false;
	r.reason = (char *)reason;
	r.instance_id = (char *)(inst ? inst : "");
	ipc_envelope_init(&env);
	env.body_case = OPENUM__ENVELOPE__BODY_PLAY_ON_PHONE_RESULT;
	env.play_on_phone_result = &r;
	ipc_conn_send(c, &env);
}

static struct pending *find(struct popfwd *p, uint32_t id,
			    struct pending ***slot)
{
	struct pending **pp = &p->list;

	for (; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == id)
			break;
	}
	if (slot)
		*slot = pp;
	return *pp;
}

static uint32_t new_id(struct popfwd *p)
{
	for (;;) {
		uint32_t id = p->next_id++;

		if (id != 0 && !find(p, id, NULL))
			return id;
	}
}

/* See the header. */
void popfwd_request(struct popfwd *p, struct ipc_conn *from,
		    const Openum__PlayOnPhoneRequest *m)
{
	Openum__Envelope env;
	Openum__PlayOnPhoneRequest fwd;
	struct reg_instance *in;
	struct pending *q;
	char why[160];

	if (pop_request_check(m, false, why, sizeof why) != 0) {
		log_notice("Play on Phone request from umctl pid %d refused: %s",
			   (int)ipc_conn_pid(from), why);
		answer_failure(from, 0, NULL, why);
		return;
	}
	if (p->n >= POPFWD_MAX_PENDING) {
		snprintf(why, sizeof why, "the router has %d Play on Phone "
			 "requests in progress already; try again later",
			 POPFWD_MAX_PENDING);
		log_warn("Play on Phone request from umctl pid %d refused: %s",
			 (int)ipc_conn_pid(from), why);
		answer_failure(from, 0, NULL, why);
		return;
	}
	in = popfwd_choose(p->reg);
	if (!in) {
		snprintf(why, sizeof why, "no UM service instance is accepting "
			 "calls (%zu registered)", reg_count(p->reg));
		log_warn("Play on Phone request from umctl pid %d for mailbox %s: "
			 "%s", (int)ipc_conn_pid(from), m->mailbox, why);
		answer_failure(from, 0, NULL, why);
		return;
	}
	q = calloc(1, sizeof *q);
	if (!q) {
		answer_failure(from, 0, NULL, "the router is out of memory");
		return;
	}
	q->id = new_id(p);
	q->ctl = from;
	q->inst = in->conn;
	q->ctl_pid = (unsigned)ipc_conn_pid(from);
	snprintf(q->instance_id, sizeof q->instance_id, "%s", in->id);
	snprintf(q->mailbox, sizeof q->mailbox, "%s", m->mailbox);
	snprintf(q->to, sizeof q->to, "%s", m->to);
	q->message_id = m->message_id;
	fwd = *m;
	fwd.request_id = q->id;
	ipc_envelope_init(&env);
	env.body_case = OPENUM__ENVELOPE__BODY_PLAY_ON_PHONE_REQUEST;
	env.play_on_phone_request = &fwd;
	if (ipc_conn_send(in->conn, &env) != 0) {
		snprintf(why, sizeof why, "cannot reach UM service instance %s",
			 in->id);
		answer_failure(from, q->id, in->id, why);
		free(q);
		return;
	}
	q->next = p->list;
	p->list = q;
	p->n++;
	log_notice("Play on Phone request %u from umctl pid %u (uid %u): "
		   "message %lld of mailbox %s%s%s to %s, sent to UM service "
		   "instance %s", q->id, q->ctl_pid,
		   (unsigned)ipc_conn_uid(from), (long long)q->message_id,
		   q->mailbox, m->dial_plan && *m->dial_plan ? " in dial plan " : "",
		   m->dial_plan && *m->dial_plan ? m->dial_plan : "", q->to,
		   q->instance_id);
}

/* See the header. */
int popfwd_result(struct popfwd *p, struct ipc_conn *from,
		  const Openum__PlayOnPhoneResult *m)
{
	Openum__Envelope env;
	Openum__PlayOnPhoneResult r;
	struct pending **slot, *q = find(p, m->request_id, &slot);
	char reason[512];

	if (!q) {
		log_info("Play on Phone result %u from an instance: nobody is "
			 "waiting for it any more; dropped", m->request_id);
		return reg_find_conn(p->reg, from) ? 0 : EPROTO;
	}
	if (q->inst != from)
		return EPROTO;
	*slot = q->next;
	p->n--;
	/* The instance's words, checked before they reach a terminal. */
	snprintf(reason, sizeof reason, "%s", m->reason ? m->reason : "");
	pop_sanitize(reason);
	r = *m;
	r.reason = reason;
	r.instance_id = q->instance_id;
	if (!r.gateway)
		r.gateway = "";
	if (!r.address)
		r.address = "";
	if (strlen(r.gateway) > 64 || strlen(r.address) > 64) {
		r.gateway = "";
		r.address = "";
	}
	log_notice("Play on Phone request %u (umctl pid %u) ended on %s: %s%s%s",
		   q->id, q->ctl_pid, q->instance_id, m->ok ? "played" : "failed",
		   reason[0] ? ": " : "", reason);
	ipc_envelope_init(&env);
	env.body_case = OPENUM__ENVELOPE__BODY_PLAY_ON_PHONE_RESULT;
	env.play_on_phone_result = &r;
	ipc_conn_send(q->ctl, &env);
	free(q);
	return 0;
}

/* See the header. */
void popfwd_conn_gone(struct popfwd *p, struct ipc_conn *c)
{
	struct pending **pp;

	if (!p)
		return;
	pp = &p->list;
	while (*pp) {
		struct pending *q = *pp;
		char why[160];

		if (q->ctl != c && q->inst != c) {
			pp = &q->next;
			continue;
		}
		*pp = q->next;
		p->n--;
		if (q->ctl == c) {
			log_info("Play on Phone request %u: umctl pid %u went away; "
				 "its result will be dropped", q->id, q->ctl_pid);
		} else {
			snprintf(why, sizeof why, "UM service instance %s went "
				 "away before the call ended", q->instance_id);
			log_warn("Play on Phone request %u: %s", q->id, why);
			answer_failure(q->ctl, q->id, q->instance_id, why);
		}
		free(q);
	}
}
