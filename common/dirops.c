/* dirops.c — the generic engine behind umctl's New-/Set-/Get-/Remove- verbs:
 * a change is parsed field by field against the type's descriptor table
 * (dirfields.c), checked as a whole (references, limits, PIN policy) and
 * written in one transaction. */
#define LOG_MODULE "dir"
#include "common/cause.h"
#include "common/directory_int.h"
#include "common/log.h"
#include "common/pin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Names (up to 5) returned by a query with one text parameter, joined by
 * ", " into buf; returns the total count. */
static long long sql_names(struct dir *d, const char *sql, const char *arg,
			   char *buf, size_t cap)
{
	sqlite3_stmt *st = NULL;
	long long n = 0;
	size_t o = 0;

	buf[0] = '\0';
	if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0);

		if (n < 5 && s) {
			int w = snprintf(buf + o, cap - o, "%s%s",
					 n ? ", " : "", s);
			if (w > 0 && (size_t)w < cap - o)
				o += (size_t)w;
		} else if (n == 5 && o + 5 < cap) {
			memcpy(buf + o, ", ...", 6);
			o += 5;
		}
		n++;
	}
	sqlite3_finalize(st);
	return n;
}

/* ---- the generic engine ---------------------------------------------------------- */

/* One new/set in progress: the values as text in canonical form (booleans
 * "1"/"0"), indexed like the type's field table. */
struct op {
	struct dir *d;
	enum dir_obj_type t;
	const struct dir_objtype *ot;
	bool is_new;
	long long rowid;
	char name[DIR_NAME_MAX + 1];  /* canonical identity (named types) */
	char *cur[DIR_MAX_FIELDS];    /* stored values before a set */
	char *val[DIR_MAX_FIELDS];    /* values to write */
	bool given[DIR_MAX_FIELDS];
	char *pin;                    /* new PIN in clear: given or generated */
	bool pin_generated;
	bool unlock;
	bool drop_calls;
};


static void op_free(struct op *op)
{
	for (int i = 0; i < DIR_MAX_FIELDS; i++) {
		free(op->cur[i]);
		free(op->val[i]);
	}
	if (op->pin) {
		memset(op->pin, 0, strlen(op->pin));
		free(op->pin);
	}
}

/* Index of a field every caller knows exists (a broken table is a bug). */
static int fidx(const struct dir_objtype *ot, const char *param)
{
	for (size_t i = 0; i < ot->nfields; i++) {
		if (strcmp(ot->fields[i].param, param) == 0)
			return (int)i;
	}
	log_error("%s has no field %s", ot->noun, param);
	abort();
}

static const char *opval(const struct op *op, const char *param)
{
	return op->val[fidx(op->ot, param)];
}

static bool is_true(const char *v)
{
	return v && strcmp(v, "1") == 0;
}

/* A phrase for what a field allows, for causes and help. */
static void field_allowed(const struct dir_field *f, char *buf, size_t cap)
{
	size_t o = 0;

	switch (f->kind) {
	case DIR_KIND_INT:
		snprintf(buf, cap, "an integer from %ld to %ld", f->min,
			 f->max);
		return;
	case DIR_KIND_BOOL:
	case DIR_KIND_ACTION:
		snprintf(buf, cap,
			 "a boolean (true, false, $true, $false, 1, 0, yes, no)");
		return;
	case DIR_KIND_ENUM:
		o = (size_t)snprintf(buf, cap, "one of ");
		for (int i = 0; f->values[i] && o < cap; i++)
			o += (size_t)snprintf(buf + o, cap - o, "%s%s",
					      i ? ", " : "", f->values[i]);
		return;
	default:
		snprintf(buf, cap, "%s",
			 f->allowed ? f->allowed : "a string");
		return;
	}
}

static int parse_int(const char *s, long *out)
{
	char *end;
	long v;

	if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 9)
		return EINVAL;
	v = strtol(s, &end, 10);
	*out = v;
	return 0;
}

/* Checks one value against its field and writes its canonical form. */
static int field_parse(const struct dir_field *f, const char *in, char **out,
		       char **cause)
{
	char canon[CANON_MAX], q[128], allowed[160];
	const char *why = NULL;
	size_t len = strlen(in);
	long v;
	bool b;
	int i;

	field_allowed(f, allowed, sizeof allowed);
	canon[0] = '\0';
	switch (f->kind) {
	case DIR_KIND_STRING:
	case DIR_KIND_REF:
		if (f->kind == DIR_KIND_STRING &&
		    (len < (size_t)f->min || len > (size_t)f->max)) {
			why = allowed;
			break;
		}
		if (f->kind == DIR_KIND_REF)
			why = dir_v_name(in, canon, sizeof canon)
				      ? allowed
				      : NULL;
		else if (f->validate)
			why = f->validate(in, canon, sizeof canon);
		else
			snprintf(canon, sizeof canon, "%s", in);
		break;
	case DIR_KIND_INT:
		if (parse_int(in, &v) || v < f->min || v > f->max)
			why = allowed;
		else
			snprintf(canon, sizeof canon, "%ld", v);
		break;
	case DIR_KIND_BOOL:
	case DIR_KIND_ACTION:
		if (dir_parse_bool(in, &b))
			why = allowed;
		else
			snprintf(canon, sizeof canon, "%d", b ? 1 : 0);
		break;
	case DIR_KIND_ENUM:
		i = dir_enum_index(f->values, in);
		if (i < 0)
			why = allowed;
		else
			snprintf(canon, sizeof canon, "%s", f->values[i]);
		break;
	case DIR_KIND_SECRET:
		if (!len || len > PIN_MAX_DIGITS ||
		    strspn(in, "0123456789") != len) {
			cause_first(cause, "--%s: a PIN is digits 0-9 only, at "
					 "most %d",
				  f->param, PIN_MAX_DIGITS);
			return EINVAL;
		}
		snprintf(canon, sizeof canon, "%s", in);
		break;
	case DIR_KIND_LIST: {
		size_t o = 0;
		const char *p = in;

		if (len > (size_t)f->max) {
			cause_first(cause, "--%s: the list is longer than %ld "
					 "characters",
				  f->param, f->max);
			return EINVAL;
		}
		while (*p == ' ')
			p++;
		while (*p) {
			char item[CANON_MAX], citem[CANON_MAX];
			size_t n = strcspn(p, ",");

			memcpy(item, p, n);
			item[n] = '\0';
			while (n && item[n - 1] == ' ')
				item[--n] = '\0';
			why = n ? f->validate(item, citem, sizeof citem)
				: "a comma-separated list without empty items";
			if (why) {
				cause_first(cause, "--%s: \"%s\" is not %s",
					  f->param, dir_quote(q, sizeof q, item),
					  why);
				return EINVAL;
			}
			for (const char *c = canon; *c;) {
				size_t m = strcspn(c, ",");

				if (m == strlen(citem) &&
				    strncmp(c, citem, m) == 0) {
					cause_first(cause, "--%s: \"%s\" is "
							 "listed twice",
						  f->param, citem);
					return EINVAL;
				}
				c += m + (c[m] == ',');
			}
			o += (size_t)snprintf(canon + o, sizeof canon - o,
					      "%s%s", o ? "," : "", citem);
			p += strcspn(p, ",");
			if (*p == ',') {
				p++;
				while (*p == ' ')
					p++;
				if (!*p) {
					cause_first(cause, "--%s: a list ends "
							 "with a comma",
						  f->param);
					return EINVAL;
				}
			}
		}
		break;
	}
	}
	if (why) {
		cause_first(cause, "--%s: \"%s\" is not %s", f->param,
			  dir_quote(q, sizeof q, in), why);
		return EINVAL;
	}
	*out = strdup(canon);
	return *out ? 0 : ENOMEM;
}

