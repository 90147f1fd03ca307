"""lcodec codecs: the image codec users call, its model, container format and weights registry."""

from .threads import prefer_passive_waiting

prefer_passive_waiting()  # before torch is imported (see codec.threads)

from .errors import FormatError, InputError, LcodecError, OutputError, TargetError, UnknownModelError
from .image_codec import ImageCodec

__all__ = [
    "ImageCodec",
    "LcodecError",
    "InputError",
    "FormatError",
    "UnknownModelError",
    "OutputError",
    "TargetError",
]
