"""Play on Phone (issue 6, point 5) process tests with real peers.

`umctl play-on-phone --mailbox 1001 --message ID --to NUMBER` goes to the
router, which hands it to the UM service; the service calls NUMBER through
an Enabled, OutcallsAllowed UM IP gateway of the mailbox's dial plan, plays
the message when the phone answers, and hangs up; umctl prints the outcome.

One deposit is shared by the module (the greeting alone takes ~12 s): a
SIPp PBX leaves 4 s of tone bursts (SEQ) in mailbox 1001. The default
gateways (127.0.0.1 and ::1 on port 5060) get OutcallsAllowed false; each
test sets up its own gateway toward its own peer and removes it again:

  - a baresip phone (auto-answer) on 127.0.0.1 and on ::1: it must hear the
    tone bursts in order, the call must end with our BYE, umctl exit 0;
  - an unknown message id, a gateway without OutcallsAllowed, a SIPp
    gateway answering 486, a gateway address nobody listens on, the phone
    hanging up in the middle, a phone that never answers (CANCEL after the
    ring time, 4 s here), the gateway disabled with --drop-calls during the
    message, and a router without any UM service: each fails quickly with
    the reason in one line and exit status 1.

Only 127.0.0.1 and ::1 are used. Run with:
    /usr/bin/python3 -m pytest tests/e2e/test_play_on_phone.py
"""

import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

import audio
import ipcwire
from conftest import SIPP_BYE, SIPP, SIPP_DIR, Blackhole, Env, free_port, free_port_block, hostport, tcp_connect_refused, wait_for
from phone import Phone, SippUas, assert_heard, outcall_gateway, play_on_phone, remove_gateway

MAILBOX = "1001"
PILOT = "8000"                 # neither the access number nor a mailbox
SEQ = [700, 1100, 1500, 1900]  # the message: these bursts, twice (4 s)
G711A = True
WAIT_GREETING_MS = 13000       # greeting + tone (~12.3 s measured)
DEPOSIT_TIMEOUT = 60
RING_S = 4                     # umservice --pop-ring-timeout for this module
FAST = 5.0                     # a refusal that involves no ringing, in s


# --------------------------------------------------------------------------
# the shared world: router, one UM service, one message


class World:
    def __init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="openum-pop-"))
        self.env = Env(self.base)
        self.msg = None
        self.peers = []
        self.problems = []
        self.n = 0

    def workdir(self, tag):
        self.n += 1
        d = self.base / f"{self.n:02d}-{tag}"
        d.mkdir()
        return d

    @property
    def service(self):
        return [d for d in self.env.daemons if d.name == "umservice"][-1]

    def service_log(self):
        return self.service.log()

    def close(self):
        for p in self.peers:
            try:
                p.stop()
            except Exception as e:          # everything must stop
                self.problems.append(f"stopping {p}: {e}")
        try:
            self.problems += self.env.stop_all()
        finally:
            self.env.kill_all()


