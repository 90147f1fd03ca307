"""Fuzzing the image decoder with mutated valid streams.

Seed streams are real lcodec files of small images (RGB, grey, RGBA, tiled; format version 4, version 5
with a metadata record, and the versions 3, 2 and 1 still read).
Each case applies one or more mutations - bit flips, byte changes, truncation, insertion, deletion,
huge size / length / tile / stream-count fields, garbage payloads - and, most of the time, recomputes
the CRC so that the mutation reaches the header parser, the range decoder and the model rather than
stopping at the checksum. Every case must end in a decoded image of the declared size or in one of the
documented exceptions (``codec.errors.LcodecError`` subclasses) within a time bound; anything else
(another exception, a timeout) is a finding. Peak memory (max RSS) is reported with the outcomes.
"""

from __future__ import annotations

import random
import resource
import signal
import struct
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lcodec.codec import ImageCodec
from lcodec.codec.container import MAGIC, VERSION, VERSION_FLOAT, VERSION_META, VERSION_SPLIT, read_header, varint
from lcodec.codec.errors import LcodecError

#: A case taking longer than this (seconds) is a finding ("timeout").
CASE_TIME_LIMIT = 20.0


class CaseTimeout(Exception):
    """Raised inside a case by the alarm when it runs past the time limit."""


@dataclass
class FuzzReport:
    """Counts and the worst cases of one fuzz run."""

    cases: int = 0
    outcomes: Counter = field(default_factory=Counter)
    findings: list[dict] = field(default_factory=list)
    slowest_s: float = 0.0
    slowest_case: str = ""
    total_s: float = 0.0
    max_rss_mb: float = 0.0

    def to_dict(self) -> dict:
        return {
            "cases": self.cases,
            "outcomes": dict(sorted(self.outcomes.items())),
            "findings": self.findings[:50],
            "finding_count": len(self.findings),
            "slowest_s": round(self.slowest_s, 3),
            "slowest_case": self.slowest_case,
            "total_s": round(self.total_s, 1),
            "max_rss_mb": round(self.max_rss_mb, 1),
        }


