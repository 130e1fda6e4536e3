/* test_ipc_frame.c — the IPC frame codec: round trips, reassembly, and every
 * way a peer's bytes can be refused. */
#include "proto/ipc_fast.h"
#include "proto/ipc_frame.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int test_ipc_frame_roundtrip(void);
int test_ipc_frame_arena(void);
int test_ipc_frame_two_frames(void);
int test_ipc_frame_bytewise(void);
int test_ipc_frame_truncated(void);
int test_ipc_frame_oversized(void);
int test_ipc_frame_wrong_version(void);
int test_ipc_frame_garbage(void);
int test_ipc_frame_zero_length(void);
int test_ipc_frame_no_body(void);
int test_ipc_frame_body_name(void);
int test_ipc_frame_fast_pack(void);
int test_ipc_frame_fast_unpack_canonical_only(void);

/* Storage for one envelope of each body type. */
struct bodies {
	Openum__Hello hello;
	Openum__SipEndpoint ep4, ep6, *eps[2];
	Openum__ServiceRegister reg;
	Openum__ServiceStatus status;
	uint8_t token[16];
	Openum__CallRouted routed;
	Openum__CallRoutedAck ack;
	Openum__ConfigChanged changed;
	Openum__ConfigApplied applied;
	Openum__StatusRequest sreq;
	Openum__InstanceStatus inst, *insts[1];
	Openum__StatusReply sreply;
	Openum__Error error;
};

static const Openum__Envelope__BodyCase all_cases[] = {
	OPENUM__ENVELOPE__BODY_HELLO,
	OPENUM__ENVELOPE__BODY_SERVICE_REGISTER,
	OPENUM__ENVELOPE__BODY_SERVICE_STATUS,
	OPENUM__ENVELOPE__BODY_CALL_ROUTED,
	OPENUM__ENVELOPE__BODY_CALL_ROUTED_ACK,
	OPENUM__ENVELOPE__BODY_CONFIG_CHANGED,
	OPENUM__ENVELOPE__BODY_CONFIG_APPLIED,
	OPENUM__ENVELOPE__BODY_STATUS_REQUEST,
	OPENUM__ENVELOPE__BODY_STATUS_REPLY,
	OPENUM__ENVELOPE__BODY_ERROR,
};

static void bodies_init(struct bodies *b)
{
	openum__hello__init(&b->hello);
	b->hello.role = OPENUM__ROLE__ROLE_UMSERVICE;
	b->hello.pid = 4242;
	b->hello.software = "openum-test";

	openum__sip_endpoint__init(&b->ep4);
	b->ep4.family = OPENUM__ADDRESS_FAMILY__AF_IPV4;
	b->ep4.transport = OPENUM__TRANSPORT__TRANSPORT_TCP;
	b->ep4.host = "127.0.0.1";
	b->ep4.port = 5062;
	openum__sip_endpoint__init(&b->ep6);
	b->ep6.family = OPENUM__ADDRESS_FAMILY__AF_IPV6;
	b->ep6.transport = OPENUM__TRANSPORT__TRANSPORT_TLS;
	b->ep6.host = "::1";
	b->ep6.port = 5063;
	b->eps[0] = &b->ep4;
	b->eps[1] = &b->ep6;

	openum__service_register__init(&b->reg);
	b->reg.instance_id = "um1";
	b->reg.n_endpoints = 2;
	b->reg.endpoints = b->eps;
	b->reg.max_calls_allowed = 100;
	b->reg.fqdn = "um1.example.test";
	b->reg.pid = 77;

	openum__service_status__init(&b->status);
	b->status.active_calls = 3;
	b->status.accepting = 1;

	for (size_t i = 0; i < sizeof b->token; i++)
		b->token[i] = (uint8_t)(i * 17);
	openum__call_routed__init(&b->routed);
	b->routed.token.data = b->token;
	b->routed.token.len = sizeof b->token;
	b->routed.call_id = "abc@gw";
	b->routed.kind = OPENUM__CALL_KIND__CALL_KIND_SUBSCRIBER_ACCESS;
	b->routed.mailbox = "1001";
	b->routed.dial_plan = "dp1";
	b->routed.gateway = "gw1";
	b->routed.caller = "sip:+15550100@gw";
	b->routed.expires_unix_ms = 1700000000123ULL;

	openum__call_routed_ack__init(&b->ack);
	b->ack.token.data = b->token;
	b->ack.token.len = sizeof b->token;
	b->ack.accepted = 1;
	b->ack.reason = "ok";

	openum__config_changed__init(&b->changed);
	b->changed.object = "umipgateway";
	b->changed.reason = "set-umipgateway gw1";

	openum__config_applied__init(&b->applied);
	b->applied.instances_notified = 2;

	openum__status_request__init(&b->sreq);

	openum__instance_status__init(&b->inst);
	b->inst.instance_id = "um1";
	b->inst.pid = 77;
	b->inst.n_endpoints = 2;
	b->inst.endpoints = b->eps;
	b->inst.calls_routed = 12345678901ULL;
	b->insts[0] = &b->inst;
	openum__status_reply__init(&b->sreply);
	b->sreply.router_pid = 1;
	b->sreply.n_instances = 1;
	b->sreply.instances = b->insts;
	b->sreply.started_unix_ms = 99;

	openum__error__init(&b->error);
	b->error.code = EPROTO;
	b->error.message = "protocol version 7 not supported (want 2)";
}

