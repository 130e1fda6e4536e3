/* test_mwi.c — the message waiting indicator's pure parts: the
 * simple-message-summary body, the account URI, what a status means, the
 * retry schedule, the gateways a dial plan's NOTIFYs go through, the
 * refresh's mailbox list with counts, and the --mwi-refresh option. */
#include "common/directory.h"
#include "common/rtab.h"
#include "common/vmstore.h"
#include "tests/unit/unit.h"
#include "common/outconn.h"
#include "umservice/mwi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int test_mwi_body(void);
int test_mwi_account_uri(void);
int test_mwi_outcome(void);
int test_mwi_retry_schedule(void);
int test_mwi_gateways(void);
int test_mwi_collect(void);
int test_mwi_take_args(void);
int test_mwi_families(void);

int test_mwi_body(void)
{
	char buf[256];
	struct vm_counts none = {0, 0, 0, 0}, one = {1, 0, 0, 0},
			 mixed = {2, 3, 1, 2}, old_only = {0, 4, 0, 1};

	UT_ASSERT_INT(mwi_body(buf, sizeof buf, "sip:1001@127.0.0.1", &none), 0);
	UT_ASSERT_STR(buf, "Messages-Waiting: no\r\n"
			   "Message-Account: sip:1001@127.0.0.1\r\n"
			   "Voice-Message: 0/0 (0/0)\r\n");
	UT_ASSERT_INT(mwi_body(buf, sizeof buf, "sip:1001@127.0.0.1", &one), 0);
	UT_ASSERT_STR(buf, "Messages-Waiting: yes\r\n"
			   "Message-Account: sip:1001@127.0.0.1\r\n"
			   "Voice-Message: 1/0 (0/0)\r\n");
	UT_ASSERT_INT(mwi_body(buf, sizeof buf, "sip:2002@gw.example.test", &mixed), 0);
	UT_ASSERT_STR(buf, "Messages-Waiting: yes\r\n"
			   "Message-Account: sip:2002@gw.example.test\r\n"
			   "Voice-Message: 2/3 (1/2)\r\n");
	/* Only saved messages: nothing is waiting (RFC 3842 §5.2). */
	UT_ASSERT_INT(mwi_body(buf, sizeof buf, "sip:1001@[::1]", &old_only), 0);
	UT_ASSERT_STR(buf, "Messages-Waiting: no\r\n"
			   "Message-Account: sip:1001@[::1]\r\n"
			   "Voice-Message: 0/4 (0/1)\r\n");
	/* Too small: an error, never a cut body. */
	UT_ASSERT_INT(mwi_body(buf, 40, "sip:1001@127.0.0.1", &one), ENOSPC);
	return 0;
}

int test_mwi_account_uri(void)
{
	char buf[64];

	UT_ASSERT_INT(mwi_account_uri(buf, sizeof buf, "1001", "127.0.0.1"), 0);
	UT_ASSERT_STR(buf, "sip:1001@127.0.0.1");
	UT_ASSERT_INT(mwi_account_uri(buf, sizeof buf, "1001", "::1"), 0);
	UT_ASSERT_STR(buf, "sip:1001@[::1]");
	UT_ASSERT_INT(mwi_account_uri(buf, sizeof buf, "1001", "[2001:db8::1]"), 0);
	UT_ASSERT_STR(buf, "sip:1001@[2001:db8::1]");
	UT_ASSERT_INT(mwi_account_uri(buf, sizeof buf, "42", "gw.example.test"), 0);
	UT_ASSERT_STR(buf, "sip:42@gw.example.test");
	UT_ASSERT_INT(mwi_account_uri(buf, 10, "1001", "gw.example.test"), ENOSPC);
	return 0;
}

