/* test_pop.c — Play on Phone's pure parts: what a request may carry, the
 * words of a result, umctl's parameters and output, and the router's
 * choice of instance. */
#include "callrouter/popfwd.h"
#include "callrouter/registry.h"
#include "common/playonphone.h"
#include "tests/unit/unit.h"
#include "umctl/ctl_args.h"
#include "umctl/ctl_pop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int test_pop_number(void);
int test_pop_request_check(void);
int test_pop_texts(void);
int test_pop_next_gateway(void);
int test_pop_default_timeout(void);
int test_pop_umctl_args(void);
int test_pop_umctl_output(void);
int test_pop_choose_instance(void);

#define ARGV(...) ((char *const[]){"umctl", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *const[]){"umctl", __VA_ARGS__}) / \
			 sizeof(char *)))
#define PARSE(a, cause, ...) ctl_args_parse(a, ARGC(__VA_ARGS__), \
					    ARGV(__VA_ARGS__), cause)

int test_pop_number(void)
{
	const char *why = NULL;
	char n32[40], n33[40];

	memset(n32, '7', 32);
	n32[32] = '\0';
	memset(n33, '7', 33);
	n33[33] = '\0';
	UT_ASSERT(pop_number_ok("5550101", &why) && why == NULL);
	UT_ASSERT(pop_number_ok("+14255550123", NULL));
	UT_ASSERT(pop_number_ok("0", NULL));
	UT_ASSERT(pop_number_ok(n32, NULL));
	n32[0] = '+';
	UT_ASSERT(pop_number_ok(n32, NULL));
	UT_ASSERT(!pop_number_ok(n33, &why) && strstr(why, "32"));
	UT_ASSERT(!pop_number_ok("", &why) && why);
	UT_ASSERT(!pop_number_ok(NULL, &why) && why);
	UT_ASSERT(!pop_number_ok("+", &why) && strstr(why, "+"));
	UT_ASSERT(!pop_number_ok("555-0101", &why) && strstr(why, "digits"));
	UT_ASSERT(!pop_number_ok("++1", NULL));
	UT_ASSERT(!pop_number_ok("1+2", NULL));
	UT_ASSERT(!pop_number_ok(" 1", NULL));
	UT_ASSERT(!pop_number_ok("1;user=phone", NULL));
	UT_ASSERT(!pop_number_ok("1@evil.example", NULL));
	UT_ASSERT(!pop_number_ok("12\r\nVia: x", NULL));
	UT_ASSERT(!pop_number_ok("１２", NULL));	/* full-width digits */
	/* mailboxes and dial plans */
	UT_ASSERT(pop_mailbox_ok("1001") && pop_mailbox_ok("12345678901234567890"));
	UT_ASSERT(!pop_mailbox_ok("123456789012345678901") && !pop_mailbox_ok("") &&
		  !pop_mailbox_ok(NULL) && !pop_mailbox_ok("+1001") &&
		  !pop_mailbox_ok("10 1"));
	UT_ASSERT(pop_dialplan_ok("") && pop_dialplan_ok(NULL) &&
		  pop_dialplan_ok("default") && pop_dialplan_ok("Dial Plan.2"));
	UT_ASSERT(!pop_dialplan_ok("a\nb") && !pop_dialplan_ok("\x7f") &&
		  !pop_dialplan_ok("caf\xc3\xa9"));
	{
		char long_name[80];

		memset(long_name, 'a', 65);
		long_name[65] = '\0';
		UT_ASSERT(!pop_dialplan_ok(long_name));
		long_name[64] = '\0';
		UT_ASSERT(pop_dialplan_ok(long_name));
	}
	return 0;
}

