/* test_tokens.c — one-time routing tokens: put/take, one use only, expiry,
 * capacity, hex form. */
#include "tests/unit/unit.h"
#include "umservice/tokens.h"

#include <errno.h>
#include <stdlib.h>

int test_tokens_basic(void);
int test_tokens_expiry_and_capacity(void);
int test_tokens_hex(void);

static void mk(struct token_ctx *c, unsigned seed, uint64_t exp)
{
	memset(c, 0, sizeof *c);
	for (int i = 0; i < TOKEN_LEN; i++)
		c->token[i] = (uint8_t)((seed * 2654435761u) >> (i % 4 * 8)) ^ (uint8_t)(i * 37 + seed);
	c->expires_ms = exp;
	snprintf(c->mailbox, sizeof c->mailbox, "%u", seed % 10000);
}

int test_tokens_basic(void)
{
	struct tokens *t;
	struct token_ctx a, b, got;

	UT_ASSERT_INT(tokens_alloc(&t), 0);
	mk(&a, 1, 1000);
	mk(&b, 2, 1000);
	UT_ASSERT_INT(tokens_put(t, &a, 10), 0);
	UT_ASSERT_INT(tokens_put(t, &a, 10), EEXIST);
	UT_ASSERT_INT(tokens_put(t, &b, 10), 0);
	UT_ASSERT_INT(tokens_count(t), 2);
	UT_ASSERT_INT(tokens_take(t, a.token, 20, &got), 0);
	UT_ASSERT_STR(got.mailbox, a.mailbox);
	/* one time only */
	UT_ASSERT_INT(tokens_take(t, a.token, 20, &got), ENOENT);
	UT_ASSERT_INT(tokens_take(t, b.token, 20, &got), 0);
	UT_ASSERT_INT(tokens_count(t), 0);
	/* Every field comes back as it went in (contexts are stored packed):
	 * strings at their longest, empty, and one that fills its array with
	 * no NUL, which comes back cut to the array less its NUL. */
	mk(&a, 3, 1000);
	a.kind = 2;
	memset(a.call_id, 'c', sizeof a.call_id - 1);
	memset(a.mailbox, '9', sizeof a.mailbox - 1);
	strcpy(a.dialplan, "Contoso DP");
	memset(a.caller, 'x', sizeof a.caller);	/* no NUL */
	UT_ASSERT_INT(tokens_put(t, &a, 10), 0);
	memset(&got, 0x55, sizeof got);
	UT_ASSERT_INT(tokens_take(t, a.token, 20, &got), 0);
	a.caller[sizeof a.caller - 1] = '\0';
	UT_ASSERT(!memcmp(&got, &a, sizeof a));
	UT_ASSERT_INT(strlen(got.call_id), 255);
	UT_ASSERT_STR(got.gateway, "");
	UT_ASSERT_INT(strlen(got.caller), 128);
	tokens_free(t);
	return 0;
}

int test_tokens_expiry_and_capacity(void)
{
	struct tokens *t;
	struct token_ctx c, got;

	UT_ASSERT_INT(tokens_alloc(&t), 0);
	mk(&c, 7, 100);
	UT_ASSERT_INT(tokens_put(t, &c, 200), EINVAL);	/* already expired */
	UT_ASSERT_INT(tokens_put(t, &c, 50), 0);
	UT_ASSERT_INT(tokens_take(t, c.token, 150, &got), ETIMEDOUT);
	UT_ASSERT_INT(tokens_count(t), 0);
	/* Fill past capacity, taking some: bounded, oldest dropped, the
	 * newest still there; several rounds exercise the rehash. */
	for (unsigned round = 0; round < 3; round++) {
		struct token_ctx first;

		for (unsigned i = 0; i < TOKENS_MAX + 1000; i++) {
			mk(&c, round * 1000003u + i + 100, 1000000);
			if (i == 1)
				first = c;
			UT_ASSERT_INT(tokens_put(t, &c, 300), 0);
			if (i % 3 == 0)
				UT_ASSERT_INT(tokens_take(t, c.token, 300, &got), 0);
		}
		UT_ASSERT(tokens_count(t) <= TOKENS_MAX);
		/* the newest is there (i % 3 != 0), the oldest was dropped */
		UT_ASSERT_INT(tokens_take(t, c.token, 300, &got), 0);
		UT_ASSERT_STR(got.mailbox, c.mailbox);
		UT_ASSERT_INT(tokens_take(t, first.token, 300, &got), ENOENT);
		/* dropping the oldest removed those and nothing else: every
		 * token still in the ring and not yet taken is found, once */
		for (unsigned i = 1000; i < TOKENS_MAX + 999; i++) {
			struct token_ctx r;

			mk(&r, round * 1000003u + i + 100, 1000000);
			UT_ASSERT_INT(tokens_take(t, r.token, 300, &got),
				      i % 3 == 0 ? ENOENT : 0);
			UT_ASSERT_INT(tokens_take(t, r.token, 300, &got), ENOENT);
		}
	}
	mk(&c, 424242, 1000000);
	UT_ASSERT_INT(tokens_put(t, &c, 300), 0);
	UT_ASSERT_INT(tokens_take(t, c.token, 300, &got), 0);
	/* Everything expires: the table empties itself. */
	mk(&c, 5, 2000000);
	UT_ASSERT_INT(tokens_put(t, &c, 1999999), 0);
	UT_ASSERT_INT(tokens_count(t), 1);
	tokens_free(t);
	return 0;
}

int test_tokens_hex(void)
{
	uint8_t tok[TOKEN_LEN], back[TOKEN_LEN];
	char hex[2 * TOKEN_LEN + 1];

	for (int i = 0; i < TOKEN_LEN; i++)
		tok[i] = (uint8_t)(i * 17 + 3);
	tokens_hex(hex, tok);
	UT_ASSERT_INT(strlen(hex), 32);
	UT_ASSERT_INT(tokens_unhex(back, hex), 0);
	UT_ASSERT(memcmp(tok, back, TOKEN_LEN) == 0);
	UT_ASSERT_INT(tokens_unhex(back, "abc"), EINVAL);
	UT_ASSERT_INT(tokens_unhex(back, "zz0102030405060708090a0b0c0d0e0f"), EINVAL);
	UT_ASSERT_INT(tokens_unhex(back, NULL), EINVAL);
	return 0;
}
