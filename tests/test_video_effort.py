"""Encoder effort for videos: I-frames searched as images, P-frames against their decoded references;
real files that today's decoder reads, reproducible, and no worse in rate-distortion than effort 0."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import lcodec.codec.latent_search as latent_search
from lcodec.cli.main import main
from lcodec.codec.quality import lambda_for
from lcodec.codec.video_codec import VideoCodec
from lcodec.codec.video_search import search_p_frame

ROOT = Path(__file__).resolve().parents[1]
W, H, N = 128, 96, 4
QUALITY = 6.0


def _frames(n: int = N) -> list[np.ndarray]:
    """A real photo crop that pans right by 2 pixels per frame."""
    with Image.open(ROOT / "codec" / "samples" / "flower.png") as im:
        base = np.asarray(im.convert("RGB"))[150 : 150 + H, 150 : 150 + W + 2 * n]
    return [np.ascontiguousarray(base[:, 2 * i : 2 * i + W]) for i in range(n)]


@pytest.fixture(scope="module")
def codec() -> VideoCodec:
    return VideoCodec.default()


@pytest.fixture()
def short_effort(monkeypatch):
    """Effort 1 with 8 iterations: a real search, quick enough for a unit test."""
    monkeypatch.setitem(latent_search.EFFORT_ITERATIONS, 1, 8)


def _encode(codec: VideoCodec, frames: list[np.ndarray], effort: int) -> bytes:
    buf = io.BytesIO()
    codec.encode(iter(frames), buf, W, H, QUALITY, intra_period=0, effort=effort)
    return buf.getvalue()


def _rd(blob: bytes, frames: list[np.ndarray]) -> float:
    """The training loss of a whole clip on its real file: bits per pixel + lambda * 255^2 * MSE."""
    decoded = [f for _, f in VideoCodec.default().decode(io.BytesIO(blob))]  # a fresh decoder
    assert len(decoded) == len(frames)
    mse = np.mean([np.mean((d.astype(np.float64) - f) ** 2) for d, f in zip(decoded, frames)])
    return 8 * len(blob) / (W * H * len(frames)) + float(lambda_for(torch.tensor([QUALITY]))) * mse


def test_p_frame_search_keeps_its_best_and_codes_what_it_scored(codec):
    from lcodec.codec.transforms import from_pixels

    frames = _frames(3)
    ys = [codec._latent(f, QUALITY) for f in frames]
    with torch.no_grad():
        _, ref2 = codec.model.compress_latent(ys[0])
        _, ref1 = codec.temporal.compress(ys[1], ref2, ref2)
    x = from_pixels(frames[2], "cpu").unsqueeze(0)
    result = search_p_frame(codec.model, codec.temporal, x, ys[2], ref1, ref2, QUALITY,
                            latent_search.SearchConfig(iterations=8, check_every=2))
    assert result.loss == min(v for _, v in result.history) <= result.start_loss
    assert result.best_iteration > 0  # the search improved on the g_a latents of this frame

    def real_loss(y: torch.Tensor, z: torch.Tensor | None) -> float:
        """The loss on what the coder really writes and the decoder really rebuilds."""
        with torch.no_grad():
            streams, y_hat = codec.temporal.compress(y, ref1, ref2, z=z)
            rgb = codec.images._synthesise(y_hat, QUALITY, H, W)
        mse = np.mean((rgb.astype(np.float64) - frames[2]) ** 2)
        return float(lambda_for(torch.tensor([QUALITY]))) * mse + 8 * sum(map(len, streams)) / (H * W)

    searched = real_loss(result.y, result.z)
    assert searched < real_loss(ys[2], None)
    # the coder codes the integers the search scored: its real loss is the one the search tracked
    assert searched == pytest.approx(result.loss, rel=0.03)


def test_effort_video_decodes_and_beats_effort_0(codec, short_effort):
    frames = _frames()
    e0, e1 = _encode(codec, frames, 0), _encode(codec, frames, 1)
    assert e1 != e0
    assert _rd(e1, frames) < _rd(e0, frames)
    assert _encode(codec, frames, 1) == e1  # seeded: the same file again


def test_unknown_effort_is_refused_for_videos(codec):
    with pytest.raises(ValueError, match="effort"):
        _encode(codec, _frames(1), latent_search.MAX_EFFORT + 1)


def test_cli_video_effort(tmp_path, short_effort):
    from fractions import Fraction

    from lcodec.codec.video_io import FrameSink

    clip = tmp_path / "clip.mkv"
    sink = FrameSink(clip, W, H, Fraction(25), chroma="rgb")
    for f in _frames(3):
        sink.write(f)
    sink.close()
    out = tmp_path / "clip.lcd"
    res = CliRunner().invoke(main, ["encode", str(clip), "-o", str(out), "-q", str(QUALITY), "--effort", "1"])
    assert res.exit_code == 0, res.output
    buf = io.BytesIO()
    VideoCodec.default().encode(iter(_frames(3)), buf, W, H, QUALITY, effort=1)
    assert out.read_bytes() == buf.getvalue()
