/* main.c — umservice: a UM service instance. It listens for SIP per its
 * IPAddressFamily, registers with the call router over IPC (and again after
 * the router comes back), and applies directory changes live. */
#define LOG_MODULE "umservice"
#include "common/daemon.h"
#include "common/directory.h"
#include "common/ipc.h"
#include "common/ipcmsg.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/sipbase.h"
#include "common/sipl.h"
#include "umservice/routerlink.h"
#include "umservice/tokens.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>

#define SERVICE_ALLOW "INVITE, ACK, BYE, CANCEL, OPTIONS"

struct service {
	struct daemon_opts opts;
	char instance_id[80];
	struct loop *loop;
	struct dir *dir;
	struct dir_service_settings set;
	bool have_set;
	struct sipl *sip;
	nta_leg_t *leg[SIPL_NFAMILIES];
	struct rlink *link;
	struct tokens *tokens;
	struct daemon_signals *sig;
	unsigned active_calls;
	bool stopping;
};

/* --- IPC ----------------------------------------------------------------- */

static void send_register(struct service *s)
{
	Openum__Envelope env;
	Openum__ServiceRegister reg = OPENUM__SERVICE_REGISTER__INIT;
	Openum__ServiceStatus st = OPENUM__SERVICE_STATUS__INIT;
	Openum__SipEndpoint **eps = NULL;
	size_t n = 0;

	if (!rlink_connected(s->link))
		return;
	if (ipcmsg_endpoints(&eps, &n, s->sip) != 0)
		return;
	reg.instance_id = s->instance_id;
	reg.endpoints = eps;
	reg.n_endpoints = n;
	reg.max_calls_allowed = s->set.max_calls;
	reg.fqdn = s->set.fqdn;
	reg.pid = (uint32_t)getpid();
	ipc_envelope_init(&env);
	env.body_case = OPENUM__ENVELOPE__BODY_SERVICE_REGISTER;
	env.service_register = &reg;
	rlink_send(s->link, &env);
	ipcmsg_endpoints_free(eps, n);

	st.active_calls = s->active_calls;
	st.accepting = !s->stopping;
	ipc_envelope_init(&env);
	env.body_case = OPENUM__ENVELOPE__BODY_SERVICE_STATUS;
	env.service_status = &st;
	rlink_send(s->link, &env);
}

static int apply_settings(struct service *s, char **cause);

static void reload(struct service *s, const char *why)
{
	char *cause = NULL;

	log_notice("directory changed (%s): applying", why);
	if (apply_settings(s, &cause) != 0) {
		log_error("could not apply the UM service settings: %s",
			  cause ? cause : "unknown error");
		free(cause);
	}
	/* Listeners or limits may have changed: tell the router. */
	send_register(s);
}

static void link_up(void *arg)
{
	send_register(arg);
}

/* Longest token lifetime accepted from the router, whatever it asks. */
#define TOKEN_TTL_MAX_MS 60000

static int copy_field(char *dst, size_t len, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= len)
		return EINVAL;
	memcpy(dst, src ? src : "", n + 1);
	return 0;
}

/* The router hands us a call it is about to redirect here: keep its
 * context under the token and acknowledge, or say why not. */
static void call_routed(struct service *s, const Openum__CallRouted *m)
{
	Openum__Envelope env;
	Openum__CallRoutedAck ack = OPENUM__CALL_ROUTED_ACK__INIT;
	struct token_ctx ctx;
	unsigned long long now = daemon_now_ms();
	const char *why = NULL;

	memset(&ctx, 0, sizeof ctx);
	if (m->token.len != TOKEN_LEN)
		why = "token must be 16 bytes";
	else if (m->kind != OPENUM__CALL_KIND__CALL_KIND_CALL_ANSWERING &&
		 m->kind != OPENUM__CALL_KIND__CALL_KIND_SUBSCRIBER_ACCESS)
		why = "unknown call kind";
	else if (copy_field(ctx.call_id, sizeof ctx.call_id, m->call_id) ||
		 copy_field(ctx.mailbox, sizeof ctx.mailbox, m->mailbox) ||
		 copy_field(ctx.dialplan, sizeof ctx.dialplan, m->dial_plan) ||
		 copy_field(ctx.gateway, sizeof ctx.gateway, m->gateway) ||
		 copy_field(ctx.caller, sizeof ctx.caller, m->caller))
		why = "field too long";
	else if (s->stopping)
		why = "stopping";
	else if (s->active_calls >= s->set.max_calls)
		why = "MaxCallsAllowed reached";
	if (!why) {
		memcpy(ctx.token, m->token.data, TOKEN_LEN);
		ctx.kind = m->kind;
		ctx.expires_ms = m->expires_unix_ms;
		if (ctx.expires_ms > now + TOKEN_TTL_MAX_MS)
			ctx.expires_ms = now + TOKEN_TTL_MAX_MS;
		switch (tokens_put(s->tokens, &ctx, now)) {
		case 0:
			break;
		case EEXIST:
			why = "token already in use";
			break;
		case EINVAL:
			why = "token already expired";
			break;
		default:
			why = "out of memory";
			break;
		}
	}
	if (why)
		log_warn("refusing routed call %s: %s",
			 m->call_id ? m->call_id : "?", why);
	else
		log_debug("routed call %s for mailbox %s accepted (%zu tokens held)",
			  ctx.call_id, ctx.mailbox, tokens_count(s->tokens));
	ack.token = m->token;
	ack.accepted = why == NULL;
	ack.reason = (char *)(why ? why : "");
	ipc_envelope_init(&env);
	env.body_case = OPENUM__ENVELOPE__BODY_CALL_ROUTED_ACK;
	env.call_routed_ack = &ack;
	rlink_send(s->link, &env);
}