def deposit(env, workdir, samples, host="127.0.0.1"):
    """One call from a SIPp PBX (pilot + Diversion 1001) through the
    router's 302 that leaves `samples` as the message, then BYE."""
    d = Path(workdir) / "caller"
    d.mkdir()
    pcap = d / "message.pcap"
    audio.write_rtp_pcap(pcap, samples, alaw=G711A)
    text = (SIPP_DIR / "deposit.xml").read_text()
    for k, v in {"@RUSER@": PILOT, "@DIVERSION@": MAILBOX, "@PROTO@": "udp",
                 "@WAIT_GREETING@": str(WAIT_GREETING_MS), "@AUDIO@": str(pcap),
                 "@AUDIO_MS@": str(len(samples) // 8 + 300),
                 "@ENDING@": SIPP_BYE}.items():
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


@pytest.fixture(scope="module")
def world():
    w = World()
    env = w.env
    ok = False
    try:
        # The default gateways point at port 5060: never an outcall target
        # (nor a NOTIFY target: nothing listens there).
        for gw in ("loopback", "loopback6"):
            env.umctl_ok("set-umipgateway", "--identity", gw, "--outcalls-allowed", "false",
                         "--message-waiting-indicator-allowed", "false")
        # A new gateway gets one OPTIONS ping at once, then none for an
        # hour: the SIPp gateways below start after that ping.
        env.umctl_ok("set-umservice", "--gateway-ping-interval", "3600")
        r = env.start_router(wait=False)
        env.wait_router(r, timeout=20)
        s = env.start_service(wait=False, extra=("--pop-ring-timeout", str(RING_S)))
        env.wait_instance("e2e-1", port=env.service_port, daemon=s, timeout=20)
        rc, rep = deposit(env, w.base, audio.bursts(SEQ, repeat=2))
        assert rc == 0, f"the deposit call failed:\n{rep}\n{env.report()}"
        msgs = wait_for(lambda: [m for m in env.get("get-voicemail", "--mailbox", MAILBOX)
                                 if m["State"] == "new"], 15, 0.2, "the message")
        assert len(msgs) == 1, msgs
        w.msg = msgs[0]
        assert 3500 <= w.msg["DurationMs"] <= 5500, w.msg
        ok = True
        yield w
    finally:
        if not ok:
            print(env.report())
        w.close()
        if ok and not w.problems:
            shutil.rmtree(w.base, ignore_errors=True)
        else:
            print(f"\n[kept {w.base}]")
        if w.problems:
            pytest.fail("daemons did not stop cleanly:\n" + "\n".join(w.problems),
                        pytrace=False)


@pytest.fixture
def world_report(world, request):
    """Adds the daemons' logs and the peers' to a failure report."""
    request.node._openum_env = world.env
    return world


def result_lines(w, request_id=None):
    """umservice's one log line per Play on Phone request."""
    return [line for line in w.service_log().splitlines()
            if "Play on Phone request" in line and "(asked through the router)" in line]


def _play_in_background(env, *args):
    box = {}

    def run():
        box["r"] = play_on_phone(env, *args)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def sipp_gateway(w, tag, name, host, port, af, **kw):
    """A gateway toward a SIPp UAS that only knows calls: the UAS starts
    after the UM service's first OPTIONS ping to the new gateway has failed
    (nothing listened yet), so the only request it sees is our INVITE."""
    env = w.env
    outcall_gateway(env, name, host, port, af=af)
    wait_for(lambda: f"event 1400: UM IP gateway {name} (" in w.service_log(), 5, 0.05,
             f"the first OPTIONS ping to {name}")
    uas = SippUas(w.workdir(tag), host, port, **kw).start()
    w.peers.append(uas)
    return uas


def assert_invite(text, family, host):
    """Our INVITE: over TCP, from the mailbox, with an SDP offer of PCMU,
    PCMA and telephone-event whose c= is of the family and has no
    brackets."""
    assert text, "SIPp logged no INVITE"
    head, _, body = text.partition("\n\n")
    headers = {}
    for line in head.splitlines()[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), v.strip())
    assert headers.get("via", "").startswith("SIP/2.0/TCP "), text
    assert re.match(rf"^\"OpenUM Play on Phone\" <sip:{MAILBOX}@", headers.get("from", "")), text
    assert ";tag=" in headers.get("from", ""), text
    assert headers.get("content-type") == "application/sdp", text
    assert ";transport=tcp>" in headers.get("contact", ""), text
    ip = "IP6" if family == "IPv6" else "IP4"
    assert f"c=IN {ip} {host}\n" in body + "\n", body
    assert re.search(r"(?m)^m=audio \d+ RTP/AVP 0 8 101$", body), body
    assert "a=rtpmap:101 telephone-event/8000" in body and "a=sendrecv" in body, body


