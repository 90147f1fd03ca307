"""`lcodec bench fuzz`: feed the decoder mutated streams and report how every case ended."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.argument("cases", type=click.IntRange(min=1), default=10_000)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the mutation sequence.")
@click.option("--time-limit", type=float, default=20.0, show_default=True, help="Seconds a case may take.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Also write the report as JSON.")
@click.option("--video", is_flag=True, help="Fuzz the video decoder (mutated video files) instead of images.")
def fuzz(cases: int, seed: int, time_limit: float, out: Path | None, video: bool) -> None:
    """Decode CASES mutated lcodec files; exit 1 if any case crashed or timed out."""
    if video:
        from lcodec.bench.fuzz_video import fuzz_video as run
    else:
        from lcodec.bench.fuzz import fuzz as run

    step = max(cases // 20, 1)

    def progress(done: int) -> None:
        if done % step == 0:
            click.echo(f"  {done}/{cases}", err=True)

    report = run(cases, seed=seed, time_limit=time_limit, progress=progress)
    d = report.to_dict()
    click.echo(f"{d['cases']} cases in {d['total_s']} s: " + ", ".join(f"{k} {v}" for k, v in d["outcomes"].items()))
    click.echo(f"slowest case {d['slowest_s']} s: {d['slowest_case']}")
    click.echo(f"peak memory (max RSS) {d['max_rss_mb']} MB; findings: {d['finding_count']}")
    for f in d["findings"][:10]:
        click.echo(f"  finding: case {f['case']} ({f['mutation']}): {f['error']}")
    if out:
        from lcodec.bench.report import write_json

        write_json(out, d)
    if d["finding_count"]:
        sys.exit(1)
