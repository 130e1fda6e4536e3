/* ipcmsg.h — builds the IPC messages both daemons send about themselves
 * (their SIP endpoints) from process state. */
#ifndef OPENUM_IPCMSG_H
#define OPENUM_IPCMSG_H

#include <stddef.h>

#include "proto/openum.pb-c.h"

struct sipl;
struct sipl_endpoint;
struct ipc_conn;

/* Sends the first frame of a connection: Hello with our role (an
 * Openum__Role), pid and software name. */
int ipcmsg_send_hello(struct ipc_conn *c, int role, const char *software);

/* A heap array of endpoints describing every socket of s (each element and
 * the array allocated); release with ipcmsg_endpoints_free. */
int ipcmsg_endpoints(Openum__SipEndpoint ***out, size_t *n,
		     const struct sipl *s);
/* The same from a list of endpoints (the router's own sockets). */
int ipcmsg_endpoints_of(Openum__SipEndpoint ***out, size_t *n,
			const struct sipl_endpoint *eps, size_t cnt);
void ipcmsg_endpoints_free(Openum__SipEndpoint **eps, size_t n);
/* "udp 127.0.0.1:5060" / "tcp [::1]:5060" for logs and tables. */
const char *ipcmsg_endpoint_str(const Openum__SipEndpoint *e, char *buf,
				size_t len);

#endif
