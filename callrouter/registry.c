/* registry.c — UM service instances known to the router. */
#define LOG_MODULE "registry"
#include "callrouter/registry.h"
#include "common/daemon.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct registry {
	struct reg_instance **inst;
	size_t n, cap;
	unsigned serial;		/* the last one given */
};

/* Creates an empty registry. */
int reg_alloc(struct registry **out)
{
	struct registry *r = calloc(1, sizeof *r);

	if (!r)
		return ENOMEM;
	*out = r;
	return 0;
}

/* Frees the registry and every record (not the connections). */
void reg_free(struct registry *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->inst[i]->gw);
		free(r->inst[i]);
	}
	free(r->inst);
	free(r);
}

static int fail(char **cause, int err, const char *fmt, const char *arg)
{
	if (cause && asprintf(cause, fmt, arg) < 0)
		*cause = NULL;
	return err;
}

static bool valid_id(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c >= 0x7f)
			return false;
	}
	return true;
}

/* See the header. */
int reg_endpoint_init(struct reg_endpoint *e, int family, int transport,
		      const char *host, unsigned port)
{
	int af = family == OPENUM__ADDRESS_FAMILY__AF_IPV4   ? AF_INET
		 : family == OPENUM__ADDRESS_FAMILY__AF_IPV6 ? AF_INET6
							     : AF_UNSPEC;
	size_t n = host ? strlen(host) : sizeof e->host;

	memset(e, 0, sizeof *e);
	if (af == AF_UNSPEC || n >= sizeof e->host || port == 0 || port > 65535 ||
	    inet_pton(af, host, e->addr) != 1)
		return EINVAL;
	e->family = family;
	e->transport = transport;
	memcpy(e->host, host, n + 1);
	e->port = port;
	e->loopback = af == AF_INET ? e->addr[0] == 127
				    : IN6_IS_ADDR_LOOPBACK((struct in6_addr *)e->addr);
	return 0;
}

/* Registration is untrusted input, however local: every field is checked
 * before the router would ever put it in a Contact. */
static int parse_endpoints(struct reg_instance *in,
			   const Openum__ServiceRegister *m, char **cause)
{
	if (m->n_endpoints > REG_MAX_ENDPOINTS)
		return fail(cause, EINVAL, "%s", "too many endpoints (max 32)");
	for (size_t i = 0; i < m->n_endpoints; i++) {
		const Openum__SipEndpoint *e = m->endpoints[i];

		if (!e || !e->host)
			return fail(cause, EINVAL, "%s", "endpoint without host");
		if (e->family != OPENUM__ADDRESS_FAMILY__AF_IPV4 &&
		    e->family != OPENUM__ADDRESS_FAMILY__AF_IPV6)
			return fail(cause, EINVAL, "%s", "endpoint without family");
		if (e->port == 0 || e->port > 65535)
			return fail(cause, EINVAL, "%s", "endpoint port out of range");
		if (e->transport != OPENUM__TRANSPORT__TRANSPORT_UDP &&
		    e->transport != OPENUM__TRANSPORT__TRANSPORT_TCP &&
		    e->transport != OPENUM__TRANSPORT__TRANSPORT_TLS)
			return fail(cause, EINVAL, "%s", "endpoint without transport");
		if (reg_endpoint_init(&in->ep[i], e->family, e->transport, e->host,
				      e->port))
			return fail(cause, EINVAL,
				    "endpoint host \"%.64s\" is not an address "
				    "literal of its family", e->host);
	}
	in->n_ep = m->n_endpoints;
	return 0;
}

/* Records or replaces the registration made over conn. */
int reg_register(struct registry *r, struct ipc_conn *conn,
		 const Openum__ServiceRegister *m, char **cause)
{
	struct reg_instance tmp, *cur;
	int err;

	memset(&tmp, 0, sizeof tmp);
	if (!valid_id(m->instance_id))
		return fail(cause, EINVAL, "%s",
			    "instance id must be 1 to 64 printable characters");
	if (m->fqdn && strlen(m->fqdn) >= sizeof tmp.fqdn)
		return fail(cause, EINVAL, "%s", "fqdn too long");
	if (m->max_calls_allowed > 100000)
		return fail(cause, EINVAL, "%s", "max_calls_allowed out of range");
	err = parse_endpoints(&tmp, m, cause);
	if (err)
		return err;
	for (size_t i = 0; i < r->n; i++) {
		if (r->inst[i]->conn != conn &&
		    strcmp(r->inst[i]->id, m->instance_id) == 0)
			return fail(cause, EEXIST,
				    "instance id \"%s\" is already registered "
				    "by another connection", m->instance_id);
	}
	cur = reg_find_conn(r, conn);
	if (!cur) {
		if (r->n == r->cap) {
			size_t cap = r->cap ? r->cap * 2 : 4;
			struct reg_instance **p = realloc(r->inst, cap * sizeof *p);

			if (!p)
				return ENOMEM;
			r->inst = p;
			r->cap = cap;
		}
		cur = calloc(1, sizeof *cur);
		if (!cur)
			return ENOMEM;
		cur->conn = conn;
		cur->accepting = true;
		cur->registered_ms = daemon_now_ms();
		r->inst[r->n++] = cur;
	}
	snprintf(cur->id, sizeof cur->id, "%s", m->instance_id);
	snprintf(cur->fqdn, sizeof cur->fqdn, "%s", m->fqdn ? m->fqdn : "");
	memcpy(cur->ep, tmp.ep, sizeof tmp.ep);
	cur->n_ep = tmp.n_ep;
	cur->max_calls = m->max_calls_allowed;
	cur->pid = m->pid;
	if (!++r->serial)	/* 0 is no registration's */
		++r->serial;
	cur->serial = r->serial;
	return 0;
}