def assert_failed(r, data, reason_re, took, within):
    assert r.rc == 1, str(r)
    assert data is not None and data["Ok"] is False, str(r)
    assert re.search(reason_re, data["Reason"]), \
        f"reason {data['Reason']!r} does not match {reason_re!r}"
    assert took <= within, f"umctl took {took:.1f} s (want <= {within} s): {r}"


# --------------------------------------------------------------------------
# played to a phone


@pytest.mark.parametrize("family,host,af", [("IPv4", "127.0.0.1", "IPv4Only"),
                                            ("IPv6", "::1", "Any")])
def test_phone_hears_the_message(world_report, family, host, af):
    """baresip answers; it hears the message's tone bursts in order; our BYE
    ends the call; umctl says what was played, where, for how long."""
    w, env = world_report, world_report.env
    number = "5550101" if family == "IPv4" else "+15550102"
    gw = f"pop-{family.lower()}"
    phone = Phone(w.workdir(f"phone-{family}"), host, number).start()
    w.peers.append(phone)
    outcall_gateway(env, gw, host, phone.sip_port, af=af)
    try:
        t0 = time.monotonic()
        r = env.umctl("play-on-phone", "--mailbox", MAILBOX, "--message", w.msg["Id"],
                      "--to", number, timeout=60)
        took = time.monotonic() - t0
        where = hostport(host, phone.sip_port)
        assert r.rc == 0, f"{r}\nphone events {phone.events()}\n{phone.log_tail()}"
        secs = w.msg["DurationMs"] / 1000
        m = re.fullmatch(rf"message {w.msg['Id']} of mailbox {MAILBOX} played to "
                         rf"{re.escape(number)} through gateway {gw} at "
                         rf"{re.escape(where)}: (\d+\.\d) s \(UM service e2e-1\)\n",
                         r.out)
        assert m, f"umctl's line: {r.out!r}"
        assert abs(float(m.group(1)) - secs) <= 0.2, (m.group(1), secs)
        assert r.err == "", r.err
        assert took <= secs + 8, f"umctl took {took:.1f} s for a {secs:.1f} s message"
        est = phone.wait_answered(2)
        closed = phone.wait_closed(5)
        # baresip did not hang up itself: the BYE was ours
        assert "end of file" not in str(closed.get("param")), closed
        assert closed["_t"] - est["_t"] >= secs - 0.3, \
            f"the call lasted {closed['_t'] - est['_t']:.1f} s of a {secs:.1f} s message"
        line = [x for x in result_lines(w) if f" to {number} via gateway {gw} " in x]
        assert line and f"at {where}: done: " in line[-1] and \
            "the call ended with our BYE (200)" in line[-1], \
            f"umservice's log line: {line}"
        assert "Play on Phone request" in env.daemons[0].log() and \
            f"to {number}, sent to UM service instance e2e-1" in env.daemons[0].log(), \
            "the router's log does not say who asked"
        heard = phone.heard()
        assert_heard(heard, SEQ + SEQ, f"the phone on {host}")
    finally:
        phone.stop()
        remove_gateway(env, gw)


# --------------------------------------------------------------------------
# refused before any call


def test_unknown_message_and_mailbox(world_report):
    w, env = world_report, world_report.env
    port = free_port()
    outcall_gateway(env, "pop-unused", "127.0.0.1", port, af="IPv4Only")
    try:
        bad = w.msg["Id"] + 1000
        r, data, took = play_on_phone(env, MAILBOX, bad, "5550103")
        assert_failed(r, data, rf"^message {bad} is not in mailbox {MAILBOX}$", took, FAST)
        r, data, took = play_on_phone(env, "1002", w.msg["Id"], "5550103")
        assert_failed(r, data, r"^mailbox 1002 is not an enabled UM mailbox of any "
                      r"dial plan$", took, FAST)
        r, data, took = play_on_phone(env, MAILBOX, w.msg["Id"], "5550103",
                                      dialplan="nosuchplan")
        assert_failed(r, data, r"^no UM dial plan nosuchplan$", took, FAST)
        # the text form: one line on stderr, nothing on stdout
        r = env.umctl("play-on-phone", "--mailbox", MAILBOX, "--message", bad,
                      "--to", "5550103")
        assert r.rc == 1 and r.out == "" and \
            r.err == f"umctl: play-on-phone: message {bad} is not in mailbox {MAILBOX}\n", str(r)
        # nothing was dialled
        assert not [x for x in w.service_log().splitlines() if "INVITE sip:5550103@" in x]
    finally:
        remove_gateway(env, "pop-unused")


