"""Issue 3 (call router) process tests: trusted peers, classification, the
choice of UM service instance, 302 with a one-time token, the other
methods, hostile input, DNS names of gateways, the protocol log.

Real daemons from build/, real SIP peers: SIPp (sipp/invite.xml) and a raw
SIP client over UDP and TCP, 127.0.0.1 and ::1; dnsmasq on loopback for
FQDN gateways. Every wait is bounded; every process started here is
stopped here.

The default directory: gateways `loopback` (127.0.0.1) and `loopback6`
(::1), IPAddressFamily Any, linked by hunt groups with an empty pilot to
dial plan `default` (4-digit extensions, subscriber access number 5000);
mailbox 1001.
"""

import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

import ipcwire
from dnsmasq import Dnsmasq
from conftest import (LOOPBACK, SIPP, SIPP_DIR, Env, SipResponse, free_port, hostport,
                      sipp_options, sipp_request, wait_for)

PILOT = "8000"          # a called number that is neither 5000 nor a mailbox
ACCESS = "5000"         # the default dial plan's subscriber access number
MAILBOX = "1001"        # the default mailbox
TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")
CONTACT_RE = re.compile(
    r"^<sip:(?P<user>[^@>;]*)@(?P<host>\[[0-9A-Fa-f:.]+\]|[^:;>\[\]]+):(?P<port>\d+)"
    r"(?P<params>(?:;[^>]*)?)>$")

# (family, transport) combinations: ids for parametrize.
COMBOS = [("IPv4", "udp"), ("IPv4", "tcp"), ("IPv6", "udp"), ("IPv6", "tcp")]
COMBO_IDS = [f"{'v4' if f == 'IPv4' else 'v6'}-{t}" for f, t in COMBOS]
SIPP_T = {"udp": "u1", "tcp": "t1"}
BRACKETED = {"IPv4": "127.0.0.1", "IPv6": "[::1]"}
GATEWAY_OF = {"IPv4": "loopback", "IPv6": "loopback6"}



# --------------------------------------------------------------------------
# Contact of a 302


class Contact:
    """The parsed Contact of a 302 from the router."""

    def __init__(self, value):
        self.value = value
        m = CONTACT_RE.match(value or "")
        assert m, f"Contact not of the form <sip:user@host:port;params>: {value!r}"
        self.user = m.group("user")
        self.host = m.group("host")               # IPv6 with brackets
        self.port = int(m.group("port"))
        self.params = {}
        for p in m.group("params").split(";")[1:]:
            k, _, v = p.partition("=")
            self.params[k.lower()] = v
        self.transport = self.params.get("transport")
        self.token = self.params.get("umtoken")

    @property
    def bare_host(self):
        return self.host.strip("[]")

    @property
    def family(self):
        return "IPv6" if self.host.startswith("[") else "IPv4"

    def check(self, family, transport, port=None, user=None):
        """The Contact is the instance's endpoint in the family and on the
        transport of the INVITE, with a 32-hex token."""
        want_host = BRACKETED[family]
        assert self.host == want_host, \
            f"Contact host {self.host} for an INVITE over {family} (want {want_host}): {self.value}"
        assert self.transport == transport, \
            f"transport={self.transport} for an INVITE over {transport}: {self.value}"
        assert self.token and TOKEN_RE.match(self.token), \
            f"no 32-hex umtoken: {self.value}"
        if port is not None:
            assert self.port == port, f"Contact port {self.port}, want {port}: {self.value}"
        if user is not None:
            assert self.user == user, f"Contact user {self.user}, want {user}: {self.value}"
        return self


# --------------------------------------------------------------------------
# SIPp INVITE


def _split_sipp_messages(text):
    """(direction, message) pairs from a SIPp -trace_msg file."""
    out = []
    for block in re.split(r"(?m)^-{20,}[^\n]*\n", text):
        m = re.match(r"\s*(UDP|TCP)\s+message\s+(sent|received)[^\n]*\n\n?", block)
        if not m:
            continue
        msg = block[m.end():].lstrip("\r\n")
        out.append((m.group(2), msg.replace("\r\n", "\n").replace("\n", "\r\n")))
    return out


class SippCall:
    def __init__(self, argv, rc, output, messages, errors):
        self.argv, self.rc, self.output = argv, rc, output
        self.messages, self.errors = messages, errors

    @property
    def ok(self):
        return self.rc == 0

    @property
    def responses(self):
        out = []
        for d, m in self.messages:
            if d == "received" and m.startswith("SIP/2.0 "):
                out.append(SipResponse(m))
        return out

    @property
    def call_id(self):
        for d, m in self.messages:
            if d == "sent":
                hit = re.search(r"(?im)^call-id:\s*(\S+)", m)
                if hit:
                    return hit.group(1)
        return None

    @property
    def local_port(self):
        return int(self.argv[self.argv.index("-p") + 1])

    @property
    def final(self):
        """The last final response received (SipResponse) or None."""
        finals = [r for r in self.responses if r.status >= 200]
        return finals[-1] if finals else None

    @property
    def contact(self):
        f = self.final
        assert f is not None and f.status == 302, f"no 302: {self}"
        return Contact(f.header("contact"))

    def __str__(self):
        tail = "\n".join(self.output.splitlines()[-15:])
        msgs = "\n".join(f"--- {d}\n{m[:1500]}" for d, m in self.messages[-6:])
        return (f"sipp exit {self.rc}: {' '.join(self.argv)}\n{tail}\n{msgs}\n"
                f"{self.errors[-2000:]}")


# SIPp actions on a 302: the Contact carries a token (checked by SIPp too).
ACTIONS_302 = """\
    <action>
      <ereg regexp="umtoken=([0-9a-f]{32})" search_in="hdr" header="Contact:"
            check_it="true" assign_to="whole,token"/>
      <log message="302 Contact token [$token] in [$whole]"/>
    </action>"""


def sipp_invite(host, port, transport="udp", ruser=PILOT, headers=(), expect=302,
                local_ip=None, pause_ms=0, timeout=5, calls=1, rate=None):
    """One INVITE (with SDP) from SIPp on local_ip (default: host, i.e.
    127.0.0.1 or ::1) to host:port over udp/tcp, expecting the final status
    `expect`, then ACK and a pause of pause_ms during which any further
    message fails the call. Returns a SippCall (rc 0 = as expected) with
    the messages exchanged."""
    work = Path(tempfile.mkdtemp(prefix="openum-sipp-"))
    try:
        hdrs = "\n".join(f"      {h}" for h in headers)
        text = (SIPP_DIR / "invite.xml").read_text()
        text = (text.replace("@RUSER@", ruser).replace("@HEADERS@\n", hdrs + "\n" if hdrs else "")
                .replace("@STATUS@", str(expect)).replace("@PAUSE@", str(pause_ms))
                .replace("@ACTIONS@", ACTIONS_302 if int(expect) == 302 else ""))
        scen = work / "invite.xml"
        scen.write_text(text)
        argv = [SIPP, "-sf", str(scen), "-t", SIPP_T[transport], "-i", local_ip or host,
                "-p", str(free_port()), "-m", str(calls), "-timeout", f"{timeout}s",
                "-timeout_error", "-nostdin", "-trace_err", "-error_file",
                str(work / "errors.log")]
        if calls == 1:
            argv += ["-trace_msg", "-message_file", str(work / "messages.log"),
                     "-trace_logs", "-log_file", str(work / "logs.log")]
        else:
            argv += ["-r", str(rate or calls), "-l", str(calls)]
        argv.append(hostport(host, port))
        try:
            r = subprocess.run(argv, cwd=work, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, errors="replace",
                               timeout=timeout + 10)
            rc, output = r.returncode, r.stdout + r.stderr
        except subprocess.TimeoutExpired as e:
            rc, output = -999, f"sipp did not exit: {e}"

        def read(name):
            p = work / name
            return p.read_text(errors="replace") if p.exists() else ""
        return SippCall(argv, rc, output, _split_sipp_messages(read("messages.log")),
                        read("errors.log") + read("logs.log"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def routed(env, family="IPv4", transport="udp", ruser=PILOT, headers=(), **kw):
    """SIPp INVITE to the router expecting 302; returns the checked Contact."""
    host = LOOPBACK[family]
    call = sipp_invite(host, env.router_port, transport, ruser, headers, 302, **kw)
    assert call.ok, str(call)
    return call.contact.check(family, transport)


def final_status(env, family="IPv4", transport="udp", ruser=PILOT, headers=(), local_ip=None,
                 expect=302):
    """The status of the router's final answer to a SIPp INVITE (None when
    there was none); expect is only SIPp's guess, a mismatch is no error."""
    call = sipp_invite(LOOPBACK[family], env.router_port, transport, ruser, headers,
                       expect, local_ip=local_ip, timeout=2)
    f = call.final
    return f.status if f else None


# --------------------------------------------------------------------------
# raw SIP


def new_branch():
    return "z9hG4bK" + uuid.uuid4().hex


def sdp_offer(host, rtp_port):
    ip = "IP6" if ":" in host else "IP4"
    return ("v=0\r\n"
            f"o=e2e 1 1 IN {ip} {host}\r\n"
            "s=-\r\n"
            f"c=IN {ip} {host}\r\n"
            "t=0 0\r\n"
            f"m=audio {rtp_port} RTP/AVP 0 8 101\r\n"
            "a=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:8 PCMA/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\n"
            "a=fmtp:101 0-15\r\n"
            "a=sendrecv\r\n")


class RawSip:
    """A hand-driven SIP client on one socket (UDP, or one TCP connection)
    from `host` (127.0.0.1 or ::1) to `host:port` of the peer.

    strict (default): the UDP socket is connected to the peer, so only
    answers from exactly the address and port the request went to arrive;
    TCP answers must come on the connection the request went on.
    lenient: UDP answers from any source are taken (and their source kept
    in .sources); for TCP the Via names a separate listening port of ours
    and answers arriving on a new connection there are taken too (their
    origin is kept in .sources as ("new connection", addr))."""

    def __init__(self, host, port, transport="udp", strict=True, local_ip=None, timeout=2.0):
        self.host, self.port, self.transport, self.strict = host, port, transport, strict
        self.fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        typ = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        self.sock = socket.socket(self.fam, typ)
        self.sock.settimeout(timeout)
        self.listener = None
        self.accepted = []
        self.sources = []
        self.buf = b""
        self.pending = []          # responses parsed but not yet returned
        self.closed_by_peer = False
        try:
            self.sock.bind((local_ip or host, 0))
            if transport == "tcp" or strict:
                self.sock.connect((host, port))
            self.lhost, self.lport = self.sock.getsockname()[:2]
            self.via_port = self.lport
            if transport == "tcp" and not strict:
                self.listener = socket.socket(self.fam, socket.SOCK_STREAM)
                self.listener.bind((local_ip or host, 0))
                self.listener.listen(8)
                self.via_port = self.listener.getsockname()[1]
        except Exception:
            self.close()
            raise

    # addresses
    @property
    def local(self):
        return hostport(self.lhost, self.lport)

    @property
    def via_sent_by(self):
        return hostport(self.lhost, self.via_port)

    @property
    def remote(self):
        return hostport(self.host, self.port)

    def close(self):
        for s in [self.sock, self.listener, *self.accepted]:
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # sending
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        if self.transport == "udp" and not self.strict:
            self.sock.sendto(data, (self.host, self.port))
        else:
            self.sock.sendall(data)

    def request(self, method, ruri=None, call_id=None, branch=None, cseq=1,
                from_tag=None, to_tag=None, to_user=None, headers=(), body="",
                content_type="application/sdp", cseq_method=None, rport=True):
        """Builds and sends a request; returns its fields (dict) so that an
        ACK / CANCEL / BYE can be built from them."""
        ruri = ruri or f"sip:{PILOT}@{self.remote}"
        call_id = call_id or f"{uuid.uuid4().hex}@e2e"
        branch = branch or new_branch()
        from_tag = from_tag or uuid.uuid4().hex[:10]
        to_user = to_user or (ruri.split(":", 1)[1].split("@")[0] if "@" in ruri else "um")
        to = f"<sip:{to_user}@{self.remote}>" + (f";tag={to_tag}" if to_tag else "")
        lines = [
            f"{method} {ruri} SIP/2.0",
            f"Via: SIP/2.0/{self.transport.upper()} {self.via_sent_by};branch={branch}"
            + (";rport" if rport else ""),
            "Max-Forwards: 70",
            f"From: \"e2e\" <sip:4255550100@{self.local}>;tag={from_tag}",
            f"To: {to}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {cseq_method or method}",
            f"Contact: <sip:4255550100@{self.via_sent_by};transport={self.transport}>",
            "User-Agent: OpenUM-e2e-raw",
            *headers,
        ]
        if body:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body.encode())}")
        self.send("\r\n".join(lines) + "\r\n\r\n" + body)
        return dict(method=method, ruri=ruri, call_id=call_id, branch=branch, cseq=cseq,
                    from_tag=from_tag, to_user=to_user)

    # receiving
    def _frames_from(self, data):
        """Appends complete messages in the TCP stream to self.pending."""
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, rest = self.buf.split(b"\r\n\r\n", 1)
            m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
            clen = int(m.group(1)) if m else 0
            if len(rest) < clen:
                break
            self.buf = rest[clen:]
            self.pending.append((head + b"\r\n\r\n" + rest[:clen]).decode(errors="replace"))

    def recv_message(self, timeout=1.0):
        """The next message from the peer (text), or None after timeout."""
        deadline = time.monotonic() + timeout
        while not self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            watch = [self.sock] + ([self.listener] if self.listener else []) + self.accepted
            if self.closed_by_peer and self.sock in watch:
                watch.remove(self.sock)
            if not watch:
                time.sleep(min(left, 0.05))
                continue
            ready, _, _ = select.select(watch, [], [], left)
            for s in ready:
                if s is self.listener:
                    c, addr = self.listener.accept()
                    c.settimeout(1.0)
                    self.accepted.append(c)
                    self.sources.append(("new connection", addr[:2]))
                    continue
                if self.transport == "udp":
                    try:
                        data, addr = s.recvfrom(65535)
                    except ConnectionRefusedError:
                        continue
                    self.sources.append(("datagram", addr[:2]))
                    self.pending.append(data.decode(errors="replace"))
                    continue
                try:
                    data = s.recv(65535)
                except (ConnectionResetError, socket.timeout):
                    data = b""
                if not data:
                    if s is self.sock:
                        self.closed_by_peer = True
                    else:
                        self.accepted.remove(s)
                    continue
                self._frames_from(data)
        return self.pending.pop(0)

    def recv_response(self, timeout=1.0, final=True):
        """The next (final, unless final=False) response, as SipResponse with
        .body; requests from the peer are answered 200 (BYE) or skipped."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            text = self.recv_message(left)
            if text is None:
                return None
            if not text.startswith("SIP/2.0 "):
                continue
            r = SipResponse(text)
            r.body = text.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in text else ""
            if final and r.status < 200:
                continue
            return r


def ack_for(c, f, resp):
    """ACK of a non-2xx final answer: same branch, the answer's To tag."""
    to_tag = re.search(r";tag=([^;>\s]+)", resp.header("to") or "")
    c.request("ACK", ruri=f["ruri"], call_id=f["call_id"], branch=f["branch"],
              cseq=f["cseq"], from_tag=f["from_tag"],
              to_tag=to_tag.group(1) if to_tag else None, to_user=f["to_user"])


