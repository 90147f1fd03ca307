"""Encode time per effort level as a user sees it (issue 29): `lcodec encode IMAGE -q Q --effort E` in a
fresh process with its default threads, then `lcodec decode`, for every effort; wall seconds, bytes,
bpp and PSNR of the decoded file. Run it on a quiet machine: the figures feed the README and `--effort`'s
help.

    python -m tools.effort_timing ../shared/data/eval/e01.png 4 bench/results/effort/quiet-timing.json
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from lcodec.bench.report import machine_description
from lcodec.codec.latent_search import EFFORT_ITERATIONS
from lcodec.codec.metrics import psnr


def _timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(["lcodec", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode:
        lines = done.stderr.strip().splitlines() or ["no message"]
        raise SystemExit(f"lcodec {' '.join(args)}: {lines[-1]}")
    return seconds


def measure(image: Path, quality: float) -> dict:
    """One encode and decode per effort level, each in a fresh process."""
    with Image.open(image) as im:
        rgb = np.asarray(im.convert("RGB"))
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        coded, decoded = Path(tmp) / "x.lcd", Path(tmp) / "x.png"
        for effort in sorted(EFFORT_ITERATIONS):
            enc = _timed(["encode", str(image), "-o", str(coded), "-q", f"{quality:g}", "--effort", str(effort),
                          "--force"])
            dec = _timed(["decode", str(coded), "-o", str(decoded), "--force"])
            with Image.open(decoded) as im:
                out = np.asarray(im.convert("RGB"))
            size = coded.stat().st_size
            row = {"effort": effort, "steps": EFFORT_ITERATIONS[effort], "encode_s": round(enc, 2),
                   "decode_s": round(dec, 2), "bytes": size, "bpp": round(8 * size / (rgb.shape[0] * rgb.shape[1]), 4),
                   "psnr": round(psnr(out, rgb), 3)}
            print(json.dumps(row), flush=True)
            runs.append(row)
    return {"what": f"`lcodec encode {image} -q {quality:g} --effort E` then `lcodec decode`, each a fresh process "
                    "with its default threads (python -m tools.effort_timing)",
            "machine": machine_description(), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "runs": runs}


def main(argv: list[str]) -> None:
    image, quality, out = Path(argv[0]), float(argv[1]), Path(argv[2])
    data = measure(image, quality)
    if out.exists():  # keep what earlier search settings measured, for the docs' comparison
        old = json.loads(out.read_text())
        data["earlier"] = {k: v for k, v in old.items() if k != "earlier"}
    out.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
