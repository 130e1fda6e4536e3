/* test_outconn.c — the outbound connection policy on loopback: live
 * listeners, refused ports, and blackholes (a listener whose one-slot
 * accept queue is full: the kernel drops further SYNs, so a connect hangs
 * as toward a dead host), on 127.0.0.0/8 and ::1 only. */
#include "tests/unit/unit.h"
#include "common/outconn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

int test_outconn_order(void);
int test_outconn_literal(void);
int test_outconn_refused_then_live(void);
int test_outconn_stagger_dead_first(void);
int test_outconn_bad_list_expires(void);
int test_outconn_all_dead_deadline(void);
int test_outconn_ipv6_first(void);
int test_outconn_cancel(void);
int test_outconn_no_family(void);

struct listener {
	int fd;
	int filler;		/* the connection that fills a blackhole's queue */
	struct sockaddr_storage addr;
};

/* A listener on host: live (accepts) or a blackhole. */
static int listen_on(struct listener *l, const char *host, bool blackhole)
{
	socklen_t sl = sizeof l->addr;
	int fam = strchr(host, ':') ? AF_INET6 : AF_INET;

	memset(l, 0, sizeof *l);
	l->filler = -1;
	l->addr.ss_family = (sa_family_t)fam;
	if (fam == AF_INET6)
		inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&l->addr)->sin6_addr);
	else
		inet_pton(AF_INET, host, &((struct sockaddr_in *)&l->addr)->sin_addr);
	l->fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->fd < 0 ||
	    bind(l->fd, (struct sockaddr *)&l->addr,
		 fam == AF_INET6 ? sizeof(struct sockaddr_in6)
				 : sizeof(struct sockaddr_in)) != 0 ||
	    listen(l->fd, blackhole ? 0 : 16) != 0 ||
	    getsockname(l->fd, (struct sockaddr *)&l->addr, &sl) != 0)
		return -1;
	if (blackhole) {
		l->filler = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (l->filler < 0 ||
		    connect(l->filler, (struct sockaddr *)&l->addr, sl) != 0)
			return -1;
	}
	return 0;
}

/* An address whose port nobody listens on (bound, never listened). */
static int refused_on(struct listener *l, const char *host)
{
	socklen_t sl = sizeof l->addr;

	if (listen_on(l, host, false) != 0)
		return -1;
	close(l->fd);
	/* Keep the port ours without listening: bind a fresh socket. */
	l->fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&l->addr,
			      l->addr.ss_family == AF_INET6
				      ? sizeof(struct sockaddr_in6)
				      : sizeof(struct sockaddr_in)) != 0)
		return -1;
	(void)sl;
	return 0;
}

static void unlisten(struct listener *l)
{
	if (l->filler >= 0)
		close(l->filler);
	if (l->fd >= 0)
		close(l->fd);
}

struct outcome {
	bool called;
	unsigned calls;
	struct outconn_result r;
};

static void done_h(void *arg, const struct outconn_result *r)
{
	struct outcome *o = arg;

	o->called = true;
	o->calls++;
	o->r = *r;
}

/* Runs the loop until o is called (bounded by 15 s). */
static int run_until(uv_loop_t *loop, struct outcome *o)
{
	uint64_t end = uv_hrtime() + 15000000000ull;

	while (!o->called && uv_hrtime() < end)
		uv_run(loop, UV_RUN_ONCE);
	return o->called ? 0 : -1;
}

static int setup(uv_loop_t *loop, struct outconn **oc, unsigned stagger,
		 unsigned bad_s, unsigned timeout_ms)
{
	struct outconn_settings s = {stagger, bad_s, timeout_ms};

	if (uv_loop_init(loop) != 0 || outconn_alloc(oc, loop) != 0)
		return -1;
	return outconn_configure(*oc, "", &s, NULL);
}

static void teardown(uv_loop_t *loop, struct outconn *oc)
{
	outconn_free(oc);
	for (int i = 0; i < 100 && uv_run(loop, UV_RUN_NOWAIT); i++)
		;
	uv_loop_close(loop);
}