static void env_set(Openum__Envelope *env, struct bodies *b,
		    Openum__Envelope__BodyCase bc)
{
	ipc_envelope_init(env);
	env->body_case = bc;
	switch (bc) {
	case OPENUM__ENVELOPE__BODY_HELLO: env->hello = &b->hello; break;
	case OPENUM__ENVELOPE__BODY_SERVICE_REGISTER: env->service_register = &b->reg; break;
	case OPENUM__ENVELOPE__BODY_SERVICE_STATUS: env->service_status = &b->status; break;
	case OPENUM__ENVELOPE__BODY_CALL_ROUTED: env->call_routed = &b->routed; break;
	case OPENUM__ENVELOPE__BODY_CALL_ROUTED_ACK: env->call_routed_ack = &b->ack; break;
	case OPENUM__ENVELOPE__BODY_CONFIG_CHANGED: env->config_changed = &b->changed; break;
	case OPENUM__ENVELOPE__BODY_CONFIG_APPLIED: env->config_applied = &b->applied; break;
	case OPENUM__ENVELOPE__BODY_STATUS_REQUEST: env->status_request = &b->sreq; break;
	case OPENUM__ENVELOPE__BODY_STATUS_REPLY: env->status_reply = &b->sreply; break;
	case OPENUM__ENVELOPE__BODY_ERROR: env->error = &b->error; break;
	default: break;
	}
}

/* Field-level checks of one decoded body against what bodies_init set. */
static int check_body(const Openum__Envelope *d)
{
	switch (d->body_case) {
	case OPENUM__ENVELOPE__BODY_HELLO:
		UT_ASSERT_INT(d->hello->role, OPENUM__ROLE__ROLE_UMSERVICE);
		UT_ASSERT_INT(d->hello->pid, 4242);
		UT_ASSERT_STR(d->hello->software, "openum-test");
		break;
	case OPENUM__ENVELOPE__BODY_SERVICE_REGISTER:
		UT_ASSERT_STR(d->service_register->instance_id, "um1");
		UT_ASSERT_INT(d->service_register->n_endpoints, 2);
		UT_ASSERT_STR(d->service_register->endpoints[1]->host, "::1");
		UT_ASSERT_INT(d->service_register->endpoints[1]->port, 5063);
		UT_ASSERT_INT(d->service_register->endpoints[1]->transport,
			      OPENUM__TRANSPORT__TRANSPORT_TLS);
		UT_ASSERT_INT(d->service_register->max_calls_allowed, 100);
		break;
	case OPENUM__ENVELOPE__BODY_SERVICE_STATUS:
		UT_ASSERT_INT(d->service_status->active_calls, 3);
		UT_ASSERT_INT(d->service_status->accepting, 1);
		break;
	case OPENUM__ENVELOPE__BODY_CALL_ROUTED:
		UT_ASSERT_INT(d->call_routed->token.len, 16);
		UT_ASSERT_INT(d->call_routed->token.data[15], (15 * 17) & 0xff);
		UT_ASSERT_INT(d->call_routed->kind,
			      OPENUM__CALL_KIND__CALL_KIND_SUBSCRIBER_ACCESS);
		UT_ASSERT_STR(d->call_routed->caller, "sip:+15550100@gw");
		UT_ASSERT_INT(d->call_routed->expires_unix_ms, 1700000000123ULL);
		break;
	case OPENUM__ENVELOPE__BODY_CALL_ROUTED_ACK:
		UT_ASSERT_INT(d->call_routed_ack->accepted, 1);
		UT_ASSERT_STR(d->call_routed_ack->reason, "ok");
		break;
	case OPENUM__ENVELOPE__BODY_CONFIG_CHANGED:
		UT_ASSERT_STR(d->config_changed->object, "umipgateway");
		break;
	case OPENUM__ENVELOPE__BODY_CONFIG_APPLIED:
		UT_ASSERT_INT(d->config_applied->instances_notified, 2);
		break;
	case OPENUM__ENVELOPE__BODY_STATUS_REQUEST:
		UT_ASSERT(d->status_request != NULL);
		break;
	case OPENUM__ENVELOPE__BODY_STATUS_REPLY:
		UT_ASSERT_INT(d->status_reply->n_instances, 1);
		UT_ASSERT_INT(d->status_reply->instances[0]->calls_routed,
			      12345678901ULL);
		UT_ASSERT_INT(d->status_reply->instances[0]->n_endpoints, 2);
		break;
	case OPENUM__ENVELOPE__BODY_ERROR:
		UT_ASSERT_INT(d->error->code, EPROTO);
		UT_ASSERT_STR(d->error->message,
			      "protocol version 7 not supported (want 2)");
		break;
	default:
		UT_ASSERT(!"unexpected body");
	}
	return 0;
}

