/* directory.c — directory.db: schema and migrations, opening it, the
 * embedded default directory, and the typed readers the daemons use. The
 * field tables and validation are in dirfields.c, the generic
 * new/set/get/remove engine that umctl drives in dirops.c; all validation of
 * directory objects lives in those so the daemons and umctl agree on what is
 * valid. */
#define LOG_MODULE "dir"
#include "common/cause.h"
#include "common/directory_int.h"
#include "common/log.h"
#include "common/pin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* ---- small helpers ------------------------------------------------------ */

/* A user's value made safe to quote in a message: control characters become
 * '?', quotes are escaped, long values are cut. */
const char *dir_quote(char *buf, size_t cap, const char *v)
{
	size_t o = 0;

	if (!v)
		v = "";
	for (size_t i = 0; v[i] && o + 5 < cap; i++) {
		unsigned char c = (unsigned char)v[i];

		if (i >= 80) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (c == '"' || c == '\\')
			buf[o++] = '\\';
		buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	buf[o] = '\0';
	return buf;
}

int dir_sql_fail(struct dir *d, int rc, const char *what, char **cause)
{
	cause_first(cause, "directory %s: %s: %s", d->path, what,
		  sqlite3_errmsg(d->db));
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return EBUSY;
	if (rc == SQLITE_NOMEM)
		return ENOMEM;
	if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
		return EINVAL;
	return EIO;
}

int dir_sql_exec(struct dir *d, const char *sql, char **cause)
{
	int rc = sqlite3_exec(d->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : dir_sql_fail(d, rc, "exec", cause);
}

int dir_sql_prepare(struct dir *d, sqlite3_stmt **st, const char *sql,
		    char **cause)
{
	int rc = sqlite3_prepare_v2(d->db, sql, -1, st, NULL);

	return rc == SQLITE_OK ? 0 : dir_sql_fail(d, rc, "prepare", cause);
}

/* Runs a query with up to three text parameters that yields one integer. */
int dir_sql_int(struct dir *d, long long *out, const char *sql,
		const char *a1, const char *a2, const char *a3,
		char **cause)
{
	sqlite3_stmt *st = NULL;
	const char *args[3] = {a1, a2, a3};
	int err, rc;

	err = dir_sql_prepare(d, &st, sql, cause);
	if (err)
		return err;
	for (int i = 0; i < 3 && args[i]; i++)
		sqlite3_bind_text(st, i + 1, args[i], -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		err = 0;
	} else if (rc == SQLITE_DONE) {
		*out = 0;
		err = 0;
	} else {
		err = dir_sql_fail(d, rc, "query", cause);
	}
	sqlite3_finalize(st);
	return err;
}


void dir_copy_col(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	snprintf(dst, cap, "%s", s ? s : "");
}

static int enum_col(sqlite3_stmt *st, int col, const char *const *values)
{
	int i = dir_enum_index(values, (const char *)sqlite3_column_text(st, col));

	return i < 0 ? 0 : i;
}

/* ---- schema ------------------------------------------------------------------ */

/* Migration i takes the schema from version i to i + 1; each runs inside
 * the opening transaction, and user_version records how many ran. Add new
 * steps at the end, never edit a released one. */
static const char *const migrations[] = {
	/* 0 -> 1: the first schema */
	"CREATE TABLE service_settings ("
	" id INTEGER PRIMARY KEY CHECK (id = 1),"
	" ip_address_family TEXT NOT NULL,"
	" ip_address_family_configurable INTEGER NOT NULL,"
	" max_calls_allowed INTEGER NOT NULL,"
	" sip_tcp_listening_port INTEGER NOT NULL,"
	" sip_tls_listening_port INTEGER NOT NULL,"
	" um_startup_mode TEXT NOT NULL,"
	" external_host_fqdn TEXT NOT NULL DEFAULT '');"
	"CREATE TABLE callrouter_settings ("
	" id INTEGER PRIMARY KEY CHECK (id = 1),"
	" ip_address_family TEXT NOT NULL,"
	" ip_address_family_configurable INTEGER NOT NULL,"
	" sip_tcp_listening_port INTEGER NOT NULL,"
	" sip_tls_listening_port INTEGER NOT NULL,"
	" um_startup_mode TEXT NOT NULL,"
	" protocol_log_path TEXT NOT NULL DEFAULT '',"
	" dns_servers TEXT NOT NULL DEFAULT '');"
	"CREATE TABLE gateway ("
	" name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,"
	" address TEXT NOT NULL,"
	" port INTEGER NOT NULL,"
	" ip_address_family TEXT NOT NULL,"
	" status TEXT NOT NULL,"
	" outcalls_allowed INTEGER NOT NULL,"
	" mwi_allowed INTEGER NOT NULL);"
	"CREATE TABLE dialplan ("
	" name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,"
	" uri_type TEXT NOT NULL,"
	" digits INTEGER NOT NULL,"
	" access_numbers TEXT NOT NULL DEFAULT '',"
	" voip_security TEXT NOT NULL,"
	" max_recording_duration INTEGER NOT NULL,"
	" recording_idle_timeout INTEGER NOT NULL,"
	" input_failures INTEGER NOT NULL,"
	" logon_failures INTEGER NOT NULL);"
	"CREATE TABLE huntgroup ("
	" name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,"
	" gateway TEXT NOT NULL COLLATE NOCASE"
	"  REFERENCES gateway(name) ON DELETE RESTRICT,"
	" dialplan TEXT NOT NULL COLLATE NOCASE"
	"  REFERENCES dialplan(name) ON DELETE RESTRICT,"
	" pilot TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX huntgroup_gateway ON huntgroup(gateway);"
	"CREATE INDEX huntgroup_dialplan ON huntgroup(dialplan, gateway);"
	"CREATE TABLE policy ("
	" name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,"
	" min_pin_length INTEGER NOT NULL,"
	" max_logon_attempts INTEGER NOT NULL,"
	" logon_failures_before_pin_reset INTEGER NOT NULL,"
	" pin_history_count INTEGER NOT NULL,"
	" allow_common_patterns INTEGER NOT NULL,"
	" max_greeting_duration INTEGER NOT NULL,"
	" allow_voice_mail_preview INTEGER NOT NULL);"
	"CREATE TABLE mailbox ("
	" id INTEGER PRIMARY KEY,"
	" dialplan TEXT NOT NULL COLLATE NOCASE"
	"  REFERENCES dialplan(name) ON DELETE RESTRICT,"
	" extension TEXT NOT NULL,"
	" display_name TEXT NOT NULL,"
	" policy TEXT NOT NULL COLLATE NOCASE"
	"  REFERENCES policy(name) ON DELETE RESTRICT,"
	" pin_hash TEXT NOT NULL DEFAULT '',"
	" enabled INTEGER NOT NULL DEFAULT 1,"
	" failed_logons INTEGER NOT NULL DEFAULT 0,"
	" locked INTEGER NOT NULL DEFAULT 0,"
	" oof_enabled INTEGER NOT NULL DEFAULT 0,"
	" pin_set_unix INTEGER NOT NULL DEFAULT 0,"
	" UNIQUE (dialplan, extension));"
	"CREATE INDEX mailbox_policy ON mailbox(policy);"
	"CREATE TABLE mailbox_pin_history ("
	" id INTEGER PRIMARY KEY,"
	" mailbox_id INTEGER NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,"
	" pin_hash TEXT NOT NULL,"
	" set_unix INTEGER NOT NULL);"
	"CREATE INDEX pin_history_mailbox ON mailbox_pin_history(mailbox_id);",
	/* 1 -> 2: the outbound connection policy and gateway health */
	"ALTER TABLE service_settings ADD COLUMN"
	" bad_address_interval INTEGER NOT NULL DEFAULT 300;"
	"ALTER TABLE service_settings ADD COLUMN"
	" outbound_stagger INTEGER NOT NULL DEFAULT 250;"
	"ALTER TABLE service_settings ADD COLUMN"
	" gateway_ping_interval INTEGER NOT NULL DEFAULT 60;",
};

_Static_assert(NF(migrations) == DIR_SCHEMA_VERSION,
	       "one migration step per schema version");


/* The embedded default directory: enough to take a call on loopback. */
static int create_defaults(struct dir *d, char **first_pin, char **cause)
{
	static const struct dir_param dp[] = {
		{"name", "default"},
		{"number-of-digits-in-extension", "4"},
		{"access-telephone-numbers", "5000"},
	};
	static const struct dir_param pol[] = {{"name", "default"}};
	static const struct dir_param gw4[] = {
		{"name", "loopback"},
		{"address", "127.0.0.1"},
		{"ip-address-family", "Any"},
	};
	static const struct dir_param gw6[] = {
		{"name", "loopback6"},
		{"address", "::1"},
		{"ip-address-family", "Any"},
	};
	static const struct dir_param hg4[] = {
		{"name", "loopback-default"},
		{"umipgateway", "loopback"},
		{"umdialplan", "default"},
	};
	static const struct dir_param hg6[] = {
		{"name", "loopback6-default"},
		{"umipgateway", "loopback6"},
		{"umdialplan", "default"},
	};
	static const struct dir_param mbx[] = {
		{"extension", "1001"},
		{"display-name", "Alex Example"},
		{"umdialplan", "default"},
	};
	static const struct {
		enum dir_obj_type t;
		const struct dir_param *p;
		size_t n;
	} steps[] = {
		{DIR_OBJ_UMSERVICE, NULL, 0},
		{DIR_OBJ_CALLROUTER, NULL, 0},
		{DIR_OBJ_DIALPLAN, dp, NF(dp)},
		{DIR_OBJ_POLICY, pol, NF(pol)},
		{DIR_OBJ_GATEWAY, gw4, NF(gw4)},
		{DIR_OBJ_GATEWAY, gw6, NF(gw6)},
		{DIR_OBJ_HUNTGROUP, hg4, NF(hg4)},
		{DIR_OBJ_HUNTGROUP, hg6, NF(hg6)},
		{DIR_OBJ_MAILBOX, mbx, NF(mbx)},
	};
	int err;

	for (size_t i = 0; i < NF(steps); i++) {
		err = dir_obj_new_locked(d, steps[i].t, steps[i].p, steps[i].n,
					 true,
					 steps[i].t == DIR_OBJ_MAILBOX ? first_pin
								   : NULL,
					 cause);
		if (err)
			return err;
	}
	return 0;
}

/* Closes the directory; accepts NULL and half-opened handles. */
void dir_close(struct dir *d)
{
	if (!d)
		return;
	sqlite3_close(d->db);
	free(d->path);
	free(d);
}

/* Opens directory.db at path. With DIR_OPEN_CREATE a missing file (or an
 * empty one) is created with the current schema and the embedded default
 * directory; the default mailbox's generated PIN is then handed back once
 * through *first_pin (malloc'd; NULL on every later open). An older schema
 * is migrated; a newer one is refused (ENOTSUP) with a cause. The caller
 * creates the parent directory. */
int dir_open(struct dir **out, const char *path, unsigned flags,
	     char **first_pin, char **cause)
{
	struct dir *d = NULL;
	char *pin = NULL;
	bool created = false, in_tx = false;
	long long ver = 0, nobj = 0;
	int err = 0, rc, fd;
	char sql[64];

	if (!out || !path || !*path)
		return EINVAL;
	/* Create the file ourselves so it is never world-readable: it holds
	 * PIN hashes (SQLite gives its -wal and -shm files the same mode). */
	if (flags & DIR_OPEN_CREATE) {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (fd >= 0)
			close(fd);
		else if (errno != EEXIST) {
			err = errno;
			cause_first(cause, "cannot create %s: %s", path,
				  strerror(err));
			return err;
		}
	}
	d = calloc(1, sizeof *d);
	if (!d || !(d->path = strdup(path))) {
		err = ENOMEM;
		goto out;
	}
	rc = sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE, NULL);
	if (rc != SQLITE_OK) {
		err = access(path, F_OK) == 0 ? EIO : ENOENT;
		cause_first(cause, "cannot open directory %s: %s", path,
			  err == ENOENT ? "no such file"
				       : sqlite3_errstr(rc));
		goto out;
	}
	sqlite3_busy_timeout(d->db, 2000);
	sqlite3_extended_result_codes(d->db, 0);
	err = dir_sql_exec(d, "PRAGMA foreign_keys=ON;"
			  "PRAGMA journal_mode=WAL;"
			  "PRAGMA synchronous=NORMAL;",
			   cause);
	if (err)
		goto out;
	err = dir_sql_exec(d, "BEGIN IMMEDIATE", cause);
	if (err)
		goto out;
	in_tx = true;
	err = dir_sql_int(d, &ver, "PRAGMA user_version", NULL, NULL, NULL,
			  cause);
	if (err)
		goto out;
	if (ver > DIR_SCHEMA_VERSION) {
		err = ENOTSUP;
		cause_first(cause,
			  "directory %s has schema version %lld, newer than "
			  "this OpenUM understands (%d); use a newer build",
			  path, ver, DIR_SCHEMA_VERSION);
		goto out;
	}
	if (ver == 0) {
		err = dir_sql_int(d, &nobj, "SELECT count(*) FROM sqlite_master",
				  NULL, NULL, NULL, cause);
		if (err)
			goto out;
		if (nobj > 0) {
			err = EINVAL;
			cause_first(cause, "%s is an SQLite file but not an "
					 "OpenUM directory", path);
			goto out;
		}
		if (!(flags & DIR_OPEN_CREATE)) {
			err = ENOENT;
			cause_first(cause, "directory %s is empty (umctl creates "
					 "it with defaults)", path);
			goto out;
		}
		created = true;
	}
	for (long long v = ver; v < DIR_SCHEMA_VERSION; v++) {
		err = dir_sql_exec(d, migrations[v], cause);
		if (err)
			goto out;
	}
	if (created) {
		err = create_defaults(d, &pin, cause);
		if (err)
			goto out;
	}
	if (ver != DIR_SCHEMA_VERSION) {
		snprintf(sql, sizeof sql, "PRAGMA user_version=%d",
			 DIR_SCHEMA_VERSION);
		err = dir_sql_exec(d, sql, cause);
		if (err)
			goto out;
	}
	err = dir_sql_exec(d, "COMMIT", cause);
	if (err)
		goto out;
	in_tx = false;
	if (created)
		log_info("created directory %s with the default dial plan, "
			 "gateways and mailbox 1001", path);
	else if (ver != DIR_SCHEMA_VERSION)
		log_info("migrated directory %s from schema %lld to %d", path,
			 ver, DIR_SCHEMA_VERSION);
	*out = d;
	d = NULL;
	if (first_pin) {
		*first_pin = pin;
		pin = NULL;
	}
out:
	if (in_tx)
		sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
	if (pin) {
		memset(pin, 0, strlen(pin));
		free(pin);
	}
	dir_close(d);
	return err;
}

/* ---- typed reads --------------------------------------------------------------- */

/* Reads the UM service settings row. */
int dir_service_settings_get(struct dir *d, struct dir_service_settings *out)
{
	sqlite3_stmt *st = NULL;
	int err;

	err = dir_sql_prepare(d, &st,
			      "SELECT ip_address_family,"
			      " ip_address_family_configurable, max_calls_allowed,"
			      " sip_tcp_listening_port, sip_tls_listening_port,"
			      " um_startup_mode, external_host_fqdn,"
			      " bad_address_interval, outbound_stagger,"
			      " gateway_ping_interval"
			      " FROM service_settings WHERE id = 1",
			      NULL);
	if (err)
		return err;
	if (sqlite3_step(st) != SQLITE_ROW) {
		err = ENOENT;
		goto out;
	}
	memset(out, 0, sizeof *out);
	out->af = (enum dir_af)enum_col(st, 0, dir_af_values);
	out->af_configurable = sqlite3_column_int(st, 1) != 0;
	out->max_calls = (unsigned)sqlite3_column_int(st, 2);
	out->sip_tcp_port = (unsigned)sqlite3_column_int(st, 3);
	out->sip_tls_port = (unsigned)sqlite3_column_int(st, 4);
	out->startup_mode =
		(enum dir_startup_mode)enum_col(st, 5, dir_startup_values);
	dir_copy_col(out->fqdn, sizeof out->fqdn, st, 6);
	out->bad_address_interval_s = (unsigned)sqlite3_column_int(st, 7);
	out->outbound_stagger_ms = (unsigned)sqlite3_column_int(st, 8);
	out->gateway_ping_interval_s = (unsigned)sqlite3_column_int(st, 9);
out:
	sqlite3_finalize(st);
	return err;
}

/* Reads the call router settings row. */
int dir_router_settings_get(struct dir *d, struct dir_router_settings *out)
{
	sqlite3_stmt *st = NULL;
	int err;

	err = dir_sql_prepare(d, &st,
			      "SELECT ip_address_family,"
			      " ip_address_family_configurable,"
			      " sip_tcp_listening_port, sip_tls_listening_port,"
			      " um_startup_mode, protocol_log_path, dns_servers"
			      " FROM callrouter_settings WHERE id = 1",
			      NULL);
	if (err)
		return err;
	if (sqlite3_step(st) != SQLITE_ROW) {
		err = ENOENT;
		goto out;
	}
	memset(out, 0, sizeof *out);
	out->af = (enum dir_af)enum_col(st, 0, dir_af_values);
	out->af_configurable = sqlite3_column_int(st, 1) != 0;
	out->sip_tcp_port = (unsigned)sqlite3_column_int(st, 2);
	out->sip_tls_port = (unsigned)sqlite3_column_int(st, 3);
	out->startup_mode =
		(enum dir_startup_mode)enum_col(st, 4, dir_startup_values);
	dir_copy_col(out->protocol_log, sizeof out->protocol_log, st, 5);
	dir_copy_col(out->dns_servers, sizeof out->dns_servers, st, 6);
out:
	sqlite3_finalize(st);
	return err;
}

/* Refuses (EINVAL + cause) a directory where a dial plan is linked to more
 * than 200 UM IP gateways, Exchange's limit; umservice will not start on
 * one. Such a directory can only come from outside umctl. */
int dir_check_limits(struct dir *d, char **cause)
{
	sqlite3_stmt *st = NULL;
	int err, rc;

	err = dir_sql_prepare(d, &st,
			      "SELECT dialplan, count(DISTINCT gateway) AS n"
			      " FROM huntgroup GROUP BY dialplan"
			      " HAVING n > ?1 ORDER BY n DESC LIMIT 1",
			      cause);
	if (err)
		return err;
	sqlite3_bind_int(st, 1, DIR_MAX_GATEWAYS_PER_DIALPLAN);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		err = EINVAL;
		cause_first(cause,
			  "UM dial plan \"%s\" is linked to %d UM IP gateways; "
			  "Exchange allows at most %d per dial plan (remove "
			  "hunt groups with umctl remove-umhuntgroup)",
			  sqlite3_column_text(st, 0),
			  sqlite3_column_int(st, 1),
			  DIR_MAX_GATEWAYS_PER_DIALPLAN);
	} else if (rc != SQLITE_DONE) {
		err = dir_sql_fail(d, rc, "check limits", cause);
	}
	sqlite3_finalize(st);
	return err;
}

