/* ipc_fast.h — the two envelopes that travel once per call, CallRouted
 * (router -> instance) and CallRoutedAck (back), coded without protobuf-c.
 *
 * Why: protobuf-c packs and unpacks by walking each message's descriptor
 * (a size pass, a pack pass; on unpack a scan pass into a list of members,
 * then a parse pass). For these small, flat messages that walk cost about a
 * tenth of umcallrouter's and umservice's CPU per routed call at 28,000
 * calls/s (perf, bench/router). Here each message is written and read in
 * one straight pass.
 *
 * protobuf-c stays the reference. The encoder writes exactly the bytes
 * protobuf-c's pack would (proto3: fields in number order, defaults left
 * out), and the decoder takes only that canonical form: every field at
 * most once, in order, with a one-byte tag, no unknown field, no trailing
 * byte. Any other encoding, valid or not, is left to protobuf-c (the decoder
 * says "not mine" and allocates nothing). tests/fuzz/fuzz_ipc_frame.c checks
 * both against protobuf-c on every input. Internal to proto/ipc_frame.c. */
#ifndef OPENUM_IPC_FAST_H
#define OPENUM_IPC_FAST_H

#include <stddef.h>
#include <stdint.h>

#include "proto/ipc_frame.h"

/* The packed size of env's body when it is one of the two messages (and
 * carries no unknown fields); with out set, also writes those bytes there.
 * 0: not one of them, use protobuf-c (a packed Envelope is never empty). */
size_t ipc_fast_pack(const Openum__Envelope *env, uint8_t *out);

/* Decodes body[0..n) into a's buffer when it is the canonical encoding of
 * an Envelope of the current protocol version holding one of the two
 * messages. 1: *out is set and lives in a (released by resetting a). 0: not
 * such a body; a is left as it was, decode it with protobuf-c. */
int ipc_fast_unpack(struct ipc_arena *a, Openum__Envelope **out,
		    const uint8_t *body, size_t n);

#endif
