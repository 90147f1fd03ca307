"""Speed and rate-accuracy figures of the image codec (issue targets; never asserted in tests).

* encode / decode wall time of 768x512 images with the bundled model (CPU; CUDA too when present);
* range-coder throughput in symbols per second each way, on Gaussian-like symbols with outliers;
* real file size against the model's own rate estimate (-log2 of the likelihoods) per quality, with
  the coder's table scales (what the range coder should achieve) and with the continuous predicted
  scales (the training-time rate term); and the range-coded streams alone against the first, since the
  container's fixed fields (about 40 bytes a file) are a visible share of the smallest files.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import torch

from lcodec.codec import ImageCodec
from lcodec.codec.container import unpack_image
from lcodec.codec.image_io import read_image
from lcodec.codec.transforms import HYPER_STRIDE, from_pixels, pad_to_multiple
from lcodec.entropy_models.range_coder import RangeDecoder, RangeEncoder

ESCAPE_EVERY = 10_000  # the coder benchmark escapes one symbol in this many


def _images(folder: Path, limit: int | None = None) -> list[Path]:
    from lcodec.codec.training.data import list_images

    return list_images(folder)[:limit] if limit else list_images(folder)


def codec_times(folder: Path, device: str = "cpu", quality: float = 4.0, images: int = 3, repeat: int = 3) -> dict:
    """Median encode/decode seconds per image (after one warm-up run)."""
    codec = ImageCodec.default(device)
    enc, dec = [], []
    sizes = []
    for path in _images(folder, images):
        img = read_image(path).stripped()  # payload only: the figures compare codecs, not metadata
        blob = codec.encode(img, quality)  # warm-up
        codec.decode(blob)
        for _ in range(repeat):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            blob = codec.encode(img, quality)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t1 = time.perf_counter()
            codec.decode(blob)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t2 = time.perf_counter()
            enc.append(t1 - t0)
            dec.append(t2 - t1)
        sizes.append(f"{img.rgb.shape[1]}x{img.rgb.shape[0]}")
    return {"device": device, "threads": torch.get_num_threads(), "quality": quality, "sizes": sorted(set(sizes)),
            "images": len(sizes), "repeat": repeat,
            "encode_s": round(statistics.median(enc), 4), "decode_s": round(statistics.median(dec), 4)}


def coder_throughput(n: int = 2_000_000, seed: int = 0) -> dict:
    """Symbols per second through the range coder each way, with the Gaussian table set."""
    from lcodec.entropy_models.gaussian import GaussianConditional

    g = GaussianConditional()
    g.build_tables()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, g.tables.count, n)
    scales = g.scale_table.numpy()[idx]
    sym = np.round(rng.standard_normal(n) * scales).astype(np.int64)
    sym[rng.integers(0, n, n // ESCAPE_EVERY)] = 10_000  # a few escapes
    t0 = time.perf_counter()
    enc = RangeEncoder()
    enc.encode(sym, idx, g.tables)
    data = enc.finish()
    t1 = time.perf_counter()
    out = RangeDecoder(data).decode(idx, g.tables)
    t2 = time.perf_counter()
    if not np.array_equal(out, sym):
        raise AssertionError("range coder round trip failed")
    return {"symbols": n, "encode_msym_s": round(n / (t1 - t0) / 1e6, 2),
            "decode_msym_s": round(n / (t2 - t1) / 1e6, 2),
            "bits_per_symbol": round(8 * len(data) / n, 3), "tables": int(g.tables.count),
            "escape_every": ESCAPE_EVERY}


def rate_gap(folder: Path, qualities: tuple[float, ...] | None = None, images: int | None = None) -> list[dict]:
    """Per quality (default: every level of the bundled model): total real bytes vs the model's
    estimate over the folder (and the gap in %), and the same for the range-coded streams without
    the container's header, lengths and CRC."""
    codec = ImageCodec.default()
    model = codec.model
    if qualities is None:
        qualities = tuple(float(q) for q in codec.levels)
    paths = _images(folder, images)
    sums = {q: np.zeros(5) for q in qualities}  # real bits, container bits, estimate, continuous estimate, pixels
    for path in paths:
        img = read_image(path).stripped()  # payload only: the figures compare codecs, not metadata
        a = codec.analyse(img)  # g_a once per image; each quality codes it as `lcodec encode` does
        h, w = img.rgb.shape[:2]
        xp = pad_to_multiple(from_pixels(img.rgb).unsqueeze(0), HYPER_STRIDE)
        for q in qualities:
            blob, _ = codec.encode_analysis(a, q)
            container = len(blob) - sum(len(s) for s in unpack_image(blob)[1])
            sums[q] += [8 * len(blob), 8 * container, model.estimate_bits(xp, q),
                        model.estimate_bits(xp, q, table_scales=False), h * w]
    rows = []
    for q, (real, container, est, est_cont, pix) in sums.items():
        rows.append({"quality": q, "real_bpp": round(real / pix, 5), "estimated_bpp": round(est / pix, 5),
                     "gap_percent": round(100 * (real - est) / est, 3),
                     "continuous_estimate_bpp": round(est_cont / pix, 5),
                     "gap_vs_continuous_percent": round(100 * (real - est_cont) / est_cont, 3),
                     "container_bytes_per_file": round(container / 8 / len(paths), 1),
                     "streams_gap_percent": round(100 * (real - container - est) / est, 3)})
    return rows
