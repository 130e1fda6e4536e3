/* vmstore.c — voicemail.db: schema and migrations, chunked recording with
 * crash recovery, message reads and state changes, greetings, WAV files.
 *
 * Crash safety. While a message is being recorded its audio goes into
 * message_chunk, one committed row per chunk (about a second), and the
 * message row says state 'recording'. vmstore_finish concatenates the
 * chunks into message.audio in one transaction. A process that dies leaves
 * a 'recording' row and its chunks; vmstore_recover, run at start-up,
 * finishes it the same way and flags it recovered. So a crash costs at most
 * the chunk in flight, never the message.
 *
 * Durability. journal_mode=WAL with synchronous=NORMAL: a commit is
 * appended to the WAL with write(2) but not fsync'ed (only checkpoints
 * sync). A process crash — kill -9, abort, OOM killer — loses nothing that
 * was committed, because the data is in the kernel's page cache and the WAL
 * is replayed by the next connection; a power loss or kernel crash may lose
 * the last transactions (never corrupting the file). That is the trade the
 * requirement asks for: one commit per second per call must stay cheap at a
 * thousand calls, and the machine losing power is not the failure we
 * guard against second by second.
 *
 * Threads. A struct vmstore is one SQLite connection; use it from one
 * thread at a time. Several connections (umservice's writer thread, umctl,
 * other umservice instances) may use one file at once: writers serialize on
 * SQLite's lock with a busy timeout, readers never block. */
#define LOG_MODULE "vmstore"
#include "common/cause.h"
#include "common/vmstore.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

/* How long a writer waits for another connection's write lock. A chunk is
 * a second of audio, so waiting a few seconds still loses nothing. */
#define BUSY_TIMEOUT_MS 5000
/* Longest audio accepted in one call (bytes must fit SQLite's int). */
#define MAX_SAMPLES ((size_t)1 << 29)

struct vmstore {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *st_append; /* prepared once: the hot path */
};

static const char *const state_names[] = {
	[VM_STATE_ANY] = "any",       [VM_STATE_RECORDING] = "recording",
	[VM_STATE_NEW] = "new",       [VM_STATE_SAVED] = "saved",
	[VM_STATE_DELETED] = "deleted",
};

static const char *const greeting_names[] = {
	[VM_GREETING_STANDARD] = "standard",
	[VM_GREETING_OOF] = "oof",
};

/* ---- small helpers ------------------------------------------------------ */

/* Maps an SQLite result to an errno value and logs what failed. */
static int sql_err(struct vmstore *vs, int rc, const char *what)
{
	log_warn("%s: %s: %s", vs->path, what, sqlite3_errmsg(vs->db));
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return EBUSY;
	case SQLITE_NOMEM:
		return ENOMEM;
	case SQLITE_CONSTRAINT:
		return EEXIST;
	case SQLITE_FULL:
		return ENOSPC;
	case SQLITE_READONLY:
	case SQLITE_PERM:
		return EACCES;
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		return EBADMSG;
	default:
		return EIO;
	}
}

static int sql_exec(struct vmstore *vs, const char *sql)
{
	int rc = sqlite3_exec(vs->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sql_err(vs, rc, sql);
}

static int sql_prepare(struct vmstore *vs, sqlite3_stmt **st,
		       const char *sql)
{
	int rc = sqlite3_prepare_v2(vs->db, sql, -1, st, NULL);

	return rc == SQLITE_OK ? 0 : sql_err(vs, rc, "prepare");
}

/* Runs a statement to completion (no rows expected); finalizes it. */
static int sql_done(struct vmstore *vs, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st), err = 0;

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		err = sql_err(vs, rc, what);
	sqlite3_finalize(st);
	return err;
}

static void rollback(struct vmstore *vs)
{
	sqlite3_exec(vs->db, "ROLLBACK", NULL, NULL, NULL);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t samples_to_ms(size_t samples)
{
	return (int64_t)((uint64_t)samples * 1000 / VMSTORE_RATE);
}

/* BLOBs hold little-endian samples; on a little-endian host (every host we
 * build for) these are plain copies. */
static void pcm_from_le(int16_t *dst, const void *src, size_t samples)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	const uint8_t *b = src;

	for (size_t i = 0; i < samples; i++)
		dst[i] = (int16_t)(b[2 * i] | b[2 * i + 1] << 8);
#else
	memcpy(dst, src, samples * 2);
#endif
}

/* A little-endian copy of pcm for binding, or pcm itself where the host is
 * little-endian (then *tmp stays NULL). */
static const void *pcm_to_le(const int16_t *pcm, size_t samples, void **tmp)
{
	*tmp = NULL;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	uint8_t *b = malloc(samples * 2 + 1);

	if (!b)
		return NULL;
	for (size_t i = 0; i < samples; i++) {
		b[2 * i] = (uint8_t)((uint16_t)pcm[i] & 0xff);
		b[2 * i + 1] = (uint8_t)((uint16_t)pcm[i] >> 8);
	}
	*tmp = b;
	return b;
#else
	(void)samples;
	return pcm;
#endif
}

/* Name of a state as stored ("new", ...). */
const char *vmstore_state_name(enum vm_state s)
{
	return (unsigned)s <= VM_STATE_DELETED ? state_names[s] : "?";
}

/* Parses "recording", "new", "saved" or "deleted" (any case). 0 or
 * EINVAL. */