int test_pop_request_check(void)
{
	Openum__PlayOnPhoneRequest r = OPENUM__PLAY_ON_PHONE_REQUEST__INIT;
	char why[160];

	r.mailbox = (char *)"1001";
	r.message_id = 7;
	r.to = (char *)"+15550101";
	UT_ASSERT_INT(pop_request_check(&r, false, why, sizeof why), 0);
	/* the router assigns the id; the service needs it */
	UT_ASSERT_INT(pop_request_check(&r, true, why, sizeof why), EINVAL);
	UT_ASSERT(strstr(why, "request_id"));
	r.request_id = 3;
	UT_ASSERT_INT(pop_request_check(&r, true, why, sizeof why), 0);
	r.dial_plan = (char *)"default";
	UT_ASSERT_INT(pop_request_check(&r, true, why, sizeof why), 0);
	r.dial_plan = (char *)"bad\001plan";
	UT_ASSERT_INT(pop_request_check(&r, true, why, sizeof why), EINVAL);
	UT_ASSERT(strstr(why, "dial plan"));
	r.dial_plan = (char *)"";
	r.mailbox = (char *)"10x1";
	UT_ASSERT_INT(pop_request_check(&r, true, why, sizeof why), EINVAL);
	UT_ASSERT(strstr(why, "mailbox"));
	r.mailbox = NULL;
	UT_ASSERT_INT(pop_request_check(&r, true, why, sizeof why), EINVAL);
	r.mailbox = (char *)"1001";
	r.message_id = 0;
	UT_ASSERT_INT(pop_request_check(&r, true, why, sizeof why), EINVAL);
	UT_ASSERT(strstr(why, "message id"));
	r.message_id = -5;
	UT_ASSERT_INT(pop_request_check(&r, true, why, sizeof why), EINVAL);
	r.message_id = 7;
	r.to = (char *)"5550101@attacker";
	UT_ASSERT_INT(pop_request_check(&r, true, why, sizeof why), EINVAL);
	UT_ASSERT(strstr(why, "number to call"));
	r.to = NULL;
	UT_ASSERT_INT(pop_request_check(&r, true, why, sizeof why), EINVAL);
	UT_ASSERT_INT(pop_request_check(NULL, false, why, sizeof why), EINVAL);
	return 0;
}

int test_pop_texts(void)
{
	Openum__PlayOnPhoneResult r = OPENUM__PLAY_ON_PHONE_RESULT__INIT;
	char buf[400], longp[200];

	pop_status_text(buf, sizeof buf, 486, "Busy Here", "gw1", "[::1]:5070");
	UT_ASSERT_STR(buf, "486 Busy Here from gateway gw1 at [::1]:5070");
	pop_status_text(buf, sizeof buf, 603, NULL, "gw1", "127.0.0.1:5060");
	UT_ASSERT_STR(buf, "603 from gateway gw1 at 127.0.0.1:5060");
	/* the phrase is the network's: no control bytes, cut short */
	pop_status_text(buf, sizeof buf, 480, "Gone\r\n\x1b[2J\xff", "gw1", "x");
	UT_ASSERT_STR(buf, "480 Gone???[2J? from gateway gw1 at x");
	memset(longp, 'a', sizeof longp - 1);
	longp[sizeof longp - 1] = '\0';
	pop_status_text(buf, sizeof buf, 500, longp, "g", "a");
	UT_ASSERT_INT(strlen(buf), strlen("500 ") + 64 + strlen(" from gateway g at a"));

	pop_connect_text(buf, sizeof buf, "gw1", "2001:db8::5", ECONNREFUSED,
			 "Play on Phone to 1 via gateway gw1: none of 2 addresses of "
			 "2001:db8::5 connected (last: Connection refused)",
			 "Play on Phone to 1 via gateway gw1");
	UT_ASSERT_STR(buf, "gateway gw1 (2001:db8::5): every address failed to connect: "
		      "none of 2 addresses of 2001:db8::5 connected (last: Connection "
		      "refused)");
	pop_connect_text(buf, sizeof buf, "gw1", "gw.example.com", EHOSTUNREACH,
			 "x: every address of gw.example.com (3) is on the bad-address "
			 "list", "x");
	UT_ASSERT_STR(buf, "gateway gw1 (gw.example.com): every address is on the "
		      "bad-address list (each failed within the BadAddressInterval)");
	pop_connect_text(buf, sizeof buf, "gw1", "gw.example.com", ENOENT,
			 "x: gw.example.com has no address of a family allowed (IPv6)",
			 "x");
	UT_ASSERT_STR(buf, "gateway gw1 (gw.example.com): gw.example.com has no "
		      "address of a family allowed (IPv6)");
	pop_connect_text(buf, sizeof buf, "gw1", "h", ETIMEDOUT, NULL, NULL);
	UT_ASSERT_STR(buf, "gateway gw1 (h): Connection timed out");

	r.ok = true;
	r.gateway = (char *)"gw1";
	r.address = (char *)"127.0.0.1:5070";
	r.played_ms = 4960;
	r.instance_id = (char *)"um-1";
	pop_result_text(buf, sizeof buf, &r, "1001", 7, "+15550101");
	UT_ASSERT_STR(buf, "message 7 of mailbox 1001 played to +15550101 through "
		      "gateway gw1 at 127.0.0.1:5070: 5.0 s (UM service um-1)");
	r.ok = false;
	r.reason = (char *)"no answer within 30 s";
	pop_result_text(buf, sizeof buf, &r, "1001", 7, "+15550101");
	UT_ASSERT_STR(buf, "no answer within 30 s");
	r.reason = (char *)"";
	pop_result_text(buf, sizeof buf, &r, "1001", 7, "+15550101");
	UT_ASSERT(strstr(buf, "no reason"));
	return 0;
}

