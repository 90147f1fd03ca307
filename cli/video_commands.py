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


def encode_video(input: Path, output: Path, quality: float, model: str | None, frames: int | None, start: int,
                 intra_period: int, force: bool, progress: bool = True) -> None:
    """Encode a video file (anything PyAV reads) into an lcodec video file, atomically."""
    from lcodec.codec.errors import OutputError
    from lcodec.codec.image_io import publish
    from lcodec.codec.video_codec import VideoCodec
    from lcodec.codec.video_io import open_video

    if output.exists() and not force:
        raise OutputError(f"output exists: {output} (use --force to overwrite)")
    if not output.parent.is_dir():
        raise OutputError(f"output folder does not exist: {output.parent}")
    src = open_video(input, start=start, frames=frames)
    codec = VideoCodec.from_model(model) if model else VideoCodec.default()
    bar = tqdm(total=src.total_hint, unit="frame", desc="encode", disable=not progress, dynamic_ncols=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent)
    except OSError as exc:
        raise OutputError(f"cannot write to {output.parent}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w+b") as f:
            stats = codec.encode(src.frames(), f, src.width, src.height, quality, intra_period, src.rate,
                                 on_frame=lambda s: (bar.update(1), bar.set_postfix(type=s.type, bytes=s.bytes)))
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
@click.option("--data", required=True, type=click.Path(path_type=Path), help="Folder of video clips.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run folder (checkpoints, log.jsonl).")
@click.option("--init", default="default", show_default=True, help="Image model (bundled name or .lcw) to build on.")
@click.option("--init-temporal", default=None, help="Start from video weights (.lcv) or a train-video checkpoint.")
@click.option("--distortion/--rate-only", default=False, show_default=True,
              help="Also penalise the reconstruction error through the frozen g_s (with --chain; on three-frame "
                   "crops it did not help).")
@click.option("--chain", type=click.IntRange(min=0, max=16), default=0, show_default=True,
              help="Train on decoded P-chains: an I-frame, then this many P-frames each predicted from the "
                   "previous decoded ones (0: three-frame crops with noisy references).")
@click.option("--steps", type=click.IntRange(min=0), default=3000, show_default=True)
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--crop", type=int, default=16, show_default=True, help="Latent crop side (x16 pixels).")
@click.option("--lr", type=float, default=2e-4, show_default=True)
@click.option("--warmup", type=click.IntRange(min=0), default=100, show_default=True)
@click.option("--skip-first", type=click.IntRange(min=0), default=0, show_default=True,
              help="Frames skipped at the start of every clip (keep benchmark frames out of training).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")
@click.option("--ckpt-minutes", type=click.FloatRange(min=0), default=5.0, show_default=True)
@click.option("--time-limit", type=click.FloatRange(min=0), default=0.0, help="Stop (with a checkpoint) after this many minutes.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-bf16", is_flag=True, help="No bf16 autocast (used by default on CUDA and on CPUs with AVX512-BF16 or AMX).")
@click.option("--no-resume", is_flag=True, help="Start afresh even if OUT/last.pt exists.")
def train_video(data, out, init, init_temporal, distortion, chain, steps, batch, crop, lr, warmup, skip_first, device, ckpt_minutes,
                time_limit, seed, no_bf16, no_resume) -> None:
    """Train the temporal entropy model for P-frames (image model frozen)."""
    from lcodec.codec.errors import InputError
    from lcodec.codec.training.video_loop import VideoTrainConfig
    from lcodec.codec.training.video_loop import train_video as run

    if crop < 4 or crop % 4:
        raise click.BadParameter("must be a positive multiple of 4", param_hint="--crop")
    if not data.is_dir():
        raise InputError(f"folder not found: {data}")
    cfg = VideoTrainConfig(data=str(data), out=str(out), init=init, init_temporal=init_temporal, steps=steps,
                           batch=batch, crop=crop, lr=lr, warmup=warmup, skip_first=skip_first, device=device,
                           ckpt_minutes=ckpt_minutes, time_limit=time_limit, seed=seed,
                           distortion=distortion, chain=chain, bf16=not no_bf16)
    try:
        path = run(cfg, resume=not no_resume)
    except (FileNotFoundError, ValueError) as exc:
        raise InputError(str(exc)) from None
    click.echo(f"checkpoint: {path}")
