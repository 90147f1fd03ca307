"""codec.transforms.from_pixels / to_pixels: the one conversion between 8-bit pixels and g_a/g_s tensors."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from PIL import Image

from lcodec.codec.transforms import from_pixels, to_pixels


def test_from_pixels_takes_read_only_and_strided_arrays_and_round_trips():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    read_only = np.asarray(Image.fromarray(rgb))  # Pillow hands out arrays torch would warn about
    flipped = rgb[:, ::-1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tensors = [from_pixels(a) for a in (rgb, read_only, flipped)]
    x = tensors[0]
    assert x.shape == (3, 5, 7) and x.dtype == torch.float32
    assert torch.equal(x, tensors[1]) and torch.equal(tensors[2], x.flip(-1))
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert np.array_equal(to_pixels(x), rgb) and np.array_equal(to_pixels(tensors[2]), flipped)
    assert read_only.flags.writeable is False  # the caller's array is left as it was
