"""Video halves of `lcodec encode / decode / info`, and `lcodec train-video`.

`encode` hands inputs with a video extension here; `decode` and `info` hand files whose header says
kind = video. Progress bars count frames.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click
from tqdm import tqdm

from lcodec.codec.training.config import VideoTrainConfig

from .config_options import config_options, config_values
from .signals import run_training


def encode_video(input: Path, output: Path, quality: float, model: str | None, frames: int | None, start: int,
                 intra_period: int, force: bool, progress: bool = True, effort: int = 0, aligned: bool = False) -> None:
    """Encode a video file (anything PyAV reads) into an lcodec video file, atomically; `effort` > 0
    searches every frame's latents first (`codec.video_search`); `aligned` writes format 6 (P-frames
    against the block-aligned, exactly re-analysed previous frame)."""
    from lcodec.codec.errors import OutputError
    from lcodec.codec.image_io import publish
    from lcodec.codec.video_codec import VideoCodec
    from lcodec.codec.video_container import VERSION as VIDEO_ALIGNED
    from lcodec.codec.video_io import open_video

    if output.exists() and not force:
        raise OutputError(f"output exists: {output} (use --force to overwrite)")
    if not output.parent.is_dir():
        raise OutputError(f"output folder does not exist: {output.parent}")
    src = open_video(input, start=start, frames=frames)
    codec = VideoCodec.from_model(model) if model else VideoCodec.default()
    if aligned:
        codec.write_version = VIDEO_ALIGNED
    bar = tqdm(total=src.total_hint, unit="frame", desc="encode", disable=not progress, dynamic_ncols=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent)
    except OSError as exc:
        raise OutputError(f"cannot write to {output.parent}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w+b") as f:
            stats = codec.encode(src.frames(), f, src.width, src.height, quality, intra_period, src.rate,
                                 on_frame=lambda s: (bar.update(1), bar.set_postfix(type=s.type, bytes=s.bytes)),
                                 effort=effort)
        publish(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        bar.close()
    total = output.stat().st_size
    n_p = sum(s.type == "P" for s in stats)
    click.echo(f"{input} -> {output}: {len(stats)} frames {src.width}x{src.height} ({len(stats) - n_p} I, {n_p} P), "
               f"quality {quality:g}, {total} bytes, {8 * total / (src.width * src.height * len(stats)):.4f} bpp, "
               f"{8 * total * float(src.rate) / len(stats) / 1000:.1f} kbit/s")


def decode_video(input: Path, output: Path | None, models: list[str], frame: int | None, chroma: str,
                 force: bool, progress: bool = True) -> None:
    """Decode an lcodec video file to .y4m / .mkv / .mp4 / a PNG pattern, or one frame to an image."""
    from lcodec.codec.errors import OutputError
    from lcodec.codec.image_io import atomic_write
    from lcodec.codec.video_codec import VideoCodec
    from lcodec.codec.video_io import FrameSink

    with open(input, "rb") as f:
        codec = VideoCodec.for_stream(f, models)
        if frame is not None:
            output = output or input.with_suffix(".png")
            if output.exists() and not force:
                raise OutputError(f"output exists: {output} (use --force to overwrite)")
            from PIL import Image

            for _, rgb in codec.decode(f, first=frame, last=frame):
                atomic_write(output, image=Image.fromarray(rgb), force=force)
            click.echo(f"{input} -> {output}: frame {frame}")
            return
        from lcodec.codec.video_container import VideoReader

        header = VideoReader(f).header
        output = output or input.with_suffix(".y4m")
        sink = FrameSink(output, header.width, header.height, header.rate, chroma, force)
        bar = tqdm(total=header.frame_count, unit="frame", desc="decode", disable=not progress, dynamic_ncols=True)
        try:
            for _, rgb in codec.decode(f):
                sink.write(rgb)
                bar.update(1)
            sink.close()
        except BaseException:
            sink.abort()
            raise
        finally:
            bar.close()
    click.echo(f"{input} -> {output}: {sink.count} frames {header.width}x{header.height}")


def video_info(path: Path) -> dict:
    from lcodec.codec.video_codec import VideoCodec

    with open(path, "rb") as f:
        return VideoCodec.info(f)


@click.command("train-video")
@config_options(VideoTrainConfig)
@click.option("--no-resume", is_flag=True, help="Start afresh even if OUT/last.pt exists.")
def train_video(no_resume: bool, **opts) -> None:
    """Train the temporal entropy model for P-frames (image model frozen)."""
    from lcodec.codec.errors import InputError
    from lcodec.codec.training.video_loop import train_video as run

    if opts["crop"] % 4:
        raise click.BadParameter("must be a positive multiple of 4", param_hint="--crop")
    if not opts["data"].is_dir():
        raise InputError(f"folder not found: {opts['data']}")
    cfg = VideoTrainConfig(**config_values(VideoTrainConfig, opts))
    click.echo(f"checkpoint: {run_training(run, cfg, resume=not no_resume)}")
