"""Encoder effort: search each image's latents for a lower rate-distortion loss before coding them.

The decoder never sees how y and z were found, so the encoder may start from g_a(x) and h_a(y) and
descend the training loss lambda(q) * 255^2 * MSE + bpp of *this* image, through g_s and the whole
entropy model (hyperprior, slices, checkerboard, attention, LRP), with the latents as the only free
parameters (Yang, Bamler & Mandt 2020). Rounding has no gradient, so the search rounds softly (SGA+,
Perugachi-Diaz, Gansekoele & Bhulai, arXiv 2401.17789: less sensitive to its schedule than SGA, and
gaining within the tens to hundreds of steps a CPU can afford) around the entropy model's predicted
means, with a slowly cooling temperature; every few steps it rounds for real, rates with the coder's
table scales and keeps the best hard-rounded iterate, so the result is never worse than effort 0
(the g_a latents are the first candidate). Adam's step grows with the quality's gain, z moves at a
tenth of y's step, and after `patience` checks without a new best the search returns to the best
iterate at half the step. Why each setting, with the measurements behind it: docs/design.md
("Encoder effort") and docs/benchmarks.md ("Encoder effort").

The search is seeded, so the same input, quality and effort give the same latents (and file) on the
same machine and thread count. The chosen latents are then coded by the ordinary exact path
(`ImageModel.compress_latent`): y is snapped to mean + integer first, so the fixed-point means pick
the very integers the search scored.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from lcodec.entropy_models.contexts import anchor_mask

from .quality import lambda_for
from .transforms import LATENT_STRIDE, from_pixels

#: Search iterations per effort level (0: the plain g_a latents, today's encoder). Chosen from
#: measurements on 256x256 crops of the evaluation images (docs/benchmarks.md, "Encoder effort").
EFFORT_ITERATIONS: dict[int, int] = {0: 0, 1: 20, 2: 60, 3: 200}
MAX_EFFORT = max(EFFORT_ITERATIONS)
#: Settings an effort level runs with other than `SearchConfig`'s defaults (why: docs/design.md).
EFFORT_SETTINGS: dict[int, dict[str, float | int]] = {1: {"check_every": 2}, 2: {"check_every": 2}}


@dataclass(frozen=True)
class SearchConfig:
    """Settings of one latent search."""

    iterations: int
    lr: float = 0.025  # Adam step on the gained latents at a mean gain of 1 ...
    gain_power: float = 0.6  # ... times (mean gain of the quality) ** gain_power
    lr_end: float | None = None  # if set, the step decays geometrically by lr_end / lr over the search
    z_scale: float = 0.1  # the hyper-latent's step relative to y's
    tau_start: float = 0.5  # soft-rounding temperature, decayed geometrically ...
    tau_end: float = 0.4  # ... to this at the last iteration
    sharpness: float = 2.3  # SGA+ sigmoid-scaled-logit factor a (1: linear, large: near-hard rounding)
    check_every: int = 4  # hard-rounded loss every this many iterations (and at the last) ...
    check_after: float = 0.25  # ... once this fraction of the iterations has run
    patience: int = 4  # if > 0: this many checks in a row without a new best return to the best
    # iterate and halve the step
    seed: int = 0

    def _progress(self, t: int) -> float:
        """How far iteration t (0-based) is through the search: 0 at the first, 1 at the last."""
        return t / max(self.iterations - 1, 1)

    def tau(self, t: int) -> float:
        """Temperature at iteration t (0-based)."""
        return self.tau_start * (self.tau_end / self.tau_start) ** self._progress(t)

    def checks(self, t: int) -> bool:
        """Whether the hard-rounded loss is measured after iteration t (0-based)."""
        done = t + 1
        return done == self.iterations or (done % self.check_every == 0 and done > self.check_after * self.iterations)

    def step(self, t: int, gain: float) -> float:
        """Adam step (y and z) at iteration t (0-based) when the quality's mean gain is `gain`."""
        lr = self.lr * gain**self.gain_power
        if self.lr_end is None:
            return lr
        return lr * (self.lr_end / self.lr) ** self._progress(t)


