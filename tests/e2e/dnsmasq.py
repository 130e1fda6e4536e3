"""dnsmasq on loopback for process tests: answers for example.test from a
hosts file, on 127.0.0.1 and a free port only; never forwards anything."""

import shutil
import signal
import socket
import subprocess
from pathlib import Path

from conftest import free_port, wait_for

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


class Dnsmasq:
    """dnsmasq answering for example.test on 127.0.0.1:port only, from a
    hosts file (reloaded on SIGHUP); never forwards anything."""

    def __init__(self, workdir, port=None):
        self.dir = Path(workdir)
        self.port = port or free_port()
        self.hosts = self.dir / "dns.hosts"
        self.log = self.dir / "dnsmasq.log"
        self.proc = None

    def write(self, records):
        """records: [(address, name)]."""
        self.hosts.write_text("".join(f"{a} {n}\n" for a, n in records))

    def start(self, records, ttl=1):
        self.write(records)
        argv = [DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=",
                f"--port={self.port}", "--listen-address=127.0.0.1", "--bind-interfaces",
                "--no-hosts", "--no-resolv", "--no-poll", "--user=root",
                f"--addn-hosts={self.hosts}", "--local=/example.test/",
                f"--local-ttl={ttl}", "--log-queries", f"--log-facility={self.log}",
                # a name's addresses in hosts-file order, every time (the
                # default rotates them from one answer to the next)
                "--no-round-robin"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # Ready when it answers on its UDP port.
        wait_for(lambda: self.proc.poll() is not None or self.answers(), 5,
                 what="dnsmasq to answer")
        assert self.proc.poll() is None, \
            f"dnsmasq exited {self.proc.returncode}: {self.proc.stderr.read().decode()}"
        return self

    def answers(self):
        """True when a DNS query for pbx.example.test gets any answer."""
        q = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
             b"\x03pbx\x07example\x04test\x00\x00\x01\x00\x01")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.2)
        try:
            s.sendto(q, ("127.0.0.1", self.port))
            return s.recv(512)[:2] == b"\x12\x34"
        except OSError:
            return False
        finally:
            s.close()

    def reload(self, records):
        self.write(records)
        self.proc.send_signal(signal.SIGHUP)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc and self.proc.stderr:
            self.proc.stderr.close()

    def queries(self):
        try:
            return [line for line in self.log.read_text(errors="replace").splitlines()
                    if "query[" in line]
        except FileNotFoundError:
            return []
