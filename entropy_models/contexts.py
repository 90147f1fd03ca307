"""Context layers: the checkerboard split and linear-cost global attention.

Checkerboard (He et al. 2021): latent positions with (row + col) even are *anchors*, coded first
without spatial context; the rest are coded second, conditioned on the decoded anchors.

Global context (after MLIC++): attention whose cost is linear in the number of positions,
softmax replaced by the kernel feature map elu(x) + 1 (Katharopoulos et al. 2020), so that a key/value
summary phi(K)^T V of size d x d is formed once and every query reads it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def anchor_mask(height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """Boolean [H, W] mask, True at anchor positions ((row + col) even)."""
    r = torch.arange(height, device=device).view(-1, 1)
    c = torch.arange(width, device=device).view(1, -1)
    return (r + c) % 2 == 0


class LinearAttention(nn.Module):
    """Global context: every query position attends to all (optionally masked) key positions.

    Queries come from `q_in`, keys and values from `kv_in`; both are 1x1 projections, so the layer
    never mixes positions except through the masked global summary.
    """

    def __init__(self, q_channels: int, kv_channels: int, dim: int, out_channels: int) -> None:
        super().__init__()
        self.q = nn.Conv2d(q_channels, dim, 1)
        self.k = nn.Conv2d(kv_channels, dim, 1)
        self.v = nn.Conv2d(kv_channels, dim, 1)
        self.out = nn.Conv2d(dim, out_channels, 1)

    def forward(self, q_in: torch.Tensor, kv_in: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, _, h, w = q_in.shape
        q = F.elu(self.q(q_in)) + 1.0  # [B, d, H, W]
        k = F.elu(self.k(kv_in)) + 1.0
        v = self.v(kv_in)
        if key_mask is not None:
            m = key_mask.to(k.dtype).view(1, 1, h, w)
            k = k * m
            v = v * m
        q = q.flatten(2)  # [B, d, N]
        k = k.flatten(2)
        v = v.flatten(2)
        kv = torch.einsum("bdn,ben->bde", k, v)  # [B, d, d]
        norm = torch.einsum("bdn,bd->bn", q, k.sum(dim=2)).clamp_min(1e-6)  # [B, N]
        out = torch.einsum("bdn,bde->ben", q, kv) / norm.unsqueeze(1)
        return self.out(out.view(b, -1, h, w))
