"""lcodec codecs: the image codec users call, its model, container format and weights registry."""

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
