/* resolver.h — one asynchronous DNS resolver (A/AAAA, cached for the TTL) for
 * both daemons: c-ares driven by the process's libuv loop, never blocking it.
 *
 * Lifetime: every lookup ends with exactly one call of its handler, always
 * from the loop and never from inside resolver_lookup(), unless the resolver
 * is freed first (then the handler is never called). Handlers may call any
 * resolver function, resolver_free() included. Everything runs on the loop's
 * thread.
 *
 * Lookup order is c-ares' default (from /etc/nsswitch.conf, normally
 * "files dns"): a name in /etc/hosts is answered from there (TTL 0), even
 * with configured servers; no search list is ever applied. */
#ifndef OPENUM_RESOLVER_H
#define OPENUM_RESOLVER_H

#include <stddef.h>

#include <netinet/in.h>
#include <uv.h>

struct resolver;

/* One address of an answer. str is the literal (no brackets), NUL-ended. */
struct resolver_addr {
	int family; /* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} a;
	char str[46]; /* INET6_ADDRSTRLEN */
};

/* Families a lookup asks for (bit set). */
#define RESOLVER_V4 1
#define RESOLVER_V6 2

/* The TTL reported for a literal address name: it never changes. */
#define RESOLVER_TTL_LITERAL 86400u
/* How long an answer with TTL 0 is cached, and a negative answer (ms). */
#define RESOLVER_TTL0_CACHE_MS 1000u
#define RESOLVER_NEG_CACHE_MS 5000u
/* Per-try timeout and tries per server (c-ares ARES_OPT_TIMEOUTMS/TRIES). */
#define RESOLVER_TIMEOUT_MS 1000
#define RESOLVER_TRIES 2

/* The answer of one lookup.
 * err 0: n >= 1 addresses, IPv6 first then IPv4, each family in the
 *   server's answer order; ttl_s is the smallest TTL of the answer
 *   (RESOLVER_TTL_LITERAL for a literal name).
 * ENOENT: NXDOMAIN, or no records of the asked families.
 * ETIMEDOUT: no server answered. ECONNREFUSED: every server refused (ICMP
 *   port unreachable, or rcode REFUSED). EAGAIN: SERVFAIL.
 * EBADMSG: unparsable answer. EINVAL: bad name. ENOMEM, EIO: other.
 * On error n is 0 and addrs NULL. addrs is valid during the call only. */
typedef void (resolver_h)(void *arg, int err, const struct resolver_addr *addrs,
			  size_t n, unsigned ttl_s);

int resolver_alloc(struct resolver **out, uv_loop_t *loop, const char *servers,
		   char **cause);
int resolver_set_servers(struct resolver *r, const char *servers, char **cause);
int resolver_lookup(struct resolver *r, const char *name, unsigned families,
		    resolver_h *h, void *arg);
void resolver_flush(struct resolver *r);
void resolver_free(struct resolver *r);

int resolver_parse_servers(const char *servers, char *ares_csv, size_t len,
			   char **cause);
const char *resolver_families_str(unsigned families);

#endif
