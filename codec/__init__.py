"""lcodec codecs: the image codec users call, its model, container format and weights registry."""

from .errors import FormatError, InputError, LcodecError, OutputError, TargetError, UnknownModelError  # no torch
from .threads import prefer_passive_waiting

prefer_passive_waiting()  # before torch is imported (see codec.threads)


def __getattr__(name: str):
    """`ImageCodec` is imported on first use: it brings torch (seconds), which `lcodec --help` and the
    light submodules (errors, threads, container) do not need."""
    if name == "ImageCodec":
        from .image_codec import ImageCodec

        return ImageCodec
    raise AttributeError(f"module 'codec' has no attribute {name!r}")

__all__ = [
    "ImageCodec",
    "LcodecError",
    "InputError",
    "FormatError",
    "UnknownModelError",
    "OutputError",
    "TargetError",
]
