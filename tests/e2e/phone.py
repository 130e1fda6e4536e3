"""The far end of outbound calls (Play on Phone): phones and gateways that
answer, refuse or ring, and the directory objects that point at them.

Reusable beyond loopback: every class takes the host it listens on (an
address of its own), never assumes a family, and takes netns= (a
netns.Host) to run inside a network namespace, as Baresip and sipgw do.

The UM service pings every Enabled gateway with OPTIONS (the first ping
~200 ms after the gateway appears, then every GatewayPingInterval).
baresip answers those by itself; a SippUas knows only its one call, so start
it after that first ping (test_play_on_phone.sipp_gateway waits for the
ping's event 1400) with a long GatewayPingInterval.

    phone = Phone(workdir, "::1", number="5550100").start()
    outcall_gateway(env, "gw6", "::1", phone.sip_port, af="IPv6Only")
    r = play_on_phone(env, "1001", msg_id, "5550100")
    phone.wait_answered(10); phone.wait_closed(10)
    heard = phone.heard()              # 8 kHz samples of what it received

    uas = SippUas(workdir, "127.0.0.1", port, status="486 Busy Here").start()
    uas = SippUas(workdir, "127.0.0.1", port, ring=True).start()   # 180, then CANCEL

Every wait is bounded.
"""

import json
import re
import subprocess
import time
from pathlib import Path

import audio
from baresip import Baresip
from conftest import SIPP, SIPP_DIR, wait_for


class Phone:
    """baresip answering every call to `number` at once (answermode=auto),
    sending silence (or `wav`) and recording what it hears. It hangs up
    only when told (hangup()); otherwise the caller's BYE ends the call.
    args: more baresip flags (["-s"]: the SIP trace into its log)."""

    def __init__(self, workdir, host, number, wav_seconds=120, wav=None, netns=None,
                 args=()):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        if wav is None:
            wav = self.dir / "phone-source.wav"
            audio.write_wav(wav, audio.silence(wav_seconds))
        self.number = number
        self.b = Baresip(self.dir / "baresip", host=host, wav=wav, user=number,
                         display="E2E Phone", answermode="auto", netns=netns,
                         args=args)

    @property
    def host(self):
        return self.b.host

    @property
    def sip_port(self):
        return self.b.sip_port

    def start(self):
        self.b.start()
        return self

    def stop(self):
        self.b.stop()

    def wait_answered(self, timeout):
        """The CALL_ESTABLISHED event of the incoming call."""
        return self.b.wait_event("CALL_ESTABLISHED", timeout)

    def wait_closed(self, timeout):
        return self.b.wait_event("CALL_CLOSED", timeout, fail_on=())

    def hangup(self):
        return self.b.hangup()

    def events(self):
        return self.b.event_types()

    def heard(self):
        """What the phone received in its last call (8 kHz samples); waits a
        moment for sndfile to finish the file."""
        def rec():
            p = self.b.recording("dec")
            return p if p and p.stat().st_size > 44 else None
        path = wait_for(rec, 5, 0.1, f"baresip's recording under {self.b.rec}")
        time.sleep(0.3)
        rate, samples = audio.read_wav(path)
        return audio.resample_to(samples, rate)

    def log_tail(self, n=30):
        return self.b.log_tail(n)


def assert_heard(samples, seq, what="the phone"):
    """The tone bursts of seq are in samples, in order."""
    runs = audio.segments(audio.track(samples, list(seq)))
    at = audio.find_sequence(runs, list(seq))
    assert at is not None, \
        f"{what}: tone sequence {list(seq)} not heard; tones: {audio.describe(runs)}"
    return at


