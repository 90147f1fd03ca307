"""Quantization proxies used in training: uniform noise for rates, straight-through rounding for values."""

from __future__ import annotations

import torch


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Round in the forward pass, identity gradient in the backward pass."""
    return x + (torch.round(x) - x).detach()


def noisy_or_rounded(x: torch.Tensor, training: bool) -> torch.Tensor:
    """Additive U(-1/2, 1/2) noise while training (a differentiable rate proxy), rounding otherwise."""
    if training:
        return x + torch.empty_like(x).uniform_(-0.5, 0.5)
    return torch.round(x)
