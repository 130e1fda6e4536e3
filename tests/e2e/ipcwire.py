"""Hand-encoded IPC frames (no protobuf package needed).

A frame is a 4-byte big-endian length followed by one openum.Envelope
(proto/openum.proto): field 1 = uint32 version (must be 2), bodies are the
oneof fields 10..21.
"""

import socket
import struct
import time

VERSION = 2
MAX_BODY = 64 * 1024

HELLO = 10
SERVICE_REGISTER = 11
SERVICE_STATUS = 12
CALL_ROUTED = 13
CALL_ROUTED_ACK = 14
CONFIG_CHANGED = 15
CONFIG_APPLIED = 16
STATUS_REQUEST = 17
STATUS_REPLY = 18
ERROR = 19
PLAY_ON_PHONE_REQUEST = 20
PLAY_ON_PHONE_RESULT = 21

ROLE_UMSERVICE = 1
ROLE_UMCTL = 2
ROLE_ROUTER = 3


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(buf, i):
    shift = 0
    val = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        val |= (b & 0x7F) << shift
        if not b & 0x80:
            return val, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def field_varint(num, value):
    return varint(num << 3) + varint(value)


def field_bytes(num, data):
    return varint((num << 3) | 2) + varint(len(data)) + data


def parse(buf):
    """A protobuf message as {field: [values]} (varints as int,
    length-delimited as bytes)."""
    out = {}
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, i = read_varint(buf, i)
        elif wt == 2:
            n, i = read_varint(buf, i)
            if i + n > len(buf):
                raise ValueError("truncated field")
            val = bytes(buf[i:i + n])
            i += n
        elif wt == 1:
            val = bytes(buf[i:i + 8])
            i += 8
        elif wt == 5:
            val = bytes(buf[i:i + 4])
            i += 4
        else:
            raise ValueError(f"wire type {wt}")
        out.setdefault(num, []).append(val)
    return out


def envelope(body_field, body=b"", version=VERSION):
    out = b""
    if version is not None:
        out += field_varint(1, version)
    return out + field_bytes(body_field, body)


def frame(env_bytes):
    return struct.pack(">I", len(env_bytes)) + env_bytes


def hello_umctl(pid):
    body = field_varint(1, ROLE_UMCTL) + field_varint(2, pid) + field_bytes(3, b"e2e-test")
    return frame(envelope(HELLO, body))


def status_request():
    return frame(envelope(STATUS_REQUEST))


def hello_umservice(pid):
    body = field_varint(1, ROLE_UMSERVICE) + field_varint(2, pid) + field_bytes(3, b"e2e-fake")
    return frame(envelope(HELLO, body))


def service_register(instance_id, max_calls=10, pid=1):
    """A ServiceRegister without SIP endpoints (enough for IPC-only peers)."""
    body = field_bytes(1, instance_id.encode()) + field_varint(3, max_calls) + \
        field_varint(5, pid)
    return frame(envelope(SERVICE_REGISTER, body))


def service_register_sip(instance_id, port, host="127.0.0.1", max_calls=10, pid=1):
    """A ServiceRegister with one IPv4 UDP SIP endpoint (host:port)."""
    ep = field_varint(1, 1) + field_varint(2, 1) + field_bytes(3, host.encode()) + \
        field_varint(4, port)
    body = field_bytes(1, instance_id.encode()) + field_bytes(2, ep) + \
        field_varint(3, max_calls) + field_varint(5, pid)
    return frame(envelope(SERVICE_REGISTER, body))


def call_routed_ack(token, accepted=True):
    body = field_bytes(1, token) + field_varint(2, 1 if accepted else 0)
    return frame(envelope(CALL_ROUTED_ACK, body))


def play_on_phone_result(request_id, ok, reason="", sip_status=0, gateway="",
                         address="", played_ms=0, instance_id=""):
    body = field_varint(1, request_id) + field_varint(2, 1 if ok else 0)
    for num, text in ((3, reason), (5, gateway), (6, address), (8, instance_id)):
        if text:
            body += field_bytes(num, text.encode())
    if sip_status:
        body += field_varint(4, sip_status)
    if played_ms:
        body += field_varint(7, played_ms)
    return frame(envelope(PLAY_ON_PHONE_RESULT, body))


class Envelope:
    def __init__(self, raw):
        self.raw = raw
        self.fields = parse(raw)
        self.version = self.fields.get(1, [0])[0]
        bodies = [f for f in self.fields if 10 <= f <= 21]
        self.body_field = bodies[0] if bodies else None
        self.body = parse(self.fields[self.body_field][0]) if bodies else {}

    def error_text(self):
        msg = self.body.get(2, [b""])[0]
        return msg.decode(errors="replace")

    def error_code(self):
        return self.body.get(1, [0])[0]

    def __repr__(self):
        return f"Envelope(version={self.version}, body={self.body_field}, {self.body})"


class IpcClient:
    """A blocking client of the router's Unix socket."""

    def __init__(self, path, timeout=3.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.timeout = timeout

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _read_exact(self, n, deadline):
        buf = b""
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("IPC read timed out")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(n - len(buf))
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                if buf:
                    raise EOFError("connection closed inside a frame")
                return None
            buf += chunk
        return buf

    def read(self, timeout=None):
        """The next Envelope, or None at end of stream."""
        deadline = time.monotonic() + (timeout or self.timeout)
        head = self._read_exact(4, deadline)
        if head is None:
            return None
        (n,) = struct.unpack(">I", head)
        if n > MAX_BODY:
            raise ValueError(f"router sent a frame of {n} bytes")
        body = self._read_exact(n, deadline) if n else b""
        if body is None:
            raise EOFError("connection closed inside a frame")
        return Envelope(body)

    def read_until_eof(self, timeout=3.0):
        """(envelopes, eof): everything the peer sends until it closes, or
        until timeout (eof False)."""
        deadline = time.monotonic() + timeout
        envs = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return envs, False
            try:
                e = self.read(timeout=left)
            except TimeoutError:
                return envs, False
            if e is None:
                return envs, True
            envs.append(e)
