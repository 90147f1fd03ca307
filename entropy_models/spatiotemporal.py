"""Spatiotemporal entropy model for P-frame latents (after "Spatiotemporal Entropy Model is All You
Need for Learned Video Compression", Sun et al. 2021), built on the image model's contexts.

A P-frame latent y_t is coded against the decoded latents of the two previous frames (the
multi-reference temporal part); no motion estimation and no pixel residuals:

* temporal mean: m_t = a * y_hat_{t-1} + f(y_hat_{t-1}, y_hat_{t-2}) (per-channel a, small conv net),
  so the coded residual r_t = y_t - m_t is near zero wherever the picture does not change;
* hyperprior whose analysis sees both r_t and y_hat_{t-1}: z_t = h_a(r_t, y_hat_{t-1});
* temporal prior features from (y_hat_{t-1}, y_hat_{t-2}) fused with the hyper features;
* the image model's multi-reference contexts (channel slices, checkerboard, global attention, LRP)
  over those fused features code r_t, and y_hat_t = r_hat_t + m_t.

Every branch that is new relative to the image model starts at zero (a = 0, last layers zero), so a
model initialised from the image model codes P-frames exactly like I-frames and rate-only training
can only move it towards cheaper P-frames.
"""

from __future__ import annotations

import torch
from torch import nn

from .factorized import FactorizedPrior
from .fixed_point import ACT_MAX, CachedExactEngine, ExactSequential, exact_scale, to_fixed, to_real
from .multi_reference import ExactContext, MultiReferenceEntropyModel
from .range_coder import RangeDecoder, RangeEncoder, StreamError

#: Downsampling of z relative to y.
HYPER_FACTOR = 4


def _down(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 5, stride=2, padding=2)


def _up(cin: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, 5, stride=2, padding=2, output_padding=1)