/* Applies the user's params to op (mode: new or set). */
static int op_apply(struct op *op, const struct dir_param *params, size_t n,
		    char **cause)
{
	const struct dir_objtype *ot = op->ot;

	for (size_t k = 0; k < n; k++) {
		const struct dir_param *p = &params[k];
		const struct dir_field *f = dir_field_find(op->t, p->name);
		char *canon = NULL;
		int i, err;

		if (!f) {
			cause_first(cause, "--%s: not a parameter of %s",
				  p->name ? p->name : "", ot->noun);
			return EINVAL;
		}
		i = (int)(f - ot->fields);
		if (!(f->flags & (op->is_new ? DIR_FF_NEW : DIR_FF_SET))) {
			if (!(f->flags & (DIR_FF_NEW | DIR_FF_SET)))
				cause_first(cause, "--%s: %s is read-only",
					  f->param, f->label);
			else if (op->is_new)
				cause_first(cause, "--%s: only when changing "
						 "an existing %s",
					  f->param, ot->title);
			else if (f->flags & DIR_FF_IDENTITY)
				cause_first(cause, "--%s: the %s of a %s cannot "
						 "be changed",
					  f->param, f->label, ot->title);
			else
				cause_first(cause, "--%s: cannot be changed "
						 "once the %s exists (remove "
						 "it and create it again)",
					  f->param, ot->title);
			return EINVAL;
		}
		if (op->given[i]) {
			cause_first(cause, "--%s: given twice", f->param);
			return EINVAL;
		}
		if (!p->value) {
			cause_first(cause, "--%s: missing value", f->param);
			return EINVAL;
		}
		err = field_parse(f, p->value, &canon, cause);
		if (err)
			return err;
		op->given[i] = true;
		if (f->kind == DIR_KIND_SECRET) {
			op->pin = canon;
		} else if (f->kind == DIR_KIND_ACTION) {
			if (!strcmp(f->param, "drop-calls"))
				op->drop_calls = is_true(canon);
			else
				op->unlock = is_true(canon);
			free(canon);
		} else {
			free(op->val[i]);
			op->val[i] = canon;
		}
	}
	return 0;
}

