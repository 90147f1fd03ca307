"""Validation with real files: the weights as `export` would write them code each validation image
through `ImageCodec` (the path users' files take) into a version-4 file; bpp counts the file's bytes,
PSNR compares the pixels the file decodes to with the original's."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..image_codec import ImageCodec
from ..image_model import ImageModel
from ..metrics import psnr
from ..registry import DEFAULT_MODEL, load_model_bytes, release_weights
from .data import list_images

VAL_QUALITIES = (1.0, 4.0, 8.0)


def val_qualities(levels: int) -> tuple[float, ...]:
    """The VAL_QUALITIES a model with `levels` levels has, and always its top level."""
    qs = tuple(q for q in VAL_QUALITIES if q < levels)
    return qs + (float(levels),)


def release_codec(model: ImageModel, device: torch.device | str = "cpu") -> ImageCodec:
    """An ImageCodec of `model` as its exported weights would load: tables built and float weights
    through float16, as `export` writes them, read back from the weights file's bytes (in memory; the
    training model is left as it is). It writes files under the bundled model's name, so their
    headers are as long as a released model's."""
    coder = copy.deepcopy(model).cpu().eval()
    coder.build_tables()
    data = release_weights(coder, DEFAULT_MODEL, {"weights": "validation"})
    return ImageCodec(load_model_bytes(data, Path("<validation weights>")), device)


@torch.no_grad()
def validate(model: ImageModel, folder: str, max_images: int, device: torch.device) -> dict:
    """Mean real bpp and PSNR per validation quality over the first `max_images` images: keys
    ``q{q}_bpp`` and ``q{q}_psnr``. Images are read as RGB (no EXIF rotation, no metadata record)."""
    codec = release_codec(model, device)
    qualities = val_qualities(model.config.levels)
    bpps: dict[float, list[float]] = {q: [] for q in qualities}
    psnrs: dict[float, list[float]] = {q: [] for q in qualities}
    for p in list_images(folder)[:max_images]:
        with Image.open(p) as im:
            rgb = np.asarray(im.convert("RGB"))
        h, w = rgb.shape[:2]
        analysis = codec.analyse(rgb)  # g_a once; each quality gains and codes its latent
        for q in qualities:
            blob, _ = codec.encode_analysis(analysis, q)
            bpps[q].append(8 * len(blob) / (h * w))
            psnrs[q].append(psnr(np.asarray(codec.decode(blob)), rgb))
    res: dict = {}
    for q in qualities:
        res[f"q{q:g}_bpp"] = round(float(np.mean(bpps[q])), 4)
        res[f"q{q:g}_psnr"] = round(float(np.mean(psnrs[q])), 3)
    return res
