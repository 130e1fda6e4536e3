/* siphash.c — SipHash-c-d, written from the paper ("SipHash: a fast
 * short-input PRF", section 2): c rounds per 8-byte word, d to finish. */
#include "common/siphash.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void rounds(struct siphash *h, int n)
{
	while (n-- > 0) {
		h->v0 += h->v1;
		h->v1 = ROTL(h->v1, 13);
		h->v1 ^= h->v0;
		h->v0 = ROTL(h->v0, 32);
		h->v2 += h->v3;
		h->v3 = ROTL(h->v3, 16);
		h->v3 ^= h->v2;
		h->v0 += h->v3;
		h->v3 = ROTL(h->v3, 21);
		h->v3 ^= h->v0;
		h->v2 += h->v1;
		h->v1 = ROTL(h->v1, 17);
		h->v1 ^= h->v2;
		h->v2 = ROTL(h->v2, 32);
	}
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void word(struct siphash *h, uint64_t m)
{
	h->v3 ^= m;
	rounds(h, h->c);
	h->v0 ^= m;
}

static void init(struct siphash *h, const uint8_t key[16], int c, int d)
{
	uint64_t k0 = le64(key), k1 = le64(key + 8);

	h->c = c;
	h->d = d;
	h->v0 = k0 ^ 0x736f6d6570736575ull;
	h->v1 = k1 ^ 0x646f72616e646f6dull;
	h->v2 = k0 ^ 0x6c7967656e657261ull;
	h->v3 = k1 ^ 0x7465646279746573ull;
	h->tail = 0;
	h->len = 0;
}

/* See the header. */
void siphash_init(struct siphash *h, const uint8_t key[16])
{
	init(h, key, 2, 4);
}

/* See the header. */
void siphash13_init(struct siphash *h, const uint8_t key[16])
{
	init(h, key, 1, 3);
}

/* See the header. */
void siphash_update(struct siphash *h, const void *data, size_t n)
{
	const uint8_t *p = data;

	/* finish a word begun by the last call */
	while (n > 0 && (h->len & 7)) {
		h->tail |= (uint64_t)*p++ << (8 * (h->len & 7));
		h->len++;
		n--;
		if (!(h->len & 7)) {
			word(h, h->tail);
			h->tail = 0;
		}
	}
	for (; n >= 8; n -= 8, p += 8) {
		word(h, le64(p));
		h->len += 8;
	}
	for (; n > 0; n--) {
		h->tail |= (uint64_t)*p++ << (8 * (h->len & 7));
		h->len++;
	}
}

/* See the header. */
uint64_t siphash_final(struct siphash *h)
{
	word(h, h->tail | (uint64_t)(h->len & 0xff) << 56);
	h->v2 ^= 0xff;
	rounds(h, h->d);
	return h->v0 ^ h->v1 ^ h->v2 ^ h->v3;
}
