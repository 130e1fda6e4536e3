/* directory.c — directory.db: schema and migrations, the embedded default
 * directory, field descriptor tables, validation, and the generic
 * new/set/get/remove engine that umctl drives. All validation of directory
 * objects lives here so the daemons and umctl agree on what is valid. */
#define LOG_MODULE "dir"
#include "common/cause.h"
#include "common/directory.h"
#include "common/log.h"
#include "common/pin.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#define DIR_MAX_FIELDS 16
#define CANON_MAX 1024

struct dir {
	sqlite3 *db;
	char *path;
};

/* ---- small helpers ------------------------------------------------------ */

/* A user's value made safe to quote in a message: control characters become
 * '?', quotes are escaped, long values are cut. */
static const char *quote(char *buf, size_t cap, const char *v)
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

static int sql_fail(struct dir *d, int rc, const char *what, char **cause)
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

static int sql_exec(struct dir *d, const char *sql, char **cause)
{
	int rc = sqlite3_exec(d->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sql_fail(d, rc, "exec", cause);
}

static int sql_prepare(struct dir *d, sqlite3_stmt **st, const char *sql,
		       char **cause)
{
	int rc = sqlite3_prepare_v2(d->db, sql, -1, st, NULL);

	return rc == SQLITE_OK ? 0 : sql_fail(d, rc, "prepare", cause);
}

/* Runs a query with up to three text parameters that yields one integer. */
static int sql_int(struct dir *d, long long *out, const char *sql,
		   const char *a1, const char *a2, const char *a3,
		   char **cause)
{
	sqlite3_stmt *st = NULL;
	const char *args[3] = {a1, a2, a3};
	int err, rc;

	err = sql_prepare(d, &st, sql, cause);
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
		err = sql_fail(d, rc, "query", cause);
	}
	sqlite3_finalize(st);
	return err;
}

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

static void copy_col(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	snprintf(dst, cap, "%s", s ? s : "");
}

/* ---- enum names --------------------------------------------------------- */

static const char *const af_values[] = {"IPv4Only", "IPv6Only", "Any", NULL};
static const char *const startup_values[] = {"TCP", "TLS", "Dual", NULL};
static const char *const gw_status_values[] = {"Enabled", "Disabled",
					       "NoNewCalls", NULL};
static const char *const uri_values[] = {"TelExtn", "E164", "SipName", NULL};
static const char *const voip_values[] = {"Unsecured", "SIPSecured",
					  "Secured", NULL};

static int enum_index(const char *const *values, const char *s)
{
	for (int i = 0; s && values[i]; i++) {
		if (strcasecmp(values[i], s) == 0)
			return i;
	}
	return -1;
}

static int enum_col(sqlite3_stmt *st, int col, const char *const *values)
{
	int i = enum_index(values, (const char *)sqlite3_column_text(st, col));

	return i < 0 ? 0 : i;
}

/* "IPv4Only", "IPv6Only" or "Any". */
const char *dir_af_name(enum dir_af af)
{
	return (unsigned)af <= DIR_AF_ANY ? af_values[af] : "?";
}

/* Parses an IPAddressFamily name, case-insensitively. 0 or EINVAL. */
int dir_af_parse(const char *s, enum dir_af *out)
{
	int i = enum_index(af_values, s);

	if (i < 0)
		return EINVAL;
	*out = (enum dir_af)i;
	return 0;
}

/* "TCP", "TLS" or "Dual". */
const char *dir_startup_mode_name(enum dir_startup_mode m)
{
	return (unsigned)m <= DIR_STARTUP_DUAL ? startup_values[m] : "?";
}

/* "Enabled", "Disabled" or "NoNewCalls". */
const char *dir_gw_status_name(enum dir_gw_status s)
{
	return (unsigned)s <= DIR_GW_NONEWCALLS ? gw_status_values[s] : "?";
}

/* ---- syntax checks --------------------------------------------------------- */

/* Parses true/false/$true/$false/1/0/yes/no, case-insensitively. */
int dir_parse_bool(const char *s, bool *out)
{
	static const char *const t[] = {"true", "$true", "1", "yes", NULL};
	static const char *const f[] = {"false", "$false", "0", "no", NULL};

	if (enum_index(t, s) >= 0) {
		*out = true;
		return 0;
	}
	if (enum_index(f, s) >= 0) {
		*out = false;
		return 0;
	}
	return EINVAL;
}

/* A dotted-quad IPv4 literal (inet_pton rules: four decimal parts). */
int dir_check_ipv4(const char *s)
{
	struct in_addr a;

	return s && inet_pton(AF_INET, s, &a) == 1 ? 0 : EINVAL;
}

/* An IPv6 literal without brackets and without a zone. */
int dir_check_ipv6(const char *s)
{
	struct in6_addr a;

	return s && inet_pton(AF_INET6, s, &a) == 1 ? 0 : EINVAL;
}

