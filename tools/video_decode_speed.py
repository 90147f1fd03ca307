"""Decode speed of video formats against each other (issue 30: what the re-analysis for synthesis and
the exact aligned reference cost).

The first 8 frames of bikes (640x272) and bigbuckbunny (1280x720) are encoded at q4, low delay, in each
format; each file is decoded twice and the faster decode counts. Run it with the machine otherwise idle:

    python3 tools/video_decode_speed.py --out bench/results/video-motion/decode-speed-v4-v5.json
    python3 tools/video_decode_speed.py --versions 5,6 --out bench/results/video-motion/decode-speed-v5-v6.json
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import torch

from lcodec.codec.video_codec import VideoCodec
from lcodec.codec.video_io import open_video

CLIPS = ("bikes.mp4", "bigbuckbunny.mp4")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=Path("../shared/data/video"))
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--versions", default="4,5", help="comma-separated format versions")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    versions = [int(v) for v in a.versions.split(",")]
    torch.set_num_threads(a.threads)
    codec = VideoCodec.default()
    fps = {}
    for clip in CLIPS:
        src = open_video(a.videos / clip, frames=a.frames)
        pics = list(src.frames())
        for version in versions:
            codec.write_version = version
            buf = io.BytesIO()
            codec.encode(iter(pics), buf, src.width, src.height, 4.0, -1, src.rate)
            best = float("inf")
            for _ in range(2):
                buf.seek(0)
                t = time.perf_counter()
                n = sum(1 for _ in codec.decode(buf))
                best = min(best, time.perf_counter() - t)
            fps[f"{clip} v{version}"] = round(n / best, 3)
            print(clip, f"format {version}:", fps[f"{clip} v{version}"], "decoded frames/s", flush=True)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    out = {"what": f"decoded frames per second, format {' against format '.join(map(str, versions))} "
                   f"(the same frames, q4, low delay, "
                   f"{a.frames} frames), best of two decodes, {a.threads} threads",
           "command": f"python3 tools/video_decode_speed.py --versions {a.versions}", "machine": cpu,
           "decode_fps": fps}
    a.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
