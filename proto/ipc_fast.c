/* ipc_fast.c — CallRouted and CallRoutedAck envelopes packed and unpacked
 * in one pass each, byte for byte as protobuf-c would; see ipc_fast.h. */
#include "proto/ipc_fast.h"

#include <string.h>

enum { WT_VARINT = 0, WT_LEN = 2 };
#define TAG(field, wt) ((uint8_t)((field) << 3 | (wt)))

/* Envelope: version = 1, call_routed = 13, call_routed_ack = 14. */
#define ENV_VERSION TAG(1, WT_VARINT)
#define ENV_CALL_ROUTED TAG(13, WT_LEN)
#define ENV_CALL_ROUTED_ACK TAG(14, WT_LEN)

/* ---- packing -------------------------------------------------------- */

/* Where bytes go; p NULL only counts them. */
struct out {
	uint8_t *p;
	size_t n;
};

static void put_byte(struct out *o, uint8_t b)
{
	if (o->p)
		o->p[o->n] = b;
	o->n++;
}

static void put_varint(struct out *o, uint64_t v)
{
	while (v >= 0x80) {
		put_byte(o, (uint8_t)(v | 0x80));
		v >>= 7;
	}
	put_byte(o, (uint8_t)v);
}

static size_t varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* proto3 leaves a zero scalar, an empty string and empty bytes out. */
static void put_uint(struct out *o, uint8_t tag, uint64_t v)
{
	if (v) {
		put_byte(o, tag);
		put_varint(o, v);
	}
}

static void put_bytes(struct out *o, uint8_t tag, const void *b, size_t len)
{
	if (!len)
		return;
	put_byte(o, tag);
	put_varint(o, len);
	if (o->p)
		memcpy(o->p + o->n, b, len);
	o->n += len;
}

static void put_str(struct out *o, uint8_t tag, const char *s)
{
	if (s)
		put_bytes(o, tag, s, strlen(s));
}

static void pack_call_routed(struct out *o, const Openum__CallRouted *m)
{
	put_bytes(o, TAG(1, WT_LEN), m->token.data, m->token.len);
	put_str(o, TAG(2, WT_LEN), m->call_id);
	/* an enum is an int32 (its C type may be unsigned): a negative one
	 * goes out sign-extended to ten bytes */
	put_uint(o, TAG(3, WT_VARINT), (uint64_t)(int64_t)(int32_t)m->kind);
	put_str(o, TAG(4, WT_LEN), m->mailbox);
	put_str(o, TAG(5, WT_LEN), m->dial_plan);
	put_str(o, TAG(6, WT_LEN), m->gateway);
	put_str(o, TAG(7, WT_LEN), m->caller);
	put_uint(o, TAG(8, WT_VARINT), m->expires_unix_ms);
}

static void pack_ack(struct out *o, const Openum__CallRoutedAck *m)
{
	put_bytes(o, TAG(1, WT_LEN), m->token.data, m->token.len);
	put_uint(o, TAG(2, WT_VARINT), m->accepted ? 1 : 0);
	put_str(o, TAG(3, WT_LEN), m->reason);
}

/* See the header. */
size_t ipc_fast_pack(const Openum__Envelope *env, uint8_t *out)
{
	struct out body = {NULL, 0}, o = {out, 0};
	const ProtobufCMessage *m;
	uint8_t tag;

	switch (env->body_case) {
	case OPENUM__ENVELOPE__BODY_CALL_ROUTED:
		m = &env->call_routed->base;
		tag = ENV_CALL_ROUTED;
		break;
	case OPENUM__ENVELOPE__BODY_CALL_ROUTED_ACK:
		m = &env->call_routed_ack->base;
		tag = ENV_CALL_ROUTED_ACK;
		break;
	default:
		return 0;
	}
	/* unknown fields kept from a decode are protobuf-c's to write */
	if (env->base.n_unknown_fields || m->n_unknown_fields)
		return 0;
	/* the body's length comes before it: count it first */
	if (tag == ENV_CALL_ROUTED)
		pack_call_routed(&body, env->call_routed);
	else
		pack_ack(&body, env->call_routed_ack);
	put_uint(&o, ENV_VERSION, env->version);
	if (!out)
		return o.n + 1 + varint_size(body.n) + body.n;
	put_byte(&o, tag);
	put_varint(&o, body.n);
	body.p = out + o.n;
	body.n = 0;
	if (tag == ENV_CALL_ROUTED)
		pack_call_routed(&body, env->call_routed);
	else
		pack_ack(&body, env->call_routed_ack);
	return o.n + body.n;
}

/* ---- unpacking ------------------------------------------------------ */

/* Reading position; every reader fails (0) on anything outside the
 * canonical form, and the caller then hands the body to protobuf-c. */
struct in {
	const uint8_t *p, *end;
};

/* A varint of at most max bytes. protobuf-c keeps only the low 64 bits of
 * a 10-byte varint; one whose 10th byte carries more is not taken here. */
static int get_varint(struct in *r, uint64_t *v, unsigned max)
{
	uint64_t x = 0;

	for (unsigned i = 0; i < max && r->p < r->end; i++) {
		uint8_t b = *r->p++;

		if (i == 9 && b > 1)
			return 0;
		x |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*v = x;
			return 1;
		}
	}
	return 0;
}

/* A length-delimited field's bytes (protobuf-c reads the length from at
 * most 5 bytes and refuses one above INT_MAX). */
static int get_span(struct in *r, const uint8_t **s, size_t *n)
{
	uint64_t len;

	if (!get_varint(r, &len, 5) || len > (uint64_t)(r->end - r->p) ||
	    len > 0x7fffffff)
		return 0;
	*s = r->p;
	*n = (size_t)len;
	r->p += len;
	return 1;
}