/* Runs a SELECT and fills a growing array of records through `row`. */
static int list_rows(struct dir *d, const char *sql, const char *arg,
		     size_t recsize, void (*row)(sqlite3_stmt *, void *),
		     void **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	char *arr = NULL;
	size_t cnt = 0, cap = 0;
	int err, rc;

	err = dir_sql_prepare(d, &st, sql, NULL);
	if (err)
		return err;
	if (arg)
		sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			char *na = realloc(arr, ncap * recsize);

			if (!na) {
				err = ENOMEM;
				goto out;
			}
			arr = na;
			cap = ncap;
		}
		memset(arr + cnt * recsize, 0, recsize);
		row(st, arr + cnt * recsize);
		cnt++;
	}
	if (rc != SQLITE_DONE) {
		err = dir_sql_fail(d, rc, "list", NULL);
		goto out;
	}
	*out = cnt ? arr : NULL;
	*n = cnt;
	if (!cnt)
		free(arr);
	arr = NULL;
out:
	free(arr);
	sqlite3_finalize(st);
	return err;
}

static void gateway_row(sqlite3_stmt *st, void *p)
{
	struct dir_gateway *g = p;

	dir_copy_col(g->name, sizeof g->name, st, 0);
	dir_copy_col(g->address, sizeof g->address, st, 1);
	g->port = (unsigned)sqlite3_column_int(st, 2);
	g->af = (enum dir_af)enum_col(st, 3, dir_af_values);
	g->status = (enum dir_gw_status)enum_col(st, 4, dir_gw_status_values);
	g->outcalls_allowed = sqlite3_column_int(st, 5) != 0;
	g->mwi_allowed = sqlite3_column_int(st, 6) != 0;
}

