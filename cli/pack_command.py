"""`lcodec pack-patches` (a compact training-patch file for GPU sessions) and `lcodec bench train-speed`."""

from __future__ import annotations

import json
from pathlib import Path

import click
from tqdm import tqdm


@click.command("pack-patches")
@click.option("--data", required=True, type=click.Path(path_type=Path), help="Folder of training photos.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Pack file to write (.lcp).")
@click.option("--side", type=click.IntRange(min=64), default=320, show_default=True,
              help="Stored patch side; training crops (--patch) are drawn inside it.")
@click.option("--max-mb", type=click.FloatRange(min=0.1), default=56.0, show_default=True, help="Size cap of the file.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output file.")
def pack_patches(data: Path, output: Path, side: int, max_mb: float, seed: int, force: bool) -> None:
    """Cut downscaled patches from photos into one lossless, pickle-free file (for GPU runs)."""
    from codec.errors import InputError, OutputError
    from codec.image_io import atomic_write
    from codec.training.patch_pack import build_pack

    if not data.is_dir():
        raise InputError(f"folder not found: {data}")
    if output.suffix != ".lcp":
        raise click.BadParameter("the pack file must end in .lcp", param_hint="--output")
    if output.exists() and not force:
        raise OutputError(f"output exists: {output} (use --force to overwrite)")
    tmp = output.with_name(f".{output.name}.building")
    bar = tqdm(unit="patch", desc="pack", dynamic_ncols=True)

    def progress(n: int, used: int) -> None:
        bar.update(1)
        bar.set_postfix(mb=f"{used / 2**20:.1f}")

    try:
        try:
            meta = build_pack(data, tmp, side, max_mb, seed, progress=progress)
        except FileNotFoundError as exc:
            raise InputError(str(exc)) from None
        atomic_write(output, data=tmp.read_bytes(), force=force)
    finally:
        bar.close()
        tmp.unlink(missing_ok=True)
    click.echo(f"{data} -> {output}: {meta['count']} patches of {side}x{side} from {meta['photos']} photos, "
               f"{meta['bytes'] / 2**20:.1f} MB")


@click.command("train-speed")
@click.option("--patch", type=int, default=256, show_default=True)
@click.option("--batch", "batches", default="4,8,16", show_default=True, help="Comma-separated batch sizes.")
@click.option("--steps", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--compile", "compile_", is_flag=True, help="torch.compile (CUDA only).")
@click.option("--pack", type=click.Path(exists=True, dir_okay=False), default=None, help="Draw batches from this pack.")
@click.option("--data-time", "folder", type=click.Path(exists=True, file_okay=False), default=None,
              help="Also time the photo-folder sampler on this folder against --pack.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write JSON here.")
def train_speed(patch, batches, steps, device, compile_, pack, folder, out) -> None:
    """Training images per second of the default model (warm-up excluded)."""
    import torch

    from bench.train_speed import data_time, step_throughput

    dev = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    rows = []
    for b in [int(x) for x in batches.split(",") if x.strip()]:
        r = step_throughput(patch, b, steps, device=dev, compile_model=compile_, pack=pack)
        rows.append(r)
        click.echo(f"{r['device']} patch {patch} batch {b:3d}: {r['images_per_s']:8.2f} images/s, "
                   f"{r['ms_per_step']:8.1f} ms/step, peak {r['peak_mb']:.0f} MB ({r['threads']} threads, {r['data']} data)")
    result = {"rows": rows}
    if folder or pack:
        result["data_time"] = data_time(folder, pack, patch, max(int(x) for x in batches.split(",")))
        click.echo(f"data time per batch: {json.dumps(result['data_time'])}")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
