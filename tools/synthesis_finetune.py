"""Synthesis-only training measured on the very same bits: PSNR of other g_s weights per quality level.

`lcodec train --train-only g_s` (or `g_s.blocks`, with `--arch gs_blocks=K`) changes nothing but the
synthesis transform, so every latent, and so every file, stays as the bundled model codes it; only the
reconstruction changes. This script checks that claim for each checkpoint (every tensor outside g_s
must equal the model's) and then decodes the model's own coded latents (the exact, fixed-point path a
decoder runs) through the model's g_s and each checkpoint's:

    python -m tools.synthesis_finetune ../shared/data/eval runs/gs/last.pt \\
        --out bench/results/studies/synthesis-finetune.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lcodec.bench.metrics import psnr_rgb
from lcodec.bench.report import show_and_save
from lcodec.bench.run_images import list_images
from lcodec.codec import ImageCodec
from lcodec.codec.image_codec import fixed_threads
from lcodec.codec.image_io import read_image
from lcodec.codec.image_model import ImageModel, ModelConfig
from lcodec.codec.registry import load_learned
from lcodec.codec.training.loop import load_checkpoint
from lcodec.codec.transforms import to_pixels


def load_synthesis(checkpoint: str | Path, base: ImageModel) -> tuple[nn.Module, dict]:
    """A checkpoint's g_s and its training options; ValueError if anything but g_s differs from `base`
    (its files would then not be the base model's)."""
    state = load_checkpoint(checkpoint)
    cfg = state.get("config", {})
    model = ImageModel(ModelConfig.from_dict(cfg.get("model") or {}))
    if problems := load_learned(model, state["model"]):
        raise ValueError(f"{checkpoint}: weights do not fit their architecture ({', '.join(problems[:3])})")
    own = base.state_dict()
    changed = [k for k, v in model.state_dict().items()
               if not k.startswith("g_s.") and not k.endswith("cdf_table")
               and (k not in own or own[k].shape != v.shape or not torch.equal(own[k].float(), v.float()))]
    if changed:
        raise ValueError(f"{checkpoint}: not a synthesis-only change of this model ({', '.join(changed[:3])} differ)")
    options = {k: cfg.get(k) for k in ("steps", "batch", "patch", "lr", "min_lr", "quality_bias", "level_weight",
                                       "train_only", "seed")}
    options["gs_blocks"] = model.config.gs_blocks
    options["step"] = int(state["step"])
    return model.g_s.eval(), options


@torch.no_grad()
def run(folder: Path, checkpoints: list[Path], levels: tuple[float, ...] = (1, 3, 6, 9, 12),
        model: str | None = None) -> dict:
    """Mean PSNR per level of the model's g_s and of each checkpoint's on the model's coded latents."""
    codec = ImageCodec.from_model(model) if model else ImageCodec.default()
    base = codec.model
    # a list, not a dict: the same checkpoint named twice is measured (and listed) twice
    variants = [("bundled" if model is None else str(model), base.g_s, {})]
    variants += [(str(path), *load_synthesis(path, base)) for path in checkpoints]
    psnrs = [{q: [] for q in levels} for _ in variants]
    for path in list_images(folder):
        analysis = codec.analyse(read_image(path).stripped())  # g_a once; each level codes it as `lcodec encode` does
        rgb = analysis.prepared.rgb
        h, w = rgb.shape[:2]
        for q in levels:
            _, y_hat = codec.encode_analysis(analysis, q)
            latent = y_hat * base.gain.inverse_gain(torch.tensor([float(q)]))
            with fixed_threads():  # as the decoder runs g_s: pixels independent of the thread count
                for (_, g_s, _), per_level in zip(variants, psnrs):
                    per_level[q].append(psnr_rgb(rgb, to_pixels(g_s(latent)[0, :, :h, :w])))
    return {"weights_hash": codec.loaded.weights_hash.hex(), "images": len(psnrs[0][levels[0]]),
            "levels": list(levels),
            "variants": [{"name": name, "options": options,
                          "psnr": [round(float(np.mean(per_level[q])), 3) for q in levels]}
                         for (name, _, options), per_level in zip(variants, psnrs)]}


def markdown(result: dict) -> str:
    reference = result["variants"][0]
    base = reference["psnr"]
    head = " | ".join(f"q{q:g}" for q in result["levels"])
    lines = [f"| g_s | {head} |", "|---" * (1 + len(result["levels"])) + "|",
             f"| {reference['name']} (dB) | " + " | ".join(f"{v:.3f}" for v in base) + " |"]
    for v in result["variants"][1:]:
        changes = " | ".join(f"{p - b:+.3f}" for p, b in zip(v["psnr"], base))
        lines.append(f"| {v['name']} (dB change) | {changes} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("checkpoints", type=Path, nargs="+", help="training checkpoints (.pt) of --train-only g_s runs")
    parser.add_argument("--levels", default="1,3,6,9,12", help="comma-separated quality levels")
    parser.add_argument("--model", default=None, help="weights file or bundled name (default: the bundled model)")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = parser.parse_args(argv)
    levels = tuple(float(v) for v in args.levels.split(","))
    result = run(args.folder, args.checkpoints, levels, args.model)
    show_and_save(f"weights {result['weights_hash']}, {result['images']} images, the model's own coded latents",
                  markdown(result), result, args.out)


if __name__ == "__main__":
    main()
