/* ipc_fast.c — CallRouted and CallRoutedAck envelopes packed and unpacked
 * in one pass each, byte for byte as protobuf-c would; see ipc_fast.h. */
#include "proto/ipc_fast.h"

#include <stddef.h>
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

/* A message's fields in number order (field n at index n - 1): how each is
 * held in the protobuf-c struct and where. Packing and unpacking both read
 * these tables. */
enum kind { K_BYTES, K_STR, K_INT32, K_UINT64, K_BOOL };
struct field {
	uint8_t kind;
	uint16_t off;
};

#define CR(f) offsetof(Openum__CallRouted, f)
static const struct field call_routed_fields[] = {
	{K_BYTES, CR(token)}, {K_STR, CR(call_id)}, {K_INT32, CR(kind)},
	{K_STR, CR(mailbox)}, {K_STR, CR(dial_plan)}, {K_STR, CR(gateway)},
	{K_STR, CR(caller)}, {K_UINT64, CR(expires_unix_ms)},
};
#define ACK(f) offsetof(Openum__CallRoutedAck, f)
static const struct field ack_fields[] = {
	{K_BYTES, ACK(token)}, {K_BOOL, ACK(accepted)}, {K_STR, ACK(reason)},
};

/* The two bodies: their Envelope tag, body case, descriptor and fields. */
struct body {
	uint8_t tag;
	Openum__Envelope__BodyCase body_case;
	const ProtobufCMessageDescriptor *desc;
	const struct field *f;
	unsigned n;
};

static const struct body bodies[] = {
	{ENV_CALL_ROUTED, OPENUM__ENVELOPE__BODY_CALL_ROUTED,
	 &openum__call_routed__descriptor, call_routed_fields,
	 sizeof call_routed_fields / sizeof call_routed_fields[0]},
	{ENV_CALL_ROUTED_ACK, OPENUM__ENVELOPE__BODY_CALL_ROUTED_ACK,
	 &openum__call_routed_ack__descriptor, ack_fields,
	 sizeof ack_fields / sizeof ack_fields[0]},
};

static void pack_fields(struct out *o, const char *m, const struct body *b)
{
	for (unsigned i = 0; i < b->n; i++) {
		const void *at = m + b->f[i].off;
		uint8_t len_tag = TAG(i + 1, WT_LEN), int_tag = TAG(i + 1, WT_VARINT);

		switch (b->f[i].kind) {
		case K_BYTES: {
			const ProtobufCBinaryData *d = at;

			put_bytes(o, len_tag, d->data, d->len);
			break;
		}
		case K_STR:
			put_str(o, len_tag, *(char *const *)at);
			break;
		case K_INT32:	/* an enum (its C type may be unsigned): a
				 * negative one goes out sign-extended, ten bytes */
			put_uint(o, int_tag, (uint64_t)(int64_t)*(const int32_t *)at);
			break;
		case K_UINT64:
			put_uint(o, int_tag, *(const uint64_t *)at);
			break;
		case K_BOOL:
			put_uint(o, int_tag, *(const protobuf_c_boolean *)at ? 1 : 0);
			break;
		}
	}
}

/* The body of env when it is one of the two, else NULL. */
static const struct body *body_of(const Openum__Envelope *env,
				  const ProtobufCMessage **m)
{
	switch (env->body_case) {
	case OPENUM__ENVELOPE__BODY_CALL_ROUTED:
		*m = &env->call_routed->base;
		return &bodies[0];
	case OPENUM__ENVELOPE__BODY_CALL_ROUTED_ACK:
		*m = &env->call_routed_ack->base;
		return &bodies[1];
	default:
		return NULL;
	}
}

/* See the header. */
size_t ipc_fast_pack(const Openum__Envelope *env, uint8_t *out)
{
	struct out body = {NULL, 0}, o = {out, 0};
	const ProtobufCMessage *m = NULL;
	const struct body *b = body_of(env, &m);

	/* unknown fields kept from a decode are protobuf-c's to write */
	if (!b || env->base.n_unknown_fields || m->n_unknown_fields)
		return 0;
	/* the body's length comes before it: count it first */
	pack_fields(&body, (const char *)m, b);
	put_uint(&o, ENV_VERSION, env->version);
	if (!out)
		return o.n + 1 + varint_size(body.n) + body.n;
	put_byte(&o, b->tag);
	put_varint(&o, body.n);
	body.p = out + o.n;
	body.n = 0;
	pack_fields(&body, (const char *)m, b);
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

/* Reads a message's fields into m (already initialised): each tag one
 * byte, each field known, once and in order, with its own wire type. */
static int unpack_fields(struct in *r, struct ipc_arena *a, char *m,
			 const struct body *b)
{
	unsigned last = 0;

	while (r->p < r->end) {
		uint8_t t = *r->p++;
		unsigned num = t >> 3;
		const struct field *f;
		void *at;
		uint64_t v;

		if (t & 0x80 || num <= last || num > b->n)
			return 0;
		last = num;
		f = &b->f[num - 1];
		at = m + f->off;
		if ((t & 7) != (f->kind <= K_STR ? WT_LEN : WT_VARINT))
			return 0;
		if (f->kind == K_BYTES) {
			if (!get_bytes(r, a, at))
				return 0;
		} else if (f->kind == K_STR) {
			if (!get_str(r, a, at))
				return 0;
		} else if (!get_varint(r, &v, 10)) {
			return 0;
		} else if (f->kind == K_INT32) {
			/* protobuf-c keeps an int32's low 32 bits */
			*(int32_t *)at = (int32_t)(uint32_t)v;
		} else if (f->kind == K_UINT64) {
			*(uint64_t *)at = v;
		} else {
			*(protobuf_c_boolean *)at = v != 0;
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
	const struct body *b;
	Openum__Envelope *env;
	ProtobufCMessage *m;
	const uint8_t *s;
	uint64_t version;
	uint8_t tag;
	int ok;

	/* version first, then the body as the last field */
	if (n < 4 || *r.p++ != ENV_VERSION || !get_varint(&r, &version, 10) ||
	    version != IPC_PROTOCOL_VERSION || r.p == r.end)
		return 0;
	tag = *r.p++;
	b = tag == bodies[0].tag ? &bodies[0] : tag == bodies[1].tag ? &bodies[1] : NULL;
	if (!b || !get_span(&r, &s, &len) || r.p != r.end)
		return 0;
	env = take(a, sizeof *env);
	m = take(a, b->desc->sizeof_message);
	ok = env && m;
	if (ok) {
		*env = (Openum__Envelope)OPENUM__ENVELOPE__INIT;
		env->version = (uint32_t)version;
		env->body_case = b->body_case;
		if (b->body_case == OPENUM__ENVELOPE__BODY_CALL_ROUTED)
			env->call_routed = (Openum__CallRouted *)m;
		else
			env->call_routed_ack = (Openum__CallRoutedAck *)m;
		b->desc->message_init(m);
		sub = (struct in){s, s + len};
		ok = unpack_fields(&sub, a, (char *)m, b);
	}
	if (!ok) {
		a->used = used;
		return 0;
	}
	*out = env;
	return 1;
}
