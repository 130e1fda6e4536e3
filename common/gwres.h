/* gwres.h — keeps the addresses of gateways given by FQDN current in the
 * routing table: looks each one up (A and/or AAAA as its IPAddressFamily
 * allows) through the DNS servers of the directory, and again when the
 * answers' TTL runs out and on every directory change. */
#ifndef OPENUM_GWRES_H
#define OPENUM_GWRES_H

#include <uv.h>

struct gwres;
struct rtab;

/* Returns the routing table whose FQDN gateways are to be kept resolved
 * (it may change between calls: answers are applied to the current one). */
typedef struct rtab *(gwres_table_h)(void *arg);

/* Bounds of the refresh interval (s), whatever the TTLs say. */
#define GWRES_REFRESH_MIN_S 1
#define GWRES_REFRESH_MAX_S 300

int gwres_alloc(struct gwres **out, uv_loop_t *uv, gwres_table_h *table_h,
		void *arg);
/* Points the resolver at servers ("" = the system's) if they changed. */
int gwres_configure(struct gwres *g, const char *servers, char **cause);
/* Starts a new round of lookups for the current routing table. */
void gwres_refresh(struct gwres *g);
void gwres_free(struct gwres *g);

#endif
