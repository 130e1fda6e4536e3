"""More subscriber access (OVA) process tests (issue 5): the message
waiting indicator after every change made by phone, help (0) and the
envelope again (0 0 5), and a DTMF flood.

The world of each case is that of test_retrieve.py (reused from there: its
Ctx, the baresip Subscriber and its live Ear, deposit_all, the message
tone sequences): router and umservice from build/, mailbox 1001 with a PIN,
messages left beforehand by baresips, each a distinct sequence of tone
bursts (so the Goertzel tracker tells which message was heard, and that
only speech came elsewhere). SIPp plays the UM IP gateways that receive the
message-waiting NOTIFYs (test_mwi.py's GatewayUas and its parser); a
scripted UA (uac.py) sends the DTMF flood as hand-made RFC 4733 packets.

  mwi-by-phone-v4v6   gateways on 127.0.0.1 and [::1] (MWI on): a
                      deposit -> 1/0; heard to its end by phone -> 0/1;
                      9 on a second call -> 1/0; 7 -> 0/0. The last NOTIFY
                      after each step has the counts; the whole sequence
                      of distinct counts each gateway got is exactly that.
  help-envelope-v4    0 alone after a message: the help (long speech),
                      then # still goes on (to message 2, message 1 saved);
                      0 0 5 after message 2: its envelope again (as long
                      as the envelope heard before it), then the
                      after-message prompt; message 2 is not replayed and
                      stays saved.
  dtmf-flood-v4       300 RFC 4733 key presses in well under a second
                      during the PIN prompt: umservice stays up, the call
                      is ended by its BYE or still up (and the right PIN
                      then logs on in it), at most 3 logon failures
                      counted, no sanitizer report; a normal logon then
                      plays the waiting message.
  dtmf-flood-baresip-v6  the same over [::1]/TCP with 200 baresip sndcodes
                      given at once (sent at baresip's pace).

Every case runs in the background from the start of the module with its
own state directory, ports and daemons (as in test_retrieve.py). Run with:
    /usr/bin/python3 -m pytest -q tests/e2e/test_retrieve_more.py
OPENUM_KEEP=1 keeps every case's directory.
"""

import concurrent.futures
import datetime
import random
import re
import struct
import time

import pytest

import audio
import campaign as camp
import test_mwi as mwi
import test_retrieve as ova
from conftest import free_port, hostport, wait_for

MAILBOX = ova.MAILBOX
ACCESS = ova.ACCESS
PIN = ova.PIN
SEQ_A, SEQ_B = ova.SEQ_A, ova.SEQ_B
ALICE, BOB = ova.ALICE, ova.BOB
QUIET = ova.QUIET

CASE_TIMEOUT = 240
START_GAP = 1.5
NOTIFY_TIMEOUT = 15       # a change -> its NOTIFY (coalescing is 1 s)
SETTLE = 2.0              # no other NOTIFY may follow within this (coalescing + margin)

CASES = {}


case = camp.case_decorator(CASES)


LONGEST_FIRST = ["mwi-by-phone-v4v6", "help-envelope-v4", "dtmf-flood-v4",
                 "dtmf-flood-baresip-v6"]


def _gateway_reports(ctx):
    return "\n".join(p.report() for p in ctx.peers if isinstance(p, mwi.GatewayUas))


@pytest.fixture(scope="module")
def campaign(request):
    """Starts every selected case in the background (longest first)."""
    yield from camp.run(request, camp.Campaign(CASES, ova.Ctx, None, CASE_TIMEOUT,
                                               START_GAP, _gateway_reports),
                        LONGEST_FIRST)


# --------------------------------------------------------------------------
# 1. the message waiting indicator after every change by phone


def counts(n):
    """(Messages-Waiting, new, saved, urgent new, urgent saved) of a NOTIFY."""
    f = n.body_fields()
    m = re.fullmatch(r"(\d+)/(\d+) \((\d+)/(\d+)\)", f.get("Voice-Message", ""))
    if not m:
        return (f.get("Messages-Waiting"), None, None, None, None)
    return (f.get("Messages-Waiting"),) + tuple(int(x) for x in m.groups())


