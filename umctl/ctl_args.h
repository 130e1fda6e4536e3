/* ctl_args.h — umctl's verbs and the parsing of its command line into
 * (verb, identity, parameters): a pure function, no I/O, unit-tested. */
#ifndef OPENUM_CTL_ARGS_H
#define OPENUM_CTL_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/directory.h"

enum ctl_action {
	CTL_ACT_NEW,
	CTL_ACT_SET,
	CTL_ACT_GET,
	CTL_ACT_REMOVE,
	CTL_ACT_ENABLE,  /* enable-ummailbox: a "new" that may re-enable */
	CTL_ACT_DISABLE, /* disable-ummailbox */
	CTL_ACT_STATUS,  /* status, get-umactivecalls: asks the router */
	CTL_ACT_VM_GET,    /* get-voicemail: lists voicemail.db */
	CTL_ACT_VM_EXPORT, /* export-voicemail: one message to a WAV file */
	CTL_ACT_VM_REMOVE, /* remove-voicemail: mark deleted, or purge */
	CTL_ACT_PLAY_ON_PHONE, /* play-on-phone: asks the router (ctl_pop.c) */
};

struct ctl_verb {
	const char *name;        /* "new-umipgateway" */
	enum ctl_action action;
	enum dir_obj_type type;  /* unused for CTL_ACT_STATUS and CTL_ACT_VM_* */
	const char *summary;
};

#define CTL_MAX_PARAMS 32

/* A parsed command line. Strings point into argv (or are static). */
struct ctl_args {
	const char *state_dir;         /* --state-dir, NULL if not given */
	bool json;                     /* --json */
	bool help;                     /* --help / -h */
	const struct ctl_verb *verb;   /* NULL only with help */
	const char *identity;          /* --identity / --name on set/get/remove */
	const char *extension;         /* mailbox identity on set/get/disable */
	const char *dialplan;          /* mailbox identity: --umdialplan */
	/* voicemail verbs (voicemail.db, not the directory) */
	const char *vm_mailbox;        /* --mailbox EXT */
	const char *vm_state;          /* --state, checked, canonical */
	long long vm_id;               /* --id, > 0; 0 = not given */
	const char *vm_out;            /* --out FILE.wav */
	bool vm_purge;                 /* --purge */
	/* play-on-phone (with vm_mailbox and dialplan) */
	long long pop_message;         /* --message ID, > 0 */
	const char *pop_to;            /* --to NUMBER, checked */
	unsigned pop_timeout_s;        /* --timeout, 0 = the default */
	struct dir_param params[CTL_MAX_PARAMS]; /* names: canonical params */
	size_t nparams;
	/* Not parsed: set by main.c for get-umipgateway when the router
	 * answered a status request (gateway health); NULL otherwise. */
	const struct Openum__StatusReply *status;
};

int ctl_args_parse(struct ctl_args *out, int argc, char *const argv[],
		   char **cause);
const struct ctl_verb *ctl_verb_find(const char *name);
bool ctl_verb_writes(const struct ctl_verb *v);
bool ctl_verb_voicemail(const struct ctl_verb *v);
void ctl_args_help(FILE *f, const struct ctl_verb *v);

#endif
