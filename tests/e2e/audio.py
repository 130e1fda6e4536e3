"""Audio helpers for the process tests, in plain Python (no numpy): WAV files,
tone-burst fixtures, G.711, Goertzel tone tracking, RMS, and RTP pcap files
for SIPp's play_pcap_audio.

Everything here is 16-bit signed PCM as a list of ints; the rate is given
where it matters (8000 unless a file says otherwise).
"""

import math
import struct
import wave

RATE = 8000

# --------------------------------------------------------------------------
# WAV


def write_wav(path, samples, rate=RATE):
    """Writes mono 16-bit PCM."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack(f"<{len(samples)}h", *samples))


def read_wav(path):
    """(rate, samples) of a 16-bit PCM WAV; of a multi-channel file, the
    first channel. Tolerates a header whose sizes were never finalised (a
    file still being written) by reading the data chunk to the end."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file")
    pos, fmt, pcm = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = pos + 8
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", data[body:body + 16])
        elif cid == b"data":
            end = body + size
            if size == 0 or size == 0xFFFFFFFF or end > len(data):
                end = len(data)
            pcm = data[body:end]
            break
        pos = body + size + (size & 1)
    if fmt is None or pcm is None:
        raise ValueError(f"{path}: no fmt or data chunk")
    tag, channels, rate, _, _, bits = fmt
    if tag not in (1, 0xFFFE) or bits != 16:
        raise ValueError(f"{path}: format tag {tag}, {bits} bits; want 16-bit PCM")
    n = len(pcm) // 2
    s = struct.unpack(f"<{n}h", pcm[:2 * n])
    if channels > 1:
        s = s[::channels]
    return rate, list(s)


def wav_info(path):
    """(channels, sample width in bytes, rate, frames) as Python's wave
    module sees the file (i.e. a standard reader)."""
    with wave.open(str(path), "rb") as w:
        return w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()


# --------------------------------------------------------------------------
# signals


def silence(seconds, rate=RATE):
    return [0] * int(round(seconds * rate))


def tone(freq, seconds, amplitude=0.3, rate=RATE, ramp=0.005):
    """A sine burst with short raised-cosine ramps (no clicks)."""
    n = int(round(seconds * rate))
    a = amplitude * 32767
    r = max(1, int(ramp * rate))
    out = []
    for i in range(n):
        g = 1.0
        if i < r:
            g = 0.5 - 0.5 * math.cos(math.pi * i / r)
        elif i >= n - r:
            g = 0.5 - 0.5 * math.cos(math.pi * (n - 1 - i) / r)
        out.append(int(round(a * g * math.sin(2 * math.pi * freq * i / rate))))
    return out


def bursts(freqs, on=0.4, off=0.1, repeat=1, amplitude=0.3, rate=RATE):
    """Tone bursts: each frequency for `on` seconds then `off` seconds of
    silence, the whole sequence `repeat` times. Distinct short bursts keep
    an energy VAD's adaptive noise floor from swallowing them."""
    out = []
    for _ in range(repeat):
        for f in freqs:
            out += tone(f, on, amplitude, rate)
            out += silence(off, rate)
    return out


# --------------------------------------------------------------------------
# analysis


def rms(samples):
    if not samples:
        return 0.0
    return math.sqrt(sum(x * x for x in samples) / len(samples))


def dbfs(samples):
    r = rms(samples)
    return -120.0 if r <= 0 else 20 * math.log10(r / 32768.0)


def goertzel(samples, freq, rate=RATE):
    """Squared magnitude of the DFT of samples at freq."""
    w = 2 * math.pi * freq / rate
    coeff = 2 * math.cos(w)
    s1 = s2 = 0.0
    for x in samples:
        s0 = x + coeff * s1 - s2
        s2, s1 = s1, s0
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def tone_share(samples, freq, rate=RATE):
    """The share (0..1) of the window's energy that is a sine at freq: 1.0
    for a pure tone centred on the DFT bin, ~0 for other content."""
    e = sum(x * x for x in samples)
    if e <= 0:
        return 0.0
    return goertzel(samples, freq, rate) / (e * len(samples) / 2.0)


