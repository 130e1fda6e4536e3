/* test_ipc_conn.c — IPC connections, the listening socket and umctl's
 * blocking client against an in-process fake router on a Unix socket in the
 * test's temporary directory. */
#include "common/ipc.h"
#include "umctl/ctl_ipc.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int test_ipc_conn_roundtrip(void);
int test_ipc_conn_bad_peers(void);
int test_ipc_conn_batched_and_large(void);
int test_ipc_conn_connect_fails(void);
int test_ipc_conn_peer_uid(void);
int test_ipc_server_stale_socket(void);
int test_ipc_server_in_use(void);
int test_ipc_server_modes(void);
int test_ctl_ipc_status(void);
int test_ctl_ipc_no_router(void);
int test_ctl_ipc_timeout(void);
int test_ctl_ipc_bad_version(void);

/* ---- fixture: a fake router and its clients on one loop --------------- */

#define FX_MAX 16

struct fx;

struct tclient {
	struct fx *fx;
	struct ipc_conn *c;
	bool status_on_connect;
	int connected, got_hello, got_reply, closed, close_err, bad_reply;
};

struct fx {
	uv_loop_t loop;
	uv_timer_t watchdog;
	uv_async_t stop;
	bool threaded;
	struct ipc_server *srv;
	char path[300];
	struct ipc_conn *conns[FX_MAX];
	uint32_t hello_version;     /* version of the router's Hello */
	int accepted, srv_closed, refused, bad_closed;
	int close_errs[FX_MAX], nclose_errs;
	int hellos, hello_pid_ok, status_reqs, config_changes;
	size_t last_object_len;
	bool (*done)(struct fx *);
	bool finished, timed_out;
	struct tclient cl[2];
};

static void fx_teardown(struct fx *fx)
{
	if (fx->finished)
		return;
	fx->finished = true;
	ipc_server_close(fx->srv);
	for (int i = 0; i < FX_MAX; i++)
		ipc_conn_close(fx->conns[i]);
	uv_close((uv_handle_t *)&fx->watchdog, NULL);
	if (fx->threaded)
		uv_close((uv_handle_t *)&fx->stop, NULL);
}

static void fx_check(struct fx *fx)
{
	if (!fx->finished && fx->done && fx->done(fx))
		fx_teardown(fx);
}

static int send_hello(struct ipc_conn *c, Openum__Role role, uint32_t version)
{
	Openum__Envelope env;
	Openum__Hello h = OPENUM__HELLO__INIT;

	ipc_envelope_init(&env);
	env.version = version;
	h.role = role;
	h.pid = (uint32_t)getpid();
	h.software = "test";
	env.body_case = OPENUM__ENVELOPE__BODY_HELLO;
	env.hello = &h;
	return ipc_conn_send(c, &env);
}

static void srv_recv(struct ipc_conn *c, const Openum__Envelope *env, void *arg)
{
	struct fx *fx = arg;
	Openum__Envelope out;

	ipc_envelope_init(&out);
	switch (env->body_case) {
	case OPENUM__ENVELOPE__BODY_HELLO:
		fx->hellos++;
		if (ipc_conn_pid(c) == getpid() && env->hello->pid == (uint32_t)getpid())
			fx->hello_pid_ok++;
		break;
	case OPENUM__ENVELOPE__BODY_STATUS_REQUEST: {
		Openum__StatusReply r = OPENUM__STATUS_REPLY__INIT;
		Openum__InstanceStatus is = OPENUM__INSTANCE_STATUS__INIT, *isp = &is;

		fx->status_reqs++;
		is.instance_id = "um-test";
		is.active_calls = 2;
		r.router_pid = (uint32_t)getpid();
		r.n_instances = 1;
		r.instances = &isp;
		out.body_case = OPENUM__ENVELOPE__BODY_STATUS_REPLY;
		out.status_reply = &r;
		ipc_conn_send(c, &out);
		break;
	}
	case OPENUM__ENVELOPE__BODY_CONFIG_CHANGED: {
		Openum__ConfigApplied a = OPENUM__CONFIG_APPLIED__INIT;
		Openum__Error e = OPENUM__ERROR__INIT;

		fx->config_changes++;
		fx->last_object_len = strlen(env->config_changed->object);
		if (strcmp(env->config_changed->object, "refuse") == 0) {
			e.code = EPERM;
			e.message = "object refuse is read-only";
			out.body_case = OPENUM__ENVELOPE__BODY_ERROR;
			out.error = &e;
			ipc_conn_send(c, &out);
			ipc_conn_close(c);
			break;
		}
		a.instances_notified = 3;
		out.body_case = OPENUM__ENVELOPE__BODY_CONFIG_APPLIED;
		out.config_applied = &a;
		ipc_conn_send(c, &out);
		break;
	}
	default:
		break;
	}
	fx_check(fx);
}

