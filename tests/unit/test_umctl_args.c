/* test_umctl_args.c — umctl command-line parsing, and its output (text and
 * JSON) for directory objects and the router status. */
#include "common/directory.h"
#include "common/pin.h"
#include "tests/unit/unit.h"
#include "umctl/ctl_args.h"
#include "umctl/ctl_cmd.h"
#include "umctl/ctl_out.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int test_umctl_args_params(void);
int test_umctl_args_globals(void);
int test_umctl_args_errors(void);
int test_umctl_args_switches(void);
int test_umctl_args_mailbox(void);
int test_umctl_cmd_output(void);
int test_umctl_gateway_health(void);
int test_umctl_status_output(void);

#define ARGV(...) ((char *const[]){"umctl", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *const[]){"umctl", __VA_ARGS__}) / \
			 sizeof(char *)))
#define PARSE(a, cause, ...) ctl_args_parse(a, ARGC(__VA_ARGS__), \
					    ARGV(__VA_ARGS__), cause)

static const char *param(const struct ctl_args *a, const char *name)
{
	for (size_t i = 0; i < a->nparams; i++) {
		if (strcmp(a->params[i].name, name) == 0)
			return a->params[i].value;
	}
	return NULL;
}

int test_umctl_args_params(void)
{
	struct ctl_args a;

	UT_ASSERT_INT(PARSE(&a, NULL, "new-umipgateway", "--name", "gw1",
			    "--address=10.0.0.1", "--port", "5070",
			    "--IPAddressFamily", "Any"),
		      0);
	UT_ASSERT_STR(a.verb->name, "new-umipgateway");
	UT_ASSERT_INT(a.verb->action, CTL_ACT_NEW);
	UT_ASSERT_INT(a.verb->type, DIR_OBJ_GATEWAY);
	UT_ASSERT_INT(a.nparams, 4);
	UT_ASSERT_STR(param(&a, "name"), "gw1");
	UT_ASSERT_STR(param(&a, "address"), "10.0.0.1");
	UT_ASSERT_STR(param(&a, "port"), "5070");
	UT_ASSERT_STR(param(&a, "ip-address-family"), "Any");
	UT_ASSERT(!a.json && !a.help && !a.state_dir);

	/* the verb is case-insensitive; an empty value with = is a value */
	UT_ASSERT_INT(PARSE(&a, NULL, "Set-UMService",
			    "--external-host-fqdn="),
		      0);
	UT_ASSERT_INT(a.verb->type, DIR_OBJ_UMSERVICE);
	UT_ASSERT_STR(param(&a, "external-host-fqdn"), "");

	/* identity on set/get/remove: --identity or --name */
	UT_ASSERT_INT(PARSE(&a, NULL, "set-umipgateway", "--identity", "gw1",
			    "--status", "Disabled"),
		      0);
	UT_ASSERT_STR(a.identity, "gw1");
	UT_ASSERT_INT(a.nparams, 1);
	UT_ASSERT_INT(PARSE(&a, NULL, "remove-umdialplan", "--name=dp2"), 0);
	UT_ASSERT_STR(a.identity, "dp2");
	UT_ASSERT_INT(PARSE(&a, NULL, "get-umhuntgroup"), 0);
	UT_ASSERT(a.identity == NULL);
	/* a value may start with a single dash */
	UT_ASSERT_INT(PARSE(&a, NULL, "set-umipgateway", "--identity", "gw1",
			    "--address", "-bad-.com"),
		      0);
	UT_ASSERT_STR(param(&a, "address"), "-bad-.com");
	return 0;
}