int test_outconn_order(void)
{
	struct sockaddr_storage a[5];
	size_t order[5];
	int fams[5] = {AF_INET, AF_INET6, AF_INET, AF_INET6, AF_INET6};

	memset(a, 0, sizeof a);
	for (int i = 0; i < 5; i++)
		a[i].ss_family = (sa_family_t)fams[i];
	UT_ASSERT_INT(outconn_order(a, 5, OUTCONN_V4 | OUTCONN_V6, order), 5);
	UT_ASSERT_INT(order[0], 1);
	UT_ASSERT_INT(order[1], 3);
	UT_ASSERT_INT(order[2], 4);
	UT_ASSERT_INT(order[3], 0);
	UT_ASSERT_INT(order[4], 2);
	UT_ASSERT_INT(outconn_order(a, 5, OUTCONN_V4, order), 2);
	UT_ASSERT_INT(order[0], 0);
	UT_ASSERT_INT(order[1], 2);
	UT_ASSERT_INT(outconn_order(a, 5, OUTCONN_V6, order), 3);
	UT_ASSERT_INT(order[0], 1);
	UT_ASSERT_INT(outconn_order(a, 5, 0, order), 0);
	return 0;
}

int test_outconn_literal(void)
{
	uv_loop_t loop;
	struct outconn *oc;
	struct listener live;
	struct outcome o = {0};
	char port[8];

	UT_ASSERT(setup(&loop, &oc, 250, 60, 0) == 0);
	UT_ASSERT(listen_on(&live, "127.0.0.1", false) == 0);
	snprintf(port, sizeof port, "%u",
		 ntohs(((struct sockaddr_in *)&live.addr)->sin_port));
	UT_ASSERT_INT(outconn_start(oc, "127.0.0.1", (unsigned)atoi(port),
				    OUTCONN_V4 | OUTCONN_V6, "test", done_h, &o,
				    NULL), 0);
	UT_ASSERT(!o.called);	/* never from inside outconn_start */
	UT_ASSERT(run_until(&loop, &o) == 0);
	UT_ASSERT_INT(o.r.err, 0);
	UT_ASSERT_INT(o.r.tried, 1);
	UT_ASSERT(strstr(o.r.addr_str, "127.0.0.1:") == o.r.addr_str);
	UT_ASSERT(strstr(o.r.addr_str, port) != NULL);
	/* Bad arguments are refused without a callback. */
	UT_ASSERT_INT(outconn_start(oc, "", 5060, OUTCONN_V4, "t", done_h, &o,
				    NULL), EINVAL);
	UT_ASSERT_INT(outconn_start(oc, "127.0.0.1", 0, OUTCONN_V4, "t",
				    done_h, &o, NULL), EINVAL);
	UT_ASSERT_INT(outconn_start(oc, "127.0.0.1", 5060, 0, "t", done_h, &o,
				    NULL), EINVAL);
	UT_ASSERT_INT(o.calls, 1);
	unlisten(&live);
	teardown(&loop, oc);
	return 0;
}

int test_outconn_refused_then_live(void)
{
	uv_loop_t loop;
	struct outconn *oc;
	struct listener dead, live;
	struct sockaddr_storage a[2];
	struct outcome o = {0};

	UT_ASSERT(setup(&loop, &oc, 1000, 60, 0) == 0);
	UT_ASSERT(refused_on(&dead, "127.0.0.2") == 0);
	UT_ASSERT(listen_on(&live, "127.0.0.3", false) == 0);
	a[0] = dead.addr;
	a[1] = live.addr;
	UT_ASSERT_INT(outconn_start_addrs(oc, a, 2, OUTCONN_V4, "test", done_h,
					  &o, NULL), 0);
	UT_ASSERT(run_until(&loop, &o) == 0);
	UT_ASSERT_INT(o.r.err, 0);
	UT_ASSERT_INT(o.r.tried, 2);
	/* A refusal starts the next address at once, not after the 1 s
	 * stagger. */
	UT_ASSERT(o.r.elapsed_ms < 500);
	UT_ASSERT(outconn_is_bad(oc, (struct sockaddr *)&dead.addr));
	UT_ASSERT(!outconn_is_bad(oc, (struct sockaddr *)&live.addr));
	unlisten(&dead);
	unlisten(&live);
	teardown(&loop, oc);
	return 0;
}

/* Two blackholes before a live address: the live one connects after about
 * two staggers, both dead ones go on the list, and the next round skips
 * them and connects at once. */
