"""What the image and video training loops share about where and how they run: the process group under
torchrun, the device and output folder, the learning-rate schedule, rank agreement, checkpoint writes
and the orderly end of a run."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import IO, NamedTuple, Protocol

import torch
import torch.distributed as dist


class Schedule(Protocol):
    """The fields of a training config the learning-rate schedule reads."""

    lr: float
    min_lr: float
    warmup: int
    steps: int


def lr_at(cfg: Schedule, step: int) -> float:
    """Linear warm-up to `cfg.lr`, then a cosine to `cfg.min_lr` at `cfg.steps` (a pure function of the
    step, so a resumed run continues the same schedule)."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t))


def distributed_setup() -> tuple[int, int, int]:
    """(rank, world size, local rank): joins torchrun's process group (NCCL on CUDA, else gloo) when
    there is more than one process, else (0, 1, 0)."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) <= 1:
        return 0, 1, 0
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))


def pick_device(wanted: str, local_rank: int) -> torch.device:
    """The device for `--device` (auto: this process's GPU if there is one, else the CPU)."""
    if wanted == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(wanted)
    except RuntimeError:
        raise ValueError(f"unknown device {wanted!r} (auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but no CUDA device is available")
    return dev


class Run(NamedTuple):
    """Where this process of a run works."""

    rank: int
    world: int
    local_rank: int
    device: torch.device
    out: Path
    ckpt_path: Path  # the run's checkpoint, `out/last.pt`


def start_run(wanted_device: str, out: str | Path) -> Run:
    """Join torchrun's group (if any), select this process's device and make the output folder."""
    rank, world, local_rank = distributed_setup()
    device = pick_device(wanted_device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot use {out} as the run folder: {exc.strerror or exc}") from None
    return Run(rank, world, local_rank, device, out, out / "last.pt")


def save_atomic(state: dict, path: Path) -> None:
    """torch.save to a temporary name, then rename: a run cut off mid-write keeps its last checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def agree(flag: bool, device: torch.device) -> bool:
    """Rank 0's decision, on every rank."""
    t = torch.tensor([1 if flag else 0], device=device)
    dist.broadcast(t, 0)
    return bool(t.item())


def close_run(bar, log: IO[str] | None, world: int) -> None:
    """End a run on every rank: progress bar and log closed, then the ranks leave the group together."""
    bar.close()
    if log:
        log.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
