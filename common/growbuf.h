/* growbuf.h — growing a byte buffer by doubling, for the read buffers and
 * output queues of stream connections (IPC frames, SIP over TCP). */
#ifndef OPENUM_GROWBUF_H
#define OPENUM_GROWBUF_H

#include <stdbool.h>
#include <stddef.h>

/* Makes *cap (the capacity of the buffer at *(void **)pbuf, which may be
 * NULL) at least want: doubles it, starting from init, and never past max
 * (0: no limit). On allocation failure the buffer is left as it was.
 * True when *cap >= want afterwards. */
bool growbuf(void *pbuf, size_t *cap, size_t want, size_t init, size_t max);

#endif
