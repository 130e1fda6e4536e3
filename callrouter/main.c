/* main.c — umcallrouter: the front door. It listens for SIP per its
 * IPAddressFamily, owns the IPC socket where UM service instances register
 * and umctl asks for status, and applies directory changes live. */
#define LOG_MODULE "router"
#include "common/gwres.h"
#include "callrouter/popfwd.h"
#include "callrouter/registry.h"
#include "callrouter/route.h"
#include "common/rtab.h"
#include "common/daemon.h"
#include "common/directory.h"
#include "common/ipc.h"
#include "common/ipcmsg.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/protolog.h"
#include "common/sipl.h"
#include "callrouter/sipnet.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>



struct router {
	struct daemon_opts opts;
	struct loop *loop;
	struct dir *dir;
	struct dir_router_settings set;
	struct sipnet *sip;
	struct ipc_server *ipc;
	struct registry *reg;
	struct route *route;
	struct popfwd *pop;
	struct gwres *gwres;
	struct protolog *plog;
	struct daemon_signals *sig;
	bool stopping;
	unsigned long long started_ms;
	int exit_code;
};

/* --- IPC ----------------------------------------------------------------- */

enum peer_role { PEER_UNKNOWN, PEER_UMSERVICE, PEER_UMCTL };

struct peer {
	struct router *r;
	enum peer_role role;
};

static void send_error(struct ipc_conn *c, int code, const char *msg)
{
	Openum__Envelope env;
	Openum__Error e = OPENUM__ERROR__INIT;

	ipc_envelope_init(&env);
	e.code = (uint32_t)code;
	e.message = (char *)msg;
	env.body_case = OPENUM__ENVELOPE__BODY_ERROR;
	env.error = &e;
	ipc_conn_send(c, &env);
}

static void send_status_reply(struct router *r, struct ipc_conn *c)
{
	Openum__Envelope env;
	Openum__StatusReply rep = OPENUM__STATUS_REPLY__INIT;
	Openum__InstanceStatus *is = NULL, **isp = NULL;
	Openum__SipEndpoint **rep_eps = NULL;
	Openum__SipEndpoint *inst_eps = NULL, **inst_epp = NULL;
	Openum__GatewayHealth *gh = NULL, **ghp = NULL;
	size_t n_rep_eps = 0, n = reg_count(r->reg), total_eps = 0, k = 0;
	size_t total_gw = 0, kg = 0;
	unsigned long long now = uv_now(loop_uv(r->loop));	/* route.c's clock */

	{
		struct sipl_endpoint eps[64];
		size_t cnt = sipnet_endpoints(r->sip, eps, 64);

		if (ipcmsg_endpoints_of(&rep_eps, &n_rep_eps, eps,
					cnt > 64 ? 64 : cnt) != 0)
			goto out;
	}
	for (size_t i = 0; i < n; i++) {
		total_eps += reg_at(r->reg, i)->n_ep;
		total_gw += reg_at(r->reg, i)->n_gw;
	}
	is = calloc(n ? n : 1, sizeof *is);
	isp = calloc(n ? n : 1, sizeof *isp);
	inst_eps = calloc(total_eps ? total_eps : 1, sizeof *inst_eps);
	inst_epp = calloc(total_eps ? total_eps : 1, sizeof *inst_epp);
	gh = calloc(total_gw ? total_gw : 1, sizeof *gh);
	ghp = calloc(total_gw ? total_gw : 1, sizeof *ghp);
	if (!is || !isp || !inst_eps || !inst_epp || !gh || !ghp)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct reg_instance *in = reg_at(r->reg, i);

		openum__instance_status__init(&is[i]);
		is[i].instance_id = in->id;
		is[i].pid = in->pid;
		is[i].max_calls_allowed = in->max_calls;
		is[i].active_calls = in->active_calls;
		is[i].accepting = in->accepting;
		is[i].calls_routed = in->calls_routed;
		is[i].ack_timeouts = in->ack_timeouts;
		is[i].redirects_resent = in->redirects_resent;
		if (in->avoid_until_ms > now)
			is[i].passed_over_ms = (uint32_t)(in->avoid_until_ms - now);
		is[i].registered_unix_ms = in->registered_ms;
		is[i].fqdn = in->fqdn;
		is[i].endpoints = &inst_epp[k];
		is[i].n_endpoints = in->n_ep;
		for (size_t j = 0; j < in->n_ep; j++, k++) {
			openum__sip_endpoint__init(&inst_eps[k]);
			inst_eps[k].family = in->ep[j].family;
			inst_eps[k].transport = in->ep[j].transport;
			inst_eps[k].host = in->ep[j].host;
			inst_eps[k].port = in->ep[j].port;
			inst_epp[k] = &inst_eps[k];
		}
		is[i].gateways = &ghp[kg];
		is[i].n_gateways = in->n_gw;
		for (size_t j = 0; j < in->n_gw; j++, kg++) {
			const struct reg_gwhealth *h = &in->gw[j];

			openum__gateway_health__init(&gh[kg]);
			gh[kg].gateway = (char *)h->gateway;
			gh[kg].checked = h->checked;
			gh[kg].up = h->up;
			gh[kg].last_status = h->last_status;
			gh[kg].last_reason = (char *)h->last_reason;
			gh[kg].address = (char *)h->address;
			gh[kg].checked_unix_ms = h->checked_ms;
			gh[kg].answered_unix_ms = h->answered_ms;
			gh[kg].changed_unix_ms = h->changed_ms;
			ghp[kg] = &gh[kg];
		}
		isp[i] = &is[i];
	}
	rep.router_pid = (uint32_t)getpid();
	rep.router_endpoints = rep_eps;
	rep.n_router_endpoints = n_rep_eps;
	rep.instances = isp;
	rep.n_instances = n;
	rep.started_unix_ms = r->started_ms;
	ipc_envelope_init(&env);
	env.body_case = OPENUM__ENVELOPE__BODY_STATUS_REPLY;
	env.status_reply = &rep;
	ipc_conn_send(c, &env);
