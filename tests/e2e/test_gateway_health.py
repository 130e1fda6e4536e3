"""Gateway health and the outbound connection policy (issue 6, "Gateway
health" and "Outbound connection policy"), with SIPp as the gateways and
dnsmasq for a gateway given by name; loopback only (127.0.0.0/8).

- OPTIONS pings every GatewayPingInterval: a gateway that answers is Up in
  `umctl get-umipgateway` with the answer and the address that gave it; one
  that does not is Down, logged once as event 1400 however many pings fail,
  and once more when it answers again; a gateway that is not Enabled is not
  pinged.
- A gateway FQDN whose first two addresses are dead (blackholes: a listener
  whose one-slot accept queue is full drops every SYN, as a dead host does)
  and whose third answers: OPTIONS and NOTIFY reach the live address; while
  the BadAddressInterval runs the dead ones are skipped; after it they are
  tried again.
"""

import re
import socket
import time

from conftest import Blackhole, free_port, wait_for
from dnsmasq import Dnsmasq
from sipgw import GatewayUas

PING_S = 5


def service_log(env):
    return [d for d in env.daemons if d.name == "umservice"][-1].log()


def gateway(env, name):
    for g in env.get("get-umipgateway"):
        if g["Name"] == name:
            return g
    raise AssertionError(f"no gateway {name}")


def health(env, name, want):
    """Polled until gateway `name` shows Health `want`; returns it."""
    def check():
        g = gateway(env, name)
        return g if g["Health"] == want else None
    return wait_for(check, PING_S * 3, 0.2, f"gateway {name} to be {want}")


def setup_gateways(env, **gws):
    """The default loopback gateways are disabled (they would ping the
    router's default port); each of gws is a new gateway in the default
    dial plan: name -> (address, port)."""
    for g in ("loopback", "loopback6"):
        env.umctl_ok("set-umipgateway", "--identity", g, "--status", "Disabled")
    for name, (addr, port) in gws.items():
        env.umctl_ok("new-umipgateway", "--name", name, "--address", addr,
                     "--port", port)
        env.umctl_ok("new-umhuntgroup", "--name", f"{name}-hg", "--umipgateway", name,
                     "--umdialplan", "default")
    env.umctl_ok("set-umservice", "--gateway-ping-interval", PING_S)


def test_health_up_down_and_back(env, tmp_path):
    up_port, down_port = free_port(), free_port()
    setup_gateways(env, gwup=("127.0.0.1", up_port), gwdown=("127.0.0.1", down_port))
    uas = GatewayUas(tmp_path, "gwup", "127.0.0.1", up_port)
    late = None
    try:
        uas.wait_listening()
        env.start_router()
        env.start_service()
        g = health(env, "gwup", "Up")
        assert f"200 OK from 127.0.0.1:{up_port}" in g["LastPing"], g
        assert uas.options(), "SIPp saw no OPTIONS"
        opt = uas.options()[0]
        assert opt.request_line.startswith(f"OPTIONS sip:127.0.0.1:{up_port} SIP/2.0"), \
            opt.request_line
        g = health(env, "gwdown", "Down")
        assert "refused" in g["LastPing"] and "never answered" in g["LastPing"], g

        # Several failed pings, one warning.
        time.sleep(PING_S * 2 + 1)
        log = service_log(env)
        assert len(re.findall(r"event 1400: UM IP gateway gwdown ", log)) == 1, log[-3000:]
        assert "event 1400: UM IP gateway gwup " not in log

        # It comes back: Up at the next ping, logged once.
        late = GatewayUas(tmp_path, "gwdown", "127.0.0.1", down_port)
        late.wait_listening()
        g = health(env, "gwdown", "Up")
        assert f"from 127.0.0.1:{down_port}" in g["LastPing"], g
        assert "UM IP gateway gwdown (127.0.0.1) answers SIP OPTIONS again" in service_log(env)

        # gwup stops answering: Down within about one interval.
        uas.stop()
        t0 = time.monotonic()
        g = health(env, "gwup", "Down")
        assert time.monotonic() - t0 <= PING_S + 3
        assert "last answered" in g["LastPing"], g
        assert len(re.findall(r"event 1400: UM IP gateway gwup ", service_log(env))) == 1

        # Not Enabled: not pinged.
        env.umctl_ok("set-umipgateway", "--identity", "gwdown", "--status", "Disabled")
        g = health(env, "gwdown", "Unknown")
        assert "not pinged" in g["LastPing"], g
        n = len(late.options())
        time.sleep(PING_S + 1)
        assert len(late.options()) == n, "a Disabled gateway was still pinged"
    finally:
        uas.stop()
        if late:
            late.stop()


