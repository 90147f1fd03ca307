"""The lcodec video file format (kind 1, versions 5 and 6): a header, one record per frame, an I-frame index.

Written and read as a stream, so neither side holds more than one frame's bytes. Integers are
little-endian, ``varint`` is unsigned LEB128::

    header
      magic          4 bytes  b"LCDC"
      version        u8       6: as 5, with a reference vector per 64x64 block in the side data and
                              P-frames coded against the exact g_a of the previous frame aligned by them;
                              5: as 4, with vectors up to +-64 pixels, and a P-frame's pixels synthesised
                              with g_a of its motion-compensated copy at the skipped latent positions;
                              4: as 3, with skip blocks split down to 16x16 and one stream per P-frame;
                              3: as 2, and P-frames carry skip flags and motion vectors;
                              2: entropy parameters in exact fixed point (decode alike on any device);
                              1: float parameters (still read; reliable on the CPU only)
      kind           u8       1 = video
      model name     u8 length + UTF-8 (video model)
      video hash     8 bytes  SHA-256 prefix of the video (.lcv) weights
      image hash     8 bytes  SHA-256 prefix of the image (.lcw) weights that code I-frames
      width, height  u16, u16 pixels
      frame rate     u32 numerator, u32 denominator
      intra period   u32      0 = only the first frame is intra
      frame count    u32      written when encoding ends
      index offset   u64      byte offset of the index, written when encoding ends
      crc32          u32      of the header bytes before it
    frame record (frame count times, in display order)
      sync           2 bytes  b"FR"
      type           u8       0 = I, 1 = P
      index          varint   frame number
      quality        u16      round(quality * 4096)
      streams        u8       2 (z, y); version-3 P-frames 3 (side, z, y), the side stream holding
                              the skip flags and vectors of the 64x64 blocks (`codec.video_motion`);
                              version-4 to 6 P-frames 1: side data, z and y in one range-coded stream
                              (`codec.video_split`)
      lengths        varint   one per stream
      payloads
      crc32          u32      of the record bytes before it
    index
      magic          4 bytes  b"LIDX"
      count          varint   number of I-frames
      entries        varint frame number, varint byte offset of its record (count times)
      crc32          u32      of the index bytes before it

Every size, count and length is checked against sane maxima and the bytes actually left before it is
used, and every part is CRC-checked, so a decoder rejects what it did not write before allocating.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from fractions import Fraction
from typing import BinaryIO

from .byte_reader import ByteReader, varint
from .container import MAGIC, QUALITY_SCALE
from .errors import FormatError
from .quality import QUALITY_MAX, QUALITY_MIN

VERSION_FLOAT = 1  # float entropy parameters (read only)
VERSION_EXACT = 2  # exact fixed-point entropy parameters and temporal mean
VERSION_MOTION = 3  # P-frames carry a side stream first: skip flags and motion vectors (`codec.video_motion`)
VERSION_SPLIT = 4  # skip blocks split down to 16x16 pixels; a P-frame is one stream (`codec.video_split`)
VERSION_REANALYSE = 5  # vectors up to +-64 px; skipped latent positions synthesised from the re-analysed copy
VERSION = 6  # P-frames coded against exact g_a of the previous frame aligned by per-block vectors
VERSIONS = (VERSION_FLOAT, VERSION_EXACT, VERSION_MOTION, VERSION_SPLIT, VERSION_REANALYSE, VERSION)
KIND_VIDEO = 1
FRAME_SYNC = b"FR"
INDEX_MAGIC = b"LIDX"
FRAME_I, FRAME_P = 0, 1
FRAME_TYPES = ("I", "P")
MAX_VIDEO_SIDE = 8192
MAX_FRAMES = 10_000_000
MAX_STREAMS = 4
_FIXED = struct.Struct("<HHIIIIQ")  # width, height, rate num, rate den, intra period, frames, index offset
_MIN_RECORD = 2 + 1 + 1 + 2 + 1 + 2 + 4
VARINT_BYTES = 9  # longest varint a video file holds (index offsets of files above 4 GiB)


def stream_kind(prefix: bytes) -> int | None:
    """The kind byte of an lcodec file (0 image, 1 video) from its first bytes; None if not lcodec."""
    if len(prefix) < 6 or prefix[:4] != MAGIC:
        return None
    return prefix[5]


@dataclass
class VideoHeader:
    """Everything a video file's header says."""

    model: str
    weights_hash: bytes
    image_hash: bytes
    width: int
    height: int
    rate: Fraction = Fraction(25)
    intra_period: int = 32  # 0 = only the first frame is intra
    frame_count: int = 0
    index_offset: int = 0
    version: int = VERSION

    @property
    def exact(self) -> bool:
        """Entropy parameters in exact fixed point (versions 2 to 6) rather than float (1)."""
        return self.version >= VERSION_EXACT

    @property
    def motion(self) -> bool:
        """P-frames carry skipped blocks and their vectors (versions 3 to 6)."""
        return self.version >= VERSION_MOTION

    @property
    def split(self) -> bool:
        """P-frames are one stream of quadtree side data, z and y (versions 4 to 6)."""
        return self.version >= VERSION_SPLIT

    @property
    def reanalyse(self) -> bool:
        """A P-frame's g_s sees, at its skipped latent positions, g_a of the motion-compensated copy
        rather than the reference latent (versions 5 and 6)."""
        return self.version >= VERSION_REANALYSE

    @property
    def aligned(self) -> bool:
        """A P-frame's temporal references are the exact g_a of the previous decoded frame, aligned by
        one vector per 64x64 block (coded in its side data), and the previous latent (version 6)."""
        return self.version >= VERSION

    def pack(self) -> bytes:
        name = self.model.encode("utf-8")
        if len(name) > 255 or len(self.weights_hash) != 8 or len(self.image_hash) != 8:
            raise ValueError("model name too long or a weights hash is not 8 bytes")
        if not (1 <= self.width <= MAX_VIDEO_SIDE and 1 <= self.height <= MAX_VIDEO_SIDE):
            raise ValueError(f"frame size {self.width}x{self.height} outside 1..{MAX_VIDEO_SIDE}")
        if self.version not in VERSIONS:
            raise ValueError(f"cannot write video format version {self.version}")
        out = bytearray(MAGIC) + bytes([self.version, KIND_VIDEO, len(name)]) + name
        out += self.weights_hash + self.image_hash
        out += _FIXED.pack(self.width, self.height, self.rate.numerator, self.rate.denominator,
                           self.intra_period, self.frame_count, self.index_offset)
        return bytes(out) + struct.pack("<I", zlib.crc32(out) & 0xFFFFFFFF)

    def to_dict(self) -> dict:
        return {
            "kind": "video",
            "format_version": self.version,
            "model": self.model,
            "weights_hash": self.weights_hash.hex(),
            "image_weights_hash": self.image_hash.hex(),
            "width": self.width,
            "height": self.height,
            "frame_rate": f"{self.rate.numerator}/{self.rate.denominator}",
            "intra_period": self.intra_period if self.intra_period else -1,
            "frame_count": self.frame_count,
        }


