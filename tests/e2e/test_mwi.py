"""Message waiting indicator (RFC 3842) process tests with real peers.

SIPp plays the UM IP gateways (sipp/mwi_uas.xml: a UAS over TCP that answers
each NOTIFY and logs it with -trace_msg), and SIPp plays a PBX that leaves a
message for mailbox 1001 through the router (sipp/deposit.xml, as in
test_deposit.py). After that one message, umservice must send exactly one
NOTIFY with "Messages-Waiting: yes" and "Voice-Message: 1/0 (0/0)" through
every enabled gateway of the dial plan with MessageWaitingIndicatorAllowed:

  loopback   127.0.0.1  MWI on                     answers 200
  loopback6  ::1        MWI on, IPv6Only           answers 200 (over IPv6)
  gwoff      127.0.0.1  MWI off                    must get nothing
  gwlate     127.0.0.1  MWI on, nobody listens     a UAS starts after the
                        at first                   first failure: the retry
                                                   must reach it
  gw503      127.0.0.1  MWI on                     503 first, then 200

All five share one deposit (the greeting alone takes ~12 s), set up by a
module fixture; each test checks one of them. test_refresh_sends_no_messages
runs on its own with --mwi-refresh 2 and no message at all. Every wait is
bounded; only 127.0.0.1 and ::1 are used.

Run with: /usr/bin/python3 -m pytest -q tests/e2e/test_mwi.py
"""

import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import SIPP_BYE, SIPP, SIPP_DIR, Env, free_port, free_port_block, hostport, wait_for
from sipgw import GatewayUas

MAILBOX = "1001"
PILOT = "8000"                 # neither the access number nor a mailbox
G711A_PCAP = "/usr/share/sip-tester/g711a.pcap"
WAIT_GREETING_MS = 13000       # greeting + tone (~12.3 s measured)
AUDIO_MS = 3000                # of the caller's speech, then BYE
DEPOSIT_TIMEOUT = 60           # the whole call
NOTIFY_TIMEOUT = 15            # message stored -> NOTIFY (coalescing is 1 s)
RETRY_TIMEOUT = 40             # first failure -> the retry got through


# --------------------------------------------------------------------------
# peers


def deposit(env, workdir, host="127.0.0.1"):
    """One call from a SIPp "PBX" on host: pilot number + Diversion 1001,
    through the router's 302, greeting, 3 s of speech, BYE. Returns the
    SIPp exit status and its directory."""
    d = Path(workdir) / "caller"
    d.mkdir()
    text = (SIPP_DIR / "deposit.xml").read_text()
    for k, v in {"@RUSER@": PILOT, "@DIVERSION@": MAILBOX, "@PROTO@": "udp",
                 "@WAIT_GREETING@": str(WAIT_GREETING_MS), "@AUDIO@": G711A_PCAP,
                 "@AUDIO_MS@": str(AUDIO_MS), "@ENDING@": SIPP_BYE}.items():
        text = text.replace(k, v)
    scen = d / "deposit.xml"
    scen.write_text(text)
    argv = [SIPP, "-sf", str(scen), "-t", "u1", "-i", host,
            "-p", str(free_port()), "-mp", str(free_port_block()), "-m", "1",
            "-timeout", f"{DEPOSIT_TIMEOUT}s", "-timeout_error", "-nostdin",
            "-trace_err", "-error_file", str(d / "errors.log"),
            hostport(host, env.router_port)]
    try:
        r = subprocess.run(argv, cwd=d, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, errors="replace", timeout=DEPOSIT_TIMEOUT + 15)
        rc, out = r.returncode, r.stdout + r.stderr
    except subprocess.TimeoutExpired:
        rc, out = "timeout", ""
    err = (d / "errors.log").read_text(errors="replace") if (d / "errors.log").exists() else ""
    return rc, f"{' '.join(argv)}\n{out[-2000:]}\n{err[-2000:]}"


def set_gateway(env, name, **params):
    args = ["set-umipgateway", "--identity", name]
    for k, v in params.items():
        args += ["--" + k.replace("_", "-"), str(v)]
    env.umctl_ok(*args)


