"""Errors the bench raises for user mistakes (bad folder, bad codec name, bad result file).

The CLI turns these into one-line messages; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class BenchError(Exception):
    """A user-facing problem with the bench's inputs or outputs."""


class CodecUnavailable(BenchError):
    """A codec cannot run here (its package, plugin or ffmpeg encoder is missing)."""
