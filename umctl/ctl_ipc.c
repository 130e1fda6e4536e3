/* ctl_ipc.c — umctl's blocking IPC client: connect, Hello, one request, wait
 * for its reply, with poll() bounding every wait. */
#include "common/cause.h"
#include "umctl/ctl_ipc.h"
#include "proto/ipc_frame.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct ctl_conn {
	int fd;
	const char *path;
	uint8_t *buf;    /* IPC_FRAME_HDR + IPC_FRAME_MAX bytes */
	size_t len;
};


static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until deadline: 0, ETIMEDOUT or an errno. */
static int wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		long long left = deadline - now_ms();
		int n;

		if (left <= 0)
			return ETIMEDOUT;
		n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n == 0)
			return ETIMEDOUT;
		if (errno != EINTR)
			return errno;
	}
}

static int ctl_connect(struct ctl_conn *cc, const char *path, char **cause)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	long long deadline = now_ms() + CTL_IPC_TIMEOUT_MS;
	int err;

	if (strlen(path) >= sizeof sa.sun_path) {
		cause_set(cause, "socket path %s is longer than %zu bytes", path,
			  sizeof sa.sun_path - 1);
		return ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	cc->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (cc->fd < 0) {
		err = errno;
		cause_set(cause, "socket: %s", strerror(err));
		return err;
	}
	for (;;) {
		socklen_t l = sizeof err;

		if (connect(cc->fd, (struct sockaddr *)&sa, sizeof sa) == 0)
			return 0;
		err = errno;
		if (err == EINTR)
			continue;
		if (err == EAGAIN) {
			/* Unix sockets: the router's backlog is full; retry. */
			if (now_ms() >= deadline)
				err = ETIMEDOUT;
			else {
				poll(NULL, 0, 20);
				continue;
			}
		} else if (err == EINPROGRESS) {
			err = wait_fd(cc->fd, POLLOUT, deadline);
			if (!err && getsockopt(cc->fd, SOL_SOCKET, SO_ERROR, &err,
					       &l) != 0)
				err = errno;
			if (!err)
				return 0;
		}
		break;
	}
	if (err == ETIMEDOUT)
		cause_set(cause, "no connection to umcallrouter on %s within %d ms",
			  path, CTL_IPC_TIMEOUT_MS);
	else
		cause_set(cause, "cannot connect to umcallrouter on %s: %s", path,
			  strerror(err));
	return err;
}

