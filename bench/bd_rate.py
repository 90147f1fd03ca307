"""Bjontegaard delta rate and delta PSNR between two rate-distortion curves.

BD-rate: the mean difference of log-rate over the overlapping quality range, as a percentage
(negative = the test curve needs fewer bits than the anchor for the same quality). BD-PSNR: the
mean quality difference over the overlapping log-rate range. Interpolation of each curve:

* ``pchip`` (default): piecewise cubic Hermite, monotone, no overshoot (as in recent JVET/AOM tools);
* ``akima``: Akima spline, also local and overshoot-resistant;
* ``cubic``: the classic VCEG-M33 least-squares cubic polynomial (needs >= 4 points per curve),
  for comparison with numbers in papers.

The two curves may have different numbers of points. When the curves do not overlap enough the
functions raise :class:`InsufficientOverlap` instead of extrapolating.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

METHODS = ("pchip", "akima", "cubic")
DEFAULT_MIN_OVERLAP = 0.1


class InsufficientOverlap(ValueError):
    """The two curves share too little of the axis being integrated over."""


def _check_rates(*rates: Sequence[float]) -> None:
    """Rates enter as logs: every one must be positive."""
    for r in rates:
        if np.any(np.asarray(r, dtype=np.float64) <= 0):
            raise ValueError("rates must be positive")


def _prepare(x: Sequence[float], y: Sequence[float], what: str) -> tuple[np.ndarray, np.ndarray]:
    """Sort a curve by x, check it is usable (finite, >= 2 points, no repeated x)."""
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if xa.ndim != 1 or xa.shape != ya.shape:
        raise ValueError(f"{what}: rate and quality lists must have the same length")
    if xa.size < 2:
        raise ValueError(f"{what}: need at least 2 points, got {xa.size}")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise ValueError(f"{what}: non-finite values")
    order = np.argsort(xa, kind="stable")
    xa, ya = xa[order], ya[order]
    if np.any(np.diff(xa) <= 0):
        raise ValueError(f"{what}: repeated values on the integration axis")
    return xa, ya


def _integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str) -> float:
    """Integral over [lo, hi] of the curve y(x) interpolated (or fitted) with `method`."""
    if method == "pchip":
        from scipy.interpolate import PchipInterpolator

        return float(PchipInterpolator(x, y).integrate(lo, hi))
    if method == "akima":
        from scipy.interpolate import Akima1DInterpolator

        if x.size < 3:  # Akima needs 3 points; 2 points: the straight line is the only honest curve
            return float(np.interp([lo, hi], x, y).mean() * (hi - lo))
        return float(Akima1DInterpolator(x, y).integrate(lo, hi))
    if method == "cubic":
        if x.size < 4:
            raise ValueError("cubic fit needs at least 4 points per curve")
        poly = np.polyint(np.polyfit(x, y, 3))
        return float(np.polyval(poly, hi) - np.polyval(poly, lo))
    raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def _mean_difference(xa: np.ndarray, ya: np.ndarray, xb: np.ndarray, yb: np.ndarray, method: str,
                     min_overlap: float, axis: str) -> float:
    """Mean of (yb - ya) over the overlap of the two x ranges."""
    lo, hi = max(xa[0], xb[0]), min(xa[-1], xb[-1])
    span = min(xa[-1] - xa[0], xb[-1] - xb[0])
    if hi <= lo:
        raise InsufficientOverlap(f"the curves do not overlap in {axis}")
    if (hi - lo) < min_overlap * span:
        raise InsufficientOverlap(f"the curves overlap on only {100 * (hi - lo) / span:.1f} % of the "
                                  f"shorter {axis} range (< {100 * min_overlap:.0f} %)")
    return (_integral(xb, yb, lo, hi, method) - _integral(xa, ya, lo, hi, method)) / (hi - lo)


def bd_rate(rate_anchor: Sequence[float], quality_anchor: Sequence[float], rate_test: Sequence[float],
            quality_test: Sequence[float], method: str = "pchip",
            min_overlap: float = DEFAULT_MIN_OVERLAP) -> float:
    """BD-rate of the test curve against the anchor, in percent (negative = test saves bits).

    `quality` is PSNR in dB (or any quality on a dB-like scale, e.g. MS-SSIM dB); rates must be > 0.
    Raises InsufficientOverlap when the quality ranges overlap on less than `min_overlap` of the
    shorter range.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    _check_rates(rate_anchor, rate_test)
    qa, la = _prepare(quality_anchor, np.log(np.asarray(rate_anchor, dtype=np.float64)), "anchor")
    qb, lb = _prepare(quality_test, np.log(np.asarray(rate_test, dtype=np.float64)), "test")
    diff = _mean_difference(qa, la, qb, lb, method, min_overlap, "quality")
    return float((np.exp(diff) - 1.0) * 100.0)


def bd_psnr(rate_anchor: Sequence[float], quality_anchor: Sequence[float], rate_test: Sequence[float],
            quality_test: Sequence[float], method: str = "pchip",
            min_overlap: float = DEFAULT_MIN_OVERLAP) -> float:
    """BD-PSNR (BD-quality) of the test curve against the anchor, in dB (positive = test better).

    Raises InsufficientOverlap when the log-rate ranges overlap on less than `min_overlap` of the
    shorter range.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    _check_rates(rate_anchor, rate_test)
    la, qa = _prepare(np.log(np.asarray(rate_anchor, dtype=np.float64)), quality_anchor, "anchor")
    lb, qb = _prepare(np.log(np.asarray(rate_test, dtype=np.float64)), quality_test, "test")
    return float(_mean_difference(la, qa, lb, qb, method, min_overlap, "rate"))


def rate_differences(rate_anchor: Sequence[float], quality_anchor: Sequence[float], rate_test: Sequence[float],
                     quality_test: Sequence[float]) -> list[tuple[float, float, float | None, float | None]]:
    """Per test point: (rate, quality, anchor rate at that quality, rate difference in %).

    Shows where along the curve the test codec wins or loses, which one BD-rate averages away. The
    anchor's log-rate is interpolated over quality with pchip; test points outside the anchor's
    quality range get None (never extrapolated).
    """
    from scipy.interpolate import PchipInterpolator

    _check_rates(rate_anchor, rate_test)
    qa, la = _prepare(quality_anchor, np.log(np.asarray(rate_anchor, dtype=np.float64)), "anchor")
    rb, qb = _prepare(rate_test, quality_test, "test")
    curve = PchipInterpolator(qa, la)
    rows: list[tuple[float, float, float | None, float | None]] = []
    for r, q in zip(rb.tolist(), qb.tolist()):
        if qa[0] <= q <= qa[-1]:
            ra = float(np.exp(curve(q)))
            rows.append((r, q, ra, (r / ra - 1.0) * 100.0))
        else:
            rows.append((r, q, None, None))
    return rows
