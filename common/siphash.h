/* siphash.h — SipHash-2-4 (Aumasson and Bernstein, 2012): a 64-bit hash
 * keyed with 128 secret bits, for tables whose keys come from the network.
 * Without the key no one can choose inputs that collide. Incremental: the
 * parts of a key (a Call-ID, a branch, an address) need not be copied into
 * one buffer first. */
#ifndef OPENUM_SIPHASH_H
#define OPENUM_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

struct siphash {
	uint64_t v0, v1, v2, v3;
	uint64_t tail;		/* bytes not yet making a full word */
	size_t len;		/* bytes so far */
};

void siphash_init(struct siphash *h, const uint8_t key[16]);
void siphash_update(struct siphash *h, const void *data, size_t n);
uint64_t siphash_final(struct siphash *h);

#endif
