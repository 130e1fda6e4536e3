/* test_sipmsg.c — the router's SIP reader and response writer: what it
 * reads out of a request, the responses it writes (Via received/rport, To
 * tag, every Via kept in order), the errors it gives bad requests, and how
 * it frames a TCP stream. */
#include "callrouter/sipmsg.h"
#include "tests/unit/unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

int test_sipmsg_invite(void);
int test_sipmsg_echo(void);
int test_sipmsg_errors(void);
int test_sipmsg_ctl_every_offset(void);
int test_sipmsg_frame(void);
int test_sipmsg_reply_addr(void);

static const char INVITE[] =
	"INVITE sip:5000@127.0.0.1:5060;user=phone SIP/2.0\r\n"
	"Via: SIP/2.0/UDP 10.1.2.3:5070;branch=z9hG4bK-abc;rport, "
	"SIP/2.0/UDP 10.9.9.9;branch=z9hG4bK-older\r\n"
	"v: SIP/2.0/TCP [2001:db8::1]:5080;branch=z9hG4bK-oldest\r\n"
	"f: \"Front, Desk\" <sip:4255550100@pbx.example.test>;tag=77\r\n"
	"To: <sip:5000@pbx.example.test>\r\n"
	"i: call-1@pbx\r\n"
	"CSeq: 12 INVITE\r\n"
	"Diversion: <sip:+14255551001@pbx.example.test>;reason=no-answer\r\n"
	"History-Info: <sip:5000@pbx>;index=1,\r\n"
	"  <sip:1001@pbx>;index=1.1\r\n"
	"Contact: <sip:pbx@[2001:db8::1]:5080;transport=tcp>, *\r\n"
	"l: 4\r\n"
	"\r\n"
	"v=0\nignored beyond Content-Length";

static int parse(struct sipmsg *m, const char *s, bool stream)
{
	const char *why;

	return sipmsg_parse(m, s, strlen(s), stream, &why);
}

int test_sipmsg_invite(void)
{
	struct sipmsg m;
	char user[65], join[256], tag1[17], tag2[17];

	UT_ASSERT_INT(parse(&m, INVITE, false), 0);
	UT_ASSERT_INT(m.method, SIPMSG_INVITE);
	UT_ASSERT_INT(m.n_via, 2);
	UT_ASSERT_INT(m.via_port, 5070);
	UT_ASSERT(m.via_rport);
	UT_ASSERT_INT(m.branch.n, strlen("z9hG4bK-abc"));
	UT_ASSERT(!memcmp(m.branch.p, "z9hG4bK-abc", m.branch.n));
	UT_ASSERT_INT(m.cseq_num, 12);
	UT_ASSERT_INT(m.content_length, 4);
	UT_ASSERT_INT(m.body.n, 4);
	UT_ASSERT(!m.to_tag);
	sipmsg_ruri_user(&m, user, sizeof user);
	UT_ASSERT_STR(user, "5000");
	sipmsg_to_user(&m, user, sizeof user);
	UT_ASSERT_STR(user, "5000");
	sipmsg_from_user(&m, user, sizeof user);
	UT_ASSERT_STR(user, "4255550100");
	UT_ASSERT(sipmsg_join(m.diversion, m.n_diversion, join, sizeof join));
	UT_ASSERT_STR(join, "<sip:+14255551001@pbx.example.test>;reason=no-answer");
	/* a folded History-Info reads as one line, both entries in order */
	UT_ASSERT(sipmsg_join(m.history_info, m.n_history_info, join, sizeof join));
	UT_ASSERT(strstr(join, "index=1,") && strstr(join, "<sip:1001@pbx>;index=1.1"));
	UT_ASSERT(!strchr(join, '\r') && !strchr(join, '\n'));
	UT_ASSERT(!sipmsg_join(m.diversion, m.n_diversion, join, 10));
	/* the To tag is the same for a retransmission, another for another branch */
	sipmsg_to_tag(&m, 1, tag1);
	sipmsg_to_tag(&m, 1, tag2);
	UT_ASSERT_STR(tag1, tag2);
	UT_ASSERT_INT(strlen(tag1), 16);
	m.branch.n--;
	sipmsg_to_tag(&m, 1, tag2);
	UT_ASSERT(strcmp(tag1, tag2) != 0);
	/* a response is recognised and left alone */
	UT_ASSERT_INT(parse(&m, "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x\r\n\r\n", false), 0);
	UT_ASSERT(m.response);
	return 0;
}

