/* test_sdp.c — SDP offers as baresip, SIPp and PBXs send them (IPv4 and
 * IPv6, hold, several m= lines, SRTP), the answers written for them line by
 * line, our own offer, and every way a body can be broken. */
#include "common/sdp.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

int test_sdp_baresip_offer(void);
int test_sdp_sipp_offer(void);
int test_sdp_ipv6(void);
int test_sdp_bad_addresses(void);
int test_sdp_hold(void);
int test_sdp_codec_choice(void);
int test_sdp_no_common_codec(void);
int test_sdp_no_audio(void);
int test_sdp_multi_media(void);
int test_sdp_srtp(void);
int test_sdp_garbage(void);
int test_sdp_answer_build_errors(void);
int test_sdp_offer_build(void);

/* Compares text, CRLF-separated, with the NULL-terminated lines of want,
 * reporting the first difference. */
static int lines_equal(const char *text, const char *const *want)
{
	const char *p = text;
	unsigned i;

	for (i = 0; want[i]; i++) {
		const char *e = strstr(p, "\r\n");
		size_t n = strlen(want[i]);

		if (!e || (size_t)(e - p) != n || memcmp(p, want[i], n) != 0) {
			fprintf(stderr, "  line %u: got \"%.*s\", want \"%s\"\n",
				i + 1, e ? (int)(e - p) : (int)strlen(p), p, want[i]);
			return 1;
		}
		p = e + 2;
	}
	if (*p) {
		fprintf(stderr, "  extra text: \"%s\"\n", p);
		return 1;
	}
	return 0;
}

/* sdp_offer_parse on a C string; frees any cause, reports it on failure. */
static int parse(struct sdp_offer *o, const char *s)
{
	char *cause = NULL;
	int err = sdp_offer_parse(o, s, strlen(s), &cause);

	if (err && !cause) {
		fprintf(stderr, "  error %d without a cause\n", err);
		err = -1;
	}
	free(cause);
	return err;
}

static const struct sdp_local local4 = {
	AF_INET, "127.0.0.1", 20000, 42, 1, "openum",
};
static const struct sdp_local local6 = {
	AF_INET6, "::1", 20002, 43, 2, NULL,
};

static const char baresip[] =
	"v=0\r\n"
	"o=- 1622738811 3212391802 IN IP4 127.0.0.1\r\n"
	"s=-\r\n"
	"c=IN IP4 127.0.0.1\r\n"
	"t=0 0\r\n"
	"m=audio 10000 RTP/AVP 96 0 8 101\r\n"
	"b=AS:104\r\n"
	"a=rtpmap:96 opus/48000/2\r\n"
	"a=fmtp:96 stereo=1;sprop-stereo=1\r\n"
	"a=rtpmap:0 PCMU/8000\r\n"
	"a=rtpmap:8 PCMA/8000\r\n"
	"a=rtpmap:101 telephone-event/8000\r\n"
	"a=fmtp:101 0-15\r\n"
	"a=sendrecv\r\n"
	"a=label:1\r\n"
	"a=ssrc:2049817393 cname:cde3c9ec-d5ee-4d38-a5d4-09c0e4b1c5a6\r\n"
	"a=rtcp-rsize\r\n"
	"a=ptime:20\r\n";

