"""Issue 2 (foundation) process tests: the directory and umctl, the IPC
protocol, both daemons listening per IPAddressFamily, signals, idle CPU.

Real daemons from build/, real SIP peers (SIPp) over 127.0.0.1 and ::1.
"""

import os
import re
import signal
import socket
import stat
import struct
import time

import pytest

import ipcwire as w
from conftest import (AF_OF, FAMILIES, LOOPBACK, ROUTER, SERVICE, assert_ss_exactly,
                      free_port, proc_cpu_seconds, sip_request, sip_status,
                      sipp_options, sipp_request, tcp_connect_refused, wait_for)

PIN_RE = re.compile(r"\bPIN\b\W{0,5}(\d{4,24})\b")

# umctl noun per daemon, and which port the env gave it.
WHICH = {
    "umservice": ("set-umservice", "get-umservice", "service_port"),
    "umcallroutersettings": ("set-umcallroutersettings", "get-umcallroutersettings",
                             "router_port"),
}


def table_has(text, label, value):
    """True when the table output shows `label` with `value` on one line
    (format-list `Label : Value` or `Label  Value`)."""
    pat = rf"(?m)^\s*{re.escape(label)}\s*[:=|]?\s+{re.escape(value)}\s*$"
    return re.search(pat, text) is not None


def sip_effective(port, families, timeout=0.3):
    """OPTIONS over UDP and TCP answer 200 on the loopback address of each
    wanted family, and TCP to the other family is refused."""
    for fam in FAMILIES:
        host = LOOPBACK[fam]
        if fam in families:
            if sip_status(host, port, "tcp", timeout=timeout) != 200:
                return False
            if sip_status(host, port, "udp", timeout=timeout) != 200:
                return False
        elif not tcp_connect_refused(host, port):
            return False
    return True


def sipp_all(port, families):
    """SIPp OPTIONS over UDP and TCP from/to each loopback of families."""
    for fam in families:
        for transport in ("u1", "t1"):
            r = sipp_options(LOOPBACK[fam], port, transport)
            assert r.ok, str(r)


def endpoint_families(eps):
    return {e["family"] for e in eps}


# --------------------------------------------------------------------------
# (1) first start: directory, PIN once, defaults


def test_first_start_creates_directory_and_defaults(env):
    assert not env.db.exists()
    router = env.start_router()
    assert env.db.exists(), "the router did not create directory.db"
    pins = PIN_RE.findall(router.log())
    assert len(pins) == 1, f"expected the 1001 PIN once on the first start:\n{router.log()}"
    assert "1001" in router.log()
    pin = pins[0]

    service = env.start_service()
    assert not PIN_RE.search(service.log()), f"PIN printed again by umservice:\n{service.log()}"

    # The PIN is stored only as a salted hash.
    raw = env.sqlite("SELECT pin_hash FROM mailbox WHERE extension='1001'").stdout.strip()
    assert raw and pin not in raw, f"PIN stored in clear? {raw!r}"

    # Defaults, table output.
    for verb, port in (("get-umservice", 5062), ("get-umcallroutersettings", 5060)):
        r = env.umctl_ok(verb)
        assert table_has(r.out, "IPAddressFamily", "Any"), r.out
        assert table_has(r.out, "IPAddressFamilyConfigurable", "True"), r.out
        d = env.get(verb)
        assert isinstance(d, dict), d
        assert d["IPAddressFamily"] == "Any", d
        assert d["IPAddressFamilyConfigurable"] is True, d
        assert d["SipTcpListeningPort"] == port, d
    assert env.get("get-umservice")["MaxCallsAllowed"] == 100

    # Stop both; a write with no router running succeeds with a note.
    assert service.stop(signal.SIGTERM, 5) == 0
    assert router.stop(signal.SIGTERM, 5) == 0
    new_router_port, new_service_port = free_port(), free_port()
    r = env.umctl("set-umcallroutersettings", "--sip-tcp-listening-port", new_router_port)
    assert r.rc == 0, str(r)
    assert r.err.strip(), f"no note on stderr although the router is down: {r}"
    r = env.umctl("set-umservice", "--sip-tcp-listening-port", new_service_port)
    assert r.rc == 0, str(r)
    assert env.get("get-umservice")["SipTcpListeningPort"] == new_service_port
    assert env.get("get-umcallroutersettings")["SipTcpListeningPort"] == new_router_port

    # Second start (ports from the directory): no PIN, listeners on the
    # directory's ports.
    router2 = env.start_router(sip_port=None)
    service2 = env.start_service(sip_port=None)
    assert not PIN_RE.search(router2.log()), router2.log()
    assert not PIN_RE.search(service2.log()), service2.log()
    inst = env.wait_instance(port=new_service_port)
    assert {e["port"] for e in inst["endpoints"]} == {new_service_port}
    st = env.status()
    assert {e["port"] for e in st["router"]["endpoints"]} == {new_router_port}
    assert sip_status("127.0.0.1", new_router_port, "udp") == 200
    assert sip_status("::1", new_service_port, "tcp") == 200