class SippUas:
    """SIPp as a gateway on host:port over TCP for one outbound call:
    status="486 Busy Here" answers 100, 180 and that final status;
    ring=True answers 180 and waits for the CANCEL (then 200, 487).
    calls: SIPp exits after that many (an OPTIONS ping the refusing
    scenario answers 200 counts as one)."""

    def __init__(self, workdir, host, port, status="486 Busy Here", ring=False,
                 netns=None, timeout=60, calls=1):
        self.host, self.port = host, port
        self.dir = Path(workdir) / f"uas-{port}-{int(time.monotonic() * 1000)}"
        self.dir.mkdir(parents=True)
        if ring:
            text = (SIPP_DIR / "pop_ring.xml").read_text()
        else:
            text = (SIPP_DIR / "pop_refuse.xml").read_text().replace("@STATUS@", status)
        scen = self.dir / "uas.xml"
        scen.write_text(text)
        self.messages = self.dir / "messages.log"
        self.netns = netns
        self.argv = [SIPP, "-sf", str(scen), "-t", "t1", "-i", host,
                     "-p", str(port), "-m", str(calls), "-nostdin", "-timeout", f"{timeout}s",
                     "-timeout_error", "-trace_msg", "-message_file", str(self.messages),
                     "-trace_err", "-error_file", str(self.dir / "errors.log")]
        self.proc = None
        self.out = None

    def start(self, timeout=10):
        self.out = open(self.dir / "output.txt", "wb")
        popen = self.netns.popen if self.netns else subprocess.Popen
        self.proc = popen(self.argv, cwd=self.dir, stdin=subprocess.DEVNULL,
                          stdout=self.out, stderr=subprocess.STDOUT)
        fam = "-6" if ":" in self.host else "-4"

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError(f"SIPp exited early:\n{self.report()}")
            argv = ["ss", "-Hlnt", fam, f"sport = :{self.port}"]
            if self.netns:
                argv = self.netns.wrap(argv)
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return bool(r.stdout.strip())
        wait_for(listening, timeout, 0.05, f"SIPp UAS on {self.host}:{self.port}")
        return self

    def wait(self, timeout):
        """SIPp's exit status (0: the scenario ran to its end), or None."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def requests(self):
        """The request lines SIPp received, in order."""
        try:
            text = self.messages.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return re.findall(r"(?m)^([A-Z]+ sip:\S+ SIP/2\.0)\s*$", text)

    def received(self, method):
        """The text of the first `method` request SIPp received (headers
        and body, LF line ends), or None."""
        try:
            text = self.messages.read_text(errors="replace").replace("\r\n", "\n")
        except FileNotFoundError:
            return None
        for block in re.split(r"(?m)^-{20,}.*$", text):
            m = re.search(rf"(?s)message received \[\d+\] bytes :\n\n({method} sip:.*)",
                          block)
            if m:
                return m.group(1).strip("\n")
        return None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.out:
            self.out.close()
            self.out = None

    def report(self):
        def read(n, tail=3000):
            p = self.dir / n
            return p.read_text(errors="replace")[-tail:] if p.exists() else ""
        return (f"--- SIPp UAS {' '.join(self.argv)}\noutput:\n{read('output.txt', 1500)}"
                f"\nerrors:\n{read('errors.log')}\nmessages:\n{read('messages.log')}")


# --------------------------------------------------------------------------
# directory objects and the umctl command


def outcall_gateway(env, name, address, port, af="Any", outcalls=True,
                    dialplan="default", status=None, mwi=False):
    """A UM IP gateway at address:port with OutcallsAllowed, linked to the
    dial plan by a hunt group of the same name. Without mwi the mailbox's
    message waiting NOTIFYs do not go to it (the peer sees only calls)."""
    args = ["new-umipgateway", "--name", name, "--address", address,
            "--port", str(port), "--ip-address-family", af,
            "--outcalls-allowed", "true" if outcalls else "false",
            "--message-waiting-indicator-allowed", "true" if mwi else "false"]
    env.umctl_ok(*args)
    # A pilot no inbound call uses: the hunt group only links the gateway
    # to the dial plan.
    env.umctl_ok("new-umhuntgroup", "--name", name, "--umipgateway", name,
                 "--umdialplan", dialplan, "--pilot-identifier", "89999")
    if status:
        env.umctl_ok("set-umipgateway", "--identity", name, "--status", status)


def remove_gateway(env, name):
    """Removes what outcall_gateway made (a missing one is fine)."""
    env.umctl("remove-umhuntgroup", "--identity", name)
    env.umctl("remove-umipgateway", "--identity", name)


def play_on_phone(env, mailbox, message, to, dialplan=None, timeout=None,
                  wait=60, extra=()):
    """Runs `umctl --json play-on-phone`; returns (Umctl, parsed JSON or
    None, seconds it took)."""
    args = ["play-on-phone", "--mailbox", mailbox, "--message", message, "--to", to]
    if dialplan:
        args += ["--dial-plan", dialplan]
    if timeout:
        args += ["--timeout", timeout]
    t0 = time.monotonic()
    r = env.umctl(*args, *extra, json_out=True, timeout=wait)
    took = time.monotonic() - t0
    try:
        data = json.loads(r.out)
    except ValueError:
        data = None
    return r, data, took
