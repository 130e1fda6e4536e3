/* test_classify.c — call classification (issue 3, rule 2) over a small
 * directory fixture: hunt group choice, diversion, subscriber access,
 * direct to voicemail and every 404 / 400 with its reason. */
#include "common/classify.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <stdbool.h>
#include <strings.h>

int test_classify_table(void);
int test_classify_errors(void);
int test_classify_history_info_long(void);

/* Dial plans of 4 and 5 digits; dp4's access number is also its pilot. */
static const struct dir_dialplan dialplans[] = {
	{.name = "dp4", .digits = 4, .access_numbers = "4000, +14255550100"},
	{.name = "DP5", .digits = 5, .access_numbers = "+1 (425) 555-5000"},
};

/* gw1: a wildcard hunt group (dp5) listed before an exact pilot (dp4);
 * gw2: one exact E.164 pilot; gw3: a wildcard into dp4; gw4: none;
 * gw5: a hunt group into a dial plan that does not exist. */
static const struct dir_huntgroup huntgroups[] = {
	{.name = "hg1-any", .gateway = "gw1", .dialplan = "dp5", .pilot = ""},
	{.name = "hg1-4000", .gateway = "gw1", .dialplan = "dp4", .pilot = "4000"},
	{.name = "hg2-5000", .gateway = "gw2", .dialplan = "dp5",
	 .pilot = "+14255555000"},
	{.name = "hg3-any", .gateway = "gw3", .dialplan = "dp4", .pilot = ""},
	{.name = "hg5", .gateway = "gw5", .dialplan = "gone", .pilot = ""},
};

/* Enabled mailboxes; 1003 exists but is disabled (the lookup says ENOENT);
 * dp4 9999 makes the lookup fail with EIO. */
static const struct {
	const char *dialplan, *ext;
} mailboxes[] = {
	{"dp4", "1001"}, {"dp4", "1002"}, {"dp5", "20001"}, {"dp5", "21001"},
};

static unsigned lookups;

static int mailbox_h(void *arg, const char *dialplan, const char *ext)
{
	(void)arg;
	lookups++;
	if (strcmp(dialplan, "dp4") == 0 && strcmp(ext, "9999") == 0)
		return EIO;
	for (size_t i = 0; i < sizeof mailboxes / sizeof mailboxes[0]; i++)
		if (strcasecmp(mailboxes[i].dialplan, dialplan) == 0 &&
		    strcmp(mailboxes[i].ext, ext) == 0)
			return 0;
	return ENOENT;
}

static const struct classify_ctx ctx = {
	.huntgroups = huntgroups,
	.n_huntgroups = sizeof huntgroups / sizeof huntgroups[0],
	.dialplans = dialplans,
	.n_dialplans = sizeof dialplans / sizeof dialplans[0],
	.mailbox_h = mailbox_h,
};

#define CA CLASSIFY_CALL_ANSWERING
#define SA CLASSIFY_SUBSCRIBER_ACCESS
#define RJ CLASSIFY_REJECT

