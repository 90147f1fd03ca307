"""What bounds the top of the image rate-distortion curve: the data, the latent width or g_s.

`tools.transform_ceiling` shows the coded PSNR of the top qualities pressing against the transforms'
unquantized ceiling. This script asks which part of the model sets that ceiling, per image:

* detail: the mean absolute difference between neighbouring pixels of each evaluation image, and of
  training patches drawn the way `lcodec train` draws them (if the patches were smoother than the
  images, the transforms would never have seen the detail they fail on);
* linear bound: the PSNR of an image rebuilt from the top M principal components of its own 16x16 RGB
  blocks, M being the model's latent channels: roughly what M numbers per 16x16 block can carry;
* analysis or synthesis: on the crop where the unquantized reconstruction is worst, the latent is
  optimised directly for MSE through g_s. What that gains over g_a's latent is the most a better
  encoder could add; what it does not is the synthesis transform's own limit.

    python -m tools.top_end ../shared/data/eval --train ../shared/data/train --out bench/results/studies/top-end.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from lcodec.bench.metrics import psnr, psnr_rgb
from lcodec.bench.report import show_and_save
from lcodec.bench.run_images import list_images
from lcodec.codec import ImageCodec
from lcodec.codec.image_io import read_image
from lcodec.codec.training.data import PatchSampler
from lcodec.codec.transforms import LATENT_STRIDE, from_pixels, to_pixels

from tools.transform_ceiling import unquantized


def detail(rgb: np.ndarray) -> float:
    """Mean absolute difference between vertical and horizontal neighbours (8-bit units), summed."""
    a = rgb.astype(np.float32)
    return float(np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean())


def training_detail(folder: Path, patches: int, side: int = 256, seed: int = 0) -> list[float]:
    """`detail` of `patches` training patches drawn as `lcodec train` draws them."""
    sampler = PatchSampler(folder, side, seed=seed)
    return [detail(sampler.sample().permute(1, 2, 0).mul(255).numpy()) for _ in range(patches)]


def block_pca_psnr(rgb: np.ndarray, components: int, block: int = LATENT_STRIDE) -> float:
    """PSNR of `rgb` rebuilt from the top `components` principal components of its block x block RGB
    blocks (the image's own basis, fitted to it: an optimistic linear bound)."""
    h, w = (rgb.shape[0] // block) * block, (rgb.shape[1] // block) * block
    a = rgb[:h, :w].astype(np.float64)
    blocks = a.reshape(h // block, block, w // block, block, 3).transpose(0, 2, 1, 3, 4).reshape(-1, block * block * 3)
    mean = blocks.mean(axis=0)
    centred = blocks - mean
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    basis = vt[:components]
    rebuilt = centred @ basis.T @ basis + mean
    return psnr(rebuilt, blocks)


def worst_crop(rgb: np.ndarray, recon: np.ndarray, side: int) -> tuple[int, int]:
    """Top-left corner (on the latent grid) of the side x side crop with the largest squared error."""
    err = ((rgb.astype(np.float64) - recon) ** 2).sum(axis=2)
    best, corner = -1.0, (0, 0)
    step = LATENT_STRIDE
    for y in range(0, max(1, rgb.shape[0] - side + 1), step):
        for x in range(0, max(1, rgb.shape[1] - side + 1), step):
            e = float(err[y : y + side, x : x + side].sum())
            if e > best:
                best, corner = e, (y, x)
    return corner


def optimise_latent(codec: ImageCodec, crop: np.ndarray, quality: float, iters: int, lr: float) -> tuple[float, float]:
    """(PSNR of g_s at g_a's unquantized latent, best PSNR reached by optimising that latent for MSE
    through g_s) on one crop whose sides are multiples of the latent stride."""
    model = codec.model
    x = from_pixels(crop).unsqueeze(0)
    q = torch.tensor([float(quality)])
    with torch.no_grad():
        inv = model.gain.inverse_gain(q)
        y = (model.g_a(x) * model.gain.gain(q)).clone()
    params = {p: p.requires_grad for p in model.parameters()}
    for p in params:
        p.requires_grad_(False)
    try:
        latent = y.requires_grad_(True)
        opt = torch.optim.Adam([latent], lr=lr)
        scores = []  # PSNR of the 8-bit reconstruction at every iterate, g_a's latent first
        for _ in range(iters + 1):
            x_hat = model.g_s(latent * inv)
            scores.append(psnr_rgb(crop, to_pixels(x_hat[0])))
            opt.zero_grad()
            (x_hat - x).pow(2).mean().backward()
            opt.step()
    finally:
        for p, flag in params.items():
            p.requires_grad_(flag)
    return scores[0], max(scores)


def run(folder: Path, train: Path | None = None, quality: float | None = None, crop: int = 256,
        crops: int = 3, iters: int = 200, lr: float = 0.5, patches: int = 400, model: str | None = None) -> dict:
    """Per-image detail, linear bound and unquantized ceiling at `quality` (default: the model's top
    level), and the latent-optimisation test on the worst crop of the `crops` images with the lowest ceiling."""
    codec = ImageCodec.from_model(model) if model else ImageCodec.default()
    quality = float(quality if quality is not None else codec.levels[-1])
    m = codec.model.config.m
    images = []
    for path in list_images(folder):
        rgb = read_image(path).rgb
        recon = unquantized(codec, rgb, quality)
        images.append({"image": path.name, "detail": round(detail(rgb), 2),
                       "unquantized_psnr": round(psnr_rgb(rgb, recon), 2),
                       "pca_psnr": round(block_pca_psnr(rgb, m), 2), "_rgb": rgb, "_recon": recon})
    for item in sorted(images, key=lambda d: d["unquantized_psnr"])[:crops]:
        rgb = item["_rgb"]
        side = min(crop, min(rgb.shape[:2]) // LATENT_STRIDE * LATENT_STRIDE)
        if side < LATENT_STRIDE:
            continue
        y0, x0 = worst_crop(rgb, item["_recon"], side)
        before, after = optimise_latent(codec, rgb[y0 : y0 + side, x0 : x0 + side], quality, iters, lr)
        item["crop"] = {"top": y0, "left": x0, "side": side, "g_a_psnr": round(before, 2),
                        "optimised_psnr": round(after, 2)}
    for item in images:
        del item["_rgb"], item["_recon"]
    result = {"weights_hash": codec.loaded.weights_hash.hex(), "latent_channels": m, "quality": quality,
              "iters": iters, "lr": lr, "images": images}
    if train is not None:
        d = training_detail(train, patches, side=crop)
        result["training_detail"] = {"patches": patches, "side": crop,
                                     "mean": round(float(np.mean(d)), 2),
                                     "p10_p50_p90": [round(float(v), 2) for v in np.percentile(d, [10, 50, 90])]}
    return result


def markdown(result: dict) -> str:
    lines = [f"| image | detail | unquantized PSNR at q{result['quality']:g} (dB) | "
             f"PCA bound, {result['latent_channels']} per 16x16 (dB) | "
             "worst crop: g_a latent / optimised latent (dB) |", "|---|---|---|---|---|"]
    for d in result["images"]:
        c = d.get("crop")
        crop = f"{c['g_a_psnr']:.2f} / {c['optimised_psnr']:.2f}" if c else "-"
        lines.append(f"| {d['image']} | {d['detail']:.1f} | {d['unquantized_psnr']:.2f} | {d['pca_psnr']:.2f} "
                     f"| {crop} |")
    text = "\n".join(lines) + "\n"
    if "training_detail" in result:
        t = result["training_detail"]
        ev = np.mean([d["detail"] for d in result["images"]])
        text += (f"\ndetail of the evaluation images: mean {ev:.2f}; of {t['patches']} training patches: mean "
                 f"{t['mean']:.2f}, 10/50/90th percentiles {', '.join(f'{v:.1f}' for v in t['p10_p50_p90'])}\n")
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--train", type=Path, default=None, help="training photos, to compare their detail")
    parser.add_argument("--quality", type=float, default=None, help="default: the model's top level")
    parser.add_argument("--crop", type=int, default=256,
                        help="crop side for the latent optimisation, and side of the training patches drawn")
    parser.add_argument("--crops", type=int, default=3, help="images (lowest ceilings first) given the test")
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--patches", type=int, default=400)
    parser.add_argument("--model", default=None, help="weights file or bundled name (default: the bundled model)")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = parser.parse_args(argv)
    result = run(args.folder, args.train, args.quality, args.crop, args.crops, args.iters, args.lr, args.patches,
                 args.model)
    show_and_save(f"weights {result['weights_hash']}, {result['iters']} Adam steps at lr {result['lr']:g} on each "
                  "worst crop", markdown(result), result, args.out)


if __name__ == "__main__":
    main()
