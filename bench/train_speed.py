"""Training throughput: images per second of the default model's training step at given batch sizes
and speed-up modes (fp32, channels_last, bf16 autocast, torch.compile, alone or combined).

Each measurement runs warm-up steps first (allocator, cuDNN autotuning, torch.compile), then times
`steps` full steps (data, forward, loss, backward, clipping, AdamW, EMA update) exactly as
`codec.training.loop` runs them (qualities through pinned memory), with the device synchronised at both
ends of the timed span. A mode asks for its speed-ups outright: "bf16" on a CPU without native bf16 is
measured too (that is how one sees why training does not use it there). Data comes from a patch pack
when one is given (as in a real run), else from random pixels made on the device. `data_time` times the
two samplers alone (photo folder with PIL on the host, then copied to the device, vs. the pack on the
device).
"""

from __future__ import annotations

import resource
import time

import torch

from lcodec.codec.image_model import ImageModel
from lcodec.codec.training.ema import ParameterAverage
from lcodec.codec.training.fast_path import FastPath, choose_fast_path, cpu_bf16_kind
from lcodec.codec.training.loop import (init_architecture, maybe_compile, param_groups, sample_qualities, to_device,
                                 train_step, TrainConfig)
from lcodec.codec.training.runtime import pick_device

#: the speed-ups a mode may combine with "+"; "fp32" alone is none of them, "default" what `lcodec train` picks
MODE_PARTS = ("fp32", "channels_last", "bf16", "compile", "default")
DEFAULT_MODES = "fp32,channels_last,bf16,bf16+channels_last,default+compile"


def parse_modes(text: str) -> list[str]:
    """Modes from a comma-separated list (each a "+"-joined set of MODE_PARTS); ValueError if unknown."""
    modes = [m.strip() for m in text.split(",") if m.strip()]
    bad = [p for m in modes for p in m.split("+") if p not in MODE_PARTS]
    if not modes or bad:
        raise ValueError(f"modes are '+'-joined parts of {', '.join(MODE_PARTS)}, e.g. {DEFAULT_MODES}"
                         + (f" (unknown: {bad[0]})" if bad else ""))
    return modes


def mode_settings(mode: str, device: torch.device) -> tuple[FastPath, bool]:
    """(fast path, compile) of a mode on `device`."""
    parts = set(mode.split("+"))
    if "default" in parts:
        fast = choose_fast_path(device)
    else:
        fast = FastPath(channels_last="channels_last" in parts, bf16="bf16" in parts)
    return fast, "compile" in parts


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({cpu_model_name()})"


def cpu_model_name() -> str:
    """The CPU's model name as the kernel reports it (e.g. "AMD EPYC"), else the machine type."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _peak_mb(dev: torch.device) -> float:
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux; process peak so far


def step_throughput(patch: int, batch: int, steps: int = 20, warmup: int = 3, device: str | torch.device = "cpu",
                    compile_model: bool = False, pack: str | None = None, mode: str | None = None) -> dict:
    """Images per second and ms per training step at one (patch, batch) in one mode (None: what
    `lcodec train` picks, plus `compile_model`); warm-up steps not timed."""
    dev = pick_device(str(device), 0)
    cfg = TrainConfig(data="", out="", batch=batch, patch=patch)
    if mode is None:
        fast, compile_model = choose_fast_path(dev), compile_model
        mode = "default" + ("+compile" if compile_model else "")
    else:
        fast, compile_model = mode_settings(mode, dev)
    torch.manual_seed(0)
    model = ImageModel(init_architecture("default")).to(dev).train()  # the bundled model's architecture
    if fast.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    net, compiled = maybe_compile(model, dev, compile_model)
    ema = ParameterAverage(model, cfg.ema_decay)
    opt = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr)
    for g in opt.param_groups:
        g["lr"] = cfg.lr * g["lr_scale"]
    gen = torch.Generator().manual_seed(0)
    sampler = None
    if pack:
        from lcodec.codec.training.patch_pack import PackSampler

        sampler = PackSampler(pack, patch, dev)

    def one() -> None:
        x = fast.layout(sampler.batch(batch) if sampler else torch.rand(batch, 3, patch, patch, device=dev))
        train_step(net, model, opt, x, to_device(sample_qualities(batch, gen, levels=model.config.levels), dev),
                   cfg, fast)
        ema.update(model)

    t0 = time.perf_counter()
    for _ in range(warmup):
        one()
    _sync(dev)
    warmup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    _sync(dev)
    dt = time.perf_counter() - t0
    return {"device": _device_name(dev), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "patch": patch, "batch": batch, "steps": steps, "warmup_steps": warmup, "warmup_s": round(warmup_s, 2),
            "mode": mode, "channels_last": fast.channels_last, "bf16": fast.bf16, "compile": compiled,
            "cpu_bf16": cpu_bf16_kind() if dev.type == "cpu" else None, "data": "pack" if pack else "random",
            "images_per_s": round(batch * steps / dt, 2), "ms_per_step": round(1000 * dt / steps, 1),
            "peak_mb": round(_peak_mb(dev), 1), "peak_kind": "cuda max_memory_allocated" if dev.type == "cuda"
            else "process peak RSS"}


def data_time(folder: str | None, pack: str | None, patch: int, batch: int, batches: int = 20,
              device: str | torch.device = "cpu") -> dict:
    """Load time and ms per batch (delivered on `device`) of the photo-folder sampler and the pack sampler."""
    from lcodec.codec.training.data import PatchSampler
    from lcodec.codec.training.patch_pack import PackSampler

    dev = pick_device(str(device), 0)
    makers = {"folder": (folder, lambda: PatchSampler(folder, patch)),
              "pack": (pack, lambda: PackSampler(pack, patch, dev))}
    res = {}
    for name, (src, make) in makers.items():
        if not src:
            continue
        t0 = time.perf_counter()
        s = make()
        load = time.perf_counter() - t0
        to_device(s.batch(batch), dev)  # warm-up
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(batches):
            to_device(s.batch(batch), dev)
        _sync(dev)
        res[name] = {"device": _device_name(dev), "patch": patch, "batch": batch, "load_s": round(load, 2),
                     "ms_per_batch": round(1000 * (time.perf_counter() - t0) / batches, 2)}
    return res