int test_outconn_stagger_dead_first(void)
{
	uv_loop_t loop;
	struct outconn *oc;
	struct listener d1, d2, live;
	struct sockaddr_storage a[3];
	struct outcome o = {0}, o2 = {0};

	UT_ASSERT(setup(&loop, &oc, 250, 60, 0) == 0);
	UT_ASSERT(listen_on(&d1, "127.0.0.2", true) == 0);
	UT_ASSERT(listen_on(&d2, "127.0.0.3", true) == 0);
	UT_ASSERT(listen_on(&live, "127.0.0.4", false) == 0);
	a[0] = d1.addr;
	a[1] = d2.addr;
	a[2] = live.addr;
	UT_ASSERT_INT(outconn_start_addrs(oc, a, 3, OUTCONN_V4, "test", done_h,
					  &o, NULL), 0);
	UT_ASSERT(run_until(&loop, &o) == 0);
	fprintf(stderr, "  two dead first: %llu ms\n",
		(unsigned long long)o.r.elapsed_ms);
	UT_ASSERT_INT(o.r.err, 0);
	UT_ASSERT_INT(o.r.tried, 3);
	UT_ASSERT(o.r.elapsed_ms >= 490 && o.r.elapsed_ms < 1500);
	UT_ASSERT(outconn_is_bad(oc, (struct sockaddr *)&d1.addr));
	UT_ASSERT(outconn_is_bad(oc, (struct sockaddr *)&d2.addr));
	UT_ASSERT(!outconn_is_bad(oc, (struct sockaddr *)&live.addr));
	UT_ASSERT_INT(outconn_bad_count(oc), 2);

	UT_ASSERT_INT(outconn_start_addrs(oc, a, 3, OUTCONN_V4, "test", done_h,
					  &o2, NULL), 0);
	UT_ASSERT(run_until(&loop, &o2) == 0);
	UT_ASSERT_INT(o2.r.err, 0);
	UT_ASSERT_INT(o2.r.skipped, 2);
	UT_ASSERT_INT(o2.r.tried, 1);
	UT_ASSERT(o2.r.elapsed_ms < 200);

	/* With the list emptied, the dead addresses cost the delay again,
	 * now shortened by the connect time seen: two of the 100 ms floor
	 * (RFC 8305 minimum) instead of two OutboundStaggers. */
	{
		struct outcome o3 = {0};
		char host[64];

		inet_ntop(AF_INET, &((struct sockaddr_in *)&d1.addr)->sin_addr,
			  host, sizeof host);
		UT_ASSERT_INT(outconn_delay_ms(oc, host), OUTCONN_STAGGER_MIN_MS);
		UT_ASSERT_INT(outconn_delay_ms(oc, "gw.example"), 250);
		outconn_forget(oc);
		UT_ASSERT_INT(outconn_start_addrs(oc, a, 3, OUTCONN_V4, "test",
						  done_h, &o3, NULL), 0);
		UT_ASSERT(run_until(&loop, &o3) == 0);
		fprintf(stderr, "  two dead first, connect time known: %llu ms\n",
			(unsigned long long)o3.r.elapsed_ms);
		UT_ASSERT_INT(o3.r.err, 0);
		UT_ASSERT_INT(o3.r.tried, 3);
		UT_ASSERT(o3.r.elapsed_ms >= 195 && o3.r.elapsed_ms < 450);
	}
	unlisten(&d1);
	unlisten(&d2);
	unlisten(&live);
	teardown(&loop, oc);
	return 0;
}

