"""Multi-host test topologies made of network namespaces (issue 6).

    topo = Topology("mx")                      # sweeps stale namespaces first
    srv = topo.host("srv", v4=["198.51.100.10"], v6=["2001:db8:1::10"])
    pbx = topo.host("pbx4", v4=["198.51.100.101"])          # IPv4-only host
    dead = topo.host("dead", v6=["2001:db8:1::66"], blackhole=True)
    env = ns_env(srv, base)                    # conftest.Env: daemons and umctl in srv
    p = pbx.popen([SIPP, ...])                 # any process inside a namespace
    s = pbx.create_connection(("198.51.100.10", 5060), 1.0)   # a socket from inside
    topo.close()                               # always (also a context manager)

Every host is a namespace with `lo` up and one veth (`eth0`) into a bridge
that lives in a namespace of its own: one layer-2 segment, no router, no
default route anywhere. Nothing in a topology is linked to the machine's own
namespace, so nothing sent inside can reach (or disturb) its interfaces and
routes; a packet to an address outside the segment fails at once
(ENETUNREACH). Addresses must come from the documentation prefixes
198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32 (checked); 192.0.2.0/24
and fd00::/64 are the machine's own and are refused.

A host given no IPv6 address has IPv6 disabled altogether (no ::1, no
link-local): a truly IPv4-only host. An IPv6-only host keeps 127.0.0.1 on
`lo` (so that tools such as baresip's ctrl_tcp can listen on loopback), but
has no IPv4 address on the segment. IPv6 addresses are added `nodad` and DAD
is off in every namespace (also for link-local addresses), so all addresses
are usable as soon as the host exists.

A blackhole host (or Host.blackhole(addrs)) answers ARP and neighbour
discovery for its addresses, so senders see no error, but nothing it would
send from them leaves (policy routing into a blackhole route): a TCP connect
to such an address hangs until the caller's own timeout, UDP to it vanishes.
This is the "dead address" of the issue (UCMA's 21 s per address).

Processes: Host.popen()/run() start any program in the namespace (`ip netns
exec`, which execs it: the Popen's pid is the program's). Popen'ed processes
are tracked and stopped by close(); close() then kills (by pid) whatever is
still running in the topology's namespaces and deletes them (the veth pairs
go with the bridge namespace). Topologies still open at interpreter exit are
closed by an atexit hook; namespaces of this naming scheme whose creating
process is gone are removed by the next Topology() ("openum<pid>-<tag>-<host>").

Sockets: Host.socket()/create_connection() create a socket inside the host's
namespace (setns() on the calling thread only, restored at once), so the
test process can talk to a tool's loopback control port (baresip ctrl_tcp)
or probe the network from any host without a helper process.

Also here: Dnsmasq (a DNS server in a namespace answering from a hosts file,
reloadable), ns_env() (a conftest.Env whose daemons and umctl run in a
host), and ss_sockets() (what a namespace listens on).
"""

import atexit
import ctypes
import ipaddress
import os
import re
import signal
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from conftest import Env, wait_for

IP = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "ip"
DNSMASQ = "/usr/sbin/dnsmasq"
NS_PREFIX = "openum"
ALLOWED = [ipaddress.ip_network(n) for n in
           ("198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")]

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_LIVE = set()
_LIVE_LOCK = threading.Lock()


def _ip(*args, check=True, timeout=20):
    r = subprocess.run([IP, *[str(a) for a in args]], capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(map(str, args))}: exit {r.returncode}: "
                           f"{r.stderr.strip()}")
    return r


def _check_addr(addr):
    a = ipaddress.ip_address(addr)
    if not any(a in n for n in ALLOWED):
        raise ValueError(f"{addr}: not in {', '.join(map(str, ALLOWED))}; a topology "
                         f"uses documentation prefixes only")
    return a


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _ns_pids(ns):
    r = _ip("netns", "pids", ns, check=False)
    return [int(p) for p in r.stdout.split() if p.isdigit()]