/* Every UM IP gateway with all of its fields, by name. */
int dir_gateway_list(struct dir *d, struct dir_gateway **out, size_t *n)
{
	return list_rows(d,
			 "SELECT name, address, port, ip_address_family,"
			 " status, outcalls_allowed, mwi_allowed FROM gateway"
			 " ORDER BY name",
			 NULL, sizeof **out, gateway_row, (void **)out, n);
}

static void huntgroup_row(sqlite3_stmt *st, void *p)
{
	struct dir_huntgroup *h = p;

	dir_copy_col(h->name, sizeof h->name, st, 0);
	dir_copy_col(h->gateway, sizeof h->gateway, st, 1);
	dir_copy_col(h->dialplan, sizeof h->dialplan, st, 2);
	dir_copy_col(h->pilot, sizeof h->pilot, st, 3);
}

/* Every UM hunt group, by name. */
int dir_huntgroup_list(struct dir *d, struct dir_huntgroup **out, size_t *n)
{
	return list_rows(d,
			 "SELECT name, gateway, dialplan, pilot FROM huntgroup"
			 " ORDER BY name",
			 NULL, sizeof **out, huntgroup_row, (void **)out, n);
}

#define DIALPLAN_COLS                                                       \
	"SELECT name, uri_type, digits, access_numbers, voip_security,"    \
	" max_recording_duration, recording_idle_timeout, input_failures," \
	" logon_failures FROM dialplan"

