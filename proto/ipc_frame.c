/* ipc_frame.c — encodes and decodes IPC frames (length prefix + Envelope);
 * every byte a peer sends passes through ipc_frame_decode first. */
#include "common/cause.h"
#include "proto/ipc_frame.h"
#include "proto/ipc_fast.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>


/* Sets env to an empty Envelope of the current protocol version. */
void ipc_envelope_init(Openum__Envelope *env)
{
	openum__envelope__init(env);
	env->version = IPC_PROTOCOL_VERSION;
}

/* See the header. */
int ipc_frame_size(const Openum__Envelope *env, size_t *size)
{
	size_t n;

	if (!env || !size || env->body_case == OPENUM__ENVELOPE__BODY__NOT_SET)
		return EINVAL;
	n = ipc_fast_pack(env, NULL);
	if (!n)
		n = openum__envelope__get_packed_size(env);
	if (n > IPC_FRAME_MAX)
		return EMSGSIZE;
	*size = IPC_FRAME_HDR + n;
	return 0;
}

/* See the header. */
void ipc_frame_write(uint8_t *buf, size_t size, const Openum__Envelope *env)
{
	size_t n = size - IPC_FRAME_HDR, packed;

	buf[0] = (uint8_t)(n >> 24);
	buf[1] = (uint8_t)(n >> 16);
	buf[2] = (uint8_t)(n >> 8);
	buf[3] = (uint8_t)n;
	packed = ipc_fast_pack(env, buf + IPC_FRAME_HDR);
	if (!packed)
		packed = openum__envelope__pack(env, buf + IPC_FRAME_HDR);
	if (packed != n) {
		/* size and pack disagreeing is a bug here or in protobuf-c */
		fprintf(stderr, "%s:%d: packed %zu bytes, expected %zu\n",
			__FILE__, __LINE__, packed, n);
		abort();
	}
}

/* Packs env behind a 4-byte big-endian length into one malloc'd buffer. */
int ipc_frame_encode(uint8_t **out, size_t *len, const Openum__Envelope *env)
{
	uint8_t *buf;
	size_t size;
	int err;

	if (!out || !len)
		return EINVAL;
	err = ipc_frame_size(env, &size);
	if (err)
		return err;
	buf = malloc(size);
	if (!buf)
		return ENOMEM;
	ipc_frame_write(buf, size, env);
	*out = buf;
	*len = size;
	return 0;
}

static int wire_varint(const uint8_t *p, size_t n, size_t *pos, uint64_t *v)
{
	uint64_t r = 0;

	for (unsigned shift = 0; shift <= 63; shift += 7) {
		uint8_t b;

		if (*pos >= n)
			return EBADMSG;
		b = p[(*pos)++];
		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return EBADMSG;
}

static int wire_skip(size_t n, size_t *pos, uint64_t count)
{
	if (count > n - *pos)
		return EBADMSG;
	*pos += (size_t)count;
	return 0;
}

/* Walks the top level of a protobuf message looking for field 1 (version)
 * without interpreting anything else. It lets a peer speaking another
 * protocol version be told so even when its body no longer unpacks as ours.
 * EBADMSG when the bytes are not well-formed protobuf wire format. */
static int wire_find_version(const uint8_t *p, size_t n, int *found,
			     uint64_t *version)
{
	size_t pos = 0;

	*found = 0;
	while (pos < n) {
		uint64_t tag, v;
		int err;

		err = wire_varint(p, n, &pos, &tag);
		if (err)
			return err;
		if ((tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
			return EBADMSG;
		switch (tag & 7) {
		case 0: /* varint */
			err = wire_varint(p, n, &pos, &v);
			if (!err && (tag >> 3) == 1) {
				*found = 1;
				*version = v;
			}
			break;
		case 1: /* 64-bit */
			err = wire_skip(n, &pos, 8);
			break;
		case 2: /* length-delimited */
			err = wire_varint(p, n, &pos, &v);
			if (!err)
				err = wire_skip(n, &pos, v);
			break;
		case 5: /* 32-bit */
			err = wire_skip(n, &pos, 4);
			break;
		default: /* groups (3, 4) and reserved types: protobuf-c refuses them */
			return EBADMSG;
		}
		if (err)
			return err;
		if ((tag >> 3) == 1 && (tag & 7) != 0)
			return EBADMSG;
	}
	return 0;
}

/* Whether m or a message inside it kept an unknown field numbered 0.
 * protobuf-c checks only a tag's first byte for field 0, so a tag of 0
 * written in two bytes (0x81 0x00) passes and is kept as an unknown field;
 * packed again it becomes the one byte 0x01, which no decoder takes. Field 0
 * is not protobuf: a frame holding one is refused like any undecodable one
 * (the top level is already checked by wire_find_version). */
static int field_zero(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;

	for (unsigned i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return 1;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const void *at = base + f->offset;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)at;

			for (size_t j = 0; j < n; j++)
				if (field_zero(v[j]))
					return 1;
		} else {
			const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)at;

			if (sub && field_zero(sub))
				return 1;
		}
	}
	return 0;
}

/* Decodes the first frame of buf into a (NULL: malloc); see ipc_frame.h
 * for the result codes. In an arena, the per-call messages try the direct
 * decoder of ipc_fast.c first. */
