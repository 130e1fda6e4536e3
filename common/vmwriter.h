/* vmwriter.h — the asynchronous voicemail writer: one worker thread owns a
 * vmstore connection and runs the jobs the event loop queues (begin a
 * message, append a chunk, finish, discard), so the loop never waits on
 * SQLite; results come back on the loop thread.
 *
 * Threading: every vmwriter_* function is called on the thread running
 * `loop` (asserted), and every callback runs there. Ownership: vmwriter_begin
 * hands back a message handle that the caller keeps until it passes it to
 * vmwriter_finish or vmwriter_discard; from then on the writer owns it and
 * frees it after that job's callback (the caller must not touch it again,
 * also when finish/discard return an error). */
#ifndef OPENUM_VMWRITER_H
#define OPENUM_VMWRITER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/vmstore.h"

/* Most begin + append jobs waiting at once (~1 s of audio each: at 1,000
 * calls that is 4 s of backlog, 64 MB). finish and discard are always
 * accepted so no message is left unfinished because the queue was full. */
#define VMWRITER_QUEUE_MAX 4096
/* How long vmwriter_close lets the worker drain the queue; jobs left then
 * are cancelled (their messages stay 'recording' and the next start
 * recovers them). */
#define VMWRITER_DRAIN_MS 10000

struct vmwriter;
struct vmwriter_msg;

/* A job's result on the loop thread: err 0 or a positive errno (ECANCELED
 * when the writer closed first), the message id (0 if it never got one) and,
 * for finish, the stored duration. */
typedef void vmwriter_done_cb(int err, int64_t id, int64_t duration_ms,
			      void *arg);

/* Work for the worker thread with its store connection (vmwriter_run): a
 * positive errno or 0. It must not touch loop-thread state. */
typedef int vmwriter_run_fn(struct vmstore *vs, void *arg);

int vmwriter_alloc(struct vmwriter **out, uv_loop_t *loop,
		   const char *db_path, char **cause);
int vmwriter_begin(struct vmwriter_msg **out, struct vmwriter *w,
		   const struct vm_meta *meta, vmwriter_done_cb *cb, void *arg);
int vmwriter_append(struct vmwriter *w, struct vmwriter_msg *m,
		    const int16_t *pcm, size_t samples);
int vmwriter_finish(struct vmwriter *w, struct vmwriter_msg *m,
		    size_t keep_samples, vmwriter_done_cb *cb, void *arg);
int vmwriter_discard(struct vmwriter *w, struct vmwriter_msg *m,
		     vmwriter_done_cb *cb, void *arg);
int vmwriter_run(struct vmwriter *w, vmwriter_run_fn *fn, vmwriter_done_cb *cb,
		 void *arg);
size_t vmwriter_queued(struct vmwriter *w);
void vmwriter_close(struct vmwriter *w);

#endif
