/* rtab.c — the routing snapshot. Sizes are small (hundreds of gateways, a
 * few thousand mailboxes), so the structures are plain sorted arrays:
 * gateway addresses are matched by a linear scan over packed 16-byte keys,
 * mailboxes by binary search over "dialplan\x1fextension" strings. */
#define LOG_MODULE "rtab"
#include "common/rtab.h"
#include "common/log.h"
#include "common/netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct gw {
	struct dir_gateway d;
	bool fqdn;
	struct sockaddr_storage addr[RTAB_MAX_ADDRS];
	size_t n_addr;
};

struct rtab {
	struct gw *gw;
	size_t n_gw;
	struct dir_huntgroup *hg;
	size_t n_hg;
	struct dir_dialplan *dp;
	size_t n_dp;
	char **mbx;		/* sorted "dialplan\x1fext\0display name\0F"
				 * (F: '1' when the out-of-office greeting
				 * is on, else '0') */
	size_t n_mbx;
};

static bool family_allowed(enum dir_af af, int family)
{
	if (family == AF_INET)
		return af != DIR_AF_IPV6ONLY;
	if (family == AF_INET6)
		return af != DIR_AF_IPV4ONLY;
	return false;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_mailboxes(struct rtab *t, struct dir *d)
{
	size_t cap = 0;

	for (size_t i = 0; i < t->n_dp; i++) {
		struct dir_mailbox *m = NULL;
		size_t n = 0;
		int err = dir_mailbox_list(d, t->dp[i].name, &m, &n);

		if (err)
			return err;
		for (size_t k = 0; k < n; k++) {
			char *key;

			if (!m[k].enabled)
				continue;
			if (t->n_mbx == cap) {
				size_t nc = cap ? cap * 2 : 64;
				char **p = realloc(t->mbx, nc * sizeof *p);

				if (!p) {
					free(m);
					return ENOMEM;
				}
				t->mbx = p;
				cap = nc;
			}
			/* The display name rides after the key's NUL, so the
			 * sorted keys compare as before. */
			{
				size_t kl = strlen(m[k].dialplan) + 1 +
					    strlen(m[k].extension);
				size_t dl = strlen(m[k].display_name);

				key = malloc(kl + 1 + dl + 1 + 2);
				if (!key) {
					free(m);
					return ENOMEM;
				}
				sprintf(key, "%s\x1f%s", m[k].dialplan,
					m[k].extension);
				memcpy(key + kl + 1, m[k].display_name, dl + 1);
				key[kl + 1 + dl + 1] = m[k].oof_enabled ? '1' : '0';
				key[kl + 1 + dl + 2] = '\0';
			}
			t->mbx[t->n_mbx++] = key;
		}
		free(m);
	}
	if (t->n_mbx)
		qsort(t->mbx, t->n_mbx, sizeof *t->mbx, cmp_str);
	return 0;
}

/* Builds a snapshot of the directory. */
int rtab_build(struct rtab **out, struct dir *d, char **cause)
{
	struct dir_gateway *g = NULL;
	size_t n_g = 0;
	struct rtab *t;
	int err;

	t = calloc(1, sizeof *t);
	if (!t)
		return ENOMEM;
	err = dir_gateway_list(d, &g, &n_g);
	if (!err)
		err = dir_huntgroup_list(d, &t->hg, &t->n_hg);
	if (!err)
		err = dir_dialplan_list(d, &t->dp, &t->n_dp);
	if (!err)
		err = load_mailboxes(t, d);
	if (err) {
		if (cause && asprintf(cause, "cannot read the directory: %s",
				      strerror(err)) < 0)
			*cause = NULL;
		goto out;
	}
	t->gw = calloc(n_g ? n_g : 1, sizeof *t->gw);
	if (!t->gw) {
		err = ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n_g; i++) {
		struct gw *w = &t->gw[i];
		struct sockaddr_storage ss;

		w->d = g[i];
		if (netaddr_literal(g[i].address, &ss) == 0) {
			if (family_allowed(g[i].af, ss.ss_family))
				w->addr[w->n_addr++] = ss;
		} else {
			w->fqdn = true;
		}
	}
	t->n_gw = n_g;
out:
	free(g);
	if (err) {
		rtab_free(t);
		return err;
	}
	*out = t;
	return 0;
}

/* Frees a snapshot; NULL is fine. */
void rtab_free(struct rtab *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_mbx; i++)
		free(t->mbx[i]);
	free(t->mbx);
	free(t->gw);
	free(t->hg);
	free(t->dp);
	free(t);
}

/* Number of gateways. */
size_t rtab_gateway_count(const struct rtab *t)
{
	return t->n_gw;
}

/* Gateway i. */
const struct dir_gateway *rtab_gateway(const struct rtab *t, size_t i)
{
	return i < t->n_gw ? &t->gw[i].d : NULL;
}

/* Whether gateway i is known by name. */
bool rtab_gateway_is_fqdn(const struct rtab *t, size_t i)
{
	return i < t->n_gw && t->gw[i].fqdn;
}

/* Replaces the resolved addresses of gateway i. */
void rtab_set_addrs(struct rtab *t, size_t i, const struct sockaddr_storage *a,
		    size_t n)
{
	struct gw *w;

	if (i >= t->n_gw)
		return;
	w = &t->gw[i];
	w->n_addr = 0;
	for (size_t k = 0; k < n && w->n_addr < RTAB_MAX_ADDRS; k++) {
		if (family_allowed(w->d.af, a[k].ss_family))
			w->addr[w->n_addr++] = a[k];
	}
}