int vmstore_state_parse(const char *s, enum vm_state *out)
{
	for (int i = VM_STATE_RECORDING; s && i <= VM_STATE_DELETED; i++) {
		if (strcasecmp(s, state_names[i]) == 0) {
			*out = (enum vm_state)i;
			return 0;
		}
	}
	return EINVAL;
}

/* ---- schema ------------------------------------------------------------- */

/* Migration i takes the schema from version i to i + 1, inside the opening
 * transaction. Add steps at the end; never edit a released one.
 * AUTOINCREMENT: a purged message's id is never given to another one, so an
 * id an administrator noted always names the same message. writer_pid
 * tells vmstore_recover whether a 'recording' row's writer still runs. */
static const char *const migrations[] = {
	/* 0 -> 1: the first schema */
	"CREATE TABLE message ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" mailbox TEXT NOT NULL,"
	" dialplan TEXT NOT NULL,"
	" caller_number TEXT NOT NULL DEFAULT '',"
	" caller_name TEXT NOT NULL DEFAULT '',"
	" call_id TEXT NOT NULL DEFAULT '',"
	" received_utc INTEGER NOT NULL,"
	" duration_ms INTEGER NOT NULL DEFAULT 0,"
	" state TEXT NOT NULL"
	"  CHECK (state IN ('recording','new','saved','deleted')),"
	" urgent INTEGER NOT NULL DEFAULT 0,"
	" recovered INTEGER NOT NULL DEFAULT 0,"
	" format TEXT NOT NULL DEFAULT 'pcm16le-8k',"
	" audio BLOB,"
	" transcript TEXT,"
	" writer_pid INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX message_mailbox ON message (mailbox, dialplan, state);"
	"CREATE INDEX message_state ON message (state);"
	"CREATE TABLE message_chunk ("
	" message_id INTEGER NOT NULL"
	"  REFERENCES message (id) ON DELETE CASCADE,"
	" seq INTEGER NOT NULL,"
	" pcm BLOB NOT NULL,"
	" PRIMARY KEY (message_id, seq)) WITHOUT ROWID;"
	"CREATE TABLE greeting ("
	" mailbox TEXT NOT NULL,"
	" dialplan TEXT NOT NULL,"
	" kind TEXT NOT NULL CHECK (kind IN ('standard','oof')),"
	" audio BLOB,"
	" updated_utc INTEGER NOT NULL,"
	" PRIMARY KEY (mailbox, dialplan, kind));",
};

#define NMIGRATIONS (sizeof migrations / sizeof migrations[0])
_Static_assert(NMIGRATIONS == VMSTORE_SCHEMA_VERSION,
	       "one migration per schema version");

static int query_int(struct vmstore *vs, const char *sql, long long *out)
{
	sqlite3_stmt *st = NULL;
	int err = sql_prepare(vs, &st, sql), rc;

	if (err)
		return err;
	rc = sqlite3_step(st);
	*out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		err = sql_err(vs, rc, sql);
	sqlite3_finalize(st);
	return err;
}

/* Closes a store (NULL is fine; a half-opened one too). */
void vmstore_close(struct vmstore *vs)
{
	if (!vs)
		return;
	sqlite3_finalize(vs->st_append);
	if (vs->db)
		sqlite3_close(vs->db);
	free(vs->path);
	free(vs);
}

/* Opens voicemail.db at path, creating it (mode 0640: it holds people's
 * messages) or migrating an older schema; a newer schema is refused
 * (ENOTSUP), a foreign SQLite file too (EBADMSG). The parent directory
 * must exist. The connection is for one thread at a time. */
