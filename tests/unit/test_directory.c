/* test_directory.c — directory.db: defaults, field validation, the
 * cross-field rules, limits, atomicity, hashed PINs and schema versions. */
#include "common/directory.h"
#include "common/pin.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

int test_dir_defaults(void);
int test_dir_field_validation(void);
int test_dir_gateway_family_rule(void);
int test_dir_af_configurable(void);
int test_dir_extension_length(void);
int test_dir_gateway_limit(void);
int test_dir_check_limits(void);
int test_dir_nothing_written_on_error(void);
int test_dir_pin_hashed(void);
int test_dir_schema_version(void);
int test_dir_remove_in_use(void);
int test_dir_get_values(void);

#define KV(...) ((const char *const[]){__VA_ARGS__, NULL})

static char dbpath[512];

/* A new directory in the test's temporary directory. PINs are hashed with
 * a cheap PBKDF2 count to keep the suite fast, except where `real`. */
static struct dir *fresh_count(char **first_pin, bool real)
{
	struct dir *d = NULL;
	char *cause = NULL;

	pin_set_iterations(real ? PIN_PBKDF2_ITERATIONS : 1000);

	snprintf(dbpath, sizeof dbpath, "%s/directory.db", ut_tmpdir());
	if (dir_open(&d, dbpath, DIR_OPEN_CREATE, first_pin, &cause)) {
		fprintf(stderr, "  dir_open: %s\n", cause ? cause : "?");
		free(cause);
		return NULL;
	}
	return d;
}

static struct dir *fresh(char **first_pin)
{
	return fresh_count(first_pin, false);
}

static size_t kv_params(const char *const *kv, struct dir_param *p)
{
	size_t n = 0;

	for (; kv[0] && kv[1]; kv += 2, n++) {
		p[n].name = kv[0];
		p[n].value = kv[1];
	}
	return n;
}

/* new (identity NULL) or set; the cause is kept in last_cause. */
static char *last_cause;

static int mk(struct dir *d, enum dir_obj_type t, const char *const *kv)
{
	struct dir_param p[16];
	size_t n = kv_params(kv, p);

	free(last_cause);
	last_cause = NULL;
	return dir_obj_new(d, t, p, n, NULL, &last_cause);
}

static int set(struct dir *d, enum dir_obj_type t, const char *id,
	       const char *const *kv)
{
	struct dir_param p[16];
	size_t n = kv_params(kv, p);

	free(last_cause);
	last_cause = NULL;
	return dir_obj_set(d, t, id, p, n, &last_cause);
}

static bool cause_has(const char *s)
{
	if (last_cause && strstr(last_cause, s))
		return true;
	fprintf(stderr, "  cause \"%s\" lacks \"%s\"\n",
		last_cause ? last_cause : "(null)", s);
	return false;
}

