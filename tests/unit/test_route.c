/* test_route.c — the router's pure decisions: which instance, which of its
 * endpoints goes in the Contact (family, scope, transport), the Contact
 * text. */
#include "callrouter/registry.h"
#include "callrouter/routepick.h"
#include "tests/unit/unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>

int test_route_pick_endpoint(void);
int test_route_choose(void);
int test_route_contact(void);

#define V4 OPENUM__ADDRESS_FAMILY__AF_IPV4
#define V6 OPENUM__ADDRESS_FAMILY__AF_IPV6
#define UDP OPENUM__TRANSPORT__TRANSPORT_UDP
#define TCP OPENUM__TRANSPORT__TRANSPORT_TCP

static void ep(struct reg_instance *in, int fam, int tr, const char *host)
{
	if (reg_endpoint_init(&in->ep[in->n_ep], fam, tr, host, 5062) == 0)
		in->n_ep++;
}

static struct sockaddr_storage addr(const char *s)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof ss);
	if (strchr(s, ':')) {
		ss.ss_family = AF_INET6;
		inet_pton(AF_INET6, s, &((struct sockaddr_in6 *)&ss)->sin6_addr);
	} else {
		ss.ss_family = AF_INET;
		inet_pton(AF_INET, s, &((struct sockaddr_in *)&ss)->sin_addr);
	}
	return ss;
}

static void dual(struct reg_instance *in)
{
	memset(in, 0, sizeof *in);
	ep(in, V4, UDP, "192.0.2.2");
	ep(in, V4, TCP, "192.0.2.2");
	ep(in, V4, UDP, "127.0.0.1");
	ep(in, V4, TCP, "127.0.0.1");
	ep(in, V6, UDP, "fd00::2");
	ep(in, V6, TCP, "fd00::2");
	ep(in, V6, UDP, "::1");
	ep(in, V6, TCP, "::1");
}

int test_route_pick_endpoint(void)
{
	struct reg_instance in;
	const struct reg_endpoint *e;
	struct sockaddr_storage lo4 = addr("127.0.0.1"), lo6 = addr("::1"),
				ext6 = addr("fd00::2"), other4 = addr("198.51.100.7");

	dual(&in);
	/* loopback caller, same address */
	e = route_pick_endpoint(&in, (struct sockaddr *)&lo4, AF_INET, UDP);
	UT_ASSERT(e && !strcmp(e->host, "127.0.0.1") && e->transport == UDP);
	e = route_pick_endpoint(&in, (struct sockaddr *)&lo6, AF_INET6, TCP);
	UT_ASSERT(e && !strcmp(e->host, "::1") && e->transport == TCP);
	/* external IPv6 caller gets the external address, never ::1 */
	e = route_pick_endpoint(&in, (struct sockaddr *)&ext6, AF_INET6, UDP);
	UT_ASSERT(e && !strcmp(e->host, "fd00::2"));
	/* router on another address: same scope (non-loopback) */
	e = route_pick_endpoint(&in, (struct sockaddr *)&other4, AF_INET, TCP);
	UT_ASSERT(e && !strcmp(e->host, "192.0.2.2") && e->transport == TCP);
	/* an IPv4-only instance has nothing for an IPv6 call */
	memset(&in, 0, sizeof in);
	ep(&in, V4, UDP, "127.0.0.1");
	UT_ASSERT(route_pick_endpoint(&in, (struct sockaddr *)&lo6, AF_INET6, UDP) == NULL);
	/* only TCP: a UDP call still gets the TCP endpoint of its family */
	memset(&in, 0, sizeof in);
	ep(&in, V6, TCP, "::1");
	e = route_pick_endpoint(&in, (struct sockaddr *)&lo6, AF_INET6, UDP);
	UT_ASSERT(e && e->transport == TCP);
	/* loopback-only instance, remote caller: no Contact it could reach */
	memset(&in, 0, sizeof in);
	ep(&in, V4, UDP, "127.0.0.1");
	UT_ASSERT(route_pick_endpoint(&in, (struct sockaddr *)&other4, AF_INET, UDP) == NULL);
	/* the same address written another way is still the same address */
	memset(&in, 0, sizeof in);
	ep(&in, V6, UDP, "fd00::2");
	ep(&in, V6, UDP, "0:0:0:0:0:0:0:1");
	e = route_pick_endpoint(&in, (struct sockaddr *)&lo6, AF_INET6, UDP);
	UT_ASSERT(e && !strcmp(e->host, "0:0:0:0:0:0:0:1") && e->loopback);
	/* 127.0.0.0/8 is loopback, not only 127.0.0.1 */
	memset(&in, 0, sizeof in);
	ep(&in, V4, UDP, "127.0.0.2");
	UT_ASSERT(route_pick_endpoint(&in, (struct sockaddr *)&other4, AF_INET, UDP) == NULL);
	/* what an endpoint must be */
	UT_ASSERT(reg_endpoint_init(&in.ep[0], V6, UDP, "127.0.0.1", 5062) == EINVAL);
	UT_ASSERT(reg_endpoint_init(&in.ep[0], V4, UDP, "::1", 5062) == EINVAL);
	UT_ASSERT(reg_endpoint_init(&in.ep[0], V4, UDP, "127.0.0.1", 0) == EINVAL);
	UT_ASSERT(reg_endpoint_init(&in.ep[0], V4, UDP, "127.0.0.1", 65536) == EINVAL);
	UT_ASSERT(reg_endpoint_init(&in.ep[0], 0, UDP, "127.0.0.1", 5062) == EINVAL);
	UT_ASSERT(reg_endpoint_init(&in.ep[0], V4, UDP, NULL, 5062) == EINVAL);
	UT_ASSERT(reg_endpoint_init(&in.ep[0], V4, UDP, "host.example", 5062) == EINVAL);
	return 0;
}

