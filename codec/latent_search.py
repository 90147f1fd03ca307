"""Encoder effort: search each image's latents for a lower rate-distortion loss before coding them.

The decoder never sees how y and z were found, so the encoder may start from g_a(x) and h_a(y) and
descend the training loss lambda(q) * 255^2 * MSE + bpp of *this* image, through g_s and the whole
entropy model (hyperprior, slices, checkerboard, attention, LRP), with the latents as the only free
parameters (Yang, Bamler & Mandt 2020). Rounding has no gradient, so the search rounds softly and
anneals towards hard rounding; every few steps it rounds for real, rates with the coder's table
scales and keeps the best hard-rounded iterate, so the result is never worse than effort 0 (the
g_a latents themselves are the first candidate).

Soft rounding is SGA+ with the sigmoid-scaled-logit probability (Perugachi-Diaz, Gansekoele &
Bhulai, arXiv 2401.17789), not the original SGA: each value y - mean = n + v (n integer, v in
[0, 1)) takes n + w, w = sigmoid((a * logit(v) + L) / tau) with logistic noise L (a two-way
Gumbel-softmax whose class probabilities are sigmoid(-/+ a * logit v)). SGA's logits
atanh(v) / tau are divided by tau once more inside the Gumbel-softmax, so its gradients blow up
as tau falls and the result depends strongly on the schedule; SGA+ was shown to be less sensitive
to its settings and to gain at a few hundred iterations already, and our CPU budgets are tens to
hundreds of iterations. Values are rounded around the entropy model's predicted means, exactly
where the coder rounds them. With so few steps a long cool-down does not pay: on 128x128 crops at
q4, 60 steps gained -2.3 % hard loss with tau 0.5 -> 0.4, -2.1 % with 0.5 -> 0.3 and -1.9 % with
0.5 -> 0.2, and 100 steps with 0.5 -> 0.05 only -1.7 % (Adam at a fixed 0.01).

The Adam step grows with the quality, as lr * g ** 0.6 with g the quality's mean gain (0.012 at q1,
0.020 at q4, 0.039 at q8). Adam moves every latent by about the step, but at high qualities the
search mostly lowers the distortion, smoothly and far from the rounding decisions, over a fine grid:
a step small enough for q1's coarse choices crawls there (the hard loss still falls steadily at the
last iteration). On 256x256 crops of two training photos at 60 steps (`tools/effort_study.py`,
`bench/results/effort/study.json`) the best fixed step was 0.01 to 0.02 at q1, 0.02 to 0.04 at q4
and 0.04 at q8 (q8 -10.8 % and -10.1 % hard loss against -5.6 % and -6.5 % at 0.01; 0.04 at q1
never beat effort 0 on one crop); on two other training crops the scaled step gained -6.4 % mean
hard loss against -5.6 % at a fixed 0.01 (q8 -14.7 % and -4.4 % against -11.0 % and -3.0 %,
q1 and q4 within half a point). Decaying the step (0.04 -> 0.01, 0.02 -> 0.005) helped at q1 and
cost at q8, so it stays constant.

The hyper-latent z moves at a tenth of y's step. Every z value sets the scales of the y values
under it, so on smooth photos, whose y values sit on narrow priors, z moving at y's step raised the
hard-rounded loss for most of a search: on a 256x256 crop of a smooth training photo (detail 2.3) the
search at q5 and q8 never beat effort 0 in 60 steps and gained -1.45 % / -0.56 % in 200 (at a tenth:
-3.18 % / -3.86 %), and on the smooth e02 whole image effort 3 coded the effort-0 file at q5 and q8
(`bench/results/effort/study-z-step.json`). At a tenth, over two smooth and
two textured training crops at 60 steps, the mean hard loss fell -4.55 % (smooth, q1/5/8) and -7.70 %
(textured, q1/4/8) against -3.43 % and -7.58 % (z frozen: -4.34 % and -7.58 %; y's step halved as
well: -4.71 % and -6.19 %; a step decaying to a quarter: better on smooth, -1.2 points on textured).

On smooth photos a fixed step overshoots later in a long search: on the smooth Kite crop at 200 steps
the hard-rounded loss was lowest near step 90 (q5 -3.18 %, q8 -3.86 %) and then rose again, to -0.63 %
and -1.98 % at step 200, while on textured crops it still fell at step 200 (a larger step, 0.035,
gained there and lost everything on Kite q5). Annealing does not cure it: the temperature falling
to 0.1 with the step decaying to a quarter gained less everywhere (Kite q1 -3.95 % against -5.89 %,
flightgear q4 -7.67 % against -9.88 %). So the search backs off where it has to: after four
hard-rounded checks in a row without a new best it returns to the best iterate and halves the step.
Over the four training crops (12 searches of 200 steps, `bench/results/effort/study-patience.json`)
the mean hard loss fell -9.35 % against -9.12 % (Kite q8 -5.21 % against -3.86 %, FreshFlower q5 / q8
-11.12 / -12.79 % against -9.90 / -11.41 %; the textured crops unchanged within 0.3 points); with a
first step twice as large -9.45 %, not worth a second setting.

A hard-rounded check costs about half a step (mostly g_s forward at full resolution; g_s forward
and backward are 73-88 % of a step, compute-bound convolutions: `tools/effort_profile.py`). Checks run
from a quarter of the search on (before that the loss often sits above effort 0's while the latents
leave g_a's rounding decisions, which would spend the patience too early). The short searches of
efforts 1 and 2 check every 2 steps instead of 4: a smooth photo's best iterate often falls between
two checks four steps apart (Kite crop, 20 steps: q5 -0.10 % and q8 0.00 %, i.e. nothing found, against
-0.77 % and -1.47 %; over the four crops at 20 / 60 steps mean hard loss -3.14 / -6.29 % against
-2.94 / -6.15 %, textured crops unchanged; `bench/results/effort/study-checks.json`), for about 10 %
more time. A larger first step did worse at 20 steps (0.05: -2.30 %, 0.075: -1.49 %; smooth crops
found nothing). Effort 3 keeps 4, the setting its full evaluation run was measured with.

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
#: Settings an effort level runs with other than `SearchConfig`'s defaults (see the module docstring).
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
