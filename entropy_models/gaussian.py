"""Conditional Gaussian entropy model with a fixed scale table (Ballé et al. 2018; Minnen et al. 2018).

A latent value y is coded as the integer round(y - mu); its probability is a Gaussian of scale sigma
integrated over the unit bin. For coding, sigma is replaced by the index of the nearest table scale at
or above it, and each table scale owns one integer pmf built once: encoder and decoder therefore only
have to agree on an index, never on a float probability.

The model's rate (training loss and `estimate_bits`) uses `GaussianConditional.likelihood`, the
probability the *coder* gives a value: the Gaussian bin mass plus the 2**-16 every table entry is
guaranteed, and beyond a table's range the escape's cost. A bare Gaussian charges tail values up to
30 bits that the tables code in at most 16 (+ the escape code), so it over-counted the real files by
1-4 % and taught the model to fear outliers the coder handles cheaply.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import torch

from .cdf_tables import PRECISION, TabledEntropyModel
from .range_coder import ESCAPE_LENGTH_CHOICES

SCALE_MIN = 0.11
SCALE_MAX = 80.0
SCALE_LEVELS = 64
_LIKELIHOOD_BOUND = 1e-9  # the bare Gaussian bin mass, for callers that want it alone
_TABLE_TAIL = 1e-9
#: Least probability the integer tables give any in-range symbol (and the escape): one count of 2**16.
TABLE_FLOOR = 2.0**-PRECISION


def default_scale_table() -> torch.Tensor:
    """Log-spaced scales from SCALE_MIN to SCALE_MAX."""
    return torch.exp(torch.linspace(math.log(SCALE_MIN), math.log(SCALE_MAX), SCALE_LEVELS))


def _std_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-x * (2**-0.5))


def gaussian_likelihood(y: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Probability mass of the unit bin around y under N(mean, scale^2) (y may be noisy or rounded)."""
    y, mean, scale = y.float(), mean.float(), torch.clamp(scale.float(), min=SCALE_MIN)
    v = torch.abs(y - mean)
    upper = _std_normal_cdf((0.5 - v) / scale)
    lower = _std_normal_cdf((-0.5 - v) / scale)
    return torch.clamp(upper - lower, min=_LIKELIHOOD_BOUND)


class GaussianConditional(TabledEntropyModel):
    """Holds the scale table and its integer pmfs; maps predicted scales to table indexes."""

    _what = "Gaussian conditional"

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scale_table", default_scale_table(), persistent=True)
        self._register_tables()

    def _table_count(self) -> int:
        return len(self.scale_table)

    def build_tables(self) -> None:
        """One pmf per table scale over [-R, R] with R covering all but ~1e-9 of the mass."""
        pmfs, offsets = [], []
        for s in self.scale_table.double().cpu().numpy():
            r = int(math.ceil(s * _TAIL_MULT))
            x = np.arange(-r, r + 1, dtype=np.float64)
            pmfs.append(_np_normal_cdf((x + 0.5) / s) - _np_normal_cdf((x - 0.5) / s))
            offsets.append(-r)
        self.set_pmfs(pmfs, offsets)

    def table_radii(self) -> torch.Tensor:
        """R of every table scale: its table codes -R..R directly and escapes anything beyond."""
        return torch.ceil(self.scale_table.double() * _TAIL_MULT).to(self.scale_table.dtype)

    def likelihood(self, y: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Probability the range coder gives y (noisy or rounded) with this mean and scale.

        Within the range of the table that `scale` selects: the Gaussian bin mass plus TABLE_FLOOR;
        beyond it: the escape symbol (TABLE_FLOOR) times a uniform choice of the overflow's bit
        count times the overflow bits (smoothed in the overflow so noisy training values have a
        gradient). Matches the coder's real cost to a fraction of a bit per value."""
        p = gaussian_likelihood(y, mean, scale)
        over = torch.abs(y.float() - mean.float()) - self.table_radii()[self.scale_indexes(scale)]
        escape = TABLE_FLOOR / ESCAPE_LENGTH_CHOICES / torch.clamp(2 * over, min=1.0)
        return torch.where(over <= 0.5, p + TABLE_FLOOR, escape)

    def scale_indexes(self, scale: torch.Tensor) -> torch.Tensor:
        """Index of the smallest table scale >= scale (the last one for anything larger)."""
        idx = torch.bucketize(scale.float().contiguous(), self.scale_table[:-1].contiguous(), right=False)
        return idx


@np.vectorize
def _np_normal_cdf(x: float) -> float:
    """Standard normal CDF in float64 as 0.5 * erfc(-x / sqrt 2), accurate in both tails.

    Not `statistics.NormalDist().cdf`: it computes 0.5 * (1 + erf(x / sqrt 2)), which cancels in the
    lower tail (4.8e-7 relative error at -6.5) and would rebuild 38 of the 10,024 entries of the bundled
    model's Gaussian tables one count off; these rebuild them exactly."""
    return 0.5 * math.erfc(-x / math.sqrt(2))


#: Table half-widths are this many scales: all but _TABLE_TAIL of a Gaussian's mass.
_TAIL_MULT = -NormalDist().inv_cdf(_TABLE_TAIL / 2)
