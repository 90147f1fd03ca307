"""Turn a training checkpoint into release weights: CDF tables built, optimizer state dropped; the
image model's exponential moving average of the weights by default, where the checkpoint has one."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..image_model import ImageModel, ModelConfig
from ..registry import load_learned, save_weights
from .ema import averaged_state
from .loop import load_checkpoint


def _read(checkpoint: str | Path) -> tuple[Path, dict]:
    """A checkpoint's path and contents (InputError if it is missing or not a checkpoint)."""
    p = Path(checkpoint)
    if not p.is_file():
        raise InputError(f"checkpoint not found: {p}")
    try:
        return p, load_checkpoint(p)
    except ValueError as exc:  # load_checkpoint reports unreadable files (OSError included) as ValueError
        raise InputError(str(exc).splitlines()[0]) from None


def export_checkpoint(checkpoint: str | Path, out: str | Path, name: str = "default",
                      info: dict | None = None, raw: bool = False) -> bytes:
    """Write release weights from a ``last.pt`` of `lcodec train` (image, ``.lcw``: its EMA weights
    unless `raw` or it has none) or of `lcodec train-video` (``.lcv``), read once; returns the weights
    hash."""
    p, state = _read(checkpoint)
    cfg = state.get("config")
    if isinstance(cfg, dict) and cfg.get("kind") == "video":
        return _export_video(p, state, out, name, info)
    return _export_image(p, state, out, name, info, raw)


def _export_image(p: Path, state: dict, out: str | Path, name: str, info: dict | None, raw: bool) -> bytes:
    """Image weights (safetensors, with the coder's tables) from an image training checkpoint."""
    try:
        model_state = averaged_state(state, raw)
        config = ModelConfig.from_dict(state["config"]["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"not an lcodec training checkpoint: {p} ({str(exc).splitlines()[0]})") from None
    model = ImageModel(config)
    if problems := load_learned(model, model_state):
        raise InputError(f"checkpoint {p} does not match the model architecture ({problems[0]})")
    model.eval()
    model.build_tables()
    summary = {"steps": int(state.get("step", 0)), "train_data": str(state["config"].get("data", "")),
               "patch": state["config"].get("patch"), "batch": state["config"].get("batch"),
               "weights": "raw" if raw or not state.get("ema") else "ema"}
    summary.update(info or {})
    return save_weights(out, model, name, summary)


def _export_video(p: Path, state: dict, out: str | Path, name: str, info: dict | None) -> bytes:
    """Video weights (``.lcv``) from a ``train-video`` checkpoint."""
    from ..registry import find_model_for
    from ..video_model import build_temporal_model, save_video_weights

    try:
        image_hash = bytes.fromhex(state["image_hash"])
        cfg = state["config"]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"not an lcodec video training checkpoint: {p} ({exc})") from None
    image = find_model_for(state.get("image_model", "?"), image_hash, [cfg.get("init", "")]
                           if str(cfg.get("init", "")).endswith(".lcw") else None)
    st = build_temporal_model(image.model.config)
    if problems := load_learned(st, state["model"]):
        raise InputError(f"checkpoint {p} does not match the video model architecture ({problems[0]})")
    st.eval()
    st.build_tables()
    summary = {"steps": int(state.get("step", 0)), "train_data": str(cfg.get("data", "")),
               "skip_first": cfg.get("skip_first"), "batch": cfg.get("batch"), "crop": cfg.get("crop")}
    summary.update(info or {})
    return save_video_weights(out, st, name, image, summary)
