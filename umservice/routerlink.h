/* routerlink.h — a UM service's connection to the call router: connect,
 * say Hello, let the owner register, pass the router's messages on, and when
 * the router goes away keep trying (with backoff) while the service's own
 * work goes on. */
#ifndef OPENUM_ROUTERLINK_H
#define OPENUM_ROUTERLINK_H

#include <uv.h>

#include "proto/openum.pb-c.h"

struct rlink;

/* Connected and greeted: send ServiceRegister now. */
typedef void (rlink_up_h)(void *arg);
/* A message from the router other than Hello. */
typedef void (rlink_recv_h)(void *arg, const Openum__Envelope *env);

/* Longest wait between two connection attempts. */
#define RLINK_BACKOFF_MAX_MS 1000

int rlink_alloc(struct rlink **out, uv_loop_t *loop, const char *sock_path,
		rlink_up_h *uph, rlink_recv_h *recvh, void *arg);
/* ENOTCONN while the router is away. */
int rlink_send(struct rlink *l, const Openum__Envelope *env);
int rlink_connected(const struct rlink *l);
/* Stops reconnecting and closes the link; frees it once libuv is done. */
void rlink_free(struct rlink *l);

#endif