static long long raw_int(const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long long v = -1;

	if (sqlite3_open(dbpath, &db) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static int raw_text(const char *sql, char *buf, size_t cap)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = 1;

	buf[0] = '\0';
	if (sqlite3_open(dbpath, &db) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		snprintf(buf, cap, "%s", sqlite3_column_text(st, 0));
		rc = 0;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

static int raw_exec(const char *sql)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open(dbpath, &db);

	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

int test_dir_defaults(void)
{
	char *pin = NULL, *cause = NULL;
	struct dir *d = fresh_count(&pin, true);
	struct dir_service_settings ss;
	struct dir_router_settings rs;
	struct dir_gateway *gw = NULL;
	struct dir_huntgroup *hg = NULL;
	struct dir_dialplan dp;
	struct dir_policy pol;
	struct dir_mailbox mb;
	size_t n = 0;

	UT_ASSERT(d);
	UT_ASSERT(pin != NULL);
	UT_ASSERT_INT(strlen(pin), 6);
	UT_ASSERT(!pin_is_common_pattern(pin));

	UT_ASSERT_INT(dir_service_settings_get(d, &ss), 0);
	UT_ASSERT_INT(ss.af, DIR_AF_ANY);
	UT_ASSERT(ss.af_configurable);
	UT_ASSERT_INT(ss.max_calls, 100);
	UT_ASSERT_INT(ss.sip_tcp_port, 5062);
	UT_ASSERT_INT(ss.sip_tls_port, 5063);
	UT_ASSERT_INT(ss.startup_mode, DIR_STARTUP_TCP);
	UT_ASSERT_STR(ss.fqdn, "");
	UT_ASSERT_INT(dir_router_settings_get(d, &rs), 0);
	UT_ASSERT_INT(rs.af, DIR_AF_ANY);
	UT_ASSERT(rs.af_configurable);
	UT_ASSERT_INT(rs.sip_tcp_port, 5060);
	UT_ASSERT_INT(rs.sip_tls_port, 5061);
	UT_ASSERT_INT(rs.startup_mode, DIR_STARTUP_TCP);
	UT_ASSERT_STR(rs.protocol_log, "");
	UT_ASSERT_STR(rs.dns_servers, "");

	UT_ASSERT_INT(dir_gateway_list(d, &gw, &n), 0);
	UT_ASSERT_INT(n, 2);
	UT_ASSERT_STR(gw[0].name, "loopback");
	UT_ASSERT_STR(gw[0].address, "127.0.0.1");
	UT_ASSERT_INT(gw[0].af, DIR_AF_ANY);
	UT_ASSERT_INT(gw[0].port, 5060);
	UT_ASSERT_INT(gw[0].status, DIR_GW_ENABLED);
	UT_ASSERT(gw[0].outcalls_allowed && gw[0].mwi_allowed);
	UT_ASSERT_STR(gw[1].name, "loopback6");
	UT_ASSERT_STR(gw[1].address, "::1");
	UT_ASSERT_INT(gw[1].af, DIR_AF_ANY);
	free(gw);
	UT_ASSERT_INT(dir_huntgroup_list(d, &hg, &n), 0);
	UT_ASSERT_INT(n, 2);
	UT_ASSERT_STR(hg[0].gateway, "loopback");
	UT_ASSERT_STR(hg[0].dialplan, "default");
	UT_ASSERT_STR(hg[0].pilot, "");
	UT_ASSERT_STR(hg[1].gateway, "loopback6");
	free(hg);
	UT_ASSERT_INT(dir_dialplan_get(d, "DEFAULT", &dp), 0);
	UT_ASSERT_STR(dp.name, "default");
	UT_ASSERT_INT(dp.uri_type, DIR_URI_TELEXTN);
	UT_ASSERT_INT(dp.digits, 4);
	UT_ASSERT_STR(dp.access_numbers, "5000");
	UT_ASSERT_INT(dp.voip_security, DIR_VOIP_UNSECURED);
	UT_ASSERT_INT(dp.max_recording_min, 20);
	UT_ASSERT_INT(dp.recording_idle_s, 5);
	UT_ASSERT_INT(dp.input_failures, 3);
	UT_ASSERT_INT(dp.logon_failures, 3);
	UT_ASSERT_INT(dir_dialplan_get(d, "nope", &dp), ENOENT);
	UT_ASSERT_INT(dir_policy_get(d, "default", &pol), 0);
	UT_ASSERT_INT(pol.min_pin_length, 6);
	UT_ASSERT_INT(pol.max_logon_attempts, 15);
	UT_ASSERT_INT(pol.logon_failures_before_pin_reset, 5);
	UT_ASSERT_INT(pol.pin_history_count, 5);
	UT_ASSERT(!pol.allow_common_patterns);
	UT_ASSERT_INT(pol.max_greeting_min, 5);
	UT_ASSERT(pol.allow_voice_mail_preview);
	UT_ASSERT_INT(dir_mailbox_find(d, "default", "1001", &mb), 0);
	UT_ASSERT(mb.enabled && !mb.locked && mb.failed_logons == 0);
	UT_ASSERT_STR(mb.policy, "default");
	UT_ASSERT(mb.display_name[0]);
	UT_ASSERT_INT(pin_verify(mb.pin_hash, pin), 0);
	UT_ASSERT_INT(dir_mailbox_find(d, "default", "1002", &mb), ENOENT);
	UT_ASSERT_INT(dir_check_limits(d, NULL), 0);
	dir_close(d);
	free(pin);

	/* reopening hands back no PIN */
	pin = (char *)"untouched";
	UT_ASSERT_INT(dir_open(&d, dbpath, DIR_OPEN_CREATE, &pin, &cause), 0);
	UT_ASSERT(pin == NULL);
	dir_close(d);
	UT_ASSERT_INT(dir_open(&d, dbpath, 0, NULL, &cause), 0);
	dir_close(d);
	UT_ASSERT_INT(raw_int("SELECT count(*) FROM mailbox"), 1);
	return 0;
}

int test_dir_field_validation(void)
{
	struct dir *d = fresh(NULL);
	static const char *const good_addr[] = {
		"10.0.0.1", "::1", "gw.example.test", "2001:db8::10",
		"GW2.Example.Test.", "pbx", NULL};
	static const char *const bad_addr[] = {
		"300.1.1.1", "[::1]", "-bad-.com", "a..b", "", "fe80::1%eth0",
		"1.2.3", "gw_1.example", "bad-.example", "10.0.0.1:5060",
		NULL};
	struct dir_gateway *gw = NULL;
	size_t n = 0;
	char name[32];

	UT_ASSERT(d);
	for (int i = 0; good_addr[i]; i++) {
		snprintf(name, sizeof name, "g%d", i);
		UT_ASSERT_INT(mk(d, DIR_OBJ_GATEWAY,
				 KV("name", name, "address", good_addr[i],
				    "ip-address-family", "Any")),
			      0);
	}
	for (int i = 0; bad_addr[i]; i++) {
		UT_ASSERT_INT(mk(d, DIR_OBJ_GATEWAY,
				 KV("name", "bad", "address", bad_addr[i],
				    "ip-address-family", "Any")),
			      EINVAL);
		UT_ASSERT(cause_has("--address: \""));
	}
	UT_ASSERT_INT(dir_gateway_list(d, &gw, &n), 0);
	UT_ASSERT_INT(n, 8);
	/* stored canonical: IPv6 compressed, host names lower case, no dot */
	for (size_t i = 0; i < n; i++) {
		if (strcmp(gw[i].name, "g3") == 0)
			UT_ASSERT_STR(gw[i].address, "2001:db8::10");
		if (strcmp(gw[i].name, "g4") == 0)
			UT_ASSERT_STR(gw[i].address, "gw2.example.test");
	}
	free(gw);

	/* ports */
	UT_ASSERT_INT(mk(d, DIR_OBJ_GATEWAY,
			 KV("name", "p", "address", "10.0.0.2", "port", "0")),
		      EINVAL);
	UT_ASSERT(cause_has("--port: \"0\" is not an integer from 1 to 65535"));
	UT_ASSERT_INT(mk(d, DIR_OBJ_GATEWAY,
			 KV("name", "p", "address", "10.0.0.2", "port",
			    "65536")),
		      EINVAL);
	UT_ASSERT_INT(mk(d, DIR_OBJ_GATEWAY,
			 KV("name", "p", "address", "10.0.0.2", "port",
			    "-1")),
		      EINVAL);
	UT_ASSERT_INT(mk(d, DIR_OBJ_GATEWAY,
			 KV("name", "p", "address", "10.0.0.2", "port",
			    "5o60")),
		      EINVAL);
	UT_ASSERT_INT(mk(d, DIR_OBJ_GATEWAY,
			 KV("name", "p", "address", "10.0.0.2", "port",
			    "65535")),
		      0);
	UT_ASSERT_INT(set(d, DIR_OBJ_UMSERVICE, NULL,
			  KV("sip-tcp-listening-port", "0")),
		      EINVAL);
	UT_ASSERT_INT(set(d, DIR_OBJ_CALLROUTER, NULL,
			  KV("sip-tls-listening-port", "65536")),
		      EINVAL);
	UT_ASSERT_INT(set(d, DIR_OBJ_UMSERVICE, NULL,
			  KV("sip-tls-listening-port", "5062")),
		      EINVAL);
	UT_ASSERT(cause_has("cannot both be 5062"));

	/* enums: exact list in the cause, any case accepted, stored canonical */
	UT_ASSERT_INT(set(d, DIR_OBJ_GATEWAY, "p",
			  KV("ip-address-family", "IPv7")),
		      EINVAL);
	UT_ASSERT_STR(last_cause, "--ip-address-family: \"IPv7\" is not one "
				  "of IPv4Only, IPv6Only, Any");
	UT_ASSERT_INT(set(d, DIR_OBJ_GATEWAY, "P",
			  KV("IPAddressFamily", "any", "status", "nonewcalls")),
		      0);
	UT_ASSERT_INT(dir_gateway_list(d, &gw, &n), 0);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(gw[i].name, "p") == 0) {
			UT_ASSERT_INT(gw[i].af, DIR_AF_ANY);
			UT_ASSERT_INT(gw[i].status, DIR_GW_NONEWCALLS);
		}
	}
	free(gw);
	UT_ASSERT(raw_int("SELECT count(*) FROM gateway WHERE name = 'p' AND "
			  "ip_address_family = 'Any' AND status = "
			  "'NoNewCalls'") == 1);
	UT_ASSERT_INT(set(d, DIR_OBJ_UMSERVICE, NULL,
			  KV("um-startup-mode", "dual")),
		      0);
	UT_ASSERT_INT(set(d, DIR_OBJ_UMSERVICE, NULL,
			  KV("um-startup-mode", "udp")),
		      EINVAL);

	/* booleans */
	static const char *const bools[] = {"true", "False", "$true", "$FALSE",
					    "1",    "0",     "yes",   "NO"};
	for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++)
		UT_ASSERT_INT(set(d, DIR_OBJ_GATEWAY, "p",
				  KV("outcalls-allowed", bools[i])),
			      0);
	UT_ASSERT_INT(set(d, DIR_OBJ_GATEWAY, "p",
			  KV("outcalls-allowed", "maybe")),
		      EINVAL);
	UT_ASSERT(cause_has("is not a boolean"));

	/* names, ints with ranges, unknown and read-only params */
	UT_ASSERT_INT(mk(d, DIR_OBJ_GATEWAY,
			 KV("name", "bad name", "address", "10.0.0.3")),
		      EINVAL);
	UT_ASSERT_INT(mk(d, DIR_OBJ_GATEWAY, KV("name", "x")), EINVAL);
	UT_ASSERT(cause_has("--address is required"));
	UT_ASSERT_INT(mk(d, DIR_OBJ_GATEWAY,
			 KV("name", "x", "address", "10.0.0.3", "colour",
			    "red")),
		      EINVAL);
	UT_ASSERT(cause_has("--colour: not a parameter of umipgateway"));
	UT_ASSERT_INT(mk(d, DIR_OBJ_GATEWAY,
			 KV("name", "p", "address", "10.0.0.3")),
		      EEXIST);
	UT_ASSERT_INT(set(d, DIR_OBJ_GATEWAY, "p", KV("name", "q")), EINVAL);
	UT_ASSERT_INT(set(d, DIR_OBJ_GATEWAY, "nosuch", KV("port", "5070")),
		      ENOENT);
	UT_ASSERT_INT(set(d, DIR_OBJ_UMSERVICE, NULL,
			  KV("max-calls-allowed", "10001")),
		      EINVAL);
	UT_ASSERT_INT(set(d, DIR_OBJ_UMSERVICE, NULL,
			  KV("max-calls-allowed", "0")),
		      0);
	UT_ASSERT_INT(set(d, DIR_OBJ_UMSERVICE, NULL,
			  KV("external-host-fqdn", "um1.example.test")),
		      0);
	UT_ASSERT_INT(set(d, DIR_OBJ_UMSERVICE, NULL,
			  KV("external-host-fqdn", "10.0.0.1")),
		      EINVAL);
	UT_ASSERT_INT(set(d, DIR_OBJ_CALLROUTER, NULL,
			  KV("dns-servers",
			     "127.0.0.1, 127.0.0.1:5353,[::1]:53,::1")),
		      0);
	UT_ASSERT(raw_int("SELECT dns_servers = '127.0.0.1,127.0.0.1:5353,"
			  "[::1]:53,::1' FROM callrouter_settings") == 1);
	UT_ASSERT_INT(set(d, DIR_OBJ_CALLROUTER, NULL,
			  KV("dns-servers", "127.0.0.1:0")),
		      EINVAL);
	UT_ASSERT_INT(set(d, DIR_OBJ_CALLROUTER, NULL,
			  KV("dns-servers", "ns.example.test")),
		      EINVAL);
	UT_ASSERT_INT(set(d, DIR_OBJ_CALLROUTER, NULL,
			  KV("dns-servers", "127.0.0.1,,::1")),
		      EINVAL);
	UT_ASSERT_INT(set(d, DIR_OBJ_CALLROUTER, NULL, KV("dns-servers", "")),
		      0);
	UT_ASSERT_INT(mk(d, DIR_OBJ_DIALPLAN,
			 KV("name", "dp2", "number-of-digits-in-extension",
			    "21")),
		      EINVAL);
	UT_ASSERT_INT(mk(d, DIR_OBJ_DIALPLAN, KV("name", "dp2")), EINVAL);
	UT_ASSERT(cause_has("--number-of-digits-in-extension is required"));
	UT_ASSERT_INT(mk(d, DIR_OBJ_DIALPLAN,
			 KV("name", "dp2", "number-of-digits-in-extension",
			    "5", "access-telephone-numbers", "+4930123,12x")),
		      EINVAL);
	UT_ASSERT_INT(mk(d, DIR_OBJ_DIALPLAN,
			 KV("name", "dp2", "number-of-digits-in-extension",
			    "5", "access-telephone-numbers",
			    "+4930123, 5001", "uri-type", "e164",
			    "voip-security", "secured")),
		      0);
	UT_ASSERT_INT(set(d, DIR_OBJ_DIALPLAN, "dp2",
			  KV("recording-idle-timeout", "1")),
		      EINVAL);
	UT_ASSERT_INT(set(d, DIR_OBJ_DIALPLAN, "dp2",
			  KV("max-recording-duration", "101")),
		      EINVAL);
	UT_ASSERT_INT(mk(d, DIR_OBJ_POLICY,
			 KV("name", "strict", "min-pin-length", "3")),
		      EINVAL);
	UT_ASSERT_INT(mk(d, DIR_OBJ_POLICY,
			 KV("name", "strict", "max-logon-attempts", "5",
			    "logon-failures-before-pin-reset", "5")),
		      EINVAL);
	UT_ASSERT(cause_has("less than MaxLogonAttempts"));
	UT_ASSERT_INT(mk(d, DIR_OBJ_POLICY,
			 KV("name", "strict", "min-pin-length", "8")),
		      0);
	UT_ASSERT_INT(mk(d, DIR_OBJ_HUNTGROUP,
			 KV("name", "h", "umipgateway", "nosuch",
			    "umdialplan", "default")),
		      EINVAL);
	UT_ASSERT(cause_has("no UM IP gateway named \"nosuch\""));
	UT_ASSERT_INT(mk(d, DIR_OBJ_HUNTGROUP,
			 KV("name", "h", "umipgateway", "p", "umdialplan",
			    "default", "pilot-identifier", "5x")),
		      EINVAL);
	UT_ASSERT_INT(mk(d, DIR_OBJ_HUNTGROUP,
			 KV("name", "h", "umipgateway", "P", "umdialplan",
			    "DEFAULT", "pilot-identifier", "+495000")),
		      0);
	UT_ASSERT(raw_int("SELECT count(*) FROM huntgroup WHERE gateway = "
			  "'p' AND dialplan = 'default'") == 1);
	UT_ASSERT_INT(mk(d, DIR_OBJ_HUNTGROUP,
			 KV("name", "h2", "umipgateway", "p", "umdialplan",
			    "default", "pilot-identifier", "+495000")),
		      EEXIST);
	UT_ASSERT_INT(mk(d, DIR_OBJ_MAILBOX,
			 KV("extension", "1002", "display-name", "Bad\nName",
			    "umdialplan", "default")),
		      EINVAL);
	UT_ASSERT_INT(mk(d, DIR_OBJ_MAILBOX,
			 KV("extension", "1002", "display-name",
			    "Zoë Müller", "umdialplan", "default")),
		      0);
	UT_ASSERT_INT(mk(d, DIR_OBJ_UMSERVICE, KV("max-calls-allowed", "5")),
		      EINVAL);
	dir_close(d);
	free(last_cause);
	return 0;
}