int test_sipmsg_echo(void)
{
	struct sipmsg m;
	struct sockaddr_in src = ut_v4("192.0.2.50", 40000);
	char echo[2048], resp[4096];
	size_t n, r;

	UT_ASSERT_INT(parse(&m, INVITE, false), 0);
	n = sipmsg_echo(echo, sizeof echo, &m, (struct sockaddr *)&src, "t1");
	UT_ASSERT(n > 0);
	echo[n] = 0;
	/* RFC 3581: rport gets the source port; RFC 3261 18.2.1: received */
	UT_ASSERT(strstr(echo, "Via: SIP/2.0/UDP 10.1.2.3:5070;branch=z9hG4bK-abc;"
			       "rport=40000;received=192.0.2.50\r\n"
			       "Via: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bK-older\r\n"
			       "Via: SIP/2.0/TCP [2001:db8::1]:5080;branch=z9hG4bK-oldest\r\n"));
	UT_ASSERT(strstr(echo, "From: \"Front, Desk\" <sip:4255550100@pbx.example.test>;tag=77\r\n"));
	UT_ASSERT(strstr(echo, "To: <sip:5000@pbx.example.test>;tag=t1\r\n"));
	UT_ASSERT(strstr(echo, "Call-ID: call-1@pbx\r\nCSeq: 12 INVITE\r\n"));
	r = sipmsg_response(resp, sizeof resp, 302, "Moved Temporarily", echo, n,
			    "Contact: <sip:1001@127.0.0.1:5062>\r\n");
	UT_ASSERT(r > 0);
	resp[r] = 0;
	UT_ASSERT(!strncmp(resp, "SIP/2.0 302 Moved Temporarily\r\nVia: ", 36));
	UT_ASSERT(strstr(resp, "Contact: <sip:1001@127.0.0.1:5062>\r\nContent-Length: 0\r\n\r\n"));
	UT_ASSERT_INT(strlen(resp), r);
	UT_ASSERT_INT(sipmsg_response(resp, 40, 302, "Moved Temporarily", echo, n, ""), 0);
	UT_ASSERT_INT(sipmsg_echo(echo, 20, &m, (struct sockaddr *)&src, "t1"), 0);

	/* the client's own address: no received; a To tag already there stays */
	{
		static const char req[] =
			"OPTIONS sip:127.0.0.1 SIP/2.0\r\n"
			"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n"
			"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>;tag=9\r\n"
			"Call-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
		struct sockaddr_in lo = ut_v4("127.0.0.1", 5070);

		UT_ASSERT_INT(parse(&m, req, false), 0);
		n = sipmsg_echo(echo, sizeof echo, &m, (struct sockaddr *)&lo, "t1");
		UT_ASSERT(n > 0);
		echo[n] = 0;
		UT_ASSERT(strstr(echo, "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n"));
		UT_ASSERT(!strstr(echo, "received"));
		UT_ASSERT(strstr(echo, "To: <sip:b@127.0.0.1>;tag=9\r\n"));
	}
	return 0;
}

/* INVITE with one line replaced (or added when `from` is NULL). */
static int parse_variant(const char *from, const char *to, const char **why)
{
	static char buf[4096];
	const char *base =
		"INVITE sip:1001@127.0.0.1 SIP/2.0\r\n"
		"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n"
		"From: <sip:a@127.0.0.1>;tag=1\r\n"
		"To: <sip:1001@127.0.0.1>\r\n"
		"Call-ID: x\r\n"
		"CSeq: 1 INVITE\r\n"
		"Content-Length: 0\r\n\r\n";
	struct sipmsg m;
	const char *at;

	if (!from) {
		size_t k = strlen(base) - 2;

		snprintf(buf, sizeof buf, "%.*s%s\r\n\r\n", (int)k, base, to);
	} else {
		at = strstr(base, from);
		if (!at)
			return -99;
		snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - base), base, to,
			 at + strlen(from));
	}
	return sipmsg_parse(&m, buf, strlen(buf), false, why);
}