/* Looks up one text value; ENOENT when there is no row. */
static int sql_text(struct dir *d, char *buf, size_t cap, const char *sql,
		    const char *a1, char **cause)
{
	sqlite3_stmt *st = NULL;
	int err, rc;

	err = dir_sql_prepare(d, &st, sql, cause);
	if (err)
		return err;
	if (a1)
		sqlite3_bind_text(st, 1, a1, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		dir_copy_col(buf, cap, st, 0);
	else
		err = rc == SQLITE_DONE ? ENOENT
					: dir_sql_fail(d, rc, "query", cause);
	sqlite3_finalize(st);
	return err;
}

/* Finds the row an identity names. Named types: the name. Mailboxes:
 * "EXT" or "DIALPLAN/EXT". Singletons: the one row. */
static int op_find(struct op *op, const char *identity, char **cause)
{
	struct dir *d = op->d;
	char sql[256], q[128], dp[DIR_NAME_MAX + 2] = "";
	const char *ext = identity;
	sqlite3_stmt *st = NULL;
	long long n = 0;
	int err, rc;

	if (op->ot->singleton) {
		snprintf(sql, sizeof sql, "SELECT rowid FROM %s WHERE id = 1",
			 op->ot->table);
		err = dir_sql_int(d, &op->rowid, sql, NULL, NULL, NULL, cause);
		if (!err && !op->rowid) {
			err = ENOENT;
			cause_first(cause, "the %s settings are missing from %s",
				  op->ot->title, d->path);
		}
		return err;
	}
	if (!identity || !*identity) {
		cause_first(cause, "which %s? give its %s", op->ot->title,
			  op->t == DIR_OBJ_MAILBOX ? "--extension"
						   : "--identity");
		return EINVAL;
	}
	if (op->t != DIR_OBJ_MAILBOX) {
		snprintf(sql, sizeof sql,
			 "SELECT rowid, name FROM %s WHERE name = ?1",
			 op->ot->table);
		err = dir_sql_prepare(d, &st, sql, cause);
		if (err)
			return err;
		sqlite3_bind_text(st, 1, identity, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			op->rowid = sqlite3_column_int64(st, 0);
			dir_copy_col(op->name, sizeof op->name, st, 1);
		} else if (rc == SQLITE_DONE) {
			err = ENOENT;
			cause_first(cause, "no %s named \"%s\" (see umctl get-%s)",
				  op->ot->title,
				  dir_quote(q, sizeof q, identity), op->ot->noun);
		} else {
			err = dir_sql_fail(d, rc, "find", cause);
		}
		sqlite3_finalize(st);
		return err;
	}
	if (strchr(identity, '/')) {
		size_t l = (size_t)(strchr(identity, '/') - identity);

		if (l >= sizeof dp)
			l = sizeof dp - 1;
		memcpy(dp, identity, l);
		dp[l] = '\0';
		ext = identity + strcspn(identity, "/") + 1;
	}
	err = dir_sql_prepare(d, &st,
			      "SELECT id, dialplan FROM mailbox WHERE extension = ?1"
			      " AND (?2 = '' OR dialplan = ?2) ORDER BY dialplan",
			      cause);
	if (err)
		return err;
	sqlite3_bind_text(st, 1, ext, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, dp, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		op->rowid = sqlite3_column_int64(st, 0);
		dir_copy_col(op->name, sizeof op->name, st, 1);
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return dir_sql_fail(d, rc, "find", cause);
	if (n == 0) {
		cause_first(cause, "no UM mailbox with extension \"%s\"%s%s%s",
			  dir_quote(q, sizeof q, ext),
			  *dp ? " in dial plan \"" : "", dp, *dp ? "\"" : "");
		return ENOENT;
	}
	if (n > 1) {
		cause_first(cause, "extension %s exists in %lld dial plans; "
				 "give --umdialplan",
			  ext, n);
		return EINVAL;
	}
	return 0;
}

/* Loads the stored values of op->rowid into cur and val. */
static int op_load(struct op *op, char **cause)
{
	char sql[1024];
	size_t o;
	sqlite3_stmt *st = NULL;
	int err, rc, col = 0;

	o = (size_t)snprintf(sql, sizeof sql, "SELECT 0");
	for (size_t i = 0; i < op->ot->nfields; i++) {
		if (op->ot->fields[i].flags & DIR_FF_STORE)
			o += (size_t)snprintf(sql + o, sizeof sql - o, ", %s",
					      op->ot->fields[i].column);
	}
	snprintf(sql + o, sizeof sql - o, " FROM %s WHERE rowid = %lld",
		 op->ot->table, op->rowid);
	err = dir_sql_prepare(op->d, &st, sql, cause);
	if (err)
		return err;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		err = dir_sql_fail(op->d, rc, "load", cause);
		goto out;
	}
	for (size_t i = 0; i < op->ot->nfields; i++) {
		const char *s;

		if (!(op->ot->fields[i].flags & DIR_FF_STORE))
			continue;
		s = (const char *)sqlite3_column_text(st, ++col);
		free(op->cur[i]);
		free(op->val[i]);
		op->cur[i] = strdup(s ? s : "");
		op->val[i] = strdup(s ? s : "");
		if (!op->cur[i] || !op->val[i]) {
			err = ENOMEM;
			goto out;
		}
	}
out:
	sqlite3_finalize(st);
	return err;
}

/* Every referenced object must exist; the stored name takes its canonical
 * spelling. */
static int op_check_refs(struct op *op, char **cause)
{
	for (size_t i = 0; i < op->ot->nfields; i++) {
		const struct dir_field *f = &op->ot->fields[i];
		const struct dir_objtype *rt;
		char sql[128], name[DIR_NAME_MAX + 1], q[128];
		int err;

		if (f->kind != DIR_KIND_REF || !op->val[i] ||
		    (!op->is_new && !op->given[i]))
			continue;
		rt = dir_objtype_get(f->ref);
		snprintf(sql, sizeof sql, "SELECT name FROM %s WHERE name = ?1",
			 rt->table);
		err = sql_text(op->d, name, sizeof name, sql, op->val[i],
			       cause);
		if (err == ENOENT) {
			cause_first(cause, "--%s: no %s named \"%s\"%s (see "
					 "umctl get-%s)",
				  f->param, rt->title,
				  dir_quote(q, sizeof q, op->val[i]),
				  op->given[i] ? "" : " (the default)",
				  rt->noun);
			return EINVAL;
		}
		if (err)
			return err;
		free(op->val[i]);
		op->val[i] = strdup(name);
		if (!op->val[i])
			return ENOMEM;
	}
	return 0;
}

static int check_singleton(struct op *op, char **cause)
{
	int af = fidx(op->ot, "ip-address-family");
	int conf = fidx(op->ot, "ip-address-family-configurable");
	int tcp = fidx(op->ot, "sip-tcp-listening-port");
	int tls = fidx(op->ot, "sip-tls-listening-port");

	/* Allowed when configurable was true, or this very command makes it
	 * true. */
	if (!op->is_new && strcmp(op->cur[af], op->val[af]) != 0 &&
	    !is_true(op->cur[conf]) && !is_true(op->val[conf])) {
		cause_first(cause, "--ip-address-family: refused: "
				 "IPAddressFamilyConfigurable is False for the "
				 "%s; set --ip-address-family-configurable "
				 "true first",
			  op->ot->title);
		return EPERM;
	}
	if (strcmp(op->val[tcp], op->val[tls]) == 0) {
		cause_first(cause, "--%s: SipTcpListeningPort and "
				 "SipTlsListeningPort cannot both be %s",
			  op->given[tls] ? "sip-tls-listening-port"
					 : "sip-tcp-listening-port",
			  op->val[tcp]);
		return EINVAL;
	}
	return 0;
}

static int check_gateway(struct op *op, char **cause)
{
	int ai = fidx(op->ot, "address"), fi = fidx(op->ot, "ip-address-family");
	const char *addr = op->val[ai], *af = op->val[fi];
	const char *status = op->val[fidx(op->ot, "status")];

	if (op->drop_calls && strcmp(status, "Disabled") != 0) {
		cause_first(cause, "--drop-calls: only with --status Disabled "
				 "(the gateway's Status would be %s)", status);
		return EINVAL;
	}
	bool v6 = dir_check_ipv6(addr) == 0, v4 = dir_check_ipv4(addr) == 0;
	bool name_af = op->given[fi] && !op->given[ai];

	if (v6 && strcmp(af, "IPv4Only") == 0) {
		if (name_af)
			cause_first(cause, "--ip-address-family: IPv4Only "
					 "refused: the gateway's Address %s "
					 "is an IPv6 address; use IPv6Only or "
					 "Any",
				  addr);
		else
			cause_first(cause, "--address: %s is an IPv6 address "
					 "but IPAddressFamily is IPv4Only%s; "
					 "add --ip-address-family IPv6Only "
					 "or Any",
				  addr,
				  op->given[fi] ? ""
				  : op->is_new ? " (the default)"
					       : " (the gateway's setting)");
		return EINVAL;
	}
	if (v4 && strcmp(af, "IPv6Only") == 0) {
		if (name_af)
			cause_first(cause, "--ip-address-family: IPv6Only "
					 "refused: the gateway's Address %s "
					 "is an IPv4 address; use IPv4Only or "
					 "Any",
				  addr);
		else
			cause_first(cause, "--address: %s is an IPv4 address "
					 "but IPAddressFamily is IPv6Only; "
					 "use an IPv6 address or FQDN, or "
					 "--ip-address-family IPv4Only or Any",
				  addr);
		return EINVAL;
	}
	return 0;
}

static int check_dialplan(struct op *op, char **cause)
{
	static const char *const where =
		" FROM mailbox WHERE dialplan = ?1"
		" AND length(extension) <> CAST(?2 AS INTEGER)";
	int di = fidx(op->ot, "number-of-digits-in-extension");
	char sql[256], names[160] = "";
	sqlite3_stmt *st = NULL;
	long long n = 0;
	size_t o = 0;
	int err;

	if (op->is_new || strcmp(op->cur[di], op->val[di]) == 0)
		return 0;
	snprintf(sql, sizeof sql, "SELECT count(*)%s", where);
	err = dir_sql_int(op->d, &n, sql, op->name, op->val[di], NULL, cause);
	if (err || n == 0)
		return err;
	snprintf(sql, sizeof sql, "SELECT extension%s ORDER BY extension "
				  "LIMIT 5", where);
	if (sqlite3_prepare_v2(op->d->db, sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, op->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, op->val[di], -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW && o < 100)
			o += (size_t)snprintf(names + o, sizeof names - o,
					      "%s%s", o ? ", " : "",
					      sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	cause_first(cause, "--number-of-digits-in-extension: refused: UM dial "
			 "plan \"%s\" has %lld mailbox(es) whose extension is "
			 "not %s digits long (%s%s); change or remove them "
			 "first",
		  op->name, n, op->val[di], names, n > 5 ? ", ..." : "");
	return EBUSY;
}

static int check_huntgroup(struct op *op, char **cause)
{
	const char *gw = opval(op, "umipgateway");
	const char *dp = opval(op, "umdialplan");
	const char *pilot = opval(op, "pilot-identifier");
	char other[DIR_NAME_MAX + 1];
	long long linked = 0, ngw = 0;
	sqlite3_stmt *st = NULL;
	int err;

	err = dir_sql_prepare(op->d, &st,
			      "SELECT name FROM huntgroup WHERE gateway = ?1 AND "
			      "dialplan = ?2 AND pilot = ?3",
			      cause);
	if (err)
		return err;
	sqlite3_bind_text(st, 1, gw, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, dp, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, pilot, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		dir_copy_col(other, sizeof other, st, 0);
		sqlite3_finalize(st);
		cause_first(cause, "UM hunt group \"%s\" already links UM IP "
				 "gateway \"%s\" to UM dial plan \"%s\" with "
				 "PilotIdentifier \"%s\"",
			  other, gw, dp, pilot);
		return EEXIST;
	}
	sqlite3_finalize(st);
	err = dir_sql_int(op->d, &linked,
			  "SELECT count(*) FROM huntgroup WHERE dialplan = ?1 AND "
			  "gateway = ?2",
			  dp, gw, NULL, cause);
	if (!err && !linked)
		err = dir_sql_int(op->d, &ngw,
				  "SELECT count(DISTINCT gateway) FROM huntgroup "
				  "WHERE dialplan = ?1",
				  dp, NULL, NULL, cause);
	if (err)
		return err;
	if (!linked && ngw >= DIR_MAX_GATEWAYS_PER_DIALPLAN) {
		cause_first(cause, "--umdialplan: refused: UM dial plan \"%s\" "
				 "already has %lld UM IP gateways; Exchange "
				 "allows at most %d per dial plan, and \"%s\" "
				 "would be one more",
			  dp, ngw, DIR_MAX_GATEWAYS_PER_DIALPLAN, gw);
		return ENOSPC;
	}
	return 0;
}

static int check_policy(struct op *op, char **cause)
{
	int mi = fidx(op->ot, "max-logon-attempts");
	int ri = fidx(op->ot, "logon-failures-before-pin-reset");

	if (atol(op->val[ri]) >= atol(op->val[mi])) {
		bool name_max = op->given[mi] && !op->given[ri];

		cause_first(cause, "--%s: LogonFailuresBeforePINReset (%s) must "
				 "be less than MaxLogonAttempts (%s)",
			  name_max ? "max-logon-attempts"
				   : "logon-failures-before-pin-reset",
			  op->val[ri], op->val[mi]);
		return EINVAL;
	}
	return 0;
}


/* A PIN the policy accepts for this extension: at least 6 digits. */
static int generate_pin(const struct dir_policy *pol, const char *ext,
			char **out)
{
	struct pin_policy pp = {pol->min_pin_length, false};
	unsigned digits = pol->min_pin_length > 6 ? pol->min_pin_length : 6;
	char buf[PIN_MAX_DIGITS + 1];
	int err;

	for (int tries = 0; tries < 1000; tries++) {
		err = pin_generate(buf, sizeof buf, digits);
		if (err)
			return err;
		if (pin_policy_check(&pp, ext, buf, NULL) == 0) {
			*out = strdup(buf);
			memset(buf, 0, sizeof buf);
			return *out ? 0 : ENOMEM;
		}
	}
	return EIO;
}

/* Whether a PIN is one of the mailbox's last `count` PINs. */
static int pin_in_history(struct dir *d, long long id, unsigned count,
			  const char *pin, bool *found, char **cause)
{
	sqlite3_stmt *st = NULL;
	int err, rc;

	*found = false;
	err = dir_sql_prepare(d, &st,
			      "SELECT pin_hash FROM mailbox_pin_history WHERE "
			      "mailbox_id = ?1 ORDER BY id DESC LIMIT ?2",
			      cause);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, (int)count);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (pin_verify((const char *)sqlite3_column_text(st, 0),
			       pin) == 0) {
			*found = true;
			break;
		}
	}
	sqlite3_finalize(st);
	return 0;
}

static int check_mailbox(struct op *op, char **cause)
{
	const char *ext = opval(op, "extension");
	const char *dpname = opval(op, "umdialplan");
	struct dir_dialplan dp;
	struct dir_policy pol;
	struct pin_policy pp;
	char *why = NULL;
	bool found;
	int err;

	err = dir_dialplan_get(op->d, dpname, &dp);
	if (err) {
		cause_first(cause, "--umdialplan: no UM dial plan named \"%s\"",
			  dpname);
		return err == ENOENT ? EINVAL : err;
	}
	if (strlen(ext) != dp.digits) {
		cause_first(cause, "--extension: \"%s\" has %zu digits but UM "
				 "dial plan \"%s\" has NumberOfDigitsInExtension "
				 "%u",
			  ext, strlen(ext), dp.name, dp.digits);
		return EINVAL;
	}
	err = dir_policy_get(op->d, opval(op, "ummailboxpolicy"), &pol);
	if (err) {
		cause_first(cause, "--ummailboxpolicy: no UM mailbox policy "
				 "named \"%s\"",
			  opval(op, "ummailboxpolicy"));
		return err == ENOENT ? EINVAL : err;
	}
	if (op->pin) {
		pp.min_length = pol.min_pin_length;
		pp.allow_common_patterns = pol.allow_common_patterns;
		if (pin_policy_check(&pp, ext, op->pin, &why)) {
			cause_first(cause, "--pin: %s", why ? why : "refused");
			free(why);
			return EINVAL;
		}
		if (op->rowid) {
			err = pin_in_history(op->d, op->rowid,
					     pol.pin_history_count, op->pin,
					     &found, cause);
			if (err)
				return err;
			if (found) {
				cause_first(cause, "--pin: refused: the PIN is "
						 "one of this mailbox's last %u "
						 "PINs (PINHistoryCount)",
					  pol.pin_history_count);
				return EINVAL;
			}
		}
	} else if (op->is_new) {
		err = generate_pin(&pol, ext, &op->pin);
		if (err)
			return err;
		op->pin_generated = true;
	}
	return 0;
}

static int op_check(struct op *op, char **cause)
{
	switch (op->t) {
	case DIR_OBJ_UMSERVICE:
	case DIR_OBJ_CALLROUTER:
		return check_singleton(op, cause);
	case DIR_OBJ_GATEWAY:
		return check_gateway(op, cause);
	case DIR_OBJ_DIALPLAN:
		return check_dialplan(op, cause);
	case DIR_OBJ_HUNTGROUP:
		return check_huntgroup(op, cause);
	case DIR_OBJ_POLICY:
		return check_policy(op, cause);
	case DIR_OBJ_MAILBOX:
		return check_mailbox(op, cause);
	default:
		return EINVAL;
	}
}

static void bind_val(sqlite3_stmt *st, int idx, const struct dir_field *f,
		     const char *v)
{
	if (f->kind == DIR_KIND_INT || f->kind == DIR_KIND_BOOL)
		sqlite3_bind_int64(st, idx, strtoll(v, NULL, 10));
	else
		sqlite3_bind_text(st, idx, v, -1, SQLITE_TRANSIENT);
}

/* INSERTs (new) or UPDATEs (set) the stored fields, then the mailbox's PIN
 * and lockout state. */
static int op_write(struct op *op, char **cause)
{
	const struct dir_objtype *ot = op->ot;
	char sql[1024];
	size_t o;
	sqlite3_stmt *st = NULL;
	int err, rc, idx = 0;

	if (op->is_new) {
		o = (size_t)snprintf(sql, sizeof sql, "INSERT INTO %s (%s",
				     ot->table, ot->singleton ? "id" : "rowid");
		for (size_t i = 0; i < ot->nfields; i++) {
			if ((ot->fields[i].flags & DIR_FF_STORE) && op->val[i])
				o += (size_t)snprintf(sql + o, sizeof sql - o,
						      ", %s",
						      ot->fields[i].column);
		}
		o += (size_t)snprintf(sql + o, sizeof sql - o, ") VALUES (%s",
				      ot->singleton ? "1" : "NULL");
		for (size_t i = 0; i < ot->nfields; i++) {
			if ((ot->fields[i].flags & DIR_FF_STORE) && op->val[i])
				o += (size_t)snprintf(sql + o, sizeof sql - o,
						      ", ?");
		}
		snprintf(sql + o, sizeof sql - o, ")");
	} else {
		o = (size_t)snprintf(sql, sizeof sql, "UPDATE %s SET rowid = "
						      "rowid",
				     ot->table);
		for (size_t i = 0; i < ot->nfields; i++) {
			if ((ot->fields[i].flags & DIR_FF_STORE) && op->val[i])
				o += (size_t)snprintf(sql + o, sizeof sql - o,
						      ", %s = ?",
						      ot->fields[i].column);
		}
		snprintf(sql + o, sizeof sql - o, " WHERE rowid = %lld",
			 op->rowid);
	}
	err = dir_sql_prepare(op->d, &st, sql, cause);
	if (err)
		return err;
	for (size_t i = 0; i < ot->nfields; i++) {
		if ((ot->fields[i].flags & DIR_FF_STORE) && op->val[i])
			bind_val(st, ++idx, &ot->fields[i], op->val[i]);
	}
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_CONSTRAINT) {
		cause_first(cause, "the %s conflicts with an existing one (%s)",
			  ot->title, sqlite3_errmsg(op->d->db));
		return EEXIST;
	}
	if (rc != SQLITE_DONE)
		return dir_sql_fail(op->d, rc, "write", cause);
	if (op->is_new)
		op->rowid = sqlite3_last_insert_rowid(op->d->db);
	if (op->t != DIR_OBJ_MAILBOX)
		return 0;

	if (op->pin) {
		char *h = NULL;
		char now[32];

		err = pin_hash(&h, op->pin);
		if (err) {
			cause_first(cause, "cannot hash the PIN");
			return err;
		}
		snprintf(now, sizeof now, "%lld", (long long)time(NULL));
		snprintf(sql, sizeof sql, "%lld", op->rowid);
		/* A new PIN set by the administrator also ends a lockout. */
		err = dir_sql_int(op->d, &(long long){0},
				  "UPDATE mailbox SET pin_hash = ?1, pin_set_unix = "
				  "?2, failed_logons = 0, locked = 0 WHERE id = ?3",
				  h, now, sql, cause);
		if (!err)
			err = dir_sql_int(op->d, &(long long){0},
					  "INSERT INTO mailbox_pin_history "
					  "(mailbox_id, pin_hash, set_unix) VALUES "
					  "(?3, ?1, ?2)",
					  h, now, sql, cause);
		if (!err)
			err = dir_sql_int(op->d, &(long long){0},
					  "DELETE FROM mailbox_pin_history WHERE "
					  "mailbox_id = ?1 AND id NOT IN (SELECT id "
					  "FROM mailbox_pin_history WHERE "
					  "mailbox_id = ?1 ORDER BY id DESC LIMIT 20)",
					  sql, NULL, NULL, cause);
		free(h);
		if (err)
			return err;
	}
	if (op->unlock) {
		snprintf(sql, sizeof sql, "%lld", op->rowid);
		err = dir_sql_int(op->d, &(long long){0},
				  "UPDATE mailbox SET failed_logons = 0, locked = 0 "
				  "WHERE id = ?1",
				  sql, NULL, NULL, cause);
		if (err)
			return err;
	}
	return 0;
}

