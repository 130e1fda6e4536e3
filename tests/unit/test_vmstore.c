/* test_vmstore.c — the voicemail store (round trip, trimming, discard,
 * filters, states, greetings, WAV files), its crash recovery after a child
 * process exits or is SIGKILLed mid-message, two processes recording for one
 * mailbox at once, and the asynchronous writer on a real libuv loop. */
#include "common/vmstore.h"
#include "common/vmwriter.h"
#include "tests/unit/unit.h"
#include "umctl/ctl_args.h"
#include "umctl/ctl_cmd.h"
#include "umctl/ctl_out.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <sqlite3.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
/* The runner ends tests with _exit, which skips LeakSanitizer: ask now. */
#define LEAK_CHECK() UT_ASSERT_INT(__lsan_do_recoverable_leak_check(), 0)
#else
#define LEAK_CHECK() ((void)0)
#endif

int test_vmstore_roundtrip(void);
int test_vmstore_trim(void);
int test_vmstore_discard_and_errors(void);
int test_vmstore_list_filters(void);
int test_vmstore_schema(void);
int test_vmstore_greeting(void);
int test_vmstore_wav(void);
int test_vmstore_crash_exit(void);
int test_vmstore_crash_sigkill(void);
int test_vmstore_concurrent_writers(void);
int test_vmstore_writer_loop(void);
int test_vmstore_writer_queue_full(void);
int test_vmstore_writer_close_drains(void);
int test_vmstore_umctl_args(void);
int test_vmstore_umctl_verbs(void);

#define CHUNK 8000 /* one second */

/* A waveform whose every sample is known: a different one per salt. */
static int16_t wave(size_t i, unsigned salt)
{
	return (int16_t)((long)((i * 7919u + salt * 104729u) % 60000u) -
			 30000);
}

static void fill(int16_t *buf, size_t off, size_t n, unsigned salt)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = wave(off + i, salt);
}

/* First sample index where pcm differs from wave(salt), or n. */
static size_t mismatch(const int16_t *pcm, size_t n, unsigned salt)
{
	for (size_t i = 0; i < n; i++) {
		if (pcm[i] != wave(i, salt))
			return i;
	}
	return n;
}

static const char *db_path(void)
{
	static char p[300];

	snprintf(p, sizeof p, "%s/voicemail.db", ut_tmpdir());
	return p;
}

