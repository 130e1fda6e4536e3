/* test_retrieve.c — the pieces under subscriber access that can be tested
 * without a call: spoken times and digits, logon bookkeeping (FailedLogons,
 * the lock at MaxLogonAttempts, its reset), the out-of-office flag through
 * the routing table, message counts for MWI, the greeting index query, and
 * store work run on the writer's thread in order with message writes. */
#include "common/directory.h"
#include "common/rtab.h"
#include "common/vmstore.h"
#include "common/vmwriter.h"
#include "tests/unit/unit.h"
#include "umservice/spoken.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

int test_spoken_when(void);
int test_spoken_digits(void);
int test_dir_logon_result(void);
int test_dir_oof_rtab(void);
int test_vmstore_counts(void);
int test_vmstore_greeting_each(void);
int test_vmwriter_run(void);

/* 2026-11-19 15:42:00 UTC, a Thursday. */
#define THU_1542 1795102920000LL
#define HOUR 3600000LL
#define DAY (24 * HOUR)

int test_spoken_when(void)
{
	char b[80];

	setenv("TZ", "UTC", 1);
	tzset();
	spoken_when(b, sizeof b, THU_1542, THU_1542 + HOUR);
	UT_ASSERT_STR(b, "today at 3:42 PM");
	spoken_when(b, sizeof b, THU_1542 - 15 * HOUR - 42 * 60000, THU_1542);
	UT_ASSERT_STR(b, "today at 12:00 AM");
	spoken_when(b, sizeof b, THU_1542 - 3 * HOUR - 42 * 60000 - 60000,
		    THU_1542);
	UT_ASSERT_STR(b, "today at 11:59 AM");
	spoken_when(b, sizeof b, THU_1542 - DAY, THU_1542);
	UT_ASSERT_STR(b, "yesterday at 3:42 PM");
	spoken_when(b, sizeof b, THU_1542 - 3 * DAY, THU_1542);
	UT_ASSERT_STR(b, "Monday at 3:42 PM");
	spoken_when(b, sizeof b, THU_1542 - 16 * DAY - 6 * HOUR, THU_1542);
	UT_ASSERT_STR(b, "November 3 at 9:42 AM");
	/* A clock that went backwards: a date, not a weekday. */
	spoken_when(b, sizeof b, THU_1542 + 3 * DAY, THU_1542);
	UT_ASSERT_STR(b, "November 22 at 3:42 PM");
	/* Truncation stays a string. */
	spoken_when(b, 8, THU_1542, THU_1542);
	UT_ASSERT_STR(b, "today a");
	return 0;
}

int test_spoken_digits(void)
{
	char b[16];

	spoken_digits(b, sizeof b, "4255550123");
	UT_ASSERT_STR(b, "4 2 5 5 5 5 0");	/* bounded, whole digits */
	spoken_digits(b, sizeof b, "1001");
	UT_ASSERT_STR(b, "1 0 0 1");
	spoken_digits(b, sizeof b, "");
	UT_ASSERT_STR(b, "");
	return 0;
}

static struct dir *open_default(char **pin)
{
	char path[300];
	struct dir *d = NULL;
	char *cause = NULL;

	snprintf(path, sizeof path, "%s/directory.db", ut_tmpdir());
	if (dir_open(&d, path, DIR_OPEN_CREATE, pin, &cause)) {
		fprintf(stderr, "  dir_open: %s\n", cause ? cause : "?");
		free(cause);
		return NULL;
	}
	return d;
}

