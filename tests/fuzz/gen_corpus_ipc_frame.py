#!/usr/bin/env python3
"""gen_corpus_ipc_frame.py — writes the seed corpus of fuzz_ipc_frame:
small valid frames of each kind and a few broken ones, encoded by hand
(protobuf wire format) so that the seeds do not depend on the code under test.
Run from the repository root: tests/fuzz/gen_corpus_ipc_frame.py"""
import os
import struct

OUT = "tests/fuzz/corpus/fuzz_ipc_frame"


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


def vfield(num, value):          # wire type 0
    return varint(num << 3) + varint(value)


def lfield(num, payload):        # wire type 2
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def frame(body):
    return struct.pack(">I", len(body)) + body


def env(body_field, body, version=2):
    return frame(vfield(1, version) + lfield(body_field, body))


hello = vfield(1, 1) + vfield(2, 1234) + lfield(3, "umservice")
endpoint4 = vfield(1, 1) + vfield(2, 2) + lfield(3, "127.0.0.1") + vfield(4, 5062)
endpoint6 = vfield(1, 2) + vfield(2, 3) + lfield(3, "::1") + vfield(4, 5063)
register = (lfield(1, "um1") + lfield(2, endpoint4) + lfield(2, endpoint6)
            + vfield(3, 100) + lfield(4, "um1.example.test") + vfield(5, 77))
status = vfield(1, 3) + vfield(2, 1)
routed = (lfield(1, bytes(range(16))) + lfield(2, "abc@gw") + vfield(3, 1)
          + lfield(4, "1001") + lfield(5, "dp1") + lfield(6, "gw1")
          + lfield(7, "sip:+15550100@gw") + vfield(8, 1700000000123))
ack = lfield(1, bytes(range(16))) + vfield(2, 1) + lfield(3, "ok")
changed = lfield(1, "umipgateway") + lfield(2, "set-umipgateway")
applied = vfield(1, 2)
instance = lfield(1, "um1") + vfield(2, 77) + lfield(3, endpoint4) + vfield(7, 5)
reply = vfield(1, 1) + lfield(2, endpoint6) + lfield(3, instance) + vfield(4, 99)
error = vfield(1, 71) + lfield(2, "protocol version 7 not supported (want 2)")

seeds = {
    "hello": env(10, hello),
    "service_register": env(11, register),
    "service_status": env(12, status),
    "call_routed": env(13, routed),
    "call_routed_ack": env(14, ack),
    "config_changed": env(15, changed),
    "config_applied": env(16, applied),
    "status_request": env(17, b""),
    "status_reply": env(18, reply),
    "error": env(19, error),
    "two_frames": env(10, hello) + env(17, b""),
    "wrong_version": env(10, hello, version=7),
    "newer_body": frame(vfield(1, 2) + lfield(30, b"")),
    "no_version": frame(lfield(10, hello)),
    "no_body": frame(vfield(1, 1)),
    "empty_frame": frame(b"") + env(17, b""),
    "oversized": struct.pack(">I", 100000) + vfield(1, 1),
    "truncated": env(11, register)[:-5],
    "garbage": frame(b"\xff\xff\xff\xff"),
    "bad_wire_type": frame(vfield(1, 1) + vfield(10, 1)),
    "group": frame(vfield(1, 1) + varint(2 << 3 | 3)),
}

os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
print("wrote %d seeds to %s" % (len(seeds), OUT))
