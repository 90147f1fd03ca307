"""Validation with real bitstreams: actual coded bytes and PSNR of the decoded 8-bit image."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from PIL import Image

from ..image_model import ImageModel
from ..transforms import HYPER_STRIDE, from_pixels, pad_to_multiple
from .data import list_images

VAL_QUALITIES = (1.0, 4.0, 8.0)


def val_qualities(levels: int) -> tuple[float, ...]:
    """The VAL_QUALITIES a model with `levels` levels has, and always its top level."""
    qs = tuple(q for q in VAL_QUALITIES if q < levels)
    return qs + (float(levels),)


@torch.no_grad()
def validate(model: ImageModel, folder: str, max_images: int, device: torch.device) -> dict:
    """Mean real bpp and PSNR per validation quality over the first `max_images` images."""
    coder = copy.deepcopy(model).to(device).eval()
    coder.build_tables()
    res: dict = {}
    paths = list_images(folder)[:max_images]
    for q in val_qualities(model.config.levels):
        bpps, psnrs = [], []
        for p in paths:
            with Image.open(p) as im:
                arr = np.asarray(im.convert("RGB"))
            x = from_pixels(arr, device).unsqueeze(0)
            h, w = arr.shape[:2]
            xp = pad_to_multiple(x, HYPER_STRIDE)
            streams, _ = coder.compress(xp, q)
            rec = coder.decompress(streams, q, tuple(xp.shape[-2:]), device)[..., :h, :w]
            rec8 = (rec.clamp(0, 1) * 255).round()
            mse = float(((rec8 - (x * 255).round()) ** 2).mean())
            bpps.append(8 * sum(len(s) for s in streams) / (h * w))
            psnrs.append(10 * math.log10(255**2 / max(mse, 1e-10)))
        res[f"q{q:g}_bpp"] = round(float(np.mean(bpps)), 4)
        res[f"q{q:g}_psnr"] = round(float(np.mean(psnrs)), 3)
    return res