int test_umctl_args_globals(void)
{
	struct ctl_args a;

	UT_ASSERT_INT(PARSE(&a, NULL, "--json", "get-umservice"), 0);
	UT_ASSERT(a.json);
	UT_ASSERT_INT(PARSE(&a, NULL, "get-umipgateway", "--json",
			    "--identity", "x"),
		      0);
	UT_ASSERT(a.json);
	UT_ASSERT_STR(a.identity, "x");
	UT_ASSERT_INT(PARSE(&a, NULL, "set-umservice", "--max-calls-allowed",
			    "50", "--json"),
		      0);
	UT_ASSERT(a.json);
	UT_ASSERT_STR(param(&a, "max-calls-allowed"), "50");
	UT_ASSERT_INT(PARSE(&a, NULL, "--state-dir", "/tmp/s", "status"), 0);
	UT_ASSERT_STR(a.state_dir, "/tmp/s");
	UT_ASSERT_INT(a.verb->action, CTL_ACT_STATUS);
	UT_ASSERT_INT(PARSE(&a, NULL, "get-umactivecalls",
			    "--state-dir=/tmp/t", "--json"),
		      0);
	UT_ASSERT_STR(a.state_dir, "/tmp/t");
	UT_ASSERT(a.json);
	UT_ASSERT_INT(a.verb->action, CTL_ACT_STATUS);
	UT_ASSERT_INT(PARSE(&a, NULL, "--help"), 0);
	UT_ASSERT(a.help && a.verb == NULL);
	UT_ASSERT_INT(PARSE(&a, NULL, "new-umdialplan", "--help"), 0);
	UT_ASSERT(a.help);
	UT_ASSERT_STR(a.verb->name, "new-umdialplan");
	/* help wins over missing required parts */
	UT_ASSERT_INT(PARSE(&a, NULL, "set-umipgateway", "-h"), 0);
	UT_ASSERT(a.help);
	return 0;
}

static int parse_fails(char *const *argv, int argc, const char *want)
{
	struct ctl_args a;
	char *cause = NULL;
	int rc = ctl_args_parse(&a, argc, argv, &cause);

	if (rc != EINVAL || !cause || !strstr(cause, want)) {
		fprintf(stderr, "  rc %d cause \"%s\", wanted \"%s\"\n", rc,
			cause ? cause : "(null)", want);
		free(cause);
		return 1;
	}
	free(cause);
	return 0;
}

#define FAILS(want, ...) \
	UT_ASSERT(parse_fails(ARGV(__VA_ARGS__), ARGC(__VA_ARGS__), want) == 0)

int test_umctl_args_errors(void)
{
	FAILS("--port: missing value", "set-umipgateway", "--identity", "g",
	      "--port");
	FAILS("--address: missing value", "new-umipgateway", "--name", "g",
	      "--address", "--port", "5060");
	FAILS("--identity: missing value", "get-umipgateway", "--identity");
	FAILS("--state-dir: missing value", "get-umservice", "--state-dir");
	FAILS("--colour: not a parameter of new-umipgateway",
	      "new-umipgateway", "--name", "g", "--colour", "red");
	/* a field that exists but this verb does not take */
	FAILS("--name: not a parameter of set-umservice", "set-umservice",
	      "--name", "x");
	FAILS("--umipgateway: not a parameter of get-umhuntgroup",
	      "get-umhuntgroup", "--umipgateway", "x");
	FAILS("--pin-set: not a parameter of set-ummailbox", "set-ummailbox",
	      "--extension", "1001", "--pin-set", "true");
	FAILS("unknown verb \"frob\"", "frob");
	FAILS("unknown verb \"new-umipgateways\"", "new-umipgateways");
	FAILS("no verb given", "--json");
	FAILS("unknown option before the verb", "--name", "x",
	      "new-umipgateway");
	FAILS("unexpected argument \"extra\"", "get-umservice", "extra");
	FAILS("unexpected argument \"gw1\"", "new-umipgateway", "--name",
	      "gw0", "gw1");
	FAILS("--port: given twice", "new-umipgateway", "--port", "1",
	      "--port=2");
	FAILS("--ip-address-family: given twice", "set-umservice",
	      "--ip-address-family", "Any", "--IPAddressFamily", "Any");
	FAILS("--identity is required", "set-umipgateway", "--port", "5070");
	FAILS("--identity is required", "remove-umhuntgroup");
	FAILS("--extension is required", "set-ummailbox", "--unlock");
	FAILS("--extension is required", "disable-ummailbox");
	FAILS("nothing to change", "set-umcallroutersettings");
	return 0;
}

