"""Where a long training campaign stands: steps, 256x256-equivalent patches and hours from its
`log.jsonl` and `config.json`, its validation rows, and its acceptance measurements (BD-rates of
exported weights on the evaluation set) as a learning curve.

    python -m lcodec.bench.campaign RUN_DIR [--accept bench/results/training/campaign.json] [--plot curve.png]

A run that was stopped and resumed starts its `elapsed_s` from zero in each segment; hours are the sum
of the segments' last `elapsed_s` (wall time of training, pauses excluded). Acceptance rows are added
with `--add STEP JPEG_BD HEIF_BD` after `lcodec bd-rate` measured them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


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


def plot(summary: dict, accepted: list[dict], out: Path) -> None:
    """Learning curve: BD-rate against JPEG and HEIF of the accepted measurements over training hours,
    and the EMA validation PSNR at each validation quality."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    if accepted:
        h = [r["hours"] for r in accepted]
        a.plot(h, [r["bd_jpeg"] for r in accepted], "o-", label="vs JPEG 4:2:0, q1-q12")
        a.plot(h, [r["bd_heif"] for r in accepted], "s-", label="vs HEIF, q1-q8")
    a.set_xlabel("campaign training hours (CPU)")
    a.set_ylabel("BD-rate (%)")
    a.set_title("Evaluation set, real files")
    a.grid(alpha=0.3)
    a.legend()
    keys = sorted({k[4:-5] for r in summary["val"] for k in r if k.startswith("ema_q") and k.endswith("_psnr")},
                  key=lambda q: float(q[1:]))
    for q in keys:
        pts = [(r["hours"], r[f"ema_{q}_psnr"]) for r in summary["val"] if f"ema_{q}_psnr" in r]
        b.plot(*zip(*pts), "o-", label=f"EMA {q}")
    b.set_xlabel("campaign training hours (CPU)")
    b.set_ylabel("validation PSNR (dB, 4 images)")
    b.set_title("Validation while training")
    b.grid(alpha=0.3)
    if keys:
        b.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--accept", type=Path, default=Path("bench/results/training/campaign.json"))
    ap.add_argument("--start-step", type=int, default=0, help="Count steps and patches from this step.")
    ap.add_argument("--add", nargs=3, metavar=("STEP", "JPEG_BD", "HEIF_BD"), default=None,
                    help="Record an acceptance measurement of the weights exported at STEP.")
    ap.add_argument("--plot", type=Path, default=None)
    args = ap.parse_args()
    summary = summarise(args.run, args.start_step)
    book = json.loads(args.accept.read_text()) if args.accept.exists() else {"accepted": []}
    if args.add:
        step = int(args.add[0])
        hours = hours_at_steps(read_log(args.run))
        at = max((h for st, h in hours.items() if st <= step), default=0.0)  # the last logged step up to it
        book["accepted"].append({"step": step, "hours": round(at, 2),
                                 "bd_jpeg": float(args.add[1]), "bd_heif": float(args.add[2])})
    book["summary"] = {k: v for k, v in summary.items() if k != "val"}
    book["val"] = summary["val"]
    args.accept.parent.mkdir(parents=True, exist_ok=True)
    args.accept.write_text(json.dumps(book, indent=1) + "\n")
    print(json.dumps(book["summary"], indent=1))
    if args.plot:
        plot(summary, book["accepted"], args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
