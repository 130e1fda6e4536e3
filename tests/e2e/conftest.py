"""Process tests for OpenUM: fixtures and helpers.

Every test gets its own state directory and free SIP ports, starts the real
daemons from build/ and stops them in a finalizer (also when the test fails,
in which case the tails of their logs are added to the failure report and
the state directory is kept). Every wait is bounded.

Run with /usr/bin/python3 -m pytest tests/e2e (the pyenv python3 on PATH has
no pytest).
"""

import errno
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("OPENUM_BUILD", str(ROOT / "build"))).resolve()
SIPP_DIR = Path(__file__).resolve().parent / "sipp"
UMCTL = BUILD / "umctl"
ROUTER = BUILD / "umcallrouter"
SERVICE = BUILD / "umservice"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"

FAMILIES = ("IPv4", "IPv6")
LOOPBACK = {"IPv4": "127.0.0.1", "IPv6": "::1"}
AF_OF = {"IPv4Only": {"IPv4"}, "IPv6Only": {"IPv6"}, "Any": {"IPv4", "IPv6"}}

# The end of a SIPp deposit call (sipp/deposit.xml's @ENDING@): the caller
# hangs up with BYE.
SIPP_BYE = """\
  <send retrans="500">
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      Max-Forwards: 70
      From: "SIPp PBX caller" <sip:4255550199@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 3 BYE
      Content-Length: 0

    ]]>
  </send>

  <recv response="200"/>
"""

# Ports handed out in this session are never handed out again (a daemon
# that just released one may still have it in TIME_WAIT).
_used_ports = set()


# --------------------------------------------------------------------------
# small utilities