# --------------------------------------------------------------------------
# a call to the UM service with the token


class UmCall:
    """INVITE with SDP to a 302's Contact (strict raw client: answers must
    come back on the socket / connection the INVITE used)."""

    def __init__(self, contact, ruser=None):
        self.contact = contact
        host = contact.bare_host
        self.c = RawSip(host, contact.port, contact.transport, strict=True)
        self.rtp = socket.socket(self.c.fam, socket.SOCK_DGRAM)
        self.rtp.bind((host, 0))
        self.rtp.settimeout(0.2)
        self.responses = []
        self.final = None
        self.dialog = None
        self.ruri = contact.value.strip("<>")
        self.fields = self.c.request(
            "INVITE", ruri=self.ruri, to_user=ruser or contact.user,
            body=sdp_offer(host, self.rtp.getsockname()[1]))

    def wait_final(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.c.recv_response(deadline - time.monotonic(), final=False)
            if r is None:
                break
            self.responses.append(r)
            if r.status >= 200:
                self.final = r
                break
        return self.final

    @property
    def statuses(self):
        return [r.status for r in self.responses]

    def ack(self):
        """ACK of the final answer: for a 2xx a new transaction to the
        Contact of the 200 with its To tag; for others the INVITE's branch."""
        f, r = self.fields, self.final
        to_tag = re.search(r";tag=([^;>\s]+)", r.header("to") or "")
        to_tag = to_tag.group(1) if to_tag else None
        if r.status >= 300:
            self.c.request("ACK", ruri=f["ruri"], call_id=f["call_id"], branch=f["branch"],
                           cseq=f["cseq"], from_tag=f["from_tag"], to_tag=to_tag,
                           to_user=f["to_user"])
            return
        m = re.search(r"<([^>]+)>", r.header("contact") or "")
        target = m.group(1) if m else f["ruri"]
        self.dialog = dict(target=target, to_tag=to_tag)
        self.c.request("ACK", ruri=target, call_id=f["call_id"], cseq=f["cseq"],
                       from_tag=f["from_tag"], to_tag=to_tag, to_user=f["to_user"])

    def bye(self, timeout=3.0):
        """BYE in the dialog; returns the final answer to it."""
        f, d = self.fields, self.dialog
        b = self.c.request("BYE", ruri=d["target"], call_id=f["call_id"], cseq=f["cseq"] + 1,
                           from_tag=f["from_tag"], to_tag=d["to_tag"], to_user=f["to_user"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.c.recv_response(deadline - time.monotonic())
            if r is None:
                return None
            if (r.header("cseq") or "").upper().endswith("BYE") and \
                    r.header("call-id") == b["call_id"]:
                return r
        return None

    def close(self):
        self.c.close()
        self.rtp.close()


def answered(call):
    """The UM service took the token: a 2xx final answer (after 180)."""
    r = call.final
    return r is not None and 200 <= r.status < 300


def follow_302(contact, what="the UM service refused the token"):
    """Follows a 302 as a gateway does: INVITE to its Contact with the token,
    which the UM service must answer (2xx); then ACK, and BYE answered 200."""
    call = UmCall(contact)
    try:
        final = call.wait_final(5.0)
        assert answered(call), \
            (f"{what}: {final.status if final else None} "
             f"{final.reason if final else ''} {call.statuses}")
        call.ack()
        bye = call.bye()
        assert bye is not None and bye.status == 200, \
            f"BYE: {bye.status if bye else 'no answer'}"
    finally:
        call.close()


# --------------------------------------------------------------------------
# the router's log, the protocol log


def _inst(env, instance_id):
    return env.find_instance(env.status(), instance_id)


def router_of(env):
    return next(d for d in env.daemons if d.name == "umcallrouter" and d.alive())


def log_lines(daemon, needle):
    return [line for line in daemon.log().splitlines() if needle in line]


PLOG_HEAD = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?) (?P<dir>in|out) (?P<tr>udp|tcp) "
    r"local (?P<local>\S+) remote (?P<remote>\S+) (?P<len>\d+) bytes$")


def protolog_records(path):
    """[(header match, message text)] from a protocol log."""
    try:
        text = Path(path).read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return []
    recs, cur, body = [], None, []
    for line in text.split("\n"):
        m = PLOG_HEAD.match(line.rstrip("\r"))
        if m:
            if cur:
                recs.append((cur, "\n".join(body)))
            cur, body = m, []
        elif cur is not None:
            body.append(line)
    if cur:
        recs.append((cur, "\n".join(body)))
    return recs


# --------------------------------------------------------------------------
# dnsmasq on loopback


@pytest.fixture
def dns(env):
    d = Dnsmasq(env.base)
    yield d
    d.stop()


def use_fqdn_gateway(env, dns, af="Any", name="gwname", fqdn="pbx.example.test"):
    """Directory (router not yet running): DnsServers -> our dnsmasq, the
    two literal loopback gateways removed, one FQDN gateway linked to the
    default dial plan."""
    env.umctl_ok("set-umcallroutersettings", "--dns-servers", f"127.0.0.1:{dns.port}")
    for hg in ("loopback-default", "loopback6-default"):
        env.umctl_ok("remove-umhuntgroup", "--identity", hg)
    for gw in ("loopback", "loopback6"):
        env.umctl_ok("remove-umipgateway", "--identity", gw)
    env.umctl_ok("new-umipgateway", "--name", name, "--address", fqdn,
                 "--ip-address-family", af)
    env.umctl_ok("new-umhuntgroup", "--name", f"{name}-default", "--umipgateway", name,
                 "--umdialplan", "default")


# --------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def shared_env():
    """Router and one UM service instance shared by the tests that change
    nothing (classification, methods); stopped and checked at the end."""
    base = tempfile.mkdtemp(prefix="openum-e2e-router-")
    e = Env(base)
    try:
        e.start_router()
        e.start_service()
        yield e
    finally:
        problems = []
        try:
            problems = e.stop_all()
        finally:
            e.kill_all()
        if problems:
            print(f"\n[kept {base} for inspection]\n" + e.report())
        else:
            shutil.rmtree(base, ignore_errors=True)
        assert not problems, "daemons did not stop cleanly:\n" + "\n".join(problems)


@pytest.fixture
def shared(shared_env, request):
    request.node._openum_env = shared_env
    dead = [d for d in shared_env.daemons if not d.alive()]
    assert not dead, f"shared daemons died earlier: {[d.name for d in dead]}\n" + \
        shared_env.report()
    return shared_env


# --------------------------------------------------------------------------
# (1) Diversion -> 302 with a token the UM service takes, once


@pytest.mark.parametrize("family,transport", COMBOS, ids=COMBO_IDS)
def test_diversion_302_token_answered_once(running, family, transport):
    env = running
    div = [f"Diversion: <sip:{MAILBOX}@[local_ip]>;reason=no-answer;counter=1"]
    contact = routed(env, family, transport, PILOT, div)
    contact.check(family, transport, port=env.service_port, user=PILOT)

    call = UmCall(contact)
    try:
        final = call.wait_final(5.0)
        assert final is not None, \
            f"no final answer from the UM service to the token INVITE: {call.statuses}"
        assert answered(call), \
            f"the UM service did not answer the router's token: {call.statuses} {final.reason}"
        assert 180 in call.statuses, call.statuses
        call.ack()
        assert final.header("content-type") == "application/sdp", final.raw
        assert "m=audio" in final.body, final.body
        assert f"IN {'IP6' if family == 'IPv6' else 'IP4'} {LOOPBACK[family]}" in final.body, \
            f"SDP answer not in the call's family:\n{final.body}"

        # The same token again (new Call-ID): one-time, so 403.
        again = UmCall(contact)
        try:
            r = again.wait_final(5.0)
            assert r is not None and r.status == 403, \
                f"token reused: {r.status if r else None} {r.reason if r else ''}"
            again.ack()
        finally:
            again.close()

        # The UM service got the router's context with the token: the
        # mailbox the Diversion named.
        lines = [ln for ln in env.daemons[1].log().splitlines()
                 if call.fields["call_id"] in ln]
        assert any(MAILBOX in ln for ln in lines), \
            f"the UM service's log does not tie the call to {MAILBOX}:\n" + "\n".join(lines)
        bye = call.bye()
        assert bye is not None and bye.status == 200, \
            f"BYE: {bye.status if bye else 'no answer'}"
    finally:
        call.close()

    wait_for(lambda: _inst(env, "e2e-1")["active_calls"] == 0, 3,
             what="active_calls back to 0 after the BYE")
    assert _inst(env, "e2e-1")["calls_routed"] >= 1


def test_token_unknown_to_um_service_403(running):
    """A made-up token (well-formed, never routed) is refused."""
    env = running
    fake = Contact(f"<sip:{PILOT}@127.0.0.1:{env.service_port};transport=udp;"
                   f"umtoken={uuid.uuid4().hex}>")
    call = UmCall(fake)
    try:
        r = call.wait_final(5.0)
        assert r is not None and r.status == 403, r and r.raw
        call.ack()
    finally:
        call.close()


@pytest.mark.parametrize("family,transport", COMBOS, ids=COMBO_IDS)
def test_302_comes_back_the_way_the_invite_came(running, family, transport):
    """RFC 3261 18.2.2 / RFC 3581: the 302 goes back over the TCP connection
    the INVITE came on, and over UDP from the address and port the INVITE
    was sent to (a gateway or SBC drops anything else). A raw client that
    accepts nothing else. (An answer given at once, like the 404, does
    come back that way; the 302 is sent later, after the instance's ack.)"""
    env = running
    host = LOOPBACK[family]
    with RawSip(host, env.router_port, transport, strict=True) as c:
        c.request("INVITE", ruri=f"sip:1234@{c.remote}", body=sdp_offer(host, 40000))
        r = c.recv_response(2.0)
        assert r is not None and r.status == 404, "the 404 did not come back the same way"
        c.request("INVITE", ruri=f"sip:{MAILBOX}@{c.remote}", body=sdp_offer(host, 40000))
        r = c.recv_response(2.0)
    if r is None:
        # Where did it go? The same INVITE from a client that takes answers
        # from anywhere (UDP) or on a new connection to its Via port (TCP).
        with RawSip(host, env.router_port, transport, strict=False) as c2:
            c2.request("INVITE", ruri=f"sip:{MAILBOX}@{c2.remote}",
                       body=sdp_offer(host, 40000))
            r2 = c2.recv_response(2.0)
            seen = (f"{r2.status} {r2.reason} via {c2.sources}" if r2 else "nothing")
        pytest.fail(
            f"no answer on the {transport} socket the INVITE was sent from "
            f"({c.local} -> {c.remote}); a lenient client sending to "
            f"{c2.remote} got: {seen}; router log:\n{router_of(env).tail(4)}")
    assert r.status == 302, r.raw
    Contact(r.header("contact")).check(family, transport, port=env.service_port)


# --------------------------------------------------------------------------
# (2) classification


# name: (Request-URI user, extra headers, expected status, words the reason
# phrase of a non-302 must contain). A diversion naming 1002 (no mailbox)
# must give 404 naming 1002: that shows which entry the router took.
CLASSIFY = {
    "diversion": (PILOT, ["Diversion: <sip:1001@pbx.example.test>;reason=no-answer"], 302, ()),
    "diversion_no_mailbox": (
        PILOT, ["Diversion: <sip:1002@pbx.example.test>;reason=no-answer"], 404, ("1002",)),
    "diversion_topmost_wins": (
        PILOT, ["Diversion: <sip:1001@pbx.example.test>;reason=user-busy",
                "Diversion: <sip:1002@pbx.example.test>;reason=no-answer"], 302, ()),
    "diversion_topmost_no_mailbox": (
        PILOT, ["Diversion: <sip:1002@pbx.example.test>;reason=user-busy, "
                "<sip:1001@pbx.example.test>;reason=no-answer"], 404, ("1002",)),
    "diversion_e164_cut_to_4_digits": (
        PILOT, ["Diversion: <tel:+14255551001>;reason=unconditional"], 302, ()),
    "diversion_e164_other_number": (
        PILOT, ["Diversion: <tel:+14255551002>;reason=unconditional"], 404, ("1002",)),
    "diversion_beats_access_number": (
        ACCESS, ["Diversion: <sip:+14255551001@pbx.example.test;user=phone>"], 302, ()),
    # the one above would be 302 as subscriber access too: this one can
    # only be 404 if the Diversion is read before the access number
    "diversion_no_mailbox_beats_access_number": (
        ACCESS, ["Diversion: <sip:+14255551002@pbx.example.test;user=phone>"], 404, ("1002",)),
    "history_info": (
        PILOT, [f"History-Info: <sip:1001@pbx.example.test>;index=1, "
                f"<sip:{PILOT}@pbx.example.test?Reason=SIP%3Bcause%3D480>;index=1.1"], 302, ()),
    "history_info_no_mailbox": (
        PILOT, [f"History-Info: <sip:1002@pbx.example.test>;index=1, "
                f"<sip:{PILOT}@pbx.example.test?Reason=SIP%3Bcause%3D480>;index=1.1"],
        404, ("1002",)),
    "history_info_entry_before_pilot": (
        PILOT, ["History-Info: <sip:1002@pbx.example.test>;index=1",
                "History-Info: <sip:1001@pbx.example.test>;index=1.1",
                f"History-Info: <sip:{PILOT}@pbx.example.test>;index=1.1.1"], 302, ()),
    "subscriber_access": (ACCESS, [], 302, ()),
    "direct_to_voicemail": (MAILBOX, [], 302, ()),
    "unknown_extension": ("1234", [], 404, ("1234",)),
    "unknown_number": ("99999", [], 404, ("99999",)),
}


@pytest.mark.parametrize("family,transport", COMBOS, ids=COMBO_IDS)
@pytest.mark.parametrize("case", list(CLASSIFY))
def test_classification(shared, case, family, transport):
    env = shared
    ruser, headers, status, words = CLASSIFY[case]
    call = sipp_invite(LOOPBACK[family], env.router_port, transport, ruser, headers, status)
    got = call.final
    assert call.ok, str(call)
    assert got is not None and got.status == status, str(call)
    if status == 302:
        call.contact.check(family, transport, port=env.service_port, user=ruser)
    else:
        assert got.header("contact") is None, got.raw
        for w in words:
            assert w in got.reason, f"reason phrase {got.reason!r} does not name {w}"


def test_huntgroup_pilot_selects_dial_plan(running):
    """A second dial plan `sales` (5-digit extensions, access numbers 9000
    and +14255559000, mailbox 20001) reached through a hunt group of `loopback`
    with pilot 9000, added while running: calls to pilot 9000 from
    127.0.0.1 use `sales`, anything else the pilot-less hunt group's
    `default`; ::1 (gateway loopback6) has no pilot-9000 hunt group."""
    env = running
    env.umctl_ok("new-umdialplan", "--name", "sales", "--number-of-digits-in-extension", "5",
                 "--access-telephone-numbers", "9000,+14255559000")
    env.umctl_ok("enable-ummailbox", "--extension", "20001", "--display-name", "Sales Desk",
                 "--umdialplan", "sales", "--pin", "2468013579")
    env.umctl_ok("new-umhuntgroup", "--name", "loopback-sales", "--umipgateway", "loopback",
                 "--umdialplan", "sales", "--pilot-identifier", "9000")
    cases = [
        ("IPv4", "9000", ["Diversion: <tel:+14255520001>"], 302, ()),
        ("IPv4", "9000", ["Diversion: <sip:20001@pbx.example.test>"], 302, ()),
        ("IPv4", "9000", ["Diversion: <sip:1001@pbx.example.test>"], 404, ("sales",)),
        ("IPv4", "9000", [], 302, ()),                    # subscriber access (sales)
        ("IPv4", "+14255559000", [], 404, ("default",)),  # not the pilot: default
        ("IPv4", "8000", ["Diversion: <sip:1001@pbx.example.test>"], 302, ()),
        ("IPv4", "20001", [], 404, ("20001",)),
        ("IPv6", "9000", ["Diversion: <sip:20001@pbx.example.test>"], 404, ("default",)),
        ("IPv6", "9000", ["Diversion: <sip:1001@pbx.example.test>"], 302, ()),
    ]
    problems = []
    for family, ruser, headers, status, words in cases:
        call = sipp_invite(LOOPBACK[family], env.router_port, "udp", ruser, headers, status)
        f = call.final
        what = f"{family} {ruser} {headers}"
        if f is None or f.status != status:
            problems.append(f"{what}: {f.status if f else None} {f.reason if f else ''} "
                            f"(want {status})")
        elif not call.ok:
            problems.append(f"{what}: {call}")
        elif any(w not in f.reason for w in words):
            problems.append(f"{what}: reason {f.reason!r} does not name {words}")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------
# (3) untrusted source


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_untrusted_source_403(shared, transport):
    """127.0.0.2 is no UM IP gateway (only 127.0.0.1 and ::1 are): 403 and
    exactly one log line naming the source."""
    env = shared
    router = router_of(env)
    before = len(log_lines(router, "127.0.0.2"))
    call = sipp_invite("127.0.0.1", env.router_port, transport, MAILBOX,
                       ["Diversion: <sip:1001@pbx.example.test>"], 403, local_ip="127.0.0.2")
    assert call.ok, str(call)
    r = call.final
    assert r.status == 403 and "not a UM IP gateway" in r.reason, r.raw
    assert r.header("contact") is None, r.raw
    lines = wait_for(lambda: log_lines(router, "127.0.0.2")[before:] or None, 2,
                     what="a log line naming 127.0.0.2")
    time.sleep(0.2)
    lines = log_lines(router, "127.0.0.2")[before:]
    assert len(lines) == 1, "want exactly one line naming the source:\n" + "\n".join(lines)
    assert "403" in lines[0] or "not a UM IP gateway" in lines[0], lines[0]
    # The gateways themselves are still routed.
    routed(env, "IPv4", transport, MAILBOX)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_untrusted_ipv6_source_403(env, transport):
    """The same over IPv6: with only the IPv4 loopback gateway left, ::1 is
    no gateway's address: 403 and one log line naming [::1]."""
    env.umctl_ok("remove-umhuntgroup", "--identity", "loopback6-default")
    env.umctl_ok("remove-umipgateway", "--identity", "loopback6")
    env.start_router()
    env.start_service()
    router = router_of(env)
    call = sipp_invite("::1", env.router_port, transport, MAILBOX, (), 403)
    assert call.ok, str(call)
    assert "not a UM IP gateway" in call.final.reason, call.final.raw
    assert call.final.header("contact") is None, call.final.raw
    lines = wait_for(lambda: log_lines(router, "403 to INVITE from [::1]"), 2,
                     what="a log line naming [::1]")
    assert len(lines) == 1 and "not a UM IP gateway" in lines[0], lines
    routed(env, "IPv4", transport, MAILBOX).check("IPv4", transport, port=env.service_port)


# --------------------------------------------------------------------------
# (4) gateway Status


def _tcp_from(src, port, n):
    """n idle TCP connections to the router's IPv4 port from address src."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((src, 0))
            s.connect(("127.0.0.1", port))
    except Exception:
        for s in socks:
            s.close()
        raise
    return socks


def _closed_by_router(s, within):
    """Whether the router closes connection s within `within` seconds."""
    s.settimeout(within)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def _invite(c, timeout=3.0):
    """An INVITE to the mailbox on RawSip c: its final response, or None."""
    c.request("INVITE", ruri=f"sip:{MAILBOX}@{c.remote}",
              body=sdp_offer("127.0.0.1", 40000))
    return c.recv_response(timeout)


def _invite_302(c):
    """An INVITE on RawSip c: the final response must be a 302."""
    r = _invite(c)
    assert r and r.status == 302, r and r.raw
    return r


def test_strangers_idle_tcp_connections_closed(running):
    """(1) A TCP connection from an address that is no UM IP gateway's and
    that sends nothing is closed after ~10 s, with a log line naming it; a
    gateway's idle connection stays open and still routes."""
    env = running
    router = router_of(env)
    with RawSip("127.0.0.1", env.router_port, "tcp") as gw:
        stranger, = _tcp_from("127.0.0.2", env.router_port, 1)
        with stranger:
            where = hostport(*stranger.getsockname()[:2])
            assert not _closed_by_router(stranger, 8.0), "closed before 10 s of silence"
            assert _closed_by_router(stranger, 6.0), "a stranger's silent connection stayed open"
        lines = wait_for(lambda: log_lines(router, f"no UM IP gateway's ({where}"), 2,
                         what="a log line naming the closed connection")
        assert "silent for 10 s" in lines[0], lines
        _invite_302(gw)


def test_gateway_gets_room_when_strangers_hold_every_connection(env):
    """(1) Strangers holding every TCP connection the router allows do not
    lock a gateway out: the limit follows the descriptors the process may
    open (256 here: 192 connections), a stranger beyond it is refused, and
    a gateway's connection closes the oldest stranger's instead, which the
    log names; the gateway's INVITE is routed."""
    wrap = env.wrap
    env.wrap = lambda argv: ["prlimit", "--nofile=256:256", *wrap(argv)]
    env.start_router()
    env.wrap = wrap
    env.start_service()
    router = router_of(env)
    socks = _tcp_from("127.0.0.2", env.router_port, 192)
    try:
        extra, = _tcp_from("127.0.0.2", env.router_port, 1)
        socks.append(extra)
        assert _closed_by_router(extra, 3.0), "a stranger beyond the limit was let in"
        assert not _closed_by_router(socks[0], 0.5), "a stranger was closed below the limit"
        oldest = hostport(*socks[0].getsockname()[:2])
        with RawSip("127.0.0.1", env.router_port, "tcp") as gw:
            _invite_302(gw)
            assert _closed_by_router(socks[0], 2.0), "the oldest stranger kept its connection"
            assert not _closed_by_router(socks[1], 0.3), "more than one stranger was closed"
            lines = wait_for(lambda: log_lines(router, "to make room for gateway 127.0.0.1"),
                             2, what="a log line about the closed connection")
            assert len(lines) == 1 and f"({oldest})" in lines[0], lines
    finally:
        for s in socks:
            s.close()


@pytest.mark.parametrize("family,transport", COMBOS, ids=COMBO_IDS)
def test_gateway_status_live(running, family, transport):
    """A gateway set Disabled or NoNewCalls gets 503 for new calls (with
    Retry-After and a reason saying which), one log line names it, and the
    other gateway is not affected; Enabled again routes within a second."""
    env = running
    gw = GATEWAY_OF[family]
    other = "IPv6" if family == "IPv4" else "IPv4"
    router = router_of(env)
    for status, why in (("Disabled", "gateway disabled"),
                        ("NoNewCalls", "gateway takes no new calls")):
        env.umctl_ok("set-umipgateway", "--identity", gw, "--status", status)
        before = len(log_lines(router, f"UM IP gateway {gw} is {status}"))
        call = sipp_invite(LOOPBACK[family], env.router_port, transport, MAILBOX, (), 503)
        assert call.ok, f"{gw} {status}: {call}"
        assert why in call.final.reason, call.final.raw
        assert re.match(r"^\d+", call.final.header("retry-after") or ""), call.final.raw
        assert call.final.header("contact") is None, call.final.raw
        lines = wait_for(lambda: log_lines(router, f"UM IP gateway {gw} is {status}")[before:],
                         2, what=f"a log line naming {gw} {status}")
        assert len(lines) == 1 and LOOPBACK[family] in lines[0], lines
        # The other family's gateway is not affected.
        routed(env, other, transport, MAILBOX)
    t0 = time.monotonic()
    env.umctl_ok("set-umipgateway", "--identity", gw, "--status", "Enabled")
    wait_for(lambda: final_status(env, family, transport, MAILBOX) == 302, 1.0, 0.02,
             what=f"{gw} Enabled again: 302")
    assert time.monotonic() - t0 <= 1.0
    routed(env, family, transport, MAILBOX).check(family, transport, port=env.service_port)


# --------------------------------------------------------------------------
# (5) no UM service instance


def test_no_instance_503_then_302(env):
    env.start_router()
    for family, transport in COMBOS:
        call = sipp_invite(LOOPBACK[family], env.router_port, transport, MAILBOX, (), 503)
        assert call.ok, str(call)
        ra = call.final.header("retry-after")
        assert ra and re.match(r"^\d+", ra), f"503 without a Retry-After: {call.final.raw}"
        assert call.final.header("contact") is None, call.final.raw
    t0 = time.monotonic()
    env.start_service()
    wait_for(lambda: final_status(env, "IPv4", "udp", MAILBOX) == 302, 2.0, 0.02,
             what="302 once the instance registered")
    for family, transport in COMBOS:
        routed(env, family, transport, MAILBOX).check(family, transport, port=env.service_port)
    assert time.monotonic() - t0 < 5


def test_instance_without_the_family_503(running):
    """The only instance listens on IPv4 only: an INVITE over IPv6 gets no
    IPv6 Contact (none exists) and no IPv4 one either (the gateway reached
    us over IPv6): 503. Over IPv4: 302 with an IPv4 Contact."""
    env = running
    env.umctl_ok("set-umservice", "--ip-address-family", "IPv4Only")
    env.wait_instance(families={"IPv4"})
    for transport in ("udp", "tcp"):
        call = sipp_invite("::1", env.router_port, transport, MAILBOX, (), 503)
        assert call.ok, str(call)
        assert call.final.header("retry-after"), call.final.raw
        routed(env, "IPv4", transport, MAILBOX).check("IPv4", transport, port=env.service_port)
    env.umctl_ok("set-umservice", "--ip-address-family", "Any")
    env.wait_instance(families={"IPv4", "IPv6"})
    routed(env, "IPv6", "udp", MAILBOX).check("IPv6", "udp", port=env.service_port)


# --------------------------------------------------------------------------
# (6) FQDN gateways: IPAddressFamily, DNS changes


def test_fqdn_gateway_ipv4only_over_ipv6_refused(env, dns):
    """Only gateway: gwname, Address pbx.example.test (A 127.0.0.1, AAAA
    ::1 in dnsmasq). Any: both families routed. IPv4Only: an INVITE from ::1
    is refused (403), one from 127.0.0.1 gets an IPv4 Contact."""
    dns.start([("127.0.0.1", "pbx.example.test"), ("::1", "pbx.example.test")], ttl=1)
    use_fqdn_gateway(env, dns, af="Any")
    env.start_router()
    env.start_service()
    wait_for(lambda: final_status(env, "IPv4", "udp", MAILBOX) == 302 and
             final_status(env, "IPv6", "udp", MAILBOX) == 302, 5, 0.1,
             what="pbx.example.test resolved to 127.0.0.1 and ::1")
    for family, transport in COMBOS:
        routed(env, family, transport, MAILBOX).check(family, transport, port=env.service_port)
    assert any("pbx.example.test" in q for q in dns.queries()), \
        f"dnsmasq saw no query for the gateway: {dns.queries()}"

    env.umctl_ok("set-umipgateway", "--identity", "gwname", "--ip-address-family", "IPv4Only")
    wait_for(lambda: final_status(env, "IPv6", "udp", MAILBOX, expect=403) == 403, 3, 0.1,
             what="IPv4Only gateway: 403 over IPv6")
    for transport in ("udp", "tcp"):
        call = sipp_invite("::1", env.router_port, transport, MAILBOX, (), 403)
        assert call.ok, str(call)
        assert call.final.header("contact") is None, call.final.raw
        routed(env, "IPv4", transport, MAILBOX).check("IPv4", transport, port=env.service_port)
    lines = [ln for ln in log_lines(router_of(env), "403") if "[::1]" in ln]
    # the peer is told only that it is no gateway; the log says which
    # setting made it so
    assert lines and all("not a UM IP gateway (gateway gwname (pbx.example.test) is "
                         "IPv4Only: the IPv6 addresses of its name are neither looked "
                         "up nor trusted)" in ln for ln in lines), \
        f"no log line names the refused source [::1] and the setting:\n{lines}"


def test_fqdn_gateway_follows_dns_on_ttl_expiry(env, dns):
    """pbx.example.test moves 127.0.0.1 -> 127.0.0.3 with TTL 1 s: the
    router picks the new address up when the TTL expires; the old one is
    refused from then on."""
    dns.start([("127.0.0.1", "pbx.example.test")], ttl=1)
    use_fqdn_gateway(env, dns, af="IPv4Only")
    env.start_router()
    env.start_service()
    wait_for(lambda: final_status(env, "IPv4", "udp", MAILBOX) == 302, 5, 0.1,
             what="pbx.example.test resolved to 127.0.0.1")
    assert final_status(env, "IPv4", "udp", MAILBOX, local_ip="127.0.0.3", expect=403) == 403

    dns.reload([("127.0.0.3", "pbx.example.test")])
    t0 = time.monotonic()
    wait_for(lambda: final_status(env, "IPv4", "udp", MAILBOX, local_ip="127.0.0.3") == 302,
             6, 0.2, what="127.0.0.3 trusted after the TTL expired")
    took = time.monotonic() - t0
    call = sipp_invite("127.0.0.1", env.router_port, "tcp", MAILBOX, (), 302,
                       local_ip="127.0.0.3")
    assert call.ok, str(call)
    call.contact.check("IPv4", "tcp", port=env.service_port)
    call = sipp_invite("127.0.0.1", env.router_port, "udp", MAILBOX, (), 403)
    assert call.ok, f"the old address still trusted: {call}"
    assert took <= 4.0, f"the TTL-1 record change took {took:.1f} s to be noticed"


def test_fqdn_gateway_refreshes_on_config_changed(env, dns):
    """TTL 3600: the router keeps its answer while the record changes in
    DNS, until a ConfigChanged (any umctl set): then it asks DNS again and
    trusts the new address at once, the old one no more."""
    dns.start([("127.0.0.1", "pbx.example.test")], ttl=3600)
    use_fqdn_gateway(env, dns, af="IPv4Only")
    env.start_router()
    env.start_service()
    wait_for(lambda: final_status(env, "IPv4", "udp", MAILBOX) == 302, 5, 0.1,
             what="pbx.example.test resolved to 127.0.0.1")
    dns.reload([("127.0.0.3", "pbx.example.test")])
    time.sleep(1.5)
    assert final_status(env, "IPv4", "udp", MAILBOX) == 302, \
        "a record with TTL 3600 was not kept for 1.5 s"
    asked = len([q for q in dns.queries() if "pbx.example.test" in q])
    env.umctl_ok("set-umipgateway", "--identity", "gwname", "--status", "Enabled")
    t0 = time.monotonic()
    try:
        wait_for(lambda: final_status(env, "IPv4", "udp", MAILBOX, local_ip="127.0.0.3") == 302,
                 2, 0.05, what="127.0.0.3 trusted after ConfigChanged")
    except AssertionError:
        again = len([q for q in dns.queries() if "pbx.example.test" in q]) - asked
        lines = log_lines(router_of(env), "pbx.example.test")[-2:]
        pytest.fail(f"ConfigChanged did not refresh the gateway's addresses: dnsmasq got "
                    f"{again} new queries; router: {lines}")
    assert time.monotonic() - t0 <= 1.0
    call = sipp_invite("127.0.0.1", env.router_port, "udp", MAILBOX, (), 403)
    assert call.ok, f"127.0.0.1 still trusted after ConfigChanged: {call}"


def test_fqdn_gateway_kept_through_config_change_with_dns_down(env, dns):
    """Every directory change rebuilds the routing snapshot of the router and
    of the UM service. A gateway given by FQDN keeps its last answer in the
    new snapshot until DNS answers again: with DNS down at that moment, a
    ConfigChanged must not lock the gateway out of either (it got 403 until a
    later lookup succeeded)."""
    dns.start([("127.0.0.1", "pbx.example.test")], ttl=3600)
    use_fqdn_gateway(env, dns, af="IPv4Only")
    env.start_router()
    env.start_service()
    router, service = router_of(env), next(d for d in env.daemons if d.name == "umservice")
    for d in (router, service):
        wait_for(lambda: log_lines(d, "pbx.example.test -> 127.0.0.1"), 5, 0.05,
                 what=f"{d.name} resolved pbx.example.test")
    dns.stop()
    env.umctl_ok("set-umipgateway", "--identity", "gwname", "--status", "Enabled")
    # the change is applied once each has tried DNS again and failed
    for d in (router, service):
        wait_for(lambda: log_lines(d, "keeping its previous addresses"), 5, 0.05,
                 what=f"{d.name}'s lookup after ConfigChanged failing")
    for transport in ("udp", "tcp"):
        contact = routed(env, "IPv4", transport, MAILBOX)
        contact.check("IPv4", transport, port=env.service_port)
        follow_302(contact, "the UM service refused the gateway after ConfigChanged")


# --------------------------------------------------------------------------
# (7) hostile and malformed requests


def _req(method="INVITE", ruser=MAILBOX, via=True, call_id=True, cseq=True, extra=(),
         body=b"", clen=None, ruri=None, sent_by="@VIA@", version="SIP/2.0"):
    """A request template: @TR@, @VIA@ and @REMOTE@ are filled in per
    client (transport, our Via sent-by, the router's host:port)."""
    lines = [f"{method} {ruri or f'sip:{ruser}@@REMOTE@'} {version}"]
    if via:
        lines.append(f"Via: SIP/2.0/@TR@ {sent_by};branch={new_branch()};rport")
    lines += ["Max-Forwards: 70", "From: <sip:4255550100@pbx.example.test>;tag=e2e1",
              f"To: <sip:{ruser}@pbx.example.test>"]
    if call_id:
        lines.append(f"Call-ID: {uuid.uuid4().hex}@e2e")
    if cseq:
        lines.append(f"CSeq: 1 {method}")
    lines += list(extra)
    lines.append(f"Content-Length: {len(body) if clen is None else clen}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


SDP = sdp_offer("127.0.0.1", 40000).encode()
UDP_MAX = {"IPv4": 65507, "IPv6": 65527}   # largest UDP payload on loopback
# name: (request bytes, acceptable outcomes over udp, over tcp). An outcome
# is a status, "4xx"/"5xx" (any such status), "302ok" (a valid request after
# all: 302), "drop" (no answer; then the router must have logged a line) or
# "wait" (no answer, nothing logged: an incomplete TCP message). Over UDP a
# message longer than a datagram can carry is cut to the largest datagram
# (its Content-Length then claims more than arrived).
HOSTILE = {
    # Over TCP the router must wait for the rest of the body: no answer and
    # nothing to log ("wait").
    "content_length_beyond_body": (_req(body=SDP, clen=len(SDP) + 400), {400}, {"wait"}),
    "content_length_negative": (_req(body=SDP, clen="-5"), {400}, {400}),
    "content_length_not_a_number": (_req(body=SDP, clen="12ab"), {400}, {400}),
    "missing_call_id": (_req(call_id=False), {400}, {400}),
    "missing_cseq": (_req(cseq=False), {400}, {400}),
    "missing_via": (_req(via=False), {"drop"}, {"drop"}),
    "bad_cseq": (_req().replace(b"CSeq: 1 INVITE", b"CSeq: x1 INVITE"), {400}, {400}),
    "cseq_method_mismatch": (_req().replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE"), {400}, {400}),
    # Valid, if large: routed, or refused as too large.
    "header_60KiB": (_req(extra=["X-Filler: " + "a" * (60 * 1024)]),
                     {"302ok", 413, 513}, {"302ok", 413, 513}),
    "many_headers": (_req(extra=[f"X-H{i}: {i}" for i in range(3000)]),
                     {"302ok", 413, 513}, {"302ok", 413, 513}),
    "unknown_method": (_req(method="FROBNICATE"), {501}, {501}),
    "register": (_req(method="REGISTER"), {405}, {405}),
    "subscribe": (_req(method="SUBSCRIBE"), {405, 501}, {405, 501}),
    "sip_version_3": (_req(version="SIP/3.0"), {505}, {505}),
    "ipv6_unbracketed_request_uri": (_req(ruri="sip:1001@::1:5060"), {400, "drop"},
                                     {400, "drop"}),
    "ipv6_unbracketed_via": (_req(sent_by="::1:5060"), {400, "drop"}, {400, "drop"}),
    "ipv6_unbracketed_contact": (_req(extra=["Contact: <sip:e2e@::1:5060>"]), {400}, {400}),
    "ipv6_unbracketed_diversion": (_req(ruser=PILOT, extra=["Diversion: <sip:1001@::1:5060>"]),
                                   {"302ok", 400, 404}, {"302ok", 400, 404}),
    "ipv6_unbracketed_to": (_req().replace(b"To: <sip:1001@pbx.example.test>",
                                           b"To: <sip:1001@::1>"), {400}, {400}),
    # A NUL is framed like any byte (TCP too) and then refused by the parser.
    "nul_in_header": (_req(extra=["X-Nul: a\x00b"]), {400}, {400}),
    "nul_in_request_uri": (_req(ruri="sip:10\x0001@127.0.0.1"), {400}, {400}),
    # Over UDP cut to a datagram: Content-Length then claims more.
    "body_64KiB": (_req(method="OPTIONS", body=b"x" * 65536), {400, 413, 513},
                   {200, 413, 513}),
    # Announced beyond the router's 96 KiB: 513, and over TCP the
    # connection is closed (its body is not read).
    "content_length_200000": (_req(method="OPTIONS", body=b"x" * 100, clen=200000),
                              {513}, {513}),
    "body_120KiB": (_req(method="OPTIONS", body=b"x" * (120 * 1024)), {513}, {513}),
    "invite_body_60KiB": (_req(body=b"v=0\r\n" + b"a=x-filler\r\n" * 5000),
                          {"302ok", 400, 413, 513}, {"302ok", 400, 413, 513}),
    "binary_garbage": (bytes((i * 7 + 0xff) & 0xff for i in range(1500)), {"drop"}, {"drop"}),
    "text_garbage": (b"HELLO there\r\nwho: are you\r\n\r\n", {"drop"}, {"drop"}),
    # No Via, so no address to answer: dropped with a log line (over TCP
    # too: without a Content-Length the empty body is taken as complete).
    "request_line_only": (b"INVITE sip:1001@127.0.0.1 SIP/2.0\r\n\r\n", {"drop"},
                          {"drop"}),
    "huge_cseq": (_req().replace(b"CSeq: 1 INVITE", b"CSeq: 99999999999999999999 INVITE"),
                  {400}, {400}),
    "diversion_garbage": (_req(extra=["Diversion: <<<<sip:@@@>>>;;;=", "History-Info: ,,,<"]),
                          {400}, {400}),
    "history_info_garbage": (_req(extra=["History-Info: ,,,<sip:;index=\x01"]),
                             {400, 404}, {400, 404}),
    "diversion_10KiB": (_req(extra=["Diversion: " + ", ".join(
        f"<sip:{1000 + i}@pbx.example.test>;reason=no-answer" for i in range(250))]),
        {"302ok", 400, 404}, {"302ok", 400, 404}),
}


def _outcome_ok(resp, allowed):
    if resp is None:
        return "drop" in allowed or "wait" in allowed
    if resp.status in allowed:
        return True
    if resp.status == 302 and "302ok" in allowed:
        return True
    return f"{resp.status // 100}xx" in allowed


def _send_hostile(env, family, transport, names):
    """Sends each named HOSTILE request from a fresh socket / connection.
    Returns (problems, drops without any log line, drop log lines that do not
    name the source)."""
    router = router_of(env)
    host = LOOPBACK[family]
    problems, unlogged, unnamed = [], [], []
    for name in names:
        data, on_udp, on_tcp = HOSTILE[name]
        allowed = on_udp if transport == "udp" else on_tcp
        with RawSip(host, env.router_port, transport, strict=False) as c:
            msg = (data.replace(b"@TR@", transport.upper().encode())
                   .replace(b"@VIA@", c.via_sent_by.encode())
                   .replace(b"@REMOTE@", c.remote.encode()))
            if transport == "udp":
                msg = msg[:UDP_MAX[family]]
            log_before = len(router.log().splitlines())
            c.send(msg)
            resp = c.recv_response(0.3 if allowed & {"drop", "wait"} else 2.0)
            if not _outcome_ok(resp, allowed):
                problems.append(f"{name}: got {resp.status} {resp.reason}" if resp else
                                f"{name}: no answer (want {sorted(map(str, allowed))})")
            elif resp is None and "drop" in allowed:
                new = router.log().splitlines()[log_before:]
                if not new:
                    unlogged.append(name)
                elif not any(f":{c.lport}" in line for line in new):
                    unnamed.append(f"{name}: {new[-1]}")
        if not router.alive():
            problems.append(f"{name}: the router died")
            break
    return problems, unlogged, unnamed


@pytest.mark.parametrize("family,transport", COMBOS, ids=COMBO_IDS)
def test_hostile_requests(running, family, transport):
    """Every request of HOSTILE gets a proper error or silence (or, when it
    is valid after all, its 302), and afterwards the router is alive, still
    routing, and umctl status works."""
    env = running
    router = router_of(env)
    problems, _, _ = _send_hostile(env, family, transport, list(HOSTILE))
    assert router.alive(), "router died:\n" + "\n".join(problems) + "\n" + router.tail()
    routed(env, family, transport, MAILBOX).check(family, transport, port=env.service_port)
    st = env.status()
    assert st and st["router"]["pid"] == router.pid, st
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_dropped_requests_are_logged(running, transport):
    """A malformed request the router cannot answer is dropped with a log
    line (issue 3, rule 6)."""
    env = running
    drops = [n for n, (_, u, t) in HOSTILE.items() if "drop" in (u if transport == "udp" else t)]
    _, unlogged, unnamed = _send_hostile(env, "IPv4", transport, drops)
    assert not unlogged, (f"dropped over {transport} without any log line (log level info): "
                          f"{unlogged}")
    assert not unnamed, ("drop log lines that do not name the source:\n" +
                         "\n".join(unnamed))


def test_garbage_flood(running):
    """2000 garbage datagrams (IPv4 and IPv6) and 100 TCP connections that
    send garbage and go: afterwards the router answers OPTIONS, routes, and
    umctl status works; it did not balloon."""
    env = running
    router = router_of(env)
    rss_before = int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{router.pid}/status")
                               .read_text()).group(1))
    t0 = time.monotonic()
    for family in ("IPv4", "IPv6"):
        host = LOOPBACK[family]
        socks = [socket.socket(socket.AF_INET6 if family == "IPv6" else socket.AF_INET,
                               socket.SOCK_DGRAM) for _ in range(8)]
        try:
            for i in range(1000):
                s = socks[i % len(socks)]
                payload = bytes(((i * 31 + k * 17) | 0x80) & 0xff
                                for k in range(64 + (i % 7) * 97))
                if i % 3 == 0:
                    payload = b"INVITE " + payload + b" SIP/2.0\r\n\r\n"
                s.sendto(payload, (host, env.router_port))
        finally:
            for s in socks:
                s.close()
    for i in range(100):
        host = LOOPBACK["IPv4" if i % 2 else "IPv6"]
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        s.settimeout(1)
        try:
            s.connect((host, env.router_port))
            s.sendall(b"\xff\xfe garbage " * 50 + b"\r\n\r\n")
        except OSError:
            pass
        finally:
            s.close()
    # The router catches up within a few seconds.
    wait_for(lambda: sipp_options("127.0.0.1", env.router_port, "u1", timeout=1).ok, 10, 0.2,
             what="OPTIONS answered after the flood")
    took = time.monotonic() - t0
    assert router.alive()
    for family, transport in COMBOS:
        routed(env, family, transport, MAILBOX).check(family, transport, port=env.service_port)
    st = env.status()
    assert st and st["router"]["pid"] == router.pid
    rss_after = int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{router.pid}/status")
                              .read_text()).group(1))
    assert rss_after < rss_before + 50 * 1024, f"RSS {rss_before} -> {rss_after} kB"
    assert took < 10