int test_mwi_outcome(void)
{
	UT_ASSERT_INT(mwi_outcome_of(200), MWI_DELIVERED);
	UT_ASSERT_INT(mwi_outcome_of(202), MWI_DELIVERED);
	/* The gateway did not answer, is overloaded, or could not be reached
	 * (sofia reports a transport error as 503): try again later. */
	UT_ASSERT_INT(mwi_outcome_of(0), MWI_RETRY);
	UT_ASSERT_INT(mwi_outcome_of(408), MWI_RETRY);
	UT_ASSERT_INT(mwi_outcome_of(500), MWI_RETRY);
	UT_ASSERT_INT(mwi_outcome_of(503), MWI_RETRY);
	UT_ASSERT_INT(mwi_outcome_of(504), MWI_RETRY);
	/* It answered and said no: sending the same again will not help. */
	UT_ASSERT_INT(mwi_outcome_of(403), MWI_REFUSED);
	UT_ASSERT_INT(mwi_outcome_of(404), MWI_REFUSED);
	UT_ASSERT_INT(mwi_outcome_of(405), MWI_REFUSED);
	UT_ASSERT_INT(mwi_outcome_of(480), MWI_REFUSED);
	UT_ASSERT_INT(mwi_outcome_of(481), MWI_REFUSED);
	UT_ASSERT_INT(mwi_outcome_of(489), MWI_REFUSED);
	UT_ASSERT_INT(mwi_outcome_of(603), MWI_REFUSED);
	return 0;
}

int test_mwi_retry_schedule(void)
{
	static const unsigned want[] = {5000, 10000, 20000, 40000, 80000,
					160000, 300000, 300000};
	unsigned long long total = 0;

	UT_ASSERT_INT(sizeof want / sizeof want[0], MWI_RETRY_COUNT);
	UT_ASSERT_INT(mwi_retry_delay_ms(0), 0);
	for (unsigned n = 1; n <= MWI_RETRY_COUNT; n++) {
		UT_ASSERT_INT(mwi_retry_delay_ms(n), want[n - 1]);
		total += mwi_retry_delay_ms(n);
	}
	/* Bounded: no retry 9, and the whole schedule ends within 20 min. */
	UT_ASSERT_INT(mwi_retry_delay_ms(MWI_RETRY_COUNT + 1), 0);
	UT_ASSERT_INT(mwi_retry_delay_ms(1000), 0);
	UT_ASSERT(total <= 20ull * 60 * 1000);
	return 0;
}

static char *last_cause;

static int obj_new(struct dir *d, enum dir_obj_type t,
		   const struct dir_param *p, size_t n)
{
	char *pin = NULL;
	int err;

	free(last_cause);
	last_cause = NULL;
	err = dir_obj_new(d, t, p, n, &pin, &last_cause);
	if (err)
		fprintf(stderr, "  dir_obj_new: %s\n", last_cause ? last_cause : "?");
	free(pin);
	return err;
}

#define NP(a) (sizeof(a) / sizeof((a)[0]))

/* The embedded default (gateways loopback and loopback6 in dial plan
 * "default", mailbox 1001) plus: a second dial plan "other" with mailbox
 * 2001, gateways gwA (MWI on), gwB (MWI off), gwC (Disabled), gwD (only in
 * "other"), gwE in both dial plans through two hunt groups. */