static const struct tcase {
	const char *what;
	struct classify_request req;
	enum classify_kind kind;
	const char *mailbox, *huntgroup;
	int status;
	const char *reason;        /* exact, or NULL: not checked */
	const char *diverted_from; /* exact */
} cases[] = {
	{"diversion to an extension",
	 {"gw1", "4000", "4000", "<sip:1001@pbx.contoso.com>;reason=no-answer", NULL},
	 CA, "1001", "hg1-4000", 0, "", "1001"},
	{"diversion with an E.164 number in a 4-digit plan",
	 {"gw1", "4000", NULL,
	  "\"Bob, Jr.\" <sip:+14255551002@gw;user=phone>;reason=unconditional;counter=1", NULL},
	 CA, "1002", "hg1-4000", 0, "", "+14255551002"},
	{"diversion with a tel: URI in a 5-digit plan",
	 {"gw1", "4999", NULL, "<tel:+1-425-552-1001;phone-context=+1>", NULL},
	 CA, "21001", "hg1-any", 0, "", "+14255521001"},
	{"topmost diversion wins",
	 {"gw1", "4000", NULL,
	  "<sip:1002@pbx>;reason=no-answer, <sip:1001@pbx>;reason=unconditional", NULL},
	 CA, "1002", "hg1-4000", 0, "", "1002"},
	{"diversion wins over history-info",
	 {"gw1", "4000", NULL, "<sip:1001@pbx>",
	  "<sip:1002@pbx>;index=1, <sip:4000@um>;index=1.1"},
	 CA, "1001", "hg1-4000", 0, "", "1001"},
	{"history-info: the entry before the pilot",
	 {"gw1", "4000", NULL, NULL,
	  "<sip:5551234@pbx>;index=1, "
	  "\"Bob\" <sip:1001@pbx?Reason=SIP%3Bcause%3D302%3Btext%3D%22Moved%22>;index=1.1, "
	  "<sip:4000@um.contoso.com;user=phone>;index=1.1.1"},
	 CA, "1001", "hg1-4000", 0, "", "1001"},
	{"history-info: latest retarget to the pilot, repeated pilot skipped",
	 {"gw1", "4000", NULL, NULL,
	  "<sip:1001@pbx>;index=1, <sip:4000@um>;index=1.1, <sip:1002@pbx>;index=1.1.1, "
	  "<sip:4000@um>;index=1.1.1.1, <sip:+4000@um>;index=1.1.1.1.1"},
	 CA, "1002", "hg1-4000", 0, "", "1002"},
	{"history-info without the pilot: next-to-last entry",
	 {"gw1", "4999", NULL, NULL,
	  "<sip:20001@pbx>;index=1, <sip:+14255554999@um>;index=1.1"},
	 CA, "20001", "hg1-any", 0, "", "20001"},
	{"history-info naming only the pilot is no diversion",
	 {"gw1", "4000", NULL, NULL, "<sip:4000@um>;index=1"},
	 SA, "", "hg1-4000", 0, "", ""},
	{"subscriber access number",
	 {"gw1", "4000", "4000", NULL, NULL},
	 SA, "", "hg1-4000", 0, "", ""},
	{"subscriber access, E.164 with and without '+' and separators",
	 {"gw2", "14255555000", NULL, NULL, NULL},
	 SA, "", "hg2-5000", 0, "", ""},
	{"direct to voicemail",
	 {"gw3", "1001", "1001", NULL, NULL},
	 CA, "1001", "hg3-any", 0, "", ""},
	{"direct to voicemail, 5 digits",
	 {"gw1", "20001", NULL, NULL, NULL},
	 CA, "20001", "hg1-any", 0, "", ""},
	{"unknown extension",
	 {"gw3", "1234", NULL, NULL, NULL},
	 RJ, "", "hg3-any", 404, "No mailbox 1234 in dial plan dp4", ""},
	{"disabled mailbox",
	 {"gw3", "1003", NULL, NULL, NULL},
	 RJ, "", "hg3-any", 404, "No mailbox 1003 in dial plan dp4", ""},
	{"extension of the wrong length",
	 {"gw1", "1001", NULL, NULL, NULL},
	 RJ, "", "hg1-any", 404,
	 "1001 is no access number or 5-digit extension in dial plan DP5", ""},
	{"diversion naming an unknown number",
	 {"gw1", "4000", NULL, "<sip:+14255551999@pbx>;reason=no-answer", NULL},
	 RJ, "", "hg1-4000", 404,
	 "No mailbox 1999 in dial plan dp4 (diverted from +14255551999)",
	 "+14255551999"},
	{"diversion naming a too short number",
	 {"gw1", "4999", NULL, "<sip:1001@pbx>", NULL},
	 RJ, "", "hg1-any", 404,
	 "No mailbox 1001 in dial plan DP5 (diverted from 1001)", "1001"},
	{"diversion naming no user",
	 {"gw1", "4000", NULL, "<sip:pbx.contoso.com>;reason=unknown", NULL},
	 RJ, "", "hg1-4000", 404,
	 "No mailbox in dial plan dp4 for Diversion target sip:pbx.contoso.com",
	 "sip:pbx.contoso.com"},
	{"diversion present: no subscriber access",
	 {"gw1", "4000", NULL, "<sip:1999@pbx>", NULL},
	 RJ, "", "hg1-4000", 404,
	 "No mailbox 1999 in dial plan dp4 (diverted from 1999)", "1999"},
	{"unparsable diversion",
	 {"gw1", "4000", NULL, "<sip:1001@pbx", NULL},
	 RJ, "", "hg1-4000", 400, "Unparsable Diversion header", ""},
	{"unparsable history-info",
	 {"gw1", "4000", NULL, NULL, "\"open <sip:1001@pbx>"},
	 RJ, "", "hg1-4000", 400, "Unparsable History-Info header", ""},
	{"no hunt group on the gateway",
	 {"gw4", "4000", NULL, "<sip:1001@pbx>", NULL},
	 RJ, "", "", 404, "No hunt group on gateway gw4 for pilot 4000", ""},
	{"no hunt group for that pilot",
	 {"gw2", "4000", NULL, NULL, NULL},
	 RJ, "", "", 404, "No hunt group on gateway gw2 for pilot 4000", ""},
	{"no hunt group, no user",
	 {"gw2", NULL, NULL, NULL, NULL},
	 RJ, "", "", 404, "No hunt group on gateway gw2 for pilot (none)", ""},
	{"exact pilot beats the wildcard listed first",
	 {"gw1", "4000", NULL, NULL, NULL},
	 SA, "", "hg1-4000", 0, "", ""},
	{"gateway names are case-insensitive",
	 {"GW1", "+4000", NULL, NULL, NULL},
	 SA, "", "hg1-4000", 0, "", ""},
	{"To user when the Request-URI user is empty",
	 {"gw1", "", "4000", NULL, NULL},
	 SA, "", "hg1-4000", 0, "", ""},
	{"To user when the Request-URI user is NULL",
	 {"gw2", NULL, "+1-425-555-5000", NULL, NULL},
	 SA, "", "hg2-5000", 0, "", ""},
	{"To user picks the hunt group when the Request-URI user is no pilot",
	 {"gw2", "um", "+14255555000", NULL, NULL},
	 RJ, "", "hg2-5000", 404,
	 "um is no access number or 5-digit extension in dial plan DP5", ""},
	{"history-info: the pilot found by the To user",
	 {"gw1", "", "4000", NULL,
	  "<sip:1002@pbx>;index=1, <sip:4000@um>;index=1.1"},
	 CA, "1002", "hg1-4000", 0, "", "1002"},
	{"hunt group into a missing dial plan",
	 {"gw5", "4000", NULL, NULL, NULL},
	 RJ, "", "hg5", 404, "No dial plan gone (of hunt group hg5)", ""},
	{"no user at all, wildcard hunt group",
	 {"gw3", "", NULL, NULL, NULL},
	 RJ, "", "hg3-any", 404, "No Request-URI user to route in dial plan dp4", ""},
	{"control characters never reach the reason",
	 {"gw3", "12\r\n34", NULL, NULL, NULL},
	 RJ, "", "hg3-any", 404,
	 "12??34 is no access number or 4-digit extension in dial plan dp4", ""},
};

