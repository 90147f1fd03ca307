"""`lcodec bench images|video` and `lcodec bd-rate`: thin click wrappers over the `bench` package.

Bench user errors (BenchError: missing folder, unknown codec, bad JSON) become one-line
click.ClickException messages; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
from pathlib import Path

import click

IMAGE_DEFAULT = "ours,jpeg,jpeg444,webp,avif,jp2k,heif,jxl,vvc"
VIDEO_DEFAULT = "ours,x264,x265,svtav1,vp9,vvc"


def comma_floats(text: str) -> list[float]:
    """Parse an option like "1,2,4.5" (qualities); a bad list is a one-line usage error."""
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"not a comma-separated list of numbers: {text}") from None


def comma_qualities(text: str) -> list[float]:
    """Parse a comma-separated list of qualities; each must lie in the bundled model's range [1, levels]."""
    from lcodec.codec.quality import QUALITY_MIN
    from lcodec.codec.registry import bundled_levels

    top = bundled_levels()
    qs = comma_floats(text)
    if not qs or not all(QUALITY_MIN <= q <= top for q in qs):
        raise click.BadParameter(f"qualities must be one or more numbers in [{QUALITY_MIN:g}, {top:g}], "
                                 f"got {text!r}")
    return qs


def bench_errors(fn):
    """Turn the errors a user causes (bench.errors.BenchError; codec.errors.LcodecError such as an
    unreadable image in the folder) into click.ClickException (one line, exit code 1)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from lcodec.bench.errors import BenchError
        from lcodec.codec.errors import LcodecError

        try:
            return fn(*args, **kwargs)
        except (BenchError, LcodecError) as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def _notice(message: str) -> None:
    click.echo(f"lcodec bench: {message}", err=True)


@click.group()
def bench() -> None:
    """Rate-distortion benchmarks against reference codecs (real files, BD-rate, plots)."""


@bench.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--codecs", default=IMAGE_DEFAULT, show_default=True, help="Comma-separated codec names.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench-results/images"), show_default=True,
              help="Output folder: one JSON per codec, summary.md, RD plots.")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Images/settings run in parallel processes.")
@click.option("--anchor", default=None, help="BD-rate anchor (default: vvc if present, else heif).")
@click.option("--model", default=None,
              help="Weights (.lcw file or bundled name) that the ours codecs use instead of the bundled default.")
@click.option("--qualities", default=None, metavar="LIST",
              help="Qualities of the ours codecs, e.g. 1-8 or 1,3,5,8 (default: every level of the model).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--finished-only", is_flag=True,
              help="Encode nothing: report each codec over the images whose points are all measured in --out "
                   "(by an earlier or a still running bench), e.g. to look at a long run half-way.")
@bench_errors
def images(folder: Path, codecs: str, out: Path, jobs: int, anchor: str | None, model: str | None,
           qualities: str | None, no_progress: bool, finished_only: bool) -> None:
    """Image RD bench on every image in FOLDER."""
    import os

    from lcodec.bench.image_codecs import MODEL_ENV, QUALITIES_ENV, parse_qualities
    from lcodec.bench.run_images import run_images

    if model:  # through the environment, so the worker processes (-j) use it too
        os.environ[MODEL_ENV] = str(Path(model).resolve()) if Path(model).is_file() else model
    if qualities is not None:
        try:
            parse_qualities(qualities)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--qualities") from None
        os.environ[QUALITIES_ENV] = qualities

    summary = run_images(folder, codecs, out, jobs=jobs, progress=not no_progress, anchor=anchor, notice=_notice,
                         finished_only=finished_only)
    click.echo(summary.read_text().split("\n| codec | description")[0].rstrip())
    click.echo(f"\nwrote {summary}")


@bench.command()
@click.argument("clip", type=click.Path(path_type=Path))
@click.option("--frames", type=click.IntRange(1, 100000), default=32, show_default=True, help="Frames coded.")
@click.option("--codecs", default=VIDEO_DEFAULT, show_default=True, help="Comma-separated codec names.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench-results/video"), show_default=True,
              help="Output folder: one JSON per codec, summary.md, RD plots.")
@click.option("--start", type=click.IntRange(min=0), default=0, show_default=True,
              help="First frame of CLIP to code (skip an intro or a black lead-in).")
@click.option("--intra-period", type=click.IntRange(-1, None), default=0, show_default=True,
              help="Frames between I-frames (0: one I-frame, then P-frames only; -1 is read as 0, as in encode).")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Settings run in parallel processes.")
@click.option("--anchor", default=None, help="BD-rate anchor (default: vvc if present, else x265).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@bench_errors
def video(clip: Path, frames: int, codecs: str, out: Path, start: int, intra_period: int, jobs: int,
          anchor: str | None, no_progress: bool) -> None:
    """Low-delay video RD bench on FRAMES frames of CLIP from frame START."""
    from lcodec.bench.run_video import run_video

    summary = run_video(clip, codecs, out, frames=frames, intra_period=max(intra_period, 0), jobs=jobs,
                        progress=not no_progress, anchor=anchor, notice=_notice, start=start)
    click.echo(summary.read_text().split("\n| codec | description")[0].rstrip())
    click.echo(f"\nwrote {summary}")


@bench.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--anchor", default=None, help="BD-rate anchor codec (default: vvc, else heif / x265).")
@click.option("--method", type=click.Choice(["pchip", "akima", "cubic"]), default="pchip", show_default=True)
@bench_errors
def summary(folder: Path, anchor: str | None, method: str) -> None:
    """Rebuild summary.md and the RD plots of FOLDER from every codec JSON in it."""
    from lcodec.bench.errors import BenchError
    from lcodec.bench.report import load_results
    from lcodec.bench.run_images import image_summary
    from lcodec.bench.run_video import video_summary

    if not folder.is_dir():
        raise BenchError(f"not a folder: {folder}")
    results = load_results(folder)
    if not results:
        raise BenchError(f"no codec results in {folder}")
    video = any("per_clip" in d for d in results.values())
    path = (video_summary if video else image_summary)(folder, anchor=anchor, method=method)
    click.echo(path.read_text().split("\n| codec | description")[0].rstrip())
    click.echo(f"\nwrote {path}")


@click.command()
@click.argument("anchor", type=click.Path(path_type=Path))
@click.argument("test", type=click.Path(path_type=Path))
@click.option("--method", type=click.Choice(["pchip", "akima", "cubic"]), default="pchip", show_default=True)
@click.option("--metric", default="psnr-rgb", show_default=True,
              help="Quality in the JSONs: psnr-rgb, ms-ssim (dB scale), psnr-yuv (video).")
@click.option("--per-point", is_flag=True,
              help="Also list, for each TEST point, the ANCHOR's rate at the same quality.")
@bench_errors
def bd_rate(anchor: Path, test: Path, method: str, metric: str, per_point: bool) -> None:
    """BD-rate (%) and BD-PSNR (dB) of TEST against ANCHOR (two codec JSONs)."""
    from lcodec.bench.bd_rate import bd_psnr
    from lcodec.bench.bd_rate import bd_rate as bd_rate_fn
    from lcodec.bench.errors import BenchError
    from lcodec.bench.report import curve, load_result

    a, t = load_result(anchor), load_result(test)
    ca, ct = curve(a, metric), curve(t, metric)
    for c, data, path in ((ca, a, anchor), (ct, t, test)):
        if c is None:
            raise BenchError(f"{path}: no complete {metric!r} curve")
    try:
        rate = bd_rate_fn(ca[0], ca[1], ct[0], ct[1], method=method)
        quality = bd_psnr(ca[0], ca[1], ct[0], ct[1], method=method)
    except ValueError as exc:  # InsufficientOverlap included
        raise BenchError(f"cannot compute BD-rate: {exc}") from None
    label = "BD-PSNR" if metric.startswith("psnr") else "BD-MS-SSIM"
    click.echo(f"{t['name']} vs {a['name']} ({metric}, {method}):")
    click.echo(f"BD-rate: {rate:+.2f} %")
    click.echo(f"{label}: {quality:+.3f} dB")
    if per_point:
        from lcodec.bench.bd_rate import rate_differences

        unit = "dB" if metric.startswith("psnr") or metric == "ms-ssim" else ""
        click.echo(f"{'rate':>8} {metric:>9} {a['name'] + ' rate':>12} {'difference':>10}")
        for r, q, ra, d in rate_differences(ca[0], ca[1], ct[0], ct[1]):
            tail = f"{ra:12.4f} {d:+9.1f} %" if ra is not None else f"{'outside':>12} {'-':>10}"
            click.echo(f"{r:8.4f} {q:6.2f} {unit:2} {tail}")
