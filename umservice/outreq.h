/* outreq.h — an out-of-dialog SIP request from the UM service to a gateway
 * address chosen by the outbound connection policy (message-waiting
 * NOTIFY, OPTIONS ping): over TCP, from the agent of the address's family,
 * with From and Contact naming ExternalHostFqdn or the local address the
 * kernel routes toward the gateway. */
#ifndef OPENUM_OUTREQ_H
#define OPENUM_OUTREQ_H

#include "common/sipl.h"

#include <stddef.h>
#include <sys/socket.h>

#include <sofia-sip/nta.h>

struct outreq {
	const char *method;		/* "NOTIFY", "OPTIONS" */
	const struct sockaddr_storage *addr;	/* where it goes (port set) */
	const char *gw_host;		/* the gateway's Address (literal or FQDN) */
	unsigned gw_port;
	const char *user;		/* Request-URI and From user ("" = none) */
	const char *fqdn;		/* ExternalHostFqdn, "" = the local address */
	/* optional */
	const char *event;		/* Event header */
	const char *substate;		/* Subscription-State header */
	const char *accept;		/* Accept header */
	const char *content_type;
	const char *body;
};

/* Sends r through the agent of its address's family with callback cb;
 * returns the transaction, or NULL with *err set (ENOENT: no agent of the
 * family, ENOSPC, ENOMEM, EIO). The callback may also be called by nta
 * itself for a transport error or timeout: then its sip is NULL. */
nta_outgoing_t *outreq_send(struct sipl *sip, const struct outreq *r,
			    nta_response_f *cb, nta_outgoing_magic_t *magic,
			    int *err);

/* The local address the kernel would use toward dst (no packet is sent). */
int outreq_local_host(const struct sockaddr_storage *dst, char *buf,
		      size_t len);

#endif
