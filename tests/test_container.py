"""Container format: round trip of headers, and a clean FormatError for everything it did not write."""

from __future__ import annotations

import struct
import zlib

import pytest

from codec.container import ImageHeader, MAGIC, pack_image, read_header, unpack_image
from codec.errors import FormatError


def _file(**kw) -> bytes:
    h = ImageHeader(model="default", weights_hash=bytes(range(8)), quality=4.25, height=512, width=768, mode="RGB")
    for k, v in kw.items():
        setattr(h, k, v)
    return pack_image(h, [b"z" * 12, b"y" * 4000])


def _recrc(data: bytes) -> bytes:
    body = data[:-4]
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def test_roundtrip():
    data = _file()
    header, streams = unpack_image(data)
    assert (header.model, header.quality, header.height, header.width, header.mode) == ("default", 4.25, 512, 768, "RGB")
    assert header.weights_hash == bytes(range(8))
    assert streams == [b"z" * 12, b"y" * 4000]
    d = header.to_dict(total_bytes=len(data))
    assert d["kind"] == "image" and d["bytes"] == len(data)
    assert d["bpp"] == pytest.approx(8 * len(data) / (512 * 768), rel=1e-4)


def test_header_overhead_is_small():
    assert len(_file()) - 4012 <= 40


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: b"", "bad magic"),
        (lambda d: b"PNG\x00" + d[4:], "bad magic"),
        (lambda d: d[:4] + b"\x09" + d[5:], "unsupported format version 9"),
        (lambda d: d[:5] + b"\x07" + d[6:], "unsupported stream kind"),
        (lambda d: d[:-1], "truncated"),
        (lambda d: d[:30], "truncated"),
        (lambda d: d + b"\x00", "trailing"),
        (lambda d: d[:100] + bytes([d[100] ^ 0x10]) + d[101:], "CRC-32"),
    ],
)
def test_bad_files_raise_format_error(mutate, message):
    with pytest.raises(FormatError, match=message):
        unpack_image(mutate(_file()))


def test_absurd_dimensions_rejected_before_allocation():
    data = bytearray(_file())
    # height is the first varint after magic(4) version kind mode len(1) name(7) hash(8) quality(2)
    pos = 4 + 3 + 1 + 7 + 8 + 2
    forged = bytes(data[:pos]) + bytes([0xFF, 0xFF, 0xFF, 0x7F]) + bytes(data[pos + 2 :])
    with pytest.raises(FormatError):
        read_header(_recrc(forged))


def test_lengths_larger_than_file_rejected():
    h = ImageHeader("default", bytes(8), 2.0, 10, 10, "RGB")
    data = pack_image(h, [b"a" * 4, b"b" * 8])
    with pytest.raises(FormatError):
        unpack_image(data[:-6] + data[-4:])
    assert data.startswith(MAGIC)