int vmstore_open(struct vmstore **out, const char *path, char **cause)
{
	struct vmstore *vs = NULL;
	long long ver = 0, nobj = 0;
	bool in_tx = false;
	char sql[64], mode[16] = "";
	sqlite3_stmt *st = NULL;
	int err = 0, rc, fd;

	if (!out || !path || !*path)
		return EINVAL;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd >= 0) {
		close(fd);
	} else if (errno != EEXIST) {
		err = errno;
		cause_first(cause, "cannot create %s: %s", path, strerror(err));
		return err;
	}
	vs = calloc(1, sizeof *vs);
	if (!vs || !(vs->path = strdup(path))) {
		err = ENOMEM;
		goto out;
	}
	rc = sqlite3_open_v2(path, &vs->db, SQLITE_OPEN_READWRITE, NULL);
	if (rc != SQLITE_OK) {
		err = rc == SQLITE_NOMEM ? ENOMEM : EIO;
		cause_first(cause, "cannot open voicemail store %s: %s", path,
			  vs->db ? sqlite3_errmsg(vs->db) : sqlite3_errstr(rc));
		goto out;
	}
	sqlite3_busy_timeout(vs->db, BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(vs->db, 0);
	err = sql_exec(vs, "PRAGMA foreign_keys=ON");
	if (!err)
		err = sql_prepare(vs, &st, "PRAGMA journal_mode=WAL");
	if (!err) {
		if (sqlite3_step(st) == SQLITE_ROW)
			snprintf(mode, sizeof mode, "%s",
				 (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		st = NULL;
		/* see the top of this file for why NORMAL is enough */
		err = sql_exec(vs, "PRAGMA synchronous=NORMAL");
	}
	if (err) {
		cause_first(cause, "voicemail store %s: %s", path,
			  sqlite3_errmsg(vs->db));
		goto out;
	}
	if (strcasecmp(mode, "wal") != 0)
		log_warn("%s: journal mode is \"%s\", not WAL (a file system "
			 "without shared memory?); readers will wait for "
			 "writers", path, mode);
	err = sql_exec(vs, "BEGIN IMMEDIATE");
	if (err) {
		cause_first(cause, "voicemail store %s: %s", path,
			  sqlite3_errmsg(vs->db));
		goto out;
	}
	in_tx = true;
	err = query_int(vs, "PRAGMA user_version", &ver);
	if (!err)
		err = query_int(vs, "SELECT count(*) FROM sqlite_master",
				&nobj);
	if (err) {
		cause_first(cause, "voicemail store %s: %s", path,
			  sqlite3_errmsg(vs->db));
		goto out;
	}
	if (ver > VMSTORE_SCHEMA_VERSION) {
		err = ENOTSUP;
		cause_first(cause, "voicemail store %s has schema version %lld, "
				 "newer than this OpenUM understands (%d)",
			  path, ver, VMSTORE_SCHEMA_VERSION);
		goto out;
	}
	if (ver == 0 && nobj > 0) {
		err = EBADMSG;
		cause_first(cause, "%s is an SQLite file but not an OpenUM "
				 "voicemail store", path);
		goto out;
	}
	for (long long v = ver; v < VMSTORE_SCHEMA_VERSION; v++) {
		err = sql_exec(vs, migrations[v]);
		if (err) {
			cause_first(cause, "voicemail store %s: migration to "
					 "schema %lld: %s",
				  path, v + 1, sqlite3_errmsg(vs->db));
			goto out;
		}
	}
	if (ver != VMSTORE_SCHEMA_VERSION) {
		snprintf(sql, sizeof sql, "PRAGMA user_version=%d",
			 VMSTORE_SCHEMA_VERSION);
		err = sql_exec(vs, sql);
		if (err)
			goto out;
	}
	err = sql_exec(vs, "COMMIT");
	if (err) {
		cause_first(cause, "voicemail store %s: %s", path,
			  sqlite3_errmsg(vs->db));
		goto out;
	}
	in_tx = false;
	if (ver == 0)
		log_info("created voicemail store %s", path);
	else if (ver != VMSTORE_SCHEMA_VERSION)
		log_info("migrated voicemail store %s from schema %lld to %d",
			 path, ver, VMSTORE_SCHEMA_VERSION);
	err = sql_prepare(vs, &vs->st_append,
			  "INSERT INTO message_chunk (message_id, seq, pcm)"
			  " SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM"
			  " message WHERE id = ?1 AND state = 'recording')");
	if (err) {
		cause_first(cause, "voicemail store %s: %s", path,
			  sqlite3_errmsg(vs->db));
		goto out;
	}
	*out = vs;
	vs = NULL;
out:
	if (in_tx)
		rollback(vs);
	if (err && cause && !*cause)
		cause_first(cause, "voicemail store %s: %s", path,
			  strerror(err));
	vmstore_close(vs);
	return err;
}

/* ---- recording ------------------------------------------------------------ */

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_TRANSIENT);
}

/* Creates a message in state 'recording' and hands back its id (unique
 * for ever, also across connections writing at once). mailbox and dialplan
 * are required (EINVAL). */
int vmstore_begin(struct vmstore *vs, const struct vm_meta *meta,
		  int64_t *id)
{
	sqlite3_stmt *st = NULL;
	int err, rc;

	if (!vs || !meta || !id || !meta->mailbox || !*meta->mailbox ||
	    !meta->dialplan || !*meta->dialplan)
		return EINVAL;
	err = sql_prepare(vs, &st,
			  "INSERT INTO message (mailbox, dialplan,"
			  " caller_number, caller_name, call_id, received_utc,"
			  " state, urgent, format, writer_pid)"
			  " VALUES (?, ?, ?, ?, ?, ?, 'recording', ?, ?, ?)");
	if (err)
		return err;
	bind_text(st, 1, meta->mailbox);
	bind_text(st, 2, meta->dialplan);
	bind_text(st, 3, meta->caller_number);
	bind_text(st, 4, meta->caller_name);
	bind_text(st, 5, meta->call_id);
	sqlite3_bind_int64(st, 6, meta->received_utc_ms ? meta->received_utc_ms
						       : now_ms());
	sqlite3_bind_int(st, 7, meta->urgent ? 1 : 0);
	bind_text(st, 8, VMSTORE_FORMAT);
	sqlite3_bind_int64(st, 9, (int64_t)getpid());
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		err = sql_err(vs, rc, "begin message");
		goto out;
	}
	/* per connection, so another writer's insert cannot interfere */
	*id = sqlite3_last_insert_rowid(vs->db);
out:
	sqlite3_finalize(st);
	return err;
}

/* Stores one chunk of a message being recorded, committed on return (its
 * own transaction). seq orders the chunks (gaps are fine); a seq already
 * stored is EEXIST; a message that does not exist or is no longer
 * recording is ENOENT. */