def test_bad_arguments_never_reach_the_router(world_report):
    env = world_report.env
    for args, want in ((("--to", "555-0101"), "--to: "),
                       (("--to", "+"), "--to: "),
                       (("--to", "1" * 33), "longer than 32 digits"),
                       (("--to", "5550101", "--timeout", "0"), "--timeout: ")):
        r = env.umctl("play-on-phone", "--mailbox", MAILBOX, "--message", "1", *args)
        assert r.rc == 2 and want in r.err, str(r)
    r = env.umctl("play-on-phone", "--mailbox", MAILBOX, "--to", "5550101")
    assert r.rc == 2 and "--message is required" in r.err, str(r)


def test_gateway_without_outcalls(world_report):
    w, env = world_report, world_report.env
    phone = Phone(w.workdir("phone-nooutcalls"), "127.0.0.1", "5550104").start()
    w.peers.append(phone)
    outcall_gateway(env, "pop-nooutcalls", "127.0.0.1", phone.sip_port, af="IPv4Only",
                    outcalls=False)
    try:
        r, data, took = play_on_phone(env, MAILBOX, w.msg["Id"], "5550104")
        assert_failed(r, data, r"^no gateway of dial plan default allows outcalls$",
                      took, FAST)
        time.sleep(0.5)
        assert "CALL_INCOMING" not in phone.events() and \
            "CALL_ESTABLISHED" not in phone.events(), phone.events()
    finally:
        phone.stop()
        remove_gateway(env, "pop-nooutcalls")


def test_no_um_service():
    """The router answers at once when no instance can take the call."""
    base = tempfile.mkdtemp(prefix="openum-pop-noinst-")
    env = Env(base)
    try:
        env.start_router()
        r, data, took = play_on_phone(env, MAILBOX, 1, "5550105")
        assert_failed(r, data, r"^no UM service instance is accepting calls", took, 3)
        assert env.stop_all() == []
    finally:
        env.kill_all()
        shutil.rmtree(base, ignore_errors=True)


def test_router_relays_results_and_instance_loss():
    """The router's part, against a fake UM service instance on its IPC
    socket: the request arrives with a request_id and every field; the
    result goes back to the umctl that asked, with the instance id the
    router knows (not the one the instance claims); an instance that goes
    away mid-call gets umctl an answer at once."""
    base = tempfile.mkdtemp(prefix="openum-pop-relay-")
    env = Env(base)
    fake = None
    try:
        env.start_router()
        fake = ipcwire.IpcClient(env.sock)
        fake.send(ipcwire.hello_umservice(4242))
        fake.send(ipcwire.service_register("fake-1"))
        assert fake.read().body_field == ipcwire.HELLO
        wait_for(lambda: env.find_instance(env.status(), "fake-1"), 5,
                 what="the fake instance registered")

        t, box = _play_in_background(env, MAILBOX, 77, "+15550111", "default")
        req = fake.read(timeout=5)
        assert req.body_field == ipcwire.PLAY_ON_PHONE_REQUEST, req
        rid = req.body[1][0]
        assert rid > 0 and req.body[2] == [b"default"] and req.body[3] == [b"1001"] and \
            req.body[4] == [77] and req.body[5] == [b"+15550111"], req
        fake.send(ipcwire.play_on_phone_result(rid, True, "played to the end", 200, "gwx",
                                               "127.0.0.1:5999", 4200, "spoofed"))
        t.join(10)
        r, data, took = box["r"]
        assert r.rc == 0 and data["Ok"] is True, str(r)
        assert data["Instance"] == "fake-1" and data["Gateway"] == "gwx" and \
            data["Address"] == "127.0.0.1:5999" and data["PlayedMs"] == 4200, data

        t, box = _play_in_background(env, MAILBOX, 78, "5550112")
        req = fake.read(timeout=5)
        assert req.body_field == ipcwire.PLAY_ON_PHONE_REQUEST, req
        fake.close()
        fake = None
        t.join(5)
        assert not t.is_alive(), "umctl still waiting after the instance went away"
        r, data, took = box["r"]
        assert_failed(r, data, r"^UM service instance fake-1 went away before the call "
                      r"ended$", took, 5)
        assert env.stop_all() == []
    finally:
        if fake:
            fake.close()
        env.kill_all()
        shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------
