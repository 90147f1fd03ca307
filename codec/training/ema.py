"""An exponential moving average (EMA) of a model's parameters.

Small CPU batches make noisy steps; the average of the weights over the last ~1 / (1 - decay) steps
is the cheap, standard way to get an "annealed" model out of a run that keeps a learning rate high
enough to make progress. Training keeps the average beside the raw weights, checkpoints it, and
exports it by default.
"""

from __future__ import annotations

import torch
from torch import nn


class ParameterAverage:
    """EMA of every floating-point parameter of a model, kept in float32 on the model's device."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.names = [n for n, p in model.named_parameters() if p.is_floating_point()]
        params = dict(model.named_parameters())
        self.shadow = [params[n].detach().float().clone() for n in self.names]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """shadow <- decay * shadow + (1 - decay) * parameter, for every parameter."""
        params = dict(model.named_parameters())
        current = [params[n].detach().float() for n in self.names]
        torch._foreach_lerp_(self.shadow, current, 1.0 - self.decay)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged parameters by name (what a checkpoint stores)."""
        return {n: t.detach().clone() for n, t in zip(self.names, self.shadow)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the average from a checkpoint; ValueError if it does not match the model."""
        missing = [n for n in self.names if n not in state]
        if missing or len(state) != len(self.names):
            raise ValueError(f"the checkpoint's EMA does not match the model (e.g. {(missing or list(state))[0]})")
        for i, n in enumerate(self.names):
            if state[n].shape != self.shadow[i].shape:
                raise ValueError(f"the checkpoint's EMA does not match the model ({n}: "
                                 f"{tuple(state[n].shape)} vs {tuple(self.shadow[i].shape)})")
            self.shadow[i].copy_(state[n].to(self.shadow[i].device))


def averaged_state(checkpoint: dict, raw: bool = False) -> dict[str, torch.Tensor]:
    """The model state a checkpoint exports: its EMA parameters over the raw state (unless `raw`, or the
    checkpoint has no EMA)."""
    state = dict(checkpoint["model"])
    ema = checkpoint.get("ema")
    if raw or not ema:
        return state
    for n, t in ema.items():
        if n in state:
            state[n] = t.to(state[n].dtype)
    return state
