/* test_rtab.c — the routing snapshot's gateway addresses: which source
 * addresses a gateway is trusted from (its IPAddressFamily filters both a
 * literal and resolved answers, an enabled gateway wins a shared address)
 * and how a rebuilt snapshot keeps what DNS answered for the old one. */
#include "common/directory.h"
#include "common/netaddr.h"
#include "common/rtab.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>

int test_rtab_gateway_family(void);
int test_rtab_keep_addrs(void);

/* The address literal s (the tests only pass valid ones). */
static struct sockaddr_storage sa(const char *s)
{
	struct sockaddr_storage ss;

	netaddr_literal(s, &ss);
	return ss;
}

/* The name of the gateway trusted from address s, or "" for none. */
static const char *from(const struct rtab *t, const char *s)
{
	struct sockaddr_storage ss = sa(s);
	const struct dir_gateway *g =
		rtab_gateway_by_addr(t, (const struct sockaddr *)&ss, NULL);

	return g ? g->name : "";
}

/* The index of gateway name in t. */
static size_t gw_index(const struct rtab *t, const char *name)
{
	for (size_t i = 0; i < rtab_gateway_count(t); i++) {
		if (!strcmp(rtab_gateway(t, i)->name, name))
			return i;
	}
	return (size_t)-1;
}

static int gateway(struct dir *d, const char *name, const char *address,
		   const char *af, const char *status)
{
	struct dir_param p[] = {
		{"name", name}, {"address", address},
		{"ip-address-family", af}, {"status", status},
	};
	char *cause = NULL;
	int err = dir_obj_new(d, DIR_OBJ_GATEWAY, p, 4, NULL, &cause);

	if (err)
		fprintf(stderr, "  new-umipgateway %s: %s\n", name, cause ? cause : "?");
	free(cause);
	return err;
}

static struct dir *open_dir(void)
{
	char path[300], *pin = NULL, *cause = NULL;
	struct dir *d = NULL;

	snprintf(path, sizeof path, "%s/directory.db", ut_tmpdir());
	if (dir_open(&d, path, DIR_OPEN_CREATE, &pin, &cause)) {
		fprintf(stderr, "  dir_open: %s\n", cause ? cause : "?");
		d = NULL;
	}
	free(pin);
	free(cause);
	return d;
}

int test_rtab_gateway_family(void)
{
	struct dir *d = open_dir();
	struct rtab *t = NULL;
	struct sockaddr_storage answer[2] = {sa("198.51.100.7"), sa("2001:db8::7")};

	UT_ASSERT(d);
	/* literals (the directory refuses one its family excludes) */
	UT_ASSERT_INT(gateway(d, "v4lit", "198.51.100.1", "IPv4Only", "Enabled"), 0);
	UT_ASSERT_INT(gateway(d, "v6only-v4lit", "198.51.100.2", "IPv6Only", "Enabled"),
		      EINVAL);
	UT_ASSERT_INT(gateway(d, "v6lit", "2001:db8::1", "Any", "Enabled"), 0);
	/* FQDNs: the answers are filtered by the family */
	UT_ASSERT_INT(gateway(d, "v4name", "pbx4.example.test", "IPv4Only", "Enabled"), 0);
	UT_ASSERT_INT(gateway(d, "v6name", "pbx6.example.test", "IPv6Only", "Enabled"), 0);
	/* one address, two gateways: the enabled one answers for it, whatever
	 * the order */
	UT_ASSERT_INT(gateway(d, "old-off", "198.51.100.9", "Any", "Disabled"), 0);
	UT_ASSERT_INT(gateway(d, "new-on", "198.51.100.9", "Any", "Enabled"), 0);
	UT_ASSERT_INT(gateway(d, "late-off", "198.51.100.9", "Any", "Disabled"), 0);
	UT_ASSERT_INT(rtab_build(&t, d, NULL), 0);

	UT_ASSERT_STR(from(t, "198.51.100.1"), "v4lit");
	UT_ASSERT_STR(from(t, "2001:db8::1"), "v6lit");
	UT_ASSERT_STR(from(t, "::ffff:198.51.100.1"), "v4lit");	/* mapped */
	UT_ASSERT(rtab_gateway_is_fqdn(t, gw_index(t, "v4name")));
	UT_ASSERT(!rtab_gateway_is_fqdn(t, gw_index(t, "v4lit")));
	UT_ASSERT_STR(from(t, "198.51.100.7"), "");	/* not resolved yet */
	rtab_set_addrs(t, gw_index(t, "v4name"), answer, 2);
	rtab_set_addrs(t, gw_index(t, "v6name"), answer, 2);
	UT_ASSERT_STR(from(t, "198.51.100.7"), "v4name");
	UT_ASSERT_STR(from(t, "2001:db8::7"), "v6name");
	/* which names a refusal over each family should point at: never
	 * looked up in it; the literals are not names */
	{
		char names[64], tiny[8];

		UT_ASSERT_INT(rtab_fqdn_excluding(t, AF_INET6, names, sizeof names), 1);
		UT_ASSERT_STR(names, "v4name (pbx4.example.test)");
		UT_ASSERT_INT(rtab_fqdn_excluding(t, AF_INET, names, sizeof names), 1);
		UT_ASSERT_STR(names, "v6name (pbx6.example.test)");
		UT_ASSERT_INT(rtab_fqdn_excluding(t, AF_INET, tiny, sizeof tiny), 1);
		UT_ASSERT_STR(tiny, "v6name ");
	}
	/* a new answer replaces the old one */
	rtab_set_addrs(t, gw_index(t, "v4name"), answer + 1, 1);
	UT_ASSERT_STR(from(t, "198.51.100.7"), "");
	UT_ASSERT_STR(from(t, "198.51.100.9"), "new-on");
	UT_ASSERT_STR(from(t, "198.51.100.10"), "");
	rtab_free(t);
	dir_close(d);
	return 0;
}

