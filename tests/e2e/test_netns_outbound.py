"""The outbound connection policy on a real multi-host topology with IPv6
(issue 6, "Tests: real multi-host topologies", "Dead addresses"; the
policy is common/outconn.h).

Every process runs inside network namespaces that each test creates and
always removes (netns.py): umcallrouter, umservice and umctl on a
dual-stack server host, dnsmasq on a host of its own (the directory's
DnsServers), SIPp as the UM IP gateway (sipgw.GatewayUas: answers OPTIONS
and NOTIFY over TCP) on the gateway hosts. Addresses come from
198.51.100.0/24 and 2001:db8::/32 only; the segment has no router and no
default route, so nothing can leave it.

test_dead_addresses_ipv6: gateway `gwdead` (IPAddressFamily Any) is
gw.example.test, whose AAAA records are, in the order the UM service logs
them resolved, two dead addresses (a blackhole host: neighbour discovery
answered, every packet it would send dropped, so a TCP connect hangs) and
the live one where SIPp answers; its A record is the live host's IPv4
address. GatewayPingInterval 5 s, BadAddressInterval 8 s, MWI refresh
every 3 s. Checked:
  - OPTIONS and NOTIFY reach the live IPv6 address (SIPp's message log);
    get-umipgateway shows Up with the answer from it;
  - the first OPTIONS round tries dead, dead, live, each 250 ms (the
    stagger delay without history) after the previous one, and connects
    to the live one after ~2 delays (not after a TCP timeout); the two dead
    go on the bad-address list "no connection within N ms while [live]
    connected"; the IPv4 address is never tried (IPv6 first);
  - while the interval runs, later rounds (OPTIONS and NOTIFY) log
    "skipping" for both dead, and no round tries them;
  - after the interval they are tried again (and listed again);
  - over the whole log: every "skipping X" falls within an interval in
    which X was listed, every "trying X" outside one.

test_family_rule_ipv4only_ipv6only: gateways given by FQDNs that have both
an A and an AAAA record, with SIPp answering on both addresses of each
host. The IPv4Only gateway is looked up for A only, and its OPTIONS and
NOTIFYs go to the IPv4 address only; the IPv6Only one (the mirror image)
AAAA only and IPv6 only. dnsmasq's query log shows neither daemon asked
for the other family's records.

Both run in `make test`: about 11 s and 8 s on 2 vCPUs (19 s for the module).
"""

import datetime
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import netns                                   # noqa: E402
from conftest import hostport, wait_for        # noqa: E402
from sipgw import GatewayUas                   # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

DOMAIN = "example.test"
SRV4, SRV6 = "198.51.100.10", "2001:db8:1::10"
DNS4, DNS6 = "198.51.100.53", "2001:db8:1::53"
SIP_PORT = 5060                  # the gateways' port (each host has its own ports)
PING_S = 5
BAD_S = 8
MWI_REFRESH_S = 3
STAGGER_MS = 250                 # OUTCONN_STAGGER_DEFAULT_MS: no connect history yet
TOL_S = 0.25                     # log timestamps vs the loop's cached clock


# --------------------------------------------------------------------------
# the world of one test