int test_ipc_frame_roundtrip(void)
{
	struct bodies b;

	bodies_init(&b);
	for (size_t i = 0; i < sizeof all_cases / sizeof all_cases[0]; i++) {
		Openum__Envelope env, *d = NULL;
		uint8_t *buf = NULL;
		size_t len = 0, used = 0;

		env_set(&env, &b, all_cases[i]);
		UT_ASSERT_INT(ipc_frame_encode(&buf, &len, &env), 0);
		UT_ASSERT(len > IPC_FRAME_HDR);
		UT_ASSERT_INT(((size_t)buf[0] << 24 | (size_t)buf[1] << 16 |
			       (size_t)buf[2] << 8 | buf[3]),
			      len - IPC_FRAME_HDR);
		UT_ASSERT_INT(ipc_frame_decode(&d, buf, len, &used), 0);
		UT_ASSERT_INT(used, len);
		UT_ASSERT_INT(d->version, IPC_PROTOCOL_VERSION);
		UT_ASSERT_INT(d->body_case, all_cases[i]);
		if (check_body(d)) {
			fprintf(stderr, "  body %s\n", ipc_body_name(all_cases[i]));
			return 1;
		}
		openum__envelope__free_unpacked(d, NULL);
		free(buf);
	}
	return 0;
}

/* Decoding into a connection's arena: every body reads back the same, one
 * too big for the arena spills to malloc and is freed (LSan in the
 * sanitizer build says if not), a bad frame leaves the arena empty, and a
 * frame written in place is the frame ipc_frame_encode makes. */
int test_ipc_frame_arena(void)
{
	static struct ipc_arena a;
	struct bodies b;

	ipc_arena_init(&a);
	bodies_init(&b);
	for (size_t i = 0; i < sizeof all_cases / sizeof all_cases[0]; i++) {
		Openum__Envelope env, *d = NULL;
		uint8_t *buf = NULL, *in_place;
		size_t len = 0, used = 0, size = 0;

		env_set(&env, &b, all_cases[i]);
		UT_ASSERT_INT(ipc_frame_encode(&buf, &len, &env), 0);
		UT_ASSERT_INT(ipc_frame_size(&env, &size), 0);
		UT_ASSERT_INT(size, len);
		in_place = malloc(size);
		UT_ASSERT(in_place);
		ipc_frame_write(in_place, size, &env);
		UT_ASSERT(!memcmp(in_place, buf, len));
		free(in_place);
		UT_ASSERT_INT(ipc_frame_decode_in(&a, &d, buf, len, &used, NULL), 0);
		UT_ASSERT_INT(used, len);
		UT_ASSERT(a.used > 0 && a.spilled == 0);
		UT_ASSERT_INT(d->body_case, all_cases[i]);
		if (check_body(d)) {
			fprintf(stderr, "  body %s (arena)\n", ipc_body_name(all_cases[i]));
			return 1;
		}
		ipc_frame_release(&a, d);
		UT_ASSERT_INT(a.used, 0);
		free(buf);
	}
	{
		/* 600 endpoints of 32 bytes' host each: more than IPC_ARENA_SIZE */
		static Openum__SipEndpoint eps[600], *pe[600];
		static char hosts[600][40];
		Openum__ServiceRegister reg = OPENUM__SERVICE_REGISTER__INIT;
		Openum__Envelope env, *d = NULL;
		uint8_t *buf = NULL;
		size_t len = 0, used = 0;

		for (size_t i = 0; i < 600; i++) {
			openum__sip_endpoint__init(&eps[i]);
			snprintf(hosts[i], sizeof hosts[i], "2001:db8::%zx:0:0:0:%zx", i, i);
			eps[i].host = hosts[i];
			eps[i].port = 5062;
			pe[i] = &eps[i];
		}
		reg.instance_id = "big";
		reg.n_endpoints = 600;
		reg.endpoints = pe;
		ipc_envelope_init(&env);
		env.body_case = OPENUM__ENVELOPE__BODY_SERVICE_REGISTER;
		env.service_register = &reg;
		UT_ASSERT_INT(ipc_frame_encode(&buf, &len, &env), 0);
		UT_ASSERT_INT(ipc_frame_decode_in(&a, &d, buf, len, &used, NULL), 0);
		UT_ASSERT(a.spilled > 0);
		UT_ASSERT_INT(d->service_register->n_endpoints, 600);
		UT_ASSERT_STR(d->service_register->endpoints[599]->host, hosts[599]);
		UT_ASSERT_STR(d->service_register->endpoints[0]->host, hosts[0]);
		ipc_frame_release(&a, d);
		UT_ASSERT(a.used == 0 && a.spilled == 0);
		/* the same frame cut short inside the body does not unpack */
		buf[3] = (uint8_t)(buf[3] - 7);
		UT_ASSERT_INT(ipc_frame_decode_in(&a, &d, buf, len - 7, &used, NULL),
			      EBADMSG);
		UT_ASSERT(a.used == 0 && a.spilled == 0);
		free(buf);
	}
	return 0;
}

