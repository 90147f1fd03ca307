"""Where one latent-search iteration spends its time (issue 29): CPU seconds per part.

Times, on one torch thread and in process CPU time (so that other work on the machine inflates the
figures less than wall time would), the parts of a `codec.latent_search` iteration on one image or
centre crop: the whole soft-rounded step (forward and backward), g_s forward and backward, the
entropy model's context forward and backward, h_s, the soft rounding, and the hard-rounded check
run at the search's checks. Shares are of one iteration with the checks of an `--iterations` search
spread over it (and, for comparison, with a check every `check_every` iterations throughout); the
parts g_s, context, h_s and soft rounding are parts of the step.

    python3 tools/effort_profile.py ../shared/data/eval/e01.png --size 256 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lcodec.codec import ImageCodec
from lcodec.codec import latent_search as ls
from lcodec.codec.transforms import HYPER_STRIDE, from_pixels, pad_to_multiple


def cpu_ms(f: Callable[[], object], repeats: int) -> float:
    """Least process CPU milliseconds of one call of f over `repeats` calls (after one warm-up)."""
    f()
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        f()
        best = min(best, time.process_time() - t)
    return 1000 * best


def parts(model: torch.nn.Module, x: torch.Tensor, quality: float) -> dict[str, Callable[[], object]]:
    """The timed parts of one iteration for pixels x [1, 3, h, w] at `quality`."""
    m, cfg = model, ls.SearchConfig(iterations=1)
    with torch.no_grad():
        y = m.g_a(pad_to_multiple(x, HYPER_STRIDE)) * m.gain.gain(torch.tensor([quality]))
        z = m.h_a(y)
        hyper = m.h_s(torch.round(z))
        y_hat, _ = m.context(y, hyper, rounding=lambda v, mu: torch.round(v - mu) + mu, table_scales=False)
    p = ls._problem(m, x, quality)
    gen = torch.Generator().manual_seed(0)

    def soft(v: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        return mean + ls._soft_round(v - mean, cfg.tau_start, cfg.sharpness, gen)

    def step() -> None:
        yv, zv = y.clone().requires_grad_(True), z.clone().requires_grad_(True)
        loss = p.loss(yv, ls._soft_round(zv, cfg.tau_start, cfg.sharpness, gen), soft, table_scales=False)
        torch.autograd.grad(loss, [yv, zv])

    def g_s() -> None:
        a = y_hat.clone().requires_grad_(True)
        out = m.g_s(a * p.inv_gain)[:, :, : x.shape[2], : x.shape[3]].clamp(0, 1)
        torch.autograd.grad(torch.mean((out - x) ** 2), [a])

    def context() -> None:
        yv, h = y.clone().requires_grad_(True), hyper.clone().requires_grad_(True)
        out, lik = m.context(yv, h, rounding=soft, table_scales=False)
        torch.autograd.grad(out.sum() + torch.log2(lik).sum(), [yv, h])

    def h_s() -> None:
        a = torch.round(z).requires_grad_(True)
        torch.autograd.grad(m.h_s(a).sum(), [a])

    def soft_round() -> None:
        a = y.clone().requires_grad_(True)
        torch.autograd.grad(ls._soft_round(a, cfg.tau_start, cfg.sharpness, gen).sum(), [a])

    def g_s_forward() -> None:
        with torch.no_grad():
            m.g_s(y_hat * p.inv_gain)

    return {"step": step, "g_s": g_s, "context": context, "h_s": h_s, "soft_round": soft_round,
            "hard_check": lambda: ls._hard(p, y, z), "hard_check_g_s": g_s_forward}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("image", type=Path)
    ap.add_argument("--size", type=int, default=0, help="centre crop side in pixels (0: the whole image)")
    ap.add_argument("--quality", type=float, default=4.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=200, help="search length whose checks are spread")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = ImageCodec.default().model
    rgb = np.asarray(Image.open(args.image).convert("RGB"))
    if args.size:
        h0, w0 = (rgb.shape[0] - args.size) // 2, (rgb.shape[1] - args.size) // 2
        rgb = rgb[h0 : h0 + args.size, w0 : w0 + args.size]
    x = from_pixels(np.ascontiguousarray(rgb)).unsqueeze(0)
    ms = {name: cpu_ms(f, args.repeats) for name, f in parts(model, x, args.quality).items()}
    cfg = ls.SearchConfig(iterations=args.iterations)
    checks = sum(cfg.checks(t) for t in range(cfg.iterations)) / cfg.iterations
    every = 1 / cfg.check_every

    def shares(rate: float) -> dict[str, float]:
        per = ms["step"] + rate * ms["hard_check"]
        return {k: v * (rate if k.startswith("hard_check") else 1) / per for k, v in ms.items()}

    report = {"image": args.image.name, "pixels": list(x.shape[-2:]), "quality": args.quality,
              "iterations": cfg.iterations, "cpu_ms": ms,
              "checks_per_iteration": checks, "per_iteration_ms": ms["step"] + checks * ms["hard_check"],
              "share_of_iteration": shares(checks),
              "checks_per_iteration_every": every, "per_iteration_ms_every": ms["step"] + every * ms["hard_check"],
              "share_of_iteration_every": shares(every)}
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