def _zero_last(seq: nn.Sequential) -> nn.Sequential:
    last = seq[-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return seq


class _FloatTemporal:
    """The P-frame parameter steps in float (video format version 1): values stay real."""

    def __init__(self, model: "SpatiotemporalEntropyModel") -> None:
        self.mean = model._mean
        self.features = model._features
        self.context = None

    @staticmethod
    def fixed(x: torch.Tensor) -> torch.Tensor:
        return x

    @staticmethod
    def real(x: torch.Tensor) -> torch.Tensor:
        return x


class _ExactTemporal:
    """The P-frame parameter steps in exact fixed point (see `fixed_point`), for one device:
    `fixed` / `real` convert between real tensors and its fixed-point ones."""

    def __init__(self, model: "SpatiotemporalEntropyModel", device: torch.device) -> None:
        self.context = ExactContext(model.context, device)
        t = self.context.tables
        self.copy_gain = model.copy_gain.detach().view(1, -1, 1, 1)
        self.temporal_mean = ExactSequential(model.temporal_mean, t, device)
        self.temporal_prior = ExactSequential(model.temporal_prior, t, device)
        self.h_s = ExactSequential(model.h_s, t, device)
        self.fuse = ExactSequential(model.fuse, t, device)

    @staticmethod
    def fixed(x: torch.Tensor) -> torch.Tensor:
        return to_fixed(x)

    @staticmethod
    def real(x: torch.Tensor) -> torch.Tensor:
        return to_real(x.clamp(-ACT_MAX, ACT_MAX))

    def mean(self, ref1: torch.Tensor, ref2: torch.Tensor) -> torch.Tensor:
        return exact_scale(ref1, self.copy_gain) + self.temporal_mean(torch.cat([ref1, ref2], dim=1))

    def features(self, z_hat: torch.Tensor, ref1: torch.Tensor, ref2: torch.Tensor) -> torch.Tensor:
        hyper = self.h_s(z_hat)
        temporal = self.temporal_prior(torch.cat([ref1, ref2], dim=1))
        return hyper + self.fuse(torch.cat([hyper, temporal], dim=1))


class SpatiotemporalEntropyModel(CachedExactEngine, nn.Module):
    """Entropy model of a P-frame latent given the two previous decoded latents."""

    def __init__(self, latent_channels: int, hyper_latent_channels: int, hyper_channels: int,
                 slices: int = 5, hidden: int = 128) -> None:
        super().__init__()
        m, nz, hc = latent_channels, hyper_latent_channels, hyper_channels
        self.latent_channels = m
        self.hyper_latent_channels = nz
        self.copy_gain = nn.Parameter(torch.zeros(1, m, 1, 1))
        self.temporal_mean = _zero_last(nn.Sequential(
            nn.Conv2d(2 * m, hidden, 3, padding=1), nn.GELU(), nn.Conv2d(hidden, m, 3, padding=1)))
        self.temporal_prior = nn.Sequential(
            nn.Conv2d(2 * m, hidden, 3, padding=1), nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.GELU(), nn.Conv2d(hidden, hc, 1))
        # same layer shapes as the image hyper transforms (plus the reference's channels at the input)
        self.h_a = nn.Sequential(nn.Conv2d(2 * m, nz, 3, padding=1), nn.GELU(),
                                 _down(nz, nz), nn.GELU(), _down(nz, nz))
        self.h_s = nn.Sequential(_up(nz, nz), nn.GELU(), _up(nz, hc), nn.GELU(), nn.Conv2d(hc, hc, 3, padding=1))
        self.fuse = _zero_last(nn.Sequential(nn.Conv2d(2 * hc, hidden, 1), nn.GELU(), nn.Conv2d(hidden, hc, 1)))
        self.z_prior = FactorizedPrior(nz)
        self.context = MultiReferenceEntropyModel(m, hc, slices, hidden)

    # ---- shared steps --------------------------------------------------------------------------

    def _mean(self, ref1: torch.Tensor, ref2: torch.Tensor) -> torch.Tensor:
        return self.copy_gain * ref1 + self.temporal_mean(torch.cat([ref1, ref2], dim=1))

    def _features(self, z_hat: torch.Tensor, ref1: torch.Tensor, ref2: torch.Tensor) -> torch.Tensor:
        hyper = self.h_s(z_hat)
        temporal = self.temporal_prior(torch.cat([ref1, ref2], dim=1))
        return hyper + self.fuse(torch.cat([hyper, temporal], dim=1))

    # ---- training ------------------------------------------------------------------------------

    def forward(self, y: torch.Tensor, ref1: torch.Tensor, ref2: torch.Tensor, table_scales: bool = True):
        """Return (y_hat, y likelihoods, z likelihoods) for training (noisy rates) or evaluation."""
        mean_t = self._mean(ref1, ref2)
        r = y - mean_t
        z = self.h_a(torch.cat([r, ref1], dim=1))
        z_hat, z_lik = self.z_prior(z)
        feats = self._features(z_hat, ref1, ref2)
        r_hat, y_lik = self.context(r, feats, table_scales=table_scales)
        return r_hat + mean_t, y_lik, z_lik

    # ---- coding --------------------------------------------------------------------------------

    def build_tables(self) -> None:
        self.z_prior.build_tables()
        self.context.gaussian.build_tables()

    def load_tables(self) -> None:
        self.z_prior.load_tables_from_buffer()
        self.context.gaussian.load_tables_from_buffer()

    def _new_exact_engine(self, device: torch.device) -> _ExactTemporal:
        return _ExactTemporal(self, device)

    def _steps(self, exact: bool, device: torch.device) -> _ExactTemporal | _FloatTemporal:
        return self.exact_engine(device) if exact else _FloatTemporal(self)

    @torch.no_grad()
    def compress(self, y: torch.Tensor, ref1: torch.Tensor, ref2: torch.Tensor,
                 exact: bool = True, z: torch.Tensor | None = None) -> tuple[list[bytes], torch.Tensor]:
        """Code a gained latent [1, M, h, w] (h, w multiples of 4); return ([z, y streams], y_hat).

        `exact` (default; video format version 2) computes every entropy parameter and the temporal
        mean in fixed point, so the references and the decoded latents agree bit for bit on any
        device; False is the float path of version 1. `z`: the hyper-latent to code (default
        h_a(residual, ref1); the encoder's latent search, `codec.video_search`, passes its own)."""
        steps = self._steps(exact, y.device)
        r1, r2 = steps.fixed(ref1), steps.fixed(ref2)
        mean_t = steps.mean(r1, r2)
        r = y - steps.real(mean_t)
        z = self.h_a(torch.cat([r, ref1], dim=1)) if z is None else z
        enc_z = RangeEncoder()
        z_hat = self.z_prior.compress(z, enc_z).to(y.device)
        enc_y = RangeEncoder()
        r_hat = self.context.compress(r, steps.features(steps.fixed(z_hat), r1, r2), enc_y, steps.context)
        return [enc_z.finish(), enc_y.finish()], steps.real(r_hat + mean_t)

    @torch.no_grad()
    def decompress(self, streams: list[bytes], ref1: torch.Tensor, ref2: torch.Tensor,
                   exact: bool = True) -> torch.Tensor:
        """Decode y_hat of a P-frame whose references are `ref1` (t-1) and `ref2` (t-2)."""
        if len(streams) != 2:
            raise StreamError("expected a z stream and a y stream")
        _, _, h, w = ref1.shape
        dec_z = RangeDecoder(streams[0])
        z_hat = self.z_prior.decompress(dec_z, (1, self.hyper_latent_channels, h // HYPER_FACTOR, w // HYPER_FACTOR))
        if not dec_z.exhausted():
            raise StreamError("z stream has trailing data")
        steps = self._steps(exact, ref1.device)
        r1, r2 = steps.fixed(ref1), steps.fixed(ref2)
        mean_t = steps.mean(r1, r2)
        dec_y = RangeDecoder(streams[1])
        r_hat = self.context.decompress(steps.features(steps.fixed(z_hat.to(ref1.device)), r1, r2), dec_y,
                                        steps.context)
        if not dec_y.exhausted():
            raise StreamError("y stream has trailing data")
        return steps.real(r_hat + mean_t)