static void link_recv(void *arg, const Openum__Envelope *env)
{
	struct service *s = arg;

	switch (env->body_case) {
	case OPENUM__ENVELOPE__BODY_CALL_ROUTED:
		call_routed(s, env->call_routed);
		break;
	case OPENUM__ENVELOPE__BODY_CONFIG_CHANGED:
		reload(s, env->config_changed->object && *env->config_changed->object
				  ? env->config_changed->object : "router");
		break;
	default:
		log_debug("ignoring %s from the router",
			  ipc_body_name(env->body_case));
		break;
	}
}

/* --- SIP ----------------------------------------------------------------- */

/* An INVITE redirected by the router carries its token in the Request-URI
 * (;umtoken=hex). The call itself is answered once media exists (the deposit
 * issue); until then the token is checked and the caller told so. */
static void invite(struct service *s, nta_incoming_t *irq, sip_t const *sip)
{
	char tok_hex[2 * TOKEN_LEN + 8] = "";
	uint8_t tok[TOKEN_LEN];
	struct token_ctx ctx;
	const char *params = sip->sip_request->rq_url->url_params;
	const char *cid = sip->sip_call_id ? sip->sip_call_id->i_id : "-";
	int err;

	if (!params || url_param(params, "umtoken", tok_hex, sizeof tok_hex) == 0) {
		log_info("INVITE %s (Call-ID %s) without a routing token: 480",
			 sip->sip_request->rq_url->url_user
				 ? sip->sip_request->rq_url->url_user : "", cid);
		nta_incoming_treply(irq, 480, "Call handling not available",
				    TAG_END());
		return;
	}
	err = tokens_unhex(tok, tok_hex);
	if (!err)
		err = tokens_take(s->tokens, tok, daemon_now_ms(), &ctx);
	if (err) {
		log_notice("INVITE Call-ID %s: %s routing token: 403", cid,
			   err == ETIMEDOUT ? "expired" : "unknown");
		nta_incoming_treply(irq, 403, err == ETIMEDOUT
					      ? "Forbidden (routing token expired)"
					      : "Forbidden (unknown routing token)",
				    TAG_END());
		return;
	}
	log_info("INVITE Call-ID %s: token accepted (%s, mailbox %s, dial plan %s, "
		 "gateway %s); call handling not available yet: 480", cid,
		 ctx.kind == OPENUM__CALL_KIND__CALL_KIND_SUBSCRIBER_ACCESS
			 ? "subscriber access" : "call answering",
		 ctx.mailbox, ctx.dialplan, ctx.gateway);
	nta_incoming_treply(irq, 480, "Call handling not available (token accepted)",
			    TAG_END());
}

static int sip_request(nta_leg_magic_t *magic, nta_leg_t *leg,
		       nta_incoming_t *irq, sip_t const *sip)
{
	struct service *s = (struct service *)magic;

	if (sip && sip->sip_request &&
	    sip->sip_request->rq_method == sip_method_invite) {
		invite(s, irq, sip);
		nta_incoming_destroy(irq);
		return 0;
	}
	sipbase_answer_default(irq, sip, SERVICE_ALLOW);
	return 0;
}

static int sip_up(void *arg, nta_agent_t *agent, enum sipl_family f)
{
	struct service *s = arg;

	s->leg[f] = nta_leg_tcreate(agent, sip_request, (nta_leg_magic_t *)s,
				    NTATAG_NO_DIALOG(1), TAG_END());
	return s->leg[f] ? 0 : ENOMEM;
}

