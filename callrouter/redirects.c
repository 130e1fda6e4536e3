/* redirects.c — recent 302s by transaction, for retransmitted INVITEs
 * (redirects.h). */
#include "callrouter/redirects.h"
#include "common/siphash.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#define WAYS 2
#define HUGE ((size_t)2 << 20)

/* 32 bytes: a set of two is one cache line, so a lookup costs one miss. */
struct slot {
	uint64_t key;
	uint32_t at_ms;			/* loop ms, mod 2^32 */
	uint32_t serial;		/* 0: empty (serials start at 1) */
	uint8_t token[REDIRECT_TOKEN_LEN];
};

struct redirects {
	uint8_t secret[16];
	uint32_t ttl_ms;
	size_t n_sets;			/* a power of two */
	size_t used;
	struct slot *slot;		/* n_sets * WAYS, cleared at start */
};

_Static_assert(sizeof(struct slot) * WAYS == 64, "a set is a cache line");

/* See the header. */
int redirects_alloc(struct redirects **out, unsigned slots_log2,
		    unsigned ttl_ms)
{
	struct redirects *t;
	size_t got = 0, bytes;

	if (slots_log2 < 2 || slots_log2 > 24 || !ttl_ms || ttl_ms > 1u << 30)
		return EINVAL;
	t = calloc(1, sizeof *t);
	if (!t)
		return ENOMEM;
	t->n_sets = ((size_t)1 << slots_log2) / WAYS;
	t->ttl_ms = ttl_ms;
	bytes = t->n_sets * WAYS * sizeof *t->slot;
	/* Every INVITE over UDP reads a random place in the table. In 4 KiB
	 * pages its prefetch alone was 1 % of the router's profile (page walks,
	 * most likely), in a huge page 0.3 %: a huge page where the kernel
	 * grants them on request. The table is cleared here, so its size is
	 * resident from the start, and fixed. */
	t->slot = aligned_alloc(bytes >= HUGE ? HUGE : 64, bytes);
	if (!t->slot) {
		free(t);
		return ENOMEM;
	}
	if (bytes >= HUGE)
		(void)madvise(t->slot, bytes, MADV_HUGEPAGE);
	memset(t->slot, 0, bytes);
	while (got < sizeof t->secret) {
		ssize_t n = getrandom(t->secret + got, sizeof t->secret - got, 0);

		if (n <= 0) {
			redirects_free(t);
			return EIO;
		}
		got += (size_t)n;
	}
	*out = t;
	return 0;
}

/* See the header. */
void redirects_free(struct redirects *t)
{
	if (!t)
		return;
	free(t->slot);
	free(t);
}

static size_t put32(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
	b[2] = (uint8_t)(v >> 16);
	b[3] = (uint8_t)(v >> 24);
	return 4;
}

/* An unambiguous encoding: the address first (its family says its length),
 * then each string after its length, then the CSeq number. Gathered in one
 * buffer, which SipHash reads a word at a time, when it fits (typical
 * Call-IDs and branches do), else hashed in parts. */
uint64_t redirects_key(const struct redirects *t, const char *call_id,
		       size_t call_id_len, const char *branch, size_t branch_len,
		       uint32_t cseq, const struct sockaddr *src)
{
	uint8_t buf[256];
	size_t n = put32(buf, src ? src->sa_family : 0);
	struct siphash h;

	if (src && src->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)src;

		memcpy(buf + n, &a->sin_addr, 4);
		memcpy(buf + n + 4, &a->sin_port, 2);
		n += 6;
	} else if (src && src->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)src;

		memcpy(buf + n, &a->sin6_addr, 16);
		memcpy(buf + n + 16, &a->sin6_port, 2);
		n += 18;
	}
	siphash13_init(&h, t->secret);
	n += put32(buf + n, (uint32_t)call_id_len);
	if (n + call_id_len + 4 + branch_len + 4 <= sizeof buf) {
		memcpy(buf + n, call_id, call_id_len);
		n += call_id_len;
		n += put32(buf + n, (uint32_t)branch_len);
		memcpy(buf + n, branch, branch_len);
		n += branch_len;
		n += put32(buf + n, cseq);
		siphash_update(&h, buf, n);
	} else {
		siphash_update(&h, buf, n);
		siphash_update(&h, call_id, call_id_len);
		n = put32(buf, (uint32_t)branch_len);
		siphash_update(&h, buf, n);
		siphash_update(&h, branch, branch_len);
		n = put32(buf, cseq);
		siphash_update(&h, buf, n);
	}
	return siphash_final(&h);
}

static struct slot *set_of(const struct redirects *t, uint64_t key)
{
	return &t->slot[(key & (t->n_sets - 1)) * WAYS];
}

static bool live(const struct redirects *t, const struct slot *s,
		 unsigned long long now_ms)
{
	return s->serial && (uint32_t)now_ms - s->at_ms < t->ttl_ms;
}

/* See the header. */
void redirects_prefetch(const struct redirects *t, uint64_t key)
{
	__builtin_prefetch(set_of(t, key), 1);
}

/* See the header. */
void redirects_put(struct redirects *t, uint64_t key, unsigned long long now_ms,
		   const struct redirect *rd)
{
	struct slot *set = set_of(t, key), *s = NULL;

	if (!rd->serial)
		return;
	for (int i = 0; i < WAYS && !s; i++) {
		if (set[i].serial && set[i].key == key)
			s = &set[i];
	}
	for (int i = 0; i < WAYS && !s; i++) {
		if (!set[i].serial)
			s = &set[i];
	}
	if (!s) {		/* the older one goes, expired or not */
		s = &set[0];
		for (int i = 1; i < WAYS; i++) {
			if ((uint32_t)now_ms - set[i].at_ms > (uint32_t)now_ms - s->at_ms)
				s = &set[i];
		}
	}
	if (!s->serial)
		t->used++;
	s->key = key;
	s->at_ms = (uint32_t)now_ms;
	s->serial = rd->serial;
	memcpy(s->token, rd->token, sizeof s->token);
}

/* See the header. */
bool redirects_get(const struct redirects *t, uint64_t key,
		   unsigned long long now_ms, struct redirect *out)
{
	const struct slot *set = set_of(t, key);

	for (int i = 0; i < WAYS; i++) {
		if (set[i].key == key && live(t, &set[i], now_ms)) {
			out->serial = set[i].serial;
			memcpy(out->token, set[i].token, sizeof out->token);
			return true;
		}
	}
	return false;
}

/* See the header. */
size_t redirects_count(const struct redirects *t)
{
	return t->used;
}
