"""lcodec's GDN and factorized density are CompressAI's computations, checked bit for bit on the bundled
weights; where lcodec departs from CompressAI (the factorized likelihood's sign trick) the test shows
what the departure buys. Why lcodec keeps its own copies: docs/design.md, "What comes from compressai"."""

from __future__ import annotations

import warnings

import pytest
import torch

from lcodec.codec import registry
from lcodec.codec.transforms import GDN

with warnings.catch_warnings():  # compressai 1.2 scripts functions at import (a torch FutureWarning)
    warnings.simplefilter("ignore", FutureWarning)
    pytest.importorskip("compressai")
    from compressai.entropy_models import EntropyBottleneck
    from compressai.layers import GDN as CompressAIGDN
    from compressai.ops.parametrizers import NonNegativeParametrizer


def _compressai_gdn(channels: int, inverse: bool) -> CompressAIGDN:
    """CompressAI's GDN with lcodec's reparametrisation: offset 2**-9, i.e. a pedestal of 2**-18."""
    gdn = CompressAIGDN(channels, inverse=inverse)
    gdn.beta_reparam = NonNegativeParametrizer(minimum=1e-6, reparam_offset=2.0**-9)
    gdn.gamma_reparam = NonNegativeParametrizer(reparam_offset=2.0**-9)
    return gdn


def _gdns(model: torch.nn.Module) -> list[GDN]:
    return [m for m in model.modules() if isinstance(m, GDN)]


def test_gdn_is_compressai_gdn_at_lcodecs_offset_bit_for_bit():
    model = registry.get_model(None).model
    layers = _gdns(model)
    assert len(layers) == 6  # three in g_a, three inverse in g_s
    gen = torch.Generator().manual_seed(0)
    for ours in layers:
        c = ours.beta.shape[0]
        theirs = _compressai_gdn(c, ours.inverse)
        theirs.load_state_dict(ours.state_dict(), strict=False)  # the same names: beta, gamma
        assert torch.equal(theirs.beta, ours.beta) and torch.equal(theirs.gamma, ours.gamma)
        x = torch.randn(2, c, 24, 20, generator=gen) * torch.logspace(-3, 2, 20)  # small to large inputs
        assert torch.equal(theirs(x), ours(x))
    fresh, theirs = GDN(7), _compressai_gdn(7, False)  # and CompressAI's initial values at that offset
    assert torch.equal(fresh.beta, theirs.beta_reparam.init(torch.ones(7)))
    assert torch.equal(fresh.gamma, theirs.gamma_reparam.init(0.1 * torch.eye(7)))


def test_stock_compressai_gdn_reads_lcodecs_parameters_differently():
    """At CompressAI's default offset (pedestal 2**-36) the stored values mean other betas and gammas:
    weights would have to be converted, and floats would no longer match bit for bit."""
    ours = _gdns(registry.get_model(None).model)[0]
    theirs = CompressAIGDN(ours.beta.shape[0])
    theirs.load_state_dict(ours.state_dict(), strict=False)
    x = torch.randn(1, ours.beta.shape[0], 8, 8, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(theirs(x), ours(x))


def _bottleneck_of(prior) -> EntropyBottleneck:
    eb = EntropyBottleneck(prior.channels, filters=(3, 3, 3))
    missing, unexpected = eb.load_state_dict(prior.state_dict(), strict=False)
    assert not [k for k in missing if k.startswith(("matrices", "biases", "factors"))]
    assert unexpected == ["cdf_table"]  # the same parameter names and shapes, lcodec's tables besides
    return eb


def test_factorized_density_is_compressai_entropy_bottlenecks_bit_for_bit():
    prior = registry.get_model(None).model.z_prior
    eb = _bottleneck_of(prior)
    v = torch.linspace(-60, 60, 2401).view(1, 1, -1).expand(prior.channels, 1, -1).contiguous()
    with torch.no_grad():
        assert torch.equal(eb._logits_cumulative(v, stop_gradient=False), prior._logits_cumulative(v))


def test_the_sign_trick_keeps_the_upper_tail_that_compressais_likelihood_rounds_away():
    """CompressAI 1.2's `_likelihood` is sigmoid(upper) - sigmoid(lower): far above a channel's median
    both are 1 in float32 and the bin gets 0. lcodec takes both on the side where they are small."""
    prior = registry.get_model(None).model.z_prior
    eb = _bottleneck_of(prior)
    v = torch.arange(0, 200, dtype=torch.float32).view(1, 1, -1).expand(prior.channels, 1, -1).contiguous()
    with torch.no_grad():
        ours = prior._likelihood_cn(v)
        theirs = eb._likelihood(v)[0]
        exact = prior.double()._likelihood_cn(v.double())
    prior.float()
    tail = (exact > 1e-12) & (exact < 1e-7)  # a few sigmas out: mass the tables and the rate should see
    assert tail.sum() > 0
    rel = lambda p: ((p.double() - exact).abs() / exact)[tail]  # noqa: E731
    assert rel(ours).max() < 1e-3
    assert rel(theirs).max() > 0.5  # rounded to 0 (or to a multiple of 2**-24)
