"""The IPAddressFamily matrix across network namespaces (issue 6).

Cells: router IPAddressFamily (R) x UM service IPAddressFamily (S) x UM IP
gateway IPAddressFamily (G), each IPv4Only / IPv6Only / Any, x the gateway's
host (an IPv4-only, an IPv6-only or a dual-stack host) x the gateway's Address
(an IPv4 literal, an IPv6 literal or an FQDN): 3^5 = 243 cells.

    make test-matrix                                        # all 243 cells
    /usr/bin/python3 -m pytest tests/e2e/test_matrix.py     # the subset (make test)
    OPENUM_MATRIX=full /usr/bin/python3 -m pytest tests/e2e/test_matrix.py
    /usr/bin/python3 tests/e2e/test_matrix.py               # print every cell's expectation

Topology (netns.py): one bridged segment, 198.51.100.0/24 and 2001:db8:1::/64,
no router and no default route anywhere, nothing linked to the machine's own
namespace.
  - one server host per (R, S) pair, dual-stack (198.51.100.1x, 2001:db8:1::1x),
    running its own umcallrouter (5060) and umservice (5062) with those
    settings in the directory, so the daemons' IPAddressFamily alone decides
    what they listen on;
  - one gateway host per (G, host kind, Address kind): IPv4-only hosts have
    an IPv4 address only (IPv6 disabled), IPv6-only hosts an IPv6 address only,
    dual hosts both; each is the UM IP gateway `gw-<G>-<host>-<addr>` in every
    server's directory (hunt group to the default dial plan, MWI off), and
    the phone (baresip) of that cell runs there;
  - dnsmasq on its own host (198.51.100.53, 2001:db8:1::53), the directory's
    DnsServers, serving `<gateway host>.example.test` for each FQDN gateway
    with an A record if the host has IPv4 and an AAAA record if it has IPv6.
A cell's gateway therefore never changes and the cells run in parallel (up to
OPENUM_MATRIX_WORKERS, default 16), each call told apart in the daemons' logs
by its Call-ID. umctl runs in the server's namespace too.

What the phone dials: `sip:1001@<router address>:5060;transport=tcp` (direct
to voicemail; TCP so that a missing listener is a connection refused at once,
not a 32 s UDP timeout), the router address being the server's address of the
family the phone calls in, which is:
  - the host's only family on an IPv4-only or IPv6-only host, whatever the
    gateway's Address says;
  - on a dual host with a literal Address, the literal's family: the PBX is
    known to UM by that address, so it sends from it;
  - on a dual host with an FQDN, the family its UM IP gateway object says the
    PBX uses: IPv4Only -> IPv4, IPv6Only -> IPv6, Any -> IPv6 first with IPv4
    as fallback (DESIGN.md, "Any -> IPv6 first, IPv4 as fallback"): IPv6 when
    the router listens on IPv6, else IPv4 (a connect-time fallback, as a
    dual-stack PBX given a name with A and AAAA records would do).
A literal Address of a family the host lacks (an IPv6 literal for a gateway on
the IPv4-only host, an IPv4 literal on the IPv6-only host) names the address
that host would have in that family, which no host holds: a gateway whose
Address is wrong for the PBX. The phone still calls from its real address.

The expectation of each cell comes from the documented rules only
(`expected()` below; DESIGN.md "IPAddressFamily", issue 3 points 1 and 5,
issue 6), in this order:
  1. umctl refuses an IPv6 literal Address with IPAddressFamily IPv4Only and an
     IPv4 literal with IPv6Only (new-umipgateway and set-umipgateway both; exit
     status non-zero, a message naming the conflict, directory unchanged).
  2. The router listens only in its IPAddressFamily: a call in another family
     finds no listener (TCP connection refused at once).
  3. Trust (issue 3 point 1): the source must be the gateway's Address literal
     or an address its FQDN resolves to; else 403 and a log line naming the
     source. The gateway's IPAddressFamily "decides which of its addresses are
     used" (DESIGN.md): an IPv4Only gateway's name is looked up for A records
     only, an IPv6Only one's for AAAA only, so a gateway given by name calling
     from its address of a family it is not set to is refused with 403 (issue
     3: "IPv4Only gateway calling over IPv6 -> refused"). (The FQDN's records
     are exactly the host's addresses; a literal is its host only in that
     family.)
  4. The 302 Contact (issue 3 point 5): the family of the connection the
     INVITE came on, restricted by the gateway's IPAddressFamily and by what
     the UM service listens on; where no such Contact exists, 503 and a log
     line with the reason. So a trusted call in family F is refused with 503
     when F is not in G or not in S.
  5. Otherwise the call connects: the phone follows the 302 to umservice in
     family F, hears the greeting, and its message is stored. The SDP answer's
     c= is `IN IP6` on an IPv6 path and `IN IP4` on an IPv4 one (it follows
     the offer, DESIGN.md), the server's address of that family.
A refused call must end within REFUSE_WITHIN seconds of dialling.

A connecting cell: baresip sends silence, then after ~3 s of greeting a `#`
(skip to the tone; README), then tone bursts (SEQ) and hangs up. Checked: the
302 Contact and the 200's SDP (baresip's SIP trace, -s) are of family F and
the server's address; what the phone heard has speech before the `#` and the
1000 Hz tone after it; exactly one new message with baresip's Call-ID, whose
exported audio holds SEQ in order.

The 243 cells: 62 connect, 127 are refused (60 find no listener, 36 get 403,
31 get 503), 54 are configurations umctl refuses. The full matrix takes about
a minute on 2 vCPUs (80 s with 12 workers, 49 s with 24); `make test` runs
the 12 cells of SUBSET_IDS (~20 s).

Per (R, S) pair test_listeners checks the sockets (`ss` in the server's
namespace: TCP and UDP, exactly the configured families) and `umctl status`.
"""