int test_dir_logon_result(void)
{
	char *pin = NULL;
	struct dir *d = open_default(&pin);
	struct dir_mailbox m;
	unsigned failures = 99;
	bool locked = true;

	UT_ASSERT(d);
	free(pin);
	UT_ASSERT_INT(dir_mailbox_find(d, "default", "1001", &m), 0);
	/* Two failures, then a success resets the count. */
	UT_ASSERT_INT(dir_mailbox_logon_result(d, m.id, false, 3, &failures,
					       &locked), 0);
	UT_ASSERT_INT(failures, 1);
	UT_ASSERT(!locked);
	UT_ASSERT_INT(dir_mailbox_logon_result(d, m.id, false, 3, &failures,
					       &locked), 0);
	UT_ASSERT_INT(failures, 2);
	UT_ASSERT_INT(dir_mailbox_logon_result(d, m.id, true, 3, &failures,
					       &locked), 0);
	UT_ASSERT_INT(failures, 0);
	UT_ASSERT(!locked);
	/* Three in a row lock it, and the lock stays with more failures. */
	for (int i = 1; i <= 4; i++) {
		UT_ASSERT_INT(dir_mailbox_logon_result(d, m.id, false, 3,
						       &failures, &locked), 0);
		UT_ASSERT_INT(failures, i);
		UT_ASSERT(locked == (i >= 3));
	}
	UT_ASSERT_INT(dir_mailbox_find(d, "default", "1001", &m), 0);
	UT_ASSERT(m.locked);
	UT_ASSERT_INT(m.failed_logons, 4);
	/* A success does not unlock: only the administrator does. */
	UT_ASSERT_INT(dir_mailbox_logon_result(d, m.id, true, 3, &failures,
					       &locked), 0);
	UT_ASSERT(locked);
	/* --unlock does. */
	{
		struct dir_param p = {.name = "unlock", .value = "true"};
		char *cause = NULL;

		UT_ASSERT_INT(dir_obj_set(d, DIR_OBJ_MAILBOX, "default/1001", &p,
					  1, &cause), 0);
		free(cause);
	}
	UT_ASSERT_INT(dir_mailbox_find(d, "default", "1001", &m), 0);
	UT_ASSERT(!m.locked);
	UT_ASSERT_INT(m.failed_logons, 0);
	UT_ASSERT_INT(dir_mailbox_logon_result(d, 987654, false, 3, &failures,
					       &locked), ENOENT);
	dir_close(d);
	return 0;
}

int test_dir_oof_rtab(void)
{
	char *pin = NULL;
	struct dir *d = open_default(&pin);
	struct dir_mailbox m;
	struct rtab *t = NULL;
	char *cause = NULL;

	UT_ASSERT(d);
	free(pin);
	UT_ASSERT_INT(dir_mailbox_find(d, "default", "1001", &m), 0);
	UT_ASSERT_INT(rtab_build(&t, d, &cause), 0);
	UT_ASSERT(rtab_mailbox_name(t, "default", "1001"));
	UT_ASSERT(!rtab_mailbox_oof(t, "default", "1001"));
	rtab_free(t);
	UT_ASSERT_INT(dir_mailbox_set_oof(d, m.id, true), 0);
	UT_ASSERT_INT(rtab_build(&t, d, &cause), 0);
	UT_ASSERT(rtab_mailbox_oof(t, "default", "1001"));
	/* The display name is unchanged by the flag stored after it. */
	UT_ASSERT_STR(rtab_mailbox_name(t, "default", "1001"), m.display_name);
	UT_ASSERT(!rtab_mailbox_oof(t, "default", "1999"));
	rtab_free(t);
	UT_ASSERT_INT(dir_mailbox_find(d, "default", "1001", &m), 0);
	UT_ASSERT(m.oof_enabled);
	UT_ASSERT_INT(dir_mailbox_set_oof(d, m.id, false), 0);
	UT_ASSERT_INT(dir_mailbox_find(d, "default", "1001", &m), 0);
	UT_ASSERT(!m.oof_enabled);
	UT_ASSERT_INT(dir_mailbox_set_oof(d, 987654, true), ENOENT);
	dir_close(d);
	return 0;
}