static void cl_send_status(struct tclient *cl)
{
	Openum__Envelope env;
	Openum__StatusRequest sr = OPENUM__STATUS_REQUEST__INIT;

	ipc_envelope_init(&env);
	env.body_case = OPENUM__ENVELOPE__BODY_STATUS_REQUEST;
	env.status_request = &sr;
	if (ipc_conn_send(cl->c, &env) != 0)
		cl->bad_reply++;
}

static void srv_close(struct ipc_conn *c, int err, void *arg)
{
	struct fx *fx = arg;

	for (int i = 0; i < FX_MAX; i++) {
		if (fx->conns[i] == c)
			fx->conns[i] = NULL;
	}
	fx->srv_closed++;
	if (fx->nclose_errs < FX_MAX)
		fx->close_errs[fx->nclose_errs++] = err;
	if (err == EACCES)
		fx->refused++;
	if (err == EMSGSIZE || err == EBADMSG || err == EPROTO) {
		fx->bad_closed++;
		/* Once all bad peers are gone, the good ones go on. */
		if (fx->bad_closed == 3 && fx->cl[0].connected)
			cl_send_status(&fx->cl[0]);
		else if (fx->bad_closed == 3)
			fx->cl[0].status_on_connect = true;
	}
	fx_check(fx);
}

static void srv_accept(struct ipc_server *s, uv_stream_t *server, void *arg)
{
	struct fx *fx = arg;
	struct ipc_conn *c;
	int slot = -1;

	for (int i = 0; i < FX_MAX; i++) {
		if (!fx->conns[i]) {
			slot = i;
			break;
		}
	}
	if (slot < 0 || ipc_conn_alloc(&c, &fx->loop, srv_recv, srv_close, fx))
		return;
	fx->conns[slot] = c;
	if (ipc_conn_accept(c, server) != 0)
		return; /* closing; srv_close follows */
	fx->accepted++;
	send_hello(c, OPENUM__ROLE__ROLE_ROUTER, fx->hello_version);
}

static void cl_recv(struct ipc_conn *c, const Openum__Envelope *env, void *arg)
{
	struct tclient *cl = arg;

	if (env->body_case == OPENUM__ENVELOPE__BODY_HELLO) {
		if (env->hello->role == OPENUM__ROLE__ROLE_ROUTER)
			cl->got_hello++;
	} else if (env->body_case == OPENUM__ENVELOPE__BODY_STATUS_REPLY) {
		cl->got_reply++;
		if (env->status_reply->router_pid != (uint32_t)getpid() ||
		    env->status_reply->n_instances != 1 ||
		    strcmp(env->status_reply->instances[0]->instance_id, "um-test"))
			cl->bad_reply++;
		ipc_conn_close(c);
		ipc_conn_close(c); /* idempotent */
	} else {
		cl->bad_reply++;
	}
	fx_check(cl->fx);
}

static void cl_connected(struct ipc_conn *c, void *arg)
{
	struct tclient *cl = arg;

	cl->connected++;
	if (send_hello(c, OPENUM__ROLE__ROLE_UMSERVICE, IPC_PROTOCOL_VERSION))
		cl->bad_reply++;
	if (cl->status_on_connect)
		cl_send_status(cl);
	fx_check(cl->fx);
}

static void cl_close(struct ipc_conn *c, int err, void *arg)
{
	struct tclient *cl = arg;

	cl->closed++;
	cl->close_err = err;
	cl->c = NULL;
	fx_check(cl->fx);
}

static int cl_start(struct fx *fx, int i, const char *path, bool status)
{
	struct tclient *cl = &fx->cl[i];
	int err;

	cl->fx = fx;
	cl->status_on_connect = status;
	err = ipc_conn_alloc(&cl->c, &fx->loop, cl_recv, cl_close, cl);
	if (!err)
		err = ipc_conn_connect(cl->c, path, cl_connected);
	return err;
}

