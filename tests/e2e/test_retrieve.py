"""Subscriber access ("Outlook Voice Access") process tests.

A subscriber calls the access number 5000 through the call router (302 to
umservice), logs on with extension and PIN by touch-tone (RFC 4733), and
listens to, saves, deletes and marks unread the messages in mailbox 1001;
changes the PIN, records greetings and turns the out-of-office greeting on
and off by phone. Logon failures count towards the lockout of the mailbox.

Peers: baresip 1.0.0 (baresip.py) is the subscriber: its WAV source is a
long silence (or, to record a greeting, a tone pattern), it types keys one
at a time ~200 ms apart (Baresip.send_digits), and what it hears is read
live from its sndfile recording (Ear, below). The messages it listens to
are left beforehand by other baresips (deposit_baresip: # skips the
greeting) and checked in the store to be whole; each is a distinct
sequence of tone bursts (audio.bursts), so the Goertzel tracker
(audio.track / segments / find_sequence_span) tells which message was
heard, in which order, and that speech (the envelope, the prompts) came
between them. Callers who must hear a greeting are the scripted UA
(uac.py), which hears live.

The primary evidence is the effect: message states (umctl get-voicemail
--json), FailedLogons / Locked / OofGreetingEnabled (umctl get-ummailbox
--json), the audio heard (message tone patterns, their order and
positions, the greeting before the beep), the call ended by umservice's
BYE within a bound. umservice's log lines are only secondary evidence:
where one is missing the case adds a note (printed with the result), it
does not fail.

Every case runs in the background from the start of the module with its
own state directory, ports and daemons (the pattern of test_deposit.py);
each test waits for its case's outcome. Run with:
    /usr/bin/python3 -m pytest -q tests/e2e/test_retrieve.py
OPENUM_KEEP=1 keeps every case's directory (logs, recordings), not only
those of failed cases.
"""

import concurrent.futures
import os
import re
import shutil
import struct
import tempfile
import threading
import time
from pathlib import Path

import pytest

import audio
import campaign as camp
import test_deposit as dep
import uac
from baresip import Baresip
from conftest import Env, hostport, wait_for

MAILBOX = "1001"
ACCESS = "5000"           # the default dial plan's AccessTelephoneNumbers
PIN = "246813"            # set with umctl at the start of every case
PIN_OLD = "864217"        # an earlier PIN (in the history) for the PIN cases
PIN_NEW = "591736"        # a compliant new PIN
WRONG = ["975310", "308642", "713590"]
BEEP = 1000

# Messages: distinct tone sequences (none at the 1000 Hz beep). A message
# is its sequence twice (4 s).
SEQ_A = [600, 900, 1200, 1500]
SEQ_B = [750, 1050, 1350, 1650]
SEQ_C = [500, 800, 1100, 1400]
SEQ_G = [450, 700, 1300, 1800]        # the greeting recorded by phone
FREQS = sorted(set(SEQ_A + SEQ_B + SEQ_C + SEQ_G))
# A 12 s message of 1 s tones rising in steps: which one is heard tells the
# position in the message (for rewind, forward, pause, replay).
RAMP = [400, 500, 600, 700, 800, 900, 1100, 1200, 1300, 1400, 1500, 1600]

MB = r"mailbox 1001(?: \([^)]*\))?"  # in log lines: "mailbox 1001 (default)"

# Depositing callers (number, display name)
ALICE = ("4255550111", "Alice Example")
BOB = ("4255550122", "Bob Example")
CAROL = ("4255550133", "Carol Example")

CASE_TIMEOUT = 300
WORKERS = 13
START_GAP = 1.0           # seconds between the starts of two cases
QUIET = 1.2               # seconds of silence that end a prompt
FLOOR = -45.0             # dBFS of a 100 ms window that counts as sound

CASES = {}
PORTS = threading.Lock()   # free_port() and baresip's port blocks


case = camp.case_decorator(CASES)


# --------------------------------------------------------------------------
# the background cases (as in test_deposit.py)


class Ctx:
    """One case's world: an Env (state directory, ports, daemons) and the
    peers it started; close() stops everything."""

    def __init__(self, name):
        self.name = name
        self.base = Path(tempfile.mkdtemp(prefix=f"openum-ova-{name}-"))
        with PORTS:
            self.env = Env(self.base)
        self.peers = []
        self.error = None
        self.problems = []
        self.notes = []
        self.ncalls = 0

    def start(self, pin=PIN):
        """Router and umservice up; mailbox 1001's PIN set to pin."""
        env = self.env
        r = env.start_router(wait=False)
        env.wait_router(r, timeout=20)
        s = env.start_service(wait=False)
        env.wait_instance("e2e-1", port=env.service_port, daemon=s, timeout=20)
        # The default gateways are 127.0.0.1:5060 and [::1]:5060, which are
        # not ours: no message-waiting NOTIFYs to whatever listens there.
        for gw in env.get("get-umipgateway"):
            env.umctl_ok("set-umipgateway", "--identity", gw["Name"],
                         "--message-waiting-indicator-allowed", "false")
        if pin:
            set_mailbox(self, "--pin", pin)
        return env

    @property
    def service(self):
        return [d for d in self.env.daemons if d.name == "umservice"][-1]

    def note(self, text):
        self.notes.append(f"[{self.name}] {text}")

    def expect_log(self, pattern, what):
        """Secondary evidence: a note (not a failure) when umservice's log
        has no line matching pattern."""
        if not re.search(pattern, self.service.log()):
            self.note(f"umservice log has no line for {what} (/{pattern}/)")

    def baresip(self, host, samples=None, user="4255550123", display="E2E Subscriber"):
        self.ncalls += 1
        tag = f"b{self.ncalls}"
        wav = self.base / f"{tag}-source.wav"
        if samples is None:
            samples = SILENCE
        audio.write_wav(wav, samples)
        with PORTS:
            b = Baresip(self.base / tag, host=host, wav=wav, user=user, display=display)
        self.peers.append(b)
        return b.start()

    def close(self, ok):
        for p in reversed(self.peers):
            try:
                (p.stop if hasattr(p, "stop") else p.close)()
            except Exception as e:
                self.problems.append(f"stopping {p}: {e}")
        try:
            self.problems += self.env.stop_all()
        finally:
            self.env.kill_all()
        if ok and not self.problems and not os.environ.get("OPENUM_KEEP"):
            shutil.rmtree(self.base, ignore_errors=True)

    def peer_report(self):
        out = []
        for p in self.peers:
            if isinstance(p, Baresip):
                out.append(f"===== baresip {p.dir} events {p.event_types()}\n{p.log_tail(15)}")
        return "\n".join(out)


@pytest.fixture(scope="module")
def campaign(request):
    """Starts every selected case in the background (longest first)."""
    yield from camp.run(request, camp.Campaign(CASES, Ctx, WORKERS, CASE_TIMEOUT,
                                               START_GAP), LONGEST_FIRST)


# --------------------------------------------------------------------------
# the directory and the store


SILENCE = audio.silence(240.0)        # baresip hangs up at the end of its WAV


def mailbox(env):
    """`umctl get-ummailbox --extension 1001` (JSON)."""
    d = env.get("get-ummailbox", "--extension", MAILBOX)
    return d[0] if isinstance(d, list) else d


def set_mailbox(ctx, *args):
    """`umctl set-ummailbox --extension 1001 ARGS`, then waits until
    umservice has applied the change."""
    before = ctx.service.log().count("directory changed (ummailbox)")
    ctx.env.umctl_ok("set-ummailbox", "--extension", MAILBOX, *args)
    wait_for(lambda: ctx.service.log().count("directory changed (ummailbox)") > before,
             5, 0.05, "umservice to apply the mailbox change")


def wait_mailbox(env, what, pred, timeout=6):
    """Waits until pred(get-ummailbox) holds; the last state in the failure."""
    last = {}

    def ok():
        last["m"] = mailbox(env)
        return pred(last["m"])
    try:
        wait_for(ok, timeout, 0.1, what)
    except AssertionError:
        raise AssertionError(f"mailbox 1001 never {what} within {timeout} s; "
                             f"get-ummailbox: {last.get('m')}") from None
    return last["m"]