# --------------------------------------------------------------------------
# (8) protocol log


def _check_protolog(env, path, family, transport):
    """One routed call; the protocol log has its INVITE in and its 302 out,
    with local and remote addresses of the call's family."""
    call = sipp_invite(LOOPBACK[family], env.router_port, transport, MAILBOX, (), 302)
    assert call.ok, str(call)
    want_local = hostport(LOOPBACK[family], env.router_port)
    want_remote = hostport(LOOPBACK[family], call.local_port)

    def records():
        recs = [(h, m) for h, m in protolog_records(path) if call.call_id in m]
        dirs = {(h.group("dir"), m.split("\n", 1)[0].split(" ")[0]) for h, m in recs}
        return recs if {("in", "INVITE"), ("out", "SIP/2.0")} <= dirs else None
    recs = wait_for(records, 2, what=f"INVITE in / 302 out of {call.call_id} in {path}")
    for h, m in recs:
        first = m.split("\n", 1)[0]
        if h.group("dir") == "out":
            assert first.startswith("SIP/2.0 302"), first
        assert h.group("tr") == transport, h.group(0)
        assert h.group("local") == want_local, f"local address: {h.group(0)} (want {want_local})"
        if first.startswith("INVITE") or h.group("dir") == "out":
            assert h.group("remote") == want_remote, \
                f"remote address: {h.group(0)} (want {want_remote})"
        body_len = len(m.rstrip("\n").encode())
        assert abs(int(h.group("len")) - body_len) <= 4, (h.group(0), body_len)
    return recs


