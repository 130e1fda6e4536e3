/* ctl_args.c — the umctl verb table (Exchange cmdlet names) and the parsing
 * of argv into a verb, its identity and its --param values, checked against
 * the directory's field descriptors; also the generated --help text. */
#include "common/cause.h"
#include "umctl/ctl_args.h"
#include "umctl/ctl_pop.h"
#include "common/vmstore.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct ctl_verb verbs[] = {
	{"new-umipgateway", CTL_ACT_NEW, DIR_OBJ_GATEWAY,
	 "Create a UM IP gateway: a SIP peer (PBX, VoIP gateway, SBC) that is trusted."},
	{"set-umipgateway", CTL_ACT_SET, DIR_OBJ_GATEWAY,
	 "Change a UM IP gateway."},
	{"get-umipgateway", CTL_ACT_GET, DIR_OBJ_GATEWAY,
	 "Show one UM IP gateway (--identity) or all."},
	{"remove-umipgateway", CTL_ACT_REMOVE, DIR_OBJ_GATEWAY,
	 "Remove a UM IP gateway no hunt group links any more."},
	{"new-umdialplan", CTL_ACT_NEW, DIR_OBJ_DIALPLAN,
	 "Create a UM dial plan."},
	{"set-umdialplan", CTL_ACT_SET, DIR_OBJ_DIALPLAN,
	 "Change a UM dial plan."},
	{"get-umdialplan", CTL_ACT_GET, DIR_OBJ_DIALPLAN,
	 "Show one UM dial plan (--identity) or all."},
	{"remove-umdialplan", CTL_ACT_REMOVE, DIR_OBJ_DIALPLAN,
	 "Remove a UM dial plan no hunt group or mailbox uses."},
	{"new-umhuntgroup", CTL_ACT_NEW, DIR_OBJ_HUNTGROUP,
	 "Link a UM IP gateway to a UM dial plan through a pilot number."},
	{"get-umhuntgroup", CTL_ACT_GET, DIR_OBJ_HUNTGROUP,
	 "Show one UM hunt group (--identity) or all."},
	{"remove-umhuntgroup", CTL_ACT_REMOVE, DIR_OBJ_HUNTGROUP,
	 "Remove a UM hunt group."},
	{"new-ummailboxpolicy", CTL_ACT_NEW, DIR_OBJ_POLICY,
	 "Create a UM mailbox policy (PIN rules, greeting length)."},
	{"set-ummailboxpolicy", CTL_ACT_SET, DIR_OBJ_POLICY,
	 "Change a UM mailbox policy."},
	{"get-ummailboxpolicy", CTL_ACT_GET, DIR_OBJ_POLICY,
	 "Show one UM mailbox policy (--identity) or all."},
	{"remove-ummailboxpolicy", CTL_ACT_REMOVE, DIR_OBJ_POLICY,
	 "Remove a UM mailbox policy no mailbox uses."},
	{"enable-ummailbox", CTL_ACT_ENABLE, DIR_OBJ_MAILBOX,
	 "Enable a UM mailbox (create it, or enable a disabled one again); "
	 "without --pin a PIN is generated and shown once."},
	{"disable-ummailbox", CTL_ACT_DISABLE, DIR_OBJ_MAILBOX,
	 "Disable a UM mailbox (it keeps its extension and PIN state)."},
	{"set-ummailbox", CTL_ACT_SET, DIR_OBJ_MAILBOX,
	 "Change a UM mailbox: display name, policy, PIN, lockout."},
	{"remove-ummailbox", CTL_ACT_REMOVE, DIR_OBJ_MAILBOX,
	 "Delete a UM mailbox and its PIN history (disable-ummailbox keeps "
	 "them)."},
	{"get-ummailbox", CTL_ACT_GET, DIR_OBJ_MAILBOX,
	 "Show one UM mailbox (--extension) or all (of --umdialplan)."},
	{"set-umservice", CTL_ACT_SET, DIR_OBJ_UMSERVICE,
	 "Change the UM service settings (all umservice instances)."},
	{"get-umservice", CTL_ACT_GET, DIR_OBJ_UMSERVICE,
	 "Show the UM service settings."},
	{"set-umcallroutersettings", CTL_ACT_SET, DIR_OBJ_CALLROUTER,
	 "Change the UM call router settings."},
	{"get-umcallroutersettings", CTL_ACT_GET, DIR_OBJ_CALLROUTER,
	 "Show the UM call router settings."},
	{"status", CTL_ACT_STATUS, DIR_OBJ_COUNT,
	 "Show the running umcallrouter and its UM service instances."},
	{"get-umactivecalls", CTL_ACT_STATUS, DIR_OBJ_COUNT,
	 "Same as status (active calls per UM service instance)."},
	{"get-voicemail", CTL_ACT_VM_GET, DIR_OBJ_COUNT,
	 "List voice messages (all, or of --mailbox, --umdialplan, --state)."},
	{"export-voicemail", CTL_ACT_VM_EXPORT, DIR_OBJ_COUNT,
	 "Write one voice message (--id) to a WAV file (--out)."},
	{"remove-voicemail", CTL_ACT_VM_REMOVE, DIR_OBJ_COUNT,
	 "Mark a voice message (--id) deleted, or --purge it from the store."},
	{"play-on-phone", CTL_ACT_PLAY_ON_PHONE, DIR_OBJ_COUNT,
	 "Call a number (--to) and play a voice message (--mailbox, --message) "
	 "to it."},
};