def failed_logons(env, n, timeout=6):
    return wait_mailbox(env, f"showed FailedLogons {n}",
                        lambda m: m.get("FailedLogons") == n, timeout)


def states(env):
    """{caller number: state} of mailbox 1001's messages."""
    return {m["CallerNumber"]: m["State"] for m in dep.messages(env)}


def wait_states(env, want, timeout=6, what=""):
    """Waits until every message of mailbox 1001 listed in want (by caller
    number) has the wanted state."""
    last = {}

    def ok():
        last["s"] = states(env)
        return all(last["s"].get(k) == v for k, v in want.items())
    try:
        wait_for(ok, timeout, 0.1, "message states")
    except AssertionError:
        names = {ALICE[0]: "A", BOB[0]: "B", CAROL[0]: "C"}
        got = {names.get(k, k): v for k, v in last.get("s", {}).items()}
        exp = {names.get(k, k): v for k, v in want.items()}
        raise AssertionError(f"{what}message states {got}, want {exp} "
                             f"(umctl get-voicemail --json: {dep.messages(env)})") from None


# --------------------------------------------------------------------------
# depositing messages (the scripted UA, greeting skipped with #)


def uac_call(ctx, host, ruser, caller):
    """A call from the scripted UA to ruser at the router, following the
    302; returns (ua, rtp) with RTP flowing (silence)."""
    env = ctx.env
    rtp = uac.RtpPeer(host)
    ctx.peers.append(rtp)
    ua = uac.SipUA(host, "udp", user=caller[0], display=caller[1])
    ctx.peers.append(ua)
    sdp = uac.sdp_offer(host, rtp.port, (0, 101))
    r = ua.invite(host, env.router_port, ruser, sdp)
    assert r.status == 302, f"router answered {r.start}"
    m = re.search(r"<(sip:[^@>]*@(\[[^\]]+\]|[^:;>]+):(\d+)[^>]*)>", r.header("contact") or "")
    assert m, f"302 without a usable Contact: {r.header('contact')}"
    r = ua.invite(m.group(2).strip("[]"), int(m.group(3)), ruser, sdp, ruri=m.group(1))
    assert r.status == 200, f"umservice answered {r.start}"
    addr, port, apts = uac.parse_sdp_answer(r.body)
    rtp.start(addr, port, pt=apts[0])
    return ua, rtp


def deposit(ctx, content, caller, host="127.0.0.1", skip_greeting=True, delay=0.0):
    """Leaves a message with `content` for 1001 from caller (number,
    display name): # skips the greeting, the content follows the tone, #
    ends the recording (goodbye, BYE). Returns what the caller heard."""
    if delay:
        time.sleep(delay)
    ua, rtp = uac_call(ctx, host, MAILBOX, caller)
    try:
        if skip_greeting:
            time.sleep(0.5)
            rtp.queue_dtmf(11)
            dep.wait_beep_end(rtp, 10)
        else:
            dep.wait_beep_end(rtp, 40)
        t_content = time.monotonic()
        rtp.queue_pcm(content)
        wait_for(lambda: rtp.queue_len() == 0, len(content) / 8000 + 5, 0.05,
                 "the message content to be sent")
        time.sleep(0.4)
        late = rtp.late_sends(t_content, 0.06)
        if late:
            st = [t for t in rtp.send_times if t >= t_content]
            worst = max(st[i] - st[i - 1] for i in range(1, len(st)))
            ctx.note(f"deposit from {caller[1]}: our RTP sender was late {late} times "
                     f"(worst gap {worst * 1000:.0f} ms)")
        rtp.queue_dtmf(11)
        ua.wait_request("BYE", 12)
        return rtp.heard()
    finally:
        rtp.close()
        ua.close()


DEPOSIT_LEAD = 3.0     # seconds of silence before the content in the depositor's WAV


def deposit_baresip(ctx, content, caller, host="127.0.0.1", delay=0.0):
    """Leaves a message for 1001 from a baresip calling as caller (number,
    display name): # as soon as the greeting is heard skips it, the content
    starts DEPOSIT_LEAD s into the call (well after the tone) and baresip
    hangs up at the end of its WAV. A C sender: under load its packets stay
    on time, where a Python one is sometimes descheduled."""
    if delay:
        time.sleep(delay)
    b = ctx.baresip(host, audio.silence(DEPOSIT_LEAD) + content + audio.silence(0.6),
                    user=caller[0], display=caller[1])
    try:
        ear = Ear(b)
        b.dial(f"sip:{MAILBOX}@{hostport(host, ctx.env.router_port)}")
        b.wait_event("CALL_ESTABLISHED", 10)
        ear.wait_sound(0, 5, "the greeting")
        b.sndcode("#")
        beep = ear.wait_beep(0, 5)
        assert beep[1] < DEPOSIT_LEAD - 0.5, \
            f"test setup: the tone ended {beep[1]:.1f} s into the call, after the content began"
        b.wait_event("CALL_CLOSED", DEPOSIT_LEAD + len(content) / 8000 + 10, fail_on=())
    finally:
        b.stop()


def tone_runs(samples):
    """[(freq, seconds)] of the tones of samples (FREQS and RAMP),
    consecutive runs of one frequency merged."""
    out = []
    for f, a, b in audio.segments(audio.track(samples, sorted(set(FREQS + RAMP)))):
        if out and out[-1][0] == f:
            out[-1][1] += b - a
        else:
            out.append([f, b - a])
    return out


def intact(sent, stored):
    """The stored message has every tone of the sent content, in order,
    none more than 0.12 s shorter."""
    want, got = tone_runs(sent), tone_runs(stored)
    if [f for f, _ in want] != [f for f, _ in got]:
        return False
    return all(g >= w - 0.12 for (_, w), (_, g) in zip(want, got))


def deposit_all(ctx, items, host="127.0.0.1", stagger=3.0, attempts=2):
    """Deposits [(content, caller)] concurrently, each starting `stagger`
    seconds after the one before (so that their recordings start in this
    order: the first is the oldest). Returns the messages, oldest first,
    after checking that the store has them in that order, each with all of
    its content: on 2 vCPUs a Python RTP sender is sometimes descheduled
    for half a second, and its late packets are lost to the playout
    buffer; then the messages are purged and left again (once)."""
    env = ctx.env
    for attempt in range(attempts):
        n0 = len(dep.messages(env))
        with concurrent.futures.ThreadPoolExecutor(len(items)) as ex:
            futs = [ex.submit(deposit_baresip, ctx, content, caller, host, i * stagger)
                    for i, (content, caller) in enumerate(items)]
            failed = []
            for f in futs:
                try:
                    f.result(timeout=60)
                except AssertionError as e:
                    if "503" not in str(e) or attempt + 1 == attempts:
                        raise
                    failed.append(str(e).splitlines()[0])
        if failed:
            # the router gave up on its handoff to umservice (load): again
            ctx.note(f"deposit attempt {attempt + 1}: {failed}")
            time.sleep(1.0)
            for m in dep.messages(env)[n0:]:
                env.umctl_ok("remove-voicemail", "--id", m["Id"], "--purge")
            continue
        msgs = dep.wait_messages(env, n0 + len(items))
        msgs = sorted(msgs, key=lambda m: (m["ReceivedUtc"], m["Id"]))[n0:]
        got = [m["CallerNumber"] for m in msgs]
        want = [caller[0] for _, caller in items]
        assert got == want, \
            f"test setup: messages stored in the order {got}, deposited {want}: {msgs}"
        assert all(m["State"] == "new" for m in msgs), msgs
        damaged = []
        for m, (content, caller) in zip(msgs, items):
            stored = dep.export(env, m["Id"], ctx.base)
            if not intact(content, stored):
                damaged.append(f"message {m['Id']} from {caller[1]}: sent "
                               f"{tone_runs(content)}, stored {tone_runs(stored)}")
        if not damaged:
            return msgs
        ctx.note(f"deposit attempt {attempt + 1}: audio lost on the way in (sender or "
                 f"playout under load): {'; '.join(damaged)}")
        if attempt + 1 < attempts:
            for m in msgs:
                env.umctl_ok("remove-voicemail", "--id", m["Id"], "--purge")
    raise AssertionError("test setup: the deposited messages lost audio twice: "
                         + "; ".join(damaged))