class World:
    """A topology with the server host (router + UM service + umctl) and the
    DNS host; the test adds its gateway hosts. Everything is stopped and
    removed by close(), whatever happened."""

    def __init__(self, tag, base):
        self.base = Path(base)
        self.topo = netns.Topology(tag)
        self.uas = []
        self.dns = None
        self.env = None
        try:
            self.srv = self.topo.host("srv", v4=[SRV4], v6=[SRV6])
            self.dns_host = self.topo.host("dns", v4=[DNS4], v6=[DNS6])
            self.env = netns.ns_env(self.srv, self.base / "srv")
        except BaseException:
            self.topo.close()
            raise

    def start_dns(self, records):
        self.dns = netns.Dnsmasq(self.dns_host, self.base / "dns", DOMAIN, ttl=1,
                                 round_robin=False)
        self.dns.start(records)
        return self.dns

    def gateway_uas(self, name, host, addr):
        u = GatewayUas(self.base, name, addr, SIP_PORT, netns=host)
        self.uas.append(u)
        return u

    def configure(self, gateways, dns_server):
        """The directory: DnsServers first (umctl and the daemons must never
        ask the machine's resolver), the default loopback gateways gone,
        each of gateways (name, address, IPAddressFamily) in the default
        dial plan, fast pings and a short bad-address interval."""
        u = self.env.umctl_ok
        u("set-umcallroutersettings", "--dns-servers", dns_server)
        for hg in ("loopback-default", "loopback6-default"):
            u("remove-umhuntgroup", "--identity", hg)
        for gw in ("loopback", "loopback6"):
            u("remove-umipgateway", "--identity", gw)
        for name, addr, fam in gateways:
            u("new-umipgateway", "--name", name, "--address", addr, "--port", SIP_PORT,
              "--ip-address-family", fam)
            u("new-umhuntgroup", "--name", f"{name}-hg", "--umipgateway", name,
              "--umdialplan", "default")
        u("set-umservice", "--gateway-ping-interval", PING_S,
          "--bad-address-interval", BAD_S)

    def start_daemons(self):
        env = self.env
        r = env.start_router(wait=False)
        env.wait_router(r, timeout=20)
        s = env.start_service(wait=False, log_level="debug",
                              extra=("--mwi-refresh", MWI_REFRESH_S))
        env.wait_instance("e2e-1", port=env.service_port, daemon=s, timeout=20)

    def service_log(self):
        return [d for d in self.env.daemons if d.name == "umservice"][-1].log()

    def close(self):
        problems = []
        for u in self.uas:
            try:
                u.stop()
            except Exception as e:
                problems.append(f"stopping SIPp {u.name}: {e!r}")
        return problems + netns.close_world(self.env, self.dns, self.topo)


@pytest.fixture
def world_factory(request):
    made = []
    base = Path(tempfile.mkdtemp(prefix="openum-netns-out-"))

    def make(tag):
        w = World(tag, base / tag)
        made.append(w)
        request.node._openum_env = w.env        # daemon logs in a failure report
        return w
    yield make
    problems = []
    for w in made:
        problems += w.close()
    failed = problems or any(getattr(getattr(request.node, "rep_" + s, None), "failed", False)
                             for s in ("setup", "call"))
    if failed:
        print(f"\n[kept {base} for inspection]")
    else:
        shutil.rmtree(base, ignore_errors=True)
    if problems:
        pytest.fail("teardown: " + "\n".join(problems), pytrace=False)


# --------------------------------------------------------------------------
# the daemons' log


LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z\s+(\S+)\s+(\S+)\s+(\S+?): (.*)$")


class Entry:
    def __init__(self, t, level, module, msg, raw):
        self.t, self.level, self.module, self.msg, self.raw = t, level, module, msg, raw

    def __repr__(self):
        return self.raw


def entries(log):
    out = []
    for line in log.splitlines():
        m = LINE.match(line)
        if m:
            t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
            t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
            out.append(Entry(t, m.group(2), m.group(4), m.group(5), line))
    return out


def outconn(log, pattern, who=None):
    """The outconn entries whose message matches pattern (after "who: " if
    who is given)."""
    rx = re.compile((re.escape(who) + ": " if who else "") + pattern)
    return [e for e in entries(log) if e.module == "outconn" and rx.search(e.msg)]


def excerpt(ents, n=40):
    return "\n".join(e.raw for e in ents[-n:])


def check_bad_list_invariant(log, addrs, interval_s):
    """Over the whole log, for each address of addrs ("[2001:db8::1]:5060"):
    a round skips it only while it is on the bad-address list (within
    interval_s of its last listing), and tries it only when it is not (no
    round here ever has every address listed, which would try them
    anyway). Returns the violations."""
    until = {}
    bad = []
    for e in entries(log):
        if e.module != "outconn":
            continue
        m = re.match(r"(\S+) is on the bad-address list for (\d+) s: ", e.msg)
        if m and m.group(1) in addrs:
            assert int(m.group(2)) == interval_s, e.raw
            until[m.group(1)] = e.t + interval_s
            continue
        if "is on the bad-address list: trying them anyway" in e.msg:
            bad.append(f"every address listed (unexpected here): {e.raw}")
            continue
        m = re.search(r": (skipping|trying) (\S+) ", e.msg)
        if not m or m.group(2) not in addrs:
            continue
        a = m.group(2)
        listed = a in until and e.t < until[a] + TOL_S
        if m.group(1) == "skipping" and not listed:
            bad.append(f"skipped although not listed (listed until "
                       f"{until.get(a, 0) - e.t:+.3f} s from here): {e.raw}")
        if m.group(1) == "trying" and a in until and e.t < until[a] - TOL_S:
            bad.append(f"tried {until[a] - e.t:.3f} s before its listing ran out: {e.raw}")
    return bad


