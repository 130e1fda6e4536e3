/* fuzz_sipmsg.c — libFuzzer harness of callrouter/sipmsg.c, the parser every
 * SIP byte the router receives meets: the input is framed as a TCP stream
 * and parsed as a datagram and as a stream message; whatever parses is
 * turned into the responses the router would send. Every span must lie in
 * the input, every output must fit its buffer. */
#include "callrouter/sipmsg.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *base, *limit;

static void in_input(struct sipmsg_str s)
{
	if (s.n && (s.p < base || s.p + s.n > limit))
		abort();
}

static void exercise(const char *buf, size_t n, bool stream)
{
	struct sipmsg m;
	const char *why = NULL;
	char echo[4096], resp[8192], user[65], join[512], tag[17];
	struct sockaddr_in6 src;
	struct sockaddr_storage dst;
	int st = sipmsg_parse(&m, buf, n, stream, &why);
	size_t e, r;

	if (st < 0 || m.response)
		return;
	if (st > 0 && (!why || st < 400 || st > 599))
		abort();
	in_input(m.top_via);
	in_input(m.via_host);
	in_input(m.branch);
	in_input(m.body);
	for (size_t i = 0; i < m.n_via; i++)
		in_input(m.via[i]);
	if (m.via_rport_end > m.top_via.n)
		abort();
	memset(&src, 0, sizeof src);
	src.sin6_family = AF_INET6;
	src.sin6_port = htons(5060);
	src.sin6_addr = in6addr_loopback;
	sipmsg_reply_addr(&m, (struct sockaddr *)&src, &dst);
	sipmsg_to_tag(&m, 42, tag);
	e = sipmsg_echo(echo, sizeof echo, &m, (struct sockaddr *)&src, tag);
	if (e >= sizeof echo)
		abort();
	r = sipmsg_response(resp, sizeof resp, 302, "Moved Temporarily", echo, e,
			    "Contact: <sip:1001@[::1]:5062>\r\n");
	if (r >= sizeof resp || (r && memcmp(resp, "SIP/2.0 302 ", 12)))
		abort();
	sipmsg_ruri_user(&m, user, sizeof user);
	sipmsg_to_user(&m, user, sizeof user);
	sipmsg_from_user(&m, user, sizeof user);
	if (strnlen(user, sizeof user) >= sizeof user)
		abort();
	if (sipmsg_join(m.diversion, m.n_diversion, join, sizeof join) &&
	    strnlen(join, sizeof join) >= sizeof join)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);	/* exact size: ASan sees overreads */
	size_t len = 0;
	int fr;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	base = buf;
	limit = buf + size;
	exercise(buf, size, false);
	fr = sipmsg_frame(buf, size, &len);
	if ((fr == 0 || fr == EBADMSG || fr == EMSGSIZE) && len > size)
		abort();
	if (fr == 0 || fr == EBADMSG || (fr == EMSGSIZE && len))
		exercise(buf, len, true);
	(void)sipmsg_stream_garbage(buf, size);
	(void)sipmsg_is_keepalive(buf, size);
	free(buf);
	return 0;
}