/* A host name per RFC 1123: dot-separated labels of 1-63 letters, digits and
 * hyphens, no label starting or ending with a hyphen, at most 253
 * characters, an optional final dot, and a last label that is not all digits
 * (so "300.1.1.1" is a bad IPv4 address, not a host name). */
int dir_check_fqdn(const char *s)
{
	size_t n, label = 0;
	bool digits_only = true;

	if (!s)
		return EINVAL;
	n = strlen(s);
	if (n && s[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return EINVAL;
	for (size_t i = 0; i <= n; i++) {
		char c = i < n ? s[i] : '.';

		if (c == '.') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return EINVAL;
			if (i == n && digits_only)
				return EINVAL;
			label = 0;
			digits_only = true;
			continue;
		}
		if (!isalnum((unsigned char)c) && c != '-')
			return EINVAL;
		if (label == 0 && c == '-')
			return EINVAL;
		if (!isdigit((unsigned char)c))
			digits_only = false;
		label++;
	}
	return 0;
}

static void lower_copy(char *canon, size_t cap, const char *in, size_t n)
{
	size_t i;

	for (i = 0; i < n && i + 1 < cap; i++)
		canon[i] = (char)tolower((unsigned char)in[i]);
	canon[i] = '\0';
}

static const char *v_name(const char *in, char *canon, size_t cap)
{
	static const char *why =
		"a name of 1-64 characters A-Z a-z 0-9 . _ -";
	size_t n = strlen(in);

	if (n == 0 || n > DIR_NAME_MAX)
		return why;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];

		if (!isalnum((unsigned char)c) && c != '.' && c != '_' &&
		    c != '-')
			return why;
	}
	snprintf(canon, cap, "%s", in);
	return NULL;
}

static const char *v_address(const char *in, char *canon, size_t cap)
{
	struct in6_addr a6;
	char buf[INET6_ADDRSTRLEN];

	if (dir_check_ipv4(in) == 0) {
		snprintf(canon, cap, "%s", in);
		return NULL;
	}
	if (inet_pton(AF_INET6, in, &a6) == 1 &&
	    inet_ntop(AF_INET6, &a6, buf, sizeof buf)) {
		snprintf(canon, cap, "%s", buf);
		return NULL;
	}
	if (dir_check_fqdn(in) == 0) {
		size_t n = strlen(in);

		lower_copy(canon, cap, in, in[n - 1] == '.' ? n - 1 : n);
		return NULL;
	}
	return "an IPv4 address, an IPv6 address (no brackets, no zone) or "
	       "a host name (RFC 1123)";
}

static const char *v_fqdn_opt(const char *in, char *canon, size_t cap)
{
	size_t n = strlen(in);

	if (n == 0) {
		canon[0] = '\0';
		return NULL;
	}
	if (dir_check_fqdn(in) != 0)
		return "empty or a host name (RFC 1123), e.g. um1.example.com";
	lower_copy(canon, cap, in, in[n - 1] == '.' ? n - 1 : n);
	return NULL;
}

static const char *v_digits(const char *in, char *canon, size_t cap)
{
	if (!*in || strspn(in, "0123456789") != strlen(in))
		return "digits 0-9";
	snprintf(canon, cap, "%s", in);
	return NULL;
}

static const char *v_phone(const char *in, char *canon, size_t cap)
{
	const char *p = in[0] == '+' ? in + 1 : in;
	size_t n = strlen(p);

	if (n == 0 || n > 32 || strspn(p, "0123456789") != n)
		return "digits 0-9 with an optional leading +, at most 32";
	snprintf(canon, cap, "%s", in);
	return NULL;
}

static const char *v_pilot(const char *in, char *canon, size_t cap)
{
	if (!*in) {
		canon[0] = '\0';
		return NULL;
	}
	if (v_phone(in, canon, cap))
		return "empty (any number) or digits 0-9 with an optional "
		       "leading +, at most 32";
	return NULL;
}

static const char *v_display(const char *in, char *canon, size_t cap)
{
	static const char *why = "1-128 printable UTF-8 characters";
	const unsigned char *s = (const unsigned char *)in;
	size_t chars = 0;

	while (*s) {
		uint32_t cp;
		int len;

		if (s[0] < 0x80) {
			cp = s[0];
			len = 1;
		} else if ((s[0] & 0xe0) == 0xc0) {
			cp = s[0] & 0x1f;
			len = 2;
		} else if ((s[0] & 0xf0) == 0xe0) {
			cp = s[0] & 0x0f;
			len = 3;
		} else if ((s[0] & 0xf8) == 0xf0) {
			cp = s[0] & 0x07;
			len = 4;
		} else {
			return why;
		}
		for (int i = 1; i < len; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return why;
			cp = cp << 6 | (s[i] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return why;
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ||
		    cp == 0x2028 || cp == 0x2029)
			return why;
		s += len;
		chars++;
	}
	if (chars == 0 || chars > 128)
		return why;
	snprintf(canon, cap, "%s", in);
	return NULL;
}

static const char *v_path(const char *in, char *canon, size_t cap)
{
	for (const unsigned char *s = (const unsigned char *)in; *s; s++) {
		if (*s < 0x20 || *s == 0x7f)
			return "empty (off) or a file path without control "
			       "characters";
	}
	snprintf(canon, cap, "%s", in);
	return NULL;
}

static bool port_ok(const char *s)
{
	char *end;
	long v;

	if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 5)
		return false;
	v = strtol(s, &end, 10);
	return v >= 1 && v <= 65535;
}

