"""The `lcodec` command: encode, decode, info, train, export, bench, bd-rate.

User errors (bad files, bad options, corrupt streams) print one line on stderr and exit non-zero;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import json
import sys
import warnings
from pathlib import Path

import click

from lcodec.codec.training.config import TrainConfig

from .bench_commands import bd_rate, bench
from .config_options import config_options, config_values
from .determinism_command import determinism
from .fuzz_command import fuzz
from .speed_command import speed
from .train_speed_command import train_speed
from .threads_command import threads
from .pack_command import pack_patches
from .video_bench_commands import video_p, video_speed
from .signals import Terminated, install as install_signal_handlers, run_training
from .video_commands import train_video

EXIT_USAGE = 2


def _fail(message: str, code: int) -> None:
    click.echo(f"lcodec: error: {message}", err=True)
    sys.exit(code)


def _kept(exc: BaseException) -> str:
    """What an interrupted command leaves: nothing, unless it says otherwise (training: its checkpoint)."""
    return getattr(exc, "kept", None) or "no output written"


def user_errors(fn):
    """Turn LcodecError (and friends) into a one-line message and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from lcodec.codec.errors import LcodecError

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            try:
                result = fn(*args, **kwargs)
            except LcodecError as exc:
                _report_warnings(caught)
                _fail(str(exc), exc.exit_code)
            except KeyboardInterrupt as exc:
                _fail(f"interrupted ({_kept(exc)})", 130)
            except Terminated as exc:
                _fail(f"terminated by {exc.name} ({_kept(exc)})", exc.exit_code)
        _report_warnings(caught)
        return result

    return wrapper


def _report_warnings(caught) -> None:
    from lcodec.codec.image_io import LossyReductionWarning

    for w in caught:
        if issubclass(w.category, LossyReductionWarning):
            click.echo(f"lcodec: warning: {w.message}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lcodec")
@click.option("--threads", type=int, default=None, metavar="N",
              help="CPU threads for torch (default: $LCODEC_THREADS, else one per core).")
def main(threads: int | None) -> None:
    """lcodec: a learned image codec with real range-coded bitstreams."""
    from lcodec.codec.threads import requested_threads, use_threads

    try:
        use_threads(requested_threads(threads))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--threads") from None


@main.command()
@click.argument("input", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Output file (default: INPUT with .lcd).")
@click.option("-q", "--quality", type=float, default=None,
              help="Quality 1 to the model's top level (12 for the bundled model); fractions allowed (default 4).")
@click.option("--bpp", type=float, default=None, help="Target bits per pixel: highest quality that fits.")
@click.option("--psnr", type=float, default=None, help="Target PSNR in dB: lowest quality that reaches it.")
@click.option("--effort", type=click.IntRange(0, 3), default=0, show_default=True,
              help="Search the latents before coding (1-3: slower encode, smaller file at the same quality; "
                   "any decoder reads it; videos: every frame). A 768x512 photo on 2 CPU cores: effort 0 4 s, "
                   "1 45 s, 2 113 s, 3 400 s (docs/benchmarks.md).")
@click.option("--model", "model", default=None, help="Bundled model name or weights file (.lcw).")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None, help="Refuse larger inputs (default 64 Mpx).")
@click.option("--frames", type=click.IntRange(min=1), default=None, help="Video: encode at most this many frames.")
@click.option("--start", type=click.IntRange(min=0), default=0, help="Video: first frame to encode.")
@click.option("--intra-period", type=click.IntRange(min=-1), default=32, show_default=True,
              help="Video: an I-frame every N frames; 0 = only the first frame (-1 is read as 0).")
@click.option("--aligned", is_flag=True,
              help="Video: code P-frames against the previous frame aligned per 64x64 block and re-analysed "
                   "exactly (format 6): smaller where things move fast (bikes -9 %), larger on slow motion at "
                   "low rates (carphone +7 %), about 2.5x slower to decode.")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--strip", is_flag=True, help="Images: leave the ICC profile, EXIF and XMP out of the file.")