def test_protocol_log_option(env):
    path = env.base / "sip-protocol.log"
    env.start_router(extra=["--protocol-log", str(path)])
    env.start_service()
    for family, transport in COMBOS:
        _check_protolog(env, path, family, transport)


def test_protocol_log_setting_live(running):
    env = running
    path = env.base / "sip-protocol-live.log"
    env.umctl_ok("set-umcallroutersettings", "--protocol-log-path", str(path))
    assert env.get("get-umcallroutersettings")["ProtocolLogPath"] == str(path)
    wait_for(lambda: path.exists(), 2, what="the protocol log to be opened")
    for family, transport in (("IPv4", "udp"), ("IPv6", "tcp")):
        _check_protolog(env, path, family, transport)
    # Off again: nothing more is written.
    env.umctl_ok("set-umcallroutersettings", "--protocol-log-path", "")
    time.sleep(0.1)
    size = path.stat().st_size
    routed(env, "IPv6", "udp", MAILBOX)
    time.sleep(0.2)
    assert path.stat().st_size == size, "the protocol log still grows after it was turned off"


# --------------------------------------------------------------------------
# (9) status counters, two instances


def test_status_counts_routed_calls(running):
    env = running
    n = 6
    for i in range(n):
        family, transport = COMBOS[i % len(COMBOS)]
        routed(env, family, transport, MAILBOX)
    inst = env.find_instance(env.status(), "e2e-1")
    assert inst["calls_routed"] >= n, inst
    assert inst["active_calls"] == 0, inst
    # Refused calls are not counted.
    sipp_invite("127.0.0.1", env.router_port, "udp", "1234", (), 404)
    assert env.find_instance(env.status(), "e2e-1")["calls_routed"] == inst["calls_routed"]
    # Table output names the counter too; get-umactivecalls says the same.
    out = env.umctl_ok("status").out
    assert str(inst["calls_routed"]) in out, out
    active = env.get("get-umactivecalls")
    same = env.find_instance(active, "e2e-1")
    assert same["calls_routed"] == inst["calls_routed"], active
    assert {e["family"] for e in same["endpoints"]} == {"IPv4", "IPv6"}, active


