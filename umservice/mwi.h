/* mwi.h — the message waiting indicator (RFC 3842): whenever a mailbox's
 * new/old counts may have changed, and for every mailbox at least once per
 * refresh interval (12 h), umservice sends an unsolicited NOTIFY
 * (Event: message-summary) through each enabled UM IP gateway of the
 * mailbox's dial plan that has MessageWaitingIndicatorAllowed. Counts are read
 * on the voicemail writer's thread; gateways that do not answer get retries
 * with exponential backoff; nothing here ever blocks the event loop.
 *
 * Threading: every mwi_* function except the pure helpers at the end runs on
 * the loop thread. Lifetime: mwi_free() after the SIP agents and the
 * voicemail writer are closed (their callbacks into this module are over
 * then), before the loop is freed (timers close through it). */
#ifndef OPENUM_MWI_H
#define OPENUM_MWI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <uv.h>

#include <sofia-sip/su_wait.h>
#include <sofia-sip/nta.h>

#include "common/directory.h"
#include "common/vmstore.h"

struct mwi;
struct rtab;
struct sipl;
struct vmwriter;

/* Refresh interval: at least every 12 hours [Exchange]. */
#define MWI_REFRESH_DEFAULT_S 43200u
#define MWI_REFRESH_MAX_S 43200u
/* Changes of one mailbox within this window give one NOTIFY. */
#define MWI_COALESCE_MS 1000u
/* Retries after a failed NOTIFY: the first after 5 s, doubling up to 5 min,
 * at most 8 retries (~15 min in all); a later change or the next refresh
 * starts over. */
#define MWI_RETRY_FIRST_MS 5000u
#define MWI_RETRY_MAX_MS 300000u
#define MWI_RETRY_COUNT 8u
/* How long one NOTIFY may go unanswered before it counts as a timeout. */
#define MWI_ATTEMPT_TIMEOUT_MS 8000u
/* NOTIFYs (or gateway lookups) in flight at once; the rest wait in order. */
#define MWI_MAX_INFLIGHT 32u

struct mwi_config {
	uv_loop_t *loop;
	struct sipl *sip;		/* the service's agents, per family */
	struct outconn *outconn;	/* the outbound connection policy */
	struct vmwriter *vm;		/* counts are read on its thread */
	/* The current routing snapshot (gateways, hunt groups, mailboxes). */
	struct rtab *(*table_h)(void *arg);
	void *table_arg;
	/* directory.db, opened on the writer's thread for the refresh's
	 * mailbox list. */
	const char *directory_path;
	unsigned refresh_s;		/* 0 = MWI_REFRESH_DEFAULT_S */
};

int mwi_alloc(struct mwi **out, const struct mwi_config *cfg);
/* The service's ExternalHostFqdn ("" = none: From and Contact carry the
 * local address). */
void mwi_configure(struct mwi *m, const char *fqdn);
/* call_env.mailbox_changed_h: arg is the struct mwi. */
void mwi_mailbox_changed(void *arg, const char *dialplan, const char *mailbox);
/* Starts a refresh of every mailbox now (the timer does it every interval). */
void mwi_refresh_all(struct mwi *m);
/* A SIP agent is about to be destroyed: NOTIFYs in flight on it are dropped
 * and retried later (on the agent of the moment). */
void mwi_agent_gone(struct mwi *m, nta_agent_t *agent);
/* NOTIFYs that got a final answer since start, for tests and status. */
unsigned long long mwi_sent(const struct mwi *m);
void mwi_free(struct mwi *m);

/* ---- pure helpers (unit-tested) ----------------------------------------- */

/* The families (OUTCONN_V4/_V6 bits) usable toward a gateway of
 * IPAddressFamily af by a service listening on v4 and/or v6. */
unsigned mwi_families(enum dir_af af, bool have_v4, bool have_v6);

/* What a NOTIFY's final status means. */
enum mwi_outcome {
	MWI_DELIVERED,	/* 2xx */
	MWI_RETRY,	/* 408, 5xx, no answer, transport error: try again later */
	MWI_REFUSED,	/* any other final answer: not retried */
};
enum mwi_outcome mwi_outcome_of(int status);
/* Delay before retry n (1 = the first retry) in ms; 0 when no retry n. */
unsigned mwi_retry_delay_ms(unsigned n);
/* "sip:1001@gw.example.com", "sip:1001@[2001:db8::1]". 0 or ENOSPC. */
int mwi_account_uri(char *buf, size_t len, const char *ext, const char *host);
/* The application/simple-message-summary body (RFC 3842 §5):
 * "Messages-Waiting: yes|no", "Message-Account: <account>",
 * "Voice-Message: new/old (urgent-new/urgent-old)", CRLF after each line.
 * 0 or ENOSPC. */
int mwi_body(char *buf, size_t len, const char *account,
	     const struct vm_counts *c);
/* Indexes (into rtab_gateway) of the gateways a dial plan's NOTIFYs go
 * through: in a hunt group of the dial plan, Status Enabled,
 * MessageWaitingIndicatorAllowed; each once. Returns how many (at most
 * max are written). */
size_t mwi_gateways(const struct rtab *t, const char *dialplan, size_t *idx,
		    size_t max);

/* One mailbox's counts, from mwi_collect. */
struct mwi_mailbox {
	char dialplan[DIR_NAME_MAX + 1];
	char extension[21];
	struct vm_counts counts;
};
/* Every enabled mailbox of the directory at dir_path with its counts from
 * vs (runs on the writer's thread: it opens its own directory connection).
 * *out is malloc'ed (free()). 0 or an errno. */
int mwi_collect(const char *dir_path, struct vmstore *vs,
		struct mwi_mailbox **out, size_t *n);

/* --mwi-refresh SECONDS (or --mwi-refresh=SECONDS): taken out of argv (which
 * daemon_parse_args then parses) into *refresh_s. 0, or EINVAL after
 * printing what was wrong. */
int mwi_take_args(int *argc, char **argv, unsigned *refresh_s);
/* The option's line for --help. */
void mwi_usage(FILE *f);

#endif
