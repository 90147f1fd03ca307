"""Where a long training campaign stands: steps, 256x256-equivalent patches and hours from its
`log.jsonl` and `config.json`, its validation rows, and its acceptance measurements (BD-rates of
exported weights on the evaluation set) as a learning curve.

    python -m lcodec.bench.campaign RUN_DIR [--accept bench/results/training/campaign.json] [--plot curve.png]
    python -m lcodec.bench.campaign RUN_DIR --accept BOOK --start-val          # validate the run's --init once
    python -m lcodec.bench.campaign --compare BOOK BOOK ... --plot tries.png   # several campaigns, one curve each

A run that was stopped and resumed starts its `elapsed_s` from zero in each segment; hours are the sum
of the segments' last `elapsed_s` (wall time of training, pauses excluded). Acceptance rows are added
with `--add STEP JPEG_BD HEIF_BD` after `lcodec bd-rate` measured them.

Validation changes between campaigns are a few hundredths of a dB at rates that move too, so each
validation row is also given as one number: the BD-rate of its EMA points (real files, 4 images, the
validation qualities) against the same validation of the weights the run started from (`--start-val`
measures that once and keeps it in the book).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .bd_rate import bd_rate


def read_log(run: Path) -> list[dict]:
    """The rows of a run's log.jsonl (an unfinished last line, as a killed run may leave, is skipped)."""
    rows = []
    for line in (run / "log.jsonl").read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def hours_at_steps(rows: list[dict]) -> dict[int, float]:
    """Training hours when each logged step was reached, across resumed segments."""
    done, last, out = 0.0, 0.0, {}
    for r in rows:
        if r.get("kind") != "train":
            continue
        if r["elapsed_s"] < last:  # a new segment (resumed run): its clock restarted
            done += last
        last = r["elapsed_s"]
        out[r["step"]] = (done + last) / 3600
    return out


def summarise(run: Path, start_step: int = 0) -> dict:
    """Steps, hours, patches (in 256x256 equivalents) and validation rows of a run since `start_step`."""
    rows = read_log(run)
    cfg = json.loads((run / "config.json").read_text())
    hours = hours_at_steps(rows)
    train = [r for r in rows if r.get("kind") == "train"]
    steps = (train[-1]["step"] if train else 0) - start_step
    per_step = cfg["batch"] * (cfg["patch"] / 256) ** 2
    recent = [r["loss"] for r in train[-50:]]
    return {"run": str(run), "steps": steps, "hours": round(max(hours.values(), default=0.0), 2),
            "patches_256": round(steps * per_step), "batch": cfg["batch"], "patch": cfg["patch"],
            "lr": cfg["lr"], "min_lr": cfg["min_lr"], "ema_decay": cfg.get("ema_decay"),
            "recent_train_loss": round(float(np.mean(recent)), 4) if recent else None,
            "val": [{**r, "hours": round(hours.get(r["step"], 0.0), 3)} for r in rows if r.get("kind") == "val"]}


def _val_qualities(row: dict, prefix: str) -> list[str]:
    return sorted({k[len(prefix):-5] for k in row if k.startswith(prefix + "q") and k.endswith("_psnr")},
                  key=lambda q: float(q[1:]))


def val_bd(start: dict, row: dict, prefix: str = "ema_") -> float | None:
    """BD-rate (%) of a validation row's points (`prefix` ema_ or none: raw weights) against the
    validation `start` of the starting weights, over the qualities both have (None if under 2)."""
    qs = [q for q in _val_qualities(row, prefix) if f"{q}_bpp" in start and f"{prefix}{q}_bpp" in row]
    if len(qs) < 2:
        return None
    return round(bd_rate([start[f"{q}_bpp"] for q in qs], [start[f"{q}_psnr"] for q in qs],
                         [row[f"{prefix}{q}_bpp"] for q in qs], [row[f"{prefix}{q}_psnr"] for q in qs]), 3)


def start_validation(run: Path) -> dict:
    """Validation of the weights `run` started from (its config's init, val folder and image count),
    measured as the training loop measures it, with the weights' hash."""
    import torch

    from ..codec import ImageCodec
    from ..codec.training.validate import validate

    cfg = json.loads((run / "config.json").read_text())
    codec = ImageCodec.from_model(cfg["init"] or "default")
    res = validate(codec.model, cfg["val"], cfg["val_images"], torch.device("cpu"))
    return {**res, "init": cfg["init"], "weights_hash": codec.loaded.weights_hash.hex()}


