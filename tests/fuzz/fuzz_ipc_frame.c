/* fuzz_ipc_frame.c — libFuzzer harness for the IPC frame decoder: the input
 * is a byte stream from a peer; every frame in it is decoded, re-encoded and
 * decoded again, which must give the same body and the same bytes. Each
 * frame is also decoded into an arena, as a connection does (there the
 * per-call messages go through proto/ipc_fast.c first), which must give the
 * same answer as protobuf-c alone; and every encoding must be the bytes
 * protobuf-c's own pack writes. */
#include "proto/ipc_fast.h"
#include "proto/ipc_frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* protobuf-c's packing of env, malloc'd: the reference. */
static uint8_t *ref_pack(const Openum__Envelope *env, size_t *len)
{
	uint8_t *b;

	*len = openum__envelope__get_packed_size(env);
	b = malloc(*len ? *len : 1);
	if (!b)
		abort();
	if (openum__envelope__pack(env, b) != *len)
		__builtin_trap();
	return b;
}

/* Our frame of env carries exactly protobuf-c's bytes. */
static void same_as_protobuf_c(const Openum__Envelope *env)
{
	uint8_t *ours = NULL, *ref;
	size_t n = 0, rn;

	if (ipc_frame_encode(&ours, &n, env) != 0)
		__builtin_trap();
	ref = ref_pack(env, &rn);
	if (n != IPC_FRAME_HDR + rn || memcmp(ours + IPC_FRAME_HDR, ref, rn))
		__builtin_trap();
	free(ours);
	free(ref);
}

/* Two envelopes hold the same values: protobuf-c packs them alike. */
static void same_values(const Openum__Envelope *x, const Openum__Envelope *y)
{
	uint8_t *bx, *by;
	size_t nx, ny;

	bx = ref_pack(x, &nx);
	by = ref_pack(y, &ny);
	if (nx != ny || memcmp(bx, by, nx))
		__builtin_trap();
	free(bx);
	free(by);
}

/* Whatever the direct decoder takes, protobuf-c reads the same. */
static void fast_agrees(const uint8_t *body, size_t n)
{
	static struct ipc_arena a;
	Openum__Envelope *fast = NULL, *ref;

	ipc_arena_init(&a);
	if (!ipc_fast_unpack(&a, &fast, body, n)) {
		if (fast || a.used)
			__builtin_trap();
		return;
	}
	ref = openum__envelope__unpack(NULL, n, body);
	if (!ref || ref->version != IPC_PROTOCOL_VERSION ||
	    ref->body_case != fast->body_case || a.spilled)
		__builtin_trap();
	same_values(ref, fast);
	same_as_protobuf_c(fast);
	openum__envelope__free_unpacked(ref, NULL);
}

/* Re-encoding a decoded envelope gives its canonical form; decoding and
 * encoding that again must reproduce it exactly. */
static void roundtrip(const Openum__Envelope *env)
{
	Openum__Envelope *again = NULL;
	uint8_t *b1 = NULL, *b2 = NULL;
	size_t l1 = 0, l2 = 0, used = 0;

	/* Canonical re-encoding never grows a message, so it fits. */
	if (ipc_frame_encode(&b1, &l1, env) != 0)
		__builtin_trap();
	if (ipc_frame_decode(&again, b1, l1, &used) != 0 || used != l1)
		__builtin_trap();
	if (again->body_case != env->body_case || again->version != env->version)
		__builtin_trap();
	if (ipc_frame_encode(&b2, &l2, again) != 0)
		__builtin_trap();
	if (l1 != l2 || memcmp(b1, b2, l1) != 0)
		__builtin_trap();
	openum__envelope__free_unpacked(again, NULL);
	free(b1);
	free(b2);
}

/* The arena decode of the frame at p agrees with the malloc one. */
static void same_in_arena(const uint8_t *p, size_t n, int rc, size_t used,
			  const Openum__Envelope *env)
{
	static struct ipc_arena a;
	Openum__Envelope *got = NULL;
	size_t aused = 0;
	int arc;

	ipc_arena_init(&a);
	arc = ipc_frame_decode_in(&a, &got, p, n, &aused, NULL);
	if (arc != rc || (rc != EAGAIN && aused != used))
		__builtin_trap();
	if (arc == 0) {
		same_values(env, got);
		ipc_frame_release(&a, got);
	} else if (got || a.used || a.spilled) {
		__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size) {
		Openum__Envelope *env = NULL;
		char *cause = NULL;
		size_t used = 0;
		int rc;

		rc = ipc_frame_decode_cause(&env, data + off, size - off, &used,
					    &cause);
		same_in_arena(data + off, size - off, rc, used, env);
		if (used > IPC_FRAME_HDR)
			fast_agrees(data + off + IPC_FRAME_HDR, used - IPC_FRAME_HDR);
		switch (rc) {
		case 0:
			if (!env || cause || used <= IPC_FRAME_HDR ||
			    used > size - off ||
			    env->version != IPC_PROTOCOL_VERSION ||
			    env->body_case == OPENUM__ENVELOPE__BODY__NOT_SET)
				__builtin_trap();
			(void)ipc_body_name(env->body_case);
			roundtrip(env);
			same_as_protobuf_c(env);
			openum__envelope__free_unpacked(env, NULL);
			break;
		case EAGAIN:
			if (used != 0 || env || cause)
				__builtin_trap();
			return 0;
		case EMSGSIZE:
			/* The stream cannot be resynchronised: the peer is cut. */
			if (used != 0 || env || !cause)
				__builtin_trap();
			free(cause);
			return 0;
		case EBADMSG:
		case EPROTO:
			/* The frame's extent is known: go on to the next one. */
			if (used < IPC_FRAME_HDR || used > size - off || env || !cause)
				__builtin_trap();
			free(cause);
			break;
		default:
			__builtin_trap();
		}
		off += used;
	}
	return 0;
}
