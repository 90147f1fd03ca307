"""Training throughput: images per second of the default model's training step at given batch sizes.

Each measurement runs warm-up steps first (allocator, cuDNN autotuning, torch.compile), then times
`steps` full steps (data, forward, loss, backward, clipping, AdamW) exactly as `codec.training.loop`
runs them (channels_last and bf16 autocast on CUDA, qualities through pinned memory), with the device
synchronised at both ends of the timed span. Data comes from a patch pack when one is given (as in a
real run), else from random pixels made on the device. `data_time` times the two samplers alone (photo
folder with PIL on the host, then copied to the device, vs. the pack on the device).
"""

from __future__ import annotations

import resource
import time

import torch

from codec.image_model import ImageModel
from codec.training.loop import (init_architecture, maybe_compile, param_groups, sample_qualities, to_device,
                                 train_step, TrainConfig)
from codec.training.runtime import pick_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    import platform

    return f"cpu ({platform.processor() or platform.machine()})"


def _peak_mb(dev: torch.device) -> float:
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux; process peak so far


def step_throughput(patch: int, batch: int, steps: int = 20, warmup: int = 3, device: str | torch.device = "cpu",
                    compile_model: bool = False, pack: str | None = None) -> dict:
    """Images per second and ms per training step at one (patch, batch); warm-up steps not timed."""
    dev = pick_device(str(device), 0)
    cfg = TrainConfig(data="", out="", batch=batch, patch=patch)
    model = ImageModel(init_architecture("default")).to(dev).train()  # the bundled model's architecture
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    net, compiled = maybe_compile(model, dev, compile_model)
    opt = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr)
    for g in opt.param_groups:
        g["lr"] = cfg.lr * g["lr_scale"]
    gen = torch.Generator().manual_seed(0)
    sampler = None
    if pack:
        from codec.training.patch_pack import PackSampler

        sampler = PackSampler(pack, patch, dev)

    def one() -> None:
        x = sampler.batch(batch) if sampler else torch.rand(batch, 3, patch, patch, device=dev)
        if dev.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        train_step(net, model, opt, x, to_device(sample_qualities(batch, gen), dev), cfg)

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
            "compile": compiled, "data": "pack" if pack else "random",
            "images_per_s": round(batch * steps / dt, 2), "ms_per_step": round(1000 * dt / steps, 1),
            "peak_mb": round(_peak_mb(dev), 1), "peak_kind": "cuda max_memory_allocated" if dev.type == "cuda"
            else "process peak RSS"}


def data_time(folder: str | None, pack: str | None, patch: int, batch: int, batches: int = 20,
              device: str | torch.device = "cpu") -> dict:
    """Load time and ms per batch (delivered on `device`) of the photo-folder sampler and the pack sampler."""
    from codec.training.data import PatchSampler
    from codec.training.patch_pack import PackSampler

    dev = pick_device(str(device), 0)
    makers = {"folder": (folder, lambda: PatchSampler(folder, patch)), "pack": (pack, lambda: PackSampler(pack, patch, dev))}
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