def new_gateway(env, name, address, port, **params):
    args = ["new-umipgateway", "--name", name, "--address", address, "--port", str(port)]
    for k, v in params.items():
        args += ["--" + k.replace("_", "-"), str(v)]
    env.umctl_ok(*args)
    env.umctl_ok("new-umhuntgroup", "--name", f"{name}-default", "--umipgateway", name,
                 "--umdialplan", "default")


def service_log(env):
    return [d for d in env.daemons if d.name == "umservice"][-1].log()


def notify_lines(env, gateway):
    """The umservice log lines of NOTIFY results through one gateway."""
    return [line for line in service_log(env).splitlines()
            if f"NOTIFY for mailbox {MAILBOX} (dial plan default) via gateway {gateway} at" in line]


def assert_summary(n, account, new, old, host_port):
    """The NOTIFY is an RFC 3842 message-summary with these counts."""
    assert n.request_line == f"NOTIFY sip:{MAILBOX}@{host_port} SIP/2.0", n.raw
    assert n.header("Event") == "message-summary", n.raw
    assert n.header("Subscription-State") and \
        n.header("Subscription-State").split(";")[0] in ("terminated", "active"), n.raw
    assert n.header("Content-Type") == "application/simple-message-summary", n.raw
    assert n.header("Call-ID") and n.header("CSeq") == "1 NOTIFY", n.raw
    assert n.header("From") and ";tag=" in n.header("From"), n.raw
    assert n.header("Contact"), n.raw
    assert n.header("Via") and n.header("Via").startswith("SIP/2.0/TCP "), n.raw
    f = n.body_fields()
    assert f.get("Messages-Waiting") == ("yes" if new else "no"), n.raw
    assert f.get("Message-Account") == account, n.raw
    assert f.get("Voice-Message") == f"{new}/{old} (0/0)", n.raw
    want = (f"Messages-Waiting: {'yes' if new else 'no'}\r\nMessage-Account: {account}\r\n"
            f"Voice-Message: {new}/{old} (0/0)\r\n")
    assert n.header("Content-Length") == str(len(want)), n.raw


# --------------------------------------------------------------------------
# the shared world: five gateways, one deposit


class World:
    def __init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="openum-mwi-"))
        self.env = Env(self.base)
        self.peers = {}
        self.late = None           # gwlate's UAS, started after its first failure
        self.second503 = None      # gw503's UAS answering 200 after the 503
        self.ports = {n: free_port() for n in ("loopback", "loopback6", "gwoff",
                                               "gwlate", "gw503")}
        self.deposit_rc = None
        self.deposit_report = ""
        self.stored_at = None
        self.problems = []

    def uas(self, name, host, status="200 OK", calls=1000):
        u = GatewayUas(self.base, name, host, self.ports[name], status, calls)
        self.peers.setdefault(name, []).append(u)
        return u

    def report(self):
        out = [self.env.report(), f"deposit: rc {self.deposit_rc}\n{self.deposit_report}"]
        for us in self.peers.values():
            out += [u.report() for u in us]
        return "\n".join(out)

    def close(self):
        for us in self.peers.values():
            for u in us:
                u.stop()
        try:
            self.problems += self.env.stop_all()
        finally:
            self.env.kill_all()