int test_sipmsg_errors(void)
{
	const char *why;
	struct sipmsg m;

	UT_ASSERT_INT(parse_variant("Call-ID: x\r\n", "", &why), 400);
	UT_ASSERT(strstr(why, "Call-ID"));
	UT_ASSERT_INT(parse_variant("CSeq: 1 INVITE\r\n", "", &why), 400);
	UT_ASSERT_INT(parse_variant("CSeq: 1 INVITE", "CSeq: 1 BYE", &why), 400);
	UT_ASSERT(strstr(why, "CSeq"));
	UT_ASSERT_INT(parse_variant("CSeq: 1 INVITE", "CSeq: 99999999999 INVITE", &why), 400);
	UT_ASSERT_INT(parse_variant("CSeq: 1 INVITE", "CSeq: x1 INVITE", &why), 400);
	UT_ASSERT_INT(parse_variant("SIP/2.0\r\nVia", "SIP/3.0\r\nVia", &why), 505);
	UT_ASSERT_INT(parse_variant("sip:1001@127.0.0.1 ", "sip:1001@::1:5060 ", &why), 400);
	UT_ASSERT_INT(parse_variant("sip:1001@127.0.0.1 ", "mailto:a@b ", &why), 416);
	UT_ASSERT_INT(parse_variant("sip:1001@127.0.0.1 ", "sip:1001@999.1.1.1 ", &why), 400);
	UT_ASSERT_INT(parse_variant("sip:1001@127.0.0.1 ", "sip:1001@[::1]:5060 ", &why), 0);
	UT_ASSERT_INT(parse_variant(NULL, "Contact: <sip:e2e@::1:5060>", &why), 400);
	UT_ASSERT_INT(parse_variant("To: <sip:1001@127.0.0.1>", "To: <sip:1001@::1>", &why), 400);
	UT_ASSERT_INT(parse_variant("To: <sip:1001@127.0.0.1>", "To: <sip:1001@[::1]", &why), 400);
	UT_ASSERT_INT(parse_variant("Content-Length: 0", "Content-Length: -5", &why), 400);
	UT_ASSERT_INT(parse_variant("Content-Length: 0", "Content-Length: 12ab", &why), 400);
	UT_ASSERT_INT(parse_variant("Content-Length: 0", "Content-Length: 99999999999", &why),
		      400);
	/* announced beyond SIPMSG_MAX: too large, whatever arrived */
	UT_ASSERT_INT(parse_variant("Content-Length: 0", "Content-Length: 98305", &why), 513);
	UT_ASSERT_STR(why, "Message Too Large");
	UT_ASSERT_INT(parse_variant("Content-Length: 0", "Content-Length: 4294967295", &why),
		      513);
	/* a datagram whose body is shorter than announced */
	UT_ASSERT_INT(parse_variant("Content-Length: 0", "Content-Length: 10", &why), 400);
	UT_ASSERT_INT(parse_variant(NULL, "Call-ID: again", &why), 400);
	UT_ASSERT_INT(parse_variant(NULL, "X-Ctl: a\x01z", &why), 400);
	UT_ASSERT_INT(parse_variant(NULL, "X-Del: a\x7fz", &why), 400);
	UT_ASSERT_INT(parse_variant(NULL, "X-Cr: a\rz", &why), 400);
	UT_ASSERT(strstr(why, "control character"));
	UT_ASSERT_INT(parse_variant(NULL, "X-Lf: a\nz", &why), 400);
	UT_ASSERT_INT(parse_variant(NULL, "X-Tab: a\tz", &why), 0);
	/* IPv4 hosts as inet_pton reads them: four parts, each 0-255, no
	 * leading zeros */
	{
		static const struct {
			const char *host;
			int status;
		} v4s[] = {
			{"0.0.0.0", 0},	     {"255.255.255.255", 0}, {"10.0.100.9", 0},
			{"01.2.3.4", 400},   {"1.2.3.00", 400},	     {"1.2.3", 400},
			{"1.2.3.4.", 400},   {"1.2.3.4.5", 400},     {"1..3.4", 400},
			{".1.2.3", 400},     {"1.2.3.256", 400},     {"1.2.3.1000", 400},
			{"4294967297", 400}, {"1.2.3.4a", 0},	     /* a name */
		};

		for (size_t i = 0; i < sizeof v4s / sizeof v4s[0]; i++) {
			char ruri[64];

			snprintf(ruri, sizeof ruri, "sip:1001@%s ", v4s[i].host);
			UT_ASSERT_INT(parse_variant("sip:1001@127.0.0.1 ", ruri, &why),
				      v4s[i].status);
		}
	}
	UT_ASSERT_INT(parse_variant(NULL, "no colon here", &why), 400);
	UT_ASSERT(strstr(why, "without a colon"));
	UT_ASSERT_INT(parse_variant(NULL, "Bad Name: x", &why), 400);
	UT_ASSERT(strstr(why, "bad header name"));
	UT_ASSERT_INT(parse_variant(NULL, "X-At@: x", &why), 400);
	UT_ASSERT(strstr(why, "bad header name"));
	UT_ASSERT_INT(parse_variant(NULL, ": x", &why), 400);
	UT_ASSERT(strstr(why, "bad header name"));
	UT_ASSERT_INT(parse_variant(NULL, "X-Name \t : x:y", &why), 0);
	UT_ASSERT_INT(parse_variant(NULL, "X-Name x: y", &why), 400);
	UT_ASSERT_INT(parse_variant("Call-ID: x", "Call-ID \t: x", &why), 0);
	UT_ASSERT_INT(parse_variant(NULL, "X-A: 1\r\n continuation", &why), 0);
	/* nothing to answer to: dropped */
	UT_ASSERT_INT(parse_variant("Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n", "",
				    &why), -1);
	UT_ASSERT(strstr(why, "Via"));
	UT_ASSERT_INT(parse_variant("127.0.0.1:5070;branch", "::1:5070;branch", &why), -1);
	UT_ASSERT_INT(parse(&m, "HELLO there\r\nwho: are you\r\n\r\n", false), -1);
	UT_ASSERT_INT(parse(&m, "INVITE sip:1001@127.0.0.1 SIP/2.0\r\n", false), -1);
	/* headers that never end: dropped, whatever the method */
	UT_ASSERT_INT(parse(&m, "INVITE sip:1001@127.0.0.1 SIP/2.0\r\n"
			  "Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK-1\r\n", false), -1);
	UT_ASSERT_INT(parse(&m, "ACK sip:1001@127.0.0.1 SIP/2.0\r\n"
			  "Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK-1\r\n", false), -1);
	UT_ASSERT_INT(parse(&m, "SIP/2.0 200 OK\r\nVia: x\r\n", false), -1);
	UT_ASSERT_INT(parse(&m, "ACK sip:1001@127.0.0.1 SIP/2.0\r\n"
			  "Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK-1\r\n\r\n", false), 0);
	UT_ASSERT_INT(m.method, SIPMSG_ACK);
	{
		/* its Via is not read, so there is nothing to echo */
		char echo[512];
		struct sockaddr_in src = ut_v4("127.0.0.1", 5070);

		UT_ASSERT_INT(sipmsg_echo(echo, sizeof echo, &m, (struct sockaddr *)&src,
					  "t"), 0);
	}
	UT_ASSERT_INT(sipmsg_parse(&m, "\xff\xfe\x00garbage", 10, false, &why), -1);
	/* An ACK or a response is taken only when its headers end (the empty
	 * line is looked for at the datagram's end first, then anywhere after
	 * the first line): not when they never end, also when the last bytes
	 * come close; yes with a body after the empty line, or nothing else. */
	{
		static const struct { const char *msg; int rc; } acks[] = {
			{"ACK sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n", -1},
			{"ACK sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r", -1},
			{"ACK sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\n\r\n", -1},
			{"ACK sip:a@b SIP/2.0\r\n\r\n", 0},
			{"ACK sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\nbody", 0},
			{"ACK sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n", 0},
			{"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n", -1},
			{"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n\r\nv=0", 0},
		};

		for (size_t i = 0; i < sizeof acks / sizeof acks[0]; i++) {
			int rc = sipmsg_parse(&m, acks[i].msg, strlen(acks[i].msg),
					      false, &why);

			if (rc != acks[i].rc)
				fprintf(stderr, "  message %zu\n", i);
			UT_ASSERT_INT(rc, acks[i].rc);
			if (rc)
				UT_ASSERT_STR(why, "no end of headers");
		}
	}
	/* a NUL in the Request-URI */
	{
		static const char r[] = "INVITE sip:10\0""01@127.0.0.1 SIP/2.0\r\n"
			"Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK-1\r\n"
			"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: y\r\n"
			"CSeq: 1 INVITE\r\n\r\n";

		UT_ASSERT_INT(sipmsg_parse(&m, r, sizeof r - 1, false, &why), 400);
	}
	/* NUL is no token character (it once was: strchr finds the
	 * terminator): not in a method, not in a Via parameter name */
	{
		static const char r1[] = "FRO\0B sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n"
			"From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: z\r\n"
			"CSeq: 1 FRO\0B\r\n\r\n";
		static const char r2[] = "INVITE sip:a@b SIP/2.0\r\n"
			"Via: SIP/2.0/UDP h;br\0nch=z9hG4bK-1\r\n"
			"From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: z\r\n"
			"CSeq: 1 INVITE\r\n\r\n";

		UT_ASSERT_INT(sipmsg_parse(&m, r1, sizeof r1 - 1, false, &why), -1);
		UT_ASSERT_INT(sipmsg_parse(&m, r2, sizeof r2 - 1, false, &why), -1);
		UT_ASSERT(strstr(why, "Via"));
	}
	/* an unknown method still parses: the router answers 501 */
	UT_ASSERT_INT(parse(&m, "FROBNICATE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n"
			  "From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: z\r\n"
			  "CSeq: 1 FROBNICATE\r\n\r\n", false), 0);
	UT_ASSERT_INT(m.method, SIPMSG_OTHER);
	return 0;
}

