"""Exact g_a (fixed point): close to the float transform, and the same integers however it is summed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lcodec.codec.exact_analysis import ExactAnalysis, _gdn_parameters
from lcodec.codec.image_codec import ImageCodec
from lcodec.codec.transforms import GDN, AnalysisTransform, from_pixels
from lcodec.entropy_models import fixed_point
from lcodec.entropy_models.fixed_point import ExactGDN, to_fixed, to_real

from conftest import SAMPLE


@pytest.fixture(scope="module")
def g_a():
    return ImageCodec.default().model.g_a


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("RGB"))[:128, :192].copy()


def test_exact_latent_is_close_to_the_float_one(g_a, crop):
    exact = to_real(ExactAnalysis(g_a)(crop))
    with torch.no_grad():
        ref = g_a(from_pixels(crop).unsqueeze(0))
    diff = (exact - ref).abs()
    assert exact.shape == ref.shape == (1, ref.shape[1], 8, 12)
    assert float(diff.mean()) < 0.01 and float(diff.max()) < 0.1
    assert float(ref.abs().max()) > 1.0  # a real latent, not one that is near zero everywhere


def test_same_integers_with_any_thread_count_and_summation_split(g_a, crop, monkeypatch):
    ea = ExactAnalysis(g_a)
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = ea(crop)
        torch.set_num_threads(2)
        two = ea(crop)
        monkeypatch.setattr(fixed_point.ExactConv, "CHUNK", 97)  # other matrix shapes, other BLAS splits
        split = ea(crop)
    finally:
        torch.set_num_threads(saved)
    assert torch.equal(one, two) and torch.equal(one, split)
    assert torch.equal(one, torch.round(one))


def test_exact_gdn_follows_float_gdn_and_its_diagonal_shortcut_is_exact():
    torch.manual_seed(0)
    layer = GDN(8)
    with torch.no_grad():
        layer.gamma.add_(0.2 * torch.rand(8, 8))  # off-diagonal terms: the matrix path
        layer.beta.mul_(1.5)
    x = torch.randn(1, 8, 5, 7) * 3
    beta, gamma = _gdn_parameters(layer)
    full = ExactGDN(beta, gamma, torch.device("cpu"))
    assert not full.diagonal
    with torch.no_grad():
        want = layer(x)
    got = to_real(full(to_fixed(x)))
    assert float((got - want).abs().max()) < 5e-3
    # a diagonal gamma: the per-channel product gives the integers the matrix product gives
    diag = torch.diag(torch.diag(gamma))
    short = ExactGDN(beta, diag, torch.device("cpu"))
    assert short.diagonal
    long = ExactGDN(beta, diag, torch.device("cpu"))
    long.diagonal, long.gamma = False, torch.round(diag * (1 << fixed_point.GFRAC))
    assert torch.equal(short(to_fixed(x)), long(to_fixed(x)))


def test_inverse_gdn_and_oversized_gamma_are_refused():
    t = AnalysisTransform(4, 4)
    t.net[1] = GDN(4, inverse=True)
    with pytest.raises(ValueError, match="no exact version"):
        ExactAnalysis(t)
    with pytest.raises(ValueError, match="too large"):
        ExactGDN(torch.ones(4), torch.full((4, 4), 2.0**20), torch.device("cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (GPU and CPU must agree)")
def test_gpu_and_cpu_give_the_same_integers(g_a, crop):
    cpu = ExactAnalysis(g_a)(crop)
    gpu = ExactAnalysis(g_a, "cuda")(crop).cpu()
    assert torch.equal(cpu, gpu)