int test_route_choose(void)
{
	struct registry *reg;
	struct reg_instance *a, *b, *got;
	Openum__ServiceRegister m = OPENUM__SERVICE_REGISTER__INIT;
	Openum__SipEndpoint e4 = OPENUM__SIP_ENDPOINT__INIT, e6 = OPENUM__SIP_ENDPOINT__INIT;
	Openum__SipEndpoint *eps[2] = {&e4, &e6};
	struct sockaddr_storage lo4 = addr("127.0.0.1"), lo6 = addr("::1");
	struct ipc_conn *ca = (struct ipc_conn *)0x1, *cb = (struct ipc_conn *)0x2;
	const struct reg_endpoint *ep_out;
	unsigned rr = 0, seen_a = 0, seen_b = 0;
	char *cause = NULL;

	UT_ASSERT_INT(reg_alloc(&reg), 0);
	e4.family = V4; e4.transport = UDP; e4.host = (char *)"127.0.0.1"; e4.port = 5062;
	e6.family = V6; e6.transport = UDP; e6.host = (char *)"::1"; e6.port = 5062;
	m.instance_id = (char *)"a"; m.endpoints = eps; m.n_endpoints = 2; m.max_calls_allowed = 2;
	UT_ASSERT_INT(reg_register(reg, ca, &m, &cause), 0);
	m.instance_id = (char *)"b"; m.n_endpoints = 1; /* IPv4 only */
	UT_ASSERT_INT(reg_register(reg, cb, &m, &cause), 0);
	/* a duplicate id from another connection is refused */
	UT_ASSERT_INT(reg_register(reg, (struct ipc_conn *)0x3, &m, &cause), EEXIST);
	free(cause);
	cause = NULL;
	a = reg_find_conn(reg, ca);
	b = reg_find_conn(reg, cb);
	/* every registration has its own serial; a re-registration (endpoints
	 * may have changed) gets a new one, and the old one finds nothing */
	UT_ASSERT(a->serial && b->serial && a->serial != b->serial);
	UT_ASSERT(reg_find_serial(reg, b->serial) == b);
	{
		unsigned old = b->serial;

		UT_ASSERT_INT(reg_register(reg, cb, &m, &cause), 0);
		UT_ASSERT(reg_find_conn(reg, cb) == b && b->serial > old);
		UT_ASSERT(reg_find_serial(reg, old) == NULL);
		UT_ASSERT(reg_find_serial(reg, b->serial) == b);
	}
	/* ties: round robin */
	for (int i = 0; i < 10; i++) {
		got = route_choose(reg, 0, (struct sockaddr *)&lo4, AF_INET, UDP, NULL, 0, &rr, &ep_out);
		UT_ASSERT(got);
		seen_a += got == a;
		seen_b += got == b;
	}
	UT_ASSERT_INT(seen_a, 5);
	UT_ASSERT_INT(seen_b, 5);
	/* least loaded first */
	a->active_calls = 1;
	got = route_choose(reg, 0, (struct sockaddr *)&lo4, AF_INET, UDP, NULL, 0, &rr, &ep_out);
	UT_ASSERT(got == b);
	/* IPv6 call: only a listens on IPv6 */
	got = route_choose(reg, 0, (struct sockaddr *)&lo6, AF_INET6, UDP, NULL, 0, &rr, &ep_out);
	UT_ASSERT(got == a && !strcmp(ep_out->host, "::1"));
	/* one that let an ack time out: others first while avoided, even
	 * busier ones; alone, still chosen; after the time, load decides */
	a->active_calls = 0;
	b->active_calls = 1;
	a->avoid_until_ms = 5000;
	for (int i = 0; i < 4; i++) {
		got = route_choose(reg, 4999, (struct sockaddr *)&lo4, AF_INET, UDP, NULL, 0, &rr,
				   &ep_out);
		UT_ASSERT(got == b);
	}
	{
		struct ipc_conn *ex[1] = {cb};

		got = route_choose(reg, 4999, (struct sockaddr *)&lo4, AF_INET, UDP, ex, 1, &rr,
				   &ep_out);
		UT_ASSERT(got == a);
	}
	b->avoid_until_ms = 6000;	/* both avoided: load decides again */
	got = route_choose(reg, 4999, (struct sockaddr *)&lo4, AF_INET, UDP, NULL, 0, &rr, &ep_out);
	UT_ASSERT(got == a);
	b->avoid_until_ms = 0;
	got = route_choose(reg, 5000, (struct sockaddr *)&lo4, AF_INET, UDP, NULL, 0, &rr, &ep_out);
	UT_ASSERT(got == a);
	a->avoid_until_ms = 0;
	b->active_calls = 0;
	/* full, not accepting, excluded */
	a->active_calls = 2;
	UT_ASSERT(route_choose(reg, 0, (struct sockaddr *)&lo6, AF_INET6, UDP, NULL, 0, &rr, &ep_out) == NULL);
	a->active_calls = 0;
	b->accepting = false;
	{
		struct ipc_conn *ex[1] = {ca};

		UT_ASSERT(route_choose(reg, 0, (struct sockaddr *)&lo4, AF_INET, UDP, ex, 1, &rr, &ep_out) == NULL);
	}
	/* a malformed registration is refused and changes nothing */
	e4.host = (char *)"not-an-address";
	m.instance_id = (char *)"c";
	UT_ASSERT_INT(reg_register(reg, (struct ipc_conn *)0x4, &m, &cause), EINVAL);
	UT_ASSERT(cause && strstr(cause, "not an address"));
	free(cause);
	UT_ASSERT_INT(reg_count(reg), 2);
	{
		unsigned gone = a->serial;

		UT_ASSERT_INT(reg_forget(reg, ca, NULL, 0), 0);
		UT_ASSERT_INT(reg_count(reg), 1);
		UT_ASSERT(reg_find_serial(reg, gone) == NULL);
	}
	reg_free(reg);
	return 0;
}