# --------------------------------------------------------------------------
# (2) status


def test_status_shows_router_and_instance(running):
    env = running
    router, service = env.daemons
    st = env.status()
    assert st["router"]["pid"] == router.pid, st
    reps = st["router"]["endpoints"]
    assert endpoint_families(reps) == {"IPv4", "IPv6"}, reps
    assert {e["transport"] for e in reps} >= {"udp", "tcp"}, reps
    assert {(e["host"], e["port"], e["transport"]) for e in reps} >= {
        ("127.0.0.1", env.router_port, "udp"), ("127.0.0.1", env.router_port, "tcp"),
        ("::1", env.router_port, "udp"), ("::1", env.router_port, "tcp")}, reps

    assert len(st["instances"]) == 1, st
    inst = st["instances"][0]
    assert inst["instance_id"] == "e2e-1"
    assert inst["pid"] == service.pid
    assert inst["max_calls_allowed"] == 100
    assert inst["active_calls"] == 0
    assert inst["accepting"] is True
    assert "calls_routed" in inst and "fqdn" in inst
    eps = inst["endpoints"]
    assert {(e["host"], e["port"], e["transport"], e["family"]) for e in eps} >= {
        ("127.0.0.1", env.service_port, "udp", "IPv4"),
        ("127.0.0.1", env.service_port, "tcp", "IPv4"),
        ("::1", env.service_port, "udp", "IPv6"),
        ("::1", env.service_port, "tcp", "IPv6")}, eps
    for e in reps + eps:
        assert "::ffff:" not in e["host"] and "[" not in e["host"], e
        assert e["family"] == ("IPv6" if ":" in e["host"] else "IPv4"), e

    # Table output names both; OPENUM_STATE_DIR works instead of --state-dir.
    r = env.umctl_ok("status")
    assert "e2e-1" in r.out and str(service.pid) in r.out, r.out
    envvars = dict(os.environ, OPENUM_STATE_DIR=str(env.dir))
    r = env.umctl("status", json_out=True, state_dir=False, env=envvars)
    assert r.rc == 0 and r.data["router"]["pid"] == router.pid, str(r)

    # The IPC socket is private.
    run = env.sock.parent
    assert stat.S_IMODE(run.stat().st_mode) == 0o700, oct(run.stat().st_mode)
    sst = env.sock.stat()
    assert stat.S_ISSOCK(sst.st_mode)
    assert stat.S_IMODE(sst.st_mode) == 0o660, oct(sst.st_mode)

    # Both really listen on both families.
    assert_ss_exactly(env.router_port, {"IPv4", "IPv6"})
    assert_ss_exactly(env.service_port, {"IPv4", "IPv6"})


# --------------------------------------------------------------------------
# (3) live IPAddressFamily changes


