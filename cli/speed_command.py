"""`lcodec bench speed`: codec timings, range-coder throughput and the rate-estimate gap."""

from __future__ import annotations

from pathlib import Path

import click

from .bench_commands import bench_errors


@click.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--images", type=int, default=3, show_default=True, help="Images timed.")
@click.option("--repeat", type=int, default=3, show_default=True)
@click.option("--gap-images", type=int, default=0, help="Images for the rate-gap table (0 = all).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Also write the figures as JSON.")
@bench_errors
def speed(folder: Path, images: int, repeat: int, gap_images: int, out: Path | None) -> None:
    """Encode/decode time, range-coder throughput and real size vs estimated rate."""
    import torch

    from bench.speed import codec_times, coder_throughput, rate_gap

    if not folder.is_dir():
        raise click.ClickException(f"folder not found: {folder}")
    result = {"times": [codec_times(folder, "cpu", images=images, repeat=repeat)]}
    if torch.cuda.is_available():
        result["times"].append(codec_times(folder, "cuda", images=images, repeat=repeat))
    for t in result["times"]:
        click.echo(f"{t['device']} ({t['threads']} threads), {', '.join(t['sizes'])}, q{t['quality']:g}: "
                   f"encode {t['encode_s']:.3f} s, decode {t['decode_s']:.3f} s")
    result["coder"] = coder_throughput()
    c = result["coder"]
    click.echo(f"range coder: {c['encode_msym_s']} M symbols/s encode, {c['decode_msym_s']} M symbols/s decode")
    result["rate_gap"] = rate_gap(folder, images=gap_images or None)
    click.echo("quality  real bpp  estimated bpp  gap       continuous-scale estimate  gap       "
               "container bytes/file  streams alone: gap")
    for r in result["rate_gap"]:
        click.echo(f"{r['quality']:7g}  {r['real_bpp']:8.4f}  {r['estimated_bpp']:13.4f}  {r['gap_percent']:+6.2f} %  "
                   f"{r['continuous_estimate_bpp']:25.4f}  {r['gap_vs_continuous_percent']:+6.2f} %  "
                   f"{r['container_bytes_per_file']:20.1f}  {r['streams_gap_percent']:+6.2f} %")
    if out:
        from bench.report import write_json

        write_json(out, result)