/* Updates load and accepting state. */
int reg_status(struct registry *r, struct ipc_conn *conn,
	       const Openum__ServiceStatus *m)
{
	struct reg_instance *in = reg_find_conn(r, conn);

	if (!in)
		return ENOENT;
	in->active_calls = m->active_calls;
	in->accepting = m->accepting;
	reg_set_health(in, m->gateways, m->n_gateways);
	return 0;
}

/* Copies s into dst (len bytes), control characters replaced: what an
 * instance says is printed to an administrator's terminal. */
static void copy_printable(char *dst, size_t len, const char *s)
{
	size_t i = 0;

	for (; s && s[i] && i + 1 < len; i++)
		dst[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	dst[i] = '\0';
}

/* Replaces the gateway states of an instance; entries without a usable
 * gateway name are skipped, strings are bounded. */
void reg_set_health(struct reg_instance *in, Openum__GatewayHealth **gh,
		    size_t n)
{
	struct reg_gwhealth *v = NULL;
	size_t k = 0;

	if (n > REG_MAX_GATEWAYS)
		n = REG_MAX_GATEWAYS;
	if (n && !(v = calloc(n, sizeof *v)))
		return;		/* keep the previous report */
	for (size_t i = 0; i < n; i++) {
		const Openum__GatewayHealth *h = gh[i];
		struct reg_gwhealth *d = &v[k];

		if (!h || !h->gateway || !h->gateway[0] ||
		    strlen(h->gateway) >= sizeof d->gateway)
			continue;
		copy_printable(d->gateway, sizeof d->gateway, h->gateway);
		d->checked = h->checked;
		d->up = h->up;
		d->last_status = h->last_status;
		copy_printable(d->last_reason, sizeof d->last_reason,
			       h->last_reason);
		copy_printable(d->address, sizeof d->address, h->address);
		d->checked_ms = h->checked_unix_ms;
		d->answered_ms = h->answered_unix_ms;
		d->changed_ms = h->changed_unix_ms;
		k++;
	}
	free(in->gw);
	in->gw = v;
	in->n_gw = k;
}

/* Removes the instance of conn; copies its id out for the log. */
int reg_forget(struct registry *r, struct ipc_conn *conn, char *id_out,
	       size_t id_len)
{
	for (size_t i = 0; i < r->n; i++) {
		if (r->inst[i]->conn != conn)
			continue;
		if (id_out)
			snprintf(id_out, id_len, "%s", r->inst[i]->id);
		free(r->inst[i]->gw);
		free(r->inst[i]);
		memmove(&r->inst[i], &r->inst[i + 1],
			(r->n - i - 1) * sizeof r->inst[0]);
		r->n--;
		return 0;
	}
	return ENOENT;
}

/* The instance registered over conn, or NULL. */
struct reg_instance *reg_find_conn(struct registry *r, struct ipc_conn *conn)
{
	for (size_t i = 0; i < r->n; i++) {
		if (r->inst[i]->conn == conn)
			return r->inst[i];
	}
	return NULL;
}

/* See the header. */
struct reg_instance *reg_find_serial(struct registry *r, unsigned serial)
{
	for (size_t i = 0; i < r->n; i++) {
		if (r->inst[i]->serial == serial)
			return r->inst[i];
	}
	return NULL;
}

/* Number of registered instances. */
size_t reg_count(const struct registry *r)
{
	return r->n;
}

/* The i-th instance, in registration order. */
struct reg_instance *reg_at(struct registry *r, size_t i)
{
	return i < r->n ? r->inst[i] : NULL;
}