int test_ipc_frame_two_frames(void)
{
	struct bodies b;
	Openum__Envelope e1, e2, *d = NULL;
	uint8_t *f1, *f2, both[512];
	size_t l1, l2, used;

	bodies_init(&b);
	env_set(&e1, &b, OPENUM__ENVELOPE__BODY_HELLO);
	env_set(&e2, &b, OPENUM__ENVELOPE__BODY_CONFIG_CHANGED);
	UT_ASSERT_INT(ipc_frame_encode(&f1, &l1, &e1), 0);
	UT_ASSERT_INT(ipc_frame_encode(&f2, &l2, &e2), 0);
	UT_ASSERT(l1 + l2 <= sizeof both);
	memcpy(both, f1, l1);
	memcpy(both + l1, f2, l2);

	UT_ASSERT_INT(ipc_frame_decode(&d, both, l1 + l2, &used), 0);
	UT_ASSERT_INT(used, l1);
	UT_ASSERT_INT(d->body_case, OPENUM__ENVELOPE__BODY_HELLO);
	openum__envelope__free_unpacked(d, NULL);
	d = NULL;
	UT_ASSERT_INT(ipc_frame_decode(&d, both + used, l1 + l2 - used, &used), 0);
	UT_ASSERT_INT(used, l2);
	UT_ASSERT_INT(d->body_case, OPENUM__ENVELOPE__BODY_CONFIG_CHANGED);
	UT_ASSERT_STR(d->config_changed->object, "umipgateway");
	openum__envelope__free_unpacked(d, NULL);
	/* Nothing left: EAGAIN, not an error. */
	d = NULL;
	UT_ASSERT_INT(ipc_frame_decode(&d, both, 0, &used), EAGAIN);
	UT_ASSERT(d == NULL);
	free(f1);
	free(f2);
	return 0;
}

int test_ipc_frame_bytewise(void)
{
	struct bodies b;
	Openum__Envelope env, *d = NULL;
	uint8_t *f;
	size_t len, used = 99;

	bodies_init(&b);
	env_set(&env, &b, OPENUM__ENVELOPE__BODY_SERVICE_REGISTER);
	UT_ASSERT_INT(ipc_frame_encode(&f, &len, &env), 0);
	for (size_t n = 0; n < len; n++) {
		UT_ASSERT_INT(ipc_frame_decode(&d, f, n, &used), EAGAIN);
		UT_ASSERT_INT(used, 0);
		UT_ASSERT(d == NULL);
	}
	UT_ASSERT_INT(ipc_frame_decode(&d, f, len, &used), 0);
	UT_ASSERT_INT(used, len);
	UT_ASSERT(check_body(d) == 0);
	openum__envelope__free_unpacked(d, NULL);
	free(f);
	return 0;
}

int test_ipc_frame_truncated(void)
{
	struct bodies b;
	Openum__Envelope env, *d = NULL;
	uint8_t *f;
	size_t len, used;

	bodies_init(&b);
	env_set(&env, &b, OPENUM__ENVELOPE__BODY_CALL_ROUTED);
	UT_ASSERT_INT(ipc_frame_encode(&f, &len, &env), 0);
	/* The body is cut short: the header says more is coming. */
	UT_ASSERT_INT(ipc_frame_decode(&d, f, len - 1, &used), EAGAIN);
	UT_ASSERT_INT(used, 0);
	/* A header that lies short: the body ends inside a field. */
	f[3] = (uint8_t)(f[3] - 3);
	UT_ASSERT_INT(ipc_frame_decode(&d, f, len, &used), EBADMSG);
	UT_ASSERT_INT(used, len - 3);
	UT_ASSERT(d == NULL);
	free(f);
	return 0;
}