/* The header-line scanner reads 16 bytes a step where it can and byte by
 * byte near the end: a control character is found at any offset in a line
 * and at any distance from the end of the message; HTAB and bytes >= 0x80
 * are not control characters. */
int test_sipmsg_ctl_every_offset(void)
{
	static const char head[] =
		"INVITE sip:1001@127.0.0.1 SIP/2.0\r\n"
		"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n"
		"From: <sip:a@127.0.0.1>;tag=1\r\n"
		"To: <sip:1001@127.0.0.1>\r\n"
		"Call-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\nX-Pad: ";
	static const struct {
		char c;
		int status;
	} cases[] = {
		{'\0', 400}, {'\x01', 400}, {'\x1f', 400}, {'\x7f', 400}, {'\r', 400},
		{'\n', 400}, {'\t', 0},	  {' ', 0},	    {'~', 0},	   {(char)0x80, 0},
		{(char)0xff, 0},
	};
	static const size_t tails[] = {0, 1, 15, 16, 17, 40};
	char buf[512];
	struct sipmsg m;
	const char *why;

	for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
		for (size_t k = 0; k < 40; k++) {
			for (size_t ti = 0; ti < sizeof tails / sizeof tails[0]; ti++) {
				size_t n = sizeof head - 1;

				memcpy(buf, head, n);
				memset(buf + n, 'a', k);
				n += k;
				buf[n++] = cases[ci].c;
				memset(buf + n, 'z', tails[ti]);
				n += tails[ti];
				memcpy(buf + n, "\r\n\r\n", 4);
				n += 4;
				if (sipmsg_parse(&m, buf, n, false, &why) != cases[ci].status) {
					fprintf(stderr, "  byte 0x%02x after %zu bytes, %zu before "
						"the end of the line\n",
						(unsigned char)cases[ci].c, k, tails[ti]);
					return 1;
				}
			}
		}
	}
	return 0;
}

