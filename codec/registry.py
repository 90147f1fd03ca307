"""Model weights: the bundled models, weight files, and their hashes.

A weights file (``.lcw``) is a safetensors file: plain tensors plus a JSON metadata header (model
name, architecture, training summary), so loading it never executes code. Its hash is the first
8 bytes of the SHA-256 of the file; every stream names it, and a decoder refuses weights whose
hash differs from the one the stream was made with.

Superseded bundled models stay decodable: `weights/archive/` keeps each one's decoder (everything but
g_a and h_a, which only an encoder runs) under the hash of the full weights file that streams name, and
`find_model_for` looks there after the bundled models (`codec.weights_archive` writes the entries).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from lcodec.entropy_models.cdf_tables import TabledEntropyModel

from .errors import InputError, UnknownModelError
from .image_model import ImageModel, ModelConfig

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
ARCHIVE_DIR = WEIGHTS_DIR / "archive"
#: the parts of an image model that only an encoder runs (left out of archived decoders)
ENCODER_ONLY = ("g_a.", "h_a.")
DEFAULT_MODEL = "default"
WEIGHTS_FORMAT = "lcodec-weights-1"


@dataclass
class LoadedModel:
    """An image model ready to code, with its identity."""

    name: str
    weights_hash: bytes
    model: ImageModel
    metadata: dict
    path: Path
    decoder_only: bool = False  # an archived model: decodes its streams, cannot encode


def weights_hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()[:8]


def release_weights(model: ImageModel, name: str, extra: dict | None = None) -> bytes:
    """The bytes of `model`'s release weights file (tables must be built)."""
    state = {k: _release_dtype(k, v.detach().cpu()).contiguous() for k, v in model.state_dict().items()}
    meta = {
        "format": WEIGHTS_FORMAT,
        "name": name,
        "config": json.dumps(model.config.to_dict()),
        "info": json.dumps(extra or {}),
    }
    return weights_bytes(state, meta)


def save_weights(path: str | Path, model: ImageModel, name: str, extra: dict | None = None) -> bytes:
    """Write release weights (tables must be built); returns their hash."""
    data = release_weights(model, name, extra)
    Path(path).write_bytes(data)
    return weights_hash(data)


def weights_bytes(state: dict[str, torch.Tensor], meta: dict[str, str]) -> bytes:
    """A safetensors file of `state` whose bytes depend only on the tensors and metadata: the library
    writes its metadata map in an order that varies from process to process, which would give one
    checkpoint exported twice two different weights hashes, so the header is rewritten in sorted order."""
    data = st_save(state, metadata=meta)
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    header = {"__metadata__": dict(sorted(header.pop("__metadata__", {}).items())), **header}  # tensors: as written
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # tensor data starts 8-byte aligned, as the library writes it
    return len(text).to_bytes(8, "little") + text + data[8 + n :]


def _release_dtype(name: str, t: torch.Tensor) -> torch.Tensor:
    """Float weights ship as float16 (half the size, no measurable loss); tables stay exact."""
    if t.dtype == torch.float32 and not name.endswith("scale_table"):
        return t.to(torch.float16)
    return t


def _checked_metadata(header: bytes, origin: str, fmt: str, what: str) -> dict:
    """The `__metadata__` of a safetensors JSON header, which must say format `fmt`."""
    try:
        meta = json.loads(header).get("__metadata__", {})
    except (ValueError, AttributeError) as exc:  # JSON and UTF-8 errors are ValueErrors; non-dict JSON
        raise InputError(f"not an lcodec {what} file: {origin} ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        fmt_seen = meta.get("format") if isinstance(meta, dict) else None
        raise InputError(f"not an lcodec {what} file: {origin} (format {fmt_seen!r})")
    return meta


def parse_weights(data: bytes, origin: str, fmt: str = WEIGHTS_FORMAT,
                  what: str = "weights") -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and metadata of a safetensors weights file whose metadata says format `fmt`."""
    try:
        state = st_load(data)
    except (SafetensorError, ValueError) as exc:
        raise InputError(f"not an lcodec {what} file: {origin} ({exc})") from None
    header_len = int.from_bytes(data[:8], "little")  # valid: safetensors parsed it
    return state, _checked_metadata(data[8 : 8 + header_len], origin, fmt, what)


def read_weights_metadata(path: str | Path, fmt: str = WEIGHTS_FORMAT, what: str = "weights") -> dict:
    """A weights file's metadata (name, architecture, training summary) from its header alone, without
    reading or checking the tensors (which `parse_weights` does when the weights are loaded)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"weights file not found: {p}")
    with open(p, "rb") as f:
        head = f.read(8)
        header_len = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 0 < header_len <= min(p.stat().st_size - 8, 100_000_000):
            raise InputError(f"not an lcodec {what} file: {p} (no safetensors header)")
        header = f.read(header_len)
    return _checked_metadata(header, str(p), fmt, what)


def load_weights_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a weights file's tensors and metadata without building a model."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"weights file not found: {p}")
    return parse_weights(p.read_bytes(), str(p))