static const char *v_dns(const char *in, char *canon, size_t cap)
{
	static const char *why = "an IP address, IPv4:port or [IPv6]:port";
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	size_t n;

	if (in[0] == '[') {
		const char *rb = strchr(in, ']');

		if (!rb)
			return why;
		n = (size_t)(rb - in - 1);
		if (n == 0 || n >= sizeof host)
			return why;
		memcpy(host, in + 1, n);
		host[n] = '\0';
		if (dir_check_ipv6(host) || (rb[1] && (rb[1] != ':' ||
						      !port_ok(rb + 2))))
			return why;
	} else if (dir_check_ipv6(in) == 0) {
		/* a bare IPv6 literal: no port */
	} else {
		colon = strchr(in, ':');
		n = colon ? (size_t)(colon - in) : strlen(in);
		if (n >= sizeof host)
			return why;
		memcpy(host, in, n);
		host[n] = '\0';
		if (dir_check_ipv4(host) || (colon && !port_ok(colon + 1)))
			return why;
	}
	snprintf(canon, cap, "%s", in);
	return NULL;
}

/* ---- field descriptor tables ------------------------------------------------ */

#define RW (DIR_FF_NEW | DIR_FF_SET | DIR_FF_SHOW | DIR_FF_STORE)
#define NAMEF(what)                                                         \
	{.param = "name", .label = "Name", .column = "name",                \
	 .kind = DIR_KIND_STRING, .min = 1, .max = DIR_NAME_MAX,            \
	 .validate = v_name,                                                \
	 .flags = DIR_FF_IDENTITY | DIR_FF_REQUIRED | DIR_FF_NEW |          \
		  DIR_FF_SHOW | DIR_FF_STORE,                               \
	 .help = "the name of the " what,                                   \
	 .allowed = "1-64 characters A-Z a-z 0-9 . _ -"}
#define AF_FIELD(d)                                                         \
	{.param = "ip-address-family", .label = "IPAddressFamily",          \
	 .column = "ip_address_family", .kind = DIR_KIND_ENUM,              \
	 .values = af_values, .def = d, .flags = RW,                        \
	 .help = "address families used (Any: IPv6 first, then IPv4)"}
#define AFC_FIELD                                                           \
	{.param = "ip-address-family-configurable",                         \
	 .label = "IPAddressFamilyConfigurable",                            \
	 .column = "ip_address_family_configurable", .kind = DIR_KIND_BOOL, \
	 .def = "true", .flags = RW,                                        \
	 .help = "whether IPAddressFamily may be changed"}
#define PORT_FIELD(p, l, c, d, h)                                           \
	{.param = p, .label = l, .column = c, .kind = DIR_KIND_INT,         \
	 .min = 1, .max = 65535, .def = d, .flags = RW, .help = h}
#define STARTUP_FIELD                                                       \
	{.param = "um-startup-mode", .label = "UMStartupMode",              \
	 .column = "um_startup_mode", .kind = DIR_KIND_ENUM,                \
	 .values = startup_values, .def = "TCP", .flags = RW,               \
	 .help = "SIP transports listened on: TCP, TLS or both (Dual)"}
#define INTF(p, l, c, lo, hi, d, h)                                         \
	{.param = p, .label = l, .column = c, .kind = DIR_KIND_INT,         \
	 .min = lo, .max = hi, .def = d, .flags = RW, .help = h}
#define BOOLF(p, l, c, d, h)                                                \
	{.param = p, .label = l, .column = c, .kind = DIR_KIND_BOOL,        \
	 .def = d, .flags = RW, .help = h}

static const struct dir_field service_fields[] = {
	AF_FIELD("Any"),
	AFC_FIELD,
	/* Exchange documents 0-200; OpenUM instances take far more (the
	 * deposit benchmark runs 1,000 on two cores), so the bound is wider. */
	INTF("max-calls-allowed", "MaxCallsAllowed", "max_calls_allowed", 0,
	     10000, "100", "concurrent calls each UM service instance takes"),
	PORT_FIELD("sip-tcp-listening-port", "SipTcpListeningPort",
		   "sip_tcp_listening_port", "5062", "SIP over TCP port"),
	PORT_FIELD("sip-tls-listening-port", "SipTlsListeningPort",
		   "sip_tls_listening_port", "5063", "SIP over TLS port"),
	STARTUP_FIELD,
	{.param = "external-host-fqdn", .label = "ExternalHostFqdn",
	 .column = "external_host_fqdn", .kind = DIR_KIND_STRING, .min = 0,
	 .max = 254, .validate = v_fqdn_opt, .def = "", .flags = RW,
	 .help = "host name put in Contact headers instead of an address",
	 .allowed = "empty or a host name (RFC 1123)"},
	INTF("bad-address-interval", "BadAddressInterval",
	     "bad_address_interval", 1, 86400, "300",
	     "seconds a gateway address that did not connect is skipped"),
	INTF("outbound-stagger", "OutboundStagger", "outbound_stagger", 10,
	     5000, "250",
	     "milliseconds before the next address of a gateway is tried "
	     "while the previous one has not connected"),
	INTF("gateway-ping-interval", "GatewayPingInterval",
	     "gateway_ping_interval", 5, 3600, "60",
	     "seconds between SIP OPTIONS to each enabled gateway"),
};

