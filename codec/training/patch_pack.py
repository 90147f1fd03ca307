"""Patch packs: pre-cut, pre-downscaled training patches in one small file (``.lcp``).

A GPU session gets a few minutes and 64 MB of luggage: decoding multi-megapixel JPEGs and resizing
them with PIL in the training step would starve the GPU, and the photos themselves may not travel.
A pack holds square patches already cut from downscaled photos, by the same rules as `PatchSampler`
(photos drawn in turn, JPEG sources downscaled by a random factor >= 2, others >= 1, up to 4, bicubic
with antialiasing), so a run trains on the same kind of pixels either way.

File layout (a plain safetensors file: loading runs no pickled code):

- ``images``: uint8 [total bytes], every patch's losslessly compressed image, one after another;
- ``offsets``: int64 [count + 1], patch i is ``images[offsets[i]:offsets[i+1]]``;
- metadata (strings): ``format`` = ``lcodec-patch-pack``, ``version`` = ``1``, ``side``, ``count``,
  ``image_format`` (``webp`` or ``png``), ``seed``, ``source``, ``photos``.

Patches are stored as lossless WebP by default: on these photos about 20 % smaller than PNG at its
strongest setting and faster to encode and decode, so about a quarter more patches fit under the cap;
PNG remains an option and both read back the same way. The stored side is 320 px: a 256 training crop
then has 65 x 65 positions (and a mirror) in every patch, while the stored pixels per patch stay 1.56 x
those of a crop. Building stops at the first patch that would take the file over `max_mb` MiB.

`PackSampler` decodes the pack once into one uint8 tensor [N, 3, S, S] on the training device and draws
batches with random crops and horizontal flips as one gather there: no PIL and no host work per step.
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

from ..errors import InputError
from ..registry import weights_bytes
from .data import open_photos

PACK_FORMAT = "lcodec-patch-pack"
PACK_VERSION = 1
_OLD_FORMAT = "lcodec-patch-pack-1"  # the first packs wrote format and version as one string
DEFAULT_PACK_SIDE = 320  # stored side; training crops (e.g. 256) are drawn at random inside it
DEFAULT_MAX_MB = 56.0
IMAGE_FORMATS = ("webp", "png")
_MAX_SIDE = 4096
_HEADER_ROOM = 4096  # bytes kept free under the cap for the safetensors header and metadata


def _encode(patch: Image.Image, image_format: str) -> bytes:
    buf = io.BytesIO()
    if image_format == "webp":
        patch.save(buf, format="WEBP", lossless=True, quality=50, method=4)
    else:
        patch.save(buf, format="PNG", compress_level=9)
    return buf.getvalue()


def build_pack(folder: str | Path, out: str | Path, side: int = DEFAULT_PACK_SIDE, max_mb: float = DEFAULT_MAX_MB,
               seed: int = 0, max_factor: float = 4.0, image_format: str = "webp",
               progress: Callable[[int, int], None] | None = None) -> dict:
    """Cut patches from the photos in turn until the file would exceed `max_mb` MiB; returns the metadata
    (and ``bytes``, the file size). Raises `InputError` for a missing folder, no usable photo or a cap too
    small for one patch. The same folder, side, cap, seed and format give the same bytes."""
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {IMAGE_FORMATS}")
    if not 16 <= side <= _MAX_SIDE:
        raise InputError(f"patch side must be between 16 and {_MAX_SIDE}, not {side}")
    try:
        photos = open_photos(folder, side)
    except FileNotFoundError as exc:
        raise InputError(str(exc)) from None
    rng = random.Random(seed)
    budget = int(max_mb * 1024 * 1024) - _HEADER_ROOM - 8  # 8: offsets[0]
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
        data = _encode(patch, image_format)
        if used + len(data) + 8 > budget:  # 8: its offset
            break
        blobs.append(data)
        used += len(data) + 8
        if progress:
            progress(len(blobs), used)
    if not blobs:
        raise InputError(f"a {max_mb} MB cap is too small for a single {side}x{side} patch")
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    meta = {"format": PACK_FORMAT, "version": str(PACK_VERSION), "side": str(side), "count": str(len(blobs)),
            "image_format": image_format, "seed": str(seed), "source": str(Path(folder)), "photos": str(len(photos))}
    # registry.weights_bytes writes the metadata in sorted order: the same inputs give the same bytes
    data = weights_bytes({"offsets": torch.from_numpy(offsets),
                          "images": torch.frombuffer(bytearray().join(blobs), dtype=torch.uint8)}, meta)
    Path(out).write_bytes(data)
    return {**meta, "bytes": len(data)}


def _read_pack(p: Path) -> tuple[np.ndarray, np.ndarray, dict, int, int]:
    """The raw parts of a pack, every field checked before anything large is allocated."""
    raw = p.read_bytes()
    try:
        tensors = st_load(raw)
        meta = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")]).get("__metadata__") or {}
    except (SafetensorError, ValueError, UnicodeDecodeError, AttributeError) as exc:
        raise InputError(f"not an lcodec patch pack: {p} ({str(exc).splitlines()[0][:80]})") from None
    fmt = meta.get("format")
    if fmt == _OLD_FORMAT:
        meta = {**meta, "format": PACK_FORMAT, "version": "1"}
    elif fmt != PACK_FORMAT:
        raise InputError(f"not an lcodec patch pack: {p} (format {fmt!r})")
    if meta.get("version") != str(PACK_VERSION):
        raise InputError(f"patch pack {p} has version {meta.get('version')!r}; "
                         f"this lcodec reads version {PACK_VERSION}")
    images = tensors.get("images", tensors.get("png"))  # "png": the first packs' name for the same tensor
    offsets = tensors.get("offsets")
    if images is None or offsets is None or images.dtype != torch.uint8 or offsets.dtype != torch.int64 \
            or images.dim() != 1 or offsets.dim() != 1:
        raise InputError(f"patch pack {p} is corrupt (tensors)")
    try:
        side, count = int(meta["side"]), int(meta["count"])
    except (KeyError, ValueError):
        raise InputError(f"patch pack {p} is corrupt (metadata)") from None
    images, offsets = images.numpy(), offsets.numpy()
    if not 16 <= side <= _MAX_SIDE or count < 1 or len(offsets) != count + 1 or offsets[0] != 0 \
            or offsets[-1] != len(images) or np.any(np.diff(offsets) <= 0):
        raise InputError(f"patch pack {p} is corrupt (sizes)")
    return images, offsets, meta, side, count


def load_pack(path: str | Path) -> tuple[torch.Tensor, dict]:
    """All patches of a pack as one uint8 tensor [N, 3, S, S], and the pack's metadata.

    Raises `InputError` (one line) for a missing file, a file that is not a pack, an unknown version or
    a corrupt patch."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"patch pack not found: {p}")
    images, offsets, meta, side, count = _read_pack(p)
    out = torch.empty(count, 3, side, side, dtype=torch.uint8)
    for i in range(count):
        try:
            with Image.open(io.BytesIO(images[offsets[i] : offsets[i + 1]].tobytes())) as im:
                if im.size != (side, side):  # checked before decoding: no oversized allocation
                    raise InputError(f"patch pack {p} is corrupt (patch {i} is {im.size[0]}x{im.size[1]})")
                arr = np.array(im.convert("RGB"))  # a writable copy
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
            raise InputError(f"patch pack {p} is corrupt (patch {i})") from None
        out[i] = torch.from_numpy(arr).permute(2, 0, 1)
    return out, meta


