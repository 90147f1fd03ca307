"""Encoder effort on video (issue 29): effort 0 against 1 on the first frames of a clip.

Real files (low delay, one I-frame) decoded by a fresh decoder: bpp, sequence PSNR and encode seconds
per quality and effort, one JSON line per encode and all of them in OUT.json.

    python tools/video_effort.py CLIP FRAMES Q[,Q...] OUT.json
"""

from __future__ import annotations

import io
import json
import sys
import time

import torch

from lcodec.codec.metrics import psnr, sequence_psnr
from lcodec.codec.video_codec import VideoCodec
from lcodec.codec.video_io import open_video


def measure(clip: str, n: int, qualities: list[float], efforts: tuple[int, ...] = (0, 1)) -> dict:
    """Every (quality, effort) encode of the first `n` frames of `clip`."""
    frames = list(open_video(clip, frames=n).frames())
    h, w = frames[0].shape[:2]
    codec = VideoCodec.default()
    rows = []
    for q in qualities:
        for effort in efforts:
            buf = io.BytesIO()
            t0 = time.perf_counter()
            stats = codec.encode(iter(frames), buf, w, h, q, intra_period=0, effort=effort)
            enc = time.perf_counter() - t0
            size = len(buf.getvalue())
            decoded = [f for _, f in VideoCodec.default().decode(io.BytesIO(buf.getvalue()))]
            ps = [psnr(d, f) for d, f in zip(decoded, frames)]
            row = {"quality": q, "effort": effort, "bytes": size, "bpp": 8 * size / (w * h * n),
                   "psnr": sequence_psnr(ps), "frame_psnr": ps, "frame_bytes": [s.bytes for s in stats],
                   "types": "".join(s.type for s in stats), "enc_s": enc, "enc_s_per_frame": enc / n}
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "frame_psnr"}), flush=True)
    return {"clip": clip, "frames": n, "width": w, "height": h, "rows": rows}


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    clip, n, qs, out = argv[0], int(argv[1]), [float(q) for q in argv[2].split(",")], argv[3]
    with open(out, "w") as f:
        json.dump(measure(clip, n, qs), f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