int test_sipmsg_frame(void)
{
	static const char two[] =
		"\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nl: 3\r\n\r\nabc"
		"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n";
	size_t len = 0, n = strlen(two);
	char big[SIPMSG_MAX + 64];

	UT_ASSERT_INT(sipmsg_frame(two, n, &len), 0);
	UT_ASSERT(!memcmp(two + len, "OPTIONS", 7));
	UT_ASSERT_INT(sipmsg_frame(two + len, n - len, &len), 0);
	UT_ASSERT_INT(len, strlen("OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n"));
	/* one byte short of the body, or of the headers: wait */
	UT_ASSERT_INT(sipmsg_frame(two, 39, &len), EAGAIN);
	UT_ASSERT_INT(sipmsg_frame(two, 20, &len), EAGAIN);
	UT_ASSERT_INT(sipmsg_frame("\r\n\r\n", 4, &len), EAGAIN);
	UT_ASSERT(sipmsg_is_keepalive("\r\n\r\n", 4));
	UT_ASSERT(!sipmsg_is_keepalive(two, n));
	/* a Content-Length that cannot be trusted: the header part, to answer */
	UT_ASSERT_INT(sipmsg_frame("OPTIONS a SIP/2.0\r\nl: -1\r\n\r\n", 28, &len), EBADMSG);
	UT_ASSERT_INT(len, 28);
	UT_ASSERT_INT(sipmsg_frame("OPTIONS a SIP/2.0\r\nl: 99999999999\r\n\r\n", 37, &len),
		      EBADMSG);
	UT_ASSERT_INT(sipmsg_frame("OPTIONS a SIP/2.0\r\nl: 4294967296\r\n\r\n", 36, &len),
		      EBADMSG);
	/* a length too large: the header part too, to answer 513 */
	UT_ASSERT_INT(sipmsg_frame("OPTIONS a SIP/2.0\r\nl: 98300\r\n\r\n", 31, &len),
		      EMSGSIZE);
	UT_ASSERT_INT(len, 31);
	UT_ASSERT_INT(sipmsg_frame("OPTIONS a SIP/2.0\r\nl: 4294967295\r\n\r\n", 36, &len),
		      EMSGSIZE);
	UT_ASSERT_INT(len, 36);
	/* one byte under the limit in all: framed (and waits for the body) */
	UT_ASSERT_INT(sipmsg_frame("OPTIONS a SIP/2.0\r\nl: 98273\r\n\r\n", 31, &len),
		      EAGAIN);
	UT_ASSERT_INT(sipmsg_frame("OPTIONS a SIP/2.0\r\nl: 98274\r\n\r\n", 31, &len),
		      EMSGSIZE);
	/* headers too long to find their end: nothing to answer */
	memset(big, 'a', sizeof big);
	memcpy(big, "OPTIONS a SIP/2.0\r\nX: ", 22);
	UT_ASSERT_INT(sipmsg_frame(big, sizeof big, &len), EMSGSIZE);
	UT_ASSERT_INT(len, 0);
	UT_ASSERT(sipmsg_stream_garbage("\xff\xfe garbage", 10));
	UT_ASSERT(sipmsg_stream_garbage("\r\n@INVITE", 9));
	UT_ASSERT(!sipmsg_stream_garbage("INVI", 4));
	UT_ASSERT(!sipmsg_stream_garbage("INVITE sip:", 11));
	UT_ASSERT(!sipmsg_stream_garbage("SIP/2.0 200", 11));
	return 0;
}

int test_sipmsg_reply_addr(void)
{
	struct sipmsg m;
	struct sockaddr_in src = ut_v4("127.0.0.5", 40000);
	struct sockaddr_storage dst;

	/* rport asked: the source port */
	UT_ASSERT_INT(parse(&m, INVITE, false), 0);
	sipmsg_reply_addr(&m, (struct sockaddr *)&src, &dst);
	UT_ASSERT_INT(ntohs(((struct sockaddr_in *)&dst)->sin_port), 40000);
	/* no rport: the sent-by port, at the source address */
	m.via_rport = false;
	sipmsg_reply_addr(&m, (struct sockaddr *)&src, &dst);
	UT_ASSERT_INT(ntohs(((struct sockaddr_in *)&dst)->sin_port), 5070);
	UT_ASSERT_INT(((struct sockaddr_in *)&dst)->sin_addr.s_addr, src.sin_addr.s_addr);
	m.via_port = 0;
	sipmsg_reply_addr(&m, (struct sockaddr *)&src, &dst);
	UT_ASSERT_INT(ntohs(((struct sockaddr_in *)&dst)->sin_port), 5060);
	return 0;
}
