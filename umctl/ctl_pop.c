/* ctl_pop.c — umctl play-on-phone; see ctl_pop.h.
 *
 *   umctl play-on-phone --mailbox 1001 [--dial-plan NAME] --message 7
 *                       --to +14255550123 [--timeout SECONDS]
 *
 * The router picks a UM service instance, which places the call; umctl
 * waits for the result (by default: connecting, the ring time, the
 * message's length as voicemail.db has it, and a margin). */
#include "umctl/ctl_pop.h"
#include "common/cause.h"
#include "common/playonphone.h"
#include "common/vmstore.h"
#include "umctl/ctl_cmd.h"
#include "umctl/ctl_ipc.h"
#include "umctl/ctl_out.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum pop_param_id { PP_MAILBOX, PP_DIALPLAN, PP_MESSAGE, PP_TO, PP_TIMEOUT };

static const struct pop_param {
	enum pop_param_id id;
	const char *name, *alias, *alias2;
	const char *metavar, *help;
} params[] = {
	{PP_MAILBOX, "mailbox", "extension", NULL, "EXT",
	 "the mailbox whose message plays (required)"},
	{PP_DIALPLAN, "dial-plan", "umdialplan", "dialplan", "NAME",
	 "the mailbox's UM dial plan (needed when the extension is in "
	 "several)"},
	{PP_MESSAGE, "message", "id", NULL, "ID",
	 "the message's Id, as get-voicemail shows it (required)"},
	{PP_TO, "to", NULL, NULL, "NUMBER",
	 "the number to call: digits with an optional leading +, at most 32 "
	 "(required)"},
	{PP_TIMEOUT, "timeout", NULL, NULL, "SECONDS",
	 "how long to wait for the result (1-7200; default: 10 s to connect, "
	 "the ring time (30 s), the message's length and 15 s)"},
};

#define NPARAMS (sizeof params / sizeof params[0])

