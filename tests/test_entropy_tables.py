"""The entropy models' shared table plumbing (`cdf_tables.TabledEntropyModel`), the exact-engine cache
(`fixed_point.CachedExactEngine`) and the Gaussian tables' normal CDF."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
import torch

from lcodec.codec import registry
from lcodec.codec.image_model import ImageModel, ModelConfig
from lcodec.entropy_models import gaussian
from lcodec.entropy_models.cdf_tables import CdfTables, TabledEntropyModel
from lcodec.entropy_models.factorized import FactorizedPrior
from lcodec.entropy_models.gaussian import GaussianConditional
from lcodec.entropy_models.spatiotemporal import SpatiotemporalEntropyModel

SMALL = ModelConfig(n=8, m=10, nz=6, hyper=8, slices=2, hidden=8, levels=2)


@pytest.mark.parametrize("make, count", [(lambda: FactorizedPrior(5), 5), (GaussianConditional, 64)],
                         ids=["factorized", "gaussian"])
def test_both_entropy_models_keep_their_tables_in_the_state_dict(make, count):
    built = make()
    assert isinstance(built, TabledEntropyModel)
    with pytest.raises(RuntimeError, match="not built"):
        built.tables  # noqa: B018
    built.build_tables()
    assert built.tables.count == count

    loaded = make()
    loaded.cdf_table = torch.zeros_like(built.cdf_table)
    loaded.load_state_dict(built.state_dict())
    loaded.load_tables_from_buffer()
    for field in ("freqs", "lengths", "offsets"):
        assert np.array_equal(getattr(loaded.tables, field), getattr(built.tables, field))


@pytest.mark.parametrize("make", [lambda: FactorizedPrior(5), GaussianConditional], ids=["factorized", "gaussian"])
def test_a_table_set_of_the_wrong_size_is_refused(make):
    model = make()
    model.build_tables()
    t = model.tables
    fewer = CdfTables(freqs=t.freqs[:-1], lengths=t.lengths[:-1], offsets=t.offsets[:-1])
    with pytest.raises(ValueError, match="table count"):
        model.set_tables(fewer)
    model.cdf_table = fewer.to_tensor()
    with pytest.raises(ValueError, match="table count"):
        model.load_tables_from_buffer()


def test_the_bundled_gaussian_tables_rebuild_exactly():
    """The shipped integer tables come back bit for bit from the scale table alone (the CDF, the table
    radii from NormalDist.inv_cdf, quantisation), and the radii the likelihood charges escapes from are
    the tables' own."""
    shipped = registry.get_model(None).model.context.gaussian
    fresh = GaussianConditional()
    fresh.scale_table = shipped.scale_table.clone()
    fresh.build_tables()
    assert torch.equal(fresh.cdf_table, shipped.cdf_table)
    assert np.array_equal(shipped.table_radii().numpy(), (shipped.tables.lengths - 2) / 2)


def test_the_table_cdf_is_accurate_in_both_tails_unlike_normaldist_cdf():
    """Why the tables keep 0.5 * erfc(-x / sqrt 2): NormalDist.cdf is 0.5 * (1 + erf(...)), which cancels
    in the lower tail; the radius multiplier does come from NormalDist.inv_cdf."""
    x = np.array([-6.5, -5.0, -3.0, 3.0, 5.0])
    exact = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x])  # erfc: full relative precision
    ours = gaussian._np_normal_cdf(x)
    assert np.array_equal(ours, exact)
    lower = x < 0
    nd = np.array([NormalDist().cdf(v) for v in x])
    assert np.max(np.abs(nd[lower] - exact[lower]) / exact[lower]) > 1e-8  # NormalDist loses digits there
    assert NormalDist().cdf(-gaussian._TAIL_MULT) == pytest.approx(gaussian._TABLE_TAIL / 2, rel=1e-6)


def _bump(module: torch.nn.Module) -> None:
    with torch.no_grad():
        next(module.parameters()).add_(0.0)  # an in-place step: the weights' version changes


@pytest.mark.parametrize("make", [lambda: ImageModel(SMALL), lambda: SpatiotemporalEntropyModel(10, 6, 8, 2, 8)],
                         ids=["image", "p-frame"])
def test_one_exact_engine_per_device_and_weights(make):
    model = make().eval()
    first = model.exact_engine("cpu")
    assert model.exact_engine(torch.device("cpu")) is first
    _bump(model)
    second = model.exact_engine("cpu")
    assert second is not first
    assert model.exact_engine("cpu") is second
