"""Play on Phone to a baresip phone on each host type, across network
namespaces (issue 6, "Tests: real multi-host topologies": "Play on Phone to
a baresip phone on each host type: the phone receives the message audio").

Topology (netns.py, built by the module and always removed; every process
runs inside it): one bridged segment, 198.51.100.0/24 and 2001:db8:1::/64,
no router and no default route anywhere.
  - srv  (dual-stack, 198.51.100.10 / 2001:db8:1::10): umcallrouter (5060),
    umservice (5062), umctl; the router and the UM service are
    IPAddressFamily Any;
  - dns  (dual-stack): dnsmasq, the directory's DnsServers, serving
    pbx-dual.example.test (A and AAAA);
  - pbx4 (IPv4-only: no IPv6 at all), pbx6 (IPv6-only), pbxd (dual-stack):
    each runs a baresip phone (auto-answer, SIP trace on) and is a UM IP
    gateway linked to the default dial plan by a hunt group:
        gw-v4    IPv4 literal of pbx4           IPAddressFamily IPv4Only
        gw-v6    IPv6 literal of pbx6           IPAddressFamily IPv6Only
        gw-dual  pbx-dual.example.test (A+AAAA) IPAddressFamily Any
    MWI off for all three (the phones see only our calls and pings).

Choosing the phone: there is one dial plan (default) and one mailbox
(1001), and the UM service calls through the OutcallsAllowed gateways of the
mailbox's dial plan in directory order. So every gateway starts with
OutcallsAllowed false and each test turns it on for its own gateway only
(and off for the two others) before `umctl play-on-phone`: the gateway
chosen is the one under test, nothing else changes between the tests.

The message: one deposit for the module. A baresip on pbx4 dials
sip:1001@198.51.100.10:5060;transport=tcp (direct to voicemail; gw-v4
trusts it), presses # as soon as it hears the greeting (skip to the tone),
then sends tone bursts (SEQ, twice) and hangs up. The stored message must
hold SEQ twice.

Each test (one per host type): `umctl play-on-phone --mailbox 1001
--message ID --to NUMBER` exits 0 with the success line naming the gateway
and the address it reached (pbx4's IPv4 address; pbx6's IPv6 address; for
the FQDN of pbxd its IPv6 address: Any -> IPv6 first); the phone answered,
heard SEQ twice in order (its sndfile recording), and the call ended with
our BYE (received in its SIP trace; baresip did not hang up itself) after
the whole message; the INVITE it got came over TCP from the server's address
of that family, with an SDP offer c=IN IP4 / c=IN IP6 of that address;
umservice's result line says "done" and "the call ended with our BYE (200)",
and its outconn debug lines show the addresses in order.

On pbxd the phone listens on the IPv6 address only, and a decoy TCP socket
listens (and never answers) on the IPv4 address at the same port: had the
policy tried IPv4 first, the INVITE would have gone to the decoy and the
call would fail (no response within the ring time, 8 s here), so the
success itself proves the IPv6-first choice; the outconn lines show it too
(order: IPv6 first; IPv4 never tried).

About 30 s on 2 vCPUs (topology, daemons and deposit ~9 s; three plays of
the ~6.4 s message, ~7 s each), so it runs in `make test`. Run alone with:
    /usr/bin/python3 -m pytest -q tests/e2e/test_netns_play_on_phone.py
"""

import os
import re
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import audio                                   # noqa: E402
import netns                                   # noqa: E402
from baresip import Baresip                    # noqa: E402
from conftest import hostport, wait_for        # noqa: E402
from phone import Phone, assert_heard          # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

MAILBOX = "1001"
DOMAIN = "example.test"
SEQ = [700, 1100, 1500, 1900]          # the message: these bursts, twice (4 s)
SRV4, SRV6 = "198.51.100.10", "2001:db8:1::10"
DNS4, DNS6 = "198.51.100.53", "2001:db8:1::53"
RING_S = 8                             # umservice --pop-ring-timeout
LEAD = 2.5                             # s of silence the depositor sends before SEQ
HASH_BY = LEAD - 0.9                   # '#' must be sent by then (beep 0.4 s, then recording)
DEPOSIT_WITHIN = 10                    # s for the greeting to start

# host kind -> (host name, IPv4, IPv6, gateway, IPAddressFamily, number)
HOSTS = {
    "v4": ("pbx4", "198.51.100.41", None, "gw-v4", "IPv4Only", "5550141"),
    "v6": ("pbx6", None, "2001:db8:1::61", "gw-v6", "IPv6Only", "+15550161"),
    "dual": ("pbxd", "198.51.100.81", "2001:db8:1::81", "gw-dual", "Any", "5550181"),
}
FQDN = f"pbx-dual.{DOMAIN}"


