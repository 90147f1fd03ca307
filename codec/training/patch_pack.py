"""Patch packs: pre-cut, pre-downscaled training patches in one small file (``.lcp``).

A GPU session gets a few minutes and 64 MB of luggage: decoding multi-megapixel JPEGs and resizing
them with PIL in the training step would starve the GPU, and the photos themselves may not travel.
A pack holds square patches already cut from downscaled photos (the same rules as `PatchSampler`:
JPEG sources downscaled >= 2x, others >= 1x, antialiased), each stored losslessly as PNG bytes inside
one safetensors file (a uint8 byte tensor + offsets + JSON metadata; loading runs no pickled code).
`PackSampler` decodes the pack once into one uint8 tensor on the training device and draws batches
with random crops and flips as tensor ops: no PIL and no host work in the step.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ..errors import InputError
from .data import _JPEG_SUFFIXES, list_images

PACK_FORMAT = "lcodec-patch-pack-1"
DEFAULT_PACK_SIDE = 320  # stored side; training crops (e.g. 256) are drawn at random inside it


def build_pack(folder: str | Path, out: str | Path, side: int = DEFAULT_PACK_SIDE, max_mb: float = 56.0,
               seed: int = 0, max_factor: float = 4.0, progress: Callable[[int, int], None] | None = None) -> dict:
    """Cut patches round-robin over the photos until the file would exceed `max_mb`; returns metadata."""
    rng = random.Random(seed)
    paths = list_images(folder)
    photos = []
    for p in paths:
        with Image.open(p) as im:
            im = im.convert("RGB")
            im.load()
        min_factor = 2.0 if p.suffix.lower() in _JPEG_SUFFIXES else 1.0
        if min(im.size) >= side * min_factor:
            photos.append((im, min_factor))
    if not photos:
        raise InputError(f"no image in {folder} is large enough for {side}x{side} patches")
    budget = int(max_mb * 1024 * 1024) - 4096  # room for the safetensors header and metadata
    blobs: list[bytes] = []
    used = 0
    while True:
        im, min_factor = photos[len(blobs) % len(photos)]
        w, h = im.size
        factor = rng.uniform(min_factor, max(min_factor, min(max_factor, min(w, h) / side)))
        crop_side = max(side, int(round(side * factor)))
        x0, y0 = rng.randrange(0, w - crop_side + 1), rng.randrange(0, h - crop_side + 1)
        patch = im.crop((x0, y0, x0 + crop_side, y0 + crop_side))
        if crop_side != side:
            patch = patch.resize((side, side), Image.Resampling.BICUBIC, reducing_gap=2.0)
        buf = io.BytesIO()
        patch.save(buf, format="PNG", compress_level=9)
        data = buf.getvalue()
        if used + len(data) + 8 > budget:
            break
        blobs.append(data)
        used += len(data) + 8
        if progress:
            progress(len(blobs), used)
    if not blobs:
        raise InputError(f"--max-mb {max_mb} is too small for a single patch")
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    meta = {"format": PACK_FORMAT, "side": str(side), "count": str(len(blobs)), "seed": str(seed),
            "source": str(Path(folder)), "photos": str(len(photos))}
    data = st_save({"png": torch.frombuffer(bytearray(b"".join(blobs)), dtype=torch.uint8),
                    "offsets": torch.from_numpy(offsets)}, metadata=meta)
    Path(out).write_bytes(data)
    return {**meta, "bytes": len(data)}


def load_pack(path: str | Path) -> tuple[torch.Tensor, dict]:
    """All patches of a pack as one uint8 tensor [N, 3, S, S], and the pack's metadata."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"patch pack not found: {p}")
    raw = p.read_bytes()
    try:
        tensors = st_load(raw)
        meta = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")]).get("__metadata__", {})
        png, offsets = tensors["png"].numpy(), tensors["offsets"].numpy()
    except (SafetensorError, KeyError, ValueError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not an lcodec patch pack: {p} ({str(exc)[:80]})") from None
    if meta.get("format") != PACK_FORMAT:
        raise InputError(f"not an lcodec patch pack: {p} (format {meta.get('format')!r})")
    side, count = int(meta["side"]), int(meta["count"])
    if len(offsets) != count + 1 or offsets[0] != 0 or offsets[-1] != len(png) or np.any(np.diff(offsets) <= 0):
        raise InputError(f"patch pack {p} is corrupt (offsets)")
    out = torch.empty(count, 3, side, side, dtype=torch.uint8)
    for i in range(count):
        try:
            with Image.open(io.BytesIO(png[offsets[i] : offsets[i + 1]].tobytes())) as im:
                arr = np.array(im.convert("RGB"))
        except OSError:
            raise InputError(f"patch pack {p} is corrupt (patch {i})") from None
        if arr.shape != (side, side, 3):
            raise InputError(f"patch pack {p} is corrupt (patch {i} is {arr.shape})")
        out[i] = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)
    return out, meta


class PackSampler:
    """Random `patch` x `patch` crops (and flips) of a pack's patches, drawn on the training device."""

    def __init__(self, path: str | Path, patch: int, device: torch.device | str = "cpu", seed: int = 0) -> None:
        self.patches, self.meta = load_pack(path)
        if patch > self.patches.shape[-1]:
            raise InputError(f"--patch {patch} is larger than the pack's {self.patches.shape[-1]}-pixel patches")
        self.device = torch.device(device)
        self.patches = self.patches.to(self.device)
        self.patch = patch
        self.gen = torch.Generator(device=self.device).manual_seed(seed)

    def __len__(self) -> int:
        return self.patches.shape[0]

    def batch(self, size: int) -> torch.Tensor:
        """[size, 3, P, P] float in [0, 1] on the sampler's device."""
        n, _, s, _ = self.patches.shape
        dev = self.device
        idx = torch.randint(0, n, (size,), generator=self.gen, device=dev)
        off = torch.randint(0, s - self.patch + 1, (size, 2), generator=self.gen, device=dev)
        ar = torch.arange(self.patch, device=dev)
        rows = (off[:, 0:1] + ar).view(size, 1, self.patch, 1)
        flip = torch.rand(size, generator=self.gen, device=dev) < 0.5
        cols = off[:, 1:2] + torch.where(flip.view(size, 1), ar.flip(0), ar)
        cols = cols.view(size, 1, 1, self.patch)
        ch = torch.arange(3, device=dev).view(1, 3, 1, 1)
        return self.patches[idx.view(size, 1, 1, 1), ch, rows, cols].float().div_(255.0)