/* One integer (or -1) from a fresh connection, as another process sees it. */
static long long raw_int(const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long long v = -1;

	if (sqlite3_open(db_path(), &db) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static int integrity_ok(void)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int ok = 0;

	if (sqlite3_open(db_path(), &db) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) ==
		    SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		ok = strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ok;
}

static const struct vm_meta meta1001 = {
	.mailbox = "1001",
	.dialplan = "Default",
	.caller_number = "+15551234",
	.caller_name = "Alice \"A\" Smith",
	.call_id = "abc@host",
};

/* Records secs seconds of wave(salt) for meta as one message. */
static int record(struct vmstore *vs, const struct vm_meta *meta,
		  unsigned secs, unsigned salt, int64_t *id)
{
	int16_t buf[CHUNK];
	int err = vmstore_begin(vs, meta, id);

	for (unsigned s = 0; !err && s < secs; s++) {
		fill(buf, (size_t)s * CHUNK, CHUNK, salt);
		err = vmstore_append(vs, *id, s, buf, CHUNK);
	}
	return err ? err : vmstore_finish(vs, *id, VMSTORE_KEEP_ALL, NULL);
}

int test_vmstore_roundtrip(void)
{
	struct vmstore *vs = NULL;
	struct vm_message *m = NULL;
	int16_t buf[CHUNK], *pcm = NULL;
	size_t n = 0, ns = 0;
	int64_t id = 0, dur = 0;
	char *cause = NULL;

	UT_ASSERT_INT(vmstore_open(&vs, db_path(), &cause), 0);
	UT_ASSERT(cause == NULL);
	UT_ASSERT_INT(vmstore_begin(vs, &meta1001, &id), 0);
	UT_ASSERT(id > 0);
	/* while recording: listed as such, duration so far, no audio */
	fill(buf, 0, CHUNK, 1);
	UT_ASSERT_INT(vmstore_append(vs, id, 0, buf, CHUNK), 0);
	UT_ASSERT_INT(vmstore_list(vs, NULL, &m, &n), 0);
	UT_ASSERT_INT(n, 1);
	UT_ASSERT_INT(m[0].state, VM_STATE_RECORDING);
	UT_ASSERT_INT(m[0].duration_ms, 1000);
	vmstore_messages_free(m, n);
	UT_ASSERT_INT(vmstore_get_audio(vs, id, &pcm, &ns), EINPROGRESS);
	/* chunks arrive out of order: seq decides */
	fill(buf, 2 * CHUNK, CHUNK, 1);
	UT_ASSERT_INT(vmstore_append(vs, id, 2, buf, CHUNK), 0);
	fill(buf, CHUNK, CHUNK, 1);
	UT_ASSERT_INT(vmstore_append(vs, id, 1, buf, CHUNK), 0);
	fill(buf, 3 * CHUNK, 4000, 1);
	UT_ASSERT_INT(vmstore_append(vs, id, 3, buf, 4000), 0);
	UT_ASSERT_INT(vmstore_finish(vs, id, VMSTORE_KEEP_ALL, &dur), 0);
	UT_ASSERT_INT(dur, 3500);

	UT_ASSERT_INT(vmstore_get_audio(vs, id, &pcm, &ns), 0);
	UT_ASSERT_INT(ns, 3 * CHUNK + 4000);
	UT_ASSERT_INT(mismatch(pcm, ns, 1), ns);
	free(pcm);
	UT_ASSERT_INT(raw_int("SELECT count(*) FROM message_chunk"), 0);

	UT_ASSERT_INT(vmstore_get(vs, id, &m), 0);
	UT_ASSERT_INT(m->id, id);
	UT_ASSERT_STR(m->mailbox, "1001");
	UT_ASSERT_STR(m->dialplan, "Default");
	UT_ASSERT_STR(m->caller_number, "+15551234");
	UT_ASSERT_STR(m->caller_name, "Alice \"A\" Smith");
	UT_ASSERT_STR(m->call_id, "abc@host");
	UT_ASSERT_INT(m->state, VM_STATE_NEW);
	UT_ASSERT_INT(m->duration_ms, 3500);
	UT_ASSERT(!m->recovered && !m->urgent && !m->has_transcript);
	{
		struct timespec ts;
		int64_t now;

		clock_gettime(CLOCK_REALTIME, &ts);
		now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		UT_ASSERT(m->received_utc_ms <= now &&
			  m->received_utc_ms > now - 60000);
	}
	vmstore_messages_free(m, 1);
	UT_ASSERT_STR((const char *)"pcm16le-8k", VMSTORE_FORMAT);
	UT_ASSERT_INT(raw_int("SELECT count(*) FROM message WHERE"
			      " format = 'pcm16le-8k'"),
		      1);
	vmstore_close(vs);

	/* what was committed is there for the next connection */
	UT_ASSERT_INT(vmstore_open(&vs, db_path(), NULL), 0);
	UT_ASSERT_INT(vmstore_get_audio(vs, id, &pcm, &ns), 0);
	UT_ASSERT_INT(ns, 3 * CHUNK + 4000);
	UT_ASSERT_INT(mismatch(pcm, ns, 1), ns);
	free(pcm);
	vmstore_close(vs);
	LEAK_CHECK();
	return 0;
}

int test_vmstore_trim(void)
{
	struct vmstore *vs = NULL;
	int16_t buf[CHUNK], *pcm = NULL;
	size_t ns = 0;
	int64_t id = 0, dur = 0;

	UT_ASSERT_INT(vmstore_open(&vs, db_path(), NULL), 0);
	/* keep a cut in the middle of the second chunk */
	UT_ASSERT_INT(vmstore_begin(vs, &meta1001, &id), 0);
	for (unsigned s = 0; s < 4; s++) {
		fill(buf, (size_t)s * CHUNK, CHUNK, 2);
		UT_ASSERT_INT(vmstore_append(vs, id, s, buf, CHUNK), 0);
	}
	UT_ASSERT_INT(vmstore_finish(vs, id, 12345, &dur), 0);
	UT_ASSERT_INT(dur, 12345 * 1000 / 8000);
	UT_ASSERT_INT(vmstore_get_audio(vs, id, &pcm, &ns), 0);
	UT_ASSERT_INT(ns, 12345);
	UT_ASSERT_INT(mismatch(pcm, ns, 2), ns);
	free(pcm);
	UT_ASSERT_INT(raw_int("SELECT count(*) FROM message_chunk"), 0);

	/* keep more than there is: all of it */
	UT_ASSERT_INT(vmstore_begin(vs, &meta1001, &id), 0);
	fill(buf, 0, 100, 3);
	UT_ASSERT_INT(vmstore_append(vs, id, 0, buf, 100), 0);
	UT_ASSERT_INT(vmstore_finish(vs, id, 5000, &dur), 0);
	UT_ASSERT_INT(vmstore_get_audio(vs, id, &pcm, &ns), 0);
	UT_ASSERT_INT(ns, 100);
	UT_ASSERT_INT(mismatch(pcm, ns, 3), ns);
	free(pcm);

	/* keep nothing: an empty message is still consistent */
	UT_ASSERT_INT(vmstore_begin(vs, &meta1001, &id), 0);
	UT_ASSERT_INT(vmstore_append(vs, id, 0, buf, 100), 0);
	UT_ASSERT_INT(vmstore_finish(vs, id, 0, &dur), 0);
	UT_ASSERT_INT(dur, 0);
	pcm = (int16_t *)1;
	UT_ASSERT_INT(vmstore_get_audio(vs, id, &pcm, &ns), 0);
	UT_ASSERT_INT(ns, 0);
	UT_ASSERT(pcm == NULL);
	vmstore_close(vs);
	LEAK_CHECK();
	return 0;
}

int test_vmstore_discard_and_errors(void)
{
	struct vmstore *vs = NULL;
	struct vm_message *m = NULL;
	struct vm_meta bad = meta1001;
	int16_t buf[CHUNK] = {0}, *pcm = NULL;
	size_t ns = 0;
	int64_t id = 0, id2 = 0;

	UT_ASSERT_INT(vmstore_open(&vs, db_path(), NULL), 0);
	UT_ASSERT_INT(vmstore_begin(vs, &meta1001, &id), 0);
	UT_ASSERT_INT(vmstore_append(vs, id, 0, buf, CHUNK), 0);
	UT_ASSERT_INT(vmstore_append(vs, id, 1, buf, CHUNK), 0);
	/* a seq twice */
	UT_ASSERT_INT(vmstore_append(vs, id, 1, buf, CHUNK), EEXIST);
	UT_ASSERT_INT(vmstore_discard(vs, id), 0);
	UT_ASSERT_INT(vmstore_get(vs, id, &m), ENOENT);
	UT_ASSERT_INT(vmstore_get_audio(vs, id, &pcm, &ns), ENOENT);
	/* the chunks went with it (ON DELETE CASCADE) */
	UT_ASSERT_INT(raw_int("SELECT count(*) FROM message_chunk"), 0);
	UT_ASSERT_INT(vmstore_discard(vs, id), ENOENT);
	UT_ASSERT_INT(vmstore_append(vs, id, 2, buf, CHUNK), ENOENT);
	UT_ASSERT_INT(vmstore_finish(vs, id, VMSTORE_KEEP_ALL, NULL), ENOENT);

	/* a finished message takes no more audio and cannot be discarded */
	UT_ASSERT_INT(record(vs, &meta1001, 1, 4, &id2), 0);
	UT_ASSERT(id2 > id); /* ids are never reused */
	UT_ASSERT_INT(vmstore_append(vs, id2, 5, buf, CHUNK), ENOENT);
	UT_ASSERT_INT(vmstore_finish(vs, id2, VMSTORE_KEEP_ALL, NULL),
		      EALREADY);
	UT_ASSERT_INT(vmstore_discard(vs, id2), ENOENT);
	UT_ASSERT_INT(raw_int("SELECT count(*) FROM message"), 1);

	/* bad arguments */
	bad.mailbox = "";
	UT_ASSERT_INT(vmstore_begin(vs, &bad, &id), EINVAL);
	bad.mailbox = "1001";
	bad.dialplan = NULL;
	UT_ASSERT_INT(vmstore_begin(vs, &bad, &id), EINVAL);
	UT_ASSERT_INT(vmstore_append(vs, id2, 0, NULL, 10), EINVAL);
	UT_ASSERT_INT(vmstore_set_state(vs, id2, VM_STATE_RECORDING), EINVAL);
	UT_ASSERT_INT(vmstore_set_state(vs, 999999, VM_STATE_SAVED), ENOENT);
	UT_ASSERT_INT(vmstore_purge(vs, 999999), ENOENT);

	/* a recording message's state is the recorder's business */
	UT_ASSERT_INT(vmstore_begin(vs, &meta1001, &id), 0);
	UT_ASSERT_INT(vmstore_set_state(vs, id, VM_STATE_SAVED), EINPROGRESS);
	UT_ASSERT_INT(vmstore_delete(vs, id), EINPROGRESS);
	vmstore_close(vs);
	return 0;
}

int test_vmstore_list_filters(void)
{
	struct vmstore *vs = NULL;
	struct vm_message *m = NULL;
	struct vm_meta a = meta1001, b = meta1001, c = meta1001;
	struct vm_filter f = {0};
	int64_t id[5];
	size_t n = 0;
	enum vm_state s;

	b.mailbox = "1002";
	b.urgent = true;
	b.received_utc_ms = 1700000000000;
	c.dialplan = "Other";
	UT_ASSERT_INT(vmstore_open(&vs, db_path(), NULL), 0);
	UT_ASSERT_INT(record(vs, &a, 1, 1, &id[0]), 0);
	UT_ASSERT_INT(record(vs, &a, 2, 1, &id[1]), 0);
	UT_ASSERT_INT(record(vs, &b, 1, 1, &id[2]), 0);
	UT_ASSERT_INT(record(vs, &c, 1, 1, &id[3]), 0);
	UT_ASSERT_INT(vmstore_begin(vs, &a, &id[4]), 0); /* recording */

	UT_ASSERT_INT(vmstore_list(vs, &f, &m, &n), 0);
	UT_ASSERT_INT(n, 5);
	/* oldest first: b was received in 2023 */
	UT_ASSERT_INT(m[0].id, id[2]);
	UT_ASSERT(m[0].urgent);
	UT_ASSERT_INT(m[0].received_utc_ms, 1700000000000);
	vmstore_messages_free(m, n);

	f.mailbox = "1001";
	UT_ASSERT_INT(vmstore_list(vs, &f, &m, &n), 0);
	UT_ASSERT_INT(n, 4);
	vmstore_messages_free(m, n);
	f.dialplan = "Default";
	UT_ASSERT_INT(vmstore_list(vs, &f, &m, &n), 0);
	UT_ASSERT_INT(n, 3);
	vmstore_messages_free(m, n);
	f.state = VM_STATE_NEW;
	UT_ASSERT_INT(vmstore_list(vs, &f, &m, &n), 0);
	UT_ASSERT_INT(n, 2);
	UT_ASSERT_INT(m[0].id, id[0]);
	UT_ASSERT_INT(m[1].id, id[1]);
	UT_ASSERT_INT(m[1].duration_ms, 2000);
	vmstore_messages_free(m, n);
	f.state = VM_STATE_RECORDING;
	UT_ASSERT_INT(vmstore_list(vs, &f, &m, &n), 0);
	UT_ASSERT_INT(n, 1);
	UT_ASSERT_INT(m[0].id, id[4]);
	vmstore_messages_free(m, n);
	f.mailbox = "9999";
	f.state = VM_STATE_ANY;
	m = (struct vm_message *)1;
	UT_ASSERT_INT(vmstore_list(vs, &f, &m, &n), 0);
	UT_ASSERT_INT(n, 0);
	UT_ASSERT(m == NULL);

	/* states */
	UT_ASSERT_INT(vmstore_set_state(vs, id[0], VM_STATE_SAVED), 0);
	UT_ASSERT_INT(vmstore_delete(vs, id[1]), 0);
	memset(&f, 0, sizeof f);
	f.state = VM_STATE_SAVED;
	UT_ASSERT_INT(vmstore_list(vs, &f, &m, &n), 0);
	UT_ASSERT_INT(n, 1);
	UT_ASSERT_INT(m[0].id, id[0]);
	vmstore_messages_free(m, n);
	f.state = VM_STATE_DELETED;
	UT_ASSERT_INT(vmstore_list(vs, &f, &m, &n), 0);
	UT_ASSERT_INT(n, 1);
	UT_ASSERT_INT(m[0].id, id[1]);
	vmstore_messages_free(m, n);
	/* a deleted message keeps its audio until purged */
	UT_ASSERT_INT(raw_int("SELECT length(audio) FROM message WHERE"
			      " state = 'deleted'"),
		      2 * 2 * CHUNK);
	UT_ASSERT_INT(vmstore_purge(vs, id[1]), 0);
	UT_ASSERT_INT(vmstore_get(vs, id[1], &m), ENOENT);
	UT_ASSERT_INT(vmstore_purge(vs, id[4]), 0); /* recording: gone too */
	UT_ASSERT_INT(raw_int("SELECT count(*) FROM message"), 3);

	UT_ASSERT_INT(vmstore_state_parse("Saved", &s), 0);
	UT_ASSERT_INT(s, VM_STATE_SAVED);
	UT_ASSERT_INT(vmstore_state_parse("any", &s), EINVAL);
	UT_ASSERT_INT(vmstore_state_parse("", &s), EINVAL);
	UT_ASSERT_STR(vmstore_state_name(VM_STATE_RECORDING), "recording");
	vmstore_close(vs);
	LEAK_CHECK();
	return 0;
}

int test_vmstore_schema(void)
{
	struct vmstore *vs = NULL;
	char *cause = NULL, other[300];
	sqlite3 *db = NULL;

	UT_ASSERT_INT(vmstore_open(&vs, db_path(), NULL), 0);
	vmstore_close(vs);
	UT_ASSERT_INT(raw_int("PRAGMA user_version"), VMSTORE_SCHEMA_VERSION);
	/* WAL is a property of the file: every connection gets it */
	UT_ASSERT_INT(raw_int("SELECT journal_mode = 'wal' FROM"
			      " pragma_journal_mode"),
		      1);
	UT_ASSERT_INT(raw_int("SELECT count(*) FROM sqlite_master WHERE"
			      " name IN ('message', 'message_chunk',"
			      " 'greeting')"),
		      3);
	/* reopening an up-to-date store is fine */
	UT_ASSERT_INT(vmstore_open(&vs, db_path(), NULL), 0);
	vmstore_close(vs);

	/* a newer schema is refused */
	UT_ASSERT_INT(sqlite3_open(db_path(), &db), SQLITE_OK);
	UT_ASSERT_INT(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL,
				   NULL),
		      SQLITE_OK);
	sqlite3_close(db);
	UT_ASSERT_INT(vmstore_open(&vs, db_path(), &cause), ENOTSUP);
	UT_ASSERT(cause && strstr(cause, "newer"));
	free(cause);
	cause = NULL;

	/* some other SQLite file is not taken over */
	snprintf(other, sizeof other, "%s/other.db", ut_tmpdir());
	UT_ASSERT_INT(sqlite3_open(other, &db), SQLITE_OK);
	UT_ASSERT_INT(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL),
		      SQLITE_OK);
	sqlite3_close(db);
	UT_ASSERT_INT(vmstore_open(&vs, other, &cause), EBADMSG);
	UT_ASSERT(cause && strstr(cause, "not an OpenUM voicemail store"));
	free(cause);
	cause = NULL;

	/* a missing directory */
	UT_ASSERT_INT(vmstore_open(&vs, "/nonexistent/dir/voicemail.db",
				   &cause),
		      ENOENT);
	UT_ASSERT(cause != NULL);
	free(cause);
	return 0;
}