int test_dir_gateway_family_rule(void)
{
	struct dir *d = fresh(NULL);

	UT_ASSERT(d);
	/* Exchange's default IPAddressFamily is IPv4Only */
	UT_ASSERT_INT(mk(d, DIR_OBJ_GATEWAY,
			 KV("name", "v6", "address", "2001:db8::1")),
		      EINVAL);
	UT_ASSERT(cause_has("--address: 2001:db8::1 is an IPv6 address but "
			    "IPAddressFamily is IPv4Only"));
	UT_ASSERT_INT(mk(d, DIR_OBJ_GATEWAY,
			 KV("name", "v4", "address", "10.0.0.1",
			    "ip-address-family", "IPv6Only")),
		      EINVAL);
	UT_ASSERT(cause_has("is an IPv4 address but IPAddressFamily is "
			    "IPv6Only"));
	UT_ASSERT_INT(mk(d, DIR_OBJ_GATEWAY,
			 KV("name", "v6", "address", "2001:db8::1",
			    "ip-address-family", "IPv6Only")),
		      0);
	UT_ASSERT_INT(mk(d, DIR_OBJ_GATEWAY,
			 KV("name", "v4", "address", "10.0.0.1")),
		      0);
	UT_ASSERT_INT(mk(d, DIR_OBJ_GATEWAY,
			 KV("name", "fq", "address", "gw.example.test",
			    "ip-address-family", "IPv6Only")),
		      0);
	/* on set, whichever field changes */
	UT_ASSERT_INT(set(d, DIR_OBJ_GATEWAY, "v6",
			  KV("ip-address-family", "IPv4Only")),
		      EINVAL);
	UT_ASSERT(cause_has("--ip-address-family: IPv4Only refused"));
	UT_ASSERT_INT(set(d, DIR_OBJ_GATEWAY, "v4", KV("address", "::2")),
		      EINVAL);
	UT_ASSERT(cause_has("--address: ::2 is an IPv6 address"));
	UT_ASSERT_INT(set(d, DIR_OBJ_GATEWAY, "v4",
			  KV("address", "::2", "ip-address-family", "Any")),
		      0);
	UT_ASSERT_INT(set(d, DIR_OBJ_GATEWAY, "v6",
			  KV("address", "10.1.1.1")),
		      EINVAL);
	UT_ASSERT_INT(set(d, DIR_OBJ_GATEWAY, "fq",
			  KV("ip-address-family", "IPv4Only")),
		      0);
	dir_close(d);
	free(last_cause);
	return 0;
}

