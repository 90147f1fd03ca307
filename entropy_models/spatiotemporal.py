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

from typing import Callable

import torch
from torch import nn

from .factorized import FactorizedPrior
import numpy as np

from .cdf_tables import CdfTables, HyperpriorTables
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


def symbol_bits(symbols: np.ndarray, indexes: np.ndarray, tables: CdfTables) -> np.ndarray:
    """Bits each symbol costs under its table (escaped values: the escape entry plus their code length),
    the encoder's price of a block for the skip decision."""
    off = tables.offsets[indexes].astype(np.int64)
    esc = tables.lengths[indexes].astype(np.int64) - 1
    v = symbols - off
    out = (v < 0) | (v >= esc)
    freq = tables.freqs[indexes, np.where(out, esc, v)].astype(np.float64)
    total = tables.freqs.sum(axis=1)[indexes].astype(np.float64)
    extra = np.where(out, 5.0 + 2.0 * np.log2(2.0 + np.abs(np.where(v < 0, v, v - esc))), 0.0)
    return -np.log2(freq / total) + extra


class _Subset:
    """A range coder seen through a mask: only the symbols where `keep` is True are coded; the others
    are zero and cost nothing (the decoder, knowing `keep`, fills them in). Records each kept symbol's
    price when `bits` is a list."""

    def __init__(self, coder, keep: np.ndarray, bits: list | None = None) -> None:
        self.coder, self.keep, self.bits = coder, keep, bits

    def encode(self, symbols: np.ndarray, indexes: np.ndarray, tables: CdfTables) -> None:
        if self.bits is not None:
            self.bits.append(symbol_bits(symbols, indexes, tables))
        self.coder.encode(symbols[self.keep], indexes[self.keep], tables)

    def decode(self, indexes: np.ndarray, tables: CdfTables) -> np.ndarray:
        out = np.zeros(len(indexes), dtype=np.int64)
        out[self.keep] = self.coder.decode(indexes[self.keep], tables)
        return out


class _SkipContext:
    """The exact context steps with skipped latent positions: their symbols are zero and not coded, so
    while the frame is coded their values are the model's prediction on both sides (the caller then
    gives them the reference's values); with `costs`, each position's bits are summed into it [h, w]
    (the encoder's first pass, nothing skipped)."""

    def __init__(self, base: ExactContext, skip: torch.Tensor, costs: torch.Tensor | None = None) -> None:
        self.base, self.skip, self.costs = base, skip, costs
        self._anchor_step = base._anchor_step
        self._nonanchor_step = base._nonanchor_step
        self._refine = base._refine

    def _code_pass(self, y_k, mean, raw, sel, coder, decode: bool) -> torch.Tensor:
        c = mean.shape[1]
        keep_pos = (~self.skip[sel]).cpu().numpy()
        keep = np.broadcast_to(keep_pos[None], (c, len(keep_pos))).ravel()
        bits: list | None = [] if self.costs is not None else None
        vals = self.base._code_pass(y_k, mean, raw, sel, _Subset(coder, keep, bits), decode)
        if bits:
            self.costs[sel] += torch.from_numpy(bits[0].reshape(c, -1).sum(0)).to(self.costs)
        hit = (self.skip & sel).view(1, 1, *sel.shape)
        return torch.where(hit, mean.clamp(-ACT_MAX, ACT_MAX), vals)


