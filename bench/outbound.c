/* outbound.c — bench/outbound (issue 6, "Benchmark"): the time from
 * "connect to gateway" (outconn_start_addrs()) to a connected transport
 * (its handler with err 0) when 0, 1, 2 or 3 of the gateway's 4 addresses
 * are dead, on loopback only (127.0.0.0/8 and ::1).
 *
 * The gateway is dual-stack: two IPv6 addresses ([::1], two ports) and two
 * IPv4 addresses (127.0.0.2, 127.0.0.3), in the policy's order (IPv6
 * first). With D dead, the first D of them are blackholes and the rest
 * live, so the live address that wins is the (D+1)-th tried: with 2 dead,
 * IPv6 is broken and IPv4 answers (the realistic failure). A blackhole is
 * a listener with listen(fd, 0) whose single queue slot is filled by one
 * connection: the kernel drops further SYNs, so a connect hangs as toward a
 * dead host (as in tests/unit/test_outconn.c). Without a usable ::1 the
 * IPv6 slots fall back to 127.0.0.4/127.0.0.5 (said in the output).
 *
 * Measured, N times per point (median and p95):
 *   staggered, cold   a fresh policy for every run: no connect-time history,
 *                     OutboundStagger (250 ms) between attempts;
 *   staggered, warm   one policy primed by a few rounds: the delay is
 *                     max(100 ms, 2 x smoothed connect time);
 *   second attempt    a round right after one that put the dead addresses
 *                     on the bad-address list: they are skipped;
 *   sequential        plain non-blocking connect + poll, one address after
 *                     the other, a scaled timeout per address (--seq-timeout,
 *                     210 ms = 1/100 of 21 s) — not through outconn.
 * Computed: UCMA 4.0's sequential attempts with 21 s per address, as
 * dead x 21 s + the live connect time measured by the sequential rows.
 * Every staggered run except "second attempt" starts with an empty
 * bad-address list (outconn_forget(), checked).
 *
 * Bounded: --reps (1..500), every round waits at most 15 s (the policy's
 * own round deadline is 10 s), every sequential attempt at most its
 * timeout, the whole run at most --max-seconds. Every socket is closed.
 *
 * Exit status 0 when every point was measured without a failure (whether
 * the target was met is printed), 1 otherwise.
 *
 * usage: outbound [--reps N] [--seq-timeout MS] [--max-seconds S] [--verbose] */
#include "common/log.h"
#include "common/netaddr.h"
#include "common/outconn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define SLOTS 4
#define MAX_DEAD 3
#define REPS_MAX 500
#define WARMUP 3
#define ROUND_WAIT_NS 15000000000ull
#define UCMA_TIMEOUT_MS 21000.0
#define TARGET_MS 300.0

struct listener {
	int fd;
	int filler;		/* fills a blackhole's one-slot queue */
	struct sockaddr_storage addr;
};

static struct listener dead_l[SLOTS], live_l[SLOTS];
static uint64_t run_end_ns;
static bool out_of_time;

static socklen_t sa_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					 : sizeof(struct sockaddr_in);
}

/* 127.0.0.0/8 or ::1, nothing else. */
static bool is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >>
			24) == 127;
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return false;
}