static bool is(const char *name, size_t len, const char *want)
{
	return want && strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/* See the header. */
int ctl_pop_param(struct ctl_args *a, unsigned *seen, const char *name,
		  size_t len, const char *value, int argc, char *const argv[],
		  int *i, char **cause)
{
	const struct pop_param *p = NULL;
	const char *why = NULL;
	char *end;
	long long v;

	for (size_t k = 0; k < NPARAMS; k++) {
		if (is(name, len, params[k].name) || is(name, len, params[k].alias) ||
		    is(name, len, params[k].alias2))
			p = &params[k];
	}
	if (!p) {
		cause_first(cause, "--%.*s: not a parameter of play-on-phone (umctl "
			    "play-on-phone --help lists them)", (int)len, name);
		return EINVAL;
	}
	if (*seen & (1u << p->id)) {
		cause_first(cause, "--%s: given twice", p->name);
		return EINVAL;
	}
	*seen |= 1u << p->id;
	if (!value && *i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0)
		value = argv[++*i];
	if (!value || !*value) {
		cause_first(cause, "--%s: missing value (%s)", p->name, p->metavar);
		return EINVAL;
	}
	switch (p->id) {
	case PP_MAILBOX:
		if (!pop_mailbox_ok(value)) {
			cause_first(cause, "--mailbox: \"%s\" is not an extension "
				    "(1-%d digits)", value, POP_MAILBOX_MAX);
			return EINVAL;
		}
		a->vm_mailbox = value;
		break;
	case PP_DIALPLAN:
		if (!pop_dialplan_ok(value)) {
			cause_first(cause, "--dial-plan: not a dial plan name (at "
				    "most %d printable characters)", DIR_NAME_MAX);
			return EINVAL;
		}
		a->dialplan = value;
		break;
	case PP_MESSAGE:
		errno = 0;
		v = strtoll(value, &end, 10);
		if (errno || *end || v <= 0 || value[0] < '0' || value[0] > '9') {
			cause_first(cause, "--message: \"%s\" is not a message id "
				    "(a positive number)", value);
			return EINVAL;
		}
		a->pop_message = v;
		break;
	case PP_TO:
		if (!pop_number_ok(value, &why)) {
			cause_first(cause, "--to: \"%.40s\" is not a number to "
				    "call: %s", value, why);
			return EINVAL;
		}
		a->pop_to = value;
		break;
	case PP_TIMEOUT:
		errno = 0;
		v = strtoll(value, &end, 10);
		if (errno || *end || v < 1 || v > POP_TIMEOUT_MAX_S ||
		    value[0] < '0' || value[0] > '9') {
			cause_first(cause, "--timeout: \"%s\" is not a number of "
				    "seconds (1-%u)", value, POP_TIMEOUT_MAX_S);
			return EINVAL;
		}
		a->pop_timeout_s = (unsigned)v;
		break;
	}
	return 0;
}

/* See the header. */
int ctl_pop_check(const struct ctl_args *a, char **cause)
{
	if (!a->vm_mailbox) {
		cause_first(cause, "--mailbox is required: the mailbox extension");
		return EINVAL;
	}
	if (!a->pop_message) {
		cause_first(cause, "--message is required: the message's Id (umctl "
			    "get-voicemail lists them)");
		return EINVAL;
	}
	if (!a->pop_to) {
		cause_first(cause, "--to is required: the number to call");
		return EINVAL;
	}
	return 0;
}

/* See the header. */
void ctl_pop_help(FILE *f, const struct ctl_verb *v)
{
	char line[64];

	fprintf(f, "usage: umctl [--state-dir DIR] [--json] %s --mailbox EXT "
		"[--dial-plan NAME]\n       --message ID --to NUMBER "
		"[--timeout SECONDS]\n\n%s\n", v->name, v->summary);
	fprintf(f, "A UM service instance calls NUMBER through an Enabled UM IP "
		"gateway with\nOutcallsAllowed of the mailbox's dial plan (linked "
		"by a hunt group), plays\nthe message when the phone answers and "
		"hangs up. umctl waits for the outcome.\n\nParameters:\n");
	for (size_t i = 0; i < NPARAMS; i++) {
		snprintf(line, sizeof line, "--%s %s", params[i].name,
			 params[i].metavar);
		fprintf(f, "  %s\n        %s\n", line, params[i].help);
	}
	fprintf(f, "\nExit status: 0 played to the end, 1 not played (the "
		"reason is printed), 2 bad\nusage, 3 umcallrouter not running.\n");
}

/* See the header. */
void ctl_pop_print(FILE *out, FILE *err, const Openum__PlayOnPhoneResult *r,
		   const struct ctl_args *a)
{
	char line[800];

	if (a->json) {
		fprintf(out, "{\"Ok\": %s, \"Reason\": ", r->ok ? "true" : "false");
		ctl_out_json_string(out, r->reason ? r->reason : "");
		fprintf(out, ", \"SipStatus\": %u, \"Gateway\": ", r->sip_status);
		ctl_out_json_string(out, r->gateway ? r->gateway : "");
		fprintf(out, ", \"Address\": ");
		ctl_out_json_string(out, r->address ? r->address : "");
		fprintf(out, ", \"PlayedMs\": %u, \"Instance\": ", r->played_ms);
		ctl_out_json_string(out, r->instance_id ? r->instance_id : "");
		fprintf(out, ", \"Mailbox\": ");
		ctl_out_json_string(out, a->vm_mailbox ? a->vm_mailbox : "");
		fprintf(out, ", \"MessageId\": %lld, \"To\": ", a->pop_message);
		ctl_out_json_string(out, a->pop_to ? a->pop_to : "");
		fprintf(out, "}\n");
		return;
	}
	pop_result_text(line, sizeof line, r, a->vm_mailbox, a->pop_message,
			a->pop_to);
	if (r->ok)
		fprintf(out, "%s\n", line);
	else
		fprintf(err, "umctl: play-on-phone: %s\n", line);
}

/* The message's length from voicemail.db, or -1 when it cannot be read
 * here (the UM service decides whether the message exists). */
static int64_t message_ms(const char *state, long long id)
{
	char path[PATH_MAX];
	struct vmstore *vs = NULL;
	struct vm_message *m = NULL;
	int64_t ms = -1;

	if ((size_t)snprintf(path, sizeof path, "%s/voicemail.db", state) >=
		    sizeof path ||
	    access(path, R_OK) != 0 || vmstore_open(&vs, path, NULL) != 0)
		return -1;
	if (vmstore_get(vs, id, &m) == 0)
		ms = m->duration_ms;
	vmstore_messages_free(m, 1);
	vmstore_close(vs);
	return ms;
}

/* See the header. */
int ctl_pop_run(const struct ctl_args *a, const char *state, const char *sock)
{
	Openum__PlayOnPhoneRequest req = OPENUM__PLAY_ON_PHONE_REQUEST__INIT;
	Openum__PlayOnPhoneResult *r = NULL;
	unsigned timeout_s = a->pop_timeout_s;
	char *cause = NULL;
	int err, code;

	if (!timeout_s)
		timeout_s = pop_default_timeout_s(message_ms(state, a->pop_message),
						  POP_RING_TIMEOUT_S);
	req.mailbox = (char *)a->vm_mailbox;
	req.dial_plan = (char *)(a->dialplan ? a->dialplan : "");
	req.message_id = a->pop_message;
	req.to = (char *)a->pop_to;
	err = ctl_ipc_play_on_phone(sock, &req, (int)timeout_s * 1000, &r, &cause);
	if (err == ENOENT || err == ECONNREFUSED) {
		fprintf(stderr, "umctl: umcallrouter is not running (no socket at "
			"%s)\n", sock);
		free(cause);
		return CTL_EXIT_NO_ROUTER;
	}
	if (err == ETIMEDOUT) {
		fprintf(stderr, "umctl: play-on-phone: no result within %u s (the "
			"call may still be going on; --timeout waits longer)\n",
			timeout_s);
		free(cause);
		return CTL_EXIT_FAIL;
	}
	if (err) {
		fprintf(stderr, "umctl: play-on-phone: %s\n",
			cause ? cause : strerror(err));
		free(cause);
		return CTL_EXIT_FAIL;
	}
	ctl_pop_print(stdout, stderr, r, a);
	code = r->ok ? CTL_EXIT_OK : CTL_EXIT_FAIL;
	openum__play_on_phone_result__free_unpacked(r, NULL);
	return code;
}