def config_for_effort(effort: int) -> SearchConfig:
    """The search an effort level runs (ValueError for an unknown level)."""
    if effort not in EFFORT_ITERATIONS:
        raise ValueError(f"effort must be one of {', '.join(map(str, EFFORT_ITERATIONS))}, got {effort}")
    return SearchConfig(iterations=EFFORT_ITERATIONS[effort], **EFFORT_SETTINGS.get(effort, {}))


@dataclass
class SearchResult:
    """Latents to code and the hard-rounded losses that chose them."""

    y: torch.Tensor  # gained latent, mean + integer at every position (code it with compress_latent)
    z: torch.Tensor  # integer hyper-latent
    loss: float  # hard-rounded RD loss of (y, z)
    start_loss: float  # hard-rounded RD loss of the g_a latents (effort 0)
    best_iteration: int  # 0: the g_a latents were kept
    history: list[tuple[int, float]]  # (iteration, hard-rounded loss) at every check


@dataclass
class _Problem:
    """One image (or tile) and its quality: what the loss needs besides the latents."""

    model: torch.nn.Module
    x: torch.Tensor  # [1, 3, h, w] pixels in [0, 1], unpadded
    inv_gain: torch.Tensor
    lam: float
    gain: float = 1.0  # mean over the channels of the quality's gain (sets the Adam step)

    def z_start(self, y: torch.Tensor) -> torch.Tensor:
        """The hyper-latent the encoder would code for y without a search."""
        return self.model.h_a(y)

    def coded(self, snapped: torch.Tensor) -> torch.Tensor:
        """The latent to hand the coder for the values the context rounded (`snapped`)."""
        return snapped

    def loss(self, y: torch.Tensor, z_hat: torch.Tensor, rounding, table_scales: bool) -> torch.Tensor:
        m = self.model
        h, w = self.x.shape[-2:]
        hyper = m.h_s(z_hat)
        y_hat, y_lik = m.context(y, hyper, rounding=rounding, table_scales=table_scales)
        z_lik = m.z_prior.likelihood(z_hat)
        bits = -(torch.log2(y_lik).sum() + torch.log2(z_lik).sum())
        x_hat = m.g_s(y_hat * self.inv_gain)[:, :, :h, :w].clamp(0, 1)
        mse = torch.mean((x_hat - self.x) ** 2)
        return self.lam * 255.0**2 * mse + bits / (h * w)


def _soft_round(r: torch.Tensor, tau: float, a: float, gen: torch.Generator) -> torch.Tensor:
    """SGA+ (sigmoid scaled logit) relaxed stochastic rounding of r to the integers."""
    n = torch.floor(r).detach()
    v = (r - n).clamp(1e-4, 1 - 1e-4)
    u = torch.rand(r.shape, generator=gen, dtype=torch.float32).clamp_(1e-6, 1 - 1e-6).to(r.device)
    noise = torch.log(u) - torch.log1p(-u)
    return n + torch.sigmoid((a * (torch.log(v) - torch.log1p(-v)) + noise) / tau)


def hard_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor,
              quality: float) -> tuple[float, torch.Tensor]:
    """Hard-rounded RD loss (coder's table scales, clamped pixels) of gained latents (y, z) for the
    pixels x [1, 3, h, w], and y snapped to mean + round(y - mean) where the coder rounds it."""
    return _hard(_problem(model, x, quality), y, z)


def _problem(model: torch.nn.Module, x: torch.Tensor, quality: float) -> _Problem:
    q = torch.tensor([quality], dtype=torch.float32, device=x.device)
    return _Problem(model, x, model.gain.inverse_gain(q).detach(), float(lambda_for(q)),
                    float(model.gain.gain(q).detach().mean()))