static void fx_on_watchdog(uv_timer_t *t)
{
	struct fx *fx = t->data;

	fprintf(stderr, "  watchdog fired\n");
	fx->timed_out = true;
	uv_stop(&fx->loop);
}

static void fx_on_stop(uv_async_t *a)
{
	fx_teardown(a->data);
}

/* Sets up the loop and the listening socket at DIR/run/SUB.sock. */
static int fx_init(struct fx *fx, const char *sub, bool threaded)
{
	char *cause = NULL;
	int err;

	memset(fx, 0, sizeof *fx);
	signal(SIGPIPE, SIG_IGN);
	fx->hello_version = IPC_PROTOCOL_VERSION;
	fx->threaded = threaded;
	snprintf(fx->path, sizeof fx->path, "%s/run/%s.sock", ut_tmpdir(), sub);
	if (uv_loop_init(&fx->loop) != 0)
		return 1;
	uv_timer_init(&fx->loop, &fx->watchdog);
	fx->watchdog.data = fx;
	uv_timer_start(&fx->watchdog, fx_on_watchdog, 20000, 0);
	if (threaded) {
		uv_async_init(&fx->loop, &fx->stop, fx_on_stop);
		fx->stop.data = fx;
	}
	err = ipc_server_listen(&fx->srv, &fx->loop, fx->path, srv_accept, fx,
				&cause);
	if (err) {
		fprintf(stderr, "  listen: %s (%s)\n", strerror(err),
			cause ? cause : "-");
		free(cause);
		return 1;
	}
	return 0;
}

static int fx_run(struct fx *fx)
{
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	if (fx->timed_out)
		return 1;
	UT_ASSERT_INT(uv_loop_close(&fx->loop), 0);
	return 0;
}

/* A blocking client socket connected to path (or -1 with errno). */
static int raw_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 5};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Reads until EOF (or reset after the data); returns the byte count. */
static size_t raw_read_all(int fd, uint8_t *buf, size_t cap, int *end_errno)
{
	size_t len = 0;

	*end_errno = 0;
	while (len < cap) {
		ssize_t n = recv(fd, buf + len, cap - len, 0);

		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		*end_errno = n < 0 ? errno : 0;
		break;
	}
	return len;
}

/* Leaves a socket file nobody listens on at path. */
static int make_stale_socket(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		return 1;
	close(fd);
	return 0;
}

/* ---- tests ------------------------------------------------------------ */

static bool done_roundtrip(struct fx *fx)
{
	return fx->cl[0].closed && fx->accepted == 1 && fx->srv_closed == 1;
}

int test_ipc_conn_roundtrip(void)
{
	struct fx fx;

	UT_ASSERT_INT(fx_init(&fx, "rt", false), 0);
	fx.done = done_roundtrip;
	UT_ASSERT_INT(cl_start(&fx, 0, fx.path, true), 0);
	UT_ASSERT_INT(fx_run(&fx), 0);

	UT_ASSERT_INT(fx.cl[0].connected, 1);
	UT_ASSERT_INT(fx.cl[0].got_hello, 1);
	UT_ASSERT_INT(fx.cl[0].got_reply, 1);
	UT_ASSERT_INT(fx.cl[0].bad_reply, 0);
	UT_ASSERT_INT(fx.cl[0].closed, 1);     /* closeh exactly once */
	UT_ASSERT_INT(fx.cl[0].close_err, 0);  /* closed by its owner */
	UT_ASSERT_INT(fx.hellos, 1);
	UT_ASSERT_INT(fx.hello_pid_ok, 1);     /* SO_PEERCRED pid */
	UT_ASSERT_INT(fx.status_reqs, 1);
	UT_ASSERT_INT(fx.close_errs[0], ECONNRESET); /* the peer hung up */
	/* ipc_server_close removed the socket file. */
	UT_ASSERT(access(fx.path, F_OK) != 0);
	return 0;
}

static bool done_bad_peers(struct fx *fx)
{
	return fx->cl[0].closed && fx->cl[1].closed && fx->srv_closed == 5;
}

/* After the three bad peers are dropped, a second good client comes. */
static void bad_peers_second_client(struct fx *fx)
{
	if (fx->bad_closed == 3 && !fx->cl[1].fx)
		cl_start(fx, 1, fx->path, true);
}

static bool done_bad_peers_hook(struct fx *fx)
{
	bad_peers_second_client(fx);
	return done_bad_peers(fx);
}