static void dialplan_row(sqlite3_stmt *st, void *p)
{
	struct dir_dialplan *dp = p;

	dir_copy_col(dp->name, sizeof dp->name, st, 0);
	dp->uri_type = (enum dir_uri_type)enum_col(st, 1, dir_uri_values);
	dp->digits = (unsigned)sqlite3_column_int(st, 2);
	dir_copy_col(dp->access_numbers, sizeof dp->access_numbers, st, 3);
	dp->voip_security =
		(enum dir_voip_security)enum_col(st, 4, dir_voip_values);
	dp->max_recording_min = (unsigned)sqlite3_column_int(st, 5);
	dp->recording_idle_s = (unsigned)sqlite3_column_int(st, 6);
	dp->input_failures = (unsigned)sqlite3_column_int(st, 7);
	dp->logon_failures = (unsigned)sqlite3_column_int(st, 8);
}

/* Every UM dial plan, by name. */
int dir_dialplan_list(struct dir *d, struct dir_dialplan **out, size_t *n)
{
	return list_rows(d, DIALPLAN_COLS " ORDER BY name", NULL,
			 sizeof **out, dialplan_row, (void **)out, n);
}

/* One UM dial plan by name (case-insensitive); ENOENT when there is none. */
int dir_dialplan_get(struct dir *d, const char *name,
		     struct dir_dialplan *out)
{
	struct dir_dialplan *arr = NULL;
	size_t n = 0;
	int err;

