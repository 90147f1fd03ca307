"""Fuzzing the video decoder with mutated valid video files.

Seeds are real lcodec video files of tiny clips (I + P frames, one with a second GOP). Mutations are
the generic byte-level ones (bit flips, truncation, insertion, deletion) plus aimed ones whose CRC is
recomputed so they reach the parsers and the models: header fields (size, frame count, index
offset, intra period, frame rate), frame-record fields (type, number, quality, stream count and
lengths), garbage payloads inside a record, and index entries. Every case must end in decoded frames
of the declared size or a documented exception (``codec.errors.LcodecError``) within the time bound.
"""

from __future__ import annotations

import io
import random
import struct
import zlib

import numpy as np

from lcodec.codec.errors import LcodecError
from lcodec.codec.video_codec import VideoCodec
from lcodec.codec.video_container import (_FIXED, VERSION, VERSION_EXACT, VERSION_FLOAT, VERSION_MOTION,
                                          VERSION_REANALYSE, VERSION_SPLIT, VideoReader)
from lcodec.codec.video_split import CELL

from .fuzz import FuzzReport, run_cases

_BIG = [0, 1, 2, 3, 7, 8, 255, 256, 4095, 8191, 8192, 65535, 1 << 20, (1 << 32) - 1]


def video_seeds(codec: VideoCodec, rng: np.random.Generator) -> list[bytes]:
    """Valid small video files: a panning noisy gradient, 4 frames low-delay and 5 frames in GOPs of 3
    (the newest format version, 6: skip blocks split down to 16x16 with vectors up to +-64 px and P-frames
    coded against the exactly re-analysed, block-aligned previous frame, one stream per record; the GOP one
    with 16x16 leaves allowed), and the low-delay one in the other formats (version 5, written by default:
    no aligned reference; version 4, vectors up to +-16 px, no re-analysis; version 3, 64x64 skip blocks; version 2,
    exact without motion; version 1, float)."""
    h, w = 40, 56
    yy, xx = np.mgrid[0 : h, 0 : w + 12]
    base = np.stack([xx * 4, yy * 5, (xx + yy) * 2], axis=2).astype(np.float64)
    pic = np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)
    frames = [np.ascontiguousarray(pic[:, 2 * i : 2 * i + w]) for i in range(5)]
    out = []
    saved, leaf = codec.write_version, codec.min_leaf
    try:
        for n, period, q, version, min_leaf in ((4, -1, 4.0, VERSION, leaf), (5, 3, 2.0, VERSION, CELL),
                                                (4, -1, 4.0, VERSION_REANALYSE, leaf),
                                                (4, -1, 4.0, VERSION_SPLIT, leaf), (4, -1, 4.0, VERSION_MOTION, leaf),
                                                (4, -1, 4.0, VERSION_EXACT, leaf),
                                                (4, -1, 4.0, VERSION_FLOAT, leaf)):
            codec.write_version, codec.min_leaf = version, min_leaf
            buf = io.BytesIO()
            codec.encode(iter(frames[:n]), buf, w, h, q, period)
            out.append(buf.getvalue())
    finally:
        codec.write_version, codec.min_leaf = saved, leaf
    return out


def _crc(body: bytes) -> bytes:
    return struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def _header_span(data: bytes) -> tuple[int, int]:
    """(offset of the fixed fields, end of the header without its CRC)."""
    name_len = data[6]
    fixed_at = 7 + name_len + 16
    return fixed_at, fixed_at + _FIXED.size


