/* test_sipuri.c — URI users, Diversion / History-Info lists and the digits
 * tail: the shapes gateways send, and every way their text can be broken. */
#include "common/sipuri.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <stdlib.h>

int test_sipuri_user_sip(void);
int test_sipuri_user_tel(void);
int test_sipuri_user_escapes(void);
int test_sipuri_user_bad(void);
int test_sipuri_user_span(void);
int test_sipuri_list_diversion(void);
int test_sipuri_list_diversion_joined(void);
int test_sipuri_list_history_info(void);
int test_sipuri_list_bare_addr_spec(void);
int test_sipuri_list_garbage(void);
int test_sipuri_list_bounds(void);
int test_sipuri_digits_tail(void);

/* sipuri_user() on uri; returns its error and leaves the user in buf. */
static int user(char *buf, size_t len, const char *uri)
{
	strcpy(buf, "untouched");
	return sipuri_user(buf, len, uri);
}

int test_sipuri_user_sip(void)
{
	static const struct {
		const char *uri, *want;
	} cases[] = {
		{"sip:1001@pbx.contoso.com", "1001"},
		{"sip:1001@10.0.0.1:5060;transport=tcp", "1001"},
		{"SIP:1001@host", "1001"},
		{"sips:1001@host;user=phone", "1001"},
		{"sip:+14255551001@gw;user=phone", "+14255551001"},
		{"sip:+1-425-555-1001@gw;user=phone", "+14255551001"},
		{"sip:(425)555.1001@gw", "4255551001"},
		{"sip:+14255551001;phone-context=+1@gw;user=phone", "+14255551001"},
		{"sip:1001;isub=12@gw;user=phone", "1001"},
		{"sip:1001:secret@host", "1001"},
		{"sip:john.doe@contoso.com", "john.doe"},
		{"sip:alice-smith@host", "alice-smith"},
		{"sip:*86@host", "*86"},
		{"sip:4000@[2001:db8::1]:5060", "4000"},
		{"sip:1001@host?Reason=SIP%3Bcause%3D302", "1001"},
	};
	char buf[SIPURI_USER_MAX + 1];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (user(buf, sizeof buf, cases[i].uri) != 0) {
			fprintf(stderr, "  uri %s\n", cases[i].uri);
			return 1;
		}
		UT_ASSERT_STR(buf, cases[i].want);
	}
	return 0;
}

int test_sipuri_user_tel(void)
{
	char buf[SIPURI_USER_MAX + 1];

	UT_ASSERT_INT(user(buf, sizeof buf, "tel:+14255551001"), 0);
	UT_ASSERT_STR(buf, "+14255551001");
	UT_ASSERT_INT(user(buf, sizeof buf,
			   "tel:+1-425-555-1001;phone-context=+1"), 0);
	UT_ASSERT_STR(buf, "+14255551001");
	UT_ASSERT_INT(user(buf, sizeof buf, "TEL:1001;phone-context=contoso.com"), 0);
	UT_ASSERT_STR(buf, "1001");
	UT_ASSERT_INT(user(buf, sizeof buf, "tel:(425) 555"), EBADMSG);
	UT_ASSERT_INT(user(buf, sizeof buf, "tel:"), EBADMSG);
	UT_ASSERT_INT(user(buf, sizeof buf, "tel:;phone-context=x"), EBADMSG);
	UT_ASSERT_INT(user(buf, sizeof buf, "tel:+"), EBADMSG);
	UT_ASSERT_INT(user(buf, sizeof buf, "tel:alice"), EBADMSG);
	UT_ASSERT_STR(buf, "untouched");
	return 0;
}

int test_sipuri_user_escapes(void)
{
	char buf[SIPURI_USER_MAX + 1];

	UT_ASSERT_INT(user(buf, sizeof buf, "sip:%2B14255551001@gw"), 0);
	UT_ASSERT_STR(buf, "+14255551001");
	UT_ASSERT_INT(user(buf, sizeof buf, "sip:%31%30%30%31@gw"), 0);
	UT_ASSERT_STR(buf, "1001");
	UT_ASSERT_INT(user(buf, sizeof buf, "sip:john%2edoe@gw"), 0);
	UT_ASSERT_STR(buf, "john.doe");
	UT_ASSERT_INT(user(buf, sizeof buf, "tel:%2B1%2D425"), 0);
	UT_ASSERT_STR(buf, "+1425");
	/* broken escapes and escaped control characters */
	UT_ASSERT_INT(user(buf, sizeof buf, "sip:10%@gw"), EBADMSG);
	UT_ASSERT_INT(user(buf, sizeof buf, "sip:10%4@gw"), EBADMSG);
	UT_ASSERT_INT(user(buf, sizeof buf, "sip:10%zz@gw"), EBADMSG);
	UT_ASSERT_INT(user(buf, sizeof buf, "sip:10%00@gw"), EBADMSG);
	UT_ASSERT_INT(user(buf, sizeof buf, "sip:10%0d%0aVia:x@gw"), EBADMSG);
	UT_ASSERT_INT(user(buf, sizeof buf, "tel:%"), EBADMSG);
	UT_ASSERT_STR(buf, "untouched");
	return 0;
}