int test_ipc_frame_oversized(void)
{
	static const uint8_t big[] = {0x00, 0x01, 0x86, 0xa0, 0x08, 0x01}; /* 100000 */
	uint8_t max_hdr[] = {0x00, 0x01, 0x00, 0x00, 0x08, 0x01}; /* 65536 */
	Openum__Envelope env, *d = NULL;
	Openum__ConfigChanged cc = OPENUM__CONFIG_CHANGED__INIT;
	char *cause = NULL, *huge;
	uint8_t *f = NULL;
	size_t used = 99, len = 0;

	UT_ASSERT_INT(ipc_frame_decode_cause(&d, big, sizeof big, &used, &cause),
		      EMSGSIZE);
	UT_ASSERT_INT(used, 0);
	UT_ASSERT(d == NULL);
	UT_ASSERT_STR(cause, "frame of 100000 bytes exceeds 65536");
	free(cause);
	/* Refused as soon as the header is there, without waiting for it. */
	UT_ASSERT_INT(ipc_frame_decode(&d, big, 4, &used), EMSGSIZE);
	/* Exactly the maximum is fine: it just waits for the body. */
	UT_ASSERT_INT(ipc_frame_decode(&d, max_hdr, sizeof max_hdr, &used), EAGAIN);
	max_hdr[3] = 1; /* 65537 */
	UT_ASSERT_INT(ipc_frame_decode(&d, max_hdr, sizeof max_hdr, &used), EMSGSIZE);
	/* The encoder refuses to produce one. */
	huge = malloc(IPC_FRAME_MAX + 1);
	UT_ASSERT(huge != NULL);
	memset(huge, 'x', IPC_FRAME_MAX);
	huge[IPC_FRAME_MAX] = '\0';
	cc.object = huge;
	ipc_envelope_init(&env);
	env.body_case = OPENUM__ENVELOPE__BODY_CONFIG_CHANGED;
	env.config_changed = &cc;
	UT_ASSERT_INT(ipc_frame_encode(&f, &len, &env), EMSGSIZE);
	UT_ASSERT(f == NULL);
	/* ... while a body of exactly IPC_FRAME_MAX goes through both ways.
	 * Envelope overhead: version 2 bytes, tag+len 4, object tag+len 4. */
	huge[IPC_FRAME_MAX - 10] = '\0';
	UT_ASSERT_INT(ipc_frame_encode(&f, &len, &env), 0);
	UT_ASSERT_INT(len, IPC_FRAME_HDR + IPC_FRAME_MAX);
	UT_ASSERT_INT(ipc_frame_decode(&d, f, len, &used), 0);
	UT_ASSERT_INT(strlen(d->config_changed->object), IPC_FRAME_MAX - 10);
	openum__envelope__free_unpacked(d, NULL);
	free(f);
	free(huge);
	return 0;
}

int test_ipc_frame_wrong_version(void)
{
	struct bodies b;
	Openum__Envelope env, *d = NULL;
	uint8_t *f;
	size_t len, used;
	char *cause = NULL;
	/* Version 3 with a body field this side does not know (field 30). */
	static const uint8_t newer[] = {0, 0, 0, 5, 0x08, 0x03, 0xf2, 0x01, 0x00};
	/* A Hello without the version field. */
	static const uint8_t unversioned[] = {0, 0, 0, 4, 0x52, 0x02, 0x08, 0x01};

	bodies_init(&b);
	env_set(&env, &b, OPENUM__ENVELOPE__BODY_HELLO);
	env.version = 7;
	UT_ASSERT_INT(ipc_frame_encode(&f, &len, &env), 0);
	UT_ASSERT_INT(ipc_frame_decode_cause(&d, f, len, &used, &cause), EPROTO);
	UT_ASSERT(d == NULL);
	UT_ASSERT_INT(used, len);
	UT_ASSERT_STR(cause, "protocol version 7 not supported (want 2)");
	free(cause);
	cause = NULL;
	free(f);

	UT_ASSERT_INT(ipc_frame_decode_cause(&d, newer, sizeof newer, &used,
					     &cause), EPROTO);
	UT_ASSERT_STR(cause, "protocol version 3 not supported (want 2)");
	free(cause);
	cause = NULL;

	UT_ASSERT_INT(ipc_frame_decode_cause(&d, unversioned, sizeof unversioned,
					     &used, &cause), EPROTO);
	UT_ASSERT_INT(used, sizeof unversioned);
	UT_ASSERT(cause && strstr(cause, "without protocol version"));
	free(cause);
	UT_ASSERT(d == NULL);
	return 0;
}