int test_umctl_args_switches(void)
{
	struct ctl_args a;

	UT_ASSERT_INT(PARSE(&a, NULL, "set-ummailbox", "--extension", "1001",
			    "--unlock"),
		      0);
	UT_ASSERT_STR(param(&a, "unlock"), "true");
	UT_ASSERT_INT(PARSE(&a, NULL, "set-ummailbox", "--unlock",
			    "--extension", "1001"),
		      0);
	UT_ASSERT_STR(param(&a, "unlock"), "true");
	UT_ASSERT_STR(a.extension, "1001");
	UT_ASSERT_INT(PARSE(&a, NULL, "set-umipgateway", "--identity", "g",
			    "--outcalls-allowed", "false"),
		      0);
	UT_ASSERT_STR(param(&a, "outcalls-allowed"), "false");
	UT_ASSERT_INT(PARSE(&a, NULL, "set-umipgateway", "--identity", "g",
			    "--outcalls-allowed", "--json"),
		      0);
	UT_ASSERT_STR(param(&a, "outcalls-allowed"), "true");
	UT_ASSERT(a.json);
	UT_ASSERT_INT(PARSE(&a, NULL, "set-umipgateway", "--identity", "g",
			    "--outcalls-allowed=$false"),
		      0);
	UT_ASSERT_STR(param(&a, "outcalls-allowed"), "$false");
	return 0;
}

int test_umctl_args_mailbox(void)
{
	struct ctl_args a;

	UT_ASSERT_INT(PARSE(&a, NULL, "enable-ummailbox", "--extension",
			    "1002", "--display-name", "Pat Doe",
			    "--umdialplan", "default", "--pin", "482916"),
		      0);
	UT_ASSERT_INT(a.verb->action, CTL_ACT_ENABLE);
	UT_ASSERT_INT(a.nparams, 4);
	UT_ASSERT(a.extension == NULL); /* fields on enable, not identity */
	UT_ASSERT_STR(param(&a, "display-name"), "Pat Doe");
	UT_ASSERT_INT(PARSE(&a, NULL, "set-ummailbox", "--extension", "1002",
			    "--umdialplan", "default", "--pin", "482916"),
		      0);
	UT_ASSERT_STR(a.extension, "1002");
	UT_ASSERT_STR(a.dialplan, "default");
	UT_ASSERT_INT(a.nparams, 1);
	UT_ASSERT_STR(param(&a, "pin"), "482916");
	UT_ASSERT_INT(PARSE(&a, NULL, "get-ummailbox", "--umdialplan", "dp"),
		      0);
	UT_ASSERT(a.extension == NULL);
	UT_ASSERT_STR(a.dialplan, "dp");
	UT_ASSERT(ctl_verb_writes(ctl_verb_find("disable-ummailbox")));
	UT_ASSERT(!ctl_verb_writes(ctl_verb_find("get-ummailbox")));
	UT_ASSERT(!ctl_verb_writes(ctl_verb_find("status")));
	return 0;
}

/* Runs one umctl directory command; out/err are captured. */
static int run(struct dir *d, char *out, size_t cap, bool *written,
	       int argc, char *const *argv)
{
	struct ctl_args a;
	char *cause = NULL, *obuf = NULL, *ebuf = NULL;
	size_t olen = 0, elen = 0;
	FILE *fo, *fe;
	int code;

	if (ctl_args_parse(&a, argc, argv, &cause)) {
		snprintf(out, cap, "parse: %s", cause ? cause : "?");
		free(cause);
		return CTL_EXIT_USAGE;
	}
	fo = open_memstream(&obuf, &olen);
	fe = open_memstream(&ebuf, &elen);
	code = ctl_cmd_run(d, &a, fo, fe, written);
	fclose(fo);
	fclose(fe);
	snprintf(out, cap, "%s%s", obuf, ebuf);
	free(obuf);
	free(ebuf);
	return code;
}