int vmstore_append(struct vmstore *vs, int64_t id, uint32_t seq,
		   const int16_t *pcm, size_t samples)
{
	sqlite3_stmt *st;
	const void *le;
	void *tmp;
	int err = 0, rc;

	if (!vs || (!pcm && samples) || samples > MAX_SAMPLES)
		return EINVAL;
	if (samples == 0)
		return 0;
	le = pcm_to_le(pcm, samples, &tmp);
	if (!le)
		return ENOMEM;
	st = vs->st_append;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, seq);
	sqlite3_bind_blob(st, 3, le, (int)(samples * 2), SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		err = sql_err(vs, rc, "append chunk");
	else if (sqlite3_changes(vs->db) == 0)
		err = ENOENT;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	free(tmp);
	return err;
}

/* Inside a transaction: concatenates the chunks of message id (in seq
 * order), keeps the first keep_samples, stores them as the message audio
 * with its duration and state 'new', deletes the chunks. */
static int finish_locked(struct vmstore *vs, int64_t id, size_t keep_samples,
			 bool recovered, size_t *kept)
{
	sqlite3_stmt *st = NULL;
	long long total = 0;
	size_t keep_bytes, o = 0;
	uint8_t *buf = NULL;
	int err, rc;

	err = sql_prepare(vs, &st, "SELECT coalesce(sum(length(pcm)), 0)"
				   " FROM message_chunk WHERE message_id = ?");
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		err = sql_err(vs, rc, "finish: size");
		goto out;
	}
	total = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	keep_bytes = (size_t)total & ~(size_t)1;
	if (keep_samples < keep_bytes / 2)
		keep_bytes = keep_samples * 2;
	if (keep_bytes > MAX_SAMPLES * 2) {
		err = EFBIG;
		goto out;
	}
	buf = malloc(keep_bytes + 1);
	if (!buf) {
		err = ENOMEM;
		goto out;
	}
	err = sql_prepare(vs, &st, "SELECT pcm FROM message_chunk"
				   " WHERE message_id = ? ORDER BY seq");
	if (err)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	while (o < keep_bytes && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *p = sqlite3_column_blob(st, 0);
		size_t n = (size_t)sqlite3_column_bytes(st, 0);

		if (n > keep_bytes - o)
			n = keep_bytes - o;
		if (p && n)
			memcpy(buf + o, p, n);
		o += n;
	}
	sqlite3_finalize(st);
	st = NULL;
	keep_bytes = o & ~(size_t)1;

	err = sql_prepare(vs, &st, "UPDATE message SET audio = ?,"
				   " duration_ms = ?, state = 'new',"
				   " recovered = ? WHERE id = ?");
	if (err)
		goto out;
	sqlite3_bind_blob(st, 1, buf, (int)keep_bytes, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, samples_to_ms(keep_bytes / 2));
	sqlite3_bind_int(st, 3, recovered ? 1 : 0);
	sqlite3_bind_int64(st, 4, id);
	err = sql_done(vs, st, "finish: store audio");
	st = NULL;
	if (err)
		goto out;
	err = sql_prepare(vs, &st,
			  "DELETE FROM message_chunk WHERE message_id = ?");
	if (err)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	err = sql_done(vs, st, "finish: delete chunks");
	st = NULL;
	if (err)
		goto out;
	*kept = keep_bytes / 2;
out:
	sqlite3_finalize(st);
	free(buf);
	return err;
}

/* The state of message id, or ENOENT. */
static int state_of(struct vmstore *vs, int64_t id, enum vm_state *out)
{
	sqlite3_stmt *st = NULL;
	int err = sql_prepare(vs, &st, "SELECT state FROM message WHERE id = ?");
	int rc;

	if (err)
		return err;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (vmstore_state_parse((const char *)sqlite3_column_text(st, 0),
					out))
			err = EBADMSG;
	} else if (rc == SQLITE_DONE) {
		err = ENOENT;
	} else {
		err = sql_err(vs, rc, "state");
	}
	sqlite3_finalize(st);
	return err;
}

/* Completes a recorded message in one transaction: its chunks become the
 * message audio, cut to the first keep_samples (the caller's trimming of
 * trailing silence; VMSTORE_KEEP_ALL keeps everything), the duration is
 * set from that audio, the state becomes 'new' and the chunks go.
 * ENOENT: no such message; EALREADY: it is not recording any more. */
int vmstore_finish(struct vmstore *vs, int64_t id, size_t keep_samples,
		   int64_t *duration_ms)
{
	enum vm_state s;
	size_t kept = 0;
	int err;

	if (!vs)
		return EINVAL;
	err = sql_exec(vs, "BEGIN IMMEDIATE");
	if (err)
		return err;
	err = state_of(vs, id, &s);
	if (!err && s != VM_STATE_RECORDING)
		err = EALREADY;
	if (!err)
		err = finish_locked(vs, id, keep_samples, false, &kept);
	if (!err)
		err = sql_exec(vs, "COMMIT");
	if (err) {
		rollback(vs);
		return err;
	}
	if (duration_ms)
		*duration_ms = samples_to_ms(kept);
	return 0;
}

/* Drops a message still being recorded, chunks and all (a recording that
 * turned out not to be a message). ENOENT if there is no such message in
 * state 'recording'. */
int vmstore_discard(struct vmstore *vs, int64_t id)
{
	sqlite3_stmt *st = NULL;
	int err;

	if (!vs)
		return EINVAL;
	err = sql_prepare(vs, &st, "DELETE FROM message WHERE id = ? AND"
				   " state = 'recording'");
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, id);
	err = sql_done(vs, st, "discard");
	if (!err && sqlite3_changes(vs->db) == 0)
		err = ENOENT;
	return err;
}

