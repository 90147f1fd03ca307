"""PSNR, the one definition every part of lcodec uses (codec, training, benchmarks, tests).

PSNR is 10 log10(peak^2 / MSE) over all samples of two equally shaped arrays (for RGB images one MSE
over the three channels, the usual learned-codec definition), capped at MAX_PSNR so that identical
inputs give a finite number (results stay valid JSON). The same cap applies to torch tensors of MSEs
(training logs), where it is a floor on the MSE.
"""

from __future__ import annotations

import math

import numpy as np

MAX_PSNR = 100.0  # identical images: a finite cap so results stay valid JSON numbers
PEAK = 255.0  # 8-bit samples


def mse(a, b) -> float:
    """Mean squared error of two equally shaped arrays (or Pillow images), computed in float64."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch: {x.shape} vs {y.shape}")
    d = x - y
    return float(np.mean(d * d))


def psnr_from_mse(m, peak: float = PEAK):
    """PSNR in dB of a mean squared error on samples of range `peak`, capped at MAX_PSNR: a float for
    a float, a tensor (element-wise) for a torch tensor."""
    if not hasattr(m, "clamp_min"):  # a number
        m = float(m)
        return MAX_PSNR if m <= 0.0 else min(MAX_PSNR, 10.0 * math.log10(peak * peak / m))
    floor = peak * peak * 10.0 ** (-MAX_PSNR / 10.0)  # the MSE at which PSNR reaches the cap
    return 10.0 * (peak * peak / m.clamp_min(floor)).log10()


def psnr(a, b, peak: float = PEAK) -> float:
    """PSNR in dB over all samples of two equally shaped arrays (or Pillow images); MAX_PSNR if equal."""
    return psnr_from_mse(mse(a, b), peak)


def sequence_psnr(frame_psnrs: list[float], peak: float = PEAK) -> float:
    """PSNR of a sequence from its frames' PSNRs: 10 log10(peak^2 / mean MSE over frames), what the
    reference tools (HM/VTM, ffmpeg's psnr filter) report; capped at MAX_PSNR like `psnr`.

    Averaging per-frame dB instead lets one perfect (e.g. black) frame at the cap lift the whole clip
    by several dB. A frame at the cap counts as MSE 0."""
    if not frame_psnrs:
        raise ValueError("no frames")
    mses = [0.0 if p >= MAX_PSNR else peak * peak * 10.0 ** (-p / 10.0) for p in frame_psnrs]
    return psnr_from_mse(sum(mses) / len(mses), peak)