int test_ipc_frame_garbage(void)
{
	/* 0xff... is an unterminated varint tag. */
	static const uint8_t g1[] = {0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff};
	/* Version 1, then Hello (field 10) whose length overruns the frame. */
	static const uint8_t g2[] = {0, 0, 0, 4, 0x08, 0x02, 0x52, 0x09};
	/* Version 1, then field 10 as a varint: the wrong wire type. */
	static const uint8_t g3[] = {0, 0, 0, 4, 0x08, 0x02, 0x50, 0x01};
	/* A start-group wire type. */
	static const uint8_t g4[] = {0, 0, 0, 3, 0x08, 0x02, 0x0b};
	/* Version 1, Hello containing garbage. */
	static const uint8_t g5[] = {0, 0, 0, 6, 0x08, 0x02, 0x52, 0x02, 0xff, 0xff};
	/* Field 0 (64-bit) inside a ServiceRegister, its tag in two bytes:
	 * protobuf-c takes it; packed again it would be 0x01, which it does
	 * not (the fuzzer found it). Then the same inside an endpoint. */
	static const uint8_t g6[] = {0, 0, 0, 14, 0x08, 0x02, 0x5a, 0x0a,
				     0x81, 0x00, 1, 2, 3, 4, 5, 6, 7, 8};
	static const uint8_t g7[] = {0, 0, 0, 16, 0x08, 0x02, 0x5a, 0x0c,
				     0x12, 0x0a, 0x81, 0x00, 1, 2, 3, 4, 5, 6, 7, 8};
	const struct { const uint8_t *p; size_t n; } cases[] = {
		{g1, sizeof g1}, {g2, sizeof g2}, {g3, sizeof g3},
		{g4, sizeof g4}, {g5, sizeof g5}, {g6, sizeof g6},
		{g7, sizeof g7},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		Openum__Envelope *d = NULL;
		size_t used = 0;
		char *cause = NULL;
		int rc = ipc_frame_decode_cause(&d, cases[i].p, cases[i].n,
						&used, &cause);

		if (rc != EBADMSG)
			fprintf(stderr, "  garbage case %zu\n", i);
		UT_ASSERT_INT(rc, EBADMSG);
		UT_ASSERT(d == NULL);
		UT_ASSERT_INT(used, cases[i].n);
		UT_ASSERT_STR(cause, "undecodable frame");
		free(cause);
	}
	return 0;
}

int test_ipc_frame_zero_length(void)
{
	static const uint8_t z[] = {0, 0, 0, 0, 0, 0, 0, 4};
	Openum__Envelope *d = NULL;
	size_t used = 0;
	char *cause = NULL;

	UT_ASSERT_INT(ipc_frame_decode_cause(&d, z, sizeof z, &used, &cause),
		      EBADMSG);
	UT_ASSERT_INT(used, 4);
	UT_ASSERT(d == NULL);
	UT_ASSERT_STR(cause, "empty frame");
	free(cause);
	return 0;
}

int test_ipc_frame_no_body(void)
{
	static const uint8_t nb[] = {0, 0, 0, 2, 0x08, 0x02};
	Openum__Envelope env, *d = NULL;
	uint8_t *f = NULL;
	size_t len = 0, used = 0;
	char *cause = NULL;

	UT_ASSERT_INT(ipc_frame_decode_cause(&d, nb, sizeof nb, &used, &cause),
		      EBADMSG);
	UT_ASSERT_INT(used, sizeof nb);
	UT_ASSERT(d == NULL);
	UT_ASSERT_STR(cause, "frame without a body");
	free(cause);
	/* The encoder does not produce such frames... */
	ipc_envelope_init(&env);
	UT_ASSERT_INT(ipc_frame_encode(&f, &len, &env), EINVAL);
	UT_ASSERT(f == NULL);
	/* ... nor take NULLs. */
	UT_ASSERT_INT(ipc_frame_encode(NULL, &len, &env), EINVAL);
	UT_ASSERT_INT(ipc_frame_decode(NULL, nb, sizeof nb, &used), EINVAL);
	UT_ASSERT_INT(ipc_frame_decode(&d, NULL, 4, &used), EINVAL);
	return 0;
}

int test_ipc_frame_body_name(void)
{
	UT_ASSERT_STR(ipc_body_name(OPENUM__ENVELOPE__BODY__NOT_SET), "none");
	UT_ASSERT_STR(ipc_body_name(OPENUM__ENVELOPE__BODY_HELLO), "hello");
	UT_ASSERT_STR(ipc_body_name(OPENUM__ENVELOPE__BODY_STATUS_REPLY),
		      "status_reply");
	UT_ASSERT_STR(ipc_body_name(OPENUM__ENVELOPE__BODY_ERROR), "error");
	UT_ASSERT_STR(ipc_body_name((Openum__Envelope__BodyCase)99), "unknown");
	return 0;
}

/* protobuf-c's own packing of env: the reference for ipc_fast.c. */
static size_t ref_pack(const Openum__Envelope *env, uint8_t *buf, size_t cap)
{
	size_t n = openum__envelope__get_packed_size(env);

	if (n > cap)
		return 0;
	return openum__envelope__pack(env, buf);
}

/* Both per-call messages, with every field empty, full, long (two-byte
 * lengths), at the edges of its type, or NULL: ipc_frame_write writes what
 * protobuf-c writes, byte for byte, and ipc_fast_unpack reads it back to a
 * message protobuf-c packs to the same bytes again. */