int test_dir_af_configurable(void)
{
	struct dir *d = fresh(NULL);
	struct dir_service_settings ss;
	struct dir_router_settings rs;

	UT_ASSERT(d);
	UT_ASSERT_INT(set(d, DIR_OBJ_UMSERVICE, NULL,
			  KV("ip-address-family-configurable", "false")),
		      0);
	UT_ASSERT_INT(set(d, DIR_OBJ_UMSERVICE, NULL,
			  KV("ip-address-family", "IPv4Only")),
		      EPERM);
	UT_ASSERT_STR(last_cause,
		      "--ip-address-family: refused: IPAddressFamilyConfigurable "
		      "is False for the UM service; set "
		      "--ip-address-family-configurable true first");
	UT_ASSERT_INT(dir_service_settings_get(d, &ss), 0);
	UT_ASSERT_INT(ss.af, DIR_AF_ANY);
	/* the same value is not a change */
	UT_ASSERT_INT(set(d, DIR_OBJ_UMSERVICE, NULL,
			  KV("ip-address-family", "any")),
		      0);
	/* both in one command */
	UT_ASSERT_INT(set(d, DIR_OBJ_UMSERVICE, NULL,
			  KV("ip-address-family", "IPv6Only",
			     "ip-address-family-configurable", "true")),
		      0);
	UT_ASSERT_INT(dir_service_settings_get(d, &ss), 0);
	UT_ASSERT_INT(ss.af, DIR_AF_IPV6ONLY);
	UT_ASSERT(ss.af_configurable);

	UT_ASSERT_INT(set(d, DIR_OBJ_CALLROUTER, NULL,
			  KV("ip-address-family-configurable", "$false")),
		      0);
	UT_ASSERT_INT(set(d, DIR_OBJ_CALLROUTER, NULL,
			  KV("ip-address-family", "IPv4Only",
			     "sip-tcp-listening-port", "5070")),
		      EPERM);
	UT_ASSERT(cause_has("for the UM call router"));
	UT_ASSERT_INT(dir_router_settings_get(d, &rs), 0);
	UT_ASSERT_INT(rs.sip_tcp_port, 5060); /* nothing written */
	UT_ASSERT_INT(set(d, DIR_OBJ_CALLROUTER, NULL,
			  KV("ip-address-family-configurable", "1",
			     "ip-address-family", "IPv4Only")),
		      0);
	UT_ASSERT_INT(dir_router_settings_get(d, &rs), 0);
	UT_ASSERT_INT(rs.af, DIR_AF_IPV4ONLY);
	dir_close(d);
	free(last_cause);
	return 0;
}