int test_vmstore_greeting(void)
{
	struct vmstore *vs = NULL;
	int16_t buf[1000], *pcm = NULL;
	size_t ns = 0;

	fill(buf, 0, 1000, 7);
	UT_ASSERT_INT(vmstore_open(&vs, db_path(), NULL), 0);
	UT_ASSERT_INT(vmstore_greeting_get(vs, "1001", "Default",
					   VM_GREETING_STANDARD, &pcm, &ns),
		      ENOENT);
	UT_ASSERT_INT(vmstore_greeting_put(vs, "1001", "Default",
					   VM_GREETING_STANDARD, buf, 1000),
		      0);
	UT_ASSERT_INT(vmstore_greeting_put(vs, "1001", "Default",
					   VM_GREETING_OOF, buf, 500),
		      0);
	UT_ASSERT_INT(vmstore_greeting_get(vs, "1001", "Default",
					   VM_GREETING_STANDARD, &pcm, &ns),
		      0);
	UT_ASSERT_INT(ns, 1000);
	UT_ASSERT_INT(mismatch(pcm, ns, 7), ns);
	free(pcm);
	/* replaced */
	UT_ASSERT_INT(vmstore_greeting_put(vs, "1001", "Default",
					   VM_GREETING_STANDARD, buf, 10),
		      0);
	UT_ASSERT_INT(vmstore_greeting_get(vs, "1001", "Default",
					   VM_GREETING_STANDARD, &pcm, &ns),
		      0);
	UT_ASSERT_INT(ns, 10);
	free(pcm);
	UT_ASSERT_INT(vmstore_greeting_get(vs, "1001", "Default",
					   VM_GREETING_OOF, &pcm, &ns),
		      0);
	UT_ASSERT_INT(ns, 500);
	free(pcm);
	UT_ASSERT_INT(vmstore_greeting_delete(vs, "1001", "Default",
					      VM_GREETING_OOF),
		      0);
	UT_ASSERT_INT(vmstore_greeting_delete(vs, "1001", "Default",
					      VM_GREETING_OOF),
		      ENOENT);
	UT_ASSERT_INT(vmstore_greeting_get(vs, "1001", "Other",
					   VM_GREETING_STANDARD, &pcm, &ns),
		      ENOENT);
	UT_ASSERT_INT(vmstore_greeting_put(vs, "", "Default",
					   VM_GREETING_OOF, buf, 1),
		      EINVAL);
	vmstore_close(vs);
	return 0;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

int test_vmstore_wav(void)
{
	enum { N = 12345 };
	static int16_t pcm[N];
	static uint8_t file[44 + 2 * N + 16];
	char path[300], tmp[310];
	FILE *f;
	size_t got;

	fill(pcm, 0, N, 9);
	snprintf(path, sizeof path, "%s/msg.wav", ut_tmpdir());
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	UT_ASSERT_INT(vmstore_write_wav(path, pcm, N, 8000), 0);
	UT_ASSERT(access(tmp, F_OK) != 0); /* renamed into place */
	f = fopen(path, "rb");
	UT_ASSERT(f != NULL);
	got = fread(file, 1, sizeof file, f);
	fclose(f);
	UT_ASSERT_INT(got, 44 + 2 * N);
	UT_ASSERT(memcmp(file, "RIFF", 4) == 0);
	UT_ASSERT_INT(rd32(file + 4), got - 8);
	UT_ASSERT(memcmp(file + 8, "WAVE", 4) == 0);
	UT_ASSERT(memcmp(file + 12, "fmt ", 4) == 0);
	UT_ASSERT_INT(rd32(file + 16), 16);
	UT_ASSERT_INT(rd16(file + 20), 1);    /* PCM */
	UT_ASSERT_INT(rd16(file + 22), 1);    /* mono */
	UT_ASSERT_INT(rd32(file + 24), 8000); /* rate */
	UT_ASSERT_INT(rd32(file + 28), 16000);
	UT_ASSERT_INT(rd16(file + 32), 2);
	UT_ASSERT_INT(rd16(file + 34), 16);
	UT_ASSERT(memcmp(file + 36, "data", 4) == 0);
	UT_ASSERT_INT(rd32(file + 40), 2 * N);
	for (size_t i = 0; i < N; i++) {
		if ((int16_t)rd16(file + 44 + 2 * i) != pcm[i]) {
			fprintf(stderr, "  sample %zu differs\n", i);
			return 1;
		}
	}
	/* overwrite an existing file, also with a stale .tmp around */
	f = fopen(tmp, "w");
	UT_ASSERT(f != NULL);
	fclose(f);
	UT_ASSERT_INT(vmstore_write_wav(path, pcm, 10, 8000), 0);
	f = fopen(path, "rb");
	UT_ASSERT(f != NULL);
	got = fread(file, 1, sizeof file, f);
	fclose(f);
	UT_ASSERT_INT(got, 64);
	UT_ASSERT_INT(vmstore_write_wav("/nonexistent/x.wav", pcm, 10, 8000),
		      ENOENT);
	return 0;
}

/* ---- crashes ---------------------------------------------------------------- */

/* Child: one message, n one-second chunks of wave(salt), then either
 * _exit without finishing (n > 0) or append forever (n == 0), telling the
 * parent through fd after each commit. Never returns. */
static void child_record(unsigned n, unsigned salt, int fd, int go_fd)
{
	struct vmstore *vs = NULL;
	int16_t buf[CHUNK];
	int64_t id = 0;
	char c;

	if (go_fd >= 0 && read(go_fd, &c, 1) != 1)
		_exit(3);
	if (vmstore_open(&vs, db_path(), NULL) ||
	    vmstore_begin(vs, &meta1001, &id))
		_exit(2);
	for (unsigned s = 0; n == 0 || s < n; s++) {
		fill(buf, (size_t)s * CHUNK, CHUNK, salt);
		if (vmstore_append(vs, id, s, buf, CHUNK))
			_exit(2);
		if (fd >= 0 && write(fd, "c", 1) != 1)
			_exit(2);
		if (n == 0 || salt >= 100)
			usleep(20000); /* writers interleave */
	}
	if (n && salt >= 100) {
		/* the concurrent-writer case finishes properly */
		if (vmstore_finish(vs, id, VMSTORE_KEEP_ALL, NULL))
			_exit(2);
		vmstore_close(vs);
	}
	_exit(0); /* no finish, no close: as if the process died */
}

static int check_recovered(int64_t *id, size_t min_samples, unsigned salt)
{
	struct vmstore *vs = NULL;
	struct vm_message *m = NULL;
	int16_t *pcm = NULL;
	size_t n = 0, ns = 0;
	unsigned rec = 0;

	UT_ASSERT_INT(vmstore_open(&vs, db_path(), NULL), 0);
	UT_ASSERT_INT(vmstore_recover(vs, &rec), 0);
	UT_ASSERT_INT(rec, 1);
	UT_ASSERT_INT(vmstore_list(vs, NULL, &m, &n), 0);
	UT_ASSERT_INT(n, 1);
	*id = m[0].id;
	UT_ASSERT_INT(m[0].state, VM_STATE_NEW);
	UT_ASSERT(m[0].recovered);
	UT_ASSERT_STR(m[0].mailbox, "1001");
	UT_ASSERT_STR(m[0].caller_number, "+15551234");
	UT_ASSERT(m[0].duration_ms >= (int64_t)(min_samples / 8));
	UT_ASSERT_INT(vmstore_get_audio(vs, m[0].id, &pcm, &ns), 0);
	UT_ASSERT(ns >= min_samples);
	UT_ASSERT_INT(ns % CHUNK, 0);
	UT_ASSERT_INT(m[0].duration_ms, (int64_t)ns / 8);
	UT_ASSERT_INT(mismatch(pcm, ns, salt), ns);
	free(pcm);
	vmstore_messages_free(m, n);
	UT_ASSERT_INT(raw_int("SELECT count(*) FROM message_chunk"), 0);
	/* idempotent */
	UT_ASSERT_INT(vmstore_recover(vs, &rec), 0);
	UT_ASSERT_INT(rec, 0);
	vmstore_close(vs);
	UT_ASSERT(integrity_ok());
	return 0;
}

int test_vmstore_crash_exit(void)
{
	struct vmstore *vs = NULL;
	int64_t id = 0;
	int status;
	pid_t pid;

	/* the store exists before the child, as it would at run time */
	UT_ASSERT_INT(vmstore_open(&vs, db_path(), NULL), 0);
	vmstore_close(vs);
	pid = fork();
	UT_ASSERT(pid >= 0);
	if (pid == 0)
		child_record(10, 5, -1, -1);
	UT_ASSERT_INT(waitpid(pid, &status, 0), pid);
	UT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	UT_ASSERT_INT(raw_int("SELECT count(*) FROM message WHERE"
			      " state = 'recording'"),
		      1);
	UT_ASSERT_INT(raw_int("SELECT count(*) FROM message_chunk"), 10);
	UT_ASSERT_INT(check_recovered(&id, 10 * CHUNK, 5), 0);

	/* a message interrupted before any audio is removed, not kept */
	UT_ASSERT_INT(vmstore_open(&vs, db_path(), NULL), 0);
	pid = fork();
	UT_ASSERT(pid >= 0);
	if (pid == 0) {
		struct vmstore *c = NULL;
		int64_t cid;

		if (vmstore_open(&c, db_path(), NULL) ||
		    vmstore_begin(c, &meta1001, &cid))
			_exit(2);
		_exit(0);
	}
	UT_ASSERT_INT(waitpid(pid, &status, 0), pid);
	UT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	{
		unsigned rec = 9;

		UT_ASSERT_INT(raw_int("SELECT count(*) FROM message"), 2);
		UT_ASSERT_INT(vmstore_recover(vs, &rec), 0);
		UT_ASSERT_INT(rec, 0);
		UT_ASSERT_INT(raw_int("SELECT count(*) FROM message"), 1);
	}
	vmstore_close(vs);
	return 0;
}

int test_vmstore_crash_sigkill(void)
{
	struct vmstore *vs = NULL;
	unsigned rec = 9, seen = 0;
	int p[2], status;
	int64_t id = 0;
	pid_t pid;
	char c;

	UT_ASSERT_INT(vmstore_open(&vs, db_path(), NULL), 0);
	UT_ASSERT_INT(pipe(p), 0);
	pid = fork();
	UT_ASSERT(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		child_record(0, 6, p[1], -1);
	}
	close(p[1]);
	/* wait for 8 committed chunks, as a second connection sees them */
	while (seen < 8 && read(p[0], &c, 1) == 1) {
		long long n = raw_int("SELECT count(*) FROM message_chunk");

		if (n >= 8)
			seen = (unsigned)n;
	}
	UT_ASSERT(seen >= 8);
	/* its writer is alive: recovery leaves the message alone */
	UT_ASSERT_INT(vmstore_recover(vs, &rec), 0);
	UT_ASSERT_INT(rec, 0);
	UT_ASSERT_INT(raw_int("SELECT count(*) FROM message WHERE"
			      " state = 'recording'"),
		      1);
	UT_ASSERT_INT(kill(pid, SIGKILL), 0);
	UT_ASSERT_INT(waitpid(pid, &status, 0), pid);
	UT_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	close(p[0]);
	vmstore_close(vs);
	UT_ASSERT(integrity_ok());
	LEAK_CHECK();
	return check_recovered(&id, 8 * CHUNK, 6);
}

int test_vmstore_concurrent_writers(void)
{
	struct vmstore *vs = NULL;
	struct vm_message *m = NULL;
	int16_t *pcm = NULL;
	size_t n = 0, ns = 0;
	int go[2], status;
	pid_t pid[2];

	UT_ASSERT_INT(vmstore_open(&vs, db_path(), NULL), 0);
	UT_ASSERT_INT(pipe(go), 0);
	for (int i = 0; i < 2; i++) {
		pid[i] = fork();
		UT_ASSERT(pid[i] >= 0);
		if (pid[i] == 0) {
			close(go[1]);
			child_record(3, 100 + (unsigned)i, -1, go[0]);
		}
	}
	close(go[0]);
	/* both start at the same moment */
	UT_ASSERT_INT(write(go[1], "gg", 2), 2);
	close(go[1]);
	for (int i = 0; i < 2; i++) {
		UT_ASSERT_INT(waitpid(pid[i], &status, 0), pid[i]);
		UT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	UT_ASSERT_INT(vmstore_list(vs, &(struct vm_filter){.mailbox = "1001"},
				   &m, &n),
		      0);
	UT_ASSERT_INT(n, 2);
	UT_ASSERT(m[0].id != m[1].id);
	for (size_t i = 0; i < n; i++) {
		unsigned salt;

		UT_ASSERT_INT(m[i].state, VM_STATE_NEW);
		UT_ASSERT_INT(m[i].duration_ms, 3000);
		UT_ASSERT_INT(vmstore_get_audio(vs, m[i].id, &pcm, &ns), 0);
		UT_ASSERT_INT(ns, 3 * CHUNK);
		/* each message holds its own caller's audio, whole */
		salt = pcm[0] == wave(0, 100) ? 100 : 101;
		UT_ASSERT_INT(mismatch(pcm, ns, salt), ns);
		free(pcm);
	}
	UT_ASSERT(m[0].id != m[1].id);
	vmstore_messages_free(m, n);
	vmstore_close(vs);
	UT_ASSERT(integrity_ok());
	return 0;
}

/* ---- vmwriter ---------------------------------------------------------------- */

struct wctx {
	pthread_t loop_thread;
	int calls, wrong_thread;
	int begin_err, end_err;
	int64_t begin_id, end_id, dur;
	bool begun, ended;
};

static void begin_cb(int err, int64_t id, int64_t dur, void *arg)
{
	struct wctx *c = arg;

	c->calls++;
	if (!pthread_equal(pthread_self(), c->loop_thread))
		c->wrong_thread++;
	c->begin_err = err;
	c->begin_id = id;
	c->begun = true;
}

static void end_cb(int err, int64_t id, int64_t dur, void *arg)
{
	struct wctx *c = arg;

	c->calls++;
	if (!pthread_equal(pthread_self(), c->loop_thread))
		c->wrong_thread++;
	c->end_err = err;
	c->end_id = id;
	c->dur = dur;
	c->ended = true;
}

/* Runs the loop until *flag or 20 s pass. */
static int run_until(uv_loop_t *loop, bool *flag)
{
	for (int i = 0; i < 20000 && !*flag; i++) {
		uv_run(loop, UV_RUN_NOWAIT);
		if (!*flag)
			usleep(1000);
	}
	return *flag ? 0 : 1;
}

static int loop_done(uv_loop_t *loop)
{
	uv_run(loop, UV_RUN_DEFAULT); /* close callbacks */
	return uv_loop_close(loop);
}

int test_vmstore_writer_loop(void)
{
	struct wctx c = {.loop_thread = pthread_self()};
	struct vmwriter *w = NULL;
	struct vmwriter_msg *msg = NULL, *msg2 = NULL;
	struct vmstore *vs = NULL;
	struct vm_message *m = NULL;
	int16_t buf[CHUNK], *pcm = NULL;
	size_t ns = 0;
	uv_loop_t loop;
	int status;
	pid_t pid;

	/* a crash left a message: the writer's start recovers it */
	UT_ASSERT_INT(vmstore_open(&vs, db_path(), NULL), 0);
	pid = fork();
	UT_ASSERT(pid >= 0);
	if (pid == 0)
		child_record(3, 8, -1, -1);
	UT_ASSERT_INT(waitpid(pid, &status, 0), pid);
	UT_ASSERT_INT(raw_int("SELECT count(*) FROM message WHERE"
			      " state = 'recording'"),
		      1);

	UT_ASSERT_INT(uv_loop_init(&loop), 0);
	UT_ASSERT_INT(vmwriter_alloc(&w, &loop, db_path(), NULL), 0);
	/* begin, appends and finish all queued before begin completes */
	UT_ASSERT_INT(vmwriter_begin(&msg, w, &meta1001, begin_cb, &c), 0);
	for (unsigned s = 0; s < 5; s++) {
		fill(buf, (size_t)s * CHUNK, CHUNK, 11);
		UT_ASSERT_INT(vmwriter_append(w, msg, buf, CHUNK), 0);
	}
	fill(buf, 0, CHUNK, 12); /* the copy was taken: this changes nothing */
	UT_ASSERT_INT(vmwriter_finish(w, msg, 4 * CHUNK + 10, end_cb, &c), 0);
	UT_ASSERT_INT(vmwriter_append(w, msg, buf, CHUNK), EINVAL);
	UT_ASSERT(!c.begun); /* nothing arrives outside the loop */
	UT_ASSERT_INT(run_until(&loop, &c.ended), 0);
	UT_ASSERT(c.begun);
	UT_ASSERT_INT(c.calls, 2);
	UT_ASSERT_INT(c.wrong_thread, 0);
	UT_ASSERT_INT(c.begin_err, 0);
	UT_ASSERT_INT(c.end_err, 0);
	UT_ASSERT(c.begin_id > 0);
	UT_ASSERT_INT(c.end_id, c.begin_id);
	UT_ASSERT_INT(c.dur, (4 * CHUNK + 10) / 8);

	/* recovery ran before our begin */
	UT_ASSERT_INT(raw_int("SELECT count(*) FROM message WHERE"
			      " recovered = 1 AND state = 'new'"),
		      1);
	UT_ASSERT_INT(vmstore_get_audio(vs, c.begin_id, &pcm, &ns), 0);
	UT_ASSERT_INT(ns, 4 * CHUNK + 10);
	UT_ASSERT_INT(mismatch(pcm, ns, 11), ns);
	free(pcm);
	UT_ASSERT_INT(vmstore_get(vs, c.begin_id, &m), 0);
	UT_ASSERT(!m->recovered);
	vmstore_messages_free(m, 1);

	/* discard through the writer */
	memset(&c, 0, sizeof c);
	c.loop_thread = pthread_self();
	UT_ASSERT_INT(vmwriter_begin(&msg2, w, &meta1001, begin_cb, &c), 0);
	UT_ASSERT_INT(vmwriter_append(w, msg2, buf, 100), 0);
	UT_ASSERT_INT(vmwriter_discard(w, msg2, end_cb, &c), 0);
	UT_ASSERT_INT(run_until(&loop, &c.ended), 0);
	UT_ASSERT_INT(c.end_err, 0);
	UT_ASSERT_INT(c.wrong_thread, 0);
	UT_ASSERT_INT(vmstore_get(vs, c.begin_id, &m), ENOENT);
	UT_ASSERT_INT(raw_int("SELECT count(*) FROM message"), 2);

	/* a bad begin is refused at once */
	UT_ASSERT_INT(vmwriter_begin(&msg2, w, &(struct vm_meta){0}, NULL,
				     NULL),
		      EINVAL);
	vmwriter_close(w);
	UT_ASSERT_INT(loop_done(&loop), 0);
	vmstore_close(vs);
	UT_ASSERT(integrity_ok());
	LEAK_CHECK();
	return 0;
}

int test_vmstore_writer_queue_full(void)
{
	struct wctx c = {.loop_thread = pthread_self()};
	struct vmwriter *w = NULL;
	struct vmwriter_msg *msg = NULL, *extra = NULL;
	struct vmstore *vs = NULL;
	int16_t buf[80], *pcm = NULL;
	size_t ns = 0, ok = 0;
	sqlite3 *blocker = NULL;
	uv_loop_t loop;
	int err = 0;

	UT_ASSERT_INT(uv_loop_init(&loop), 0);
	UT_ASSERT_INT(vmwriter_alloc(&w, &loop, db_path(), NULL), 0);
	/* another connection holds the write lock: the worker's first job
	 * waits (busy timeout) and the queue fills */
	UT_ASSERT_INT(sqlite3_open(db_path(), &blocker), SQLITE_OK);
	UT_ASSERT_INT(sqlite3_exec(blocker, "BEGIN IMMEDIATE", NULL, NULL,
				   NULL),
		      SQLITE_OK);
	UT_ASSERT_INT(vmwriter_begin(&msg, w, &meta1001, begin_cb, &c), 0);
	fill(buf, 0, 80, 13);
	while (ok <= VMWRITER_QUEUE_MAX) {
		err = vmwriter_append(w, msg, buf, 80);
		if (err)
			break;
		ok++;
	}
	UT_ASSERT_INT(err, EAGAIN);
	UT_ASSERT(ok >= VMWRITER_QUEUE_MAX - 1 && ok <= VMWRITER_QUEUE_MAX);
	UT_ASSERT(vmwriter_queued(w) >= VMWRITER_QUEUE_MAX - 1);
	/* a new message is refused too, but finishing never is */
	UT_ASSERT_INT(vmwriter_begin(&extra, w, &meta1001, NULL, NULL), EAGAIN);
	UT_ASSERT_INT(vmwriter_finish(w, msg, VMSTORE_KEEP_ALL, end_cb, &c), 0);
	UT_ASSERT_INT(sqlite3_exec(blocker, "COMMIT", NULL, NULL, NULL),
		      SQLITE_OK);
	sqlite3_close(blocker);
	UT_ASSERT_INT(run_until(&loop, &c.ended), 0);
	UT_ASSERT_INT(c.begin_err, 0);
	UT_ASSERT_INT(c.end_err, 0);
	UT_ASSERT_INT(c.dur, (int64_t)(ok * 80 / 8));
	UT_ASSERT_INT(vmstore_open(&vs, db_path(), NULL), 0);
	UT_ASSERT_INT(vmstore_get_audio(vs, c.begin_id, &pcm, &ns), 0);
	UT_ASSERT_INT(ns, ok * 80);
	for (size_t i = 0; i < ns; i++) {
		if (pcm[i] != wave(i % 80, 13)) {
			fprintf(stderr, "  sample %zu differs\n", i);
			free(pcm);
			return 1;
		}
	}
	free(pcm);
	vmstore_close(vs);
	vmwriter_close(w);
	UT_ASSERT_INT(loop_done(&loop), 0);
	LEAK_CHECK();
	return 0;
}

int test_vmstore_writer_close_drains(void)
{
	struct wctx c = {.loop_thread = pthread_self()};
	struct vmwriter *w = NULL;
	struct vmwriter_msg *msg = NULL, *orphan = NULL;
	struct vmstore *vs = NULL;
	int16_t buf[CHUNK], *pcm = NULL;
	size_t ns = 0;
	unsigned rec = 0;
	uv_loop_t loop;

	UT_ASSERT_INT(uv_loop_init(&loop), 0);
	UT_ASSERT_INT(vmwriter_alloc(&w, &loop, db_path(), NULL), 0);
	UT_ASSERT_INT(vmwriter_begin(&msg, w, &meta1001, begin_cb, &c), 0);
	for (unsigned s = 0; s < 20; s++) {
		fill(buf, (size_t)s * CHUNK, CHUNK, 14);
		UT_ASSERT_INT(vmwriter_append(w, msg, buf, CHUNK), 0);
	}
	UT_ASSERT_INT(vmwriter_finish(w, msg, VMSTORE_KEEP_ALL, end_cb, &c), 0);
	/* a message its caller never ends: left 'recording' for recovery */
	UT_ASSERT_INT(vmwriter_begin(&orphan, w, &meta1001, NULL, NULL), 0);
	UT_ASSERT_INT(vmwriter_append(w, orphan, buf, CHUNK), 0);
	/* close at once: everything queued is written, callbacks run
	 * before it returns */
	vmwriter_close(w);
	UT_ASSERT(c.begun && c.ended);
	UT_ASSERT_INT(c.wrong_thread, 0);
	UT_ASSERT_INT(c.end_err, 0);
	UT_ASSERT_INT(c.dur, 20000);
	UT_ASSERT_INT(loop_done(&loop), 0);

	UT_ASSERT_INT(vmstore_open(&vs, db_path(), NULL), 0);
	UT_ASSERT_INT(vmstore_get_audio(vs, c.begin_id, &pcm, &ns), 0);
	UT_ASSERT_INT(ns, 20 * CHUNK);
	UT_ASSERT_INT(mismatch(pcm, ns, 14), ns);
	free(pcm);
	UT_ASSERT_INT(raw_int("SELECT count(*) FROM message WHERE"
			      " state = 'recording'"),
		      1);
	UT_ASSERT_INT(vmstore_recover(vs, &rec), 0);
	UT_ASSERT_INT(rec, 1);
	vmstore_close(vs);
	LEAK_CHECK();
	return 0;
}

/* ---- umctl verbs ------------------------------------------------------------ */

#define ARGV(...) ((char *const[]){"umctl", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *const[]){"umctl", __VA_ARGS__}) / \
			 sizeof(char *)))
