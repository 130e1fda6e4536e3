/* loop.c — sofia su_root as the master loop with libuv embedded.
 *
 * Why this shape: su_root exposes no pollable descriptor for its own reactor,
 * but libuv does (uv_backend_fd() is its epoll fd). So we register libuv's fd
 * in su_root only to wake it, and drive both from one plain loop:
 *
 *     uv_run(NOWAIT)                      run due libuv timers and I/O
 *     t = uv_backend_timeout()            how long libuv can sleep
 *     su_root_step(root, t)               sleep in sofia's epoll until a sofia
 *                                         fd, sofia timer, libuv fd or t
 *
 * Recomputing libuv's timeout after every uv_run is what makes timers armed
 * from inside sofia callbacks safe: the next iteration sees them (the
 * "su_timer mirrors libuv" variant needs an explicit re-arm there, see
 * NOTES-stack.md §2). When nothing is due the thread sleeps: idle CPU is 0. */
#define LOG_MODULE "loop"
#include "common/loop.h"
#include "common/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sofia-sip/su_log.h>

#define LOOP_DRAIN_STEPS 16
#define LOOP_DRAIN_AFTER_NS 1000000ULL	/* 1 ms */

struct loop {
	su_root_t *root;
	uv_loop_t uv;
	su_wait_t uv_wait;
	int uv_wait_index;
	bool uv_ready;
	bool stop;
};

static int uv_fd_ready(su_root_magic_t *magic, su_wait_t *w,
		       su_wakeup_arg_t *arg)
{
	/* Only wakes su_root_step; libuv's own events are read by uv_run. */
	(void)magic;
	(void)arg;
	(void)w;
	return 0;
}

/* sofia-sip writes its own diagnostics ("tport: Bad message", bind errors)
 * straight to stderr, sometimes a line in several calls; route them through
 * our log so every line has a time, a level and a module. */
static void sofia_log(void *stream, char const *fmt, va_list ap)
{
	static char line[1024];
	static size_t used;
	char *nl;

	(void)stream;
	if (used < sizeof line - 1) {
		int n = vsnprintf(line + used, sizeof line - used, fmt, ap);

		if (n > 0)
			used += (size_t)n < sizeof line - used ? (size_t)n
							       : sizeof line - 1 - used;
	}
	while ((nl = memchr(line, '\n', used)) != NULL) {
		*nl = '\0';
		if (nl != line)
			log_write(LOG_LEVEL_INFO, "sofia", "%s", line);
		used -= (size_t)(nl + 1 - line);
		memmove(line, nl + 1, used);
	}
	if (used >= sizeof line - 1) {
		line[used] = '\0';
		log_write(LOG_LEVEL_INFO, "sofia", "%s", line);
		used = 0;
	}
}

/* nta's own log object (exported by libsofia-sip-ua, not declared in its
 * public headers). */
extern su_log_t nta_log[];

/* nta says why it dropped a request it could not answer (no Via, failed
 * sanity check, a bad header) only at its level 5, where it also logs every
 * message it handles. So nta_log runs at level 5 and this filter drops the
 * per-message chatter by its format string (cheap: nothing is formatted),
 * formats only the two formats that carry drop reasons as arguments, and
 * passes everything else (nta's errors and warnings). */
static void nta_filter_log(void *stream, char const *fmt, va_list ap)
{
	static const char *const chatter[] = {
		"nta: received ", "nta: timer ", "nta: for \"", "nta: %03d %s %s",
		"nta: %s (%u) is going to",
	};
	char line[512];
	va_list cp;

	if (log_get_level() <= LOG_LEVEL_DEBUG) {
		sofia_log(stream, fmt, ap);
		return;
	}
	for (size_t i = 0; i < sizeof chatter / sizeof chatter[0]; i++) {
		if (!strncmp(fmt, chatter[i], strlen(chatter[i])))
			return;
	}
	if (!strcmp(fmt, "nta: %s (%u) %s\n") || !strcmp(fmt, "nta: %s (%u) is %s\n")) {
		va_copy(cp, ap);
		vsnprintf(line, sizeof line, fmt, cp);
		va_end(cp);
		if (!strstr(line, "sanity") && !strstr(line, "Bad"))
			return;
		log_write(LOG_LEVEL_INFO, "sofia", "%s: dropped or refused",
			  strtok(line, "\n"));
		return;
	}
	sofia_log(stream, fmt, ap);
}