/* The parameters of the voicemail verbs (they act on voicemail.db, not on
 * directory objects, so they have no directory field descriptors). */
#define VM_GET (1u << CTL_ACT_VM_GET)
#define VM_EXPORT (1u << CTL_ACT_VM_EXPORT)
#define VM_REMOVE (1u << CTL_ACT_VM_REMOVE)

enum vm_param_id { VMP_MAILBOX, VMP_DIALPLAN, VMP_STATE, VMP_ID, VMP_OUT,
		   VMP_PURGE };

static const struct vm_param {
	enum vm_param_id id;
	const char *name;
	unsigned verbs;        /* VM_* bits */
	bool is_switch;
	const char *metavar;
	const char *help;
} vm_params[] = {
	{VMP_MAILBOX, "mailbox", VM_GET, false, "EXT",
	 "only the messages of this mailbox extension"},
	{VMP_DIALPLAN, "umdialplan", VM_GET, false, "NAME",
	 "only the messages of mailboxes in this UM dial plan"},
	{VMP_STATE, "state", VM_GET, false, "new|saved|deleted|recording",
	 "only the messages in this state"},
	{VMP_ID, "id", VM_EXPORT | VM_REMOVE, false, "ID",
	 "the message's Id, as get-voicemail shows it (required)"},
	{VMP_OUT, "out", VM_EXPORT, false, "FILE.wav",
	 "the WAV file to write (16-bit PCM, mono, 8000 Hz) (required)"},
	{VMP_PURGE, "purge", VM_REMOVE, true, "",
	 "remove the message and its audio from the store for good, "
	 "instead of marking it deleted"},
};

#define NVM_PARAMS (sizeof vm_params / sizeof vm_params[0])

#define NVERBS (sizeof verbs / sizeof verbs[0])

/* The verb of this name (case-insensitive, as PowerShell), or NULL. */
const struct ctl_verb *ctl_verb_find(const char *name)
{
	for (size_t i = 0; name && i < NVERBS; i++) {
		if (strcasecmp(verbs[i].name, name) == 0)
			return &verbs[i];
	}
	return NULL;
}

/* Whether a verb acts on the voicemail store (STATE_DIR/voicemail.db). */
bool ctl_verb_voicemail(const struct ctl_verb *v)
{
	return v && (v->action == CTL_ACT_VM_GET ||
		     v->action == CTL_ACT_VM_EXPORT ||
		     v->action == CTL_ACT_VM_REMOVE);
}

/* Whether a verb changes the directory (and so the router is told). */
bool ctl_verb_writes(const struct ctl_verb *v)
{
	return v && v->action != CTL_ACT_GET && v->action != CTL_ACT_STATUS &&
	       v->action != CTL_ACT_PLAY_ON_PHONE && !ctl_verb_voicemail(v);
}

/* Which identity params a verb takes: 0 none, 1 --identity/--name,
 * 2 mailbox --extension/--umdialplan. */
static int identity_style(const struct ctl_verb *v)
{
	const struct dir_objtype *ot = dir_objtype_get(v->type);

	if (v->action == CTL_ACT_STATUS || ctl_verb_voicemail(v) || !ot ||
	    v->action == CTL_ACT_PLAY_ON_PHONE ||
	    ot->singleton ||
	    v->action == CTL_ACT_NEW || v->action == CTL_ACT_ENABLE)
		return 0;
	return v->type == DIR_OBJ_MAILBOX ? 2 : 1;
}

