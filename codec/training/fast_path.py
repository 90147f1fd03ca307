"""Which speed-ups a training step uses on its device: channels_last memory layout and bf16 autocast.

bf16 autocast pays only where the hardware multiplies bf16 natively: every CUDA GPU this project
targets, and CPUs with AVX512-BF16 or AMX (Intel Xeon 4th generation on, AMD Zen 4 on). Elsewhere
oneDNN emulates bf16 convolutions: on an AVX2-only AMD EPYC a step took 60x longer. So the CPU's
capability is read from torch's own CPU feature checks (the ones its kernels dispatch on), never
assumed. channels_last helps with bf16 (measured on Zen 4) but costs fp32 on an AVX2-only CPU (19 %
slower per step on that EPYC), so by default it goes with bf16 on the CPU and is always on with CUDA.
The rate (likelihoods, log2, quantization offsets, the scale table) stays in fp32 under autocast: the
entropy model casts its inputs to float32 and the factorized prior runs with autocast off.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch


def cpu_bf16_kind() -> str | None:
    """"amx" or "avx512_bf16" when this CPU computes bf16 natively, else None."""
    checks = (("amx", "_is_amx_tile_supported"), ("avx512_bf16", "_is_avx512_bf16_supported"))
    for kind, name in checks:
        check = getattr(torch.cpu, name, None)
        if check is not None and check():
            return kind
    return None


@dataclass(frozen=True)
class FastPath:
    """The speed-ups one training process uses (decided once per run from the config and the device)."""

    channels_last: bool
    bf16: bool
    why_no_bf16: str = ""  # set when bf16 was allowed but the device cannot use it

    def autocast(self, device: torch.device) -> AbstractContextManager:
        """The autocast context for the model's forward pass (a no-op context without bf16)."""
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def layout(self, t: torch.Tensor) -> torch.Tensor:
        """A batch in the memory layout the model runs in (4-D tensors only)."""
        if self.channels_last and t.dim() == 4:
            return t.contiguous(memory_format=torch.channels_last)
        return t

    def describe(self) -> str:
        parts = ["channels_last" if self.channels_last else "contiguous (NCHW)",
                 "bf16 autocast" if self.bf16 else f"fp32{f' ({self.why_no_bf16})' if self.why_no_bf16 else ''}"]
        return ", ".join(parts)


def choose_fast_path(device: torch.device, channels_last: bool | None = None, bf16: bool = True) -> FastPath:
    """The fast path for `device`: bf16 if allowed and the device computes it natively; channels_last
    as asked, or by default (None) on CUDA and wherever bf16 runs."""
    why = ""
    if bf16 and device.type == "cpu":
        if cpu_bf16_kind() is None:
            bf16, why = False, "this CPU has neither AVX512-BF16 nor AMX"
    elif bf16 and device.type != "cuda":
        bf16, why = False, f"bf16 autocast is not used on {device.type}"
    if channels_last is None:
        channels_last = device.type == "cuda" or bf16
    return FastPath(channels_last=channels_last, bf16=bf16, why_no_bf16=why)
