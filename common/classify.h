/* classify.h — call classification (issue 3, rule 2) as a pure function of
 * the directory records and a few INVITE fields: call answering for a
 * mailbox, subscriber access, or a reject with a status and a reason. Shared
 * by umcallrouter and umservice; no SIP stack, no I/O of its own. */
#ifndef OPENUM_CLASSIFY_H
#define OPENUM_CLASSIFY_H

#include <stddef.h>

#include "common/directory.h"

enum classify_kind {
	CLASSIFY_REJECT = 0,
	CLASSIFY_CALL_ANSWERING,
	CLASSIFY_SUBSCRIBER_ACCESS,
};

/* Looks a mailbox up: 0 if an enabled mailbox `ext` exists in dial plan
 * `dialplan`, ENOENT otherwise; any other error is passed back by
 * classify_call (the caller answers 500). */
typedef int (classify_mailbox_h)(void *arg, const char *dialplan,
				 const char *ext);

struct classify_ctx {
	const struct dir_huntgroup *huntgroups;
	size_t n_huntgroups;
	const struct dir_dialplan *dialplans;
	size_t n_dialplans;
	classify_mailbox_h *mailbox_h; /* NULL: no mailboxes */
	void *mailbox_arg;
};

struct classify_request {
	const char *gateway;      /* name of the trusted gateway the INVITE came from */
	const char *ruri_user;    /* Request-URI user (may be NULL/empty) */
	const char *to_user;      /* To URI user (may be NULL) */
	const char *diversion;    /* all Diversion values joined with ", ", topmost first; NULL if none */
	const char *history_info; /* all History-Info values joined with ", " in order; NULL if none */
};

struct classify_result {
	enum classify_kind kind;
	char mailbox[21];         /* extension, for call answering */
	char dialplan[65];
	char huntgroup[65];
	int status;               /* SIP status for CLASSIFY_REJECT: 404, or 400 for unparsable diversion info */
	char reason[128];         /* what was not found, for the reason phrase and the log */
	char diverted_from[65];   /* the number the diversion info named, for logs */
};

/* Most History-Info entries looked at; a longer chain is answered 400. */
#define CLASSIFY_HI_MAX 32

/* Classifies one INVITE (the rules are documented in classify.c). Returns 0
 * with the decision in *out — a reject is a decision too, with status and
 * reason set —, EINVAL for a NULL ctx, req, out or req->gateway, or the
 * error of ctx->mailbox_h other than ENOENT (then *out says nothing). The
 * users should be as sipuri_user() gives them (escapes decoded). */
int classify_call(const struct classify_ctx *ctx,
		  const struct classify_request *req,
		  struct classify_result *out);

/* A short name of a kind for logs and IPC ("call-answering",
 * "subscriber-access", "reject"). Never NULL. */
const char *classify_kind_name(enum classify_kind kind);

#endif