/* See the header. */
size_t rtab_fqdn_excluding(const struct rtab *t, int family, char *out,
			   size_t len)
{
	size_t n = 0, used = 0;

	if (len)
		out[0] = '\0';
	for (size_t i = 0; i < t->n_gw; i++) {
		const struct gw *w = &t->gw[i];
		int k;

		if (!w->fqdn || family_allowed(w->d.af, family))
			continue;
		if (used < len) {
			k = snprintf(out + used, len - used, "%s%s (%s)", n ? ", " : "",
				     w->d.name, w->d.address);
			used = k < 0 ? len : used + (size_t)k;
		}
		n++;
	}
	return n;
}

/* See the header. Names compare without case, as DNS does. */
size_t rtab_keep_addrs(struct rtab *t, const struct rtab *old)
{
	size_t kept = 0;

	for (size_t i = 0; old && i < t->n_gw; i++) {
		if (!t->gw[i].fqdn)
			continue;
		for (size_t j = 0; j < old->n_gw; j++) {
			const struct gw *o = &old->gw[j];

			if (!o->fqdn || !o->n_addr ||
			    strcasecmp(o->d.address, t->gw[i].d.address))
				continue;
			rtab_set_addrs(t, i, o->addr, o->n_addr);
			kept += t->gw[i].n_addr > 0;
			break;
		}
	}
	return kept;
}

/* Finds the gateway a source address belongs to. */
const struct dir_gateway *rtab_gateway_by_addr(const struct rtab *t,
					       const struct sockaddr *src,
					       size_t *index)
{
	const struct gw *found = NULL;
	size_t at = 0;

	for (size_t i = 0; i < t->n_gw; i++) {
		const struct gw *w = &t->gw[i];

		for (size_t k = 0; k < w->n_addr; k++) {
			if (!netaddr_same_host((const struct sockaddr *)&w->addr[k],
					       src))
				continue;
			if (!found || (found->d.status != DIR_GW_ENABLED &&
				       w->d.status == DIR_GW_ENABLED)) {
				found = w;
				at = i;
			}
			break;
		}
	}
	if (found && index)
		*index = at;
	return found ? &found->d : NULL;
}

static char *const *find_mailbox(const struct rtab *t, const char *dialplan,
				 const char *ext)
{
	char key[160], *kp = key;
	size_t dl = strlen(dialplan), el = strlen(ext);

	/* once or twice per INVITE: joined by hand, snprintf showed in the
	 * router's profile */
	if (!t->n_mbx || dl + 1 + el >= sizeof key)
		return NULL;
	memcpy(key, dialplan, dl);
	key[dl] = '\x1f';
	memcpy(key + dl + 1, ext, el + 1);
	return bsearch(&kp, t->mbx, t->n_mbx, sizeof *t->mbx, cmp_str);
}

static int mailbox_h(void *arg, const char *dialplan, const char *ext)
{
	return find_mailbox(arg, dialplan, ext) ? 0 : ENOENT;
}

/* The display name of an enabled mailbox, or NULL when there is none. */
const char *rtab_mailbox_name(const struct rtab *t, const char *dialplan,
			      const char *ext)
{
	char *const *k = find_mailbox(t, dialplan, ext);

	return k ? *k + strlen(*k) + 1 : NULL;
}

/* Whether an enabled mailbox has its out-of-office greeting on. */
bool rtab_mailbox_oof(const struct rtab *t, const char *dialplan,
		      const char *ext)
{
	const char *name = rtab_mailbox_name(t, dialplan, ext);

	return name && name[strlen(name) + 1] == '1';
}

/* A dial plan by name (case-insensitive, as the directory compares). */
const struct dir_dialplan *rtab_dialplan(const struct rtab *t, const char *name)
{
	for (size_t i = 0; i < t->n_dp; i++) {
		if (!strcasecmp(t->dp[i].name, name))
			return &t->dp[i];
	}
	return NULL;
}

/* Fills a classification context that reads this snapshot. */
void rtab_classify_ctx(const struct rtab *t, struct classify_ctx *ctx)
{
	memset(ctx, 0, sizeof *ctx);
	ctx->huntgroups = t->hg;
	ctx->n_huntgroups = t->n_hg;
	ctx->dialplans = t->dp;
	ctx->n_dialplans = t->n_dp;
	ctx->mailbox_h = mailbox_h;
	ctx->mailbox_arg = (void *)t;
}

/* Logs every pair of gateways that share an address (event 1175). */
size_t rtab_log_shared_addresses(const struct rtab *t)
{
	size_t pairs = 0;

	for (size_t i = 0; i < t->n_gw; i++) {
		for (size_t j = i + 1; j < t->n_gw; j++) {
			for (size_t a = 0; a < t->gw[i].n_addr; a++) {
				size_t b;

				for (b = 0; b < t->gw[j].n_addr; b++) {
					if (netaddr_same_host(
						    (const struct sockaddr *)&t->gw[i].addr[a],
						    (const struct sockaddr *)&t->gw[j].addr[b]))
						break;
				}
				if (b < t->gw[j].n_addr) {
					char h[NETADDR_STRLEN];

					log_warn("event 1175: UM IP gateways %s and %s "
						 "both resolve to %s; calls from it are "
						 "attributed to %s",
						 t->gw[i].d.name, t->gw[j].d.name,
						 netaddr_host((const struct sockaddr *)&t->gw[i].addr[a],
							      h, sizeof h),
						 t->gw[i].d.status == DIR_GW_ENABLED ||
							 t->gw[j].d.status != DIR_GW_ENABLED
							 ? t->gw[i].d.name : t->gw[j].d.name);
					pairs++;
					break;
				}
			}
		}
	}
	return pairs;
}
