"""Encoder effort for videos: the latent search of `latent_search`, frame by frame.

I-frames are searched exactly like images. A P-frame searches its own latent y_t and hyper-latent
z_t with the two reference latents fixed (greedy per frame, as Liu et al., "Conditional Entropy
Coding for Efficient Video Compression", ECCV 2020, do): the loss is the same rate-distortion loss at
the frame's lambda, its rate through the spatiotemporal entropy model (temporal mean, hyperprior,
temporal prior, the image model's contexts) and its distortion through g_s. The temporal mean is
taken from the coder's own fixed-point step, so the values the search scores are the ones the coder
codes; the references are the decoded latents the encoder already holds, i.e. exactly what the
decoder will hold, and the coded (searched) latent becomes the next frame's reference the same way.
Skipped blocks and motion (video format version 3) are decided afterwards on the searched latents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .latent_search import SearchConfig, SearchResult, _Problem, _problem, _search, config_for_effort
from .transforms import from_pixels


@dataclass
class _PFrameProblem(_Problem):
    """One P-frame: its pixels and quality, and the fixed references and temporal mean."""

    temporal: torch.nn.Module | None = None
    ref1: torch.Tensor | None = None  # decoded latent of frame t-1
    ref2: torch.Tensor | None = None  # decoded latent of frame t-2
    mean_t: torch.Tensor | None = None  # temporal mean, as the coder computes it (fixed point)

    def z_start(self, y: torch.Tensor) -> torch.Tensor:
        return self.temporal.h_a(torch.cat([y - self.mean_t, self.ref1], dim=1))

    def coded(self, snapped: torch.Tensor) -> torch.Tensor:
        return snapped + self.mean_t  # the context rounds the residual r_t = y_t - mean_t

    def loss(self, y: torch.Tensor, z_hat: torch.Tensor, rounding, table_scales: bool) -> torch.Tensor:
        t = self.temporal
        h, w = self.x.shape[-2:]
        feats = t._features(z_hat, self.ref1, self.ref2)
        r_hat, y_lik = t.context(y - self.mean_t, feats, rounding=rounding, table_scales=table_scales)
        z_lik = t.z_prior.likelihood(z_hat)
        bits = -(torch.log2(y_lik).sum() + torch.log2(z_lik).sum())
        x_hat = self.model.g_s((r_hat + self.mean_t) * self.inv_gain)[:, :, :h, :w].clamp(0, 1)
        mse = torch.mean((x_hat - self.x) ** 2)
        return self.lam * 255.0**2 * mse + bits / (h * w)


@torch.no_grad()
def coder_mean(temporal: torch.nn.Module, ref1: torch.Tensor, ref2: torch.Tensor) -> torch.Tensor:
    """The temporal mean exactly as `SpatiotemporalEntropyModel.compress` computes it (fixed point)."""
    steps = temporal._steps(True, ref1.device)
    return steps.real(steps.mean(steps.fixed(ref1), steps.fixed(ref2)))


def search_p_frame(model: torch.nn.Module, temporal: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                   ref1: torch.Tensor, ref2: torch.Tensor, quality: float, config: SearchConfig) -> SearchResult:
    """Search a P-frame's gained latent y (g_a(x) * gain, padded) and its z for the pixels x [1, 3, h, w]
    with the references fixed; the result's y is what to pass to `compress` (with its z)."""
    base = _problem(model, x, quality)
    p = _PFrameProblem(**vars(base), temporal=temporal, ref1=ref1.detach(), ref2=ref2.detach(),
                       mean_t=coder_mean(temporal, ref1, ref2))
    with torch.enable_grad():
        return _search(p, y, config, None)


class FrameSearch:
    """The effort's search for each frame of one video encode; effort 0 returns the latents unchanged.

    `intra(rgb, y)` and `inter(rgb, y, ref1, ref2)` give (y, z) to code (z None: the coder's own h_a).
    `results` keeps every search's result (losses, best iteration) for reports and tests."""

    def __init__(self, model: torch.nn.Module, temporal: torch.nn.Module, quality: float, effort: int) -> None:
        self.model, self.temporal, self.quality = model, temporal, quality
        self.config = config_for_effort(effort)
        self.results: list[SearchResult] = []

    def _pixels(self, rgb: np.ndarray, y: torch.Tensor) -> torch.Tensor:
        return from_pixels(np.ascontiguousarray(rgb), y.device).unsqueeze(0)

    def intra(self, rgb: np.ndarray, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(y, z) to code for an I-frame's gained latent y."""
        if self.config.iterations <= 0:
            return y, None
        from .latent_search import search_latents

        result = search_latents(self.model, self._pixels(rgb, y), y, self.quality, self.config)
        self.results.append(result)
        return result.y, result.z

    def inter(self, rgb: np.ndarray, y: torch.Tensor, ref1: torch.Tensor,
              ref2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(y, z) to code for a P-frame's gained latent y against the decoded references."""
        if self.config.iterations <= 0:
            return y, None
        result = search_p_frame(self.model, self.temporal, self._pixels(rgb, y), y, ref1, ref2, self.quality,
                                self.config)
        self.results.append(result)
        return result.y, result.z
