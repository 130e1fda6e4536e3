/* ctl_cmd.c — one umctl verb: a directory verb calls the directory's
 * generic new/set/get/remove, a voicemail verb the mailbox store; prints
 * the result (text or JSON) and maps errors to exit statuses. Telling the
 * router is main.c's job. */
#include "umctl/ctl_cmd.h"
#include "umctl/ctl_out.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The identity string the directory expects: a name, or for mailboxes
 * "EXT", "DIALPLAN/EXT" or "DIALPLAN/" (all of a dial plan). */
static const char *identity_of(const struct ctl_args *a, char *buf,
			       size_t cap)
{
	if (a->verb->type != DIR_OBJ_MAILBOX)
		return a->identity;
	if (!a->extension && !a->dialplan)
		return NULL;
	if (!a->dialplan)
		return a->extension;
	snprintf(buf, cap, "%s/%s", a->dialplan,
		 a->extension ? a->extension : "");
	return buf;
}

static int exit_for(int err)
{
	return err == EINVAL ? CTL_EXIT_USAGE : CTL_EXIT_FAIL;
}

static int show(struct dir *d, const struct ctl_args *a, const char *id,
		bool single, FILE *out, FILE *err)
{
	struct ctl_objs objs = {0};
	char *cause = NULL;
	int e;

	e = dir_obj_get(d, a->verb->type, id, ctl_out_collect_h, &objs,
			&cause);
	if (e) {
		fprintf(err, "umctl: %s\n", cause ? cause : strerror(e));
		free(cause);
		ctl_out_objs_free(&objs);
		return exit_for(e);
	}
	if (a->verb->type == DIR_OBJ_GATEWAY)
		ctl_out_add_health(&objs, a->status, ctl_out_now_ms());
	ctl_out_objects(out, &objs, a->json, single);
	ctl_out_objs_free(&objs);
	return CTL_EXIT_OK;
}

/* Runs a directory verb. Prints objects to out and messages to err;
 * *written tells whether the directory changed (so the router should be
 * told). Returns the exit status: 0, 1 (refused/failed) or 2 (bad value). */
int ctl_cmd_run(struct dir *d, const struct ctl_args *a, FILE *out,
		FILE *err, bool *written)
{
	const struct dir_objtype *ot = dir_objtype_get(a->verb->type);
	struct dir_param p[1];
	char idbuf[128], newid[128];
	const char *id = identity_of(a, idbuf, sizeof idbuf);
	char *cause = NULL, *pin = NULL;
	int e = 0;

	*written = false;
	switch (a->verb->action) {
	case CTL_ACT_GET:
		/* one object: a singleton, a named object, a mailbox by
		 * extension; else a list */
		return show(d, a, id,
			    ot->singleton ||
				    (a->verb->type == DIR_OBJ_MAILBOX
					     ? a->extension != NULL
					     : id != NULL),
			    out, err);
	case CTL_ACT_NEW:
	case CTL_ACT_ENABLE:
		e = dir_obj_new(d, a->verb->type, a->params, a->nparams, &pin,
				&cause);
		break;
	case CTL_ACT_SET:
		e = dir_obj_set(d, a->verb->type, id, a->params, a->nparams,
				&cause);
		break;
	case CTL_ACT_DISABLE:
		p[0].name = "enabled";
		p[0].value = "false";
		e = dir_obj_set(d, a->verb->type, id, p, 1, &cause);
		break;
	case CTL_ACT_REMOVE:
		e = dir_obj_remove(d, a->verb->type, id, &cause);
		break;
	default:
		e = EINVAL;
		break;
	}
	if (e) {
		fprintf(err, "umctl: %s\n", cause ? cause : strerror(e));
		free(cause);
		return exit_for(e);
	}
	*written = true;
	if (a->verb->action != CTL_ACT_NEW && a->verb->action != CTL_ACT_ENABLE)
		return CTL_EXIT_OK;

	/* new/enable print what was created, as the cmdlets do */
	if (a->verb->type == DIR_OBJ_MAILBOX) {
		const char *ext = NULL, *dp = NULL;

		for (size_t i = 0; i < a->nparams; i++) {
			if (strcmp(a->params[i].name, "extension") == 0)
				ext = a->params[i].value;
			if (strcmp(a->params[i].name, "umdialplan") == 0)
				dp = a->params[i].value;
		}
		snprintf(newid, sizeof newid, "%s/%s", dp ? dp : "",
			 ext ? ext : "");
		if (pin) {
			fprintf(err, "umctl: mailbox %s PIN: %s (shown once)\n",
				ext ? ext : "?", pin);
			memset(pin, 0, strlen(pin));
			free(pin);
		}
		/* show() below must find exactly this mailbox */
		{
			struct ctl_args one = *a;

			one.extension = ext;
			one.dialplan = dp;
			one.verb = a->verb;
			return show(d, &one, newid, true, out, err);
		}
	}
	for (size_t i = 0; i < a->nparams; i++) {
		if (strcmp(a->params[i].name, "name") == 0)
			snprintf(newid, sizeof newid, "%s",
				 a->params[i].value);
	}
	return show(d, a, newid, true, out, err);
}

