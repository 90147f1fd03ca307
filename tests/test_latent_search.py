"""Encoder effort (latent search): real files that today's decoder reads, reproducible, and never a worse
rate-distortion trade-off than effort 0; --effort on the command line."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import lcodec.codec.latent_search as latent_search
from lcodec.cli.main import main
from lcodec.codec import ImageCodec
from lcodec.codec.quality import lambda_for

ROOT = Path(__file__).resolve().parents[1]
QUALITY = 8.0


@pytest.fixture()
def short_effort(monkeypatch):
    """Effort 1 with 16 iterations: enough to improve this crop, quick enough for a unit test."""
    monkeypatch.setitem(latent_search.EFFORT_ITERATIONS, 1, 16)


def _real_loss(blob: bytes, decoded: Image.Image, original: Image.Image, quality: float) -> float:
    """The RD loss training minimises, measured on the file: its real bits and decoded pixels."""
    a = np.asarray(original).astype(np.float64)
    mse = float(np.mean((np.asarray(decoded).astype(np.float64) - a) ** 2)) / 255.0**2
    return float(lambda_for(torch.tensor([quality]))) * 255.0**2 * mse + 8 * len(blob) / (a.shape[0] * a.shape[1])


def test_effort_file_decodes_and_beats_effort_0(codec, crop, short_effort):
    steps: list[tuple[int, int]] = []
    e0 = codec.encode(crop, QUALITY)
    e1 = codec.encode(crop, QUALITY, effort=1, progress=lambda d, n: steps.append((d, n)))
    assert steps[-1] == (16, 16)
    plain = ImageCodec.default()  # a fresh decoder: nothing cached from the search
    d0, d1 = plain.decode(e0), plain.decode(e1)
    assert d1.size == crop.size and d1.mode == "RGB"
    assert e1 != e0
    assert _real_loss(e1, d1, crop, QUALITY) < _real_loss(e0, d0, crop, QUALITY)


def test_search_keeps_the_best_hard_rounded_iterate(codec, crop):
    from lcodec.codec.transforms import HYPER_STRIDE, from_pixels, pad_to_multiple

    m = codec.model
    x = from_pixels(np.asarray(crop), "cpu").unsqueeze(0)
    with torch.no_grad():
        y = m.g_a(pad_to_multiple(x, HYPER_STRIDE)) * m.gain.gain(torch.tensor([QUALITY]))
    result = latent_search.search_latents(m, x, y, QUALITY, latent_search.SearchConfig(iterations=8, check_every=2))
    start = latent_search.hard_loss(m, x, y, m.h_a(y), QUALITY)[0]
    assert result.start_loss == pytest.approx(start)
    assert result.loss == min(v for _, v in result.history) <= start
    # the kept latents score what the search says they score, and are already on the coder's grid
    again, snapped = latent_search.hard_loss(m, x, result.y, result.z, QUALITY)
    assert again == pytest.approx(result.loss, rel=1e-5)
    assert torch.equal(snapped, result.y) and torch.equal(result.z, torch.round(result.z))
    # a search that cannot improve (no steps at all) codes the g_a latents
    none = latent_search.search_latents(m, x, y, QUALITY, latent_search.SearchConfig(iterations=0))
    assert none.best_iteration == 0 and none.loss == start


def test_effort_is_reproducible(codec, crop, short_effort):
    assert codec.encode(crop, 5.5, effort=1) == codec.encode(crop, 5.5, effort=1)


def test_tiled_effort_searches_tile_by_tile(codec, eval_images, monkeypatch):
    monkeypatch.setitem(latent_search.EFFORT_ITERATIONS, 1, 2)
    with Image.open(eval_images[1]) as im:
        img = Image.fromarray(np.asarray(im.convert("RGB"))[:200, :300])
    steps: list[tuple[int, int]] = []
    blob = codec.encode(img, 3.0, tile=256, effort=1, progress=lambda d, n: steps.append((d, n)))
    assert steps[-1] == (4, 4)  # two tiles of 256 px across, one down
    assert codec.decode(blob).size == img.size


def test_unknown_effort_is_refused(codec, crop):
    with pytest.raises(ValueError, match="effort"):
        codec.encode(crop, 4.0, effort=latent_search.MAX_EFFORT + 1)


@pytest.fixture()
def crop_png(tmp_path, crop) -> Path:
    crop.save(tmp_path / "crop.png")
    return tmp_path / "crop.png"


@pytest.mark.parametrize("args, words", [
    (["--bpp", "0", "--effort", "1"], "--bpp"),
    (["--effort", "9"], "--effort"),
])
def test_cli_effort_errors_are_one_line(tmp_path, crop_png, args, words):
    out = tmp_path / "x.lcd"
    res = subprocess.run([sys.executable, "-m", "lcodec.cli.main", "encode", str(crop_png), "-o", str(out), *args],
                         capture_output=True, text=True)
    assert res.returncode != 0
    assert len(res.stderr.strip().splitlines()) == 1 and words in res.stderr
    assert not out.exists()


def test_cli_effort_encodes(tmp_path, crop_png, short_effort):
    out = tmp_path / "e.lcd"
    res = CliRunner().invoke(main, ["encode", str(crop_png), "-o", str(out), "-q", "8", "--effort", "1"])
    assert res.exit_code == 0, res.output
    assert out.read_bytes() == ImageCodec.default().encode(Image.open(crop_png), 8.0, effort=1)


def test_sigint_during_effort_encode_leaves_no_output(tmp_path, eval_images):
    with Image.open(eval_images[0]) as im:
        im.convert("RGB").crop((0, 0, 384, 256)).save(tmp_path / "in.png")
    out = tmp_path / "in.lcd"
    proc = subprocess.Popen([sys.executable, "-m", "lcodec.cli.main", "encode", str(tmp_path / "in.png"),
                             "-o", str(out), "--effort", str(latent_search.MAX_EFFORT)], cwd=tmp_path,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(5.0)
    assert proc.poll() is None, "finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_search_schedule_checks_late_and_steps_with_the_gain():
    c = latent_search.SearchConfig(iterations=20, check_every=4)
    assert [t + 1 for t in range(20) if c.checks(t)] == [8, 12, 16, 20]  # from a quarter on, and the last
    assert latent_search.SearchConfig(iterations=6, check_every=4).checks(5)  # the last always
    # higher qualities (larger gains) take larger steps; gain_power 0 is a fixed step
    assert c.step(0, 2.0) > c.step(0, 1.0) > c.step(0, 0.3)
    assert c.step(0, 1.0) == pytest.approx(c.lr)
    fixed = latent_search.SearchConfig(iterations=5, lr=0.02, gain_power=0.0, lr_end=0.005)
    assert fixed.step(0, 3.0) == pytest.approx(0.02) and fixed.step(4, 3.0) == pytest.approx(0.005)


def test_patience_returns_to_the_best_iterate_with_a_smaller_step(codec, crop):
    from lcodec.codec.transforms import HYPER_STRIDE, from_pixels, pad_to_multiple

    m = codec.model
    x = from_pixels(np.asarray(crop), "cpu").unsqueeze(0)
    with torch.no_grad():
        y = m.g_a(pad_to_multiple(x, HYPER_STRIDE)) * m.gain.gain(torch.tensor([QUALITY]))
    # a step far too large for these latents: every iterate is worse than g_a's ...
    wild = latent_search.SearchConfig(iterations=16, lr=40.0, check_every=1, check_after=0.0)
    assert latent_search.search_latents(m, x, y, QUALITY, wild).best_iteration == 0
    # ... unless each failed check returns to the best iterate and halves the step, until it is small enough
    tamed = latent_search.search_latents(m, x, y, QUALITY, dataclasses.replace(wild, patience=1))
    assert tamed.best_iteration > 0 and tamed.loss < tamed.start_loss