static int listen_on(struct listener *l, const char *host, bool blackhole)
{
	socklen_t sl = sizeof l->addr;
	int fam = strchr(host, ':') ? AF_INET6 : AF_INET;

	memset(l, 0, sizeof *l);
	l->fd = l->filler = -1;
	l->addr.ss_family = (sa_family_t)fam;
	if (fam == AF_INET6)
		inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&l->addr)->sin6_addr);
	else
		inet_pton(AF_INET, host, &((struct sockaddr_in *)&l->addr)->sin_addr);
	if (!is_loopback(&l->addr))
		return -1;
	l->fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC |
			       (blackhole ? 0 : SOCK_NONBLOCK), 0);
	if (l->fd < 0 ||
	    bind(l->fd, (struct sockaddr *)&l->addr, sa_len(&l->addr)) != 0 ||
	    listen(l->fd, blackhole ? 0 : 128) != 0 ||
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

static void unlisten(struct listener *l)
{
	if (l->filler >= 0)
		close(l->filler);
	if (l->fd >= 0)
		close(l->fd);
	l->fd = l->filler = -1;
}

/* Accepts and closes what the live listeners got, so their queues never
 * fill up (a full queue would make a live address dead). */
static void drain_live(void)
{
	for (int i = 0; i < SLOTS; i++) {
		for (int k = 0; k < 256; k++) {
			int c = accept4(live_l[i].fd, NULL, NULL, SOCK_CLOEXEC);

			if (c < 0)
				break;
			close(c);
		}
	}
}

/* The gateway's addresses with the first `dead` of them dead. */
static void gateway(unsigned dead, struct sockaddr_storage *a)
{
	for (unsigned i = 0; i < SLOTS; i++)
		a[i] = i < dead ? dead_l[i].addr : live_l[i].addr;
}

static bool time_left(void)
{
	if (uv_hrtime() >= run_end_ns)
		out_of_time = true;
	return !out_of_time;
}

/* ---- statistics ------------------------------------------------------------ */

struct series {
	double v[REPS_MAX];
	unsigned n, fail, delay_min, delay_max;
	char why[256];		/* the first failure */
};

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void add_delay(struct series *s, unsigned d)
{
	if (!s->n && !s->fail)
		s->delay_min = s->delay_max = d;
	if (d < s->delay_min)
		s->delay_min = d;
	if (d > s->delay_max)
		s->delay_max = d;
}

static void failed(struct series *s, const char *fmt, const char *detail)
	__attribute__((format(printf, 2, 0)));
static void failed(struct series *s, const char *fmt, const char *detail)
{
	if (!s->fail)
		snprintf(s->why, sizeof s->why, fmt, detail);
	s->fail++;
}

static double median(const struct series *s)
{
	double v[REPS_MAX];

	if (!s->n)
		return -1;
	memcpy(v, s->v, s->n * sizeof *v);
	qsort(v, s->n, sizeof *v, cmp_d);
	return s->n % 2 ? v[s->n / 2] : (v[s->n / 2 - 1] + v[s->n / 2]) / 2;
}

/* Nearest rank. */
static double p95(const struct series *s)
{
	double v[REPS_MAX];
	unsigned k;

	if (!s->n)
		return -1;
	memcpy(v, s->v, s->n * sizeof *v);
	qsort(v, s->n, sizeof *v, cmp_d);
	k = (95 * s->n + 99) / 100;
	return v[k ? k - 1 : 0];
}

/* ---- the staggered policy (common/outconn) ----------------------------------- */

struct outcome {
	bool called;
	uint64_t t_ns;
	struct outconn_result r;
};

static void done_h(void *arg, const struct outconn_result *r)
{
	struct outcome *o = arg;

	o->t_ns = uv_hrtime();
	o->called = true;
	o->r = *r;
}

/* One round toward the gateway; *ms from the call of
 * outconn_start_addrs() to the handler. 0, or -1 with *why. */
static int round_once(uv_loop_t *loop, struct outconn *oc, unsigned dead,
		      double *ms, struct outconn_result *res, const char **why)
{
	struct sockaddr_storage a[SLOTS];
	struct outconn_req *req = NULL;
	struct outcome o = {0};
	uint64_t t0, end;
	int rc;

	gateway(dead, a);
	t0 = uv_hrtime();
	rc = outconn_start_addrs(oc, a, SLOTS, OUTCONN_V4 | OUTCONN_V6,
				 "bench", done_h, &o, &req);
	if (rc != 0) {
		*why = strerror(rc);
		return -1;
	}
	end = t0 + ROUND_WAIT_NS;
	while (!o.called && uv_hrtime() < end)
		uv_run(loop, UV_RUN_ONCE);
	if (!o.called) {
		outconn_cancel(req);
		for (int i = 0; i < 100 && uv_run(loop, UV_RUN_NOWAIT); i++)
			;
		drain_live();
		*why = "no outcome within 15 s";
		return -1;
	}
	drain_live();
	*res = o.r;
	*ms = (double)(o.t_ns - t0) / 1e6;
	if (o.r.err != 0) {
		*why = o.r.why;
		return -1;
	}
	if (netaddr_port((struct sockaddr *)&o.r.addr) !=
	    netaddr_port((struct sockaddr *)&a[dead])) {
		*why = "connected to another address than the first live one";
		return -1;
	}
	return 0;
}

static int new_policy(uv_loop_t *loop, struct outconn **oc)
{
	/* The defaults: OutboundStagger 250 ms, BadAddressInterval 300 s. */
	struct outconn_settings s = {OUTCONN_STAGGER_DEFAULT_MS,
				     OUTCONN_BAD_INTERVAL_DEFAULT_S, 0};

	if (outconn_alloc(oc, loop) != 0)
		return -1;
	return outconn_configure(*oc, "", &s, NULL) == 0 ? 0 : -1;
}

static void free_policy(uv_loop_t *loop, struct outconn *oc)
{
	outconn_free(oc);
	for (int i = 0; i < 100 && uv_run(loop, UV_RUN_NOWAIT); i++)
		;
}

/* The history key of a round started with outconn_start_addrs(): the
 * host of its first address. */
static void first_host(unsigned dead, char *host, size_t len)
{
	struct sockaddr_storage a[SLOTS];

	gateway(dead, a);
	netaddr_host((struct sockaddr *)&a[0], host, len);
}

static void check_round(struct series *s, const struct outconn_result *r,
			unsigned tried, unsigned skipped, double ms)
{
	char d[128];

	if (r->tried != tried || r->skipped != skipped) {
		snprintf(d, sizeof d, "tried %u skipped %u (expected %u, %u)",
			 r->tried, r->skipped, tried, skipped);
		failed(s, "%s", d);
		return;
	}
	s->v[s->n++] = ms;
}

static void bench_cold(uv_loop_t *loop, unsigned dead, unsigned reps,
		       struct series *s)
{
	char host[NETADDR_STRLEN];

	first_host(dead, host, sizeof host);
	for (unsigned i = 0; i < reps && time_left(); i++) {
		struct outconn *oc;
		struct outconn_result r;
		const char *why = "";
		double ms;

		if (new_policy(loop, &oc) != 0) {
			failed(s, "%s", "outconn_alloc");
			return;
		}
		outconn_forget(oc);
		add_delay(s, outconn_delay_ms(oc, host));
		if (outconn_bad_count(oc) != 0 ||
		    outconn_delay_ms(oc, host) != OUTCONN_STAGGER_DEFAULT_MS)
			failed(s, "%s", "not cold");
		else if (round_once(loop, oc, dead, &ms, &r, &why) != 0)
			failed(s, "%s", why);
		else
			check_round(s, &r, dead + 1, 0, ms);
		free_policy(loop, oc);
	}
}

/* Warm: one policy, primed by WARMUP rounds; every measured round starts
 * with an empty bad-address list. Then (second != NULL) the same policy
 * measures a round right after one that listed the dead addresses. */
static void bench_warm(uv_loop_t *loop, unsigned dead, unsigned reps,
		       struct series *s, struct series *second)
{
	struct outconn *oc;
	char host[NETADDR_STRLEN];

	first_host(dead, host, sizeof host);
	if (new_policy(loop, &oc) != 0) {
		failed(s, "%s", "outconn_alloc");
		return;
	}
	for (unsigned i = 0; i < WARMUP && time_left(); i++) {
		struct outconn_result r;
		const char *why;
		double ms;

		outconn_forget(oc);
		(void)round_once(loop, oc, dead, &ms, &r, &why);
	}
	for (unsigned i = 0; i < reps && time_left(); i++) {
		struct outconn_result r;
		const char *why = "";
		double ms;

		outconn_forget(oc);
		add_delay(s, outconn_delay_ms(oc, host));
		if (outconn_bad_count(oc) != 0)
			failed(s, "%s", "bad-address list not empty");
		else if (round_once(loop, oc, dead, &ms, &r, &why) != 0)
			failed(s, "%s", why);
		else
			check_round(s, &r, dead + 1, 0, ms);
	}
	for (unsigned i = 0; second && i < reps && time_left(); i++) {
		struct outconn_result r;
		const char *why = "";
		double ms;

		/* A first round lists the dead addresses ... */
		outconn_forget(oc);
		if (round_once(loop, oc, dead, &ms, &r, &why) != 0) {
			failed(second, "first round: %s", why);
			continue;
		}
		if (outconn_bad_count(oc) != dead) {
			failed(second, "%s", "dead addresses not listed");
			continue;
		}
		/* ... the second, within BadAddressInterval, skips them. */
		add_delay(second, outconn_delay_ms(oc, host));
		if (round_once(loop, oc, dead, &ms, &r, &why) != 0)
			failed(second, "%s", why);
		else
			check_round(second, &r, 1, dead, ms);
	}
	free_policy(loop, oc);
}

/* ---- plain sequential attempts (UCMA 4.0's way), not through outconn --------- */

/* One address: 1 connected, 0 failed or timed out. */
static int seq_try(const struct sockaddr_storage *a, unsigned timeout_ms)
{
	int fd = socket(a->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	uint64_t end = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
	int ok = 0;

	if (fd < 0)
		return 0;
	if (connect(fd, (const struct sockaddr *)a, sa_len(a)) == 0) {
		close(fd);
		return 1;
	}
	if (errno != EINPROGRESS) {
		close(fd);
		return 0;
	}
	for (int k = 0; k < 1000; k++) {	/* EINTR at most this often */
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		uint64_t now = uv_hrtime();
		int rc, err = 0;
		socklen_t el = sizeof err;

		if (now >= end)
			break;
		rc = poll(&p, 1, (int)((end - now + 999999) / 1000000));
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			continue;	/* the timeout: the loop ends on time */
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && !err)
			ok = 1;
		break;
	}
	close(fd);
	return ok;
}

static void bench_seq(unsigned dead, unsigned reps, unsigned timeout_ms,
		      struct series *s)
{
	struct sockaddr_storage a[SLOTS];

	gateway(dead, a);
	for (unsigned i = 0; i < reps && time_left(); i++) {
		uint64_t t0 = uv_hrtime();
		int won = -1;

		for (int k = 0; k < SLOTS && won < 0; k++) {
			if (seq_try(&a[k], timeout_ms))
				won = k;
		}
		drain_live();
		add_delay(s, timeout_ms);
		if (won != (int)dead)
			failed(s, "%s", won < 0 ? "no address connected"
						: "another address connected");
		else
			s->v[s->n++] = (double)(uv_hrtime() - t0) / 1e6;
	}
}

/* ---- output ------------------------------------------------------------------- */

static void print_row(const char *policy, unsigned dead, const struct series *s,
		      double per_dead_ms, double c0)
{
	char delay[32], model[32];

	if (s->delay_min == s->delay_max)
		snprintf(delay, sizeof delay, "%u", s->delay_min);
	else
		snprintf(delay, sizeof delay, "%u-%u", s->delay_min, s->delay_max);
	if (c0 >= 0)
		snprintf(model, sizeof model, "%.2f", dead * per_dead_ms + c0);
	else
		snprintf(model, sizeof model, "-");
	if (s->n)
		printf("%-36s %4u %6s %10.2f %10.2f %10s %3u/%u\n", policy, dead,
		       delay, median(s), p95(s), model, s->n, s->n + s->fail);
	else
		printf("%-36s %4u %6s %10s %10s %10s %3u/%u\n", policy, dead,
		       delay, "-", "-", model, s->n, s->n + s->fail);
	if (s->fail)
		printf("    ! %u failed, first: %s\n", s->fail, s->why);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: outbound [--reps N] [--seq-timeout MS] "
		   "[--max-seconds S] [--verbose]\n"
		   "  --reps N          runs per point, 1..%d (20)\n"
		   "  --seq-timeout MS  sequential timeout per address, "
		   "10..5000 (210: 21 s / 100)\n"
		   "  --max-seconds S   bound on the whole run, 10..3600 (600)\n"
		   "  --verbose         the policy's debug log on stderr\n",
		   REPS_MAX);
}