/* Whether the process that started a recording may still be writing it.
 * Our own pid counts as dead: recovery runs at start-up, before this
 * process records anything, and a restarted daemon often gets its old pid
 * back (pid 1 in a container). Limitation: pids are only meaningful among
 * processes sharing one pid namespace, which instances sharing one state
 * directory on one host do. */
static bool writer_alive(int64_t pid)
{
	if (pid <= 0 || pid == (int64_t)getpid() || pid > INT_MAX)
		return false;
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* Finishes what a crash left: every message still 'recording' whose writer
 * is gone becomes 'new' with recovered=1 and the audio of its chunks; one
 * without any chunk is deleted. Logs each. Call once at start-up, before
 * this process records. *n (optional): messages recovered. */
int vmstore_recover(struct vmstore *vs, unsigned *n)
{
	struct left {
		int64_t id, pid;
		char mailbox[64], dialplan[72];
	} *v = NULL;
	size_t nv = 0, cap = 0;
	sqlite3_stmt *st = NULL;
	unsigned done = 0;
	int err, rc;

	if (!vs)
		return EINVAL;
	if (n)
		*n = 0;
	err = sql_prepare(vs, &st, "SELECT id, mailbox, dialplan, writer_pid"
				   " FROM message WHERE state = 'recording'"
				   " ORDER BY id");
	if (err)
		return err;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (nv == cap) {
			size_t c = cap ? cap * 2 : 16;
			struct left *nvv = realloc(v, c * sizeof *v);

			if (!nvv) {
				err = ENOMEM;
				goto out;
			}
			v = nvv;
			cap = c;
		}
		v[nv].id = sqlite3_column_int64(st, 0);
		snprintf(v[nv].mailbox, sizeof v[nv].mailbox, "%s",
			 (const char *)sqlite3_column_text(st, 1));
		snprintf(v[nv].dialplan, sizeof v[nv].dialplan, "%s",
			 (const char *)sqlite3_column_text(st, 2));
		v[nv].pid = sqlite3_column_int64(st, 3);
		nv++;
	}
	if (rc != SQLITE_DONE) {
		err = sql_err(vs, rc, "recover: list");
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;

	for (size_t i = 0; i < nv; i++) {
		enum vm_state s;
		size_t kept = 0;
		long long chunks = 0;

		if (writer_alive(v[i].pid)) {
			log_notice("message %lld for mailbox %s (%s) is being "
				   "recorded by process %lld; left alone",
				   (long long)v[i].id, v[i].mailbox,
				   v[i].dialplan, (long long)v[i].pid);
			continue;
		}
		err = sql_exec(vs, "BEGIN IMMEDIATE");
		if (err)
			goto out;
		/* someone may have finished it since we looked */
		err = state_of(vs, v[i].id, &s);
		if (err == ENOENT || (!err && s != VM_STATE_RECORDING)) {
			err = sql_exec(vs, "COMMIT");
			if (err)
				goto fail;
			continue;
		}
		if (err)
			goto fail;
		err = sql_prepare(vs, &st, "SELECT count(*) FROM message_chunk"
					   " WHERE message_id = ?");
		if (err)
			goto fail;
		sqlite3_bind_int64(st, 1, v[i].id);
		if (sqlite3_step(st) == SQLITE_ROW)
			chunks = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		st = NULL;
		if (chunks == 0) {
			err = sql_prepare(vs, &st,
					  "DELETE FROM message WHERE id = ?");
			if (err)
				goto fail;
			sqlite3_bind_int64(st, 1, v[i].id);
			err = sql_done(vs, st, "recover: delete empty");
			st = NULL;
		} else {
			err = finish_locked(vs, v[i].id, VMSTORE_KEEP_ALL, true,
					    &kept);
		}
		if (err)
			goto fail;
		err = sql_exec(vs, "COMMIT");
		if (err)
			goto fail;
		if (chunks == 0) {
			log_notice("message %lld for mailbox %s (%s) was "
				   "interrupted before any audio; removed",
				   (long long)v[i].id, v[i].mailbox,
				   v[i].dialplan);
		} else {
			log_notice("recovered message %lld for mailbox %s "
				   "(%s): %.1f s of audio from %lld chunks",
				   (long long)v[i].id, v[i].mailbox,
				   v[i].dialplan,
				   (double)kept / VMSTORE_RATE, chunks);
			done++;
		}
	}
	if (n)
		*n = done;
	goto out;
fail:
	rollback(vs);
out:
	sqlite3_finalize(st);
	free(v);
	return err;
}

/* ---- reading and managing -------------------------------------------------- */

#define MESSAGE_COLS                                                         \
	"SELECT id, mailbox, dialplan, caller_number, caller_name, call_id,"  \
	" received_utc,"                                                     \
	" CASE WHEN state = 'recording' THEN (SELECT"                        \
	"  coalesce(sum(length(pcm)), 0) FROM message_chunk"                 \
	"  WHERE message_id = message.id) * 1000 / 16000"                    \
	"  ELSE duration_ms END,"                                            \
	" state, urgent, recovered, transcript IS NOT NULL FROM message"

static char *col_dup(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	return strdup(s ? s : "");
}

/* Frees messages from vmstore_list / vmstore_get (NULL is fine). */
void vmstore_messages_free(struct vm_message *m, size_t n)
{
	if (!m)
		return;
	for (size_t i = 0; i < n; i++) {
		free(m[i].mailbox);
		free(m[i].dialplan);
		free(m[i].caller_number);
		free(m[i].caller_name);
		free(m[i].call_id);
	}
	free(m);
}

/* Steps st and copies every row into a new array. */
static int collect(struct vmstore *vs, sqlite3_stmt *st,
		   struct vm_message **out, size_t *n)
{
	struct vm_message *v = NULL;
	size_t nv = 0, cap = 0;
	int err = 0, rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct vm_message *m;

		if (nv == cap) {
			size_t c = cap ? cap * 2 : 16;
			struct vm_message *nvv = realloc(v, c * sizeof *v);

			if (!nvv) {
				err = ENOMEM;
				goto out;
			}
			v = nvv;
			cap = c;
		}
		m = &v[nv++];
		memset(m, 0, sizeof *m);
		m->id = sqlite3_column_int64(st, 0);
		m->mailbox = col_dup(st, 1);
		m->dialplan = col_dup(st, 2);
		m->caller_number = col_dup(st, 3);
		m->caller_name = col_dup(st, 4);
		m->call_id = col_dup(st, 5);
		m->received_utc_ms = sqlite3_column_int64(st, 6);
		m->duration_ms = sqlite3_column_int64(st, 7);
		if (vmstore_state_parse((const char *)sqlite3_column_text(st, 8),
					&m->state))
			m->state = VM_STATE_ANY;
		m->urgent = sqlite3_column_int(st, 9) != 0;
		m->recovered = sqlite3_column_int(st, 10) != 0;
		m->has_transcript = sqlite3_column_int(st, 11) != 0;
		if (!m->mailbox || !m->dialplan || !m->caller_number ||
		    !m->caller_name || !m->call_id) {
			err = ENOMEM;
			goto out;
		}
	}
	if (rc != SQLITE_DONE)
		err = sql_err(vs, rc, "list");
out:
	if (err) {
		vmstore_messages_free(v, nv);
		return err;
	}
	*out = v;
	*n = nv;
	return 0;
}