import concurrent.futures
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import audio                                   # noqa: E402
import netns                                   # noqa: E402
from baresip import Baresip                    # noqa: E402
from conftest import hostport, wait_for        # noqa: E402

# --------------------------------------------------------------------------
# the dimensions

AFS = ("IPv4Only", "IPv6Only", "Any")
HOSTS = ("v4", "v6", "dual")                  # IPv4-only, IPv6-only, dual-stack
ADDRS = ("lit4", "lit6", "fqdn")
AF = {"IPv4Only": {"IPv4"}, "IPv6Only": {"IPv6"}, "Any": {"IPv4", "IPv6"}}
HOST_FAMILIES = {"v4": {"IPv4"}, "v6": {"IPv6"}, "dual": {"IPv4", "IPv6"}}
SHORT = {"IPv4Only": "v4", "IPv6Only": "v6", "Any": "any"}

MAILBOX = "1001"
DOMAIN = "example.test"
SEQ = [600, 900, 1200, 1500]
BEEP = 1000
LEAD = 6.0                  # s of silence the phone sends before its bursts
HASH_AT = 3.0               # s after the call is up: '#' ends the greeting
REFUSE_WITHIN = 5.0         # s from dial to the end of a refused call
CASE_TIMEOUT = 240
WORKERS = int(os.environ.get("OPENUM_MATRIX_WORKERS", "16"))
FULL = os.environ.get("OPENUM_MATRIX", "").lower() == "full"


@dataclass(frozen=True)
class Cell:
    router: str
    service: str
    gateway: str
    host: str
    addr: str

    @property
    def id(self):
        return (f"R{SHORT[self.router]}-S{SHORT[self.service]}-G{SHORT[self.gateway]}-"
                f"{self.host}-{self.addr}")

    @property
    def group(self):
        return (self.router, self.service)

    @property
    def combo(self):
        return (self.gateway, self.host, self.addr)


@dataclass(frozen=True)
class Expect:
    outcome: str              # connect | no-listener | 403 | 503 | umctl
    family: str = None        # the family the phone calls in
    why: str = ""
    reasons: tuple = ()       # for 503: "gateway" and/or "service"


# --------------------------------------------------------------------------
# the rules (from the documentation, see the module docstring)


def umctl_refuses(gateway, addr):
    """Rule 1: an Address literal of a family the gateway's
    IPAddressFamily excludes."""
    lit = {"lit4": "IPv4", "lit6": "IPv6"}.get(addr)
    return lit is not None and lit not in AF[gateway]


def phone_family(cell):
    """The family the phone calls the router in (module docstring)."""
    fams = HOST_FAMILIES[cell.host]
    if len(fams) == 1:
        return next(iter(fams))
    if cell.addr == "lit4":
        return "IPv4"
    if cell.addr == "lit6":
        return "IPv6"
    if cell.gateway == "IPv4Only":
        return "IPv4"
    if cell.gateway == "IPv6Only":
        return "IPv6"
    return "IPv6" if "IPv6" in AF[cell.router] else "IPv4"