/* The body of dir_obj_new, inside the caller's transaction. */
int dir_obj_new_locked(struct dir *d, enum dir_obj_type t,
		       const struct dir_param *params, size_t n,
		       bool internal, char **new_pin, char **cause)
{
	struct op op = {.d = d, .t = t, .ot = dir_objtype_get(t),
			.is_new = true};
	char sql[160], q[128];
	long long exists = 0;
	int err = 0;

	if (!op.ot)
		return EINVAL;
	if (op.ot->singleton && !internal) {
		cause_first(cause, "the %s settings always exist; change them "
				 "with umctl set-%s",
			  op.ot->title, op.ot->noun);
		return EINVAL;
	}
	for (size_t i = 0; i < op.ot->nfields; i++) {
		const struct dir_field *f = &op.ot->fields[i];

		if ((f->flags & DIR_FF_STORE) && f->def) {
			err = field_parse(f, f->def, &op.val[i], cause);
			if (err)
				goto out;
		}
	}
	err = op_apply(&op, params, n, cause);
	if (err)
		goto out;
	for (size_t i = 0; i < op.ot->nfields; i++) {
		const struct dir_field *f = &op.ot->fields[i];
		char allowed[160];

		if ((f->flags & DIR_FF_REQUIRED) && !op.given[i]) {
			field_allowed(f, allowed, sizeof allowed);
			cause_first(cause, "--%s is required: %s", f->param,
				  allowed);
			err = EINVAL;
			goto out;
		}
	}
	err = op_check_refs(&op, cause);
	if (err)
		goto out;
	if (t == DIR_OBJ_MAILBOX) {
		const char *ext = opval(&op, "extension");
		const char *dp = opval(&op, "umdialplan");
		sqlite3_stmt *st = NULL;

		/* exists: 0 no, 1 enabled, 2 disabled without PIN, 3 disabled
		 * with a PIN */
		err = dir_sql_prepare(d, &st,
				      "SELECT id, enabled, pin_hash <> '' FROM "
				      "mailbox WHERE extension = ?1 AND dialplan = ?2",
				      cause);
		if (err)
			goto out;
		sqlite3_bind_text(st, 1, ext, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, dp, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			op.rowid = sqlite3_column_int64(st, 0);
			exists = sqlite3_column_int(st, 1)   ? 1
				 : sqlite3_column_int(st, 2) ? 3
							     : 2;
		}
		sqlite3_finalize(st);
		if (exists == 1) {
			cause_first(cause, "UM mailbox %s in dial plan \"%s\" is "
					 "already enabled (change it with umctl "
					 "set-ummailbox)",
				  ext, dp);
			err = EEXIST;
			goto out;
		}
		if (exists) {
			/* Enabling a disabled mailbox again: keep what was
			 * stored unless given now, and its PIN unless a new
			 * one is given (or it has none). */
			char *given_pin = op.pin;
			bool had_pin = exists == 3;
			bool given[DIR_MAX_FIELDS];
			char *val[DIR_MAX_FIELDS];

			memcpy(given, op.given, sizeof given);
			memcpy(val, op.val, sizeof val);
			memset(op.val, 0, sizeof op.val);
			op.pin = NULL;
			op.is_new = false;
			err = op_load(&op, cause);
			for (size_t i = 0; i < op.ot->nfields; i++) {
				if (given[i] && val[i]) {
					free(op.val[i]);
					op.val[i] = val[i];
				} else {
					free(val[i]);
				}
			}
			memcpy(op.given, given, sizeof given);
			op.pin = given_pin;
			if (err)
				goto out;
			free(op.val[fidx(op.ot, "enabled")]);
			op.val[fidx(op.ot, "enabled")] = strdup("1");
			snprintf(op.name, sizeof op.name, "%s", dp);
			err = check_mailbox(&op, cause);
			if (!err && !op.pin && !had_pin) {
				struct dir_policy pol;

				err = dir_policy_get(
					d, opval(&op, "ummailboxpolicy"), &pol);
				if (!err)
					err = generate_pin(&pol, ext, &op.pin);
				op.pin_generated = !err;
			}
			if (!err)
				err = op_write(&op, cause);
			goto done;
		}
	} else if (!op.ot->singleton) {
		snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE name "
					  "= ?1",
			 op.ot->table);
		err = dir_sql_int(d, &exists, sql, opval(&op, "name"), NULL, NULL,
				  cause);
		if (err)
			goto out;
		if (exists) {
			cause_first(cause, "a %s named \"%s\" already exists",
				  op.ot->title,
				  dir_quote(q, sizeof q, opval(&op, "name")));
			err = EEXIST;
			goto out;
		}
	}
	err = op_check(&op, cause);
	if (!err)
		err = op_write(&op, cause);
