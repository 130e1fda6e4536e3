/* ipc.c — framed IPC connections and the listening socket on a libuv loop:
 * credential check on accept, stale-socket removal, frame reassembly, and an
 * Error envelope before dropping a peer that breaks the protocol. */
#define LOG_MODULE "ipc"
#include "common/cause.h"
#include "common/ipc.h"
#include "common/growbuf.h"
#include "common/log.h"
#include "common/loop.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Read buffer: starts small, grows up to one whole frame of the largest
 * size. A complete frame is always consumed before more is read, so a peer
 * cannot make it grow further. */
#define IPC_BUF_INIT 4096
#define IPC_BUF_MAX (IPC_FRAME_HDR + IPC_FRAME_MAX)
#define IPC_READ_MIN 1024
#define IPC_BACKLOG 64

#define IPC_BUG(what)                                                         \
	do {                                                                  \
		fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, what);     \
		abort();                                                      \
	} while (0)

enum conn_state {
	CONN_IDLE,       /* allocated, neither accepted nor connecting */
	CONN_CONNECTING, /* uv_pipe_connect under way */
	CONN_OPEN,       /* reading and writing */
	CONN_CLOSING,    /* draining writes or closing handles */
};

struct ipc_conn {
	uv_pipe_t pipe;
	uv_timer_t linger;          /* bounds the drain of a closing conn */
	uv_connect_t connect_req;
	uv_shutdown_t shutdown_req;
	enum conn_state state;
	bool handles_closing;       /* uv_close called on both handles */
	int handles;                /* handles whose close callback is pending */
	int err;                    /* handed to closeh */
	unsigned writes;            /* uv_write requests not yet called back */
	uv_idle_t flush;            /* writes out what this loop turn queued */
	uint8_t *out;               /* frames queued since the last flush */
	size_t out_len, out_cap;
	ipc_recv_h *recvh;
	ipc_close_h *closeh;
	ipc_connect_h *connecth;
	void *arg;
	uint8_t *buf;
	size_t len, cap;
	struct ipc_arena arena;     /* where the frame being handled is decoded */
	pid_t pid;
	uid_t uid;
	bool have_cred;
	char *path;                 /* connecting side: the socket, for logs */
};

struct ipc_write {
	uv_write_t req;
	uint8_t *data;
};

struct ipc_server {
	uv_pipe_t pipe;
	uv_loop_t *loop;
	ipc_accept_h *accepth;
	void *arg;
	char *path;
	dev_t dev;                  /* identity of the socket file we bound */
	ino_t ino;
	bool closing;
};

/* libuv errors are negative errno values on Unix, except its own few. */
static int errno_of_uv(int uverr)
{
	if (uverr == UV_EOF)
		return ECONNRESET;
	if (uverr < 0 && uverr > -3000)
		return -uverr;
	return EIO;
}


/* ---- connection ------------------------------------------------------ */

static void conn_on_handle_close(uv_handle_t *h)
{
	struct ipc_conn *c = h->data;

	if (--c->handles > 0)
		return;
	c->closeh(c, c->err, c->arg);
	free(c->out);
	free(c->buf);
	free(c->path);
	free(c);
}

/* Closes both handles now; queued writes are cancelled. closeh follows from
 * the last close callback. */
static void conn_close_now(struct ipc_conn *c)
{
	c->state = CONN_CLOSING;
	if (c->handles_closing)
		return;
	c->handles_closing = true;
	uv_close((uv_handle_t *)&c->pipe, conn_on_handle_close);
	uv_close((uv_handle_t *)&c->linger, conn_on_handle_close);
	uv_close((uv_handle_t *)&c->flush, conn_on_handle_close);
}

static int conn_flush(struct ipc_conn *c);

static void conn_fail(struct ipc_conn *c, int err)
{
	if (c->state != CONN_CLOSING)
		c->err = err;
	conn_close_now(c);
}

static void conn_on_shutdown(uv_shutdown_t *req, int status)
{
	conn_close_now(req->handle->data);
}

static void conn_on_linger(uv_timer_t *t)
{
	struct ipc_conn *c = t->data;

	log_warn("IPC peer pid %ld did not take its last frames within %d ms; "
		 "closing", (long)c->pid, IPC_LINGER_MS);
	conn_close_now(c);
}

/* Stops reading and closes once the frames already queued are written (the
 * Error envelope to a misbehaving peer, the reply before a hang-up), or after
 * IPC_LINGER_MS at the latest. */
