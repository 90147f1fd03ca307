"""`lcodec bench determinism`: identical latents across arithmetic back-ends and devices, and the cost."""

from __future__ import annotations

from pathlib import Path

import click

from .bench_commands import bench_errors

from .bench_commands import comma_qualities


@click.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--images", type=int, default=0, help="Images used (0 = all).")
@click.option("--qualities", default="2,4,7", show_default=True, help="Comma-separated qualities coded per image.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Also write the results as JSON.")
@bench_errors
def determinism(folder: Path, images: int, qualities: str, out: Path | None) -> None:
    """Decode every file under 1 and 2 threads, int64 reference arithmetic (and CUDA if present)."""
    from lcodec.bench.determinism import run

    if not folder.is_dir():
        raise click.ClickException(f"folder not found: {folder}")
    qs = tuple(comma_qualities(qualities))

    def show(row: dict) -> None:
        flags = " ".join(f"{k}={'ok' if v is True else v}" for k, v in row.items()
                         if isinstance(v, (bool, int)) and k != "quality")
        click.echo(f"{row['image']} q{row['quality']:g}: {row['bpp']:.4f} bpp (version 3 {row['exact_bpp']:.4f}, "
                   f"float {row['float_bpp']:.4f}); {flags}")

    result = run(folder, qs, limit=images or None, progress=show)
    s = result["summary"]
    click.echo(f"{s['cases']} files; identical latents: " +
               ", ".join(f"{k} {v}/{s['cases']}" for k, v in s["identical"].items()))
    t = s["median_s_1_thread"]
    click.echo(f"version 4 vs 3: {s['version4_vs_3_percent']:+.3f} %; rate cost of exact parameters: "
               f"{s['rate_cost_percent']:+.3f} %; median 1-thread encode "
               f"{t['exact']['encode']:.3f} s exact vs {t['float']['encode']:.3f} s float, latent decode "
               f"{t['exact']['latent_decode']:.3f} s vs {t['float']['latent_decode']:.3f} s")
    if not s["cuda"]:
        click.echo("no CUDA device: GPU<->CPU not measured here")
    if out:
        from lcodec.bench.report import write_json

        write_json(out, result)
    if any(v != s["cases"] for v in s["identical"].values()):
        raise SystemExit(1)