@pytest.fixture(scope="module")
def world():
    w = World()
    env, p = w.env, w.ports
    ok = False
    try:
        set_gateway(env, "loopback", port=p["loopback"])
        set_gateway(env, "loopback6", port=p["loopback6"], ip_address_family="IPv6Only")
        new_gateway(env, "gwoff", "127.0.0.1", p["gwoff"], ip_address_family="IPv4Only",
                    message_waiting_indicator_allowed="false")
        new_gateway(env, "gwlate", "127.0.0.1", p["gwlate"])
        new_gateway(env, "gw503", "127.0.0.1", p["gw503"])
        peers = [w.uas("loopback", "127.0.0.1"), w.uas("loopback6", "::1"),
                 w.uas("gwoff", "127.0.0.1"),
                 # two requests: the OPTIONS ping at start (200), then
                 # the NOTIFY (503); then it exits.
                 w.uas("gw503", "127.0.0.1", "503 Service Unavailable", calls=2)]
        for u in peers:
            u.wait_listening()
        r = env.start_router(wait=False)
        env.wait_router(r, timeout=20)
        s = env.start_service(wait=False)
        env.wait_instance("e2e-1", port=env.service_port, daemon=s, timeout=20)
        # umservice pings every gateway at start: gw503 answers its OPTIONS
        # before the NOTIFY it is to refuse.
        wait_for(lambda: w.peers["gw503"][0].options(), 15, 0.1,
                 "the OPTIONS ping of gw503")
        w.deposit_rc, w.deposit_report = deposit(env, w.base)
        assert w.deposit_rc == 0, f"the deposit call failed:\n{w.report()}"
        wait_for(lambda: re.search(r"message \d+ stored for mailbox 1001", service_log(env)),
                 15, 0.1, "the message to be stored")
        w.stored_at = time.monotonic()
        # gw503 answered 503 and its SIPp has exited (-m 2): a 200 UAS
        # takes its port for the retry.
        w.peers["gw503"][0].wait_notifies(1, NOTIFY_TIMEOUT)
        assert w.peers["gw503"][0].wait_exit(10) is not None, "SIPp (503) did not exit"
        w.second503 = w.uas("gw503", "127.0.0.1")
        w.second503.wait_listening()
        # gwlate: nobody listens until umservice has logged the failure.
        wait_for(lambda: notify_lines(env, "gwlate"), NOTIFY_TIMEOUT, 0.05,
                 "the first NOTIFY to gwlate to fail")
        w.late = w.uas("gwlate", "127.0.0.1")
        w.late.wait_listening()
        ok = True
        yield w
    finally:
        if not ok:
            print(w.report())
        w.close()
        if ok and not w.problems:
            shutil.rmtree(w.base, ignore_errors=True)
        else:
            print(f"[kept {w.base} for inspection]")
        if w.problems:
            pytest.fail("daemons did not stop cleanly:\n" + "\n".join(w.problems),
                        pytrace=False)


def check(request, w):
    request.node._openum_env = w.env


# --------------------------------------------------------------------------
# tests


def test_notify_after_deposit_ipv4(world, request):
    """One message for 1001 -> one NOTIFY yes, 1/0 (0/0) at gateway
    loopback (127.0.0.1), answered 200 and logged as delivered."""
    check(request, world)
    u = world.peers["loopback"][0]
    n = u.wait_notifies(1, NOTIFY_TIMEOUT)[0]
    assert_summary(n, f"sip:{MAILBOX}@127.0.0.1", 1, 0,
                   f"127.0.0.1:{world.ports['loopback']}")
    # Exactly one: no duplicate for one change (wait past the coalescing).
    time.sleep(2.5)
    assert len(u.notifies()) == 1, "\n\n".join(x.raw for x in u.notifies())
    lines = wait_for(lambda: notify_lines(world.env, "loopback"), 5, 0.1, "the log line")
    assert len(lines) == 1, lines
    assert " info " in lines[0] and "Messages-Waiting yes, Voice-Message 1/0 (0/0): " \
        "delivered, 200 OK" in lines[0], lines[0]
    assert f"at 127.0.0.1:{world.ports['loopback']}" in lines[0], lines[0]
    assert "every mailbox refreshed every 43200 s" in service_log(world.env)


def test_notify_over_ipv6(world, request):
    """Gateway loopback6 (::1, IPv6Only) gets the same NOTIFY over IPv6."""
    check(request, world)
    u = world.peers["loopback6"][0]
    n = u.wait_notifies(1, NOTIFY_TIMEOUT)[0]
    port = world.ports["loopback6"]
    assert_summary(n, f"sip:{MAILBOX}@[::1]", 1, 0, f"[::1]:{port}")
    assert re.match(r"SIP/2\.0/TCP \[[0-9a-fA-F:]+\]:\d+", n.header("Via")), n.header("Via")
    lines = wait_for(lambda: notify_lines(world.env, "loopback6"), 5, 0.1, "the log line")
    assert f"at [::1]:{port}: Messages-Waiting yes, Voice-Message 1/0 (0/0): delivered, " \
        "200 OK" in lines[0], lines


def test_mwi_disabled_gateway_gets_nothing(world, request):
    """gwoff (MessageWaitingIndicatorAllowed false) gets no NOTIFY, while
    the gateways beside it got theirs."""
    check(request, world)
    world.peers["loopback"][0].wait_notifies(1, NOTIFY_TIMEOUT)
    remaining = 3.0 - (time.monotonic() - world.stored_at)
    if remaining > 0:
        time.sleep(remaining)
    u = world.peers["gwoff"][0]
    assert u.proc.poll() is None, "the gwoff SIPp is not running: the check would be void"
    assert u.notifies() == [], "\n\n".join(x.raw for x in u.notifies())
    assert not notify_lines(world.env, "gwoff")