@pytest.mark.parametrize("family,transport", [("IPv4", "udp"), ("IPv6", "tcp")],
                         ids=["v4-udp", "v6-tcp"])
def test_burst_all_routed(running, family, transport):
    """300 INVITEs at 300/s from one SIPp: every one gets its 302 (SIPp's
    check of the Contact token included), and calls_routed counts them."""
    env = running
    before = _inst(env, "e2e-1")["calls_routed"]
    n = 300
    call = sipp_invite(LOOPBACK[family], env.router_port, transport, MAILBOX,
                       ["Diversion: <tel:+14255551001>"], 302, calls=n, rate=300, timeout=10)
    assert call.ok, str(call)
    assert _inst(env, "e2e-1")["calls_routed"] - before == n
    assert router_of(env).alive()


def test_two_instances_round_robin(running):
    env = running
    port2 = free_port()
    env.start_service(sip_port=port2, instance_id="e2e-2")
    before = {i["instance_id"]: i["calls_routed"] for i in env.status()["instances"]}
    n = 10
    ports = []
    for i in range(n):
        family, transport = COMBOS[i % len(COMBOS)]
        ports.append(routed(env, family, transport, MAILBOX).port)
    by_port = {p: ports.count(p) for p in set(ports)}
    assert set(by_port) == {env.service_port, port2}, by_port
    assert abs(by_port[env.service_port] - by_port[port2]) <= 1, \
        f"not spread evenly over two idle instances: {by_port}"
    # Alternating, as round robin over equal load does.
    assert all(ports[i] != ports[i + 1] for i in range(n - 1)), ports
    st = env.status()
    after = {i["instance_id"]: i["calls_routed"] for i in st["instances"]}
    assert after["e2e-1"] - before["e2e-1"] == by_port[env.service_port], (before, after)
    assert after["e2e-2"] - before["e2e-2"] == by_port[port2], (before, after)
    assert sum(after.values()) - sum(before.values()) == n


