"""What an exact g_a costs against the float one (issue 30: a decoder that feeds its re-analysis of the
motion-compensated previous frame to the entropy model needs the exact one).

Times `codec.exact_analysis.ExactAnalysis` and the float g_a on the first frame of bikes (640x272) and
bigbuckbunny (1280x720), padded to 64 px as a P-frame is, best of two each, and the largest difference
between the two latents. Run it with the machine otherwise idle:

    python3 tools/exact_analysis_speed.py --out bench/results/video-motion/exact-analysis-speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from lcodec.codec.exact_analysis import ExactAnalysis
from lcodec.codec.image_codec import ImageCodec
from lcodec.codec.transforms import HYPER_STRIDE, from_pixels
from lcodec.codec.video_io import open_video
from lcodec.entropy_models.fixed_point import to_real

CLIPS = ("bikes.mp4", "bigbuckbunny.mp4")


def _best(fn, runs: int = 2) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=Path("../shared/data/video"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    g_a = ImageCodec.default().model.g_a
    exact = ExactAnalysis(g_a)
    rows = []
    for name in CLIPS:
        rgb = next(open_video(a.videos / name, frames=1).frames())
        h, w = rgb.shape[:2]
        rgb = np.pad(rgb, ((0, (-h) % HYPER_STRIDE), (0, (-w) % HYPER_STRIDE), (0, 0)), mode="edge")
        x = from_pixels(rgb).unsqueeze(0)
        with torch.no_grad():
            ref = g_a(x)
            float_s = _best(lambda: g_a(x))
        exact_s = _best(lambda: exact(rgb))
        diff = (to_real(exact(rgb)) - ref).abs()
        rows.append({"clip": name, "width": w, "height": h, "padded": list(rgb.shape[:2]),
                     "float_s": round(float_s, 3), "exact_s": round(exact_s, 3),
                     "max_abs_diff": round(float(diff.max()), 4), "mean_abs_diff": round(float(diff.mean()), 5)})
        print(json.dumps(rows[-1]), flush=True)
    out = {"what": __doc__.splitlines()[0], "threads": a.threads, "machine": platform.processor() or platform.machine(),
           "torch": torch.__version__, "runs": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
