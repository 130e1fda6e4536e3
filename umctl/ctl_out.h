/* ctl_out.h — umctl output: directory objects, router status and voice
 * messages as aligned text for people or JSON for scripts. Pure formatting
 * onto a FILE. */
#ifndef OPENUM_CTL_OUT_H
#define OPENUM_CTL_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/directory.h"
#include "common/vmstore.h"
#include "proto/openum.pb-c.h"

#define CTL_OUT_MAX_FIELDS 16

/* One object as shown: its fields in table order, values copied. */
struct ctl_obj {
	size_t n;
	const struct dir_field *field[CTL_OUT_MAX_FIELDS];
	char *value[CTL_OUT_MAX_FIELDS];
};

struct ctl_objs {
	size_t n, cap;
	struct ctl_obj *obj;
};

int ctl_out_collect_h(const struct dir_value *vals, size_t n, void *arg);
void ctl_out_objs_free(struct ctl_objs *o);
void ctl_out_objects(FILE *f, const struct ctl_objs *o, bool json,
		     bool single);
void ctl_out_status(FILE *f, const Openum__StatusReply *r, bool json);
/* Adds Health and LastPing to each gateway of o from the UM services'
 * OPTIONS pings in st (NULL: the router is not running); now_ms is the
 * wall clock for "N s ago". */
void ctl_out_add_health(struct ctl_objs *o, const Openum__StatusReply *st,
			unsigned long long now_ms);
unsigned long long ctl_out_now_ms(void);
void ctl_out_json_string(FILE *f, const char *s);
void ctl_out_voicemail(FILE *f, const struct vm_message *m, size_t n,
		       bool json);

#endif