def resample_to(samples, rate, target=RATE):
    """Crude integer decimation (with box averaging) to `target`; enough
    for tone tracking below 2 kHz."""
    if rate == target:
        return list(samples)
    if rate % target:
        raise ValueError(f"cannot decimate {rate} Hz to {target} Hz")
    k = rate // target
    return [sum(samples[i:i + k]) // k for i in range(0, len(samples) - k + 1, k)]


def track(samples, freqs, rate=RATE, win=0.04, share=0.5, floor_db=-40.0):
    """Per window of `win` seconds: the frequency of `freqs` that holds at
    least `share` of the window's energy (the window being louder than
    floor_db dBFS), else None. Returns a list of (start seconds, freq)."""
    n = int(win * rate)
    out = []
    for i in range(0, len(samples) - n + 1, n):
        w = samples[i:i + n]
        hit = None
        if dbfs(w) > floor_db:
            best, bf = 0.0, None
            for f in freqs:
                s = tone_share(w, f, rate)
                if s > best:
                    best, bf = s, f
            if best >= share:
                hit = bf
        out.append((i / rate, hit))
    return out


def segments(tr, min_windows=3):
    """Collapses a track into runs [(freq, start s, end s)] of at least
    min_windows windows (None runs dropped)."""
    runs = []
    if not tr:
        return runs
    step = tr[1][0] - tr[0][0] if len(tr) > 1 else 0.04
    cur, start, count = None, 0.0, 0
    for t, f in tr + [(tr[-1][0] + step, None)]:
        if f == cur:
            count += 1
            continue
        if cur is not None and count >= min_windows:
            runs.append((cur, start, start + count * step))
        cur, start, count = f, t, 1
    return runs


def find_sequence(runs, seq):
    """The start time of the first place where the runs' frequencies (in
    order, consecutive runs of the same frequency merged) contain seq
    contiguously; None when they do not."""
    freqs, starts = [], []
    for f, s, _ in runs:
        if freqs and freqs[-1] == f:
            continue
        freqs.append(f)
        starts.append(s)
    for i in range(len(freqs) - len(seq) + 1):
        if freqs[i:i + len(seq)] == list(seq):
            return starts[i]
    return None


def find_sequence_span(runs, seq, after=0.0):
    """(start s, end s) of the first place at or after `after` where the
    runs' frequencies (consecutive runs of one frequency merged, as in
    find_sequence) contain seq contiguously: from the start of its first
    run to the end of its last; None when they do not."""
    merged = []                       # [freq, start, end]
    for f, s, e in runs:
        if s < after:
            continue
        if merged and merged[-1][0] == f:
            merged[-1][2] = e
        else:
            merged.append([f, s, e])
    n = len(seq)
    for i in range(len(merged) - n + 1):
        if [m[0] for m in merged[i:i + n]] == list(seq):
            return merged[i][1], merged[i + n - 1][2]
    return None


def levels(samples, win=0.1, rate=RATE, start=0):
    """dBFS of each whole window of `win` seconds, from sample `start`."""
    n = int(win * rate)
    return [dbfs(samples[i:i + n]) for i in range(start, len(samples) - n + 1, n)]


def describe(runs):
    return " ".join(f"{f}@{s:.2f}-{e:.2f}" for f, s, e in runs) or "(no tones)"


# --------------------------------------------------------------------------
# G.711 (ITU-T G.711, the classic Sun reference algorithm)

_SEG_AEND = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)
_SEG_UEND = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)


def _seg(val, table):
    for i, end in enumerate(table):
        if val <= end:
            return i
    return 8


def alaw_encode(pcm):
    pcm >>= 3
    if pcm >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        pcm = -pcm - 1
    seg = _seg(pcm, _SEG_AEND)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << 4
    aval |= (pcm >> 1 if seg < 2 else pcm >> seg) & 0x0F
    return aval ^ mask