def gateway_address(kind):
    _, v4, v6, _, _, _ = HOSTS[kind]
    return {"v4": v4, "v6": v6, "dual": FQDN}[kind]


def expected_family(kind):
    """The family the call must use: the literal's; for the FQDN with A
    and AAAA records on an Any gateway, IPv6 (IPv6 first)."""
    return "IPv4" if kind == "v4" else "IPv6"


# --------------------------------------------------------------------------
# the world


class World:
    def __init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="openum-netns-pop-"))
        self.topo = netns.Topology("npop")
        self.env = None
        self.dns = None
        self.phones = {}
        self.hosts = {}
        self.depositor = None
        self.decoy = None
        self.msg = None
        self.failed = False
        self.t0 = time.monotonic()

    def build(self):
        topo = self.topo
        self.srv = topo.host("srv", v4=[SRV4], v6=[SRV6])
        dns_host = topo.host("dns", v4=[DNS4], v6=[DNS6])
        for kind, (name, v4, v6, _, _, _) in HOSTS.items():
            self.hosts[kind] = topo.host(name, v4=[v4] if v4 else [], v6=[v6] if v6 else [])
        self.dns = netns.Dnsmasq(dns_host, self.base / "dns", DOMAIN, ttl=60).start(
            {FQDN: [HOSTS["dual"][1], HOSTS["dual"][2]]})
        for qt, want in (("A", [HOSTS["dual"][1]]), ("AAAA", [HOSTS["dual"][2]])):
            got = netns.dns_query(dns_host, DNS6, FQDN, qt)
            assert got == want, f"dnsmasq: {FQDN} {qt} = {got}, want {want}"
        for h in self.hosts.values():
            topo.wait_reachable(self.srv, h.v4 + h.v6)
        # The phones: baresip on the host's address of the call's family
        # (pbxd: IPv6), auto-answer, SIP trace in its log.
        for kind, (name, v4, v6, gw, af, number) in HOSTS.items():
            addr = v6 if expected_family(kind) == "IPv6" else v4
            self.phones[kind] = Phone(self.base / f"phone-{kind}", addr, number,
                                      wav_seconds=40, netns=self.hosts[kind], args=["-s"])
        for p in self.phones.values():
            p.start()
        # The decoy on pbxd's IPv4 address, the phone's port: accepts TCP
        # connections (the kernel does) and never answers.
        d = self.phones["dual"]
        self.decoy = self.hosts["dual"].socket(socket.AF_INET, socket.SOCK_STREAM)
        self.decoy.bind((HOSTS["dual"][1], d.sip_port))
        self.decoy.listen(16)
        assert self.srv.tcp_probe(HOSTS["dual"][1], d.sip_port, 1.0) == "connected"

        self.env = netns.ns_env(self.srv, self.base / "srv")
        u = self.env.umctl_ok
        u("set-umcallroutersettings", "--dns-servers", f"{DNS6},{DNS4}",
          "--ip-address-family", "Any")
        u("set-umservice", "--ip-address-family", "Any")
        for hg in ("loopback-default", "loopback6-default"):
            u("remove-umhuntgroup", "--identity", hg)
        for gw in ("loopback", "loopback6"):
            u("remove-umipgateway", "--identity", gw)
        for kind, (name, v4, v6, gw, af, number) in HOSTS.items():
            u("new-umipgateway", "--name", gw, "--address", gateway_address(kind),
              "--port", self.phones[kind].sip_port, "--ip-address-family", af,
              "--outcalls-allowed", "false", "--message-waiting-indicator-allowed", "false")
            u("new-umhuntgroup", "--name", f"hg-{kind}", "--umipgateway", gw,
              "--umdialplan", "default")
        r = self.env.start_router(wait=False)
        self.env.wait_router(r, timeout=20)
        s = self.env.start_service(wait=False, log_level="debug",
                                   extra=("--pop-ring-timeout", str(RING_S)))
        self.env.wait_instance("e2e-1", port=self.env.service_port, daemon=s, timeout=20)
        self.deposit()

    def deposit(self):
        """The module's message, left by a baresip on pbx4 (see the module
        docstring)."""
        h = self.hosts["v4"]
        wav = self.base / "depositor.wav"
        audio.write_wav(wav, audio.silence(LEAD) + audio.bursts(SEQ, repeat=2) +
                        audio.silence(3))
        b = self.depositor = Baresip(self.base / "depositor", host=h.v4[0], wav=wav,
                                     netns=h, args=["-s"])
        b.start()
        b.dial(f"sip:{MAILBOX}@{hostport(SRV4, self.env.router_port)};transport=tcp")
        est = b.wait_event("CALL_ESTABLISHED", 10)

        def greeting():
            p = b.recording("dec")
            if not p:
                return False
            try:
                rate, pcm = audio.read_wav(p)
            except ValueError:
                return False
            pcm = audio.resample_to(pcm, rate)
            return any(x > -45 for x in audio.levels(pcm, 0.1))
        wait_for(greeting, DEPOSIT_WITHIN, 0.1, "the depositor to hear the greeting")
        late = time.monotonic() - est["_t"]
        assert late <= HASH_BY, \
            f"the greeting began {late:.1f} s after the answer: too late to press # " \
            f"before the tone bursts (at {LEAD} s)"
        b.sndcode("#")
        end = est["_t"] + LEAD + len(audio.bursts(SEQ, repeat=2)) / 8000 + 0.7
        time.sleep(max(0.0, end - time.monotonic()))
        assert not b.find_event("CALL_CLOSED"), \
            f"the deposit call closed early: {b.find_event('CALL_CLOSED')}"
        b.hangup()
        b.wait_event("CALL_CLOSED", 5, fail_on=())
        b.stop()
        msgs = wait_for(lambda: [m for m in self.env.get("get-voicemail", "--mailbox", MAILBOX)
                                 if m["State"] == "new"], 15, 0.2, "the deposited message")
        assert len(msgs) == 1, msgs
        self.msg = msgs[0]
        out = self.base / "message.wav"
        self.env.umctl_ok("export-voicemail", "--id", self.msg["Id"], "--out", out)
        rate, pcm = audio.read_wav(out)
        assert_heard(audio.resample_to(pcm, rate), SEQ + SEQ, "the stored message")
        # from the tone (~0.5 s after '#') to the hang-up, SEQ (4 s) inside
        assert 4000 <= self.msg["DurationMs"] <= 9000, self.msg
        print(f"\n[deposit: '#' {late:.1f} s after the answer, message {self.msg['Id']} "
              f"of {self.msg['DurationMs']} ms, {time.monotonic() - self.t0:.1f} s from the "
              f"start]")

    def service_log(self):
        return [d for d in self.env.daemons if d.name == "umservice"][-1].log()

    def close(self):
        problems = []
        for p in list(self.phones.values()) + ([self.depositor] if self.depositor else []):
            try:
                p.stop()
            except Exception as e:          # everything must stop
                problems.append(f"stopping baresip: {e!r}")
        if self.decoy:
            self.decoy.close()
        return problems + netns.close_world(self.env, self.dns, self.topo)