int test_sdp_baresip_offer(void)
{
	struct sdp_offer o;
	struct sdp_choice c;
	char buf[1024];
	static const char *const want[] = {
		"v=0",
		"o=openum 42 1 IN IP4 127.0.0.1",
		"s=OpenUM",
		"c=IN IP4 127.0.0.1",
		"t=0 0",
		"m=audio 20000 RTP/AVP 0 101",
		"a=rtpmap:0 PCMU/8000",
		"a=rtpmap:101 telephone-event/8000",
		"a=fmtp:101 0-16",
		"a=ptime:20",
		"a=sendrecv",
		NULL,
	};

	UT_ASSERT_INT(parse(&o, baresip), 0);
	UT_ASSERT_INT(o.family, AF_INET);
	UT_ASSERT_STR(o.addr, "127.0.0.1");
	UT_ASSERT_INT(o.port, 10000);
	UT_ASSERT(!o.savp);
	UT_ASSERT_INT(o.dir, SDP_SENDRECV);
	UT_ASSERT(!o.hold);
	UT_ASSERT_INT(o.pcmu_pt, 0);
	UT_ASSERT_INT(o.pcma_pt, 8);
	UT_ASSERT_INT(o.te_pt, 101);
	UT_ASSERT_INT(o.first, SDP_CODEC_PCMU);
	UT_ASSERT_INT(o.ptime, 20);
	UT_ASSERT_INT(o.npt, 4);
	UT_ASSERT_INT(o.pts[0], 96);
	UT_ASSERT_INT(o.pts[3], 101);
	UT_ASSERT_INT(o.ncrypto, 0);
	UT_ASSERT_INT(o.sess_id, 1622738811);
	UT_ASSERT_INT(o.sess_version, 3212391802u);
	UT_ASSERT_INT(o.nmedia, 1);
	UT_ASSERT_INT(o.audio, 0);

	UT_ASSERT_INT(sdp_answer_build(buf, sizeof buf, &o, &local4, &c), 0);
	UT_ASSERT(lines_equal(buf, want) == 0);
	UT_ASSERT_INT(c.codec, SDP_CODEC_PCMU);
	UT_ASSERT_INT(c.pt, 0);
	UT_ASSERT_INT(c.te_pt, 101);
	UT_ASSERT_INT(c.ptime, 20);
	UT_ASSERT_INT(c.dir, SDP_SENDRECV);
	UT_ASSERT(!c.hold);
	UT_ASSERT_INT(c.family, AF_INET);
	UT_ASSERT_STR(c.addr, "127.0.0.1");
	UT_ASSERT_INT(c.port, 10000);

	/* the answer parses back to the same choice */
	UT_ASSERT_INT(sdp_answer_parse(&o, buf, strlen(buf), NULL), 0);
	UT_ASSERT_INT(o.port, 20000);
	UT_ASSERT_INT(o.pcmu_pt, 0);
	UT_ASSERT_INT(o.pcma_pt, -1);
	UT_ASSERT_INT(o.te_pt, 101);
	return 0;
}

int test_sdp_sipp_offer(void)
{
	static const char sipp[] =
		"v=0\n"
		"o=user1 53655765 2353687637 IN IP4 127.0.0.1\n"
		"s=-\n"
		"c=IN IP4 127.0.0.1\n"
		"t=0 0\n"
		"m=audio 6000 RTP/AVP 0\n"
		"a=rtpmap:0 PCMU/8000\n";
	static const char *const want[] = {
		"v=0",
		"o=openum 42 1 IN IP4 127.0.0.1",
		"s=OpenUM",
		"c=IN IP4 127.0.0.1",
		"t=0 0",
		"m=audio 20000 RTP/AVP 0",
		"a=rtpmap:0 PCMU/8000",
		"a=ptime:20",
		"a=sendrecv",
		NULL,
	};
	struct sdp_offer o;
	struct sdp_choice c;
	char buf[1024];

	UT_ASSERT_INT(parse(&o, sipp), 0);
	UT_ASSERT_INT(o.port, 6000);
	UT_ASSERT_INT(o.pcmu_pt, 0);
	UT_ASSERT_INT(o.pcma_pt, -1);
	UT_ASSERT_INT(o.te_pt, -1);
	UT_ASSERT_INT(o.ptime, 0);
	UT_ASSERT_INT(sdp_answer_build(buf, sizeof buf, &o, &local4, &c), 0);
	UT_ASSERT(lines_equal(buf, want) == 0);
	UT_ASSERT_INT(c.te_pt, -1);

	/* without the rtpmap line: PT 0 is PCMU by RFC 3551 */
	UT_ASSERT_INT(parse(&o, "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\n"
			  "c=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"), 0);
	UT_ASSERT_INT(o.pcmu_pt, 0);
	UT_ASSERT_STR(o.addr, "10.0.0.1");
	return 0;
}