def seed_streams(codec: ImageCodec, rng: np.random.Generator) -> list[bytes]:
    """Valid small files: a smooth RGB picture, a grey one, an RGBA one, a tiled one (all version 4),
    the same picture in the formats still read (version 3 untiled and tiled, float versions 1 and 2),
    then version 5: the picture with an ICC profile, EXIF, XMP and an orientation, and a tiled RGBA
    one with an ICC profile."""
    h, w = 48, 64
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 4, yy * 5, (xx + yy) * 2], axis=2).astype(np.float64)
    rgb = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    from PIL import Image

    grey = Image.fromarray(rgb[:, :, 1], "L")
    rgba = Image.fromarray(np.dstack([rgb, (xx * 3).astype(np.uint8)]), "RGBA")
    wide = np.clip(np.tile(rgb, (1, 5, 1)), 0, 255).astype(np.uint8)[:, :300]
    seeds = [
        codec.encode(rgb, 4.0),
        codec.encode(rgb, 1.0),
        codec.encode(grey, 6.0),
        codec.encode(rgba, 3.0),
        codec.encode(wide, 5.0, tile=256),
    ]
    saved = codec.write_version
    try:
        for old in (VERSION_SPLIT, VERSION_FLOAT):
            codec.write_version = old
            seeds += [codec.encode(rgb, 4.0), codec.encode(wide, 5.0, tile=256)]
    finally:
        codec.write_version = saved
    from lcodec.codec.image_io import prepare

    meta = {"icc_profile": bytes(rng.integers(0, 256, 300, dtype=np.uint8)), "exif": b"Exif\x00\x00MM\x00*" + bytes(20),
            "xmp": b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>"}
    tagged = prepare(Image.fromarray(rgb))
    tagged.metadata, tagged.orientation = meta, 6
    tiled = prepare(Image.fromarray(np.dstack([wide, wide[:, :, 0]]), "RGBA"))
    tiled.metadata = {"icc_profile": meta["icc_profile"]}
    seeds += [codec.encode(tagged, 4.0), codec.encode(tiled, 5.0, tile=256)]
    assert all(s[4] == VERSION_META for s in seeds[-2:])
    return seeds


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    n, shift = 0, 0
    while pos < len(data):
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return n, pos


def field_spans(data: bytes) -> dict[str, tuple[int, int]]:
    """Byte spans of the header fields of a valid file (used to aim mutations at them)."""
    header, payload_at = read_header(data)
    pos = 4
    spans = {"version": (pos, pos + 1), "kind": (pos + 1, pos + 2), "mode": (pos + 2, pos + 3)}
    pos += 3
    name_len = data[pos]
    spans["name"] = (pos, pos + 1 + name_len)
    pos += 1 + name_len
    spans["hash"] = (pos, pos + 8)
    pos += 8
    spans["quality"] = (pos, pos + 2)
    pos += 2
    for key in ("height", "width"):
        _, end = _read_varint(data, pos)
        spans[key] = (pos, end)
        pos = end
    if header.version != 1:  # versions 2 to 5 carry a tile field, 2 and 3 also a varint stream count
        _, end = _read_varint(data, pos)
        spans["tile"] = (pos, end)
        pos = end
    if header.version == VERSION_META:  # the metadata record: its length, then its entries
        size, end = _read_varint(data, pos)
        spans["metadata_length"] = (pos, end)
        spans["metadata"] = (end, end + size)
        pos = end + size
    if header.version < VERSION:
        end = _read_varint(data, pos)[1] if header.version != 1 else pos + 1
        spans["streams"] = (pos, end)
        pos = end
    stored = len(header.stream_lengths) - (1 if header.version >= VERSION else 0)  # version 4: last implied
    for i in range(stored):
        _, end = _read_varint(data, pos)
        spans[f"length{i}"] = (pos, end)
        pos = end
    spans["payload"] = (payload_at, len(data) - 4)
    return spans


_BIG = [0, 1, 63, 64, 65, 127, 128, 255, 256, 4095, 4096, 65535, 65536, 65537, 1 << 20, (1 << 31) - 1,
        1 << 32, (1 << 35) - 1]


def _mutate_field(data: bytes, body: bytearray, rng: random.Random) -> str:
    """Overwrite one header field of `body` (a copy of `data` without its CRC) in place: sizes and counts
    get boundary values, the model name random bytes, anything else random bytes; returns the description."""
    spans = field_spans(data)
    name = rng.choice([k for k in spans if k not in ("payload", "name")] + ["name"])
    a, b = spans[name]
    desc = f"field:{name}"
    if name in ("height", "width", "tile", "streams", "metadata_length") or name.startswith("length"):
        value = rng.choice(_BIG + [rng.randrange(1 << rng.randrange(1, 36))])
        desc += f"={value}"
        # the stream count is one byte in version 1 and a varint in versions 2-3
        body[a:b] = varint(value) if (name != "streams" or data[4] != 1) else bytes([value & 0xFF])
    elif name == "name":
        new = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
        body[a:b] = bytes([len(new)]) + new
    else:
        for i in range(a, b):
            body[i] = rng.randrange(256)
    return desc


def _mutate_payload(data: bytes, body: bytearray, rng: random.Random) -> str:
    """Replace one stream of `body` in place with garbage of the same length; returns the description's
    suffix (":stream:fill").

    The CRC is recomputed afterwards, so only the range decoder and the model stand between the garbage
    and the output."""
    header, at = read_header(data)
    k = rng.randrange(len(header.stream_lengths))
    start = at + sum(header.stream_lengths[:k])
    n = header.stream_lengths[k]
    fill = rng.choice(["random", "zeros", "ones", "repeat"])
    if fill == "random":
        new = bytes(rng.randrange(256) for _ in range(n))
    elif fill == "zeros":
        new = bytes(n)
    elif fill == "ones":
        new = b"\xff" * n
    else:
        new = bytes(data[start : start + min(n, 4)] * (n // 4 + 1))[:n]
    body[start : start + n] = new
    return f":{k}:{fill}"


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One random mutation of a valid file; returns the new bytes and a short description."""
    body = bytearray(data[:-4])
    kind = rng.choice(["bitflip", "bytes", "truncate", "insert", "delete", "field", "field", "payload",
                       "payload", "splice"])
    desc = kind
    if kind == "bitflip":
        for _ in range(rng.choice([1, 1, 2, 4, 16])):
            i = rng.randrange(len(body))
            body[i] ^= 1 << rng.randrange(8)
    elif kind == "bytes":
        for _ in range(rng.choice([1, 2, 8])):
            body[rng.randrange(len(body))] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
    elif kind == "truncate":
        cut = rng.randrange(len(body))
        desc += f"@{cut}"
        body = body[:cut]
    elif kind == "insert":
        i = rng.randrange(len(body) + 1)
        body[i:i] = bytes(rng.randrange(256) for _ in range(rng.choice([1, 4, 17, 200])))
    elif kind == "delete":
        i = rng.randrange(len(body))
        del body[i : i + rng.choice([1, 4, 17, 200])]
    elif kind == "field":
        desc = _mutate_field(data, body, rng)
    elif kind == "payload":
        desc += _mutate_payload(data, body, rng)
    else:  # splice: keep the header, replace the payload with the bytes of another part of the file
        spans = field_spans(data)
        a, b = spans["payload"]
        src = bytes(data[rng.randrange(len(data)) :])[: b - a]
        body[a:b] = src + bytes(b - a - len(src))
    if rng.random() < 0.9:
        return _with_crc(bytes(body)), desc
    return bytes(body) + data[-4:], desc + "+oldcrc"


def _alarm(signum, frame):  # noqa: ARG001
    raise CaseTimeout()


def run_case(codec: ImageCodec, blob: bytes) -> str:
    """Decode one blob; returns the outcome name (raises CaseTimeout or any unexpected exception)."""
    img = codec.decode(blob, max_pixels=1 << 24)
    header = read_header(blob)[0]
    if img.size != (header.width, header.height):
        raise AssertionError(f"decoded {img.size}, header says {header.width}x{header.height}")
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise AssertionError("decoded image is not 8-bit")
    return "decoded"


def fuzz(cases: int, seed: int = 0, codec: ImageCodec | None = None, time_limit: float = CASE_TIME_LIMIT,
         progress=None) -> FuzzReport:
    """Run `cases` mutated decodes; every non-documented outcome is listed in ``findings``."""
    codec = codec or ImageCodec.default()
    rng = random.Random(seed)
    seeds = seed_streams(codec, np.random.default_rng(seed))
    assert all(s[:4] == MAGIC for s in seeds)

    def mutated(blob: bytes) -> tuple[bytes, str]:
        desc = ""
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            blob, d = mutate(blob, rng) if len(blob) > 8 and blob[:4] == MAGIC and _parses(blob) else (blob, "")
            desc += ("," if desc else "") + d
        return blob, desc

    return run_cases(cases, rng, seeds, mutated, lambda blob: run_case(codec, blob), time_limit, progress)


def run_cases(cases: int, rng: random.Random, seeds: list[bytes], mutated: Callable[[bytes], tuple[bytes, str]],
              decode: Callable[[bytes], str], time_limit: float, progress=None) -> FuzzReport:
    """The fuzz loop shared by the image and video harnesses: mutate a random seed, decode it under
    an alarm, and sort the outcome into documented errors and findings (crashes, timeouts)."""
    report = FuzzReport()
    use_alarm = hasattr(signal, "setitimer")
    old = signal.signal(signal.SIGALRM, _alarm) if use_alarm else None
    t_start = time.perf_counter()
    try:
        for i in range(cases):
            src = rng.randrange(len(seeds))
            blob, desc = mutated(seeds[src])
            t0 = time.perf_counter()
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, time_limit)
            try:
                outcome = decode(blob)
            except LcodecError as exc:
                outcome = type(exc).__name__
            except CaseTimeout:
                outcome = "timeout"
                report.findings.append({"case": i, "seed": src, "mutation": desc, "error": "timeout"})
            except Exception as exc:  # anything else is a bug in the decoder
                outcome = "crash"
                report.findings.append({"case": i, "seed": src, "mutation": desc,
                                        "error": f"{type(exc).__name__}: {exc}",
                                        "trace": traceback.format_exc(limit=4)})
            finally:
                if use_alarm:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            dt = time.perf_counter() - t0
            report.cases += 1
            report.outcomes[outcome] += 1
            if dt > report.slowest_s:
                report.slowest_s, report.slowest_case = dt, f"case {i} (seed {src}: {desc}) -> {outcome}"
            if progress is not None:
                progress(i + 1)
    finally:
        if use_alarm:
            signal.signal(signal.SIGALRM, old)
    report.total_s = time.perf_counter() - t_start
    report.max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


def _parses(blob: bytes) -> bool:
    """Mutations that aim at header fields need a file whose header still parses."""
    try:
        read_header(blob)
        return True
    except LcodecError:
        return False