@pytest.fixture(scope="module")
def world():
    w = World()
    ok = False
    try:
        w.build()
        ok = True
        yield w
    finally:
        if not ok and w.env is not None:
            print(w.env.report())
        problems = w.close()
        if ok and not w.failed and not problems:
            shutil.rmtree(w.base, ignore_errors=True)
        else:
            print(f"\n[kept {w.base}]")
        print(f"\n[netns Play on Phone: {time.monotonic() - w.t0:.1f} s in all]")
        if problems:
            pytest.fail("teardown: " + "\n".join(problems), pytrace=False)


@pytest.fixture
def w(world, request):
    request.node._openum_env = world.env       # daemon logs in a failure report
    yield world
    if getattr(getattr(request.node, "rep_call", None), "failed", False):
        world.failed = True


# --------------------------------------------------------------------------
# evidence


def sip_trace(log):
    """[(transport, src, dst, message)] from baresip's -s SIP trace."""
    return re.findall(r"\x1b\[3\d;1m#\n(UDP|TCP|TLS) (\S+) -> (\S+)\n(.*?)\x1b\[;m", log,
                      re.S)


def outconn(log, who):
    """umservice's outconn debug lines for one connection round's owner."""
    return [ln for ln in log.splitlines() if " outconn: " in ln and f"{who}: " in ln]


# --------------------------------------------------------------------------
# the tests