done:
	if (!err && new_pin && op.pin_generated) {
		*new_pin = op.pin;
		op.pin = NULL;
	}
out:
	op_free(&op);
	return err;
}

static int tx_begin(struct dir *d, char **cause)
{
	return dir_sql_exec(d, "BEGIN IMMEDIATE", cause);
}

static int tx_end(struct dir *d, int err, char **cause)
{
	if (err) {
		sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
		return err;
	}
	err = dir_sql_exec(d, "COMMIT", cause);
	if (err)
		sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
	return err;
}

/* Creates an object (for mailboxes: enables one, creating it, or enabling
 * a disabled one again) from --param values; every value is checked and
 * nothing is written unless all are good. For a mailbox without --pin a PIN
 * is generated and handed back once through *new_pin (malloc'd, caller
 * frees; NULL otherwise). EINVAL: a value is not allowed; EEXIST: it exists;
 * ENOSPC: a limit (200 gateways per dial plan); cause says which. */
int dir_obj_new(struct dir *d, enum dir_obj_type t,
		const struct dir_param *params, size_t n, char **new_pin,
		char **cause)
{
	char *pin = NULL;
	int err;

	if (!d)
		return EINVAL;
	err = tx_begin(d, cause);
	if (err)
		return err;
	err = dir_obj_new_locked(d, t, params, n, false, &pin, cause);
	err = tx_end(d, err, cause);
	if (!err && new_pin)
		*new_pin = pin;
	else if (pin) {
		memset(pin, 0, strlen(pin));
		free(pin);
	}
	return err;
}