int test_classify_table(void)
{
	int failed = 0;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct tcase *c = &cases[i];
		struct classify_result r;
		int err = classify_call(&ctx, &c->req, &r);
		bool ok = err == 0 && r.kind == c->kind &&
			  strcmp(r.mailbox, c->mailbox) == 0 &&
			  strcmp(r.huntgroup, c->huntgroup) == 0 &&
			  r.status == c->status &&
			  strcmp(r.diverted_from, c->diverted_from) == 0 &&
			  (!c->reason || strcmp(r.reason, c->reason) == 0);

		if (!ok) {
			fprintf(stderr, "  case \"%s\": err %d kind %s mailbox \"%s\" "
				"huntgroup \"%s\" dialplan \"%s\" status %d "
				"reason \"%s\" diverted_from \"%s\"\n",
				c->what, err, classify_kind_name(r.kind),
				r.mailbox, r.huntgroup, r.dialplan, r.status,
				r.reason, r.diverted_from);
			failed = 1;
		}
	}
	return failed;
}

int test_classify_errors(void)
{
	struct classify_request req = {"gw3", "9999", NULL, NULL, NULL};
	struct classify_result r;
	struct classify_ctx none = ctx;

	/* a failing mailbox lookup is the caller's 500, not a 404 */
	UT_ASSERT_INT(classify_call(&ctx, &req, &r), EIO);
	req.ruri_user = "4000";
	req.diversion = "<sip:9999@pbx>";
	UT_ASSERT_INT(classify_call(&ctx, &req, &r), EIO);

	UT_ASSERT_INT(classify_call(NULL, &req, &r), EINVAL);
	UT_ASSERT_INT(classify_call(&ctx, NULL, &r), EINVAL);
	UT_ASSERT_INT(classify_call(&ctx, &req, NULL), EINVAL);
	req.gateway = NULL;
	UT_ASSERT_INT(classify_call(&ctx, &req, &r), EINVAL);

	/* no lookup: no mailbox; the lookup is not asked about numbers that
	 * cannot be extensions */
	none.mailbox_h = NULL;
	req = (struct classify_request){"gw3", "1001", NULL, NULL, NULL};
	UT_ASSERT_INT(classify_call(&none, &req, &r), 0);
	UT_ASSERT_INT(r.kind, CLASSIFY_REJECT);
	UT_ASSERT_INT(r.status, 404);
	lookups = 0;
	req.ruri_user = "john.doe";
	UT_ASSERT_INT(classify_call(&ctx, &req, &r), 0);
	UT_ASSERT_INT(r.status, 404);
	UT_ASSERT_INT(lookups, 0);

	UT_ASSERT_STR(classify_kind_name(CLASSIFY_CALL_ANSWERING), "call-answering");
	UT_ASSERT_STR(classify_kind_name(CLASSIFY_SUBSCRIBER_ACCESS),
		      "subscriber-access");
	UT_ASSERT_STR(classify_kind_name(CLASSIFY_REJECT), "reject");
	return 0;
}