out:
	ipcmsg_endpoints_free(rep_eps, n_rep_eps);
	free(is);
	free(isp);
	free(inst_eps);
	free(inst_epp);
	free(gh);
	free(ghp);
}

static int apply_settings(struct router *r, char **cause);

/* ConfigChanged from umctl (or SIGHUP): reread our settings, rebind, and
 * tell every UM service instance so that it rereads its own. */
static unsigned config_changed(struct router *r, const char *object,
			       const char *drop_gw, const char *why,
			       char **failure)
{
	Openum__Envelope env;
	Openum__ConfigChanged cc = OPENUM__CONFIG_CHANGED__INIT;
	char *cause = NULL;
	unsigned notified = 0;

	log_notice("directory changed (%s, %s): applying", object ? object : "all",
		   why);
	if (apply_settings(r, &cause) != 0) {
		log_error("could not apply the router settings: %s",
			  cause ? cause : "unknown error");
		if (failure) {
			*failure = cause;
			cause = NULL;
		}
		free(cause);
	}
	ipc_envelope_init(&env);
	cc.object = (char *)(object ? object : "");
	cc.reason = (char *)why;
	if (drop_gw && *drop_gw) {
		log_notice("UM IP gateway %s disabled with --drop-calls: the UM "
			   "service instances end its calls", drop_gw);
		cc.drop_calls_gateway = (char *)drop_gw;
	}
	env.body_case = OPENUM__ENVELOPE__BODY_CONFIG_CHANGED;
	env.config_changed = &cc;
	for (size_t i = 0; i < reg_count(r->reg); i++) {
		if (ipc_conn_send(reg_at(r->reg, i)->conn, &env) == 0)
			notified++;
	}
	return notified;
}