static void conn_shutdown(struct ipc_conn *c, int err)
{
	if (c->state == CONN_CLOSING)
		return;
	c->err = err;
	if (c->state == CONN_OPEN && conn_flush(c) != 0)
		return;		/* the failed write closed it */
	if (c->state == CONN_OPEN && c->writes > 0) {
		uv_read_stop((uv_stream_t *)&c->pipe);
		c->state = CONN_CLOSING;
		if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->pipe,
				conn_on_shutdown) == 0) {
			uv_timer_start(&c->linger, conn_on_linger, IPC_LINGER_MS, 0);
			return;
		}
	}
	conn_close_now(c);
}

/* Allocates a connection bound to loop. recvh and closeh are required; arg is
 * handed to every handler. The conn then goes to ipc_conn_accept or
 * ipc_conn_connect; from here on it ends with exactly one closeh call (a conn
 * never used still needs ipc_conn_close). */
int ipc_conn_alloc(struct ipc_conn **out, uv_loop_t *loop, ipc_recv_h *recvh,
		   ipc_close_h *closeh, void *arg)
{
	struct ipc_conn *c;

	if (!out || !loop || !recvh || !closeh)
		return EINVAL;
	c = calloc(1, sizeof *c);
	if (!c)
		return ENOMEM;
	/* All always return 0 in libuv 1.x. */
	if (uv_pipe_init(loop, &c->pipe, 0) != 0 ||
	    uv_timer_init(loop, &c->linger) != 0 ||
	    uv_idle_init(loop, &c->flush) != 0)
		IPC_BUG("uv_pipe_init/uv_timer_init/uv_idle_init failed");
	c->pipe.data = c;
	c->linger.data = c;
	c->flush.data = c;
	c->handles = 3;
	c->state = CONN_IDLE;
	c->recvh = recvh;
	ipc_arena_init(&c->arena);
	c->closeh = closeh;
	c->arg = arg;
	*out = c;
	return 0;
}

static void conn_read_cred(struct ipc_conn *c)
{
	struct ucred uc;
	socklen_t l = sizeof uc;
	uv_os_fd_t fd;

	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &l) == 0 &&
	    l == sizeof uc) {
		c->pid = uc.pid;
		c->uid = uc.uid;
		c->have_cred = true;
	}
}

static void conn_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct ipc_conn *c = h->data;

	/* short of IPC_READ_MIN at IPC_BUF_MAX: the frame fits anyway */
	growbuf(&c->buf, &c->cap, c->len + IPC_READ_MIN, IPC_BUF_INIT, IPC_BUF_MAX);
	if (c->cap == c->len) {
		/* Only when realloc failed: libuv reports UV_ENOBUFS. */
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	*buf = uv_buf_init((char *)c->buf + c->len, (unsigned)(c->cap - c->len));
}

/* The peer broke the protocol: tell it why, then hang up. */
static void conn_protocol_error(struct ipc_conn *c, int err, const char *cause)
{
	Openum__Envelope env;
	Openum__Error e = OPENUM__ERROR__INIT;
	const char *why = cause ? cause : strerror(err);

	log_warn("IPC peer pid %ld uid %ld: %s; closing", (long)c->pid,
		 c->have_cred ? (long)c->uid : -1L, why);
	ipc_envelope_init(&env);
	e.code = (uint32_t)err;
	e.message = (char *)why;
	env.body_case = OPENUM__ENVELOPE__BODY_ERROR;
	env.error = &e;
	(void)ipc_conn_send(c, &env);
	conn_shutdown(c, err);
}

/* Hands every complete frame in the buffer to recvh, in order. */
static void conn_process(struct ipc_conn *c)
{
	size_t off = 0;

	while (c->state == CONN_OPEN) {
		Openum__Envelope *env = NULL;
		char *cause = NULL;
		size_t used = 0;
		int err;

		err = ipc_frame_decode_in(&c->arena, &env, c->buf + off,
					  c->len - off, &used, &cause);
		if (err == EAGAIN)
			break;
		if (err) {
			conn_protocol_error(c, err, cause);
			free(cause);
			return;
		}
		off += used;
		log_debug("IPC peer pid %ld: %s", (long)c->pid,
			  ipc_body_name(env->body_case));
		c->recvh(c, env, c->arg);
		ipc_frame_release(&c->arena, env);
	}
	if (off) {
		memmove(c->buf, c->buf + off, c->len - off);
		c->len -= off;
	}
	/* Give back the memory of a large frame once it is handled. */
	if (c->len == 0 && c->cap > IPC_BUF_INIT) {
		free(c->buf);
		c->buf = NULL;
		c->cap = 0;
	}
}

