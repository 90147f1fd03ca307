"""Cross-device determinism of decoding and what the exact (fixed-point) entropy parameters cost.

For every image of a folder and a few qualities:

* the file is encoded once (format version 4, exact parameters) and its latent is decoded under
  several arithmetic back-ends that sum in different orders: torch float64 BLAS with 1 and with 2
  threads, and plain int64 integer arithmetic on the host (numpy; no floating point at all). All of
  them must reconstruct bit-identical latents; with a CUDA device, GPU-encoded files are also decoded
  on the CPU and CPU-encoded files on the GPU;
* the same image is encoded with the old float path (format version 1) to measure the rate cost of
  fixed point against version 3 (exact parameters, the same layout as version 1, so only the
  arithmetic differs), and both paths are timed on one CPU thread (whole encode; latent decode, which
  is where the two paths differ; synthesis is the same float code for both); version 4's size
  against version 3's is what its leaner layout saves.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import statistics
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

import lcodec.entropy_models.fixed_point as fixed_point
from lcodec.codec import ImageCodec
from lcodec.codec.container import VERSION_FLOAT, VERSION_SPLIT, unpack_image
from lcodec.codec.image_io import read_image
from lcodec.codec.registry import get_model
from lcodec.codec.transforms import HYPER_STRIDE

QUALITIES = (2.0, 4.0, 7.0)


def numpy_int_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The reference: the same product in int64 integer arithmetic on the host."""
    out = a.detach().cpu().numpy().astype(np.int64) @ b.detach().cpu().numpy().astype(np.int64)
    return torch.from_numpy(out.astype(np.float64)).to(a.device)


@contextlib.contextmanager
def integer_reference() -> Iterator[None]:
    """Run the exact path's products with numpy int64 instead of torch float64."""
    saved = fixed_point.int_matmul
    fixed_point.int_matmul = numpy_int_matmul
    try:
        yield
    finally:
        fixed_point.int_matmul = saved


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def _codec(device: str) -> ImageCodec:
    loaded = get_model(None)  # each device gets its own copy (Module.to moves in place)
    return ImageCodec(dataclasses.replace(loaded, model=copy.deepcopy(loaded.model)), device)


def decode_latent(codec: ImageCodec, blob: bytes) -> torch.Tensor:
    """The entropy-decoded latent y_hat of an untiled file (no synthesis), on the CPU."""
    header, streams = unpack_image(blob)
    h, w = header.height, header.width
    padded = (h + (-h) % HYPER_STRIDE, w + (-w) % HYPER_STRIDE)
    return codec.model.decompress_latent(streams[: header.streams_per_tile], padded, codec.device, header.exact).cpu()


def _timed(fn) -> tuple[object, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run(folder: Path, qualities: tuple[float, ...] = QUALITIES, limit: int | None = None,
        progress=None) -> dict:
    """Per-image results and a summary (see the module docstring)."""
    from lcodec.codec.training.data import list_images

    cpu = _codec("cpu")
    gpu = _codec("cuda") if torch.cuda.is_available() else None
    legacy = _codec("cpu")
    legacy.write_version = VERSION_FLOAT
    split = ImageCodec(cpu.loaded, "cpu")  # version 3: exact parameters in version 1's layout
    split.write_version = VERSION_SPLIT
    rows = []
    paths = list_images(folder)[:limit] if limit else list_images(folder)
    for path in paths:
        img = read_image(path).stripped()  # payload only: the figures compare codecs, not metadata
        for q in qualities:
            with threads(1):
                blob, enc_s = _timed(lambda: cpu.encode(img, q))
                ref, dec_s = _timed(lambda: decode_latent(cpu, blob))
                old, old_enc_s = _timed(lambda: legacy.encode(img, q))
                _, old_dec_s = _timed(lambda: decode_latent(legacy, old))
                v3 = split.encode(img, q)
            checks = {"version3_same_latent": torch.equal(decode_latent(cpu, v3), ref)}
            with threads(2):
                checks["torch_2_threads"] = torch.equal(decode_latent(cpu, blob), ref)
            with threads(1), integer_reference():
                checks["int64_reference"] = torch.equal(decode_latent(cpu, blob), ref)
            if gpu is not None:
                checks["cpu_encoded_gpu_decoded"] = torch.equal(decode_latent(gpu, blob), ref)
                gblob = gpu.encode(img, q)
                checks["gpu_encoded_cpu_decoded"] = torch.equal(decode_latent(cpu, gblob), decode_latent(gpu, gblob))
                checks["gpu_encoded_cpu_pixels_max_diff"] = int(np.abs(
                    np.asarray(cpu.decode(gblob), dtype=np.int16)
                    - np.asarray(gpu.decode(gblob), dtype=np.int16)).max())
            h, w = img.rgb.shape[:2]
            row = {"image": path.name, "quality": q, "size": f"{w}x{h}",
                   "bpp": round(8 * len(blob) / (h * w), 5), "exact_bpp": round(8 * len(v3) / (h * w), 5),
                   "float_bpp": round(8 * len(old) / (h * w), 5),
                   "exact_s": {"encode": round(enc_s, 4), "latent_decode": round(dec_s, 4)},
                   "float_s": {"encode": round(old_enc_s, 4), "latent_decode": round(old_dec_s, 4)},
                   **checks}
            rows.append(row)
            if progress:
                progress(row)
    bool_keys = [k for k in rows[0] if isinstance(rows[0][k], bool)]
    summary = {
        "cases": len(rows),
        "identical": {k: sum(r[k] for r in rows) for k in bool_keys},
        "rate_cost_percent": round(
            100 * (sum(r["exact_bpp"] for r in rows) / sum(r["float_bpp"] for r in rows) - 1), 3),
        "version4_vs_3_percent": round(100 * (sum(r["bpp"] for r in rows) / sum(r["exact_bpp"] for r in rows) - 1), 3),
        "median_s_1_thread": {
            path: {op: statistics.median(r[f"{path}_s"][op] for r in rows) for op in ("encode", "latent_decode")}
            for path in ("exact", "float")},
        "cuda": gpu is not None,
    }
    if gpu is not None:
        summary["max_pixel_diff_gpu_vs_cpu_decode"] = max(r["gpu_encoded_cpu_pixels_max_diff"] for r in rows)
    return {"summary": summary, "rows": rows}