#define RUN(buf, w, ...) run(d, buf, sizeof buf, w, ARGC(__VA_ARGS__), \
			     ARGV(__VA_ARGS__))

int test_umctl_cmd_output(void)
{
	struct dir *d = NULL;
	char path[512], out[8192];
	bool w;

	pin_set_iterations(1000);
	snprintf(path, sizeof path, "%s/directory.db", ut_tmpdir());
	UT_ASSERT_INT(dir_open(&d, path, DIR_OPEN_CREATE, NULL, NULL), 0);

	UT_ASSERT_INT(RUN(out, &w, "get-umservice", "--json"), 0);
	UT_ASSERT(!w);
	UT_ASSERT_STR(out, "{\"IPAddressFamily\":\"Any\","
			   "\"IPAddressFamilyConfigurable\":true,"
			   "\"MaxCallsAllowed\":100,\"SipTcpListeningPort\":5062,"
			   "\"SipTlsListeningPort\":5063,\"UMStartupMode\":"
			   "\"TCP\",\"ExternalHostFqdn\":\"\","
			   "\"BadAddressInterval\":300,\"OutboundStagger\":250,"
			   "\"GatewayPingInterval\":60}\n");
	UT_ASSERT_INT(RUN(out, &w, "get-umservice"), 0);
	UT_ASSERT(strstr(out, "IPAddressFamily             Any\n"));
	UT_ASSERT(strstr(out, "IPAddressFamilyConfigurable True\n"));

	UT_ASSERT_INT(RUN(out, &w, "get-umipgateway", "--json"), 0);
	UT_ASSERT(out[0] == '[');
	UT_ASSERT(strstr(out, "{\"Name\":\"loopback6\",\"Address\":\"::1\","
			      "\"Port\":5060,\"IPAddressFamily\":\"Any\","
			      "\"Status\":\"Enabled\",\"OutcallsAllowed\":true,"
			      "\"MessageWaitingIndicatorAllowed\":true,"
			      "\"Health\":\"Unknown\",\"LastPing\":"
			      "\"umcallrouter is not running\"}]\n"));
	UT_ASSERT_INT(RUN(out, &w, "get-umdialplan", "--identity", "default",
			  "--json"),
		      0);
	UT_ASSERT(strstr(out, "\"AccessTelephoneNumbers\":[\"5000\"]"));

	/* bad value: exit 2, nothing written, the cause names the param */
	UT_ASSERT_INT(RUN(out, &w, "set-umipgateway", "--identity",
			  "loopback", "--ip-address-family", "IPv7"),
		      CTL_EXIT_USAGE);
	UT_ASSERT(!w);
	UT_ASSERT(strstr(out, "umctl: --ip-address-family: \"IPv7\" is not "
			      "one of IPv4Only, IPv6Only, Any"));
	/* refused by a rule of the directory: exit 1 */
	UT_ASSERT_INT(RUN(out, &w, "remove-umipgateway", "--identity",
			  "loopback"),
		      CTL_EXIT_FAIL);
	UT_ASSERT(!w);

	/* new prints the object; strings are escaped in JSON */
	UT_ASSERT_INT(RUN(out, &w, "new-umipgateway", "--name", "gw1",
			  "--address", "GW.Example.Test", "--json"),
		      0);
	UT_ASSERT(w);
	UT_ASSERT(strstr(out, "\"Address\":\"gw.example.test\""));
	UT_ASSERT_INT(RUN(out, &w, "enable-ummailbox", "--extension", "1002",
			  "--display-name", "Pat \"Q\" \\ Doe", "--umdialplan",
			  "default", "--json"),
		      0);
	UT_ASSERT(strstr(out, "\"DisplayName\":\"Pat \\\"Q\\\" \\\\ Doe\""));
	UT_ASSERT(strstr(out, "\"PINSet\":true,\"Locked\":false"));
	UT_ASSERT(strstr(out, "umctl: mailbox 1002 PIN: "));
	UT_ASSERT(strstr(out, "pbkdf2") == NULL);
	UT_ASSERT_INT(RUN(out, &w, "get-ummailbox", "--extension", "1002"),
		      0);
	UT_ASSERT(strstr(out, "PINSet             True\n"));
	UT_ASSERT(strstr(out, "Locked             False\n"));
	UT_ASSERT_INT(RUN(out, &w, "disable-ummailbox", "--extension",
			  "1002"),
		      0);
	UT_ASSERT(w);
	UT_ASSERT_INT(RUN(out, &w, "get-ummailbox", "--json"), 0);
	UT_ASSERT(strstr(out, "\"Extension\":\"1002\"") &&
		  strstr(out, "\"Enabled\":false"));
	UT_ASSERT_INT(RUN(out, &w, "get-umipgateway", "--identity", "nope"),
		      CTL_EXIT_FAIL);
	dir_close(d);
	return 0;
}