# --------------------------------------------------------------------------
# (10) CANCEL, ACK, OPTIONS


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_options_cancel_and_ack(shared, transport):
    env = shared
    for family in ("IPv4", "IPv6"):
        res = sipp_options(LOOPBACK[family], env.router_port, SIPP_T[transport])
        assert res.ok, str(res)
        # ACK of the 302 is absorbed: SIPp waits 500 ms after its ACK and
        # fails on anything that arrives.
        call = sipp_invite(LOOPBACK[family], env.router_port, transport, MAILBOX, (), 302,
                           pause_ms=500)
        assert call.ok, str(call)
        # A CANCEL matching nothing pending: 200.
        res = sipp_request(LOOPBACK[family], env.router_port, SIPP_T[transport], "CANCEL", 200)
        assert res.ok, str(res)
    with RawSip("127.0.0.1", env.router_port, transport, strict=False) as c:
        c.request("OPTIONS", ruri=f"sip:{c.remote}")
        resp = c.recv_response(2.0)
        assert resp is not None and resp.status == 200, resp and resp.raw
        assert {"INVITE", "ACK", "CANCEL", "OPTIONS"} <= resp.tokens("Allow"), resp.raw
        assert "APPLICATION/SDP" in resp.tokens("Accept"), resp.raw
        # A stray ACK (no INVITE ever): no answer.
        c.request("ACK", ruri=f"sip:{MAILBOX}@{c.remote}", to_tag="x1")
        assert c.recv_message(0.5) is None
        # REGISTER and SUBSCRIBE: 405 with the Allow header RFC 3261 21.4.6
        # requires; an unknown method: 501
        for method, status in (("REGISTER", 405), ("SUBSCRIBE", 405), ("FROBNICATE", 501)):
            c.request(method, ruri=f"sip:{c.remote}",
                      headers=["Event: message-summary"] if method == "SUBSCRIBE" else [])
            resp = c.recv_response(2.0)
            assert resp is not None and resp.status == status, (method, resp and resp.raw)
            if status == 405:
                assert resp.tokens("Allow") == {"INVITE", "ACK", "CANCEL", "OPTIONS"}, resp.raw