int test_sdp_ipv6(void)
{
	static const char v6[] =
		"v=0\r\n"
		"o=- 1 1 IN IP6 ::1\r\n"
		"s=-\r\n"
		"c=IN IP6 ::1\r\n"
		"t=0 0\r\n"
		"m=audio 10000 RTP/AVP 8 0 101\r\n"
		"a=rtpmap:101 telephone-event/8000\r\n";
	static const char *const want[] = {
		"v=0",
		"o=- 43 2 IN IP6 ::1",
		"s=OpenUM",
		"c=IN IP6 ::1",
		"t=0 0",
		"m=audio 20002 RTP/AVP 8 101",
		"a=rtpmap:8 PCMA/8000",
		"a=rtpmap:101 telephone-event/8000",
		"a=fmtp:101 0-16",
		"a=ptime:20",
		"a=sendrecv",
		NULL,
	};
	struct sdp_offer o;
	struct sdp_choice c;
	char buf[1024];
	struct sdp_local l = local6;

	UT_ASSERT_INT(parse(&o, v6), 0);
	UT_ASSERT_INT(o.family, AF_INET6);
	UT_ASSERT_STR(o.addr, "::1");
	UT_ASSERT_INT(o.first, SDP_CODEC_PCMA);
	UT_ASSERT_INT(sdp_answer_build(buf, sizeof buf, &o, &local6, &c), 0);
	UT_ASSERT(lines_equal(buf, want) == 0);
	UT_ASSERT(!strchr(buf, '['));
	UT_ASSERT_INT(c.family, AF_INET6);
	UT_ASSERT_STR(c.addr, "::1");
	UT_ASSERT_INT(c.codec, SDP_CODEC_PCMA);

	/* a long global address, media-level c= over a session-level one */
	UT_ASSERT_INT(parse(&o, "v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\n"
			  "c=IN IP6 2001:db8::1\r\nt=0 0\r\n"
			  "m=audio 10000 RTP/AVP 0\r\n"
			  "c=IN IP6 2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff\r\n"), 0);
	UT_ASSERT_STR(o.addr, "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff");
	l.addr = "2001:db8::53";
	UT_ASSERT_INT(sdp_answer_build(buf, sizeof buf, &o, &l, &c), 0);
	UT_ASSERT(strstr(buf, "\r\nc=IN IP6 2001:db8::53\r\n"));
	UT_ASSERT(strstr(buf, "\r\no=- 43 2 IN IP6 2001:db8::53\r\n"));

	/* an IPv6 offer is never answered from an IPv4 socket, nor the reverse */
	UT_ASSERT_INT(sdp_answer_build(buf, sizeof buf, &o, &local4, &c), EAFNOSUPPORT);
	UT_ASSERT_INT(parse(&o, baresip), 0);
	UT_ASSERT_INT(sdp_answer_build(buf, sizeof buf, &o, &local6, &c), EAFNOSUPPORT);
	return 0;
}

int test_sdp_bad_addresses(void)
{
	static const char *const bad[] = {
		"c=IN IP6 [::1]",
		"c=IN IP6 [2001:db8::1]",
		"c=IN IP4 ::1",
		"c=IN IP6 127.0.0.1",
		"c=IN IP4 [127.0.0.1]",
		"c=IN IP4 pbx.example.com",
		"c=IN IP4 127.0.0.1:4000",
		"c=IN IP4 300.1.1.1",
	};
	struct sdp_offer o;
	char body[512], *cause;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		/* session level */
		snprintf(body, sizeof body, "v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\n"
			 "%s\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", bad[i]);
		cause = NULL;
		UT_ASSERT_INT(sdp_offer_parse(&o, body, strlen(body), &cause), EBADMSG);
		UT_ASSERT(cause != NULL);
		free(cause);
		/* media level */
		snprintf(body, sizeof body, "v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\n"
			 "t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n%s\r\n", bad[i]);
		UT_ASSERT_INT(parse(&o, body), EBADMSG);
	}
	/* the cause names the brackets */
	cause = NULL;
	snprintf(body, sizeof body, "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\n"
		 "c=IN IP6 [::1]\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n");
	UT_ASSERT_INT(sdp_offer_parse(&o, body, strlen(body), &cause), EBADMSG);
	UT_ASSERT(cause && strstr(cause, "brackets"));
	free(cause);

	/* multicast: valid SDP, not for us */
	UT_ASSERT_INT(parse(&o, "v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\n"
			  "c=IN IP4 224.2.1.1/127\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"),
		      ENOTSUP);
	UT_ASSERT_INT(parse(&o, "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\n"
			  "c=IN IP6 ff0e::1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"),
		      ENOTSUP);
	return 0;
}