static void peer_recv(struct ipc_conn *c, const Openum__Envelope *env,
		      void *arg)
{
	struct peer *p = arg;
	struct router *r = p->r;
	char *cause = NULL;
	int err;

	switch (env->body_case) {
	case OPENUM__ENVELOPE__BODY_HELLO:
		if (env->hello->role == OPENUM__ROLE__ROLE_UMSERVICE)
			p->role = PEER_UMSERVICE;
		else if (env->hello->role == OPENUM__ROLE__ROLE_UMCTL)
			p->role = PEER_UMCTL;
		else {
			send_error(c, EPROTO, "unknown role in Hello");
			ipc_conn_close(c);
		}
		return;
	case OPENUM__ENVELOPE__BODY_SERVICE_REGISTER: {
		const Openum__ServiceRegister *m = env->service_register;
		bool known = reg_find_conn(r->reg, c) != NULL;

		if (p->role != PEER_UMSERVICE) {
			send_error(c, EPROTO, "ServiceRegister before Hello as umservice");
			ipc_conn_close(c);
			return;
		}
		err = reg_register(r->reg, c, m, &cause);
		if (err) {
			log_warn("refused registration from pid %d: %s",
				 (int)ipc_conn_pid(c), cause ? cause : strerror(err));
			send_error(c, err, cause ? cause : strerror(err));
			free(cause);
			ipc_conn_close(c);
			return;
		}
		{
			struct reg_instance *in = reg_find_conn(r->reg, c);
			char eps[512] = "", one[96];
			size_t used = 0;

			for (size_t i = 0; i < m->n_endpoints; i++) {
				ipcmsg_endpoint_str(m->endpoints[i], one, sizeof one);
				used += (size_t)snprintf(eps + used,
					used < sizeof eps ? sizeof eps - used : 0,
					"%s%s", i ? ", " : "", one);
				if (used >= sizeof eps)
					break;
			}
			log_notice("UM service instance %s (pid %u) %s: %s",
				   in->id, in->pid,
				   known ? "updated its listeners" : "registered",
				   m->n_endpoints ? eps : "no SIP listeners");
		}
		return;
	}
	case OPENUM__ENVELOPE__BODY_SERVICE_STATUS:
		if (reg_status(r->reg, c, env->service_status) != 0) {
			send_error(c, EPROTO, "ServiceStatus before ServiceRegister");
			ipc_conn_close(c);
		}
		return;
	case OPENUM__ENVELOPE__BODY_STATUS_REQUEST:
		send_status_reply(r, c);
		return;
	case OPENUM__ENVELOPE__BODY_CONFIG_CHANGED: {
		Openum__Envelope rep;
		Openum__ConfigApplied ca = OPENUM__CONFIG_APPLIED__INIT;

		if (p->role != PEER_UMCTL) {
			send_error(c, EPROTO, "ConfigChanged is for umctl");
			ipc_conn_close(c);
			return;
		}
		char *failure = NULL;

		ca.instances_notified = config_changed(
			r, env->config_changed->object,
			env->config_changed->drop_calls_gateway, "umctl",
			&failure);
		if (failure) {
			/* Saved, but not in effect: say so rather than
			 * confirming (the previous listeners were kept). */
			char msg[600];

			snprintf(msg, sizeof msg, "%s; the running router kept its "
				 "previous settings", failure);
			free(failure);
			send_error(c, EIO, msg);
			return;
		}
		ipc_envelope_init(&rep);
		rep.body_case = OPENUM__ENVELOPE__BODY_CONFIG_APPLIED;
		rep.config_applied = &ca;
		ipc_conn_send(c, &rep);
		return;
	}
	case OPENUM__ENVELOPE__BODY_CALL_ROUTED_ACK:
		route_ack(r->route, c, env->call_routed_ack);
		return;
	case OPENUM__ENVELOPE__BODY_PLAY_ON_PHONE_REQUEST:
		if (p->role != PEER_UMCTL) {
			send_error(c, EPROTO, "PlayOnPhoneRequest is for umctl");
			ipc_conn_close(c);
			return;
		}
		popfwd_request(r->pop, c, env->play_on_phone_request);
		return;
	case OPENUM__ENVELOPE__BODY_PLAY_ON_PHONE_RESULT:
		if (p->role != PEER_UMSERVICE ||
		    popfwd_result(r->pop, c, env->play_on_phone_result) != 0) {
			send_error(c, EPROTO, "PlayOnPhoneResult for a request "
				   "this instance was not given");
			ipc_conn_close(c);
		}
		return;
	default:
		log_warn("unexpected %s from pid %d; closing",
			 ipc_body_name(env->body_case), (int)ipc_conn_pid(c));
		send_error(c, EPROTO, "unexpected message for the router");
		ipc_conn_close(c);
		return;
	}
}

