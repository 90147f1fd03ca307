"""RGB <-> Y'CbCr 4:2:0 conversions done in numpy, for codecs fed raw planes (VVC intra).

Full-range BT.601 (the JPEG/JFIF matrix), chroma averaged over 2x2 blocks (centre-sited) and
brought back with a bilinear (triangle) filter at the same siting, so the conversion costs little
PSNR and is the same on every machine.
"""

from __future__ import annotations

import numpy as np

_KR, _KB = 0.299, 0.114
_KG = 1.0 - _KR - _KB


def pad_even(rgb: np.ndarray) -> np.ndarray:
    """Replicate the last row/column so both sides are even (4:2:0 needs it)."""
    h, w = rgb.shape[:2]
    return np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def rgb_to_yuv420(rgb: np.ndarray, bit_depth: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 RGB (even H, W) -> uint16 Y, Cb, Cr planes at `bit_depth`, chroma halved both ways."""
    x = rgb.astype(np.float64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = _KR * r + _KG * g + _KB * b
    cb = (b - y) / (2.0 * (1.0 - _KB)) + 128.0
    cr = (r - y) / (2.0 * (1.0 - _KR)) + 128.0
    h, w = y.shape
    scale = float(1 << (bit_depth - 8))
    top = (1 << bit_depth) - 1

    def down(c: np.ndarray) -> np.ndarray:
        return c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))

    def q(c: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(c * scale), 0, top).astype(np.uint16)

    return q(y), q(down(cb)), q(down(cr))


def _upsample2(c: np.ndarray) -> np.ndarray:
    """Bilinear 2x upsampling of centre-sited chroma (weights 3/4, 1/4 along each axis)."""
    def along(a: np.ndarray, axis: int) -> np.ndarray:
        n = a.shape[axis]
        prev = np.take(a, np.r_[0, np.arange(n - 1)], axis=axis)
        nxt = np.take(a, np.r_[np.arange(1, n), n - 1], axis=axis)
        even = 0.75 * a + 0.25 * prev
        odd = 0.75 * a + 0.25 * nxt
        out = np.stack([even, odd], axis=axis + 1)
        shape = list(a.shape)
        shape[axis] = 2 * n
        return out.reshape(shape)

    return along(along(c, 0), 1)


def yuv420_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, bit_depth: int = 10) -> np.ndarray:
    """Planes at `bit_depth` -> uint8 RGB (inverse of rgb_to_yuv420, rounding and clipping once)."""
    scale = 1.0 / float(1 << (bit_depth - 8))
    yf = y.astype(np.float64) * scale
    cbf = _upsample2(cb.astype(np.float64) * scale) - 128.0
    crf = _upsample2(cr.astype(np.float64) * scale) - 128.0
    r = yf + 2.0 * (1.0 - _KR) * crf
    b = yf + 2.0 * (1.0 - _KB) * cbf
    g = (yf - _KR * r - _KB * b) / _KG
    return np.clip(np.rint(np.stack([r, g, b], axis=-1)), 0, 255).astype(np.uint8)
