/* ctl_cmd.h — runs one parsed umctl verb: a directory verb (new, set, get,
 * remove, enable, disable) against an open directory, or a voicemail verb
 * against the open mailbox store, and prints its result. */
#ifndef OPENUM_CTL_CMD_H
#define OPENUM_CTL_CMD_H

#include <stdbool.h>
#include <stdio.h>

#include "common/directory.h"
#include "common/vmstore.h"
#include "umctl/ctl_args.h"

/* Exit statuses of umctl. */
#define CTL_EXIT_OK 0
#define CTL_EXIT_FAIL 1        /* the directory refused or failed */
#define CTL_EXIT_USAGE 2       /* bad usage or a value not allowed */
#define CTL_EXIT_NO_ROUTER 3   /* status: umcallrouter is not running */

int ctl_cmd_run(struct dir *d, const struct ctl_args *a, FILE *out,
		FILE *err, bool *written);
int ctl_cmd_vm_run(struct vmstore *vs, const struct ctl_args *a, FILE *out,
		   FILE *err);

#endif