def message(seq):
    return audio.bursts(seq, repeat=2)


# --------------------------------------------------------------------------
# the subscriber: baresip, and what it hears


class Ear:
    """What a baresip hears in its (one) call, read live from its sndfile
    recording (*-dec.wav, 8 kHz, written as the audio arrives: its length
    is the time since the media started)."""

    WIN = 0.1          # loudness windows
    TWIN = 0.04        # tone tracking windows (audio.track's default)

    def __init__(self, b):
        self.b = b
        self.path = None
        self.pcm = []
        self.db = []
        self.tracks = {}
        self._off = None
        self._grew = time.monotonic()

    def _data_offset(self):
        """Where the samples start in the WAV (None until its header is
        there); only 8 kHz mono 16-bit is read incrementally."""
        with open(self.path, "rb") as f:
            head = f.read(4096)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos, fmt = 12, None
        while pos + 8 <= len(head):
            cid, size = head[pos:pos + 4], struct.unpack("<I", head[pos + 4:pos + 8])[0]
            if cid == b"fmt ":
                fmt = struct.unpack("<HHIIHH", head[pos + 8:pos + 24])
            elif cid == b"data":
                if fmt is None or fmt[1] != 1 or fmt[2] != 8000 or fmt[5] != 16:
                    raise AssertionError(f"{self.path}: not 8 kHz mono 16-bit PCM: {fmt}")
                return pos + 8
            pos += 8 + size + (size & 1)
        return None

    def update(self):
        """Reads what was added to the recording; returns its length in
        seconds."""
        if self.path is None:
            self.path = self.b.recording("dec")
            if self.path is None:
                return 0.0
        if self._off is None:
            self._off = self._data_offset()
            if self._off is None:
                return 0.0
        with open(self.path, "rb") as f:
            f.seek(self._off)
            data = f.read()
        n = len(data) // 2
        if n:
            self._off += 2 * n
            self.pcm += struct.unpack(f"<{n}h", data[:2 * n])
            self._grew = time.monotonic()
        w = int(self.WIN * 8000)
        self.db += audio.levels(self.pcm, self.WIN, start=len(self.db) * w)
        return len(self.pcm) / 8000

    def now(self):
        return self.update()

    def track(self, freqs=FREQS):
        key = tuple(sorted(freqs))
        tr = self.tracks.setdefault(key, [])
        n = int(self.TWIN * 8000)
        start = len(tr) * n
        tr += [(t + start / 8000, f) for t, f in audio.track(self.pcm[start:], key)]
        return tr

    def runs(self, freqs=FREQS, start=0.0, end=None):
        tr = [(t, f) for t, f in self.track(freqs)
              if t >= start and (end is None or t < end)]
        return audio.segments(tr) if len(tr) > 1 else []

    def span(self, seq, start=0.0, end=None):
        """(start, end) of the first complete seq heard in [start, end)."""
        return audio.find_sequence_span(self.runs(FREQS, start, end), seq)

    def tones(self, start=0.0, end=None):
        return audio.describe(self.runs(FREQS, start, end))

    def sound(self, start=0.0, end=None):
        """Seconds of sound (100 ms windows above FLOOR) in [start, end)."""
        a = int(start / self.WIN)
        b = len(self.db) if end is None else min(len(self.db), int(end / self.WIN))
        return round(sum(self.WIN for d in self.db[a:b] if d > FLOOR), 1)

    def tonal(self, start=0.0, end=None, freqs=FREQS):
        """Seconds of [start, end) in which one of freqs holds a window."""
        return round(sum(self.TWIN for t, f in self.track(freqs)
                         if f is not None and t >= start and (end is None or t < end)), 2)

    def profile(self, start=0.0, end=None):
        """dBFS per second, for failure messages."""
        a = int(start / self.WIN)
        b = len(self.db) if end is None else min(len(self.db), int(end / self.WIN))
        return [round(max(self.db[i:i + 10])) for i in range(a, b, 10)]

    def _alive(self, what):
        if self.b.find_event("CALL_CLOSED"):
            raise AssertionError(f"the call ended while waiting for {what} "
                                 f"({self.b.find_event('CALL_CLOSED').get('param')}) "
                                 f"after {len(self.pcm) / 8000:.1f} s; tones heard: "
                                 f"{self.tones()}; loudness per s: {self.profile()}")

    def wait_quiet(self, since, quiet=QUIET, timeout=25, what="a prompt"):
        """Waits for sound at or after `since` (heard time) followed by
        `quiet` seconds of silence (or of nothing received); returns the
        heard time at which that sound ended."""
        deadline = time.monotonic() + timeout
        q = int(round(quiet / self.WIN))
        while True:
            self.update()
            db = self.db
            first = next((i for i in range(int(since / self.WIN), len(db)) if db[i] > FLOOR),
                         None)
            if first is not None:
                last, run = first, 0
                for i in range(first, len(db)):
                    if db[i] > FLOOR:
                        last, run = i, 0
                    else:
                        run += 1
                        if run >= q:
                            return (last + 1) * self.WIN
                if run < q and time.monotonic() - self._grew >= quiet + 0.5 and \
                        db and db[-1] <= FLOOR:
                    return (last + 1) * self.WIN       # no more audio is coming
            self._alive(f"the end of {what}")
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"no end of {what} after {since:.1f} s (heard time) within {timeout} s; "
                    f"loudness per s from there: {self.profile(since)}")
            time.sleep(0.15)

    def wait_sound(self, since, timeout=15, what="a prompt"):
        """The heard time of the first sound at or after since."""
        deadline = time.monotonic() + timeout
        while True:
            self.update()
            first = next((i for i in range(int(since / self.WIN), len(self.db))
                          if self.db[i] > FLOOR), None)
            if first is not None:
                return first * self.WIN
            self._alive(what)
            if time.monotonic() >= deadline:
                raise AssertionError(f"nothing heard after {since:.1f} s within {timeout} s "
                                     f"(waiting for {what})")
            time.sleep(0.1)

    def wait_span(self, seq, timeout, since=0.0, what=None):
        """Waits until the tone sequence seq has been heard completely at
        or after `since`; returns its (start, end)."""
        what = what or f"tone sequence {seq}"
        deadline = time.monotonic() + timeout
        while True:
            now = self.update()
            sp = self.span(seq, since)
            if sp and now - sp[1] >= 0.1:
                return sp
            self._alive(what)
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{what} not heard within {timeout} s (since {since:.1f} s, heard "
                    f"{now:.1f} s); tones heard: {self.tones(since)}; loudness per s: "
                    f"{self.profile(since)}")
            time.sleep(0.25)

    def ramp(self, start=0.0, end=None):
        """[(index in RAMP, start, end)] of the ramp tones heard."""
        return [(RAMP.index(f), a, b) for f, a, b in self.runs(RAMP, start, end)]

    def wait_ramp(self, since, timeout, what, accept=lambda i: True, min_len=0.2):
        """The first ramp tone heard at or after since (its index
        accepted) once it has lasted min_len: (index, start, end)."""
        deadline = time.monotonic() + timeout
        while True:
            self.update()
            for i, a, b in self.ramp(since):
                if accept(i) and b - a >= min_len:
                    return i, a, b
            self._alive(what)
            if time.monotonic() >= deadline:
                raise AssertionError(f"{what}: not heard within {timeout} s (since {since:.1f} s);"
                                     f" ramp tones heard since: {self.ramp(since)}")
            time.sleep(0.1)

    def wait_beep(self, since, timeout=20):
        """(start, end) of the first 1000 Hz tone of >= 0.28 s after since,
        once it has ended."""
        deadline = time.monotonic() + timeout
        while True:
            now = self.update()
            runs = [r for r in audio.segments(
                [(t, f) for t, f in self.track([BEEP]) if t >= since], 7) if r[0] == BEEP]
            if runs and now - runs[0][2] >= 0.1:
                return runs[0][1], runs[0][2]
            self._alive("the tone")
            if time.monotonic() >= deadline:
                raise AssertionError(f"no 1000 Hz tone heard after {since:.1f} s within "
                                     f"{timeout} s; loudness per s: {self.profile(since)}")
            time.sleep(0.2)

    def final(self):
        """Reads the recording once more after the call (the file is
        complete once baresip closed it)."""
        time.sleep(0.3)
        return self.update()