/* Creates su_root and the embedded libuv loop. Calls su_init() once. */
int loop_alloc(struct loop **out)
{
	static bool su_ready;
	struct loop *l;
	int err = 0;

	if (!out)
		return EINVAL;
	if (!su_ready) {
		if (su_init() != 0)
			return ENOMEM;
		su_log_redirect(su_log_default, sofia_log, NULL);
		su_log_redirect(nta_log, nta_filter_log, NULL);
		su_log_set_level(nta_log, 5);
		su_ready = true;
	}
	l = calloc(1, sizeof *l);
	if (!l)
		return ENOMEM;
	l->uv_wait_index = -1;
	l->root = su_root_create(NULL);
	if (!l->root) {
		err = ENOMEM;
		goto out;
	}
	err = -uv_loop_init(&l->uv);
	if (err)
		goto out;
	l->uv_ready = true;
	if (su_wait_create(&l->uv_wait, uv_backend_fd(&l->uv), SU_WAIT_IN) != 0) {
		err = EIO;
		goto out;
	}
	l->uv_wait_index = su_root_register(l->root, &l->uv_wait, uv_fd_ready,
					    NULL, su_pri_normal);
	if (l->uv_wait_index < 0) {
		err = EIO;
		goto out;
	}
out:
	if (err) {
		loop_free(l);
		return err;
	}
	*out = l;
	return 0;
}

/* See the header. */
int loop_alloc_uv(struct loop **out)
{
	struct loop *l = calloc(1, sizeof *l);
	int err;

	if (!l)
		return ENOMEM;
	l->uv_wait_index = -1;
	err = -uv_loop_init(&l->uv);
	if (err) {
		free(l);
		return err;
	}
	l->uv_ready = true;
	*out = l;
	return 0;
}

/* The sofia root, for nta agents and sofia timers. */
su_root_t *loop_root(struct loop *l)
{
	return l->root;
}

/* The libuv loop, for IPC, timers, signals and sockets. */
uv_loop_t *loop_uv(struct loop *l)
{
	return &l->uv;
}

/* Drives both loops until loop_stop(). */
int loop_run(struct loop *l)
{
	l->stop = false;
	if (!l->root) {
		/* libuv alone: one epoll_wait per turn instead of two */
		while (!l->stop)
			uv_run(&l->uv, UV_RUN_ONCE);
		return 0;
	}
	while (!l->stop) {
		su_duration_t t;
		uint64_t t0 = uv_hrtime(), busy;

		uv_run(&l->uv, UV_RUN_NOWAIT);
		busy = uv_hrtime() - t0;
		if (l->stop)
			break;
		t = uv_loop_alive(&l->uv) ? uv_backend_timeout(&l->uv)
					  : SU_WAIT_FOREVER;
		su_root_step(l->root, t);
		/* One su_root_step serves at most four ready descriptors and
		 * sofia reads one datagram per ready UDP socket, while a turn
		 * of uv_run can take milliseconds under media load: without
		 * draining, the SIP socket overflows long before the CPU is
		 * used up (INVITEs, ACKs and BYEs lost). A few non-blocking
		 * steps keep SIP flowing. Only after a long libuv turn: on a
		 * light turn they would be wasted system calls. */
		for (int i = 0; busy > LOOP_DRAIN_AFTER_NS && i < LOOP_DRAIN_STEPS &&
				!l->stop; i++)
			su_root_step(l->root, 0);
	}
	return 0;
}

/* Makes loop_run return at its next turn. */
void loop_stop(struct loop *l)
{
	l->stop = true;
	uv_stop(&l->uv);
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h)) {
		/* A handle nobody closed is a lifetime bug; say so, and close it
		 * so the loop can be released. */
		log_warn("handle of type %s still open at exit",
			 uv_handle_type_name(uv_handle_get_type(h)));
		uv_close(h, NULL);
	}
}

/* Runs pending close callbacks and releases the loop; accepts a half-built
 * loop. */
void loop_free(struct loop *l)
{
	if (!l)
		return;
	if (l->uv_wait_index >= 0)
		su_root_deregister(l->root, l->uv_wait_index);
	if (l->uv_ready) {
		/* Owners closed their handles; let the close callbacks and
		 * lingering writes (bounded by their own timers) finish, but
		 * never wait more than a few seconds for a forgotten handle. */
		for (int i = 0; i < 500 && uv_loop_alive(&l->uv); i++) {
			uv_run(&l->uv, UV_RUN_NOWAIT);
			if (uv_loop_alive(&l->uv))
				usleep(5000);
		}
		uv_walk(&l->uv, close_walk_cb, NULL);
		uv_run(&l->uv, UV_RUN_NOWAIT);
		if (uv_loop_close(&l->uv) != 0)
			log_warn("libuv loop still busy at exit");
	}
	if (l->root)
		su_root_destroy(l->root);
	free(l);
}

/* See the header. */
void loop_close_free(uv_handle_t *h)
{
	free(h);
}