def test_retry_reaches_gateway_that_starts_answering(world, request):
    """Nobody listens at gwlate at first: the NOTIFY fails (a warning says
    when it is retried); a UAS started afterwards gets the retry, 1/0."""
    check(request, world)
    first = notify_lines(world.env, "gwlate")[0]
    assert " warn " in first and "Messages-Waiting yes, Voice-Message 1/0 (0/0): failed" \
        in first and "retry 1 of 8 in 5 s" in first, first
    started = time.monotonic()
    n = world.late.wait_notifies(1, RETRY_TIMEOUT)[0]
    assert_summary(n, f"sip:{MAILBOX}@127.0.0.1", 1, 0, f"127.0.0.1:{world.ports['gwlate']}")
    lines = wait_for(lambda: (lambda x: x if len(x) >= 2 and "delivered" in x[-1] else None)(
        notify_lines(world.env, "gwlate")), 5, 0.1, "the delivered log line")
    assert "Voice-Message 1/0 (0/0): delivered, 200 OK" in lines[-1], lines
    assert time.monotonic() - started < RETRY_TIMEOUT


def test_retry_after_503(world, request):
    """gw503 answers 503 first: retried after ~5 s with the same counts,
    and the 200 UAS that took over its port gets it."""
    check(request, world)
    first = world.peers["gw503"][0].notifies()[0]
    assert_summary(first, f"sip:{MAILBOX}@127.0.0.1", 1, 0, f"127.0.0.1:{world.ports['gw503']}")
    n = world.second503.wait_notifies(1, RETRY_TIMEOUT)[0]
    assert_summary(n, f"sip:{MAILBOX}@127.0.0.1", 1, 0, f"127.0.0.1:{world.ports['gw503']}")
    gap = (n.when - first.when).total_seconds()
    assert 4.0 <= gap <= 30.0, f"retry came {gap:.1f} s after the 503"
    assert n.header("Call-ID") != first.header("Call-ID")
    lines = wait_for(lambda: (lambda x: x if len(x) >= 2 and "delivered" in x[-1] else None)(
        notify_lines(world.env, "gw503")), 5, 0.1, "the delivered log line")
    assert "failed, 503 Service Unavailable; retry 1 of 8 in 5 s" in lines[0], lines
    assert " warn " in lines[0], lines


def test_refresh_sends_no_messages(env):
    """--mwi-refresh 2 and no message at all: every 2 s the gateway gets
    "Messages-Waiting: no", 0/0 (0/0)."""
    port = free_port()
    set_gateway(env, "loopback", port=port)
    set_gateway(env, "loopback6", message_waiting_indicator_allowed="false")
    u = GatewayUas(env.base, "refresh", "127.0.0.1", port)
    try:
        u.wait_listening()
        env.start_router()
        env.start_service(extra=("--mwi-refresh", "2"))
        got = u.wait_notifies(2, 10)
        for n in got[:2]:
            assert_summary(n, f"sip:{MAILBOX}@127.0.0.1", 0, 0, f"127.0.0.1:{port}")
        gap = (got[1].when - got[0].when).total_seconds()
        assert 1.5 <= gap <= 3.5, f"refreshes {gap:.1f} s apart, expected 2"
        log = service_log(env)
        assert "every mailbox refreshed every 2 s" in log
        assert "MWI refresh: 1 mailbox" in log
        assert "via gateway loopback6" not in log
    except AssertionError:
        print(u.report())
        raise
    finally:
        u.stop()


def test_mwi_refresh_option_checked(env):
    """A bad --mwi-refresh is refused at start with exit status 2."""
    from conftest import SERVICE
    for bad in ("0", "43201", "x"):
        r = subprocess.run([str(SERVICE), "--state-dir", str(env.dir), "--mwi-refresh", bad],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 2, (bad, r.stdout, r.stderr)
        assert "--mwi-refresh" in r.stderr, r.stderr
    r = subprocess.run([str(SERVICE), "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "--mwi-refresh SECONDS" in r.stdout, r.stdout
