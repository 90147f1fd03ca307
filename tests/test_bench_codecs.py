"""Each reference codec on one small real image (and a few video frames) at two settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import NO_DATA
from PIL import Image

from lcodec.bench.errors import CodecUnavailable
from lcodec.bench.image_codecs import IMAGE_CODECS, make_image_codec
from lcodec.bench.metrics import psnr_rgb
from lcodec.bench.run_images import measure_image

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REFERENCE_IMAGE = [n for n in IMAGE_CODECS if not n.startswith(("ours", "cai-"))]  # ours, zoo: below
# Two settings per codec, low then high quality; kept mid-range so even VVC stays fast.
TWO = {"jpeg": (20, 85), "jpeg444": (20, 85), "webp": (30, 85), "avif": (30, 70), "jp2k": (120, 24),
       "heif": (25, 55), "jxl": (40, 85), "vvc": (42, 32)}


@pytest.fixture(scope="module")
def small_rgb() -> np.ndarray:
    path = DATA / "eval" / "e01.png"
    if not path.exists():
        pytest.skip(NO_DATA)
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))[96:96 + 192, 200:200 + 192].copy()


def _available(adapter) -> None:
    try:
        adapter.check()
    except CodecUnavailable as exc:
        pytest.skip(f"{adapter.name}: {exc}")


@pytest.mark.parametrize("name", REFERENCE_IMAGE)
def test_image_codec_two_settings(name: str, small_rgb: np.ndarray) -> None:
    codec = make_image_codec(name)
    _available(codec)
    lo, hi = (measure_image(codec, small_rgb, v) for v in TWO[name])
    for p in (lo, hi):
        assert p["bytes"] > 0
        assert p["bpp"] == pytest.approx(p["bytes"] * 8 / (192 * 192))
        assert 15.0 < p["psnr-rgb"] < 100.0
        assert 0.0 < p["ms-ssim"] <= 1.0
    assert hi["bytes"] > lo["bytes"]
    assert hi["psnr-rgb"] > lo["psnr-rgb"]


def test_settings_are_recorded() -> None:
    for name in IMAGE_CODECS:
        s = make_image_codec(name).settings()
        assert s["codec"] == name and len(s["values"]) >= 6 and s["swept"]


def test_vvc_odd_size_round_trip(small_rgb: np.ndarray) -> None:
    codec = make_image_codec("vvc")
    _available(codec)
    odd = small_rgb[:45, :37].copy()
    out = np.asarray(codec.decode(codec.encode(Image.fromarray(odd), 37)))
    assert out.shape == odd.shape and psnr_rgb(odd, out) > 25


@pytest.fixture(scope="module")
def clip_frames():
    path = DATA / "video" / "carphone_pristine.mp4"
    if not path.exists():
        pytest.skip(NO_DATA)
    from lcodec.bench.video_codecs import read_clip

    return read_clip(path, 3)


@pytest.mark.parametrize("name", ["x264", "x265", "svtav1", "vp9", "vvc"])
def test_video_codec_two_settings(name: str, clip_frames) -> None:
    from lcodec.bench.run_video import measure_video
    from lcodec.bench.video_codecs import make_video_codec

    codec = make_video_codec(name)
    _available(codec)
    frames, fps = clip_frames
    lo_v, hi_v = codec.values[1], codec.values[3]  # values run from low to high quality
    lo, hi = (measure_video(codec, frames, fps, v, intra_period=0) for v in (lo_v, hi_v))
    assert hi["bytes"] > lo["bytes"] > 0
    assert hi["psnr-yuv"] > lo["psnr-yuv"] > 20
    assert len(lo["per_frame"]["psnr-rgb"]) == 3
    assert lo["ms-ssim"] is None  # 176x144 is too small for 5-scale MS-SSIM: reported as missing


def test_ours_video_codes_real_files_and_settings_name_the_weights() -> None:
    from lcodec.bench.run_video import measure_video
    from lcodec.bench.video_codecs import make_video_codec, read_clip

    clip = DATA / "video" / "carphone_pristine.mp4"
    if not clip.exists():
        pytest.skip(NO_DATA)
    frames, fps = read_clip(clip, 3)
    codec = make_video_codec("ours")
    codec.check()
    s = codec.settings(0, 3)
    assert len(s["weights_hash"]) == 16 and len(s["image_weights_hash"]) == 16
    # the sweep is every level of the image model, read from its weights
    assert s["values"] == list(range(1, int(codec.codec().images.max_quality) + 1))
    lo, hi = (measure_video(codec, frames, fps, v, intra_period=0) for v in (2, 6))
    assert hi["bytes"] > lo["bytes"] > 0
    assert hi["psnr-yuv"] > lo["psnr-yuv"] > 20
    # the rate is the whole file: it starts with the container's magic
    assert codec.encode(frames[:1], 2, 0, fps)[0][:4] == b"LCDC"


def test_ours_without_codec_package_is_unavailable(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "lcodec.codec", None)  # makes `from lcodec.codec import ImageCodec` fail
    with pytest.raises(CodecUnavailable, match="ImageCodec is not available"):
        make_image_codec("ours").check()


def test_ours_codec_uses_the_weights_bench_images_names(tmp_path, monkeypatch):
    """`lcodec bench images --model FILE` measures those weights (here an archived-style copy of the
    bundled ones) and says so in the adapter's settings."""
    import shutil

    from lcodec.bench.image_codecs import MODEL_ENV, make_image_codec
    from lcodec.codec.registry import WEIGHTS_DIR

    copy = tmp_path / "mine.lcw"
    shutil.copyfile(WEIGHTS_DIR / "default.lcw", copy)
    monkeypatch.setenv(MODEL_ENV, str(copy))
    codec = make_image_codec("ours")
    assert "mine.lcw" in codec.description
    assert codec.settings()["weights_hash"] == codec._get().loaded.weights_hash.hex()
    assert codec._get().loaded.path == copy.resolve()
    monkeypatch.setenv(MODEL_ENV, str(tmp_path / "missing.lcw"))
    from lcodec.bench.errors import CodecUnavailable

    with pytest.raises(CodecUnavailable):
        make_image_codec("ours").check()