def want_counts(new, saved):
    return ("yes" if new else "no", new, saved, 0, 0)


def show(ns):
    return [f"{c[0]} {c[1]}/{c[2]} ({c[3]}/{c[4]})" for c in map(counts, ns)]


class Gateway:
    """A SIPp UM IP gateway (MWI on) and what the case expects of it."""

    def __init__(self, ctx, name, host):
        self.name, self.host = name, host
        with ova.PORTS:
            self.port = free_port()
        self.uas = mwi.GatewayUas(ctx.base, name, host, self.port)
        ctx.peers.append(self.uas)
        self.account = f"sip:{MAILBOX}@{hostport(host, 0).rsplit(':', 1)[0]}"
        self.target = hostport(host, self.port)

    def wait_last(self, since, new, saved, what):
        """Waits (bounded) until the last NOTIFY received after the first
        `since` ones has these counts, then that no other one follows
        within SETTLE s (changes within ~1 s are coalesced: the last one
        after a step is what counts). Returns the number received."""
        want = want_counts(new, saved)
        got = {}

        def ok():
            ns = self.uas.notifies()
            got["n"] = ns
            return len(ns) > since and counts(ns[-1]) == want
        try:
            wait_for(ok, NOTIFY_TIMEOUT, 0.1, "")
        except AssertionError:
            raise AssertionError(
                f"gateway {self.name} ({self.target}): after {what} the last NOTIFY does "
                f"not say {show_want(want)} within {NOTIFY_TIMEOUT} s; NOTIFYs after the "
                f"step: {show(got['n'][since:])}; before: {show(got['n'][:since])}") from None
        time.sleep(SETTLE)
        ns = self.uas.notifies()
        assert counts(ns[-1]) == want, \
            f"gateway {self.name}: after {what} a later NOTIFY changed the counts: " \
            f"{show(ns[since:])}"
        mwi.assert_summary(ns[-1], self.account, new, saved, self.target)
        return len(ns)


def show_want(c):
    return f"'Messages-Waiting: {c[0]}', 'Voice-Message: {c[1]}/{c[2]} ({c[3]}/{c[4]})'"


def collapsed(ns):
    """The sequence of distinct counts (repeats of the same counts, e.g. a
    retry or a coalescing artefact, merged)."""
    out = []
    for c in map(counts, ns):
        if not out or out[-1] != c:
            out.append(c)
    return out


