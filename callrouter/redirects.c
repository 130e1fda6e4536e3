/* redirects.c — recent 302s by transaction, for retransmitted INVITEs
 * (redirects.h). */
#include "callrouter/redirects.h"
#include "common/siphash.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/random.h>

#define WAYS 2

struct slot {
	uint64_t key;
	unsigned long long at_ms;
	struct redirect rd;		/* rd.serial 0: empty (serials start at 1) */
};

struct redirects {
	uint8_t secret[16];
	unsigned long long ttl_ms;
	size_t n_sets;			/* a power of two */
	size_t used;
	struct slot *slot;		/* n_sets * WAYS; pages are touched as used */
};

int redirects_alloc(struct redirects **out, unsigned slots_log2,
		    unsigned long long ttl_ms)
{
	struct redirects *t;
	size_t got = 0;

	if (slots_log2 < 2 || slots_log2 > 24)
		return EINVAL;
	t = calloc(1, sizeof *t);
	if (!t)
		return ENOMEM;
	t->n_sets = ((size_t)1 << slots_log2) / WAYS;
	t->ttl_ms = ttl_ms;
	t->slot = calloc(t->n_sets * WAYS, sizeof *t->slot);
	if (!t->slot) {
		free(t);
		return ENOMEM;
	}
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

void redirects_free(struct redirects *t)
{
	if (!t)
		return;
	free(t->slot);
	free(t);
}

static void put32(struct siphash *h, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
			(uint8_t)(v >> 24)};

	siphash_update(h, b, sizeof b);
}

/* An unambiguous encoding: the address first (its family says its length),
 * then each string after its length. */
uint64_t redirects_key(const struct redirects *t, const char *call_id,
		       size_t call_id_len, const char *branch, size_t branch_len,
		       uint32_t cseq, const struct sockaddr *src)
{
	struct siphash h;

	siphash_init(&h, t->secret);
	put32(&h, src ? src->sa_family : 0);
	if (src && src->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)src;

		siphash_update(&h, &a->sin_addr, sizeof a->sin_addr);
		siphash_update(&h, &a->sin_port, sizeof a->sin_port);
	} else if (src && src->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)src;

		siphash_update(&h, &a->sin6_addr, sizeof a->sin6_addr);
		siphash_update(&h, &a->sin6_port, sizeof a->sin6_port);
	}
	put32(&h, (uint32_t)call_id_len);
	siphash_update(&h, call_id, call_id_len);
	put32(&h, (uint32_t)branch_len);
	siphash_update(&h, branch, branch_len);
	put32(&h, cseq);
	return siphash_final(&h);
}

static struct slot *set_of(const struct redirects *t, uint64_t key)
{
	return &t->slot[(key & (t->n_sets - 1)) * WAYS];
}

static bool live(const struct redirects *t, const struct slot *s,
		 unsigned long long now_ms)
{
	return s->rd.serial && now_ms - s->at_ms < t->ttl_ms;
}

void redirects_put(struct redirects *t, uint64_t key, unsigned long long now_ms,
		   const struct redirect *rd)
{
	struct slot *set = set_of(t, key), *s = NULL;

	if (!rd->serial)
		return;
	for (int i = 0; i < WAYS && !s; i++) {
		if (set[i].rd.serial && set[i].key == key)
			s = &set[i];
	}
	for (int i = 0; i < WAYS && !s; i++) {
		if (!set[i].rd.serial)
			s = &set[i];
	}
	if (!s) {		/* the older one goes, expired or not */
		s = &set[0];
		for (int i = 1; i < WAYS; i++) {
			if (set[i].at_ms < s->at_ms)
				s = &set[i];
		}
	}
	if (!s->rd.serial)
		t->used++;
	s->key = key;
	s->at_ms = now_ms;
	s->rd = *rd;
}

bool redirects_get(const struct redirects *t, uint64_t key,
		   unsigned long long now_ms, struct redirect *out)
{
	const struct slot *set = set_of(t, key);

	for (int i = 0; i < WAYS; i++) {
		if (set[i].key == key && live(t, &set[i], now_ms)) {
			*out = set[i].rd;
			return true;
		}
	}
	return false;
}

size_t redirects_count(const struct redirects *t)
{
	return t->used;
}