int test_pop_default_timeout(void)
{
	/* 10 s connect + 30 s ring + the message + 15 s */
	UT_ASSERT_INT(pop_default_timeout_s(5000, 30), 60);
	UT_ASSERT_INT(pop_default_timeout_s(5001, 30), 61);
	UT_ASSERT_INT(pop_default_timeout_s(0, 30), 55);
	UT_ASSERT_INT(pop_default_timeout_s(-1, 30), 55 + POP_UNKNOWN_LENGTH_S);
	UT_ASSERT_INT(pop_default_timeout_s(INT64_MAX / 2, 30), POP_TIMEOUT_MAX_S);
	return 0;
}

int test_pop_umctl_args(void)
{
	struct ctl_args a;
	char *cause = NULL;

	UT_ASSERT_INT(PARSE(&a, &cause, "play-on-phone", "--mailbox", "1001",
			    "--message", "7", "--to", "+15550101"), 0);
	UT_ASSERT_INT(a.verb->action, CTL_ACT_PLAY_ON_PHONE);
	UT_ASSERT_STR(a.vm_mailbox, "1001");
	UT_ASSERT_INT(a.pop_message, 7);
	UT_ASSERT_STR(a.pop_to, "+15550101");
	UT_ASSERT(a.dialplan == NULL && a.pop_timeout_s == 0);
	UT_ASSERT(!ctl_verb_writes(a.verb) && !ctl_verb_voicemail(a.verb));
	/* = forms, aliases, globals anywhere */
	UT_ASSERT_INT(PARSE(&a, &cause, "--json", "Play-On-Phone", "--extension=1001",
			    "--umdialplan", "default", "--id=9", "--to=5550101",
			    "--timeout", "90", "--state-dir", "/tmp/x"), 0);
	UT_ASSERT(a.json && !strcmp(a.state_dir, "/tmp/x"));
	UT_ASSERT_STR(a.dialplan, "default");
	UT_ASSERT_INT(a.pop_message, 9);
	UT_ASSERT_INT(a.pop_timeout_s, 90);
	UT_ASSERT_INT(PARSE(&a, &cause, "play-on-phone", "--mailbox", "1001",
			    "--dial-plan", "default", "--message", "7", "--to", "1"),
		      0);
	/* errors name the parameter */
#define BAD(needle, ...)                                                     \
	do {                                                                 \
		free(cause);                                                 \
		cause = NULL;                                                \
		UT_ASSERT_INT(PARSE(&a, &cause, "play-on-phone", __VA_ARGS__), \
			      EINVAL);                                       \
		UT_ASSERT(cause && strstr(cause, needle));                   \
	} while (0)
	BAD("--to", "--mailbox", "1001", "--message", "7", "--to", "555 0101");
	BAD("--to", "--mailbox", "1001", "--message", "7", "--to", "sip:1@x");
	BAD("--to is required", "--mailbox", "1001", "--message", "7");
	BAD("--message is required", "--mailbox", "1001", "--to", "1");
	BAD("--mailbox is required", "--message", "7", "--to", "1");
	BAD("--message", "--mailbox", "1001", "--message", "0", "--to", "1");
	BAD("--message", "--mailbox", "1001", "--message", "7x", "--to", "1");
	BAD("--mailbox", "--mailbox", "ab", "--message", "7", "--to", "1");
	BAD("--timeout", "--mailbox", "1001", "--message", "7", "--to", "1",
	    "--timeout", "7201");
	BAD("given twice", "--mailbox", "1001", "--message", "7", "--to", "1",
	    "--to", "2");
	BAD("not a parameter", "--mailbox", "1001", "--message", "7", "--to", "1",
	    "--state", "new");
	BAD("missing value", "--mailbox", "1001", "--message", "7", "--to");
#undef BAD
	free(cause);
	return 0;
}

