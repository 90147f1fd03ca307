"""Video rate-distortion runs: every codec x every setting on the first N frames of one clip.

Rate is the real elementary-stream size over all frames; PSNR (RGB, and YUV 6:1:1) and MS-SSIM are
computed here from the decoded frames. A sequence's PSNR comes from the mean MSE over its frames (as
HM/VTM and ffmpeg report it; YUV 6:1:1 weights the planes' sequence PSNRs), MS-SSIM is the mean over
frames; per-frame values are kept in the JSON. Finished points are
reused on a rerun (codec JSON + `.points.jsonl` while a codec runs); `jobs` > 1 runs settings in
parallel worker processes.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BenchError
from .metrics import ms_ssim_rgb, psnr_rgb, psnr_yuv_611, sequence_psnr
from .report import build_result, earlier_measurements, write_json, write_summary
from .run_images import make_pool, parse_codecs, signature
from .selection import usable_codecs
from .video_codecs import VIDEO_CODECS, Planes, VideoCodecAdapter, make_video_codec, planes_to_rgb, read_clip

FRAME_METRICS = ("psnr-rgb", "psnr-yuv", "psnr-y", "psnr-u", "psnr-v", "ms-ssim")
#: How a point's PSNR is pooled over frames (part of the cache signature: older points averaged dB).
PSNR_POOLING = "mean-mse"
CURVE_METRICS = ("bpp", "psnr-rgb", "psnr-yuv", "psnr-y", "ms-ssim", "enc_s", "dec_s")


def measure_video(codec: VideoCodecAdapter, frames: list[Planes], fps: Fraction, value: float,
                  intra_period: int) -> dict[str, Any]:
    """Encode and decode a clip at one setting: real bytes, per-frame quality, wall times."""
    h, w = frames[0][0].shape
    t0 = time.perf_counter()
    packets = codec.encode(frames, value, intra_period, fps)
    t1 = time.perf_counter()
    decoded = codec.decode(packets, h, w)
    t2 = time.perf_counter()
    if len(decoded) != len(frames):
        raise RuntimeError(f"{codec.name} decoded {len(decoded)} frames, expected {len(frames)}")
    per_frame: dict[str, list] = {k: [] for k in FRAME_METRICS}
    for ref, dec in zip(frames, decoded):
        yuv = psnr_yuv_611(ref, dec)
        ref_rgb, dec_rgb = planes_to_rgb(ref), planes_to_rgb(dec)
        per_frame["psnr-rgb"].append(psnr_rgb(ref_rgb, dec_rgb))
        for k in ("psnr-yuv", "psnr-y", "psnr-u", "psnr-v"):
            per_frame[k].append(yuv[k])
        per_frame["ms-ssim"].append(ms_ssim_rgb(ref_rgb, dec_rgb))
    total = sum(len(p) for p in packets)
    point: dict[str, Any] = {"bytes": total, "bpp": total * 8.0 / (h * w * len(frames)),
                             "enc_s": t1 - t0, "dec_s": t2 - t1, "packet_bytes": [len(p) for p in packets]}
    point.update(pool_frames(per_frame))
    point["per_frame"] = per_frame
    return point


def pool_frames(per_frame: dict[str, list]) -> dict[str, float | None]:
    """A clip's figures from its per-frame ones: PSNRs from the mean MSE, MS-SSIM the mean (None if
    any frame has none)."""
    out: dict[str, float | None] = {}
    for k in ("psnr-rgb", "psnr-y", "psnr-u", "psnr-v"):
        out[k] = sequence_psnr(per_frame[k])
    out["psnr-yuv"] = (6.0 * out["psnr-y"] + out["psnr-u"] + out["psnr-v"]) / 8.0
    vals = per_frame["ms-ssim"]
    out["ms-ssim"] = None if any(v is None for v in vals) else float(np.mean(vals))
    return out


_WORKER: dict[str, Any] = {}


def _point(codec_name: str, clip: str, frames: int, value: float, intra_period: int,
           start: int = 0) -> tuple[float, dict]:
    """Worker entry: one setting of one codec (clip frames read once per process)."""
    key = (clip, frames, start)
    if _WORKER.get("clip_key") != key:
        _WORKER["clip"], _WORKER["clip_key"] = read_clip(clip, frames, start), key
    codec = _WORKER.setdefault(codec_name, make_video_codec(codec_name))
    planes, fps = _WORKER["clip"]
    return value, measure_video(codec, planes, fps, value, intra_period)


def _cached(out: Path, name: str, sig: str) -> dict[float, dict[str, Any]]:
    """Points already measured with the same settings signature, keyed by value."""
    data, records = earlier_measurements(out, name, sig)
    cache = {float(v): point for v, point in (data or {}).get("points", {}).items()}
    for rec in records:
        cache[float(rec["value"])] = rec["point"]
    return cache


def run_video_codec(codec: VideoCodecAdapter, clip: Path, frames: list[Planes], fps: Fraction, out: Path,
                    intra_period: int, pool: ProcessPoolExecutor | None = None, progress: bool = True,
                    start: int = 0) -> Path:
    """Measure one codec at all its settings (`frames` are the clip's from frame `start`); write and
    return `out/<name>.json`."""
    from tqdm import tqdm

    settings = codec.settings(intra_period, len(frames))
    settings["fps"] = str(fps)
    settings["psnr_pooling"] = PSNR_POOLING
    if start:
        settings["start"] = start
    clip_sha1 = hashlib.sha1(Path(clip).read_bytes()).hexdigest()
    sig = signature({**settings, "clip_sha1": clip_sha1})
    cache = _cached(out, codec.name, sig)
    points = {float(v): cache[float(v)] for v in codec.values if float(v) in cache}
    todo = [v for v in codec.values if float(v) not in points]
    out.mkdir(parents=True, exist_ok=True)
    partial = out / f".{codec.name}.points.jsonl"
    bar = tqdm(total=len(codec.values), initial=len(points), desc=f"{codec.name:8s}", unit="pt",
               disable=not progress)
    with partial.open("a") as log:
        def record(value: float, point: dict[str, Any]) -> None:
            points[float(value)] = point
            log.write(json.dumps({"signature": sig, "value": float(value), "point": point}) + "\n")
            log.flush()
            bar.update(1)

        if pool is None:
            for v in todo:
                record(v, measure_video(codec, frames, fps, v, intra_period))
        else:
            futs = [pool.submit(_point, codec.name, str(clip), len(frames), v, intra_period, start) for v in todo]
            for fut in as_completed(futs):
                record(*fut.result())
    bar.close()
    h, w = frames[0][0].shape
    item: dict[str, Any] = {"sha1": clip_sha1, "width": w, "height": h, "frames": len(frames),
                            "quality": list(codec.values)}
    if start:
        item["start"] = start
    for k in ("bytes",) + CURVE_METRICS + ("psnr-u", "psnr-v"):
        item[k] = [points[float(v)][k] for v in codec.values]
    data = build_result(codec.name, codec.description, settings, list(codec.values), {Path(clip).name: item},
                        CURVE_METRICS, per_item_key="per_clip",
                        extra={"signature": sig, "points": {str(float(v)): points[float(v)] for v in codec.values}})
    path = out / f"{codec.name}.json"
    write_json(path, data)
    partial.unlink(missing_ok=True)
    return path


def run_video(clip: Path, codecs: str | Iterable[str], out: Path, frames: int = 32, intra_period: int = 0,
              jobs: int = 1, progress: bool = True, anchor: str | None = None,
              notice: Callable[[str], None] = print, start: int = 0) -> Path:
    """Run the video bench on `frames` frames of `clip` from frame `start`; rebuild the summary, return
    its path."""
    names = parse_codecs(codecs, VIDEO_CODECS)
    clip = Path(clip)
    if not clip.is_file():
        raise BenchError(f"no such video file: {clip}")
    planes, fps = read_clip(clip, frames, start)
    if len(planes) < frames:
        notice(f"{clip.name} has only {len(planes)} frames from frame {start}; using them all")
    out = Path(out)
    ok = usable_codecs(names, VIDEO_CODECS, "video", notice)
    pool = make_pool(jobs) if ok else None
    try:
        for codec in ok:
            run_video_codec(codec, clip, planes, fps, out, intra_period, pool=pool, progress=progress, start=start)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if not ok and not any(out.glob("*.json")):
        raise BenchError("none of the requested codecs is available here")
    return video_summary(out, anchor=anchor)


def video_summary(out: Path, anchor: str | None = None, method: str = "pchip") -> Path:
    """Rebuild summary.md and plots of a video bench folder from all codec JSONs in it."""
    from .report import load_results

    results = load_results(out)
    clips = sorted({f"{clip}, {_frame_span(item)} ({item.get('width')}x{item.get('height')})"
                    for d in results.values() for clip, item in d.get("per_clip", {}).items()})
    periods = sorted({d.get("settings", {}).get("intra_period", 0) for d in results.values()})
    ip = ", ".join("one I-frame then inter frames only" if p <= 0 else f"intra period {p}" for p in periods)
    note = (f"Low delay (no B-frames / reordering), {ip}. PSNR computed from decoded frames: a clip's PSNR "
            "from the mean MSE over its frames (as HM/VTM and ffmpeg report it); YUV weighted 6:1:1; RGB from "
            "the same 4:2:0 -> RGB conversion for every codec.")
    return write_summary(out, f"Video rate-distortion: {'; '.join(clips)}", metrics=("psnr-rgb", "psnr-yuv", "ms-ssim"),
                         preferred_anchors=("vvc", "x265"), anchor=anchor, method=method, note=note)


def _frame_span(item: dict[str, Any]) -> str:
    start = item.get("start", 0)
    n = item.get("frames")
    return f"first {n} frames" if not start else f"frames {start} to {start + n - 1}"