/* Parses body, builds the answer; checks hold, the offer's and the
 * answer's direction. */
static int hold_case(const char *body, bool hold, enum sdp_dir theirs,
		     const char *our_line, enum sdp_dir ours)
{
	struct sdp_offer o;
	struct sdp_choice c;
	char buf[1024], line[40];

	UT_ASSERT_INT(parse(&o, body), 0);
	UT_ASSERT_INT(o.hold, hold);
	UT_ASSERT_INT(o.dir, theirs);
	UT_ASSERT_INT(sdp_answer_build(buf, sizeof buf, &o, &local4, &c), 0);
	snprintf(line, sizeof line, "\r\n%s\r\n", our_line);
	UT_ASSERT(strstr(buf, line) != NULL);
	UT_ASSERT_INT(c.dir, ours);
	UT_ASSERT_INT(c.hold, hold);
	/* exactly one direction attribute */
	UT_ASSERT(strstr(buf, "a=sendrecv") == NULL || ours == SDP_SENDRECV);
	return 0;
}

int test_sdp_hold(void)
{
#define HDR "v=0\r\no=- 1 2 IN IP4 10.1.1.1\r\ns=-\r\n"
	UT_ASSERT(hold_case(HDR "c=IN IP4 10.1.1.1\r\nt=0 0\r\n"
			    "m=audio 4000 RTP/AVP 0\r\na=sendonly\r\n",
			    true, SDP_SENDONLY, "a=recvonly", SDP_RECVONLY) == 0);
	UT_ASSERT(hold_case(HDR "c=IN IP4 10.1.1.1\r\nt=0 0\r\n"
			    "m=audio 4000 RTP/AVP 0\r\na=inactive\r\n",
			    true, SDP_INACTIVE, "a=inactive", SDP_INACTIVE) == 0);
	UT_ASSERT(hold_case(HDR "c=IN IP4 10.1.1.1\r\nt=0 0\r\na=sendonly\r\n"
			    "m=audio 4000 RTP/AVP 0\r\n",
			    true, SDP_SENDONLY, "a=recvonly", SDP_RECVONLY) == 0);
	/* RFC 2543 hold: c=0.0.0.0 — there is no one to send to */
	UT_ASSERT(hold_case(HDR "c=IN IP4 0.0.0.0\r\nt=0 0\r\n"
			    "m=audio 4000 RTP/AVP 0\r\n",
			    true, SDP_SENDRECV, "a=recvonly", SDP_RECVONLY) == 0);
	UT_ASSERT(hold_case(HDR "c=IN IP4 0.0.0.0\r\nt=0 0\r\n"
			    "m=audio 4000 RTP/AVP 0\r\na=sendonly\r\n",
			    true, SDP_SENDONLY, "a=recvonly", SDP_RECVONLY) == 0);
	/* recvonly from the offerer is not hold: we only send */
	UT_ASSERT(hold_case(HDR "c=IN IP4 10.1.1.1\r\nt=0 0\r\n"
			    "m=audio 4000 RTP/AVP 0\r\na=recvonly\r\n",
			    false, SDP_RECVONLY, "a=sendonly", SDP_SENDONLY) == 0);
	/* unhold */
	UT_ASSERT(hold_case(HDR "c=IN IP4 10.1.1.1\r\nt=0 0\r\n"
			    "m=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n",
			    false, SDP_SENDRECV, "a=sendrecv", SDP_SENDRECV) == 0);
#undef HDR
	return 0;
}