/* A directory change rebuilds the snapshot; an FQDN gateway must stay
 * trusted at its last answer until DNS answers again (or through a DNS
 * outage), in the families it allows now, and only for the same name. */
int test_rtab_keep_addrs(void)
{
	struct dir *d = open_dir();
	struct rtab *old = NULL, *t = NULL;
	struct sockaddr_storage answer[2] = {sa("198.51.100.7"), sa("2001:db8::7")};
	struct dir_param v6only = {"ip-address-family", "IPv6Only"};
	struct dir_param moved = {"address", "pbx2.example.test"};

	UT_ASSERT(d);
	UT_ASSERT_INT(gateway(d, "pbx", "pbx.example.test", "Any", "Enabled"), 0);
	UT_ASSERT_INT(gateway(d, "other", "other.example.test", "Any", "Enabled"), 0);
	UT_ASSERT_INT(rtab_build(&old, d, NULL), 0);
	rtab_set_addrs(old, gw_index(old, "pbx"), answer, 2);
	rtab_set_addrs(old, gw_index(old, "other"), answer + 1, 0);
	UT_ASSERT_STR(from(old, "198.51.100.7"), "pbx");

	/* rebuilt as is: nothing is trusted until it is carried over */
	UT_ASSERT_INT(rtab_build(&t, d, NULL), 0);
	UT_ASSERT_STR(from(t, "198.51.100.7"), "");
	UT_ASSERT_INT(rtab_keep_addrs(t, old), 1);
	UT_ASSERT_STR(from(t, "198.51.100.7"), "pbx");
	UT_ASSERT_STR(from(t, "2001:db8::7"), "pbx");
	UT_ASSERT_INT(rtab_keep_addrs(t, NULL), 0);	/* the first table */
	rtab_free(t);

	/* IPAddressFamily narrowed: only the IPv6 answer is kept */
	UT_ASSERT_INT(dir_obj_set(d, DIR_OBJ_GATEWAY, "pbx", &v6only, 1, NULL), 0);
	UT_ASSERT_INT(rtab_build(&t, d, NULL), 0);
	UT_ASSERT_INT(rtab_keep_addrs(t, old), 1);
	UT_ASSERT_STR(from(t, "198.51.100.7"), "");
	UT_ASSERT_STR(from(t, "2001:db8::7"), "pbx");
	rtab_free(t);

	/* another FQDN: the old name's answer does not carry over */
	UT_ASSERT_INT(dir_obj_set(d, DIR_OBJ_GATEWAY, "pbx", &moved, 1, NULL), 0);
	UT_ASSERT_INT(rtab_build(&t, d, NULL), 0);
	UT_ASSERT_INT(rtab_keep_addrs(t, old), 0);
	UT_ASSERT_STR(from(t, "2001:db8::7"), "");
	rtab_free(t);

	rtab_free(old);
	dir_close(d);
	return 0;
}
