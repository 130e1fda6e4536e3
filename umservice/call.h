/* call.h — one call answered by the UM service: the SIP dialog (NTA, as a
 * UAS), its media, and the call answering application that speaks the
 * greeting, records the message and stores it; subscriber access calls are
 * handed to ova.c. */
#ifndef OPENUM_CALL_H
#define OPENUM_CALL_H

#include <stdbool.h>
#include <uv.h>

#include <sofia-sip/nta.h>
#include <sofia-sip/sip.h>

#include "common/directory.h"

struct media_engine;
struct rtab;
struct tokens;
struct tts;
struct vmwriter;
struct audio_buf;
struct call;
struct greetings;

/* What calls need from the service that runs them. */
struct call_env {
	uv_loop_t *loop;
	struct media_engine *media;
	struct tts *tts;
	struct vmwriter *vm;
	struct tokens *tokens;
	struct rtab *(*table_h)(void *arg);
	void *table_arg;
	enum dir_af af;			/* the service's IPAddressFamily */
	unsigned max_calls;		/* MaxCallsAllowed */
	unsigned active;		/* calls in progress (maintained here) */
	/* Called whenever active changes (to tell the router). */
	void (*load_h)(void *arg);
	void *load_arg;
	/* Called whenever a mailbox's message counts may have changed
	 * (message stored, heard, deleted, marked unread): MWI. */
	void (*mailbox_changed_h)(void *arg, const char *dialplan,
				  const char *mailbox);
	void *mailbox_changed_arg;
	/* The directory was changed by a call (OOF by phone): reload it. */
	void (*directory_changed_h)(void *arg, const char *why);
	void *directory_changed_arg;
	const char *dir_path;		/* directory.db, for the worker threads */
	struct outconn *outconn;	/* the outbound connection policy */
	struct greetings *greetings;	/* recorded greetings */
	struct audio_buf *beep;		/* the record tone */
	struct call *calls;		/* calls in progress (call.c's list) */
	/* Counters for status and tests. */
	unsigned long long messages_stored, missed_calls;
};

/* Handles a new INVITE from the default leg of agent (family is the
 * listener's). Always answers or keeps irq; never returns an error. */
void call_invite(struct call_env *env, nta_agent_t *agent, nta_incoming_t *irq,
		 const sip_t *sip);
/* An agent is going away (listener rebind): its calls end. */
void call_agent_gone(struct call_env *env, nta_agent_t *agent);
/* Ends every call (service stopping): BYE sent, messages finished. */
void call_end_all(struct call_env *env);
/* Ends the calls that came through UM IP gateway `gateway` (BYE; a message
 * being recorded is kept); returns how many. */
unsigned call_drop_gateway(struct call_env *env, const char *gateway);
/* The fixed prompts, for pre-synthesis at start-up (NULL-terminated). */
extern const char *const call_prompts[];

#endif