static void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct ipc_conn *c = stream->data;

	if (nread == 0 || c->state != CONN_OPEN)
		return;
	if (nread == UV_ENOBUFS) {
		log_error("IPC peer pid %ld: out of memory for its frames; closing",
			  (long)c->pid);
		conn_fail(c, ENOMEM);
		return;
	}
	if (nread == UV_EOF) {
		log_debug("IPC peer pid %ld hung up", (long)c->pid);
		conn_shutdown(c, ECONNRESET);
		return;
	}
	if (nread < 0) {
		log_info("IPC peer pid %ld: read failed: %s", (long)c->pid,
			 uv_strerror((int)nread));
		conn_fail(c, errno_of_uv((int)nread));
		return;
	}
	c->len += (size_t)nread;
	conn_process(c);
}

static int conn_start(struct ipc_conn *c)
{
	int err;

	c->state = CONN_OPEN;
	conn_read_cred(c);
	err = uv_read_start((uv_stream_t *)&c->pipe, conn_on_alloc, conn_on_read);
	return err ? errno_of_uv(err) : 0;
}

/* Accepts the connection pending on server (call it from an ipc_accept_h)
 * and starts reading. Only peers running as root or as this process's
 * effective uid are kept. EINVAL (bad arguments or a conn already in use)
 * leaves c as it was; any other error means c is closing and its closeh
 * follows with that error (EACCES for a refused peer). */
int ipc_conn_accept(struct ipc_conn *c, uv_stream_t *server)
{
	char self_uid[32] = "";
	int err;

	if (!c || !server || c->state != CONN_IDLE)
		return EINVAL;
	err = uv_accept(server, (uv_stream_t *)&c->pipe);
	if (err) {
		err = errno_of_uv(err);
		log_warn("IPC accept failed: %s", strerror(err));
		conn_fail(c, err);
		return err;
	}
	err = conn_start(c);
	if (err) {
		log_warn("IPC peer pid %ld: cannot read: %s", (long)c->pid,
			 strerror(err));
		conn_fail(c, err);
		return err;
	}
	if (!c->have_cred) {
		log_warn("IPC peer of unknown credentials refused");
		conn_fail(c, EACCES);
		return EACCES;
	}
	if (c->uid != 0 && c->uid != geteuid()) {
		if (geteuid() != 0)
			snprintf(self_uid, sizeof self_uid, " and uid %ld",
				 (long)geteuid());
		log_warn("IPC peer pid %ld uid %ld refused: only root%s may "
			 "connect", (long)c->pid, (long)c->uid, self_uid);
		conn_fail(c, EACCES);
		return EACCES;
	}
	log_debug("IPC peer pid %ld uid %ld connected", (long)c->pid,
		  (long)c->uid);
	return 0;
}

static void conn_on_connect(uv_connect_t *req, int status)
{
	struct ipc_conn *c = req->handle->data;
	int err;

	if (status == UV_ECANCELED || c->state != CONN_CONNECTING)
		return;
	if (status < 0) {
		err = errno_of_uv(status);
		log_debug("IPC connect to %s failed: %s", c->path, strerror(err));
		conn_fail(c, err);
		return;
	}
	err = conn_start(c);
	if (err) {
		log_warn("IPC connection to %s: cannot read: %s", c->path,
			 strerror(err));
		conn_fail(c, err);
		return;
	}
	log_debug("IPC connected to %s (peer pid %ld)", c->path, (long)c->pid);
	if (c->connecth)
		c->connecth(c, c->arg);
}

/* Connects to the Unix socket at path, asynchronously. Success is reported
 * through connecth (may be NULL) once the conn is open; failure through
 * closeh with the error (ENOENT: no socket, ECONNREFUSED: nobody listening).
 * EINVAL (bad arguments or a conn already in use) leaves c as it was;
 * ENAMETOOLONG or ENOMEM mean c is closing and closeh follows. */
