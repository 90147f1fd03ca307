"""Container format: round trip of headers, and a clean FormatError for everything it did not write."""

from __future__ import annotations

import struct
import zlib

import pytest

from lcodec.codec.container import VERSION, VERSION_SPLIT, ImageHeader, MAGIC, pack_image, read_header, unpack_image
from lcodec.codec.errors import FormatError


def _streams(version: int) -> list[bytes]:
    # version 4 codes z and y in one stream; versions 1-3 in two
    return [b"zy" * 2006] if version >= VERSION else [b"z" * 12, b"y" * 4000]


def _file(version: int = VERSION, **kw) -> bytes:
    h = ImageHeader(model="default", weights_hash=bytes(range(8)), quality=4.25, height=512, width=768, mode="RGB",
                    version=version)
    for k, v in kw.items():
        setattr(h, k, v)
    return pack_image(h, _streams(version))


def _recrc(data: bytes) -> bytes:
    body = data[:-4]
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


@pytest.mark.parametrize("version", [VERSION_SPLIT, VERSION])
def test_roundtrip(version):
    data = _file(version)
    header, streams = unpack_image(data)
    assert (header.model, header.quality, header.height, header.width, header.mode) == \
        ("default", 4.25, 512, 768, "RGB")
    assert header.weights_hash == bytes(range(8)) and header.version == version
    assert streams == _streams(version)
    d = header.to_dict(total_bytes=len(data))
    assert d["kind"] == "image" and d["bytes"] == len(data) and d["format_version"] == version
    assert d["bpp"] == pytest.approx(8 * len(data) / (512 * 768), rel=1e-4)


def test_header_overhead():
    # version 3: magic, version, kind, mode, name, hash, quality, sizes, tile, count, two lengths, CRC
    assert len(_file(VERSION_SPLIT)) - 4012 == 4 + 3 + 1 + 7 + 8 + 2 + 2 + 2 + 1 + 1 + 1 + 2 + 4
    # version 4 drops the count and the (only, so last) length
    assert len(_file(VERSION)) - 4012 == 4 + 3 + 1 + 7 + 8 + 2 + 2 + 2 + 1 + 4


def test_version4_lengths_of_several_streams():
    # a tiled RGBA file: one stream per tile plus alpha, every length but the last stored
    h = ImageHeader("default", bytes(8), 3.0, 300, 600, "RGBA", tile=256)
    streams = [bytes([k]) * (50 + 7 * k) for k in range(h.expected_streams())]
    assert len(streams) == 2 * 3 + 1
    header, back = unpack_image(pack_image(h, streams))
    assert back == streams and header.stream_lengths == [len(x) for x in streams]
    with pytest.raises(ValueError, match="stream count"):
        pack_image(ImageHeader("default", bytes(8), 3.0, 300, 600, "RGBA", tile=256), streams[:-1])


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
        unpack_image(mutate(_file(VERSION_SPLIT)))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: b"", "bad magic"),
        (lambda d: d[:4] + b"\x09" + d[5:], "unsupported format version 9 .*versions 1 to 5"),
        (lambda d: d[:-1], "truncated"),  # the last length is implied: the CRC catches what is missing
        (lambda d: d[:-1000], "truncated"),
        (lambda d: d[:30], "truncated"),
        (lambda d: d[:35], "truncated"),  # header only, no payload
        (lambda d: d + b"\x00", "truncated|trailing"),
        (lambda d: d[:100] + bytes([d[100] ^ 0x10]) + d[101:], "CRC-32"),
    ],
)
def test_bad_version4_files_raise_format_error(mutate, message):
    with pytest.raises(FormatError, match=message):
        unpack_image(mutate(_file(VERSION)))


def test_absurd_dimensions_rejected_before_allocation():
    data = bytearray(_file())
    # height is the first varint after magic(4) version kind mode len(1) name(7) hash(8) quality(2)
    pos = 4 + 3 + 1 + 7 + 8 + 2
    forged = bytes(data[:pos]) + bytes([0xFF, 0xFF, 0xFF, 0x7F]) + bytes(data[pos + 2 :])
    with pytest.raises(FormatError):
        read_header(_recrc(forged))


@pytest.mark.parametrize("version", [VERSION_SPLIT, VERSION])
def test_lengths_larger_than_file_rejected(version):
    h = ImageHeader("default", bytes(8), 2.0, 10, 10, "RGBA", version=version)
    streams = [b"a" * 4, b"b" * 8] + ([b"c" * 5] if version < VERSION else [])
    data = pack_image(h, streams)
    with pytest.raises(FormatError):
        unpack_image(data[:-10] + data[-4:])
    assert data.startswith(MAGIC)