def wait_for(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until it returns a truthy value; returns that value or
    raises AssertionError after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


def _bindable(port):
    """True when port is free for UDP and TCP on every IPv4 and every IPv6
    address (the daemons bind each interface address separately)."""
    for fam, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        for typ in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(fam, typ)
            try:
                if fam == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((host, port))
            except OSError:
                return False
            finally:
                s.close()
    return True


def free_port():
    """An even port, free on 127.0.0.1 and ::1 (indeed on all addresses) for
    UDP and TCP, away from 5060-5063 and below the ephemeral range."""
    for _ in range(500):
        port = random.randrange(20000, 32000, 2)
        if port in _used_ports:
            continue
        if _bindable(port):
            _used_ports.add(port)
            return port
    raise RuntimeError("no free port found")


def free_port_block(n=4):
    """The first of n consecutive free ports (an even one), all reserved:
    SIPp's -mp takes mp (RTP), mp+1 (RTCP) and mp+2, mp+3 (video)."""
    for _ in range(500):
        port = random.randrange(20000, 32000 - n, 2)
        block = range(port, port + n)
        if any(p in _used_ports for p in block):
            continue
        if all(_bindable(p) for p in block):
            _used_ports.update(block)
            return port
    raise RuntimeError("no free port block found")


class Blackhole:
    """host:port where connects hang: listen(0) with its one queue slot
    taken by a connection nobody accepts, so the kernel drops later SYNs."""

    def __init__(self, host, port):
        self.l = socket.socket()
        self.l.bind((host, port))
        self.l.listen(0)
        self.fill = socket.create_connection((host, port), timeout=2)

    def close(self):
        self.fill.close()
        self.l.close()


def hostport(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def family_of(host):
    return "IPv6" if ":" in host else "IPv4"


def tcp_connect_refused(host, port, timeout=1.0):
    """True when a TCP connect to host:port is refused (nothing listens on
    that address); False when it connects (or does not answer in time)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        s.close()


def tcp_connects(host, port, timeout=1.0):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def ss_listeners(port, proto):
    """{"IPv4": [local addr, ...], "IPv6": [...]} of the sockets listening
    (TCP) or bound unconnected (UDP) on port, as `ss` shows them."""
    out = {}
    for fam, flag in (("IPv4", "-4"), ("IPv6", "-6")):
        r = subprocess.run(
            ["ss", "-Hln", "-t" if proto == "tcp" else "-u", flag, f"sport = :{port}"],
            capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, r.stderr
        out[fam] = [line.split()[3] for line in r.stdout.splitlines() if line.strip()]
    return out


def ss_families(port):
    """The families that have both a TCP listener and a UDP socket on port,
    plus the raw listing for messages."""
    tcp, udp = ss_listeners(port, "tcp"), ss_listeners(port, "udp")
    fams = {f for f in FAMILIES if tcp[f] or udp[f]}
    return fams, {"tcp": tcp, "udp": udp}


def assert_ss_exactly(port, families):
    """`ss -lnt` / `ss -lnu` show TCP and UDP sockets on port for exactly the
    given families, each family on its own socket (no dual-stack wildcard,
    no IPv4-mapped addresses), covering the loopback address of each family:
    bound to it (umservice binds every address) or to that family's own
    wildcard, 0.0.0.0 or an IPV6_V6ONLY [::] (the router)."""
    tcp, udp = ss_listeners(port, "tcp"), ss_listeners(port, "udp")
    listing = f"tcp={tcp} udp={udp}"
    for fam in FAMILIES:
        if fam in families:
            assert tcp[fam], f"no {fam} TCP listener on port {port}: {listing}"
            assert udp[fam], f"no {fam} UDP socket on port {port}: {listing}"
            want = {hostport(LOOPBACK[fam], port),
                    hostport("::" if fam == "IPv6" else "0.0.0.0", port)}
            assert want & set(tcp[fam]), f"{sorted(want)} TCP missing: {listing}"
            assert want & set(udp[fam]), f"{sorted(want)} UDP missing: {listing}"
        else:
            assert not tcp[fam] and not udp[fam], \
                f"{fam} sockets on port {port} although not configured: {listing}"
    for addr in tcp["IPv6"] + udp["IPv6"]:
        assert not addr.startswith("*:"), f"dual-stack wildcard socket {addr}: {listing}"
        assert "::ffff:" not in addr.lower(), f"IPv4-mapped socket {addr}: {listing}"


def proc_cpu_seconds(pid):
    """utime + stime of pid in seconds, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15.
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------
# SIP by hand (fast polling and header checks)


class SipResponse:
    def __init__(self, raw):
        self.raw = raw
        head = raw.split("\r\n\r\n", 1)[0]
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        assert parts[0] == "SIP/2.0", f"not a SIP response: {lines[0]!r}"
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        self.headers = {}
        compact = {"v": "via", "f": "from", "t": "to", "i": "call-id",
                   "m": "contact", "l": "content-length", "c": "content-type",
                   "k": "supported"}
        for line in lines[1:]:
            if ":" not in line:
                continue
            name, value = line.split(":", 1)
            name = name.strip().lower()
            name = compact.get(name, name)
            self.headers.setdefault(name, []).append(value.strip())

    def header(self, name):
        """All values of a header joined with ", " (None when absent)."""
        vals = self.headers.get(name.lower())
        return ", ".join(vals) if vals else None

    def tokens(self, name):
        v = self.header(name)
        return {t.strip().upper() for t in v.split(",")} if v else set()


def sip_request(host, port, transport="udp", method="OPTIONS", timeout=1.0):
    """Sends one out-of-dialog request from a fresh socket and returns the
    first final response (SipResponse). Raises OSError (e.g.
    ConnectionRefusedError) or socket.timeout when there is none."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    typ = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    s = socket.socket(fam, typ)
    s.settimeout(timeout)
    try:
        s.bind((host, 0))
        s.connect((host, port))
        lhost, lport = s.getsockname()[:2]
        local = hostport(lhost, lport)
        branch = "z9hG4bK" + uuid.uuid4().hex[:16]
        tag = uuid.uuid4().hex[:8]
        msg = (f"{method} sip:1001@{hostport(host, port)} SIP/2.0\r\n"
               f"Via: SIP/2.0/{transport.upper()} {local};branch={branch};rport\r\n"
               f"Max-Forwards: 70\r\n"
               f"From: <sip:e2e@{local}>;tag={tag}\r\n"
               f"To: <sip:1001@{hostport(host, port)}>\r\n"
               f"Call-ID: {uuid.uuid4().hex}@e2e\r\n"
               f"CSeq: 1 {method}\r\n"
               f"Contact: <sip:e2e@{local};transport={transport}>\r\n"
               f"User-Agent: OpenUM-e2e\r\n"
               f"Content-Length: 0\r\n\r\n")
        s.sendall(msg.encode())
        deadline = time.monotonic() + timeout
        buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no final response")
            s.settimeout(left)
            if typ == socket.SOCK_DGRAM:
                data = s.recv(65535)
                resp = SipResponse(data.decode(errors="replace"))
                if resp.status >= 200:
                    return resp
                continue
            data = s.recv(65535)
            if not data:
                raise ConnectionResetError("connection closed without a final response")
            buf += data
            while b"\r\n\r\n" in buf:
                head, rest = buf.split(b"\r\n\r\n", 1)
                m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
                clen = int(m.group(1)) if m else 0
                if len(rest) < clen:
                    break
                buf = rest[clen:]
                resp = SipResponse((head + b"\r\n\r\n").decode(errors="replace"))
                if resp.status >= 200:
                    return resp
    finally:
        s.close()


def sip_status(host, port, transport="udp", method="OPTIONS", timeout=0.5):
    """The final status of one request, or None when nothing answered."""
    try:
        return sip_request(host, port, transport, method, timeout).status
    except (OSError, socket.timeout):
        return None


# --------------------------------------------------------------------------
# SIPp


class SippResult:
    def __init__(self, argv, rc, output, logs):
        self.argv, self.rc, self.output, self.logs = argv, rc, output, logs

    @property
    def ok(self):
        return self.rc == 0

    def __str__(self):
        tail = "\n".join(self.output.splitlines()[-25:])
        return (f"sipp exit {self.rc}: {' '.join(self.argv)}\n{tail}\n{self.logs}")


def _sipp_local_port():
    return free_port()


def sipp_request(host, port, transport="u1", method="OPTIONS", expect="200",
                 timeout=5):
    """Runs SIPp once (-m 1) from host (127.0.0.1 or ::1) to host:port with
    transport u1 (UDP) or t1 (TCP): sends method and expects the final
    status `expect`. OPTIONS/200 uses sipp/options.xml, which also checks
    the Allow and Accept headers; anything else sipp/request.xml. Returns a
    SippResult (rc 0 = the expected answer came)."""
    work = Path(tempfile.mkdtemp(prefix="openum-sipp-"))
    try:
        if method == "OPTIONS" and str(expect) == "200":
            scen = SIPP_DIR / "options.xml"
        else:
            text = (SIPP_DIR / "request.xml").read_text()
            text = text.replace("@METHOD@", method).replace("@STATUS@", str(expect))
            scen = work / f"request-{method.lower()}-{expect}.xml"
            scen.write_text(text)
        argv = [SIPP, "-sf", str(scen), "-t", transport, "-i", host,
                "-p", str(_sipp_local_port()), "-m", "1",
                "-timeout", f"{timeout}s", "-timeout_error", "-nostdin",
                "-trace_err", "-trace_logs", hostport(host, port)]
        try:
            r = subprocess.run(argv, cwd=work, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, errors="replace",
                               timeout=timeout + 10)
            rc, output = r.returncode, r.stdout + r.stderr
        except subprocess.TimeoutExpired as e:
            rc, output = -999, f"sipp did not exit: {e}"
        logs = ""
        for f in sorted(work.glob("*.log")):
            logs += f"--- {f.name}\n{f.read_text(errors='replace')[-3000:]}\n"
        return SippResult(argv, rc, output, logs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def sipp_options(host, port, transport="u1", expect="200", timeout=5):
    return sipp_request(host, port, transport, "OPTIONS", expect, timeout)


# --------------------------------------------------------------------------
# daemons and umctl


def _retry_exec(start, within=3.0):
    """Runs start() (which execs a binary from build/), retrying for a few
    seconds while the binary is being relinked by a concurrent `make`
    (EACCES, ETXTBSY, ENOENT for a moment)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return start()
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.ETXTBSY, errno.ENOENT) or \
                    time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


class Daemon:
    def __init__(self, name, argv, log_path, env=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.started = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.proc = _retry_exec(lambda: subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env))

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    def send_signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout):
        """Exit status, or None if still running after timeout seconds."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=5):
        """Signals the daemon and waits; kill -9 if it does not exit."""
        if not self.alive():
            return self.proc.returncode
        self.send_signal(sig)
        rc = self.wait(timeout)
        if rc is None:
            self.kill9()
        return rc

    def kill9(self):
        if self.alive():
            self.proc.kill()
        self.proc.wait(timeout=10)


class Umctl:
    def __init__(self, argv, rc, out, err):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err

    @property
    def text(self):
        return self.out + self.err

    @property
    def data(self):
        return json.loads(self.out)

    def __str__(self):
        return (f"umctl exit {self.rc}: {' '.join(self.argv)}\n"
                f"stdout: {self.out.strip()}\nstderr: {self.err.strip()}")


class Env:
    """One test's world: a state directory, free ports, the daemons."""

    def __init__(self, base, wrap=None):
        """wrap(argv) -> argv runs the daemons and umctl some other way
        (netns.ns_env: inside a network namespace)."""
        self.base = Path(base)
        self.wrap = wrap or (lambda argv: argv)
        self.dir = self.base / "state"
        self.dir.mkdir()
        self.router_port = free_port()
        self.service_port = free_port()
        self.daemons = []
        self.counts = {}

    # paths
    @property
    def db(self):
        return self.dir / "directory.db"

    @property
    def sock(self):
        return self.dir / "run" / "umcallrouter.sock"

    # processes
    def _log_path(self, name):
        n = self.counts.get(name, 0) + 1
        self.counts[name] = n
        return self.dir / (f"{name}.log" if n == 1 else f"{name}-{n}.log")

    def spawn(self, name, binary, args):
        d = Daemon(name, self.wrap([binary, "--state-dir", self.dir, *args]),
                   self._log_path(name))
        self.daemons.append(d)
        return d

    def start_router(self, sip_port="default", wait=True, log_level="info",
                     extra=()):
        """Starts umcallrouter (with --sip-port self.router_port unless
        sip_port is None, meaning the directory's SipTcpListeningPort) and
        waits until `umctl status` answers and shows its pid."""
        args = ["--log-level", log_level]
        if sip_port == "default":
            sip_port = self.router_port
        if sip_port is not None:
            args += ["--sip-port", str(sip_port)]
        d = self.spawn("umcallrouter", ROUTER, [*args, *extra])
        if wait:
            self.wait_router(d)
        return d

    def start_service(self, sip_port="default", instance_id="e2e-1", wait=True,
                      families=FAMILIES, log_level="info", extra=()):
        """Starts umservice and waits until it is registered with the router
        with endpoints of the given families (requires a running router)."""
        args = ["--log-level", log_level, "--instance-id", instance_id]
        if sip_port == "default":
            sip_port = self.service_port
        if sip_port is not None:
            args += ["--sip-port", str(sip_port)]
        d = self.spawn("umservice", SERVICE, [*args, *extra])
        if wait:
            self.wait_instance(instance_id, families, port=sip_port, daemon=d)
        return d

    def start_both(self):
        r = self.start_router()
        s = self.start_service()
        return r, s

    def stop_all(self, sig=signal.SIGTERM):
        """Stops every daemon still running (newest first); returns the
        problems seen: a non-zero exit or a hang on the signal, and any
        sanitizer report in any daemon's log."""
        problems = []
        for d in reversed(self.daemons):
            if d.alive():
                rc = d.stop(sig, timeout=5)
                if rc != 0:
                    problems.append(f"{d.name} pid {d.pid}: exit {rc} on {sig.name} "
                                    f"at the end of the test")
        for d in self.daemons:
            log = d.log()
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                           "runtime error:", "ThreadSanitizer"):
                if marker in log:
                    problems.append(f"{d.name} pid {d.pid}: {marker} in {d.log_path}")
        return problems

    def kill_all(self):
        for d in self.daemons:
            try:
                d.kill9()
            except Exception:
                pass

    # umctl
    def umctl(self, *args, json_out=False, state_dir=True, env=None, timeout=20):
        argv = [str(UMCTL)]
        if state_dir:
            argv += ["--state-dir", str(self.dir)]
        if json_out:
            argv.append("--json")
        argv = self.wrap(argv + [str(a) for a in args])
        try:
            r = _retry_exec(lambda: subprocess.run(
                argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                timeout=timeout, env=env, errors="replace"))
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"umctl did not exit within {timeout} s: {argv}") from e
        return Umctl(argv, r.returncode, r.stdout, r.stderr)

    def umctl_ok(self, *args, **kw):
        r = self.umctl(*args, **kw)
        assert r.rc == 0, str(r)
        return r

    def get(self, verb, *args):
        """`umctl --json VERB ...` parsed."""
        r = self.umctl_ok(verb, *args, json_out=True)
        try:
            return r.data
        except ValueError as e:
            raise AssertionError(f"umctl --json {verb} printed no JSON: {r}") from e

    def status(self):
        """`umctl --json status` parsed, or None when it fails (router down)."""
        r = self.umctl("status", json_out=True, timeout=10)
        if r.rc != 0:
            return None
        try:
            return r.data
        except ValueError as e:
            raise AssertionError(f"umctl --json status printed no JSON: {r}") from e

    # waiting
    def _check_alive(self, d):
        if d is not None and not d.alive():
            raise AssertionError(f"{d.name} exited with {d.proc.returncode}:\n{d.tail()}")

    def wait_router(self, d=None, timeout=5):
        def ready():
            self._check_alive(d)
            st = self.status()
            if st and (d is None or st.get("router", {}).get("pid") == d.pid):
                return st
            return None
        return wait_for(ready, timeout, what="the router to answer umctl status")

    def find_instance(self, st, instance_id):
        for inst in (st or {}).get("instances", []):
            if inst.get("instance_id") == instance_id:
                return inst
        return None

    def wait_instance(self, instance_id="e2e-1", families=FAMILIES, port=None,
                      daemon=None, timeout=5, interval=0.05):
        """Polls `umctl --json status` until the instance is registered with
        endpoints of exactly the given families (and port, if given)."""
        want = set(families)

        def ready():
            self._check_alive(daemon)
            inst = self.find_instance(self.status(), instance_id)
            if not inst:
                return None
            eps = inst.get("endpoints", [])
            if {e.get("family") for e in eps} != want:
                return None
            if port is not None and any(e.get("port") != port for e in eps):
                return None
            return inst
        return wait_for(ready, timeout, interval,
                        what=f"instance {instance_id} registered with {sorted(want)}")

    def wait_router_families(self, families, port=None, timeout=5, interval=0.05):
        want = set(families)

        def ready():
            st = self.status()
            if not st:
                return None
            eps = st.get("router", {}).get("endpoints", [])
            if {e.get("family") for e in eps} != want:
                return None
            if port is not None and any(e.get("port") != port for e in eps):
                return None
            return st
        return wait_for(ready, timeout, interval,
                        what=f"router endpoints {sorted(want)}")

    def sqlite(self, sql, check=True):
        r = subprocess.run(["sqlite3", "-bail", str(self.db), sql],
                           capture_output=True, text=True, timeout=20)
        if check:
            assert r.returncode == 0, f"sqlite3 {sql!r}: {r.stderr}"
        return r

    def dump(self):
        """A canonical text dump of directory.db (for "unchanged" checks)."""
        return self.sqlite(".dump").stdout

    def report(self):
        out = [f"state directory: {self.dir}"]
        for d in self.daemons:
            state = "running" if d.alive() else f"exit {d.proc.returncode}"
            out.append(f"===== {d.name} pid {d.pid} ({state}) {d.log_path.name}: "
                       f"{' '.join(d.argv)}")
            out.append(d.tail(60))
        return "\n".join(out)


