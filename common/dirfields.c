/* dirfields.c — the directory's vocabulary: enum names, the validators of
 * field values (canonical forms), and the field descriptor tables of every
 * object type that the generic engine (dirops.c) and umctl's help read. */
#include "common/directory_int.h"
#include "common/pin.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- enum names --------------------------------------------------------- */

const char *const dir_af_values[] = {"IPv4Only", "IPv6Only", "Any", NULL};
const char *const dir_startup_values[] = {"TCP", "TLS", "Dual", NULL};
const char *const dir_gw_status_values[] = {"Enabled", "Disabled",
					    "NoNewCalls", NULL};
const char *const dir_uri_values[] = {"TelExtn", "E164", "SipName", NULL};
const char *const dir_voip_values[] = {"Unsecured", "SIPSecured",
				       "Secured", NULL};

int dir_enum_index(const char *const *values, const char *s)
{
	for (int i = 0; s && values[i]; i++) {
		if (strcasecmp(values[i], s) == 0)
			return i;
	}
	return -1;
}


/* "IPv4Only", "IPv6Only" or "Any". */
const char *dir_af_name(enum dir_af af)
{
	return (unsigned)af <= DIR_AF_ANY ? dir_af_values[af] : "?";
}

/* Parses an IPAddressFamily name, case-insensitively. 0 or EINVAL. */
int dir_af_parse(const char *s, enum dir_af *out)
{
	int i = dir_enum_index(dir_af_values, s);

	if (i < 0)
		return EINVAL;
	*out = (enum dir_af)i;
	return 0;
}

/* "TCP", "TLS" or "Dual". */
const char *dir_startup_mode_name(enum dir_startup_mode m)
{
	return (unsigned)m <= DIR_STARTUP_DUAL ? dir_startup_values[m] : "?";
}

/* "Enabled", "Disabled" or "NoNewCalls". */
const char *dir_gw_status_name(enum dir_gw_status s)
{
	return (unsigned)s <= DIR_GW_NONEWCALLS ? dir_gw_status_values[s] : "?";
}

/* ---- syntax checks --------------------------------------------------------- */

/* Parses true/false/$true/$false/1/0/yes/no, case-insensitively. */
int dir_parse_bool(const char *s, bool *out)
{
	static const char *const t[] = {"true", "$true", "1", "yes", NULL};
	static const char *const f[] = {"false", "$false", "0", "no", NULL};

	if (dir_enum_index(t, s) >= 0) {
		*out = true;
		return 0;
	}
	if (dir_enum_index(f, s) >= 0) {
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

const char *dir_v_name(const char *in, char *canon, size_t cap)
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
	 .validate = dir_v_name,                                                \
	 .flags = DIR_FF_IDENTITY | DIR_FF_REQUIRED | DIR_FF_NEW |          \
		  DIR_FF_SHOW | DIR_FF_STORE,                               \
	 .help = "the name of the " what,                                   \
	 .allowed = "1-64 characters A-Z a-z 0-9 . _ -"}
#define AF_FIELD(d)                                                         \
	{.param = "ip-address-family", .label = "IPAddressFamily",          \
	 .column = "ip_address_family", .kind = DIR_KIND_ENUM,              \
	 .values = dir_af_values, .def = d, .flags = RW,                        \
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
	 .values = dir_startup_values, .def = "TCP", .flags = RW,               \
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
	 .kind = DIR_KIND_ENUM, .values = dir_gw_status_values,
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
	 .kind = DIR_KIND_ENUM, .values = dir_uri_values, .def = "TelExtn",
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
	 .values = dir_voip_values, .def = "Unsecured", .flags = RW,
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

_Static_assert(NF(mailbox_fields) <= DIR_MAX_FIELDS &&
		       NF(dialplan_fields) <= DIR_MAX_FIELDS &&
		       NF(policy_fields) <= DIR_MAX_FIELDS,
	       "DIR_MAX_FIELDS too small");
