"""g_a in exact fixed point: the same latent on every device and thread count.

A video decoder that re-analyses what it has decoded (the motion-compensated previous frame) can feed
that latent to the entropy model only if the encoder computes the very same numbers; float g_a differs
by ulps between CPUs, GPUs and thread splits. This runs g_a's convolutions and GDNs on fixed-point
integers (`entropy_models.fixed_point`): within ~1e-3 of the float transform, and identical everywhere.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lcodec.entropy_models.fixed_point import ExactConv, ExactGDN, to_fixed

from .transforms import GDN, AnalysisTransform, from_pixels


def _gdn_parameters(layer: GDN) -> tuple[torch.Tensor, torch.Tensor]:
    """The effective (beta, gamma) of `layer`, computed in float64 on the host (the same on every device)."""
    p = layer._PEDESTAL
    beta = torch.clamp(layer.beta.detach().double().cpu(), min=(1e-6 + p) ** 0.5) ** 2 - p
    gamma = torch.clamp(layer.gamma.detach().double().cpu(), min=p**0.5) ** 2 - p
    return beta, gamma


class ExactAnalysis:
    """`AnalysisTransform` on fixed-point integers for one device (weights converted once; the transform's
    `exact_engine(device)` keeps one per device and weights)."""

    def __init__(self, g_a: AnalysisTransform, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.layers: list = []
        for layer in g_a.net:
            if isinstance(layer, nn.Conv2d):
                self.layers.append(ExactConv(layer, self.device))
            elif isinstance(layer, GDN) and not layer.inverse:
                self.layers.append(ExactGDN(*_gdn_parameters(layer), self.device))
            else:
                raise ValueError(f"no exact version of {type(layer).__name__} in g_a")

    def __call__(self, rgb: np.ndarray) -> torch.Tensor:
        """Latent of H x W x 3 uint8 pixels as fixed-point integers [1, M, H/16, W/16] (float64; real
        value = integer / 2^FRAC). H and W: multiples of 16."""
        x = to_fixed(from_pixels(rgb, self.device).unsqueeze(0) - 0.5)
        with torch.no_grad():
            for layer in self.layers:
                x = layer(x)
        return x