static int make_directory(struct dir **out, const char *path)
{
	struct dir *d = NULL;
	char *pin = NULL, *cause = NULL;
	int err;
	static const struct dir_param dp[] = {{"name", "other"},
					      {"number-of-digits-in-extension", "4"}};
	static const struct dir_param ga[] = {{"name", "gwA"}, {"address", "192.0.2.10"}};
	static const struct dir_param gb[] = {{"name", "gwB"}, {"address", "192.0.2.11"},
					      {"message-waiting-indicator-allowed", "false"}};
	static const struct dir_param gc[] = {{"name", "gwC"}, {"address", "192.0.2.12"},
					      {"status", "Disabled"}};
	static const struct dir_param gd[] = {{"name", "gwD"}, {"address", "192.0.2.13"}};
	static const struct dir_param ge[] = {{"name", "gwE"}, {"address", "gw.example.test"}};
	static const struct dir_param h1[] = {{"name", "hA"}, {"umipgateway", "gwA"},
					      {"umdialplan", "default"}};
	static const struct dir_param h2[] = {{"name", "hB"}, {"umipgateway", "gwB"},
					      {"umdialplan", "default"}};
	static const struct dir_param h3[] = {{"name", "hC"}, {"umipgateway", "gwC"},
					      {"umdialplan", "default"}};
	static const struct dir_param h4[] = {{"name", "hD"}, {"umipgateway", "gwD"},
					      {"umdialplan", "other"}};
	static const struct dir_param h5[] = {{"name", "hE1"}, {"umipgateway", "gwE"},
					      {"umdialplan", "default"}, {"pilot-identifier", "100"}};
	static const struct dir_param h6[] = {{"name", "hE2"}, {"umipgateway", "gwE"},
					      {"umdialplan", "default"}, {"pilot-identifier", "200"}};
	static const struct dir_param h7[] = {{"name", "hE3"}, {"umipgateway", "gwE"},
					      {"umdialplan", "other"}};
	static const struct dir_param mb[] = {{"extension", "2001"},
					      {"display-name", "Other Person"},
					      {"umdialplan", "other"}};

	err = dir_open(&d, path, DIR_OPEN_CREATE, &pin, &cause);
	free(pin);
	if (err) {
		fprintf(stderr, "  dir_open: %s\n", cause ? cause : "?");
		free(cause);
		return err;
	}
	if ((err = obj_new(d, DIR_OBJ_DIALPLAN, dp, NP(dp))) ||
	    (err = obj_new(d, DIR_OBJ_GATEWAY, ga, NP(ga))) ||
	    (err = obj_new(d, DIR_OBJ_GATEWAY, gb, NP(gb))) ||
	    (err = obj_new(d, DIR_OBJ_GATEWAY, gc, NP(gc))) ||
	    (err = obj_new(d, DIR_OBJ_GATEWAY, gd, NP(gd))) ||
	    (err = obj_new(d, DIR_OBJ_GATEWAY, ge, NP(ge))) ||
	    (err = obj_new(d, DIR_OBJ_HUNTGROUP, h1, NP(h1))) ||
	    (err = obj_new(d, DIR_OBJ_HUNTGROUP, h2, NP(h2))) ||
	    (err = obj_new(d, DIR_OBJ_HUNTGROUP, h3, NP(h3))) ||
	    (err = obj_new(d, DIR_OBJ_HUNTGROUP, h4, NP(h4))) ||
	    (err = obj_new(d, DIR_OBJ_HUNTGROUP, h5, NP(h5))) ||
	    (err = obj_new(d, DIR_OBJ_HUNTGROUP, h6, NP(h6))) ||
	    (err = obj_new(d, DIR_OBJ_HUNTGROUP, h7, NP(h7))) ||
	    (err = obj_new(d, DIR_OBJ_MAILBOX, mb, NP(mb)))) {
		dir_close(d);
		return err;
	}
	*out = d;
	return 0;
}

/* The names of the gateways mwi_gateways picks, sorted, comma-separated. */
static void picked(const struct rtab *t, const char *dialplan, char *buf,
		   size_t len)
{
	size_t idx[32], n = mwi_gateways(t, dialplan, idx, 32);
	const char *names[32];

	for (size_t i = 0; i < n; i++)
		names[i] = rtab_gateway(t, idx[i])->name;
	for (size_t i = 1; i < n; i++) {
		for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			const char *x = names[j];

			names[j] = names[j - 1];
			names[j - 1] = x;
		}
	}
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++)
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? "," : "",
			 names[i]);
}

