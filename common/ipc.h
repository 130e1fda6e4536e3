/* ipc.h — framed IPC connections over a Unix stream socket on a libuv loop:
 * the router's listening socket (ipc_server) and one connection per peer
 * (ipc_conn), used by the router (accepting side) and umservice (connecting
 * side). Frames are those of proto/ipc_frame.h.
 *
 * Lifetime: an ipc_conn ends with exactly one call of its close handler, made
 * from the libuv close callback; the memory is freed right after that
 * handler returns, so nothing may touch the conn once its close handler has
 * run. Everything runs on the loop's thread. The process must ignore SIGPIPE
 * (libuv writes with write(2)). */
#ifndef OPENUM_IPC_H
#define OPENUM_IPC_H

#include <sys/types.h>
#include <uv.h>

#include "proto/ipc_frame.h"

struct ipc_conn;
struct ipc_server;

/* One decoded envelope from the peer. env belongs to the connection and is
 * freed when the handler returns: copy what you need. The handler may send,
 * and may call ipc_conn_close(c) (no further envelope is delivered then). */
typedef void (ipc_recv_h)(struct ipc_conn *c, const Openum__Envelope *env,
			  void *arg);

/* The connection is gone; called once, from the loop, for every conn that
 * ipc_conn_alloc returned. err: 0 after ipc_conn_close(); ECONNRESET when the
 * peer hung up; ENOENT, ECONNREFUSED, ... when ipc_conn_connect failed;
 * EACCES when ipc_conn_accept refused the peer's credentials; EMSGSIZE,
 * EBADMSG or EPROTO when the peer broke the protocol (it was sent an Error
 * envelope first); ENOBUFS when the peer stopped reading; other errno values
 * for socket errors. c is freed when the handler returns. */
typedef void (ipc_close_h)(struct ipc_conn *c, int err, void *arg);

/* ipc_conn_connect succeeded: the conn is open and reading. */
typedef void (ipc_connect_h)(struct ipc_conn *c, void *arg);

/* A peer is waiting on the listening socket. The handler normally calls
 * ipc_conn_alloc and ipc_conn_accept(c, server); if it does not accept (out
 * of memory, shutting down), the server drops the pending connection. */
typedef void (ipc_accept_h)(struct ipc_server *s, uv_stream_t *server,
			    void *arg);

/* Largest number of bytes queued for a peer that does not read before the
 * conn is closed with ENOBUFS. */
#define IPC_WRITE_QUEUE_MAX (1024 * 1024)
/* How long a closing conn waits for its queued frames to drain (ms). */
#define IPC_LINGER_MS 2000

/* Allocates a conn on loop (recvh, closeh required). It then ends with
 * exactly one closeh, even if never connected (use ipc_conn_close). */
int ipc_conn_alloc(struct ipc_conn **out, uv_loop_t *loop, ipc_recv_h *recvh,
		   ipc_close_h *closeh, void *arg);
/* Server side, from an ipc_accept_h: accepts and checks SO_PEERCRED (uid 0
 * or our euid). EINVAL leaves c untouched; any other error means c is
 * already closing and closeh follows (EACCES for a refused peer). */
int ipc_conn_accept(struct ipc_conn *c, uv_stream_t *server);
/* Client side, asynchronous: connecth (may be NULL) once open, or closeh
 * with the error (ENOENT, ECONNREFUSED, ...). Same error rule as accept. */
int ipc_conn_connect(struct ipc_conn *c, const char *path,
		     ipc_connect_h *connecth);
/* Encodes and queues env (copied; env->version sent as set). ENOTCONN unless
 * open; EINVAL/EMSGSIZE from the encoder; ENOBUFS (and c closing) when the
 * peer has stopped reading. */
int ipc_conn_send(struct ipc_conn *c, const Openum__Envelope *env);
/* Graceful, idempotent close: queued frames are flushed (at most
 * IPC_LINGER_MS), then closeh(c, 0, arg) and c is freed. */
void ipc_conn_close(struct ipc_conn *c);
/* Peer credentials from SO_PEERCRED: pid 0 / uid (uid_t)-1 when unknown. */
pid_t ipc_conn_pid(const struct ipc_conn *c);
uid_t ipc_conn_uid(const struct ipc_conn *c);
void ipc_conn_set_arg(struct ipc_conn *c, void *arg);
void *ipc_conn_arg(const struct ipc_conn *c);

/* Listens on path: parent directory created/forced to 0700 (shared sticky or
 * world-writable directories refused, EPERM), a stale socket removed, a live
 * one refused with EADDRINUSE ("another umcallrouter is already listening on
 * PATH"), socket mode 0660. *cause (optional) is malloc'd; caller frees. */
int ipc_server_listen(struct ipc_server **out, uv_loop_t *loop,
		      const char *path, ipc_accept_h *accepth, void *arg,
		      char **cause);
/* Stops listening and unlinks the socket file; memory freed in the close
 * callback. Accepted conns are not affected. Idempotent. */
void ipc_server_close(struct ipc_server *s);
const char *ipc_server_path(const struct ipc_server *s);

#endif
