"""`lcodec pack-patches`: a compact file of training patches (.lcp) that travels to a GPU machine."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm


@click.command("pack-patches")
@click.option("--data", required=True, type=click.Path(path_type=Path), help="Folder of training photos.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Pack file to write (.lcp).")
@click.option("--patch", "--side", "side", type=click.IntRange(min=64, max=4096), default=320, show_default=True,
              help="Stored patch side; training crops (train --patch, e.g. 256) are drawn inside it.")
@click.option("--max-mb", type=click.FloatRange(min=0.01), default=56.0, show_default=True,
              help="Size cap of the file in MiB; patches stop at the cap.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed and photos, same file.")
@click.option("--format", "image_format", type=click.Choice(["webp", "png"]), default="webp", show_default=True,
              help="Lossless image format of each stored patch.")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output file.")
def pack_patches(data: Path, output: Path, side: int, max_mb: float, seed: int, image_format: str, force: bool) -> None:
    """Cut downscaled patches from photos into one lossless, pickle-free file (for GPU runs).

    `lcodec train --data FILE.lcp` then trains from it, cropping and flipping on the device."""
    from lcodec.codec.errors import InputError, OutputError
    from lcodec.codec.image_io import atomic_write
    from lcodec.codec.training.patch_pack import build_pack

    if not data.is_dir():
        raise InputError(f"folder not found: {data}")
    if output.suffix != ".lcp":
        raise click.BadParameter("the pack file must end in .lcp", param_hint="--output")
    if output.exists() and not force:
        raise OutputError(f"output exists: {output} (use --force to overwrite)")
    if not output.parent.is_dir():
        raise OutputError(f"output folder does not exist: {output.parent}")
    tmp = output.with_name(f".{output.name}.building")
    bar = tqdm(total=max_mb, unit="MB", desc="pack", dynamic_ncols=True,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} MiB [{elapsed}<{remaining}{postfix}]")

    def progress(n: int, used: int) -> None:
        bar.n = round(used / 2**20, 1)
        bar.set_postfix(patches=n)  # refreshes

    try:
        meta = build_pack(data, tmp, side, max_mb, seed, image_format=image_format, progress=progress)
        atomic_write(output, data=tmp.read_bytes(), force=force)
    finally:
        bar.close()
        tmp.unlink(missing_ok=True)
    click.echo(f"{data} -> {output}: {meta['count']} patches of {side}x{side} ({image_format}) from "
               f"{meta['photos']} photos, {meta['bytes'] / 2**20:.1f} MiB")