int test_sdp_codec_choice(void)
{
#define HDR "v=0\r\no=- 1 2 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\n"
	struct sdp_offer o;
	struct sdp_choice c;
	char buf[1024];

	/* the offerer's order decides between PCMU and PCMA */
	UT_ASSERT_INT(parse(&o, HDR "m=audio 4000 RTP/AVP 18 8 0\r\n"), 0);
	UT_ASSERT_INT(sdp_choose(&c, &o), 0);
	UT_ASSERT_INT(c.codec, SDP_CODEC_PCMA);
	UT_ASSERT_INT(c.pt, 8);
	UT_ASSERT_INT(parse(&o, HDR "m=audio 4000 RTP/AVP 8\r\n"), 0);
	UT_ASSERT_INT(sdp_choose(&c, &o), 0);
	UT_ASSERT_INT(c.codec, SDP_CODEC_PCMA);

	/* PCMU on a dynamic payload type, names in any case */
	UT_ASSERT_INT(parse(&o, HDR "m=audio 4000 RTP/AVP 98 97\r\n"
			  "a=rtpmap:98 pcmu/8000/1\r\na=rtpmap:97 Telephone-Event/8000\r\n"), 0);
	UT_ASSERT_INT(sdp_answer_build(buf, sizeof buf, &o, &local4, &c), 0);
	UT_ASSERT_INT(c.pt, 98);
	UT_ASSERT_INT(c.te_pt, 97);
	UT_ASSERT(strstr(buf, "\r\nm=audio 20000 RTP/AVP 98 97\r\n"
			 "a=rtpmap:98 PCMU/8000\r\n"
			 "a=rtpmap:97 telephone-event/8000\r\n"
			 "a=fmtp:97 0-16\r\n"));

	/* telephone-event at 16 kHz is not ours; ptime at session level */
	UT_ASSERT_INT(parse(&o, HDR "a=ptime:30\r\nm=audio 4000 RTP/AVP 0 100\r\n"
			  "a=rtpmap:100 telephone-event/16000\r\n"), 0);
	UT_ASSERT_INT(o.te_pt, -1);
	UT_ASSERT_INT(o.ptime, 30);
	/* PCMU at another rate or with two channels is not G.711 */
	UT_ASSERT_INT(parse(&o, HDR "m=audio 4000 RTP/AVP 96 97\r\n"
			  "a=rtpmap:96 PCMU/16000\r\na=rtpmap:97 PCMA/8000/2\r\n"),
		      ENOTSUP);
#undef HDR
	return 0;
}

int test_sdp_no_common_codec(void)
{
	struct sdp_offer o, keep;
	char *cause = NULL;
	static const char g729[] =
		"v=0\r\no=- 1 2 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\n"
		"m=audio 4000 RTP/AVP 18 101\r\na=rtpmap:18 G729/8000\r\n"
		"a=rtpmap:101 telephone-event/8000\r\n";

	memset(&o, 0x5a, sizeof o);
	keep = o;
	UT_ASSERT_INT(sdp_offer_parse(&o, g729, strlen(g729), &cause), ENOTSUP);
	UT_ASSERT(cause != NULL);
	free(cause);
	UT_ASSERT(memcmp(&o, &keep, sizeof o) == 0);
	/* a static PT renamed by its rtpmap counts as what the rtpmap says */
	UT_ASSERT_INT(parse(&o, "v=0\r\no=- 1 2 IN IP4 10.1.1.1\r\ns=-\r\n"
			  "c=IN IP4 10.1.1.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
			  "a=rtpmap:0 G729/8000\r\n"), ENOTSUP);
	/* audio over another transport only */
	UT_ASSERT_INT(parse(&o, "v=0\r\no=- 1 2 IN IP4 10.1.1.1\r\ns=-\r\n"
			  "c=IN IP4 10.1.1.1\r\nt=0 0\r\n"
			  "m=audio 4000 UDP/TLS/RTP/SAVPF 0\r\n"), ENOTSUP);
	return 0;
}