static int check_error_reply(int fd, uint32_t code, const char *message)
{
	static uint8_t buf[4096];
	size_t len, off = 0;
	int end, saw_hello = 0, saw_error = 0;

	len = raw_read_all(fd, buf, sizeof buf, &end);
	/* EOF, or a reset reported after the data: both mean "closed". */
	UT_ASSERT(end == 0 || end == ECONNRESET);
	while (off < len) {
		Openum__Envelope *env = NULL;
		size_t used;

		UT_ASSERT_INT(ipc_frame_decode(&env, buf + off, len - off, &used), 0);
		off += used;
		if (env->body_case == OPENUM__ENVELOPE__BODY_HELLO)
			saw_hello++;
		if (env->body_case == OPENUM__ENVELOPE__BODY_ERROR) {
			saw_error++;
			UT_ASSERT_INT(env->error->code, code);
			UT_ASSERT_STR(env->error->message, message);
		}
		openum__envelope__free_unpacked(env, NULL);
	}
	UT_ASSERT_INT(saw_hello, 1);
	UT_ASSERT_INT(saw_error, 1);
	return 0;
}

int test_ipc_conn_bad_peers(void)
{
	static const uint8_t oversized[] = {0x00, 0x01, 0x86, 0xa0, 0x08, 0x01};
	static const uint8_t garbage[] = {0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff};
	Openum__Envelope env;
	Openum__StatusRequest sr = OPENUM__STATUS_REQUEST__INIT;
	uint8_t *v7;
	size_t v7len;
	struct fx fx;
	int fa, fb, fc, n_reset = 0;

	UT_ASSERT_INT(fx_init(&fx, "bad", false), 0);
	fx.done = done_bad_peers_hook;
	/* A good client, connected throughout. */
	UT_ASSERT_INT(cl_start(&fx, 0, fx.path, false), 0);

	ipc_envelope_init(&env);
	env.version = 7;
	env.body_case = OPENUM__ENVELOPE__BODY_STATUS_REQUEST;
	env.status_request = &sr;
	UT_ASSERT_INT(ipc_frame_encode(&v7, &v7len, &env), 0);
	fa = raw_connect(fx.path);
	fb = raw_connect(fx.path);
	fc = raw_connect(fx.path);
	UT_ASSERT(fa >= 0 && fb >= 0 && fc >= 0);
	UT_ASSERT_INT(write(fa, oversized, sizeof oversized), sizeof oversized);
	UT_ASSERT_INT(write(fb, v7, v7len), v7len);
	UT_ASSERT_INT(write(fc, garbage, sizeof garbage), sizeof garbage);
	free(v7);

	UT_ASSERT_INT(fx_run(&fx), 0);

	UT_ASSERT_INT(fx.bad_closed, 3);
	for (int i = 0; i < fx.nclose_errs; i++) {
		if (fx.close_errs[i] == ECONNRESET)
			n_reset++;
	}
	UT_ASSERT_INT(n_reset, 2); /* the two good clients hung up */
	for (int i = 0; i < 2; i++) {
		UT_ASSERT_INT(fx.cl[i].connected, 1);
		UT_ASSERT_INT(fx.cl[i].got_hello, 1);
		UT_ASSERT_INT(fx.cl[i].got_reply, 1);
		UT_ASSERT_INT(fx.cl[i].bad_reply, 0);
		UT_ASSERT_INT(fx.cl[i].closed, 1);
	}
	UT_ASSERT_INT(check_error_reply(fa, EMSGSIZE,
					"frame of 100000 bytes exceeds 65536"), 0);
	UT_ASSERT_INT(check_error_reply(fb, EPROTO,
					"protocol version 7 not supported (want 2)"), 0);
	UT_ASSERT_INT(check_error_reply(fc, EBADMSG, "undecodable frame"), 0);
	close(fa);
	close(fb);
	close(fc);
	return 0;
}

static bool done_batched(struct fx *fx)
{
	return fx->accepted == 1 && fx->srv_closed == 1;
}