int test_mwi_gateways(void)
{
	char path[300], got[256];
	struct dir *d = NULL;
	struct rtab *t = NULL;
	size_t idx[1];

	snprintf(path, sizeof path, "%s/directory.db", ut_tmpdir());
	UT_ASSERT_INT(make_directory(&d, path), 0);
	UT_ASSERT_INT(rtab_build(&t, d, NULL), 0);
	/* MWI off (gwB) and Disabled (gwC) are left out, gwD belongs to the
	 * other dial plan, gwE counts once although two hunt groups name it. */
	picked(t, "default", got, sizeof got);
	UT_ASSERT_STR(got, "gwA,gwE,loopback,loopback6");
	picked(t, "DEFAULT", got, sizeof got);	/* names compare without case */
	UT_ASSERT_STR(got, "gwA,gwE,loopback,loopback6");
	picked(t, "other", got, sizeof got);
	UT_ASSERT_STR(got, "gwD,gwE");
	picked(t, "nosuchplan", got, sizeof got);
	UT_ASSERT_STR(got, "");
	/* The count is the whole answer even when max is smaller. */
	UT_ASSERT_INT(mwi_gateways(t, "default", idx, 1), 4);
	UT_ASSERT_INT(mwi_gateways(NULL, "default", idx, 1), 0);
	rtab_free(t);
	dir_close(d);
	return 0;
}

static int add_message(struct vmstore *vs, const char *mailbox,
		       const char *dialplan, bool urgent, enum vm_state state)
{
	static int16_t pcm[8000];
	struct vm_meta meta = {.mailbox = mailbox, .dialplan = dialplan,
			       .caller_number = "4255550100", .urgent = urgent};
	int64_t id = 0, dur = 0;
	int err;

	for (size_t i = 0; i < sizeof pcm / sizeof pcm[0]; i++)
		pcm[i] = (int16_t)((i % 40) * 400 - 8000);
	if ((err = vmstore_begin(vs, &meta, &id)) ||
	    (err = vmstore_append(vs, id, 0, pcm, sizeof pcm / sizeof pcm[0])) ||
	    (err = vmstore_finish(vs, id, VMSTORE_KEEP_ALL, &dur)))
		return err;
	if (state != VM_STATE_NEW)
		err = vmstore_set_state(vs, id, state);
	return err;
}

int test_mwi_collect(void)
{
	char dpath[300], vpath[300];
	struct dir *d = NULL;
	struct vmstore *vs = NULL;
	struct mwi_mailbox *boxes = NULL;
	size_t n = 0;
	char *cause = NULL;
	bool seen1001 = false, seen2001 = false;

	snprintf(dpath, sizeof dpath, "%s/directory.db", ut_tmpdir());
	snprintf(vpath, sizeof vpath, "%s/voicemail.db", ut_tmpdir());
	UT_ASSERT_INT(make_directory(&d, dpath), 0);
	UT_ASSERT_INT(vmstore_open(&vs, vpath, &cause), 0);
	/* 1001: two new (one urgent), one saved urgent, one deleted. */
	UT_ASSERT_INT(add_message(vs, "1001", "default", false, VM_STATE_NEW), 0);
	UT_ASSERT_INT(add_message(vs, "1001", "default", true, VM_STATE_NEW), 0);
	UT_ASSERT_INT(add_message(vs, "1001", "default", true, VM_STATE_SAVED), 0);
	UT_ASSERT_INT(add_message(vs, "1001", "default", false, VM_STATE_DELETED), 0);
	/* A message for 1001 in another dial plan is not 1001@default's. */
	UT_ASSERT_INT(add_message(vs, "1001", "other", false, VM_STATE_NEW), 0);
	/* 2001@other has none. */
	UT_ASSERT_INT(mwi_collect(dpath, vs, &boxes, &n), 0);
	UT_ASSERT_INT(n, 2);
	for (size_t i = 0; i < n; i++) {
		const struct vm_counts *c = &boxes[i].counts;

		if (!strcmp(boxes[i].extension, "1001")) {
			UT_ASSERT_STR(boxes[i].dialplan, "default");
			UT_ASSERT_INT(c->new_msgs, 2);
			UT_ASSERT_INT(c->old_msgs, 1);
			UT_ASSERT_INT(c->urgent_new, 1);
			UT_ASSERT_INT(c->urgent_old, 1);
			seen1001 = true;
		} else if (!strcmp(boxes[i].extension, "2001")) {
			UT_ASSERT_STR(boxes[i].dialplan, "other");
			UT_ASSERT_INT(c->new_msgs + c->old_msgs, 0);
			seen2001 = true;
		}
	}
	UT_ASSERT(seen1001 && seen2001);
	free(boxes);
	/* A directory that is not there is an error, not an empty list. */
	snprintf(dpath, sizeof dpath, "%s/missing.db", ut_tmpdir());
	boxes = NULL;
	UT_ASSERT(mwi_collect(dpath, vs, &boxes, &n) != 0);
	UT_ASSERT(boxes == NULL);
	vmstore_close(vs);
	dir_close(d);
	free(last_cause);
	last_cause = NULL;
	return 0;
}

