/* rtab.h — the router's routing table: an in-memory snapshot of the
 * directory (gateways with their addresses, hunt groups, dial plans, mailbox
 * extensions), rebuilt on every directory change, so that routing an INVITE
 * never touches SQLite. Addresses of gateways given by FQDN are filled in
 * by the resolver as answers arrive. */
#ifndef OPENUM_RTAB_H
#define OPENUM_RTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "common/classify.h"
#include "common/directory.h"

struct rtab;

/* Most resolved addresses kept per gateway. */
#define RTAB_MAX_ADDRS 16

int rtab_build(struct rtab **out, struct dir *d, char **cause);
void rtab_free(struct rtab *t);
size_t rtab_gateway_count(const struct rtab *t);
const struct dir_gateway *rtab_gateway(const struct rtab *t, size_t i);
/* True when the gateway's Address is an FQDN that needs resolving. */
bool rtab_gateway_is_fqdn(const struct rtab *t, size_t i);
/* Replaces the resolved addresses of gateway i (only the families its
 * IPAddressFamily allows are kept). */
void rtab_set_addrs(struct rtab *t, size_t i, const struct sockaddr_storage *a,
		    size_t n);
/* The gateways given by FQDN whose IPAddressFamily excludes family
 * (AF_INET, AF_INET6), as "name (fqdn)" joined by ", " into out (cut to
 * len); returns how many there are. Their names are never looked up in
 * that family, so a call from one of them over it is refused like any
 * stranger's: this lets the log line say what setting to check. */
size_t rtab_fqdn_excluding(const struct rtab *t, int family, char *out,
			   size_t len);
/* Gives each FQDN gateway of t the addresses old had resolved for the same
 * FQDN (in the families its IPAddressFamily allows now), so that a rebuilt
 * table trusts them until DNS answers again, or through a DNS outage.
 * Returns how many gateways got addresses. */
size_t rtab_keep_addrs(struct rtab *t, const struct rtab *old);
/* The gateway that the source address src belongs to: its Address literal
 * or one of its resolved addresses, in a family its IPAddressFamily allows.
 * An enabled gateway wins over a disabled one with the same address. NULL
 * when src is no gateway's. *index gets its position. */
const struct dir_gateway *rtab_gateway_by_addr(const struct rtab *t,
					       const struct sockaddr *src,
					       size_t *index);
const char *rtab_mailbox_name(const struct rtab *t, const char *dialplan,
			      const char *ext);
bool rtab_mailbox_oof(const struct rtab *t, const char *dialplan,
		      const char *ext);
const struct dir_dialplan *rtab_dialplan(const struct rtab *t,
					 const char *name);
/* A classification context over this snapshot (valid while t lives). */
void rtab_classify_ctx(const struct rtab *t, struct classify_ctx *ctx);
/* Pairs of gateways with an address in common (Exchange event 1175):
 * logged by the caller; returns how many pairs were found. */
size_t rtab_log_shared_addresses(const struct rtab *t);

#endif