int test_pop_umctl_output(void)
{
	Openum__PlayOnPhoneResult r = OPENUM__PLAY_ON_PHONE_RESULT__INIT;
	struct ctl_args a;
	char *obuf = NULL, *ebuf = NULL;
	size_t olen = 0, elen = 0;
	FILE *fo, *fe;

	UT_ASSERT_INT(PARSE(&a, NULL, "play-on-phone", "--mailbox", "1001",
			    "--message", "7", "--to", "5550101"), 0);
	r.ok = false;
	r.reason = (char *)"486 Busy Here from gateway gw1 at 127.0.0.1:5070";
	r.sip_status = 486;
	r.gateway = (char *)"gw1";
	r.address = (char *)"127.0.0.1:5070";
	r.instance_id = (char *)"um-1";
	fo = open_memstream(&obuf, &olen);
	fe = open_memstream(&ebuf, &elen);
	ctl_pop_print(fo, fe, &r, &a);
	fclose(fo);
	fclose(fe);
	UT_ASSERT_STR(obuf, "");
	UT_ASSERT_STR(ebuf, "umctl: play-on-phone: 486 Busy Here from gateway gw1 at "
		      "127.0.0.1:5070\n");
	free(obuf);
	free(ebuf);
	/* JSON: everything, quotes escaped */
	a.json = true;
	r.reason = (char *)"a \"quoted\" reason";
	fo = open_memstream(&obuf, &olen);
	fe = open_memstream(&ebuf, &elen);
	ctl_pop_print(fo, fe, &r, &a);
	fclose(fo);
	fclose(fe);
	UT_ASSERT_STR(ebuf, "");
	UT_ASSERT_STR(obuf, "{\"Ok\": false, \"Reason\": \"a \\\"quoted\\\" reason\", "
		      "\"SipStatus\": 486, \"Gateway\": \"gw1\", \"Address\": "
		      "\"127.0.0.1:5070\", \"PlayedMs\": 0, \"Instance\": \"um-1\", "
		      "\"Mailbox\": \"1001\", \"MessageId\": 7, \"To\": \"5550101\"}\n");
	free(obuf);
	free(ebuf);
	/* success in text goes to stdout */
	a.json = false;
	r.ok = true;
	r.played_ms = 4000;
	fo = open_memstream(&obuf, &olen);
	fe = open_memstream(&ebuf, &elen);
	ctl_pop_print(fo, fe, &r, &a);
	fclose(fo);
	fclose(fe);
	UT_ASSERT_STR(ebuf, "");
	UT_ASSERT_STR(obuf, "message 7 of mailbox 1001 played to 5550101 through "
		      "gateway gw1 at 127.0.0.1:5070: 4.0 s (UM service um-1)\n");
	free(obuf);
	free(ebuf);
	return 0;
}

int test_pop_choose_instance(void)
{
	struct registry *reg;
	struct reg_instance *a, *b, *c;
	Openum__ServiceRegister m = OPENUM__SERVICE_REGISTER__INIT;
	char *cause = NULL;

	UT_ASSERT_INT(reg_alloc(&reg), 0);
	UT_ASSERT(popfwd_choose(reg) == NULL);
	m.max_calls_allowed = 2;
	m.instance_id = (char *)"a";
	UT_ASSERT_INT(reg_register(reg, (struct ipc_conn *)0x1, &m, &cause), 0);
	m.instance_id = (char *)"b";
	UT_ASSERT_INT(reg_register(reg, (struct ipc_conn *)0x2, &m, &cause), 0);
	m.instance_id = (char *)"c";
	UT_ASSERT_INT(reg_register(reg, (struct ipc_conn *)0x3, &m, &cause), 0);
	a = reg_find_conn(reg, (struct ipc_conn *)0x1);
	b = reg_find_conn(reg, (struct ipc_conn *)0x2);
	c = reg_find_conn(reg, (struct ipc_conn *)0x3);
	/* ties: the first registered */
	UT_ASSERT(popfwd_choose(reg) == a);
	/* the least loaded */
	a->active_calls = 1;
	c->active_calls = 1;
	UT_ASSERT(popfwd_choose(reg) == b);
	/* not accepting (draining, stopping) or full: never */
	b->accepting = false;
	UT_ASSERT(popfwd_choose(reg) == a);
	a->active_calls = 2;
	UT_ASSERT(popfwd_choose(reg) == c);
	c->active_calls = 2;
	UT_ASSERT(popfwd_choose(reg) == NULL);
	b->accepting = true;
	UT_ASSERT(popfwd_choose(reg) == b);
	reg_free(reg);
	return 0;
}

/* Which failed INVITEs go on to the dial plan's next gateway. */
int test_pop_next_gateway(void)
{
	UT_ASSERT(pop_try_next_gateway(0, true));	/* nothing came back */
	UT_ASSERT(pop_try_next_gateway(408, false));
	UT_ASSERT(pop_try_next_gateway(500, false));
	UT_ASSERT(pop_try_next_gateway(502, false));
	UT_ASSERT(pop_try_next_gateway(503, false));
	UT_ASSERT(pop_try_next_gateway(504, false));
	UT_ASSERT(!pop_try_next_gateway(486, false));	/* the callee is busy */
	UT_ASSERT(!pop_try_next_gateway(404, false));
	UT_ASSERT(!pop_try_next_gateway(480, false));
	UT_ASSERT(!pop_try_next_gateway(603, false));
	UT_ASSERT(!pop_try_next_gateway(501, false));
	return 0;
}