@user_errors
def encode(input: Path, output: Path | None, quality: float | None, bpp: float | None, psnr: float | None,
           effort: int, model: str | None, max_pixels: int | None, frames: int | None, start: int, intra_period: int,
           aligned: bool, force: bool, strip: bool) -> None:
    """Encode an image (PNG, JPEG, BMP, TIFF, WebP, ...) or a video (MP4, MKV, AVI, Y4M, ...) into an lcodec file.

    Images are coded upright (EXIF orientation applied) with their ICC profile, EXIF and XMP unless
    --strip; animated or multi-page images are refused (encode them as a video)."""
    from lcodec.codec import ImageCodec
    from lcodec.codec.errors import OutputError
    from lcodec.codec.image_io import DEFAULT_MAX_PIXELS, atomic_write, read_image
    from lcodec.codec.quality import QUALITY_MIN

    targets = [v is not None for v in (quality, bpp, psnr)]
    if sum(targets) > 1:
        raise click.UsageError("give only one of --quality, --bpp, --psnr")
    if bpp is not None and not bpp > 0:
        raise click.BadParameter("must be positive", param_hint="--bpp")
    if quality is not None and not quality >= QUALITY_MIN:  # the top depends on the model: its codec checks that
        raise click.BadParameter(f"quality must be at least {QUALITY_MIN:g}, got {quality:g}", param_hint="--quality")
    output = output or input.with_suffix(".lcd")
    from lcodec.codec.video_io import is_video_path

    if is_video_path(input):
        if bpp is not None or psnr is not None:
            raise click.UsageError("--bpp / --psnr targets are for images; use --quality for videos")
        if strip:
            raise click.UsageError("--strip is for images; video files carry no metadata")
        from .video_commands import encode_video

        encode_video(input, output, 4.0 if quality is None else quality, model, frames, start, intra_period, force,
                     effort=effort, aligned=aligned)
        return
    _refuse_video_options(input, ("frames", "start", "intra_period", "aligned"))
    if output.exists() and not force:
        raise OutputError(f"output exists: {output} (use --force to overwrite)")
    image = read_image(input, max_pixels or DEFAULT_MAX_PIXELS)
    if strip:
        image = image.stripped()
    codec = ImageCodec.from_model(model) if model else ImageCodec.default()
    from .progress import search_bar

    with search_bar() as progress:
        if bpp is not None or psnr is not None:
            blob, q = codec.encode_to_target(image, bpp=bpp, psnr=psnr, effort=effort, progress=progress)
        else:
            q = 4.0 if quality is None else quality
            blob = codec.encode(image, q, effort=effort, progress=progress)
    atomic_write(output, data=blob, force=force)
    h, w = image.rgb.shape[:2]
    click.echo(f"{input} -> {output}: {w}x{h} {image.mode}, quality {q:.3f}, "
               f"{len(blob)} bytes, {8 * len(blob) / (w * h):.4f} bpp")


def _motion_summary(fr: dict) -> str:
    """One P-frame's motion and skip figures for `lcodec info` (format 4: skipped area in 16x16 cells)."""
    if "motion_bytes" not in fr:
        return ""
    if "cells" in fr:
        return (f"  motion {fr['motion_bytes']} bytes, {fr['skipped_cells']}/{fr['cells']} cells of 16x16 skipped, "
                f"{fr['skipped_blocks']}/{fr['blocks']} whole blocks")
    return f"  motion {fr['motion_bytes']} bytes, {fr['skipped_blocks']}/{fr['blocks']} blocks skipped"


@main.command()
@click.argument("input", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Image: format from the extension (default INPUT.png). Video: .y4m, .mkv (FFV1), .mp4 "
                   "(lossless H.264) or a PNG pattern like out/%05d.png (default INPUT.y4m).")
