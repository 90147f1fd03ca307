"""`lcodec bench train-speed`: training images per second and the data pipeline's time per batch."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import torch


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
@click.option("--rounds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Measure every mode this many times, in turn, and keep each one's best.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")
@click.option("--modes", default="fp32,channels_last,bf16,bf16+channels_last,default", show_default=True,
              help="Comma-separated modes, each fp32 or a '+'-joined set of channels_last, bf16, compile, "
                   "default (what `lcodec train` picks on this device).")
@click.option("--compile", "compile_", is_flag=True, help="Also measure default+compile (compiling takes minutes).")
@click.option("--pack", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Draw the training batches from this patch pack (else random pixels on the device).")
@click.option("--data-time", "folder", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Also time the photo-folder sampler on this folder (and --pack, if given) per batch.")
@click.option("--data-only", is_flag=True, help="Only the data-time comparison, no training steps.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write the results as JSON here.")
def train_speed(patch, batches, steps, warmup, rounds, device, modes, compile_, pack, folder, data_only, out) -> None:
    """Training throughput of the default model (images/s, ms/step, peak memory; warm-up not timed).

    With --data-time FOLDER it also times drawing one batch from the photo folder (PIL on the host, then
    copied to the device) against the pack (--pack, cropped on the device)."""
    from lcodec.codec.errors import LcodecError

    try:
        _run(patch, batches, steps, warmup, rounds, device, modes, compile_, pack, folder, data_only, out)
    except LcodecError as exc:  # e.g. a corrupt pack: one line, the error's exit code
        click.echo(f"lcodec: error: {exc}", err=True)
        sys.exit(exc.exit_code)


def _measure_rounds(patch: int, sizes: list[int], steps: int, warmup: int, rounds: int, dev: torch.device,
                    pack: Path | None, mode_list: list[str]) -> dict[tuple[str, int], dict]:
    """Time every mode at every batch size, `rounds` times in turn (so a slow first run or a busy moment
    hits them alike), echoing each row; returns the fastest row per (mode, batch), or its out-of-memory row."""
    import torch

    from lcodec.bench.train_speed import step_throughput

    best: dict[tuple[str, int], dict] = {}  # (mode, batch) -> fastest row over the rounds
    for rnd in range(rounds):
        for mode in mode_list:
            for b in sizes:
                try:
                    r = step_throughput(patch, b, steps, warmup=warmup, device=dev,
                                        pack=str(pack) if pack else None, mode=mode)
                except torch.cuda.OutOfMemoryError:
                    click.echo(f"{str(dev):<28} {mode:<24} {patch:>5} {b:>5}  out of memory")
                    best[(mode, b)] = {"device": str(dev), "mode": mode, "patch": patch, "batch": b,
                                       "error": "out of memory"}
                    torch.cuda.empty_cache()
                    continue
                r["round"] = rnd + 1
                if r["images_per_s"] > best.get((mode, b), {}).get("images_per_s", -1):
                    best[(mode, b)] = r
                click.echo(f"{r['device'][:28]:<28} {mode[:24]:<24} {patch:>5} {b:>5} {r['images_per_s']:>9.2f} "
                           f"{r['ms_per_step']:>9.1f} {r['peak_mb']:>8.0f} {'':>8}  {r['threads']:>7} {r['data']}"
                           + (f"  (round {rnd + 1})" if rounds > 1 else ""))
    return best


def _best_rows(best: dict[tuple[str, int], dict], rounds: int, patch: int) -> list[dict]:
    """The result rows: each (mode, batch)'s best with its speed-up over the first mode at that batch size
    (echoed when there is more than one row or round to sum up); out-of-memory rows as they are."""
    rows = []
    base: dict[int, float] = {}
    if rounds > 1:
        click.echo(f"best of {rounds} rounds:")
    for (mode, b), r in best.items():
        if "error" in r:
            rows.append(r)
            continue
        base.setdefault(b, r["images_per_s"])
        r["speedup_vs_first_mode"] = round(r["images_per_s"] / base[b], 3)
        r["rounds"] = rounds
        rows.append(r)
        if rounds > 1 or len(best) > 1:
            click.echo(f"{r['device'][:28]:<28} {mode[:24]:<24} {patch:>5} {b:>5} {r['images_per_s']:>9.2f} "
                       f"{r['ms_per_step']:>9.1f} {r['peak_mb']:>8.0f} {r['speedup_vs_first_mode']:>7.2f}x")
    return rows


def _run(patch, batches, steps, warmup, rounds, device, modes, compile_, pack, folder, data_only, out) -> None:
    import torch

    from lcodec.bench.train_speed import cpu_model_name, data_time, parse_modes
    from lcodec.codec.training.fast_path import cpu_bf16_kind
    from lcodec.codec.training.runtime import pick_device

    sizes = _batches(batches)
    try:
        mode_list = parse_modes(modes) + (["default+compile"] if compile_ else [])
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--modes") from None
    if data_only and not (pack or folder):
        raise click.UsageError("--data-only needs --pack and/or --data-time FOLDER")
    try:
        dev = pick_device(device, 0)
    except ValueError as exc:  # unknown device, or CUDA asked for without one
        raise click.BadParameter(str(exc), param_hint="--device") from None
    result: dict = {"rows": [], "cpu": cpu_model_name(), "cpu_bf16": cpu_bf16_kind(), "torch": torch.__version__,
                    "threads": torch.get_num_threads()}
    if not data_only:
        click.echo(f"{'device':<28} {'mode':<24} {'patch':>5} {'batch':>5} {'images/s':>9} {'ms/step':>9} "
                   f"{'peak MB':>8} {'vs first':>8}  threads data")
        best = _measure_rounds(patch, sizes, steps, warmup, rounds, dev, pack, mode_list)
        result["rows"] = _best_rows(best, rounds, patch)
    if folder or (pack and data_only):
        result["data_time"] = data_time(str(folder) if folder else None, str(pack) if pack else None, patch,
                                        max(sizes), device=dev)
        for name, d in result["data_time"].items():
            click.echo(f"data {name:<6} on {d['device']}: {d['ms_per_batch']:.2f} ms per batch of {d['batch']} "
                       f"(loading {d['load_s']:.1f} s)")
    if out:
        from lcodec.bench.report import write_json

        write_json(out, result)
        click.echo(f"wrote {out}")
