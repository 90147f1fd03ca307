"""What the command line needs to know about a run's config fields: help, bounds, choices.

`TrainConfig` and `VideoTrainConfig` declare each field with `option(...)`, so `lcodec train` and
`lcodec train-video` build their options from the dataclass (one place for a default, its bounds and its
help) instead of copying signatures by hand. The metadata is plain data: codec does not import click.
"""

from __future__ import annotations

from dataclasses import MISSING, field
from typing import Any


def option(default: Any = MISSING, help: str = "", *, min: float | None = None, max: float | None = None,
           max_open: bool = False, choices: tuple[str, ...] | None = None, path: bool = False,
           off: str | None = None, cli: bool = True) -> Any:
    """A dataclass field with command-line metadata.

    min / max (max_open: max excluded) bound numbers; choices lists the allowed strings; path marks a
    file or folder; off names the negative form of a boolean switch (default ``--no-NAME``); cli=False
    keeps the field out of the command line (set in code or kept from a checkpoint)."""
    meta = {"help": help, "min": min, "max": max, "max_open": max_open, "choices": choices, "path": path,
            "off": off, "cli": cli}
    if default is MISSING:
        return field(metadata=meta)
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)