@pytest.mark.parametrize("which", ["umservice", "umcallroutersettings"])
def test_live_ip_address_family(running, which):
    env = running
    set_verb, get_verb, port_attr = WHICH[which]
    port = getattr(env, port_attr)
    other_port = env.router_port if which == "umservice" else env.service_port
    timings = {}
    for af in ("IPv6Only", "IPv4Only", "Any"):
        want = AF_OF[af]
        t0 = time.monotonic()
        env.umctl_ok(set_verb, "--ip-address-family", af)
        wait_for(lambda: sip_effective(port, want), 3.0, 0.02,
                 what=f"{which} {af} listeners")
        timings[af] = time.monotonic() - t0
        # status shows the new endpoint families
        if which == "umservice":
            env.wait_instance(families=want, port=port, timeout=1.0, interval=0.02)
        else:
            env.wait_router_families(want, port=port, timeout=1.0, interval=0.02)
        timings[af + " status"] = time.monotonic() - t0
        assert env.get(get_verb)["IPAddressFamily"] == af
        assert_ss_exactly(port, want)
        sipp_all(port, want)
        for fam in set(FAMILIES) - want:
            assert tcp_connect_refused(LOOPBACK[fam], port), f"{fam} TCP still open"
            assert sip_status(LOOPBACK[fam], port, "udp", timeout=0.3) is None, \
                f"{fam} UDP still answers"
        # The other daemon is untouched.
        assert_ss_exactly(other_port, {"IPv4", "IPv6"})
    slow = {k: round(v, 3) for k, v in timings.items() if v > 1.0}
    assert not slow, f"took longer than 1 s to take effect: {timings}"
    # Still registered, same process.
    inst = env.wait_instance()
    assert inst["pid"] == env.daemons[1].pid


@pytest.mark.parametrize("which", ["umservice", "umcallroutersettings"])
def test_live_port_change(env, which):
    """SipTcpListeningPort changed through umctl rebinds live (both daemons
    run without --sip-port here, so the directory decides)."""
    set_verb, get_verb, port_attr = WHICH[which]
    env.umctl_ok("set-umcallroutersettings", "--sip-tcp-listening-port", env.router_port)
    env.umctl_ok("set-umservice", "--sip-tcp-listening-port", env.service_port)
    env.start_router(sip_port=None)
    service = env.start_service(sip_port=None)
    old_port, new_port = getattr(env, port_attr), free_port()
    assert sip_effective(old_port, {"IPv4", "IPv6"})
    t0 = time.monotonic()
    env.umctl_ok(set_verb, "--sip-tcp-listening-port", new_port)
    wait_for(lambda: sip_effective(new_port, {"IPv4", "IPv6"}), 3.0, 0.02,
             what="listeners on the new port")
    elapsed = time.monotonic() - t0
    for fam in FAMILIES:
        assert tcp_connect_refused(LOOPBACK[fam], old_port), f"old {fam} port still open"
    assert_ss_exactly(new_port, {"IPv4", "IPv6"})
    assert env.get(get_verb)["SipTcpListeningPort"] == new_port
    if which == "umservice":
        inst = env.wait_instance(port=new_port, timeout=1.0)
        assert inst["pid"] == service.pid
    else:
        env.wait_router_families({"IPv4", "IPv6"}, port=new_port, timeout=1.0)
        assert env.wait_instance()["pid"] == service.pid
    sipp_all(new_port, {"IPv4", "IPv6"})
    assert elapsed <= 1.0, f"port change took {elapsed:.3f} s"


# --------------------------------------------------------------------------
# (4) IPAddressFamilyConfigurable false


@pytest.mark.parametrize("which", ["umservice", "umcallroutersettings"])
def test_af_not_configurable_refuses_change(running, which):
    env = running
    set_verb, get_verb, port_attr = WHICH[which]
    port = getattr(env, port_attr)
    env.umctl_ok(set_verb, "--ip-address-family-configurable", "false")
    before = env.get(get_verb)
    assert before["IPAddressFamilyConfigurable"] is False
    assert table_has(env.umctl_ok(get_verb).out, "IPAddressFamilyConfigurable", "False")
    dump = env.dump()

    r = env.umctl(set_verb, "--ip-address-family", "IPv6Only")
    assert r.rc == 1, f"expected exit 1 (directory refusal): {r}"
    assert "IPAddressFamilyConfigurable" in r.text, str(r)
    assert env.get(get_verb) == before
    assert env.dump() == dump
    time.sleep(0.5)
    assert_ss_exactly(port, {"IPv4", "IPv6"})
    assert sip_effective(port, {"IPv4", "IPv6"})
    sipp_all(port, {"IPv4"})

    # Made configurable again, the change goes through.
    env.umctl_ok(set_verb, "--ip-address-family-configurable", "true")
    env.umctl_ok(set_verb, "--ip-address-family", "IPv6Only")
    wait_for(lambda: sip_effective(port, {"IPv6"}), 2.0, 0.02, what="IPv6Only")
    assert_ss_exactly(port, {"IPv6"})


# --------------------------------------------------------------------------
# (5) router kill -9 and restart