int test_dir_extension_length(void)
{
	struct dir *d = fresh(NULL);
	struct dir_mailbox mb;

	UT_ASSERT(d);
	UT_ASSERT_INT(mk(d, DIR_OBJ_MAILBOX,
			 KV("extension", "10021", "display-name", "Five",
			    "umdialplan", "default")),
		      EINVAL);
	UT_ASSERT(cause_has("NumberOfDigitsInExtension 4"));
	UT_ASSERT_INT(mk(d, DIR_OBJ_MAILBOX,
			 KV("extension", "10a2", "display-name", "X",
			    "umdialplan", "default")),
		      EINVAL);
	UT_ASSERT_INT(mk(d, DIR_OBJ_MAILBOX,
			 KV("extension", "1002", "display-name", "Four")),
		      EINVAL);
	UT_ASSERT(cause_has("--umdialplan is required"));
	UT_ASSERT_INT(mk(d, DIR_OBJ_MAILBOX,
			 KV("extension", "1002", "display-name", "Four",
			    "umdialplan", "default")),
		      0);
	UT_ASSERT_INT(mk(d, DIR_OBJ_MAILBOX,
			 KV("extension", "1002", "display-name", "Again",
			    "umdialplan", "default")),
		      EEXIST);
	UT_ASSERT_INT(set(d, DIR_OBJ_DIALPLAN, "default",
			  KV("number-of-digits-in-extension", "5")),
		      EBUSY);
	UT_ASSERT(cause_has("1001, 1002"));
	UT_ASSERT_INT(mk(d, DIR_OBJ_DIALPLAN,
			 KV("name", "five", "number-of-digits-in-extension",
			    "5")),
		      0);
	UT_ASSERT_INT(mk(d, DIR_OBJ_MAILBOX,
			 KV("extension", "10021", "display-name", "Five",
			    "umdialplan", "five")),
		      0);
	/* the same extension may exist in another dial plan */
	UT_ASSERT_INT(set(d, DIR_OBJ_DIALPLAN, "five",
			  KV("number-of-digits-in-extension", "4")),
		      EBUSY);
	UT_ASSERT_INT(mk(d, DIR_OBJ_DIALPLAN,
			 KV("name", "other4", "number-of-digits-in-extension",
			    "4")),
		      0);
	UT_ASSERT_INT(mk(d, DIR_OBJ_MAILBOX,
			 KV("extension", "1002", "display-name", "Other",
			    "umdialplan", "other4")),
		      0);
	UT_ASSERT_INT(set(d, DIR_OBJ_MAILBOX, "1002",
			  KV("display-name", "Ambiguous")),
		      EINVAL);
	UT_ASSERT(cause_has("give --umdialplan"));
	UT_ASSERT_INT(set(d, DIR_OBJ_MAILBOX, "other4/1002",
			  KV("display-name", "Renamed")),
		      0);
	UT_ASSERT_INT(dir_mailbox_find(d, "other4", "1002", &mb), 0);
	UT_ASSERT_STR(mb.display_name, "Renamed");
	/* a dial plan without mailboxes may change its length */
	UT_ASSERT_INT(mk(d, DIR_OBJ_DIALPLAN,
			 KV("name", "empty", "number-of-digits-in-extension",
			    "3")),
		      0);
	UT_ASSERT_INT(set(d, DIR_OBJ_DIALPLAN, "empty",
			  KV("number-of-digits-in-extension", "7")),
		      0);
	/* disable, then enable again */
	UT_ASSERT_INT(set(d, DIR_OBJ_MAILBOX, "default/1002",
			  KV("enabled", "false")),
		      0);
	UT_ASSERT_INT(dir_mailbox_find(d, "default", "1002", &mb), 0);
	UT_ASSERT(!mb.enabled);
	UT_ASSERT_INT(mk(d, DIR_OBJ_MAILBOX,
			 KV("extension", "1002", "display-name", "Back",
			    "umdialplan", "default")),
		      0);
	UT_ASSERT_INT(dir_mailbox_find(d, "default", "1002", &mb), 0);
	UT_ASSERT(mb.enabled);
	UT_ASSERT_STR(mb.display_name, "Back");
	dir_close(d);
	free(last_cause);
	return 0;
}

