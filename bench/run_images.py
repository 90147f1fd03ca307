"""Image rate-distortion runs: every codec x every image x every setting, on real files.

Per-image values are kept; a codec's curve is the mean over images at each setting. Finished points
are reused on a rerun (from the codec's JSON, and from a `.points.jsonl` file written while a codec
runs, so an interrupted run resumes). `jobs` > 1 runs points in parallel worker processes.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import BenchError
from .image_codecs import IMAGE_CODECS, ImageCodecAdapter, make_image_codec
from .selection import usable_codecs
from .metrics import bpp, ms_ssim_rgb, psnr_rgb
from .report import build_result, earlier_measurements, write_json, write_summary

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".webp"}
IMAGE_METRICS = ("bytes", "bpp", "psnr-rgb", "ms-ssim", "enc_s", "dec_s")
CURVE_METRICS = ("bpp", "psnr-rgb", "ms-ssim", "enc_s", "dec_s")
BENCH_VERSION = 1  # bump when measurement changes, to invalidate cached points


def list_images(folder: Path) -> list[Path]:
    """The images (by suffix) directly in `folder`, sorted; BenchError if none or not a folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BenchError(f"not a folder: {folder}")
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise BenchError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return paths


def read_rgb(path: Path) -> np.ndarray:
    """An image file as uint8 RGB (H, W, 3); BenchError naming the file if it cannot be read."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise BenchError(f"cannot read image {path}: {exc}") from None


def parse_codecs(spec: str | Iterable[str], known: Iterable[str]) -> list[str]:
    """Split 'a,b,c' into names, checking each is known (BenchError naming the bad one)."""
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    known = list(known)
    bad = [n for n in names if n not in known]
    if bad:
        raise BenchError(f"unknown codec {bad[0]!r}; choose from {', '.join(known)}")
    if not names:
        raise BenchError("no codec named")
    return list(dict.fromkeys(names))


def signature(settings: dict[str, Any]) -> str:
    """Hash of everything that changes a point's result except the swept values themselves."""
    fixed = {k: v for k, v in settings.items() if k != "values"}
    blob = json.dumps({"bench": BENCH_VERSION, **fixed}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def measure_image(codec: ImageCodecAdapter, rgb: np.ndarray, value: float) -> dict[str, Any]:
    """Encode and decode one image at one setting; real bytes, PSNR, MS-SSIM and wall times."""
    image = Image.fromarray(rgb)
    t0 = time.perf_counter()
    data = codec.encode(image, value)
    t1 = time.perf_counter()
    decoded = codec.decode(data)
    t2 = time.perf_counter()
    out = np.asarray(decoded.convert("RGB"))
    if out.shape != rgb.shape:
        raise RuntimeError(f"{codec.name} decoded {out.shape[1]}x{out.shape[0]}, "
                           f"expected {rgb.shape[1]}x{rgb.shape[0]}")
    h, w = rgb.shape[:2]
    return {"bytes": len(data), "bpp": bpp(len(data), h, w), "psnr-rgb": psnr_rgb(rgb, out),
            "ms-ssim": ms_ssim_rgb(rgb, out), "enc_s": t1 - t0, "dec_s": t2 - t1}


_WORKER_CODECS: dict[str, ImageCodecAdapter] = {}


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _point(codec_name: str, path: str, value: float) -> tuple[str, float, dict[str, Any]]:
    """Worker entry: one (image, setting) point with the codec built once per process."""
    codec = _WORKER_CODECS.get(codec_name)
    if codec is None:
        codec = _WORKER_CODECS[codec_name] = make_image_codec(codec_name)
    return path, value, measure_image(codec, read_rgb(Path(path)), value)


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _cached_points(out: Path, name: str, sig: str) -> dict[tuple[str, float], dict[str, Any]]:
    """Points already measured with the same settings signature, keyed by (image sha1, value)."""
    data, records = earlier_measurements(out, name, sig)
    cache: dict[tuple[str, float], dict[str, Any]] = {}
    for item in (data or {}).get("per_image", {}).values():
        for i, v in enumerate(item.get("quality", [])):
            cache[(item["sha1"], float(v))] = {k: item[k][i] for k in IMAGE_METRICS}
    for rec in records:
        cache[(rec["sha1"], float(rec["value"]))] = rec["point"]
    return cache


def make_pool(jobs: int) -> ProcessPoolExecutor | None:
    """Worker processes (spawned: safe with torch's threads) for `jobs` > 1, else None."""
    if jobs <= 1:
        return None
    import multiprocessing as mp

    return ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"), initializer=_init_worker)


def run_codec(codec: ImageCodecAdapter, images: list[Path], out: Path, pool: ProcessPoolExecutor | None = None,
              progress: bool = True, finished_only: bool = False) -> Path | None:
    """Measure one codec on all images at all its settings; write and return `out/<name>.json`.

    Points run in `pool` when given (one task per image and setting), else in this process.
    `finished_only` encodes nothing: the JSON covers the images whose points are all measured already
    (by an earlier or a still running run in `out`); None when there is none.
    """
    from tqdm import tqdm

    settings = codec.settings()
    sig = signature(settings)
    sums = {p: _sha1(p) for p in images}
    cache = _cached_points(out, codec.name, sig)
    if finished_only:
        images = [p for p in images if all((sums[p], float(v)) in cache for v in codec.values)]
        if not images:
            return None
        points = {(str(p), float(v)): cache[(sums[p], float(v))] for p in images for v in codec.values}
        return _write_codec_result(codec, images, sums, points, settings, sig, out)
    points: dict[tuple[str, float], dict[str, Any]] = {}
    todo = []
    for p in images:
        for v in codec.values:
            key = (sums[p], float(v))
            if key in cache:
                points[(str(p), float(v))] = cache[key]
            else:
                todo.append((p, v))
    partial = out / f".{codec.name}.points.jsonl"
    out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(images) * len(codec.values), initial=len(points), desc=f"{codec.name:8s}",
               unit="pt", disable=not progress, leave=True)
    with partial.open("a") as log:
        def record(path: str, value: float, point: dict[str, Any]) -> None:
            points[(path, float(value))] = point
            log.write(json.dumps({"signature": sig, "sha1": sums[Path(path)], "value": float(value),
                                  "point": point}) + "\n")
            log.flush()
            bar.update(1)

        if pool is None:
            for p, v in todo:
                record(str(p), v, measure_image(codec, read_rgb(p), v))
        else:
            futures = [pool.submit(_point, codec.name, str(p), v) for p, v in todo]
            for fut in as_completed(futures):
                record(*fut.result())
    bar.close()
    path = _write_codec_result(codec, images, sums, points, settings, sig, out)
    partial.unlink(missing_ok=True)
    return path