class Subscriber:
    """One baresip call to the access number and what it heard."""

    def __init__(self, ctx, host="127.0.0.1", transport="udp", user="4255550123",
                 samples=None):
        self.ctx = ctx
        self.host = host
        self.transport = transport
        self.b = ctx.baresip(host, samples, user=user)
        self.ear = Ear(self.b)
        self.keylog = []         # (heard time, keys)
        self.est = None

    def dial(self, ruser=ACCESS):
        env = self.ctx.env
        self.b.dial(f"sip:{ruser}@{hostport(self.host, env.router_port)};"
                    f"transport={self.transport}")
        self.est = self.b.wait_event("CALL_ESTABLISHED", 10)
        wait_for(lambda: self.ear.update() > 0 or None, 5, 0.05,
                 "baresip to record what it hears")
        return self

    def keys(self, keys, gap=0.2):
        """Types keys; returns the heard time after the last one."""
        t = self.ear.now()
        self.b.send_digits(keys, gap)
        t1 = self.ear.now()
        self.keylog.append((round(t, 1), keys))
        return t1

    def logon(self, pin=PIN, extension=MAILBOX):
        """Types the extension (unless None) and the PIN at once
        (type-ahead); returns the heard time after the last key."""
        if extension:
            self.keys(extension + "#")
        return self.keys(pin + "#")

    def closed(self):
        return self.b.find_event("CALL_CLOSED")

    def wait_closed(self, timeout):
        return self.b.wait_event("CALL_CLOSED", timeout, fail_on=())

    def wall(self, heard_t):
        """The monotonic time of heard time t (the recording runs in real
        time from the first packet)."""
        return time.monotonic() - (self.ear.now() - heard_t)

    def hangup(self):
        if not self.closed():
            self.b.hangup()
            self.wait_closed(5)
        self.ear.final()
        self.b.stop()

    def describe(self):
        return f"keys typed (heard time, keys): {self.keylog}"


def refused_by_bye(s, t_key, bound, what):
    """The call ends by umservice's BYE within `bound` s of heard time
    t_key; returns how long it took."""
    t_wall = s.wall(t_key)
    closed = s.wait_closed(bound + 5)
    took = closed["_t"] - t_wall
    param = str(closed.get("param"))
    assert "end of file" not in param, f"{what}: baresip's WAV ended first"
    assert took <= bound, \
        f"{what}: the call ended {took:.1f} s after the last key (bound {bound} s)"
    return took


# --------------------------------------------------------------------------
# 1. two new messages, played oldest first; saved; a second logon


@case("two-new-v4")
def _two_new(ctx):
    env = ctx.start()
    deposit_all(ctx, [(message(SEQ_A), ALICE), (message(SEQ_B), BOB)])
    s = Subscriber(ctx, "127.0.0.1", "udp").dial()
    t_keys = s.logon()
    a = s.ear.wait_span(SEQ_A * 2, 45, t_keys, "message 1 (Alice, SEQ_A twice)")
    s.keys("#")                      # keep it and hear the next one
    b = s.ear.wait_span(SEQ_B * 2, 40, a[1], "message 2 (Bob, SEQ_B twice)")
    time.sleep(1.5)                  # message 2 played to its end; the options prompt
    assert not s.closed(), f"the call ended: {s.closed()}"
    s.hangup()
    e = s.ear
    assert e.span(SEQ_B, 0, a[0]) is None, \
        f"Bob's (newer) message was heard before Alice's: tones {e.tones()}"
    assert e.span(SEQ_A, a[1]) is None, f"Alice's message heard again: tones {e.tones()}"
    before = e.sound(t_keys, a[0])
    assert before >= 2.0, f"only {before} s of speech between logon and message 1 " \
                          f"('You have 2 new messages', the envelope); {s.describe()}"
    between = e.sound(a[1], b[0])
    assert between >= 2.0, f"only {between} s of speech between message 1 and 2 " \
                           f"(the envelope of message 2); {s.describe()}"
    assert e.tonal(a[1], b[0]) < 0.5, f"tones between the messages: {e.tones(a[1], b[0])}"
    ctx.note(f"heard: message 1 at {a[0]:.1f}-{a[1]:.1f} s, message 2 at "
             f"{b[0]:.1f}-{b[1]:.1f} s; speech before {before} s, between {between} s")
    wait_states(env, {ALICE[0]: "saved", BOB[0]: "saved"},
                what="after hearing both (# after 1, 2 played to its end): ")
    ctx.expect_log(MB + r" logged on", "the logon")
    ctx.expect_log(MB + r":? message \d+ saved", "a message saved")

    # A second logon: no new messages; 1 plays the saved ones, oldest first
    s = Subscriber(ctx, "127.0.0.1", "udp").dial()
    t_keys = s.logon()
    t_menu = s.ear.wait_quiet(t_keys, 1.5, 25, "'no new messages' and the saved-messages menu")
    assert s.ear.span(SEQ_A) is None and s.ear.span(SEQ_B) is None, \
        f"a saved message was played as new on the second logon: tones {s.ear.tones()}"
    assert s.ear.sound(t_keys, t_menu) >= 1.5, \
        f"no prompt after the second logon: loudness {s.ear.profile(t_keys)}"
    t1 = s.keys("1")
    a2 = s.ear.wait_span(SEQ_A * 2, 30, t1, "saved message 1 (Alice) after 1")
    s.keys("#")
    b2 = s.ear.wait_span(SEQ_B * 2, 30, a2[1], "saved message 2 (Bob) after #")
    s.ear.wait_quiet(b2[1] + 0.5, QUIET, 25, "the prompts after the last saved message")
    assert not s.closed()
    s.hangup()
    assert s.ear.sound(a2[1], b2[0]) >= 2.0, "no envelope between the saved messages"
    wait_states(env, {ALICE[0]: "saved", BOB[0]: "saved"}, what="after the second logon: ")


@pytest.mark.parametrize("case", ["two-new-v4"])
def test_two_new_messages_then_saved(campaign, request, case):
    """Two messages (Alice then Bob, distinct tone sequences) left for
    1001; baresip (not a mailbox) dials 5000, types 1001# and the PIN at
    once: it hears Alice's message, then speech (the envelope), then Bob's
    (# after the first). Both are saved afterwards; a second logon plays
    none as new, and 1 plays the saved ones, oldest first."""
    campaign.check(request, case)


# --------------------------------------------------------------------------
# 2. # saves, 7 deletes, 9 marks unread (IPv6)


