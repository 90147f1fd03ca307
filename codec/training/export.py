"""Turn a training checkpoint into release weights: CDF tables built, optimizer state dropped."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..image_model import ImageModel, ModelConfig
from ..registry import save_weights
from .loop import load_checkpoint


def export_checkpoint(checkpoint: str | Path, out: str | Path, name: str = "default",
                      info: dict | None = None) -> bytes:
    """Write `out` (safetensors weights with tables) from a ``last.pt``; returns the weights hash."""
    p = Path(checkpoint)
    if not p.is_file():
        raise InputError(f"checkpoint not found: {p}")
    try:
        state = load_checkpoint(p)
        model_state = state["model"]
        config = ModelConfig.from_dict(state["config"]["model"])
    except (KeyError, RuntimeError, ValueError, OSError) as exc:
        raise InputError(f"not an lcodec training checkpoint: {p} ({str(exc).splitlines()[0]})") from None
    model = ImageModel(config)
    missing, unexpected = model.load_state_dict(
        {k: v for k, v in model_state.items() if not k.endswith("cdf_table")}, strict=False)
    if [k for k in missing if not k.endswith("cdf_table")] or unexpected:
        raise InputError(f"checkpoint {p} does not match the model architecture")
    model.eval()
    model.build_tables()
    summary = {"steps": int(state.get("step", 0)), "train_data": str(state["config"].get("data", "")),
               "patch": state["config"].get("patch"), "batch": state["config"].get("batch")}
    summary.update(info or {})
    return save_weights(out, model, name, summary)