class PackSampler:
    """Random `patch` x `patch` crops (and horizontal flips) of a pack's patches, drawn on `device`.

    Same interface as `PatchSampler` for the training loop: ``batch(size)`` gives a float tensor
    [size, 3, patch, patch] in [0, 1], here already on the device. Draws come from a generator on
    that device seeded with `seed`, so a run's batches are reproducible on one device."""

    def __init__(self, path: str | Path, patch: int, device: torch.device | str = "cpu", seed: int = 0) -> None:
        patches, self.meta = load_pack(path)
        if patch > patches.shape[-1]:
            raise InputError(f"--patch {patch} is larger than the pack's {patches.shape[-1]}-pixel patches")
        self.device = torch.device(device)
        self.patches = patches.to(self.device)
        self.patch = patch
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        self._ar = torch.arange(patch, device=self.device)
        self._ch = torch.arange(3, device=self.device).view(1, 3, 1, 1)

    def __len__(self) -> int:
        return self.patches.shape[0]

    def batch(self, size: int) -> torch.Tensor:
        """[size, 3, P, P] float in [0, 1] on the sampler's device (one gather, no host sync)."""
        n, _, s, _ = self.patches.shape
        p, dev, ar = self.patch, self.device, self._ar
        idx = torch.randint(0, n, (size, 1, 1, 1), generator=self.gen, device=dev)
        off = torch.randint(0, s - p + 1, (size, 2), generator=self.gen, device=dev)
        flip = torch.rand(size, 1, generator=self.gen, device=dev) < 0.5
        rows = (off[:, 0:1] + ar).view(size, 1, p, 1)
        cols = (off[:, 1:2] + torch.where(flip, ar.flip(0), ar)).view(size, 1, 1, p)
        return self.patches[idx, self._ch, rows, cols].float().div_(255.0)
