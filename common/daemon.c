/* daemon.c — shared start-up of the two OpenUM daemons. */
#define LOG_MODULE "daemon"
#include "common/daemon.h"
#include "common/directory.h"
#include "common/loop.h"
#include "common/sipl.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f, const char *prog, const char *summary)
{
	fprintf(f,
		"usage: %s [options]\n"
		"%s\n\n"
		"  --state-dir DIR      state directory (directory.db, voicemail.db, run/);\n"
		"                       default $OPENUM_STATE_DIR, else ./var\n"
		"  --log-level LEVEL    debug, info, notice, warn or error (default info)\n"
		"  --sip-port N         listen on port N instead of the directory's\n"
		"                       SipTcpListeningPort\n"
		"  --protocol-log FILE  (umcallrouter) write every SIP message to FILE\n"
		"  --instance-id ID     (umservice) name of this instance (default host-pid)\n"
		"  --help               this text\n",
		prog, summary);
}

/* Parses the options every daemon understands. */
int daemon_parse_args(struct daemon_opts *o, int argc, char **argv,
		      const char *prog, const char *summary)
{
	static const struct option longopts[] = {
		{"state-dir", required_argument, NULL, 's'},
		{"log-level", required_argument, NULL, 'l'},
		{"protocol-log", required_argument, NULL, 'p'},
		{"instance-id", required_argument, NULL, 'i'},
		{"sip-port", required_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	memset(o, 0, sizeof *o);
	o->log_level = LOG_LEVEL_INFO;
	o->state_dir = getenv("OPENUM_STATE_DIR");
	if (!o->state_dir || !*o->state_dir)
		o->state_dir = "var";
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->state_dir = optarg;
			break;
		case 'l':
			if (log_level_parse(optarg, &o->log_level) != 0) {
				fprintf(stderr, "%s: --log-level: \"%s\" is not one of "
					"debug, info, notice, warn, error\n",
					prog, optarg);
				return EINVAL;
			}
			break;
		case 'p':
			o->protocol_log = optarg;
			break;
		case 'i':
			if (!*optarg || strlen(optarg) > 64) {
				fprintf(stderr, "%s: --instance-id: 1 to 64 characters\n",
					prog);
				return EINVAL;
			}
			o->instance_id = optarg;
			break;
		case 'P': {
			char *end;
			long v;

			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || v < 1 || v > 65535) {
				fprintf(stderr, "%s: --sip-port: \"%s\" is not a port "
					"(1-65535)\n", prog, optarg);
				return EINVAL;
			}
			o->sip_port = (unsigned)v;
			break;
		}
		case 'h':
			usage(stdout, prog, summary);
			return -1;
		default:
			usage(stderr, prog, summary);
			return EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument \"%s\"\n", prog,
			argv[optind]);
		usage(stderr, prog, summary);
		return EINVAL;
	}
	if (mkdir(o->state_dir, 0750) != 0 && errno != EEXIST) {
		fprintf(stderr, "%s: cannot create state directory %s: %s\n", prog,
			o->state_dir, strerror(errno));
		return EINVAL;
	}
	{
		/* Each call holds two media sockets; a thousand calls need
		 * more descriptors than the usual soft limit of 1024. */
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	o->state_abs = realpath(o->state_dir, NULL);
	if (!o->state_abs) {
		fprintf(stderr, "%s: state directory %s: %s\n", prog, o->state_dir,
			strerror(errno));
		return EINVAL;
	}
	return 0;
}

/* Frees what daemon_parse_args allocated. */
void daemon_opts_release(struct daemon_opts *o)
{
	free(o->state_abs);
	o->state_abs = NULL;
}

/* Joins the state directory and rel into buf. */
const char *daemon_state_path(const struct daemon_opts *o, const char *rel,
			      char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", o->state_abs ? o->state_abs : o->state_dir,
		 rel);
	return buf;
}

/* Opens directory.db, creating the embedded default on first run. */
int daemon_open_directory(struct dir **out, const struct daemon_opts *o,
			  char **cause)
{
	char path[PATH_MAX];
	char *pin = NULL;
	int err;

	daemon_state_path(o, "directory.db", path, sizeof path);
	err = dir_open(out, path, DIR_OPEN_CREATE, &pin, cause);
	if (err)
		return err;
	if (pin) {
		/* Shown once, on the terminal of whoever created the directory;
		 * only its salted hash is stored. */
		fprintf(stderr,
			"\n  OpenUM created %s with the embedded default directory.\n"
			"  Mailbox 1001 PIN: %s   (shown once; change it with "
			"umctl set-ummailbox --extension 1001 --pin ...)\n\n",
			path, pin);
		memset(pin, 0, strlen(pin));
		free(pin);
	}
	return 0;
}

/* Wall-clock milliseconds since the epoch. */
unsigned long long daemon_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (unsigned long long)ts.tv_sec * 1000ULL +
	       (unsigned long long)ts.tv_nsec / 1000000ULL;
}

struct daemon_signals {
	uv_signal_t sig[3];
	uv_timer_t grace;
	daemon_stop_h *stoph;
	daemon_reload_h *reloadh;
	void *arg;
	bool stopping;
	uint64_t stop_ns;		/* when the first stop signal came */
	int open_handles;
};

