"""Multi-reference entropy model for image latents (after MLIC++ / MLICv2, made cheaper).

The latent y (M channels) is split into S equal channel slices coded in order. For slice k:

* anchor half (checkerboard): Gaussian parameters from the hyperprior features, the channel context
  (the decoded slices < k) and a global inter-slice context (linear attention over slice k-1);
* non-anchor half: the anchor features plus a local context (5x5 convolution over the decoded anchors
  of slice k) and a global intra-slice context (linear attention whose keys are the decoded anchors);
* latent residual prediction (Minnen et al. 2020) then refines y_hat of slice k from everything decoded.

Training (``forward``) and coding (``compress`` / ``decompress``) run the same parameter networks in
the same order, which is what keeps the encoder and the decoder in step.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .contexts import LinearAttention, anchor_mask
from .fixed_point import ACT_MAX, ONE, ExactConv, ExactLinearAttention, ExactSequential, Tables
from .gaussian import SCALE_MIN, GaussianConditional
from .quantize import ste_round
from .range_coder import RangeDecoder, RangeEncoder, StreamError

_GLOBAL_DIM = 32


class _SliceNets(nn.Module):
    """All learned layers that serve one channel slice."""

    def __init__(self, k: int, c: int, hyper: int, hidden: int) -> None:
        super().__init__()
        chan = k * c
        glob = _GLOBAL_DIM if k > 0 else 0
        self.inter = LinearAttention(hyper + chan, c, _GLOBAL_DIM, _GLOBAL_DIM) if k > 0 else None
        self.anchor_body = nn.Sequential(
            nn.Conv2d(hyper + chan + glob, hidden, 3, padding=1), nn.GELU(),
            nn.Conv2d(hidden, hidden, 1), nn.GELU(),
        )
        self.anchor_head = nn.Conv2d(hidden, 2 * c, 1)
        self.local = nn.Conv2d(c, 2 * c, 5, padding=2)
        self.intra = LinearAttention(hidden, c, _GLOBAL_DIM, _GLOBAL_DIM)
        self.nonanchor_head = nn.Sequential(
            nn.Conv2d(hidden + 2 * c + _GLOBAL_DIM, hidden, 1), nn.GELU(),
            nn.Conv2d(hidden, 2 * c, 1),
        )
        self.lrp = nn.Sequential(
            nn.Conv2d(hyper + chan + c, hidden, 3, padding=1), nn.GELU(),
            nn.Conv2d(hidden, c, 1),
        )


def _anchor_params(net, hyper: torch.Tensor, done: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor features and raw head output of one slice; `net` is a `_SliceNets` (float) or an
    `_ExactSliceNets` (fixed point), which have the same layers under the same names."""
    inputs = [hyper, *done]
    if net.inter is not None:
        inputs.append(net.inter(torch.cat([hyper, *done], dim=1), done[-1]))
    feats = net.anchor_body(torch.cat(inputs, dim=1))
    return feats, net.anchor_head(feats)


