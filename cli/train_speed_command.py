"""`lcodec bench train-speed`: training images per second and the data pipeline's time per batch."""

from __future__ import annotations

import sys
from pathlib import Path

import click


def _batches(value: str) -> list[int]:
    try:
        out = [int(x) for x in value.split(",") if x.strip()]
    except ValueError:
        out = []
    if not out or min(out) < 1:
        raise click.BadParameter("give positive batch sizes separated by commas, e.g. 4,8,16", param_hint="--batch")
    return out


@click.command("train-speed")
@click.option("--patch", type=click.IntRange(min=64), default=256, show_default=True, help="Training crop side.")
@click.option("--batch", "batches", default="4,8,16", show_default=True, help="Comma-separated batch sizes.")
@click.option("--steps", type=click.IntRange(min=1), default=20, show_default=True, help="Timed steps per batch size.")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True, help="Untimed steps first.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model (CUDA only).")
@click.option("--pack", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Draw the training batches from this patch pack (else random pixels on the device).")
@click.option("--data-time", "folder", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Also time the photo-folder sampler on this folder (and --pack, if given) per batch.")
@click.option("--data-only", is_flag=True, help="Only the data-time comparison, no training steps.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write the results as JSON here.")
def train_speed(patch, batches, steps, warmup, device, compile_, pack, folder, data_only, out) -> None:
    """Training throughput of the default model (images/s, ms/step, peak memory; warm-up not timed).

    With --data-time FOLDER it also times drawing one batch from the photo folder (PIL on the host, then
    copied to the device) against the pack (--pack, cropped on the device)."""
    from codec.errors import LcodecError

    try:
        _run(patch, batches, steps, warmup, device, compile_, pack, folder, data_only, out)
    except LcodecError as exc:  # e.g. a corrupt pack: one line, the error's exit code
        click.echo(f"lcodec: error: {exc}", err=True)
        sys.exit(exc.exit_code)


def _run(patch, batches, steps, warmup, device, compile_, pack, folder, data_only, out) -> None:
    import torch

    from bench.train_speed import data_time, step_throughput
    from codec.training.runtime import pick_device

    sizes = _batches(batches)
    if data_only and not (pack or folder):
        raise click.UsageError("--data-only needs --pack and/or --data-time FOLDER")
    try:
        dev = pick_device(device, 0)
    except ValueError as exc:  # unknown device, or CUDA asked for without one
        raise click.BadParameter(str(exc), param_hint="--device") from None
    result: dict = {"rows": []}
    if not data_only:
        click.echo(f"{'device':<28} {'patch':>5} {'batch':>5} {'images/s':>9} {'ms/step':>9} {'peak MB':>8}  "
                   f"threads compile data")
        for b in sizes:
            try:
                r = step_throughput(patch, b, steps, warmup=warmup, device=dev, compile_model=compile_,
                                    pack=str(pack) if pack else None)
            except torch.cuda.OutOfMemoryError:
                click.echo(f"{str(dev):<28} {patch:>5} {b:>5}  out of memory")
                result["rows"].append({"device": str(dev), "patch": patch, "batch": b, "error": "out of memory"})
                torch.cuda.empty_cache()
                continue
            result["rows"].append(r)
            click.echo(f"{r['device'][:28]:<28} {patch:>5} {b:>5} {r['images_per_s']:>9.2f} {r['ms_per_step']:>9.1f} "
                       f"{r['peak_mb']:>8.0f}  {r['threads']:>7} {str(r['compile']).lower():>7} {r['data']}")
    if folder or (pack and data_only):
        result["data_time"] = data_time(str(folder) if folder else None, str(pack) if pack else None, patch,
                                        max(sizes), device=dev)
        for name, d in result["data_time"].items():
            click.echo(f"data {name:<6} on {d['device']}: {d['ms_per_batch']:.2f} ms per batch of {d['batch']} "
                       f"(loading {d['load_s']:.1f} s)")
    if out:
        from bench.report import write_json

        write_json(out, result)
        click.echo(f"wrote {out}")
