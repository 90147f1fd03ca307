"""Distortion and rate metrics on real decoded pixels (PSNR itself is `codec.metrics`'s, re-exported).

Everything works on 8-bit arrays (H, W, 3) uint8 as the files decode, never on the codecs' own
float reconstructions, so every codec is measured the same way.
"""

from __future__ import annotations

import math

import numpy as np

from lcodec.codec.metrics import MAX_PSNR, mse, psnr, sequence_psnr

__all__ = ["MAX_PSNR", "bpp", "mse", "ms_ssim_db", "ms_ssim_rgb", "psnr", "psnr_rgb", "psnr_yuv_611", "sequence_psnr"]

MSSSIM_MIN_SIDE = 161  # pytorch-msssim's 5 scales need the smaller side > 160 pixels


def bpp(num_bytes: int, height: int, width: int) -> float:
    """Bits per pixel of a real file: bytes * 8 / pixels."""
    return num_bytes * 8.0 / (height * width)


def psnr_rgb(a: np.ndarray, b: np.ndarray) -> float:
    """`codec.metrics.psnr` of two 8-bit RGB images (one MSE over the three channels), checking that
    they are 8-bit: what the files decode to, never a codec's float reconstruction."""
    if a.dtype != np.uint8 or b.dtype != np.uint8:
        raise TypeError("psnr_rgb expects uint8 arrays")
    return psnr(a, b)


def psnr_yuv_611(ref: tuple[np.ndarray, ...], dec: tuple[np.ndarray, ...]) -> dict[str, float]:
    """Per-plane PSNR of 8-bit Y, U, V planes and the 6:1:1 weighted average (video convention)."""
    py, pu, pv = (psnr(r, d) for r, d in zip(ref, dec))
    return {"psnr-y": py, "psnr-u": pu, "psnr-v": pv, "psnr-yuv": (6.0 * py + pu + pv) / 8.0}


def ms_ssim_rgb(a: np.ndarray, b: np.ndarray) -> float | None:
    """MS-SSIM (pytorch-msssim, data range 255, 5 scales) of two uint8 RGB images.

    Returns None when the image is too small for 5 scales (smaller side <= 160), rather than a
    number from a different definition.
    """
    if min(a.shape[0], a.shape[1]) < MSSSIM_MIN_SIDE:
        return None
    import torch
    from pytorch_msssim import ms_ssim

    ta = torch.from_numpy(np.array(a, dtype=np.float32)).permute(2, 0, 1)[None]
    tb = torch.from_numpy(np.array(b, dtype=np.float32)).permute(2, 0, 1)[None]
    # One thread: on a busy 2-core machine torch's thread pool makes these small convolutions
    # ~30x slower, and the result does not depend on it.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            return float(ms_ssim(ta, tb, data_range=255.0, size_average=True))
    finally:
        torch.set_num_threads(threads)


def ms_ssim_db(value: float) -> float:
    """MS-SSIM on a dB scale, -10 log10(1 - MS-SSIM), as RD plots and BD-rates usually use it."""
    return -10.0 * math.log10(max(1.0 - value, 1e-10))
