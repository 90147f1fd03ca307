"""Per-pixel encode and decode time and peak memory of a large image, to compare with the 768x512
figures of `bench speed` (`lcodec bench speed DIR --large PHOTO`).

The large image runs in a fresh process, so its peak resident memory is its own (the kernel keeps
one peak per process). A photo larger than `--crop` (3000x2000 by default, a phone or camera photo
downscaled) is centre-cropped to it; the figures name the size coded.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def measure(path: str | Path, quality: float = 4.0, repeat: int = 1, crop: tuple[int, int] = (3000, 2000)) -> dict:
    """Median encode and decode seconds (after a warm-up run), seconds per megapixel and peak RSS."""
    import statistics

    import torch

    from lcodec.codec import ImageCodec
    from lcodec.codec.image_io import read_image

    img = read_image(path).stripped()
    h, w = img.rgb.shape[:2]
    cw, ch = min(crop[0], w), min(crop[1], h)
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    from dataclasses import replace

    img = replace(img, rgb=img.rgb[y0:y0 + ch, x0:x0 + cw].copy(),
                  alpha=None if img.alpha is None else img.alpha[y0:y0 + ch, x0:x0 + cw].copy())
    codec = ImageCodec.default()
    codec.decode(codec.encode(img, quality))  # warm-up
    enc, dec = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        blob = codec.encode(img, quality)
        t1 = time.perf_counter()
        codec.decode(blob)
        dec.append(time.perf_counter() - t1)
        enc.append(t1 - t0)
    mpx = cw * ch / 1e6
    e, d = statistics.median(enc), statistics.median(dec)
    return {"image": Path(path).name, "size": f"{cw}x{ch}", "quality": quality, "threads": torch.get_num_threads(),
            "repeat": repeat, "bytes": len(blob), "encode_s": round(e, 3), "decode_s": round(d, 3),
            "encode_s_per_mpx": round(e / mpx, 3), "decode_s_per_mpx": round(d / mpx, 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def in_subprocess(path: str | Path, quality: float = 4.0, repeat: int = 1) -> dict:
    """`measure` in a fresh Python process (its own peak memory)."""
    out = subprocess.run([sys.executable, "-m", "lcodec.bench.large_image", str(path), "--quality", str(quality),
                          "--repeat", str(repeat)], capture_output=True, text=True)
    if out.returncode:
        from .errors import BenchError

        last = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit code {out.returncode}"
        raise BenchError(f"large-image run on {path} failed: {last}")
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Time one large image (JSON on stdout).")
    ap.add_argument("path")
    ap.add_argument("--quality", type=float, default=4.0)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    print(json.dumps(measure(args.path, args.quality, args.repeat)))