int test_route_contact(void)
{
	struct reg_instance in;
	char buf[256];

	memset(&in, 0, sizeof in);
	ep(&in, V6, TCP, "::1");
	ep(&in, V4, UDP, "127.0.0.1");
	UT_ASSERT_INT(route_contact(buf, sizeof buf, "1001", &in, &in.ep[0], "00ff"), 0);
	UT_ASSERT_STR(buf, "<sip:1001@[::1]:5062;transport=tcp;umtoken=00ff>");
	UT_ASSERT_INT(route_contact(buf, sizeof buf, "5000", &in, &in.ep[1], "ab"), 0);
	UT_ASSERT_STR(buf, "<sip:5000@127.0.0.1:5062;transport=udp;umtoken=ab>");
	snprintf(in.fqdn, sizeof in.fqdn, "um1.example.test");
	UT_ASSERT_INT(route_contact(buf, sizeof buf, "1001", &in, &in.ep[0], "ab"), 0);
	UT_ASSERT_STR(buf, "<sip:1001@um1.example.test:5062;transport=tcp;umtoken=ab>");
	UT_ASSERT_INT(route_contact(buf, 10, "1001", &in, &in.ep[0], "ab"), ENOSPC);
	/* a decoded user that would break the header is left out */
	UT_ASSERT_INT(route_contact(buf, sizeof buf, "10>01;x", &in, &in.ep[0], "ab"), 0);
	UT_ASSERT(!strchr(buf, '@') && !strstr(buf, "10>"));
	return 0;
}