@pytest.fixture(scope="module")
def random_zoo_codec():
    """A CompressAI zoo architecture with random weights: the bench's code path without a download."""
    from lcodec.bench.compressai_codecs import CompressAICodec

    codec = CompressAICodec("bmshj2018-factorized", pretrained=False)
    codec.check()
    return codec


def test_compressai_zoo_codec_writes_real_files(random_zoo_codec, small_rgb) -> None:
    crop = small_rgb[:70, :90].copy()  # not a multiple of 64: padded for the model, cropped back
    lo, hi = (measure_image(random_zoo_codec, crop, q) for q in (1, 8))
    for p in (lo, hi):
        assert p["bytes"] > 20 and p["bpp"] == pytest.approx(p["bytes"] * 8 / (70 * 90))
    data = random_zoo_codec.encode(Image.fromarray(crop), 3)
    assert random_zoo_codec.decode(data).size == (90, 70)
    assert random_zoo_codec.encode(Image.fromarray(crop), 3) == data
    with pytest.raises(ValueError):
        random_zoo_codec.decode(b"JUNK" + data[4:])


def test_compressai_codecs_are_offered_and_missing_weights_are_one_line(monkeypatch) -> None:
    from lcodec.bench import compressai_codecs

    assert {"cai-mbt2018-mean", "cai-cheng2020-anchor"} <= set(IMAGE_CODECS)
    codec = make_image_codec("cai-mbt2018-mean")
    assert codec.values == tuple(range(1, 9)) and codec.settings()["pretrained"] is True

    def offline(*args, **kwargs):
        raise OSError("no network")

    zoo = compressai_codecs._zoo()
    monkeypatch.setattr(zoo, "load_state_dict_from_url", offline)
    with pytest.raises(CodecUnavailable, match="not available here .*internet"):
        make_image_codec("cai-cheng2020-anchor").check()
