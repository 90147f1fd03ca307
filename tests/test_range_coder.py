"""The range coder: exact round trips, escapes for out-of-range values, corrupt data errors."""

from __future__ import annotations

import numpy as np
import pytest

from lcodec.entropy_models.cdf_tables import PRECISION, CdfTables, quantize_pmf
from lcodec.entropy_models.factorized import FactorizedPrior
from lcodec.entropy_models.gaussian import GaussianConditional
from lcodec.entropy_models.range_coder import RangeDecoder, RangeEncoder, StreamError


@pytest.fixture(scope="module")
def gaussian_tables() -> CdfTables:
    g = GaussianConditional()
    g.build_tables()
    return g.tables


def _roundtrip(symbols, indexes, tables):
    enc = RangeEncoder()
    enc.encode(symbols, indexes, tables)
    data = enc.finish()
    dec = RangeDecoder(data)
    out = dec.decode(indexes, tables)
    assert dec.exhausted()
    return out, data


def test_tables_are_normalised(gaussian_tables):
    assert gaussian_tables.count == 64
    for k in range(gaussian_tables.count):
        n = gaussian_tables.lengths[k]
        assert gaussian_tables.freqs[k, :n].sum() == 1 << PRECISION
        assert (gaussian_tables.freqs[k, :n] > 0).all()


def test_quantize_pmf_keeps_every_symbol_codable():
    freqs = quantize_pmf(np.array([1.0, 0.0, 1e-12, 0.5]), tail_mass=0.0)
    assert freqs.sum() == 1 << PRECISION and (freqs >= 1).all() and len(freqs) == 5


def test_random_symbols_roundtrip_exactly(gaussian_tables):
    rng = np.random.default_rng(1)
    n = 50_000
    idx = rng.integers(0, gaussian_tables.count, n)
    scales = GaussianConditional().scale_table.numpy()[idx]
    sym = np.round(rng.standard_normal(n) * scales).astype(np.int64)
    out, data = _roundtrip(sym, idx, gaussian_tables)
    assert np.array_equal(out, sym)
    # the coder must spend (almost) exactly the information content the tables assign
    t = gaussian_tables
    pos = sym - t.offsets[idx]
    inside = (pos >= 0) & (pos < t.lengths[idx] - 1)
    ideal = -np.log2(t.freqs[idx[inside], pos[inside]] / 2**PRECISION).sum()
    assert inside.all()
    assert ideal <= 8 * len(data) <= ideal * 1.002 + 64


def test_out_of_range_values_are_escaped_not_clipped(gaussian_tables):
    rng = np.random.default_rng(2)
    idx = np.zeros(1000, dtype=np.int64)  # the narrowest table
    sym = rng.integers(-2, 3, 1000)
    sym[::97] = [10**6, -(10**6), 2**31 - 1, -(2**31), 7, -7, 40, -40, 123456, -99, 5][: len(sym[::97])]
    out, _ = _roundtrip(sym, idx, gaussian_tables)
    assert np.array_equal(out, sym)
    # beyond what the escape code carries: a clear error, not the coder library's KeyError
    with pytest.raises(ValueError, match="escape range"):
        _roundtrip(np.array([2**40]), np.zeros(1, dtype=np.int64), gaussian_tables)


def test_factorized_tables_roundtrip():
    prior = FactorizedPrior(4)
    prior.build_tables()
    rng = np.random.default_rng(3)
    sym = rng.integers(-20, 21, 4 * 64)
    idx = np.repeat(np.arange(4), 64)
    out, _ = _roundtrip(sym, idx, prior.tables)
    assert np.array_equal(out, sym)


def test_truncated_stream_is_detected(gaussian_tables):
    rng = np.random.default_rng(4)
    idx = rng.integers(0, gaussian_tables.count, 5000)
    sym = np.round(rng.standard_normal(5000) * 20).astype(np.int64)
    enc = RangeEncoder()
    enc.encode(sym, idx, gaussian_tables)
    data = enc.finish()
    with pytest.raises(StreamError):
        RangeDecoder(data[:-3])  # not a whole number of words
    dec = RangeDecoder(data[: len(data) // 2])
    try:
        out = dec.decode(idx, gaussian_tables)
    except StreamError:
        return
    assert not np.array_equal(out, sym)


def test_packed_tables_survive_a_state_dict(gaussian_tables):
    again = CdfTables.from_tensor(gaussian_tables.to_tensor())
    assert np.array_equal(again.freqs, gaussian_tables.freqs)
    assert np.array_equal(again.offsets, gaussian_tables.offsets)


def _table_cost_bits(sym: np.ndarray, idx: np.ndarray, t: CdfTables) -> np.ndarray:
    """What the coder spends on each symbol: its table entry, or the escape and its overflow code."""
    pos = sym - t.offsets[idx]
    esc = t.lengths[idx] - 1
    out = (pos < 0) | (pos >= esc)
    bits = -np.log2(t.freqs[idx, np.where(out, esc, pos)] / 2**PRECISION)
    u = np.where(pos < 0, 2 * (-pos - 1), 2 * (pos - esc) + 1)
    overflow = np.log2(33) + np.floor(np.log2(np.maximum(u, 0) + 1))
    return bits + np.where(out, overflow, 0.0)


def test_model_likelihood_is_what_the_coder_spends(gaussian_tables):
    import torch

    rng = np.random.default_rng(5)
    n = 40_000
    g = GaussianConditional()
    idx = rng.integers(0, gaussian_tables.count, n)
    scales = g.scale_table.numpy()[idx]
    # heavier tails than the Gaussian the tables assume: the latents of real images look like this
    sym = np.round(rng.standard_t(2.5, n) * scales).astype(np.int64)
    sym[::500] *= 40  # and some values far beyond any table's range
    lik = g.likelihood(torch.from_numpy(sym).float(), torch.zeros(n), torch.from_numpy(scales).float())
    est = -np.log2(lik.double().numpy())
    cost = _table_cost_bits(sym, idx, gaussian_tables)
    # every value, in range or escaped, to about a bit (integer frequencies are floored; the escape
    # estimate is smooth in the overflow), where a bare Gaussian charges far values 30 bits or more
    assert np.abs(est - cost).max() < 1.1
    _, data = _roundtrip(sym, idx, gaussian_tables)
    assert abs(8 * len(data) - est.sum()) < 0.005 * est.sum()
    outside = cost > 16
    assert outside.sum() > 50  # the test really exercises escapes


def test_factorized_likelihood_floor_matches_its_tables():
    import torch

    prior = FactorizedPrior(4)
    prior.build_tables()
    prior.eval()
    z = torch.arange(-30, 31, dtype=torch.float32).repeat(4, 1).view(1, 4, 1, 61)
    _, lik = prior(z)
    est = -np.log2(lik.detach().double().numpy().ravel())
    idx = np.repeat(np.arange(4), 61)
    cost = _table_cost_bits(z.numpy().astype(np.int64).ravel(), idx, prior.tables)
    inside = cost <= 16
    assert inside.sum() > 20 and np.abs(est[inside] - cost[inside]).max() < 1.1
    assert est.max() <= 16.0 + 1e-6  # a bare density would charge the far values ~30 bits