	err = list_rows(d, DIALPLAN_COLS " WHERE name = ?1", name,
			sizeof *arr, dialplan_row, (void **)&arr, &n);
	if (!err && n == 0)
		err = ENOENT;
	if (!err)
		*out = arr[0];
	free(arr);
	return err;
}

static void policy_row(sqlite3_stmt *st, void *p)
{
	struct dir_policy *pol = p;

	dir_copy_col(pol->name, sizeof pol->name, st, 0);
	pol->min_pin_length = (unsigned)sqlite3_column_int(st, 1);
	pol->max_logon_attempts = (unsigned)sqlite3_column_int(st, 2);
	pol->logon_failures_before_pin_reset =
		(unsigned)sqlite3_column_int(st, 3);
	pol->pin_history_count = (unsigned)sqlite3_column_int(st, 4);
	pol->allow_common_patterns = sqlite3_column_int(st, 5) != 0;
	pol->max_greeting_min = (unsigned)sqlite3_column_int(st, 6);
	pol->allow_voice_mail_preview = sqlite3_column_int(st, 7) != 0;
}

/* One UM mailbox policy by name; ENOENT when there is none. */
int dir_policy_get(struct dir *d, const char *name, struct dir_policy *out)
{
	struct dir_policy *arr = NULL;
	size_t n = 0;
	int err;

	err = list_rows(d,
			"SELECT name, min_pin_length, max_logon_attempts,"
			" logon_failures_before_pin_reset, pin_history_count,"
			" allow_common_patterns, max_greeting_duration,"
			" allow_voice_mail_preview FROM policy"
			" WHERE name = ?1",
			name, sizeof *arr, policy_row, (void **)&arr, &n);
	if (!err && n == 0)
		err = ENOENT;
	if (!err)
		*out = arr[0];
	free(arr);
	return err;
}

