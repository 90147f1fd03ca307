"""torchrun with two CPU processes (gloo backend): DistributedDataParallel training runs and checkpoints."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes(tmp_path, tiny_data):
    data = tiny_data
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "lcodec.cli.main", "train", "--data", str(data), "--out", str(out),
           "--steps", "3", "--batch", "1", "--patch", "64", "--warmup", "1", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from lcodec.codec.training.loop import load_checkpoint

    assert load_checkpoint(out / "last.pt")["step"] == 3
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert rows and rows[-1]["step"] == 3  # only rank 0 logs, once per logged step
    assert len([r for r in rows if r["step"] == 3]) == 1
    # a time limit stops every rank at the same step (rank 0 decides every 10 steps), so no rank hangs
    cmd2 = [c if c != str(out) else str(tmp_path / "run2") for c in cmd]
    cmd2[cmd2.index("--steps") + 1] = "40"
    cmd2[cmd2.index("--master_port") + 1] = str(_free_port())
    proc = subprocess.run(cmd2 + ["--time-limit", "0.00001"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load_checkpoint(tmp_path / "run2" / "last.pt")["step"] == 10


def test_torchrun_two_processes_train_video_on_decoded_chains(tmp_path):
    """The P-chain path wraps the unrolled chain in one module, so DDP sees one forward per step."""
    from fractions import Fraction

    import numpy as np
    from PIL import Image

    from lcodec.codec.video_io import FrameSink

    root = Path(__file__).resolve().parents[1]
    clips = tmp_path / "clips"
    clips.mkdir()
    with Image.open(root / "codec" / "samples" / "flower.png") as im:
        base = np.asarray(im.convert("RGB"))[:64, :96]
    sink = FrameSink(clips / "pan.mkv", 64, 64, Fraction(25), chroma="rgb")
    for i in range(5):
        sink.write(np.ascontiguousarray(base[:, 4 * i : 4 * i + 64]))
    sink.close()
    out_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "lcodec.cli.main", "train-video", "--data", str(clips),
           "--out", str(out_dir), "--steps", "2", "--batch", "1", "--crop", "4", "--warmup", "1", "--chain", "2",
           "--distortion", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from lcodec.codec.training.loop import load_checkpoint

    assert load_checkpoint(out_dir / "last.pt")["step"] == 2
    rows = [json.loads(line) for line in (out_dir / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2] and rows[0]["psnr_vs_unquantized"] > 10