#define PARSE(a, cause, ...) ctl_args_parse(a, ARGC(__VA_ARGS__), \
					    ARGV(__VA_ARGS__), cause)

static int parse_err(int rc, char *cause, const char *want)
{
	int bad = rc != EINVAL || !cause || !strstr(cause, want);

	if (bad)
		fprintf(stderr, "  rc %d cause \"%s\", wanted \"%s\"\n", rc,
			cause ? cause : "(null)", want);
	free(cause);
	return bad;
}

#define FAILS(want, ...)                                                     \
	do {                                                                 \
		char *c_ = NULL;                                             \
		int rc_ = PARSE(&a, &c_, __VA_ARGS__);                       \
		UT_ASSERT(parse_err(rc_, c_, want) == 0);                    \
	} while (0)

int test_vmstore_umctl_args(void)
{
	struct ctl_args a;

	UT_ASSERT_INT(PARSE(&a, NULL, "get-voicemail", "--mailbox", "1001",
			    "--umdialplan=Default", "--state", "NEW",
			    "--json"),
		      0);
	UT_ASSERT_INT(a.verb->action, CTL_ACT_VM_GET);
	UT_ASSERT_STR(a.vm_mailbox, "1001");
	UT_ASSERT_STR(a.dialplan, "Default");
	UT_ASSERT_STR(a.vm_state, "new");
	UT_ASSERT(a.json);
	UT_ASSERT(ctl_verb_voicemail(a.verb) && !ctl_verb_writes(a.verb));
	UT_ASSERT_INT(PARSE(&a, NULL, "Export-Voicemail", "--id", "42",
			    "--out", "m.wav"),
		      0);
	UT_ASSERT_INT(a.vm_id, 42);
	UT_ASSERT_STR(a.vm_out, "m.wav");
	UT_ASSERT_INT(PARSE(&a, NULL, "remove-voicemail", "--id=7", "--purge"),
		      0);
	UT_ASSERT_INT(a.vm_id, 7);
	UT_ASSERT(a.vm_purge);
	UT_ASSERT_INT(PARSE(&a, NULL, "remove-voicemail", "--purge=false",
			    "--id", "7"),
		      0);
	UT_ASSERT(!a.vm_purge);
	UT_ASSERT_INT(PARSE(&a, NULL, "export-voicemail", "--help"), 0);
	UT_ASSERT(a.help);

	FAILS("--state: \"old\" is not allowed", "get-voicemail", "--state",
	      "old");
	FAILS("--state: missing value", "get-voicemail", "--state");
	FAILS("--id: \"x1\" is not a message id", "export-voicemail", "--id",
	      "x1", "--out", "f");
	FAILS("--id: \"0\" is not a message id", "remove-voicemail", "--id",
	      "0");
	FAILS("--id: \"-3\" is not a message id", "remove-voicemail", "--id=-3");
	FAILS("--id is required", "export-voicemail", "--out", "f.wav");
	FAILS("--out is required", "export-voicemail", "--id", "1");
	FAILS("--id is required", "remove-voicemail");
	FAILS("--mailbox: not a parameter of export-voicemail",
	      "export-voicemail", "--mailbox", "1001");
	FAILS("--purge: not a parameter of get-voicemail", "get-voicemail",
	      "--purge");
	FAILS("--id: given twice", "remove-voicemail", "--id", "1", "--id",
	      "2");
	FAILS("--identity: not a parameter of get-voicemail", "get-voicemail",
	      "--identity", "x");
	return 0;
}