@case("mwi-by-phone-v4v6")
def _mwi_by_phone(ctx):
    env = ctx.env
    gws = [Gateway(ctx, "loopback", "127.0.0.1"), Gateway(ctx, "loopback6", "::1")]
    # The default gateways of the dial plan, with MessageWaitingIndicatorAllowed
    # (on by default): pointed at the SIPp gateways before umservice starts.
    mwi.set_gateway(env, "loopback", port=gws[0].port,
                    message_waiting_indicator_allowed="true")
    mwi.set_gateway(env, "loopback6", port=gws[1].port, ip_address_family="IPv6Only",
                    message_waiting_indicator_allowed="true")
    for g in gws:
        g.uas.wait_listening()
    r = env.start_router(wait=False)
    env.wait_router(r, timeout=20)
    s = env.start_service(wait=False)
    env.wait_instance("e2e-1", port=env.service_port, daemon=s, timeout=20)
    ova.set_mailbox(ctx, "--pin", PIN)
    seen = [len(g.uas.notifies()) for g in gws]
    assert seen == [0, 0], f"NOTIFYs before any message: " \
                           f"{[show(g.uas.notifies()) for g in gws]}"
    marks = []

    def step(new, saved, what, at=None):
        """at: the monotonic time of the change (for the latency note)."""
        before = seen[:]
        # both gateways in parallel: the second one's wait is not added
        with concurrent.futures.ThreadPoolExecutor(len(gws)) as ex:
            futs = [ex.submit(g.wait_last, seen[i], new, saved, what)
                    for i, g in enumerate(gws)]
            for i, f in enumerate(futs):
                seen[i] = f.result(timeout=NOTIFY_TIMEOUT + SETTLE + 10)
        late = ""
        if at is not None:
            wall = datetime.datetime.now() - datetime.timedelta(seconds=time.monotonic() - at)
            late = ", ".join(f"{(g.uas.notifies()[before[i]].when - wall).total_seconds():.1f} s"
                             for i, g in enumerate(gws))
        marks.append(f"{what}: {[n - b for n, b in zip(seen, before)]} NOTIFY(s) "
                     f"{'after ' + late if late else ''}")

    # 0. a deposit: 1/0
    ova.deposit_all(ctx, [(ova.message(SEQ_A), ALICE)])
    step(1, 0, "the deposit")

    # 1. heard to its end by phone: saved, 0/1 (while the call goes on)
    sub = ova.Subscriber(ctx).dial()
    t = sub.logon()
    a = sub.ear.wait_span(SEQ_A * 2, 45, t, "the new message, to its end")
    sub.ear.wait_sound(a[1] + 0.2, 10, "the after-message prompt (message heard through)")
    step(0, 1, "the message was heard to its end", sub.wall(a[1]))
    assert not sub.closed(), f"the call ended: {sub.closed()}"
    sub.hangup()
    ova.wait_states(env, {ALICE[0]: "saved"}, what="after hearing it through: ")

    # 2. a second call: 1 (saved messages), 9 during it: new again, 1/0
    sub = ova.Subscriber(ctx).dial()
    t = sub.logon()
    sub.ear.wait_quiet(t, 1.5, 25, "'You have no new messages' and the saved menu")
    assert sub.ear.span(SEQ_A) is None, f"the saved message played as new: {sub.ear.tones()}"
    t1 = sub.keys("1")
    a = sub.ear.wait_span(SEQ_A, 30, t1, "the saved message after 1")
    t9 = sub.keys("9")
    step(1, 0, "9 (mark unread) on the saved message", time.monotonic())
    ova.wait_states(env, {ALICE[0]: "new"}, what="after 9: ")
    # 3. the same call: the main menu ("no more saved messages"), 1 (voice
    # mail): the message is new again and plays; 7 deletes it: 0/0
    sub.ear.wait_quiet(t9, QUIET, 25, "'Message marked unread', 'no more saved', the main menu")
    t1 = sub.keys("1")
    a = sub.ear.wait_span(SEQ_A, 40, t1, "the message (new again) after 1 in the main menu")
    t7 = sub.keys("7")
    step(0, 0, "7 (delete)", time.monotonic())
    ova.wait_states(env, {ALICE[0]: "deleted"}, what="after 7: ")
    sub.ear.wait_quiet(t7, QUIET, 25, "'Message deleted.' and what follows")
    assert not sub.closed(), f"the call ended: {sub.closed()}"
    sub.hangup()

    # the whole story each gateway was told, in order
    want = [want_counts(1, 0), want_counts(0, 1), want_counts(1, 0), want_counts(0, 0)]
    for g in gws:
        ns = g.uas.notifies()
        assert collapsed(ns) == want, \
            f"gateway {g.name}: the counts told were {show(ns)} (want, repeats merged: " \
            f"{[show_want(w) for w in want]})"
        # four changes, seconds apart, every NOTIFY answered 200: one each
        assert len(ns) == len(want), \
            f"gateway {g.name}: {len(ns)} NOTIFYs for 4 changes: {show(ns)}"
        ctx.note(f"gateway {g.name}: {len(ns)} NOTIFYs {show(ns)}")
    log = ctx.service.log()
    lines = [x for x in log.splitlines() if "NOTIFY for mailbox 1001" in x]
    if any("delivered" not in x for x in lines):
        ctx.note(f"NOTIFY log lines not 'delivered': {[x for x in lines if 'delivered' not in x]}")
    ctx.note(f"NOTIFYs per step (delay after the change): {marks}")