static int ctl_send(struct ctl_conn *cc, const Openum__Envelope *env,
		    char **cause)
{
	long long deadline = now_ms() + CTL_IPC_TIMEOUT_MS;
	uint8_t *data;
	size_t len, off = 0;
	int err;

	err = ipc_frame_encode(&data, &len, env);
	if (err) {
		cause_set(cause, "cannot encode %s: %s",
			  ipc_body_name(env->body_case), strerror(err));
		return err;
	}
	while (off < len) {
		ssize_t n = send(cc->fd, data + off, len - off, MSG_NOSIGNAL);

		if (n >= 0) {
			off += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			err = wait_fd(cc->fd, POLLOUT, deadline);
		else
			err = errno;
		if (err) {
			cause_set(cause, "cannot send to umcallrouter on %s: %s",
				  cc->path, strerror(err));
			break;
		}
	}
	free(data);
	return err;
}

/* Reads until one whole frame is decoded or deadline passes. */
static int ctl_recv(struct ctl_conn *cc, Openum__Envelope **out,
		    long long deadline, int timeout_ms, char **cause)
{
	for (;;) {
		char *why = NULL;
		size_t used = 0;
		ssize_t n;
		int err;

		err = ipc_frame_decode_cause(out, cc->buf, cc->len, &used, &why);
		if (err == 0) {
			memmove(cc->buf, cc->buf + used, cc->len - used);
			cc->len -= used;
			return 0;
		}
		if (err != EAGAIN) {
			cause_set(cause, "umcallrouter on %s sent a bad frame: %s",
				  cc->path, why ? why : strerror(err));
			free(why);
			return err;
		}
		/* A frame is never longer than the buffer, so there is room. */
		n = recv(cc->fd, cc->buf + cc->len,
			 IPC_FRAME_HDR + IPC_FRAME_MAX - cc->len, 0);
		if (n > 0) {
			cc->len += (size_t)n;
			continue;
		}
		if (n == 0) {
			cause_set(cause, "umcallrouter on %s closed the connection "
				  "without replying", cc->path);
			return ECONNRESET;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			err = wait_fd(cc->fd, POLLIN, deadline);
		else
			err = errno;
		if (err == ETIMEDOUT) {
			cause_set(cause, "no reply from umcallrouter on %s within "
				  "%d ms", cc->path, timeout_ms);
			return err;
		}
		if (err) {
			cause_set(cause, "cannot read from umcallrouter on %s: %s",
				  cc->path, strerror(err));
			return err;
		}
	}
}

/* Hello, then req; returns the first envelope whose body is `want`, skipping
 * the router's Hello and anything else it may send meanwhile; the reply
 * must come within timeout_ms. */
static int ctl_exchange(const char *path, const Openum__Envelope *req,
			Openum__Envelope__BodyCase want, int timeout_ms,
			Openum__Envelope **out, char **cause)
{
	struct ctl_conn cc = {.fd = -1, .path = path};
	Openum__Envelope hello_env, *env = NULL;
	Openum__Hello hello = OPENUM__HELLO__INIT;
	long long deadline;
	int err;

	if (!path || !*path)
		return EINVAL;
	cc.buf = malloc(IPC_FRAME_HDR + IPC_FRAME_MAX);
	if (!cc.buf)
		return ENOMEM;
	err = ctl_connect(&cc, path, cause);
	if (err)
		goto out;
	hello.role = OPENUM__ROLE__ROLE_UMCTL;
	hello.pid = (uint32_t)getpid();
	hello.software = "umctl";
	ipc_envelope_init(&hello_env);
	hello_env.body_case = OPENUM__ENVELOPE__BODY_HELLO;
	hello_env.hello = &hello;
	err = ctl_send(&cc, &hello_env, cause);
	if (!err)
		err = ctl_send(&cc, req, cause);
	if (err)
		goto out;
	deadline = now_ms() + timeout_ms;
	for (;;) {
		err = ctl_recv(&cc, &env, deadline, timeout_ms, cause);
		if (err)
			goto out;
		if (env->body_case == want)
			break;
		if (env->body_case == OPENUM__ENVELOPE__BODY_ERROR) {
			cause_set(cause, "umcallrouter refused the request: %s "
				  "(%s)",
				  env->error->message && *env->error->message ?
					  env->error->message : "no reason given",
				  strerror((int)env->error->code));
			err = EPROTO;
			goto out;
		}
		/* Hello from the router, or anything unsolicited. */
		openum__envelope__free_unpacked(env, NULL);
		env = NULL;
	}
	*out = env;
	env = NULL;
out:
	if (env)
		openum__envelope__free_unpacked(env, NULL);
	if (cc.fd >= 0)
		close(cc.fd);
	free(cc.buf);
	return err;
}

/* StatusRequest → StatusReply; see ctl_ipc.h. */
int ctl_ipc_status(const char *sock_path, Openum__StatusReply **out,
		   char **cause)
{
	Openum__StatusRequest sr = OPENUM__STATUS_REQUEST__INIT;
	Openum__Envelope req, *env = NULL;
	int err;

	if (!out)
		return EINVAL;
	ipc_envelope_init(&req);
	req.body_case = OPENUM__ENVELOPE__BODY_STATUS_REQUEST;
	req.status_request = &sr;
	err = ctl_exchange(sock_path, &req, OPENUM__ENVELOPE__BODY_STATUS_REPLY,
			   CTL_IPC_TIMEOUT_MS, &env, cause);
	if (err)
		return err;
	/* Detach the reply: protobuf-c allocates each sub-message on its own
	 * and free_unpacked skips a oneof whose case is not set. */
	*out = env->status_reply;
	env->status_reply = NULL;
	env->body_case = OPENUM__ENVELOPE__BODY__NOT_SET;
	openum__envelope__free_unpacked(env, NULL);
	return 0;
}

/* ConfigChanged{object} → ConfigApplied; see ctl_ipc.h. */
int ctl_ipc_config_changed(const char *sock_path, const char *object,
			   const char *drop_gw, unsigned *notified,
			   char **cause)
{
	Openum__ConfigChanged cc = OPENUM__CONFIG_CHANGED__INIT;
	Openum__Envelope req, *env = NULL;
	int err;

	if (!object || !*object)
		return EINVAL;
	cc.object = (char *)object;
	if (drop_gw)
		cc.drop_calls_gateway = (char *)drop_gw;
	ipc_envelope_init(&req);
	req.body_case = OPENUM__ENVELOPE__BODY_CONFIG_CHANGED;
	req.config_changed = &cc;
	err = ctl_exchange(sock_path, &req, OPENUM__ENVELOPE__BODY_CONFIG_APPLIED,
			   CTL_IPC_TIMEOUT_MS, &env, cause);
	if (err)
		return err;
	if (notified)
		*notified = env->config_applied->instances_notified;
	openum__envelope__free_unpacked(env, NULL);
	return 0;
}

/* PlayOnPhoneRequest → PlayOnPhoneResult; see ctl_ipc.h. */
int ctl_ipc_play_on_phone(const char *sock_path,
			  const Openum__PlayOnPhoneRequest *r, int timeout_ms,
			  Openum__PlayOnPhoneResult **out, char **cause)
{
	Openum__Envelope req, *env = NULL;
	int err;

	if (!r || !out || timeout_ms <= 0)
		return EINVAL;
	ipc_envelope_init(&req);
	req.body_case = OPENUM__ENVELOPE__BODY_PLAY_ON_PHONE_REQUEST;
	req.play_on_phone_request = (Openum__PlayOnPhoneRequest *)r;
	err = ctl_exchange(sock_path, &req,
			   OPENUM__ENVELOPE__BODY_PLAY_ON_PHONE_RESULT, timeout_ms,
			   &env, cause);
	if (err)
		return err;
	*out = env->play_on_phone_result;
	env->play_on_phone_result = NULL;
	env->body_case = OPENUM__ENVELOPE__BODY__NOT_SET;
	openum__envelope__free_unpacked(env, NULL);
	return 0;
}