def _bd_curve(book: dict, prefix: str = "ema_") -> list[tuple[float, float]]:
    """(hours, validation BD-rate against the start) of a book, from (0, 0)."""
    start = book.get("start_val")
    if not start:
        return []
    pts = [(r["hours"], val_bd(start, r, prefix)) for r in book.get("val", [])]
    return [(0.0, 0.0)] + [(h, v) for h, v in pts if v is not None]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(ax, ylabel: str, title: str) -> None:
    """Hours on x, a grid, and a legend when something was labelled."""
    ax.set_xlabel("campaign training hours (CPU)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()


def _save(plt, fig, out: Path) -> None:
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot(book: dict, out: Path) -> None:
    """Learning curve of one campaign: BD-rate against JPEG and HEIF of the acceptance measurements
    over training hours (when there are any), and the validation as BD-rate against the starting
    weights (when the book has their validation) or as EMA PSNR per quality."""
    plt = _pyplot()
    accepted, val = book.get("accepted", []), book["val"]
    fig, axes = plt.subplots(1, 2 if accepted else 1, figsize=(11 if accepted else 6, 4), squeeze=False)
    if accepted:
        a = axes[0][0]
        h = [r["hours"] for r in accepted]
        a.plot(h, [r["bd_jpeg"] for r in accepted], "o-", label="vs JPEG 4:2:0, q1-q12")
        a.plot(h, [r["bd_heif"] for r in accepted], "s-", label="vs HEIF, q1-q8")
        _finish(a, "BD-rate (%)", "Evaluation set, real files")
    b = axes[0][-1]
    if book.get("start_val"):
        for prefix, label in (("ema_", "EMA weights"), ("", "raw weights")):
            pts = _bd_curve(book, prefix)
            if len(pts) > 1:
                b.plot(*zip(*pts), "o-", label=label)
        b.axhline(0.0, color="grey", lw=0.8)
        _finish(b, "validation BD-rate vs start (%, 4 images)", "Validation while training (lower is better)")
    else:
        for q in _val_qualities(val[0], "ema_") if val else []:
            pts = [(r["hours"], r[f"ema_{q}_psnr"]) for r in val if f"ema_{q}_psnr" in r]
            b.plot(*zip(*pts), "o-", label=f"EMA {q}")
        _finish(b, "validation PSNR (dB, 4 images)", "Validation while training")
    _save(plt, fig, out)


def plot_compare(books: dict[str, dict], out: Path) -> None:
    """Validation BD-rate of each campaign's EMA weights against its starting weights over hours."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, book in books.items():
        pts = _bd_curve(book)
        if len(pts) > 1:
            ax.plot(*zip(*pts), "o-", label=label)
    ax.axhline(0.0, color="grey", lw=0.8)
    _finish(ax, "validation BD-rate vs start, EMA (%)", "Campaigns from the same weights (lower is better)")
    _save(plt, fig, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, nargs="?")
    ap.add_argument("--accept", type=Path, default=Path("bench/results/training/campaign.json"))
    ap.add_argument("--start-step", type=int, default=0, help="Count steps and patches from this step.")
    ap.add_argument("--add", nargs=3, metavar=("STEP", "JPEG_BD", "HEIF_BD"), default=None,
                    help="Record an acceptance measurement of the weights exported at STEP.")
    ap.add_argument("--start-val", action="store_true",
                    help="Validate the weights the run started from (once) and keep it in the book.")
    ap.add_argument("--compare", type=Path, nargs="+", default=None, metavar="BOOK",
                    help="Plot the validation curves of these books together (no RUN needed).")
    ap.add_argument("--plot", type=Path, default=None)
    args = ap.parse_args()
    if args.compare:
        if not args.plot:
            ap.error("--compare needs --plot")
        plot_compare({p.stem: json.loads(p.read_text()) for p in args.compare}, args.plot)
        print(f"wrote {args.plot}")
        return
    if args.run is None:
        ap.error("RUN is required unless --compare is given")
    summary = summarise(args.run, args.start_step)
    book = json.loads(args.accept.read_text()) if args.accept.exists() else {"accepted": []}
    if args.add:
        step = int(args.add[0])
        hours = hours_at_steps(read_log(args.run))
        at = max((h for st, h in hours.items() if st <= step), default=0.0)  # the last logged step up to it
        book["accepted"].append({"step": step, "hours": round(at, 2),
                                 "bd_jpeg": float(args.add[1]), "bd_heif": float(args.add[2])})
    if args.start_val and "start_val" not in book:
        book["start_val"] = start_validation(args.run)
    book["summary"] = {k: v for k, v in summary.items() if k != "val"}
    book["val"] = summary["val"]
    if book.get("start_val"):
        for row in book["val"]:
            row["ema_bd_vs_start"] = val_bd(book["start_val"], row, "ema_")
            row["bd_vs_start"] = val_bd(book["start_val"], row, "")
    args.accept.parent.mkdir(parents=True, exist_ok=True)
    args.accept.write_text(json.dumps(book, indent=1) + "\n")
    print(json.dumps(book["summary"], indent=1))
    if args.plot:
        plot(book, args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
