/* directory_int.h — what the three parts of the directory share and nothing
 * else sees: the handle, the SQL helpers, the enum name tables and the
 * engine's entry for the embedded default directory.
 *
 *   directory.c  directory.db: schema, migrations, open, the embedded
 *                default, the typed readers the daemons use
 *   dirfields.c  enum names, value validators, the field descriptor tables
 *   dirops.c     the generic new/set/get/remove engine that umctl drives */
#ifndef OPENUM_DIRECTORY_INT_H
#define OPENUM_DIRECTORY_INT_H

#include "common/directory.h"

#include <stdbool.h>
#include <stddef.h>

#include <sqlite3.h>

#define DIR_MAX_FIELDS 16
#define CANON_MAX 1024
#define NF(a) (sizeof(a) / sizeof((a)[0]))

struct dir {
	sqlite3 *db;
	char *path;
};

/* A user's value made safe to quote in a message: control characters become
 * '?', quotes are escaped, long values are cut. */
const char *dir_quote(char *buf, size_t cap, const char *v);

/* SQLite's rc as an errno, with the cause "directory PATH: what: message". */
int dir_sql_fail(struct dir *d, int rc, const char *what, char **cause);
int dir_sql_exec(struct dir *d, const char *sql, char **cause);
int dir_sql_prepare(struct dir *d, sqlite3_stmt **st, const char *sql,
		    char **cause);
/* Runs a query with up to three text parameters that yields one integer. */
int dir_sql_int(struct dir *d, long long *out, const char *sql,
		const char *a1, const char *a2, const char *a3, char **cause);
/* Column col as text into dst ("" for NULL). */
void dir_copy_col(char *dst, size_t cap, sqlite3_stmt *st, int col);

/* Index of s in the NULL-terminated values (case-insensitive), or -1. */
int dir_enum_index(const char *const *values, const char *s);
/* The names of enum dir_af, dir_startup_mode, dir_gw_status, dir_uri_type
 * and dir_voip_security, in enum order, NULL-terminated. */
extern const char *const dir_af_values[];
extern const char *const dir_startup_values[];
extern const char *const dir_gw_status_values[];
extern const char *const dir_uri_values[];
extern const char *const dir_voip_values[];
/* NULL if in is a valid object name (canonical form into canon), else why. */
const char *dir_v_name(const char *in, char *canon, size_t cap);

/* dir_obj_new inside the caller's transaction; internal also writes the
 * read-only fields (the embedded default). */
int dir_obj_new_locked(struct dir *d, enum dir_obj_type t,
		       const struct dir_param *p, size_t n, bool internal,
		       char **new_pin, char **cause);

#endif