@torch.no_grad()
def _hard(p: _Problem, y: torch.Tensor, z: torch.Tensor) -> tuple[float, torch.Tensor]:
    rounded: list[torch.Tensor] = []

    def rounding(v: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        q = torch.round(v - mean) + mean
        rounded.append(q)
        return q

    loss = p.loss(y, torch.round(z), rounding, table_scales=True)
    # the entropy model rounds each slice twice, anchors first (around their means), then the rest
    anchor = anchor_mask(*y.shape[-2:], y.device)
    snapped = torch.cat([torch.where(anchor, a, b) for a, b in zip(rounded[0::2], rounded[1::2])], dim=1)
    return float(loss), p.coded(snapped)


def search_latents(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, quality: float,
                   config: SearchConfig, progress: Callable[[int], None] | None = None) -> SearchResult:
    """Search gained latents for the pixels x [1, 3, h, w] (in [0, 1]) starting from y = g_a(x) * gain
    (padded size, [1, M, ceil(h/64)*4, ceil(w/64)*4]) at `quality`; `progress(n)` after every n steps."""
    with torch.enable_grad():  # callers code under no_grad
        return _search(_problem(model, x, quality), y, config, progress)


def _search(p: _Problem, y: torch.Tensor, config: SearchConfig,
            progress: Callable[[int], None] | None) -> SearchResult:
    y0 = y.detach()
    with torch.no_grad():
        z0 = p.z_start(y0)
    best_loss, best_y = _hard(p, y0, z0)
    start_loss, best_z, best_it = best_loss, torch.round(z0), 0
    if config.iterations <= 0:
        return SearchResult(best_y, best_z, best_loss, start_loss, 0, [(0, start_loss)])
    history = [(0, start_loss)]
    gen = torch.Generator().manual_seed(config.seed)
    y_var = y0.clone().requires_grad_(True)
    z_var = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([{"params": [y_var]}, {"params": [z_var]}], lr=config.step(0, p.gain))
    best_vars, stale, scale = (y0, z0), 0, 1.0
    for t in range(config.iterations):
        tau = config.tau(t)
        opt.param_groups[0]["lr"] = config.step(t, p.gain) * scale
        opt.param_groups[1]["lr"] = config.step(t, p.gain) * scale * config.z_scale
        soft = lambda v, mean: mean + _soft_round(v - mean, tau, config.sharpness, gen)  # noqa: E731
        loss = p.loss(y_var, _soft_round(z_var, tau, config.sharpness, gen), soft, table_scales=False)
        if not math.isfinite(loss.item()):
            break  # cannot happen with sane weights; keep the best so far rather than code garbage
        grads = torch.autograd.grad(loss, [y_var, z_var])
        y_var.grad, z_var.grad = grads
        opt.step()
        if config.checks(t):
            value, snapped = _hard(p, y_var.detach(), z_var.detach())
            history.append((t + 1, value))
            if value < best_loss:
                best_loss, best_y, best_z, best_it = value, snapped, torch.round(z_var.detach()), t + 1
                best_vars, stale = (y_var.detach().clone(), z_var.detach().clone()), 0
            elif config.patience:
                stale += 1
                if stale >= config.patience:
                    with torch.no_grad():
                        y_var.copy_(best_vars[0])
                        z_var.copy_(best_vars[1])
                    stale, scale = 0, scale / 2
        if progress is not None:
            progress(1)
    return SearchResult(best_y, best_z, best_loss, start_loss, best_it, history)


class TileSearch:
    """The effort's search for each coding tile of one image (the whole image when untiled), one
    tile at a time so memory stays that of one tile; `progress(done, total)` counts steps over all."""

    def __init__(self, model: torch.nn.Module, rgb: np.ndarray, quality: float, effort: int, tiles: int = 1,
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.model, self.rgb, self.quality = model, rgb, quality
        self.config = config_for_effort(effort)
        self.total = self.config.iterations * tiles
        self.done = 0
        self.progress = progress
        self.results: list[SearchResult] = []

    def _step(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, self.total)

    def __call__(self, y: torch.Tensor, row: int = 0, col: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(y, z) to code for the gained latent tile y whose top-left latent is (row, col):
        y itself and None (z = h_a(y)) at effort 0."""
        if self.config.iterations <= 0:
            return y, None
        s = LATENT_STRIDE
        h, w = self.rgb.shape[:2]
        r1, c1 = min((row + y.shape[2]) * s, h), min((col + y.shape[3]) * s, w)
        x = from_pixels(np.ascontiguousarray(self.rgb[row * s : r1, col * s : c1]), y.device).unsqueeze(0)
        result = search_latents(self.model, x, y, self.quality, self.config, self._step)
        self.results.append(result)
        return result.y, result.z