int test_classify_history_info_long(void)
{
	char hi[CLASSIFY_HI_MAX * 40];
	struct classify_request req = {"gw1", "4000", NULL, NULL, hi};
	struct classify_result r;
	size_t len = 0;

	/* CLASSIFY_HI_MAX entries: fine */
	for (int i = 0; i < CLASSIFY_HI_MAX - 1; i++)
		len += (size_t)snprintf(hi + len, sizeof hi - len,
					"<sip:%d@pbx>;index=1, ", 1001 + i % 2);
	snprintf(hi + len, sizeof hi - len, "<sip:4000@um>");
	UT_ASSERT_INT(classify_call(&ctx, &req, &r), 0);
	UT_ASSERT_INT(r.kind, CLASSIFY_CALL_ANSWERING);
	UT_ASSERT_STR(r.mailbox, (CLASSIFY_HI_MAX - 2) % 2 ? "1002" : "1001");

	/* one more: 400 */
	snprintf(hi + len, sizeof hi - len, "<sip:1001@pbx>, <sip:4000@um>");
	UT_ASSERT_INT(classify_call(&ctx, &req, &r), 0);
	UT_ASSERT_INT(r.kind, CLASSIFY_REJECT);
	UT_ASSERT_INT(r.status, 400);
	UT_ASSERT(strstr(r.reason, "History-Info has 33 entries") != NULL);
	return 0;
}