def expected(cell):
    if umctl_refuses(cell.gateway, cell.addr):
        lit = "IPv4" if cell.addr == "lit4" else "IPv6"
        return Expect("umctl", why=f"an {lit} literal Address on an {cell.gateway} gateway")
    fam = phone_family(cell)
    if fam not in AF[cell.router]:
        return Expect("no-listener", fam, f"the router ({cell.router}) has no {fam} listener")
    if cell.addr == "fqdn":
        # DESIGN.md: the gateway's IPAddressFamily "decides which of its
        # addresses are used" -- an IPv4Only gateway's name is looked up
        # for A records only (IPv6Only: AAAA only), so its address of the
        # other family is not one of the gateway's (issue 3: "IPv4Only
        # gateway calling over IPv6 -> refused").
        if fam not in AF[cell.gateway]:
            return Expect("403", fam, f"an {cell.gateway} gateway's name stands for its "
                                      f"{'/'.join(sorted(AF[cell.gateway]))} addresses "
                                      f"only; the call comes from its {fam} address")
    elif {"lit4": "IPv4", "lit6": "IPv6"}[cell.addr] != fam:
        return Expect("403", fam, f"the call comes from the host's {fam} address, the "
                                  f"gateway's Address is an IPv{cell.addr[-1]} literal it lacks")
    reasons = []
    if fam not in AF[cell.gateway]:
        reasons.append("gateway")
    if fam not in AF[cell.service]:
        reasons.append("service")
    if reasons:
        return Expect("503", fam, f"no {fam} Contact allowed: " + " and ".join(
            {"gateway": f"gateway is {cell.gateway}",
             "service": f"UM service is {cell.service}"}[r] for r in reasons),
            tuple(reasons))
    return Expect("connect", fam, f"{fam} end to end")


ALL_CELLS = [Cell(*c) for c in itertools.product(AFS, AFS, AFS, HOSTS, ADDRS)]
COMBOS = [c for c in itertools.product(AFS, HOSTS, ADDRS) if not umctl_refuses(c[0], c[2])]

# `make test`: one or two cells of every kind of outcome and reason, both
# families end to end, the dual host both ways, FQDNs with A, AAAA and both.
SUBSET_IDS = [
    "Rany-Sany-Gany-dual-fqdn",      # connect, IPv6 (Any: IPv6 first), name with A+AAAA
    "Rany-Sany-Gany-dual-lit4",      # connect, IPv4 from a dual host: c=IN IP4
    "Rany-Sany-Gv4-dual-fqdn",       # connect, IPv4Only gateway by name, A record of a dual host
    "Rv6-Sv6-Gv6-v6-fqdn",           # connect, IPv6 only everywhere, AAAA: c=IN IP6
    "Rv4-Sv4-Gv4-v4-lit4",           # connect, IPv4 only everywhere
    "Rv4-Sany-Gany-dual-fqdn",       # connect, Any falls back to IPv4 (router IPv4Only)
    "Rv4-Sany-Gany-v6-lit6",         # no IPv6 listener on the router
    "Rany-Sany-Gany-v4-lit6",        # 403: IPv6 literal the IPv4-only host lacks
    "Rany-Sv6-Gv4-v4-lit4",          # 503: UM service has no IPv4
    "Rany-Sany-Gv4-v6-fqdn",         # 403: IPv4Only gateway by name, call over IPv6
    "Rany-Sany-Gv4-dual-lit6",       # umctl: IPv6 literal, IPv4Only
    "Rany-Sany-Gv6-v4-lit4",         # umctl: IPv4 literal, IPv6Only
]

# Cells where the implementation disagrees with the documented rules:
# (predicate, reason). strict: a cell that gets fixed fails as XPASS, so the
# mark comes off with the fix. None at present.
KNOWN = []


def _marks(cell):
    for pred, reason in KNOWN:
        if pred(cell):
            return [pytest.mark.xfail(reason=reason, strict=True)]
    return []


def selected_cells():
    if FULL:
        return ALL_CELLS
    by_id = {c.id: c for c in ALL_CELLS}
    return [by_id[i] for i in SUBSET_IDS]


# --------------------------------------------------------------------------
# addresses


SERVER_INDEX = {g: i for i, g in enumerate(itertools.product(AFS, AFS))}


def server_addrs(group):
    i = SERVER_INDEX[group]
    return f"198.51.100.{10 + i}", f"2001:db8:1::{10 + i}"


def combo_addrs(combo):
    """The IPv4 and IPv6 address a gateway host has (or, for a family it
    lacks, would have: its phantom literal)."""
    j = COMBOS.index(combo)
    return f"198.51.100.{100 + j}", f"2001:db8:1::{100 + j}"


def combo_name(combo):
    g, h, a = combo
    return f"{SHORT[g]}-{h}-{a}"


def combo_fqdn(combo):
    return f"pbx-{combo_name(combo)}.{DOMAIN}"


def gateway_address(combo):
    v4, v6 = combo_addrs(combo)
    return {"lit4": v4, "lit6": v6, "fqdn": combo_fqdn(combo)}[combo[2]]


DNS_V4, DNS_V6 = "198.51.100.53", "2001:db8:1::53"


# --------------------------------------------------------------------------
# the world: topology, dnsmasq, one daemon pair per (R, S)


PORTS = threading.Lock()       # conftest.free_port and baresip's are not thread-safe


