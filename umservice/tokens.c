/* tokens.c — one-time routing tokens: an open-addressing hash table over
 * the (random, so already uniformly distributed) token bytes, plus a FIFO
 * ring in arrival order that owns the contexts. Every token lives the same
 * ~30 s, so arrival order is expiry order and sweeping the ring head is
 * enough; a take only marks its context, which the sweep frees when it
 * reaches it. Contexts are allocated one by one, so memory follows the
 * number of tokens held.
 *
 * Each slot holds 32 more bits of the token beside its context, so a probe
 * reads the context (a cache miss at thousands of calls a second, where the
 * table is full) only when those bits match; each context knows its slot,
 * so dropping the oldest needs no lookup.
 *
 * A context is stored packed: its five strings one after another, each
 * with its NUL, behind the fixed fields, so an entry takes about 100 bytes
 * at a typical call instead of struct token_ctx's fixed ~570. A full table
 * (TOKENS_MAX, which a load test reaches: its callers never follow the
 * redirect) then holds ~10 MB instead of ~40, and storing a token writes
 * two cache lines instead of nine. */
#include "common/hex.h"
#include "umservice/tokens.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS (TOKENS_MAX * 2)	/* load factor <= 0.5 plus tombstones */

struct entry {
	uint64_t expires_ms;	/* unix ms */
	uint32_t slot;		/* where the table holds it */
	bool taken;
	int32_t kind;
	uint8_t token[TOKEN_LEN];
	char strs[];		/* call_id, mailbox, dialplan, gateway, caller */
};

/* The strings of a context in the order they are packed; lengths are
 * bounded by the arrays of struct token_ctx. */
#define CTX_STRS(c) {(c)->call_id, (c)->mailbox, (c)->dialplan, (c)->gateway, (c)->caller}
#define CTX_CAPS(c) {sizeof (c)->call_id, sizeof (c)->mailbox, sizeof (c)->dialplan, \
		     sizeof (c)->gateway, sizeof (c)->caller}
#define N_STRS 5

/* A new entry holding ctx, packed. */
static struct entry *entry_new(const struct token_ctx *ctx)
{
	const char *str[N_STRS] = CTX_STRS(ctx);
	const size_t cap[N_STRS] = CTX_CAPS(ctx);
	size_t len[N_STRS], total = 0;
	struct entry *e;
	char *p;

	for (int i = 0; i < N_STRS; i++) {
		len[i] = strnlen(str[i], cap[i] - 1);
		total += len[i] + 1;
	}
	e = malloc(sizeof *e + total);
	if (!e)
		return NULL;
	e->expires_ms = ctx->expires_ms;
	e->taken = false;
	e->kind = ctx->kind;
	memcpy(e->token, ctx->token, TOKEN_LEN);
	p = e->strs;
	for (int i = 0; i < N_STRS; i++) {
		memcpy(p, str[i], len[i]);
		p[len[i]] = '\0';
		p += len[i] + 1;
	}
	return e;
}

/* Unpacks e into out (every string fits: it came from such a struct). */
static void entry_get(const struct entry *e, struct token_ctx *out)
{
	char *str[N_STRS] = CTX_STRS(out);
	const char *p = e->strs;

	memset(out, 0, sizeof *out);
	memcpy(out->token, e->token, TOKEN_LEN);
	out->kind = e->kind;
	out->expires_ms = e->expires_ms;
	for (int i = 0; i < N_STRS; i++) {
		size_t n = strlen(p);

		memcpy(str[i], p, n + 1);
		p += n + 1;
	}
}

static struct entry tomb_marker;
#define TOMB (&tomb_marker)

struct slot {
	struct entry *e;	/* NULL, TOMB or an entry owned by ring */
	uint32_t tag;		/* token bits 32..63 */
};

struct tokens {
	struct slot *slot;
	struct entry **ring;	/* arrival order */
	size_t head, n_ring;
	size_t live, tombs;
};

/* Creates an empty table. */
int tokens_alloc(struct tokens **out)
{
	struct tokens *t = calloc(1, sizeof *t);

	if (!t)
		return ENOMEM;
	t->slot = calloc(SLOTS, sizeof *t->slot);
	t->ring = calloc(TOKENS_MAX, sizeof *t->ring);
	if (!t->slot || !t->ring) {
		tokens_free(t);
		return ENOMEM;
	}
	*out = t;
	return 0;
}

/* Frees the table and every context. */
void tokens_free(struct tokens *t)
{
	if (!t)
		return;
	for (size_t k = 0; t->ring && k < t->n_ring; k++)
		free(t->ring[(t->head + k) % TOKENS_MAX]);
	free(t->slot);
	free(t->ring);
	free(t);
}