/* After the BadAddressInterval a listed address is tried again. */
int test_outconn_bad_list_expires(void)
{
	uv_loop_t loop;
	struct outconn *oc;
	struct listener dead, live;
	struct sockaddr_storage a[2];
	struct outcome o = {0}, o2 = {0}, o3 = {0};

	UT_ASSERT(setup(&loop, &oc, 100, 1, 0) == 0);
	UT_ASSERT(listen_on(&dead, "127.0.0.5", true) == 0);
	UT_ASSERT(listen_on(&live, "127.0.0.6", false) == 0);
	a[0] = dead.addr;
	a[1] = live.addr;
	UT_ASSERT_INT(outconn_start_addrs(oc, a, 2, OUTCONN_V4, "t", done_h, &o,
					  NULL), 0);
	UT_ASSERT(run_until(&loop, &o) == 0);
	UT_ASSERT_INT(o.r.err, 0);
	UT_ASSERT_INT(o.r.tried, 2);
	UT_ASSERT_INT(outconn_start_addrs(oc, a, 2, OUTCONN_V4, "t", done_h,
					  &o2, NULL), 0);
	UT_ASSERT(run_until(&loop, &o2) == 0);
	UT_ASSERT_INT(o2.r.skipped, 1);
	usleep(1100000);
	UT_ASSERT(!outconn_is_bad(oc, (struct sockaddr *)&dead.addr));
	UT_ASSERT_INT(outconn_start_addrs(oc, a, 2, OUTCONN_V4, "t", done_h,
					  &o3, NULL), 0);
	UT_ASSERT(run_until(&loop, &o3) == 0);
	UT_ASSERT_INT(o3.r.skipped, 0);
	UT_ASSERT_INT(o3.r.tried, 2);
	/* Reported by a caller (a request sent there got no answer). */
	outconn_mark_bad(oc, (struct sockaddr *)&live.addr, "test");
	UT_ASSERT(outconn_is_bad(oc, (struct sockaddr *)&live.addr));
	outconn_forget(oc);
	UT_ASSERT_INT(outconn_bad_count(oc), 0);
	unlisten(&dead);
	unlisten(&live);
	teardown(&loop, oc);
	return 0;
}

/* Nothing answers: the round ends at its deadline, every address listed;
 * the next round tries them all again rather than fail untried. */
int test_outconn_all_dead_deadline(void)
{
	uv_loop_t loop;
	struct outconn *oc;
	struct listener d1, d2;
	struct sockaddr_storage a[2];
	struct outcome o = {0}, o2 = {0};

	UT_ASSERT(setup(&loop, &oc, 100, 60, 400) == 0);
	UT_ASSERT(listen_on(&d1, "127.0.0.7", true) == 0);
	UT_ASSERT(listen_on(&d2, "127.0.0.8", true) == 0);
	a[0] = d1.addr;
	a[1] = d2.addr;
	UT_ASSERT_INT(outconn_start_addrs(oc, a, 2, OUTCONN_V4, "t", done_h, &o,
					  NULL), 0);
	UT_ASSERT(run_until(&loop, &o) == 0);
	UT_ASSERT_INT(o.r.err, ETIMEDOUT);
	UT_ASSERT(o.r.elapsed_ms >= 390 && o.r.elapsed_ms < 1500);
	UT_ASSERT(strstr(o.r.why, "within 400 ms") != NULL);
	UT_ASSERT_INT(outconn_bad_count(oc), 2);
	UT_ASSERT_INT(outconn_start_addrs(oc, a, 2, OUTCONN_V4, "t", done_h,
					  &o2, NULL), 0);
	UT_ASSERT(run_until(&loop, &o2) == 0);
	/* Every address listed: all tried anyway (skipping all could only
	 * fail), so a gateway that comes back is found at once. */
	UT_ASSERT_INT(o2.r.err, ETIMEDOUT);
	UT_ASSERT_INT(o2.r.tried, 2);
	UT_ASSERT(o2.r.all_bad);
	unlisten(&d2);
	UT_ASSERT(listen_on(&d2, "127.0.0.8", false) == 0);
	a[1] = d2.addr;
	{
		struct outcome o3 = {0};

		/* d2 now answers (a new port: still one listed address and
		 * one that is not). */
		UT_ASSERT_INT(outconn_start_addrs(oc, a, 2, OUTCONN_V4, "t",
						  done_h, &o3, NULL), 0);
		UT_ASSERT(run_until(&loop, &o3) == 0);
		UT_ASSERT_INT(o3.r.err, 0);
		UT_ASSERT_INT(o3.r.skipped, 1);
		UT_ASSERT(!o3.r.all_bad);
	}
	unlisten(&d1);
	unlisten(&d2);
	teardown(&loop, oc);
	return 0;
}

/* IPv6 is tried first even when listed last; a dead IPv6 address gives
 * way to IPv4 after the stagger. */
