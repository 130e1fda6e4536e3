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
#include "common/gwres.h"
#include "common/outconn.h"
#include "umservice/gwhealth.h"
#include "common/rtab.h"
#include "common/vmwriter.h"
#include "umservice/audio.h"
#include "umservice/call.h"
#include "umservice/greetings.h"
#include "umservice/media.h"
#include "umservice/mwi.h"
#include "umservice/outcall.h"
#include "umservice/ova.h"
#include "umservice/routerlink.h"
#include "umservice/tts.h"
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
	struct rtab *tab;
	struct gwres *gwres;
	struct media_engine *media;
	struct tts *tts;
	struct vmwriter *vm;
	struct mwi *mwi;
	struct outconn *outconn;
	struct gwhealth *health;
	struct outcall_mod *pop;		/* Play on Phone */
	struct greetings *greetings;
	char dir_path[PATH_MAX];
	struct call_env env;
	struct daemon_signals *sig;
	bool stopping;
};

/* RTP ports of the calls (even ports, RTCP on the next). */
#define RTP_PORT_LO 40000
#define RTP_PORT_HI 49999
/* Gateway states reported to the router at most. */
#define SERVICE_HEALTH_MAX 1024

/* Reports load and whether new calls are accepted to the router. */
static void service_load(void *arg)
{
	struct service *s = arg;
	Openum__Envelope env;
	Openum__ServiceStatus st = OPENUM__SERVICE_STATUS__INIT;
	size_t n = gwhealth_count(s->health);
	struct gwhealth_state *gs = NULL;
	Openum__GatewayHealth *gh = NULL, **ghp = NULL;

	if (!s->link || !rlink_connected(s->link))
		return;		/* sent in full once connected */
	st.active_calls = s->env.active;
	st.accepting = !s->stopping;
	if (n > SERVICE_HEALTH_MAX)
		n = SERVICE_HEALTH_MAX;
	if (n && (gs = calloc(n, sizeof *gs)) && (gh = calloc(n, sizeof *gh)) &&
	    (ghp = calloc(n, sizeof *ghp))) {
		n = gwhealth_states(s->health, gs, n);
		for (size_t i = 0; i < n; i++) {
			openum__gateway_health__init(&gh[i]);
			gh[i].gateway = gs[i].gateway;
			gh[i].up = gs[i].up;
			gh[i].checked = gs[i].checked;
			gh[i].last_status = gs[i].last_status;
			gh[i].last_reason = gs[i].last_reason;
			gh[i].address = gs[i].address;
			gh[i].checked_unix_ms = gs[i].checked_unix_ms;
			gh[i].answered_unix_ms = gs[i].answered_unix_ms;
			gh[i].changed_unix_ms = gs[i].changed_unix_ms;
			ghp[i] = &gh[i];
		}
		st.gateways = ghp;
		st.n_gateways = n;
	}
	ipc_envelope_init(&env);
	env.body_case = OPENUM__ENVELOPE__BODY_SERVICE_STATUS;
	env.service_status = &st;
	rlink_send(s->link, &env);
	free(gs);
	free(gh);
	free(ghp);
}

/* --- IPC ----------------------------------------------------------------- */

