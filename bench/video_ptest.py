"""What P-frames save, and how fast our video codec runs.

`p_vs_intra`: the same frames at the same quality coded twice, all-intra (every frame an I-frame) and
low delay (one I-frame, then P-frames); the saving is 1 - mean P-frame bytes / mean intra-frame bytes
(intra mean over frames 1..N-1, the frames the P-frames replace). PSNR of both runs is reported, so the
saving is not bought with quality.

`video_speed`: frames per second of encode and decode (model loading excluded) on the CPU with
torch's thread count, and on CUDA when there is a device.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import torch

from lcodec.codec.video_codec import VideoCodec
from lcodec.codec.video_io import open_video

from .metrics import psnr_rgb


def _run(codec: VideoCodec, frames: list[np.ndarray], quality: float, period: int, rate, adaptive: bool = True) -> dict:
    h, w = frames[0].shape[:2]
    buf = io.BytesIO()
    stats = codec.encode(iter(frames), buf, w, h, quality, period, rate, adaptive=adaptive)
    buf.seek(0)
    psnrs = [psnr_rgb(rgb, frames[i]) for i, rgb in codec.decode(buf)]
    return {"frame_bytes": [s.bytes for s in stats], "types": "".join(s.type for s in stats),
            "motion_bytes": [s.motion_bytes for s in stats], "skipped": [s.skipped for s in stats],
            "units": [s.units for s in stats],
            "file_bytes": len(buf.getvalue()), "bpp": 8 * len(buf.getvalue()) / (w * h * len(frames)),
            "psnr_rgb": float(np.mean(psnrs))}


def p_vs_intra(clip: str | Path, frames: int, qualities: list[float], codec: VideoCodec | None = None,
               adaptive: bool = True) -> list[dict]:
    """One row per quality: mean P / intra frame bytes, the saving, bpp and PSNR of both runs, and
    (formats 3, 4) the P-frames' mean motion bytes (skip flags and vectors) and skipped share of their
    area (format 4 also the smallest skip leaf the encoder used).
    `adaptive`: the low-delay run chooses frame types by cost (False: I-frames only where forced)."""
    codec = codec or VideoCodec.default()
    src = open_video(clip, frames=frames)
    pics = list(src.frames())
    rows = []
    for q in qualities:
        intra = _run(codec, pics, q, 1, src.rate)
        low_delay = _run(codec, pics, q, -1, src.rate, adaptive)
        p_frames = [k for k, t in enumerate(low_delay["types"]) if t == "P"] or [0]
        p_mean = float(np.mean([low_delay["frame_bytes"][k] for k in p_frames]))
        i_mean = float(np.mean(intra["frame_bytes"][1:]))
        rows.append({
            "clip": Path(clip).name, "frames": len(pics), "width": src.width, "height": src.height, "quality": q,
            "p_frame_bytes": round(p_mean, 1), "intra_frame_bytes": round(i_mean, 1),
            "intra_frame_bytes_all": round(float(np.mean(intra["frame_bytes"])), 1),
            "saving": round(1 - p_mean / i_mean, 4),
            "bpp_low_delay": round(low_delay["bpp"], 5), "bpp_all_intra": round(intra["bpp"], 5),
            "psnr_low_delay": round(low_delay["psnr_rgb"], 3), "psnr_all_intra": round(intra["psnr_rgb"], 3),
            "types_low_delay": low_delay["types"], "format_version": codec.write_version,
            "p_motion_bytes": round(float(np.mean([low_delay["motion_bytes"][k] for k in p_frames])), 1),
            "skip_share": round(sum(low_delay["skipped"][k] for k in p_frames)
                                / max(1, sum(low_delay["units"][k] for k in p_frames)), 4),
        })
        if codec.write_version >= 4:
            rows[-1]["min_leaf"] = codec.min_leaf
    return rows


def p_bd_rates(rows: list[dict]) -> dict[str, float | str]:
    """Per clip: BD-rate (PSNR-RGB, PCHIP) of low-delay P-coding against all-intra over the qualities.

    The fair figure when P-frames come out at a different PSNR than intra frames at the same quality."""
    from .bd_rate import InsufficientOverlap, bd_rate

    out: dict[str, float | str] = {}
    for clip in dict.fromkeys(r["clip"] for r in rows):
        rs = sorted((r for r in rows if r["clip"] == clip), key=lambda r: r["quality"])
        if len(rs) < 4:
            continue
        try:
            out[clip] = round(bd_rate([r["bpp_all_intra"] for r in rs], [r["psnr_all_intra"] for r in rs],
                                      [r["bpp_low_delay"] for r in rs], [r["psnr_low_delay"] for r in rs]), 2)
        except (InsufficientOverlap, ValueError) as exc:
            out[clip] = f"n/a ({exc})"
    return out


def against(rows: list[dict], base: list[dict]) -> dict[str, dict]:
    """Per clip, this run's low delay against another run's (`base`, e.g. an older format version):
    BD-rate (PSNR-RGB, PCHIP) and per quality both runs' mean P-frame bytes, PSNR and skipped share."""
    from .bd_rate import InsufficientOverlap, bd_rate

    out: dict[str, dict] = {}
    for clip in dict.fromkeys(r["clip"] for r in rows):
        rs = sorted((r for r in rows if r["clip"] == clip), key=lambda r: r["quality"])
        bs = {r["quality"]: r for r in base if r["clip"] == clip}
        pairs = [(r, bs[r["quality"]]) for r in rs if r["quality"] in bs]
        if not pairs:
            continue
        entry: dict = {"base_format_version": pairs[0][1].get("format_version"), "qualities": [
            {"quality": r["quality"], "p_frame_bytes": r["p_frame_bytes"], "base_p_frame_bytes": b["p_frame_bytes"],
             "psnr": r["psnr_low_delay"], "base_psnr": b["psnr_low_delay"], "skip_share": r.get("skip_share"),
             "base_skip_share": b.get("skip_share"), "p_motion_bytes": r.get("p_motion_bytes"),
             "base_p_motion_bytes": b.get("p_motion_bytes")} for r, b in pairs]}
        try:
            new, old = [r for r, _ in pairs], [b for _, b in pairs]
            entry["bd_rate"] = round(bd_rate([b["bpp_low_delay"] for b in old], [b["psnr_low_delay"] for b in old],
                                             [r["bpp_low_delay"] for r in new], [r["psnr_low_delay"] for r in new]), 2)
        except (InsufficientOverlap, ValueError) as exc:
            entry["bd_rate"] = f"n/a ({exc})"
        out[clip] = entry
    return out