static int decode(struct ipc_arena *a, Openum__Envelope **out,
		  const uint8_t *buf, size_t len, size_t *consumed, char **cause)
{
	ProtobufCAllocator *pb = a ? &a->pb : NULL;
	Openum__Envelope *env;
	const uint8_t *body;
	uint32_t blen;
	uint64_t version = 0;
	int found, err;

	if (!out || !consumed || (!buf && len))
		return EINVAL;
	*consumed = 0;
	if (len < IPC_FRAME_HDR)
		return EAGAIN;
	blen = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
	       (uint32_t)buf[2] << 8 | (uint32_t)buf[3];
	if (blen > IPC_FRAME_MAX) {
		cause_set(cause, "frame of %lu bytes exceeds %d",
			  (unsigned long)blen, IPC_FRAME_MAX);
		return EMSGSIZE;
	}
	if (len - IPC_FRAME_HDR < blen)
		return EAGAIN;
	body = buf + IPC_FRAME_HDR;
	*consumed = IPC_FRAME_HDR + (size_t)blen;
	if (blen == 0) {
		cause_set(cause, "empty frame");
		return EBADMSG;
	}
	if (a && ipc_fast_unpack(a, out, body, blen))
		return 0;
	err = wire_find_version(body, blen, &found, &version);
	if (err) {
		cause_set(cause, "undecodable frame");
		return EBADMSG;
	}
	if (!found) {
		cause_set(cause, "frame without protocol version (want %d)",
			  IPC_PROTOCOL_VERSION);
		return EPROTO;
	}
	if (version != IPC_PROTOCOL_VERSION) {
		cause_set(cause, "protocol version %llu not supported (want %d)",
			  (unsigned long long)version, IPC_PROTOCOL_VERSION);
		return EPROTO;
	}
	env = openum__envelope__unpack(pb, blen, body);
	if (env && field_zero(&env->base)) {
		openum__envelope__free_unpacked(env, pb);
		env = NULL;
	}
	if (!env) {
		cause_set(cause, "undecodable frame");
		return EBADMSG;
	}
	if (env->body_case == OPENUM__ENVELOPE__BODY__NOT_SET) {
		openum__envelope__free_unpacked(env, pb);
		cause_set(cause, "frame without a body");
		return EBADMSG;
	}
	*out = env;
	return 0;
}

/* See the header. */
int ipc_frame_decode_cause(Openum__Envelope **out, const uint8_t *buf,
			   size_t len, size_t *consumed, char **cause)
{
	return decode(NULL, out, buf, len, consumed, cause);
}

static void *arena_alloc(void *data, size_t size)
{
	struct ipc_arena *a = data;
	size_t need = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) *
		      sizeof(max_align_t);
	void *p;

	if (need >= size && need <= sizeof a->buf - a->used) {
		p = (char *)a->buf + a->used;
		a->used += need;
		return p;
	}
	p = malloc(size);
	if (p)
		a->spilled++;
	return p;
}

static void arena_free(void *data, void *p)
{
	struct ipc_arena *a = data;

	if ((char *)p < (char *)a->buf || (char *)p >= (char *)a->buf + sizeof a->buf)
		free(p);
}

/* See the header. */
void ipc_arena_init(struct ipc_arena *a)
{
	a->pb = (ProtobufCAllocator){arena_alloc, arena_free, a};
	a->used = 0;
	a->spilled = 0;
}

/* See the header. */
int ipc_frame_decode_in(struct ipc_arena *a, Openum__Envelope **out,
			const uint8_t *buf, size_t len, size_t *consumed,
			char **cause)
{
	int err = decode(a, out, buf, len, consumed, cause);

	if (err)	/* protobuf-c freed what it had unpacked */
		a->used = a->spilled = 0;
	return err;
}

/* See the header. */
void ipc_frame_release(struct ipc_arena *a, Openum__Envelope *env)
{
	/* Only malloc'd parts need the walk: the rest goes with the reset. */
	if (env && a->spilled)
		openum__envelope__free_unpacked(env, &a->pb);
	a->used = a->spilled = 0;
}

/* ipc_frame_decode_cause without the reason. */
int ipc_frame_decode(Openum__Envelope **out, const uint8_t *buf, size_t len,
		     size_t *consumed)
{
	return ipc_frame_decode_cause(out, buf, len, consumed, NULL);
}

/* Body names for log lines. */
const char *ipc_body_name(Openum__Envelope__BodyCase body)
{
	switch (body) {
	case OPENUM__ENVELOPE__BODY__NOT_SET:          return "none";
	case OPENUM__ENVELOPE__BODY_HELLO:             return "hello";
	case OPENUM__ENVELOPE__BODY_SERVICE_REGISTER:  return "service_register";
	case OPENUM__ENVELOPE__BODY_SERVICE_STATUS:    return "service_status";
	case OPENUM__ENVELOPE__BODY_CALL_ROUTED:       return "call_routed";
	case OPENUM__ENVELOPE__BODY_CALL_ROUTED_ACK:   return "call_routed_ack";
	case OPENUM__ENVELOPE__BODY_CONFIG_CHANGED:    return "config_changed";
	case OPENUM__ENVELOPE__BODY_CONFIG_APPLIED:    return "config_applied";
	case OPENUM__ENVELOPE__BODY_STATUS_REQUEST:    return "status_request";
	case OPENUM__ENVELOPE__BODY_STATUS_REPLY:      return "status_reply";
	case OPENUM__ENVELOPE__BODY_ERROR:             return "error";
	case OPENUM__ENVELOPE__BODY_PLAY_ON_PHONE_REQUEST: return "play_on_phone_request";
	case OPENUM__ENVELOPE__BODY_PLAY_ON_PHONE_RESULT:  return "play_on_phone_result";
	default:                                       return "unknown";
	}
}