static void peer_close(struct ipc_conn *c, int err, void *arg)
{
	struct peer *p = arg;
	char id[80];

	/* Play on Phone requests of this umctl or instance end with it. */
	if (p->r && p->r->pop)
		popfwd_conn_gone(p->r->pop, c);
	/* Calls waiting for this instance's ack move on before it goes. */
	if (p->r && p->r->route && reg_find_conn(p->r->reg, c))
		route_instance_gone(p->r->route, c);
	if (p->r && reg_forget(p->r->reg, c, id, sizeof id) == 0)
		log_notice("UM service instance %s (pid %d) disconnected (%s); "
			   "no longer routing to it", id, (int)ipc_conn_pid(c),
			   err ? strerror(err) : "closed");
	else if (err && err != ECONNRESET)
		log_info("IPC peer pid %d closed: %s", (int)ipc_conn_pid(c),
			 strerror(err));
	free(p);
}

static void ipc_accept(struct ipc_server *s, uv_stream_t *server, void *arg)
{
	struct router *r = arg;
	struct ipc_conn *c;
	struct peer *p;

	if (r->stopping)
		return;
	p = calloc(1, sizeof *p);
	if (!p)
		return;
	p->r = r;
	if (ipc_conn_alloc(&c, loop_uv(r->loop), peer_recv, peer_close, p) != 0) {
		free(p);
		return;
	}
	/* On failure the close handler runs and frees p. */
	if (ipc_conn_accept(c, server) == 0)
		ipcmsg_send_hello(c, OPENUM__ROLE__ROLE_ROUTER, "umcallrouter");
}

/* --- SIP ----------------------------------------------------------------- */

/* Opens, reopens or closes the protocol log: --protocol-log wins over the
 * directory's ProtocolLogPath. */
static void apply_protolog(struct router *r)
{
	const char *want = r->opts.protocol_log ? r->opts.protocol_log
						: r->set.protocol_log;
	char *cause = NULL;

	if (r->plog && want[0] && !strcmp(protolog_path(r->plog), want))
		return;
	route_set_protolog(r->route, NULL);
	if (r->plog) {
		log_notice("protocol log %s closed", protolog_path(r->plog));
		protolog_close(r->plog);
		r->plog = NULL;
	}
	if (!want[0])
		return;
	if (protolog_open(&r->plog, want, &cause) != 0) {
		log_error("%s", cause ? cause : "cannot open the protocol log");
		free(cause);
		return;
	}
	route_set_protolog(r->route, r->plog);
	log_notice("protocol log: %s", want);
}

static struct rtab *router_table(void *arg)
{
	return route_table(arg);
}

/* Rebuilds the routing snapshot from the directory. */
static int apply_routing(struct router *r, char **cause)
{
	struct rtab *t;
	int err = rtab_build(&t, r->dir, cause);

	if (err)
		return err;
	/* FQDN gateways stay trusted at their last answer until the new
	 * lookups (gwres_refresh below) come back, or through a DNS outage. */
	rtab_keep_addrs(t, route_table(r->route));
	route_set_table(r->route, t);
	rtab_log_shared_addresses(t);
	if (gwres_configure(r->gwres, r->set.dns_servers, cause) != 0)
		log_error("DnsServers: %s", cause && *cause ? *cause : "invalid");
	gwres_refresh(r->gwres);
	log_info("routing table: %zu UM IP gateways", rtab_gateway_count(t));
	return 0;
}

/* Rereads the router settings and rebinds the SIP listeners to match. */
static int apply_settings(struct router *r, char **cause)
{
	struct dir_router_settings s;
	struct sipl_config cfg;
	int err;

	err = dir_router_settings_get(r->dir, &s);
	if (err) {
		if (cause && asprintf(cause, "cannot read the call router settings: %s",
				      strerror(err)) < 0)
			*cause = NULL;
		return err;
	}
	daemon_sipl_config(&cfg, s.af,
			   r->opts.sip_port ? r->opts.sip_port : s.sip_tcp_port);
	if (s.af != r->set.af || cfg.port != (r->opts.sip_port ? r->opts.sip_port
						: r->set.sip_tcp_port))
		log_notice("IPAddressFamily %s, SIP port %u", dir_af_name(s.af),
			   cfg.port);
	r->set = s;
	apply_protolog(r);
	err = apply_routing(r, cause);
	if (err)
		return err;
	return sipnet_apply(r->sip, cfg.family, cfg.port, cause);
}

