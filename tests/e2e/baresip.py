"""A headless baresip 1.0.0 driven over ctrl_tcp (NOTES-stack.md §3).

    b = Baresip(workdir, host="127.0.0.1", wav="/tmp/x.wav")
    b.start()
    b.dial("sip:1001@127.0.0.1:5060;transport=tcp")
    b.wait_event("CALL_ESTABLISHED", 10)
    b.sndcode("#"); b.hangup(); ...
    b.stop()          # quit, then kill; always call it (finalizer)

The audio it sends comes from an aufile source (a WAV, played from the
start of the call; at its end baresip hangs up by itself); what it heard is
recorded by the sndfile module as *-dec.wav under rec/ (what it sent as
*-enc.wav). Every wait is bounded.
"""

import json
import random
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

from conftest import _bindable, free_port, hostport, wait_for

BARESIP = shutil.which("baresip") or "/usr/bin/baresip"
MODULES = "/usr/lib/baresip/modules"

_rtp_blocks = set()


def _rtp_range(width=20):
    """An even-based block of free UDP ports for baresip's rtp_ports,
    outside free_port()'s range (20000-32000) and umservice's (40000+)."""
    for _ in range(200):
        base = random.randrange(33000, 39800, width)
        if base in _rtp_blocks:
            continue
        if all(_bindable(p) for p in (base, base + 1, base + width - 1)):
            _rtp_blocks.add(base)
            return base, base + width - 1
    raise RuntimeError("no free RTP port block for baresip")