@dataclass
class FrameRecord:
    """One coded frame: its type, number, quality and payload streams (z, y)."""

    type: int
    index: int
    quality: float
    streams: list[bytes] = field(default_factory=list)
    offset: int = 0  # byte offset of the record in the file

    @property
    def type_name(self) -> str:
        return FRAME_TYPES[self.type]

    def pack(self) -> bytes:
        if len(self.streams) > MAX_STREAMS:
            raise ValueError("too many streams in a frame record")
        out = bytearray(FRAME_SYNC) + bytes([self.type]) + varint(self.index)
        out += struct.pack("<H", int(round(self.quality * QUALITY_SCALE))) + bytes([len(self.streams)])
        for s in self.streams:
            out += varint(len(s))
        for s in self.streams:
            out += s
        return bytes(out) + struct.pack("<I", zlib.crc32(out) & 0xFFFFFFFF)

    def nbytes(self) -> int:
        return len(self.pack())


class VideoWriter:
    """Writes a video file to a seekable binary file: header, records as they come, index at the end."""

    def __init__(self, f: BinaryIO, header: VideoHeader) -> None:
        self.f = f
        self.header = header
        self.start = f.tell()
        self.index: list[tuple[int, int]] = []
        self.frames = 0
        f.write(header.pack())

    def write(self, record: FrameRecord) -> int:
        """Append a record (frames must come in order); returns its size in bytes."""
        if record.index != self.frames:
            raise ValueError(f"frame {record.index} written out of order (expected {self.frames})")
        data = record.pack()
        record.offset = self.f.tell() - self.start
        if record.type == FRAME_I:
            self.index.append((record.index, record.offset))
        self.f.write(data)
        self.frames += 1
        return len(data)

    def finish(self) -> VideoHeader:
        """Write the index and patch the header's frame count and index offset."""
        offset = self.f.tell() - self.start
        out = bytearray(INDEX_MAGIC) + varint(len(self.index))
        for frame, pos in self.index:
            out += varint(frame) + varint(pos)
        self.f.write(bytes(out) + struct.pack("<I", zlib.crc32(out) & 0xFFFFFFFF))
        end = self.f.tell()
        self.header.frame_count = self.frames
        self.header.index_offset = offset
        self.f.seek(self.start)
        self.f.write(self.header.pack())
        self.f.seek(end)
        return self.header