/* Lists messages' metadata (no audio), oldest first, filtered by f (NULL:
 * all). *out is NULL when nothing matches; free with
 * vmstore_messages_free(). A message being recorded shows the duration
 * stored so far. */
int vmstore_list(struct vmstore *vs, const struct vm_filter *f,
		 struct vm_message **out, size_t *n)
{
	static const struct vm_filter all;
	sqlite3_stmt *st = NULL;
	int err;

	if (!vs || !out || !n)
		return EINVAL;
	if (!f)
		f = &all;
	*out = NULL;
	*n = 0;
	err = sql_prepare(vs, &st, MESSAGE_COLS
			  " WHERE (?1 IS NULL OR mailbox = ?1)"
			  " AND (?2 IS NULL OR dialplan = ?2)"
			  " AND (?3 IS NULL OR state = ?3)"
			  " ORDER BY received_utc, id");
	if (err)
		return err;
	if (f->mailbox)
		sqlite3_bind_text(st, 1, f->mailbox, -1, SQLITE_STATIC);
	if (f->dialplan)
		sqlite3_bind_text(st, 2, f->dialplan, -1, SQLITE_STATIC);
	if (f->state != VM_STATE_ANY)
		sqlite3_bind_text(st, 3, vmstore_state_name(f->state), -1,
				  SQLITE_STATIC);
	err = collect(vs, st, out, n);
	sqlite3_finalize(st);
	return err;
}

/* The message waiting counts of one mailbox (RFC 3842's new/old, each with
 * its urgent part): new = state new, old = state saved. */
int vmstore_counts(struct vmstore *vs, const char *mailbox,
		   const char *dialplan, struct vm_counts *out)
{
	sqlite3_stmt *st = NULL;
	int err, rc;

	if (!vs || !mailbox || !dialplan || !out)
		return EINVAL;
	memset(out, 0, sizeof *out);
	err = sql_prepare(vs, &st, "SELECT state, urgent, count(*) FROM message"
				   " WHERE mailbox = ? AND dialplan = ?"
				   " AND state IN ('new','saved')"
				   " GROUP BY state, urgent");
	if (err)
		return err;
	sqlite3_bind_text(st, 1, mailbox, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, dialplan, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *state = (const char *)sqlite3_column_text(st, 0);
		bool urgent = sqlite3_column_int(st, 1) != 0;
		unsigned n = (unsigned)sqlite3_column_int(st, 2);
		bool is_new = state && strcmp(state, "new") == 0;

		if (is_new)
			out->new_msgs += n;
		else
			out->old_msgs += n;
		if (urgent && is_new)
			out->urgent_new += n;
		else if (urgent)
			out->urgent_old += n;
	}
	err = rc == SQLITE_DONE ? 0 : sql_err(vs, rc, "counts");
	sqlite3_finalize(st);
	return err;
}

/* One message's metadata, or ENOENT. Free with vmstore_messages_free(m,
 * 1). */
int vmstore_get(struct vmstore *vs, int64_t id, struct vm_message **out)
{
	struct vm_message *v = NULL;
	sqlite3_stmt *st = NULL;
	size_t nv = 0;
	int err;

	if (!vs || !out)
		return EINVAL;
	err = sql_prepare(vs, &st, MESSAGE_COLS " WHERE id = ?");
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, id);
	err = collect(vs, st, &v, &nv);
	sqlite3_finalize(st);
	if (err)
		return err;
	if (nv == 0)
		return ENOENT;
	*out = v;
	return 0;
}