/* Changes fields of the object `identity` names (NULL for the settings
 * singletons; for mailboxes "EXT" or "DIALPLAN/EXT"). All or nothing, like
 * dir_obj_new. ENOENT when there is no such object; EPERM when a rule
 * refuses the change (IPAddressFamilyConfigurable). */
int dir_obj_set(struct dir *d, enum dir_obj_type t, const char *identity,
		const struct dir_param *params, size_t n, char **cause)
{
	struct op op = {.d = d, .t = t, .ot = dir_objtype_get(t)};
	int err;

	if (!d || !op.ot)
		return EINVAL;
	if (n == 0) {
		cause_first(cause, "nothing to change: give a parameter to set "
				 "(see umctl set-%s --help)",
			  op.ot->noun);
		return EINVAL;
	}
	err = tx_begin(d, cause);
	if (err)
		return err;
	err = op_find(&op, identity, cause);
	if (!err)
		err = op_load(&op, cause);
	if (!err)
		err = op_apply(&op, params, n, cause);
	if (!err)
		err = op_check_refs(&op, cause);
	if (!err)
		err = op_check(&op, cause);
	if (!err)
		err = op_write(&op, cause);
	err = tx_end(d, err, cause);
	op_free(&op);
	return err;
}

/* Removes the object `identity` names. A UM IP gateway or dial plan still
 * linked by a hunt group, a dial plan or policy still used by a mailbox is
 * not removed (EBUSY, with the names of what uses it): remove those first.
 * The settings singletons cannot be removed. */