static const struct dir_field router_fields[] = {
	AF_FIELD("Any"),
	AFC_FIELD,
	PORT_FIELD("sip-tcp-listening-port", "SipTcpListeningPort",
		   "sip_tcp_listening_port", "5060", "SIP over TCP port"),
	PORT_FIELD("sip-tls-listening-port", "SipTlsListeningPort",
		   "sip_tls_listening_port", "5061", "SIP over TLS port"),
	STARTUP_FIELD,
	{.param = "protocol-log-path", .label = "ProtocolLogPath",
	 .column = "protocol_log_path", .kind = DIR_KIND_STRING, .min = 0,
	 .max = 1023, .validate = v_path, .def = "", .flags = RW,
	 .help = "file every SIP message is logged to (empty: off)",
	 .allowed = "empty (off) or a file path"},
	{.param = "dns-servers", .label = "DnsServers",
	 .column = "dns_servers", .kind = DIR_KIND_LIST, .min = 0,
	 .max = 511, .validate = v_dns, .def = "", .flags = RW,
	 .help = "DNS servers for resolving gateway FQDNs (empty: system)",
	 .allowed = "comma-separated ip, ip:port or [ipv6]:port"},
};

static const struct dir_field gateway_fields[] = {
	NAMEF("UM IP gateway"),
	{.param = "address", .label = "Address", .column = "address",
	 .kind = DIR_KIND_STRING, .min = 1, .max = 255,
	 .validate = v_address, .flags = RW | DIR_FF_REQUIRED,
	 .help = "the gateway's IP address or FQDN",
	 .allowed = "IPv4 address, IPv6 address (no brackets) or FQDN"},
	{.param = "port", .label = "Port", .column = "port",
	 .kind = DIR_KIND_INT, .min = 1, .max = 65535, .def = "5060",
	 .flags = RW, .help = "the gateway's SIP port"},
	AF_FIELD("IPv4Only"),
	{.param = "status", .label = "Status", .column = "status",
	 .kind = DIR_KIND_ENUM, .values = gw_status_values,
	 .def = "Enabled", .flags = RW,
	 .help = "Disabled: not trusted; NoNewCalls: only calls in progress"},
	BOOLF("outcalls-allowed", "OutcallsAllowed", "outcalls_allowed",
	      "true", "used for outbound calls"),
	BOOLF("message-waiting-indicator-allowed",
	      "MessageWaitingIndicatorAllowed", "mwi_allowed", "true",
	      "message-waiting NOTIFYs are sent through it"),
	{.param = "drop-calls", .label = "DropCalls", .kind = DIR_KIND_ACTION,
	 .flags = DIR_FF_SET,
	 .help = "with --status Disabled: end the calls in progress through "
		 "the gateway now (BYE) instead of letting them finish"},
};

static const struct dir_field dialplan_fields[] = {
	NAMEF("UM dial plan"),
	{.param = "uri-type", .label = "URIType", .column = "uri_type",
	 .kind = DIR_KIND_ENUM, .values = uri_values, .def = "TelExtn",
	 .flags = RW, .help = "form of the numbers in the dial plan"},
	{.param = "number-of-digits-in-extension",
	 .label = "NumberOfDigitsInExtension", .column = "digits",
	 .kind = DIR_KIND_INT, .min = 1, .max = 20,
	 .flags = RW | DIR_FF_REQUIRED, .help = "length of every extension"},
	{.param = "access-telephone-numbers",
	 .label = "AccessTelephoneNumbers", .column = "access_numbers",
	 .kind = DIR_KIND_LIST, .min = 0, .max = 511, .validate = v_phone,
	 .def = "", .flags = RW,
	 .help = "subscriber access (Outlook Voice Access) pilot numbers",
	 .allowed = "comma-separated numbers, digits with optional +"},
	{.param = "voip-security", .label = "VoIPSecurity",
	 .column = "voip_security", .kind = DIR_KIND_ENUM,
	 .values = voip_values, .def = "Unsecured", .flags = RW,
	 .help = "SIPSecured: SIP over TLS; Secured: TLS and SRTP"},
	INTF("max-recording-duration", "MaxRecordingDuration",
	     "max_recording_duration", 1, 100, "20",
	     "longest voice message, minutes"),
	INTF("recording-idle-timeout", "RecordingIdleTimeout",
	     "recording_idle_timeout", 2, 60, "5",
	     "silence that ends a recording, seconds"),
	INTF("input-failures-before-disconnect",
	     "InputFailuresBeforeDisconnect", "input_failures", 1, 20, "3",
	     "wrong inputs before the call is ended"),
	INTF("logon-failures-before-disconnect",
	     "LogonFailuresBeforeDisconnect", "logon_failures", 1, 20, "3",
	     "wrong PINs in one call before it is ended"),
};