/* Copies a message's audio (16-bit, VMSTORE_RATE, host order) into a new
 * array the caller frees (NULL when empty). ENOENT: no such message;
 * EINPROGRESS: it is still being recorded. */
int vmstore_get_audio(struct vmstore *vs, int64_t id, int16_t **pcm,
		      size_t *samples)
{
	sqlite3_stmt *st = NULL;
	int16_t *v = NULL;
	size_t ns;
	int err, rc;

	if (!vs || !pcm || !samples)
		return EINVAL;
	err = sql_prepare(vs, &st, "SELECT state, audio FROM message"
				   " WHERE id = ?");
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		err = ENOENT;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		err = sql_err(vs, rc, "get audio");
		goto out;
	}
	if (strcmp((const char *)sqlite3_column_text(st, 0), "recording") ==
	    0) {
		err = EINPROGRESS;
		goto out;
	}
	ns = (size_t)sqlite3_column_bytes(st, 1) / 2;
	if (ns) {
		v = malloc(ns * sizeof *v);
		if (!v) {
			err = ENOMEM;
			goto out;
		}
		pcm_from_le(v, sqlite3_column_blob(st, 1), ns);
	}
	*pcm = v;
	*samples = ns;
out:
	sqlite3_finalize(st);
	return err;
}

/* Sets a finished message's state to new, saved or deleted (else EINVAL).
 * ENOENT: no such message; EINPROGRESS: still being recorded. */
int vmstore_set_state(struct vmstore *vs, int64_t id, enum vm_state state)
{
	sqlite3_stmt *st = NULL;
	enum vm_state cur;
	int err;

	if (!vs || (state != VM_STATE_NEW && state != VM_STATE_SAVED &&
		    state != VM_STATE_DELETED))
		return EINVAL;
	err = sql_prepare(vs, &st, "UPDATE message SET state = ?"
				   " WHERE id = ? AND state != 'recording'");
	if (err)
		return err;
	sqlite3_bind_text(st, 1, vmstore_state_name(state), -1,
			  SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, id);
	err = sql_done(vs, st, "set state");
	if (err || sqlite3_changes(vs->db) > 0)
		return err;
	err = state_of(vs, id, &cur);
	return err ? err : EINPROGRESS;
}

/* Marks a message deleted (it stays in the store until purged). */
int vmstore_delete(struct vmstore *vs, int64_t id)
{
	return vmstore_set_state(vs, id, VM_STATE_DELETED);
}

/* Removes a message and its audio from the store for good, whatever its
 * state. ENOENT if there is no such message. */
int vmstore_purge(struct vmstore *vs, int64_t id)
{
	sqlite3_stmt *st = NULL;
	int err;

	if (!vs)
		return EINVAL;
	err = sql_prepare(vs, &st, "DELETE FROM message WHERE id = ?");
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, id);
	err = sql_done(vs, st, "purge");
	if (!err && sqlite3_changes(vs->db) == 0)
		err = ENOENT;
	return err;
}

/* ---- greetings ---------------------------------------------------------------- */

static bool greeting_args_ok(const char *mailbox, const char *dialplan,
			     enum vm_greeting kind)
{
	return mailbox && *mailbox && dialplan && *dialplan &&
	       (kind == VM_GREETING_STANDARD || kind == VM_GREETING_OOF);
}

/* Stores (or replaces) a mailbox's greeting of this kind. */
int vmstore_greeting_put(struct vmstore *vs, const char *mailbox,
			 const char *dialplan, enum vm_greeting kind,
			 const int16_t *pcm, size_t samples)
{
	sqlite3_stmt *st = NULL;
	const void *le;
	void *tmp = NULL;
	int err;

	if (!vs || !greeting_args_ok(mailbox, dialplan, kind) ||
	    (!pcm && samples) || samples > MAX_SAMPLES)
		return EINVAL;
	le = samples ? pcm_to_le(pcm, samples, &tmp) : "";
	if (!le)
		return ENOMEM;
	err = sql_prepare(vs, &st, "INSERT OR REPLACE INTO greeting (mailbox,"
				   " dialplan, kind, audio, updated_utc)"
				   " VALUES (?, ?, ?, ?, ?)");
	if (!err) {
		bind_text(st, 1, mailbox);
		bind_text(st, 2, dialplan);
		bind_text(st, 3, greeting_names[kind]);
		sqlite3_bind_blob(st, 4, le, (int)(samples * 2), SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, now_ms());
		err = sql_done(vs, st, "put greeting");
	}
	free(tmp);
	return err;
}

/* Copies a mailbox's greeting of this kind (free *pcm), ENOENT if it has
 * none. */
int vmstore_greeting_get(struct vmstore *vs, const char *mailbox,
			 const char *dialplan, enum vm_greeting kind,
			 int16_t **pcm, size_t *samples)
{
	sqlite3_stmt *st = NULL;
	int16_t *v = NULL;
	size_t ns;
	int err, rc;

	if (!vs || !greeting_args_ok(mailbox, dialplan, kind) || !pcm ||
	    !samples)
		return EINVAL;
	err = sql_prepare(vs, &st, "SELECT audio FROM greeting WHERE"
				   " mailbox = ? AND dialplan = ? AND kind = ?");
	if (err)
		return err;
	bind_text(st, 1, mailbox);
	bind_text(st, 2, dialplan);
	bind_text(st, 3, greeting_names[kind]);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		err = ENOENT;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		err = sql_err(vs, rc, "get greeting");
		goto out;
	}
	ns = (size_t)sqlite3_column_bytes(st, 0) / 2;
	if (ns) {
		v = malloc(ns * sizeof *v);
		if (!v) {
			err = ENOMEM;
			goto out;
		}
		pcm_from_le(v, sqlite3_column_blob(st, 0), ns);
	}
	*pcm = v;
	*samples = ns;
