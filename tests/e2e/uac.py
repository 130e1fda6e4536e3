"""A small scripted SIP user agent (UDP or TCP) with an RTP endpoint, for
tests that need control a softphone does not give: exact SDP bodies,
hand-made RTP (hostile packets, RFC 4733 events) and real-time knowledge of
what the far end plays.

    ua = SipUA("127.0.0.1", "udp")
    r = ua.invite("127.0.0.1", port, "1001", sdp)    # final response; 2xx ACKed
    ...
    ua.bye(); ua.close()

Every wait is bounded; close() stops the threads and sockets.
"""

import queue
import random
import re
import socket
import struct
import threading
import time
import uuid

import audio
from conftest import hostport

T1 = 0.5


def _parse_message(raw):
    """(start line, headers {lower name: [values]}, body) of one message."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    headers = {}
    compact = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
               "l": "content-length", "c": "content-type"}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            k = k.strip().lower()
            headers.setdefault(compact.get(k, k), []).append(v.strip())
    return lines[0], headers, body


class SipMessage:
    def __init__(self, raw):
        self.raw = raw
        self.start, self.headers, self.body = _parse_message(raw)
        self.is_response = self.start.startswith("SIP/2.0 ")
        if self.is_response:
            self.status = int(self.start.split(" ", 2)[1])
            self.method = None
        else:
            self.status = None
            self.method = self.start.split(" ", 1)[0]

    def header(self, name):
        v = self.headers.get(name.lower())
        return v[0] if v else None

    def all(self, name):
        return self.headers.get(name.lower(), [])

    @property
    def cseq_method(self):
        c = self.header("cseq") or ""
        return c.split()[-1] if c else None

    def __repr__(self):
        return f"<SipMessage {self.start!r}>"


class SipUA:
    def __init__(self, host="127.0.0.1", transport="udp", user="4255550142",
                 display="E2E UA"):
        self.host = host
        self.transport = transport
        self.user = user
        self.display = display
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.fam = fam
        self.sock = None
        self.peer = None
        self.inbox = queue.Queue()
        self.log = []            # (direction, first line) for messages
        self.requests = []       # in-dialog requests received (BYE, ...)
        self._stop = False
        self._thread = None
        if transport == "udp":
            self.sock = socket.socket(fam, socket.SOCK_DGRAM)
            self.sock.bind((host, 0))
            self.port = self.sock.getsockname()[1]
            self._thread = threading.Thread(target=self._recv_udp, daemon=True)
            self._thread.start()
        else:
            self.port = None     # bound at connect()
        self.call_id = uuid.uuid4().hex + "@e2e"
        self.from_tag = uuid.uuid4().hex[:10]
        self.to_hdr = None
        self.remote_target = None
        self.route_to = None
        self.cseq = 0
        self.invite_branch = None
        self.invite_to = None

    # ------------------------------------------------------------------ transport

    def connect(self, host, port):
        """Sets the next hop (for TCP: connects)."""
        self.peer = (host, port)
        if self.transport == "tcp" and self.sock is None:
            s = socket.socket(self.fam, socket.SOCK_STREAM)
            s.bind((self.host, 0))
            s.settimeout(5)
            s.connect((host, port))
            s.settimeout(None)
            self.sock = s
            self.port = s.getsockname()[1]
            self._thread = threading.Thread(target=self._recv_tcp, daemon=True)
            self._thread.start()

    def _deliver(self, raw):
        try:
            m = SipMessage(raw)
        except (ValueError, IndexError):
            return
        self.log.append(("in", m.start))
        if not m.is_response and m.method in ("BYE", "OPTIONS", "INFO", "UPDATE",
                                               "NOTIFY", "INVITE", "CANCEL"):
            self.requests.append(m)
            if m.method != "INVITE":
                self._respond(m, 200, "OK")
        self.inbox.put(m)

    def _recv_udp(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                data, _ = self.sock.recvfrom(70000)
            except socket.timeout:
                continue
            except OSError:
                return
            self._deliver(data)

    def _recv_tcp(self):
        buf = b""
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                self.log.append(("in", "<TCP connection closed>"))
                return
            buf += data
            while True:
                buf = buf.lstrip(b"\r\n")
                if b"\r\n\r\n" not in buf:
                    break
                head, rest = buf.split(b"\r\n\r\n", 1)
                m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
                n = int(m.group(1)) if m else 0
                if len(rest) < n:
                    break
                self._deliver(head + b"\r\n\r\n" + rest[:n])
                buf = rest[n:]

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode()
        if self.transport == "udp":
            self.sock.sendto(data, self.peer)
        else:
            self.sock.sendall(data)
        self.log.append(("out", data.split(b"\r\n", 1)[0].decode(errors="replace")))

    def close(self):
        self._stop = True
        if self.sock is not None:
            try:
                if self.transport == "tcp":
                    self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
        if self._thread is not None:
            self._thread.join(timeout=2)

    # ------------------------------------------------------------------ messages

    @property
    def local(self):
        return hostport(self.host, self.port)

    def _via(self, branch):
        return f"SIP/2.0/{self.transport.upper()} {self.local};branch={branch};rport"

    def _respond(self, req, status, reason):
        lines = [f"SIP/2.0 {status} {reason}"]
        for v in req.all("via"):
            lines.append(f"Via: {v}")
        lines += [f"From: {req.header('from')}", f"To: {req.header('to')}",
                  f"Call-ID: {req.header('call-id')}", f"CSeq: {req.header('cseq')}",
                  "Content-Length: 0", "", ""]
        try:
            self.send_raw("\r\n".join(lines))
        except OSError:
            pass

    def request(self, method, ruri, body=b"", ctype="application/sdp", extra=(),
                cseq=None, branch=None, to=None):
        """Builds and sends a request; returns its branch."""
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        branch = branch or "z9hG4bK" + uuid.uuid4().hex[:16]
        if isinstance(body, str):
            body = body.encode()
        lines = [f"{method} {ruri} SIP/2.0", f"Via: {self._via(branch)}",
                 "Max-Forwards: 70",
                 f"From: \"{self.display}\" <sip:{self.user}@{self.local}>;tag={self.from_tag}",
                 f"To: {to or self.to_hdr or '<' + ruri + '>'}",
                 f"Call-ID: {self.call_id}", f"CSeq: {cseq} {method}",
                 f"Contact: <sip:{self.user}@{self.local};transport={self.transport}>",
                 "User-Agent: OpenUM-e2e-uac"]
        lines += list(extra)
        if body:
            lines.append(f"Content-Type: {ctype}")
        lines.append(f"Content-Length: {len(body)}")
        msg = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        self.send_raw(msg)
        return branch, msg

    def wait(self, pred, timeout, what="a message"):
        """The first incoming message for which pred(m) is true."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what} within {timeout} s; SIP log: {self.log[-12:]}")
            try:
                m = self.inbox.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            if pred(m):
                return m

    def invite(self, host, port, ruser, sdp, extra=(), timeout=10, ruri=None,
               ack_body=None):
        """Sends an INVITE (retransmitted over UDP) and returns the final
        response. A 2xx is ACKed (dialog set up; ack_body(response), if
        given, makes the ACK's SDP: the answer to an offer in the 2xx); a
        non-2xx is ACKed on the INVITE's branch."""
        self.connect(host, port)
        ruri = ruri or f"sip:{ruser}@{hostport(host, port)}"
        self.invite_to = f"<sip:{ruser}@{hostport(host, port)}>"
        self.to_hdr = None
        branch, msg = self.request("INVITE", ruri, sdp, extra=extra, to=self.invite_to)
        self.invite_branch = branch
        cseq = self.cseq
        deadline = time.monotonic() + timeout
        interval, next_tx, provisional = T1, time.monotonic() + T1, False
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise AssertionError(f"no final answer to the INVITE within {timeout} s;"
                                     f" SIP log: {self.log[-12:]}")
            try:
                m = self.inbox.get(timeout=max(0.01, min(next_tx, deadline) - now))
            except queue.Empty:
                if self.transport == "udp" and not provisional:
                    self.send_raw(msg)
                    interval = min(interval * 2, 4.0)
                next_tx = time.monotonic() + interval
                continue
            if not m.is_response or m.cseq_method != "INVITE":
                continue
            if m.status < 200:
                provisional = True
                next_tx = deadline
                continue
            break
        to = m.header("to")
        if 200 <= m.status < 300:
            self.to_hdr = to
            contact = m.header("contact") or ""
            cm = re.search(r"<([^>]+)>", contact)
            self.remote_target = cm.group(1) if cm else ruri
            self.request("ACK", self.remote_target, ack_body(m) if ack_body else b"",
                         cseq=cseq, to=to)
        else:
            self._ack_non2xx(ruri, branch, to, cseq)
        return m

    def _ack_non2xx(self, ruri, branch, to, cseq):
        """The ACK of a non-2xx final answer: part of the INVITE transaction
        (same branch and Request-URI)."""
        lines = [f"ACK {ruri} SIP/2.0", f"Via: {self._via(branch)}",
                 "Max-Forwards: 70",
                 f"From: \"{self.display}\" <sip:{self.user}@{self.local}>;tag={self.from_tag}",
                 f"To: {to}", f"Call-ID: {self.call_id}", f"CSeq: {cseq} ACK",
                 "Content-Length: 0", "", ""]
        self.send_raw("\r\n".join(lines))

    def reinvite(self, sdp, timeout=5):
        """A re-INVITE in the dialog; returns the final response (2xx
        ACKed)."""
        branch, _ = self.request("INVITE", self.remote_target, sdp)
        cseq = self.cseq
        m = self.wait(lambda m: m.is_response and m.cseq_method == "INVITE" and
                      m.status >= 200 and (m.header("cseq") or "").startswith(f"{cseq} "),
                      timeout, "final answer to the re-INVITE")
        if 200 <= m.status < 300:
            self.request("ACK", self.remote_target, cseq=cseq)
        else:
            self._ack_non2xx(self.remote_target, branch, m.header("to"), cseq)
        return m

    def bye(self, timeout=5):
        """Sends BYE in the dialog; returns the final status."""
        branch, _ = self.request("BYE", self.remote_target)
        m = self.wait(lambda m: m.is_response and m.cseq_method == "BYE" and m.status >= 200,
                      timeout, "answer to BYE")
        return m.status

    def wait_request(self, method, timeout):
        """An in-dialog request the far end sent (already answered 200)."""
        deadline = time.monotonic() + timeout
        while True:
            for r in self.requests:
                if r.method == method:
                    return r
            if time.monotonic() >= deadline:
                raise AssertionError(f"no {method} from the far end within {timeout} s; "
                                     f"SIP log: {self.log[-12:]}")
            time.sleep(0.05)