def _kill_ns_pids(ns, grace=2.0):
    """SIGTERM, then SIGKILL, to every process still in namespace ns
    (processes of this topology: the namespace is ours)."""
    pids = _ns_pids(ns)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if not pids:
            return []
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            pids = [p for p in _ns_pids(ns) if _pid_alive(p)]
            if not pids:
                return []
            time.sleep(0.05)
    return pids


def list_namespaces():
    r = _ip("netns", "list", check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def sweep_stale():
    """Removes namespaces named by this module whose creating process is
    gone (left by a run that was killed). Returns their names."""
    gone = []
    live_prefixes = set()
    with _LIVE_LOCK:
        live_prefixes = {t.prefix for t in _LIVE}
    for ns in list_namespaces():
        m = re.match(rf"^{NS_PREFIX}(\d+)-", ns)
        if not m:
            continue
        pid = int(m.group(1))
        if pid != os.getpid() and _pid_alive(pid):
            continue                      # another live run's topology
        if any(ns.startswith(p) for p in live_prefixes):
            continue                      # ours, still open
        _kill_ns_pids(ns, grace=0.5)
        _ip("netns", "del", ns, check=False)
        gone.append(ns)
    return gone


@contextmanager
def _in_netns(path):
    """Runs the block with the calling thread in the network namespace at
    path (other threads are not affected)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(target, _CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"setns({path}): {os.strerror(e)}")
        try:
            yield
        finally:
            if _libc.setns(own, _CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                # A thread stuck in a test namespace would send the rest of
                # the session's traffic from there: never carry on.
                os._exit(f"setns back to own namespace failed: {os.strerror(e)}")
    finally:
        os.close(target)
        os.close(own)


class Host:
    """One namespace on the topology's segment."""

    def __init__(self, topo, name, ns, v4, v6, ifname):
        self.topo = topo
        self.name = name
        self.ns = ns
        self.v4 = list(v4)
        self.v6 = list(v6)
        self.ifname = ifname          # the bridge-side end of the veth
        self.blackholed = []

    def __repr__(self):
        return f"<Host {self.name} ns={self.ns} v4={self.v4} v6={self.v6}>"

    @property
    def families(self):
        return {f for f, a in (("IPv4", self.v4), ("IPv6", self.v6)) if a}

    def addr(self, family):
        """The host's first address of family ("IPv4"/"IPv6"), or None."""
        lst = self.v4 if family == "IPv4" else self.v6
        return lst[0] if lst else None

    # processes
    def wrap(self, argv):
        """argv run inside this namespace (for Popen and friends)."""
        return [IP, "netns", "exec", self.ns, *[str(a) for a in argv]]

    def popen(self, argv, **kw):
        """subprocess.Popen of argv in this namespace; stopped by
        Topology.close() if still running."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(self.wrap(argv), **kw)
        self.topo._track(p)
        return p

    def run(self, argv, timeout=20, check=False, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        r = subprocess.run(self.wrap(argv), timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise RuntimeError(f"in {self.name}: {' '.join(map(str, argv))}: exit "
                               f"{r.returncode}: {r.stdout}{r.stderr}")
        return r

    def ip(self, *args, check=True):
        return _ip("-n", self.ns, *args, check=check)

    # sockets
    @contextmanager
    def entered(self):
        """The calling thread in this namespace for the block (sockets
        created inside stay in it)."""
        with _in_netns(f"/run/netns/{self.ns}"):
            yield

    def socket(self, family=socket.AF_INET, type=socket.SOCK_STREAM):
        with self.entered():
            return socket.socket(family, type)

    def create_connection(self, address, timeout=1.0):
        with self.entered():
            return socket.create_connection(address, timeout)

    def tcp_probe(self, host, port, timeout=1.0):
        """'connected', 'refused', 'unreachable' or 'timeout' for a TCP
        connect from this host."""
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = self.socket(fam, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect((host, port))
            return "connected"
        except ConnectionRefusedError:
            return "refused"
        except socket.timeout:
            return "timeout"
        except OSError:
            return "unreachable"
        finally:
            s.close()

    # addresses
    def add_address(self, addr):
        """Adds an address (with /prefix, default /24 or /64) to eth0."""
        a, _, plen = str(addr).partition("/")
        ia = _check_addr(a)
        if ia.version == 4:
            self.ip("addr", "add", f"{a}/{plen or 24}", "dev", "eth0")
            self.v4.append(a)
        else:
            if not self.v6 and self.v4:
                raise ValueError(f"{self.name} was made IPv4-only (IPv6 disabled)")
            self.ip("-6", "addr", "add", f"{a}/{plen or 64}", "dev", "eth0", "nodad")
            self.v6.append(a)

    def blackhole(self, addrs=None):
        """Makes addrs (default: all of the host's addresses) dead: ARP/ND
        still answered, nothing sent from them leaves."""
        for a in (addrs or self.v4 + self.v6):
            v = "-6" if ":" in a else "-4"
            self.ip(v, "route", "replace", "blackhole", "default", "table", 66)
            self.ip(v, "rule", "add", "from", a, "table", 66, "priority", 100)
            self.blackholed.append(a)

    def unblackhole(self, addrs=None):
        for a in list(addrs or self.blackholed):
            v = "-6" if ":" in a else "-4"
            self.ip(v, "rule", "del", "from", a, "table", 66, "priority", 100, check=False)
            self.blackholed.remove(a)

    def ss(self, *args):
        return self.run(["ss", *args], check=True).stdout


class Topology:
    """A set of hosts on one bridged segment; see the module docstring."""

    def __init__(self, tag="t"):
        if os.geteuid() != 0:
            raise RuntimeError("network namespaces need root")
        if not re.fullmatch(r"[a-z0-9]{1,12}", tag):
            raise ValueError("tag: 1-12 of a-z 0-9")
        self.prefix = f"{NS_PREFIX}{os.getpid()}-{tag}-"
        self.tag = tag
        self.hosts = {}
        self.procs = []
        self.closed = False
        self._lock = threading.Lock()
        self._n = 0
        self.swept = sweep_stale()
        if any(ns.startswith(self.prefix) for ns in list_namespaces()):
            raise RuntimeError(f"a topology {self.prefix}* is open already")
        with _LIVE_LOCK:
            _LIVE.add(self)
        self.namespaces = []
        try:
            self.br = self._new_ns("br")
            self._sysctl(self.br, {"net.ipv6.conf.all.disable_ipv6": 1,
                                   "net.ipv6.conf.default.disable_ipv6": 1})
            _ip("-n", self.br, "link", "set", "lo", "up")
            _ip("-n", self.br, "link", "add", "br0", "type", "bridge",
                "mcast_snooping", 0, "stp_state", 0, "forward_delay", 0)
            _ip("-n", self.br, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _new_ns(self, name):
        ns = self.prefix + name
        _ip("netns", "add", ns)
        self.namespaces.append(ns)
        return ns

    @staticmethod
    def _sysctl(ns, values):
        script = "".join(f"echo {v} > /proc/sys/{k.replace('.', '/')} && "
                         for k, v in values.items()) + "true"
        r = subprocess.run([IP, "netns", "exec", ns, "sh", "-c", script],
                           capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            raise RuntimeError(f"sysctl in {ns}: {r.stderr.strip()}")

    def _track(self, p):
        with self._lock:
            self.procs.append(p)

    def host(self, name, v4=(), v6=(), blackhole=False):
        """A new host with these addresses (without prefix length: /24 for
        IPv4, /64 for IPv6) on eth0. No IPv6 address: IPv6 is disabled in
        the namespace."""
        if self.closed:
            raise RuntimeError("topology closed")
        if name in self.hosts or not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", name):
            raise ValueError(f"host name {name!r} bad or taken")
        for a in list(v4) + list(v6):
            a0 = a.split("/")[0]
            if _check_addr(a0).version != (4 if a in v4 else 6):
                raise ValueError(f"{a}: wrong family list")
        ns = self._new_ns(name)
        with self._lock:
            self._n += 1
            ifname = f"p{self._n}"
        if v6:
            self._sysctl(ns, {"net.ipv6.conf.all.accept_dad": 0,
                              "net.ipv6.conf.default.accept_dad": 0,
                              "net.ipv6.conf.default.dad_transmits": 0,
                              "net.ipv6.conf.default.accept_ra": 0,
                              "net.ipv6.conf.default.router_solicitations": 0})
        else:
            self._sysctl(ns, {"net.ipv6.conf.all.disable_ipv6": 1,
                              "net.ipv6.conf.default.disable_ipv6": 1,
                              "net.ipv6.conf.lo.disable_ipv6": 1})
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", self.br, "link", "add", ifname, "type", "veth",
            "peer", "name", "eth0", "netns", ns)
        _ip("-n", self.br, "link", "set", ifname, "master", "br0", "up")
        h = Host(self, name, ns, [], [], ifname)
        for a in v4:
            a0, _, plen = a.partition("/")
            _ip("-n", ns, "addr", "add", f"{a0}/{plen or 24}", "dev", "eth0")
            h.v4.append(a0)
        for a in v6:
            a0, _, plen = a.partition("/")
            _ip("-n", ns, "-6", "addr", "add", f"{a0}/{plen or 64}", "dev", "eth0", "nodad")
            h.v6.append(a0)
        _ip("-n", ns, "link", "set", "eth0", "up")
        self.hosts[name] = h
        if blackhole:
            h.blackhole()
        return h

    def wait_reachable(self, src, dst_addrs, timeout=5.0):
        """Waits until src can reach each address of dst_addrs (a TCP
        connect is refused: the path works, nothing listens on port 9)."""
        for a in dst_addrs:
            wait_for(lambda: src.tcp_probe(a, 9, 0.3) in ("refused", "connected"),
                     timeout, 0.05, f"{src.name} to reach {a}")

    def close(self):
        """Stops every process of the topology and deletes its namespaces;
        safe to call twice. Returns the problems seen (text)."""
        if self.closed:
            return []
        self.closed = True
        problems = []
        with self._lock:
            procs = list(self.procs)
        for p in procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 3
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    problems.append(f"pid {p.pid} did not die")
        for ns in reversed(self.namespaces):
            left = _kill_ns_pids(ns)
            if left:
                problems.append(f"{ns}: pids {left} still running")
            r = _ip("netns", "del", ns, check=False)
            if r.returncode != 0 and ns in list_namespaces():
                problems.append(f"ip netns del {ns}: {r.stderr.strip()}")
        with _LIVE_LOCK:
            _LIVE.discard(self)
        left = [ns for ns in list_namespaces() if ns.startswith(self.prefix)]
        if left:
            problems.append(f"namespaces left: {left}")
        return problems


def close_world(env, dns, topo):
    """The end of a test world in namespaces: the daemons of env (if any)
    stopped, dnsmasq (if any), then the topology; the problems seen."""
    problems = []
    if env is not None:
        try:
            problems += env.stop_all()
        finally:
            env.kill_all()
    if dns:
        dns.stop()
    return problems + topo.close()


@atexit.register
def _close_all():
    with _LIVE_LOCK:
        live = list(_LIVE)
    for t in live:
        try:
            t.close()
        except Exception:
            pass


# --------------------------------------------------------------------------
# helpers for the daemons and tools


def ns_env(host, base, router_port=5060, service_port=5062):
    """A conftest.Env whose daemons and umctl run inside host's namespace,
    on the standard ports (a namespace has its own port space)."""
    Path(base).mkdir(parents=True, exist_ok=True)
    env = Env(base, wrap=host.wrap)
    env.router_port = router_port
    env.service_port = service_port
    env.host = host
    return env


def ss_sockets(host, port):
    """{"tcp": {"IPv4": [...], "IPv6": [...]}, "udp": {...}}: the local
    addresses of the sockets listening (TCP) or bound (UDP) on port in
    host's namespace."""
    out = {}
    for proto, flag in (("tcp", "-t"), ("udp", "-u")):
        out[proto] = {}
        for fam, fflag in (("IPv4", "-4"), ("IPv6", "-6")):
            r = host.run(["ss", "-Hln", flag, fflag, f"sport = :{port}"])
            out[proto][fam] = [ln.split()[3] for ln in r.stdout.splitlines() if ln.strip()]
    return out


def dns_query(host, server, name, qtype="A", timeout=0.5):
    """The addresses in the answer to one query (A or AAAA) sent from host
    to server:53 over UDP; None when nothing answered."""
    qt = {"A": 1, "AAAA": 28}[qtype]
    qid = os.getpid() & 0xFFFF
    q = qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + qt.to_bytes(2, "big") + b"\x00\x01"
    fam = socket.AF_INET6 if ":" in server else socket.AF_INET
    s = host.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(q, (server, 53))
        data = s.recv(1500)
    except OSError:
        return None
    finally:
        s.close()
    if data[:2] != q[:2]:
        return None
    ancount = int.from_bytes(data[6:8], "big")
    pos = len(q)
    out = []
    for _ in range(ancount):
        if data[pos] & 0xC0 == 0xC0:
            pos += 2
        else:
            while data[pos]:
                pos += data[pos] + 1
            pos += 1
        rtype = int.from_bytes(data[pos:pos + 2], "big")
        rdlen = int.from_bytes(data[pos + 8:pos + 10], "big")
        rdata = data[pos + 10:pos + 10 + rdlen]
        pos += 10 + rdlen
        if rtype == 1 and rdlen == 4:
            out.append(socket.inet_ntop(socket.AF_INET, rdata))
        elif rtype == 28 and rdlen == 16:
            out.append(socket.inet_ntop(socket.AF_INET6, rdata))
    return out


class Dnsmasq:
    """dnsmasq in a host's namespace, on port 53 of the host's addresses,
    answering for `domain` from a hosts file (Dnsmasq.set() rewrites it and
    reloads); never forwards anything, unknown names are NXDOMAIN.
    round_robin=False: a name's addresses of one family always come in the
    order given (dnsmasq otherwise rotates them from one query to the next,
    so the order a daemon sees depends on who asked before)."""

    def __init__(self, host, workdir, domain="example.test", ttl=1, round_robin=True):
        self.host = host
        self.round_robin = round_robin
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.domain = domain
        self.ttl = ttl
        self.hosts = self.dir / "dns.hosts"
        self.log = self.dir / "dnsmasq.log"
        self.proc = None
        self.records = {}

    def _write(self):
        lines = []
        for name, addrs in sorted(self.records.items()):
            lines += [f"{a} {name}\n" for a in addrs]
        tmp = self.hosts.with_suffix(".tmp")
        tmp.write_text("".join(lines))
        tmp.replace(self.hosts)

    def start(self, records, timeout=5):
        """records: {fqdn: [addresses]} (A and AAAA from the address
        families)."""
        self.records = {k: list(v) for k, v in records.items()}
        self._write()
        argv = [DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=",
                "--port=53", "--bind-interfaces", "--no-hosts", "--no-resolv", "--no-poll",
                "--user=root", f"--addn-hosts={self.hosts}", f"--local=/{self.domain}/",
                f"--local-ttl={self.ttl}", "--log-queries", f"--log-facility={self.log}"]
        argv += [f"--listen-address={a}" for a in self.host.v4 + self.host.v6]
        if not self.round_robin:
            argv.append("--no-round-robin")
        self.out = open(self.dir / "dnsmasq.out", "ab")
        self.proc = self.host.popen(argv, stdout=self.out, stderr=subprocess.STDOUT)
        server = (self.host.v4 + self.host.v6)[0]
        wait_for(lambda: self.proc.poll() is not None or
                 dns_query(self.host, server, f"probe.{self.domain}", "A", 0.2) is not None,
                 timeout, 0.05, "dnsmasq to answer")
        if self.proc.poll() is not None:
            raise AssertionError(f"dnsmasq exited {self.proc.returncode}: "
                                 f"{(self.dir / 'dnsmasq.out').read_text(errors='replace')}")
        return self

    def set(self, name, addrs):
        """Replaces name's records and reloads (SIGHUP)."""
        self.records[name] = list(addrs)
        self._write()
        self.proc.send_signal(signal.SIGHUP)

    @property
    def servers(self):
        """The server addresses, as DnsServers wants them."""
        return self.host.v4 + self.host.v6

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "out", None):
            self.out.close()

    def queries(self):
        try:
            return [ln for ln in self.log.read_text(errors="replace").splitlines()
                    if "query[" in ln]
        except FileNotFoundError:
            return []
