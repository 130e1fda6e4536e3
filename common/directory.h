/* directory.h — the OpenUM directory (directory.db, SQLite): the objects
 * Exchange keeps in Active Directory (UM service and call router settings,
 * UM IP gateways, dial plans, hunt groups, mailbox policies, mailboxes), their
 * validation, typed read accessors for the daemons and a table-driven generic
 * layer (new/set/get/remove by field descriptors) for umctl. */
#ifndef OPENUM_DIRECTORY_H
#define OPENUM_DIRECTORY_H

#include <stdbool.h>
#include <stddef.h>

struct dir;

/* The schema version this build writes (PRAGMA user_version). */
#define DIR_SCHEMA_VERSION 2
/* Exchange: at most 200 UM IP gateways per dial plan. */
#define DIR_MAX_GATEWAYS_PER_DIALPLAN 200
#define DIR_NAME_MAX 64

enum dir_af { DIR_AF_IPV4ONLY, DIR_AF_IPV6ONLY, DIR_AF_ANY };
enum dir_startup_mode { DIR_STARTUP_TCP, DIR_STARTUP_TLS, DIR_STARTUP_DUAL };
enum dir_gw_status { DIR_GW_ENABLED, DIR_GW_DISABLED, DIR_GW_NONEWCALLS };
enum dir_uri_type { DIR_URI_TELEXTN, DIR_URI_E164, DIR_URI_SIPNAME };
enum dir_voip_security {
	DIR_VOIP_UNSECURED,
	DIR_VOIP_SIPSECURED,
	DIR_VOIP_SECURED,
};

/* ---- plain records ---------------------------------------------------- */

struct dir_service_settings {
	enum dir_af af;                     /* IPAddressFamily */
	bool af_configurable;               /* IPAddressFamilyConfigurable */
	unsigned max_calls;                 /* MaxCallsAllowed */
	unsigned sip_tcp_port, sip_tls_port; /* SipTcp/SipTlsListeningPort */
	enum dir_startup_mode startup_mode; /* UMStartupMode */
	char fqdn[256];                     /* ExternalHostFqdn, "" = none */
	unsigned bad_address_interval_s;    /* BadAddressInterval */
	unsigned outbound_stagger_ms;       /* OutboundStagger */
	unsigned gateway_ping_interval_s;   /* GatewayPingInterval */
};

struct dir_router_settings {
	enum dir_af af;
	bool af_configurable;
	unsigned sip_tcp_port, sip_tls_port;
	enum dir_startup_mode startup_mode;
	char protocol_log[1024]; /* ProtocolLogPath, "" = off */
	char dns_servers[512];   /* DnsServers: "ip", "ip:port", "[v6]:port", comma-separated */
};

struct dir_gateway {
	char name[DIR_NAME_MAX + 1];
	char address[256];       /* IPv4 literal, IPv6 literal (canonical) or FQDN (lower case) */
	unsigned port;
	enum dir_af af;
	enum dir_gw_status status;
	bool outcalls_allowed;
	bool mwi_allowed;        /* MessageWaitingIndicatorAllowed */
};

struct dir_dialplan {
	char name[DIR_NAME_MAX + 1];
	enum dir_uri_type uri_type;
	unsigned digits;               /* NumberOfDigitsInExtension */
	char access_numbers[512];      /* AccessTelephoneNumbers, comma-separated */
	enum dir_voip_security voip_security;
	unsigned max_recording_min;    /* MaxRecordingDuration */
	unsigned recording_idle_s;     /* RecordingIdleTimeout */
	unsigned input_failures;       /* InputFailuresBeforeDisconnect */
	unsigned logon_failures;       /* LogonFailuresBeforeDisconnect */
};

struct dir_huntgroup {
	char name[DIR_NAME_MAX + 1];
	char gateway[DIR_NAME_MAX + 1];
	char dialplan[DIR_NAME_MAX + 1];
	char pilot[33];                /* PilotIdentifier, "" = any */
};

struct dir_policy {
	char name[DIR_NAME_MAX + 1];
	unsigned min_pin_length;
	unsigned max_logon_attempts;
	unsigned logon_failures_before_pin_reset;
	unsigned pin_history_count;
	bool allow_common_patterns;
	unsigned max_greeting_min;
	bool allow_voice_mail_preview;
};

struct dir_mailbox {
	long long id;
	char extension[21];
	char display_name[513];
	char dialplan[DIR_NAME_MAX + 1];
	char policy[DIR_NAME_MAX + 1];
	char pin_hash[192];            /* pin_hash() string, "" = no PIN */
	bool enabled;
	unsigned failed_logons;
	bool locked;
	bool oof_enabled;
};

/* ---- open, settings, typed reads ---------------------------------------- */

#define DIR_OPEN_CREATE 1

int dir_open(struct dir **out, const char *path, unsigned flags,
	     char **first_pin, char **cause);
void dir_close(struct dir *d);
int dir_service_settings_get(struct dir *d, struct dir_service_settings *out);
int dir_router_settings_get(struct dir *d, struct dir_router_settings *out);
int dir_check_limits(struct dir *d, char **cause);