int test_sdp_no_audio(void)
{
	struct sdp_offer o;

	UT_ASSERT_INT(parse(&o, "v=0\r\no=- 1 2 IN IP4 10.1.1.1\r\ns=-\r\n"
			  "c=IN IP4 10.1.1.1\r\nt=0 0\r\n"
			  "m=video 4000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"),
		      ENOENT);
	/* audio rejected with port 0 */
	UT_ASSERT_INT(parse(&o, "v=0\r\no=- 1 2 IN IP4 10.1.1.1\r\ns=-\r\n"
			  "c=IN IP4 10.1.1.1\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n"),
		      ENOENT);
	/* no m= at all */
	UT_ASSERT_INT(parse(&o, "v=0\r\no=- 1 2 IN IP4 10.1.1.1\r\ns=-\r\n"
			  "c=IN IP4 10.1.1.1\r\nt=0 0\r\n"), ENOENT);
	return 0;
}

int test_sdp_multi_media(void)
{
	static const char offer[] =
		"v=0\r\n"
		"o=- 1 2 IN IP4 10.1.1.1\r\n"
		"s=-\r\n"
		"c=IN IP4 10.1.1.1\r\n"
		"t=0 0\r\n"
		"m=video 5000 RTP/AVP 96 97\r\n"
		"a=rtpmap:96 H264/90000\r\n"
		"m=audio 0 RTP/AVP 0\r\n"
		"m=audio 4000 RTP/AVP 0 8\r\n"
		"c=IN IP4 10.2.2.2\r\n"
		"m=application 6000 UDP/BFCP *\r\n";
	static const char *const want[] = {
		"v=0",
		"o=openum 42 1 IN IP4 127.0.0.1",
		"s=OpenUM",
		"c=IN IP4 127.0.0.1",
		"t=0 0",
		"m=video 0 RTP/AVP 96",
		"m=audio 0 RTP/AVP 0",
		"m=audio 20000 RTP/AVP 0",
		"a=rtpmap:0 PCMU/8000",
		"a=ptime:20",
		"a=sendrecv",
		"m=application 0 UDP/BFCP *",
		NULL,
	};
	struct sdp_offer o;
	struct sdp_choice c;
	char buf[1024];

	UT_ASSERT_INT(parse(&o, offer), 0);
	UT_ASSERT_INT(o.nmedia, 4);
	UT_ASSERT_INT(o.audio, 2);
	UT_ASSERT_STR(o.addr, "10.2.2.2");
	UT_ASSERT_INT(o.port, 4000);
	UT_ASSERT_INT(sdp_answer_build(buf, sizeof buf, &o, &local4, &c), 0);
	UT_ASSERT(lines_equal(buf, want) == 0);

	/* more m= lines than SDP_MEDIA_MAX */
	{
		char big[2048];
		size_t n = (size_t)snprintf(big, sizeof big, "v=0\r\no=- 1 2 IN IP4 10.1.1.1\r\n"
					    "s=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\n");

		for (int i = 0; i <= SDP_MEDIA_MAX; i++)
			n += (size_t)snprintf(big + n, sizeof big - n,
					      "m=audio %d RTP/AVP 0\r\n", 4000 + 2 * i);
		UT_ASSERT_INT(parse(&o, big), EBADMSG);
	}
	return 0;
}

int test_sdp_srtp(void)
{
	static const char savp[] =
		"v=0\r\no=- 1 2 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\n"
		"m=audio 4000 RTP/SAVP 0 101\r\n"
		"a=rtpmap:101 telephone-event/8000\r\n"
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n"
		"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:4\r\n";
	struct sdp_offer o;
	struct sdp_choice c;
	char buf[1024];

	UT_ASSERT_INT(parse(&o, savp), 0);
	UT_ASSERT(o.savp);
	UT_ASSERT_INT(o.ncrypto, 2);
	UT_ASSERT_STR(o.crypto[0], "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4");
	UT_ASSERT(strncmp(o.crypto[1], "2 AES_CM_128_HMAC_SHA1_32 ", 26) == 0);
	/* no SRTP yet: 488 */
	UT_ASSERT_INT(sdp_answer_build(buf, sizeof buf, &o, &local4, &c), ENOTSUP);

	/* best-effort SRTP: an RTP/AVP alternative is preferred */
	{
		char both[1024];

		snprintf(both, sizeof both, "%sm=audio 4002 RTP/AVP 0\r\n", savp);
		UT_ASSERT_INT(parse(&o, both), 0);
		UT_ASSERT(!o.savp);
		UT_ASSERT_INT(o.port, 4002);
		UT_ASSERT_INT(o.audio, 1);
		UT_ASSERT_INT(sdp_answer_build(buf, sizeof buf, &o, &local4, &c), 0);
		UT_ASSERT(strstr(buf, "t=0 0\r\nm=audio 0 RTP/SAVP 0\r\nm=audio 20000 RTP/AVP 0\r\n"));
	}
	return 0;
}