/* Runs one umctl voicemail command line against vs; out and err are the
 * captured streams (malloc'd). Returns the exit status. */
static int umctl_vm(struct vmstore *vs, char **out, char **err, int argc,
		    char *const argv[])
{
	struct ctl_args a;
	size_t lo, le;
	FILE *fo = open_memstream(out, &lo), *fe = open_memstream(err, &le);
	int code;

	if (ctl_args_parse(&a, argc, argv, NULL))
		code = CTL_EXIT_USAGE;
	else
		code = ctl_cmd_vm_run(vs, &a, fo, fe);
	fclose(fo);
	fclose(fe);
	return code;
}

#define UMCTL(...) umctl_vm(vs, &out, &err, ARGC(__VA_ARGS__), \
			    ARGV(__VA_ARGS__))
#define RESET() (free(out), free(err), out = err = NULL)

int test_vmstore_umctl_verbs(void)
{
	struct vmstore *vs = NULL;
	struct vm_meta anon = {.mailbox = "1002", .dialplan = "Default",
			       .caller_name = "Evil\x1b[2J\n",
			       .received_utc_ms = 1700000000123};
	char *out = NULL, *err = NULL, wav[300], idbuf[32], want[400];
	int64_t id1 = 0, id2 = 0, id3 = 0;
	int16_t buf[CHUNK];
	uint8_t hdr[44];
	FILE *f;

	UT_ASSERT_INT(vmstore_open(&vs, db_path(), NULL), 0);
	UT_ASSERT_INT(record(vs, &meta1001, 2, 21, &id1), 0);
	UT_ASSERT_INT(record(vs, &anon, 1, 22, &id2), 0);
	UT_ASSERT_INT(vmstore_begin(vs, &meta1001, &id3), 0);
	fill(buf, 0, 4000, 23);
	UT_ASSERT_INT(vmstore_append(vs, id3, 0, buf, 4000), 0);

	/* table: header, one line per message, oldest first */
	UT_ASSERT_INT(UMCTL("get-voicemail"), 0);
	UT_ASSERT(strncmp(out, "Id  Mailbox  Caller", 19) == 0);
	UT_ASSERT(strstr(out, "Received"));
	UT_ASSERT(strstr(out, "Duration  State      Recovered\n"));
	UT_ASSERT(strstr(out, "Alice \"A\" Smith <+15551234>"));
	UT_ASSERT(strstr(out, "Evil?[2J?")); /* no escapes reach the tty */
	UT_ASSERT(strstr(out, "  2.0  new  "));
	UT_ASSERT(strstr(out, "  0.5  recording  False\n"));
	UT_ASSERT(strchr(out, '\x1b') == NULL);
	{
		/* 4 lines; the 2023 message first */
		int lines = 0;
		char *second = strchr(out, '\n') + 1;

		while (*second == ' ') /* ids are right-aligned */
			second++;

		for (char *p = out; *p; p++)
			lines += *p == '\n';
		UT_ASSERT_INT(lines, 4);
		snprintf(want, sizeof want, "%lld ", (long long)id2);
		UT_ASSERT(strncmp(second, want, strlen(want)) == 0);
	}
	UT_ASSERT_STR(err, "");
	RESET();

	/* filters */
	UT_ASSERT_INT(UMCTL("get-voicemail", "--mailbox", "1001", "--state",
			    "new"),
		      0);
	UT_ASSERT(strstr(out, "Alice"));
	UT_ASSERT(!strstr(out, "Evil") && !strstr(out, "recording"));
	RESET();
	UT_ASSERT_INT(UMCTL("get-voicemail", "--umdialplan", "Nope"), 0);
	UT_ASSERT_STR(out, "");
	RESET();

	/* JSON */
	UT_ASSERT_INT(UMCTL("get-voicemail", "--mailbox", "1002", "--json"),
		      0);
	snprintf(want, sizeof want,
		 "[{\"Id\":%lld,\"Mailbox\":\"1002\",\"DialPlan\":\"Default\","
		 "\"CallerNumber\":\"\",\"CallerName\":\"Evil\\u001b[2J\\n\","
		 "\"CallId\":\"\",\"ReceivedUtc\":\"2023-11-14T22:13:20.123Z\","
		 "\"DurationMs\":1000,\"State\":\"new\",\"Urgent\":false,"
		 "\"Recovered\":false}]\n",
		 (long long)id2);
	UT_ASSERT_STR(out, want);
	RESET();
	UT_ASSERT_INT(UMCTL("get-voicemail", "--state", "saved", "--json"), 0);
	UT_ASSERT_STR(out, "[]\n");
	RESET();

	/* export */
	snprintf(wav, sizeof wav, "%s/m.wav", ut_tmpdir());
	snprintf(idbuf, sizeof idbuf, "%lld", (long long)id1);
	UT_ASSERT_INT(UMCTL("export-voicemail", "--id", idbuf, "--out", wav),
		      0);
	UT_ASSERT(strstr(err, "2.0 s"));
	RESET();
	f = fopen(wav, "rb");
	UT_ASSERT(f != NULL);
	UT_ASSERT_INT(fread(hdr, 1, 44, f), 44);
	UT_ASSERT_INT(rd32(hdr + 40), 2 * 2 * CHUNK);
	UT_ASSERT_INT(fread(buf, 2, 10, f), 10);
	fclose(f);
	UT_ASSERT_INT(mismatch(buf, 10, 21), 10); /* host is little-endian */
	snprintf(idbuf, sizeof idbuf, "%lld", (long long)id3);
	UT_ASSERT_INT(UMCTL("export-voicemail", "--id", idbuf, "--out", wav),
		      CTL_EXIT_FAIL);
	UT_ASSERT(strstr(err, "still being recorded"));
	RESET();
	UT_ASSERT_INT(UMCTL("export-voicemail", "--id", "999", "--out", wav),
		      CTL_EXIT_FAIL);
	UT_ASSERT(strstr(err, "no voice message with Id 999"));
	RESET();
	snprintf(idbuf, sizeof idbuf, "%lld", (long long)id1);
	UT_ASSERT_INT(UMCTL("export-voicemail", "--id", idbuf, "--out",
			    "/nonexistent/m.wav"),
		      CTL_EXIT_FAIL);
	UT_ASSERT(strstr(err, "cannot write /nonexistent/m.wav"));
	RESET();

	/* remove: deleted, then purged */
	UT_ASSERT_INT(UMCTL("remove-voicemail", "--id", idbuf), 0);
	UT_ASSERT(strstr(err, "marked deleted"));
	RESET();
	UT_ASSERT_INT(UMCTL("get-voicemail", "--state", "deleted"), 0);
	UT_ASSERT(strstr(out, "Alice"));
	RESET();
	UT_ASSERT_INT(UMCTL("remove-voicemail", "--id", idbuf, "--purge"), 0);
	UT_ASSERT(strstr(err, "purged"));
	RESET();
	UT_ASSERT_INT(UMCTL("remove-voicemail", "--id", idbuf, "--purge"),
		      CTL_EXIT_FAIL);
	UT_ASSERT(strstr(err, "no voice message"));
	RESET();
	UT_ASSERT_INT(raw_int("SELECT count(*) FROM message"), 2);
	vmstore_close(vs);
	LEAK_CHECK();
	return 0;
}
