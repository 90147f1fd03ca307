"""How many threads lcodec's torch work uses, and how its OpenMP threads wait.

torch's CPU kernels run on OpenMP threads, and GNU OpenMP lets a thread that reaches the end of a
parallel region spin (busy-wait) for a while before it sleeps. That is free on an idle machine, but
when two such processes share the cores, each process's spinning threads hold the cores its peer's
working threads need, and both slow down far more than sharing explains (measured in
`bench/results/speed/threads.json`). lcodec therefore asks for passive waiting (OMP_WAIT_POLICY=PASSIVE)
unless the user set a policy; OpenMP reads it once, when torch is first imported, so it is set on
importing `codec` or the `lcodec` command. The thread count comes from `--threads`, else the
LCODEC_THREADS environment variable, else torch's default (one per core).
"""

from __future__ import annotations

import os
import sys

ENV_THREADS = "LCODEC_THREADS"


def prefer_passive_waiting() -> None:
    """Ask OpenMP to put idle threads to sleep at once (unless the user chose a policy); effective only
    before torch is imported."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def requested_threads(value: int | str | None = None) -> int | None:
    """The thread count asked for: `value`, else LCODEC_THREADS, else None (torch's default); ValueError
    for anything but a positive integer."""
    raw = value if value is not None else os.environ.get(ENV_THREADS)
    if raw is None or raw == "":
        return None
    try:
        n = int(raw)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        source = "--threads" if value is not None else ENV_THREADS
        raise ValueError(f"{source} must be a positive integer, got {raw!r}")
    return n


def use_threads(n: int | None) -> None:
    """Run torch's CPU work on `n` threads (None: leave torch's default). Before torch is imported this
    sets the OpenMP/MKL environment it reads at start; afterwards it tells torch directly."""
    if n is None:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