int dir_obj_remove(struct dir *d, enum dir_obj_type t, const char *identity,
		   char **cause)
{
	struct op op = {.d = d, .t = t, .ot = dir_objtype_get(t)};
	char hg[256] = "", mb[256] = "", sql[128];
	long long nhg = 0, nmb = 0;
	int err;

	if (!d || !op.ot)
		return EINVAL;
	if (op.ot->singleton) {
		cause_first(cause, "the %s settings cannot be removed",
			  op.ot->title);
		return EINVAL;
	}
	err = tx_begin(d, cause);
	if (err)
		return err;
	err = op_find(&op, identity, cause);
	if (err)
		goto out;
	if (t == DIR_OBJ_GATEWAY || t == DIR_OBJ_DIALPLAN)
		nhg = sql_names(d,
				t == DIR_OBJ_GATEWAY
					? "SELECT name FROM huntgroup WHERE "
					  "gateway = ?1 ORDER BY name"
					: "SELECT name FROM huntgroup WHERE "
					  "dialplan = ?1 ORDER BY name",
				op.name, hg, sizeof hg);
	if (t == DIR_OBJ_DIALPLAN || t == DIR_OBJ_POLICY)
		nmb = sql_names(d,
				t == DIR_OBJ_DIALPLAN
					? "SELECT extension FROM mailbox WHERE "
					  "dialplan = ?1 ORDER BY extension"
					: "SELECT extension FROM mailbox WHERE "
					  "policy = ?1 ORDER BY extension",
				op.name, mb, sizeof mb);
	if (nhg || nmb) {
		cause_first(cause, "%s \"%s\" is still used by %s%s%s%s%s; %s",
			  op.ot->title, op.name,
			  nhg ? "UM hunt group(s) " : "", hg,
			  nhg && nmb ? " and by " : "",
			  nmb ? "UM mailbox(es) " : "", mb,
			  t == DIR_OBJ_POLICY
				  ? "give them another --ummailboxpolicy "
				    "first (umctl set-ummailbox)"
			  : nmb ? "remove those first (umctl "
				  "remove-umhuntgroup, umctl remove-ummailbox)"
				: "remove those first (umctl "
				  "remove-umhuntgroup)");
		err = EBUSY;
		goto out;
	}
	snprintf(sql, sizeof sql, "DELETE FROM %s WHERE rowid = %lld",
		 op.ot->table, op.rowid);
	err = dir_sql_exec(d, sql, cause);
out:
	err = tx_end(d, err, cause);
	op_free(&op);
	return err;
}