/* sipuri_user_n reads a span of a message in place: it stops at the span's
 * end whatever follows, and refuses raw control characters, which the
 * router's parse would have refused before (a copy used to blank them). */
int test_sipuri_user_span(void)
{
	const char *msg = "To: <sip:1001@pbx.example;user=phone>;tag=9@x\r\n";
	const char *uri = strstr(msg, "sip:");
	size_t n = (size_t)(strchr(uri, '>') - uri);
	char buf[SIPURI_USER_MAX + 1];

	UT_ASSERT_INT(sipuri_user_n(buf, sizeof buf, uri, n), 0);
	UT_ASSERT_STR(buf, "1001");
	/* the '@' after the span is not the span's: no user */
	UT_ASSERT_INT(sipuri_user_n(buf, sizeof buf, uri, 8), EBADMSG);
	UT_ASSERT_STR(buf, "1001");	/* untouched on error */
	UT_ASSERT_INT(sipuri_user_n(buf, sizeof buf, "tel:+1-425;x", 9), 0);
	UT_ASSERT_STR(buf, "+142");
	UT_ASSERT_INT(sipuri_user_n(buf, sizeof buf, "sip:10\r\n01@host", 15), EBADMSG);
	UT_ASSERT_INT(sipuri_user_n(buf, sizeof buf, "sip:10\00101@host", 14), EBADMSG);
	UT_ASSERT_INT(sipuri_user_n(buf, sizeof buf, "tel:10\x7f" "01", 9), EBADMSG);
	UT_ASSERT_INT(sipuri_user_n(buf, sizeof buf, NULL, 0), EINVAL);
	UT_ASSERT_INT(sipuri_user_n(buf, 0, uri, n), EINVAL);
	return 0;
}

int test_sipuri_user_bad(void)
{
	char buf[SIPURI_USER_MAX + 1], small[5], big[400];

	UT_ASSERT_INT(user(buf, sizeof buf, ""), EBADMSG);
	UT_ASSERT_INT(user(buf, sizeof buf, "sip:"), EBADMSG);
	UT_ASSERT_INT(user(buf, sizeof buf, "sip:pbx.contoso.com"), EBADMSG);
	UT_ASSERT_INT(user(buf, sizeof buf, "sip:@host"), EBADMSG);
	UT_ASSERT_INT(user(buf, sizeof buf, "sip::pw@host"), EBADMSG);
	UT_ASSERT_INT(user(buf, sizeof buf, "mailto:a@b"), EBADMSG);
	UT_ASSERT_INT(user(buf, sizeof buf, "1001@host"), EBADMSG);
	UT_ASSERT_INT(user(buf, sizeof buf, "si"), EBADMSG);
	UT_ASSERT_STR(buf, "untouched");
	UT_ASSERT_INT(sipuri_user(NULL, 10, "sip:1@h"), EINVAL);
	UT_ASSERT_INT(sipuri_user(buf, 0, "sip:1@h"), EINVAL);
	UT_ASSERT_INT(sipuri_user(buf, sizeof buf, NULL), EINVAL);

	/* too long for out: refused, out untouched */
	strcpy(small, "xxxx");
	UT_ASSERT_INT(sipuri_user(small, sizeof small, "sip:10011@h"),
		      ENAMETOOLONG);
	UT_ASSERT_STR(small, "xxxx");
	UT_ASSERT_INT(sipuri_user(small, sizeof small, "sip:1001@h"), 0);
	UT_ASSERT_STR(small, "1001");

	/* a user of 300 characters */
	strcpy(big, "sip:");
	memset(big + 4, '7', 300);
	strcpy(big + 304, "@host");
	UT_ASSERT_INT(user(buf, sizeof buf, big), ENAMETOOLONG);
	return 0;
}

