/* daemon.h — what umcallrouter and umservice share at start-up: the command
 * line every daemon accepts, the state directory, and opening the directory
 * (creating the embedded default on first run). */
#ifndef OPENUM_DAEMON_H
#define OPENUM_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#include "common/log.h"

struct dir;

struct daemon_opts {
	const char *state_dir;		/* --state-dir, $OPENUM_STATE_DIR, "var" */
	enum log_level log_level;	/* --log-level */
	const char *protocol_log;	/* --protocol-log FILE (router) */
	const char *instance_id;	/* --instance-id (umservice) */
	unsigned sip_port;		/* --sip-port: overrides the directory */
	char *state_abs;		/* absolute state dir, set by parse */
};

/* Parses argv. Returns 0 to go on, -1 when --help was printed (exit 0),
 * EINVAL after printing what was wrong (exit 2). */
int daemon_parse_args(struct daemon_opts *o, int argc, char **argv,
		      const char *prog, const char *summary);
void daemon_opts_release(struct daemon_opts *o);
/* Path of a file under the state directory, in buf. */
const char *daemon_state_path(const struct daemon_opts *o, const char *rel,
			      char *buf, size_t len);
/* Creates the state directory if needed and opens directory.db, creating
 * the embedded default on first run (its PIN is printed once, to stderr). */
int daemon_open_directory(struct dir **out, const struct daemon_opts *o,
			  char **cause);
/* Milliseconds since the epoch, for status. */
unsigned long long daemon_now_ms(void);


/* Signals of a running daemon: SIGINT/SIGTERM call stop_h once and arm a
 * grace timer that ends the process if the stop hangs; another within
 * DAEMON_REPEAT_MS is the same request (a terminal's Ctrl-C and a wrapper
 * forwarding it), a later one exits at once; SIGHUP calls reload_h. */
struct loop;
struct daemon_signals;
typedef void (daemon_stop_h)(void *arg, const char *why);
typedef void (daemon_reload_h)(void *arg);
#define DAEMON_STOP_GRACE_MS 3000
#define DAEMON_REPEAT_MS 1000
int daemon_signals_start(struct daemon_signals **out, struct loop *loop,
			 daemon_stop_h *stoph, daemon_reload_h *reloadh,
			 void *arg);
void daemon_signals_close(struct daemon_signals *s);

/* The listener set that an IPAddressFamily (enum dir_af) and port mean. */
struct sipl_config;
void daemon_sipl_config(struct sipl_config *cfg, int dir_af, unsigned port);

/* Takes `opt SECONDS` or `opt=SECONDS` (1..max) out of argv (the last one
 * given wins) into *out, leaving argv NULL-ended and *argc updated; stops
 * at "--". EINVAL, with a line on stderr, for a missing or bad value. */
int daemon_take_seconds(int *argc, char **argv, const char *opt,
			unsigned max, unsigned *out);

#endif