@pytest.mark.parametrize("case", ["mwi-by-phone-v4v6"])
def test_mwi_counts_after_every_change_by_phone(campaign, request, case):
    """Gateways on 127.0.0.1 and [::1] (TCP, MWI on): one message left for
    1001 -> 'Messages-Waiting: yes', 1/0; a subscriber hears it to its end
    (saved) -> 'no', 0/1; a second call: 1 (saved messages), 9 on it ->
    'yes', 1/0; then 1 in the main menu (it plays as new), 7 -> 'no', 0/0.
    The last NOTIFY after each step has these counts (no other follows),
    and each gateway was told exactly this sequence of counts, one NOTIFY
    per change."""
    campaign.check(request, case)


# --------------------------------------------------------------------------
# 2. 0: help; 0 0 5: the envelope again


HELP_MIN = 8.0            # seconds of speech in the help (measured ~20 s with the after-prompt)


@case("help-envelope-v4")
def _help_envelope(ctx):
    env = ctx.start()
    ova.deposit_all(ctx, [(ova.message(SEQ_A), ALICE), (ova.message(SEQ_B), BOB)])
    sub = ova.Subscriber(ctx).dial()
    e = sub.ear
    t = sub.logon()
    a = e.wait_span(SEQ_A * 2, 45, t, "message 1 (Alice) to its end")
    # the after-message prompt begins; 0 alone during it, then nothing
    t_prompt = e.wait_sound(a[1] + 0.2, 10, "the after-message prompt")
    t0 = sub.keys("0")
    t_help = e.wait_sound(t0 + 0.6, 10, "the help after 0 alone")
    t_help_end = e.wait_quiet(t_help, 2.5, 60, "the help and the after-message prompt")
    help_said = e.sound(t_help, t_help_end)
    gap = e.sound(t0 + 0.6, t0 + 0.95)
    assert gap <= 0.1, \
        f"{gap} s of sound 0.6-0.95 s after the 0: the after-message prompt was not cut " \
        f"short by it, or the help did not wait for a second key; loudness per s from " \
        f"the 0: {e.profile(t0)}"
    assert help_said >= HELP_MIN, \
        f"only {help_said} s of speech after 0 alone (want the help, > {HELP_MIN} s); " \
        f"loudness per s from the 0: {e.profile(t0)}"
    assert e.tonal(t0, t_help_end) < 0.3, \
        f"message tones during the help: {e.tones(t0, t_help_end)}"
    assert not sub.closed()
    # # still goes on: message 2 (its envelope, then its audio)
    t_hash = sub.keys("#")
    b = e.wait_span(SEQ_B * 2, 40, t_hash, "message 2 (Bob) after # (after the help)")
    envelope = e.sound(t_hash, b[0])
    ova.wait_states(env, {ALICE[0]: "saved", BOB[0]: "saved"},
                    what="after # (message 1) and message 2 heard through: ")
    # message 2's after-message prompt, in full (its length is the yardstick)
    t_after_end = e.wait_quiet(b[1] + 0.2, 2.5, 25, "the after-message prompt of message 2")
    after = e.sound(b[1] + 0.2, t_after_end)
    # 0 0 5: the envelope again, then the after-message prompt again
    t5 = sub.keys("005")
    t5_end = e.wait_quiet(t5, 2.5, 40, "the envelope again and the after-message prompt")
    again = e.sound(t5, t5_end)
    replayed = e.tonal(t5, t5_end + 0.5)
    assert not sub.closed(), f"the call ended: {sub.closed()}"
    sub.hangup()
    ctx.note(f"speech: after-prompt from {t_prompt:.1f} s cut by 0 at {t0:.1f} s, help "
             f"{help_said} s (from {t_help:.1f} s), envelope of "
             f"message 2 {envelope} s, its after-prompt {after} s, after 0 0 5 {again} s")
    assert help_said >= after + 4.0, \
        f"after 0 alone only {help_said} s of speech; the after-message prompt alone is " \
        f"{after} s: no help?"
    assert envelope >= 1.5, f"only {envelope} s said between # and message 2 (its envelope)"
    assert replayed < 0.3, \
        f"message 2 was replayed after 0 0 5: tones {e.tones(t5, t5_end + 0.5)}"
    # the envelope (as heard before message 2), then the after-message prompt
    assert abs(again - (envelope + after)) <= 1.5, \
        f"after 0 0 5: {again} s of speech, want the envelope ({envelope} s) and the " \
        f"after-message prompt ({after} s); loudness per s: {e.profile(t5, t5_end)}"
    ova.wait_states(env, {ALICE[0]: "saved", BOB[0]: "saved"},
                    what="after 0 0 5 on message 2: ")