@case("keys-v6")
def _keys(ctx):
    env = ctx.start()
    deposit_all(ctx, [(message(SEQ_A), ALICE), (message(SEQ_B), BOB),
                      (message(SEQ_C), CAROL)], host="::1")
    s = Subscriber(ctx, "::1", "udp").dial()
    t_keys = s.logon()
    a = s.ear.wait_span(SEQ_A, 45, t_keys, "message 1 (Alice)")
    t_save = s.keys("#")                         # during the audio
    b = s.ear.wait_span(SEQ_B, 30, t_save, "message 2 (Bob) after #")
    t_del = s.keys("7")                          # during the audio
    c = s.ear.wait_span(SEQ_C * 2, 30, t_del, "message 3 (Carol) after 7, to its end")
    time.sleep(1.0)                              # the options prompt after it
    t_unread = s.keys("9")                       # played to its end, yet unread
    s.ear.wait_quiet(t_unread, 1.5, 25, "'marked unread' and 'no more new messages'")
    assert not s.closed()
    s.hangup()
    e = s.ear
    # # and 7 cut their message short: no second complete sequence
    for seq, after, who, key in ((SEQ_A, a[1], "Alice", "#"), (SEQ_B, b[1], "Bob", "7")):
        assert e.span(seq, after) is None, \
            f"{who}'s message went on playing after {key}: tones {e.tones(after)}"
    assert e.span(SEQ_C, c[1]) is None, f"Carol's message played again: {e.tones(c[1])}"
    assert e.sound(t_save, b[0]) >= 1.5, "no envelope before message 2"
    assert e.sound(t_del, c[0]) >= 2.0, "no 'Message deleted.' / envelope before message 3"
    assert e.sound(t_unread) >= 1.5, "no prompt after 9"
    wait_states(env, {ALICE[0]: "saved", BOB[0]: "deleted", CAROL[0]: "new"},
                what="after # on Alice's, 7 on Bob's, 9 after Carol's played through: ")
    ctx.expect_log(MB + r":? message \d+ deleted", "the deletion")

    # next logon: Carol's (new) first; then 1: Alice's (saved); never Bob's.
    # 9 on Alice's (saved) makes it new again.
    s = Subscriber(ctx, "::1", "udp").dial()
    t_keys = s.logon()
    c2 = s.ear.wait_span(SEQ_C, 45, t_keys, "Carol's message (marked unread) as new")
    t_next = s.keys("#")
    t_menu = s.ear.wait_quiet(t_next, 1.5, 25, "'no more new messages' and the saved menu")
    t1 = s.keys("1")
    a2 = s.ear.wait_span(SEQ_A, 30, t1, "Alice's saved message after 1")
    t9 = s.keys("9")
    s.ear.wait_quiet(t9, 1.5, 25, "'marked unread' and 'no more saved messages'")
    s.hangup()
    e = s.ear
    assert e.span(SEQ_B) is None, f"the deleted message was played: tones {e.tones()}"
    assert e.span(SEQ_A, 0, c2[0]) is None, \
        f"the saved message was played before the new one: tones {e.tones()}"
    assert e.span(SEQ_A, c2[1], t1) is None, \
        f"the saved message played before 1 was pressed: tones {e.tones()}"
    ctx.note(f"second logon: Carol at {c2[0]:.1f} s, menu done at {t_menu:.1f} s, "
             f"Alice at {a2[0]:.1f} s")
    wait_states(env, {ALICE[0]: "new", BOB[0]: "deleted", CAROL[0]: "saved"},
                what="after the second logon (# on Carol's, 9 on Alice's saved one): ")
    ctx.expect_log(MB + r":? message \d+ marked unread", "marked unread")


@pytest.mark.parametrize("case", ["keys-v6"])
def test_pound_saves_7_deletes_9_marks_unread(campaign, request, case):
    """Over [::1]: three new messages; # during the first saves it and
    plays the next, 7 during the second deletes it ('Message deleted.',
    then the next), 9 after the third has played through keeps it new.
    States: saved, deleted, new. The next logon plays only the third as
    new (# saves it), 1 then plays the first (saved) and 9 makes it new
    again; the deleted one is never heard again."""
    campaign.check(request, case)


# --------------------------------------------------------------------------
# 3. wrong PINs


def wrong_pin_call(ctx, host="127.0.0.1", transport="udp", pins=WRONG, check=None):
    """A call that types 1001 and three wrong PINs, each after the prompt;
    returns (Subscriber, seconds from the last key to the end of the
    call). check(k) runs after the k-th failure (1-based)."""
    s = Subscriber(ctx, host, transport).dial()
    t = s.logon(pins[0])
    for k, pin in enumerate(pins[1:], start=1):
        s.ear.wait_quiet(t, QUIET, 25, f"'That PIN is not correct' and the PIN prompt ({k})")
        if check:
            check(k)
        t = s.keys(pin + "#")
    took = refused_by_bye(s, t, 10, "after the third wrong PIN")
    s.ear.final()
    assert s.ear.sound(t) >= 0.4, \
        f"nothing said after the third wrong PIN (want 'Goodbye.'): {s.ear.profile(t)}"
    s.b.stop()
    return s, took


@case("wrong-pin-v6")
def _wrong_pin(ctx):
    env = ctx.start()
    s, took = wrong_pin_call(ctx, "::1", "tcp", check=lambda k: failed_logons(env, k))
    ctx.note(f"BYE {took:.1f} s after the third wrong PIN")
    m = failed_logons(env, 3)
    assert m["Locked"] is False, m
    assert s.ear.sound(0) >= 8.0, f"too little was said in the call: {s.ear.profile()}"
    ctx.expect_log(r"logon failure 3 for " + MB, "the third logon failure")


@pytest.mark.parametrize("case", ["wrong-pin-v6"])
def test_three_wrong_pins_end_the_call(campaign, request, case):
    """Over [::1]/TCP: three wrong PINs in one call; umservice ends it
    with BYE within 10 s of the last one ('Goodbye.'); FailedLogons counts
    1, 2, 3 as they happen; the mailbox is not locked."""
    campaign.check(request, case)


# --------------------------------------------------------------------------
# 4. lockout after 15 failures, unlock


@case("lockout-v4")
def _lockout(ctx):
    env = ctx.start()
    deposit_all(ctx, [(message(SEQ_A), ALICE)])
    # 15 failures in 5 calls: two at a time, then the fifth alone
    done = 0
    for wave in (2, 2, 1):
        with concurrent.futures.ThreadPoolExecutor(wave) as ex:
            futs = [ex.submit(wrong_pin_call, ctx) for _ in range(wave)]
            for f in futs:
                f.result(timeout=90)
        done += 3 * wave
        if done < 15:
            m = failed_logons(env, done)
            assert m["Locked"] is False, f"locked after {done} failures: {m}"
    m = wait_mailbox(env, "locked", lambda m: m.get("Locked") is True)
    assert m["FailedLogons"] == 15, m
    ctx.expect_log(MB + r" locked after 15", "the lockout")
    # the right PIN is refused now
    s = Subscriber(ctx).dial()
    t = s.logon()
    took = refused_by_bye(s, t, 15, "a locked mailbox, right PIN")
    s.ear.final()
    assert s.ear.span(SEQ_A) is None, "the locked mailbox played its message"
    said = s.ear.sound(t)
    assert said >= 2.0, f"only {said} s said after the PIN (want the 'locked' message)"
    s.b.stop()
    m = mailbox(env)
    assert m["Locked"] is True, m
    ctx.note(f"locked: BYE {took:.1f} s after the right PIN, {said} s said; {m}")
    # unlock; the PIN works again
    set_mailbox(ctx, "--unlock")
    m = mailbox(env)
    assert m["Locked"] is False and m["FailedLogons"] == 0, m
    s = Subscriber(ctx).dial()
    t = s.logon()
    s.ear.wait_span(SEQ_A, 45, t, "the message after unlocking (logon)")
    s.hangup()
    failed_logons(env, 0)


@pytest.mark.parametrize("case", ["lockout-v4"])
def test_fifteen_failures_lock_the_mailbox(campaign, request, case):
    """Five calls with three wrong PINs each (two calls at a time):
    FailedLogons 6, 12, then 15 and Locked. The right PIN is then refused
    (spoken message, BYE, no message played); umctl set-ummailbox --unlock
    clears it and the PIN logs on (the waiting message plays)."""
    campaign.check(request, case)


# --------------------------------------------------------------------------
# 5. PIN change by phone


def to_pin_change(s, t):
    """From the logon (no new messages) to the new-PIN prompt: * (main
    menu), 4 (personal options), 3 (change PIN). Returns the heard time."""
    for k, what in (("*", "'no new messages' and the saved-messages menu"),
                    ("4", "the main menu"), ("3", "the personal options menu")):
        t_end = s.ear.wait_quiet(t, QUIET, 25, what)
        assert s.ear.sound(t, t_end) >= 1.0, f"{what}: nothing said"
        t = s.keys(k)
    return t