class Group:
    def __init__(self, world, group):
        self.world = world
        self.group = group
        self.router_af, self.service_af = group
        self.name = f"srv-{SHORT[group[0]]}-{SHORT[group[1]]}"
        self.v4, self.v6 = server_addrs(group)
        self.host = world.topo.host(self.name, v4=[self.v4], v6=[self.v6])
        self.base = world.base / self.name
        self.base.mkdir()
        self.env = netns.ns_env(self.host, self.base)
        self.listeners = None
        self.status = None
        self.error = None

    def addr(self, family):
        return self.v4 if family == "IPv4" else self.v6

    @property
    def router(self):
        return [d for d in self.env.daemons if d.name == "umcallrouter"][-1]

    @property
    def service(self):
        return [d for d in self.env.daemons if d.name == "umservice"][-1]

    def configure(self, template):
        shutil.copy(template, self.env.db)
        self.env.umctl_ok("set-umcallroutersettings", "--ip-address-family", self.router_af)
        self.env.umctl_ok("set-umservice", "--ip-address-family", self.service_af)

    def start(self):
        env = self.env
        r = env.start_router(wait=False)
        env.wait_router(r, timeout=20)
        s = env.start_service(wait=False)
        env.wait_instance("e2e-1", families=AF[self.service_af], port=env.service_port,
                          daemon=s, timeout=20)
        self.status = env.wait_router_families(AF[self.router_af], port=env.router_port,
                                               timeout=10)

    def wait_resolved(self, fqdns, timeout=15):
        """Both daemons have looked up every FQDN gateway (their logs say
        'UM IP gateway NAME: FQDN -> ...', 'UM IP gateway NAME: FQDN has no A
        record ...' or 'cannot resolve UM IP gateway NAME (FQDN)')."""
        for d in (self.router, self.service):
            for f in fqdns:
                pat = rf"UM IP gateway \S+: {re.escape(f)} (-> |has no )|cannot resolve UM IP " \
                      rf"gateway \S+ \({re.escape(f)}\)"
                wait_for(lambda: re.search(pat, d.log()),
                         timeout, 0.1, f"{d.name} of {self.name} to look up {f}")
        self.listeners = {"router": netns.ss_sockets(self.host, self.env.router_port),
                          "service": netns.ss_sockets(self.host, self.env.service_port)}

    def log_lines(self, *needles):
        out = []
        for d in self.env.daemons:
            for line in d.log().splitlines():
                if any(n and n in line for n in needles):
                    out.append(f"{d.name}: {line}")
        return out


class World:
    def __init__(self, cells):
        self.cells = cells
        self.base = Path(tempfile.mkdtemp(prefix="openum-matrix-"))
        self.topo = None
        self.groups = {}
        self.hosts = {}
        self.dns = None
        self.failed = False
        self.problems = []
        self.pool = None
        self.futures = {}
        self.timings = {}

    def build(self):
        t0 = time.monotonic()
        self.topo = netns.Topology("mx")
        need_combos = sorted({c.combo for c in self.cells if c.combo in COMBOS},
                             key=COMBOS.index)
        dns_host = self.topo.host("dns", v4=[DNS_V4], v6=[DNS_V6])
        for combo in need_combos:
            v4, v6 = combo_addrs(combo)
            fams = HOST_FAMILIES[combo[1]]
            self.hosts[combo] = self.topo.host("gw-" + combo_name(combo),
                                               v4=[v4] if "IPv4" in fams else [],
                                               v6=[v6] if "IPv6" in fams else [])
        # Every gateway is in every directory (umctl refusals are tried on
        # them), hosts exist only for the cells selected.
        records = {}
        for combo in COMBOS:
            if combo[2] == "fqdn":
                v4, v6 = combo_addrs(combo)
                fams = HOST_FAMILIES[combo[1]]
                records[combo_fqdn(combo)] = ([v4] if "IPv4" in fams else []) + \
                                             ([v6] if "IPv6" in fams else [])
        self.dns = netns.Dnsmasq(dns_host, self.base / "dns", DOMAIN, ttl=60).start(records)
        for name, addrs in records.items():
            for qt, fam in (("A", "IPv4"), ("AAAA", "IPv6")):
                got = netns.dns_query(dns_host, DNS_V4, name, qt)
                want = [a for a in addrs if (":" in a) == (fam == "IPv6")]
                assert got == want, f"dnsmasq: {name} {qt} = {got}, want {want}"
        for g in sorted({c.group for c in self.cells}, key=SERVER_INDEX.get):
            self.groups[g] = Group(self, g)
        self.timings["topology"] = time.monotonic() - t0
        # One directory made once (in a namespace: umctl must never reach
        # the machine's resolver), copied to every server.
        tpl = netns.ns_env(dns_host, self.base / "template")
        u = tpl.umctl_ok
        u("set-umcallroutersettings", "--dns-servers", f"{DNS_V4},{DNS_V6}")
        for hg in ("loopback-default", "loopback6-default"):
            u("remove-umhuntgroup", "--identity", hg)
        for gw in ("loopback", "loopback6"):
            u("remove-umipgateway", "--identity", gw)
        for combo in COMBOS:
            name = "gw-" + combo_name(combo)
            u("new-umipgateway", "--name", name, "--address", gateway_address(combo),
              "--ip-address-family", combo[0], "--message-waiting-indicator-allowed", "false")
            u("new-umhuntgroup", "--name", f"hg-{combo_name(combo)}", "--umipgateway", name,
              "--umdialplan", "default")
        for grp in self.groups.values():
            grp.configure(tpl.db)
        for grp in self.groups.values():
            grp.start()
        fqdns = list(records)
        for grp in self.groups.values():
            grp.wait_resolved(fqdns)
        self.timings["daemons"] = time.monotonic() - t0 - self.timings["topology"]

    def submit_all(self):
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS)
        order = {"connect": 0, "503": 1, "403": 1, "no-listener": 2, "umctl": 3}
        for c in sorted(self.cells, key=lambda c: order[expected(c).outcome]):
            self.futures[c] = self.pool.submit(run_cell, self, c)

    def close(self):
        if self.pool:
            self.pool.shutdown(wait=True, cancel_futures=True)
        for grp in self.groups.values():
            try:
                self.problems += grp.env.stop_all()
            finally:
                grp.env.kill_all()
        if self.dns:
            self.dns.stop()
        if self.topo:
            self.problems += self.topo.close()
        if self.failed or self.problems:
            print(f"\n[kept {self.base} for inspection]")
        else:
            shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def world(request):
    cells = []
    for item in request.session.items:
        cs = getattr(item, "callspec", None)
        if item.module is request.module and cs is not None and "cell" in cs.params:
            cells.append(cs.params["cell"])
    if not cells:
        cells = selected_cells()
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    w = World(cells)
    t0 = time.monotonic()
    try:
        w.build()
        w.submit_all()
        yield w
    except BaseException:
        w.failed = True
        raise
    finally:
        w.close()
        kinds = {}
        for c in cells:
            kinds[expected(c).outcome] = kinds.get(expected(c).outcome, 0) + 1
        n = f"{len(cells)} cells ({', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))})"
        print(f"\n[matrix: {n}, setup {w.timings.get('topology', 0):.1f} s topology + "
              f"{w.timings.get('daemons', 0):.1f} s daemons, {time.monotonic() - t0:.0f} s "
              f"in all, {WORKERS} workers]")
        if w.problems:
            pytest.fail("matrix teardown: " + "\n".join(w.problems), pytrace=False)