@pytest.mark.parametrize("case", ["help-envelope-v4"])
def test_help_and_envelope_again(campaign, request, case):
    """Two messages. After message 1 (heard through), 0 alone during the
    after-message prompt and then nothing: the help is spoken (more than
    8 s of speech, at least 4 s more than the after-message prompt, no
    message tones); # then still goes on to message 2 (envelope, audio).
    After message 2, 0 0 5: its envelope again (as much speech as the
    envelope heard before it) and the after-message prompt again, the
    message itself not replayed; both messages end up saved."""
    campaign.check(request, case)


# --------------------------------------------------------------------------
# 3. a DTMF flood


FLOOD_KEYS = 300
BARESIP_FLOOD = 200
FLOOD_EVENTS = {str(d): d for d in range(10)}
FLOOD_EVENTS.update({"*": 10, "#": 11})


def rtp_sound(rtp, since):
    """Seconds of sound (100 ms windows above FLOOR) in what rtp received
    after monotonic time since."""
    pcm = []
    for t, _, pt, payload in list(rtp.received):
        if t >= since and pt in (0, 8):
            pcm += audio.decode(payload, pt == 8)
    return sum(0.1 for d in audio.levels(pcm, 0.1) if d > ova.FLOOR)


class RtpEar:
    """What the scripted UA hears from monotonic time `since` on, tone
    tracked incrementally (a Goertzel bank in Python is slow)."""

    def __init__(self, rtp, since):
        self.rtp, self.since = rtp, since
        self.n = 0
        self.pcm = []
        self.tr = []

    def span(self, seq):
        rx = self.rtp.received
        new = rx[self.n:]
        self.n += len(new)
        for t, _, pt, payload in new:
            if t >= self.since and pt in (0, 8):
                self.pcm += audio.decode(payload, pt == 8)
        w = int(0.04 * 8000)
        start = len(self.tr) * w
        self.tr += [(t + start / 8000, f) for t, f in audio.track(self.pcm[start:], ova.FREQS)]
        return audio.find_sequence_span(audio.segments(self.tr), seq)


def wait_rtp_sound(rtp, since, seconds, timeout, what):
    wait_for(lambda: rtp_sound(rtp, since) >= seconds, timeout, 0.1, what)


def flood(rtp, keys):
    """Sends every key of keys as its own RFC 4733 event (a start packet
    and an end packet, a new timestamp each), as fast as the socket takes
    them (a 1 ms pause every 20 packets); the paced stream pauses
    meanwhile. Returns how long it took."""
    rtp.paused(True)
    time.sleep(0.05)
    ts = rtp.ts + 8000
    t0 = time.monotonic()
    sent = 0
    for k in keys:
        ev = FLOOD_EVENTS[k]
        for payload, marker in ((struct.pack("!BBH", ev, 10, 160), True),
                                (struct.pack("!BBH", ev, 0x80 | 10, 320), False)):
            rtp._send(rtp.te_pt, payload, marker, ts=ts)
            sent += 1
            if sent % 20 == 0:
                time.sleep(0.001)
        ts += 480
    took = time.monotonic() - t0
    rtp.ts = ts + 8000          # later events (none here) stay newer than the flood
    rtp.paused(False)
    return took


