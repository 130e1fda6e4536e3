/* gwres.c — FQDN gateways resolved into the routing table. Each round of
 * lookups has a generation number; an answer for an older generation (the
 * table was rebuilt meanwhile) is dropped. */
#define LOG_MODULE "gwres"
#include "common/gwres.h"
#include "common/rtab.h"
#include "common/log.h"
#include "common/resolver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lookup {
	struct lookup *next, *prev;
	struct gwres *g;
	unsigned gen;
	size_t index;
	char name[256];
};

struct gwres {
	uv_loop_t *uv;
	gwres_table_h *table_h;
	void *table_arg;
	struct resolver *res;
	char servers[512];
	unsigned gen;
	unsigned min_ttl;	/* of the current round */
	size_t outstanding;
	struct lookup *lookups;
	uv_timer_t timer;
};

static void lookup_all(struct gwres *g);

/* TTL ran out: the resolver's cache has expired too, so this asks DNS. */
static void refresh_cb(uv_timer_t *t)
{
	lookup_all(t->data);
}

static void lookup_done(void *arg, int err, const struct resolver_addr *addrs,
			size_t n, unsigned ttl_s)
{
	struct lookup *l = arg;
	struct gwres *g = l->g;
	struct rtab *t = g->table_h(g->table_arg);

	if (l->prev)
		l->prev->next = l->next;
	else
		g->lookups = l->next;
	if (l->next)
		l->next->prev = l->prev;
	if (l->gen == g->gen && t && l->index < rtab_gateway_count(t) &&
	    !strcmp(rtab_gateway(t, l->index)->address, l->name)) {
		struct sockaddr_storage ss[RTAB_MAX_ADDRS];
		char list[512] = "";
		size_t k = 0, used = 0;

		for (size_t i = 0; i < n && k < RTAB_MAX_ADDRS; i++, k++) {
			memset(&ss[k], 0, sizeof ss[k]);
			if (addrs[i].family == AF_INET6) {
				struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss[k];

				s6->sin6_family = AF_INET6;
				s6->sin6_addr = addrs[i].a.v6;
			} else {
				struct sockaddr_in *s4 = (struct sockaddr_in *)&ss[k];

				s4->sin_family = AF_INET;
				s4->sin_addr = addrs[i].a.v4;
			}
			used += (size_t)snprintf(list + used,
				used < sizeof list ? sizeof list - used : 0,
				"%s%s", i ? " " : "", addrs[i].str);
			if (used >= sizeof list)
				used = sizeof list - 1;
		}
		if (err) {
			/* Keep trusting the last good answer through a DNS
			 * outage rather than locking the gateway out. */
			const struct dir_gateway *gw = rtab_gateway(t, l->index);

			if (err == ENOENT)
				log_warn("UM IP gateway %s: %s has no %s record "
					 "(IPAddressFamily %s); keeping its previous "
					 "addresses", gw->name, l->name,
					 gw->af == DIR_AF_IPV4ONLY ? "A"
					 : gw->af == DIR_AF_IPV6ONLY ? "AAAA"
								     : "A or AAAA",
					 dir_af_name(gw->af));
			else
				log_warn("cannot resolve UM IP gateway %s (%s): %s; "
					 "keeping its previous addresses", gw->name,
					 l->name, strerror(err));
			ttl_s = 30;
		} else {
			rtab_set_addrs(t, l->index, ss, k);
			log_info("UM IP gateway %s: %s -> %s (TTL %u s)",
				 rtab_gateway(t, l->index)->name, l->name, list, ttl_s);
		}
		if (ttl_s < g->min_ttl)
			g->min_ttl = ttl_s;
		if (--g->outstanding == 0) {
			unsigned s = g->min_ttl;

			if (s < GWRES_REFRESH_MIN_S)
				s = GWRES_REFRESH_MIN_S;
			if (s > GWRES_REFRESH_MAX_S)
				s = GWRES_REFRESH_MAX_S;
			rtab_log_shared_addresses(t);
			uv_timer_start(&g->timer, refresh_cb, (uint64_t)s * 1000, 0);
		}
	}
	free(l);
}

/* Creates the resolver-backed updater (system DNS until configured). */
int gwres_alloc(struct gwres **out, uv_loop_t *uv, gwres_table_h *table_h,
		void *arg)
{
	struct gwres *g = calloc(1, sizeof *g);
	int err;

	if (!g)
		return ENOMEM;
	g->uv = uv;
	g->table_h = table_h;
	g->table_arg = arg;
	err = resolver_alloc(&g->res, uv, "", NULL);
	if (err) {
		free(g);
		return err;
	}
	uv_timer_init(uv, &g->timer);
	g->timer.data = g;
	*out = g;
	return 0;
}

/* Changes the DNS servers if they differ from the current ones. */
int gwres_configure(struct gwres *g, const char *servers, char **cause)
{
	int err;

	if (!strcmp(g->servers, servers ? servers : ""))
		return 0;
	err = resolver_set_servers(g->res, servers ? servers : "", cause);
	if (err)
		return err;
	snprintf(g->servers, sizeof g->servers, "%s", servers ? servers : "");
	log_notice("DNS servers for gateway names: %s",
		   g->servers[0] ? g->servers : "(system resolver)");
	return 0;
}

/* Looks every FQDN gateway up again, asking DNS afresh: a directory change
 * (or SIGHUP) is when an administrator expects a new record to be seen,
 * whatever TTL the old one had. */
void gwres_refresh(struct gwres *g)
{
	resolver_flush(g->res);
	lookup_all(g);
}

static void lookup_all(struct gwres *g)
{
	struct rtab *t = g->table_h(g->table_arg);

	g->gen++;
	g->outstanding = 0;
	g->min_ttl = GWRES_REFRESH_MAX_S;
	uv_timer_stop(&g->timer);
	if (!t)
		return;
	for (size_t i = 0; i < rtab_gateway_count(t); i++) {
		const struct dir_gateway *gw = rtab_gateway(t, i);
		struct lookup *l;
		unsigned fam;

		if (!rtab_gateway_is_fqdn(t, i))
			continue;
		fam = gw->af == DIR_AF_IPV4ONLY ? RESOLVER_V4
		      : gw->af == DIR_AF_IPV6ONLY ? RESOLVER_V6
						  : RESOLVER_V4 | RESOLVER_V6;
		l = calloc(1, sizeof *l);
		if (!l)
			continue;
		l->g = g;
		l->gen = g->gen;
		l->index = i;
		snprintf(l->name, sizeof l->name, "%s", gw->address);
		l->next = g->lookups;
		if (g->lookups)
			g->lookups->prev = l;
		g->lookups = l;
		g->outstanding++;
		if (resolver_lookup(g->res, gw->address, fam, lookup_done, l) != 0) {
			g->outstanding--;
			g->lookups = l->next;
			if (l->next)
				l->next->prev = NULL;
			free(l);
		}
	}
}

static void timer_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Cancels lookups and frees once libuv is done with the timer. */
void gwres_free(struct gwres *g)
{
	if (!g)
		return;
	resolver_free(g->res);	/* no handler runs after this */
	while (g->lookups) {
		struct lookup *l = g->lookups;

		g->lookups = l->next;
		free(l);
	}
	uv_close((uv_handle_t *)&g->timer, timer_closed);
}
