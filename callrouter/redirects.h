/* redirects.h — the 302s the router sent in the last seconds, so that an
 * INVITE retransmitted because its 302 was lost (UDP) gets that same 302
 * again: same instance, same token, no second handoff over IPC and no second
 * token left waiting at an instance (RFC 3261 17.2.1: a retransmission is
 * answered with the response already sent, not processed again).
 *
 * A fixed table, two entries per set: memory is bounded at any rate. When a
 * set is full the older entry goes; an INVITE whose entry is gone is simply
 * routed again, as if it were new. An entry lives until its ttl or until two
 * newer 302s land in its set: with 2^16 entries at 50,000 calls a second
 * about 1.3 s on average, past the first retransmission (T1, 500 ms) for
 * four calls in five; at 5,000 a second about 13 s. The ACK of a 302 does not
 * free its entry: the router reads ACKs no further than their first line
 * (half its traffic), and a copy of the INVITE after the ACK is answered the
 * same either way. Keys are SipHash-1-3 of the source address, Call-ID, top
 * Via branch and CSeq number under a secret key: a gateway cannot make its
 * INVITE collide with another call's. */
#ifndef OPENUM_REDIRECTS_H
#define OPENUM_REDIRECTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define REDIRECT_TOKEN_LEN 16

struct redirect {
	unsigned serial;		/* the instance's registration (registry.h) */
	uint8_t token[REDIRECT_TOKEN_LEN];
};

struct redirects;

/* 2^slots_log2 entries (2 to 24) of 32 bytes, each kept at most ttl_ms
 * (up to 2^30). ENOMEM/EINVAL. */
int redirects_alloc(struct redirects **out, unsigned slots_log2,
		    unsigned ttl_ms);
void redirects_free(struct redirects *t);
/* The key of a transaction as a request of it names it (the INVITE and the
 * ACK of its non-2xx answer give the same one). */
uint64_t redirects_key(const struct redirects *t, const char *call_id,
		       size_t call_id_len, const char *branch, size_t branch_len,
		       uint32_t cseq, const struct sockaddr *src);
/* Starts loading key's place in the table, for a get or put soon after:
 * the table is larger than the caches, and an INVITE has other work to do
 * meanwhile. */
void redirects_prefetch(const struct redirects *t, uint64_t key);
/* Remembers the 302 sent for key at now_ms (replacing any for that key). */
void redirects_put(struct redirects *t, uint64_t key, unsigned long long now_ms,
		   const struct redirect *rd);
/* The 302 sent for key, if remembered and younger than the ttl. */
bool redirects_get(const struct redirects *t, uint64_t key,
		   unsigned long long now_ms, struct redirect *out);
/* Entries in use, never more than the table holds (the unit tests check it). */
size_t redirects_count(const struct redirects *t);

#endif
