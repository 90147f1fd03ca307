"""`lcodec bench video-p` (P-frame saving over all-intra) and `lcodec bench video-speed`."""

from __future__ import annotations

from pathlib import Path

import click

from .bench_commands import bench_errors

from .bench_commands import comma_qualities


@click.command("video-p")
@click.argument("clips", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--frames", type=click.IntRange(min=2), default=32, show_default=True)
@click.option("--quality", "qualities", default="2,4,6", show_default=True, help="Comma-separated qualities.")
@click.option("--model", "models", multiple=True,
              help="Video weights (.lcv) to measure instead of the bundled ones, plus any image weights (.lcw) "
                   "they name that are not bundled; repeatable.")
@click.option("--format-version", "version", type=click.Choice(["2", "3", "4", "5", "6"]), default="5",
              show_default=True,
              help="6: P-frames against the block-aligned previous frame re-analysed exactly (`encode --aligned`); "
                   "5: vectors up to 64 px, skipped positions re-analysed for synthesis; 4: skip blocks split "
                   "down to 16x16, one stream per frame; 3: skip + motion on 64x64 blocks, frame types by cost; "
                   "2: the encoder before them (no motion, fixed GOP).")
@click.option("--min-leaf", type=click.Choice(["16", "32", "64"]), default=None,
              help="Formats 4-6: smallest skip leaf in pixels the encoder uses (default: the codec's).")
@click.option("--against", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A video-p JSON of another run (e.g. an older format version): add BD-rate and P-frame bytes "
                   "against it, per clip.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write JSON here (and .md beside it).")
@bench_errors
def video_p(clips: tuple[Path, ...], frames: int, qualities: str, models: tuple[str, ...], version: str,
            min_leaf: str | None, against: Path | None, out: Path | None) -> None:
    """Rate of low-delay P-coding vs all-intra at the same quality, per clip and quality."""
    from lcodec.bench.video_ptest import against as compare, against_markdown, p_bd_rates, p_vs_intra, ptest_report
    from lcodec.codec.video_codec import VideoCodec
    from lcodec.codec.video_model import VIDEO_SUFFIX

    qs = comma_qualities(qualities)
    base = _base_rows(against) if against else None
    video = [m for m in models if m.endswith(VIDEO_SUFFIX)]
    if len(video) > 1:
        raise click.BadParameter("give at most one video weights file (.lcv)", param_hint="--model")
    image = [m for m in models if not m.endswith(VIDEO_SUFFIX)]
    codec = VideoCodec.from_model(video[0] if video else "default", image_models=image) if models else None
    codec = codec or VideoCodec.default()
    codec.write_version = int(version)
    if min_leaf:
        codec.min_leaf = int(min_leaf)
    rows = []
    for clip in clips:
        rows += p_vs_intra(clip, frames, qs, codec, adaptive=version != "2")
    bd = p_bd_rates(rows)
    md = ptest_report(rows, bd)
    result = {"rows": rows, "bd_rate_low_delay_vs_all_intra": bd}
    if against:
        result["against"] = {"file": against.name, "clips": compare(rows, base)}
        md += "\n" + against_markdown(result["against"]["clips"])
    click.echo(md, nl=False)
    if out:
        from lcodec.bench.report import write_json

        write_json(out, result)
        out.with_suffix(".md").write_text(md)


def _base_rows(path: Path) -> list[dict]:
    """The rows of a video-p JSON (a usage error if it is not one)."""
    import json

    try:
        rows = json.loads(path.read_text())["rows"]
        if not all(isinstance(r, dict) and "clip" in r and "quality" in r for r in rows):
            raise TypeError
        return rows
    except (ValueError, KeyError, TypeError):
        raise click.BadParameter(f"{path} is not a video-p JSON (no rows)", param_hint="--against") from None


@click.command("video-speed")
@click.argument("clips", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--frames", type=click.IntRange(min=2), default=8, show_default=True)
@click.option("--quality", type=click.FloatRange(1.0, 12.0), default=4.0, show_default=True,
              help="At most the model's levels (12 for the bundled model).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write JSON here.")
@bench_errors
def video_speed(clips: tuple[Path, ...], frames: int, quality: float, out: Path | None) -> None:
    """Encode / decode frames per second of our video codec (CPU, and CUDA when present)."""
    import torch

    from lcodec.bench.video_ptest import video_speed as measure

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = [measure(clip, frames, quality, dev) for clip in clips for dev in devices]
    for r in rows:
        click.echo(f"{r['clip']} {r['width']}x{r['height']} {r['frames']} frames on {r['device']} "
                   f"({r['threads']} threads): encode {r['encode_fps']} fps, decode {r['decode_fps']} fps")
    if out:
        from lcodec.bench.report import write_json

        write_json(out, {"rows": rows})