# --------------------------------------------------------------------------
# a cell


class CellRun:
    def __init__(self, world, cell):
        self.world = world
        self.cell = cell
        self.exp = expected(cell)
        self.group = world.groups[cell.group]
        self.notes = []
        self.phone = None
        self.call_id = None
        self.dir = world.base / "cells" / cell.id
        self.dir.mkdir(parents=True)

    def note(self, s):
        self.notes.append(s)

    def evidence(self):
        out = [f"cell {self.cell.id}: expected {self.exp.outcome} ({self.exp.why})"]
        out += self.notes
        if self.phone is not None:
            out.append(f"baresip events: {self.phone.event_types()}")
            out.append("baresip log tail:\n" + self.phone.log_tail(25))
        needles = [self.call_id] if self.call_id else []
        if self.cell.combo in self.world.hosts:
            h = self.world.hosts[self.cell.combo]
            needles += h.v4 + h.v6 + ["gw-" + combo_name(self.cell.combo)]
        lines = self.group.log_lines(*needles)
        out.append(f"daemon log lines of this call/gateway ({self.group.name}):\n" +
                   "\n".join(lines[-30:]))
        return "\n".join(out)


def run_cell(world, cell):
    run = CellRun(world, cell)
    t0 = time.monotonic()
    try:
        if run.exp.outcome == "umctl":
            check_umctl_refusal(run)
        else:
            call(run)
        run.error = None
    except BaseException as e:
        run.error = e
    finally:
        if run.phone is not None:
            try:
                run.phone.stop()
            except Exception as e:
                run.note(f"stopping baresip: {e!r}")
        run.took = time.monotonic() - t0
    return run


GW_FIELDS = ("Name", "Address", "Port", "IPAddressFamily", "Status")


def gateways_config(env):
    return sorted(tuple(g.get(k) for k in GW_FIELDS) for g in env.get("get-umipgateway"))


