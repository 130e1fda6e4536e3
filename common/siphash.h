/* siphash.h — SipHash (Aumasson and Bernstein, 2012): a 64-bit hash keyed
 * with 128 secret bits, for tables whose keys come from the network.
 * Without the key no one can choose inputs that collide. SipHash-2-4 is the
 * paper's; SipHash-1-3, half the rounds, is what Linux (hsiphash), Python
 * and Rust use for hash tables, where the output is never shown to the
 * sender. Incremental: the parts of a key need not be in one buffer. */
#ifndef OPENUM_SIPHASH_H
#define OPENUM_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

struct siphash {
	uint64_t v0, v1, v2, v3;
	uint64_t tail;		/* bytes not yet making a full word */
	size_t len;		/* bytes so far */
	int c, d;		/* rounds per word, rounds to finish */
};

/* SipHash-2-4 */
void siphash_init(struct siphash *h, const uint8_t key[16]);
/* SipHash-1-3 */
void siphash13_init(struct siphash *h, const uint8_t key[16]);
/* Adds n bytes of input: any split of an input gives the same hash. */
void siphash_update(struct siphash *h, const void *data, size_t n);
/* The hash of all the input; h is spent. */
uint64_t siphash_final(struct siphash *h);

#endif
