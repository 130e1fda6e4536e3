"""Gateway status and calls in progress (issue 6, "Gateway status"), and
the warning for two gateways at one address (issue 6, Exchange event 1175):
`umctl set-umipgateway --status Disabled --drop-calls` ends the calls in
progress through that gateway with a BYE from umservice, keeping what was
recorded; `--status Disabled` alone lets them finish; `--drop-calls` without
Disabled is refused by umctl."""

import json
import re
import time

import audio
from baresip import Baresip
from conftest import Env, wait_for

MAILBOX = "1001"
SEQ = [600, 900, 1300]


def _messages(env):
    r = env.umctl_ok("get-voicemail", "--mailbox", MAILBOX, json_out=True)
    return json.loads(r.out) if r.out.strip() else []


def _call_recording(env, base, name, host="127.0.0.1"):
    """A baresip caller of 1001 whose message is being recorded: the WAV
    has 13 s of silence (greeting and tone) then tone bursts."""
    wav = f"{base}/{name}.wav"
    audio.write_wav(wav, audio.silence(13) + audio.bursts(SEQ, repeat=12))
    b = Baresip(f"{base}/{name}", host=host, wav=wav)
    b.start()
    port = env.router_port
    uri = f"sip:{MAILBOX}@{host}:{port}" if ":" not in host else \
        f"sip:{MAILBOX}@[{host}]:{port}"
    b.dial(uri)
    b.wait_event("CALL_ESTABLISHED", 10)
    svc = env.daemons[-1]
    wait_for(lambda: "recording message" in svc.log(), 25, 0.05,
             "umservice to start recording")
    return b


def test_drop_calls_ends_calls_in_progress(tmp_path):
    env = Env(tmp_path)
    b = None
    try:
        env.start_router()
        env.start_service()
        b = _call_recording(env, tmp_path, "dropped")
        time.sleep(4.0)                      # some bursts recorded
        assert b.find_event("CALL_CLOSED") is None, "the call ended early"
        t0 = time.monotonic()
        r = env.umctl("set-umipgateway", "--identity", "loopback",
                      "--status", "Disabled", "--drop-calls")
        assert r.rc == 0, str(r)
        closed = b.wait_event("CALL_CLOSED", 5, fail_on=())
        took = time.monotonic() - t0
        assert took < 3.0, f"the call ended {took:.1f} s after umctl"
        svc = env.daemons[-1].log()
        assert "gateway loopback disabled with --drop-calls: ending the call" in svc, svc[-2000:]
        assert "1 call ended" in svc
        # what was recorded until then is a message
        msgs = wait_for(lambda: _messages(env) or None, 10, 0.2, "the message")
        assert len(msgs) == 1 and msgs[0]["State"] == "new", msgs
        assert 2000 <= msgs[0]["DurationMs"] <= 9000, msgs
        out = tmp_path / "m.wav"
        env.umctl_ok("export-voicemail", "--id", msgs[0]["Id"], "--out", out)
        rate, pcm = audio.read_wav(out)
        runs = audio.segments(audio.track(audio.resample_to(pcm, rate), SEQ))
        assert audio.find_sequence(runs, SEQ), \
            f"the kept message lacks the bursts: {audio.describe(runs)}"
        assert closed is not None
        # a new call through the disabled gateway is refused
        b2 = Baresip(tmp_path / "after", wav=None)
        b2.start()
        try:
            b2.dial(f"sip:{MAILBOX}@127.0.0.1:{env.router_port}")
            b2.wait_event("CALL_CLOSED", 10, fail_on=("CALL_ESTABLISHED",))
        finally:
            b2.stop()
    finally:
        if b:
            b.stop()
        problems = env.stop_all()
        assert not problems, problems


def test_disable_without_drop_lets_calls_finish(tmp_path):
    env = Env(tmp_path)
    b = None
    try:
        env.start_router()
        env.start_service()
        b = _call_recording(env, tmp_path, "kept", host="::1")
        env.umctl_ok("set-umipgateway", "--identity", "loopback6",
                     "--status", "Disabled")
        time.sleep(3.0)
        assert b.find_event("CALL_CLOSED") is None, \
            "the call ended although --drop-calls was not given"
        b.hangup()
        msgs = wait_for(lambda: _messages(env) or None, 10, 0.2, "the message")
        assert len(msgs) == 1, msgs
        # --drop-calls needs Disabled: refused with the reason, nothing saved
        r = env.umctl("set-umipgateway", "--identity", "loopback",
                      "--status", "NoNewCalls", "--drop-calls")
        assert r.rc == 2, str(r)
        assert "--drop-calls: only with --status Disabled" in r.err, str(r)
        gw = env.get("get-umipgateway", "--identity", "loopback")
        gw = gw[0] if isinstance(gw, list) else gw
        assert gw["Status"] == "Enabled", gw
    finally:
        if b:
            b.stop()
        problems = env.stop_all()
        assert not problems, problems


def test_two_gateways_at_one_address_warned(tmp_path):
    """Both daemons warn (event 1175) when two UM IP gateways share an
    address: at start, and again when a change creates the pair."""
    env = Env(tmp_path)
    try:
        env.umctl_ok("new-umipgateway", "--name", "pbx-a", "--address",
                     "127.0.0.5")
        env.umctl_ok("new-umipgateway", "--name", "pbx-b", "--address",
                     "127.0.0.5")
        router = env.start_router()
        service = env.start_service()
        want = "event 1175: UM IP gateways pbx-a and pbx-b both resolve to 127.0.0.5"
        for d in (router, service):
            wait_for(lambda: want in d.log(), 5, 0.05, f"{d.name} to warn")
        # A change that creates a new pair is warned about on the change.
        env.umctl_ok("new-umipgateway", "--name", "pbx-c", "--address",
                     "127.0.0.6")
        env.umctl_ok("set-umipgateway", "--identity", "pbx-c", "--address",
                     "127.0.0.5")
        pair = re.compile(r"event 1175: UM IP gateways pbx-[ab] and pbx-c "
                          r"both resolve to 127\.0\.0\.5")
        for d in (router, service):
            wait_for(lambda: pair.search(d.log()), 5, 0.05,
                     f"{d.name} to warn about pbx-c")
    finally:
        problems = env.stop_all()
        assert not problems, problems