int test_ipc_conn_batched_and_large(void)
{
	Openum__Envelope env;
	Openum__Hello h = OPENUM__HELLO__INIT;
	Openum__StatusRequest sr = OPENUM__STATUS_REQUEST__INIT;
	Openum__ConfigChanged cc = OPENUM__CONFIG_CHANGED__INIT;
	static uint8_t out[3 * (IPC_FRAME_HDR + IPC_FRAME_MAX)], in[8192];
	size_t olen = 0, ilen, off = 0, big_len = IPC_FRAME_MAX - 100;
	uint8_t *f;
	size_t flen;
	char *big;
	struct fx fx;
	int fd, end, got[3] = {0, 0, 0};

	UT_ASSERT_INT(fx_init(&fx, "batch", false), 0);
	fx.done = done_batched;

	/* Hello, StatusRequest and a near-maximum ConfigChanged in one write,
	 * then half-close: the replies must still arrive before the close. */
	ipc_envelope_init(&env);
	h.role = OPENUM__ROLE__ROLE_UMSERVICE;
	env.body_case = OPENUM__ENVELOPE__BODY_HELLO;
	env.hello = &h;
	UT_ASSERT_INT(ipc_frame_encode(&f, &flen, &env), 0);
	memcpy(out + olen, f, flen);
	olen += flen;
	free(f);
	env.body_case = OPENUM__ENVELOPE__BODY_STATUS_REQUEST;
	env.status_request = &sr;
	UT_ASSERT_INT(ipc_frame_encode(&f, &flen, &env), 0);
	memcpy(out + olen, f, flen);
	olen += flen;
	free(f);
	big = malloc(big_len + 1);
	UT_ASSERT(big != NULL);
	memset(big, 'g', big_len);
	big[big_len] = '\0';
	cc.object = big;
	env.body_case = OPENUM__ENVELOPE__BODY_CONFIG_CHANGED;
	env.config_changed = &cc;
	UT_ASSERT_INT(ipc_frame_encode(&f, &flen, &env), 0);
	memcpy(out + olen, f, flen);
	olen += flen;
	free(f);
	free(big);

	fd = raw_connect(fx.path);
	UT_ASSERT(fd >= 0);
	UT_ASSERT_INT(write(fd, out, olen), olen);
	UT_ASSERT_INT(shutdown(fd, SHUT_WR), 0);

	UT_ASSERT_INT(fx_run(&fx), 0);
	UT_ASSERT_INT(fx.hellos, 1);
	UT_ASSERT_INT(fx.status_reqs, 1);
	UT_ASSERT_INT(fx.config_changes, 1);
	UT_ASSERT_INT(fx.last_object_len, big_len);
	UT_ASSERT_INT(fx.close_errs[0], ECONNRESET);

	ilen = raw_read_all(fd, in, sizeof in, &end);
	UT_ASSERT_INT(end, 0);
	while (off < ilen) {
		Openum__Envelope *d = NULL;
		size_t used;

		UT_ASSERT_INT(ipc_frame_decode(&d, in + off, ilen - off, &used), 0);
		off += used;
		if (d->body_case == OPENUM__ENVELOPE__BODY_HELLO)
			got[0]++;
		if (d->body_case == OPENUM__ENVELOPE__BODY_STATUS_REPLY)
			got[1]++;
		if (d->body_case == OPENUM__ENVELOPE__BODY_CONFIG_APPLIED) {
			got[2]++;
			UT_ASSERT_INT(d->config_applied->instances_notified, 3);
		}
		openum__envelope__free_unpacked(d, NULL);
	}
	UT_ASSERT_INT(got[0], 1);
	UT_ASSERT_INT(got[1], 1);
	UT_ASSERT_INT(got[2], 1);
	close(fd);
	return 0;
}

static bool done_connect_fails(struct fx *fx)
{
	return fx->cl[0].closed && fx->cl[1].closed;
}

