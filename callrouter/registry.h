/* registry.h — the UM service instances registered with this router over
 * IPC: who they are, where they listen, how loaded they are. An instance is
 * forgotten the moment its IPC connection closes. */
#ifndef OPENUM_REGISTRY_H
#define OPENUM_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/openum.pb-c.h"

struct ipc_conn;
struct registry;

struct reg_endpoint {
	int family;		/* OPENUM__ADDRESS_FAMILY__AF_IPV4 / _IPV6 */
	int transport;		/* OPENUM__TRANSPORT__TRANSPORT_UDP / _TCP / _TLS */
	char host[64];		/* literal, no brackets */
	unsigned port;
	unsigned char addr[16];	/* host in binary: 4 or 16 bytes by family */
	bool loopback;		/* 127.0.0.0/8 or ::1 */
};

#define REG_MAX_ENDPOINTS 32

/* Fills e from an endpoint's parts; EINVAL when host is not an address
 * literal of family (OPENUM__ADDRESS_FAMILY__*) or the port is out of range.
 * The router compares addresses in binary on every call: no text there. */
int reg_endpoint_init(struct reg_endpoint *e, int family, int transport,
		      const char *host, unsigned port);

/* Gateway states an instance reports at most (more are ignored). */
#define REG_MAX_GATEWAYS 1024

/* One gateway's health as an instance last reported it (gwhealth.h). */
struct reg_gwhealth {
	char gateway[65];
	bool checked, up;
	unsigned last_status;
	char last_reason[160];
	char address[64];
	unsigned long long checked_ms, answered_ms, changed_ms;
};

struct reg_instance {
	/* This registration: every (re-)registration gets a new one, never
	 * reused, so that what was decided under the old one (a 302 to resend)
	 * is not applied to different endpoints or a different process. */
	unsigned serial;
	char id[65];
	unsigned pid;
	struct ipc_conn *conn;
	struct reg_endpoint ep[REG_MAX_ENDPOINTS];
	size_t n_ep;
	unsigned max_calls;
	unsigned active_calls;
	bool accepting;
	unsigned long long calls_routed;
	unsigned long long registered_ms;
	/* It let a CallRoutedAck time out: until then (loop ms) other
	 * instances get calls first; any ack from it clears this. */
	unsigned long long avoid_until_ms;
	unsigned long long ack_timeouts;
	/* 302s to it sent again for an INVITE retransmitted over UDP: the
	 * first was lost on the way to the gateway (redirects.h). */
	unsigned long long redirects_resent;
	char fqdn[256];
	struct reg_gwhealth *gw;	/* malloc'd, n_gw of them */
	size_t n_gw;
};

int reg_alloc(struct registry **out);
void reg_free(struct registry *r);
/* Validates and records (or replaces) the registration of conn. EINVAL or
 * EEXIST with *cause when the message is refused. */
int reg_register(struct registry *r, struct ipc_conn *conn,
		 const Openum__ServiceRegister *m, char **cause);
/* Applies a status report of conn; ENOENT if conn never registered. */
int reg_status(struct registry *r, struct ipc_conn *conn,
	       const Openum__ServiceStatus *m);
/* Replaces the gateway states of an instance (from its ServiceStatus). */
void reg_set_health(struct reg_instance *in, Openum__GatewayHealth **gh,
		    size_t n);
/* Forgets the instance of conn, if any; returns it for a log line (valid
 * until the next registry call) or NULL. */
int reg_forget(struct registry *r, struct ipc_conn *conn, char *id_out,
	       size_t id_len);
struct reg_instance *reg_find_conn(struct registry *r, struct ipc_conn *conn);
/* The instance whose current registration is serial, or NULL. */
struct reg_instance *reg_find_serial(struct registry *r, unsigned serial);
size_t reg_count(const struct registry *r);
struct reg_instance *reg_at(struct registry *r, size_t i);

#endif