def test_router_kill9_service_survives_and_reregisters(running):
    env = running
    router, service = env.daemons
    t_kill = time.monotonic()
    router.kill9()
    assert env.sock.exists(), "socket file vanished although the router was SIGKILLed"
    r = env.umctl("status")
    assert r.rc == 3, f"status without a router should exit 3: {r}"

    # The UM service keeps answering SIP while the router is gone.
    for fam in FAMILIES:
        for transport in ("u1", "t1"):
            res = sipp_options(LOOPBACK[fam], env.service_port, transport)
            assert res.ok, str(res)
    assert service.alive()
    time.sleep(max(0.0, 1.5 - (time.monotonic() - t_kill)))
    assert sip_effective(env.service_port, {"IPv4", "IPv6"})

    # A new router removes the stale socket; the service re-registers.
    t0 = time.monotonic()
    router2 = env.start_router(wait=False)
    inst = env.wait_instance(timeout=5, interval=0.02)
    elapsed = time.monotonic() - t0
    assert inst["pid"] == service.pid
    assert env.status()["router"]["pid"] == router2.pid
    assert elapsed <= 2.0, f"re-registration took {elapsed:.2f} s after the router restart"
    assert service.alive()


def test_service_started_before_router_registers_later(env):
    service = env.start_service(wait=False)
    wait_for(lambda: sip_effective(env.service_port, {"IPv4", "IPv6"}), 5, 0.05,
             what="umservice listening without a router")
    assert service.alive()
    res = sipp_options("::1", env.service_port, "u1")
    assert res.ok, str(res)
    t0 = time.monotonic()
    env.start_router(wait=False)
    inst = env.wait_instance(timeout=5, interval=0.02)
    elapsed = time.monotonic() - t0
    assert inst["pid"] == service.pid
    assert elapsed <= 2.0, f"registration took {elapsed:.2f} s after the router started"


def test_router_forgets_dead_instance(running):
    env = running
    router, service1 = env.daemons
    port2 = free_port()
    service2 = env.start_service(sip_port=port2, instance_id="e2e-2")
    st = env.status()
    assert {i["instance_id"] for i in st["instances"]} == {"e2e-1", "e2e-2"}, st
    assert env.find_instance(st, "e2e-2")["pid"] == service2.pid
    service1.kill9()
    t0 = time.monotonic()
    wait_for(lambda: env.find_instance(env.status(), "e2e-1") is None, 2, 0.02,
             what="the router to forget the killed instance")
    elapsed = time.monotonic() - t0
    st = env.status()
    assert [i["instance_id"] for i in st["instances"]] == ["e2e-2"], st
    assert elapsed <= 0.5, f"router noticed the dead instance after {elapsed:.2f} s"
    assert router.alive() and service2.alive()


# --------------------------------------------------------------------------
# (6) bad IPC frames, second router, stale socket


def _hello_ok(env):
    c = w.IpcClient(env.sock)
    hello = c.read(timeout=3)
    assert hello is not None, "router closed without Hello"
    assert hello.version == w.VERSION and hello.body_field == w.HELLO, hello
    assert hello.body.get(1, [0])[0] == w.ROLE_ROUTER, hello
    return c


