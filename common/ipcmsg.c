/* ipcmsg.c — IPC message building shared by umcallrouter and umservice. */
#include "common/ipcmsg.h"
#include "common/ipc.h"
#include "common/sipl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* See the header. */
int ipcmsg_endpoints(Openum__SipEndpoint ***out, size_t *n,
		     const struct sipl *s)
{
	struct sipl_endpoint eps[64];
	size_t cnt = sipl_endpoints(s, eps, 64);

	return ipcmsg_endpoints_of(out, n, eps, cnt > 64 ? 64 : cnt);
}

/* See the header. */
int ipcmsg_endpoints_of(Openum__SipEndpoint ***out, size_t *n,
			const struct sipl_endpoint *eps, size_t cnt)
{
	Openum__SipEndpoint **arr;

	arr = calloc(cnt ? cnt : 1, sizeof *arr);
	if (!arr)
		return ENOMEM;
	for (size_t i = 0; i < cnt; i++) {
		Openum__SipEndpoint *e = calloc(1, sizeof *e);

		if (!e) {
			ipcmsg_endpoints_free(arr, i);
			return ENOMEM;
		}
		openum__sip_endpoint__init(e);
		e->family = eps[i].family == SIPL_FAMILY_IPV6
				    ? OPENUM__ADDRESS_FAMILY__AF_IPV6
				    : OPENUM__ADDRESS_FAMILY__AF_IPV4;
		e->transport = strcmp(eps[i].transport, "tcp") == 0
				       ? OPENUM__TRANSPORT__TRANSPORT_TCP
			       : strcmp(eps[i].transport, "tls") == 0
				       ? OPENUM__TRANSPORT__TRANSPORT_TLS
				       : OPENUM__TRANSPORT__TRANSPORT_UDP;
		e->host = strdup(eps[i].host);
		e->port = eps[i].port;
		arr[i] = e;
		if (!e->host) {
			ipcmsg_endpoints_free(arr, i + 1);
			return ENOMEM;
		}
	}
	*out = arr;
	*n = cnt;
	return 0;
}

/* Frees what ipcmsg_endpoints built. */
void ipcmsg_endpoints_free(Openum__SipEndpoint **eps, size_t n)
{
	if (!eps)
		return;
	for (size_t i = 0; i < n; i++) {
		if (eps[i])
			free(eps[i]->host);
		free(eps[i]);
	}
	free(eps);
}

/* Formats an endpoint as transport and host:port, IPv6 in brackets. */
const char *ipcmsg_endpoint_str(const Openum__SipEndpoint *e, char *buf,
				size_t len)
{
	const char *tr = e->transport == OPENUM__TRANSPORT__TRANSPORT_TCP ? "tcp"
			 : e->transport == OPENUM__TRANSPORT__TRANSPORT_TLS ? "tls"
									     : "udp";
	int v6 = e->family == OPENUM__ADDRESS_FAMILY__AF_IPV6;

	snprintf(buf, len, "%s %s%s%s:%u", tr, v6 ? "[" : "",
		 e->host ? e->host : "?", v6 ? "]" : "", e->port);
	return buf;
}

/* See the header. */
int ipcmsg_send_hello(struct ipc_conn *c, int role, const char *software)
{
	Openum__Envelope env;
	Openum__Hello h = OPENUM__HELLO__INIT;

	ipc_envelope_init(&env);
	h.role = (Openum__Role)role;
	h.pid = (uint32_t)getpid();
	h.software = (char *)software;
	env.body_case = OPENUM__ENVELOPE__BODY_HELLO;
	env.hello = &h;
	return ipc_conn_send(c, &env);
}
