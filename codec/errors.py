"""Exceptions a user can cause. The CLI prints their message on one line and exits non-zero.

Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class LcodecError(Exception):
    """Base class of every user-facing error; ``exit_code`` is what the CLI returns."""

    exit_code = 1


class InputError(LcodecError):
    """An input file is missing, unreadable, not an image, or too large."""

    exit_code = 2


class QualityError(InputError, ValueError):
    """A quality outside [1, the model's levels] (a ValueError too, for callers that check values)."""


class FormatError(LcodecError):
    """A stream is not an lcodec file, has an unsupported version, or is corrupt or truncated."""

    exit_code = 3


class UnknownModelError(LcodecError):
    """A stream names weights that are not available here."""

    exit_code = 4


class OutputError(LcodecError):
    """The output cannot be written (exists without --force, unwritable folder, unsupported format)."""

    exit_code = 5


class TargetError(LcodecError):
    """A --bpp / --psnr target cannot be met by any quality."""

    exit_code = 6
