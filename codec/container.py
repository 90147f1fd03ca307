"""The lcodec file format (versions 1 to 5): one self-describing, checksummed file per image.

Byte layout (integers little-endian, ``varint`` = unsigned LEB128)::

    magic        4 bytes   b"LCDC"
    version      u8        4, or 5 with metadata (1 to 3 are still decoded)
    kind         u8        0 = image (1 = video, reserved)
    mode         u8        0 = RGB, 1 = L (grey), 2 = RGBA, 3 = LA
    model name   u8 length + UTF-8 bytes
    weights hash 8 bytes   first 8 bytes of the SHA-256 of the weights file
    quality      u16       round(quality * 4096), quality in [1, 12] (at most the model's levels)
    height       varint    original height in pixels
    width        varint    original width in pixels
    streams      u8        number of payload streams (2: z, y; 3 with an alpha stream)
    lengths      varint    one per stream
    payloads     the streams, concatenated
    crc32        u32       CRC-32 of every byte before it

Versions 2 and 3 insert one field after ``width`` and widen the stream count::

    tile         varint    core tile side in pixels (a multiple of 64); version 3: 0 = untiled
    streams      varint    2 per tile (z, y; tiles in raster order) + 1 alpha stream if any

Version 3 computes the entropy parameters in exact fixed-point arithmetic
(``entropy_models.fixed_point``), so a file decodes identically on any device; versions 1 (untiled)
and 2 (tiled) used float arithmetic and decode reliably only on the CPU, as before.

Version 4 (the only one written now) codes the same latents as version 3 but drops what the rest of
the file already says (5-10 bytes less per untiled 768x512 file, measured)::

    tile         varint    as version 3 (0 = untiled)
    lengths      varint    one per stream except the last, whose length is what the file has left;
                           the count is implied: 1 per tile (z then y in one range-coded stream,
                           tiles in raster order) + 1 alpha stream if any

One range-coded stream per tile instead of two saves one coder flush and one length.

Version 5 is version 4 plus a metadata record after ``tile``; it is written only for images that
carry metadata, so a file without any is a version-4 file, byte for byte as before::

    metadata     varint    length L of the record (1 ... 16 MiB), then L bytes of entries:
                           tag u8, varint length, bytes; tags 1 ICC profile, 2 EXIF, 3 XMP,
                           4 EXIF orientation applied before coding (one byte, 2 ... 8);
                           each tag at most once, unknown tags skipped

The decoder checks everything before it allocates anything: magic, version, kind, mode, sizes
against sane maxima, stream lengths against the bytes actually present, then the CRC.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from .byte_reader import ByteReader, varint
from .errors import FormatError
from .quality import QUALITY_MAX, QUALITY_MIN

MAGIC = b"LCDC"
VERSION_FLOAT = 1  # untiled, float entropy parameters (read only)
VERSION_TILED = 2  # tiled, float entropy parameters (read only)
VERSION_SPLIT = 3  # tile field always present, exact fixed-point entropy parameters (read only)
VERSION = 4  # as 3, with z and y in one stream per tile and implied stream count / last length
VERSION_META = 5  # as 4, plus a metadata record (written only when the image carries metadata)
VERSIONS = (VERSION_FLOAT, VERSION_TILED, VERSION_SPLIT, VERSION, VERSION_META)
#: Metadata record tags and the Pillow ``info`` keys they carry (orientation is a tag of its own).
META_TAGS = {1: "icc_profile", 2: "exif", 3: "xmp"}
TAG_ORIENTATION = 4
MAX_METADATA = 16 << 20  # bytes of metadata a file may declare
KIND_IMAGE = 0
MODES = ("RGB", "L", "RGBA", "LA")
MAX_SIDE = 1 << 16  # 65536 pixels per side
MAX_STREAMS = 8  # version 1
TILE_MIN, TILE_MAX = 256, 8192  # tile sides a version-2 file may declare (multiples of 64)
QUALITY_SCALE = 4096
_MIN_SIZE = 4 + 3 + 1 + 8 + 2 + 1 + 1 + 1 + 4


@dataclass
class ImageHeader:
    """Everything the header of an image file says."""

    model: str
    weights_hash: bytes
    quality: float
    height: int
    width: int
    mode: str = "RGB"
    stream_lengths: list[int] = field(default_factory=list)
    version: int = VERSION
    tile: int = 0  # core tile side in pixels; 0 = untiled
    metadata: dict[str, bytes] = field(default_factory=dict)  # Pillow info keys: icc_profile, exif, xmp
    orientation: int = 1  # EXIF orientation applied to the pixels before coding (1: none)

    @property
    def exact(self) -> bool:
        """Entropy parameters in exact fixed point (versions 3 to 5) rather than float (1, 2)."""
        return self.version >= VERSION_SPLIT

    @property
    def streams_per_tile(self) -> int:
        """Range-coded streams per tile: z and y apart (versions 1-3) or as one (versions 4 and 5)."""
        return 1 if self.version >= VERSION else 2

    @property
    def tile_grid(self) -> tuple[int, int]:
        """(rows, columns) of tiles; (1, 1) for an untiled image."""
        if not self.tile:
            return 1, 1
        return -(-self.height // self.tile), -(-self.width // self.tile)

    def expected_streams(self) -> int:
        """Number of payload streams this header implies (latent streams per tile, plus alpha)."""
        rows, cols = self.tile_grid
        return self.streams_per_tile * rows * cols + (1 if self.mode in ("RGBA", "LA") else 0)

    def to_dict(self, total_bytes: int | None = None) -> dict:
        d = {
            "kind": "image",
            "format_version": self.version,
            "model": self.model,
            "weights_hash": self.weights_hash.hex(),
            "quality": round(self.quality, 4),
            "width": self.width,
            "height": self.height,
            "mode": self.mode,
            "streams": list(self.stream_lengths),
        }
        if self.tile:
            d["tile"] = self.tile
            d["tiles"] = self.tile_grid[0] * self.tile_grid[1]
        if self.metadata:
            d["metadata"] = {k: len(v) for k, v in self.metadata.items()}
        d["orientation"] = (f"upright (EXIF orientation {self.orientation} applied before coding)"
                            if self.orientation != 1 else "as coded (no EXIF rotation recorded)")
        if total_bytes is not None:
            d["bytes"] = total_bytes
            d["bpp"] = round(8 * total_bytes / (self.width * self.height), 5)
        return d


def _written_version(header: ImageHeader) -> tuple[int, bytes]:
    """The version a header is written as, and its metadata record: the float versions follow the tiling
    (1 untiled, 2 tiled), and version 4 becomes 5 when there is metadata to carry."""
    version = header.version
    if version not in VERSIONS:
        raise ValueError(f"cannot write format version {version}")
    if version == VERSION_FLOAT and header.tile:
        version = VERSION_TILED
    elif version == VERSION_TILED and not header.tile:
        version = VERSION_FLOAT
    record = pack_metadata(header.metadata, header.orientation)
    if version >= VERSION:
        version = VERSION_META if record else VERSION
    elif record:
        raise ValueError(f"format version {version} cannot carry metadata")
    return version, record


def _check_layout(header: ImageHeader, version: int, streams: list[bytes]) -> None:
    """ValueError unless the tile side and the streams are what a file of `version` can say and a reader
    will accept (the reader checks the same, so a file that would not read back is never written)."""
    if header.tile and (header.tile % 64 or not TILE_MIN <= header.tile <= TILE_MAX):
        raise ValueError(f"tile side {header.tile} is not a multiple of 64 in [{TILE_MIN}, {TILE_MAX}]")
    # tiled files and version 4 (which stores no count) must hold exactly the streams the header implies
    if (header.tile or version >= VERSION) and len(streams) != header.expected_streams():
        raise ValueError("stream count does not match the tiling and mode")
    if version >= VERSION and not streams[-1]:
        raise ValueError("the last stream is empty (its implied length would read as a truncated file)")
    if version == VERSION_FLOAT and len(streams) > MAX_STREAMS:
        raise ValueError("too many streams for an untiled file")


def pack_image(header: ImageHeader, streams: list[bytes]) -> bytes:
    """Serialise a header and its payload streams into a complete file."""
    if header.mode not in MODES:
        raise ValueError(f"unknown mode {header.mode}")
    name = header.model.encode("utf-8")
    if len(name) > 255 or len(header.weights_hash) != 8:
        raise ValueError("model name too long or weights hash not 8 bytes")
    version, record = _written_version(header)
    _check_layout(header, version, streams)
    out = bytearray(MAGIC)
    out += bytes([version, KIND_IMAGE, MODES.index(header.mode), len(name)]) + name
    out += header.weights_hash
    out += struct.pack("<H", int(round(header.quality * QUALITY_SCALE)))
    out += varint(header.height) + varint(header.width)
    if version == VERSION_FLOAT:
        out.append(len(streams))
    elif version >= VERSION:
        out += varint(header.tile)
        if version == VERSION_META:
            out += varint(len(record)) + record
    else:
        out += varint(header.tile) + varint(len(streams))
    for s in streams[:-1] if version >= VERSION else streams:
        out += varint(len(s))
    for s in streams:
        out += s
    out += struct.pack("<I", zlib.crc32(out) & 0xFFFFFFFF)
    header.stream_lengths = [len(s) for s in streams]
    header.version = version
    return bytes(out)


def _read_fixed_fields(r: ByteReader) -> ImageHeader:
    """The fields every version has, version to width, validated in file order (after the magic); the
    header returned has no streams, tile or metadata yet."""
    version = r.u8()
    if version not in VERSIONS:
        raise FormatError(f"unsupported format version {version} (this lcodec reads versions 1 to {VERSIONS[-1]})")
    kind = r.u8()
    if kind != KIND_IMAGE:
        raise FormatError(f"unsupported stream kind {kind} (this lcodec decodes images)")
    mode_i = r.u8()
    if mode_i >= len(MODES):
        raise FormatError(f"corrupt header (unknown colour mode {mode_i})")
    name_len = r.u8()
    try:
        name = r.take(name_len).decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("corrupt header (model name is not UTF-8)") from None
    whash = r.take(8)
    quality = struct.unpack("<H", r.take(2))[0] / QUALITY_SCALE
    height = r.varint()
    width = r.varint()
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise FormatError(f"corrupt header (implausible size {width}x{height})")
    if not (QUALITY_MIN <= quality <= QUALITY_MAX):
        raise FormatError(f"corrupt header (quality {quality:g} out of range)")
    return ImageHeader(name, whash, quality, height, width, MODES[mode_i], version=version)


def _read_tile_and_metadata(r: ByteReader, data: bytes, header: ImageHeader) -> int:
    """Versions 2 to 5: read the tile side and (version 5) the metadata record into `header`; returns the
    stream count (stored in versions 2 and 3, implied after that), checked against what the header implies
    and against the bytes left."""
    tile = r.varint()
    if (tile or header.version == VERSION_TILED) and (tile % 64 or not TILE_MIN <= tile <= TILE_MAX):
        raise FormatError(f"corrupt header (tile side {tile})")
    header.tile = tile
    if header.version == VERSION_META:
        size = r.varint()
        if not 1 <= size <= MAX_METADATA:
            raise FormatError(f"corrupt header (metadata record of {size} bytes)")
        if size > len(data) - r.pos - 4:
            raise FormatError("file is truncated (metadata record runs past the end)")
        header.metadata, header.orientation = unpack_metadata(r.take(size))
    expected = header.expected_streams()
    n = expected if header.version >= VERSION else r.varint()
    if n != expected:
        raise FormatError(f"corrupt header ({n} streams where {expected} are expected)")
    # every length takes at least one byte: a huge tile count cannot hide in a small file
    if n > len(data) - r.pos:
        raise FormatError("file is truncated (fewer bytes than its streams need)")
    return n


def _read_stream_lengths(r: ByteReader, data: bytes, version: int, n: int) -> list[int]:
    """The lengths of the `n` streams (the last one implied from version 4 on), checked to add up exactly
    to the bytes between the header and the CRC."""
    lengths = [r.varint() for _ in range(n - 1 if version >= VERSION else n)]
    if version >= VERSION:  # the last stream is what is left before the CRC
        lengths.append(len(data) - 4 - r.pos - sum(lengths))
        if lengths[-1] < 1:
            raise FormatError("file is truncated (payload shorter than its header says)")
    if r.pos + sum(lengths) + 4 != len(data):
        if r.pos + sum(lengths) + 4 > len(data):
            raise FormatError("file is truncated (payload shorter than its header says)")
        raise FormatError("file has trailing or missing bytes (lengths do not add up)")
    return lengths


def read_header(data: bytes) -> tuple[ImageHeader, int]:
    """Parse and validate the header; returns it and the offset of the first payload byte."""
    if len(data) < 4 or data[:4] != MAGIC:
        raise FormatError("not an lcodec file (bad magic)")
    if len(data) < _MIN_SIZE:
        raise FormatError("file is truncated")
    r = ByteReader(data)
    r.take(4)
    header = _read_fixed_fields(r)
    if header.version != VERSION_FLOAT:
        n = _read_tile_and_metadata(r, data, header)
    else:
        n = r.u8()
        if not (1 <= n <= MAX_STREAMS):
            raise FormatError(f"corrupt header ({n} streams)")
    header.stream_lengths = _read_stream_lengths(r, data, header.version, n)
    return header, r.pos


def pack_metadata(metadata: dict[str, bytes], orientation: int = 1) -> bytes:
    """The metadata record's entries (empty when there is nothing to carry)."""
    tags = {v: k for k, v in META_TAGS.items()}
    out = bytearray()
    for key, value in metadata.items():
        if key not in tags:
            raise ValueError(f"unknown metadata key {key!r} (have {', '.join(tags)})")
        if value:
            out += bytes([tags[key]]) + varint(len(value)) + value
    if orientation != 1:
        if not 2 <= orientation <= 8:
            raise ValueError(f"EXIF orientation must be 1 to 8, got {orientation}")
        out += bytes([TAG_ORIENTATION, 1, orientation])
    if len(out) > MAX_METADATA:
        raise ValueError(f"metadata of {len(out)} bytes is above the {MAX_METADATA}-byte limit")
    return bytes(out)