# the gateway or the phone says no


def test_busy_486(world_report):
    w, env = world_report, world_report.env
    port = free_port()
    uas = sipp_gateway(w, "busy", "pop-busy", "127.0.0.1", port, "IPv4Only",
                       status="486 Busy Here")
    try:
        r, data, took = play_on_phone(env, MAILBOX, w.msg["Id"], "5550106")
        assert_failed(r, data, rf"^486 Busy Here from gateway pop-busy at 127\.0\.0\.1:{port}$",
                      took, FAST)
        assert data["SipStatus"] == 486 and data["PlayedMs"] == 0, data
        assert uas.wait(5) == 0, f"SIPp did not see the ACK:\n{uas.report()}"
        reqs = uas.requests()
        assert reqs and reqs[0] == f"INVITE sip:5550106@127.0.0.1:{port} SIP/2.0", reqs
        assert_invite(uas.received("INVITE"), "IPv4", "127.0.0.1")
    finally:
        uas.stop()
        remove_gateway(env, "pop-busy")


def up_refusing_gateway(w, tag, name, port, status):
    """A gateway toward a SIPp that answers the first OPTIONS ping (so the
    gateway is Up) and refuses the call with status."""
    uas = SippUas(w.workdir(tag), "127.0.0.1", port, status=status, calls=2).start()
    w.peers.append(uas)
    outcall_gateway(w.env, name, "127.0.0.1", port, af="IPv4Only")
    wait_for(lambda: f"UM IP gateway {name} (127.0.0.1) answers SIP OPTIONS" in
             w.service_log(), 10, 0.05, f"{name} to answer its OPTIONS ping")
    return uas


def test_next_gateway_after_gateway_failure(world_report):
    """The dial plan's gateways are tried in name order: pop-f1 (up)
    answers the INVITE with 503 (the gateway failed), so the call goes
    through pop-f2, a phone, which hears the message. A callee's refusal
    (486) is not a gateway failure: no next gateway then."""
    w, env = world_report, world_report.env
    port = free_port()
    phone = Phone(w.workdir("phone-f2"), "127.0.0.1", "5550120").start()
    w.peers.append(phone)
    uas = up_refusing_gateway(w, "f503", "pop-f1", port, "503 Service Unavailable")
    outcall_gateway(env, "pop-f2", "127.0.0.1", phone.sip_port, af="IPv4Only")
    try:
        r, data, took = play_on_phone(env, MAILBOX, w.msg["Id"], "5550120")
        assert r.rc == 0, f"{r}\n{phone.log_tail()}"
        assert data["Gateway"] == "pop-f2", data
        assert uas.wait(5) == 0, f"SIPp did not see the ACK:\n{uas.report()}"
        assert re.search(rf"503 Service Unavailable from gateway pop-f1 at 127\.0\.0\.1:{port}; "
                         r"trying the dial plan's next gateway", w.service_log()), \
            w.service_log()[-3000:]
        assert_heard(phone.heard(), SEQ + SEQ, "the phone behind the second gateway")
    finally:
        uas.stop()
        remove_gateway(env, "pop-f1")
    port = free_port()
    uas = up_refusing_gateway(w, "f486", "pop-f1", port, "486 Busy Here")
    try:
        r, data, took = play_on_phone(env, MAILBOX, w.msg["Id"], "5550121")
        assert_failed(r, data, rf"^486 Busy Here from gateway pop-f1 at 127\.0\.0\.1:{port}$",
                      took, FAST)
        assert "5550121" not in phone.log_tail(200), "the 486 went on to the next gateway"
    finally:
        uas.stop()
        phone.stop()
        remove_gateway(env, "pop-f1")
        remove_gateway(env, "pop-f2")