BAD_FRAMES = {
    # name: (bytes, shut_wr, must_answer_error)
    "oversized_65537": (struct.pack(">I", 64 * 1024 + 1), False, True),
    "oversized_4GiB": (b"\xff\xff\xff\xff", False, True),
    "truncated_then_close": (struct.pack(">I", 100) + b"\x08\x01\x8a", True, False),
    "wrong_version": (w.frame(w.envelope(w.STATUS_REQUEST, version=7)), False, True),
    "no_version": (w.frame(w.envelope(w.STATUS_REQUEST, version=None)), False, True),
    "garbage": (w.frame(b"\xff" * 12 + b"garbage!"), False, True),
    "undecodable_body": (w.frame(w.field_varint(1, 1) + b"\x8a\x01\x05\x08"), False, True),
}


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
def test_bad_ipc_frames(running, case):
    env = running
    router, service = env.daemons
    data, shut_wr, must_error = BAD_FRAMES[case]
    assert w.frame(w.envelope(w.STATUS_REQUEST, version=7)) == \
        b"\x00\x00\x00\x05\x08\x07\x8a\x01\x00"

    good = _hello_ok(env)
    bad = _hello_ok(env)
    # A partial frame pending on one connection must not stall the others.
    stall = _hello_ok(env)
    stall.send(struct.pack(">I", 50) + b"\x08")
    try:
        bad.send(data)
        if shut_wr:
            bad.sock.shutdown(socket.SHUT_WR)
        envs, eof = bad.read_until_eof(timeout=3)
        assert eof, f"router did not close the connection after {case}: {envs}"
        for e in envs:
            assert e.body_field == w.ERROR and e.version == w.VERSION, e
        if must_error:
            assert envs, f"no Error envelope before the close ({case})"
            assert envs[-1].error_text(), envs[-1]
            assert envs[-1].error_code() != 0, envs[-1]

        # The router keeps serving the others.
        good.send(w.hello_umctl(os.getpid()))
        good.send(w.status_request())
        rep = good.read(timeout=3)
        assert rep is not None and rep.body_field == w.STATUS_REPLY, rep
        assert rep.body.get(1, [0])[0] == router.pid
        assert len(rep.body.get(3, [])) == 1, rep
    finally:
        for c in (good, bad, stall):
            c.close()
    assert router.alive() and service.alive()
    inst = env.wait_instance(timeout=2)
    assert inst["pid"] == service.pid
    assert env.status()["router"]["pid"] == router.pid


def test_second_router_refused(running):
    env = running
    router, service = env.daemons
    r2 = env.spawn("umcallrouter", ROUTER, ["--sip-port", str(free_port())])
    rc = r2.wait(5)
    assert rc is not None, "second router still running"
    assert rc != 0
    assert "already listening" in r2.log(), r2.log()
    assert env.sock.exists(), "the second router removed the first one's socket"
    st = env.status()
    assert st and st["router"]["pid"] == router.pid, st
    assert env.find_instance(st, "e2e-1")["pid"] == service.pid
    assert router.alive() and service.alive()


def test_stale_socket_removed_on_start(env):
    r1 = env.start_router()
    r1.kill9()
    assert env.sock.exists()
    assert env.umctl("status").rc == 3
    r2 = env.start_router()
    assert env.status()["router"]["pid"] == r2.pid
    env.start_service()


# --------------------------------------------------------------------------
# (7) signals


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_cleanly(running, sig):
    env = running
    router, service = env.daemons
    order = [router, service] if sig == signal.SIGINT else [service, router]
    t0 = time.monotonic()
    for d in order:
        d.send_signal(sig)
    for d in order:
        rc = d.wait(max(0.1, 3.0 - (time.monotonic() - t0)))
        assert rc is not None, f"{d.name} did not exit within 3 s of {sig.name}"
        assert rc == 0, f"{d.name} exit {rc} on {sig.name}"
    assert not env.sock.exists(), "IPC socket file left behind"
    for port in (env.router_port, env.service_port):
        for fam in FAMILIES:
            assert tcp_connect_refused(LOOPBACK[fam], port)
    assert env.umctl("status").rc == 3


def test_ctrl_c_forwarded_by_a_wrapper_still_stops_cleanly(running):
    """Ctrl-C in a terminal signals the whole foreground group: `make run`'s
    scripts/run.sh and both daemons get SIGINT, and run.sh forwards it as
    SIGTERM a moment later. That is the same request: both daemons finish
    their clean stop (exit 0, "stopped") instead of exiting at once as a
    deliberate second Ctrl-C makes them (which could cut short a message
    still being written), and a signal that comes once their handlers are
    gone does not kill them either."""
    env = running
    for d in env.daemons:
        # stopped, it gets both at the same moment when it runs again
        d.send_signal(signal.SIGSTOP)
        d.send_signal(signal.SIGINT)
        d.send_signal(signal.SIGTERM)
        d.send_signal(signal.SIGCONT)
    end = time.monotonic() + 0.5
    while time.monotonic() < end and any(d.alive() for d in env.daemons):
        for d in env.daemons:
            d.send_signal(signal.SIGTERM)
        time.sleep(0.001)
    for d in env.daemons:
        rc = d.wait(3.0)
        assert rc is not None, f"{d.name} did not exit within 3 s"
        log = d.log()
        assert "exiting now" not in log, f"{d.name} took the forwarded SIGTERM as a " \
                                         f"second Ctrl-C:\n{d.tail(5)}"
        assert rc == 0, f"{d.name} exit {rc}:\n{d.tail(5)}"
        assert "stopped" in log.splitlines()[-1], d.tail(5)


