/* playonphone.h — the pure parts of Play on Phone (issue 6, point 5) that
 * umctl, the router and umservice share: what a request may carry (every
 * field checked, wherever it came from), the timing budget, and the words
 * of a result. No I/O; unit-tested.
 *
 *   umctl ── PlayOnPhoneRequest ─▶ router ── (request_id) ─▶ umservice
 *   umctl ◀── PlayOnPhoneResult ── router ◀──────────────── umservice
 */
#ifndef OPENUM_PLAYONPHONE_H
#define OPENUM_PLAYONPHONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/openum.pb-c.h"

/* A number to call: an optional leading '+', then 1-32 digits. */
#define POP_NUMBER_MAX 32
/* A mailbox extension: 1-20 digits (as the directory's). */
#define POP_MAILBOX_MAX 20
/* How long the phone may ring before the call is cancelled (CANCEL). */
#define POP_RING_TIMEOUT_S 30u
#define POP_RING_TIMEOUT_MAX_S 300u
/* Longest connection round toward a gateway (outconn's round timeout). */
#define POP_CONNECT_S 10u
/* What umctl adds to ring time and message length for its own wait. */
#define POP_MARGIN_S 15u
/* umctl's wait when the message's length is not known: a message can be
 * at most MaxRecordingDuration long (20 min by default). */
#define POP_UNKNOWN_LENGTH_S 1200u
/* umctl --timeout bounds. */
#define POP_TIMEOUT_MAX_S 7200u

/* Whether s is a number Play on Phone may call. *why (may be NULL) gets
 * what is wrong with it, for "--to: ..." and for logs. */
bool pop_number_ok(const char *s, const char **why);
/* Whether s is a mailbox extension (1-20 digits). */
bool pop_mailbox_ok(const char *s);
/* Whether s may be a dial plan name ("" or NULL = the mailbox's only one):
 * at most DIR_NAME_MAX printable ASCII characters. */
bool pop_dialplan_ok(const char *s);

/* Checks every field of a request as it arrives over IPC (umctl's at the
 * router, the router's at umservice). need_id: request_id must be set.
 * 0, or EINVAL with the reason in why. */
int pop_request_check(const Openum__PlayOnPhoneRequest *r, bool need_id,
		      char *why, size_t len);

/* umctl's default wait for a result (seconds): connecting, ringing, the
 * message (duration_ms < 0: unknown) and a margin. */
unsigned pop_default_timeout_s(int64_t duration_ms, unsigned ring_s);

/* "486 Busy Here from gateway gw1 at [::1]:5070": a final SIP status as
 * the result says it. The phrase comes from the network: control and
 * non-ASCII bytes become '?', and it is cut at 64 characters. */
void pop_status_text(char *buf, size_t len, unsigned status,
		     const char *phrase, const char *gateway,
		     const char *address);
/* "gateway gw1 (127.0.0.1): every address failed to connect: ...": why a
 * connection round failed (err and why as outconn gives them; a why that
 * starts with "who: " loses that prefix). EHOSTUNREACH: every address is
 * on the bad-address list; a why of outconn's "none of N addresses ...":
 * every address failed to connect; anything else (no address of an
 * allowed family, the DNS lookup) is the why. */
void pop_connect_text(char *buf, size_t len, const char *gateway,
		      const char *address, int err, const char *why,
		      const char *who);
/* The one line umctl prints for a result: on success what was played,
 * where, for how long; otherwise the reason. */
void pop_result_text(char *buf, size_t len, const Openum__PlayOnPhoneResult *r,
		     const char *mailbox, int64_t message_id, const char *to);
/* Replaces control and non-ASCII bytes of s in place with '?'. */
void pop_sanitize(char *s);
/* Whether an INVITE that failed with status (no_answer: nothing came back
 * from the gateway, nta's own answer or no response in time) may be tried
 * through the dial plan's next gateway: the gateway failed (no answer,
 * 408, 500, 502, 503, 504), not the callee (486 Busy, 603, 404...). */
bool pop_try_next_gateway(unsigned status, bool no_answer);

#endif