def logon_effects(ctx, pins, host="127.0.0.1", transport="udp"):
    """One call trying pins in turn (waiting for the prompt between them);
    returns the FailedLogons seen after each."""
    env = ctx.env
    s = Subscriber(ctx, host, transport).dial()
    seen = []
    t = s.logon(pins[0])
    for k, pin in enumerate(pins):
        if k:
            t = s.keys(pin + "#")
        s.ear.wait_quiet(t, QUIET, 25, f"the answer to PIN {pin}")
        time.sleep(0.3)
        seen.append(mailbox(env)["FailedLogons"])
    s.hangup()
    return seen


@case("pin-change-v6")
def _pin_change(ctx):
    env = ctx.start(pin=PIN_OLD)
    set_mailbox(ctx, "--pin", PIN)                # PIN_OLD is in the history now
    s = Subscriber(ctx, "::1", "tcp").dial()
    t = to_pin_change(s, s.logon())
    t = s.keys(PIN_NEW + "#")
    t_end = s.ear.wait_quiet(t, QUIET, 25, "'enter your new PIN again'")
    t = s.keys(PIN_NEW + "#")
    t_end = s.ear.wait_quiet(t, QUIET, 25, "'Your PIN has been changed.'")
    assert s.ear.sound(t, t_end) >= 1.0
    assert not s.closed()
    s.hangup()
    ctx.expect_log(MB + r": PIN changed by phone", "the PIN change")
    m = mailbox(env)
    assert m["FailedLogons"] == 0 and m["Locked"] is False, m
    # the old PIN fails, the new one logs on (and clears the count)
    seen = logon_effects(ctx, [PIN, PIN_NEW], "::1", "tcp")
    assert seen == [1, 0], \
        f"FailedLogons after the old PIN, then the new one: {seen} (want [1, 0]: old " \
        f"refused, new accepted)"
    # umctl knows the phone's PIN history too: the replaced PIN cannot come back
    r = env.umctl("set-ummailbox", "--extension", MAILBOX, "--pin", PIN)
    if r.rc == 0:
        ctx.note("umctl accepted the PIN the phone had just replaced (PINHistoryCount 5)")


@case("pin-change-refused-v4")
def _pin_refused(ctx):
    env = ctx.start(pin=PIN_OLD)
    set_mailbox(ctx, "--pin", PIN)                # PIN_OLD is in the history now
    s = Subscriber(ctx).dial()
    t = to_pin_change(s, s.logon())
    # Each refused PIN is typed twice: were it taken as the new PIN, the
    # second would confirm it and the PIN would change (the checks below
    # would see it).
    said = []
    for bad, why in (("1357", "too short"), ("123456", "sequential"),
                     (PIN_OLD, "an earlier PIN")):
        for k in range(2):
            t = s.keys(bad + "#")
            t_end = s.ear.wait_quiet(t, QUIET, 25, f"the refusal of {bad} ({why})")
            said.append((bad, round(s.ear.sound(t, t_end), 1)))
    # two different PINs: "The two PINs do not match."
    t = s.keys("482957#")
    s.ear.wait_quiet(t, QUIET, 25, "'enter your new PIN again'")
    t = s.keys("482958#")
    t_end = s.ear.wait_quiet(t, QUIET, 25, "'The two PINs do not match.'")
    said.append(("482957/482958", round(s.ear.sound(t, t_end), 1)))
    assert not s.closed()
    s.hangup()
    ctx.note(f"seconds said after each refused entry: {said}")
    short = [x for x in said if x[1] < 2.0]
    assert not short, f"too little said after {short} (want the refusal, its reason and " \
                      f"the prompt again)"
    m = mailbox(env)
    assert m["FailedLogons"] == 0 and m["Locked"] is False, m
    ctx.expect_log(r"not allowed|refused|PINHistoryCount|MinPINLength|sequential",
                   "a refused PIN")
    # unchanged: PIN_OLD fails, PIN still logs on
    seen = logon_effects(ctx, [PIN_OLD, PIN])
    assert seen == [1, 0], \
        f"FailedLogons after the earlier PIN, then the current one: {seen} (want [1, 0]: " \
        f"the PIN did not change)"


@pytest.mark.parametrize("case", ["pin-change-v6", "pin-change-refused-v4"])
def test_pin_change_by_phone(campaign, request, case):
    """Personal options (* 4 3): a compliant new PIN typed twice changes
    it (then the old PIN fails and the new one logs on, over [::1]/TCP);
    PINs that break the policy (1357: MinPINLength 6; 123456: sequential;
    the previous PIN: PINHistoryCount) are refused, each typed twice, and
    two different PINs do not match: the PIN stays as it was."""
    campaign.check(request, case)


# --------------------------------------------------------------------------
# 6. a greeting recorded by phone is what callers hear


GREETING_SECONDS = 5.0


@case("greeting-by-phone")
def _greeting(ctx):
    env = ctx.start()
    # the subscriber's WAV plays SEQ_G bursts throughout the call: what is
    # recorded after the tone is that pattern
    pattern = audio.bursts(SEQ_G) * 120
    s = Subscriber(ctx, "::1", "udp", samples=pattern).dial()
    t = to_personal_options_record(s, s.logon())
    beep = s.ear.wait_beep(t, 25)
    time.sleep(GREETING_SECONDS)
    t = s.keys("#")
    t_end = s.ear.wait_quiet(t, QUIET, 25, "'To keep this greeting, press 1...'")
    assert s.ear.sound(t, t_end) >= 1.0, "nothing said after # ending the greeting"
    t = s.keys("1")
    s.ear.wait_sound(t, 15, "'Your greeting has been saved.'")
    time.sleep(2.5)                 # it is said; then the personal options again
    s.hangup()
    ctx.note(f"greeting recorded from the tone at {beep[0]:.1f} s for ~{GREETING_SECONDS} s")
    ctx.expect_log(MB + r": standard greeting recorded", "the greeting")
    # a caller for 1001 hears the recorded greeting, then the tone
    heard = deposit(ctx, message(SEQ_A), ALICE, "127.0.0.1", skip_greeting=False)
    msgs = dep.wait_messages(env, 1)
    assert msgs[0]["CallerNumber"] == ALICE[0], msgs
    pcm = dep.export(env, msgs[0]["Id"], ctx.base)
    dep.assert_contains(pcm, SEQ_A, "the message left after the greeting")
    check_greeting_heard(heard, SEQ_G, "the caller after the greeting was recorded")


def to_personal_options_record(s, t, which="1"):
    """From the logon to the greeting tone: * 4 2 then 1 (standard) or 2
    (out-of-office)."""
    for k, what in (("*", "'no new messages' and the saved-messages menu"),
                    ("4", "the main menu"), ("2", "the personal options menu"),
                    (which, "'To record your standard greeting, press 1...'")):
        t_end = s.ear.wait_quiet(t, QUIET, 25, what)
        assert s.ear.sound(t, t_end) >= 1.0, f"{what}: nothing said"
        t = s.keys(k)
    return t


def check_greeting_heard(heard, seq, what, absent=()):
    """The caller heard the recorded pattern from the start, then the tone
    soon after: not the TTS greeting (speech only, ~12 s), nor a greeting
    with a pattern of `absent`."""
    beep = dep.find_beep(heard)
    assert beep, f"{what}: no tone heard ({len(heard) / 8000:.1f} s)"
    t0 = beep[0]
    runs = audio.segments(audio.track(heard[:int(t0 * 8000)], FREQS))
    sp = audio.find_sequence_span(runs, seq)
    assert sp, f"{what}: the recorded greeting's pattern {seq} is not in the " \
               f"{t0:.1f} s before the tone; tones: {audio.describe(runs)}"
    for other in absent:
        assert audio.find_sequence_span(runs, other) is None, \
            f"{what}: another greeting's pattern {other} was heard: {audio.describe(runs)}"
    lv = audio.levels(heard, 0.1)
    first_sound = next((i * 0.1 for i, d in enumerate(lv) if d > FLOOR), None)
    first_tone = runs[0][1] if runs else None
    assert first_tone is not None and first_tone - first_sound <= 1.5, \
        f"{what}: the greeting does not start with the recording (sound at {first_sound} s, " \
        f"first pattern tone at {first_tone} s): a spoken greeting first?"
    assert t0 <= GREETING_SECONDS + 4.0, \
        f"{what}: the tone came {t0:.1f} s into the call (greeting ~{GREETING_SECONDS} s)"
    tonal = sum(0.04 for f in audio.track(heard[:int(t0 * 8000)], FREQS) if f[1])
    loud = sum(0.1 for d in lv[:int(t0 * 10)] if d > FLOOR)
    assert tonal >= 0.6 * loud, \
        f"{what}: only {tonal:.1f} s of the {loud:.1f} s of sound before the tone are the " \
        f"recorded pattern (speech mixed in?)"
    return beep