int test_sdp_garbage(void)
{
	static const char *const bad[] = {
		"hello",
		"v=0",
		"v=0\r\n",
		"\r\n\r\n",
		"v=0\r\no=- 1 2 IN IP4 10.1.1.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
		"v=0\r\no=- 1 2 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\n"
		"m=audio 99999 RTP/AVP 0\r\n",
		"v=0\r\no=- 1 2 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\n"
		"m=audio 4000 RTP/AVP 0\r\na=crypto:\r\n",
		/* m= lines that send sofia-sip's format-list parser into an
		 * endless allocating loop (found by fuzz_sdp) */
		"v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nc=IN IP4 1.1.1.1\r\nt=0 0\r\n"
		"m=audio 1 X @\r\n",
		"v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nc=IN IP4 1.1.1.1\r\nt=0 0\r\n"
		"m=audio 1 X\t\t\r\n",
		"v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nc=IN IP4 1.1.1.1\r\nt=0 0\r\n"
		"m=audio 1 X@@ 0\r\n",
		"v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nc=IN IP4 1.1.1.1\r\nt=0 0\r\n"
		"m=audio 10000crypT8AV / 0 101\r\n",
		"v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\n"
		"m=audio 10000 R:TP/AVP 8 0 101\xfe\xff\xff\xf3\r\n",
		"v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nc=IN IP4 1.1.1.1\r\nt=0 0\r\n"
		"  m=audio 1 RTP/AVP 0 \r\n",
		"v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nc=IN IP4 1.1.1.1\r\nt=0 0\r\n"
		"m=audio 1 RTP/AVP\r\n",
	};
	struct sdp_offer o;
	char *cause;
	size_t n = strlen(baresip);

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cause = NULL;
		UT_ASSERT_INT(sdp_offer_parse(&o, bad[i], strlen(bad[i]), &cause), EBADMSG);
		UT_ASSERT(cause != NULL);
		free(cause);
	}
	UT_ASSERT_INT(sdp_offer_parse(&o, "", 0, NULL), EBADMSG);
	UT_ASSERT_INT(sdp_offer_parse(&o, NULL, 0, NULL), EBADMSG);
	UT_ASSERT_INT(sdp_offer_parse(NULL, baresip, n, NULL), EINVAL);
	/* an embedded NUL */
	UT_ASSERT_INT(sdp_offer_parse(&o, "v=0\0\r\n", 6, NULL), EBADMSG);
	/* too long */
	{
		char *big = malloc(SDP_BODY_MAX + 2);

		UT_ASSERT(big);
		memcpy(big, baresip, n);
		memset(big + n, '\n', SDP_BODY_MAX + 1 - n);
		UT_ASSERT_INT(sdp_offer_parse(&o, big, SDP_BODY_MAX, NULL), 0);
		UT_ASSERT_INT(sdp_offer_parse(&o, big, SDP_BODY_MAX + 1, NULL), EBADMSG);
		free(big);
	}
	/* every truncation: a defined answer, never a crash ("m=audio 10000
	 * RTP/AVP 96" offers opus only: ENOTSUP); cut before the m= line, no
	 * audio; cut inside the c= line, malformed */
	for (size_t k = 0; k < n; k++) {
		int err;

		cause = NULL;
		err = sdp_offer_parse(&o, baresip, k, &cause);
		UT_ASSERT(err == 0 || err == EBADMSG || err == ENOENT ||
			  err == ENOTSUP);
		UT_ASSERT(err == 0 || cause != NULL);
		free(cause);
	}
	UT_ASSERT_INT(sdp_offer_parse(&o, baresip, (size_t)(strstr(baresip, "m=") - baresip), NULL),
		      ENOENT);
	UT_ASSERT_INT(sdp_offer_parse(&o, baresip, (size_t)(strstr(baresip, "c=") - baresip) + 12, NULL),
		      EBADMSG);
	return 0;
}