class VideoReader:
    """Reads and validates a video file from a seekable binary file, one record at a time."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        f.seek(0, 2)
        self.size = f.tell()
        f.seek(0)
        self.header = self._read_header()
        self.index = self._read_index()
        self.first_record = self._header_end

    def _read_header(self) -> VideoHeader:
        r = ByteReader(self.f, self.size)
        head = r.take(7, "header")
        if head[:4] != MAGIC:
            raise FormatError("not an lcodec file (bad magic)")
        if head[5] != KIND_VIDEO:
            raise FormatError(f"not an lcodec video file (kind {head[5]})")
        if head[4] not in VERSIONS:
            raise FormatError(f"unsupported video format version {head[4]} (this lcodec reads versions 1 to {VERSION})")
        name_raw = r.take(head[6], "header")
        hashes = r.take(16, "header")
        fixed = r.take(_FIXED.size, "header")
        crc = struct.unpack("<I", r.take(4, "header"))[0]
        if zlib.crc32(head + name_raw + hashes + fixed) & 0xFFFFFFFF != crc:
            raise FormatError("video header is corrupt (CRC-32 mismatch)")
        try:
            name = name_raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError("corrupt header (model name is not UTF-8)") from None
        w, h, num, den, period, frames, index_offset = _FIXED.unpack(fixed)
        self._header_end = r.pos
        if not (1 <= w <= MAX_VIDEO_SIDE and 1 <= h <= MAX_VIDEO_SIDE):
            raise FormatError(f"corrupt header (implausible frame size {w}x{h})")
        if num == 0 or den == 0:
            raise FormatError("corrupt header (frame rate 0)")
        if frames == 0 and index_offset == 0:
            raise FormatError("video file is incomplete (its encoding never finished)")
        if frames > min(MAX_FRAMES, (self.size - self._header_end) // _MIN_RECORD):
            raise FormatError(f"corrupt header ({frames} frames cannot fit in {self.size} bytes)")
        if not self._header_end <= index_offset <= self.size - 9:
            raise FormatError("corrupt header (index offset outside the file)")
        return VideoHeader(name, hashes[:8], hashes[8:], w, h, Fraction(num, den), period, frames, index_offset,
                           head[4])

    def _read_index(self) -> list[tuple[int, int]]:
        self.f.seek(self.header.index_offset)
        r = ByteReader(self.f, self.size)
        start = r.pos
        if r.take(4, "index") != INDEX_MAGIC:
            raise FormatError("corrupt video index (bad magic)")
        count = r.varint("index", VARINT_BYTES)
        if count > self.header.frame_count or count > self.size:
            raise FormatError(f"corrupt video index ({count} entries for {self.header.frame_count} frames)")
        entries = [(r.varint("index", VARINT_BYTES), r.varint("index", VARINT_BYTES)) for _ in range(count)]
        body_end = r.pos
        crc = struct.unpack("<I", r.take(4, "index"))[0]
        if r.pos != self.size:
            raise FormatError("video file has trailing bytes after its index")
        self.f.seek(start)
        if zlib.crc32(self.f.read(body_end - start)) & 0xFFFFFFFF != crc:
            raise FormatError("video index is corrupt (CRC-32 mismatch)")
        prev = (-1, -1)
        for frame, pos in entries:
            if frame <= prev[0] or pos <= prev[1] or frame >= self.header.frame_count \
                    or not self._header_end <= pos < self.header.index_offset:
                raise FormatError("corrupt video index (entries out of order or outside the file)")
            prev = (frame, pos)
        if self.header.frame_count and (not entries or entries[0] != (0, self._header_end)):
            raise FormatError("corrupt video index (the first frame is not indexed as intra)")
        return entries

    def seek_point(self, frame: int) -> tuple[int, int]:
        """(frame number, byte offset) of the last I-frame at or before `frame`."""
        best = self.index[0]
        for entry in self.index:
            if entry[0] <= frame:
                best = entry
        return best

    def records(self, start_offset: int | None = None, start_frame: int = 0):
        """Yield FrameRecords from `start_offset` (default: the first) up to the index, validated."""
        self.f.seek(self.first_record if start_offset is None else start_offset)
        r = ByteReader(self.f, self.header.index_offset)
        expected = start_frame
        while r.pos < self.header.index_offset:
            yield self._read_record(r, expected)
            expected += 1
        if expected != self.header.frame_count:
            raise FormatError(f"video has {expected} frame records, its header says {self.header.frame_count}")

    def _read_record(self, r: ByteReader, expected: int) -> FrameRecord:
        offset = r.pos
        what = f"frame {expected} record"
        head = r.take(3, what)
        if head[:2] != FRAME_SYNC:
            raise FormatError(f"frame {expected}: corrupt record (bad sync bytes)")
        ftype = head[2]
        index, index_raw = r.varint_raw(what, VARINT_BYTES)
        q_raw = r.take(2, what)
        n_raw = r.take(1, what)
        n = n_raw[0]
        if ftype not in (FRAME_I, FRAME_P) or index != expected or not 1 <= n <= MAX_STREAMS:
            raise FormatError(f"frame {expected}: corrupt record (type {ftype}, number {index}, {n} streams)")
        lengths, raw_lengths = [], b""
        for _ in range(n):
            length, raw = r.varint_raw(what, VARINT_BYTES)
            lengths.append(length)
            raw_lengths += raw
        if r.pos + sum(lengths) + 4 > self.header.index_offset:
            raise FormatError(f"frame {expected}: corrupt record (streams longer than the file)")
        streams = [r.take(length, what) for length in lengths]
        crc = struct.unpack("<I", r.take(4, what))[0]
        body = head + index_raw + q_raw + n_raw + raw_lengths + b"".join(streams)
        if zlib.crc32(body) & 0xFFFFFFFF != crc:
            kind = FRAME_TYPES[ftype]
            raise FormatError(f"frame {expected} ({kind}-frame): corrupt record (CRC-32 mismatch)")
        quality = struct.unpack("<H", q_raw)[0] / QUALITY_SCALE
        if not QUALITY_MIN <= quality <= QUALITY_MAX:
            raise FormatError(f"frame {expected}: corrupt record (quality {quality:g})")
        return FrameRecord(ftype, index, quality, streams, offset)