@pytest.mark.parametrize("case", ["greeting-by-phone"])
def test_greeting_recorded_by_phone(campaign, request, case):
    """Personal options (* 4 2 1) over [::1]: after the tone baresip's
    WAV plays a tone pattern for 5 s, # ends, 1 keeps it. A caller who
    then reaches 1001 (IPv4) hears that pattern from the first second and
    the tone right after it (not the ~12 s TTS greeting), and can still
    leave a message."""
    campaign.check(request, case)


# --------------------------------------------------------------------------
# 7. the caller is the mailbox: straight to the PIN


@case("caller-is-mailbox-v6")
def _caller_is_mailbox(ctx):
    env = ctx.start()
    deposit_all(ctx, [(message(SEQ_A), ALICE)], host="::1")
    s = Subscriber(ctx, "::1", "tcp", user=MAILBOX).dial()
    t = s.logon(extension=None)                 # only the PIN
    a = s.ear.wait_span(SEQ_A, 40, t, "the new message after PIN# only")
    s.hangup()                                  # in the middle of the message
    assert s.ear.sound(t, a[0]) >= 1.5, "no speech between logon and the message"
    failed_logons(env, 0)
    wait_states(env, {ALICE[0]: "new"}, what="after hanging up in the middle of it: ")
    # * at the PIN prompt asks for the extension instead
    s = Subscriber(ctx, "::1", "tcp", user=MAILBOX).dial()
    t = s.ear.wait_quiet(0, QUIET, 25, "the welcome and PIN prompts")
    t = s.keys("*")
    t_end = s.ear.wait_quiet(t, QUIET, 25, "the extension prompt after *")
    assert s.ear.sound(t, t_end) >= 1.0, "nothing said after * at the PIN prompt"
    s.keys(MAILBOX)                             # no #: 3 s without a key end it
    time.sleep(4.0)
    t = s.keys(PIN + "#")
    s.ear.wait_span(SEQ_A, 40, t, "the new message after * 1001 (3 s) PIN#")
    s.hangup()
    failed_logons(env, 0)


@pytest.mark.parametrize("case", ["caller-is-mailbox-v6"])
def test_caller_is_the_mailbox_skips_extension(campaign, request, case):
    """baresip calls as sip:1001@[::1] (TCP): umservice asks for the PIN
    at once; typing only the PIN and # logs on (the new message plays; it
    stays new when the caller hangs up in the middle of it). * at the PIN
    prompt asks for the extension instead; 1001 (ended by the 3 s
    inter-digit timeout, no #) and the PIN then log on."""
    campaign.check(request, case)


# --------------------------------------------------------------------------
# 9. rewind, forward, pause, previous, replay


def ramp_message():
    out = []
    for f in RAMP:
        out += audio.tone(f, 1.0)
    return out


@case("playback-keys-v4")
def _playback(ctx):
    env = ctx.start()
    deposit_all(ctx, [(ramp_message(), ALICE), (message(SEQ_B), BOB)])
    s = Subscriber(ctx).dial()
    t = s.logon()
    e = s.ear
    first = e.wait_ramp(t, 45, "the ramp message")
    assert first[0] == 0, f"the message did not start at its beginning: {e.ramp(t)}"
    # 3: forward 5 s (from tone 2)
    r = e.wait_ramp(t, 15, "ramp tone 2", lambda i: i == 2, 0.25)
    tk = s.keys("3")
    j = e.wait_ramp(tk, 10, "the ramp after 3 (forward 5 s)", lambda i: i not in (2, 3))
    assert j[0] in (6, 7, 8), \
        f"3 at ramp second {r[0] + tk - r[1]:.1f} went to second {j[0]} (want 5 s on): " \
        f"{e.ramp(r[1])}"
    # 1: rewind 5 s (from tone 9)
    r = e.wait_ramp(j[1], 15, "ramp tone 9", lambda i: i == 9, 0.25)
    tk = s.keys("1")
    j = e.wait_ramp(tk, 10, "the ramp after 1 (rewind 5 s)", lambda i: i not in (9, 10))
    assert j[0] in (3, 4, 5), \
        f"1 at ramp second 9 went to second {j[0]} (want 5 s back): {e.ramp(r[1])}"
    # 2: pause (at tone 6) for 3 s, 2: resume
    r = e.wait_ramp(j[1], 15, "ramp tone 6", lambda i: i == 6, 0.25)
    tp = s.keys("2")
    time.sleep(3.0)
    tr = s.keys("2")
    j = e.wait_ramp(tr, 10, "the ramp after resuming", lambda i: True, 0.3)
    paused = e.tonal(tp + 0.6, tr, RAMP)
    assert paused < 0.3, f"{paused} s of the message heard while paused " \
                         f"({tp:.1f}-{tr:.1f} s): {e.ramp(tp)}"
    assert j[0] in (6, 7), f"after the pause at second 6 it went on at second {j[0]}: " \
                           f"{e.ramp(tp)}"
    # to the end, then # (message 2), then 0 0 1 1: previous message
    e.wait_ramp(j[1], 15, "the last ramp tone", lambda i: i == 11, 0.8)
    tk = s.keys("#")
    e.wait_span(SEQ_B, 30, tk, "message 2 after #")
    tk = s.keys("0011")
    j = e.wait_ramp(tk, 20, "the previous message after 0 0 1 1")
    assert j[0] in (0, 1), f"the previous message did not start from its beginning: " \
                           f"{e.ramp(tk)}"
    # # again: message 2; 0 0 1: from its start again
    tk = s.keys("#")
    e.wait_span(SEQ_B, 30, tk, "message 2 again after #")
    tk = s.keys("001")
    b = e.wait_span(SEQ_B * 2, 20, tk, "message 2 replayed in full after 0 0 1")
    e.wait_sound(b[1] + 0.3, 10, "the options prompt after message 2")   # played through
    s.hangup()
    ctx.note(f"ramp heard: {[(i, round(a, 1)) for i, a, _ in e.ramp()]}")
    wait_states(env, {ALICE[0]: "saved", BOB[0]: "saved"},
                what="after both played to their end: ")


@pytest.mark.parametrize("case", ["playback-keys-v4"])
def test_rewind_forward_pause_previous_replay(campaign, request, case):
    """A 12 s message of rising 1 s tones (the tone heard tells the
    position): 3 jumps 5 s on, 1 goes 5 s back, 2 pauses (nothing of it
    heard for 3 s) and 2 resumes where it stopped; after # (the next
    message) 0 0 1 1 goes back to it from its start, and 0 0 1 replays a
    message in full."""
    campaign.check(request, case)


# --------------------------------------------------------------------------
# 10. out of office


def record_greeting(ctx, seq, which, host="127.0.0.1"):
    """Records a greeting by phone (which: 1 standard, 2 out-of-office)
    whose sound is the bursts of seq; keys typed ahead: * 4 2 which."""
    s = Subscriber(ctx, host, "udp", samples=audio.bursts(seq) * 120).dial()
    t = s.logon()
    t = s.keys("*42" + which)
    s.ear.wait_beep(t, 40)
    time.sleep(GREETING_SECONDS)
    t = s.keys("#")
    s.ear.wait_quiet(t, QUIET, 25, "'To keep this greeting, press 1...'")
    t = s.keys("1")
    s.ear.wait_sound(t, 15, "'Your greeting has been saved.'")
    time.sleep(2.5)
    s.hangup()