@pytest.mark.parametrize("kind", list(HOSTS))
def test_play_on_phone_to_host(w, kind):
    """The phone on this host answers, hears the message's bursts in order,
    and our BYE ends the call; umctl names the gateway and the address."""
    env = w.env
    name, v4, v6, gw, af, number = HOSTS[kind]
    fam = expected_family(kind)
    phone = w.phones[kind]
    addr = v6 if fam == "IPv6" else v4
    srv = SRV6 if fam == "IPv6" else SRV4
    where = hostport(addr, phone.sip_port)
    for other in HOSTS.values():
        if other[3] != gw:
            env.umctl_ok("set-umipgateway", "--identity", other[3], "--outcalls-allowed", "false")
    env.umctl_ok("set-umipgateway", "--identity", gw, "--outcalls-allowed", "true")

    t0 = time.monotonic()
    r = env.umctl("play-on-phone", "--mailbox", MAILBOX, "--message", w.msg["Id"],
                  "--to", number, timeout=RING_S + 40)
    took = time.monotonic() - t0
    secs = w.msg["DurationMs"] / 1000
    assert r.rc == 0, f"{r}\nphone events {phone.events()}\n{phone.log_tail()}"
    m = re.fullmatch(rf"message {w.msg['Id']} of mailbox {MAILBOX} played to "
                     rf"{re.escape(number)} through gateway {gw} at "
                     rf"{re.escape(where)}: (\d+\.\d) s \(UM service e2e-1\)\n", r.out)
    assert m, f"umctl's line: {r.out!r} (want gateway {gw} at {where})"
    assert abs(float(m.group(1)) - secs) <= 0.2, (m.group(1), secs)
    assert r.err == "", r.err
    assert took <= secs + 8, f"umctl took {took:.1f} s for a {secs:.1f} s message"

    # the phone: answered, the whole message, then our BYE
    est = phone.wait_answered(2)
    closed = phone.wait_closed(5)
    assert "end of file" not in str(closed.get("param")), closed
    assert closed["_t"] - est["_t"] >= secs - 0.3, \
        f"the call lasted {closed['_t'] - est['_t']:.1f} s of a {secs:.1f} s message"
    assert_heard(phone.heard(), SEQ + SEQ, f"the phone on {name} ({where})")

    # what the phone received: the INVITE over TCP from the server's
    # address of the family, its SDP offer in that family, our BYE
    trace = sip_trace(phone.b.log())
    rx = [(tr, src, msg) for tr, src, dst, msg in trace if not msg.startswith("SIP/2.0 ")]
    invites = [x for x in rx if x[2].startswith("INVITE sip:")]
    assert len(invites) == 1, f"{len(invites)} INVITEs in the phone's trace: " \
                              f"{[x[2].splitlines()[0] for x in rx]}"
    tr, src, inv = invites[0]
    assert tr == "TCP" and src.rsplit(":", 1)[0].strip("[]") == srv, \
        f"the INVITE came over {tr} from {src}; want TCP from {srv}"
    assert inv.startswith(f"INVITE sip:{number}@"), inv.splitlines()[0]
    c = re.search(r"(?m)^c=IN (IP[46]) (\S+?)\r?$", inv)
    want = "IP6" if fam == "IPv6" else "IP4"
    assert c and (c.group(1), c.group(2)) == (want, srv), \
        f"the SDP offer's c= is {c.group(0) if c else None!r}; want c=IN {want} {srv}:\n{inv}"
    byes = [x for x in rx if x[2].startswith("BYE sip:")]
    assert len(byes) == 1 and byes[0][1].rsplit(":", 1)[0].strip("[]") == srv, \
        f"want one BYE from {srv}: {[(x[1], x[2].splitlines()[0]) for x in byes]}"

    # umservice: the result line, and how the address was chosen
    log = w.service_log()
    line = [x for x in log.splitlines() if "Play on Phone request" in x and
            "(asked through the router)" in x and f" to {number} via gateway {gw} " in x]
    assert line and f"at {where}: done: " in line[-1] and \
        "the call ended with our BYE (200)" in line[-1], f"umservice's log line: {line}"
    oc = outconn(log, f"Play on Phone to {number} via gateway {gw}")
    order = [x for x in oc if ": order " in x]
    assert order, "no outconn 'order' line:\n" + "\n".join(oc)
    if kind == "dual":
        res = [x for x in oc if f"{FQDN} resolved to " in x]
        assert res and set(res[-1].split(" resolved to ")[1].split(", ")) == {v4, v6}, \
            f"{FQDN} should resolve to {v4} and {v6}:\n" + "\n".join(oc)
        assert f"order {hostport(v6, phone.sip_port)}, {hostport(v4, phone.sip_port)} " \
               in order[-1], f"want IPv6 first: {order[-1]}"
        assert not [x for x in oc if f"trying {hostport(v4, phone.sip_port)} " in x], \
            "the IPv4 address was tried:\n" + "\n".join(oc)
    else:
        assert f"order {where} " in order[-1], order[-1]
    assert [x for x in oc if f"connected to {where} " in x], \
        f"no 'connected to {where}':\n" + "\n".join(oc)
    print(f"\n[{kind}: {gw} ({gateway_address(kind)}, {af}) -> {where}, "
          f"{float(m.group(1)):.1f} s played, umctl {took:.1f} s, "
          f"offer c=IN {c.group(1)} {c.group(2)}]")