/* The field a verb accepts under this name, or NULL. */
static const struct dir_field *verb_field(const struct ctl_verb *v,
					  const char *name)
{
	const struct dir_field *f;
	unsigned need;

	switch (v->action) {
	case CTL_ACT_NEW:
	case CTL_ACT_ENABLE:
		need = DIR_FF_NEW;
		break;
	case CTL_ACT_SET:
		need = DIR_FF_SET;
		break;
	default:
		return NULL;
	}
	f = dir_field_find(v->type, name);
	return f && (f->flags & need) ? f : NULL;
}

static bool name_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/* One parameter of a voicemail verb: --name value, --name=value, or a
 * switch alone (--purge, or --purge=true|false). Checks the value. */
static int vm_param(struct ctl_args *a, unsigned *seen, const char *name,
		    size_t len, const char *value, int argc,
		    char *const argv[], int *i, char **cause)
{
	const struct vm_param *p = NULL;
	char *end;

	for (size_t k = 0; k < NVM_PARAMS; k++) {
		if ((vm_params[k].verbs & (1u << a->verb->action)) &&
		    name_is(name, len, vm_params[k].name))
			p = &vm_params[k];
	}
	if (!p) {
		cause_first(cause, "--%.*s: not a parameter of %s (umctl %s "
				 "--help lists them)",
			  (int)len, name, a->verb->name, a->verb->name);
		return EINVAL;
	}
	if (*seen & (1u << p->id)) {
		cause_first(cause, "--%s: given twice", p->name);
		return EINVAL;
	}
	*seen |= 1u << p->id;
	if (p->is_switch) {
		bool b = true;

		if (value && dir_parse_bool(value, &b)) {
			cause_first(cause, "--%s: \"%s\" is not true or false",
				  p->name, value);
			return EINVAL;
		}
		a->vm_purge = b;
		return 0;
	}
	if (!value && *i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0)
		value = argv[++*i];
	if (!value || !*value) {
		cause_first(cause, "--%s: missing value (%s)", p->name,
			  p->metavar);
		return EINVAL;
	}
	switch (p->id) {
	case VMP_MAILBOX:
		a->vm_mailbox = value;
		break;
	case VMP_DIALPLAN:
		a->dialplan = value;
		break;
	case VMP_STATE: {
		enum vm_state st;

		if (vmstore_state_parse(value, &st)) {
			cause_first(cause, "--state: \"%s\" is not allowed "
					 "(new, saved, deleted or recording)",
				  value);
			return EINVAL;
		}
		a->vm_state = vmstore_state_name(st);
		break;
	}
	case VMP_ID:
		errno = 0;
		a->vm_id = strtoll(value, &end, 10);
		if (errno || *end || a->vm_id <= 0 || value[0] < '0' ||
		    value[0] > '9') {
			a->vm_id = 0;
			cause_first(cause, "--id: \"%s\" is not a message id "
					 "(a positive number)",
				  value);
			return EINVAL;
		}
		break;
	case VMP_OUT:
		a->vm_out = value;
		break;
	case VMP_PURGE:
		break;
	}
	return 0;
}

/* Parses `umctl [--state-dir DIR] [--json] [--help] VERB [--param value |
 * --param=value ...]`. Global options may appear anywhere; parameters come
 * after the verb and must be ones the verb takes (by umctl spelling or
 * Exchange label); a boolean parameter given alone means true. On error
 * (EINVAL) *cause names the parameter and what is allowed. */
