"""Training patches: random crops of photos, downscaled by a random factor.

Photos (JPEGs above all) carry compression artefacts and sensor noise at full size; downscaling by
>= 2x (JPEG) or >= 1x (lossless sources) before cropping gives clean patches that look like the
images people compress. Images are decoded once and kept in memory; each sample crops a region
``patch * factor`` wide and resizes it to ``patch`` with an antialiasing filter.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import InputError
from ..transforms import from_pixels

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}
_JPEG_SUFFIXES = {".jpg", ".jpeg"}


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in (or below) `folder`, sorted for reproducibility."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"no images (png/jpg/bmp/tiff/webp) in {folder}")
    return files


def open_photos(folder: str | Path, side: int) -> list[tuple[Image.Image, float]]:
    """Every photo in `folder` that yields `side` x `side` patches, decoded, with the least factor it
    is downscaled by (2 for JPEGs, whose artefacts and noise must shrink away, else 1); InputError for
    a photo that cannot be read or when none is large enough."""
    photos = []
    for p in list_images(folder):
        try:
            with Image.open(p) as im:
                im = im.convert("RGB")
                im.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise InputError(f"cannot read training photo {p}: {str(exc)[:100]}") from None
        min_factor = 2.0 if p.suffix.lower() in _JPEG_SUFFIXES else 1.0
        if min(im.size) >= side * min_factor:
            photos.append((im, min_factor))
    if not photos:
        raise InputError(f"no image in {folder} is large enough for {side}x{side} patches "
                         f"(JPEGs need {2 * side} px on the short side, since they are downscaled >= 2x)")
    return photos


class PatchSampler:
    """Draws random training patches from a folder of photos, all held in memory."""

    def __init__(self, folder: str | Path, patch: int, max_factor: float = 4.0, seed: int = 0) -> None:
        self.patch = patch
        self.max_factor = max_factor
        self.rng = random.Random(seed)
        self.images = open_photos(folder, patch)

    def sample(self) -> torch.Tensor:
        """One [3, P, P] float patch in [0, 1]."""
        im, min_factor = self.images[self.rng.randrange(len(self.images))]
        w, h = im.size
        top_factor = min(self.max_factor, min(w, h) / self.patch)
        factor = self.rng.uniform(min_factor, max(min_factor, top_factor))
        side = max(self.patch, int(round(self.patch * factor)))
        x0 = self.rng.randrange(0, w - side + 1)
        y0 = self.rng.randrange(0, h - side + 1)
        crop = im.crop((x0, y0, x0 + side, y0 + side))
        if side != self.patch:
            crop = crop.resize((self.patch, self.patch), Image.Resampling.BICUBIC, reducing_gap=2.0)
        arr = np.asarray(crop, dtype=np.uint8)
        if self.rng.random() < 0.5:
            arr = arr[:, ::-1]
        return from_pixels(arr)

    def batch(self, size: int) -> torch.Tensor:
        return torch.stack([self.sample() for _ in range(size)])