int test_dir_gateway_limit(void)
{
	struct dir *d = fresh(NULL);
	char name[32], hg[32], addr[32];

	UT_ASSERT(d);
	UT_ASSERT_INT(mk(d, DIR_OBJ_DIALPLAN,
			 KV("name", "big", "number-of-digits-in-extension",
			    "4")),
		      0);
	for (int i = 0; i < 201; i++) {
		snprintf(name, sizeof name, "gw%d", i);
		snprintf(addr, sizeof addr, "10.0.%d.%d", i / 250, i % 250 + 1);
		UT_ASSERT_INT(mk(d, DIR_OBJ_GATEWAY,
				 KV("name", name, "address", addr)),
			      0);
	}
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof name, "gw%d", i);
		snprintf(hg, sizeof hg, "hg%d", i);
		UT_ASSERT_INT(mk(d, DIR_OBJ_HUNTGROUP,
				 KV("name", hg, "umipgateway", name,
				    "umdialplan", "big")),
			      0);
	}
	UT_ASSERT_INT(mk(d, DIR_OBJ_HUNTGROUP,
			 KV("name", "hg200", "umipgateway", "gw200",
			    "umdialplan", "big")),
		      ENOSPC);
	UT_ASSERT(cause_has("at most 200 per dial plan"));
	UT_ASSERT(raw_int("SELECT count(*) FROM huntgroup WHERE dialplan = "
			  "'big'") == 200);
	/* another pilot for a gateway already linked is not a new gateway */
	UT_ASSERT_INT(mk(d, DIR_OBJ_HUNTGROUP,
			 KV("name", "hg0b", "umipgateway", "gw0",
			    "umdialplan", "big", "pilot-identifier", "5555")),
		      0);
	/* and gw200 may still serve another dial plan */
	UT_ASSERT_INT(mk(d, DIR_OBJ_HUNTGROUP,
			 KV("name", "hg200", "umipgateway", "gw200",
			    "umdialplan", "default")),
		      0);
	UT_ASSERT_INT(dir_check_limits(d, NULL), 0);
	dir_close(d);
	free(last_cause);
	return 0;
}

int test_dir_check_limits(void)
{
	struct dir *d = fresh(NULL);
	char *cause = NULL;
	char sql[4096];

	UT_ASSERT(d);
	UT_ASSERT_INT(dir_check_limits(d, &cause), 0);
	UT_ASSERT(cause == NULL);
	snprintf(sql, sizeof sql,
		 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
		 "FROM n WHERE i < 201) "
		 "INSERT INTO gateway SELECT 'raw' || i, '10.9.0.' || (i %% "
		 "250), 5060, 'IPv4Only', 'Enabled', 1, 1 FROM n;"
		 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
		 "FROM n WHERE i < 201) "
		 "INSERT INTO huntgroup SELECT 'rawhg' || i, 'raw' || i, "
		 "'default', '' FROM n;");
	UT_ASSERT_INT(raw_exec(sql), SQLITE_OK);
	UT_ASSERT_INT(dir_check_limits(d, &cause), EINVAL);
	UT_ASSERT(cause && strstr(cause, "\"default\" is linked to 203 UM IP "
					 "gateways"));
	UT_ASSERT(strstr(cause, "at most 200"));
	free(cause);
	dir_close(d);
	return 0;
}

int test_dir_nothing_written_on_error(void)
{
	struct dir *d = fresh(NULL);
	struct dir_service_settings ss;
	char before[4096], after[4096];
	const char *dump =
		"SELECT group_concat(x, '|') FROM ("
		" SELECT name || address || port || ip_address_family || status"
		"  AS x FROM gateway UNION ALL"
		" SELECT name || digits || access_numbers FROM dialplan"
		" UNION ALL SELECT name || gateway FROM huntgroup UNION ALL"
		" SELECT extension || display_name || pin_hash || enabled FROM"
		" mailbox UNION ALL SELECT max_calls_allowed || "
		" sip_tcp_listening_port FROM service_settings)";

	UT_ASSERT(d);
	UT_ASSERT_INT(raw_text(dump, before, sizeof before), 0);
	/* good values followed by a bad one */
	UT_ASSERT_INT(mk(d, DIR_OBJ_GATEWAY,
			 KV("name", "gwx", "address", "10.0.0.5", "port",
			    "5070", "status", "Broken")),
		      EINVAL);
	UT_ASSERT_INT(set(d, DIR_OBJ_UMSERVICE, NULL,
			  KV("max-calls-allowed", "50",
			     "sip-tcp-listening-port", "99999")),
		      EINVAL);
	UT_ASSERT_INT(set(d, DIR_OBJ_GATEWAY, "loopback",
			  KV("port", "5099", "address", "a..b")),
		      EINVAL);
	UT_ASSERT_INT(set(d, DIR_OBJ_GATEWAY, "loopback",
			  KV("port", "5099", "port", "5098")),
		      EINVAL);
	UT_ASSERT(cause_has("given twice"));
	UT_ASSERT_INT(mk(d, DIR_OBJ_MAILBOX,
			 KV("extension", "1003", "display-name", "Pat",
			    "umdialplan", "default", "pin", "123456")),
		      EINVAL);
	UT_ASSERT_INT(set(d, DIR_OBJ_MAILBOX, "1001",
			  KV("display-name", "New Name", "pin", "1111")),
		      EINVAL);
	UT_ASSERT_INT(set(d, DIR_OBJ_DIALPLAN, "default",
			  KV("access-telephone-numbers", "5001",
			     "number-of-digits-in-extension", "6")),
		      EBUSY);
	UT_ASSERT_INT(dir_obj_remove(d, DIR_OBJ_GATEWAY, "loopback", NULL),
		      EBUSY);
	UT_ASSERT_INT(raw_text(dump, after, sizeof after), 0);
	UT_ASSERT_STR(after, before);
	UT_ASSERT_INT(dir_service_settings_get(d, &ss), 0);
	UT_ASSERT_INT(ss.max_calls, 100);
	dir_close(d);
	free(last_cause);
	return 0;
}