static void sip_down(void *arg, nta_agent_t *agent, enum sipl_family f)
{
	struct service *s = arg;

	nta_leg_destroy(s->leg[f]);
	s->leg[f] = NULL;
}

/* Rereads the UM service settings and rebinds to match. */
static int apply_settings(struct service *s, char **cause)
{
	struct dir_service_settings n;
	struct sipl_config cfg;
	unsigned port;
	int err;

	err = dir_service_settings_get(s->dir, &n);
	if (err) {
		if (cause && asprintf(cause, "cannot read the UM service settings: %s",
				      strerror(err)) < 0)
			*cause = NULL;
		return err;
	}
	port = s->opts.sip_port ? s->opts.sip_port : n.sip_tcp_port;
	if (!s->have_set || n.af != s->set.af || n.sip_tcp_port != s->set.sip_tcp_port)
		log_notice("IPAddressFamily %s, SIP port %u, MaxCallsAllowed %u",
			   dir_af_name(n.af), port, n.max_calls);
	s->set = n;
	s->have_set = true;
	daemon_sipl_config(&cfg, n.af, port);
	return sipl_apply(s->sip, &cfg, cause);
}

/* --- life cycle ---------------------------------------------------------- */

static void service_stop(void *arg, const char *why)
{
	struct service *s = arg;

	if (s->stopping)
		return;
	s->stopping = true;
	log_notice("stopping (%s)", why);
	loop_stop(s->loop);
}

static void service_reload(void *arg)
{
	reload(arg, "SIGHUP");
}

int main(int argc, char **argv)
{
	struct service s;
	char path[PATH_MAX];
	char *cause = NULL;
	int err, code = 1;

	memset(&s, 0, sizeof s);
	signal(SIGPIPE, SIG_IGN);
	log_set_process("umservice");
	err = daemon_parse_args(&s.opts, argc, argv, "umservice",
				"OpenUM UM service: answers the calls the router "
				"sends it; media, greetings, voicemail.");
	if (err)
		return err < 0 ? 0 : 2;
	log_set_level(s.opts.log_level);
	if (s.opts.instance_id) {
		snprintf(s.instance_id, sizeof s.instance_id, "%s", s.opts.instance_id);
	} else {
		char host[64] = "localhost";

		gethostname(host, sizeof host - 1);
		snprintf(s.instance_id, sizeof s.instance_id, "%.40s-%d", host,
			 (int)getpid());
	}

	err = daemon_open_directory(&s.dir, &s.opts, &cause);
	if (err) {
		log_error("cannot open the directory: %s",
			  cause ? cause : strerror(err));
		goto out;
	}
	/* Exchange's UM service refuses to start on a directory past its
	 * limits (200 gateways per dial plan); so do we, and say why. */
	err = dir_check_limits(s.dir, &cause);
	if (err) {
		log_error("refusing to start: %s", cause ? cause : strerror(err));
		goto out;
	}
	if ((err = loop_alloc(&s.loop)) != 0 || (err = tokens_alloc(&s.tokens)) != 0) {
		log_error("cannot start: %s", strerror(err));
		goto out;
	}
	{
		struct sipl_handlers h = {
			.up_h = sip_up, .down_h = sip_down, .arg = &s,
		};

		err = sipl_alloc(&s.sip, loop_root(s.loop), &h, "sip");
		if (err)
			goto out;
	}
	err = daemon_signals_start(&s.sig, s.loop, service_stop, service_reload,
				   &s);
	if (err)
		goto out;
	err = apply_settings(&s, &cause);
	if (err) {
		log_error("cannot listen for SIP: %s", cause ? cause : strerror(err));
		goto out;
	}
	err = rlink_alloc(&s.link, loop_uv(s.loop),
			  daemon_state_path(&s.opts, "run/umcallrouter.sock", path,
					    sizeof path),
			  link_up, link_recv, &s);
	if (err)
		goto out;
	log_notice("umservice %s ready (pid %d, state %s)", s.instance_id,
		   (int)getpid(), s.opts.state_abs);
	loop_run(s.loop);
	code = 0;
out:
	free(cause);
	rlink_free(s.link);
	sipl_free(s.sip);
	daemon_signals_close(s.sig);
	loop_free(s.loop);
	dir_close(s.dir);
	tokens_free(s.tokens);
	if (code == 0)
		log_notice("stopped");
	daemon_opts_release(&s.opts);
	return code;
}
