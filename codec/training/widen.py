"""Warm-start a wider architecture from narrower weights without changing what it computes.

Training a wider model from scratch costs what the narrow one already paid for. Instead every
tensor of the narrow weights is embedded in the corresponding tensor of the wider model, and the
new parts are set so that the wider model reconstructs exactly as the narrow one did:

* a widened convolution keeps its old outputs reading only old inputs (weights from new input
  channels to old outputs are zero); its new outputs start from the usual random initialisation,
  scaled down by ``NEW_SCALE`` so new latent channels start near zero and cost few bits;
* GDN keeps the fresh initialisation for new channels, whose cross-terms with old channels are
  exactly zero after the re-parameterisation;
* the quality gains of new latent channels start at the mean of the old channels' gains per level;
* added quality levels (``levels``, the next rungs of the lambda ladder) extend each channel's
  log-gain and log-inverse-gain by the step between its last two levels, so the old levels code
  exactly as before and the new ones start as an extrapolation of them;
* modules the narrow model lacks (the entropy networks of an added channel slice) keep their
  fresh initialisation: the slice is coded last, so no earlier slice depends on it.

Gradients then flow into the new weights (new channels are non-zero) and training decides what
the extra width is used for.
"""

from __future__ import annotations

import torch
from torch import nn

from ..quality import GainUnit
from ..transforms import GDN

#: Scale of the random initial weights of new output channels.
NEW_SCALE = 0.1


def _embed(fresh: torch.Tensor, old: torch.Tensor, key: str) -> torch.Tensor:
    if fresh.dim() != old.dim() or any(o > f for o, f in zip(old.shape, fresh.shape)):
        raise ValueError(f"cannot widen {key}: {tuple(old.shape)} does not fit in {tuple(fresh.shape)}")
    out = fresh.detach().clone()
    out[tuple(slice(0, s) for s in old.shape)] = old.to(out.dtype)
    return out


def _widen(module: nn.Module, pname: str, fresh: torch.Tensor, old: torch.Tensor, key: str) -> torch.Tensor:
    out = _embed(fresh, old, key)
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        # Conv2d weights are [out, in, k, k]; ConvTranspose2d weights are [in, out, k, k]
        o_dim = 0 if isinstance(module, nn.Conv2d) else 1
        old_out = old.shape[o_dim] if pname == "weight" else old.shape[0]
        if pname == "weight":
            i_dim = 1 - o_dim
            old_in = old.shape[i_dim]
            idx = [slice(None)] * out.dim()
            idx[o_dim], idx[i_dim] = slice(0, old_out), slice(old_in, None)
            out[tuple(idx)] = 0.0
            idx[o_dim], idx[i_dim] = slice(old_out, None), slice(None)
            out[tuple(idx)] *= NEW_SCALE
        elif pname == "bias":
            out[old_out:] = 0.0
        else:
            raise ValueError(f"cannot widen {key}")
        return out
    if isinstance(module, GDN):
        return out  # fresh beta/gamma for new channels: no coupling with old ones
    if isinstance(module, GainUnit):
        rows = old.to(out.dtype)
        if out.shape[0] > rows.shape[0]:  # more quality levels: continue each channel's log-gain ladder
            if rows.shape[0] < 2:
                raise ValueError(f"cannot add quality levels to {key}: it has only {rows.shape[0]}")
            k = torch.arange(1, out.shape[0] - rows.shape[0] + 1, dtype=out.dtype).view(-1, 1)
            rows = torch.cat([rows, rows[-1] + k * (rows[-1] - rows[-2])])
        out[:, :rows.shape[1]] = rows
        out[:, rows.shape[1]:] = rows.mean(dim=1, keepdim=True)
        return out
    raise ValueError(f"cannot widen {key} ({type(module).__name__})")


def widen_state(model: nn.Module, old: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict for `model` (the wider architecture) carrying the narrower weights `old`.

    Keys of `model` missing from `old` keep the model's fresh values; keys of `old` missing from
    `model`, or tensors that are larger than the model's, raise ValueError (that is narrowing).
    """
    fresh = model.state_dict()
    extra = [k for k in old if k not in fresh]
    if extra:
        raise ValueError(f"weights have tensors the model lacks: {extra[:3]}")
    owners = {}
    for mname, module in model.named_modules():
        for pname, _ in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
            owners[f"{mname}.{pname}" if mname else pname] = (module, pname)
    state = {}
    for key, t in fresh.items():
        if key not in old:
            state[key] = t
        elif old[key].shape == t.shape:
            state[key] = old[key].to(t.dtype)
        else:
            module, pname = owners[key]
            state[key] = _widen(module, pname, t, old[key], key)
    return state