class SpatiotemporalEntropyModel(CachedExactEngine, HyperpriorTables, nn.Module):
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


    def _new_exact_engine(self, device: torch.device) -> _ExactTemporal:
        return _ExactTemporal(self, device)

    def _steps(self, exact: bool, device: torch.device) -> _ExactTemporal | _FloatTemporal:
        return self.exact_engine(device) if exact else _FloatTemporal(self)

    @torch.no_grad()
    def compress(self, y: torch.Tensor, ref1: torch.Tensor, ref2: torch.Tensor, exact: bool = True,
                 z: torch.Tensor | None = None, skip: torch.Tensor | None = None, costs: bool = False,
                 coder: RangeEncoder | None = None, position_costs: bool = False):
        """Code a gained latent [1, M, h, w] (h, w multiples of 4); return ([z, y streams], y_hat).

        `exact` (default; video format versions 2 to 4) computes every entropy parameter and the
        temporal mean in fixed point, so the references and the decoded latents agree bit for bit on
        any device; False is the float path of version 1.
        `skip` (versions 3 and 4; exact only): bool [h/4, w/4] of skipped blocks, one per z position, or
        [h, w] of skipped latent positions: their y symbols are zero and not coded, nor are the z symbols
        of a z position whose 4 x 4 latent positions are all skipped. `costs`: also return each block's
        bits [h/4, w/4] (z + y), which the encoder compares with the price of skipping it;
        `position_costs`: instead return (z bits [h/4, w/4], y bits [h, w]). `coder`: code z and then y
        into this encoder (version 4, one stream per frame; the returned stream list is empty). `z`: the
        hyper-latent to code (default h_a(residual, ref1); the encoder's latent search,
        `codec.video_search`, passes its own)."""
        costs = costs or position_costs
        if (skip is not None or costs) and not exact:
            raise ValueError("skipped blocks need the exact entropy parameters (video format version 3)")
        steps = self._steps(exact, y.device)
        r1, r2 = steps.fixed(ref1), steps.fixed(ref2)
        mean_t = steps.mean(r1, r2)
        r = y - steps.real(mean_t)
        z = self.h_a(torch.cat([r, ref1], dim=1)) if z is None else z
        enc_z = RangeEncoder() if coder is None else coder
        enc_y = RangeEncoder() if coder is None else coder

        def streams() -> list[bytes]:
            return [] if coder is not None else [enc_z.finish(), enc_y.finish()]

        if skip is None and not costs:
            z_hat = self.z_prior.compress(z, enc_z).to(y.device)
            r_hat = self.context.compress(r, steps.features(steps.fixed(z_hat), r1, r2), enc_y, steps.context)
            return streams(), steps.real(r_hat + mean_t)
        hz, wz = z.shape[2:]
        skip_y = _position_mask(torch.zeros(hz, wz, dtype=torch.bool) if skip is None else skip, hz, wz)
        skip_z = _z_mask(skip_y)
        # skipped positions: y symbols zero and not coded (z too where its whole block is skipped); the
        # latent keeps the reference's values there
        z_hat = torch.round(z).cpu()
        z_hat[:, :, skip_z] = 0
        tables = self.z_prior.tables
        sym = z_hat.numpy().astype(np.int64).ravel()
        idx = self.z_prior._indexes(z.shape)
        keep = np.broadcast_to((~skip_z).numpy()[None, None], z.shape).ravel()
        enc_z.encode(sym[keep], idx[keep], tables)
        cost = torch.zeros(hz * HYPER_FACTOR, wz * HYPER_FACTOR, dtype=torch.float64)
        ctx = _SkipContext(steps.context, skip_y.to(y.device), cost if costs else None)
        r_hat = self.context.compress(r, steps.features(steps.fixed(z_hat.to(y.device)), r1, r2), enc_y, ctx)
        y_hat = steps.real(_keep_reference(r_hat + mean_t, r1, ctx.skip))
        if not costs:
            return streams(), y_hat
        z_bits = torch.from_numpy(symbol_bits(sym, idx, tables).reshape(z.shape[1:]).sum(0))
        if position_costs:
            return streams(), y_hat, (z_bits.numpy(), cost.numpy())
        y_bits = cost.view(hz, HYPER_FACTOR, wz, HYPER_FACTOR).sum(dim=(1, 3))
        return streams(), y_hat, (z_bits + y_bits).numpy()

    @torch.no_grad()
    def decompress(self, streams: list[bytes], ref1: torch.Tensor, ref2: torch.Tensor,
                   exact: bool = True, skip: torch.Tensor | None = None) -> torch.Tensor:
        """Decode y_hat of a P-frame whose references are `ref1` (t-1) and `ref2` (t-2); `skip` as
        in `compress` (the decoder reads it from the frame's side stream first)."""
        if len(streams) != 2:
            raise StreamError("expected a z stream and a y stream")
        dec_z = RangeDecoder(streams[0])
        return self.decompress_from(dec_z, ref1, ref2, exact, skip, lambda: RangeDecoder(streams[1]))

    @torch.no_grad()
    def decompress_from(self, decoder: RangeDecoder, ref1: torch.Tensor, ref2: torch.Tensor,
                        exact: bool = True, skip: torch.Tensor | None = None,
                        y_decoder: Callable[[], RangeDecoder] | None = None) -> torch.Tensor:
        """`decompress` reading z from `decoder` and then y from the decoder `y_decoder` makes (default:
        the same one, version 4's single stream); each must end exactly where its symbols end."""
        if skip is not None and not exact:
            raise StreamError("skipped blocks need the exact entropy parameters")
        _, _, h, w = ref1.shape
        shape = (1, self.hyper_latent_channels, h // HYPER_FACTOR, w // HYPER_FACTOR)
        dec_z = decoder
        skip_y = None
        if skip is None:
            z_hat = self.z_prior.decompress(dec_z, shape)
        else:
            skip = skip.cpu().bool()
            if tuple(skip.shape) not in (shape[2:], (h, w)):
                raise StreamError("skip flags do not match the frame's block grid")
            skip_y = _position_mask(skip, *shape[2:])
            skip_z = _z_mask(skip_y)
            keep = np.broadcast_to((~skip_z).numpy()[None, None], shape).ravel()
            vals = np.zeros(keep.size, dtype=np.int64)
            vals[keep] = dec_z.decode(self.z_prior._indexes(torch.Size(shape))[keep], self.z_prior.tables)
            z_hat = torch.from_numpy(vals.reshape(shape).astype(np.float32))
        if y_decoder is not None:
            if not dec_z.exhausted():
                raise StreamError("z stream has trailing data")
            dec_y = y_decoder()
        else:
            dec_y = dec_z
        steps = self._steps(exact, ref1.device)
        r1, r2 = steps.fixed(ref1), steps.fixed(ref2)
        mean_t = steps.mean(r1, r2)
        ctx = steps.context if skip_y is None else _SkipContext(steps.context, skip_y.to(ref1.device))
        r_hat = self.context.decompress(steps.features(steps.fixed(z_hat.to(ref1.device)), r1, r2), dec_y, ctx)
        if not dec_y.exhausted():
            raise StreamError("y stream has trailing data")
        return steps.real(r_hat + mean_t if skip_y is None else _keep_reference(r_hat + mean_t, r1, ctx.skip))


def _keep_reference(y_hat: torch.Tensor, ref1: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """A skipped block keeps its reference latent (fixed point, exact): its pixels are a copy of the
    previous frame, so the previous latent describes them, and chains of skips neither decay the
    reference (as repeated temporal means would) nor leave g_s of the coded blocks beside them a
    latent that disagrees with the copied pixels."""
    return torch.where(skip.view(1, 1, *skip.shape), ref1, y_hat)


def _position_mask(skip: torch.Tensor, hz: int, wz: int) -> torch.Tensor:
    """Skip flags per latent position [4 hz, 4 wz] from block flags on the z grid [hz, wz] (each
    covering HYPER_FACTOR x HYPER_FACTOR positions) or from flags per position already."""
    skip = skip.cpu().bool()
    if tuple(skip.shape) == (hz, wz):
        return skip.repeat_interleave(HYPER_FACTOR, 0).repeat_interleave(HYPER_FACTOR, 1)
    if tuple(skip.shape) != (hz * HYPER_FACTOR, wz * HYPER_FACTOR):
        raise ValueError(f"skip flags of shape {tuple(skip.shape)} fit neither the z grid nor the latent")
    return skip


def _z_mask(skip_y: torch.Tensor) -> torch.Tensor:
    """z positions whose HYPER_FACTOR x HYPER_FACTOR latent positions are all skipped."""
    h, w = skip_y.shape
    return skip_y.view(h // HYPER_FACTOR, HYPER_FACTOR, w // HYPER_FACTOR, HYPER_FACTOR).all(dim=3).all(dim=1)