def check_umctl_refusal(run):
    """new-umipgateway with the bad pair, set-umipgateway --address with the
    bad literal on a gateway of that family, set-umipgateway
    --ip-address-family on an Any gateway with that literal: all refused
    (non-zero exit, a message naming both), the gateways unchanged."""
    cell, env = run.cell, run.group.env
    fam = "IPv4" if cell.addr == "lit4" else "IPv6"
    lit = combo_addrs(("Any", cell.host, cell.addr))[0 if fam == "IPv4" else 1]
    own_lit = "lit6" if fam == "IPv4" else "lit4"       # the literal kind G allows
    before = gateways_config(env)
    attempts = [
        ("new-umipgateway", "--name", f"bad-{combo_name(cell.combo)}", "--address", lit,
         "--ip-address-family", cell.gateway),
        ("set-umipgateway", "--identity", "gw-" + combo_name((cell.gateway, cell.host, own_lit)),
         "--address", lit),
        ("set-umipgateway", "--identity", "gw-" + combo_name(("Any", cell.host, cell.addr)),
         "--ip-address-family", cell.gateway),
    ]
    for args in attempts:
        r = env.umctl(*args)
        assert r.rc != 0, f"umctl accepted {lit} with {cell.gateway}: {r}"
        assert fam in r.err and cell.gateway in r.err and lit in r.err, \
            f"refusal does not name the address, its family and {cell.gateway}: {r}"
        run.note(f"umctl {args[0]} exit {r.rc}: {r.err.strip()}")
    after = gateways_config(env)
    assert after == before, "the refused umctl commands changed the gateways"


def sip_trace(log):
    """[(transport, src, dst, message)] from baresip's -s SIP trace."""
    return re.findall(r"\x1b\[3\d;1m#\n(UDP|TCP|TLS) (\S+) -> (\S+)\n(.*?)\x1b\[;m", log,
                      re.S)


def heard_speech(samples, start, end, floor=-45.0):
    n = 800
    a, b = int(start * 8000), min(len(samples), int(end * 8000))
    return sum(0.1 for i in range(a, b - n + 1, n) if audio.dbfs(samples[i:i + n]) > floor)


def call(run):
    cell, exp, grp = run.cell, run.exp, run.group
    host = run.world.hosts[cell.combo]
    fam = exp.family
    src = host.addr(fam)
    dst = grp.addr(fam)
    wav = run.dir / "caller.wav"
    audio.write_wav(wav, audio.silence(LEAD) + audio.bursts(SEQ, repeat=2) + audio.silence(4))
    with PORTS:
        b = Baresip(run.dir / "baresip", host=src, wav=wav, netns=host, args=["-s"])
    run.phone = b
    b.start()
    uri = f"sip:{MAILBOX}@{hostport(dst, grp.env.router_port)};transport=tcp"
    run.note(f"phone {src} ({host.name}) dials {uri}")
    t_dial = time.monotonic()
    b.dial(uri)
    if exp.outcome != "connect":
        closed = b.wait_event("CALL_CLOSED", 15, fail_on=("CALL_ESTABLISHED",))
        took = closed["_t"] - t_dial
        run.call_id = closed.get("id")
        param = str(closed.get("param", ""))
        run.note(f"closed after {took:.2f} s: {param}")
        assert took <= REFUSE_WITHIN, f"refusal took {took:.1f} s (want <= {REFUSE_WITHIN} s)"
        check_refusal(run, param)
        return
    est = b.wait_event("CALL_ESTABLISHED", 10)
    run.call_id = est.get("id")
    t_est = est["_t"]
    time.sleep(max(0.0, t_est + HASH_AT - time.monotonic()))
    assert not b.find_event("CALL_CLOSED"), f"call closed early: {b.find_event('CALL_CLOSED')}"
    b.sndcode("#")
    end = t_est + LEAD + len(audio.bursts(SEQ, repeat=2)) / 8000 + 0.7
    time.sleep(max(0.0, end - time.monotonic()))
    assert not b.find_event("CALL_CLOSED"), f"call closed early: {b.find_event('CALL_CLOSED')}"
    b.hangup()
    b.wait_event("CALL_CLOSED", 5, fail_on=())
    check_signalling(run, fam, dst)
    # the stored message
    env = grp.env

    def mine():
        msgs = [m for m in env.get("get-voicemail", "--mailbox", MAILBOX)
                if m.get("CallId") == run.call_id]
        return msgs or None
    msgs = wait_for(mine, 15, 0.3, f"the message of Call-ID {run.call_id}")
    assert len(msgs) == 1, f"{len(msgs)} messages with Call-ID {run.call_id}: {msgs}"
    m = msgs[0]
    assert m["State"] == "new" and m["CallerNumber"] == "4255550123", m
    out = run.dir / "msg.wav"
    env.umctl_ok("export-voicemail", "--id", m["Id"], "--out", out)
    rate, pcm = audio.read_wav(out)
    runs = audio.segments(audio.track(pcm, SEQ + [BEEP], rate))
    assert audio.find_sequence(runs, SEQ) is not None, \
        f"the stored message lacks the phone's tones {SEQ}: found {audio.describe(runs)}"
    run.note(f"message {m['Id']}: {m['DurationMs']} ms, tones {audio.describe(runs)[:120]}")
    # what the phone heard
    dec = b.recording("dec")
    assert dec, "baresip recorded nothing"
    rate, heard = audio.read_wav(dec)
    heard = audio.resample_to(heard, rate)
    talk = heard_speech(heard, 0.2, HASH_AT)
    assert talk >= 1.5, (f"the phone heard only {talk:.1f} s of sound in the first "
                         f"{HASH_AT} s (no greeting); dBFS per 0.5 s: "
                         f"{[round(x) for x in audio.levels(heard[:int(HASH_AT * 8000)], 0.5)]}")
    beep = [r for r in audio.segments(audio.track(heard, [BEEP]), 7) if r[1] >= HASH_AT - 0.5]
    assert beep, "no 1000 Hz tone heard after '#'"
    run.note(f"heard {talk:.1f} s of greeting, tone at {beep[0][1]:.1f} s")


