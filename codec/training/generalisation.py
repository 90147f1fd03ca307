"""The gap between training and evaluation loss: the same rate-distortion loss on fixed patches of the
training photos and of the validation images, at fixed qualities.

A model that only memorises its few training photos shows a growing gap; one limited by capacity or
by too little training shows none. Both sets are measured the same way (eval mode: rounded latents,
the coder's table scales), so the gap says nothing about the noise proxy of training.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..image_model import ImageModel
from ..transforms import from_pixels
from .data import open_photos
from .loop import rd_loss

SIDE = 256  # patch side
PATCHES = 8  # patches per set


@lru_cache(maxsize=4)
def fixed_patches(folder: str | Path, count: int = PATCHES, side: int = SIDE) -> torch.Tensor:
    """`count` centre crops [count, 3, side, side], one per image in turn: JPEG photos downscaled by 2
    first (as training draws them), the others as they are."""
    photos = open_photos(folder, side)
    out = []
    for i in range(count):
        im, factor = photos[i % len(photos)]
        if factor > 1:
            im = im.resize((round(im.width / factor), round(im.height / factor)), Image.Resampling.BICUBIC)
        shift = (i // len(photos)) * side  # a second pass over few images takes the next crop along
        x0 = max(0, min(im.width - side, (im.width - side) // 2 + shift))
        y0 = (im.height - side) // 2
        out.append(from_pixels(np.asarray(im.crop((x0, y0, x0 + side, y0 + side)))))
    return torch.stack(out)


@torch.no_grad()
def rd_losses(model: ImageModel, patches: torch.Tensor, qualities: tuple[float, ...]) -> dict[float, float]:
    """Mean lambda * 255^2 * MSE + bpp of `patches` at each quality (eval mode)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    res = {}
    x = patches.to(device)
    for q in qualities:
        qt = torch.full((x.shape[0],), float(q), device=device)
        res[q] = float(rd_loss(model(x, qt), x, qt)["loss"])
    model.train(was_training)
    return res


def loss_gap(model: ImageModel, train: torch.Tensor, val: torch.Tensor, qualities: tuple[float, ...]) -> dict:
    """Per quality: the loss on training and on validation patches, and their gap (validation - training)."""
    a, b = rd_losses(model, train, qualities), rd_losses(model, val, qualities)
    out = {}
    for q in qualities:
        out[f"train_loss_q{q:g}"] = round(a[q], 4)
        out[f"val_loss_q{q:g}"] = round(b[q], 4)
        out[f"loss_gap_q{q:g}"] = round(b[q] - a[q], 4)
    return out