/* --- life cycle ---------------------------------------------------------- */

static void router_stop(void *arg, const char *why)
{
	struct router *r = arg;

	if (r->stopping)
		return;
	r->stopping = true;
	log_notice("stopping (%s)", why);
	loop_stop(r->loop);
}

static void router_reload(void *arg)
{
	config_changed(arg, NULL, NULL, "SIGHUP", NULL);
}

static void close_ipc_peers(struct router *r)
{
	while (reg_count(r->reg) > 0) {
		struct reg_instance *in = reg_at(r->reg, 0);
		struct ipc_conn *c = in->conn;

		reg_forget(r->reg, c, NULL, 0);
		ipc_conn_close(c);
	}
}

int main(int argc, char **argv)
{
	struct router r;
	char path[PATH_MAX];
	char *cause = NULL;
	int err;

	memset(&r, 0, sizeof r);
	signal(SIGPIPE, SIG_IGN);
	log_set_process("umcallrouter");
	err = daemon_parse_args(&r.opts, argc, argv, "umcallrouter",
				"OpenUM call router: accepts SIP from PBXs and "
				"gateways and redirects each call to a UM service.");
	if (err)
		return err < 0 ? 0 : 2;
	log_set_level(r.opts.log_level);
	r.started_ms = daemon_now_ms();
	r.exit_code = 1;

	err = daemon_open_directory(&r.dir, &r.opts, &cause);
	if (err) {
		log_error("cannot open the directory: %s",
			  cause ? cause : strerror(err));
		goto out;
	}
	if ((err = loop_alloc_uv(&r.loop)) != 0 || (err = reg_alloc(&r.reg)) != 0 ||
	    (err = route_alloc(&r.route, loop_uv(r.loop), r.reg)) != 0 ||
	    (err = popfwd_alloc(&r.pop, r.reg)) != 0 ||
	    (err = gwres_alloc(&r.gwres, loop_uv(r.loop), router_table, r.route)) != 0) {
		log_error("cannot start: %s", strerror(err));
		goto out;
	}
	err = sipnet_alloc(&r.sip, loop_uv(r.loop), route_sip_cb, r.route);
	if (err)
		goto out;
	route_set_net(r.route, r.sip);
	err = daemon_signals_start(&r.sig, r.loop, router_stop, router_reload, &r);
	if (err)
		goto out;

	err = ipc_server_listen(&r.ipc, loop_uv(r.loop),
				daemon_state_path(&r.opts, "run/umcallrouter.sock",
						  path, sizeof path),
				ipc_accept, &r, &cause);
	if (err) {
		log_error("cannot open the IPC socket: %s",
			  cause ? cause : strerror(err));
		goto out;
	}
	log_notice("IPC socket %s", path);
	err = apply_settings(&r, &cause);
	if (err) {
		log_error("cannot listen for SIP: %s", cause ? cause : strerror(err));
		goto out;
	}
	log_notice("umcallrouter ready (pid %d, state %s)", (int)getpid(),
		   r.opts.state_abs);
	loop_run(r.loop);
	r.exit_code = 0;
out:
	free(cause);
	if (r.reg)
		close_ipc_peers(&r);
	if (r.ipc)
		ipc_server_close(r.ipc);
	sipnet_free(r.sip);
	gwres_free(r.gwres);
	route_free(r.route);
	popfwd_free(r.pop);
	r.pop = NULL;	/* peer_close may still run in loop_free */
	protolog_close(r.plog);
	daemon_signals_close(r.sig);
	loop_free(r.loop);
	reg_free(r.reg);
	dir_close(r.dir);
	if (r.exit_code == 0)
		log_notice("stopped");
	daemon_opts_release(&r.opts);
	return r.exit_code;
}