@case("dtmf-flood-v4")
def _dtmf_flood(ctx):
    env = ctx.start()
    ova.deposit_all(ctx, [(ova.message(SEQ_A), ALICE)])
    caller = ("4255550144", "Flood Example")
    ua, rtp = ova.uac_call(ctx, "127.0.0.1", ACCESS, caller)
    t_call = time.monotonic()
    wait_rtp_sound(rtp, t_call, 0.5, 10, "the welcome")
    for k in MAILBOX + "#":
        rtp.queue_dtmf(FLOOD_EVENTS[k], duration_ms=100)
    wait_for(lambda: rtp.queue_len() == 0, 10, 0.05, "the extension to be sent")
    t_ext = time.monotonic()
    # the PIN prompt is playing: flood
    wait_rtp_sound(rtp, t_ext, 0.8, 10, "the PIN prompt")
    keys = "".join(random.Random(5).choice("0123456789*#") for _ in range(FLOOD_KEYS))
    took = flood(rtp, keys)
    t_flood = time.monotonic()
    svc = ctx.service
    # the call: ended by umservice's BYE, or still up and still answering
    # keys (the PIN, typed normally, then logs on and the message plays)
    bye = None
    try:
        bye = ua.wait_request("BYE", 10)
        t_bye = time.monotonic()
    except AssertionError:
        pass
    said = rtp_sound(rtp, t_flood)
    if bye is None:
        assert svc.alive(), f"umservice died during the flood:\n{svc.tail(30)}"
        assert said >= 1.0, \
            f"only {said:.1f} s said in the 10 s after the flood (the call is up: want " \
            f"'That PIN is not correct.' and the PIN prompt, or the PIN prompt again)"
        m = ova.mailbox(env)
        assert m["FailedLogons"] <= 3, m
        flood_failures = m["FailedLogons"]
        ear = RtpEar(rtp, time.monotonic())
        for k in PIN + "#":
            rtp.queue_dtmf(FLOOD_EVENTS[k], duration_ms=100)
        wait_for(lambda: ear.span(SEQ_A), 45, 0.5,
                 "the waiting message after the PIN, typed in the flooded call")
        st = ua.bye(5)
        assert st == 200, f"our BYE in the flooded call got {st}; SIP log {ua.log[-10:]}"
        how = (f"still up after the flood ({said:.1f} s said in the next 10 s); the PIN "
               f"typed then logged on and the message played")
    else:
        flood_failures = ova.mailbox(env)["FailedLogons"]
        how = f"ended by umservice's BYE {t_bye - t_flood:.1f} s after the flood " \
              f"({said:.1f} s said before it)"
    rtp.close()
    ua.close()
    assert svc.alive(), f"umservice exited ({svc.proc.returncode}):\n{svc.tail(40)}"
    inst = env.find_instance(env.status(), "e2e-1")
    assert inst, f"umservice no longer registered with the router: {env.status()}"
    m = ova.mailbox(env)
    assert flood_failures <= 3 and m["Locked"] is False, \
        f"the flood counted more than LogonFailuresBeforeDisconnect (3) failures " \
        f"({flood_failures}), or locked the mailbox: {m}"
    log = svc.log()
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ThreadSanitizer"):
        assert marker not in log, f"{marker} in umservice's log:\n{svc.tail(60)}"
    ctx.note(f"{FLOOD_KEYS} keys sent in {took * 1000:.0f} ms; the call {how}; "
             f"FailedLogons after the flood {flood_failures}")
    # a normal logon still works (and resets FailedLogons)
    sub = ova.Subscriber(ctx).dial()
    t = sub.logon()
    sub.ear.wait_span(SEQ_A, 45, t, "the waiting message after a normal logon")
    sub.hangup()
    ova.failed_logons(env, 0)
    ova.wait_states(env, {ALICE[0]: "new"}, what="after hanging up in its middle: ")


