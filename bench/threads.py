"""Does an encode keep its speed when another one shares the cores? One `lcodec encode` alone against
two started at once, for each OpenMP wait policy and thread count asked for.

Each run is a fresh process (`python -m lcodec.cli.main encode`), so the figures include start-up as a user
sees it. The pair's wall time is the time until both have finished; the issue's bound is 2.5x the
single run's on 2 cores (two jobs of equal work on 2 cores would take 2x if threads were free).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: name -> environment changes; the first is what lcodec does by default
SETTINGS = {
    "default (passive wait, 1 thread per core)": {},
    "OMP_WAIT_POLICY=ACTIVE (spinning)": {"OMP_WAIT_POLICY": "ACTIVE"},
    # an empty value is no policy to OpenMP (it spins a while, then sleeps) and keeps lcodec's default off
    "OMP_WAIT_POLICY empty (GNU OpenMP's default: spin, then sleep)": {"OMP_WAIT_POLICY": ""},
    "LCODEC_THREADS=1": {"LCODEC_THREADS": "1"},
}


def _env(changes: dict[str, str]) -> dict[str, str]:
    """This process's environment without thread settings, plus `changes` (lcodec picks the rest)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "LCODEC_THREADS", "OMP_NUM_THREADS")}
    return {**env, **changes}


def _start(image: Path, out: Path, quality: float, env: dict[str, str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "lcodec.cli.main", "encode", str(image), "-o", str(out), "-q", str(quality), "-f"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            raise RuntimeError(f"encode failed ({p.returncode}): {err.decode(errors='replace').strip()[-300:]}")


def concurrency(image: Path, quality: float = 4.0, repeat: int = 2,
                settings: dict[str, dict[str, str]] | None = None) -> list[dict]:
    """Per setting: best-of-`repeat` wall seconds of one encode alone and of two at once, and their ratio."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, changes in (settings or SETTINGS).items():
            env = _env(changes)
            single, pair = [], []
            for _ in range(repeat):
                t0 = time.perf_counter()
                _wait([_start(image, Path(tmp) / "a.lcd", quality, env)])
                single.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                _wait([_start(image, Path(tmp) / f"{i}.lcd", quality, env) for i in range(2)])
                pair.append(time.perf_counter() - t0)
            rows.append({"setting": name, "env": changes, "single_s": round(min(single), 2),
                         "pair_s": round(min(pair), 2), "ratio": round(min(pair) / min(single), 2)})
    return rows
