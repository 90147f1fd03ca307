"""Byte-level reading shared by the image container (`codec.container`) and the video container
(`codec.video_container`): bounded reads that raise FormatError instead of returning short data, the
unsigned LEB128 ``varint`` both formats use (and its writer), and the short-stream guard both decoders
apply to a z stream before decoding it.
"""

from __future__ import annotations

import io
from typing import BinaryIO

from .errors import FormatError

#: A z stream is rejected as corrupt below this share of the fewest bits any genuine one takes ...
SHORT_STREAM_SHARE = 0.9
#: ... less this many bits (a range coder's flush can end a stream a few bytes early).
SHORT_STREAM_SLACK_BITS = 96


def varint(n: int) -> bytes:
    """Unsigned LEB128 encoding of n (the containers' length, size and count fields)."""
    if n < 0:
        raise ValueError("varint must be non-negative")
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


class ByteReader:
    """Bounded reads from bytes or from a seekable binary file up to `end`, raising FormatError
    ("file is truncated (<what> ends early)") instead of returning short data.

    `what` names the part being read in error messages (default "header"); each read may name its own.
    """

    def __init__(self, source: bytes | bytearray | memoryview | BinaryIO, end: int | None = None,
                 what: str = "header") -> None:
        if isinstance(source, (bytes, bytearray, memoryview)):
            if end is None:
                end = len(source)
            source = io.BytesIO(source)
        elif end is None:
            here = source.tell()
            end = source.seek(0, io.SEEK_END)
            source.seek(here)
        self.f = source
        self.end = end
        self.what = what

    @property
    def pos(self) -> int:
        """Offset of the next byte to read."""
        return self.f.tell()

    def left(self) -> int:
        """Bytes left before `end`."""
        return self.end - self.f.tell()

    def take(self, n: int, what: str | None = None) -> bytes:
        """The next `n` bytes (FormatError if fewer are left before `end`)."""
        if n < 0 or self.f.tell() + n > self.end:
            raise FormatError(f"file is truncated ({what or self.what} ends early)")
        data = self.f.read(n)
        if len(data) != n:
            raise FormatError(f"file is truncated ({what or self.what} ends early)")
        return data

    def u8(self, what: str | None = None) -> int:
        return self.take(1, what)[0]

    def varint_raw(self, what: str | None = None, max_bytes: int = 5) -> tuple[int, bytes]:
        """A varint of at most `max_bytes` bytes, and the bytes it was read from (for a CRC)."""
        n, raw = 0, bytearray()
        for i in range(max_bytes):
            b = self.take(1, what)[0]
            raw.append(b)
            n |= (b & 0x7F) << (7 * i)
            if not b & 0x80:
                return n, bytes(raw)
        raise FormatError(f"corrupt {what or self.what} (length field too long)")

    def varint(self, what: str | None = None, max_bytes: int = 5) -> int:
        """A varint of at most `max_bytes` bytes."""
        return self.varint_raw(what, max_bytes)[0]


def stream_too_short(stream: bytes, min_bits: float) -> bool:
    """Whether a z stream is far shorter than `min_bits`, the fewest bits any genuine z stream of its
    size takes (`ImageModel.min_z_bits`): such a stream cannot be genuine, whatever its CRC says, and is
    rejected before any decoding work (a forged header cannot make a tiny file decode a huge image)."""
    return 8 * len(stream) < SHORT_STREAM_SHARE * min_bits - SHORT_STREAM_SLACK_BITS