int ipc_conn_connect(struct ipc_conn *c, const char *path,
		     ipc_connect_h *connecth)
{
	struct sockaddr_un sa;

	if (!c || !path || !*path || c->state != CONN_IDLE)
		return EINVAL;
	if (strlen(path) >= sizeof sa.sun_path) {
		log_warn("IPC socket path %s is longer than %zu bytes", path,
			 sizeof sa.sun_path - 1);
		conn_fail(c, ENAMETOOLONG);
		return ENAMETOOLONG;
	}
	c->path = strdup(path);
	if (!c->path) {
		conn_fail(c, ENOMEM);
		return ENOMEM;
	}
	c->connecth = connecth;
	c->state = CONN_CONNECTING;
	uv_pipe_connect(&c->connect_req, &c->pipe, path, conn_on_connect);
	return 0;
}

static void conn_on_write(uv_write_t *req, int status)
{
	struct ipc_write *w = (struct ipc_write *)req;
	struct ipc_conn *c = req->handle->data;

	c->writes--;
	free(w->data);
	free(w);
	if (status < 0 && status != UV_ECANCELED && c->state == CONN_OPEN) {
		log_info("IPC peer pid %ld: write failed: %s", (long)c->pid,
			 uv_strerror(status));
		conn_fail(c, errno_of_uv(status));
	}
}

/* Hands the frames queued this turn to libuv as one write. 0, or the
 * error that closed the conn. */
static int conn_flush(struct ipc_conn *c)
{
	struct ipc_write *w;
	uv_buf_t b;
	int err;

	uv_idle_stop(&c->flush);
	if (!c->out_len || c->state != CONN_OPEN)
		return 0;
	w = malloc(sizeof *w);
	if (!w) {
		conn_fail(c, ENOMEM);
		return ENOMEM;
	}
	w->data = c->out;
	b = uv_buf_init((char *)c->out, (unsigned)c->out_len);
	c->out = NULL;
	c->out_len = c->out_cap = 0;
	err = uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, conn_on_write);
	if (err) {
		free(w->data);
		free(w);
		err = errno_of_uv(err);
		log_info("IPC peer pid %ld: write failed: %s", (long)c->pid,
			 strerror(err));
		conn_fail(c, err);
		return err;
	}
	c->writes++;
	return 0;
}

static void conn_on_flush(uv_idle_t *h)
{
	conn_flush(h->data);
}

/* Encodes env as one frame and queues it; the bytes are copied, env stays
 * the caller's. Frames queued in one loop turn go out in one write at the
 * start of the next (an idle handle: the loop does not sleep in between),
 * so a burst of CallRouted / CallRoutedAck messages costs one system call,
 * not one each. ENOTCONN unless the conn is open; EINVAL/EMSGSIZE from the
 * encoder; ENOBUFS when more than IPC_WRITE_QUEUE_MAX bytes are already
 * waiting for a peer that does not read (the conn is then closing). */
int ipc_conn_send(struct ipc_conn *c, const Openum__Envelope *env)
{
	size_t len;
	int err;

	if (!c || !env)
		return EINVAL;
	if (c->state != CONN_OPEN)
		return ENOTCONN;
	if (uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) + c->out_len >
	    IPC_WRITE_QUEUE_MAX) {
		log_warn("IPC peer pid %ld is not reading (%zu bytes queued); "
			 "closing", (long)c->pid,
			 uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) +
				 c->out_len);
		conn_fail(c, ENOBUFS);
		return ENOBUFS;
	}
	err = ipc_frame_size(env, &len);
	if (err)
		return err;
	if (!growbuf(&c->out, &c->out_cap, c->out_len + len, 4096, 0))
		return ENOMEM;
	/* packed where the flush writes it from: no buffer per message */
	ipc_frame_write(c->out + c->out_len, len, env);
	c->out_len += len;
	if (!uv_is_active((uv_handle_t *)&c->flush))
		uv_idle_start(&c->flush, conn_on_flush);
	log_debug("IPC peer pid %ld <- %s", (long)c->pid,
		  ipc_body_name(env->body_case));
	if (c->out_len >= 64 * 1024)
		return conn_flush(c);
	return 0;
}

/* Closes the connection: reading stops at once, frames already queued are
 * still written (for at most IPC_LINGER_MS), then closeh runs with err 0
 * (or the error that was already closing it) and c is freed. Idempotent;
 * safe from within the conn's own handlers. */
void ipc_conn_close(struct ipc_conn *c)
{
	if (!c)
		return;
	switch (c->state) {
	case CONN_IDLE:
	case CONN_CONNECTING:
		c->err = 0;
		conn_close_now(c);
		break;
	case CONN_OPEN:
		conn_shutdown(c, 0);
		break;
	case CONN_CLOSING:
		break;
	}
}