int test_mwi_take_args(void)
{
	char a0[] = "umservice", a1[] = "--state-dir", a2[] = "/tmp/x",
	     a3[] = "--mwi-refresh", a4[] = "60", a5[] = "--log-level",
	     a6[] = "debug", a7[] = "--mwi-refresh=30", b1[] = "--mwi-refresh",
	     b2[] = "0", c1[] = "--mwi-refresh=43201", d1[] = "--mwi-refresh",
	     e1[] = "--mwi-refresh=12x";
	char *argv[] = {a0, a1, a2, a3, a4, a5, a6, a7, NULL};
	int argc = 8;
	unsigned s = 0;

	UT_ASSERT_INT(mwi_take_args(&argc, argv, &s), 0);
	UT_ASSERT_INT(s, 30);		/* the last one wins */
	UT_ASSERT_INT(argc, 5);
	UT_ASSERT_STR(argv[1], "--state-dir");
	UT_ASSERT_STR(argv[2], "/tmp/x");
	UT_ASSERT_STR(argv[3], "--log-level");
	UT_ASSERT_STR(argv[4], "debug");
	UT_ASSERT(argv[5] == NULL);
	{
		char *v[] = {a0, NULL};
		int c = 1;

		s = 7;
		UT_ASSERT_INT(mwi_take_args(&c, v, &s), 0);
		UT_ASSERT_INT(s, 7);	/* untouched without the option */
		UT_ASSERT_INT(c, 1);
	}
	{
		char *v[] = {a0, b1, b2, NULL};
		int c = 3;

		UT_ASSERT_INT(mwi_take_args(&c, v, &s), EINVAL);
	}
	{
		char *v[] = {a0, c1, NULL};
		int c = 2;

		UT_ASSERT_INT(mwi_take_args(&c, v, &s), EINVAL);
	}
	{
		char *v[] = {a0, d1, NULL};
		int c = 2;

		UT_ASSERT_INT(mwi_take_args(&c, v, &s), EINVAL);
	}
	{
		char *v[] = {a0, e1, NULL};
		int c = 2;

		UT_ASSERT_INT(mwi_take_args(&c, v, &s), EINVAL);
	}
	return 0;
}

/* Which families a NOTIFY may use: the gateway's IPAddressFamily and the
 * service's listeners. */
int test_mwi_families(void)
{
	UT_ASSERT_INT(mwi_families(DIR_AF_ANY, true, true), OUTCONN_V4 | OUTCONN_V6);
	UT_ASSERT_INT(mwi_families(DIR_AF_IPV4ONLY, true, true), OUTCONN_V4);
	UT_ASSERT_INT(mwi_families(DIR_AF_IPV6ONLY, true, true), OUTCONN_V6);
	UT_ASSERT_INT(mwi_families(DIR_AF_ANY, false, true), OUTCONN_V6);
	UT_ASSERT_INT(mwi_families(DIR_AF_ANY, true, false), OUTCONN_V4);
	UT_ASSERT_INT(mwi_families(DIR_AF_IPV4ONLY, false, true), 0);
	UT_ASSERT_INT(mwi_families(DIR_AF_IPV6ONLY, true, false), 0);
	return 0;
}
