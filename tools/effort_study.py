"""Latent-search settings study (issue 29): hard-rounded RD loss against iterations, per setting.

Runs `codec.latent_search` with variants of its `SearchConfig` on 256x256 centre crops of training
photos (never the evaluation set: the settings are tuned here) at a few qualities, and writes every
search's hard-rounded loss history as JSON. A photo larger than 512 px on its short side is first
scaled down to 512, so a crop holds about as much detail as a crop of a 768x512 evaluation image.

    python3 tools/effort_study.py --images A.png,B.jpg --qualities 1,4,8 --iterations 60 \
        --variants base,lr02 --out bench/results/effort/study.json

The metric is the relative change of the best hard-rounded loss against the start (effort 0) after
n iterations, `gain[n]`, for n at every check (from the first iterations on for the variants without
the patience rule, from the search's own first check for those with it); lower is better.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lcodec.codec import ImageCodec
from lcodec.codec.latent_search import SearchConfig, search_latents
from lcodec.codec.transforms import HYPER_STRIDE, from_pixels, pad_to_multiple

#: Named variants: overrides of the default `SearchConfig`. Those measured before the patience rule
#: run without it (patience 0, their checks recorded from the start), and those measured before z had
#: its own step keep z at y's step (z_scale 1.0), so that each reproduces the study file it was
#: measured for (`bench/results/effort/study.json`, `study-z-step.json`, `study-patience.json`).
_BEFORE_PATIENCE: dict[str, dict] = {
    "lr005": {"lr": 0.005, "gain_power": 0.0, "z_scale": 1.0},
    "lr01": {"lr": 0.01, "gain_power": 0.0, "z_scale": 1.0},
    "lr02": {"lr": 0.02, "gain_power": 0.0, "z_scale": 1.0},
    "lr04": {"lr": 0.04, "gain_power": 0.0, "z_scale": 1.0},
    "lr02to005": {"lr": 0.02, "lr_end": 0.005, "gain_power": 0.0, "z_scale": 1.0},
    "lr04to01": {"lr": 0.04, "lr_end": 0.01, "gain_power": 0.0, "z_scale": 1.0},
    "gain05": {"gain_power": 0.5, "z_scale": 1.0},
    "gain08": {"gain_power": 0.8, "z_scale": 1.0},
    "tau06to03": {"tau_start": 0.6, "tau_end": 0.3, "z_scale": 1.0},
    "tau04": {"tau_start": 0.4, "tau_end": 0.4, "z_scale": 1.0},
    "sharp15": {"sharpness": 1.5, "z_scale": 1.0},
    "sharp35": {"sharpness": 3.5, "z_scale": 1.0},
    "z1": {"z_scale": 1.0},  # the search until z got its own step
    "z0": {"z_scale": 0.0},
    "decay4": {"z_scale": 1.0, "lr_end": 0.025 / 4},
    "z01": {},  # the search until the patience rule
    "z01decay4": {"lr_end": 0.025 / 4},
    "z01half": {"lr": 0.0125},
    "z01g03": {"gain_power": 0.3},
    "tau01decay4": {"tau_end": 0.1, "lr_end": 0.025 / 4},
    "lr035": {"lr": 0.035},
}
VARIANTS: dict[str, dict] = {
    "default": {},
    **{name: {"patience": 0, "check_after": 0.0, **v} for name, v in _BEFORE_PATIENCE.items()},
    "lr05pat4": {"lr": 0.05},  # twice the first step, with the patience rule
    "lr075": {"lr": 0.075},  # for the short searches of effort 1
    "lr05ce2": {"lr": 0.05, "check_every": 2},
    "ce2": {"check_every": 2},
    "ce1": {"check_every": 1},
    "ce2half": {"check_every": 2, "lr": 0.0125},
}


def crop(path: Path, size: int = 256) -> np.ndarray:
    """Centre crop of the photo, scaled down first to 512 px on its short side if larger."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        short = min(im.size)
        if short > 512:
            im = im.resize((round(im.width * 512 / short), round(im.height * 512 / short)), Image.LANCZOS)
        rgb = np.asarray(im)
    h0, w0 = (rgb.shape[0] - size) // 2, (rgb.shape[1] - size) // 2
    return np.ascontiguousarray(rgb[h0 : h0 + size, w0 : w0 + size])


def run(model: torch.nn.Module, rgb: np.ndarray, quality: float, config: SearchConfig) -> dict:
    """One search; its hard-loss history and best-so-far relative gains."""
    x = from_pixels(rgb).unsqueeze(0)
    with torch.no_grad():
        y = model.g_a(pad_to_multiple(x, HYPER_STRIDE)) * model.gain.gain(torch.tensor([quality]))
    t0 = time.process_time()
    r = search_latents(model, x, y, quality, config)
    cpu = time.process_time() - t0
    best, gains = r.start_loss, {}
    for it, value in r.history:
        best = min(best, value)
        gains[it] = best / r.start_loss - 1.0
    return {"start_loss": r.start_loss, "loss": r.loss, "best_iteration": r.best_iteration,
            "history": r.history, "gain": gains, "cpu_s": cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", required=True, help="comma-separated photo paths (training set)")
    ap.add_argument("--qualities", default="1,4,8")
    ap.add_argument("--iterations", type=int, default=60)
    ap.add_argument("--check-every", type=int, default=4)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = ImageCodec.default().model
    crops = {Path(p).stem: crop(Path(p)) for p in args.images.split(",")}
    qualities = [float(q) for q in args.qualities.split(",")]
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    for name in args.variants.split(","):
        config = dataclasses.replace(SearchConfig(iterations=args.iterations, check_every=args.check_every),
                                     **VARIANTS[name])
        for stem, rgb in crops.items():
            for q in qualities:
                key = f"{name}|{stem}|{q:g}|{args.iterations}"
                if key in results:
                    continue
                results[key] = run(model, rgb, q, config)
                g = results[key]["gain"]
                print(f"{key}: {100 * g[max(g)]:+.2f} % ({results[key]['cpu_s']:.0f} CPU s)", flush=True)
                args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