int test_ipc_frame_fast_pack(void)
{
	static char long_id[300], long_caller[1000];
	static uint8_t token[16] = {0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3,
				    4, 5, 6, 7, 8, 9, 0xfe, 0xff};
	Openum__CallRouted r[6];
	Openum__CallRoutedAck k[4];
	static struct ipc_arena a;
	size_t cases = 0;

	memset(long_id, 'c', sizeof long_id - 1);
	memset(long_caller, '7', sizeof long_caller - 1);
	for (size_t i = 0; i < 6; i++)
		openum__call_routed__init(&r[i]);
	for (size_t i = 0; i < 4; i++)
		openum__call_routed_ack__init(&k[i]);
	/* r[0]: all defaults */
	r[1].token.data = token;
	r[1].token.len = sizeof token;
	r[1].call_id = "a84b4c76e66710@pc33.example.com";
	r[1].kind = OPENUM__CALL_KIND__CALL_KIND_SUBSCRIBER_ACCESS;
	r[1].mailbox = "1001";
	r[1].dial_plan = "Contoso DP";
	r[1].gateway = "pbx-1";
	r[1].caller = "+15551234";
	r[1].expires_unix_ms = 1795000000123ULL;
	r[2] = r[1];
	r[2].call_id = long_id;
	r[2].caller = long_caller;
	r[2].kind = (Openum__CallKind)-1;	/* ten bytes on the wire */
	r[2].expires_unix_ms = UINT64_MAX;
	r[3].kind = (Openum__CallKind)0x7fffffff;
	r[3].expires_unix_ms = 127;
	r[3].mailbox = "";
	r[4].call_id = NULL;		/* NULL strings are left out like "" */
	r[4].mailbox = NULL;
	r[4].dial_plan = "dp";
	r[5].token.data = token;	/* no bytes: left out, data or not */
	r[5].token.len = 0;
	r[5].expires_unix_ms = 128;
	k[1].token.data = token;
	k[1].token.len = sizeof token;
	k[1].accepted = 1;
	k[2].token.data = token;
	k[2].token.len = 5;
	k[2].accepted = 2;		/* any true is written as 1 */
	k[2].reason = long_id;
	k[3].reason = NULL;

	ipc_arena_init(&a);
	for (size_t i = 0; i < 10; i++) {
		static uint8_t got[4096], want[4096], again[4096];
		Openum__Envelope env, *d = NULL;
		size_t size = 0, wn, an;

		ipc_envelope_init(&env);
		if (i < 6) {
			env.body_case = OPENUM__ENVELOPE__BODY_CALL_ROUTED;
			env.call_routed = &r[i];
		} else {
			env.body_case = OPENUM__ENVELOPE__BODY_CALL_ROUTED_ACK;
			env.call_routed_ack = &k[i - 6];
		}
		UT_ASSERT_INT(ipc_frame_size(&env, &size), 0);
		UT_ASSERT(size <= sizeof got);
		ipc_frame_write(got, size, &env);
		wn = ref_pack(&env, want, sizeof want);
		if (wn != size - IPC_FRAME_HDR ||
		    memcmp(got + IPC_FRAME_HDR, want, wn)) {
			fprintf(stderr, "  case %zu: %zu bytes, protobuf-c %zu\n",
				i, size - IPC_FRAME_HDR, wn);
			return 1;
		}
		UT_ASSERT_INT(ipc_fast_unpack(&a, &d, want, wn), 1);
		UT_ASSERT_INT(d->body_case, env.body_case);
		UT_ASSERT_INT(d->version, IPC_PROTOCOL_VERSION);
		an = ref_pack(d, again, sizeof again);
		UT_ASSERT(an == wn && !memcmp(again, want, wn));
		ipc_frame_release(&a, d);
		cases++;
	}
	UT_ASSERT_INT(cases, 10);
	/* and what was read, field by field, for the full one */
	{
		Openum__Envelope env, *d = NULL;
		uint8_t buf[512];
		size_t n;

		ipc_envelope_init(&env);
		env.body_case = OPENUM__ENVELOPE__BODY_CALL_ROUTED;
		env.call_routed = &r[2];
		n = ref_pack(&env, buf, sizeof buf);
		UT_ASSERT(n == 0);	/* the 1 KiB caller does not fit */
		env.call_routed = &r[1];
		n = ref_pack(&env, buf, sizeof buf);
		UT_ASSERT_INT(ipc_fast_unpack(&a, &d, buf, n), 1);
		UT_ASSERT_INT(d->call_routed->token.len, 16);
		UT_ASSERT(!memcmp(d->call_routed->token.data, token, 16));
		UT_ASSERT_STR(d->call_routed->call_id, r[1].call_id);
		UT_ASSERT_INT(d->call_routed->kind, r[1].kind);
		UT_ASSERT_STR(d->call_routed->mailbox, "1001");
		UT_ASSERT_STR(d->call_routed->dial_plan, "Contoso DP");
		UT_ASSERT_STR(d->call_routed->gateway, "pbx-1");
		UT_ASSERT_STR(d->call_routed->caller, "+15551234");
		UT_ASSERT(d->call_routed->expires_unix_ms == 1795000000123ULL);
		ipc_frame_release(&a, d);
	}
	return 0;
}

