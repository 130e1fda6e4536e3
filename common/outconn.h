/* outconn.h — the outbound connection policy: how OpenUM reaches a gateway
 * for every connection it opens (message-waiting NOTIFY, OPTIONS pings,
 * outbound calls).
 *
 *   address ─ literal, or FQDN looked up (AAAA and A) through the
 *             directory's DNS servers ─ families the gateway's
 *             IPAddressFamily and our listeners allow ─ IPv6 first, then
 *             IPv4 ─ addresses on the bad-address list skipped
 *           ─ TCP connects staggered: the next address starts when the
 *             previous one has not connected after the delay or has
 *             failed; the first to connect wins, the others are cancelled
 *             (RFC 8305 §5). The delay is OutboundStagger (250 ms) toward
 *             a destination never reached before; once connects to it have
 *             been timed, twice their smoothed time, at least 100 ms.
 *
 * An address goes on the bad-address list, shared by everything in the
 * process, when its connect fails, when an address started after it
 * connected first, or when the caller reports it (outconn_mark_bad: the
 * SIP request sent there got no answer). It is skipped until the
 * BadAddressInterval has passed — unless every address of the round is on
 * the list: then they are all tried anyway, in the usual order, since
 * skipping them all could only fail (a gateway with one address that comes
 * back is reached at the next attempt, not an interval later). Every
 * decision is logged at debug level.
 *
 * The connect proves the address answers; the winning connection is then
 * closed and the SIP request goes out through sofia's own transport to the
 * winning address (sofia cannot adopt a connected socket), which costs one
 * more handshake to an address known to answer instead of ~21 s per dead
 * address (UCMA 4.0).
 *
 * Lifetime: every outconn_start() that returns 0 ends with exactly one call
 * of its handler, from the loop and never from inside outconn_start(),
 * unless outconn_cancel() comes first (then never). Everything runs on the
 * loop's thread. */
#ifndef OPENUM_OUTCONN_H
#define OPENUM_OUTCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#define OUTCONN_STAGGER_DEFAULT_MS 250u
/* The shortest delay between attempts that connect-time history may bring
 * (RFC 8305 §8: Minimum Connection Attempt Delay, 100 ms recommended). */
#define OUTCONN_STAGGER_MIN_MS 100u
#define OUTCONN_BAD_INTERVAL_DEFAULT_S 300u
/* A round that has not connected anywhere by then has failed. */
#define OUTCONN_ROUND_TIMEOUT_MS 10000u
#define OUTCONN_MAX_ADDRS 16
/* Bad-address list entries kept at most (the oldest go first). */
#define OUTCONN_BAD_MAX 1024

/* Families a round may use (bit set; the same bits as RESOLVER_V4/_V6). */
#define OUTCONN_V4 1u
#define OUTCONN_V6 2u

struct outconn_settings {
	unsigned stagger_ms;		/* OutboundStagger */
	unsigned bad_interval_s;	/* BadAddressInterval */
	unsigned round_timeout_ms;	/* 0: OUTCONN_ROUND_TIMEOUT_MS */
};

/* What a round found. err 0: addr connected. Otherwise: ENOENT (no address
 * of an allowed family), ECONNREFUSED / ETIMEDOUT / another errno (every
 * attempt failed), or the resolver's error. why says it in words either
 * way. */
struct outconn_result {
	int err;
	struct sockaddr_storage addr;	/* the winner (port set) */
	char addr_str[64];		/* "[2001:db8::1]:5060" */
	unsigned found, skipped, tried;	/* addresses usable, bad-listed, attempted */
	bool all_bad;			/* every one was listed: all tried anyway */
	uint64_t elapsed_ms;		/* round start to the outcome */
	char why[256];
};

typedef void (outconn_h)(void *arg, const struct outconn_result *r);

struct outconn;
struct outconn_req;

int outconn_alloc(struct outconn **out, uv_loop_t *loop);
/* DNS servers as the directory's DnsServers ("" = the system's). */
int outconn_configure(struct outconn *oc, const char *dns_servers,
		      const struct outconn_settings *s, char **cause);
/* Starts a round toward host (literal without brackets, or FQDN) and port,
 * using the families in fams. who names the purpose for the logs ("OPTIONS
 * to gateway gw1"). *out (may be NULL) lets the caller cancel it. */
int outconn_start(struct outconn *oc, const char *host, unsigned port,
		  unsigned fams, const char *who, outconn_h *h, void *arg,
		  struct outconn_req **out);
/* The same with the addresses already known (ports set), in the order
 * found: for the benchmark and tests, and callers that resolved them. */
int outconn_start_addrs(struct outconn *oc, const struct sockaddr_storage *addrs,
			size_t n, unsigned fams, const char *who, outconn_h *h,
			void *arg, struct outconn_req **out);
/* The handler will not be called; NULL is fine. */
void outconn_cancel(struct outconn_req *r);
/* The caller found addr (port set) unavailable after it connected. */
void outconn_mark_bad(struct outconn *oc, const struct sockaddr *addr,
		      const char *why);
bool outconn_is_bad(struct outconn *oc, const struct sockaddr *addr);
size_t outconn_bad_count(struct outconn *oc);
/* The delay between attempts a round toward host would use now. */
unsigned outconn_delay_ms(struct outconn *oc, const char *host);
/* Empties the bad-address list. */
void outconn_forget(struct outconn *oc);
/* Cancels every round; their handles close on the loop, then oc is freed. */
void outconn_free(struct outconn *oc);

/* Pure: the order a round tries addrs in, IPv6 first then IPv4, each
 * family in the given order, families outside fams dropped. Writes indexes
 * to order; returns how many. */
size_t outconn_order(const struct sockaddr_storage *addrs, size_t n,
		     unsigned fams, size_t *order);

#endif