def mutate_video(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One random mutation of a valid video file; returns the new bytes and a description."""
    buf = bytearray(data)
    kind = rng.choice(["bitflip", "bytes", "truncate", "insert", "delete", "header", "header", "record",
                       "record", "payload", "payload", "index"])
    desc = kind
    if kind == "bitflip":
        for _ in range(rng.choice([1, 2, 8])):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
    elif kind == "bytes":
        for _ in range(rng.choice([1, 4])):
            buf[rng.randrange(len(buf))] = rng.choice([0, 0xFF, 0x80, rng.randrange(256)])
    elif kind == "truncate":
        buf = buf[: rng.randrange(len(buf))]
    elif kind == "insert":
        i = rng.randrange(len(buf) + 1)
        buf[i:i] = bytes(rng.randrange(256) for _ in range(rng.choice([1, 9, 100])))
    elif kind == "delete":
        i = rng.randrange(len(buf))
        del buf[i : i + rng.choice([1, 9, 100])]
    elif kind == "header":
        a, b = _header_span(data)
        fields = list(_FIXED.unpack(bytes(buf[a:b])))
        k = rng.randrange(len(fields))
        fields[k] = rng.choice(_BIG) % (1 << (16 if k < 2 else 32))
        if k == 6:
            fields[k] = rng.choice([0, 1, len(data) - 5, len(data), 1 << 40])
        desc += f":{k}={fields[k]}"
        buf[a:b] = _FIXED.pack(*fields)
        buf[b : b + 4] = _crc(bytes(buf[:b]))
    else:
        reader = VideoReader(io.BytesIO(data))
        records = list(reader.records())
        rec = rng.choice(records)
        start = rec.offset
        end = records[records.index(rec) + 1].offset if rec is not records[-1] else reader.header.index_offset
        body = bytearray(data[start : end - 4])
        if kind == "record":
            pos = rng.choice([2, 3, 4, 5, 6, 7])  # type, number, quality, stream count, first length
            body[pos] = rng.choice([0, 1, 2, 0x7F, 0xFF, rng.randrange(256)])
            desc += f"@{rec.index}:{pos}"
        elif kind == "payload":
            n = sum(len(s) for s in rec.streams)
            a = len(body) - n
            fill = rng.choice(["random", "zeros", "ones", "swap"])
            if fill == "random":
                body[a:] = bytes(rng.randrange(256) for _ in range(n))
            elif fill == "zeros":
                body[a:] = bytes(n)
            elif fill == "ones":
                body[a:] = b"\xff" * n
            else:
                body[a:] = bytes(body[a:])[::-1]
            desc += f"@{rec.index}:{fill}"
        else:  # index entries
            at = reader.header.index_offset
            idx = bytearray(data[at:-4])
            i = rng.randrange(4, len(idx))
            idx[i] = rng.choice([0, 1, 0x7F, 0xFF, rng.randrange(256)])
            return bytes(buf[:at]) + bytes(idx) + _crc(bytes(idx)), desc + f"@{i}"
        buf[start:end] = bytes(body) + _crc(bytes(body))
    return bytes(buf), desc


def run_video_case(codec: VideoCodec, blob: bytes) -> str:
    """Decode every frame of one blob; returns the outcome (raises on anything undocumented)."""
    f = io.BytesIO(blob)
    header = VideoReader(f).header
    if header.weights_hash != codec.loaded.weights_hash or header.image_hash != codec.loaded.image.weights_hash:
        from lcodec.codec.errors import UnknownModelError

        raise UnknownModelError("stream names other weights")
    n = 0
    for _, rgb in codec.decode(f):
        if rgb.shape != (header.height, header.width, 3) or rgb.dtype != np.uint8:
            raise AssertionError(f"decoded frame {rgb.shape}, header says {header.width}x{header.height}")
        n += 1
    if n != header.frame_count:
        raise AssertionError(f"decoded {n} frames, header says {header.frame_count}")
    return "decoded"


def fuzz_video(cases: int, seed: int = 0, codec: VideoCodec | None = None, time_limit: float = 20.0,
               progress=None) -> FuzzReport:
    """Run `cases` mutated video decodes; every non-documented outcome is listed in ``findings``."""
    codec = codec or VideoCodec.default()
    rng = random.Random(seed)
    seeds = video_seeds(codec, np.random.default_rng(seed))

    def mutated(blob: bytes) -> tuple[bytes, str]:
        desc = ""
        for _ in range(rng.choice([1, 1, 2])):
            try:
                blob, d = mutate_video(blob, rng)
            except (LcodecError, struct.error, ValueError, IndexError):
                # an earlier mutation broke the structure the aimed mutations need: flip a byte instead
                buf = bytearray(blob)
                if buf:
                    buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
                blob, d = bytes(buf), "bitflip"
            desc += ("," if desc else "") + d
        return blob, desc

    return run_cases(cases, rng, seeds, mutated, lambda blob: run_video_case(codec, blob), time_limit, progress)
