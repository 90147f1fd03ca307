"""Thread settings: --threads / LCODEC_THREADS, passive OpenMP waiting, and the sharing bench."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from lcodec.cli.main import main
from lcodec.codec.threads import ENV_THREADS, requested_threads


def test_requested_threads_from_option_then_environment(monkeypatch):
    monkeypatch.delenv(ENV_THREADS, raising=False)
    assert requested_threads(None) is None
    monkeypatch.setenv(ENV_THREADS, "3")
    assert requested_threads(None) == 3 and requested_threads(1) == 1
    for bad in ("0", "-2", "two"):
        monkeypatch.setenv(ENV_THREADS, bad)
        with pytest.raises(ValueError, match=ENV_THREADS):
            requested_threads(None)
    with pytest.raises(ValueError, match="--threads"):
        requested_threads(0)


def test_threads_option_sets_torch_threads_and_rejects_nonsense(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_THREADS, raising=False)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    img = tmp_path / "a.png"
    Image.fromarray((np.random.default_rng(0).random((32, 48, 3)) * 255).astype(np.uint8)).save(img)
    before = torch.get_num_threads()
    try:
        res = CliRunner().invoke(main, ["--threads", "1", "encode", str(img), "-o", str(tmp_path / "a.lcd"), "-q", "2"])
        assert res.exit_code == 0, res.output
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    res = CliRunner().invoke(main, ["--threads", "0", "encode", str(img)])
    assert res.exit_code == 2 and "--threads" in res.output


def test_lcodec_asks_openmp_for_passive_waiting_unless_told_otherwise():
    code = "import os, cli.main; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in __import__("os").environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
    out = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ACTIVE"


def test_bench_threads_times_one_encode_and_a_pair(tmp_path):
    from lcodec.bench.threads import concurrency

    img = tmp_path / "a.png"
    Image.fromarray((np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8)).save(img)
    rows = concurrency(img, 2.0, repeat=1, settings={"one thread": {ENV_THREADS: "1"}})
    assert len(rows) == 1 and rows[0]["single_s"] > 0 and rows[0]["pair_s"] > 0
    assert rows[0]["ratio"] == pytest.approx(rows[0]["pair_s"] / rows[0]["single_s"], rel=0.05)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(RuntimeError, match="encode failed"):
        concurrency(bad, 2.0, repeat=1, settings={"x": {}})