# ---------------------------------------------------------------------- SDP


def sdp_offer(host, port, pts=(0, 8, 101), extra=""):
    ip = "IP6" if ":" in host else "IP4"
    fmt = " ".join(str(p) for p in pts)
    rtpmap = {0: "a=rtpmap:0 PCMU/8000", 8: "a=rtpmap:8 PCMA/8000",
              18: "a=rtpmap:18 G729/8000",
              101: "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15"}
    lines = ["v=0", f"o=e2e 1 1 IN {ip} {host}", "s=-", f"c=IN {ip} {host}", "t=0 0",
             f"m=audio {port} RTP/AVP {fmt}"]
    lines += [rtpmap[p] for p in pts if p in rtpmap]
    lines.append("a=ptime:20")
    body = "\r\n".join(lines) + "\r\n"
    return body + extra


def parse_sdp_answer(body):
    """(address, port, [payload types]) of the first audio m= line."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    c = re.search(r"(?m)^c=IN IP[46] (\S+)", text)
    m = re.search(r"(?m)^m=audio (\d+) RTP/AVP ([\d ]+)", text)
    assert c and m, f"no audio in SDP answer:\n{text}"
    return c.group(1), int(m.group(1)), [int(x) for x in m.group(2).split()]


# ---------------------------------------------------------------------- RTP


class RtpPeer:
    """Our RTP endpoint: records what arrives (by sequence number) and sends
    a paced 20 ms stream whose content can be queued at any time (silence
    when nothing is queued)."""

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self.fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(self.fam, socket.SOCK_DGRAM)
        # an even port for RTP, as a peer should
        for _ in range(100):
            p = random.randrange(32000, 32998, 2)
            try:
                self.sock.bind((host, p))
                break
            except OSError:
                continue
        self.port = self.sock.getsockname()[1]
        self.remote = None
        self.pt = 0
        self.te_pt = 101
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.ts = random.getrandbits(32)
        self.received = []          # (arrival, seq, pt, payload)
        self.packets = []           # (arrival, whole datagram)
        self.sources = set()
        self._queue = []
        self._lock = threading.Lock()
        self._stop = False
        self.sent = 0
        self._rx = threading.Thread(target=self._recv, daemon=True)
        self._rx.start()
        self._tx = None
        self._paused = False
        self.send_times = []

    def _recv(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                data, src = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) < 12:
                continue
            self.sources.add(src[:2])
            self.packets.append((time.monotonic(), data))
            pt = data[1] & 0x7F
            seq = struct.unpack("!H", data[2:4])[0]
            self.received.append((time.monotonic(), seq, pt, data[12:]))

    def heard(self, alaw=False):
        """The PCM heard so far, in arrival order (loopback: no reordering)."""
        pcm = []
        for _, _, pt, payload in list(self.received):
            if pt in (0, 8):
                pcm += audio.decode(payload, pt == 8)
        return pcm

    def paused(self, on):
        """Stops (on=True) or resumes sending: a phone that put the call on
        hold with a=sendonly and plays nothing."""
        self._paused = on

    def start(self, remote_host, remote_port, pt=0):
        self.remote = (remote_host, remote_port)
        self.pt = pt
        self._tx = threading.Thread(target=self._send_loop, daemon=True)
        self._tx.start()

    def queue_pcm(self, samples):
        frames = audio.rtp_frames(samples, alaw=self.pt == 8)
        with self._lock:
            self._queue += [(self.pt, f, False) for f in frames]

    def queue_dtmf(self, event, duration_ms=200, end_repeats=3):
        """An RFC 4733 event: packets every 20 ms, then end packets."""
        pkts = []
        steps = max(1, duration_ms // 20)
        for i in range(steps):
            pkts.append((self.te_pt, struct.pack("!BBH", event, 10, (i + 1) * 160), i == 0))
        for _ in range(end_repeats):
            pkts.append((self.te_pt, struct.pack("!BBH", event, 0x80 | 10, steps * 160), False))
        with self._lock:
            self._queue.append(("dtmf", pkts, None))

    def send_shuffled(self, samples, displace=((5, 1, 1),), drop_every=0):
        """Sends samples (blocking, paced at 20 ms) as a network would
        deliver them badly: for each (period, offset, distance) of
        `displace`, the packets j with j % period == offset are sent
        `distance` packet times late (after their successors); with
        drop_every, one packet in drop_every is lost. The regular stream
        pauses meanwhile. Returns the number of packets dropped."""
        frames = audio.rtp_frames(samples, alaw=self.pt == 8)
        self._paused = True
        time.sleep(0.03)
        base_seq, base_ts = self.seq, self.ts
        order = audio.reorder(len(frames), displace)
        dropped = [j for j in order if drop_every and j % drop_every == drop_every // 2]
        t0 = time.monotonic()
        for k, j in enumerate(order):
            if j not in dropped:
                pkt = audio.rtp_packet(self.pt, base_seq + j, base_ts + 160 * j, self.ssrc,
                                       frames[j])
                self.sock.sendto(pkt, self.remote)
                self.send_times.append(time.monotonic())
            self._sleep_until(t0 + (k + 1) * 0.02)
        self.seq = (base_seq + len(frames)) & 0xFFFF
        self.ts = base_ts + 160 * len(frames)
        self._paused = False
        return len(dropped)

    def queue_len(self):
        with self._lock:
            return len(self._queue)

    def _send_loop(self):
        silence = audio.encode([0] * 160, self.pt == 8)
        t0 = time.monotonic()
        k = 0
        while not self._stop:
            if self._paused:
                self.ts += 160
                k += 1
                self._sleep_until(t0 + k * 0.02)
                continue
            with self._lock:
                item = self._queue.pop(0) if self._queue else None
            if item and item[0] == "dtmf":
                # the event's packets share one timestamp; 20 ms apart
                ev_ts = self.ts
                for i, (pt, payload, marker) in enumerate(item[1]):
                    self._send(pt, payload, marker, ts=ev_ts)
                    k += 1
                    self._sleep_until(t0 + k * 0.02)
                self.ts += 160 * len(item[1])
                continue
            pt, payload, marker = item if item else (self.pt, silence, False)
            self._send(pt, payload, marker)
            self.ts += 160
            k += 1
            self._sleep_until(t0 + k * 0.02)

    def _sleep_until(self, t):
        d = t - time.monotonic() - 0.002
        if d > 0:
            time.sleep(d)
        while time.monotonic() < t:
            time.sleep(0.0002)

    def late_sends(self, since, limit=0.035):
        """How many of our packets since `since` left more than `limit`
        seconds after the one before (this Python sender's own jitter,
        which a receiver may rightly turn into a gap)."""
        st = [t for t in self.send_times if t >= since]
        return sum(1 for i in range(1, len(st)) if st[i] - st[i - 1] > limit)

    def _send(self, pt, payload, marker=False, ts=None):
        pkt = audio.rtp_packet(pt, self.seq, self.ts if ts is None else ts, self.ssrc,
                               payload, marker)
        self.seq = (self.seq + 1) & 0xFFFF
        try:
            self.sock.sendto(pkt, self.remote)
            self.sent += 1
            self.send_times.append(time.monotonic())
        except OSError:
            pass

    def sendto_raw(self, data, port_offset=0):
        """A datagram from our RTP socket to the far end's RTP (or, with
        port_offset 1, RTCP) port."""
        self.sock.sendto(data, (self.remote[0], self.remote[1] + port_offset))

    def close(self):
        self._stop = True
        for t in (self._tx, self._rx):
            if t is not None:
                t.join(timeout=2)
        self.sock.close()
