/* classify.c — which application answers an INVITE (issue 3, rule 2): the
 * dial plan from the gateway's hunt group, then diversion information, the
 * subscriber access number or a direct extension. Pure: the directory comes
 * in as records and a mailbox lookup callback. */
#include "common/classify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/sipuri.h"

/* Longest number / name compared; longer ones never match. */
#define NUM_MAX 128

static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t len = strnlen(src, cap - 1);

	memcpy(dst, src, len);
	dst[len] = '\0';
}

static void reject(struct classify_result *out, int status, const char *fmt,
		   ...) __attribute__((format(printf, 3, 4)));

static void reject(struct classify_result *out, int status, const char *fmt,
		   ...)
{
	va_list ap;

	out->kind = CLASSIFY_REJECT;
	out->mailbox[0] = '\0';
	out->status = status;
	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof out->reason, fmt, ap);
	va_end(ap);
	/* The reason becomes a SIP reason phrase and a log line: no control
	 * characters from the request get through. */
	for (char *p = out->reason; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

static bool is_phone_char(char c)
{
	return (c >= '0' && c <= '9') || c == '*' || c == '#' || c == '-' ||
	       c == '.' || c == '(' || c == ')' || c == ' ';
}

/* The comparable form of a number or name: a telephone number (optional
 * '+', digits and visual separators) loses the '+' and the separators, so
 * that +1 (425) 555-0100, 14255550100 and tel-style 1-425-555-0100 are one
 * number; anything else (a SIP name) is kept. false if it does not fit. */
static bool norm(char *dst, const char *src)
{
	const char *s = src;
	size_t o = 0;
	bool phone = true;

	if (*s == '+')
		s++;
	for (const char *t = s; *t; t++)
		if (!is_phone_char(*t))
			phone = false;
	if (!phone)
		s = src;
	for (; *s; s++) {
		if (phone && !(*s >= '0' && *s <= '9') && *s != '*' && *s != '#')
			continue;
		if (o + 1 >= NUM_MAX)
			return false;
		dst[o++] = *s;
	}
	dst[o] = '\0';
	return true;
}

/* Numbers / names equal as norm() sees them (names case-insensitively);
 * empty never equals anything. */
static bool num_eq(const char *a, const char *b)
{
	char na[NUM_MAX], nb[NUM_MAX];

	if (!a || !b || !norm(na, a) || !norm(nb, b) || !na[0])
		return false;
	return strcasecmp(na, nb) == 0;
}

/* Whether s is one of the comma-separated numbers in list. */
static bool in_list(const char *list, const char *s)
{
	const char *p = list;

	while (*p) {
		char item[NUM_MAX];
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		while (len && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len && len < sizeof item) {
			memcpy(item, p, len);
			item[len] = '\0';
			if (num_eq(item, s))
				return true;
		}
		if (!end)
			break;
		p = end + 1;
	}
	return false;
}

/* The hunt group of the gateway for this call: an exact PilotIdentifier
 * match on the Request-URI user, else on the To user, else a hunt group of
 * the gateway with an empty PilotIdentifier (Exchange: matches any pilot).
 * Gateway names compare case-insensitively, as in the directory. */
static const struct dir_huntgroup *
find_huntgroup(const struct classify_ctx *ctx, const char *gateway,
	       const char *ruri_user, const char *to_user)
{
	const char *keys[2] = {ruri_user, to_user};
	size_t i, k;

	for (k = 0; k < 2; k++) {
		if (!keys[k] || !keys[k][0])
			continue;
		for (i = 0; i < ctx->n_huntgroups; i++) {
			const struct dir_huntgroup *hg = &ctx->huntgroups[i];

			if (strcasecmp(hg->gateway, gateway) == 0 &&
			    hg->pilot[0] && num_eq(hg->pilot, keys[k]))
				return hg;
		}
	}
	for (i = 0; i < ctx->n_huntgroups; i++) {
		const struct dir_huntgroup *hg = &ctx->huntgroups[i];

		if (strcasecmp(hg->gateway, gateway) == 0 && !hg->pilot[0])
			return hg;
	}
	return NULL;
}

static const struct dir_dialplan *find_dialplan(const struct classify_ctx *ctx,
						const char *name)
{
	for (size_t i = 0; i < ctx->n_dialplans; i++)
		if (strcasecmp(ctx->dialplans[i].name, name) == 0)
			return &ctx->dialplans[i];
	return NULL;
}

/* Whether ext has the shape of an extension of dp: digits only, exactly
 * NumberOfDigitsInExtension of them. */
static bool is_extension(const struct dir_dialplan *dp, const char *ext)
{
	size_t len = strlen(ext);

	if (len == 0 || len >= sizeof ((struct classify_result *)0)->mailbox)
		return false;
	if (dp->digits && len != dp->digits)
		return false;
	for (; *ext; ext++)
		if (*ext < '0' || *ext > '9')
			return false;
	return true;
}

/* 0 when ext is an enabled mailbox of dp, ENOENT when not, else the
 * lookup's error. */
static int mailbox_find(const struct classify_ctx *ctx,
			const struct dir_dialplan *dp, const char *ext)
{
	int err;

	if (!ctx->mailbox_h || !is_extension(dp, ext))
		return ENOENT;
	err = ctx->mailbox_h(ctx->mailbox_arg, dp->name, ext);
	return err;
}

/* Rule 2a: diversion information names the mailbox. The number is cut to
 * its last NumberOfDigitsInExtension digits (Exchange: a diverted E.164
 * +14255551001 in a 4-digit dial plan is extension 1001). */
static int divert(const struct classify_ctx *ctx, const struct dir_dialplan *dp,
		  const struct sipuri_entry *e, const char *hdr,
		  struct classify_result *out)
{
	char ext[sizeof out->mailbox];
	int err;

	copy_str(out->diverted_from, sizeof out->diverted_from,
		 e->user[0] ? e->user : e->uri);
	sipuri_digits_tail(ext, sizeof ext, e->user, dp->digits);
	err = mailbox_find(ctx, dp, ext);
	if (err == 0) {
		out->kind = CLASSIFY_CALL_ANSWERING;
		copy_str(out->mailbox, sizeof out->mailbox, ext);
		return 0;
	}
	if (err != ENOENT)
		return err;
	if (ext[0])
		reject(out, 404, "No mailbox %s in dial plan %s (diverted from %s)",
		       ext, dp->name, out->diverted_from);
	else
		reject(out, 404, "No mailbox in dial plan %s for %s target %s",
		       dp->name, hdr, out->diverted_from);
	return 0;
}

/* RFC 7044: the entry a call was retargeted from to reach us is the one
 * before the (last) entry naming the pilot, skipping repeated pilot
 * entries; when no entry names the pilot, the next-to-last one (the last is
 * the UM pilot under another name). Entries are taken in header order,
 * which RFC 7044 §9.1 requires to match the index order. Returns the index
 * or -1 when History-Info names no earlier target (a call straight to the
 * pilot: no diversion information). */
static long hi_target(const struct sipuri_entry *e, size_t n, const char *pilot,
		      const char *hg_pilot)
{
	long i, j;

	for (i = (long)n - 1; i >= 0; i--)
		if (num_eq(e[i].user, pilot) || num_eq(e[i].user, hg_pilot))
			break;
	if (i < 0)
		return n >= 2 ? (long)n - 2 : -1;
	for (j = i - 1; j >= 0; j--)
		if (!num_eq(e[j].user, pilot) && !num_eq(e[j].user, hg_pilot))
			return j;
	return -1;
}

/* Classifies one INVITE, in the order of issue 3, rule 2:
 *  0. Dial plan: the hunt group of req->gateway whose PilotIdentifier is the
 *     Request-URI user, else the To user (exact, '+' and separators
 *     ignored); else the gateway's hunt group with an empty PilotIdentifier.
 *     None → 404 "No hunt group on gateway G for pilot P".
 *  a. Diversion information: the topmost Diversion entry (RFC 5806 §4: the
 *     most recent diversion is on top), else the History-Info entry before
 *     the pilot (hi_target). Its number, cut to the dial plan's digits,
 *     naming an enabled mailbox → call answering for it; naming none → 404
 *     "No mailbox X in dial plan Y (diverted from Z)"; an unparsable header
 *     → 400. Diversion wins over History-Info when both are present.
 *  b. No diversion, Request-URI user (To user when it has none) one of the
 *     dial plan's AccessTelephoneNumbers ('+' and separators ignored) →
 *     subscriber access.
 *  c. No diversion, that user an enabled mailbox extension of the dial plan
 *     (digits only, exactly NumberOfDigitsInExtension) → call answering,
 *     "direct to voicemail": for PBXs that send no diversion and for
 *     softphones in tests.
 *  d. Otherwise 404 with a reason naming what was not found. */
int classify_call(const struct classify_ctx *ctx,
		  const struct classify_request *req,
		  struct classify_result *out)
{
	struct sipuri_entry hi[CLASSIFY_HI_MAX];
	const struct dir_huntgroup *hg;
	const struct dir_dialplan *dp;
	const char *key;
	size_t n;
	long t;
	int err = 0;

	if (!ctx || !req || !out || !req->gateway)
		return EINVAL;
	memset(out, 0, sizeof *out);
	key = req->ruri_user && req->ruri_user[0] ? req->ruri_user :
	      req->to_user ? req->to_user : "";

	/* 0: hunt group and dial plan */
	hg = find_huntgroup(ctx, req->gateway, req->ruri_user, req->to_user);
	if (!hg) {
		reject(out, 404, "No hunt group on gateway %s for pilot %s",
		       req->gateway, key[0] ? key : "(none)");
		goto out;
	}
	copy_str(out->huntgroup, sizeof out->huntgroup, hg->name);
	copy_str(out->dialplan, sizeof out->dialplan, hg->dialplan);
	dp = find_dialplan(ctx, hg->dialplan);
	if (!dp) {
		reject(out, 404, "No dial plan %s (of hunt group %s)",
		       hg->dialplan, hg->name);
		goto out;
	}

	/* a: diversion information */
	if (req->diversion && req->diversion[0]) {
		if (sipuri_name_addr_list(req->diversion, hi, 1, &n) != 0) {
			reject(out, 400, "Unparsable Diversion header");
			goto out;
		}
		err = divert(ctx, dp, &hi[0], "Diversion", out);
		goto out;
	}
	if (req->history_info && req->history_info[0]) {
		if (sipuri_name_addr_list(req->history_info, hi,
					  CLASSIFY_HI_MAX, &n) != 0) {
			reject(out, 400, "Unparsable History-Info header");
			goto out;
		}
		if (n > CLASSIFY_HI_MAX) {
			reject(out, 400, "History-Info has %zu entries (at most %d)",
			       n, CLASSIFY_HI_MAX);
			goto out;
		}
		t = hi_target(hi, n, key, hg->pilot);
		if (t >= 0) {
			err = divert(ctx, dp, &hi[t], "History-Info", out);
			goto out;
		}
	}

	/* b: subscriber access */
	if (key[0] && in_list(dp->access_numbers, key)) {
		out->kind = CLASSIFY_SUBSCRIBER_ACCESS;
		goto out;
	}

	/* c: direct to voicemail */
	err = mailbox_find(ctx, dp, key);
	if (err == 0) {
		out->kind = CLASSIFY_CALL_ANSWERING;
		copy_str(out->mailbox, sizeof out->mailbox, key);
		goto out;
	}
	if (err != ENOENT)
		goto out;
	err = 0;

	/* d: nothing matched */
	if (!key[0])
		reject(out, 404, "No Request-URI user to route in dial plan %s",
		       dp->name);
	else if (is_extension(dp, key))
		reject(out, 404, "No mailbox %s in dial plan %s", key, dp->name);
	else
		reject(out, 404, "%s is no access number or %u-digit extension "
		       "in dial plan %s", key, dp->digits, dp->name);
out:
	return err;
}

/* A short name of a kind for logs and IPC. */
const char *classify_kind_name(enum classify_kind kind)
{
	switch (kind) {
	case CLASSIFY_CALL_ANSWERING:
		return "call-answering";
	case CLASSIFY_SUBSCRIBER_ACCESS:
		return "subscriber-access";
	case CLASSIFY_REJECT:
		return "reject";
	}
	return "unknown";
}