out:
	sqlite3_finalize(st);
	return err;
}

/* Which greetings exist: h(arg, mailbox, dialplan, kind) for each row. */
int vmstore_greeting_each(struct vmstore *vs, vmstore_greeting_h *h,
			  void *arg)
{
	sqlite3_stmt *st = NULL;
	int err, rc;

	if (!vs || !h)
		return EINVAL;
	err = sql_prepare(vs, &st, "SELECT mailbox, dialplan, kind FROM greeting");
	if (err)
		return err;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *kind = (const char *)sqlite3_column_text(st, 2);

		h(arg, (const char *)sqlite3_column_text(st, 0),
		  (const char *)sqlite3_column_text(st, 1),
		  kind && strcmp(kind, "oof") == 0 ? VM_GREETING_OOF
						   : VM_GREETING_STANDARD);
	}
	err = rc == SQLITE_DONE ? 0 : sql_err(vs, rc, "list greetings");
	sqlite3_finalize(st);
	return err;
}

/* Removes a mailbox's greeting of this kind; ENOENT if it had none. */
int vmstore_greeting_delete(struct vmstore *vs, const char *mailbox,
			    const char *dialplan, enum vm_greeting kind)
{
	sqlite3_stmt *st = NULL;
	int err;

	if (!vs || !greeting_args_ok(mailbox, dialplan, kind))
		return EINVAL;
	err = sql_prepare(vs, &st, "DELETE FROM greeting WHERE mailbox = ?"
				   " AND dialplan = ? AND kind = ?");
	if (err)
		return err;
	bind_text(st, 1, mailbox);
	bind_text(st, 2, dialplan);
	bind_text(st, 3, greeting_names[kind]);
	err = sql_done(vs, st, "delete greeting");
	if (!err && sqlite3_changes(vs->db) == 0)
		err = ENOENT;
	return err;
}

/* ---- WAV ------------------------------------------------------------------------ */

static void le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v & 0xff);
	p[1] = (uint8_t)(v >> 8);
}

static void le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v & 0xff);
	p[1] = (uint8_t)(v >> 8 & 0xff);
	p[2] = (uint8_t)(v >> 16 & 0xff);
	p[3] = (uint8_t)(v >> 24);
}

/* Writes a canonical RIFF/WAVE file (PCM, 16-bit, mono, rate Hz): a
 * 44-byte header and the samples. Written to "path.tmp", synced, then
 * renamed, so path is either absent, the old file, or complete. */
int vmstore_write_wav(const char *path, const int16_t *pcm, size_t samples,
		      unsigned rate)
{
	uint8_t h[44], buf[4096];
	char *tmp = NULL;
	uint64_t data = (uint64_t)samples * 2;
	FILE *f = NULL;
	int err = 0;

	if (!path || !*path || (!pcm && samples) || rate == 0 ||
	    rate > 384000 || data + 36 > UINT32_MAX)
		return EINVAL;
	if (asprintf(&tmp, "%s.tmp", path) < 0) {
		tmp = NULL;
		return ENOMEM;
	}
	memcpy(h, "RIFF", 4);
	le32(h + 4, (uint32_t)(36 + data));
	memcpy(h + 8, "WAVEfmt ", 8);
	le32(h + 16, 16);               /* fmt chunk size */
	le16(h + 20, 1);                /* WAVE_FORMAT_PCM */
	le16(h + 22, 1);                /* mono */
	le32(h + 24, rate);
	le32(h + 28, rate * 2);         /* byte rate */
	le16(h + 32, 2);                /* block align */
	le16(h + 34, 16);               /* bits per sample */
	memcpy(h + 36, "data", 4);
	le32(h + 40, (uint32_t)data);

	f = fopen(tmp, "wbx");
	if (!f && errno == EEXIST) {
		/* a stale one from an interrupted export */
		unlink(tmp);
		f = fopen(tmp, "wbx");
	}
	if (!f) {
		err = errno;
		goto out;
	}
	if (fwrite(h, 1, sizeof h, f) != sizeof h) {
		err = errno ? errno : EIO;
		goto out;
	}
	for (size_t i = 0; i < samples;) {
		size_t n = 0;

		for (; i < samples && n + 2 <= sizeof buf; i++, n += 2)
			le16(buf + n, (uint16_t)pcm[i]);
		if (fwrite(buf, 1, n, f) != n) {
			err = errno ? errno : EIO;
			goto out;
		}
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		err = errno ? errno : EIO;
		goto out;
	}
	if (fclose(f) != 0) {
		f = NULL;
		err = errno ? errno : EIO;
		goto out;
	}
	f = NULL;
	if (rename(tmp, path) != 0)
		err = errno;
out:
	if (f)
		fclose(f);
	if (err)
		unlink(tmp);
	free(tmp);
	return err;
}