#define MAILBOX_COLS                                                        \
	"SELECT id, extension, display_name, dialplan, policy, pin_hash,"  \
	" enabled, failed_logons, locked, oof_enabled FROM mailbox"

static void mailbox_row(sqlite3_stmt *st, void *p)
{
	struct dir_mailbox *m = p;

	m->id = sqlite3_column_int64(st, 0);
	dir_copy_col(m->extension, sizeof m->extension, st, 1);
	dir_copy_col(m->display_name, sizeof m->display_name, st, 2);
	dir_copy_col(m->dialplan, sizeof m->dialplan, st, 3);
	dir_copy_col(m->policy, sizeof m->policy, st, 4);
	dir_copy_col(m->pin_hash, sizeof m->pin_hash, st, 5);
	m->enabled = sqlite3_column_int(st, 6) != 0;
	m->failed_logons = (unsigned)sqlite3_column_int(st, 7);
	m->locked = sqlite3_column_int(st, 8) != 0;
	m->oof_enabled = sqlite3_column_int(st, 9) != 0;
}

/* The mailbox with this extension in this dial plan (enabled or not);
 * ENOENT when there is none. */
int dir_mailbox_find(struct dir *d, const char *dialplan,
		     const char *extension, struct dir_mailbox *out)
{
	sqlite3_stmt *st = NULL;
	int err, rc;

	if (!dialplan || !extension)
		return EINVAL;
	err = dir_sql_prepare(d, &st,
			      MAILBOX_COLS " WHERE dialplan = ?1 AND extension = ?2",
			      NULL);
	if (err)
		return err;
	sqlite3_bind_text(st, 1, dialplan, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, extension, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(out, 0, sizeof *out);
		mailbox_row(st, out);
	} else {
		err = rc == SQLITE_DONE ? ENOENT : dir_sql_fail(d, rc, "find", NULL);
	}
	sqlite3_finalize(st);
	return err;
}