def check_signalling(run, fam, dst):
    """The 302 and the 200 (with SDP) the phone received, from its trace."""
    trace = sip_trace(run.phone.log())
    rx = [m for tr, s, d, m in trace if m.startswith("SIP/2.0 ")]
    r302 = [m for m in rx if m.startswith("SIP/2.0 302")]
    assert r302, "no 302 in baresip's SIP trace"
    contact = re.search(r"(?im)^(?:Contact|m):\s*<sip:[^@>]*@(\[[^\]]+\]|[^:;>]+)", r302[0])
    assert contact, f"302 without a Contact:\n{r302[0]}"
    chost = contact.group(1).strip("[]")
    assert chost == dst, f"302 Contact host {chost}, want the server's {fam} address {dst}"
    ok = [m for m in rx
          if m.startswith("SIP/2.0 200") and re.search(r"(?im)^CSeq:\s*\d+ INVITE", m)]
    assert ok, "no 200 to the INVITE in baresip's SIP trace"
    c = re.search(r"(?m)^c=IN (IP[46]) (\S+)", ok[0])
    assert c, f"200 without c= in its SDP:\n{ok[0]}"
    want = "IP6" if fam == "IPv6" else "IP4"
    assert (c.group(1), c.group(2)) == (want, dst), \
        f"SDP answer c=IN {c.group(1)} {c.group(2)}, want c=IN {want} {dst}"
    run.note(f"302 Contact {chost}; SDP answer c=IN {c.group(1)} {c.group(2)}")


def check_refusal(run, param):
    exp, grp = run.exp, run.group
    if exp.outcome == "no-listener":
        assert "refused" in param.lower(), f"want 'connection refused', got {param!r}"
        tcp = grp.listeners["router"]["tcp"][exp.family]
        assert not tcp, f"router has {exp.family} listeners {tcp}"
        lines = grp.log_lines(run.call_id)
        assert not lines, f"the router saw the call: {lines}"
        run.note(f"router {exp.family} TCP listeners: none")
        return
    assert param.startswith(exp.outcome), f"want a {exp.outcome} answer, got {param!r}"
    assert run.call_id, "no Call-ID"
    lines = [ln for ln in wait_for(lambda: grp.log_lines(run.call_id), 3, 0.1,
                                   f"a log line with Call-ID {run.call_id}")
             if ln.startswith("umcallrouter:")]
    if exp.outcome == "403":
        src = run.world.hosts[run.cell.combo].addr(exp.family)
        good = [ln for ln in lines if "403" in ln and src in ln and "not a UM IP gateway" in ln]
        assert good, f"no router log line '403 ... {src} ... not a UM IP gateway': {lines}"
    else:
        pats = []
        if "gateway" in exp.reasons:
            pats.append(("503", run.cell.gateway))
        if "service" in exp.reasons:
            pats.append(("503", exp.family, "instance"))
        good = [ln for ln in lines if any(all(p in ln for p in pat) for pat in pats)]
        assert good, f"no router log line with {' or '.join(map(str, pats))}: {lines}"
    run.note(f"router: {good[0]}")


# --------------------------------------------------------------------------
# the tests


def _cell_params():
    return [pytest.param(c, id=c.id, marks=_marks(c)) for c in selected_cells()]


@pytest.mark.parametrize("cell", _cell_params())
def test_cell(world, request, cell):
    """One cell of the matrix: what the documented rules say happens
    (connect with audio both ways, refusal with its reason, or umctl
    refusing the configuration) happens."""
    fut = world.futures[cell]
    try:
        run = fut.result(timeout=CASE_TIMEOUT)
    except concurrent.futures.TimeoutError:
        world.failed = True
        pytest.fail(f"cell {cell.id} did not finish within {CASE_TIMEOUT} s")
    print(f"{cell.id}: {run.took:.1f} s")
    for n in run.notes:
        print("  " + n)
    if run.error is not None:
        if not request.node.get_closest_marker("xfail"):
            world.failed = True               # keep the state for inspection
        print(run.evidence())
        raise run.error