def against_markdown(cmp: dict[str, dict]) -> str:
    """The comparison of `against` as a table and one BD-rate line per clip."""
    lines = ["| clip | quality | P-frame bytes | base | PSNR | base | skipped | base | P motion bytes | base |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for clip, e in cmp.items():
        for q in e["qualities"]:
            lines.append(f"| {clip} | {q['quality']:g} | {q['p_frame_bytes']:.0f} | {q['base_p_frame_bytes']:.0f} | "
                         f"{q['psnr']:.2f} | {q['base_psnr']:.2f} | {100 * (q['skip_share'] or 0):.0f} % | "
                         f"{100 * (q['base_skip_share'] or 0):.0f} % | {q['p_motion_bytes'] or 0:.0f} | "
                         f"{q['base_p_motion_bytes'] or 0:.0f} |")
    md = "\n".join(lines) + "\n"
    for clip, e in cmp.items():
        v = e["bd_rate"]
        md += (f"\nBD-rate (PSNR-RGB) of low delay against the base run (format {e['base_format_version']}), {clip}: "
               + (f"{v:+.1f} %" if isinstance(v, (int, float)) else str(v)) + "\n")
    return md


def video_speed(clip: str | Path, frames: int, quality: float = 4.0, device: str = "cpu") -> dict:
    """Encode and decode frames per second of the first `frames` frames (low delay, model preloaded)."""
    codec = VideoCodec.default(device)
    src = open_video(clip, frames=frames)
    pics = list(src.frames())
    buf = io.BytesIO()
    codec.encode(iter(pics[:2]), io.BytesIO(), src.width, src.height, quality, -1, src.rate)  # warm-up
    t0 = time.perf_counter()
    codec.encode(iter(pics), buf, src.width, src.height, quality, -1, src.rate)
    if device != "cpu":
        torch.cuda.synchronize()
    t1 = time.perf_counter()
    buf.seek(0)
    n = sum(1 for _ in codec.decode(buf))
    if device != "cpu":
        torch.cuda.synchronize()
    t2 = time.perf_counter()
    return {"clip": Path(clip).name, "width": src.width, "height": src.height, "frames": n, "quality": quality,
            "device": device if device == "cpu" else torch.cuda.get_device_name(),
            "threads": torch.get_num_threads(), "encode_fps": round(n / (t1 - t0), 3),
            "decode_fps": round(n / (t2 - t1), 3)}


def ptest_markdown(rows: list[dict]) -> str:
    """The P-vs-intra table; rows from formats 3 and 4 add the P-frames' motion bytes and skipped share."""
    motion = any("p_motion_bytes" in r for r in rows)
    extra = " P motion bytes | skipped |" if motion else ""
    lines = ["| clip | frames | quality | P-frame bytes | intra-frame bytes | saving | bpp low delay | bpp all intra "
             "| PSNR low delay | PSNR all intra |" + extra,
             "|---|---|---|---|---|---|---|---|---|---|" + "---|" * (2 * motion)]
    for r in rows:
        line = (f"| {r['clip']} | {r['frames']} | {r['quality']:g} | {r['p_frame_bytes']:.0f} | "
                f"{r['intra_frame_bytes']:.0f} | {100 * r['saving']:.1f} % | {r['bpp_low_delay']:.4f} | "
                f"{r['bpp_all_intra']:.4f} | {r['psnr_low_delay']:.2f} | {r['psnr_all_intra']:.2f} |")
        if motion:
            line += f" {r.get('p_motion_bytes', 0):.0f} | {100 * r.get('skip_share', 0):.0f} % |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def ptest_report(rows: list[dict], bd: dict[str, float | str]) -> str:
    """The table and one BD-rate line per clip, as written beside the JSON and shown in docs/benchmarks.md."""
    md = ptest_markdown(rows)
    for clip, v in bd.items():
        md += f"\nBD-rate (PSNR-RGB) of low-delay P-coding vs all-intra, {clip}: " + \
              (f"{v:+.1f} %" if isinstance(v, (int, float)) else str(v)) + "\n"
    return md
