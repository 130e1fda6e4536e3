/* routerlink.c — the UM service side of the IPC: reconnect with backoff. */
#define LOG_MODULE "routerlink"
#include "umservice/routerlink.h"
#include "common/ipc.h"
#include "common/ipcmsg.h"
#include "common/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BACKOFF_MIN_MS 100

struct rlink {
	uv_loop_t *loop;
	char *path;
	rlink_up_h *uph;
	rlink_recv_h *recvh;
	void *arg;
	struct ipc_conn *conn;	/* NULL while away */
	bool up;		/* connected and Hello sent */
	bool closing;
	bool was_up;		/* for one log line per outage */
	unsigned backoff_ms;
	uv_timer_t retry;
};

static void try_connect(struct rlink *l);

static void retry_closed(uv_handle_t *h)
{
	free(h->data);
}

static void retry_cb(uv_timer_t *t)
{
	try_connect(t->data);
}

static void schedule_retry(struct rlink *l)
{
	if (l->closing)
		return;
	uv_timer_start(&l->retry, retry_cb, l->backoff_ms, 0);
	l->backoff_ms *= 2;
	if (l->backoff_ms > RLINK_BACKOFF_MAX_MS)
		l->backoff_ms = RLINK_BACKOFF_MAX_MS;
}

static void on_recv(struct ipc_conn *c, const Openum__Envelope *env, void *arg)
{
	struct rlink *l = arg;

	if (env->body_case == OPENUM__ENVELOPE__BODY_HELLO)
		return;
	if (env->body_case == OPENUM__ENVELOPE__BODY_ERROR) {
		log_warn("router says: %s", env->error->message ? env->error->message : "?");
		return;
	}
	if (l->recvh)
		l->recvh(l->arg, env);
}

static void on_close(struct ipc_conn *c, int err, void *arg)
{
	struct rlink *l = arg;

	l->conn = NULL;
	l->up = false;
	if (l->closing) {
		uv_close((uv_handle_t *)&l->retry, retry_closed);
		free(l->path);
		l->path = NULL;
		return;
	}
	if (l->was_up) {
		log_warn("lost the call router (%s); calls in progress continue, "
			 "reconnecting", err ? strerror(err) : "closed");
		l->was_up = false;
		l->backoff_ms = BACKOFF_MIN_MS;
	} else {
		log_debug("router not reachable at %s: %s", l->path,
			  strerror(err));
	}
	schedule_retry(l);
}

static void on_connect(struct ipc_conn *c, void *arg)
{
	struct rlink *l = arg;

	if (ipcmsg_send_hello(c, OPENUM__ROLE__ROLE_UMSERVICE, "umservice") != 0) {
		ipc_conn_close(c);
		return;
	}
	l->up = true;
	l->was_up = true;
	l->backoff_ms = BACKOFF_MIN_MS;
	log_notice("connected to the call router at %s", l->path);
	if (l->uph)
		l->uph(l->arg);
}

static void try_connect(struct rlink *l)
{
	struct ipc_conn *c;

	if (l->closing || l->conn)
		return;
	if (ipc_conn_alloc(&c, l->loop, on_recv, on_close, l) != 0) {
		schedule_retry(l);
		return;
	}
	l->conn = c;
	/* A failure comes back through on_close, which schedules a retry. */
	ipc_conn_connect(c, l->path, on_connect);
}

/* Starts connecting to the router socket at sock_path. */
int rlink_alloc(struct rlink **out, uv_loop_t *loop, const char *sock_path,
		rlink_up_h *uph, rlink_recv_h *recvh, void *arg)
{
	struct rlink *l = calloc(1, sizeof *l);

	if (!l)
		return ENOMEM;
	l->path = strdup(sock_path);
	if (!l->path) {
		free(l);
		return ENOMEM;
	}
	l->loop = loop;
	l->uph = uph;
	l->recvh = recvh;
	l->arg = arg;
	l->backoff_ms = BACKOFF_MIN_MS;
	uv_timer_init(loop, &l->retry);
	l->retry.data = l;
	*out = l;
	try_connect(l);
	return 0;
}

/* Sends one envelope to the router. */
int rlink_send(struct rlink *l, const Openum__Envelope *env)
{
	if (!l->conn || !l->up)
		return ENOTCONN;
	return ipc_conn_send(l->conn, env);
}

/* True while connected. */
int rlink_connected(const struct rlink *l)
{
	return l->up;
}

/* Closes the link; the memory goes once libuv has closed the handles. */
void rlink_free(struct rlink *l)
{
	if (!l)
		return;
	l->closing = true;
	uv_timer_stop(&l->retry);
	if (l->conn) {
		ipc_conn_close(l->conn);
		return;
	}
	free(l->path);
	uv_close((uv_handle_t *)&l->retry, retry_closed);
}