static uint64_t bits(const uint8_t *tok)
{
	uint64_t h;

	memcpy(&h, tok, sizeof h);
	return h;
}

static long find(const struct tokens *t, const uint8_t *tok)
{
	uint64_t h = bits(tok);
	uint32_t tag = (uint32_t)(h >> 32);
	size_t i = (size_t)(h % SLOTS);

	for (size_t n = 0; n < SLOTS; n++, i = (i + 1) % SLOTS) {
		const struct slot *s = &t->slot[i];

		if (!s->e)
			return -1;
		if (s->e != TOMB && s->tag == tag &&
		    memcmp(s->e->token, tok, TOKEN_LEN) == 0)
			return (long)i;
	}
	return -1;
}

static void insert(struct tokens *t, struct entry *e)
{
	uint64_t h = bits(e->token);
	size_t i = (size_t)(h % SLOTS);

	while (t->slot[i].e && t->slot[i].e != TOMB)
		i = (i + 1) % SLOTS;
	if (t->slot[i].e == TOMB)
		t->tombs--;
	t->slot[i] = (struct slot){e, (uint32_t)(h >> 32)};
	e->slot = (uint32_t)i;
}

static void unlink_slot(struct tokens *t, size_t i)
{
	t->slot[i].e = TOMB;
	t->tombs++;
	t->live--;
}

/* Tombstones lengthen probes; when they pile up, rebuild the table from
 * the ring (O(n), amortised over as many removals). */
static void maybe_rehash(struct tokens *t)
{
	if (t->tombs < SLOTS / 4)
		return;
	memset(t->slot, 0, SLOTS * sizeof *t->slot);
	t->tombs = 0;
	for (size_t k = 0; k < t->n_ring; k++) {
		struct entry *e = t->ring[(t->head + k) % TOKENS_MAX];

		if (!e->taken)
			insert(t, e);
	}
}

/* Frees expired (and taken) entries at the ring head; when make_room is
 * set and the ring is full, also the oldest live one. */
static void sweep(struct tokens *t, uint64_t now_ms, bool make_room)
{
	while (t->n_ring > 0) {
		struct entry *e = t->ring[t->head];

		if (!e->taken) {
			if (e->expires_ms > now_ms &&
			    !(make_room && t->n_ring >= TOKENS_MAX))
				break;
			unlink_slot(t, e->slot);
		}
		free(e);
		t->head = (t->head + 1) % TOKENS_MAX;
		t->n_ring--;
	}
	maybe_rehash(t);
}

/* Stores the context of a new token. */
int tokens_put(struct tokens *t, const struct token_ctx *ctx, uint64_t now_ms)
{
	struct entry *e;

	if (ctx->expires_ms <= now_ms)
		return EINVAL;
	sweep(t, now_ms, true);
	if (find(t, ctx->token) >= 0)
		return EEXIST;
	e = entry_new(ctx);
	if (!e)
		return ENOMEM;
	insert(t, e);
	t->live++;
	t->ring[(t->head + t->n_ring) % TOKENS_MAX] = e;
	t->n_ring++;
	return 0;
}

/* Takes a token's context out; it cannot be used again. */
int tokens_take(struct tokens *t, const uint8_t token[TOKEN_LEN],
		uint64_t now_ms, struct token_ctx *out)
{
	long i = find(t, token);
	struct entry *e;
	int err = 0;

	if (i < 0) {
		sweep(t, now_ms, false);
		return ENOENT;
	}
	e = t->slot[i].e;
	if (e->expires_ms <= now_ms)
		err = ETIMEDOUT;
	else if (out)
		entry_get(e, out);
	e->taken = true;
	unlink_slot(t, (size_t)i);
	sweep(t, now_ms, false);
	return err;
}

/* Number of tokens held. */
size_t tokens_count(const struct tokens *t)
{
	return t->live;
}

/* Writes 32 lower-case hex digits. */
void tokens_hex(char out[2 * TOKEN_LEN + 1], const uint8_t token[TOKEN_LEN])
{
	hex_encode(out, token, TOKEN_LEN);
}

/* Parses exactly 32 hex digits; EINVAL otherwise. */
int tokens_unhex(uint8_t out[TOKEN_LEN], const char *hex)
{
	if (!hex || strlen(hex) != 2 * TOKEN_LEN)
		return EINVAL;
	return hex_decode(out, hex, 2 * TOKEN_LEN);
}