static int add_message(struct vmstore *vs, const char *mailbox, bool urgent,
		       enum vm_state state, int64_t *id)
{
	struct vm_meta meta = {.mailbox = mailbox, .dialplan = "default",
			       .caller_number = "4255550123", .urgent = urgent};
	int16_t pcm[8000];
	int64_t ms;

	for (size_t i = 0; i < 8000; i++)
		pcm[i] = (int16_t)((i % 40) * 400 - 8000);
	if (vmstore_begin(vs, &meta, id) || vmstore_append(vs, *id, 0, pcm, 8000) ||
	    vmstore_finish(vs, *id, VMSTORE_KEEP_ALL, &ms))
		return 1;
	return state == VM_STATE_NEW ? 0 : vmstore_set_state(vs, *id, state);
}

int test_vmstore_counts(void)
{
	char path[300];
	struct vmstore *vs = NULL;
	struct vm_counts c;
	int64_t id[6];

	snprintf(path, sizeof path, "%s/voicemail.db", ut_tmpdir());
	UT_ASSERT_INT(vmstore_open(&vs, path, NULL), 0);
	UT_ASSERT_INT(vmstore_counts(vs, "1001", "default", &c), 0);
	UT_ASSERT_INT(c.new_msgs + c.old_msgs + c.urgent_new + c.urgent_old, 0);
	UT_ASSERT_INT(add_message(vs, "1001", false, VM_STATE_NEW, &id[0]), 0);
	UT_ASSERT_INT(add_message(vs, "1001", true, VM_STATE_NEW, &id[1]), 0);
	UT_ASSERT_INT(add_message(vs, "1001", false, VM_STATE_SAVED, &id[2]), 0);
	UT_ASSERT_INT(add_message(vs, "1001", true, VM_STATE_SAVED, &id[3]), 0);
	UT_ASSERT_INT(add_message(vs, "1001", false, VM_STATE_DELETED, &id[4]), 0);
	UT_ASSERT_INT(add_message(vs, "1002", false, VM_STATE_NEW, &id[5]), 0);
	UT_ASSERT_INT(vmstore_counts(vs, "1001", "default", &c), 0);
	UT_ASSERT_INT(c.new_msgs, 2);
	UT_ASSERT_INT(c.urgent_new, 1);
	UT_ASSERT_INT(c.old_msgs, 2);
	UT_ASSERT_INT(c.urgent_old, 1);
	/* Heard, then marked unread again. */
	UT_ASSERT_INT(vmstore_set_state(vs, id[0], VM_STATE_SAVED), 0);
	UT_ASSERT_INT(vmstore_counts(vs, "1001", "default", &c), 0);
	UT_ASSERT_INT(c.new_msgs, 1);
	UT_ASSERT_INT(c.old_msgs, 3);
	UT_ASSERT_INT(vmstore_set_state(vs, id[0], VM_STATE_NEW), 0);
	UT_ASSERT_INT(vmstore_counts(vs, "1001", "default", &c), 0);
	UT_ASSERT_INT(c.new_msgs, 2);
	UT_ASSERT_INT(vmstore_counts(vs, "1001", "other", &c), 0);
	UT_ASSERT_INT(c.new_msgs + c.old_msgs, 0);
	UT_ASSERT_INT(vmstore_counts(vs, NULL, "default", &c), EINVAL);
	vmstore_close(vs);
	return 0;
}

struct seen {
	int n, oof, standard;
};

static void greeting_row(void *arg, const char *mailbox, const char *dialplan,
			 enum vm_greeting kind)
{
	struct seen *s = arg;

	s->n++;
	if (!strcmp(mailbox, "1001") && !strcmp(dialplan, "default"))
		*(kind == VM_GREETING_OOF ? &s->oof : &s->standard) += 1;
}