/* Calls h once per object with its shown fields in table order: the
 * singleton, the object `identity` names, or every object when identity is
 * NULL (for mailboxes also "DIALPLAN/" for every mailbox of a dial plan).
 * ENOENT when a named object does not exist; a non-zero return from h stops
 * the walk and is returned. */
int dir_obj_get(struct dir *d, enum dir_obj_type t, const char *identity,
		dir_obj_h *h, void *arg, char **cause)
{
	const struct dir_objtype *ot = dir_objtype_get(t);
	struct dir_value vals[DIR_MAX_FIELDS];
	char sql[1024], dp[DIR_NAME_MAX + 2] = "", q[128];
	const char *ext = identity;
	sqlite3_stmt *st = NULL;
	size_t o, nv;
	int err, rc, nrows = 0;

	if (!d || !ot || !h)
		return EINVAL;
	o = (size_t)snprintf(sql, sizeof sql, "SELECT 0");
	for (size_t i = 0; i < ot->nfields; i++) {
		if (ot->fields[i].flags & DIR_FF_SHOW)
			o += (size_t)snprintf(sql + o, sizeof sql - o, ", %s",
					      ot->fields[i].column);
	}
	o += (size_t)snprintf(sql + o, sizeof sql - o, " FROM %s", ot->table);
	if (ot->singleton) {
		identity = NULL;
		snprintf(sql + o, sizeof sql - o, " WHERE id = 1");
	} else if (t == DIR_OBJ_MAILBOX) {
		if (identity && strchr(identity, '/')) {
			size_t l = strcspn(identity, "/");

			snprintf(dp, sizeof dp, "%.*s", (int)l, identity);
			ext = identity + l + 1;
		}
		snprintf(sql + o, sizeof sql - o,
			 " WHERE (?1 = '' OR extension = ?1) AND"
			 " (?2 = '' OR dialplan = ?2)"
			 " ORDER BY dialplan, length(extension), extension");
	} else {
		snprintf(sql + o, sizeof sql - o,
			 " WHERE (?1 = '' OR name = ?1) ORDER BY name");
	}
	err = dir_sql_prepare(d, &st, sql, cause);
	if (err)
		return err;
	if (!ot->singleton)
		sqlite3_bind_text(st, 1, ext ? ext : "", -1, SQLITE_STATIC);
	if (t == DIR_OBJ_MAILBOX)
		sqlite3_bind_text(st, 2, dp, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int col = 0;

		nv = 0;
		for (size_t i = 0; i < ot->nfields; i++) {
			const struct dir_field *f = &ot->fields[i];
			const char *s;

			if (!(f->flags & DIR_FF_SHOW))
				continue;
			col++;
			if (f->kind == DIR_KIND_BOOL)
				s = sqlite3_column_int(st, col) ? "True"
								: "False";
			else
				s = (const char *)sqlite3_column_text(st, col);
			vals[nv].field = f;
			vals[nv].label = f->label;
			vals[nv].value = s ? s : "";
			nv++;
		}
		nrows++;
		err = h(vals, nv, arg);
		if (err)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		err = dir_sql_fail(d, rc, "get", cause);
		goto out;
	}
	if (nrows == 0 && ((ext && *ext) || *dp || ot->singleton)) {
		err = ENOENT;
		if (ot->singleton)
			cause_first(cause, "the %s settings are missing",
				  ot->title);
		else if (t == DIR_OBJ_MAILBOX)
			cause_first(cause, "no UM mailbox%s%s%s%s%s",
				  ext && *ext ? " with extension " : "",
				  ext && *ext ? dir_quote(q, sizeof q, ext) : "",
				  *dp ? " in dial plan \"" : "", dp,
				  *dp ? "\"" : "");
		else
			cause_first(cause, "no %s named \"%s\" (see umctl get-%s)",
				  ot->title, dir_quote(q, sizeof q, ext), ot->noun);
	}
out:
	sqlite3_finalize(st);
	return err;
}