int ctl_args_parse(struct ctl_args *out, int argc, char *const argv[],
		   char **cause)
{
	struct ctl_args a;
	bool seen_ident = false, seen_ext = false, seen_dp = false;
	unsigned seen_vm = 0, seen_pop = 0;

	memset(&a, 0, sizeof a);
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *name, *eq, *value = NULL;
		const struct dir_field *f = NULL;
		size_t len;
		int style;

		if (strcmp(arg, "-h") == 0 || strcmp(arg, "-?") == 0) {
			a.help = true;
			continue;
		}
		if (arg[0] != '-' || arg[1] != '-' || !arg[2]) {
			if (a.verb || arg[0] == '-') {
				cause_first(cause, "unexpected argument \"%s\"%s",
					  arg,
					  a.verb ? " (parameters are --name "
						   "value)"
						 : "");
				return EINVAL;
			}
			a.verb = ctl_verb_find(arg);
			if (!a.verb) {
				cause_first(cause, "unknown verb \"%s\" (umctl "
						 "--help lists them)",
					  arg);
				return EINVAL;
			}
			continue;
		}
		name = arg + 2;
		eq = strchr(name, '=');
		len = eq ? (size_t)(eq - name) : strlen(name);
		if (eq)
			value = eq + 1;

		/* global options */
		if (name_is(name, len, "json")) {
			a.json = true;
			continue;
		}
		if (name_is(name, len, "help")) {
			a.help = true;
			continue;
		}
		if (name_is(name, len, "state-dir")) {
			if (!value && i + 1 < argc)
				value = argv[++i];
			if (!value || !*value) {
				cause_first(cause, "--state-dir: missing value "
						 "(a directory)");
				return EINVAL;
			}
			a.state_dir = value;
			continue;
		}
		if (!a.verb) {
			cause_first(cause, "--%.*s: unknown option before the "
					 "verb (umctl --help)",
				  (int)len, name);
			return EINVAL;
		}

		if (a.verb->action == CTL_ACT_PLAY_ON_PHONE) {
			int e = ctl_pop_param(&a, &seen_pop, name, len, value,
					      argc, argv, &i, cause);

			if (e)
				return e;
			continue;
		}
		if (ctl_verb_voicemail(a.verb)) {
			int e = vm_param(&a, &seen_vm, name, len, value, argc,
					 argv, &i, cause);

			if (e)
				return e;
			continue;
		}

		/* identity */
		style = identity_style(a.verb);
		{
			char pname[64];
			const char **slot = NULL;
			bool *seen = NULL;

			snprintf(pname, sizeof pname, "%.*s", (int)len, name);
			if (style == 1 && (name_is(name, len, "identity") ||
					   name_is(name, len, "name"))) {
				slot = &a.identity;
				seen = &seen_ident;
			} else if (style == 2 &&
				   name_is(name, len, "extension")) {
				slot = &a.extension;
				seen = &seen_ext;
			} else if (style == 2 &&
				   (name_is(name, len, "umdialplan") ||
				    name_is(name, len, "dialplan"))) {
				slot = &a.dialplan;
				seen = &seen_dp;
			}
			if (slot) {
				if (*seen) {
					cause_first(cause, "--%s: given twice",
						  pname);
					return EINVAL;
				}
				if (!value && i + 1 < argc &&
				    strncmp(argv[i + 1], "--", 2) != 0)
					value = argv[++i];
				if (!value || !*value) {
					cause_first(cause, "--%s: missing value",
						  pname);
					return EINVAL;
				}
				*slot = value;
				*seen = true;
				continue;
			}
			f = verb_field(a.verb, pname);
			if (!f) {
				cause_first(cause, "--%s: not a parameter of %s "
						 "(umctl %s --help lists them)",
					  pname, a.verb->name, a.verb->name);
				return EINVAL;
			}
		}
		if (!value && i + 1 < argc &&
		    strncmp(argv[i + 1], "--", 2) != 0)
			value = argv[++i];
		if (!value) {
			if (f->kind == DIR_KIND_BOOL ||
			    f->kind == DIR_KIND_ACTION) {
				value = "true"; /* a switch */
			} else {
				cause_first(cause, "--%s: missing value",
					  f->param);
				return EINVAL;
			}
		}
		for (size_t k = 0; k < a.nparams; k++) {
			if (strcmp(a.params[k].name, f->param) == 0) {
				cause_first(cause, "--%s: given twice",
					  f->param);
				return EINVAL;
			}
		}
		if (a.nparams == CTL_MAX_PARAMS) {
			cause_first(cause, "too many parameters");
			return EINVAL;
		}
		a.params[a.nparams].name = f->param;
		a.params[a.nparams].value = value;
		a.nparams++;
	}
	if (a.help) {
		*out = a;
		return 0;
	}
	if (!a.verb) {
		cause_first(cause, "no verb given (umctl --help lists them)");
		return EINVAL;
	}
	if ((a.verb->action == CTL_ACT_VM_EXPORT ||
	     a.verb->action == CTL_ACT_VM_REMOVE) && !a.vm_id) {
		cause_first(cause, "--id is required: the message's Id "
				 "(umctl get-voicemail lists them)");
		return EINVAL;
	}
	if (a.verb->action == CTL_ACT_VM_EXPORT && !a.vm_out) {
		cause_first(cause, "--out is required: the WAV file to write");
		return EINVAL;
	}
	if (ctl_verb_voicemail(a.verb)) {
		*out = a;
		return 0;
	}
	if (a.verb->action == CTL_ACT_PLAY_ON_PHONE) {
		int e = ctl_pop_check(&a, cause);

		if (!e)
			*out = a;
		return e;
	}
	if ((a.verb->action == CTL_ACT_SET ||
	     a.verb->action == CTL_ACT_REMOVE) &&
	    identity_style(a.verb) == 1 && !a.identity) {
		cause_first(cause, "--identity is required: the name of the %s",
			  dir_objtype_get(a.verb->type)->title);
		return EINVAL;
	}
	if ((a.verb->action == CTL_ACT_SET ||
	     a.verb->action == CTL_ACT_DISABLE ||
	     a.verb->action == CTL_ACT_REMOVE) &&
	    identity_style(a.verb) == 2 && !a.extension) {
		cause_first(cause, "--extension is required: the mailbox "
				 "extension (and --umdialplan if it exists "
				 "in several)");
		return EINVAL;
	}
	if (a.verb->action == CTL_ACT_SET && a.nparams == 0) {
		cause_first(cause, "nothing to change (umctl %s --help lists "
				 "the parameters)",
			  a.verb->name);
		return EINVAL;
	}
	*out = a;
	return 0;
}