/* The peer's pid from SO_PEERCRED, 0 when unknown (not yet connected). */
pid_t ipc_conn_pid(const struct ipc_conn *c)
{
	return c && c->have_cred ? c->pid : 0;
}

/* The peer's effective uid from SO_PEERCRED, (uid_t)-1 when unknown. */
uid_t ipc_conn_uid(const struct ipc_conn *c)
{
	return c && c->have_cred ? c->uid : (uid_t)-1;
}

/* Replaces the arg handed to the conn's handlers (e.g. once the router knows
 * which UM service instance the peer is). */
void ipc_conn_set_arg(struct ipc_conn *c, void *arg)
{
	if (c)
		c->arg = arg;
}

/* The arg handed to the conn's handlers. */
void *ipc_conn_arg(const struct ipc_conn *c)
{
	return c ? c->arg : NULL;
}

/* ---- listening socket ------------------------------------------------ */

/* mkdir -p with mode 0700 for every component it creates. */
static int mkdir_p(const char *dir, char **cause)
{
	char *tmp = strdup(dir);
	int err = 0;

	if (!tmp)
		return ENOMEM;
	for (char *p = tmp + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char save = *p;

		*p = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
			err = errno;
			cause_set(cause, "cannot create directory %s: %s", tmp,
				  strerror(err));
			break;
		}
		*p = save;
		if (save == '\0')
			break;
	}
	free(tmp);
	return err;
}

/* The socket's directory is what keeps other users away from it: make sure
 * it exists, is ours and is 0700. A shared directory (sticky or
 * world-writable, such as /tmp) is refused rather than chmod'ed. */
static int private_dir(const char *path, char **cause)
{
	const char *slash = strrchr(path, '/');
	struct stat st;
	char *dir;
	int err = 0;

	if (!slash)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (!dir)
		return ENOMEM;
	if (stat(dir, &st) != 0) {
		if (errno != ENOENT) {
			err = errno;
			cause_set(cause, "cannot stat %s: %s", dir, strerror(err));
			goto out;
		}
		err = mkdir_p(dir, cause);
		if (err)
			goto out;
		if (stat(dir, &st) != 0) {
			err = errno;
			cause_set(cause, "cannot stat %s: %s", dir, strerror(err));
			goto out;
		}
	}
	if (!S_ISDIR(st.st_mode)) {
		err = ENOTDIR;
		cause_set(cause, "%s is not a directory", dir);
		goto out;
	}
	if (st.st_mode & (S_ISVTX | S_IWOTH)) {
		err = EPERM;
		cause_set(cause, "refusing to put the IPC socket in shared "
			  "directory %s: give it a private directory", dir);
		goto out;
	}
	if (st.st_uid != geteuid()) {
		err = EPERM;
		cause_set(cause, "IPC socket directory %s belongs to uid %ld, "
			  "not %ld", dir, (long)st.st_uid, (long)geteuid());
		goto out;
	}
	if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) != 0) {
		err = errno;
		cause_set(cause, "cannot chmod 0700 %s: %s", dir, strerror(err));
		goto out;
	}
out:
	free(dir);
	return err;
}

/* A socket file nobody listens on is left by a router that crashed: remove
 * it. One somebody answers on belongs to a live router: refuse. */
static int remove_stale(const char *path, char **cause)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, err = 0;

	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		err = errno;
		cause_set(cause, "cannot stat %s: %s", path, strerror(err));
		return err;
	}
	if (!S_ISSOCK(st.st_mode)) {
		cause_set(cause, "%s exists and is not a socket", path);
		return EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		err = errno;
		cause_set(cause, "socket: %s", strerror(err));
		return err;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 ||
	    errno == EAGAIN || errno == EINPROGRESS) {
		err = EADDRINUSE;
		cause_set(cause, "another umcallrouter is already listening on %s",
			  path);
	} else if (errno == ECONNREFUSED) {
		if (unlink(path) != 0 && errno != ENOENT) {
			err = errno;
			cause_set(cause, "cannot remove stale socket %s: %s", path,
				  strerror(err));
		} else {
			log_notice("removed stale IPC socket %s", path);
		}
	} else {
		err = errno;
		cause_set(cause, "cannot probe existing socket %s: %s", path,
			  strerror(err));
	}
	close(fd);
	return err;
}

static void server_on_close(uv_handle_t *h)
{
	struct ipc_server *s = h->data;

	free(s->path);
	free(s);
}

