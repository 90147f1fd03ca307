"""Quality levels: one checkpoint for every rate through learned per-channel gain vectors.

After "Asymmetric Gained Deep Image Compression" (Cui et al. 2021): level l scales the latent by a
gain vector before quantization and by an inverse-gain vector after it. A fractional quality
interpolates neighbouring levels geometrically (linearly in log-gain), as does its training lambda.

The lambdas form one fixed ladder; a model trains the first ``levels`` rungs of it (8 unless its
configuration says otherwise; the bundled model has all 12), so quality q means the same trade-off in
every model that has it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .errors import QualityError

#: Rate-distortion trade-off per integer quality 1..12 (loss = lambda * 255^2 * MSE + bpp), ~1.84
#: apart: an 8-level model (the default configuration) trains the first eight, the bundled model all.
LAMBDAS = (0.0018, 0.0033, 0.0061, 0.0113, 0.0208, 0.0383, 0.0705, 0.13, 0.24, 0.44, 0.81, 1.49)
#: Levels of a model whose weights do not say (every model before levels became configurable).
DEFAULT_LEVELS = 8
QUALITY_MIN = 1.0
#: Highest quality any model can have (the top of the ladder); one model's top is its level count.
QUALITY_MAX = float(len(LAMBDAS))


def check_quality(q: float, top: float = QUALITY_MAX) -> float:
    """`q` as a float if it lies in [1, top] (QualityError otherwise); `top` is the model's level count."""
    q = float(q)
    if not (QUALITY_MIN <= q <= top) or math.isnan(q):
        raise QualityError(f"quality must be between {QUALITY_MIN:g} and {top:g}, got {q:g}")
    return q


def lambda_for(q: torch.Tensor) -> torch.Tensor:
    """Lambda for (possibly fractional) qualities, interpolated in the log domain."""
    logs = torch.log(torch.tensor(LAMBDAS, dtype=torch.float32, device=q.device))
    pos = (q.float() - QUALITY_MIN).clamp(0, len(LAMBDAS) - 1)
    lo = pos.floor().long().clamp(max=len(LAMBDAS) - 2)
    frac = pos - lo
    return torch.exp(logs[lo] * (1 - frac) + logs[lo + 1] * frac)


class GainUnit(nn.Module):
    """Per-level gain and inverse-gain vectors over the latent channels, stored as logs."""

    def __init__(self, channels: int, levels: int = DEFAULT_LEVELS) -> None:
        super().__init__()
        # start from the step sizes high-rate theory suggests: gain ~ sqrt(lambda)
        mid = math.log(LAMBDAS[levels // 2])
        init = torch.tensor([0.5 * (math.log(lam) - mid) for lam in LAMBDAS[:levels]])
        self.log_gain = nn.Parameter(init.view(-1, 1).repeat(1, channels))
        self.log_inv_gain = nn.Parameter(-init.view(-1, 1).repeat(1, channels))

    def _interp(self, table: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        pos = (q.float() - QUALITY_MIN).clamp(0, table.shape[0] - 1)
        lo = pos.floor().long().clamp(max=table.shape[0] - 2)
        frac = (pos - lo).unsqueeze(1)
        return torch.exp(table[lo] * (1 - frac) + table[lo + 1] * frac)[:, :, None, None]

    def gain(self, q: torch.Tensor) -> torch.Tensor:
        """[B, C, 1, 1] gains for qualities q [B]."""
        return self._interp(self.log_gain, q)

    def host_gain(self, quality: float) -> torch.Tensor:
        """[1, C, 1, 1] gains for one quality in float64 on the host: the same numbers wherever the
        model lives, for fixed-point arithmetic that must agree across devices."""
        q = torch.tensor([quality], dtype=torch.float64)
        return self._interp(self.log_gain.detach().double().cpu(), q)

    def inverse_gain(self, q: torch.Tensor) -> torch.Tensor:
        return self._interp(self.log_inv_gain, q)