def _write_codec_result(codec: ImageCodecAdapter, images: list[Path], sums: dict[Path, str],
                        points: dict[tuple[str, float], dict[str, Any]], settings: dict[str, Any], sig: str,
                        out: Path) -> Path:
    """`out/<name>.json` from one measured point per image and setting."""
    per_image = {}
    for p in images:
        item: dict[str, Any] = {"sha1": sums[p], "quality": list(codec.values)}
        h, w = read_rgb(p).shape[:2]
        item["width"], item["height"] = w, h
        for k in IMAGE_METRICS:
            item[k] = [points[(str(p), float(v))][k] for v in codec.values]
        per_image[p.name] = item
    data = build_result(codec.name, codec.description, settings, list(codec.values), per_image, CURVE_METRICS,
                        extra={"signature": sig, "images": len(images)})
    path = out / f"{codec.name}.json"
    write_json(path, data)
    return path


def run_images(folder: Path, codecs: str | Iterable[str], out: Path, jobs: int = 1, progress: bool = True,
               anchor: str | None = None, notice: Callable[[str], None] = print,
               finished_only: bool = False) -> Path:
    """Run the image bench and rebuild the summary; returns the summary path.

    Unavailable codecs are skipped with a one-line notice through `notice`. `finished_only` encodes
    nothing and reports each codec over the images it has finished so far (see `run_codec`).
    """
    names = parse_codecs(codecs, IMAGE_CODECS)
    images = list_images(folder)
    for p in images:
        read_rgb(p)
    out = Path(out)
    codecs_ok = usable_codecs(names, IMAGE_CODECS, "image", notice)
    pool = make_pool(jobs) if codecs_ok and not finished_only else None
    try:
        for codec in codecs_ok:
            if run_codec(codec, images, out, pool=pool, progress=progress, finished_only=finished_only) is None:
                notice(f"{codec.name}: no image has all its points measured in {out} yet")
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    ran = len(codecs_ok)
    if not ran and not any(out.glob("*.json")):
        raise BenchError("none of the requested codecs is available here")
    return image_summary(out, anchor=anchor)


def image_summary(out: Path, anchor: str | None = None, method: str = "pchip") -> Path:
    """Rebuild summary.md and plots of an image bench folder from all codec JSONs in it."""
    from .report import load_results

    results = load_results(out)
    counts = sorted({len(d.get("per_image", {})) for d in results.values()})
    n = "/".join(str(c) for c in counts) or "0"
    note = ("VVC here is libvvenc, which codes 4:2:0 only (10-bit); at high rates its RGB PSNR is capped by "
            "the chroma subsampling, unlike the 4:4:4 codecs (AVIF, HEIF, JPEG 4:4:4, JPEG 2000, JPEG XL)."
            if "vvc" in results else "")
    if "jp2k" in results:
        note += (" JPEG 2000 is swept by compression ratio, so every image gets the same bpp, whereas the "
                 "other codecs spend few bits on easy images; the mean curve (mean PSNR at mean bpp) "
                 "flatters such fixed-rate allocation, so read its per-image column.")
    from .monotonic import non_monotonic_note

    flagged = non_monotonic_note(results)
    note = f"{note} {flagged}".strip() if flagged else note
    return write_summary(out, f"Image rate-distortion: {n} images", metrics=("psnr-rgb", "ms-ssim"),
                         preferred_anchors=("vvc", "heif"), anchor=anchor, method=method, note=note)