/* Every mailbox, or those of one dial plan (dialplan non-NULL), ordered by
 * dial plan and extension. */
int dir_mailbox_list(struct dir *d, const char *dialplan,
		     struct dir_mailbox **out, size_t *n)
{
	return list_rows(d,
			 dialplan ? MAILBOX_COLS " WHERE dialplan = ?1"
					       " ORDER BY dialplan, extension"
				  : MAILBOX_COLS " ORDER BY dialplan, extension",
			 dialplan, sizeof **out, mailbox_row, (void **)out, n);
}

/* Records the outcome of a logon by phone: success clears FailedLogons; a
 * failure adds one and locks the mailbox once MaxLogonAttempts (max) is
 * reached. *failures and *locked get the values afterwards. One statement,
 * so concurrent logons of one mailbox count every failure. */
int dir_mailbox_logon_result(struct dir *d, long long id, bool ok,
			     unsigned max, unsigned *failures, bool *locked)
{
	sqlite3_stmt *st = NULL;
	int err, rc;

	err = dir_sql_prepare(d, &st,
			      ok ? "UPDATE mailbox SET failed_logons = 0 WHERE id = ?1"
			       " RETURNING failed_logons, locked"
			     : "UPDATE mailbox SET failed_logons = failed_logons + 1,"
			       " locked = CASE WHEN failed_logons + 1 >= ?2 THEN 1"
			       " ELSE locked END WHERE id = ?1"
			       " RETURNING failed_logons, locked",
			      NULL);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, id);
	if (!ok)
		sqlite3_bind_int(st, 2, (int)(max ? max : 1));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (failures)
			*failures = (unsigned)sqlite3_column_int(st, 0);
		if (locked)
			*locked = sqlite3_column_int(st, 1) != 0;
		rc = sqlite3_step(st);
	} else if (rc == SQLITE_DONE) {
		err = ENOENT;
	}
	if (!err && rc != SQLITE_DONE)
		err = dir_sql_fail(d, rc, "logon result", NULL);
	sqlite3_finalize(st);
	return err;
}

/* Turns a mailbox's out-of-office greeting on or off (by phone). */
int dir_mailbox_set_oof(struct dir *d, long long id, bool on)
{
	sqlite3_stmt *st = NULL;
	int err, rc;

	err = dir_sql_prepare(d, &st, "UPDATE mailbox SET oof_enabled = ?2"
				  " WHERE id = ?1", NULL);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, on ? 1 : 0);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		err = dir_sql_fail(d, rc, "set oof", NULL);
	else if (sqlite3_changes(d->db) == 0)
		err = ENOENT;
	sqlite3_finalize(st);
	return err;
}
