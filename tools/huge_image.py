"""Time and peak memory of coding a 7680x4320 photo (tiled coding), and its PSNR.

The photo is a mosaic of the evaluation images, four per row, each resized to 1920 pixels wide (2.5x
for the 768-pixel-wide ones) and cropped to the shortest, rows repeated and cut to 4320 lines: real
photographic content at 8K without shipping an 8K file. `lcodec encode` and `lcodec decode` run in
fresh processes, each reporting its own wall time and peak resident memory (max RSS, model included).

    python -m tools.huge_image ../shared/data/eval --out bench/results/tiling/huge-image.json
    python -m tools.huge_image ../shared/data/eval --seams --out bench/results/tiling/tiling-seams.json
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from lcodec.bench.metrics import psnr_rgb

ROOT = Path(__file__).resolve().parents[1]

_RUN = """
import json, resource, sys, time
t0 = time.perf_counter()
from lcodec.cli.main import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    print(json.dumps({"wall_s": round(time.perf_counter() - t0, 2),
                      "max_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}))
"""


def build_mosaic(folder: Path, width: int = 7680, height: int = 4320) -> np.ndarray:
    """Evaluation photos four per row, each resized to a quarter of the width, rows repeated to fill."""
    paths = sorted(folder.glob("*.png"))[:16]
    tw = width // 4
    tiles = []
    for p in paths:
        with Image.open(p) as im:
            im = im.convert("RGB")
            th = round(im.height * tw / im.width)
            tiles.append(np.asarray(im.resize((tw, th), Image.BICUBIC)))
    th = min(t.shape[0] for t in tiles)
    rows = [np.concatenate([t[:th] for t in tiles[r * 4 : r * 4 + 4]], axis=1)
            for r in range(math.ceil(len(tiles) / 4)) if len(tiles[r * 4 : r * 4 + 4]) == 4]
    while sum(r.shape[0] for r in rows) < height:
        rows += rows
    return np.ascontiguousarray(np.concatenate(rows, axis=0)[:height, :width])


def seams(folder: Path, images: int = 2, qualities: tuple[float, ...] = (2.0, 6.0), tile: int = 512) -> list[dict]:
    """Tiled against untiled coding of evaluation photos upscaled 2x (1536x1024): PSNR and bpp."""
    from lcodec.codec import ImageCodec

    codec = ImageCodec.default()
    rows = []
    for p in sorted(folder.glob("*.png"))[:images]:
        with Image.open(p) as im:
            rgb = np.asarray(im.convert("RGB").resize((im.width * 2, im.height * 2), Image.BICUBIC))
        h, w = rgb.shape[:2]
        for q in qualities:
            row = {"image": f"{p.stem} x2", "quality": q}
            for name, t in (("untiled", None), (f"tiles_{tile}", tile)):
                blob = codec.encode(rgb, q, tile=t)
                out = np.asarray(codec.decode(blob).convert("RGB"))
                row[name] = {"psnr": round(psnr_rgb(rgb, out), 2),
                             "bpp": round(8 * len(blob) / (h * w), 3)}
            rows.append(row)
    return rows


def _run(args: list[str], threads: int) -> dict:
    env = {"OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", _RUN, *args], capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _report(result: object, out: Path | None) -> None:
    """Print the result as JSON and also write it to `out` if given."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--quality", type=float, default=4.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--seams", action="store_true", help="Only compare tiled and untiled coding at 1536x1024.")
    a = ap.parse_args()
    if a.seams:
        _report(seams(a.folder), a.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        src, lcd, rec = Path(tmp) / "8k.png", Path(tmp) / "8k.lcd", Path(tmp) / "8k-dec.png"
        rgb = build_mosaic(a.folder)
        Image.fromarray(rgb).save(src)
        enc = _run(["encode", str(src), "-o", str(lcd), "-q", str(a.quality)], a.threads)
        dec = _run(["decode", str(lcd), "-o", str(rec)], a.threads)
        with Image.open(rec) as im:
            out = np.asarray(im.convert("RGB"))
        h, w = rgb.shape[:2]
        info = json.loads(subprocess.run([sys.executable, "-m", "lcodec.cli.main", "info", str(lcd), "--json"],
                                         capture_output=True, text=True, check=True,
                                         cwd=ROOT).stdout)
        result = {"size": f"{w}x{h}", "quality": a.quality, "threads": a.threads, "bytes": lcd.stat().st_size,
                  "bpp": round(8 * lcd.stat().st_size / (w * h), 4), "tiles": info.get("tiles", 1),
                  "format_version": info["format_version"], "psnr": round(psnr_rgb(rgb, out), 2),
                  "encode": enc, "decode": dec}
    _report(result, a.out)


if __name__ == "__main__":
    main()
