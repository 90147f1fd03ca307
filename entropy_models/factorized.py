"""Learned factorized prior for the hyper-latent z (Ballé et al. 2018, appendix 6.1).

Each channel has its own univariate density, given as the derivative of a monotone cumulative built
from small positive-weight matrices; the probability of an integer is c(x + 1/2) - c(x - 1/2).
For coding, that pmf is tabulated once per channel into integer frequencies (``build_tables``),
which give every value at least 2**-16; the likelihoods add that floor too, so the model's rate is
the coder's (see ``gaussian``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .cdf_tables import PRECISION, TabledEntropyModel
from .quantize import noisy_or_rounded, ste_round
from .range_coder import RangeDecoder, RangeEncoder

_TABLE_FLOOR = 2.0**-PRECISION
_TABLE_TAIL = 1e-9
_MAX_RANGE = 512


class FactorizedPrior(TabledEntropyModel):
    """Per-channel non-parametric density with forward (likelihoods), compress and decompress.

    The density is CompressAI's `EntropyBottleneck` density, computed the same way (its
    ``_logits_cumulative``, bit for bit: tests/test_compressai_equivalence.py) under the same parameter
    names and shapes with filters (3, 3, 3); lcodec keeps this copy rather than subclassing it (see
    docs/design.md, "What comes from compressai"): importing compressai nearly doubles the CPU time of a
    `lcodec decode`, its 1.2 likelihood drops the sign trick below, which loses the upper tail in float32,
    and its quantiles, CDF buffers and ANS coder would change the state dict for nothing lcodec uses.
    """

    _what = "factorized prior"

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0) -> None:
        super().__init__()
        self.channels = channels
        dims = (1, *filters, 1)
        scale = init_scale ** (1 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(filters) + 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))
        self._register_tables()

    def _table_count(self) -> int:
        return self.channels

    def _logits_cumulative(self, x: torch.Tensor) -> torch.Tensor:
        """x: [C, 1, N] -> logits of the cumulative at x, [C, 1, N]."""
        for i, matrix in enumerate(self.matrices):
            x = torch.matmul(F.softplus(matrix), x) + self.biases[i]
            if i < len(self.factors):
                x = x + torch.tanh(self.factors[i]) * torch.tanh(x)
        return x

    def _likelihood_cn(self, v: torch.Tensor) -> torch.Tensor:
        """Probability of the unit bin around each value; v is [C, 1, N]. Both cumulatives are taken on
        the side of the median where they are small (the sign), so neither tail rounds to 1 - 1."""
        lower = self._logits_cumulative(v - 0.5)
        upper = self._logits_cumulative(v + 0.5)
        sign = -torch.sign(lower + upper).detach()
        return torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))

    def forward(self, z: torch.Tensor, training: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (z_hat for the hyper-synthesis, likelihoods of the coded values)."""
        training = self.training if training is None else training
        with torch.autocast(device_type=z.device.type, enabled=False):
            return self._forward_fp32(z.float(), training)

    def _forward_fp32(self, z: torch.Tensor, training: bool) -> tuple[torch.Tensor, torch.Tensor]:
        lik = self.likelihood(noisy_or_rounded(z, training))
        z_hat = ste_round(z) if training else torch.round(z)
        return z_hat, lik

    def likelihood(self, v: torch.Tensor) -> torch.Tensor:
        """Probability the coder's tables give values `v` [N, C, H, W] (rounded, noisy or soft-rounded)."""
        c = v.shape[1]
        flat = v.float().transpose(0, 1).reshape(c, 1, -1)
        lik = self._likelihood_cn(flat).reshape(c, v.shape[0], *v.shape[2:]).transpose(0, 1)
        return lik + _TABLE_FLOOR

    # ---- tables and coding -------------------------------------------------------------------

    @torch.no_grad()
    def build_tables(self) -> None:
        """Tabulate every channel's pmf over the integers that carry all but ~1e-9 of its mass."""
        grid = torch.arange(-_MAX_RANGE, _MAX_RANGE + 1, dtype=torch.float32)
        v = grid.view(1, 1, -1).expand(self.channels, 1, -1).to(self.matrices[0].device)
        pmf = self._likelihood_cn(v).squeeze(1).double().cpu().numpy()  # [C, 2R+1]
        pmfs, offsets = [], []
        for p in pmf:
            cum = np.cumsum(p)
            lo = int(np.searchsorted(cum, _TABLE_TAIL / 2))
            hi = max(int(np.searchsorted(cum, cum[-1] - _TABLE_TAIL / 2)), lo)
            pmfs.append(p[lo : hi + 1])
            offsets.append(lo - _MAX_RANGE)
        self.set_pmfs(pmfs, offsets)

    def _indexes(self, shape: torch.Size) -> np.ndarray:
        n, c, h, w = shape
        return np.broadcast_to(np.arange(c).reshape(1, c, 1, 1), (n, c, h, w)).ravel()

    def compress(self, z: torch.Tensor, encoder: RangeEncoder) -> torch.Tensor:
        """Code round(z) and return it as z_hat (float)."""
        z_hat = torch.round(z)
        encoder.encode(z_hat.cpu().numpy().astype(np.int64).ravel(), self._indexes(z.shape), self.tables)
        return z_hat

    def decompress(self, decoder: RangeDecoder, shape: tuple[int, int, int, int]) -> torch.Tensor:
        vals = decoder.decode(self._indexes(torch.Size(shape)), self.tables)
        return torch.from_numpy(vals.reshape(shape).astype(np.float32))
