/* vmwriter.c — the voicemail writer thread: a bounded FIFO of jobs from the
 * loop thread, one worker that owns a vmstore connection and runs them in
 * order, and a list of finished jobs handed back through a uv_async_t.
 *
 * Why one worker and one FIFO: SQLite takes one writer at a time anyway,
 * and a single FIFO keeps each message's jobs in order, so the loop may
 * append chunks before its begin has completed — the worker resolves the
 * handle to the message id when it gets there. The handle is shared by the
 * two threads without a lock because each field has one owner: `id`,
 * `failed`, `lost` are the worker's, `next_seq`, `ended` and the list links
 * the loop's; a handle is freed on the loop only after the completion of its
 * last job, which the worker posts after its last touch. */
#define LOG_MODULE "vmwriter"
#include "common/vmwriter.h"
#include "common/log.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum job_kind { JOB_BEGIN, JOB_APPEND, JOB_FINISH, JOB_DISCARD, JOB_RUN };

struct vmwriter_msg {
	/* loop thread */
	struct vmwriter_msg *prev, *next; /* w->live */
	uint32_t next_seq;
	bool ended;                       /* finish/discard queued */
	/* worker thread */
	int64_t id;
	int begin_err;                    /* begin failed: later jobs skip */
	unsigned lost;                    /* chunks not stored */
	size_t stored;                    /* samples stored */
};

struct job {
	struct job *next;
	enum job_kind kind;
	struct vmwriter_msg *m;
	vmwriter_done_cb *cb;
	void *arg;
	/* begin: copied strings */
	struct vm_meta meta;
	char *strs[5];
	/* append */
	uint32_t seq;
	size_t samples;
	/* finish */
	size_t keep;
	/* run */
	vmwriter_run_fn *fn;
	/* result */
	int err;
	int64_t id, duration_ms;
	int16_t pcm[]; /* append */
};

struct vmwriter {
	uv_loop_t *loop;
	uv_async_t async;
	pthread_t owner;           /* the loop thread */
	pthread_t thread;
	bool thread_started;
	struct vmstore *vs;        /* the worker's */
	char *path;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *q_head, *q_tail; /* to do (mu) */
	size_t q_len;                /* jobs in the queue (mu) */
	struct job *d_head, *d_tail; /* done (mu) */
	bool closing;                /* (mu) */
	struct timespec deadline;    /* (mu) drain until */

	struct vmwriter_msg *live;   /* loop: handles not yet freed */
	unsigned delivering;         /* loop: inside deliver() */
	bool close_pending;          /* loop: closed from a callback */
};

static void job_free(struct job *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < sizeof j->strs / sizeof j->strs[0]; i++)
		free(j->strs[i]);
	free(j);
}

static bool on_loop_thread(const struct vmwriter *w)
{
	return pthread_equal(pthread_self(), w->owner) != 0;
}