def test_down_gateway_tried_last(world_report):
    """pop-h1 comes first by name but its address blackholes: its OPTIONS
    ping went unanswered, so the request goes to pop-h2 (a phone) first and
    is played at once, not after a connect round's 10 s on pop-h1."""
    w, env = world_report, world_report.env
    port = free_port()
    hole = Blackhole("127.0.0.5", port)
    phone = Phone(w.workdir("phone-h2"), "127.0.0.1", "5550130").start()
    w.peers.append(phone)
    try:
        outcall_gateway(env, "pop-h1", "127.0.0.5", port, af="IPv4Only")
        wait_for(lambda: "event 1400: UM IP gateway pop-h1 (" in w.service_log(), 15, 0.1,
                 "the ping of pop-h1 to go unanswered")
        outcall_gateway(env, "pop-h2", "127.0.0.1", phone.sip_port, af="IPv4Only")
        r, data, took = play_on_phone(env, MAILBOX, w.msg["Id"], "5550130")
        assert r.rc == 0, f"{r}\n{phone.log_tail()}"
        assert data["Gateway"] == "pop-h2", data
        secs = w.msg["DurationMs"] / 1000
        assert took <= secs + 4, f"umctl took {took:.1f} s for a {secs:.1f} s message"
        assert "gateway pop-h1 is down (no answer to OPTIONS): tried after the others" \
            in w.service_log()
    finally:
        phone.stop()
        hole.close()
        remove_gateway(env, "pop-h1")
        remove_gateway(env, "pop-h2")


def test_nobody_listening(world_report):
    w, env = world_report, world_report.env
    port = free_port()
    assert tcp_connect_refused("127.0.0.1", port)
    outcall_gateway(env, "pop-dead", "127.0.0.1", port, af="IPv4Only")
    try:
        r, data, took = play_on_phone(env, MAILBOX, w.msg["Id"], "5550107")
        assert_failed(r, data, r"^gateway pop-dead \(127\.0\.0\.1\): every address failed "
                      r"to connect: .*refused", took, 3)
        # The address is on the bad-address list now; with no other address
        # the policy tries it anyway: as quick, as clear.
        r, data, took = play_on_phone(env, MAILBOX, w.msg["Id"], "5550107")
        assert_failed(r, data, r"^gateway pop-dead \(127\.0\.0\.1\): every address "
                      r"(failed to connect: .*refused|is on the bad-address list)", took, 2)
    finally:
        remove_gateway(env, "pop-dead")


def test_no_answer_is_cancelled(world_report):
    """A phone that only rings: after the ring time (4 s in this module)
    umservice sends CANCEL and reports it."""
    w, env = world_report, world_report.env
    port = free_port()
    uas = sipp_gateway(w, "ring", "pop-ring", "::1", port, "IPv6Only", ring=True)
    try:
        r, data, took = play_on_phone(env, MAILBOX, w.msg["Id"], "5550108")
        assert_failed(r, data, rf"^no answer within {RING_S} s$", took, RING_S + 3)
        assert took >= RING_S - 0.5, f"cancelled after {took:.1f} s"
        assert data["Address"] == f"[::1]:{port}", data
        assert uas.wait(5) == 0, f"SIPp did not see CANCEL and ACK:\n{uas.report()}"
        assert [q.split()[0] for q in uas.requests()] == ["INVITE", "CANCEL", "ACK"], \
            uas.requests()
        assert_invite(uas.received("INVITE"), "IPv6", "::1")
    finally:
        uas.stop()
        remove_gateway(env, "pop-ring")