static const struct dir_field huntgroup_fields[] = {
	NAMEF("UM hunt group"),
	{.param = "umipgateway", .label = "UMIPGateway", .column = "gateway",
	 .kind = DIR_KIND_REF, .ref = DIR_OBJ_GATEWAY,
	 .flags = DIR_FF_REQUIRED | DIR_FF_NEW | DIR_FF_SHOW | DIR_FF_STORE,
	 .help = "the UM IP gateway linked", .allowed = "a UM IP gateway name"},
	{.param = "umdialplan", .label = "UMDialPlan", .column = "dialplan",
	 .kind = DIR_KIND_REF, .ref = DIR_OBJ_DIALPLAN,
	 .flags = DIR_FF_REQUIRED | DIR_FF_NEW | DIR_FF_SHOW | DIR_FF_STORE,
	 .help = "the UM dial plan linked", .allowed = "a UM dial plan name"},
	{.param = "pilot-identifier", .label = "PilotIdentifier",
	 .column = "pilot", .kind = DIR_KIND_STRING, .min = 0, .max = 33,
	 .validate = v_pilot, .def = "",
	 .flags = DIR_FF_NEW | DIR_FF_SHOW | DIR_FF_STORE,
	 .help = "called number this hunt group answers (empty: any)",
	 .allowed = "empty or digits with optional +"},
};

static const struct dir_field policy_fields[] = {
	NAMEF("UM mailbox policy"),
	INTF("min-pin-length", "MinPINLength", "min_pin_length", 4, 24, "6",
	     "fewest digits in a PIN"),
	INTF("max-logon-attempts", "MaxLogonAttempts", "max_logon_attempts",
	     1, 999, "15", "failed logons before the mailbox is locked"),
	INTF("logon-failures-before-pin-reset", "LogonFailuresBeforePINReset",
	     "logon_failures_before_pin_reset", 0, 999, "5",
	     "failed logons before the PIN is reset (< MaxLogonAttempts)"),
	INTF("pin-history-count", "PINHistoryCount", "pin_history_count", 1,
	     20, "5", "previous PINs that cannot be reused"),
	BOOLF("allow-common-patterns", "AllowCommonPatterns",
	      "allow_common_patterns", "false",
	      "allow repeated/sequential digits and the extension in PINs"),
	INTF("max-greeting-duration", "MaxGreetingDuration",
	     "max_greeting_duration", 1, 10, "5",
	     "longest personal greeting, minutes"),
	BOOLF("allow-voice-mail-preview", "AllowVoiceMailPreview",
	      "allow_voice_mail_preview", "true",
	      "voice messages are transcribed"),
};

static const struct dir_field mailbox_fields[] = {
	{.param = "extension", .label = "Extension", .column = "extension",
	 .kind = DIR_KIND_STRING, .min = 1, .max = 20, .validate = v_digits,
	 .flags = DIR_FF_IDENTITY | DIR_FF_REQUIRED | DIR_FF_NEW |
		  DIR_FF_SHOW | DIR_FF_STORE,
	 .help = "the mailbox extension (NumberOfDigitsInExtension long)",
	 .allowed = "digits 0-9"},
	{.param = "display-name", .label = "DisplayName",
	 .column = "display_name", .kind = DIR_KIND_STRING, .min = 1,
	 .max = 512, .validate = v_display, .flags = RW | DIR_FF_REQUIRED,
	 .help = "the user's name", .allowed = "1-128 printable characters"},
	{.param = "umdialplan", .label = "UMDialPlan", .column = "dialplan",
	 .kind = DIR_KIND_REF, .ref = DIR_OBJ_DIALPLAN,
	 .flags = DIR_FF_REQUIRED | DIR_FF_NEW | DIR_FF_SHOW | DIR_FF_STORE,
	 .help = "the dial plan the extension belongs to",
	 .allowed = "a UM dial plan name"},
	{.param = "ummailboxpolicy", .label = "UMMailboxPolicy",
	 .column = "policy", .kind = DIR_KIND_REF, .ref = DIR_OBJ_POLICY,
	 .def = "default", .flags = RW, .help = "the UM mailbox policy",
	 .allowed = "a UM mailbox policy name"},
	{.param = "pin", .label = "PIN", .kind = DIR_KIND_SECRET,
	 .flags = DIR_FF_NEW | DIR_FF_SET,
	 .help = "the PIN (stored hashed; generated and shown once if not "
		 "given on enable)",
	 .allowed = "digits, MinPINLength to 24"},
	{.param = "unlock", .label = "Unlock", .kind = DIR_KIND_ACTION,
	 .flags = DIR_FF_SET,
	 .help = "clear the lockout and the failed logon count"},
	{.param = "enabled", .label = "Enabled", .column = "enabled",
	 .kind = DIR_KIND_BOOL, .def = "true",
	 .flags = DIR_FF_SET | DIR_FF_SHOW | DIR_FF_STORE,
	 .help = "the mailbox answers calls and logons"},
	{.param = "pin-set", .label = "PINSet", .column = "pin_hash <> ''",
	 .kind = DIR_KIND_BOOL, .flags = DIR_FF_SHOW,
	 .help = "a PIN is set (read-only)"},
	{.param = "locked", .label = "Locked", .column = "locked",
	 .kind = DIR_KIND_BOOL, .flags = DIR_FF_SHOW,
	 .help = "locked out after MaxLogonAttempts (read-only)"},
	{.param = "failed-logons", .label = "FailedLogons",
	 .column = "failed_logons", .kind = DIR_KIND_INT, .min = 0,
	 .max = 1000000, .flags = DIR_FF_SHOW,
	 .help = "failed logons since the last success (read-only)"},
	{.param = "oof-enabled", .label = "OofGreetingEnabled",
	 .column = "oof_enabled", .kind = DIR_KIND_BOOL, .flags = DIR_FF_SHOW,
	 .help = "the out-of-office greeting is on (read-only)"},
};