class Baresip:
    def __init__(self, workdir, host="127.0.0.1", wav=None, user="4255550123",
                 display="E2E Baresip", netns=None, args=(), answermode=None):
        """netns: a netns.Host to run in (its ctrl_tcp is reached from
        inside that namespace); args: more command-line flags (-s: SIP
        trace into the log); answermode="auto": incoming calls to `user`
        are answered at once (a phone for outbound calls; see phone.py)."""
        self.dir = Path(workdir)
        self.netns = netns
        self.args = [str(a) for a in args]
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.rec = self.dir / "rec"
        self.rec.mkdir(exist_ok=True)
        self.sip_port = free_port()
        self.ctrl_port = free_port()
        self.rtp_lo, self.rtp_hi = _rtp_range()
        self.wav = wav
        self.user = user
        self.proc = None
        self.sock = None
        self.events = []
        self.responses = {}
        self._cv = threading.Condition()
        self._reader = None
        self._token = 0
        self.log_path = self.dir / "baresip.log"
        # answermode="auto": incoming calls to `user` are answered at once
        # (a phone for outbound calls; see phone.py).
        self.answermode = answermode
        self._write_config(display)

    def _write_config(self, display):
        src = f"aufile,{self.wav}" if self.wav else "ausine,440"
        cfg = f"""poll_method epoll
sip_listen {hostport(self.host, self.sip_port)}
net_interface {self.host}
audio_player aubridge,nil
audio_alert aubridge,nil
audio_source {src}
audio_srate 8000
audio_channels 1
module_path {MODULES}
module g711.so
module aufile.so
module aubridge.so
module sndfile.so
module ctrl_tcp.so
module_app account.so
module_app menu.so
snd_path {self.rec}
ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}
rtp_ports {self.rtp_lo}-{self.rtp_hi}
rtp_timeout 0
"""
        (self.dir / "config").write_text(cfg)
        aor = f"sip:{self.user}@{hostport(self.host, self.sip_port)}"
        # PCMA first: the offer lists both G.711 laws and telephone-event.
        answer = f";answermode={self.answermode}" if self.answermode else ""
        (self.dir / "accounts").write_text(
            f"\"{display}\" <{aor}>;regint=0;audio_codecs=PCMA,PCMU{answer}\n")
        (self.dir / "contacts").write_text("")

    # ---------------------------------------------------------------- process

    def start(self, timeout=10):
        log = open(self.log_path, "ab")
        try:
            argv = [BARESIP, "-f", str(self.dir), *self.args]
            self.proc = subprocess.Popen(
                self.netns.wrap(argv) if self.netns else argv, stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, cwd=self.dir)
        finally:
            log.close()

        def connect():
            if self.proc.poll() is not None:
                raise AssertionError(f"baresip exited with {self.proc.returncode}:\n"
                                     f"{self.log_tail()}")
            opener = self.netns.create_connection if self.netns else socket.create_connection
            try:
                return opener(("127.0.0.1", self.ctrl_port), 0.5)
            except OSError:
                return None
        self.sock = wait_for(connect, timeout, 0.1, "baresip's ctrl_tcp")
        self.sock.settimeout(None)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """quit over ctrl_tcp, then SIGTERM/SIGKILL; safe to call twice."""
        if self.proc is None:
            return
        if self.alive() and self.sock is not None:
            try:
                self._send({"command": "quit"})
            except OSError:
                pass
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                pass
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    # ---------------------------------------------------------------- ctrl_tcp

    def _read(self):
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except (OSError, AttributeError):
                data = b""
            if not data:
                with self._cv:
                    self.events.append({"type": "_CTRL_CLOSED"})
                    self._cv.notify_all()
                return
            buf += data
            while True:
                colon = buf.find(b":")
                if colon <= 0 or not buf[:colon].isdigit():
                    break
                n = int(buf[:colon])
                if len(buf) < colon + 1 + n + 1:
                    break
                body = buf[colon + 1:colon + 1 + n]
                buf = buf[colon + 2 + n:]
                try:
                    msg = json.loads(body)
                except ValueError:
                    continue
                with self._cv:
                    if msg.get("response"):
                        self.responses[msg.get("token")] = msg
                    else:
                        msg["_t"] = time.monotonic()
                        self.events.append(msg)
                    self._cv.notify_all()

    def _send(self, obj):
        body = json.dumps(obj).encode()
        self.sock.sendall(str(len(body)).encode() + b":" + body + b",")

    def command(self, cmd, params=None, timeout=5):
        """Sends a command and returns its response (dict)."""
        self._token += 1
        tok = f"t{self._token}"
        obj = {"command": cmd, "token": tok}
        if params is not None:
            obj["params"] = params
        self._send(obj)
        deadline = time.monotonic() + timeout
        with self._cv:
            while tok not in self.responses:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"baresip: no response to {cmd} in {timeout} s")
                self._cv.wait(left)
            return self.responses.pop(tok)

    def dial(self, uri):
        return self.command("dial", uri)

    def hangup(self):
        return self.command("hangup")

    def sndcode(self, key):
        return self.command("sndcode", key)

    def send_digits(self, keys, gap=0.2):
        """Types keys one at a time, as a person would: each key is its own
        RFC 4733 event (a sndcode command), `gap` seconds after the one
        before. Fails when baresip refuses one (e.g. the call is gone)."""
        for i, k in enumerate(keys):
            if i:
                time.sleep(gap)
            r = self.sndcode(k)
            if r.get("ok") is False:
                raise AssertionError(f"baresip refused key {k!r} of {keys!r}: {r}; "
                                     f"events {self.event_types()}")

    def event_types(self):
        with self._cv:
            return [e.get("type") for e in self.events]

    def find_event(self, etype):
        with self._cv:
            for e in self.events:
                if e.get("type") == etype:
                    return e
        return None

    def wait_event(self, etype, timeout, fail_on=("CALL_CLOSED",)):
        """The first event of type etype (already seen or coming within
        timeout seconds). Fails early when an event in fail_on comes first
        (e.g. the call closed while waiting for it to be established)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for e in self.events:
                    t = e.get("type")
                    if t == etype:
                        return e
                    if t in fail_on or t == "_CTRL_CLOSED":
                        raise AssertionError(
                            f"baresip: {t} ({e.get('param', '')}) while waiting for "
                            f"{etype}; events {self.event_types()}\n{self.log_tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"baresip: no {etype} within {timeout} s; events "
                        f"{[x.get('type') for x in self.events]}\n{self.log_tail()}")
                self._cv.wait(min(left, 0.5))
                if not self.alive():
                    raise AssertionError(f"baresip exited ({self.proc.returncode}) "
                                         f"waiting for {etype}\n{self.log_tail()}")

    # ---------------------------------------------------------------- recordings

    def recordings(self, which="dec"):
        """Every sndfile recording of this baresip (one per call), oldest
        first (the names carry the call's start time)."""
        return sorted(self.rec.glob(f"*-{which}.wav"))

    def recording(self, which="dec"):
        """The path of the sndfile recording (dec = heard, enc = sent)."""
        files = sorted(self.rec.glob(f"*-{which}.wav"))
        return files[-1] if files else None
