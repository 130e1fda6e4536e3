"""SIPp as a UM IP gateway for process tests: a UAS over TCP that answers
message-waiting NOTIFYs (sipp/mwi_uas.xml) and OPTIONS pings, and logs
every request it received (-trace_msg) so tests can read them back; on
loopback, or inside a network namespace (netns=a netns.Host)."""

import datetime
import re
import subprocess
import time
from pathlib import Path

from conftest import SIPP, SIPP_DIR, wait_for


class Notify:
    """One NOTIFY as SIPp logged it."""

    def __init__(self, when, text):
        self.when = when
        head, _, body = text.partition("\n\n")
        lines = head.splitlines()
        self.request_line = lines[0].strip()
        self.headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                self.headers.setdefault(k.strip().lower(), []).append(v.strip())
        self.body = body.strip("\n")
        self.raw = text

    def header(self, name):
        v = self.headers.get(name.lower())
        return v[0] if v else None

    def body_fields(self):
        out = {}
        for line in self.body.splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                out[k.strip()] = v.strip()
        return out


class GatewayUas:
    """SIPp as a UM IP gateway on host:port over TCP, answering every
    NOTIFY with `status` and every OPTIONS ping with 200; at most `calls`
    requests of either kind, then it exits. netns: a netns.Host to run in
    (host is then one of its addresses; the topology stops it too)."""

    def __init__(self, workdir, name, host, port, status="200 OK", calls=1000,
                 netns=None):
        self.name, self.host, self.port, self.status = name, host, port, status
        self.netns = netns
        self.dir = Path(workdir) / f"uas-{name}-{int(time.monotonic() * 1000)}"
        self.dir.mkdir(parents=True)
        scen = self.dir / "mwi_uas.xml"
        scen.write_text((SIPP_DIR / "mwi_uas.xml").read_text().replace("@STATUS@", status))
        self.messages = self.dir / "messages.log"
        self.argv = [SIPP, "-sf", str(scen), "-t", "t1", "-i", host, "-p", str(port),
                     "-m", str(calls), "-nostdin", "-trace_msg",
                     "-message_file", str(self.messages),
                     "-trace_err", "-error_file", str(self.dir / "errors.log")]
        self.out = open(self.dir / "output.txt", "wb")
        popen = netns.popen if netns else subprocess.Popen
        self.proc = popen(self.argv, cwd=self.dir, stdin=subprocess.DEVNULL,
                          stdout=self.out, stderr=subprocess.STDOUT)

    def listening(self):
        fam = "-6" if ":" in self.host else "-4"
        argv = ["ss", "-Hlnt", fam, f"sport = :{self.port}"]
        if self.netns:
            argv = self.netns.wrap(argv)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return self.proc.poll() is None and bool(r.stdout.strip())

    def wait_listening(self, timeout=10):
        wait_for(self.listening, timeout, 0.05, f"SIPp gateway {self.name} listening")

    def notifies(self, method="NOTIFY"):
        """The requests of `method` received so far, in order."""
        try:
            text = self.messages.read_text(errors="replace")
        except FileNotFoundError:
            return []
        out = []
        blocks = re.split(r"(?m)^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\s*$", text)
        # [prefix, time1, block1, time2, block2, ...]
        for i in range(1, len(blocks) - 1, 2):
            when = datetime.datetime.strptime(blocks[i], "%Y-%m-%d %H:%M:%S.%f")
            block = blocks[i + 1].replace("\r\n", "\n")
            m = re.search(r"(?s)message received \[\d+\] bytes :\n\n(.*)", block)
            if m and m.group(1).startswith(method + " "):
                out.append(Notify(when, m.group(1)))
        return out

    def options(self):
        return self.notifies("OPTIONS")

    def wait_notifies(self, n, timeout):
        return wait_for(lambda: (lambda x: x if len(x) >= n else None)(self.notifies()),
                        timeout, 0.1, f"{n} NOTIFY(s) at gateway {self.name}")

    def wait_exit(self, timeout=10):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.out.close()

    def report(self):
        def read(n, tail=4000):
            p = self.dir / n
            return p.read_text(errors="replace")[-tail:] if p.exists() else ""
        return (f"--- gateway {self.name} ({self.status}) {' '.join(self.argv)}\n"
                f"output:\n{read('output.txt', 1500)}\nerrors:\n{read('errors.log')}\n"
                f"messages:\n{read('messages.log')}")