static void send_register(struct service *s)
{
	Openum__Envelope env;
	Openum__ServiceRegister reg = OPENUM__SERVICE_REGISTER__INIT;
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
	service_load(s);
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

/* A call changed the directory (out-of-office set by phone). */
static void directory_changed(void *arg, const char *why)
{
	reload(arg, why);
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
	else if (s->env.active >= s->set.max_calls)
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

/* A Play on Phone result goes back to the router that asked. */
static void pop_result(void *arg, const Openum__PlayOnPhoneResult *r)
{
	struct service *s = arg;
	Openum__Envelope env;

	ipc_envelope_init(&env);
	env.body_case = OPENUM__ENVELOPE__BODY_PLAY_ON_PHONE_RESULT;
	env.play_on_phone_result = (Openum__PlayOnPhoneResult *)r;
	if (rlink_send(s->link, &env) != 0)
		log_warn("Play on Phone result %u not sent: the router is away",
			 r->request_id);
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
		if (env->config_changed->drop_calls_gateway &&
		    *env->config_changed->drop_calls_gateway) {
			unsigned n = call_drop_gateway(
				&s->env, env->config_changed->drop_calls_gateway);

			n += outcall_drop_gateway(
				s->pop, env->config_changed->drop_calls_gateway);
			log_notice("UM IP gateway %s disabled with --drop-calls: "
				   "%u call%s ended",
				   env->config_changed->drop_calls_gateway, n,
				   n == 1 ? "" : "s");
		}
		break;
	case OPENUM__ENVELOPE__BODY_PLAY_ON_PHONE_REQUEST:
		outcall_request(s->pop, env->play_on_phone_request);
		break;
	default:
		log_debug("ignoring %s from the router",
			  ipc_body_name(env->body_case));
		break;
	}
}

/* --- SIP ----------------------------------------------------------------- */

static int sip_request(nta_leg_magic_t *magic, nta_leg_t *leg,
		       nta_incoming_t *irq, sip_t const *sip)
{
	struct service *s = (struct service *)magic;

	if (sip && sip->sip_request &&
	    sip->sip_request->rq_method == sip_method_invite) {
		if (sip->sip_to && sip->sip_to->a_tag) {
			/* In-dialog, but for no dialog we have. */
			nta_incoming_treply(irq, SIP_481_NO_TRANSACTION, TAG_END());
			nta_incoming_destroy(irq);
			return 0;
		}
		if (s->stopping) {
			nta_incoming_treply(irq, 503, "Service Unavailable (stopping)",
					    SIPTAG_RETRY_AFTER_STR("30"), TAG_END());
			nta_incoming_destroy(irq);
			return 0;
		}
		for (int f = 0; f < SIPL_NFAMILIES; f++) {
			if (s->leg[f] == leg) {
				call_invite(&s->env, sipl_agent(s->sip, (enum sipl_family)f),
					    irq, sip);
				return 0;
			}
		}
		nta_incoming_treply(irq, SIP_500_INTERNAL_SERVER_ERROR, TAG_END());
		nta_incoming_destroy(irq);
		return 0;
	}
	if (sip && sip->sip_request &&
	    (sip->sip_request->rq_method == sip_method_bye ||
	     sip->sip_request->rq_method == sip_method_update ||
	     sip->sip_request->rq_method == sip_method_cancel)) {
		nta_incoming_treply(irq, SIP_481_NO_TRANSACTION, TAG_END());
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

	call_agent_gone(&s->env, agent);
	outcall_agent_gone(s->pop, agent);
	mwi_agent_gone(s->mwi, agent);
	gwhealth_agent_gone(s->health, agent);
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
	s->env.af = n.af;
	s->env.max_calls = n.max_calls;
	{
		struct rtab *t;
		struct dir_router_settings rs;

		err = rtab_build(&t, s->dir, cause);
		if (err)
			return err;
		/* as in the router: last answers kept until DNS answers again */
		rtab_keep_addrs(t, s->tab);
		rtab_free(s->tab);
		s->tab = t;
		/* Exchange event 1175, at start and on every change (gateways
		 * given by FQDN: again once they are resolved). */
		rtab_log_shared_addresses(t);
		if (dir_router_settings_get(s->dir, &rs) != 0)
			rs.dns_servers[0] = '\0';
		else if (gwres_configure(s->gwres, rs.dns_servers, NULL) != 0)
			log_warn("DnsServers of the directory are not usable");
		{
			struct outconn_settings os = {
				.stagger_ms = n.outbound_stagger_ms,
				.bad_interval_s = n.bad_address_interval_s,
			};
			char *why = NULL;

			if (outconn_configure(s->outconn, rs.dns_servers, &os,
					      &why) != 0)
				log_warn("outbound connections: DnsServers not "
					 "usable: %s", why ? why : "?");
			free(why);
		}
		mwi_configure(s->mwi, n.fqdn);
		gwhealth_sync(s->health, n.gateway_ping_interval_s, n.fqdn);
		outcall_configure(s->pop, n.fqdn);
		gwres_refresh(s->gwres);
	}
	daemon_sipl_config(&cfg, n.af, port);
	return sipl_apply(s->sip, &cfg, cause);
}

/* --- life cycle ---------------------------------------------------------- */

static bool gateway_down(void *arg, const char *gateway)
{
	return gwhealth_is_down(((struct service *)arg)->health, gateway);
}

static struct rtab *service_table(void *arg)
{
	return ((struct service *)arg)->tab;
}


static void service_stop(void *arg, const char *why)
{
	struct service *s = arg;

	if (s->stopping)
		return;
	s->stopping = true;
	log_notice("stopping (%s)", why);
	service_load(s);
	call_end_all(&s->env);
	outcall_end_all(s->pop, "the UM service is stopping");
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
	unsigned mwi_refresh = 0, ring_s = 0;

	memset(&s, 0, sizeof s);
	signal(SIGPIPE, SIG_IGN);
	log_set_process("umservice");
	if (mwi_take_args(&argc, argv, &mwi_refresh) != 0 ||
	    outcall_take_args(&argc, argv, &ring_s) != 0)
		return 2;
	err = daemon_parse_args(&s.opts, argc, argv, "umservice",
				"OpenUM UM service: answers the calls the router "
				"sends it; media, greetings, voicemail.");
	if (err) {
		if (err < 0) {
			mwi_usage(stdout);
			outcall_usage(stdout);
		}
		return err < 0 ? 0 : 2;
	}
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
	if ((err = loop_alloc(&s.loop)) != 0 || (err = tokens_alloc(&s.tokens)) != 0 ||
	    (err = gwres_alloc(&s.gwres, loop_uv(s.loop), service_table, &s)) != 0 ||
	    (err = outconn_alloc(&s.outconn, loop_uv(s.loop))) != 0 ||
	    (err = media_engine_alloc(&s.media, loop_uv(s.loop), RTP_PORT_LO,
				      RTP_PORT_HI)) != 0) {
		log_error("cannot start: %s", strerror(err));
		goto out;
	}
	err = tts_alloc(&s.tts, loop_uv(s.loop), NULL, &cause);
	if (err) {
		log_error("cannot start speech synthesis: %s",
			  cause ? cause : strerror(err));
		goto out;
	}
	for (size_t i = 0; call_prompts[i]; i++)
		tts_prewarm(s.tts, call_prompts + i, 1);
	for (size_t i = 0; ova_prompts[i]; i++)
		tts_prewarm(s.tts, ova_prompts + i, 1);
	err = vmwriter_alloc(&s.vm, loop_uv(s.loop),
			     daemon_state_path(&s.opts, "voicemail.db", path, sizeof path),
			     &cause);
	if (err) {
		log_error("cannot open the voicemail store %s: %s", path,
			  cause ? cause : strerror(err));
		goto out;
	}
	err = greetings_alloc(&s.greetings, s.vm);
	if (err)
		goto out;
	daemon_state_path(&s.opts, "directory.db", s.dir_path, sizeof s.dir_path);
	err = audio_tone(&s.env.beep, 1000, 400, 0.5);
	if (err)
		goto out;
	s.env.loop = loop_uv(s.loop);
	s.env.media = s.media;
	s.env.tts = s.tts;
	s.env.vm = s.vm;
	s.env.tokens = s.tokens;
	s.env.table_h = service_table;
	s.env.table_arg = &s;
	s.env.load_h = service_load;
	s.env.load_arg = &s;
	s.env.greetings = s.greetings;
	s.env.dir_path = s.dir_path;
	s.env.outconn = s.outconn;
	s.env.directory_changed_h = directory_changed;
	s.env.directory_changed_arg = &s;
	{
		struct sipl_handlers h = {
			.ua = true, .up_h = sip_up, .down_h = sip_down, .arg = &s,
		};

		err = sipl_alloc(&s.sip, loop_root(s.loop), &h, "sip");
		if (err)
			goto out;
	}
	{
		struct mwi_config mc = {
			.loop = loop_uv(s.loop), .sip = s.sip, .vm = s.vm,
			.outconn = s.outconn,
			.table_h = service_table, .table_arg = &s,
			.directory_path = daemon_state_path(&s.opts, "directory.db",
							    path, sizeof path),
			.refresh_s = mwi_refresh,
		};

		err = mwi_alloc(&s.mwi, &mc);
		if (err)
			goto out;
	}
	{
		struct gwhealth_config hc = {
			.loop = loop_uv(s.loop), .sip = s.sip,
			.outconn = s.outconn, .table_h = service_table,
			.table_arg = &s, .changed_h = service_load,
			.changed_arg = &s,
		};

		err = gwhealth_alloc(&s.health, &hc);
		if (err)
			goto out;
	}
	s.env.mailbox_changed_h = mwi_mailbox_changed;
	s.env.mailbox_changed_arg = s.mwi;
	{
		struct outcall_config pc = {
			.env = &s.env, .sip = s.sip, .instance_id = s.instance_id,
			.ring_s = ring_s, .result_h = pop_result, .arg = &s,
			.gw_down_h = gateway_down, .gw_down_arg = &s,
		};

		err = outcall_alloc(&s.pop, &pc);
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
	outcall_free(s.pop);	/* reports through the link, ends on the agents */
	s.pop = NULL;		/* sip_down (below) must not reach it */
	rlink_free(s.link);
	mwi_free(s.mwi);
	gwhealth_free(s.health);
	sipl_free(s.sip);
	vmwriter_close(s.vm);
	greetings_free(s.greetings);
	tts_close(s.tts);
	gwres_free(s.gwres);
	outconn_free(s.outconn);
	if (s.media)
		media_engine_free(s.media);
	audio_buf_unref(s.env.beep);
	daemon_signals_close(s.sig);
	loop_free(s.loop);
	rtab_free(s.tab);
	dir_close(s.dir);
	tokens_free(s.tokens);
	if (code == 0)
		log_notice("stopped");
	daemon_opts_release(&s.opts);
	return code;
}