/* Room in the arena's own buffer, never malloc: a body too big for it
 * goes to protobuf-c, which may spill. */
static void *take(struct ipc_arena *a, size_t size)
{
	size_t need = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) *
		      sizeof(max_align_t);
	void *p;

	if (need < size || need > sizeof a->buf - a->used)
		return NULL;
	p = (char *)a->buf + a->used;
	a->used += need;
	return p;
}

/* A length-delimited field as protobuf-c sets it: a string copied and
 * NUL-terminated, bytes copied (none: data NULL). */
static int get_str(struct in *r, struct ipc_arena *a, char **out)
{
	const uint8_t *s;
	size_t n;
	char *p;

	if (!get_span(r, &s, &n) || !(p = take(a, n + 1)))
		return 0;
	memcpy(p, s, n);
	p[n] = '\0';
	*out = p;
	return 1;
}

static int get_bytes(struct in *r, struct ipc_arena *a, ProtobufCBinaryData *out)
{
	const uint8_t *s;
	size_t n;

	if (!get_span(r, &s, &n))
		return 0;
	out->len = n;
	out->data = NULL;
	if (n) {
		if (!(out->data = take(a, n)))
			return 0;
		memcpy(out->data, s, n);
	}
	return 1;
}

/* The next field's tag: one byte, its number above the last one's (each
 * field once, in order), its wire type the one expected. */
static int get_tag(struct in *r, unsigned *last, unsigned *field)
{
	uint8_t t = *r->p;

	if (t & 0x80 || (t >> 3) <= *last)
		return 0;
	r->p++;
	*field = *last = t >> 3;
	return 1;
}

static int unpack_call_routed(struct in *r, struct ipc_arena *a,
			      Openum__CallRouted *m)
{
	unsigned last = 0, field;
	uint64_t v;

	*m = (Openum__CallRouted)OPENUM__CALL_ROUTED__INIT;
	while (r->p < r->end) {
		uint8_t wt = *r->p & 7;

		if (!get_tag(r, &last, &field))
			return 0;
		switch (field) {
		case 1:
			if (wt != WT_LEN || !get_bytes(r, a, &m->token))
				return 0;
			break;
		case 2: case 4: case 5: case 6: case 7: {
			char **s = field == 2 ? &m->call_id :
				   field == 4 ? &m->mailbox :
				   field == 5 ? &m->dial_plan :
				   field == 6 ? &m->gateway : &m->caller;

			if (wt != WT_LEN || !get_str(r, a, s))
				return 0;
			break;
		}
		case 3:	/* protobuf-c keeps an int32's low 32 bits */
			if (wt != WT_VARINT || !get_varint(r, &v, 10))
				return 0;
			m->kind = (Openum__CallKind)(int32_t)(uint32_t)v;
			break;
		case 8:
			if (wt != WT_VARINT || !get_varint(r, &v, 10))
				return 0;
			m->expires_unix_ms = v;
			break;
		default:
			return 0;
		}
	}
	return 1;
}

static int unpack_ack(struct in *r, struct ipc_arena *a,
		      Openum__CallRoutedAck *m)
{
	unsigned last = 0, field;
	uint64_t v;

	*m = (Openum__CallRoutedAck)OPENUM__CALL_ROUTED_ACK__INIT;
	while (r->p < r->end) {
		uint8_t wt = *r->p & 7;

		if (!get_tag(r, &last, &field))
			return 0;
		switch (field) {
		case 1:
			if (wt != WT_LEN || !get_bytes(r, a, &m->token))
				return 0;
			break;
		case 2:
			if (wt != WT_VARINT || !get_varint(r, &v, 10))
				return 0;
			m->accepted = v != 0;
			break;
		case 3:
			if (wt != WT_LEN || !get_str(r, a, &m->reason))
				return 0;
			break;
		default:
			return 0;
		}
	}
	return 1;
}

/* See the header. */
int ipc_fast_unpack(struct ipc_arena *a, Openum__Envelope **out,
		    const uint8_t *body, size_t n)
{
	struct in r = {body, body + n}, sub;
	size_t used = a->used, len;
	Openum__Envelope *env;
	const uint8_t *s;
	uint64_t version;
	uint8_t tag;
	int ok;

	/* version first, then the body as the last field */
	if (n < 4 || *r.p++ != ENV_VERSION || !get_varint(&r, &version, 10) ||
	    version != IPC_PROTOCOL_VERSION || r.p == r.end)
		return 0;
	tag = *r.p++;
	if ((tag != ENV_CALL_ROUTED && tag != ENV_CALL_ROUTED_ACK) ||
	    !get_span(&r, &s, &len) || r.p != r.end)
		return 0;
	env = take(a, sizeof *env);
	if (!env)
		return 0;
	*env = (Openum__Envelope)OPENUM__ENVELOPE__INIT;
	env->version = (uint32_t)version;
	sub = (struct in){s, s + len};
	if (tag == ENV_CALL_ROUTED) {
		env->body_case = OPENUM__ENVELOPE__BODY_CALL_ROUTED;
		ok = (env->call_routed = take(a, sizeof *env->call_routed)) &&
		     unpack_call_routed(&sub, a, env->call_routed);
	} else {
		env->body_case = OPENUM__ENVELOPE__BODY_CALL_ROUTED_ACK;
		ok = (env->call_routed_ack = take(a, sizeof *env->call_routed_ack)) &&
		     unpack_ack(&sub, a, env->call_routed_ack);
	}
	if (!ok) {
		a->used = used;
		return 0;
	}
	*out = env;
	return 1;
}