int test_outconn_ipv6_first(void)
{
	uv_loop_t loop;
	struct outconn *oc;
	struct listener v4, v6, v6dead;
	struct sockaddr_storage a[2];
	struct outcome o = {0}, o2 = {0};

	UT_ASSERT(setup(&loop, &oc, 200, 60, 0) == 0);
	UT_ASSERT(listen_on(&v4, "127.0.0.9", false) == 0);
	UT_ASSERT(listen_on(&v6, "::1", false) == 0);
	a[0] = v4.addr;
	a[1] = v6.addr;
	UT_ASSERT_INT(outconn_start_addrs(oc, a, 2, OUTCONN_V4 | OUTCONN_V6, "t",
					  done_h, &o, NULL), 0);
	UT_ASSERT(run_until(&loop, &o) == 0);
	UT_ASSERT_INT(o.r.err, 0);
	UT_ASSERT(o.r.addr_str[0] == '[');
	UT_ASSERT_INT(o.r.tried, 1);
	/* IPv4Only: the IPv6 address is not a candidate at all. */
	memset(&o, 0, sizeof o);
	UT_ASSERT_INT(outconn_start_addrs(oc, a, 2, OUTCONN_V4, "t", done_h, &o,
					  NULL), 0);
	UT_ASSERT(run_until(&loop, &o) == 0);
	UT_ASSERT_INT(o.r.found, 1);
	UT_ASSERT(strncmp(o.r.addr_str, "127.0.0.9:", 10) == 0);

	UT_ASSERT(listen_on(&v6dead, "::1", true) == 0);
	a[1] = v6dead.addr;
	UT_ASSERT_INT(outconn_start_addrs(oc, a, 2, OUTCONN_V4 | OUTCONN_V6, "t",
					  done_h, &o2, NULL), 0);
	UT_ASSERT(run_until(&loop, &o2) == 0);
	UT_ASSERT_INT(o2.r.err, 0);
	UT_ASSERT(strncmp(o2.r.addr_str, "127.0.0.9:", 10) == 0);
	/* The first round timed a connect toward this destination: the
	 * delay is now the 100 ms floor, not OutboundStagger's 200. */
	UT_ASSERT(o2.r.elapsed_ms >= 95 && o2.r.elapsed_ms < 190);
	UT_ASSERT(outconn_is_bad(oc, (struct sockaddr *)&v6dead.addr));
	unlisten(&v4);
	unlisten(&v6);
	unlisten(&v6dead);
	teardown(&loop, oc);
	return 0;
}

int test_outconn_cancel(void)
{
	uv_loop_t loop;
	struct outconn *oc;
	struct listener dead;
	struct outcome o = {0}, o2 = {0};
	struct outconn_req *r = NULL;

	UT_ASSERT(setup(&loop, &oc, 100, 60, 0) == 0);
	UT_ASSERT(listen_on(&dead, "127.0.0.10", true) == 0);
	UT_ASSERT_INT(outconn_start_addrs(oc, &dead.addr, 1, OUTCONN_V4, "t",
					  done_h, &o, &r), 0);
	UT_ASSERT(r != NULL);
	for (int i = 0; i < 5; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	outconn_cancel(r);
	for (int i = 0; i < 20; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	UT_ASSERT(!o.called);
	/* A round in flight when the policy is freed: no callback, no leak
	 * (the sanitizer build checks the latter). */
	UT_ASSERT_INT(outconn_start_addrs(oc, &dead.addr, 1, OUTCONN_V4, "t",
					  done_h, &o2, NULL), 0);
	unlisten(&dead);
	teardown(&loop, oc);
	UT_ASSERT(!o2.called);
	return 0;
}

/* An FQDN-less failure: a literal of a family not allowed. */
int test_outconn_no_family(void)
{
	uv_loop_t loop;
	struct outconn *oc;
	struct outcome o = {0};

	UT_ASSERT(setup(&loop, &oc, 100, 60, 0) == 0);
	UT_ASSERT_INT(outconn_start(oc, "::1", 5060, OUTCONN_V4, "t", done_h, &o,
				    NULL), 0);
	UT_ASSERT(!o.called);
	UT_ASSERT(run_until(&loop, &o) == 0);
	UT_ASSERT_INT(o.r.err, ENOENT);
	UT_ASSERT(strstr(o.r.why, "IPv4") != NULL);
	UT_ASSERT_INT(o.r.tried, 0);
	teardown(&loop, oc);
	return 0;
}