# --------------------------------------------------------------------------
# get-umipgateway


def gateway(env, name):
    for g in env.get("get-umipgateway"):
        if g["Name"] == name:
            return g
    raise AssertionError(f"no gateway {name}")


def wait_health(env, name, want, timeout=PING_S * 2 + 5):
    def check():
        g = gateway(env, name)
        return g if g["Health"] == want else None
    return wait_for(check, timeout, 0.2, f"gateway {name} to be {want}")


# --------------------------------------------------------------------------
# the tests


def test_dead_addresses_ipv6(world_factory):
    """Two dead AAAA addresses first, the live one third: staggered connect,
    bad-address list, skips within the interval, retries after it."""
    t_start = time.monotonic()
    w = world_factory("odead")
    dead_host = w.topo.host("dead", v6=["2001:db8:1::66", "2001:db8:1::67"], blackhole=True)
    live_host = w.topo.host("live", v4=["198.51.100.20"], v6=["2001:db8:1::20"])
    dead = dead_host.v6
    live6, live4 = live_host.v6[0], live_host.v4[0]
    fqdn = f"gw.{DOMAIN}"
    hp = {a: hostport(a, SIP_PORT) for a in (*dead, live6, live4)}
    who = "OPTIONS to gateway gwdead"
    nwho = "NOTIFY for mailbox 1001 via gateway gwdead"

    # Without round robin dnsmasq answers a name's addresses of one family
    # in the order given, every time.
    w.start_dns({fqdn: [dead[0], dead[1], live6, live4]})
    aaaa = netns.dns_query(w.dns_host, DNS6, fqdn, "AAAA")
    assert aaaa == [dead[0], dead[1], live6], f"dnsmasq's AAAA answer: {aaaa}"
    assert netns.dns_query(w.dns_host, DNS6, fqdn, "A") == [live4]
    # The dead addresses hang (no refusal, no error); the live host answers.
    w.topo.wait_reachable(w.srv, [live6, live4])
    for a in dead:
        assert w.srv.tcp_probe(a, SIP_PORT, 0.4) == "timeout", f"{a} is not dead"

    uas = w.gateway_uas("gwdead", live_host, live6)
    w.configure([("gwdead", fqdn, "Any")], DNS6)
    uas.wait_listening()
    w.start_daemons()

    # --- the first round -------------------------------------------------
    g = wait_health(w.env, "gwdead", "Up")
    assert f"200 OK from {hp[live6]}" in g["LastPing"], g
    assert uas.options(), "SIPp at the live address saw no OPTIONS"
    log = w.service_log()
    res = outconn(log, r".* resolved to (.*)$", who)
    assert res, "no 'resolved to' line:\n" + excerpt(entries(log))
    got = re.search(r"resolved to (.*)$", res[0].msg).group(1).split(", ")
    assert got[:3] == [dead[0], dead[1], live6] and set(got) == {*dead, live6, live4}, \
        f"the UM service resolved {fqdn} to {got}; want {dead[0]}, {dead[1]}, {live6} " \
        f"first (the two dead ones first), and {live4}"
    order = outconn(log, r"order (.*) \(next attempt after (\d+) ms\)$", who)
    assert order and order[0].msg.endswith(
        f"order {hp[dead[0]]}, {hp[dead[1]]}, {hp[live6]}, {hp[live4]} "
        f"(next attempt after {STAGGER_MS} ms)"), \
        f"first round's order (IPv6 first, then IPv4): {order[:1]}"

    # The round itself: from its resolution to its outcome.
    ents = entries(log)
    i0 = [e.raw for e in ents].index(res[0].raw)
    conn = [e for e in ents[i0:] if e.module == "outconn" and
            e.msg.startswith(f"{who}: connected to ")]
    assert conn, "the first OPTIONS round did not connect:\n" + excerpt(ents[i0:])
    i1 = [e.raw for e in ents].index(conn[0].raw)
    round1 = [e for e in ents[i0:i1 + 1] if e.module == "outconn"]
    tries = [re.search(r"trying (\S+) ", e.msg).group(1) for e in round1
             if e.msg.startswith(f"{who}: trying ")]
    assert tries == [hp[dead[0]], hp[dead[1]], hp[live6]], \
        f"first round tried {tries}:\n" + excerpt(round1)
    staggers = [e for e in round1 if e.msg == f"{who}: no connection after {STAGGER_MS} ms, "
                                              f"starting the next address"]
    assert len(staggers) == 2, excerpt(round1)
    m = re.match(rf"{re.escape(who)}: connected to {re.escape(hp[live6])} after (\d+) ms",
                 conn[0].msg)
    assert m, conn[0]
    ms = int(m.group(1))
    # Two stagger delays, then a connect on one segment (well under 1 ms);
    # a TCP timeout would be a second (SYN retransmission) or far more.
    assert 2 * STAGGER_MS - 20 <= ms < 2 * STAGGER_MS + 700, \
        f"connected after {ms} ms, want ~{2 * STAGGER_MS} ms (two stagger delays)"
    for a in dead:
        lst = [e for e in round1 if re.fullmatch(
            rf"{re.escape(hp[a])} is on the bad-address list for {BAD_S} s: no connection "
            rf"within (\d+) ms while {re.escape(hp[live6])} connected", e.msg)]
        assert lst, f"{hp[a]} not put on the bad-address list by the first round:\n" + \
            excerpt(round1)
    t_listed = max(e.t for e in round1 if "is on the bad-address list" in e.msg)

    # --- within the interval: skipped by OPTIONS and NOTIFY rounds ------
    wait_for(uas.notifies, MWI_REFRESH_S * 2 + 5, 0.2, "a NOTIFY at the live address")
    n = uas.notifies()[0]
    assert n.request_line.startswith("NOTIFY sip:1001@"), n.request_line
    for w_, what, within in ((nwho, "a NOTIFY round", MWI_REFRESH_S * 2 + 3),
                             (who, "an OPTIONS round", PING_S + 3)):
        for a in dead:
            wait_for(lambda: outconn(w.service_log(), rf"skipping {re.escape(hp[a])} "
                                     rf"\(on the bad-address list\)", w_),
                     within, 0.2, f"{what} skipping {hp[a]}")
    log = w.service_log()
    for w_ in (who, nwho):
        for a in dead:
            skips = outconn(log, rf"skipping {re.escape(hp[a])} ", w_)
            assert skips[0].t - t_listed < BAD_S, skips[0]
    assert not outconn(log, rf"trying {re.escape(hp[live4])}"), \
        "the IPv4 address was tried although the live IPv6 one connected first"

    # --- after the interval: tried again ---------------------------------
    def retried():
        got = {}
        for a in dead:
            later = [e for e in outconn(w.service_log(), rf"trying {re.escape(hp[a])} ")
                     if e.t > t_listed + 1]
            if not later:
                return None
            got[a] = later[0]
        return got
    again = wait_for(retried, (t_listed + BAD_S - time.time()) + PING_S + 4, 0.2,
                     "the dead addresses to be tried again after the interval")
    for a, e in again.items():
        assert e.t >= t_listed + BAD_S - TOL_S, \
            f"{hp[a]} tried {t_listed + BAD_S - e.t:.2f} s before the interval ran out: {e}"
    # ... and found dead again: listed once more while the live one connected.
    t_retry = min(e.t for e in again.values())
    for a in dead:
        wait_for(lambda: [e for e in outconn(
            w.service_log(), rf"^{re.escape(hp[a])} is on the bad-address list for {BAD_S} s: "
                             rf"no connection within \d+ ms while {re.escape(hp[live6])} "
                             rf"connected") if e.t >= t_retry], 5, 0.2,
                 f"{hp[a]} listed again after its retry")

    log = w.service_log()
    violations = check_bad_list_invariant(log, {hp[a] for a in dead}, BAD_S)
    assert not violations, "\n".join(violations) + "\n" + excerpt(entries(log), 80)
    assert not outconn(log, rf"(trying|connected to) {re.escape(hp[live4])}"), \
        "the IPv4 address was used"
    assert not outconn(log, r"none of \d+ address"), "a round failed"
    g = gateway(w.env, "gwdead")
    assert g["Health"] == "Up" and hp[live6] in g["LastPing"], g
    # Every request SIPp got came to the live IPv6 address from the
    # server's (it listens there only; the Via names the sender).
    reqs = uas.options() + uas.notifies()
    assert len(uas.options()) >= 2 and len(uas.notifies()) >= 2, \
        f"{len(uas.options())} OPTIONS, {len(uas.notifies())} NOTIFYs"
    for r in reqs:
        via = r.header("via") or ""
        assert f"[{SRV6}]" in via, f"{r.request_line}: Via {via}"
    print(f"\n[dead addresses: first connect after {ms} ms; listed at +0, skipped, "
          f"retried at +{t_retry - t_listed:.1f} s; {len(uas.options())} OPTIONS, "
          f"{len(uas.notifies())} NOTIFYs at {live6}; {time.monotonic() - t_start:.1f} s]")


