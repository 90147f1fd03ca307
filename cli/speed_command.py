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
@click.option("--large", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Also time this photo (centre-cropped to 3000x2000) per megapixel, with its peak memory.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Also write the figures as JSON.")
@bench_errors
def speed(folder: Path, images: int, repeat: int, gap_images: int, large: Path | None, out: Path | None) -> None:
    """Encode/decode time, range-coder throughput and real size vs estimated rate."""
    import torch

    from lcodec.bench.speed import codec_times, coder_throughput, rate_gap

    if not folder.is_dir():
        raise click.ClickException(f"folder not found: {folder}")
    result = {"times": [codec_times(folder, "cpu", images=images, repeat=repeat)]}
    if torch.cuda.is_available():
        result["times"].append(codec_times(folder, "cuda", images=images, repeat=repeat))
    for t in result["times"]:
        click.echo(f"{t['device']} ({t['threads']} threads), {', '.join(t['sizes'])}, q{t['quality']:g}: "
                   f"encode {t['encode_s']:.3f} s, decode {t['decode_s']:.3f} s")
    if large:
        from lcodec.bench.large_image import in_subprocess

        big, small = in_subprocess(large, repeat=repeat), result["times"][0]
        mpx = 768 * 512 / 1e6 if "768x512" in small["sizes"] or "512x768" in small["sizes"] else None
        if mpx:
            big["encode_vs_768x512"] = round(big["encode_s_per_mpx"] / (small["encode_s"] / mpx), 2)
            big["decode_vs_768x512"] = round(big["decode_s_per_mpx"] / (small["decode_s"] / mpx), 2)
        result["large"] = big
        click.echo(f"large {big['size']} ({big['threads']} threads): encode {big['encode_s']:.2f} s "
                   f"({big['encode_s_per_mpx']:.2f} s/Mpx), decode {big['decode_s']:.2f} s "
                   f"({big['decode_s_per_mpx']:.2f} s/Mpx), peak {big['peak_rss_mb']:.0f} MB"
                   + (f"; per pixel {big['encode_vs_768x512']:.2f}x / {big['decode_vs_768x512']:.2f}x the 768x512 "
                      "figures" if mpx else ""))
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
        from lcodec.bench.report import write_json

        write_json(out, result)