@case("dtmf-flood-baresip-v6")
def _dtmf_flood_baresip(ctx):
    env = ctx.start()
    svc = ctx.service
    sub = ova.Subscriber(ctx, "::1", "tcp").dial()
    t = sub.keys(MAILBOX + "#")
    sub.ear.wait_sound(t + 0.3, 10, "the PIN prompt")
    # baresip takes every sndcode at once and sends them one after another
    keys = "".join(random.Random(7).choice("0123456789*#") for _ in range(BARESIP_FLOOD))
    t0 = time.monotonic()
    refused = 0
    for k in keys:
        r = sub.b.sndcode(k)
        refused += r.get("ok") is False
    took = time.monotonic() - t0
    closed = None
    try:
        closed = sub.wait_closed(45)
    except AssertionError:
        pass
    if closed is not None:
        param = str(closed.get("param"))
        assert "end of file" not in param, "baresip's WAV ended first"
        how = f"ended by umservice's BYE {closed['_t'] - t0:.1f} s after the flood began " \
              f"({param})"
        sub.ear.final()
        assert sub.ear.sound(t) >= 2.0, \
            f"too little said after the flood began: {sub.ear.profile(t)}"
    else:
        # still up after 45 s: the right PIN logs on
        assert svc.alive(), f"umservice died during the flood:\n{svc.tail(30)}"
        how = "still up 45 s after the flood"
    flood_failures = ova.mailbox(env)["FailedLogons"]
    if closed is None:
        sub.keys(PIN + "#")
        ova.failed_logons(env, 0, 15)
    sub.hangup()
    assert svc.alive(), f"umservice exited ({svc.proc.returncode}):\n{svc.tail(40)}"
    assert env.find_instance(env.status(), "e2e-1"), \
        f"umservice no longer registered with the router: {env.status()}"
    m = ova.mailbox(env)
    assert flood_failures <= 3 and m["Locked"] is False, \
        f"the flood counted more than LogonFailuresBeforeDisconnect (3) failures " \
        f"({flood_failures}), or locked the mailbox: {m}"
    log = svc.log()
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ThreadSanitizer"):
        assert marker not in log, f"{marker} in umservice's log:\n{svc.tail(60)}"
    ctx.note(f"{BARESIP_FLOOD} sndcodes taken in {took * 1000:.0f} ms ({refused} refused); "
             f"the call {how}; FailedLogons after the flood {flood_failures}")
    # a normal logon still works: it clears FailedLogons, the call stays up
    sub = ova.Subscriber(ctx, "::1", "tcp").dial()
    t = sub.logon()
    ova.failed_logons(env, 0, 15)
    t_end = sub.ear.wait_quiet(t, 1.5, 25, "'You have no new messages' and the saved menu")
    assert sub.ear.sound(t, t_end) >= 1.5, f"nothing said after the logon: {sub.ear.profile(t)}"
    assert not sub.closed(), f"the call ended: {sub.closed()}"
    sub.hangup()


@pytest.mark.parametrize("case", ["dtmf-flood-v4", "dtmf-flood-baresip-v6"])
def test_dtmf_flood_is_harmless(campaign, request, case):
    """A caller types 1001#, then floods during the PIN prompt: over
    127.0.0.1/UDP the scripted UA sends 300 RFC 4733 key presses (digits,
    * and #; each its own event) in well under a second; over [::1]/TCP
    baresip is given 200 sndcodes at once (it sends them one after the
    other, ~20 a second). In both: umservice stays up and registered, the call is
    either ended by umservice's BYE or still up (it speaks; the right PIN
    typed then logs on and the message plays; our BYE is answered 200), no
    more than 3 logon failures are counted (LogonFailuresBeforeDisconnect)
    and the mailbox is not locked, no sanitizer report; then a normal
    logon call works (the waiting message plays; FailedLogons back to 0)."""
    campaign.check(request, case)