def ulaw_encode(pcm):
    bias = 0x84
    pcm >>= 2
    if pcm < 0:
        pcm, mask = -pcm, 0x7F
    else:
        mask = 0xFF
    pcm = min(pcm, 8159) + (bias >> 2)
    seg = _seg(pcm, _SEG_UEND)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm >> (seg + 1)) & 0x0F)) ^ mask


def alaw_decode(a):
    a ^= 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


def ulaw_decode(u):
    u = ~u & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return (0x84 - t) if u & 0x80 else (t - 0x84)


def encode(samples, alaw):
    enc = alaw_encode if alaw else ulaw_encode
    return bytes(enc(max(-32768, min(32767, s))) for s in samples)


def decode(data, alaw):
    dec = alaw_decode if alaw else ulaw_decode
    return [dec(b) for b in data]


# --------------------------------------------------------------------------
# RTP and pcap


def rtp_packet(pt, seq, ts, ssrc, payload, marker=False):
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt,
                       seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def rtp_frames(samples, alaw=True, ptime_ms=20):
    """G.711 payloads of ptime_ms each (the last one padded with silence)."""
    n = RATE * ptime_ms // 1000
    out = []
    for i in range(0, len(samples), n):
        chunk = samples[i:i + n]
        chunk += [0] * (n - len(chunk))
        out.append(encode(chunk, alaw))
    return out


def _ip_checksum(hdr):
    if len(hdr) % 2:
        hdr += b"\0"
    s = sum(struct.unpack(f"!{len(hdr) // 2}H", hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def reorder(n, displace):
    """A sending order of packets 0..n-1: for each (period, offset,
    distance) of displace, the packets j with j % period == offset go
    `distance` places later (after their successors)."""
    order = list(range(n))
    for period, offset, distance in displace:
        for j in range(offset, n - distance, period):
            k = order.index(j)
            order.insert(min(n - 1, k + distance), order.pop(k))
    return order


def write_rtp_pcap(path, samples, alaw=True, pt=None, ssrc=0x4F55E2E0,
                   sport=6000, dport=7000, ptime_ms=20, order=None):
    """A pcap (Ethernet/IPv4/UDP) of an RTP stream of samples in G.711,
    ptime_ms a packet (capture times and timestamps to match), as SIPp's
    play_pcap_audio replays it (it keeps the RTP headers, paces by the
    capture times and rewrites only the addresses). order: the packets'
    sending order (see reorder()); the capture times stay regular, so a
    packet sent out of order is late by the places it moved."""
    if pt is None:
        pt = 8 if alaw else 0
    frames = rtp_frames(samples, alaw, ptime_ms)
    spp = RATE * ptime_ms // 1000
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    src, dst = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    for k, j in enumerate(order if order is not None else range(len(frames))):
        payload = frames[j]
        rtp = rtp_packet(pt, 1000 + j, spp * j, ssrc, payload, marker=(j == 0))
        udp = struct.pack("!HHHH", sport, dport, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), k & 0xFFFF, 0,
                         64, 17, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
        frame = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00" + ip + udp
        usec = k * ptime_ms * 1000
        out.append(struct.pack("<IIII", 1_600_000_000 + usec // 1_000_000,
                               usec % 1_000_000, len(frame), len(frame)))
        out.append(frame)
    with open(path, "wb") as f:
        f.write(b"".join(out))


def read_pcap_rtp(path):
    """[(time s, rtp bytes)] of the UDP payloads of a pcap (Ethernet or
    Linux cooked, IPv4 or IPv6)."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    pos, out = 24, []
    while pos + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[pos:pos + 16])
        pkt = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        t = sec + frac / (1e9 if nano else 1e6)
        if linktype == 1:
            etype, l3 = struct.unpack("!H", pkt[12:14])[0], pkt[14:]
        elif linktype == 113:
            etype, l3 = struct.unpack("!H", pkt[14:16])[0], pkt[16:]
        else:
            continue
        if etype == 0x0800:
            ihl = (l3[0] & 0x0F) * 4
            if l3[9] != 17:
                continue
            udp = l3[ihl:]
        elif etype == 0x86DD:
            if l3[6] != 17:
                continue
            udp = l3[40:]
        else:
            continue
        out.append((t, udp[8:]))
    return out