int test_dir_pin_hashed(void)
{
	struct dir *d = fresh_count(NULL, true);
	struct dir_param p[4] = {{"extension", "1004"},
				 {"display-name", "Sam"},
				 {"umdialplan", "default"},
				 {"pin", "482916"}};
	struct dir_mailbox mb;
	char *pin = NULL, *cause = NULL;
	char stored[256];

	UT_ASSERT(d);
	UT_ASSERT_INT(dir_obj_new(d, DIR_OBJ_MAILBOX, p, 4, &pin, &cause), 0);
	UT_ASSERT(pin == NULL); /* given, so nothing generated */
	UT_ASSERT_INT(raw_text("SELECT pin_hash FROM mailbox WHERE extension "
			       "= '1004'",
			       stored, sizeof stored),
		      0);
	UT_ASSERT(strstr(stored, "482916") == NULL);
	UT_ASSERT(strncmp(stored, "pbkdf2-sha256$100000$", 21) == 0);
	UT_ASSERT_INT(pin_verify(stored, "482916"), 0);
	UT_ASSERT_INT(pin_verify(stored, "482917"), EACCES);
	UT_ASSERT(raw_int("SELECT count(*) FROM mailbox_pin_history WHERE "
			  "pin_hash LIKE '%482916%'") == 0);

	/* no PIN given: one is generated, returned once, stored hashed */
	p[0].value = "1005";
	UT_ASSERT_INT(dir_obj_new(d, DIR_OBJ_MAILBOX, p, 3, &pin, &cause), 0);
	UT_ASSERT(pin && strlen(pin) == 6);
	UT_ASSERT_INT(dir_mailbox_find(d, "default", "1005", &mb), 0);
	UT_ASSERT_INT(pin_verify(mb.pin_hash, pin), 0);
	UT_ASSERT(strstr(mb.pin_hash, pin) == NULL);
	free(pin);

	/* policy */
	UT_ASSERT_INT(set(d, DIR_OBJ_MAILBOX, "1004", KV("pin", "123456")),
		      EINVAL);
	UT_ASSERT(cause_has("--pin: "));
	UT_ASSERT_INT(set(d, DIR_OBJ_MAILBOX, "1004", KV("pin", "4821")),
		      EINVAL);
	UT_ASSERT(cause_has("MinPINLength"));
	UT_ASSERT_INT(set(d, DIR_OBJ_MAILBOX, "1004", KV("pin", "901004")),
		      EINVAL);
	UT_ASSERT_INT(set(d, DIR_OBJ_MAILBOX, "1004", KV("pin", "48a916")),
		      EINVAL);
	/* history: the current PIN cannot be set again */
	UT_ASSERT_INT(set(d, DIR_OBJ_MAILBOX, "1004", KV("pin", "482916")),
		      EINVAL);
	UT_ASSERT(cause_has("PINHistoryCount"));
	UT_ASSERT_INT(set(d, DIR_OBJ_MAILBOX, "1004", KV("pin", "739284")),
		      0);
	UT_ASSERT_INT(dir_mailbox_find(d, "default", "1004", &mb), 0);
	UT_ASSERT_INT(pin_verify(mb.pin_hash, "739284"), 0);

	/* unlock */
	UT_ASSERT_INT(raw_exec("UPDATE mailbox SET locked = 1, failed_logons "
			       "= 15 WHERE extension = '1004'"),
		      SQLITE_OK);
	UT_ASSERT_INT(dir_mailbox_find(d, "default", "1004", &mb), 0);
	UT_ASSERT(mb.locked && mb.failed_logons == 15);
	UT_ASSERT_INT(set(d, DIR_OBJ_MAILBOX, "default/1004",
			  KV("unlock", "true")),
		      0);
	UT_ASSERT_INT(dir_mailbox_find(d, "default", "1004", &mb), 0);
	UT_ASSERT(!mb.locked && mb.failed_logons == 0);
	UT_ASSERT_INT(set(d, DIR_OBJ_MAILBOX, "1004", KV("locked", "false")),
		      EINVAL);
	UT_ASSERT(cause_has("read-only"));
	free(cause);
	free(last_cause);
	dir_close(d);
	return 0;
}

int test_dir_schema_version(void)
{
	struct dir *d = fresh(NULL);
	char *cause = NULL, path[600];

	UT_ASSERT(d);
	dir_close(d);
	UT_ASSERT_INT(raw_int("PRAGMA user_version"), DIR_SCHEMA_VERSION);
	UT_ASSERT_INT(raw_exec("PRAGMA user_version = 99"), SQLITE_OK);
	d = NULL;
	UT_ASSERT_INT(dir_open(&d, dbpath, DIR_OPEN_CREATE, NULL, &cause),
		      ENOTSUP);
	UT_ASSERT(cause && strstr(cause, "schema version 99"));
	free(cause);
	cause = NULL;
	UT_ASSERT_INT(raw_int("PRAGMA user_version"), 99); /* left alone */

	/* A version 1 directory (before the outbound policy's settings) is
	 * migrated on open, its values kept, the new settings defaulted. */
	UT_ASSERT_INT(raw_exec("PRAGMA user_version = 1;"
			       "ALTER TABLE service_settings DROP COLUMN"
			       " bad_address_interval;"
			       "ALTER TABLE service_settings DROP COLUMN"
			       " outbound_stagger;"
			       "ALTER TABLE service_settings DROP COLUMN"
			       " gateway_ping_interval;"
			       "UPDATE service_settings SET max_calls_allowed = 7"),
		      SQLITE_OK);
	UT_ASSERT_INT(dir_open(&d, dbpath, 0, NULL, &cause), 0);
	{
		struct dir_service_settings ss;

		UT_ASSERT_INT(dir_service_settings_get(d, &ss), 0);
		UT_ASSERT_INT(ss.max_calls, 7);
		UT_ASSERT_INT(ss.bad_address_interval_s, 300);
		UT_ASSERT_INT(ss.outbound_stagger_ms, 250);
		UT_ASSERT_INT(ss.gateway_ping_interval_s, 60);
	}
	dir_close(d);
	UT_ASSERT_INT(raw_int("PRAGMA user_version"), DIR_SCHEMA_VERSION);

	/* without CREATE a missing file is not created */
	snprintf(path, sizeof path, "%s/none.db", ut_tmpdir());
	UT_ASSERT_INT(dir_open(&d, path, 0, NULL, &cause), ENOENT);
	UT_ASSERT(cause != NULL);
	free(cause);
	cause = NULL;
	/* a foreign SQLite file is refused */
	snprintf(dbpath, sizeof dbpath, "%s/other.db", ut_tmpdir());
	UT_ASSERT_INT(raw_exec("CREATE TABLE t (x)"), SQLITE_OK);
	UT_ASSERT_INT(dir_open(&d, dbpath, DIR_OPEN_CREATE, NULL, &cause),
		      EINVAL);
	UT_ASSERT(cause && strstr(cause, "not an OpenUM directory"));
	free(cause);
	return 0;
}