int test_sipuri_list_diversion(void)
{
	struct sipuri_entry e[4];
	size_t n = 99;

	UT_ASSERT_INT(sipuri_name_addr_list(
		"\"Smith, John\" <sip:+1-425-555-1001@gw.contoso.com;user=phone>"
		";reason=no-answer;counter=1;privacy=off",
		e, 4, &n), 0);
	UT_ASSERT_INT(n, 1);
	UT_ASSERT_STR(e[0].user, "+14255551001");
	UT_ASSERT_STR(e[0].uri, "sip:+1-425-555-1001@gw.contoso.com;user=phone");
	UT_ASSERT_STR(e[0].reason, "no-answer");
	UT_ASSERT_STR(e[0].index, "");

	/* token display name, quoted reason, escaped quote in the name */
	UT_ASSERT_INT(sipuri_name_addr_list(
		"John Smith <sip:1001@pbx>;reason=\"user-busy\", "
		"\"say \\\"hi\\\", ok\" <tel:1002>;REASON=unconditional;counter=2",
		e, 4, &n), 0);
	UT_ASSERT_INT(n, 2);
	UT_ASSERT_STR(e[0].user, "1001");
	UT_ASSERT_STR(e[0].reason, "user-busy");
	UT_ASSERT_STR(e[1].user, "1002");
	UT_ASSERT_STR(e[1].uri, "tel:1002");
	UT_ASSERT_STR(e[1].reason, "unconditional");

	/* a comma inside <> does not split */
	UT_ASSERT_INT(sipuri_name_addr_list(
		"<sip:1001@pbx;x=a,b>;reason=deflection", e, 4, &n), 0);
	UT_ASSERT_INT(n, 1);
	UT_ASSERT_STR(e[0].uri, "sip:1001@pbx;x=a,b");

	/* an entry without user part is kept with user "" */
	UT_ASSERT_INT(sipuri_name_addr_list("<sip:pbx.contoso.com>;reason=unknown",
					    e, 4, &n), 0);
	UT_ASSERT_INT(n, 1);
	UT_ASSERT_STR(e[0].user, "");
	UT_ASSERT_STR(e[0].reason, "unknown");
	return 0;
}

int test_sipuri_list_diversion_joined(void)
{
	struct sipuri_entry e[2];
	size_t n = 0;

	/* three Diversion headers joined with ", ", topmost first; only two
	 * stored, all three counted */
	UT_ASSERT_INT(sipuri_name_addr_list(
		"<sip:1001@pbx>;reason=no-answer;counter=1, "
		"\"Front desk\" <sip:1002@pbx>;reason=unconditional,"
		"<tel:+14255551003>;reason=user-busy;screen=no;privacy=off",
		e, 2, &n), 0);
	UT_ASSERT_INT(n, 3);
	UT_ASSERT_STR(e[0].user, "1001");
	UT_ASSERT_STR(e[1].user, "1002");
	UT_ASSERT_STR(e[1].reason, "unconditional");

	/* max 0 only counts */
	UT_ASSERT_INT(sipuri_name_addr_list("<sip:1@a>, <sip:2@b>", NULL, 0, &n), 0);
	UT_ASSERT_INT(n, 2);

	/* empty elements and folded whitespace */
	UT_ASSERT_INT(sipuri_name_addr_list(" ,<sip:1001@pbx> ,\r\n\t, <sip:1002@pbx>,",
					    e, 2, &n), 0);
	UT_ASSERT_INT(n, 2);
	UT_ASSERT_STR(e[1].user, "1002");
	return 0;
}

