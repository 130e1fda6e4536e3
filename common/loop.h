/* loop.h — the one event loop of an OpenUM process: sofia-sip's su_root is
 * the master and libuv is embedded in it through uv_backend_fd(), so SIP
 * (nta) and everything libuv does (IPC, timers, signals, UDP media, worker
 * results) run on one thread with no polling. */
#ifndef OPENUM_LOOP_H
#define OPENUM_LOOP_H

#include <sofia-sip/su_wait.h>
#include <uv.h>

struct loop;

int loop_alloc(struct loop **out);
/* A loop for a process without sofia-sip (the call router): libuv only,
 * loop_root() is NULL. */
int loop_alloc_uv(struct loop **out);
su_root_t *loop_root(struct loop *l);
uv_loop_t *loop_uv(struct loop *l);
/* Runs until loop_stop(); returns 0. */
int loop_run(struct loop *l);
/* Asks loop_run to return after the current callback. Safe from any
 * callback on the loop thread. */
void loop_stop(struct loop *l);
/* Lets libuv finish pending close callbacks, then frees everything. Every
 * libuv handle must have been closed by its owner before. */
void loop_free(struct loop *l);
/* A uv_close callback for a handle allocated on its own: frees it. */
void loop_close_free(uv_handle_t *h);

#endif