/* A short placeholder for a field's value in the help text. */
static void metavar(const struct dir_field *f, char *buf, size_t cap)
{
	size_t o = 0;

	switch (f->kind) {
	case DIR_KIND_ENUM:
		for (int i = 0; f->values[i]; i++)
			o += (size_t)snprintf(buf + o, cap - o, "%s%s",
					      i ? "|" : "", f->values[i]);
		break;
	case DIR_KIND_INT:
		snprintf(buf, cap, "%ld-%ld", f->min, f->max);
		break;
	case DIR_KIND_BOOL:
		snprintf(buf, cap, "[true|false]");
		break;
	case DIR_KIND_ACTION:
		buf[0] = '\0';
		break;
	case DIR_KIND_LIST:
		snprintf(buf, cap, "A,B,...");
		break;
	case DIR_KIND_SECRET:
		snprintf(buf, cap, "DIGITS");
		break;
	default:
		snprintf(buf, cap, "%s", strcmp(f->param, "name") == 0
						 ? "NAME"
						 : "VALUE");
		break;
	}
}

static void help_param(FILE *f, const struct dir_field *fd, bool is_new)
{
	bool required = is_new && (fd->flags & DIR_FF_REQUIRED);
	char mv[128], line[256];

	metavar(fd, mv, sizeof mv);
	snprintf(line, sizeof line, "--%s%s%s", fd->param, *mv ? " " : "", mv);
	fprintf(f, "  %-44s %s%s\n", line, fd->label,
		required ? " (required)" : "");
	fprintf(f, "        %s", fd->help ? fd->help : "");
	if (fd->allowed && fd->kind != DIR_KIND_ENUM &&
	    fd->kind != DIR_KIND_INT)
		fprintf(f, "; %s", fd->allowed);
	if (is_new && fd->def &&
	    (fd->def[0] || fd->kind == DIR_KIND_STRING ||
			fd->kind == DIR_KIND_LIST))
		fprintf(f, "; default %s", fd->def[0] ? fd->def : "empty");
	fputc('\n', f);
}

/* Usage and parameters of a voicemail verb. */
static void help_voicemail(FILE *f, const struct ctl_verb *v)
{
	unsigned bit = 1u << v->action;
	char line[128];

	fprintf(f, "usage: umctl [--state-dir DIR] [--json] %s", v->name);
	for (size_t i = 0; i < NVM_PARAMS; i++) {
		const struct vm_param *p = &vm_params[i];
		bool req = p->id == VMP_ID || p->id == VMP_OUT;

		if (!(p->verbs & bit))
			continue;
		fprintf(f, " %s--%s%s%s%s", req ? "" : "[", p->name,
			*p->metavar ? " " : "",
			p->id == VMP_STATE ? "STATE" : p->metavar,
			req ? "" : "]");
	}
	fprintf(f, "\n\n%s\nThe store is DIR/voicemail.db.\n\nParameters:\n",
		v->summary);
	for (size_t i = 0; i < NVM_PARAMS; i++) {
		const struct vm_param *p = &vm_params[i];

		if (!(p->verbs & bit))
			continue;
		snprintf(line, sizeof line, "--%s%s%s", p->name,
			 *p->metavar ? " " : "", p->metavar);
		fprintf(f, "  %s\n        %s\n", line, p->help);
	}
	if (v->action == CTL_ACT_VM_GET)
		fprintf(f, "\nShown: Id Mailbox Caller Received (local time) "
			   "Duration (s) State Recovered;\nwith --json: Id "
			   "Mailbox DialPlan CallerNumber CallerName CallId "
			   "ReceivedUtc\nDurationMs State Urgent Recovered.\n");
	if (v->action == CTL_ACT_VM_EXPORT)
		fprintf(f, "\nA message still being recorded cannot be "
			   "exported yet.\n");
}

