"""`lcodec bench threads`: one encode alone against two at once on the same cores, per thread setting."""

from __future__ import annotations

import platform
from pathlib import Path

import click

from .bench_commands import bench_errors


@click.command("threads")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-q", "--quality", type=float, default=4.0, show_default=True)
@click.option("--repeat", type=click.IntRange(min=1), default=2, show_default=True, help="Best of this many runs.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Also write the figures as JSON.")
@bench_errors
def threads(image: Path, quality: float, repeat: int, out: Path | None) -> None:
    """Wall time of one `lcodec encode IMAGE` alone and of two started together, for lcodec's default
    (passive OpenMP waiting), spinning waits and one thread: what sharing the cores costs."""
    import os

    from lcodec.bench.threads import concurrency
    from lcodec.bench.train_speed import cpu_model_name

    rows = concurrency(image, quality, repeat)
    click.echo(f"{cpu_model_name()}, {os.cpu_count()} cores; {image.name} at q{quality:g}, best of {repeat}")
    click.echo(f"{'setting':<62} {'alone s':>8} {'two at once s':>14} {'ratio':>6}")
    for r in rows:
        click.echo(f"{r['setting']:<62} {r['single_s']:>8.2f} {r['pair_s']:>14.2f} {r['ratio']:>6.2f}")
    if out:
        from lcodec.bench.report import write_json

        write_json(out, {"cpu": cpu_model_name(), "cores": os.cpu_count(), "machine": platform.machine(),
                         "image": image.name, "quality": quality, "repeat": repeat, "rows": rows})
        click.echo(f"wrote {out}")