def unpack_metadata(record: bytes) -> tuple[dict[str, bytes], int]:
    """Entries of a metadata record: (Pillow info dict, orientation applied); FormatError if malformed."""
    r = ByteReader(record)
    metadata: dict[str, bytes] = {}
    orientation, seen = 1, set()
    while r.pos < len(record):
        tag = r.u8()
        n = r.varint()
        if n > len(record) - r.pos:
            raise FormatError("corrupt header (metadata entry longer than its record)")
        value = r.take(n)
        if tag in seen:
            raise FormatError(f"corrupt header (metadata tag {tag} twice)")
        seen.add(tag)
        if tag in META_TAGS:
            metadata[META_TAGS[tag]] = value
        elif tag == TAG_ORIENTATION:
            if n != 1 or not 2 <= value[0] <= 8:
                raise FormatError("corrupt header (bad orientation entry)")
            orientation = value[0]
    return metadata, orientation


def unpack_image(data: bytes) -> tuple[ImageHeader, list[bytes]]:
    """Validate a whole file (header, lengths, CRC-32) and split it into header and streams."""
    header, pos = read_header(data)
    crc = struct.unpack("<I", data[-4:])[0]
    if zlib.crc32(data[:-4]) & 0xFFFFFFFF != crc:
        raise FormatError("file is corrupt or truncated (CRC-32 mismatch)")
    streams = []
    for n in header.stream_lengths:
        streams.append(data[pos : pos + n])
        pos += n
    return header, streams