static long num_arg(int argc, char **argv, int *i, long lo, long hi)
{
	char *end;
	long v;

	if (*i + 1 >= argc) {
		usage(stderr);
		exit(2);
	}
	v = strtol(argv[++*i], &end, 10);
	if (*end || v < lo || v > hi) {
		fprintf(stderr, "%s: %s is not in %ld..%ld\n", argv[*i - 1],
			argv[*i], lo, hi);
		exit(2);
	}
	return v;
}

static struct series cold[MAX_DEAD + 1], warm[MAX_DEAD + 1],
	second[MAX_DEAD + 1], seq[MAX_DEAD + 1], ucma[MAX_DEAD + 1];

int main(int argc, char **argv)
{
	unsigned reps = 20, seq_ms = 210, max_s = 600;
	const char *v6[2] = {"::1", "::1"};
	bool have_v6 = true;
	uv_loop_t loop;
	double c0;
	int ok = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--reps"))
			reps = (unsigned)num_arg(argc, argv, &i, 1, REPS_MAX);
		else if (!strcmp(argv[i], "--seq-timeout"))
			seq_ms = (unsigned)num_arg(argc, argv, &i, 10, 5000);
		else if (!strcmp(argv[i], "--max-seconds"))
			max_s = (unsigned)num_arg(argc, argv, &i, 10, 3600);
		else if (!strcmp(argv[i], "--verbose"))
			log_set_level(LOG_LEVEL_DEBUG);
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (log_get_level() != LOG_LEVEL_DEBUG)
		log_set_level(LOG_LEVEL_WARN);	/* no line per listed address */
	log_set_process("bench-outbound");
	run_end_ns = uv_hrtime() + (uint64_t)max_s * 1000000000u;

	/* Slots 0, 1 IPv6 when ::1 works; slots 2, 3 IPv4. */
	{
		struct listener t;

		if (listen_on(&t, "::1", false) != 0)
			have_v6 = false;
		unlisten(&t);
		if (!have_v6) {
			v6[0] = "127.0.0.4";
			v6[1] = "127.0.0.5";
		}
	}
	for (int i = 0; i < SLOTS; i++) {
		const char *h = i < 2 ? v6[i] : i == 2 ? "127.0.0.2" : "127.0.0.3";

		if (listen_on(&dead_l[i], h, true) != 0 ||
		    listen_on(&live_l[i], h, false) != 0) {
			fprintf(stderr, "outbound: cannot listen on %s: %s\n", h,
				strerror(errno));
			for (int k = 0; k <= i; k++) {
				unlisten(&dead_l[k]);
				unlisten(&live_l[k]);
			}
			return 1;
		}
	}
	if (uv_loop_init(&loop) != 0)
		return 1;

	for (unsigned d = 0; d <= MAX_DEAD; d++)
		bench_cold(&loop, d, reps, &cold[d]);
	for (unsigned d = 0; d <= MAX_DEAD; d++)
		bench_warm(&loop, d, reps, &warm[d], &second[d]);
	for (unsigned d = 0; d <= MAX_DEAD; d++)
		bench_seq(d, reps, seq_ms, &seq[d]);

	printf("bench/outbound: connect to a gateway, outconn_start_addrs() to "
	       "its handler with err 0; loopback only, %u runs per point\n",
	       reps);
	printf("gateway addresses in policy order (the first D dead = "
	       "blackholes, the rest live):\n ");
	for (int i = 0; i < SLOTS; i++) {
		char a[NETADDR_STRLEN], b[NETADDR_STRLEN];

		printf(" %s|%s", netaddr_str((struct sockaddr *)&dead_l[i].addr,
					     a, sizeof a),
		       netaddr_str((struct sockaddr *)&live_l[i].addr, b, sizeof b));
	}
	printf("   (dead|live)\n");
	if (!have_v6)
		printf("  (::1 unusable here: the IPv6 slots are IPv4)\n");
	printf("  D=0,1: an IPv6 address wins; D=2: IPv6 broken, IPv4 wins; "
	       "D=3: the last IPv4 wins\n");
	printf("  delay = ms between attempts (staggered: outconn_delay_ms() "
	       "before the round; sequential: timeout per address)\n");
	printf("  model = D x delay + the same policy's D=0 median "
	       "(sequential rows: D x timeout + measured connect)\n\n");
	printf("%-36s %4s %6s %10s %10s %10s %7s\n", "policy", "dead", "delay",
	       "median ms", "p95 ms", "model ms", "ok/runs");

	c0 = median(&cold[0]);
	for (unsigned d = 0; d <= MAX_DEAD; d++)
		print_row("staggered, cold (no history)", d, &cold[d],
			  cold[d].delay_min, c0);
	c0 = median(&warm[0]);
	for (unsigned d = 0; d <= MAX_DEAD; d++)
		print_row("staggered, warm (history)", d, &warm[d],
			  warm[d].delay_min, c0);
	c0 = median(&second[0]);
	for (unsigned d = 0; d <= MAX_DEAD; d++)
		print_row("staggered, 2nd round (bad-listed)", d, &second[d],
			  0, c0);
	c0 = median(&seq[0]);
	{
		char name[64];

		snprintf(name, sizeof name, "sequential, %u ms timeout (meas.)",
			 seq_ms);
		for (unsigned d = 0; d <= MAX_DEAD; d++)
			print_row(name, d, &seq[d], seq_ms, c0);
	}
	/* UCMA 4.0: computed from the measured sequential connect time. */
	for (unsigned d = 0; d <= MAX_DEAD && seq[0].n; d++) {
		struct series *u = &ucma[d];

		u->delay_min = u->delay_max = (unsigned)UCMA_TIMEOUT_MS;
		for (unsigned i = 0; i < seq[0].n; i++)
			u->v[u->n++] = d * UCMA_TIMEOUT_MS + seq[0].v[i];
		print_row("sequential, 21 s timeout (computed)", d, u,
			  UCMA_TIMEOUT_MS, c0);
	}
	if (out_of_time)
		printf("\n! stopped early: --max-seconds %u reached (ok/runs "
		       "shows what was measured)\n", max_s);

	printf("\n");
	if (warm[2].n && ucma[2].n) {
		double w = median(&warm[2]), u = median(&ucma[2]);

		printf("two dead first, warm: %.1f ms (target ≤ %.0f ms: %s); "
		       "p95 %.1f ms\n", w, TARGET_MS,
		       w <= TARGET_MS ? "met" : "MISSED",
		       p95(&warm[2]));
		printf("two dead first, cold: %.1f ms; second round within "
		       "BadAddressInterval: %.2f ms\n", median(&cold[2]),
		       median(&second[2]));
		printf("UCMA 4.0 (21 s per dead address), two dead first: "
		       "%.1f ms computed; warm staggered / UCMA = %.4f "
		       "(1/%.0f)\n", u, w / u, u / w);
		printf("sequential model check, two dead: 2 x %u ms + %.2f ms = "
		       "%.2f ms predicted, %.2f ms measured\n", seq_ms, median(&seq[0]),
		       2 * seq_ms + median(&seq[0]), median(&seq[2]));
	} else {
		printf("two dead first, warm: not measured\n");
	}
	ok = !out_of_time;
	for (unsigned d = 0; d <= MAX_DEAD; d++)
		ok &= !cold[d].fail && !warm[d].fail && !second[d].fail &&
		      !seq[d].fail;

	uv_loop_close(&loop);
	for (int i = 0; i < SLOTS; i++) {
		unlisten(&dead_l[i]);
		unlisten(&live_l[i]);
	}
	return ok ? 0 : 1;
}
