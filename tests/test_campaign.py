"""bench.campaign: hours across resumed segments, patch counts, acceptance rows and the plot."""

from __future__ import annotations

import json
import subprocess
import sys

from lcodec.bench.campaign import hours_at_steps, summarise


def _run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"batch": 2, "patch": 384, "lr": 5e-5, "min_lr": 5e-5,
                                                 "ema_decay": 0.999}))
    rows = [{"kind": "train", "step": 10, "elapsed_s": 1800.0, "loss": 2.0},
            {"kind": "train", "step": 20, "elapsed_s": 3600.0, "loss": 1.0},
            {"kind": "train", "step": 30, "elapsed_s": 900.0, "loss": 1.5},  # resumed: the clock restarted
            {"kind": "val", "step": 30, "q1_psnr": 30.0, "ema_q1_psnr": 30.5, "q12_psnr": 41.0, "ema_q12_psnr": 41.2}]
    (run / "log.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n{\"kind\": \"tra")  # cut-off last line
    return run


def test_hours_add_up_across_segments_and_patches_count_in_256_equivalents(tmp_path):
    run = _run(tmp_path)
    from lcodec.bench.campaign import read_log

    assert hours_at_steps(read_log(run)) == {10: 0.5, 20: 1.0, 30: 1.25}
    s = summarise(run, start_step=10)
    assert s["steps"] == 20 and s["hours"] == 1.25 and s["patches_256"] == 20 * 2 * 2.25
    assert s["val"][0]["hours"] == 1.25 and s["recent_train_loss"] == 1.5


def test_acceptance_rows_and_plot(tmp_path):
    run = _run(tmp_path)
    book, png = tmp_path / "campaign.json", tmp_path / "curve.png"
    cmd = [sys.executable, "-m", "lcodec.bench.campaign", str(run), "--accept", str(book),
           "--add", "20", "-41.0", "30.5", "--plot", str(png)]
    subprocess.run(cmd, check=True, capture_output=True)
    got = json.loads(book.read_text())
    assert got["accepted"] == [{"step": 20, "hours": 1.0, "bd_jpeg": -41.0, "bd_heif": 30.5}]
    assert got["summary"]["steps"] == 30 and png.stat().st_size > 1000


def test_validation_as_bd_rate_against_the_start_and_compare_plot(tmp_path):
    from lcodec.bench.campaign import plot_compare, val_bd

    start = {"q1_bpp": 0.1, "q1_psnr": 30.0, "q4_bpp": 0.25, "q4_psnr": 34.0, "q8_bpp": 0.5, "q8_psnr": 38.0}
    same = {f"ema_{k}": v for k, v in start.items()}
    cheaper = {**same, **{f"ema_q{q}_bpp": start[f"q{q}_bpp"] * 0.9 for q in (1, 4, 8)}}
    assert val_bd(start, same) == 0.0
    assert abs(val_bd(start, cheaper) - (-10.0)) < 1e-6  # the same PSNRs at 10 % fewer bits
    assert val_bd(start, {"ema_q1_bpp": 0.1, "ema_q1_psnr": 30.0}) is None  # one point: no curve
    png = tmp_path / "tries.png"
    plot_compare({name: {"start_val": start, "val": [{"hours": 1.0, **row}]}
                  for name, row in (("a", same), ("b", cheaper))}, png)
    assert png.stat().st_size > 1000