#define NF(a) (sizeof(a) / sizeof((a)[0]))

static const struct dir_objtype objtypes[DIR_OBJ_COUNT] = {
	[DIR_OBJ_UMSERVICE] = {DIR_OBJ_UMSERVICE, "umservice", "UM service",
			       "service_settings", true, service_fields,
			       NF(service_fields)},
	[DIR_OBJ_CALLROUTER] = {DIR_OBJ_CALLROUTER, "umcallroutersettings",
				"UM call router", "callrouter_settings", true,
				router_fields, NF(router_fields)},
	[DIR_OBJ_GATEWAY] = {DIR_OBJ_GATEWAY, "umipgateway", "UM IP gateway",
			     "gateway", false, gateway_fields,
			     NF(gateway_fields)},
	[DIR_OBJ_DIALPLAN] = {DIR_OBJ_DIALPLAN, "umdialplan", "UM dial plan",
			      "dialplan", false, dialplan_fields,
			      NF(dialplan_fields)},
	[DIR_OBJ_HUNTGROUP] = {DIR_OBJ_HUNTGROUP, "umhuntgroup",
			       "UM hunt group", "huntgroup", false,
			       huntgroup_fields, NF(huntgroup_fields)},
	[DIR_OBJ_POLICY] = {DIR_OBJ_POLICY, "ummailboxpolicy",
			    "UM mailbox policy", "policy", false,
			    policy_fields, NF(policy_fields)},
	[DIR_OBJ_MAILBOX] = {DIR_OBJ_MAILBOX, "ummailbox", "UM mailbox",
			     "mailbox", false, mailbox_fields,
			     NF(mailbox_fields)},
};

/* The descriptor of an object type (NULL for an unknown type). */
const struct dir_objtype *dir_objtype_get(enum dir_obj_type t)
{
	return (unsigned)t < DIR_OBJ_COUNT ? &objtypes[t] : NULL;
}

/* Finds an object type by its umctl noun ("umipgateway"). */
int dir_objtype_parse(const char *noun, enum dir_obj_type *out)
{
	for (int i = 0; noun && i < DIR_OBJ_COUNT; i++) {
		if (strcasecmp(objtypes[i].noun, noun) == 0) {
			*out = (enum dir_obj_type)i;
			return 0;
		}
	}
	return EINVAL;
}

/* Finds a field by its umctl spelling ("ip-address-family") or its
 * Exchange label ("IPAddressFamily"), case-insensitively; a leading "--" or
 * "-" is ignored. */