@pytest.mark.parametrize("family,transport", [("IPv4", "udp"), ("IPv6", "tcp")],
                         ids=["v4-udp", "v6-tcp"])
def test_cancel_pending_invite(running, family, transport):
    """While the router waits for the instance's ack (the instance is
    stopped with SIGSTOP, so the INVITE stays pending up to 200 ms), a
    CANCEL is answered 200 and the INVITE 487; nothing else follows."""
    env = running
    service = next(d for d in env.daemons if d.name == "umservice")
    host = LOOPBACK[family]
    service.send_signal(signal.SIGSTOP)
    try:
        with RawSip(host, env.router_port, transport, strict=False) as c:
            f = c.request("INVITE", ruri=f"sip:{MAILBOX}@{c.remote}", body=sdp_offer(host, 40000))
            c.request("CANCEL", ruri=f["ruri"], call_id=f["call_id"], branch=f["branch"],
                      cseq=f["cseq"], from_tag=f["from_tag"], to_user=f["to_user"])
            got = {}
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline and len(got) < 2:
                r = c.recv_response(deadline - time.monotonic())
                if r is None:
                    break
                got[(r.header("cseq") or "").split()[-1].upper()] = r
            assert "CANCEL" in got and got["CANCEL"].status == 200, \
                {k: v.status for k, v in got.items()}
            assert "INVITE" in got and got["INVITE"].status == 487, \
                {k: v.status for k, v in got.items()}
            ack_for(c, f, got["INVITE"])
            # No 503 / 302 later for that INVITE.
            late = c.recv_response(0.5)
            assert late is None, f"after 487: {late.status} {late.reason}"
    finally:
        service.send_signal(signal.SIGCONT)
    routed(env, family, transport, MAILBOX).check(family, transport, port=env.service_port)


def test_max_calls_and_least_loaded(running):
    """MaxCallsAllowed 1: with one call up on e2e-1, a new INVITE gets 503
    (Retry-After); once e2e-2 registers the call goes there (the only
    instance below its limit); after the BYE e2e-1 takes calls again."""
    env = running
    env.umctl_ok("set-umservice", "--max-calls-allowed", "1")
    wait_for(lambda: (_inst(env, "e2e-1") or {}).get("max_calls_allowed") == 1, 3,
             what="MaxCallsAllowed 1 in status")
    contact = routed(env, "IPv4", "udp", MAILBOX)
    call = UmCall(contact)
    try:
        call.wait_final(5.0)
        assert answered(call), f"the UM service did not answer: {call.statuses}"
        call.ack()
        wait_for(lambda: _inst(env, "e2e-1")["active_calls"] == 1, 3,
                 what="active_calls 1 on e2e-1")
        res = sipp_invite("127.0.0.1", env.router_port, "udp", MAILBOX, (), 503)
        assert res.ok, f"a call beyond MaxCallsAllowed was not refused: {res}"
        assert res.final.header("retry-after"), res.final.raw

        port2 = free_port()
        env.start_service(sip_port=port2, instance_id="e2e-2")
        for family, transport in (("IPv4", "tcp"), ("IPv6", "udp")):
            assert routed(env, family, transport, MAILBOX).port == port2

        bye = call.bye()
        assert bye is not None and bye.status == 200
        wait_for(lambda: _inst(env, "e2e-1")["active_calls"] == 0, 3,
                 what="active_calls back to 0 on e2e-1")
        ports = {routed(env, "IPv4", "udp", MAILBOX).port for _ in range(4)}
        assert ports == {env.service_port, port2}, ports
    finally:
        call.close()


# --------------------------------------------------------------------------
# (9) the router's own SIP transport (callrouter/sipnet.c, sipmsg.c)


def test_udp_answered_from_the_address_called(running):
    """The router's UDP sockets are bound to the family's wildcard; a
    request to any local address (here 127.0.0.7, which nothing configured)
    is answered from that same address: a connected client socket only
    hears answers from exactly the address and port it sent to."""
    env = running
    with RawSip("127.0.0.7", env.router_port, "udp", strict=True) as c:
        c.request("OPTIONS", ruri=f"sip:{c.remote}")
        resp = c.recv_response(2.0)
        assert resp is not None and resp.status == 200, resp and resp.raw
        f = c.request("INVITE", ruri=f"sip:{MAILBOX}@{c.remote}", body=sdp_offer("127.0.0.7", 40000))
        resp = c.recv_response(2.0)
        # 127.0.0.7 is no gateway: refused, but from the address it called
        assert resp is not None and resp.status == 403, resp and resp.raw
        ack_for(c, f, resp)


def test_tcp_stream_framing(running):
    """Over one TCP connection: two requests in one segment get two answers
    in order; an INVITE that arrives a few bytes at a time is routed; an
    RFC 5626 CRLFCRLF ping gets its CRLF pong and the connection goes on."""
    env = running
    with RawSip("127.0.0.1", env.router_port, "tcp", strict=True) as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sent = []
        real_send = c.send
        c.send = lambda data: sent.append(data.encode() if isinstance(data, str) else data)
        c.request("OPTIONS", ruri=f"sip:{c.remote}", cseq=1)
        c.request("OPTIONS", ruri=f"sip:{c.remote}", cseq=2)
        f = c.request("INVITE", ruri=f"sip:{MAILBOX}@{c.remote}", cseq=3,
                      body=sdp_offer("127.0.0.1", 40000))
        c.send = real_send
        c.send(sent[0] + sent[1])
        got = [c.recv_response(2.0) for _ in range(2)]
        assert [r and (r.status, r.header("cseq")) for r in got] == \
            [(200, "1 OPTIONS"), (200, "2 OPTIONS")], [r and r.raw for r in got]
        for i in range(0, len(sent[2]), 7):
            c.send(sent[2][i:i + 7])
            time.sleep(0.001)
        resp = c.recv_response(3.0)
        assert resp is not None and resp.status == 302, resp and resp.raw
        ack_for(c, f, resp)
        c.sock.sendall(b"\r\n\r\n")
        deadline = time.monotonic() + 2
        pong = b""
        while time.monotonic() < deadline and b"\r\n" not in pong:
            pong += c.sock.recv(16)
        assert pong == b"\r\n", pong
        c.request("OPTIONS", ruri=f"sip:{c.remote}", cseq=4)
        resp = c.recv_response(2.0)
        assert resp is not None and resp.status == 200, resp and resp.raw


@pytest.mark.parametrize("family", ["IPv4", "IPv6"])
def test_invite_retransmission_gets_the_same_302(running, family):
    """An INVITE retransmitted over UDP because its 302 was lost gets that
    same 302 again (RFC 3261 17.2.1): same To tag, same instance, same token,
    and no second handoff to the instance (calls_routed counts one). The
    token still works. A new transaction of the same call (new branch) is
    routed anew."""
    env = running
    before = _inst(env, "e2e-1")["calls_routed"]
    resent_before = _inst(env, "e2e-1")["redirects_resent"]
    with RawSip(LOOPBACK[family], env.router_port, "udp", strict=True) as c:
        fields = dict(call_id=f"{uuid.uuid4().hex}@e2e", branch=new_branch(), from_tag="rt1")

        def invite(**over):
            f = c.request("INVITE", ruri=f"sip:{MAILBOX}@{c.remote}",
                          body=sdp_offer(LOOPBACK[family], 40000), **{**fields, **over})
            r = c.recv_response(2.0)
            assert r is not None and r.status == 302, r and r.raw
            return f, r

        f, first = invite()
        _, again = invite()
        assert again.header("contact") == first.header("contact"), (first.raw, again.raw)
        assert again.header("to") == first.header("to"), (first.raw, again.raw)
        inst = _inst(env, "e2e-1")
        assert inst["calls_routed"] - before == 1, inst
        assert inst["redirects_resent"] - resent_before == 1, inst

        contact = Contact(first.header("contact"))
        contact.check(family, "udp", port=env.service_port)
        ack_for(c, f, first)
        follow_302(contact)

        # a new transaction of the same call: routed anew
        _, other = invite(branch=new_branch())
        assert Contact(other.header("contact")).token != contact.token
        inst = _inst(env, "e2e-1")
        assert inst["calls_routed"] - before == 2, inst
        assert inst["redirects_resent"] - resent_before == 1, inst
        out = env.umctl_ok("status").out
        assert f"RedirectsResent  {inst['redirects_resent']}" in out, out


def test_retransmission_after_the_instance_restarted_is_routed_anew(env):
    """The 302 kept for a retransmission names the instance's registration,
    not just its id: when the instance restarted meanwhile (its tokens are
    gone), a retransmitted INVITE is routed again, under a token the new
    process knows and answers."""
    env.start_router()
    svc = env.start_service()
    with RawSip("127.0.0.1", env.router_port, "udp", strict=True) as c:
        fields = dict(call_id=f"{uuid.uuid4().hex}@e2e", branch=new_branch(), from_tag="rs1")

        def invite():
            c.request("INVITE", ruri=f"sip:{MAILBOX}@{c.remote}",
                      body=sdp_offer("127.0.0.1", 40000), **fields)
            r = c.recv_response(2.0)
            assert r is not None and r.status == 302, r and r.raw
            return Contact(r.header("contact"))

        first = invite()
        svc.stop()
        wait_for(lambda: env.find_instance(env.status(), "e2e-1") is None, 5,
                 what="the stopped instance forgotten")
        env.start_service()
        again = invite()
        assert again.token != first.token, (first.value, again.value)
        follow_302(again, "the restarted UM service refused the new token")


def test_each_302_echoes_its_own_invite(running):
    """The router reuses the memory of finished calls for new ones: a 302
    must still carry exactly its own INVITE's Via lines and Call-ID, whether
    the call before it had short or long headers, one at a time and with
    several calls waiting for their ack together."""
    env = running
    long_via = "Via: SIP/2.0/UDP proxy.invalid:5060;branch=z9hG4bK" + "L" * 1800
    sizes = ["short", "long", "short", "short", "long", "long", "short"]
    with RawSip("127.0.0.1", env.router_port, "udp", strict=True) as c:
        def send(size):
            extra = (long_via,) if size == "long" else ()
            f = c.request("INVITE", ruri=f"sip:{MAILBOX}@{c.remote}",
                          body=sdp_offer("127.0.0.1", 40000), headers=extra)
            return f["call_id"], f["branch"], size

        def check(sent, r):
            assert r is not None and r.status == 302, r and r.raw
            by_call = {s[0]: s for s in sent}
            call_id = r.header("call-id")
            assert call_id in by_call, (call_id, list(by_call))
            _, branch, size = by_call.pop(call_id)
            vias = r.headers["via"]
            assert branch in vias[0], (branch, vias)
            if size == "long":
                assert len(vias) == 2 and vias[1] == long_via.split(":", 1)[1].strip(), vias
            else:
                assert len(vias) == 1, vias
            sent.remove((call_id, branch, size))

        for size in sizes:                      # one at a time
            sent = [send(size)]
            check(sent, c.recv_response(2.0))
        sent = [send(s) for s in sizes * 2]     # 14 waiting together
        for _ in range(len(sizes) * 2):
            check(sent, c.recv_response(3.0))
        assert not sent