def test_phone_hangs_up_mid_play(world_report):
    w, env = world_report, world_report.env
    phone = Phone(w.workdir("phone-hangup"), "127.0.0.1", "5550109").start()
    w.peers.append(phone)
    outcall_gateway(env, "pop-hangup", "127.0.0.1", phone.sip_port, af="IPv4Only")
    try:
        t, box = _play_in_background(env, MAILBOX, w.msg["Id"], "5550109")
        phone.wait_answered(10)
        time.sleep(1.5)
        phone.hangup()
        t.join(10)
        assert not t.is_alive(), "umctl still waiting 10 s after the phone hung up"
        r, data, took = box["r"]
        assert_failed(r, data, r"^the phone hung up after \d+\.\d s", took, 10)
        secs = float(re.search(r"after (\d+\.\d) s", data["Reason"]).group(1))
        assert 1.0 <= secs <= 3.0, data
        assert 800 <= data["PlayedMs"] <= 3000, data
    finally:
        phone.stop()
        remove_gateway(env, "pop-hangup")


def test_drop_calls_ends_play(world_report):
    """set-umipgateway --status Disabled --drop-calls ends a Play on Phone
    call through that gateway (BYE) and umctl says why."""
    w, env = world_report, world_report.env
    phone = Phone(w.workdir("phone-drop"), "127.0.0.1", "5550110").start()
    w.peers.append(phone)
    outcall_gateway(env, "pop-drop", "127.0.0.1", phone.sip_port, af="IPv4Only")
    try:
        t, box = _play_in_background(env, MAILBOX, w.msg["Id"], "5550110")
        est = phone.wait_answered(10)
        time.sleep(1.0)
        env.umctl_ok("set-umipgateway", "--identity", "pop-drop", "--status", "Disabled",
                     "--drop-calls")
        closed = phone.wait_closed(5)
        t.join(10)
        assert not t.is_alive()
        r, data, took = box["r"]
        assert_failed(r, data, r"^gateway pop-drop was disabled with --drop-calls after "
                      r"\d+\.\d s of the message$", took, 10)
        assert closed["_t"] - est["_t"] < w.msg["DurationMs"] / 1000 - 0.5, \
            "the call was not cut short"
    finally:
        phone.stop()
        remove_gateway(env, "pop-drop")


def test_service_stopping_mid_play(world_report):
    """SIGTERM during the message: umservice hangs up (BYE), umctl hears
    why at once, and umservice exits cleanly; then it is started again for
    the tests after this one."""
    w, env = world_report, world_report.env
    phone = Phone(w.workdir("phone-stop"), "127.0.0.1", "5550113").start()
    w.peers.append(phone)
    outcall_gateway(env, "pop-stop", "127.0.0.1", phone.sip_port, af="IPv4Only")
    try:
        t, box = _play_in_background(env, MAILBOX, w.msg["Id"], "5550113")
        phone.wait_answered(10)
        time.sleep(1.0)
        svc = w.service
        svc.send_signal(signal.SIGTERM)
        closed = phone.wait_closed(5)
        assert "end of file" not in str(closed.get("param")), closed
        assert svc.wait(10) == 0, f"umservice exit {svc.proc.returncode}\n{svc.tail()}"
        t.join(10)
        assert not t.is_alive(), "umctl still waiting after umservice stopped"
        r, data, took = box["r"]
        assert_failed(r, data, r"^(the UM service is stopping after \d+\.\d s of the "
                      r"message|UM service instance e2e-1 went away before the call "
                      r"ended)$", took, 10)
    finally:
        phone.stop()
        s = env.start_service(wait=False, extra=("--pop-ring-timeout", str(RING_S)))
        env.wait_instance("e2e-1", port=env.service_port, daemon=s, timeout=20)
        remove_gateway(env, "pop-stop")