/* Prints the tool's usage (v NULL) or one verb's parameters, with what each
 * allows and its default, from the directory's field descriptors. */
void ctl_args_help(FILE *f, const struct ctl_verb *v)
{
	const struct dir_objtype *ot;
	int style;

	if (!v) {
		fprintf(f, "usage: umctl [--state-dir DIR] [--json] VERB "
			   "[--param value ...]\n\n"
			   "The OpenUM administration tool: edits the "
			   "directory (DIR/directory.db; DIR is\n"
			   "--state-dir, else $OPENUM_STATE_DIR, else var) "
			   "and tells the running umcallrouter.\n"
			   "--json prints JSON for scripts. umctl VERB "
			   "--help lists a verb's parameters.\n\nVerbs:\n");
		for (size_t i = 0; i < NVERBS; i++)
			fprintf(f, "  %-26s %s\n", verbs[i].name,
				verbs[i].summary);
		fprintf(f, "\nThe voicemail verbs read and change the "
			   "mailbox store, DIR/voicemail.db.\n");
		fprintf(f, "\nExit status: 0 done, 1 the directory or the "
			   "store refused or failed (play-on-phone: not "
			   "played),\n2 bad usage or value, 3 umcallrouter "
			   "not running (status, play-on-phone).\n");
		return;
	}
	if (ctl_verb_voicemail(v)) {
		help_voicemail(f, v);
		return;
	}
	if (v->action == CTL_ACT_PLAY_ON_PHONE) {
		ctl_pop_help(f, v);
		return;
	}
	fprintf(f, "usage: umctl [--state-dir DIR] [--json] %s", v->name);
	style = identity_style(v);
	if (style == 1)
		fprintf(f, v->action == CTL_ACT_GET ? " [--identity NAME]"
						    : " --identity NAME");
	else if (style == 2)
		fprintf(f, v->action == CTL_ACT_GET
				   ? " [--extension EXT] [--umdialplan NAME]"
				   : " --extension EXT [--umdialplan NAME]");
	if (v->action == CTL_ACT_NEW || v->action == CTL_ACT_ENABLE ||
	    v->action == CTL_ACT_SET)
		fprintf(f, " [--param value ...]");
	fprintf(f, "\n\n%s\n", v->summary);
	if (v->action == CTL_ACT_STATUS)
		return;
	ot = dir_objtype_get(v->type);
	if (style == 1)
		fprintf(f, "\nIdentity:\n  --identity NAME (or --name NAME)"
			   "             the %s\n",
			ot->title);
	else if (style == 2)
		fprintf(f, "\nIdentity:\n  --extension EXT [--umdialplan NAME]"
			   "          the mailbox (the dial plan is needed "
			   "when the\n        extension exists in several)\n");
	if (v->action == CTL_ACT_NEW || v->action == CTL_ACT_ENABLE ||
	    v->action == CTL_ACT_SET) {
		unsigned need = v->action == CTL_ACT_SET ? DIR_FF_SET
							 : DIR_FF_NEW;

		fprintf(f, "\nParameters:\n");
		for (size_t i = 0; i < ot->nfields; i++) {
			const struct dir_field *fd = &ot->fields[i];

			if (fd->flags & need)
				help_param(f, fd, need == DIR_FF_NEW);
		}
		fprintf(f, "\nValues: booleans are true/false/$true/$false/"
			   "1/0/yes/no; enumerations are\nmatched without "
			   "regard to case. Parameters may also be spelled "
			   "as their\nExchange names (--IPAddressFamily).\n");
	}
	if (v->action == CTL_ACT_SET)
		fprintf(f, "Parameters not given keep their values.\n");
	if (v->action == CTL_ACT_GET) {
		fprintf(f, "\nShown:");
		for (size_t i = 0; i < ot->nfields; i++) {
			if (ot->fields[i].flags & DIR_FF_SHOW)
				fprintf(f, " %s", ot->fields[i].label);
		}
		fputc('\n', f);
	}
}