def load_learned(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Load every learned tensor of `state` into `module`, leaving out the coder's CDF tables (a training
    model rebuilds them at export); returns what did not fit (empty when all did)."""
    try:
        missing, unexpected = module.load_state_dict(
            {k: v for k, v in state.items() if not k.endswith("cdf_table")}, strict=False)
    except RuntimeError as exc:  # shapes differ
        return [str(exc).splitlines()[-1].strip()]
    return [f"missing {k}" for k in missing if not k.endswith("cdf_table")] + [f"unexpected {k}" for k in unexpected]


def load_with_tables(module: torch.nn.Module, state: dict[str, torch.Tensor], decoder_only: bool = False) -> None:
    """Load release weights, CDF tables included, into an image or temporal model (RuntimeError or
    ValueError when they do not fit). `decoder_only` weights lack exactly the encoder-only parts."""
    # table buffers have data-dependent shapes: size them from the file before loading
    empty = torch.zeros(0, 0, dtype=torch.int32)
    for name, sub in module.named_modules():
        if isinstance(sub, TabledEntropyModel):
            sub.cdf_table = torch.zeros_like(state.get(f"{name}.cdf_table", empty))
    missing, unexpected = module.load_state_dict(state, strict=not decoder_only)
    if decoder_only and (unexpected or any(not k.startswith(ENCODER_ONLY) for k in missing)):
        bad = unexpected + [k for k in missing if not k.startswith(ENCODER_ONLY)]
        raise ValueError(f"decoder weights do not fit the model ({bad[0]})")
    module.load_tables()


def config_of(meta: dict) -> ModelConfig:
    """The architecture a weights file's metadata names (the default for files that name none)."""
    return ModelConfig.from_dict(json.loads(meta.get("config", "{}")))


def load_model(path: str | Path) -> LoadedModel:
    """Load release weights from a file into an ImageModel ready for coding (CPU, eval mode); an
    archived decoder (metadata "decoder_of") loads under the hash of the weights it was cut from."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"weights file not found: {p}")
    return load_model_bytes(p.read_bytes(), p)


def load_model_bytes(data: bytes, p: Path) -> LoadedModel:
    """`load_model` of a weights file's bytes (`p` names the file in messages and in the result)."""
    state, meta = parse_weights(data, str(p))
    config = config_of(meta)
    model = ImageModel(config)
    decoder_of = meta.get("decoder_of")
    try:
        load_with_tables(model, state, decoder_only=decoder_of is not None)
        whash = bytes.fromhex(decoder_of) if decoder_of is not None else weights_hash(data)
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"weights file {p} does not fit the model: {str(exc).splitlines()[0]}") from None
    model.eval()
    return LoadedModel(meta.get("name", p.stem), whash, model, meta, p, decoder_only=decoder_of is not None)


def decoder_weights(data: bytes, origin: str) -> bytes:
    """An archive entry made from full image weights: every tensor but the encoder-only ones (as
    stored, float16), the same metadata plus "decoder_of", the hash that streams name."""
    state, meta = parse_weights(data, origin)
    if "decoder_of" in meta:
        raise InputError(f"{origin} is already a decoder-only archive entry")
    kept = {k: v for k, v in state.items() if not k.startswith(ENCODER_ONLY)}
    return weights_bytes(kept, {**meta, "decoder_of": weights_hash(data).hex()})


def archived_paths(whash: bytes) -> list[Path]:
    """Archive entries for a weights hash (image ``.lcw`` decoders and video ``.lcv`` files)."""
    return sorted(ARCHIVE_DIR.glob(f"{whash.hex()}.*"))


def bundled_paths() -> dict[str, Path]:
    """Name -> path of every model shipped inside the package."""
    return {p.stem: p for p in sorted(WEIGHTS_DIR.glob("*.lcw"))}


def bundled_levels(name: str = DEFAULT_MODEL) -> int:
    """Quality levels of a bundled model, read from its header alone (no tensors loaded)."""
    meta = read_weights_metadata(bundled_paths()[name])
    return config_of(meta).levels


def resolve_weights(spec: str | Path, bundled: dict[str, Path], what: str) -> Path:
    """The file a model spec names: a bundled name first, else a path that must exist (else InputError)."""
    if isinstance(spec, str) and spec in bundled:
        return bundled[spec].resolve()
    path = Path(spec)
    if not path.is_file():
        names = ", ".join(sorted(bundled)) or "none"
        raise InputError(f"no {what} named or at '{spec}' (bundled {what}s: {names})")
    return path.resolve()


_CACHE: dict[Path, LoadedModel] = {}


def get_model(spec: str | Path | None = None) -> LoadedModel:
    """A bundled model by name (default: 'default') or a weights file by path; cached per process."""
    path = resolve_weights(DEFAULT_MODEL if spec is None else spec, bundled_paths(), "model")
    if path not in _CACHE:
        _CACHE[path] = load_model(path)
    return _CACHE[path]


def find_model_for(name: str, whash: bytes, extra: list[str | Path] | None = None) -> LoadedModel:
    """The model a stream was made with, matched by weights hash among `extra` and bundled models."""
    candidates: list[Path] = [Path(p) for p in (extra or [])]
    candidates += list(bundled_paths().values())
    candidates += [p for p in archived_paths(whash) if p.suffix == ".lcw"]
    for path in candidates:
        lm = get_model(path)
        if lm.weights_hash == whash:
            return lm
    raise UnknownModelError(
        f"stream needs weights '{name}' with hash {whash.hex()}, which are not available here "
        f"(pass the weights file with --model)")