def test_sighup_reloads_directory(running):
    env = running
    router, service = env.daemons
    env.sqlite("UPDATE service_settings SET ip_address_family='IPv6Only'")
    service.send_signal(signal.SIGHUP)
    wait_for(lambda: sip_effective(env.service_port, {"IPv6"}), 3.0, 0.02,
             what="umservice IPv6Only after SIGHUP")
    env.wait_instance(families={"IPv6"}, timeout=2)
    env.sqlite("UPDATE callrouter_settings SET ip_address_family='IPv4Only'")
    router.send_signal(signal.SIGHUP)
    wait_for(lambda: sip_effective(env.router_port, {"IPv4"}), 3.0, 0.02,
             what="umcallrouter IPv4Only after SIGHUP")
    env.wait_router_families({"IPv4"}, timeout=2)
    assert router.alive() and service.alive()


# --------------------------------------------------------------------------
# (8) umctl bad input


BAD_INPUT = [
    # (argv, groups of words of which the message must name one each)
    (["frobnicate-umthing"], [["frobnicate-umthing"]]),
    (["get-umservice", "--frobnicate", "1"], [["frobnicate"]]),
    (["set-umservice", "--frobnicate", "1"], [["frobnicate"]]),
    (["set-umservice", "--ip-address-family", "IPv5Only"],
     [["ip-address-family", "IPAddressFamily"], ["IPv4Only"]]),
    (["set-umcallroutersettings", "--ip-address-family", "ipv6"],
     [["ip-address-family", "IPAddressFamily"], ["IPv6Only"]]),
    (["set-umservice", "--sip-tcp-listening-port", "70000"],
     [["sip-tcp-listening-port", "SipTcpListeningPort"], ["65535"]]),
    (["set-umservice", "--sip-tcp-listening-port", "0"],
     [["sip-tcp-listening-port", "SipTcpListeningPort"]]),
    (["set-umcallroutersettings", "--sip-tcp-listening-port", "50x"],
     [["sip-tcp-listening-port", "SipTcpListeningPort"]]),
    (["set-umservice", "--ip-address-family-configurable", "maybe"],
     [["ip-address-family-configurable", "IPAddressFamilyConfigurable"]]),
    (["set-umservice", "--max-calls-allowed"], [["max-calls-allowed", "MaxCallsAllowed"]]),
    (["set-umservice", "--max-calls-allowed", "100000"],
     [["max-calls-allowed", "MaxCallsAllowed"]]),
    (["new-umipgateway", "--name", "gwbad", "--address", "bad host!"],
     [["address", "Address"]]),
    (["new-umipgateway", "--name", "gwbad", "--address", "192.0.2.77", "--port", "65536"],
     [["port", "Port"]]),
    (["set-umipgateway", "--name", "loopback", "--status", "Sleeping"],
     [["status", "Status"], ["NoNewCalls"]]),
    (["set-umipgateway", "--name", "loopback", "--ip-address-family", "Both"],
     [["ip-address-family", "IPAddressFamily"]]),
]


def test_umctl_bad_input(env):
    router = env.start_router()
    snapshot_verbs = ["get-umservice", "get-umcallroutersettings", "get-umipgateway"]
    before = {v: env.get(v) for v in snapshot_verbs}
    dump = env.dump()
    problems = []
    for argv, groups in BAD_INPUT:
        r = env.umctl(*argv)
        text = r.text.lower()
        if r.rc != 2:
            problems.append(f"exit {r.rc} (want 2): {r}")
        for group in groups:
            if not any(word.lower() in text for word in group):
                problems.append(f"message does not name {' or '.join(group)}: {r}")
        if env.dump() != dump:
            problems.append(f"directory changed: {r}")
            dump = env.dump()
    after = {v: env.get(v) for v in snapshot_verbs}
    assert not problems, "\n\n".join(problems)
    assert after == before
    assert router.alive()


# --------------------------------------------------------------------------
# (9) at most 200 gateways per dial plan