def test_family_rule_ipv4only_ipv6only(world_factory):
    """Gateways by FQDN with A and AAAA records: an IPv4Only one is reached
    over IPv4 only, an IPv6Only one over IPv6 only, although SIPp answers
    on both addresses of each host."""
    t_start = time.monotonic()
    w = world_factory("ofam")
    h4 = w.topo.host("pbx4", v4=["198.51.100.30"], v6=["2001:db8:1::30"])
    h6 = w.topo.host("pbx6", v4=["198.51.100.31"], v6=["2001:db8:1::31"])
    cases = {   # gateway -> (host, FQDN, its family's address, the other one)
        "gw4only": (h4, f"pbx4.{DOMAIN}", h4.v4[0], h4.v6[0]),
        "gw6only": (h6, f"pbx6.{DOMAIN}", h6.v6[0], h6.v4[0]),
    }
    w.start_dns({c[1]: [c[2], c[3]] for c in cases.values()})
    for _, fqdn, a, b in cases.values():
        # (asked from the DNS host: the query log below is the daemons')
        got = {q: netns.dns_query(w.dns_host, DNS4, fqdn, q) for q in ("A", "AAAA")}
        assert sorted(got["A"] + got["AAAA"]) == sorted([a, b]), f"{fqdn}: {got}"
    uas = {}
    for name, (h, _, a, b) in cases.items():
        uas[name] = (w.gateway_uas(f"{name}-ok", h, a), w.gateway_uas(f"{name}-other", h, b))
    w.configure([("gw4only", cases["gw4only"][1], "IPv4Only"),
                 ("gw6only", cases["gw6only"][1], "IPv6Only")], f"{DNS4},{DNS6}")
    for pair in uas.values():
        for u in pair:
            u.wait_listening()
    w.start_daemons()

    for name, (h, fqdn, a, b) in cases.items():
        ok, other = uas[name]
        g = wait_health(w.env, name, "Up")
        assert f"200 OK from {hostport(a, SIP_PORT)}" in g["LastPing"], g
        wait_for(ok.notifies, MWI_REFRESH_S * 2 + 5, 0.2, f"a NOTIFY at {a}")
    # Another ping and NOTIFY refresh go by: still nothing at the other
    # family's address.
    time.sleep(MWI_REFRESH_S + 0.5)
    log = w.service_log()
    for name, (h, fqdn, a, b) in cases.items():
        ok, other = uas[name]
        assert ok.options() and ok.notifies(), f"{name}: SIPp at {a} got too little"
        assert not other.options() and not other.notifies(), \
            f"{name}: SIPp at {b} got {len(other.options())} OPTIONS and " \
            f"{len(other.notifies())} NOTIFYs"
        for w_ in (f"OPTIONS to gateway {name}", f"NOTIFY for mailbox 1001 via gateway {name}"):
            res = outconn(log, r".* resolved to (.*)$", w_)
            assert res, f"no '{w_}: ... resolved to' line:\n" + excerpt(entries(log))
            for e in res:
                assert e.msg == f"{w_}: {fqdn} resolved to {a}", \
                    f"want only {a} (the gateway's family): {e}"
            conns = outconn(log, r"connected to ", w_)
            assert conns and all(f"connected to {hostport(a, SIP_PORT)} " in e.msg
                                 for e in conns), conns
        assert not outconn(log, re.escape(b)), \
            f"{name}: the UM service used {b}:\n" + "\n".join(
                e.raw for e in outconn(log, re.escape(b)))
    # Neither daemon asked for the other family's records of either name.
    qs = [q for q in w.dns.queries() if q.endswith((f" from {SRV4}", f" from {SRV6}"))]
    for name, (h, fqdn, a, b) in cases.items():
        other_q = "AAAA" if ":" in b else "A"
        wrong = [q for q in qs if f"query[{other_q}] {fqdn} " in q]
        assert not wrong, f"{name} ({fqdn}) looked up for {other_q}: {wrong[:4]}"
        right = [q for q in qs if f"query[{'AAAA' if ':' in a else 'A'}] {fqdn} " in q]
        assert right, f"the daemons never looked {fqdn} up: {qs[-10:]}"
    print(f"\n[family rule: {time.monotonic() - t_start:.1f} s]")