int test_umctl_status_output(void)
{
	Openum__StatusReply r = OPENUM__STATUS_REPLY__INIT;
	Openum__InstanceStatus in = OPENUM__INSTANCE_STATUS__INIT;
	Openum__SipEndpoint e1 = OPENUM__SIP_ENDPOINT__INIT;
	Openum__SipEndpoint e2 = OPENUM__SIP_ENDPOINT__INIT;
	Openum__SipEndpoint e3 = OPENUM__SIP_ENDPOINT__INIT;
	Openum__SipEndpoint *rep[2] = {&e1, &e2}, *iep[1] = {&e3};
	Openum__InstanceStatus *ins[1] = {&in};
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	e1.family = OPENUM__ADDRESS_FAMILY__AF_IPV4;
	e1.transport = OPENUM__TRANSPORT__TRANSPORT_UDP;
	e1.host = (char *)"127.0.0.1";
	e1.port = 5060;
	e2.family = OPENUM__ADDRESS_FAMILY__AF_IPV6;
	e2.transport = OPENUM__TRANSPORT__TRANSPORT_TCP;
	e2.host = (char *)"::1";
	e2.port = 5060;
	e3.family = OPENUM__ADDRESS_FAMILY__AF_IPV6;
	e3.transport = OPENUM__TRANSPORT__TRANSPORT_TLS;
	e3.host = (char *)"::1";
	e3.port = 5063;
	r.router_pid = 42;
	r.n_router_endpoints = 2;
	r.router_endpoints = rep;
	in.instance_id = (char *)"um-\"1\"";
	in.pid = 43;
	in.n_endpoints = 1;
	in.endpoints = iep;
	in.max_calls_allowed = 100;
	in.active_calls = 2;
	in.accepting = 1;
	in.calls_routed = 7;
	in.ack_timeouts = 3;
	in.redirects_resent = 5;
	r.n_instances = 1;
	r.instances = ins;

	f = open_memstream(&buf, &len);
	ctl_out_status(f, &r, true);
	fclose(f);
	UT_ASSERT_STR(buf,
		      "{\"router\":{\"pid\":42,\"endpoints\":["
		      "{\"family\":\"IPv4\",\"transport\":\"udp\",\"host\":"
		      "\"127.0.0.1\",\"port\":5060},"
		      "{\"family\":\"IPv6\",\"transport\":\"tcp\",\"host\":"
		      "\"::1\",\"port\":5060}]},"
		      "\"instances\":[{\"instance_id\":\"um-\\\"1\\\"\","
		      "\"pid\":43,\"endpoints\":[{\"family\":\"IPv6\","
		      "\"transport\":\"tls\",\"host\":\"::1\",\"port\":5063}],"
		      "\"max_calls_allowed\":100,\"active_calls\":2,"
		      "\"accepting\":true,\"calls_routed\":7,\"redirects_resent\":5,"
		      "\"ack_timeouts\":3,"
		      "\"passed_over_ms\":0,\"fqdn\":\"\"}]}\n");
	free(buf);
	buf = NULL;
	f = open_memstream(&buf, &len);
	ctl_out_status(f, &r, false);
	fclose(f);
	UT_ASSERT(strstr(buf, "udp 127.0.0.1:5060, tcp [::1]:5060\n"));
	UT_ASSERT(strstr(buf, "tls [::1]:5063\n"));
	UT_ASSERT(strstr(buf, "Pid              42\n"));
	UT_ASSERT(strstr(buf, "ActiveCalls      2\n"));
	UT_ASSERT(strstr(buf, "AckTimeouts      3\n"));
	UT_ASSERT(strstr(buf, "RedirectsResent  5\n"));
	UT_ASSERT(!strstr(buf, "PassedOver"));
	free(buf);
	/* passed over after an ack timed out: says for how long */
	in.passed_over_ms = 8300;
	buf = NULL;
	f = open_memstream(&buf, &len);
	ctl_out_status(f, &r, false);
	fclose(f);
	UT_ASSERT(strstr(buf, "PassedOver       8.3 s more (an ack timed out; other "
			      "instances first)\n"));
	free(buf);
	return 0;
}