static void grace_expired(uv_timer_t *t)
{
	log_error("stop did not finish within %d ms; exiting",
		  DAEMON_STOP_GRACE_MS);
	_exit(1);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct daemon_signals *s = h->data;

	if (signum == SIGHUP) {
		log_notice("SIGHUP: reloading the directory");
		if (s->reloadh)
			s->reloadh(s->arg);
		return;
	}
	if (s->stopping) {
		/* Ctrl-C in a terminal reaches the whole foreground group: the
		 * daemon and a wrapper (scripts/run.sh) that forwards it as
		 * SIGTERM a moment later. That is the same request; only a
		 * signal after DAEMON_REPEAT_MS means "stop now", and cutting a
		 * clean stop short could lose a message still being written. */
		if (uv_hrtime() - s->stop_ns < (uint64_t)DAEMON_REPEAT_MS * 1000000) {
			log_info("%s while stopping: already stopping (another "
				 "after %d ms exits at once)", strsignal(signum),
				 DAEMON_REPEAT_MS);
			return;
		}
		log_warn("second %s: exiting now", strsignal(signum));
		_exit(1);
	}
	s->stopping = true;
	s->stop_ns = uv_hrtime();
	/* The grace timer is unreferenced: it bounds the stop without keeping
	 * the loop alive on its own. */
	uv_timer_start(&s->grace, grace_expired, DAEMON_STOP_GRACE_MS, 0);
	uv_unref((uv_handle_t *)&s->grace);
	s->stoph(s->arg, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* Installs SIGINT, SIGTERM and SIGHUP handlers on the loop. */
int daemon_signals_start(struct daemon_signals **out, struct loop *loop,
			 daemon_stop_h *stoph, daemon_reload_h *reloadh,
			 void *arg)
{
	static const int nums[3] = {SIGINT, SIGTERM, SIGHUP};
	struct daemon_signals *s = calloc(1, sizeof *s);

	if (!s)
		return ENOMEM;
	s->stoph = stoph;
	s->reloadh = reloadh;
	s->arg = arg;
	uv_timer_init(loop_uv(loop), &s->grace);
	s->grace.data = s;
	for (int i = 0; i < 3; i++) {
		uv_signal_init(loop_uv(loop), &s->sig[i]);
		s->sig[i].data = s;
		uv_signal_start(&s->sig[i], on_signal, nums[i]);
	}
	*out = s;
	return 0;
}

static void signals_closed(uv_handle_t *h)
{
	struct daemon_signals *s = h->data;

	if (--s->open_handles == 0)
		free(s);
}

/* Stops watching signals; the grace timer goes too, so the caller should
 * be past anything that could hang. Closing the handles gives the signals
 * back their default action, and a stop signal that comes now (a wrapper
 * forwarding the Ctrl-C the daemon already got) would kill a process that
 * is milliseconds from a clean exit: it is ignored instead. */
void daemon_signals_close(struct daemon_signals *s)
{
	if (!s)
		return;
	s->open_handles = 4;
	for (int i = 0; i < 3; i++)
		uv_close((uv_handle_t *)&s->sig[i], signals_closed);
	uv_close((uv_handle_t *)&s->grace, signals_closed);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
}

/* IPv4Only: IPv4 sockets; IPv6Only: IPv6 sockets; Any: both, each on its
 * own socket. */
void daemon_sipl_config(struct sipl_config *cfg, int dir_af, unsigned port)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->family[SIPL_FAMILY_IPV4] = dir_af != DIR_AF_IPV6ONLY;
	cfg->family[SIPL_FAMILY_IPV6] = dir_af != DIR_AF_IPV4ONLY;
	cfg->port = port;
}

/* Removes OPT SECONDS / OPT=SECONDS (1..max) from argv, storing it in
 * *out; EINVAL with a message on stderr for a bad value. */
int daemon_take_seconds(int *argc, char **argv, const char *opt,
			unsigned max, unsigned *out)
{
	size_t ol = strlen(opt);
	int w = 1;

	for (int r = 1; r < *argc; r++) {
		const char *v = NULL;
		char *end;
		unsigned long s;

		if (!strcmp(argv[r], "--")) {
			while (r < *argc)
				argv[w++] = argv[r++];
			break;
		}
		if (!strcmp(argv[r], opt)) {
			if (r + 1 >= *argc) {
				fprintf(stderr, "umservice: %s needs a number of seconds\n",
					opt);
				return EINVAL;
			}
			v = argv[++r];
		} else if (!strncmp(argv[r], opt, ol) &&
			   argv[r][ol] == '=') {
			v = argv[r] + ol + 1;
		} else {
			argv[w++] = argv[r];
			continue;
		}
		errno = 0;
		s = strtoul(v, &end, 10);
		if (errno || end == v || *end || v[0] == '-' || s < 1 ||
		    s > max) {
			fprintf(stderr, "umservice: %s: \"%s\" is not a number of "
				"seconds (1-%u)\n", opt, v, max);
			return EINVAL;
		}
		*out = (unsigned)s;
	}
	argv[w] = NULL;
	*argc = w;
	return 0;
}
