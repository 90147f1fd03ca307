"""The video model: the image model (transforms, I-frames) plus a spatiotemporal entropy model
(P-frames), and the weights file that carries the latter.

A video weights file (``.lcv``) is a safetensors file like the image one, holding only the temporal
entropy model; its metadata names the image weights (by hash) it was trained on top of, because the
latents it models are that image model's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from lcodec.entropy_models.spatiotemporal import SpatiotemporalEntropyModel

from .errors import InputError, UnknownModelError
from .image_model import ImageModel, ModelConfig
from .registry import (WEIGHTS_DIR, LoadedModel, archived_paths, find_model_for, load_with_tables, parse_weights,
                       resolve_weights, weights_bytes, weights_hash)

VIDEO_WEIGHTS_FORMAT = "lcodec-video-weights-1"
VIDEO_SUFFIX = ".lcv"
DEFAULT_VIDEO_MODEL = "default"


def build_temporal_model(config: ModelConfig) -> SpatiotemporalEntropyModel:
    """A spatiotemporal entropy model sized for latents of an image model with `config`."""
    return SpatiotemporalEntropyModel(config.m, config.nz, config.hyper, config.slices, config.hidden)


@torch.no_grad()
def init_from_image(st: SpatiotemporalEntropyModel, image: ImageModel) -> None:
    """Start the P-frame model as the image model's entropy model (new branches stay at zero)."""
    st.h_s.load_state_dict(image.h_s.net.state_dict())
    st.z_prior.load_state_dict({k: v for k, v in image.z_prior.state_dict().items() if k != "cdf_table"}, strict=False)
    st.context.load_state_dict(
        {k: v for k, v in image.context.state_dict().items() if not k.endswith("cdf_table")}, strict=False)
    src = image.h_a.net.state_dict()
    dst = st.h_a.state_dict()
    for k, v in src.items():
        if k == "0.weight":
            w = torch.zeros_like(dst[k])
            w[:, : v.shape[1]] = v
            dst[k] = w
        else:
            dst[k] = v.clone()
    st.h_a.load_state_dict(dst)


@dataclass
class LoadedVideoModel:
    """A P-frame model ready to code, the image model it belongs to, and their identities."""

    name: str
    weights_hash: bytes
    temporal: SpatiotemporalEntropyModel
    image: LoadedModel
    metadata: dict
    path: Path


def save_video_weights(path: str | Path, st: SpatiotemporalEntropyModel, name: str, image: LoadedModel,
                       extra: dict | None = None) -> bytes:
    """Write release weights for the temporal model (tables must be built); returns their hash."""
    state = {}
    for k, v in st.state_dict().items():
        v = v.detach().cpu()
        if v.dtype == torch.float32 and not k.endswith("scale_table"):
            v = v.to(torch.float16)
        state[k] = v.contiguous()
    meta = {
        "format": VIDEO_WEIGHTS_FORMAT,
        "name": name,
        "config": json.dumps(image.model.config.to_dict()),
        "image_model": image.name,
        "image_hash": image.weights_hash.hex(),
        "info": json.dumps(extra or {}),
    }
    data = weights_bytes(state, meta)
    Path(path).write_bytes(data)
    return weights_hash(data)


def parse_video_weights(data: bytes, origin: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and metadata of a video weights file (no pickled code runs)."""
    return parse_weights(data, origin, VIDEO_WEIGHTS_FORMAT, "video weights")


def load_video_model(path: str | Path, image_models: list[str | Path] | None = None) -> LoadedVideoModel:
    """Load video weights and the image model they name (found by hash, like a stream's)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"video weights file not found: {p}")
    data = p.read_bytes()
    state, meta = parse_video_weights(data, str(p))
    try:
        image_hash = bytes.fromhex(meta.get("image_hash", ""))
    except ValueError:
        raise InputError(f"video weights {p} name a malformed image weights hash") from None
    image = find_model_for(meta.get("image_model", "?"), image_hash, image_models)
    st = build_temporal_model(image.model.config)
    try:
        load_with_tables(st, state)
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"video weights file {p} does not fit the model: {str(exc).splitlines()[0]}") from None
    st.float().eval()
    return LoadedVideoModel(meta.get("name", p.stem), weights_hash(data), st, image, meta, p)


def bundled_video_paths() -> dict[str, Path]:
    """Name -> path of every video model shipped inside the package."""
    return {p.stem: p for p in sorted(WEIGHTS_DIR.glob(f"*{VIDEO_SUFFIX}"))}


_CACHE: dict[Path, LoadedVideoModel] = {}


def get_video_model(spec: str | Path | None = None, image_models: list[str | Path] | None = None) -> LoadedVideoModel:
    """A bundled video model by name (default: 'default') or a video weights file by path."""
    path = resolve_weights(DEFAULT_VIDEO_MODEL if spec is None else spec, bundled_video_paths(), "video model")
    if path not in _CACHE:
        _CACHE[path] = load_video_model(path, image_models)
    return _CACHE[path]


def find_video_model_for(name: str, whash: bytes, extra: list[str | Path] | None = None) -> LoadedVideoModel:
    """The video model a stream was made with, matched by hash among `extra` and bundled models."""
    candidates = [Path(p) for p in (extra or []) if str(p).endswith(VIDEO_SUFFIX)]
    candidates += list(bundled_video_paths().values())
    candidates += [p for p in archived_paths(whash) if p.suffix == VIDEO_SUFFIX]
    image_extra = [p for p in (extra or []) if not str(p).endswith(VIDEO_SUFFIX)]
    for path in candidates:
        lm = get_video_model(path, image_extra)
        if lm.weights_hash == whash:
            return lm
    raise UnknownModelError(
        f"stream needs video weights '{name}' with hash {whash.hex()}, which are not available here "
        f"(pass the .lcv file with --model)")
