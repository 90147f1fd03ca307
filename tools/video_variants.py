"""Video encoder variants on one clip (issue 30): low-delay RD points per variant, BD-rate against the first.

A variant is a format version plus optional overrides of the version-4/5 encoder settings: the vector
range of version 5 (`range`, pixels) and the price weight of vectors (`price`). Every file is really
written and decoded; PSNR is PSNR-RGB of the decoded frames.

    python3 tools/video_variants.py ../shared/data/video/bikes.mp4 --frames 8 --qualities 2,4,6,8 \
        --variants v4,v5-r16-p2,v5-p2,v5 --out bench/results/video-motion/v5-variants-bikes8.json

`v5-r16-p2`: version 5 with version 4's range and price (the re-analysis for synthesis alone).
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
import torch

from lcodec.bench.bd_rate import bd_rate
from lcodec.bench.metrics import psnr_rgb
from lcodec.codec import video_split as split
from lcodec.codec.video_codec import VideoCodec
from lcodec.codec.video_io import open_video


def _settings(name: str) -> tuple[int, dict[str, float]]:
    """(version, overrides) of a variant name such as v5, v4 or v5-r16-p2."""
    head, *parts = name.split("-")
    over: dict[str, float] = {}
    for p in parts:
        key = {"r": "range", "p": "price"}[p[0]]
        over[key] = float(p[1:])
    return int(head[1:]), over


def run_variant(codec: VideoCodec, frames: list[np.ndarray], rate, name: str, qualities: list[float]) -> list[dict]:
    """Low-delay encode + decode of `frames` at each quality under variant `name`."""
    version, over = _settings(name)
    saved_ranges, saved_price = dict(split.RANGES), dict(split.VECTOR_PRICE)
    if "range" in over:
        split.RANGES[version] = (int(over["range"]), split.RANGES[version][1])
    if "price" in over:
        split.VECTOR_PRICE[version] = over["price"]
    codec.write_version = version
    h, w = frames[0].shape[:2]
    rows = []
    try:
        for q in qualities:
            buf = io.BytesIO()
            t = time.perf_counter()
            stats = codec.encode(iter(frames), buf, w, h, q, -1, rate)
            enc = time.perf_counter() - t
            buf.seek(0)
            t = time.perf_counter()
            psnr = [psnr_rgb(rgb, frames[i]) for i, rgb in codec.decode(buf)]
            dec = time.perf_counter() - t
            p = [s for s in stats if s.type == "P"]
            rows.append({"quality": q, "bpp": 8 * len(buf.getvalue()) / (w * h * len(frames)),
                         "psnr_rgb": float(np.mean(psnr)), "types": "".join(s.type for s in stats),
                         "p_motion_bytes": float(np.mean([s.motion_bytes for s in p])) if p else 0.0,
                         "skip_share": float(np.mean([s.skipped / s.units for s in p])) if p else 0.0,
                         "encode_s": round(enc, 2), "decode_s": round(dec, 2)})
            print(name, json.dumps(rows[-1]), flush=True)
    finally:
        split.RANGES.clear()
        split.RANGES.update(saved_ranges)
        split.VECTOR_PRICE.clear()
        split.VECTOR_PRICE.update(saved_price)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", type=Path)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--qualities", default="2,4,6,8")
    ap.add_argument("--variants", default="v4,v5")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    qualities = [float(q) for q in a.qualities.split(",")]
    src = open_video(a.clip, frames=a.frames)
    frames = list(src.frames())
    codec = VideoCodec.default()
    names = a.variants.split(",")
    runs = {n: run_variant(codec, frames, src.rate, n, qualities) for n in names}
    base = runs[names[0]]
    bd = {n: round(bd_rate([r["bpp"] for r in base], [r["psnr_rgb"] for r in base],
                           [r["bpp"] for r in rows], [r["psnr_rgb"] for r in rows]), 2) for n, rows in runs.items()}
    out = {"clip": a.clip.name, "frames": len(frames), "width": src.width, "height": src.height,
           "threads": torch.get_num_threads(), "anchor": names[0], "bd_rate_psnr_rgb": bd, "runs": runs}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(bd))


if __name__ == "__main__":
    main()
