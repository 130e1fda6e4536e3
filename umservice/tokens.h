/* tokens.h — the one-time routing tokens a UM service holds for calls the
 * router has redirected to it: the context of CallRouted, kept until the
 * redirected INVITE claims it or it expires. Pure: the caller passes time. */
#ifndef OPENUM_TOKENS_H
#define OPENUM_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#define TOKEN_LEN 16
/* Most tokens held at once; past it the oldest are dropped. */
#define TOKENS_MAX 65536

struct tokens;

struct token_ctx {
	uint8_t token[TOKEN_LEN];
	int kind;			/* Openum__CallKind */
	char call_id[256];
	char mailbox[21];
	char dialplan[65];
	char gateway[65];
	char caller[129];
	uint64_t expires_ms;		/* unix ms */
};

int tokens_alloc(struct tokens **out);
void tokens_free(struct tokens *t);
/* Stores ctx; EEXIST if the token is already held, EINVAL if it expired. */
int tokens_put(struct tokens *t, const struct token_ctx *ctx, uint64_t now_ms);
/* Takes the context of a token out (one time): 0, ENOENT, or ETIMEDOUT
 * when it expired. */
int tokens_take(struct tokens *t, const uint8_t token[TOKEN_LEN],
		uint64_t now_ms, struct token_ctx *out);
size_t tokens_count(const struct tokens *t);
/* Hex form used in SIP URIs (32 lower-case hex digits), and back. */
void tokens_hex(char out[2 * TOKEN_LEN + 1], const uint8_t token[TOKEN_LEN]);
int tokens_unhex(uint8_t out[TOKEN_LEN], const char *hex);

#endif