@click.option("--model", "models", multiple=True, help="Weights file(s) to look for the stream's model in.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None, help="Refuse larger streams (default 64 Mpx).")
@click.option("--frame", type=click.IntRange(min=0), default=None, help="Video: decode only this frame, to an image.")
@click.option("--chroma", type=click.Choice(["420", "444", "rgb"]), default="420", show_default=True,
              help="Video: pixel format of .y4m/.mkv/.mp4 output (rgb: .mkv only, bit-exact FFV1).")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output file.")
@user_errors
def decode(input: Path, output: Path | None, models: tuple[str, ...], max_pixels: int | None, frame: int | None,
           chroma: str, force: bool) -> None:
    """Decode an lcodec file into an image (any format Pillow writes) or a video."""
    from lcodec.codec import ImageCodec
    from lcodec.codec.errors import OutputError
    from lcodec.codec.image_io import DEFAULT_MAX_PIXELS, atomic_write
    from lcodec.codec.video_container import KIND_VIDEO

    if _peek_kind(input) == KIND_VIDEO:
        from .video_commands import decode_video

        decode_video(input, output, list(models), frame, chroma, force)
        return
    _refuse_video_options(input, ("frame", "chroma"))
    data = _read_stream(input)
    output = output or input.with_suffix(".png")
    if output.exists() and not force:
        raise OutputError(f"output exists: {output} (use --force to overwrite)")
    image = ImageCodec.for_stream(data, list(models)).decode(data, list(models), max_pixels or DEFAULT_MAX_PIXELS)
    atomic_write(output, image=image, force=force)
    click.echo(f"{input} -> {output}: {image.width}x{image.height} {image.mode}")


@main.command()
@click.argument("input", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def info(input: Path, as_json: bool) -> None:
    """Show an lcodec file's header: kind, model, weights hash, quality, size, bytes, bpp."""
    from lcodec.codec import ImageCodec
    from lcodec.codec.video_container import KIND_VIDEO

    if _peek_kind(input) == KIND_VIDEO:
        from .video_commands import video_info

        d = video_info(input)
        if not as_json:
            frames = d.pop("frames")
            for k, v in d.items():
                click.echo(f"{k:15s} {v}")
            for fr in frames:
                extra = _motion_summary(fr)
                click.echo(f"frame {fr['index']:6d} {fr['type']} {fr['bytes']:8d} bytes  "
                           f"quality {fr['quality']:g}{extra}")
            return
    else:
        d = ImageCodec.info(_read_stream(input))
    if as_json:
        click.echo(json.dumps(d))
        return
    for k, v in d.items():
        if isinstance(v, dict):  # metadata: name -> bytes
            v = ", ".join(f"{name} {n} bytes" for name, n in v.items())
        click.echo(f"{k:15s} {v}")


def _refuse_video_options(input: Path, names: tuple[str, ...]) -> None:
    """A usage error naming the video-only options given on the command line for an image."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    given = [f"--{n.replace('_', '-')}" for n in names
             if ctx.get_parameter_source(n) not in (None, ParameterSource.DEFAULT)]
    if given:
        raise click.UsageError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for videos; "
                               f"{input} is an image")


def _peek_kind(path: Path) -> int | None:
    """The kind byte of an lcodec file (None if unreadable here: _read_stream then says why)."""
    from lcodec.codec.video_container import stream_kind

    try:
        with open(path, "rb") as f:
            return stream_kind(f.read(8))
    except OSError:
        return None


def _read_stream(path: Path) -> bytes:
    from lcodec.codec.errors import InputError

    if not path.exists():
        raise InputError(f"input file not found: {path}")
    if path.is_dir():
        raise InputError(f"input is a folder: {path}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


@main.command()
@config_options(TrainConfig)
@click.option("--no-resume", is_flag=True, help="Start afresh even if OUT/last.pt exists.")
@click.option("--arch", default=None, metavar="[NAME][,KEY=N,...]",
              help="Architecture: a named one (default: the bundled model's; small: quick runs), and/or changes "
                   "from --init's (or the default), e.g. n=192 or levels=12; --init weights that are narrower are "
                   "widened without changing their output.")
@click.option("--train-only", default=None, metavar="PART,...",
              help="Train only these parts (g_a, g_s, h_a, h_s, z_prior, context, gain, or a submodule such as "
                   "g_s.blocks); the rest stays as --init has it. Only g_s: better reconstructions from the "
                   "very same bits.")
@user_errors
def train(no_resume: bool, arch: str | None, train_only: str | None, **opts) -> None:
    """Rate-distortion training (CPU or CUDA; run under torchrun for several processes/GPUs)."""
    from lcodec.codec.errors import InputError
    from lcodec.codec.training.loop import train as run

    data, val, patch, metric, init = opts["data"], opts["val"], opts["patch"], opts["metric"], opts["init"]
    if patch % 64 or patch < 64:
        raise click.BadParameter("must be a positive multiple of 64", param_hint="--patch")
    if metric == "ms-ssim" and patch < 192:
        raise click.BadParameter("MS-SSIM needs patches of at least 192", param_hint="--patch")
    is_pack = data.suffix == ".lcp" or data.is_file()  # a pack file; anything else must be a folder
    if is_pack and not data.is_file():
        raise InputError(f"patch pack not found: {data}")
    for folder in ([] if is_pack else [data]) + ([val] if val else []):
        if not folder.is_dir():
            raise InputError(f"folder not found: {folder}")
    model = None
    if arch:
        from lcodec.codec.image_model import ARCHITECTURES, architecture
        from lcodec.codec.training.loop import init_architecture

        try:
            model = architecture(arch, init_architecture(init) if init else ARCHITECTURES["default"]).to_dict()
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--arch") from None
    parts = None
    if train_only is not None:  # the names are checked against the model once it is built
        parts = [p.strip() for p in train_only.split(",") if p.strip()]
        if not init:
            raise click.BadParameter("needs --init (the frozen parts would stay at random values)",
                                     param_hint="--train-only")
    cfg = TrainConfig(**config_values(TrainConfig, opts), model=model, train_only=parts)
    click.echo(f"checkpoint: {run_training(run, cfg, resume=not no_resume)}")


@main.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Weights file to write (.lcw).")
@click.option("--name", default=None, help="Model name written into streams (default: output file stem).")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--raw", is_flag=True, help="Image checkpoints: the raw weights, not their moving average (EMA).")
@user_errors
def export(checkpoint: Path, output: Path, name: str | None, force: bool, raw: bool) -> None:
    """Turn a training checkpoint into release weights usable with --model (.lcw image, .lcv video)."""
    from lcodec.codec.errors import OutputError
    from lcodec.codec.training.export import export_checkpoint

    if output.exists() and not force:
        raise OutputError(f"output exists: {output} (use --force to overwrite)")
    name = name or output.stem
    h = export_checkpoint(checkpoint, output, name, raw=raw)
    # the name goes into every stream and into `lcodec info`: say it, since it defaults to the file stem
    click.echo(f"{checkpoint} -> {output}: model name {name!r}, weights hash {h.hex()}")


bench.add_command(speed)
bench.add_command(fuzz)
bench.add_command(video_p)
bench.add_command(video_speed)
main.add_command(bench)
train_video.callback = user_errors(train_video.callback)
main.add_command(train_video)
pack_patches.callback = user_errors(pack_patches.callback)
main.add_command(pack_patches)
bench.add_command(train_speed)
bench.add_command(threads)
bench.add_command(determinism)
main.add_command(bd_rate, name="bd-rate")


def run() -> None:
    """Console entry point: click's usage errors become one line on stderr, like every other error."""
    install_signal_handlers()
    try:
        main.main(prog_name="lcodec", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("aborted", 130)
    except Terminated as exc:  # commands without user_errors (bench, bd-rate)
        _fail(f"terminated by {exc.name}", exc.exit_code)
    except click.ClickException as exc:
        _fail(exc.format_message().strip().replace("\n", " "), exc.exit_code)


if __name__ == "__main__":
    run()