def test_dialplan_gateway_limit_200(env):
    router = env.start_router()
    router.stop()
    env.umctl_ok("new-umdialplan", "--name", "big", "--number-of-digits-in-extension", "5")
    # Loopback addresses only: nothing ever leaves the machine.
    for i in range(1, 201):
        env.umctl_ok("new-umipgateway", "--name", f"gw{i:03d}", "--address", f"127.0.100.{i}")
        env.umctl_ok("new-umhuntgroup", "--name", f"hg{i:03d}", "--umipgateway", f"gw{i:03d}",
                     "--umdialplan", "big")
    env.umctl_ok("new-umipgateway", "--name", "gw201", "--address", "127.0.100.201")
    dump = env.dump()
    r = env.umctl("new-umhuntgroup", "--name", "hg201", "--umipgateway", "gw201",
                  "--umdialplan", "big")
    assert r.rc == 1, f"201st gateway in a dial plan should be refused with exit 1: {r}"
    assert "200" in r.text and "big" in r.text, str(r)
    assert env.dump() == dump

    # Exactly 200: umservice starts.
    env.start_router()
    service = env.start_service()
    assert service.stop() == 0

    # Forced 201st: umservice refuses to start, saying why.
    env.sqlite("INSERT INTO huntgroup (name, gateway, dialplan, pilot) "
               "VALUES ('hg201', 'gw201', 'big', '')")
    s2 = env.spawn("umservice", SERVICE, ["--sip-port", str(env.service_port),
                                          "--instance-id", "e2e-over"])
    rc = s2.wait(5)
    assert rc is not None, "umservice started on a dial plan with 201 gateways"
    assert rc != 0
    assert "200" in s2.log() and "big" in s2.log(), s2.log()
    assert env.find_instance(env.status(), "e2e-over") is None


# --------------------------------------------------------------------------
# (10) OPTIONS headers, other methods


@pytest.mark.parametrize("who", ["umcallrouter", "umservice"])
def test_options_headers_and_errors(running, who):
    env = running
    port = env.router_port if who == "umcallrouter" else env.service_port
    # SIPp options.xml checks Allow (with OPTIONS) and Accept (application/sdp).
    for host, transport in (("127.0.0.1", "u1"), ("::1", "t1"), ("::1", "u1"),
                            ("127.0.0.1", "t1")):
        res = sipp_options(host, port, transport)
        assert res.ok, str(res)
        assert "Allow:" in res.logs and "application/sdp" in res.logs, res.logs
    for host, transport in (("127.0.0.1", "udp"), ("::1", "tcp")):
        resp = sip_request(host, port, transport)
        assert resp.status == 200, resp.raw
        assert "OPTIONS" in resp.tokens("Allow"), resp.raw
        assert "APPLICATION/SDP" in resp.tokens("Accept"), resp.raw
    # REGISTER: 405 with Allow; an unknown method: 501.
    for host, transport in (("127.0.0.1", "u1"), ("::1", "t1")):
        res = sipp_request(host, port, transport, "REGISTER", 405)
        assert res.ok, str(res)
        res = sipp_request(host, port, transport, "FROBNICATE", 501)
        assert res.ok, str(res)
    resp = sip_request("::1", port, "udp", "REGISTER")
    assert resp.status == 405 and resp.header("Allow"), resp.raw
    assert "REGISTER" not in resp.tokens("Allow"), resp.raw
    assert sip_request("127.0.0.1", port, "tcp", "FROBNICATE").status == 501


# --------------------------------------------------------------------------
# (11) idle CPU


def test_idle_cpu(running):
    """Once its start-up work is done (umservice synthesises its ~40 fixed
    prompts on its TTS thread, slowly under sanitizers), a process with
    nothing to do uses no CPU: some 3 s window within 15 s must show
    < 0.05 CPU s for each daemon; a poller never gets there."""
    env = running
    router, service = env.daemons
    time.sleep(0.5)
    windows = []
    for _ in range(5):
        before = {d.name: proc_cpu_seconds(d.pid) for d in (router, service)}
        time.sleep(3.0)
        after = {d.name: proc_cpu_seconds(d.pid) for d in (router, service)}
        used = {k: round(after[k] - before[k], 3) for k in before}
        windows.append(used)
        if all(v < 0.05 for v in used.values()):
            break
    assert all(v < 0.05 for v in windows[-1].values()), \
        f"CPU seconds used in each 3 s idle window: {windows}"