class FakeInstance:
    """A UM service instance on the router's IPC socket, with one IPv4 UDP
    SIP endpoint it never serves: it records the tokens of the CallRouted
    it gets and acks them while .acking is set ("refuse": acks with
    accepted = false; "vanish": closes its IPC connection instead)."""

    def __init__(self, env, instance_id, port, acking):
        self.id, self.port, self.acking = instance_id, port, acking
        self.tokens, self.routed = [], []
        self.ipc = ipcwire.IpcClient(env.sock)
        self.ipc.send(ipcwire.hello_umservice(4300 + port % 100))
        self.ipc.send(ipcwire.service_register_sip(instance_id, port))
        assert self.ipc.read().body_field == ipcwire.HELLO
        wait_for(lambda: env.find_instance(env.status(), instance_id), 5,
                 what=f"{instance_id} registered")
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            # wait for a frame's first byte, then read it whole: a read
            # that timed out between a frame's length and its body would
            # lose the length and read the rest as garbage
            try:
                ready, _, _ = select.select([self.ipc.sock], [], [], 0.2)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            try:
                m = self.ipc.read(timeout=5)
            except (TimeoutError, OSError):
                return
            if m is None:
                return
            if m.body_field == ipcwire.CALL_ROUTED:
                self.tokens.append(m.body[1][0])
                self.routed.append(m.body)
                if self.acking == "vanish":
                    self.ipc.sock.shutdown(socket.SHUT_RDWR)
                    return
                if self.acking:
                    self.ipc.send(ipcwire.call_routed_ack(
                        m.body[1][0], accepted=self.acking != "refuse"))

    def close(self):
        self.running = False
        self.thread.join(2)
        self.ipc.close()


def _timed_invite(env):
    """One INVITE from a raw UDP client: (final response, seconds)."""
    with RawSip("127.0.0.1", env.router_port, "udp") as c:
        t = time.monotonic()
        r = _invite(c)
        return r, time.monotonic() - t


def test_instance_fqdn_preferred_in_contact(env):
    """(5) A UM service with ExternalHostFqdn set is named by it in the
    302's Contact (over either family and transport) rather than by an
    address literal, with its port, transport and token."""
    env.umctl_ok("set-umservice", "--external-host-fqdn", "um1.example.test")
    env.start_router()
    env.start_service()
    for family, transport in COMBOS:
        call = sipp_invite(LOOPBACK[family], env.router_port, transport, MAILBOX, (), 302)
        assert call.ok, str(call)
        c = Contact(call.final.header("contact"))
        assert c.host == "um1.example.test", c.value
        assert c.port == env.service_port and c.transport == transport, c.value
        assert c.token and TOKEN_RE.match(c.token), c.value


def test_call_routed_carries_the_context(env):
    """(4) What the instance is told before the 302: the token in the
    Contact (128 bits), the Call-ID, the kind, the mailbox, the dial plan,
    the gateway, the caller, and an expiry about 30 s ahead."""
    env.start_router()
    fake = FakeInstance(env, "ctx-1", 5071, acking=True)
    cases = {   # name: (Request-URI user, headers, kind, mailbox)
        "diversion": (PILOT, ["Diversion: <sip:1001@pbx.example.test>;reason=no-answer"],
                      1, MAILBOX),
        "history_info": (PILOT, ["History-Info: <sip:1001@pbx.example.test>;index=1, "
                                 f"<sip:{PILOT}@pbx.example.test>;index=1.1"], 1, MAILBOX),
        "direct_to_voicemail": (MAILBOX, [], 1, MAILBOX),
        "subscriber_access": (ACCESS, [], 2, ""),
    }
    try:
        for name, (ruser, headers, kind, mailbox) in cases.items():
            with RawSip("127.0.0.1", env.router_port, "udp") as c:
                sent = c.request("INVITE", ruri=f"sip:{ruser}@{c.remote}", headers=headers,
                                 body=sdp_offer("127.0.0.1", 40000))
                now_ms = time.time() * 1000
                r = c.recv_response(3.0)
            assert r is not None and r.status == 302, f"{name}: {r and r.raw}"
            body = fake.routed[-1]
            first = {f: v[0] for f, v in body.items()}
            token = first[1]
            assert len(token) == 16, f"{name}: token of {len(token)} bytes"
            assert f"umtoken={token.hex()}" in r.header("contact"), (name, r.header("contact"))
            assert first[2].decode() == sent["call_id"], (name, first)
            assert first.get(3, 0) == kind, (name, first)
            assert first.get(4, b"").decode() == mailbox, (name, first)
            assert first[5].decode() == "default", (name, first)
            assert first[6].decode() == GATEWAY_OF["IPv4"], (name, first)
            assert first[7].decode() == "4255550100", (name, first)
            assert 25_000 <= first[8] - now_ms <= 35_000, (name, first[8] - now_ms)
        assert len({b[1][0] for b in fake.routed}) == len(cases), "a token was reused"
    finally:
        fake.close()


@pytest.mark.parametrize("mode", ["refuse", "vanish"])
def test_refusing_or_vanishing_instance_passes_the_call_on(env, mode):
    """(4) An instance that refuses a CallRouted (accepted = false), or
    closes its IPC connection while a call waits for its ack, passes the
    call on at once, without the ~200 ms ack timeout: to the next
    instance, or 503 with Retry-After when there is none."""
    env.start_router()
    odd = FakeInstance(env, f"{mode}-1", 5071, acking=mode)
    acker = FakeInstance(env, "acker-1", 5072, acking=True)
    fakes = [odd, acker]
    try:
        # round robin between two idle instances: the odd one is met
        # within a few calls (a vanished one is met once)
        results = [_timed_invite(env) for _ in range(4)]
        for r, took in results:
            assert r is not None and r.status == 302, r and r.raw
            assert ":5072;" in r.header("contact"), r.header("contact")
            assert took < 0.19, f"302 after {took:.3f} s: the ack timeout, not the {mode}"
        assert (len(odd.tokens) == 1) if mode == "vanish" else (len(odd.tokens) >= 1), \
            (odd.tokens, acker.tokens)
        router = router_of(env)
        assert not log_lines(router, "no CallRoutedAck for Call-ID"), router.tail(5)
        if mode == "refuse":
            assert log_lines(router, f"instance {mode}-1 refused Call-ID"), router.tail(5)
            assert _inst(env, f"{mode}-1")["ack_timeouts"] == 0
            # alone, it refuses every call: 503 at once
            acker.close()
            fakes.remove(acker)
            wait_for(lambda: not env.find_instance(env.status(), "acker-1"), 5,
                     what="acker-1 gone")
            before = len(odd.tokens)
            r, took = _timed_invite(env)
        else:
            wait_for(lambda: not env.find_instance(env.status(), f"{mode}-1"), 5,
                     what=f"{mode}-1 gone")
            # alone (the other one vanishing with the call): 503 at once
            acker.close()
            fakes.remove(acker)
            wait_for(lambda: not env.find_instance(env.status(), "acker-1"), 5,
                     what="acker-1 gone")
            last = FakeInstance(env, f"{mode}-2", 5073, acking=mode)
            fakes.append(last)
            odd, before = last, 0
            r, took = _timed_invite(env)
        assert r is not None and r.status == 503, r and r.raw
        assert re.match(r"^\d+", r.header("retry-after") or ""), r.raw
        assert took < 0.19, f"503 after {took:.3f} s"
        assert len(odd.tokens) == before + 1, odd.tokens
    finally:
        for f in fakes:
            f.close()


def test_silent_instance_times_out_to_the_next(env):
    """(4) An instance that takes CallRouted and never acks holds a call for
    about 200 ms; the call then goes to the next instance, and the silent
    one gets calls only when no other can take them, until it acks again.
    Alone, it still gets them: 503 after ~200 ms, each call on its own
    deadline."""
    env.start_router()
    silent = FakeInstance(env, "silent-1", 5071, acking=False)
    acker = FakeInstance(env, "acker-1", 5072, acking=True)
    fakes = [silent, acker]

    def call(expect):
        r, took = _timed_invite(env)
        assert r is not None and r.status == expect, r and r.raw
        return r, took

    try:
        # one call meets the silent instance, waits ~200 ms, goes on; then
        # the silent one is passed over
        results = [call(302) for _ in range(6)]
        assert len(silent.tokens) == 1 and len(acker.tokens) == 6, \
            (silent.tokens, acker.tokens)
        for r, took in results:
            assert ":5072;" in r.header("contact"), r.header("contact")
        slow = [took for _, took in results if took >= 0.19]
        assert len(slow) == 1 and slow[0] <= 1.0, [took for _, took in results]
        assert log_lines(router_of(env), "no CallRoutedAck for Call-ID"), "no log line"
        assert log_lines(router_of(env), "other instances first for 10 s"), "no log line"
        st = _inst(env, "silent-1")
        assert st["ack_timeouts"] == 1 and 5000 < st["passed_over_ms"] <= 10000, st
        assert _inst(env, "acker-1")["ack_timeouts"] == 0
        out = env.umctl_ok("get-umactivecalls").out
        assert re.search(r"PassedOver +\d+\.\d s more \(an ack timed out", out), out

        # alone: still tried; each call waits for its own deadline, then 503
        acker.close()
        fakes.remove(acker)
        wait_for(lambda: not env.find_instance(env.status(), "acker-1"), 5,
                 what="acker-1 gone")
        with RawSip("127.0.0.1", env.router_port, "udp") as c1, \
                RawSip("127.0.0.1", env.router_port, "udp") as c2:
            sent = []
            for c in (c1, c2):
                sent.append(time.monotonic())
                c.request("INVITE", ruri=f"sip:{MAILBOX}@{c.remote}",
                          body=sdp_offer("127.0.0.1", 40000))
                time.sleep(0.1)
            for c, t in zip((c1, c2), sent):
                r = c.recv_response(3.0)
                took = time.monotonic() - t
                assert r is not None and r.status == 503, r and r.raw
                assert "no UM service instance" in r.reason, r.reason
                assert 0.19 <= took <= 1.0, f"503 after {took:.3f} s"
        assert len(silent.tokens) == 3

        # it answers again (a late ack is enough): back in the rotation
        silent.acking = True
        silent.ipc.send(ipcwire.call_routed_ack(silent.tokens[0]))
        fakes.append(FakeInstance(env, "acker-2", 5073, acking=True))
        contacts = {call(302)[0].header("contact").split(";")[0][-5:] for _ in range(4)}
        assert contacts == {":5071", ":5073"}, contacts
        st = _inst(env, "silent-1")
        assert st["ack_timeouts"] == 3 and st["passed_over_ms"] == 0, st
    finally:
        for f in fakes:
            f.close()
