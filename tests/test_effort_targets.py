"""--bpp / --psnr targets with encoder effort: real encodes of a small crop, the target still met, never
worse in the target's own terms than effort 0, files the ordinary decoder reads."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image

import lcodec.codec.latent_search as latent_search
from lcodec.codec import ImageCodec
from lcodec.codec.metrics import psnr


@pytest.fixture()
def short_effort(monkeypatch):
    """Effort 1 with 12 iterations: a real search, quick enough for a unit test."""
    monkeypatch.setitem(latent_search.EFFORT_ITERATIONS, 1, 12)


def _psnr(blob: bytes, original: Image.Image) -> float:
    """PSNR of the file's decoded pixels against the original."""
    return psnr(original, ImageCodec.default().decode(blob).convert("RGB"))


def _bpp(blob: bytes, img: Image.Image) -> float:
    return 8 * len(blob) / (img.width * img.height)


def test_bpp_target_with_effort_fits_and_is_no_worse(codec, crop, short_effort):
    target = _bpp(codec.encode(crop, 4.5), crop)  # between two levels: the bisection has work to do
    e0, q0 = codec.encode_to_target(crop, bpp=target)
    steps: list[tuple[int, int]] = []
    e1, q1 = codec.encode_to_target(crop, bpp=target, effort=1, progress=lambda d, n: steps.append((d, n)))
    assert _bpp(e1, crop) <= target
    assert steps and steps[-1][0] <= steps[-1][1]  # the search ran and reported its steps
    assert _psnr(e1, crop) >= _psnr(e0, crop)
    assert ImageCodec.info(e1)["quality"] == pytest.approx(q1, abs=1e-3)


def test_psnr_target_with_effort_reaches_it_in_no_more_bytes(codec, crop, short_effort):
    q = 5.5
    target = _psnr(codec.encode(crop, q), crop) - 0.05
    e0, _ = codec.encode_to_target(crop, psnr=target)
    e1, _ = codec.encode_to_target(crop, psnr=target, effort=1)
    assert _psnr(e1, crop) >= target
    assert len(e1) <= len(e0)
    assert e1 == codec.encode_to_target(crop, psnr=target, effort=1)[0]  # seeded: the same file again


def test_target_with_unknown_effort_is_refused(codec, crop):
    with pytest.raises(ValueError, match="effort"):
        codec.encode_to_target(crop, bpp=1.0, effort=latent_search.MAX_EFFORT + 1)


def test_cli_bpp_with_effort(tmp_path, crop):
    crop.save(tmp_path / "crop.png")
    out = tmp_path / "c.lcd"
    target = 1.2
    # a subprocess runs the real effort 1 (20 steps); the crop is small
    res = subprocess.run([sys.executable, "-m", "lcodec.cli.main", "--threads", "1", "encode",
                          str(tmp_path / "crop.png"), "-o", str(out), "--bpp", str(target), "--effort", "1"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert _bpp(out.read_bytes(), crop) <= target
    assert "bpp" in res.stdout