int test_dir_remove_in_use(void)
{
	struct dir *d = fresh(NULL);
	char *cause = NULL;

	UT_ASSERT(d);
	UT_ASSERT_INT(dir_obj_remove(d, DIR_OBJ_GATEWAY, "loopback", &cause),
		      EBUSY);
	UT_ASSERT(cause && strstr(cause, "loopback-default"));
	free(cause);
	cause = NULL;
	UT_ASSERT_INT(dir_obj_remove(d, DIR_OBJ_DIALPLAN, "default", &cause),
		      EBUSY);
	UT_ASSERT(cause && strstr(cause, "1001"));
	free(cause);
	cause = NULL;
	UT_ASSERT_INT(dir_obj_remove(d, DIR_OBJ_POLICY, "default", &cause),
		      EBUSY);
	free(cause);
	cause = NULL;
	UT_ASSERT_INT(dir_obj_remove(d, DIR_OBJ_UMSERVICE, NULL, &cause),
		      EINVAL);
	free(cause);
	cause = NULL;
	UT_ASSERT_INT(dir_obj_remove(d, DIR_OBJ_GATEWAY, "nosuch", &cause),
		      ENOENT);
	free(cause);
	cause = NULL;
	UT_ASSERT_INT(dir_obj_remove(d, DIR_OBJ_HUNTGROUP, "loopback-default",
				     NULL),
		      0);
	UT_ASSERT_INT(dir_obj_remove(d, DIR_OBJ_GATEWAY, "LOOPBACK", NULL),
		      0);
	UT_ASSERT(raw_int("SELECT count(*) FROM gateway") == 1);
	UT_ASSERT_INT(dir_obj_remove(d, DIR_OBJ_MAILBOX, "1001", NULL), 0);
	UT_ASSERT_INT(dir_obj_remove(d, DIR_OBJ_HUNTGROUP, "loopback6-default",
				     NULL),
		      0);
	UT_ASSERT_INT(dir_obj_remove(d, DIR_OBJ_DIALPLAN, "default", NULL), 0);
	UT_ASSERT(raw_int("SELECT count(*) FROM mailbox_pin_history") == 0);
	dir_close(d);
	return 0;
}

struct collect {
	int objects;
	char text[4096];
};

static int collect_h(const struct dir_value *v, size_t n, void *arg)
{
	struct collect *c = arg;
	size_t o = strlen(c->text);

	c->objects++;
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(c->text + o, sizeof c->text - o, "%s=%s;",
				      v[i].label, v[i].value);
	snprintf(c->text + o, sizeof c->text - o, "\n");
	return 0;
}

int test_dir_get_values(void)
{
	struct dir *d = fresh(NULL);
	struct collect c = {0};
	char *cause = NULL;

	UT_ASSERT(d);
	UT_ASSERT_INT(dir_obj_get(d, DIR_OBJ_UMSERVICE, NULL, collect_h, &c,
				  NULL),
		      0);
	UT_ASSERT_INT(c.objects, 1);
	UT_ASSERT_STR(c.text,
		      "IPAddressFamily=Any;IPAddressFamilyConfigurable=True;"
		      "MaxCallsAllowed=100;SipTcpListeningPort=5062;"
		      "SipTlsListeningPort=5063;UMStartupMode=TCP;"
		      "ExternalHostFqdn=;BadAddressInterval=300;"
		      "OutboundStagger=250;GatewayPingInterval=60;\n");
	memset(&c, 0, sizeof c);
	UT_ASSERT_INT(dir_obj_get(d, DIR_OBJ_GATEWAY, NULL, collect_h, &c,
				  NULL),
		      0);
	UT_ASSERT_INT(c.objects, 2);
	memset(&c, 0, sizeof c);
	UT_ASSERT_INT(dir_obj_get(d, DIR_OBJ_GATEWAY, "Loopback6", collect_h,
				  &c, NULL),
		      0);
	UT_ASSERT_INT(c.objects, 1);
	UT_ASSERT(strstr(c.text, "Name=loopback6;Address=::1;Port=5060;"
				 "IPAddressFamily=Any;Status=Enabled;"
				 "OutcallsAllowed=True;"));
	memset(&c, 0, sizeof c);
	UT_ASSERT_INT(dir_obj_get(d, DIR_OBJ_MAILBOX, "default/1001",
				  collect_h, &c, NULL),
		      0);
	UT_ASSERT_INT(c.objects, 1);
	UT_ASSERT(strstr(c.text, "Extension=1001;"));
	UT_ASSERT(strstr(c.text, "PINSet=True;Locked=False;"));
	UT_ASSERT(strstr(c.text, "pbkdf2") == NULL);
	UT_ASSERT(strstr(c.text, "PIN=") == NULL);
	UT_ASSERT_INT(dir_obj_get(d, DIR_OBJ_GATEWAY, "nosuch", collect_h, &c,
				  &cause),
		      ENOENT);
	UT_ASSERT(cause && strstr(cause, "nosuch"));
	free(cause);
	cause = NULL;
	UT_ASSERT_INT(dir_obj_get(d, DIR_OBJ_MAILBOX, "1999", collect_h, &c,
				  &cause),
		      ENOENT);
	free(cause);
	dir_close(d);
	return 0;
}