def remove_all(env):
    """umctl remove-voicemail for every message of 1001 (state deleted)."""
    for m in dep.messages(env):
        if m["State"] != "deleted":
            env.umctl_ok("remove-voicemail", "--id", m["Id"])


def toggle_oof(ctx, want):
    """* 4 1 (typed ahead): OofGreetingEnabled becomes want."""
    s = Subscriber(ctx).dial()
    t = s.logon()
    t = s.keys("*41")
    m = wait_mailbox(ctx.env, f"showed OofGreetingEnabled {want}",
                     lambda m: m.get("OofGreetingEnabled") is want, 20)
    s.ear.wait_sound(t, 15, "'Your out-of-office greeting is now on/off.'")
    time.sleep(2.0)
    s.hangup()
    return m


@case("oof-v4")
def _oof(ctx):
    env = ctx.start()
    record_greeting(ctx, SEQ_G, "1")
    assert mailbox(env)["OofGreetingEnabled"] is False
    toggle_oof(ctx, True)
    # OOF on, no OOF greeting recorded: a spoken (TTS) greeting, not the standard one
    heard = deposit(ctx, message(SEQ_A), ALICE, skip_greeting=False)
    beep = dep.find_beep(heard)
    assert beep, "no tone heard by the caller (OOF on, TTS greeting)"
    before = heard[:int(beep[0] * 8000)]
    runs = audio.segments(audio.track(before, FREQS))
    assert audio.find_sequence_span(runs, SEQ_G) is None, \
        f"the standard recorded greeting played although OOF is on: {audio.describe(runs)}"
    talk = dep.speech_seconds(before)
    assert talk >= 2.0, f"only {talk:.1f} s of greeting before the tone (OOF on, TTS)"
    remove_all(env)                     # the next logons find no new message
    ctx.note(f"OOF TTS greeting: tone at {beep[0]:.1f} s, {talk:.1f} s of speech")
    # an OOF greeting recorded: it wins over the standard one
    record_greeting(ctx, SEQ_C, "2")
    ctx.expect_log(MB + r": out-of-office greeting recorded", "the OOF greeting")
    heard = deposit(ctx, message(SEQ_B), BOB, skip_greeting=False)
    check_greeting_heard(heard, SEQ_C, "the caller with OOF on and an OOF greeting",
                         absent=(SEQ_G,))
    msgs = dep.wait_messages(env, 2)
    assert {m["CallerNumber"] for m in msgs} == {ALICE[0], BOB[0]}, msgs
    remove_all(env)
    toggle_oof(ctx, False)


@pytest.mark.parametrize("case", ["oof-v4"])
def test_out_of_office_greeting(campaign, request, case):
    """A standard greeting recorded by phone (* 4 2 1, keys typed ahead);
    * 4 1 turns OOF on (OofGreetingEnabled True): a caller then hears a
    spoken greeting, not the standard recording; an OOF greeting recorded
    (* 4 2 2) is what the next caller hears; * 4 1 turns OOF off."""
    campaign.check(request, case)


# --------------------------------------------------------------------------
# 8. no input at all


@case("no-input-v4")
def _no_input(ctx):
    env = ctx.start()
    s = Subscriber(ctx, "127.0.0.1", "tcp").dial()
    closed = s.wait_closed(50)
    took = closed["_t"] - s.est["_t"]
    s.ear.final()
    assert "end of file" not in str(closed.get("param")), "baresip's WAV ended first"
    # welcome + 3 x (prompt + 5 s of nothing) + goodbye
    assert 15.0 <= took <= 45.0, f"the call lasted {took:.1f} s"
    lv = s.ear.db
    bursts, quiet, inside = 0, 0, False
    for d in lv:
        if d > FLOOR:
            if not inside and (quiet >= 30 or bursts == 0):
                bursts += 1
            inside, quiet = True, 0
        else:
            quiet += 1
            if quiet >= 30:
                inside = False
    assert bursts >= 3, f"the prompt was not repeated after 5 s silences ({bursts} " \
                        f"stretches of speech after >= 3 s pauses): {s.ear.profile()}"
    s.b.stop()
    m = mailbox(env)
    assert m["FailedLogons"] == 0, m
    ctx.note(f"BYE after {took:.1f} s, {bursts} stretches of speech")


@pytest.mark.parametrize("case", ["no-input-v4"])
def test_no_input_ends_the_call(campaign, request, case):
    """A caller who types nothing hears the extension prompt again after
    each 5 s of silence; after 3 input failures umservice says goodbye
    and sends BYE (TCP)."""
    campaign.check(request, case)


# --------------------------------------------------------------------------
# 11. a greeting without sound; keys typed ahead of a message


@case("greeting-silence-v6")
def _greeting_silence(ctx):
    env = ctx.start()
    s = Subscriber(ctx, "::1", "udp").dial()            # the WAV is silence
    t = s.logon()
    t = s.keys("*421")
    beep = s.ear.wait_beep(t, 40)
    time.sleep(3.0)
    t = s.keys("#")
    again = s.ear.wait_beep(t, 20)
    said = s.ear.sound(t, again[0])
    assert said >= 1.5, f"only {said} s said between # and the next tone (want 'I did not " \
                        f"hear anything.' and the recording prompt)"
    time.sleep(1.0)
    s.hangup()
    ctx.note(f"tone at {beep[0]:.1f} s, # at {t:.1f} s, tone again at {again[0]:.1f} s")
    # nothing was kept: a caller hears the spoken greeting
    heard = deposit(ctx, message(SEQ_A), ALICE, "::1", skip_greeting=False)
    beep = dep.find_beep(heard)
    assert beep and beep[0] >= 6.0, \
        f"the caller's tone came at {beep and round(beep[0], 1)} s: a (silent) recorded " \
        f"greeting instead of the spoken one?"
    talk = dep.speech_seconds(heard, 0, beep[0])
    assert talk >= 0.6 * beep[0], f"only {talk:.1f} s of speech before the tone at {beep[0]:.1f} s"
    assert "greeting recorded" not in ctx.service.log(), "a silent greeting was recorded"
    dep.wait_messages(env, 1)


@pytest.mark.parametrize("case", ["greeting-silence-v6"])
def test_silent_greeting_is_not_kept(campaign, request, case):
    """Over [::1]: recording a greeting (* 4 2 1, typed ahead) and pressing
    # after 3 s of silence: umservice says it heard nothing and plays the
    tone again; a caller then still hears the spoken greeting."""
    campaign.check(request, case)


@case("typeahead-star-v4")
def _typeahead_star(ctx):
    env = ctx.start()
    deposit_all(ctx, [(message(SEQ_A), ALICE)])
    s = Subscriber(ctx).dial()
    s.logon()
    t = s.keys("*")              # typed ahead, before the message begins
    deadline = time.monotonic() + 14
    while time.monotonic() < deadline and not s.ear.span(SEQ_A, t):
        s.ear.update()
        time.sleep(0.3)
    s.hangup()
    e = s.ear
    assert e.span(SEQ_A) is None, \
        f"the message played although * (main menu) was typed ahead of it: heard " \
        f"{e.span(SEQ_A)} s; {s.describe()}; loudness per s {e.profile()}"
    wait_states(env, {ALICE[0]: "new"}, what="after * typed ahead of the first message: ")


@pytest.mark.parametrize("case", ["typeahead-star-v4"])
def test_star_typed_ahead_skips_the_message(campaign, request, case):
    """1001#, the PIN and # then * typed at once (type-ahead, ~200 ms
    apart): the * reaches the first new message (envelope or audio) and
    goes to the main menu: the message is not played (and stays new)."""
    campaign.check(request, case)


LONGEST_FIRST = ["oof-v4", "lockout-v4", "keys-v6", "pin-change-refused-v4", "two-new-v4",
                 "playback-keys-v4",
                 "pin-change-v6", "greeting-by-phone", "no-input-v4", "wrong-pin-v6",
                 "caller-is-mailbox-v6", "greeting-silence-v6", "typeahead-star-v4"]
