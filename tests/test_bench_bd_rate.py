"""BD-rate / BD-PSNR against hand-worked values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lcodec.bench.bd_rate import METHODS, InsufficientOverlap, bd_psnr, bd_rate, rate_differences

RATES = np.array([0.1, 0.2, 0.4, 0.8, 1.6])
# PSNR linear in log2(rate): 4 dB per doubling. Every method reproduces a straight line exactly.
PSNRS = 30.0 + 4.0 * np.log2(RATES / 0.1)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("factor", [0.5, 0.8, 1.25])
def test_scaled_rate_gives_exact_bd_rate(method: str, factor: float) -> None:
    # Same quality at `factor` times the rate everywhere: BD-rate = (factor - 1) * 100 exactly,
    # and BD-PSNR = -4 dB * log2(factor) for this 4 dB-per-doubling curve.
    assert bd_rate(RATES, PSNRS, RATES * factor, PSNRS, method=method) == pytest.approx((factor - 1) * 100, abs=1e-9)
    assert bd_psnr(RATES, PSNRS, RATES * factor, PSNRS, method=method) == pytest.approx(
        -4.0 * math.log2(factor), abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_identical_curves_give_zero(method: str) -> None:
    assert bd_rate(RATES, PSNRS, RATES, PSNRS, method=method) == pytest.approx(0.0, abs=1e-12)
    assert bd_psnr(RATES, PSNRS, RATES, PSNRS, method=method) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("method", ["pchip", "akima"])
def test_curves_with_different_numbers_of_points(method: str) -> None:
    # The test curve samples the same line at 7 other points, shifted to 0.9x rate.
    r = np.geomspace(0.13, 1.4, 7)
    q = 30.0 + 4.0 * np.log2(r / 0.1)
    assert bd_rate(RATES, PSNRS, r * 0.9, q, method=method) == pytest.approx(-10.0, abs=1e-9)


def test_unsorted_input_is_accepted() -> None:
    order = [3, 0, 4, 1, 2]
    assert bd_rate(RATES[order], PSNRS[order], RATES * 0.5, PSNRS) == pytest.approx(-50.0, abs=1e-9)


def test_hand_worked_two_point_offset() -> None:
    # Anchor log-rate is linear in PSNR; the test curve uses e^0.1 times more rate only at the top:
    # over [30, 40], log-rate difference rises linearly 0 -> 0.1, mean 0.05 -> BD-rate = e^0.05 - 1.
    qa = [30.0, 40.0]
    ra = [0.2, 1.0]
    rb = [0.2, 1.0 * math.exp(0.1)]
    assert bd_rate(ra, qa, rb, qa, method="pchip") == pytest.approx((math.exp(0.05) - 1) * 100, rel=1e-9)


def test_no_overlap_is_reported() -> None:
    with pytest.raises(InsufficientOverlap):
        bd_rate(RATES, PSNRS, RATES, PSNRS + 100.0)
    with pytest.raises(InsufficientOverlap):
        bd_psnr(RATES, PSNRS, RATES * 1000.0, PSNRS)


def test_tiny_overlap_is_reported() -> None:
    # The ranges share 0.1 dB of 16 dB: far below the 10 % minimum.
    with pytest.raises(InsufficientOverlap):
        bd_rate(RATES, PSNRS, RATES, PSNRS + 15.9)
    assert bd_rate(RATES, PSNRS, RATES, PSNRS + 15.9, min_overlap=0.0) < 0


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError):
        bd_rate([0.1], [30.0], RATES, PSNRS)
    with pytest.raises(ValueError):
        bd_rate(RATES, PSNRS, RATES, PSNRS, method="spline")
    with pytest.raises(ValueError):
        bd_rate(RATES[:3], PSNRS[:3], RATES[:3], PSNRS[:3], method="cubic")  # cubic needs 4 points
    with pytest.raises(ValueError):
        bd_rate(-RATES, PSNRS, RATES, PSNRS)


def test_rate_differences_per_point_and_no_extrapolation() -> None:
    # the test codec needs 0.9x the rate at every quality on the anchor's range; its last point lies
    # beyond the anchor's best quality and gets no figure rather than an extrapolated one
    rates = np.append(RATES[1:] * 0.9, 4.0)
    psnrs = np.append(PSNRS[1:], PSNRS[-1] + 3.0)
    rows = rate_differences(RATES, PSNRS, rates[::-1], psnrs[::-1])
    assert [r[0] for r in rows] == pytest.approx(sorted(rates))
    for r, q, ra, d in rows[:-1]:
        assert ra == pytest.approx(r / 0.9, rel=1e-9) and d == pytest.approx(-10.0, abs=1e-9)
    assert rows[-1][2:] == (None, None)
    with pytest.raises(ValueError):
        rate_differences(RATES, PSNRS, [0.0, 0.1], [30.0, 31.0])