/* get-umipgateway's Health and LastPing from a status reply: the most
 * recent ping of any instance wins; down shows when it last answered. */
int test_umctl_gateway_health(void)
{
	static const struct dir_field name_f = {.label = "Name",
						.kind = DIR_KIND_STRING};
	struct ctl_objs o = {0};
	struct dir_value v[3] = {{&name_f, "Name", "gw1"},
				 {&name_f, "Name", "gw2"},
				 {&name_f, "Name", "gw3"}};
	Openum__GatewayHealth a = OPENUM__GATEWAY_HEALTH__INIT;
	Openum__GatewayHealth b = OPENUM__GATEWAY_HEALTH__INIT;
	Openum__GatewayHealth c = OPENUM__GATEWAY_HEALTH__INIT;
	Openum__GatewayHealth *ga[] = {&a}, *gb[] = {&b, &c};
	Openum__InstanceStatus i1 = OPENUM__INSTANCE_STATUS__INIT;
	Openum__InstanceStatus i2 = OPENUM__INSTANCE_STATUS__INIT;
	Openum__InstanceStatus *is[] = {&i1, &i2};
	Openum__StatusReply st = OPENUM__STATUS_REPLY__INIT;
	const unsigned long long now = 1000000;

	for (int i = 0; i < 3; i++)
		UT_ASSERT_INT(ctl_out_collect_h(&v[i], 1, &o), 0);
	a.gateway = "GW1";	/* names match case-insensitively */
	a.checked = true;
	a.up = true;
	a.last_reason = "200 OK";
	a.address = "[::1]:5070";
	a.checked_unix_ms = now - 5000;
	b.gateway = "gw1";	/* older: loses */
	b.checked = true;
	b.last_reason = "no answer";
	b.checked_unix_ms = now - 50000;
	c.gateway = "gw2";
	c.checked = true;
	c.up = false;
	c.last_reason = "no answer from 127.0.0.1:5070 within 8 s";
	c.address = "127.0.0.1:5070";
	c.answered_unix_ms = now - 120000;
	c.checked_unix_ms = now - 2000;
	i1.instance_id = "a";
	i1.gateways = ga;
	i1.n_gateways = 1;
	i2.instance_id = "b";
	i2.gateways = gb;
	i2.n_gateways = 2;
	st.instances = is;
	st.n_instances = 2;
	ctl_out_add_health(&o, &st, now);
	UT_ASSERT_INT(o.obj[0].n, 3);
	UT_ASSERT_STR(o.obj[0].value[1], "Up");
	UT_ASSERT_STR(o.obj[0].value[2], "200 OK from [::1]:5070, 5 s ago (a)");
	UT_ASSERT_STR(o.obj[1].value[1], "Down");
	UT_ASSERT_STR(o.obj[1].value[2],
		      "no answer from 127.0.0.1:5070 within 8 s, 2 s ago (b); "
		      "last answered 120 s ago from 127.0.0.1:5070");
	UT_ASSERT_STR(o.obj[2].value[1], "Unknown");
	UT_ASSERT(strstr(o.obj[2].value[2], "not pinged") != NULL);
	ctl_out_objs_free(&o);
	return 0;
}