int test_ipc_conn_connect_fails(void)
{
	char missing[300], stale[300];
	struct fx fx;
	struct tclient unused = {.fx = &fx};
	struct ipc_conn *c;

	UT_ASSERT_INT(fx_init(&fx, "cf", false), 0);
	fx.done = done_connect_fails;
	snprintf(missing, sizeof missing, "%s/run/missing.sock", ut_tmpdir());
	snprintf(stale, sizeof stale, "%s/run/stale.sock", ut_tmpdir());
	UT_ASSERT_INT(make_stale_socket(stale), 0);
	UT_ASSERT_INT(cl_start(&fx, 0, missing, true), 0);
	UT_ASSERT_INT(cl_start(&fx, 1, stale, true), 0);
	/* Misuse leaves the conn alone: a second connect on the same conn. */
	UT_ASSERT_INT(ipc_conn_connect(fx.cl[0].c, stale, NULL), EINVAL);
	/* Sending before the connection is up. */
	UT_ASSERT_INT(send_hello(fx.cl[0].c, OPENUM__ROLE__ROLE_UMSERVICE, 1),
		      ENOTCONN);
	/* A conn that is never used still ends with exactly one closeh. */
	UT_ASSERT_INT(ipc_conn_alloc(&c, &fx.loop, cl_recv, cl_close, &unused), 0);
	UT_ASSERT_INT(ipc_conn_pid(c), 0);
	ipc_conn_close(c);
	ipc_conn_close(c);
	UT_ASSERT_INT(fx_run(&fx), 0);
	UT_ASSERT_INT(fx.cl[0].connected, 0);
	UT_ASSERT_INT(fx.cl[0].closed, 1);
	UT_ASSERT_INT(fx.cl[0].close_err, ENOENT);
	UT_ASSERT_INT(fx.cl[1].connected, 0);
	UT_ASSERT_INT(fx.cl[1].closed, 1);
	UT_ASSERT_INT(fx.cl[1].close_err, ECONNREFUSED);
	UT_ASSERT_INT(unused.closed, 1);
	UT_ASSERT_INT(unused.close_err, 0);
	return 0;
}

static bool done_peer_uid(struct fx *fx)
{
	return fx->refused == 1;
}

int test_ipc_conn_peer_uid(void)
{
	struct fx fx;
	char dir[300];
	pid_t pid;
	int status;

	if (geteuid() != 0) {
		fprintf(stderr, "  skipped: needs root to connect as another uid\n");
		return 0;
	}
	UT_ASSERT_INT(fx_init(&fx, "uid", false), 0);
	fx.done = done_peer_uid;
	/* Open the file permissions so that only the credential check is
	 * left to refuse the peer. */
	snprintf(dir, sizeof dir, "%s/run", ut_tmpdir());
	UT_ASSERT_INT(chmod(ut_tmpdir(), 0711), 0);
	UT_ASSERT_INT(chmod(dir, 0711), 0);
	UT_ASSERT_INT(chmod(fx.path, 0666), 0);
	pid = fork();
	UT_ASSERT(pid >= 0);
	if (pid == 0) {
		uint8_t b[64];
		int fd, end;

		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(10);
		fd = raw_connect(fx.path);
		if (fd < 0)
			_exit(11);
		/* Refused: closed without even the router's Hello. */
		_exit(raw_read_all(fd, b, sizeof b, &end) == 0 ? 0 : 12);
	}
	UT_ASSERT_INT(fx_run(&fx), 0);
	UT_ASSERT(waitpid(pid, &status, 0) == pid);
	UT_ASSERT(WIFEXITED(status));
	UT_ASSERT_INT(WEXITSTATUS(status), 0);
	UT_ASSERT_INT(fx.accepted, 0);
	UT_ASSERT_INT(fx.close_errs[0], EACCES);
	return 0;
}

static bool done_immediately(struct fx *fx)
{
	return true;
}

int test_ipc_server_stale_socket(void)
{
	struct fx fx;
	char path[300], dir[300];
	struct stat st;
	int fd;

	snprintf(dir, sizeof dir, "%s/run", ut_tmpdir());
	snprintf(path, sizeof path, "%s/run/stale.sock", ut_tmpdir());
	UT_ASSERT_INT(mkdir(dir, 0700), 0);
	UT_ASSERT_INT(make_stale_socket(path), 0);
	fd = raw_connect(path);
	UT_ASSERT(fd < 0 && errno == ECONNREFUSED);

	UT_ASSERT_INT(fx_init(&fx, "stale", false), 0);
	UT_ASSERT_INT(lstat(path, &st), 0);
	UT_ASSERT(S_ISSOCK(st.st_mode));
	fd = raw_connect(fx.path);
	UT_ASSERT(fd >= 0);
	close(fd);
	fx_teardown(&fx);
	UT_ASSERT_INT(fx_run(&fx), 0);
	UT_ASSERT(access(fx.path, F_OK) != 0);
	return 0;
}