def test_health_without_router_says_so(env):
    g = gateway(env, "loopback")
    assert g["Health"] == "Unknown" and "not running" in g["LastPing"], g


def test_dead_addresses_skipped_then_retried(env, tmp_path):
    port = free_port()
    dead = ("127.0.0.2", "127.0.0.3")
    holes = [Blackhole(h, port) for h in dead]
    uas = GatewayUas(tmp_path, "gwfqdn", "127.0.0.4", port)
    dns = Dnsmasq(tmp_path)
    try:
        # In hosts-file order (dnsmasq --no-round-robin): dead, dead, live
        # (asserted below).
        dns.start([(h, "gw.example.test") for h in (*dead, "127.0.0.4")])
        setup_gateways(env, gwfqdn=("gw.example.test", port))
        env.umctl_ok("set-umcallroutersettings", "--dns-servers", f"127.0.0.1:{dns.port}")
        # Pings at 0, 5, 10 s...; dead ones listed for 8 s: skipped by the
        # ping at 5 s, tried again by the one at 10 s.
        env.umctl_ok("set-umservice", "--bad-address-interval", 8)
        uas.wait_listening()
        env.start_router()
        env.start_service(log_level="debug", extra=("--mwi-refresh", "3"))
        g = health(env, "gwfqdn", "Up")
        assert f"200 OK from 127.0.0.4:{port}" in g["LastPing"], g

        log = service_log(env)
        assert re.search(r"OPTIONS to gateway gwfqdn: gw\.example\.test resolved to "
                         r"127\.0\.0\.2, 127\.0\.0\.3, 127\.0\.0\.4", log), log[-3000:]
        for h in dead:
            assert re.search(rf"{re.escape(h)}:{port} is on the bad-address list for 8 s: "
                             rf"no connection within \d+ ms while 127\.0\.0\.4:{port} connected",
                             log), log[-3000:]
        # The first round staggered: the live address connected after two
        # delays (250 ms each without history), not after two timeouts.
        m = re.search(r"OPTIONS to gateway gwfqdn: connected to 127\.0\.0\.4:\d+ after (\d+) ms",
                      log)
        assert m and 400 <= int(m.group(1)) < 3000, m and m.group(0)

        # NOTIFYs (the refresh every 3 s) reach the live address, and
        # while the interval runs the dead ones are skipped.
        wait_for(lambda: uas.notifies(), 15, 0.2, "a NOTIFY at the live address")
        wait_for(lambda: re.search(rf"NOTIFY for mailbox 1001 via gateway gwfqdn: skipping "
                                   rf"127\.0\.0\.2:{port} \(on the bad-address list\)",
                                   service_log(env)), 15, 0.2, "a NOTIFY skipping the dead")
        wait_for(lambda: re.search(rf"OPTIONS to gateway gwfqdn: skipping 127\.0\.0\.3:{port}",
                                   service_log(env)), PING_S * 2 + 2, 0.2,
                 "a ping skipping the dead")
        n_tries = len(re.findall(rf"trying 127\.0\.0\.2:{port} ", service_log(env)))
        # After the interval they are tried again (and listed again).
        wait_for(lambda: len(re.findall(rf"trying 127\.0\.0\.2:{port} ",
                                        service_log(env))) > n_tries,
                 15, 0.2, "the dead address to be tried again after the interval")
        assert gateway(env, "gwfqdn")["Health"] == "Up"
    finally:
        uas.stop()
        dns.stop()
        for h in holes:
            h.close()


class Slammer:
    """host:port that accepts TCP connections and closes them at once:
    the connect succeeds, the OPTIONS never gets a SIP answer."""

    def __init__(self, host, port):
        import threading
        self.l = socket.socket()
        self.l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.l.bind((host, port))
        self.l.listen(16)
        self.l.settimeout(0.2)
        self.accepted = 0
        self.stop_flag = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_flag:
            try:
                c, _ = self.l.accept()
            except OSError:
                continue
            self.accepted += 1
            c.close()

    def close(self):
        self.stop_flag = True
        self.t.join(2)
        self.l.close()


def test_connection_closed_without_answer_is_down(env):
    """sofia answers such a request itself (503/408 "internal"): that is no
    answer from the gateway, so the gateway is Down, not Up."""
    port = free_port()
    setup_gateways(env, gwslam=("127.0.0.1", port))
    s = Slammer("127.0.0.1", port)
    try:
        env.start_router()
        env.start_service()
        g = health(env, "gwslam", "Down")
        assert s.accepted >= 1, "the OPTIONS never connected"
        assert "no answer from 127.0.0.1:" in g["LastPing"], g
        assert "event 1400: UM IP gateway gwslam " in service_log(env)
    finally:
        s.close()