int test_sipuri_list_history_info(void)
{
	struct sipuri_entry e[8];
	size_t n = 0;

	UT_ASSERT_INT(sipuri_name_addr_list(
		"<sip:5551234@pbx.contoso.com>;index=1, "
		"\"Bob\" <sip:1001@pbx.contoso.com?Reason=SIP%3Bcause%3D302"
		"%3Btext%3D%22Moved%20Temporarily%22>;index=1.1;rc=1, "
		"<sip:4000@um.contoso.com;user=phone?Reason=SIP%3Bcause%3D480>"
		";index=1.1.1;mp=1.1",
		e, 8, &n), 0);
	UT_ASSERT_INT(n, 3);
	UT_ASSERT_STR(e[0].user, "5551234");
	UT_ASSERT_STR(e[0].index, "1");
	UT_ASSERT_STR(e[1].user, "1001");
	UT_ASSERT_STR(e[1].index, "1.1");
	UT_ASSERT_STR(e[1].uri, "sip:1001@pbx.contoso.com?Reason=SIP%3Bcause%3D302"
		      "%3Btext%3D%22Moved%20Temporarily%22");
	UT_ASSERT_STR(e[2].user, "4000");
	UT_ASSERT_STR(e[2].index, "1.1.1");

	/* an unescaped Reason header inside <> (sloppy, but bounded by '>') */
	UT_ASSERT_INT(sipuri_name_addr_list(
		"<sip:1001@pbx?Reason=SIP;cause=302;text=\"Moved\">;index=1.1",
		e, 8, &n), 0);
	UT_ASSERT_INT(n, 1);
	UT_ASSERT_STR(e[0].user, "1001");
	UT_ASSERT_STR(e[0].index, "1.1");

	/* IPv6 host in a parameter value */
	UT_ASSERT_INT(sipuri_name_addr_list(
		"<sip:1001@[2001:db8::1]>;index=1;received=[2001:db8::2]",
		e, 8, &n), 0);
	UT_ASSERT_STR(e[0].user, "1001");
	return 0;
}

int test_sipuri_list_bare_addr_spec(void)
{
	struct sipuri_entry e[4];
	size_t n = 0;

	UT_ASSERT_INT(sipuri_name_addr_list(
		"sip:1001@pbx;reason=no-answer, tel:+1-425-555-1002;reason=away",
		e, 4, &n), 0);
	UT_ASSERT_INT(n, 2);
	UT_ASSERT_STR(e[0].user, "1001");
	UT_ASSERT_STR(e[0].uri, "sip:1001@pbx");
	UT_ASSERT_STR(e[0].reason, "no-answer");
	/* in addr-spec form ";..." belongs to the header: the tel number
	 * is the whole URI */
	UT_ASSERT_STR(e[1].user, "+14255551002");
	UT_ASSERT_STR(e[1].reason, "away");
	return 0;
}

int test_sipuri_list_garbage(void)
{
	static const char *const bad[] = {
		"",
		"   ",
		",,,",
		"garbage",
		"\"unterminated <sip:1001@pbx>",
		"\"Name\" sip:1001@pbx",
		"<sip:1001@pbx",
		"<sip:1001@pbx>>",
		"<sip:1001@pbx> trailing",
		"<sip:1001@pbx>;",
		"<sip:1001@pbx>;=x",
		"<sip:1001@pbx>;reason=",
		"<sip:1001@pbx>;reason=\"open",
		"<sip:1001@pbx>;reason=a b",
		"<>",
		"<:x>",
		"<1sip:1001@pbx>",
		"<sip 1001@pbx>",
		"<sip:10%zz@pbx>",
		"<sip:10%00@pbx>",
		"<sip:1001@pbx>, <sip:1002@pbx",
		"<sip:1001@pbx> <sip:1002@pbx>",
		"\"a\\",
		"\"a\\\"",
		"\"ab\r\ncd\" <sip:1001@pbx>",
		"sip:1001@pbx?x=y",
		"Name <",
		"<<sip:1001@pbx>>",
	};
	struct sipuri_entry e[2];
	size_t n = 77;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(e, 0x5a, sizeof e);
		if (sipuri_name_addr_list(bad[i], e, 2, &n) != EBADMSG) {
			fprintf(stderr, "  accepted: %s\n", bad[i]);
			return 1;
		}
		/* out and n untouched on failure */
		UT_ASSERT_INT(n, 77);
		UT_ASSERT_INT((unsigned char)e[0].user[0], 0x5a);
	}
	UT_ASSERT_INT(sipuri_name_addr_list(NULL, e, 2, &n), EINVAL);
	UT_ASSERT_INT(sipuri_name_addr_list("<sip:1@a>", e, 2, NULL), EINVAL);
	UT_ASSERT_INT(sipuri_name_addr_list("<sip:1@a>", NULL, 2, &n), EINVAL);
	return 0;
}