/* Frames each body and decodes it in an arena: it must decode, the direct
 * decoder must have declined it (arena untouched), and the result must be
 * protobuf-c's own reading of the same bytes. */
static int declined_but_same(const uint8_t *body, size_t n)
{
	static struct ipc_arena a;
	static uint8_t frame[4096], p1[4096], p2[4096];
	Openum__Envelope *ref, *d = NULL;
	size_t used = 0, n1, n2;

	ipc_arena_init(&a);
	UT_ASSERT_INT(ipc_fast_unpack(&a, &d, body, n), 0);
	UT_ASSERT(a.used == 0 && d == NULL);
	frame[0] = frame[1] = 0;
	frame[2] = (uint8_t)(n >> 8);
	frame[3] = (uint8_t)n;
	memcpy(frame + IPC_FRAME_HDR, body, n);
	UT_ASSERT_INT(ipc_frame_decode_in(&a, &d, frame, n + IPC_FRAME_HDR,
					  &used, NULL), 0);
	ref = openum__envelope__unpack(NULL, n, body);
	UT_ASSERT(ref);
	n1 = ref_pack(ref, p1, sizeof p1);
	n2 = ref_pack(d, p2, sizeof p2);
	UT_ASSERT(n1 && n1 == n2 && !memcmp(p1, p2, n1));
	openum__envelope__free_unpacked(ref, NULL);
	ipc_frame_release(&a, d);
	return 0;
}

/* Valid encodings that are not the canonical one (out of order, a field
 * twice, an unknown field, a two-byte tag, an overlong varint, the version
 * after the body) are not read by ipc_fast.c but still decode, as
 * protobuf-c reads them; broken or foreign ones are refused as before. */
int test_ipc_frame_fast_unpack_canonical_only(void)
{
	static const struct {
		const char *what;
		uint8_t len;
		uint8_t b[40];
	} cases[] = {
		{"mailbox before call_id", 14,
		 {0x08, 2, 0x6a, 10, 0x22, 3, '1', '0', '1', 0x12, 3, 'a', 'b', 'c'}},
		{"mailbox twice (the last counts)", 14,
		 {0x08, 2, 0x6a, 10, 0x22, 3, '1', '0', '1', 0x22, 3, '2', '0', '2'}},
		{"unknown field 9", 11,
		 {0x08, 2, 0x6a, 7, 0x22, 3, '1', '0', '1', 0x48, 5}},
		{"two-byte tag for call_id", 10,
		 {0x08, 2, 0x6a, 6, 0x92, 0x00, 3, 'a', 'b', 'c'}},
		{"expires in 10 bytes, the last over 64 bits", 15,
		 {0x08, 2, 0x6a, 11, 0x40, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80,
		  0x80, 0x80, 0x80, 0x7f}},
		{"version after the body", 8,
		 {0x72, 4, 0x10, 1, 0x1a, 0x00, 0x08, 2}},
		{"ack with the body field twice", 10,
		 {0x08, 2, 0x72, 2, 0x10, 1, 0x72, 2, 0x10, 0}},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (declined_but_same(cases[i].b, cases[i].len)) {
			fprintf(stderr, "  case: %s\n", cases[i].what);
			return 1;
		}
	}
	{
		/* broken or foreign: declined here, refused as before */
		static const uint8_t trunc[] = {0x08, 2, 0x6a, 9, 0x22, 3, '1'};
		static const uint8_t v3[] = {0x08, 3, 0x72, 0};
		static struct ipc_arena a;
		uint8_t frame[64];
		Openum__Envelope *d = NULL;
		size_t used = 0;

		ipc_arena_init(&a);
		UT_ASSERT_INT(ipc_fast_unpack(&a, &d, trunc, sizeof trunc), 0);
		UT_ASSERT_INT(ipc_fast_unpack(&a, &d, v3, sizeof v3), 0);
		UT_ASSERT(a.used == 0);
		memset(frame, 0, 4);
		frame[3] = sizeof v3;
		memcpy(frame + 4, v3, sizeof v3);
		UT_ASSERT_INT(ipc_frame_decode_in(&a, &d, frame, 4 + sizeof v3,
						  &used, NULL), EPROTO);
		frame[3] = sizeof trunc;
		memcpy(frame + 4, trunc, sizeof trunc);
		UT_ASSERT_INT(ipc_frame_decode_in(&a, &d, frame, 4 + sizeof trunc,
						  &used, NULL), EBADMSG);
		UT_ASSERT(a.used == 0 && a.spilled == 0);
	}
	return 0;
}
