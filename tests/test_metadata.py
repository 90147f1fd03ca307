"""Orientation, colour profiles and other metadata, and multi-frame inputs: real encodes and decodes
of the bundled sample photo, through the command line as a user runs it and through the Python API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageOps

from lcodec.cli.main import main
from lcodec.codec import FormatError, ImageCodec
from lcodec.codec.container import VERSION, VERSION_META, ImageHeader, pack_image, pack_metadata, unpack_image
from lcodec.codec.metrics import psnr

SAMPLE = Path(__file__).resolve().parents[1] / "codec" / "samples" / "flower.png"
ORIENTATION = 0x0112


@pytest.fixture(scope="module")
def sample() -> Image.Image:
    """A 192x128 crop of the sample photo (landscape), with the sample's ICC profile."""
    with Image.open(SAMPLE) as im:
        icc = im.info["icc_profile"]
        crop = im.convert("RGB").crop((300, 200, 492, 328))
    crop.info = {"icc_profile": icc}
    return crop


def _run(*args: str) -> object:
    res = CliRunner().invoke(main, [str(a) for a in args])
    return res


def test_exif_orientation_6_comes_back_as_displayed(tmp_path, sample):
    # a phone photo: the raster is landscape, EXIF orientation 6 says "display rotated to portrait"
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[0x010F] = "PhoneMaker"
    src = tmp_path / "phone.jpg"
    sample.save(src, quality=95, exif=exif, icc_profile=sample.info["icc_profile"])
    with Image.open(src) as im:
        shown = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    assert shown.shape[:2] == (192, 128)  # portrait as displayed
    res = _run("encode", src, "-o", tmp_path / "p.lcd", "-q", "8")
    assert res.exit_code == 0, res.output
    info = json.loads(_run("info", tmp_path / "p.lcd", "--json").output)
    assert (info["width"], info["height"]) == (128, 192)
    assert "EXIF orientation 6 applied" in info["orientation"]
    assert _run("decode", tmp_path / "p.lcd", "-o", tmp_path / "p.png").exit_code == 0
    with Image.open(tmp_path / "p.png") as out:
        exif_out = out.getexif()
        pixels = np.asarray(out.convert("RGB"))
    assert pixels.shape == shown.shape and psnr(pixels, shown) > 30
    # the tag is not written back as 6 (a viewer would rotate the upright picture again), the rest is
    assert exif_out.get(ORIENTATION, 1) == 1 and exif_out.get(0x010F) == "PhoneMaker"


def test_icc_profile_round_trip_and_strip(tmp_path, sample):
    src = tmp_path / "icc.png"
    sample.save(src)
    icc = sample.info["icc_profile"]
    assert _run("encode", src, "-o", tmp_path / "a.lcd").exit_code == 0
    assert _run("encode", src, "-o", tmp_path / "s.lcd", "--strip").exit_code == 0
    for ext in ("png", "jpg", "webp", "tif"):
        assert _run("decode", tmp_path / "a.lcd", "-o", tmp_path / f"a.{ext}").exit_code == 0
        with Image.open(tmp_path / f"a.{ext}") as out:
            assert out.info.get("icc_profile") == icc, ext
    assert _run("decode", tmp_path / "s.lcd", "-o", tmp_path / "s.png").exit_code == 0
    with Image.open(tmp_path / "s.png") as out:
        assert "icc_profile" not in out.info
    a, s = (tmp_path / "a.lcd").read_bytes(), (tmp_path / "s.lcd").read_bytes()
    assert (a[4], s[4]) == (VERSION_META, VERSION)
    # the stripped file is what the same pixels without a profile give: no byte of overhead
    plain = tmp_path / "plain.png"
    sample.copy().save(plain, icc_profile=None)
    with Image.open(plain) as im:
        assert "icc_profile" not in im.info
    assert _run("encode", plain, "-o", tmp_path / "p.lcd").exit_code == 0
    assert (tmp_path / "p.lcd").read_bytes() == s
    assert len(a) > len(s) + len(icc)
    # identical pixels either way: metadata never touches the coded picture
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "s.png")))


def test_exif_and_xmp_travel_through_the_python_api(tmp_path, codec, sample):
    exif = Image.Exif()
    exif[0x0110] = "ModelX"
    xmp = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF/></x:xmpmeta>"
    src = tmp_path / "tagged.jpg"
    sample.save(src, quality=95, exif=exif, xmp=xmp)
    blob = codec.encode(src, 4.0)  # a path is accepted as it is
    header = unpack_image(blob)[0]
    assert header.metadata["xmp"] == xmp and header.orientation == 1
    (tmp_path / "t.lcd").write_bytes(blob)
    out = codec.decode(tmp_path / "t.lcd")  # so is a path to the file
    assert out.info["xmp"] == xmp and out.getexif().get(0x0110) == "ModelX"
    assert ImageCodec.info(str(tmp_path / "t.lcd"))["metadata"]["xmp"] == len(xmp)
    for ext in ("jpg", "png", "webp"):  # and `lcodec decode` writes both back where the format holds them
        assert _run("decode", tmp_path / "t.lcd", "-o", tmp_path / f"t.{ext}").exit_code == 0
        with Image.open(tmp_path / f"t.{ext}") as back:
            back.load()
            got = back.info.get("xmp") or back.info.get("XML:com.adobe.xmp")
            assert (got.encode() if isinstance(got, str) else got) == xmp, ext
            assert back.getexif().get(0x0110) == "ModelX", ext


@pytest.mark.parametrize("kind", ["gif", "tiff", "webp", "png"])
def test_multi_frame_inputs_are_refused_with_the_video_route(tmp_path, kind):
    frames = [Image.new("RGB", (64, 48), (40 * i, 90, 200 - 40 * i)) for i in range(3)]
    src = tmp_path / f"anim.{kind}"
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=100)
    with Image.open(src) as im:
        assert im.n_frames == 3
    res = _run("encode", src, "-o", tmp_path / "a.lcd")
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "3 frames" in lines[0] and "video" in lines[0] and "clip.y4m" in lines[0]
    assert not (tmp_path / "a.lcd").exists()


def test_metadata_record_is_checked(sample):
    header = ImageHeader("default", b"\0" * 8, 4.0, 16, 16, metadata={"icc_profile": b"P" * 40}, orientation=3)
    blob = pack_image(header, [b"zy" * 20])
    got = unpack_image(blob)[0]
    assert got.version == VERSION_META and got.metadata == {"icc_profile": b"P" * 40} and got.orientation == 3
    plain = pack_image(ImageHeader("default", b"\0" * 8, 4.0, 16, 16), [b"zy" * 20])
    assert plain[4] == VERSION and len(blob) == len(plain) + 1 + len(pack_metadata({"icc_profile": b"P" * 40}, 3))

    def with_record(record: bytes) -> bytes:
        import struct
        import zlib

        from lcodec.codec.container import varint

        cut = len(plain) - 4 - 40  # the header ends where the (one, implied-length) stream starts
        body = bytearray(plain[:cut])
        body[4] = VERSION_META
        body += varint(len(record)) + record + plain[cut:-4]
        return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)) & 0xFFFFFFFF)

    assert unpack_image(with_record(b"\x09\x02ab\x01\x01P"))[0].metadata == {"icc_profile": b"P"}  # unknown tag skipped
    for bad, why in ((b"\x01\x01P\x01\x01Q", "twice"), (b"\x04\x01\x09", "orientation"), (b"\x01\x09P", "longer"),
                     (b"\x04\x02\x06\x06", "orientation")):
        with pytest.raises(FormatError, match=why):
            unpack_image(with_record(bad))