const struct dir_field *dir_field_find(enum dir_obj_type t, const char *name)
{
	const struct dir_objtype *ot = dir_objtype_get(t);

	if (!ot || !name)
		return NULL;
	while (*name == '-')
		name++;
	for (size_t i = 0; i < ot->nfields; i++) {
		if (strcasecmp(ot->fields[i].param, name) == 0 ||
		    strcasecmp(ot->fields[i].label, name) == 0)
			return &ot->fields[i];
	}
	return NULL;
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

static int obj_new_locked(struct dir *d, enum dir_obj_type t,
			  const struct dir_param *p, size_t n, bool internal,
			  char **new_pin, char **cause);

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
		err = obj_new_locked(d, steps[i].t, steps[i].p, steps[i].n,
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
	err = sql_exec(d, "PRAGMA foreign_keys=ON;"
			  "PRAGMA journal_mode=WAL;"
			  "PRAGMA synchronous=NORMAL;",
		       cause);
	if (err)
		goto out;
	err = sql_exec(d, "BEGIN IMMEDIATE", cause);
	if (err)
		goto out;
	in_tx = true;
	err = sql_int(d, &ver, "PRAGMA user_version", NULL, NULL, NULL,
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
		err = sql_int(d, &nobj, "SELECT count(*) FROM sqlite_master",
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
		err = sql_exec(d, migrations[v], cause);
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
		err = sql_exec(d, sql, cause);
		if (err)
			goto out;
	}
	err = sql_exec(d, "COMMIT", cause);
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

	err = sql_prepare(d, &st,
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
	out->af = (enum dir_af)enum_col(st, 0, af_values);
	out->af_configurable = sqlite3_column_int(st, 1) != 0;
	out->max_calls = (unsigned)sqlite3_column_int(st, 2);
	out->sip_tcp_port = (unsigned)sqlite3_column_int(st, 3);
	out->sip_tls_port = (unsigned)sqlite3_column_int(st, 4);
	out->startup_mode =
		(enum dir_startup_mode)enum_col(st, 5, startup_values);
	copy_col(out->fqdn, sizeof out->fqdn, st, 6);
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

	err = sql_prepare(d, &st,
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
	out->af = (enum dir_af)enum_col(st, 0, af_values);
	out->af_configurable = sqlite3_column_int(st, 1) != 0;
	out->sip_tcp_port = (unsigned)sqlite3_column_int(st, 2);
	out->sip_tls_port = (unsigned)sqlite3_column_int(st, 3);
	out->startup_mode =
		(enum dir_startup_mode)enum_col(st, 4, startup_values);
	copy_col(out->protocol_log, sizeof out->protocol_log, st, 5);
	copy_col(out->dns_servers, sizeof out->dns_servers, st, 6);
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

	err = sql_prepare(d, &st,
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
		err = sql_fail(d, rc, "check limits", cause);
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

	err = sql_prepare(d, &st, sql, NULL);
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
		err = sql_fail(d, rc, "list", NULL);
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

	copy_col(g->name, sizeof g->name, st, 0);
	copy_col(g->address, sizeof g->address, st, 1);
	g->port = (unsigned)sqlite3_column_int(st, 2);
	g->af = (enum dir_af)enum_col(st, 3, af_values);
	g->status = (enum dir_gw_status)enum_col(st, 4, gw_status_values);
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

	copy_col(h->name, sizeof h->name, st, 0);
	copy_col(h->gateway, sizeof h->gateway, st, 1);
	copy_col(h->dialplan, sizeof h->dialplan, st, 2);
	copy_col(h->pilot, sizeof h->pilot, st, 3);
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

	copy_col(dp->name, sizeof dp->name, st, 0);
	dp->uri_type = (enum dir_uri_type)enum_col(st, 1, uri_values);
	dp->digits = (unsigned)sqlite3_column_int(st, 2);
	copy_col(dp->access_numbers, sizeof dp->access_numbers, st, 3);
	dp->voip_security =
		(enum dir_voip_security)enum_col(st, 4, voip_values);
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

	copy_col(pol->name, sizeof pol->name, st, 0);
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
	copy_col(m->extension, sizeof m->extension, st, 1);
	copy_col(m->display_name, sizeof m->display_name, st, 2);
	copy_col(m->dialplan, sizeof m->dialplan, st, 3);
	copy_col(m->policy, sizeof m->policy, st, 4);
	copy_col(m->pin_hash, sizeof m->pin_hash, st, 5);
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
	err = sql_prepare(d, &st,
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
		err = rc == SQLITE_DONE ? ENOENT : sql_fail(d, rc, "find", NULL);
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

	err = sql_prepare(d, &st,
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
		err = sql_fail(d, rc, "logon result", NULL);
	sqlite3_finalize(st);
	return err;
}

/* Turns a mailbox's out-of-office greeting on or off (by phone). */
int dir_mailbox_set_oof(struct dir *d, long long id, bool on)
{
	sqlite3_stmt *st = NULL;
	int err, rc;

	err = sql_prepare(d, &st, "UPDATE mailbox SET oof_enabled = ?2"
				  " WHERE id = ?1", NULL);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, on ? 1 : 0);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		err = sql_fail(d, rc, "set oof", NULL);
	else if (sqlite3_changes(d->db) == 0)
		err = ENOENT;
	sqlite3_finalize(st);
	return err;
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

_Static_assert(NF(mailbox_fields) <= DIR_MAX_FIELDS &&
		       NF(dialplan_fields) <= DIR_MAX_FIELDS &&
		       NF(policy_fields) <= DIR_MAX_FIELDS,
	       "DIR_MAX_FIELDS too small");

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
			why = v_name(in, canon, sizeof canon)
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
		i = enum_index(f->values, in);
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
					  f->param, quote(q, sizeof q, item),
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
			  quote(q, sizeof q, in), why);
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

	err = sql_prepare(d, &st, sql, cause);
	if (err)
		return err;
	if (a1)
		sqlite3_bind_text(st, 1, a1, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		copy_col(buf, cap, st, 0);
	else
		err = rc == SQLITE_DONE ? ENOENT
					: sql_fail(d, rc, "query", cause);
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
		err = sql_int(d, &op->rowid, sql, NULL, NULL, NULL, cause);
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
		err = sql_prepare(d, &st, sql, cause);
		if (err)
			return err;
		sqlite3_bind_text(st, 1, identity, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			op->rowid = sqlite3_column_int64(st, 0);
			copy_col(op->name, sizeof op->name, st, 1);
		} else if (rc == SQLITE_DONE) {
			err = ENOENT;
			cause_first(cause, "no %s named \"%s\" (see umctl get-%s)",
				  op->ot->title,
				  quote(q, sizeof q, identity), op->ot->noun);
		} else {
			err = sql_fail(d, rc, "find", cause);
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
	err = sql_prepare(d, &st,
			  "SELECT id, dialplan FROM mailbox WHERE extension = ?1"
			  " AND (?2 = '' OR dialplan = ?2) ORDER BY dialplan",
			  cause);
	if (err)
		return err;
	sqlite3_bind_text(st, 1, ext, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, dp, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		op->rowid = sqlite3_column_int64(st, 0);
		copy_col(op->name, sizeof op->name, st, 1);
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sql_fail(d, rc, "find", cause);
	if (n == 0) {
		cause_first(cause, "no UM mailbox with extension \"%s\"%s%s%s",
			  quote(q, sizeof q, ext),
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
	err = sql_prepare(op->d, &st, sql, cause);
	if (err)
		return err;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		err = sql_fail(op->d, rc, "load", cause);
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
				  quote(q, sizeof q, op->val[i]),
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
	err = sql_int(op->d, &n, sql, op->name, op->val[di], NULL, cause);
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

	err = sql_prepare(op->d, &st,
			  "SELECT name FROM huntgroup WHERE gateway = ?1 AND "
			  "dialplan = ?2 AND pilot = ?3",
			  cause);
	if (err)
		return err;
	sqlite3_bind_text(st, 1, gw, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, dp, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, pilot, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		copy_col(other, sizeof other, st, 0);
		sqlite3_finalize(st);
		cause_first(cause, "UM hunt group \"%s\" already links UM IP "
				 "gateway \"%s\" to UM dial plan \"%s\" with "
				 "PilotIdentifier \"%s\"",
			  other, gw, dp, pilot);
		return EEXIST;
	}
	sqlite3_finalize(st);
	err = sql_int(op->d, &linked,
		      "SELECT count(*) FROM huntgroup WHERE dialplan = ?1 AND "
		      "gateway = ?2",
		      dp, gw, NULL, cause);
	if (!err && !linked)
		err = sql_int(op->d, &ngw,
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
	err = sql_prepare(d, &st,
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
	err = sql_prepare(op->d, &st, sql, cause);
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
		return sql_fail(op->d, rc, "write", cause);
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
		err = sql_int(op->d, &(long long){0},
			      "UPDATE mailbox SET pin_hash = ?1, pin_set_unix = "
			      "?2, failed_logons = 0, locked = 0 WHERE id = ?3",
			      h, now, sql, cause);
		if (!err)
			err = sql_int(op->d, &(long long){0},
				      "INSERT INTO mailbox_pin_history "
				      "(mailbox_id, pin_hash, set_unix) VALUES "
				      "(?3, ?1, ?2)",
				      h, now, sql, cause);
		if (!err)
			err = sql_int(op->d, &(long long){0},
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
		err = sql_int(op->d, &(long long){0},
			      "UPDATE mailbox SET failed_logons = 0, locked = 0 "
			      "WHERE id = ?1",
			      sql, NULL, NULL, cause);
		if (err)
			return err;
	}
	return 0;
}

/* The body of dir_obj_new, inside the caller's transaction. */
static int obj_new_locked(struct dir *d, enum dir_obj_type t,
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
		err = sql_prepare(d, &st,
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
		err = sql_int(d, &exists, sql, opval(&op, "name"), NULL, NULL,
			      cause);
		if (err)
			goto out;
		if (exists) {
			cause_first(cause, "a %s named \"%s\" already exists",
				  op.ot->title,
				  quote(q, sizeof q, opval(&op, "name")));
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
	return sql_exec(d, "BEGIN IMMEDIATE", cause);
}

static int tx_end(struct dir *d, int err, char **cause)
{
	if (err) {
		sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
		return err;
	}
	err = sql_exec(d, "COMMIT", cause);
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
	err = obj_new_locked(d, t, params, n, false, &pin, cause);
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
	err = sql_exec(d, sql, cause);
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
	err = sql_prepare(d, &st, sql, cause);
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
		err = sql_fail(d, rc, "get", cause);
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
				  ext && *ext ? quote(q, sizeof q, ext) : "",
				  *dp ? " in dial plan \"" : "", dp,
				  *dp ? "\"" : "");
		else
			cause_first(cause, "no %s named \"%s\" (see umctl get-%s)",
				  ot->title, quote(q, sizeof q, ext), ot->noun);
	}
out:
	sqlite3_finalize(st);
	return err;
}
