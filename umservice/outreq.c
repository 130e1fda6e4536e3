/* outreq.c — out-of-dialog SIP requests to gateways (see outreq.h). */
#include "umservice/outreq.h"
#include "common/hex.h"
#include "common/netaddr.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sofia-sip/msg.h>
#include <sofia-sip/sip_protos.h>
#include <sofia-sip/sip_tag.h>

int outreq_local_host(const struct sockaddr_storage *dst, char *buf,
		      size_t len)
{
	struct sockaddr_storage ss;
	int err = netaddr_route_source(dst, &ss);

	if (!err)
		netaddr_host((struct sockaddr *)&ss, buf, len);
	return err;
}

nta_outgoing_t *outreq_send(struct sipl *sip, const struct outreq *r,
			    nta_response_f *cb, nta_outgoing_magic_t *magic,
			    int *err)
{
	const struct sockaddr_storage *a = r->addr;
	bool v6 = a->ss_family == AF_INET6;
	enum sipl_family f = v6 ? SIPL_FAMILY_IPV6 : SIPL_FAMILY_IPV4;
	nta_agent_t *agent = sipl_agent(sip, f);
	char host[NETADDR_STRLEN], local[300], lhost[304], gwhost[260];
	char route[128], ruri[400], rq[420], from[420], to[404], contact[340];
	char callid[40], tag[20], cseq[32], user[80];
	unsigned lport;
	nta_outgoing_t *orq;
	msg_t *msg;

	if (!agent) {
		*err = ENOENT;
		return NULL;
	}
	lport = sipl_listener_port(sip, f, "tcp");
	netaddr_host((const struct sockaddr *)a, host, sizeof host);
	snprintf(route, sizeof route, "sip:%s%s%s:%u;transport=tcp", v6 ? "[" : "",
		 host, v6 ? "]" : "", netaddr_port((const struct sockaddr *)a));
	if (r->fqdn && r->fqdn[0])
		snprintf(local, sizeof local, "%s", r->fqdn);
	else if ((*err = outreq_local_host(a, local, sizeof local)) != 0)
		return NULL;
	snprintf(lhost, sizeof lhost, strchr(local, ':') ? "[%s]" : "%s", local);
	snprintf(gwhost, sizeof gwhost, strchr(r->gw_host, ':') ? "[%s]" : "%s",
		 r->gw_host);
	snprintf(user, sizeof user, "%s%s", r->user && *r->user ? r->user : "",
		 r->user && *r->user ? "@" : "");
	snprintf(ruri, sizeof ruri, "sip:%s%s:%u", user, gwhost, r->gw_port);
	snprintf(rq, sizeof rq, "%s %s SIP/2.0", r->method, ruri);
	snprintf(to, sizeof to, "<%s>", ruri);
	hex_random(tag, 8);
	snprintf(from, sizeof from, "<sip:%s%s>;tag=%s", user, lhost, tag);
	hex_random(callid, 16);
	snprintf(cseq, sizeof cseq, "1 %s", r->method);
	snprintf(contact, sizeof contact, "<sip:%s:%u;transport=tcp>", lhost, lport);

	msg = nta_msg_create(agent, 0);
	if (!msg) {
		*err = ENOMEM;
		return NULL;
	}
	if (sip_add_tl(msg, sip_object(msg),
		       SIPTAG_REQUEST_STR(rq),
		       SIPTAG_MAX_FORWARDS_STR("70"),
		       SIPTAG_FROM_STR(from),
		       SIPTAG_TO_STR(to),
		       SIPTAG_CALL_ID_STR(callid),
		       SIPTAG_CSEQ_STR(cseq),
		       TAG_IF(lport, SIPTAG_CONTACT_STR(contact)),
		       TAG_IF(r->event, SIPTAG_EVENT_STR(r->event)),
		       TAG_IF(r->substate,
			      SIPTAG_SUBSCRIPTION_STATE_STR(r->substate)),
		       TAG_IF(r->accept, SIPTAG_ACCEPT_STR(r->accept)),
		       SIPTAG_USER_AGENT_STR("OpenUM"),
		       TAG_IF(r->content_type,
			      SIPTAG_CONTENT_TYPE_STR(r->content_type)),
		       TAG_IF(r->body, SIPTAG_PAYLOAD_STR(r->body)),
		       TAG_END()) < 0) {
		msg_destroy(msg);
		*err = ENOSPC;
		return NULL;
	}
	/* Internal answers (transport errors) come back later, never from
	 * inside mcreate. */
	orq = nta_outgoing_mcreate(agent, cb, magic, (url_string_t *)route, msg,
				   TAG_END());
	if (!orq) {
		msg_destroy(msg);
		*err = EIO;
		return NULL;
	}
	*err = 0;
	return orq;
}