/* Lists return a malloc'd array (free with free(); NULL when empty). */
int dir_gateway_list(struct dir *d, struct dir_gateway **out, size_t *n);
int dir_huntgroup_list(struct dir *d, struct dir_huntgroup **out, size_t *n);
int dir_dialplan_list(struct dir *d, struct dir_dialplan **out, size_t *n);
int dir_dialplan_get(struct dir *d, const char *name,
		     struct dir_dialplan *out);
int dir_policy_get(struct dir *d, const char *name, struct dir_policy *out);
int dir_mailbox_find(struct dir *d, const char *dialplan,
		     const char *extension, struct dir_mailbox *out);
int dir_mailbox_list(struct dir *d, const char *dialplan,
		     struct dir_mailbox **out, size_t *n);
int dir_mailbox_logon_result(struct dir *d, long long id, bool ok,
			     unsigned max, unsigned *failures, bool *locked);
int dir_mailbox_set_oof(struct dir *d, long long id, bool on);

const char *dir_af_name(enum dir_af af);
int dir_af_parse(const char *s, enum dir_af *out);
const char *dir_startup_mode_name(enum dir_startup_mode m);
const char *dir_gw_status_name(enum dir_gw_status s);

/* ---- value validators (shared with the daemons) -------------------------- */

/* Each returns 0 or EINVAL. */
int dir_parse_bool(const char *s, bool *out);
int dir_check_ipv4(const char *s);
int dir_check_ipv6(const char *s);
int dir_check_fqdn(const char *s);

/* ---- generic, table-driven layer (umctl) ---------------------------------- */

enum dir_obj_type {
	DIR_OBJ_UMSERVICE,
	DIR_OBJ_CALLROUTER,
	DIR_OBJ_GATEWAY,
	DIR_OBJ_DIALPLAN,
	DIR_OBJ_HUNTGROUP,
	DIR_OBJ_POLICY,
	DIR_OBJ_MAILBOX,
	DIR_OBJ_COUNT,
};

enum dir_field_kind {
	DIR_KIND_STRING, /* min/max = length in bytes, validate = syntax */
	DIR_KIND_INT,    /* min/max = value range */
	DIR_KIND_BOOL,   /* true/false/$true/$false/1/0/yes/no */
	DIR_KIND_ENUM,   /* one of values[], case-insensitive, stored canonical */
	DIR_KIND_LIST,   /* comma-separated, validate = per item */
	DIR_KIND_REF,    /* the name of an object of type `ref` */
	DIR_KIND_SECRET, /* the PIN: checked against the policy, stored hashed, never shown */
	DIR_KIND_ACTION, /* a switch that acts on set (--unlock); not stored */
};

/* Field flags. */
#define DIR_FF_IDENTITY 0x01 /* the object's name / extension */
#define DIR_FF_REQUIRED 0x02 /* must be given on new */
#define DIR_FF_NEW      0x04 /* may be given on new */
#define DIR_FF_SET      0x08 /* may be changed by set */
#define DIR_FF_SHOW     0x10 /* shown by get */
#define DIR_FF_STORE    0x20 /* a column written by new/set */

/* Syntax check of a string value or list item: NULL when good (canonical
 * form written to canon), else a phrase saying what is allowed. */
typedef const char *dir_validate_fn(const char *in, char *canon, size_t cap);

struct dir_field {
	const char *param;  /* as umctl spells it: "ip-address-family" */
	const char *label;  /* Exchange property: "IPAddressFamily" */
	const char *column; /* SQL column or expression (NULL: action) */
	enum dir_field_kind kind;
	long min, max;
	const char *const *values; /* DIR_KIND_ENUM, NULL-terminated */
	dir_validate_fn *validate;
	const char *def;           /* default as text, NULL = none */
	unsigned flags;
	enum dir_obj_type ref;     /* DIR_KIND_REF */
	const char *help;          /* what the field means (one line) */
	const char *allowed;       /* what is allowed, for help and causes */
};

struct dir_objtype {
	enum dir_obj_type type;
	const char *noun;   /* "umipgateway" */
	const char *title;  /* "UM IP gateway" */
	const char *table;  /* SQL table */
	bool singleton;
	const struct dir_field *fields;
	size_t nfields;
};

/* One --param value pair as given by the user. */
struct dir_param {
	const char *name;  /* param or Exchange label, case-insensitive */
	const char *value;
};

/* One shown field of an object: values are display text (booleans
 * "True"/"False", numbers decimal, lists comma-separated). */
struct dir_value {
	const struct dir_field *field;
	const char *label;
	const char *value;
};

typedef int dir_obj_h(const struct dir_value *vals, size_t n, void *arg);

const struct dir_objtype *dir_objtype_get(enum dir_obj_type t);
int dir_objtype_parse(const char *noun, enum dir_obj_type *out);
const struct dir_field *dir_field_find(enum dir_obj_type t, const char *name);

int dir_obj_new(struct dir *d, enum dir_obj_type t,
		const struct dir_param *params, size_t n, char **new_pin,
		char **cause);
int dir_obj_set(struct dir *d, enum dir_obj_type t, const char *identity,
		const struct dir_param *params, size_t n, char **cause);
int dir_obj_remove(struct dir *d, enum dir_obj_type t, const char *identity,
		   char **cause);
int dir_obj_get(struct dir *d, enum dir_obj_type t, const char *identity,
		dir_obj_h *h, void *arg, char **cause);

#endif
