/* ipc_frame.h — the IPC frame codec: a 4-byte big-endian body length, then one
 * packed openum.Envelope (proto/openum.proto). Pure: no I/O, no allocation
 * beyond the encoded bytes and the decoded envelope. */
#ifndef OPENUM_IPC_FRAME_H
#define OPENUM_IPC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "proto/openum.pb-c.h"

/* Carried in every Envelope; bump it with any change to openum.proto. */
#define IPC_PROTOCOL_VERSION 2
/* Largest accepted frame body (the packed Envelope), in bytes. */
#define IPC_FRAME_MAX (64 * 1024)
/* Length of the big-endian length prefix. */
#define IPC_FRAME_HDR 4

/* Initialises an Envelope with the current protocol version and no body; the
 * caller then sets body_case and the body pointer. */
void ipc_envelope_init(Openum__Envelope *env);

/* The bytes env takes as a frame (IPC_FRAME_HDR + body) in *size.
 * EINVAL: a NULL argument or no body set. EMSGSIZE: body > IPC_FRAME_MAX. */
int ipc_frame_size(const Openum__Envelope *env, size_t *size);
/* Writes the frame of env into buf, of the size ipc_frame_size gave: a
 * sender queueing frames packs them where they will be written from. */
void ipc_frame_write(uint8_t *buf, size_t size, const Openum__Envelope *env);

/* Encodes env as one frame. On success *out is a malloc'd buffer of *len
 * bytes (IPC_FRAME_HDR + body) that the caller frees with free().
 * EINVAL: a NULL argument or no body set. EMSGSIZE: body > IPC_FRAME_MAX.
 * The version is written as found in env (ipc_envelope_init sets it). */
int ipc_frame_encode(uint8_t **out, size_t *len, const Openum__Envelope *env);

/* Decodes the first frame in buf[0..len).
 *   0        *out is the envelope (free with openum__envelope__free_unpacked(
 *            *out, NULL)), *consumed = IPC_FRAME_HDR + body length.
 *   EAGAIN   buf holds no complete frame yet; *consumed = 0.
 *   EMSGSIZE the declared body length exceeds IPC_FRAME_MAX; *consumed = 0
 *            (the stream cannot be resynchronised: drop the connection).
 *   EPROTO   a well-formed envelope whose version is not
 *            IPC_PROTOCOL_VERSION (or that carries none); *consumed = frame.
 *   EBADMSG  an empty (0-length) body, bytes that do not unpack as an
 *            Envelope, or an Envelope without a body; *consumed = frame.
 *   EINVAL   a NULL argument.
 * The version is checked before the body, so a newer peer whose body this
 * side does not know is reported as EPROTO, not EBADMSG. */
int ipc_frame_decode(Openum__Envelope **out, const uint8_t *buf, size_t len,
		     size_t *consumed);

/* ipc_frame_decode, plus on error (other than EAGAIN and EINVAL) a readable
 * reason in *cause (malloc'd, the caller frees it; left untouched on success
 * or when cause is NULL), e.g. "protocol version 7 not supported (want 1)",
 * "frame of 100000 bytes exceeds 65536", "undecodable frame". */
int ipc_frame_decode_cause(Openum__Envelope **out, const uint8_t *buf,
			   size_t len, size_t *consumed, char **cause);

/* Memory to decode into, one frame at a time: a connection handles each
 * envelope before it decodes the next, so the envelope can live in a
 * buffer the connection owns instead of a dozen mallocs and frees. What
 * does not fit (a large registration) still comes from malloc. */
#define IPC_ARENA_SIZE 4096
struct ipc_arena {
	ProtobufCAllocator pb;
	size_t used;		/* bytes of buf handed out */
	size_t spilled;		/* allocations that went to malloc */
	max_align_t buf[IPC_ARENA_SIZE / sizeof(max_align_t)];
};

void ipc_arena_init(struct ipc_arena *a);
/* ipc_frame_decode_cause decoding into a (which must hold no envelope). */
int ipc_frame_decode_in(struct ipc_arena *a, Openum__Envelope **out,
			const uint8_t *buf, size_t len, size_t *consumed,
			char **cause);
/* Frees an envelope from ipc_frame_decode_in; a is empty again. */
void ipc_frame_release(struct ipc_arena *a, Openum__Envelope *env);

/* A short name of a body case for logs ("hello", "status_reply", "none",
 * "unknown"). Never NULL. */
const char *ipc_body_name(Openum__Envelope__BodyCase body);

#endif