# --------------------------------------------------------------------------
# pytest plumbing


def pytest_sessionstart(session):
    missing = [str(p) for p in (UMCTL, ROUTER, SERVICE) if not p.exists()]
    if missing:
        pytest.exit(f"OpenUM binaries not built (run make): {', '.join(missing)}",
                    returncode=2)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.failed:
        env = getattr(item, "_openum_env", None)
        if env is not None:
            rep.sections.append(("OpenUM daemons", env.report()))


@pytest.fixture
def env(request):
    """A fresh state directory and ports; every daemon started through it is
    stopped (SIGTERM, then SIGKILL) at the end, whatever happened."""
    base = tempfile.mkdtemp(prefix="openum-e2e-")
    e = Env(base)
    request.node._openum_env = e
    yield e
    problems = []
    try:
        problems = e.stop_all()
    finally:
        e.kill_all()
    failed = problems or any(
        getattr(getattr(request.node, "rep_" + w, None), "failed", False)
        for w in ("setup", "call"))
    if failed:
        print(f"\n[kept {base} for inspection]")
    else:
        shutil.rmtree(base, ignore_errors=True)
    if problems:
        pytest.fail("daemons did not stop cleanly:\n" + "\n".join(problems) +
                    "\n" + e.report(), pytrace=False)


@pytest.fixture
def running(env):
    """Router and one UM service instance (e2e-1), both dual stack,
    registered."""
    env.start_router()
    env.start_service()
    return env
