/* fuzz_ipc_frame.c — libFuzzer harness for the IPC frame decoder: the input
 * is a byte stream from a peer; every frame in it is decoded, re-encoded and
 * decoded again, which must give the same body and the same bytes. Each
 * frame is also decoded into an arena, as a connection does, which must
 * give the same answer and, re-encoded, the same bytes. */
#include "proto/ipc_frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
		uint8_t *b1 = NULL, *b2 = NULL;
		size_t l1 = 0, l2 = 0;

		if (ipc_frame_encode(&b1, &l1, env) || ipc_frame_encode(&b2, &l2, got) ||
		    l1 != l2 || memcmp(b1, b2, l1))
			__builtin_trap();
		free(b1);
		free(b2);
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
		switch (rc) {
		case 0:
			if (!env || cause || used <= IPC_FRAME_HDR ||
			    used > size - off ||
			    env->version != IPC_PROTOCOL_VERSION ||
			    env->body_case == OPENUM__ENVELOPE__BODY__NOT_SET)
				__builtin_trap();
			(void)ipc_body_name(env->body_case);
			roundtrip(env);
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