int test_ipc_server_in_use(void)
{
	struct fx fx;
	struct ipc_server *s2 = NULL;
	char *cause = NULL, want[400], plain[300];
	int fd;

	UT_ASSERT_INT(fx_init(&fx, "live", false), 0);
	fx.done = done_immediately;
	UT_ASSERT_INT(ipc_server_listen(&s2, &fx.loop, fx.path, srv_accept, &fx,
					&cause), EADDRINUSE);
	UT_ASSERT(s2 == NULL);
	snprintf(want, sizeof want,
		 "another umcallrouter is already listening on %s", fx.path);
	UT_ASSERT_STR(cause, want);
	free(cause);
	cause = NULL;
	/* The live socket was left alone. */
	fd = raw_connect(fx.path);
	UT_ASSERT(fd >= 0);
	close(fd);
	/* A file that is not a socket is not removed either. */
	snprintf(plain, sizeof plain, "%s/run/plain", ut_tmpdir());
	fd = open(plain, O_CREAT | O_WRONLY, 0600);
	UT_ASSERT(fd >= 0);
	close(fd);
	UT_ASSERT_INT(ipc_server_listen(&s2, &fx.loop, plain, srv_accept, &fx,
					&cause), EEXIST);
	UT_ASSERT(cause && strstr(cause, "not a socket"));
	free(cause);
	UT_ASSERT_INT(access(plain, F_OK), 0);
	fx_teardown(&fx);
	UT_ASSERT_INT(fx_run(&fx), 0);
	return 0;
}

int test_ipc_server_modes(void)
{
	struct fx fx;
	struct ipc_server *s2 = NULL;
	struct stat st;
	char dir[200], path[300], shared[200], *cause = NULL;

	/* A missing directory, two levels deep, is created 0700. */
	memset(&fx, 0, sizeof fx);
	UT_ASSERT_INT(uv_loop_init(&fx.loop), 0);
	snprintf(dir, sizeof dir, "%s/state/run", ut_tmpdir());
	snprintf(path, sizeof path, "%s/umcallrouter.sock", dir);
	umask(022);
	UT_ASSERT_INT(ipc_server_listen(&fx.srv, &fx.loop, path, srv_accept, &fx,
					&cause), 0);
	UT_ASSERT_INT(stat(dir, &st), 0);
	UT_ASSERT_INT(st.st_mode & 07777, 0700);
	UT_ASSERT_INT(lstat(path, &st), 0);
	UT_ASSERT(S_ISSOCK(st.st_mode));
	UT_ASSERT_INT(st.st_mode & 07777, 0660);
	ipc_server_close(fx.srv);
	UT_ASSERT(access(path, F_OK) != 0);

	/* An existing directory with looser modes is tightened. */
	UT_ASSERT_INT(chmod(dir, 0755), 0);
	UT_ASSERT_INT(ipc_server_listen(&fx.srv, &fx.loop, path, srv_accept, &fx,
					&cause), 0);
	UT_ASSERT_INT(stat(dir, &st), 0);
	UT_ASSERT_INT(st.st_mode & 07777, 0700);
	ipc_server_close(fx.srv);
	ipc_server_close(fx.srv); /* idempotent */

	/* A shared directory such as /tmp is refused, not chmod'ed. */
	snprintf(shared, sizeof shared, "%s/shared", ut_tmpdir());
	UT_ASSERT_INT(mkdir(shared, 0700), 0);
	UT_ASSERT_INT(chmod(shared, 01777), 0);
	snprintf(path, sizeof path, "%s/x.sock", shared);
	UT_ASSERT_INT(ipc_server_listen(&s2, &fx.loop, path, srv_accept, &fx,
					&cause), EPERM);
	UT_ASSERT(cause && strstr(cause, "shared directory"));
	free(cause);
	UT_ASSERT_INT(stat(shared, &st), 0);
	UT_ASSERT_INT(st.st_mode & 07777, 01777);
	UT_ASSERT(s2 == NULL);

	uv_run(&fx.loop, UV_RUN_DEFAULT);
	UT_ASSERT_INT(uv_loop_close(&fx.loop), 0);
	return 0;
}

/* ---- umctl's client against the fake router in a thread ---------------- */

static void *fx_thread(void *arg)
{
	struct fx *fx = arg;

	uv_run(&fx->loop, UV_RUN_DEFAULT);
	return NULL;
}