static bool past(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec ||
	       (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* ---- worker thread ------------------------------------------------------- */

static void run_job(struct vmwriter *w, struct job *j)
{
	struct vmwriter_msg *m = j->m;

	switch (j->kind) {
	case JOB_BEGIN:
		j->err = vmstore_begin(w->vs, &j->meta, &j->id);
		if (j->err) {
			m->begin_err = j->err;
			log_warn("cannot start a message for mailbox %s (%s), "
				 "call %s: %s",
				 j->meta.mailbox, j->meta.dialplan,
				 j->meta.call_id, strerror(j->err));
		} else {
			m->id = j->id;
		}
		break;
	case JOB_APPEND:
		if (m->begin_err)
			break;
		j->err = vmstore_append(w->vs, m->id, j->seq, j->pcm,
					j->samples);
		if (j->err) {
			if (m->lost++ == 0)
				log_warn("message %lld: chunk %u not stored: %s",
					 (long long)m->id, j->seq,
					 strerror(j->err));
		} else {
			m->stored += j->samples;
		}
		break;
	case JOB_FINISH:
		j->id = m->id;
		if (m->begin_err) {
			j->err = m->begin_err;
			break;
		}
		j->err = vmstore_finish(w->vs, m->id, j->keep, &j->duration_ms);
		if (j->err)
			log_warn("message %lld: cannot finish: %s",
				 (long long)m->id, strerror(j->err));
		else if (m->lost)
			log_warn("message %lld: stored with %u chunk%s missing",
				 (long long)m->id, m->lost,
				 m->lost == 1 ? "" : "s");
		break;
	case JOB_DISCARD:
		j->id = m->id;
		if (m->begin_err) {
			j->err = 0; /* nothing was stored */
			break;
		}
		j->err = vmstore_discard(w->vs, m->id);
		if (j->err)
			log_warn("message %lld: cannot discard: %s",
				 (long long)m->id, strerror(j->err));
		break;
	case JOB_RUN:
		j->err = j->fn(w->vs, j->arg);
		break;
	}
}

/* A job the drain deadline caught: nothing is written; what was already
 * stored stays for vmstore_recover. */
static void cancel_job(struct job *j)
{
	j->err = ECANCELED;
	if (!j->m)
		return; /* JOB_RUN */
	j->id = j->m->id;
	if (j->kind == JOB_BEGIN)
		j->m->begin_err = ECANCELED;
	if (j->kind == JOB_FINISH && j->m->id)
		log_warn("message %lld: not finished before shutdown; the "
			 "next start recovers it", (long long)j->m->id);
}

static void *worker(void *arg)
{
	struct vmwriter *w = arg;
	unsigned n = 0;
	int err;

	err = vmstore_recover(w->vs, &n);
	if (err)
		log_error("%s: recovery of interrupted messages failed: %s",
			  w->path, strerror(err));
	else if (n)
		log_notice("%s: recovered %u interrupted message%s", w->path,
			   n, n == 1 ? "" : "s");

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct job *j;
		bool expired;

		while (!w->q_head && !w->closing)
			pthread_cond_wait(&w->cv, &w->mu);
		j = w->q_head;
		if (!j)
			break; /* closing and drained */
		w->q_head = j->next;
		if (!w->q_head)
			w->q_tail = NULL;
		w->q_len--;
		expired = w->closing && past(&w->deadline);
		pthread_mutex_unlock(&w->mu);

		if (expired)
			cancel_job(j);
		else
			run_job(w, j);

		if (j->kind == JOB_APPEND) {
			job_free(j);
			pthread_mutex_lock(&w->mu);
			continue;
		}
		pthread_mutex_lock(&w->mu);
		j->next = NULL;
		if (w->d_tail)
			w->d_tail->next = j;
		else
			w->d_head = j;
		w->d_tail = j;
		pthread_mutex_unlock(&w->mu);
		uv_async_send(&w->async);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	vmstore_close(w->vs);
	w->vs = NULL;
	return NULL;
}

/* ---- loop thread ----------------------------------------------------------- */

static void live_unlink(struct vmwriter *w, struct vmwriter_msg *m)
{
	if (m->prev)
		m->prev->next = m->next;
	else
		w->live = m->next;
	if (m->next)
		m->next->prev = m->prev;
}

static void close_cb(uv_handle_t *h);

/* The end of vmwriter_close once no callback is running: frees the handles
 * still held and closes the async handle. */
static void close_finish(struct vmwriter *w)
{
	while (w->live) {
		struct vmwriter_msg *m = w->live;

		live_unlink(w, m);
		free(m);
	}
	uv_close((uv_handle_t *)&w->async, close_cb);
}

/* Runs the callbacks of finished jobs, in the order the worker did them. A
 * callback may call vmwriter_close; the handles are then freed after the
 * last callback here. */
static void deliver(struct vmwriter *w)
{
	struct job *j, *next;

	w->delivering++;
	pthread_mutex_lock(&w->mu);
	j = w->d_head;
	w->d_head = w->d_tail = NULL;
	pthread_mutex_unlock(&w->mu);
	for (; j; j = next) {
		next = j->next;
		if (j->cb)
			j->cb(j->err, j->id, j->duration_ms, j->arg);
		if (j->kind == JOB_FINISH || j->kind == JOB_DISCARD) {
			live_unlink(w, j->m);
			free(j->m);
		}
		job_free(j);
	}
	if (--w->delivering == 0 && w->close_pending) {
		w->close_pending = false;
		close_finish(w);
	}
}

static void async_cb(uv_async_t *h)
{
	deliver(h->data);
}

/* Queues a job; bounded ones fail with EAGAIN when the queue is full. */
static int enqueue(struct vmwriter *w, struct job *j, bool bounded)
{
	pthread_mutex_lock(&w->mu);
	if (w->closing) {
		pthread_mutex_unlock(&w->mu);
		return ECANCELED;
	}
	if (bounded && w->q_len >= VMWRITER_QUEUE_MAX) {
		pthread_mutex_unlock(&w->mu);
		return EAGAIN;
	}
	j->next = NULL;
	if (w->q_tail)
		w->q_tail->next = j;
	else
		w->q_head = j;
	w->q_tail = j;
	w->q_len++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

static void close_cb(uv_handle_t *h)
{
	struct vmwriter *w = h->data;

	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	vmstore_close(w->vs);
	free(w->path);
	free(w);
}

/* Opens the store at db_path (creating or migrating it; errors come back
 * here with a cause) and starts the worker, which first recovers messages
 * a crash left unfinished (logging each) and then runs jobs. Call on the
 * loop's thread; that thread is the only one that may use the writer. */
int vmwriter_alloc(struct vmwriter **out, uv_loop_t *loop,
		   const char *db_path, char **cause)
{
	struct vmwriter *w;
	sigset_t all, old;
	int err;

	if (!out || !loop || !db_path)
		return EINVAL;
	w = calloc(1, sizeof *w);
	if (!w)
		return ENOMEM;
	w->loop = loop;
	w->owner = pthread_self();
	w->async.data = w;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->path = strdup(db_path);
	if (!w->path) {
		err = ENOMEM;
		goto fail;
	}
	err = vmstore_open(&w->vs, db_path, cause);
	if (err)
		goto fail;
	err = uv_async_init(loop, &w->async, async_cb);
	if (err) {
		err = -err;
		goto fail;
	}
	/* signals stay with the loop thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&w->thread, NULL, worker, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		if (cause && !*cause && asprintf(cause, "cannot start the "
						 "voicemail writer: %s",
						 strerror(err)) < 0)
			*cause = NULL;
		/* the async handle is live: free through its close */
		uv_close((uv_handle_t *)&w->async, close_cb);
		return err;
	}
	pthread_setname_np(w->thread, "vmwriter");
	w->thread_started = true;
	*out = w;
	return 0;
fail:
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	vmstore_close(w->vs);
	free(w->path);
	free(w);
	return err;
}

/* Runs fn(store, arg) on the worker, in order with the other jobs, then
 * cb(err, 0, 0, arg) on the loop with fn's result (ECANCELED, fn not run,
 * when the writer closed first). Bounded like begin: EAGAIN when the queue
 * is full, ECANCELED when closing; cb is not called then. */
int vmwriter_run(struct vmwriter *w, vmwriter_run_fn *fn, vmwriter_done_cb *cb,
		 void *arg)
{
	struct job *j;
	int err;

	if (!w || !fn)
		return EINVAL;
	assert(on_loop_thread(w));
	j = calloc(1, sizeof *j);
	if (!j)
		return ENOMEM;
	j->kind = JOB_RUN;
	j->fn = fn;
	j->cb = cb;
	j->arg = arg;
	err = enqueue(w, j, true);
	if (err)
		job_free(j);
	return err;
}

/* Starts a message (state 'recording'); *out is its handle for append and
 * finish/discard, usable at once. cb (may be NULL) gets the id or the error
 * once the row exists. EAGAIN: queue full; ECANCELED: closing. */
int vmwriter_begin(struct vmwriter_msg **out, struct vmwriter *w,
		   const struct vm_meta *meta, vmwriter_done_cb *cb, void *arg)
{
	const char *src[5];
	struct vmwriter_msg *m = NULL;
	struct job *j = NULL;
	int err;

	if (!out || !w || !meta || !meta->mailbox || !*meta->mailbox ||
	    !meta->dialplan || !*meta->dialplan)
		return EINVAL;
	assert(on_loop_thread(w));
	m = calloc(1, sizeof *m);
	j = calloc(1, sizeof *j);
	if (!m || !j) {
		err = ENOMEM;
		goto out;
	}
	src[0] = meta->mailbox;
	src[1] = meta->dialplan;
	src[2] = meta->caller_number;
	src[3] = meta->caller_name;
	src[4] = meta->call_id;
	for (size_t i = 0; i < 5; i++) {
		j->strs[i] = strdup(src[i] ? src[i] : "");
		if (!j->strs[i]) {
			err = ENOMEM;
			goto out;
		}
	}
	j->kind = JOB_BEGIN;
	j->m = m;
	j->cb = cb;
	j->arg = arg;
	j->meta = *meta;
	j->meta.mailbox = j->strs[0];
	j->meta.dialplan = j->strs[1];
	j->meta.caller_number = j->strs[2];
	j->meta.caller_name = j->strs[3];
	j->meta.call_id = j->strs[4];
	if (!j->meta.received_utc_ms) {
		/* now, not when the worker gets to it */
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		j->meta.received_utc_ms =
			(int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	}
	err = enqueue(w, j, true);
	if (err)
		goto out;
	j = NULL;
	m->next = w->live;
	if (w->live)
		w->live->prev = m;
	w->live = m;
	*out = m;
	m = NULL;
out:
	job_free(j);
	free(m);
	return err;
}

/* Queues a copy of samples as the message's next chunk (about a second is
 * the intended size: each is one transaction). EAGAIN: queue full, the
 * chunk is dropped (the caller logs it); ECANCELED: closing. */
int vmwriter_append(struct vmwriter *w, struct vmwriter_msg *m,
		    const int16_t *pcm, size_t samples)
{
	struct job *j;
	int err;

	if (!w || !m || m->ended || (!pcm && samples))
		return EINVAL;
	assert(on_loop_thread(w));
	if (samples == 0)
		return 0;
	if (samples > ((size_t)1 << 24))
		return EINVAL;
	j = malloc(sizeof *j + samples * sizeof j->pcm[0]);
	if (!j)
		return ENOMEM;
	memset(j, 0, sizeof *j);
	j->kind = JOB_APPEND;
	j->m = m;
	j->seq = m->next_seq;
	j->samples = samples;
	memcpy(j->pcm, pcm, samples * sizeof j->pcm[0]);
	err = enqueue(w, j, true);
	if (err) {
		job_free(j);
		return err;
	}
	m->next_seq++;
	return 0;
}

static int end_msg(struct vmwriter *w, struct vmwriter_msg *m,
		   enum job_kind kind, size_t keep, vmwriter_done_cb *cb,
		   void *arg)
{
	struct job *j;
	int err;

	if (!w || !m || m->ended)
		return EINVAL;
	assert(on_loop_thread(w));
	m->ended = true;
	j = calloc(1, sizeof *j);
	if (!j) {
		err = ENOMEM;
		goto fail;
	}
	j->kind = kind;
	j->m = m;
	j->keep = keep;
	j->cb = cb;
	j->arg = arg;
	err = enqueue(w, j, false);
	if (!err)
		return 0;
	job_free(j);
fail:
	/* The handle is ours either way. Without a job to carry it, it
	 * stays on the live list and vmwriter_close frees it; the message
	 * stays 'recording' until the next start recovers it. */
	log_warn("message %lld: cannot queue its %s: %s", (long long)m->id,
		 kind == JOB_FINISH ? "finish" : "discard", strerror(err));
	return err;
}

/* Completes the message: its chunks become its audio, cut to the first
 * keep_samples (trailing silence trimmed by the caller; VMSTORE_KEEP_ALL
 * keeps all), state 'new'. cb (may be NULL) gets the id and duration. The
 * handle passes to the writer, also on error. Never EAGAIN. */
int vmwriter_finish(struct vmwriter *w, struct vmwriter_msg *m,
		    size_t keep_samples, vmwriter_done_cb *cb, void *arg)
{
	return end_msg(w, m, JOB_FINISH, keep_samples, cb, arg);
}

/* Drops the message and what was stored of it (not a message after all).
 * The handle passes to the writer, also on error. Never EAGAIN. */
int vmwriter_discard(struct vmwriter *w, struct vmwriter_msg *m,
		     vmwriter_done_cb *cb, void *arg)
{
	return end_msg(w, m, JOB_DISCARD, 0, cb, arg);
}

/* Jobs waiting for the worker (for status and logs). */
size_t vmwriter_queued(struct vmwriter *w)
{
	size_t n;

	pthread_mutex_lock(&w->mu);
	n = w->q_len;
	pthread_mutex_unlock(&w->mu);
	return n;
}

/* Lets the worker finish the queue (at most VMWRITER_DRAIN_MS; later jobs
 * are cancelled), joins it, runs every pending callback (here, before
 * returning; cancelled ones get ECANCELED), frees the handles still held and
 * closes the async handle; the memory goes in its close callback, so the
 * loop must run once more. Blocks the loop thread while draining: a
 * shutdown-time call. NULL is fine. */
void vmwriter_close(struct vmwriter *w)
{
	struct timespec now;

	if (!w)
		return;
	assert(on_loop_thread(w));
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&w->mu);
	if (w->closing) {
		pthread_mutex_unlock(&w->mu);
		return;
	}
	w->closing = true;
	w->deadline.tv_sec = now.tv_sec + VMWRITER_DRAIN_MS / 1000;
	w->deadline.tv_nsec = now.tv_nsec + (VMWRITER_DRAIN_MS % 1000) * 1000000L;
	if (w->deadline.tv_nsec >= 1000000000L) {
		w->deadline.tv_sec++;
		w->deadline.tv_nsec -= 1000000000L;
	}
	if (w->q_len)
		log_info("voicemail writer closing: %zu job%s to write",
			 w->q_len, w->q_len == 1 ? "" : "s");
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (w->thread_started)
		pthread_join(w->thread, NULL);
	w->thread_started = false;
	if (w->delivering) {
		w->close_pending = true; /* the outer deliver() ends it */
		deliver(w);
		return;
	}
	deliver(w);
	close_finish(w);
}