/* A store error as umctl says it. */
static int vm_fail(FILE *err, long long id, int e, const char *what)
{
	if (e == ENOENT)
		fprintf(err, "umctl: no voice message with Id %lld\n", id);
	else if (e == EINPROGRESS)
		fprintf(err, "umctl: voice message %lld is still being "
			     "recorded\n", id);
	else
		fprintf(err, "umctl: %s: %s\n", what, strerror(e));
	return CTL_EXIT_FAIL;
}

/* Runs a voicemail verb (get-, export-, remove-voicemail) against the
 * mailbox store. Lists go to out; confirmations and errors to err. Returns
 * the exit status: 0, or 1 when the store refused or failed (unknown id,
 * a message still recording, an unwritable file). */
int ctl_cmd_vm_run(struct vmstore *vs, const struct ctl_args *a, FILE *out,
		   FILE *err)
{
	struct vm_message *m = NULL;
	int16_t *pcm = NULL;
	size_t n = 0, ns = 0;
	int e, code = CTL_EXIT_OK;

	switch (a->verb->action) {
	case CTL_ACT_VM_GET: {
		struct vm_filter f = {.mailbox = a->vm_mailbox,
				      .dialplan = a->dialplan};

		if (a->vm_state &&
		    vmstore_state_parse(a->vm_state, &f.state)) {
			fprintf(err, "umctl: --state: \"%s\" is not "
				     "allowed\n", a->vm_state);
			return CTL_EXIT_USAGE;
		}
		e = vmstore_list(vs, &f, &m, &n);
		if (e)
			return vm_fail(err, 0, e, "cannot list voice messages");
		ctl_out_voicemail(out, m, n, a->json);
		break;
	}
	case CTL_ACT_VM_EXPORT:
		e = vmstore_get_audio(vs, a->vm_id, &pcm, &ns);
		if (e)
			return vm_fail(err, a->vm_id, e, "cannot read message");
		e = vmstore_write_wav(a->vm_out, pcm, ns, VMSTORE_RATE);
		if (e) {
			fprintf(err, "umctl: cannot write %s: %s\n", a->vm_out,
				strerror(e));
			code = CTL_EXIT_FAIL;
			break;
		}
		fprintf(err, "umctl: voice message %lld (%.1f s) written to "
			     "%s\n",
			a->vm_id, (double)ns / VMSTORE_RATE, a->vm_out);
		break;
	case CTL_ACT_VM_REMOVE:
		e = a->vm_purge ? vmstore_purge(vs, a->vm_id)
				: vmstore_delete(vs, a->vm_id);
		if (e)
			return vm_fail(err, a->vm_id, e,
				       "cannot remove message");
		fprintf(err, "umctl: voice message %lld %s\n", a->vm_id,
			a->vm_purge ? "purged from the store"
				    : "marked deleted");
		break;
	default:
		return CTL_EXIT_USAGE;
	}
	vmstore_messages_free(m, n);
	free(pcm);
	return code;
}