static void server_on_connection(uv_stream_t *server, int status)
{
	struct ipc_server *s = server->data;
	uv_pipe_t *drop;

	if (status < 0) {
		log_warn("IPC accept on %s: %s", s->path, uv_strerror(status));
		return;
	}
	s->accepth(s, server, s->arg);
	if (s->closing)
		return;
	/* A connection the owner did not accept would stall the listener
	 * (libuv stops accepting until it is taken): take it and drop it. */
	drop = malloc(sizeof *drop);
	if (!drop)
		return;
	if (uv_pipe_init(s->loop, drop, 0) != 0) {
		free(drop);
		return;
	}
	if (uv_accept(server, (uv_stream_t *)drop) == 0)
		log_warn("IPC connection on %s not taken by its owner; dropped",
			 s->path);
	uv_close((uv_handle_t *)drop, loop_close_free);
}

/* Listens on the Unix socket path for IPC peers; accepth is called for each
 * one. The socket's directory is created (0700) if missing and made 0700; a
 * stale socket left by a dead router is removed; a live one is not touched:
 * EADDRINUSE, cause "another umcallrouter is already listening on PATH". The
 * socket itself is 0660. Errors come with a readable *cause (malloc'd, the
 * caller frees it) when cause is not NULL. */
int ipc_server_listen(struct ipc_server **out, uv_loop_t *loop,
		      const char *path, ipc_accept_h *accepth, void *arg,
		      char **cause)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct ipc_server *s = NULL;
	struct stat st;
	bool bound = false;
	int fd = -1, err;

	if (!out || !loop || !path || !*path || !accepth)
		return EINVAL;
	if (strlen(path) >= sizeof sa.sun_path) {
		cause_set(cause, "IPC socket path %s is longer than %zu bytes",
			  path, sizeof sa.sun_path - 1);
		return ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	err = private_dir(path, cause);
	if (err)
		goto out;
	err = remove_stale(path, cause);
	if (err)
		goto out;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = errno;
		cause_set(cause, "socket: %s", strerror(err));
		goto out;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		err = errno;
		cause_set(cause, "cannot bind %s: %s", path, strerror(err));
		goto out;
	}
	bound = true;
	if (chmod(path, 0660) != 0 || stat(path, &st) != 0) {
		err = errno;
		cause_set(cause, "cannot chmod 0660 %s: %s", path, strerror(err));
		goto out;
	}
	if (listen(fd, IPC_BACKLOG) != 0) {
		err = errno;
		cause_set(cause, "cannot listen on %s: %s", path, strerror(err));
		goto out;
	}
	s = calloc(1, sizeof *s);
	if (!s || !(s->path = strdup(path))) {
		err = ENOMEM;
		goto out;
	}
	s->loop = loop;
	s->accepth = accepth;
	s->arg = arg;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	if (uv_pipe_init(loop, &s->pipe, 0) != 0)
		IPC_BUG("uv_pipe_init failed");
	s->pipe.data = s;
	err = uv_pipe_open(&s->pipe, fd);
	if (err) {
		err = errno_of_uv(err);
		cause_set(cause, "cannot watch %s: %s", path, strerror(err));
		uv_close((uv_handle_t *)&s->pipe, server_on_close);
		s = NULL;
		goto out;
	}
	fd = -1; /* the handle owns it now */
	err = uv_listen((uv_stream_t *)&s->pipe, IPC_BACKLOG,
			server_on_connection);
	if (err) {
		err = errno_of_uv(err);
		cause_set(cause, "cannot listen on %s: %s", path, strerror(err));
		ipc_server_close(s);
		s = NULL;
		goto out;
	}
	log_info("IPC listening on %s", path);
	*out = s;
	s = NULL;
out:
	if (fd >= 0) {
		if (err && bound)
			unlink(path);
		close(fd);
	}
	if (s) {
		free(s->path);
		free(s);
	}
	return err;
}

/* Stops listening and removes the socket file (if it is still the one this
 * server bound); the memory goes in the close callback. Connections already
 * accepted are not affected. Idempotent. */
void ipc_server_close(struct ipc_server *s)
{
	struct stat st;

	if (!s || s->closing)
		return;
	s->closing = true;
	if (lstat(s->path, &st) == 0 && st.st_dev == s->dev &&
	    st.st_ino == s->ino)
		unlink(s->path);
	uv_close((uv_handle_t *)&s->pipe, server_on_close);
}

/* The socket path the server listens on. */
const char *ipc_server_path(const struct ipc_server *s)
{
	return s ? s->path : NULL;
}