int test_sipuri_list_bounds(void)
{
	struct sipuri_entry e[2];
	size_t n = 0, len;
	char *v;

	/* a URI of 2000 characters: the copy is truncated, the user found */
	v = malloc(4096);
	UT_ASSERT(v);
	strcpy(v, "<sip:1001@");
	len = strlen(v);
	memset(v + len, 'h', 2000);
	strcpy(v + len + 2000, ">;index=1.1");
	UT_ASSERT_INT(sipuri_name_addr_list(v, e, 2, &n), 0);
	UT_ASSERT_INT(n, 1);
	UT_ASSERT_STR(e[0].user, "1001");
	UT_ASSERT_INT(strlen(e[0].uri), SIPURI_URI_MAX);
	UT_ASSERT_STR(e[0].index, "1.1");

	/* a user of 65 characters: the whole value is refused */
	strcpy(v, "<sip:1001@pbx>, <sip:");
	len = strlen(v);
	memset(v + len, '1', SIPURI_USER_MAX + 1);
	strcpy(v + len + SIPURI_USER_MAX + 1, "@pbx>");
	UT_ASSERT_INT(sipuri_name_addr_list(v, e, 2, &n), EBADMSG);
	/* ... and of 64 accepted */
	strcpy(v + len + SIPURI_USER_MAX, "@pbx>");
	UT_ASSERT_INT(sipuri_name_addr_list(v, e, 2, &n), 0);
	UT_ASSERT_INT(strlen(e[1].user), SIPURI_USER_MAX);

	/* an index longer than SIPURI_PARAM_MAX is truncated */
	strcpy(v, "<sip:1@a>;index=");
	len = strlen(v);
	for (size_t i = 0; i < 40; i++)
		strcpy(v + len + 2 * i, "1.");
	strcat(v, "1");
	UT_ASSERT_INT(sipuri_name_addr_list(v, e, 2, &n), 0);
	UT_ASSERT_INT(strlen(e[0].index), SIPURI_PARAM_MAX);
	free(v);

	/* a value longer than SIPURI_VALUE_MAX */
	v = malloc(SIPURI_VALUE_MAX + 64);
	UT_ASSERT(v);
	len = 0;
	while (len < SIPURI_VALUE_MAX + 1) {
		memcpy(v + len, "<sip:1@a>,", 10);
		len += 10;
	}
	v[len] = '\0';
	UT_ASSERT_INT(sipuri_name_addr_list(v, e, 2, &n), EMSGSIZE);
	/* just under it: fine, every entry counted */
	v[SIPURI_VALUE_MAX - SIPURI_VALUE_MAX % 10] = '\0';
	UT_ASSERT_INT(sipuri_name_addr_list(v, e, 2, &n), 0);
	UT_ASSERT_INT(n, SIPURI_VALUE_MAX / 10);
	free(v);
	return 0;
}

int test_sipuri_digits_tail(void)
{
	char buf[21], tiny[3];

	sipuri_digits_tail(buf, sizeof buf, "+14255551001", 4);
	UT_ASSERT_STR(buf, "1001");
	sipuri_digits_tail(buf, sizeof buf, "+14255551001", 5);
	UT_ASSERT_STR(buf, "51001");
	sipuri_digits_tail(buf, sizeof buf, "1001", 4);
	UT_ASSERT_STR(buf, "1001");
	sipuri_digits_tail(buf, sizeof buf, "101", 4);
	UT_ASSERT_STR(buf, "101");
	sipuri_digits_tail(buf, sizeof buf, "+1 (425) 555-1001", 7);
	UT_ASSERT_STR(buf, "5551001");
	sipuri_digits_tail(buf, sizeof buf, "+14255551001", 0);
	UT_ASSERT_STR(buf, "14255551001");
	sipuri_digits_tail(buf, sizeof buf, "john.doe", 4);
	UT_ASSERT_STR(buf, "");
	sipuri_digits_tail(buf, sizeof buf, "", 4);
	UT_ASSERT_STR(buf, "");
	sipuri_digits_tail(buf, sizeof buf, NULL, 4);
	UT_ASSERT_STR(buf, "");
	/* more digits than fit: the last ones */
	sipuri_digits_tail(tiny, sizeof tiny, "12345", 0);
	UT_ASSERT_STR(tiny, "45");
	sipuri_digits_tail(tiny, sizeof tiny, "12345", 4);
	UT_ASSERT_STR(tiny, "45");
	sipuri_digits_tail(NULL, 0, "1", 1); /* no crash */
	strcpy(tiny, "x");
	sipuri_digits_tail(tiny, 0, "1", 1);
	UT_ASSERT_STR(tiny, "x");
	return 0;
}