int test_ctl_ipc_status(void)
{
	static struct fx fx;
	Openum__StatusReply *r = NULL;
	pthread_t th;
	unsigned notified = 0;
	char *cause = NULL;

	UT_ASSERT_INT(fx_init(&fx, "ctl", true), 0);
	UT_ASSERT_INT(pthread_create(&th, NULL, fx_thread, &fx), 0);

	UT_ASSERT_INT(ctl_ipc_status(fx.path, &r, &cause), 0);
	UT_ASSERT(cause == NULL);
	UT_ASSERT(r != NULL);
	UT_ASSERT_INT(r->router_pid, getpid());
	UT_ASSERT_INT(r->n_instances, 1);
	UT_ASSERT_STR(r->instances[0]->instance_id, "um-test");
	UT_ASSERT_INT(r->instances[0]->active_calls, 2);
	openum__status_reply__free_unpacked(r, NULL);

	UT_ASSERT_INT(ctl_ipc_config_changed(fx.path, "umipgateway", NULL, &notified,
					     &cause), 0);
	UT_ASSERT_INT(notified, 3);
	UT_ASSERT_INT(ctl_ipc_config_changed(fx.path, "umservice", NULL, NULL, NULL), 0);

	UT_ASSERT_INT(ctl_ipc_config_changed(fx.path, "refuse", NULL, &notified,
					     &cause), EPROTO);
	UT_ASSERT(cause && strstr(cause, "object refuse is read-only"));
	free(cause);
	UT_ASSERT_INT(ctl_ipc_config_changed(fx.path, "", NULL, &notified, NULL), EINVAL);

	uv_async_send(&fx.stop);
	UT_ASSERT_INT(pthread_join(th, NULL), 0);
	UT_ASSERT(!fx.timed_out);
	UT_ASSERT_INT(fx.hellos, 4);
	UT_ASSERT_INT(fx.status_reqs, 1);
	UT_ASSERT_INT(fx.config_changes, 3);
	UT_ASSERT_INT(uv_loop_close(&fx.loop), 0);
	return 0;
}

int test_ctl_ipc_no_router(void)
{
	char dir[200], missing[300], stale[300], *cause = NULL;
	Openum__StatusReply *r = NULL;

	snprintf(dir, sizeof dir, "%s/run", ut_tmpdir());
	snprintf(missing, sizeof missing, "%s/missing.sock", dir);
	snprintf(stale, sizeof stale, "%s/stale.sock", dir);
	UT_ASSERT_INT(mkdir(dir, 0700), 0);
	UT_ASSERT_INT(make_stale_socket(stale), 0);

	UT_ASSERT_INT(ctl_ipc_status(missing, &r, &cause), ENOENT);
	UT_ASSERT(r == NULL);
	UT_ASSERT(cause && strstr(cause, missing));
	free(cause);
	cause = NULL;
	UT_ASSERT_INT(ctl_ipc_config_changed(stale, "umservice", NULL, NULL, &cause),
		      ECONNREFUSED);
	UT_ASSERT(cause != NULL);
	free(cause);
	return 0;
}

int test_ctl_ipc_timeout(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timespec t0, t1;
	char *cause = NULL;
	unsigned notified = 0;
	long ms;
	int fd;

	/* A listener that never accepts nor answers. */
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/mute.sock", ut_tmpdir());
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	UT_ASSERT(fd >= 0);
	UT_ASSERT_INT(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	UT_ASSERT_INT(listen(fd, 4), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	UT_ASSERT_INT(ctl_ipc_config_changed(sa.sun_path, "umservice", NULL, &notified,
					     &cause), ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	UT_ASSERT(ms >= CTL_IPC_TIMEOUT_MS - 50 && ms < CTL_IPC_TIMEOUT_MS + 1500);
	UT_ASSERT(cause && strstr(cause, "no reply"));
	UT_ASSERT_INT(notified, 0);
	free(cause);
	close(fd);
	return 0;
}

int test_ctl_ipc_bad_version(void)
{
	static struct fx fx;
	Openum__StatusReply *r = NULL;
	pthread_t th;
	char *cause = NULL;

	UT_ASSERT_INT(fx_init(&fx, "v3", true), 0);
	fx.hello_version = 3; /* a router from the future */
	UT_ASSERT_INT(pthread_create(&th, NULL, fx_thread, &fx), 0);
	UT_ASSERT_INT(ctl_ipc_status(fx.path, &r, &cause), EPROTO);
	UT_ASSERT(r == NULL);
	UT_ASSERT(cause && strstr(cause, "protocol version 3 not supported (want 2)"));
	free(cause);
	uv_async_send(&fx.stop);
	UT_ASSERT_INT(pthread_join(th, NULL), 0);
	UT_ASSERT_INT(uv_loop_close(&fx.loop), 0);
	return 0;
}