int test_vmstore_greeting_each(void)
{
	char path[300];
	struct vmstore *vs = NULL;
	struct seen s = {0};
	int16_t pcm[800] = {0};

	snprintf(path, sizeof path, "%s/voicemail.db", ut_tmpdir());
	UT_ASSERT_INT(vmstore_open(&vs, path, NULL), 0);
	UT_ASSERT_INT(vmstore_greeting_each(vs, greeting_row, &s), 0);
	UT_ASSERT_INT(s.n, 0);
	UT_ASSERT_INT(vmstore_greeting_put(vs, "1001", "default",
					   VM_GREETING_OOF, pcm, 800), 0);
	UT_ASSERT_INT(vmstore_greeting_put(vs, "1002", "default",
					   VM_GREETING_STANDARD, pcm, 800), 0);
	UT_ASSERT_INT(vmstore_greeting_each(vs, greeting_row, &s), 0);
	UT_ASSERT_INT(s.n, 2);
	UT_ASSERT_INT(s.oof, 1);
	UT_ASSERT_INT(s.standard, 0);
	vmstore_close(vs);
	return 0;
}

/* vmwriter_run: the function runs on the writer's thread after the jobs
 * queued before it (a message begun and finished just before is visible),
 * and its result comes back on the loop. */
struct run_ctx {
	int64_t id;
	struct vm_counts counts;
	int err, calls;
	bool on_worker;
	uv_thread_t loop_thread;
};

static int count_fn(struct vmstore *vs, void *arg)
{
	struct run_ctx *r = arg;
	uv_thread_t self = uv_thread_self();

	r->on_worker = !uv_thread_equal(&self, &r->loop_thread);
	return vmstore_counts(vs, "1001", "default", &r->counts);
}

static void run_cb(int err, int64_t id, int64_t ms, void *arg)
{
	struct run_ctx *r = arg;

	(void)id;
	(void)ms;
	r->err = err;
	r->calls++;
}

static int fail_fn(struct vmstore *vs, void *arg)
{
	(void)vs;
	(void)arg;
	return EPERM;
}

int test_vmwriter_run(void)
{
	char path[300];
	uv_loop_t loop;
	struct vmwriter *w = NULL;
	struct vmwriter_msg *m = NULL;
	struct vm_meta meta = {.mailbox = "1001", .dialplan = "default"};
	struct run_ctx r = {0}, f = {0};
	int16_t pcm[8000];

	for (size_t i = 0; i < 8000; i++)
		pcm[i] = (int16_t)((i % 20) * 1000 - 10000);
	r.loop_thread = uv_thread_self();
	snprintf(path, sizeof path, "%s/voicemail.db", ut_tmpdir());
	UT_ASSERT_INT(uv_loop_init(&loop), 0);
	UT_ASSERT_INT(vmwriter_alloc(&w, &loop, path, NULL), 0);
	UT_ASSERT_INT(vmwriter_begin(&m, w, &meta, NULL, NULL), 0);
	UT_ASSERT_INT(vmwriter_append(w, m, pcm, 8000), 0);
	UT_ASSERT_INT(vmwriter_finish(w, m, VMSTORE_KEEP_ALL, NULL, NULL), 0);
	UT_ASSERT_INT(vmwriter_run(w, count_fn, run_cb, &r), 0);
	UT_ASSERT_INT(vmwriter_run(w, fail_fn, run_cb, &f), 0);
	UT_ASSERT_INT(vmwriter_run(w, NULL, run_cb, &f), EINVAL);
	for (int i = 0; i < 500 && (r.calls == 0 || f.calls == 0); i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
	}
	UT_ASSERT_INT(r.calls, 1);
	UT_ASSERT_INT(r.err, 0);
	UT_ASSERT(r.on_worker);
	UT_ASSERT_INT(r.counts.new_msgs, 1);
	UT_ASSERT_INT(f.calls, 1);
	UT_ASSERT_INT(f.err, EPERM);
	vmwriter_close(w);
	/* After close: refused, no callback. */
	uv_run(&loop, UV_RUN_DEFAULT);
	UT_ASSERT_INT(uv_loop_close(&loop), 0);
	return 0;
}