def _nonanchor_params(net, feats: torch.Tensor, anchors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Raw head output for the non-anchor half of one slice (same `net` contract as above)."""
    glob = net.intra(feats, anchors, key_mask=mask)
    return net.nonanchor_head(torch.cat([feats, net.local(anchors), glob], dim=1))


class _ExactSliceNets:
    """`_SliceNets` converted to exact fixed-point layers."""

    def __init__(self, net: _SliceNets, tables: Tables, device: torch.device) -> None:
        self.inter = ExactLinearAttention(net.inter, tables, device) if net.inter is not None else None
        self.anchor_body = ExactSequential(net.anchor_body, tables, device)
        self.anchor_head = ExactConv(net.anchor_head, device)
        self.local = ExactConv(net.local, device)
        self.intra = ExactLinearAttention(net.intra, tables, device)
        self.nonanchor_head = ExactSequential(net.nonanchor_head, tables, device)
        self.lrp = ExactSequential(net.lrp, tables, device)


class ExactContext:
    """The parameter networks of a `MultiReferenceEntropyModel` in exact fixed point (see
    `fixed_point`), built from its current weights for one device. It implements the same coding
    steps as the float model (`_anchor_step`, `_nonanchor_step`, `_code_pass`, `_refine`) on
    fixed-point tensors, so one coding loop serves both."""

    def __init__(self, model: "MultiReferenceEntropyModel", device: torch.device) -> None:
        self.tables = Tables(model.gaussian.scale_table, SCALE_MIN, device)
        self.gaussian = model.gaussian
        self.nets = [_ExactSliceNets(net, self.tables, device) for net in model.nets]

    def _anchor_step(self, k: int, hyper: torch.Tensor, done: list[torch.Tensor]):
        feats, params = _anchor_params(self.nets[k], hyper, done)
        mean, raw = params.chunk(2, dim=1)
        return feats, mean, raw

    def _nonanchor_step(self, k: int, feats: torch.Tensor, anchors: torch.Tensor, mask: torch.Tensor):
        return _nonanchor_params(self.nets[k], feats, anchors, mask).chunk(2, dim=1)

    def _code_pass(self, y_k, mean, raw, sel, coder, decode: bool) -> torch.Tensor:
        """As the float `_code_pass`, with a fixed-point mean and the raw scale parameter."""
        idx = self.tables.scale_index(raw[:, :, sel]).cpu().numpy().ravel()
        m = mean[:, :, sel]
        if decode:
            sym = coder.decode(idx, self.gaussian.tables)
            sym_t = torch.from_numpy(sym.astype(np.float64)).to(m.device).view_as(m)
        else:
            sym_t = torch.round(y_k[:, :, sel].double() - m / ONE)
            coder.encode(sym_t.cpu().numpy().astype(np.int64).ravel(), idx, self.gaussian.tables)
        vals = torch.zeros_like(mean)
        vals[:, :, sel] = (sym_t * ONE + m).clamp_(-ACT_MAX, ACT_MAX)
        return vals

    def _refine(self, k: int, hyper: torch.Tensor, done: list[torch.Tensor], y_hat_k: torch.Tensor) -> torch.Tensor:
        lrp = self.nets[k].lrp(torch.cat([hyper, *done, y_hat_k], dim=1))
        return (y_hat_k + self.tables.half_tanh(lrp)).clamp_(-ACT_MAX, ACT_MAX)


def _mean_scale(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, raw = params.chunk(2, dim=1)
    return mean, SCALE_MIN + F.softplus(raw)


class MultiReferenceEntropyModel(nn.Module):
    """Channel + checkerboard + global-attention contexts over a hyperprior, for image latents."""

    def __init__(self, latent_channels: int, hyper_channels: int, slices: int = 5, hidden: int = 128) -> None:
        super().__init__()
        if latent_channels % slices:
            raise ValueError("latent channels must split evenly into slices")
        self.slices = slices
        self.slice_channels = latent_channels // slices
        self.nets = nn.ModuleList(
            _SliceNets(k, self.slice_channels, hyper_channels, hidden) for k in range(slices)
        )
        self.gaussian = GaussianConditional()

    # ---- shared parameter steps ----------------------------------------------------------------

    def _anchor_step(self, k: int, hyper: torch.Tensor, done: list[torch.Tensor]):
        feats, params = _anchor_params(self.nets[k], hyper, done)
        mean, scale = _mean_scale(params)
        return feats, mean, scale

    def _nonanchor_step(self, k: int, feats: torch.Tensor, anchors: torch.Tensor, mask: torch.Tensor):
        return _mean_scale(_nonanchor_params(self.nets[k], feats, anchors, mask))

    def _refine(self, k: int, hyper: torch.Tensor, done: list[torch.Tensor], y_hat_k: torch.Tensor) -> torch.Tensor:
        lrp = self.nets[k].lrp(torch.cat([hyper, *done, y_hat_k], dim=1))
        return y_hat_k + 0.5 * torch.tanh(lrp)

    # ---- training ------------------------------------------------------------------------------

    def forward(self, y: torch.Tensor, hyper: torch.Tensor, training: bool | None = None,
                table_scales: bool = True,
                rounding: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None):
        """Return (y_hat, likelihoods) with noisy-rate / straight-through-value quantization.

        Outside training, `table_scales` rates each value with the table scale the coder will use
        (the exact coding distribution) instead of the continuous predicted scale.
        `rounding(y, mean)`, if given, replaces the quantizer for both values and rates (with the
        predicted scales unless `table_scales`): the encoder's latent search (`codec.latent_search`)
        passes soft rounding, and plain rounding to read off the values it codes.
        """
        training = self.training if training is None else training
        quantize = rounding or (lambda v, m: self._quantize(v, m, training))
        _, _, h, w = y.shape
        mask = anchor_mask(h, w, y.device)
        maskf = mask.to(y.dtype)
        done: list[torch.Tensor] = []
        liks = []
        for k, y_k in enumerate(y.split(self.slice_channels, dim=1)):
            feats, mean_a, scale_a = self._anchor_step(k, hyper, done)
            anchors = quantize(y_k, mean_a) * maskf
            mean_n, scale_n = self._nonanchor_step(k, feats, anchors, mask)
            mean = torch.where(mask, mean_a, mean_n)
            scale = torch.where(mask, scale_a, scale_n)
            if table_scales and (rounding is not None or not training):
                scale = self.gaussian.scale_table[self.gaussian.scale_indexes(scale)]
            y_hat_k = anchors + quantize(y_k, mean_n) * (1 - maskf)
            if rounding is not None:  # values and rates at the caller's rounding
                y_rate = y_hat_k
            elif training:
                y_rate = y_k + torch.empty_like(y_k).uniform_(-0.5, 0.5)
            else:
                y_rate = torch.round(y_k - mean) + mean
            liks.append(self.gaussian.likelihood(y_rate, mean, scale))
            done.append(self._refine(k, hyper, done, y_hat_k))
        return torch.cat(done, dim=1), torch.cat(liks, dim=1)

    @staticmethod
    def _quantize(y: torch.Tensor, mean: torch.Tensor, training: bool) -> torch.Tensor:
        return (ste_round(y - mean) if training else torch.round(y - mean)) + mean

    # ---- coding --------------------------------------------------------------------------------

    def _code_pass(self, y_k, mean, scale, sel, coder, decode: bool):
        """Code (or decode) the positions `sel` [H, W] of one slice; returns the dequantized values there."""
        if decode and not (torch.isfinite(mean).all() and torch.isfinite(scale).all()):
            # only corrupt streams (absurd escaped values) drive the parameter nets to inf / NaN
            raise StreamError("decoded values give non-finite entropy parameters")
        idx = self.gaussian.scale_indexes(scale[:, :, sel]).cpu().numpy().ravel()
        m = mean[:, :, sel]
        if decode:
            sym = coder.decode(idx, self.gaussian.tables)
            sym_t = torch.from_numpy(sym.astype(np.float32)).to(m.device).view_as(m)
        else:
            sym_t = torch.round(y_k[:, :, sel] - m)
            coder.encode(sym_t.cpu().numpy().astype(np.int64).ravel(), idx, self.gaussian.tables)
        vals = torch.zeros_like(mean)
        vals[:, :, sel] = sym_t.to(mean.dtype) + m
        return vals

    @torch.no_grad()
    def compress(self, y: torch.Tensor, hyper: torch.Tensor, encoder: RangeEncoder,
                 exact: ExactContext | None = None) -> torch.Tensor:
        """Code y (batch 1) into `encoder`; return exactly the y_hat the decoder will reconstruct.

        With `exact`, `hyper` and the returned y_hat are fixed-point tensors and every entropy
        parameter is computed in exact integer arithmetic (identical on any device)."""
        return self._run(hyper, encoder, y, exact or self)

    @torch.no_grad()
    def decompress(self, hyper: torch.Tensor, decoder: RangeDecoder,
                   exact: ExactContext | None = None) -> torch.Tensor:
        """Decode y_hat (batch 1) at the spatial size of `hyper` (fixed point with `exact`)."""
        return self._run(hyper, decoder, None, exact or self)

    def _run(self, hyper: torch.Tensor, coder, y: torch.Tensor | None, steps) -> torch.Tensor:
        """The coding loop; `steps` is this model (float) or an `ExactContext` (fixed point)."""
        decode = y is None
        _, _, h, w = hyper.shape
        mask = anchor_mask(h, w, hyper.device)
        done: list[torch.Tensor] = []
        y_slices = [None] * self.slices if decode else list(y.split(self.slice_channels, dim=1))
        for k in range(self.slices):
            feats, mean_a, scale_a = steps._anchor_step(k, hyper, done)
            anchors = steps._code_pass(y_slices[k], mean_a, scale_a, mask, coder, decode)
            mean_n, scale_n = steps._nonanchor_step(k, feats, anchors, mask)
            rest = steps._code_pass(y_slices[k], mean_n, scale_n, ~mask, coder, decode)
            done.append(steps._refine(k, hyper, done, anchors + rest))
        return torch.cat(done, dim=1)
