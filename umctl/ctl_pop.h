/* ctl_pop.h — umctl play-on-phone: its parameters (parsed into struct
 * ctl_args by ctl_args_parse through ctl_pop_param), its help, and running
 * it: one request to the router, a bounded wait for the result, one line
 * (or a JSON object) saying what happened. */
#ifndef OPENUM_CTL_POP_H
#define OPENUM_CTL_POP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "proto/openum.pb-c.h"
#include "umctl/ctl_args.h"

/* One parameter of play-on-phone (--name value or --name=value); the
 * value is checked. *seen tracks parameters given twice. 0 or EINVAL. */
int ctl_pop_param(struct ctl_args *a, unsigned *seen, const char *name,
		  size_t len, const char *value, int argc, char *const argv[],
		  int *i, char **cause);
/* After the last parameter: the required ones are there. 0 or EINVAL. */
int ctl_pop_check(const struct ctl_args *a, char **cause);
void ctl_pop_help(FILE *f, const struct ctl_verb *v);
/* Runs play-on-phone against the router's socket sock (state: the state
 * directory, whose voicemail.db gives the message's length for the default
 * wait). Returns the exit status: 0 played, 1 not played (or no result in
 * time), 3 umcallrouter not running. */
int ctl_pop_run(const struct ctl_args *a, const char *state, const char *sock);
/* What ctl_pop_run prints for a result: text (one line, to out when ok,
 * to err otherwise, prefixed "umctl: play-on-phone: ") or a JSON object
 * (to out). */
void ctl_pop_print(FILE *out, FILE *err, const Openum__PlayOnPhoneResult *r,
		   const struct ctl_args *a);

#endif