def _groups():
    return sorted({c.group for c in selected_cells()}, key=SERVER_INDEX.get)


@pytest.mark.parametrize("group", _groups(), ids=lambda g: f"R{SHORT[g[0]]}-S{SHORT[g[1]]}")
def test_listeners(world, group):
    """The server's sockets (ss in its namespace) are exactly the configured
    families, TCP and UDP, on the server's address of each family (bound to
    it, as umservice does, or to that family's own wildcard, 0.0.0.0 or an
    IPV6_V6ONLY [::], as the router does), the router on 5060 and the UM
    service on 5062; umctl status agrees."""
    grp = world.groups[group]
    for who, af in (("router", grp.router_af), ("service", grp.service_af)):
        socks = grp.listeners[who]
        port = grp.env.router_port if who == "router" else grp.env.service_port
        for proto in ("tcp", "udp"):
            for fam in ("IPv4", "IPv6"):
                have = socks[proto][fam]
                if fam in AF[af]:
                    wildcard = hostport("::" if fam == "IPv6" else "0.0.0.0", port)
                    assert {hostport(grp.addr(fam), port), wildcard} & set(have), \
                        f"{who} ({af}): no {proto} {fam} socket on {grp.addr(fam)}: {socks}"
                else:
                    assert not have, f"{who} ({af}): {proto} {fam} sockets {have}"
            for a in socks[proto]["IPv6"]:
                assert "::ffff:" not in a and not a.startswith("*"), \
                    f"{who}: dual-stack or mapped socket {a}"
    st = grp.status
    assert {e["family"] for e in st["router"]["endpoints"]} == AF[grp.router_af], st
    inst = [i for i in st["instances"] if i["instance_id"] == "e2e-1"]
    assert inst and {e["family"] for e in inst[0]["endpoints"]} == AF[grp.service_af], st


def test_topology_hosts():
    """netns.py itself: a namespace left by a dead run is swept; an
    IPv4-only host has no IPv6 at all and an IPv6-only host no IPv4 on the
    segment; no namespace has a default route (nothing can leave); a
    blackholed address is answered at layer 2 but a TCP connect to it
    times out instead of being refused; the namespaces are gone after
    close()."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    gone = subprocess.Popen(["true"])          # a pid that is surely dead
    gone.wait(timeout=10)
    stale = f"{netns.NS_PREFIX}{gone.pid}-old-host"
    subprocess.run([netns.IP, "netns", "add", stale], check=True, timeout=10)
    with netns.Topology("mxt") as topo:
        assert stale in topo.swept and stale not in netns.list_namespaces()
        a = topo.host("a", v4=["203.0.113.1"], v6=["2001:db8:2::1"])
        h4 = topo.host("h4", v4=["203.0.113.4"])
        h6 = topo.host("h6", v6=["2001:db8:2::6"])
        dead = topo.host("dead", v4=["203.0.113.66"], v6=["2001:db8:2::66"], blackhole=True)
        assert "inet6" not in h4.run(["ip", "addr"]).stdout
        assert "inet " not in h6.run(["ip", "addr", "show", "eth0"]).stdout
        for h in (a, h4, h6, dead):
            for v in ("-4", "-6"):
                routes = h.run(["ip", v, "route", "show", "default"]).stdout
                assert not routes.strip(), f"{h.name}: default route {routes}"
        assert a.tcp_probe("203.0.113.4", 9) == "refused"
        assert a.tcp_probe("2001:db8:2::6", 9) == "refused"
        assert a.tcp_probe("2001:db8:2::4", 9, 0.5) != "refused"
        assert h4.tcp_probe("2001:db8:2::1", 9) == "unreachable"
        for addr in ("203.0.113.66", "2001:db8:2::66"):
            t = time.monotonic()
            assert a.tcp_probe(addr, 9, 0.8) == "timeout", addr
            assert time.monotonic() - t >= 0.7
        neigh = a.run(["ip", "neigh", "show", "dev", "eth0"]).stdout
        assert re.search(r"203\.0\.113\.66 .*lladdr", neigh), neigh
        assert re.search(r"2001:db8:2::66 .*lladdr", neigh), neigh
        names = [h.ns for h in (a, h4, h6, dead)]
        with pytest.raises(ValueError):
            topo.host("bad", v4=["192.0.2.7"])
    left = set(netns.list_namespaces()) & set(names)
    assert not left, f"namespaces left: {left}"


# --------------------------------------------------------------------------


def _summary():
    rows = {}
    for c in ALL_CELLS:
        rows.setdefault(expected(c).outcome, []).append(c)
    return rows


if __name__ == "__main__":
    rows = _summary()
    for c in ALL_CELLS:
        e = expected(c)
        print(f"{c.id:32} {e.outcome:12} {e.family or '':5} {e.why}")
    print({k: len(v) for k, v in rows.items()}, "of", len(ALL_CELLS))
