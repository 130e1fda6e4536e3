/* playonphone.c — request checks, timing and result words of Play on
 * Phone; see playonphone.h. */
#include "common/playonphone.h"
#include "common/directory.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
	}
	return true;
}

/* See the header. */
bool pop_number_ok(const char *s, const char **why)
{
	const char *w = NULL;
	size_t n;

	if (!s || !*s) {
		w = "no number given";
		goto out;
	}
	if (*s == '+')
		s++;
	n = strlen(s);
	if (n == 0)
		w = "a number needs digits after the +";
	else if (!all_digits(s, n))
		w = "only digits 0-9 are allowed, with an optional leading +";
	else if (n > POP_NUMBER_MAX)
		w = "longer than 32 digits";
out:
	if (why)
		*why = w;
	return w == NULL;
}

/* See the header. */
bool pop_mailbox_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n >= 1 && n <= POP_MAILBOX_MAX && all_digits(s, n);
}

/* See the header. */
bool pop_dialplan_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n > DIR_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f)
			return false;
	}
	return true;
}

/* See the header. */
int pop_request_check(const Openum__PlayOnPhoneRequest *r, bool need_id,
		      char *why, size_t len)
{
	const char *w = NULL;

	if (!r) {
		snprintf(why, len, "no request");
		return EINVAL;
	}
	if (need_id && r->request_id == 0) {
		snprintf(why, len, "request_id is not set");
		return EINVAL;
	}
	if (!pop_mailbox_ok(r->mailbox)) {
		snprintf(why, len, "mailbox must be an extension of 1-%d digits",
			 POP_MAILBOX_MAX);
		return EINVAL;
	}
	if (!pop_dialplan_ok(r->dial_plan)) {
		snprintf(why, len, "dial plan must be a name of at most %d "
			 "printable characters", DIR_NAME_MAX);
		return EINVAL;
	}
	if (r->message_id <= 0) {
		snprintf(why, len, "message id must be a positive number");
		return EINVAL;
	}
	if (!pop_number_ok(r->to, &w)) {
		snprintf(why, len, "number to call: %s", w);
		return EINVAL;
	}
	return 0;
}

/* See the header. */
unsigned pop_default_timeout_s(int64_t duration_ms, unsigned ring_s)
{
	unsigned long long s = POP_CONNECT_S + (unsigned long long)ring_s +
			       POP_MARGIN_S;

	if (duration_ms < 0)
		s += POP_UNKNOWN_LENGTH_S;
	else
		s += (unsigned long long)(duration_ms + 999) / 1000;
	return s > POP_TIMEOUT_MAX_S ? POP_TIMEOUT_MAX_S : (unsigned)s;
}

/* See the header. */
void pop_sanitize(char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c >= 0x7f)
			*s = '?';
	}
}

/* See the header. */
void pop_status_text(char *buf, size_t len, unsigned status,
		     const char *phrase, const char *gateway,
		     const char *address)
{
	char ph[65];

	snprintf(ph, sizeof ph, "%s", phrase ? phrase : "");
	pop_sanitize(ph);
	snprintf(buf, len, "%u%s%s from gateway %s at %s", status,
		 ph[0] ? " " : "", ph, gateway && *gateway ? gateway : "?",
		 address && *address ? address : "?");
}

/* See the header. */
void pop_connect_text(char *buf, size_t len, const char *gateway,
		      const char *address, int err, const char *why,
		      const char *who)
{
	size_t wl = who ? strlen(who) : 0;

	if (!gateway || !*gateway)
		gateway = "?";
	if (!address || !*address)
		address = "?";
	if (why && wl && strncmp(why, who, wl) == 0 && why[wl] == ':' &&
	    why[wl + 1] == ' ')
		why += wl + 2;
	if (!why || !*why)
		why = strerror(err);
	if (err == EHOSTUNREACH)
		snprintf(buf, len, "gateway %s (%s): every address is on the "
			 "bad-address list (each failed within the "
			 "BadAddressInterval)", gateway, address);
	else if (!strncmp(why, "none of ", 8))
		snprintf(buf, len, "gateway %s (%s): every address failed to "
			 "connect: %s", gateway, address, why);
	else
		snprintf(buf, len, "gateway %s (%s): %s", gateway, address, why);
}

/* See the header. */
void pop_result_text(char *buf, size_t len, const Openum__PlayOnPhoneResult *r,
		     const char *mailbox, int64_t message_id, const char *to)
{
	char inst[96] = "";

	if (!r) {
		snprintf(buf, len, "no result");
		return;
	}
	if (r->instance_id && *r->instance_id)
		snprintf(inst, sizeof inst, " (UM service %s)", r->instance_id);
	if (r->ok) {
		snprintf(buf, len, "message %lld of mailbox %s played to %s "
			 "through gateway %s at %s: %.1f s%s",
			 (long long)message_id, mailbox ? mailbox : "?",
			 to ? to : "?", r->gateway && *r->gateway ? r->gateway : "?",
			 r->address && *r->address ? r->address : "?",
			 (double)r->played_ms / 1000.0, inst);
		return;
	}
	snprintf(buf, len, "%s", r->reason && *r->reason ? r->reason
			   : "the call failed (no reason given)");
}

bool pop_try_next_gateway(unsigned status, bool no_answer)
{
	if (no_answer)
		return true;
	switch (status) {
	case 408:
	case 500:
	case 502:
	case 503:
	case 504:
		return true;
	default:
		return false;
	}
}
