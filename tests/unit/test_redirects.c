/* test_redirects.c — the router's table of recent 302s: a retransmission
 * finds its 302, entries age out, the table never grows, and the key tells
 * transactions and sources apart. */
#include "callrouter/redirects.h"
#include "tests/unit/unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

int test_redirects_resend(void);
int test_redirects_bounded(void);
int test_redirects_key(void);

static uint64_t key(const struct redirects *t, const char *cid, const char *br,
		    uint32_t cseq, const struct sockaddr_in *src)
{
	return redirects_key(t, cid, strlen(cid), br, strlen(br), cseq,
			     (const struct sockaddr *)src);
}

static struct redirect rd_of(unsigned serial, uint8_t fill)
{
	struct redirect rd;

	rd.serial = serial;
	memset(rd.token, fill, sizeof rd.token);
	return rd;
}

int test_redirects_resend(void)
{
	struct redirects *t;
	struct sockaddr_in gw = ut_v4("127.0.0.1", 5060);
	struct redirect rd = rd_of(3, 0xab), got;
	uint64_t k;

	UT_ASSERT_INT(redirects_alloc(&t, 1, 1000), EINVAL);
	UT_ASSERT_INT(redirects_alloc(&t, 25, 1000), EINVAL);
	UT_ASSERT_INT(redirects_alloc(&t, 8, 1000), 0);
	k = key(t, "a@b", "z9hG4bK1", 1, &gw);
	UT_ASSERT(!redirects_get(t, k, 0, &got));
	redirects_put(t, k, 100, &rd);
	UT_ASSERT_INT((int)redirects_count(t), 1);
	/* the retransmission half a second later */
	UT_ASSERT(redirects_get(t, k, 600, &got));
	UT_ASSERT(got.serial == 3 && !memcmp(got.token, rd.token, sizeof rd.token));
	/* at the ttl it is gone */
	UT_ASSERT(redirects_get(t, k, 1099, &got));
	UT_ASSERT(!redirects_get(t, k, 1100, &got));
	/* put again for the same key replaces, does not add */
	rd = rd_of(4, 0xcd);
	redirects_put(t, k, 2000, &rd);
	redirects_put(t, k, 2000, &rd);
	UT_ASSERT_INT((int)redirects_count(t), 1);
	UT_ASSERT(redirects_get(t, k, 2001, &got) && got.serial == 4);
	/* serial 0 means nothing to keep */
	rd = rd_of(0, 1);
	redirects_put(t, k + 1, 2000, &rd);
	UT_ASSERT_INT((int)redirects_count(t), 1);
	UT_ASSERT(!redirects_get(t, k + 1, 2001, &got));
	redirects_free(t);
	return 0;
}

/* 200 calls a millisecond into a table of 64: it holds 64 at most, and the
 * latest calls are the ones it remembers (two ways per set: the older of a
 * set goes first). */
int test_redirects_bounded(void)
{
	struct redirects *t;
	struct sockaddr_in gw = ut_v4("192.168.1.1", 5060);
	uint64_t keys[200];
	struct redirect got;
	size_t found_old = 0, found_new = 0;

	UT_ASSERT_INT(redirects_alloc(&t, 6, 30000), 0);
	for (int i = 0; i < 200; i++) {
		char cid[32];
		struct redirect rd = rd_of((unsigned)i + 1, (uint8_t)i);

		snprintf(cid, sizeof cid, "call-%d", i);
		keys[i] = key(t, cid, "z9hG4bKx", 1, &gw);
		redirects_put(t, keys[i], (unsigned long long)i, &rd);
		UT_ASSERT(redirects_count(t) <= 64);
	}
	UT_ASSERT(redirects_count(t) > 32);
	for (int i = 0; i < 200; i++) {
		if (!redirects_get(t, keys[i], 200, &got))
			continue;
		UT_ASSERT(got.serial == (unsigned)i + 1 && got.token[0] == (uint8_t)i);
		if (i < 100)
			found_old++;
		else
			found_new++;
	}
	UT_ASSERT(found_old + found_new == redirects_count(t));
	UT_ASSERT(found_new > found_old);
	/* the last one put is always there */
	UT_ASSERT(redirects_get(t, keys[199], 200, &got));
	redirects_free(t);
	return 0;
}

/* Every part of a transaction's name is in the key; two tables (two
 * routers, or one restarted) have different secrets. */
int test_redirects_key(void)
{
	struct redirects *t, *u;
	struct sockaddr_in a = ut_v4("127.0.0.1", 5060), b = ut_v4("127.0.0.2", 5060),
			   c = ut_v4("127.0.0.1", 5061);
	struct sockaddr_in6 s6;
	uint64_t k;

	UT_ASSERT_INT(redirects_alloc(&t, 4, 1000), 0);
	UT_ASSERT_INT(redirects_alloc(&u, 4, 1000), 0);
	k = key(t, "x@y", "z9hG4bK1", 7, &a);
	UT_ASSERT(k == key(t, "x@y", "z9hG4bK1", 7, &a));
	UT_ASSERT(k != key(t, "x@z", "z9hG4bK1", 7, &a));
	UT_ASSERT(k != key(t, "x@y", "z9hG4bK2", 7, &a));
	UT_ASSERT(k != key(t, "x@y", "z9hG4bK1", 8, &a));
	UT_ASSERT(k != key(t, "x@y", "z9hG4bK1", 7, &b));
	UT_ASSERT(k != key(t, "x@y", "z9hG4bK1", 7, &c));
	/* where the Call-ID ends is part of it */
	UT_ASSERT(key(t, "ab", "c", 1, &a) != key(t, "a", "bc", 1, &a));
	UT_ASSERT(k != key(u, "x@y", "z9hG4bK1", 7, &a));
	/* Call-IDs too long for the one-buffer path are hashed in parts */
	{
		char long_cid[400];

		memset(long_cid, 'c', sizeof long_cid - 1);
		long_cid[sizeof long_cid - 1] = 0;
		k = key(t, long_cid, "z9hG4bK1", 7, &a);
		UT_ASSERT(k == key(t, long_cid, "z9hG4bK1", 7, &a));
		UT_ASSERT(k != key(t, long_cid, "z9hG4bK2", 7, &a));
		UT_ASSERT(k != key(t, long_cid, "z9hG4bK1", 7, &b));
		long_cid[200] = 0;	/* 200 + 8: the one-buffer path */
		UT_ASSERT(k != key(t, long_cid, "z9hG4bK1", 7, &a));
	}
	memset(&s6, 0, sizeof s6);
	s6.sin6_family = AF_INET6;
	s6.sin6_port = htons(5060);
	inet_pton(AF_INET6, "::1", &s6.sin6_addr);
	UT_ASSERT(redirects_key(t, "x@y", 3, "z9hG4bK1", 8, 7, (struct sockaddr *)&s6) !=
		  redirects_key(t, "x@y", 3, "z9hG4bK1", 8, 7, NULL));
	redirects_free(t);
	redirects_free(u);
	return 0;
}
