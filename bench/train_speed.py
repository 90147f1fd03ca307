"""Training throughput: images per second of the default model's training step at given batch sizes.

Each measurement runs warm-up steps first (allocator, cuDNN autotuning, torch.compile), then times
`steps` full steps (forward, loss, backward, clipping, AdamW) with the device synchronised at both
ends. Data comes from a patch pack when one is given (as in a real run), else from random pixels, and
the data time of the two samplers (folder of photos vs pack) can be measured on its own.
"""

from __future__ import annotations

import resource
import time

import torch

from codec.image_model import ImageModel, ModelConfig
from codec.training.loop import _sample_qualities, rd_loss


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_throughput(patch: int, batch: int, steps: int = 20, warmup: int = 3, device: str = "cpu",
                    compile_model: bool = False, pack: str | None = None) -> dict:
    """Images per second and ms per training step at one (patch, batch)."""
    dev = torch.device(device)
    model = ImageModel(ModelConfig()).to(dev).train()
    net = model
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        if compile_model:
            net = torch.compile(model)
        torch.cuda.reset_peak_memory_stats(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    sampler = None
    if pack:
        from codec.training.patch_pack import PackSampler

        sampler = PackSampler(pack, patch, dev)

    def one() -> None:
        x = sampler.batch(batch) if sampler else torch.rand(batch, 3, patch, patch, device=dev)
        if dev.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        q = _sample_qualities(batch, gen).to(dev)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            out = net(x, q)
        loss = rd_loss(out, x, q)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(warmup):
        one()
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    _sync(dev)
    dt = time.perf_counter() - t0
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated(dev) / 2**20
        name = torch.cuda.get_device_name(dev)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        name = "cpu"
    return {"device": name, "torch": torch.__version__, "threads": torch.get_num_threads(), "patch": patch,
            "batch": batch, "steps": steps, "compile": compile_model and dev.type == "cuda",
            "data": "pack" if pack else "random", "images_per_s": round(batch * steps / dt, 2),
            "ms_per_step": round(1000 * dt / steps, 1), "peak_mb": round(peak, 1)}


def data_time(folder: str | None, pack: str | None, patch: int, batch: int, batches: int = 20) -> dict:
    """Seconds per batch of the photo-folder sampler and of the pack sampler (CPU)."""
    from codec.training.data import PatchSampler
    from codec.training.patch_pack import PackSampler

    res = {}
    for name, make in (("folder", lambda: PatchSampler(folder, patch)), ("pack", lambda: PackSampler(pack, patch))):
        if (name == "folder" and not folder) or (name == "pack" and not pack):
            continue
        t0 = time.perf_counter()
        s = make()
        load = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(batches):
            s.batch(batch)
        res[name] = {"load_s": round(load, 2), "ms_per_batch": round(1000 * (time.perf_counter() - t0) / batches, 2)}
    return res