int test_sdp_answer_build_errors(void)
{
	struct sdp_offer o;
	struct sdp_choice c;
	struct sdp_local l = local4;
	char buf[1024];

	UT_ASSERT_INT(parse(&o, baresip), 0);
	l.addr = "[127.0.0.1]";
	UT_ASSERT_INT(sdp_answer_build(buf, sizeof buf, &o, &l, &c), EINVAL);
	l.addr = "localhost";
	UT_ASSERT_INT(sdp_answer_build(buf, sizeof buf, &o, &l, &c), EINVAL);
	l.addr = "::1"; /* an IPv6 literal claimed as IPv4 */
	UT_ASSERT_INT(sdp_answer_build(buf, sizeof buf, &o, &l, &c), EINVAL);
	l = local6;
	l.addr = "[::1]";
	UT_ASSERT_INT(sdp_answer_build(buf, sizeof buf, &o, &l, &c), EINVAL);
	l = local4;
	l.username = "a b";
	UT_ASSERT_INT(sdp_answer_build(buf, sizeof buf, &o, &l, &c), EINVAL);
	UT_ASSERT_INT(sdp_answer_build(buf, sizeof buf, &o, NULL, &c), EINVAL);
	UT_ASSERT_INT(sdp_answer_build(buf, sizeof buf, NULL, &local4, &c), EINVAL);
	/* too small a buffer: ENOSPC and an empty string */
	memset(&c, 0x5a, sizeof c);
	UT_ASSERT_INT(sdp_answer_build(buf, 100, &o, &local4, &c), ENOSPC);
	UT_ASSERT_STR(buf, "");
	UT_ASSERT_INT(c.port, 0x5a5a);
	return 0;
}

int test_sdp_offer_build(void)
{
	static const char *const want[] = {
		"v=0",
		"o=- 43 2 IN IP6 ::1",
		"s=OpenUM",
		"c=IN IP6 ::1",
		"t=0 0",
		"m=audio 20002 RTP/AVP 0 8 101",
		"a=rtpmap:0 PCMU/8000",
		"a=rtpmap:8 PCMA/8000",
		"a=rtpmap:101 telephone-event/8000",
		"a=fmtp:101 0-16",
		"a=ptime:20",
		"a=sendrecv",
		NULL,
	};
	struct sdp_offer o;
	struct sdp_choice c;
	char buf[1024];
	char *cause = NULL;
	/* baresip answering our offer: PCMA, its own telephone-event PT */
	static const char answer[] =
		"v=0\r\no=- 7 7 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\n"
		"m=audio 10002 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
		"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

	UT_ASSERT_INT(sdp_offer_build(buf, sizeof buf, &local6), 0);
	UT_ASSERT(lines_equal(buf, want) == 0);
	UT_ASSERT_INT(sdp_offer_parse(&o, buf, strlen(buf), NULL), 0);
	UT_ASSERT_INT(o.pcmu_pt, 0);
	UT_ASSERT_INT(o.pcma_pt, 8);
	UT_ASSERT_INT(o.te_pt, 101);
	UT_ASSERT_INT(o.family, AF_INET6);

	UT_ASSERT_INT(sdp_answer_parse(&o, answer, strlen(answer), &cause), 0);
	UT_ASSERT_INT(sdp_choose(&c, &o), 0);
	UT_ASSERT_INT(c.codec, SDP_CODEC_PCMA);
	UT_ASSERT_INT(c.te_pt, 101);
	UT_ASSERT_INT(c.port, 10002);
	UT_ASSERT_STR(c.addr, "::1");
	UT_ASSERT_INT(c.dir, SDP_SENDRECV);

	UT_ASSERT_INT(sdp_offer_build(buf, 50, &local4), ENOSPC);
	UT_ASSERT_INT(sdp_offer_build(buf, sizeof buf, NULL), EINVAL);
	return 0;
}
