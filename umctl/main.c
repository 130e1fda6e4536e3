/* main.c — umctl, the OpenUM administration tool: parses the command line,
 * opens (or first creates) the directory, runs the verb, and tells the
 * running umcallrouter about every change; voicemail verbs open the mailbox
 * store instead. */
#include "common/directory.h"
#include "common/log.h"
#include "common/vmstore.h"
#include "umctl/ctl_args.h"
#include "umctl/ctl_cmd.h"
#include "umctl/ctl_ipc.h"
#include "umctl/ctl_out.h"
#include "umctl/ctl_pop.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir -p with mode 0750 for what it creates. */
static int mkdirs(const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof buf)
		return ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0750) && errno != EEXIST)
			return errno;
		*p = '/';
	}
	if (mkdir(buf, 0750) && errno != EEXIST)
		return errno;
	return 0;
}

static int run_status(const struct ctl_args *a, const char *sock)
{
	Openum__StatusReply *r = NULL;
	char *cause = NULL;
	int err = ctl_ipc_status(sock, &r, &cause);

	if (err == ENOENT || err == ECONNREFUSED) {
		fprintf(stderr, "umctl: umcallrouter is not running (no socket "
				"at %s)\n",
			sock);
		free(cause);
		return CTL_EXIT_NO_ROUTER;
	}
	if (err) {
		fprintf(stderr, "umctl: status: %s\n",
			cause ? cause : strerror(err));
		free(cause);
		return CTL_EXIT_FAIL;
	}
	ctl_out_status(stdout, r, a->json);
	openum__status_reply__free_unpacked(r, NULL);
	return CTL_EXIT_OK;
}

static int notify_router(const struct ctl_args *a, const char *sock)
{
	const struct dir_objtype *ot = dir_objtype_get(a->verb->type);
	unsigned notified = 0;
	char *cause = NULL;
	const char *drop = NULL;
	int err;

	for (size_t i = 0; i < a->nparams; i++) {
		bool on = false;

		if (!strcasecmp(a->params[i].name, "drop-calls") &&
		    dir_parse_bool(a->params[i].value, &on) == 0 && on)
			drop = a->identity;
	}
	err = ctl_ipc_config_changed(sock, ot->noun, drop, &notified, &cause);

	if (err == ENOENT || err == ECONNREFUSED) {
		fprintf(stderr, "umctl: saved; umcallrouter is not running, "
				"the change applies when it starts\n");
		free(cause);
		return CTL_EXIT_OK;
	}
	if (err) {
		fprintf(stderr, "umctl: saved, but umcallrouter did not "
				"confirm the change: %s\n",
			cause ? cause : strerror(err));
		free(cause);
		return CTL_EXIT_FAIL;
	}
	fprintf(stderr, "umctl: saved; umcallrouter applied the change (%u UM "
			"service instance%s notified)\n",
		notified, notified == 1 ? "" : "s");
	return CTL_EXIT_OK;
}

/* get-, export-, remove-voicemail on STATE/voicemail.db (created empty if
 * missing, as umservice would; it may be running: the store is WAL). */
static int run_voicemail(const struct ctl_args *a, const char *state)
{
	struct vmstore *vs = NULL;
	char path[PATH_MAX], *cause = NULL;
	int err, code;

	if ((size_t)snprintf(path, sizeof path, "%s/voicemail.db", state) >=
	    sizeof path) {
		fprintf(stderr, "umctl: --state-dir: path too long\n");
		return CTL_EXIT_USAGE;
	}
	err = mkdirs(state);
	if (err) {
		fprintf(stderr, "umctl: cannot create state directory %s: %s\n",
			state, strerror(err));
		return CTL_EXIT_FAIL;
	}
	err = vmstore_open(&vs, path, &cause);
	if (err) {
		fprintf(stderr, "umctl: %s\n", cause ? cause : strerror(err));
		free(cause);
		return CTL_EXIT_FAIL;
	}
	code = ctl_cmd_vm_run(vs, a, stdout, stderr);
	vmstore_close(vs);
	return code;
}

int main(int argc, char **argv)
{
	struct ctl_args a;
	struct dir *d = NULL;
	const char *state;
	char *cause = NULL, *pin = NULL;
	char dbpath[PATH_MAX], sock[PATH_MAX];
	bool existed, written = false;
	int err, code;

	log_set_process("umctl");
	log_set_level(LOG_LEVEL_WARN);
	err = ctl_args_parse(&a, argc, argv, &cause);
	if (err) {
		fprintf(stderr, "umctl: %s\n", cause ? cause : strerror(err));
		free(cause);
		return CTL_EXIT_USAGE;
	}
	if (a.help) {
		ctl_args_help(stdout, a.verb);
		return CTL_EXIT_OK;
	}
	state = a.state_dir;
	if (!state || !*state)
		state = getenv("OPENUM_STATE_DIR");
	if (!state || !*state)
		state = "var";
	if ((size_t)snprintf(dbpath, sizeof dbpath, "%s/directory.db", state) >=
		    sizeof dbpath ||
	    (size_t)snprintf(sock, sizeof sock, "%s/run/umcallrouter.sock",
			     state) >= sizeof sock) {
		fprintf(stderr, "umctl: --state-dir: path too long\n");
		return CTL_EXIT_USAGE;
	}
	if (a.verb->action == CTL_ACT_STATUS)
		return run_status(&a, sock);
	if (ctl_verb_voicemail(a.verb))
		return run_voicemail(&a, state);
	if (a.verb->action == CTL_ACT_PLAY_ON_PHONE)
		return ctl_pop_run(&a, state, sock);

	err = mkdirs(state);
	if (err) {
		fprintf(stderr, "umctl: cannot create state directory %s: %s\n",
			state, strerror(err));
		return CTL_EXIT_FAIL;
	}
	existed = access(dbpath, F_OK) == 0;
	err = dir_open(&d, dbpath, DIR_OPEN_CREATE, &pin, &cause);
	if (err) {
		fprintf(stderr, "umctl: %s\n", cause ? cause : strerror(err));
		free(cause);
		return CTL_EXIT_FAIL;
	}
	if (pin) {
		fprintf(stderr, "umctl: created %s; mailbox 1001 PIN: %s "
				"(shown once)\n",
			dbpath, pin);
		memset(pin, 0, strlen(pin));
		free(pin);
	} else if (!existed) {
		fprintf(stderr, "umctl: created %s\n", dbpath);
	}
	if (a.verb->action == CTL_ACT_GET && a.verb->type == DIR_OBJ_GATEWAY) {
		/* Gateway health lives in the running UM services; without a
		 * router the directory's view is still shown. */
		Openum__StatusReply *st = NULL;
		char *why = NULL;

		if (ctl_ipc_status(sock, &st, &why) == 0)
			a.status = st;
		free(why);
		code = ctl_cmd_run(d, &a, stdout, stderr, &written);
		if (st)
			openum__status_reply__free_unpacked(st, NULL);
	} else {
		code = ctl_cmd_run(d, &a, stdout, stderr, &written);
	}
	dir_close(d);
	if (code == CTL_EXIT_OK && written)
		code = notify_router(&a, sock);
	return code;
}
