"""Click options built from a run's config dataclass (`codec.training.config`).

Each field declared with `codec.training.options.option` becomes one option with the field's default,
bounds, choices and help, so a default or a bound is written once, in the config.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Callable

import click


def _param_type(hint: Any, meta: dict) -> Any:
    """The click type for a field's annotation and metadata (None for booleans: they become switches)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if args else hint
    if meta.get("choices"):
        return click.Choice(list(meta["choices"]))
    if meta.get("path"):
        return click.Path(path_type=Path)
    bounded = meta.get("min") is not None or meta.get("max") is not None
    bounds = {"min": meta.get("min"), "max": meta.get("max"), "max_open": meta.get("max_open", False)}
    if base is int:
        return click.IntRange(**bounds) if bounded else int
    if base is float:
        return click.FloatRange(**bounds) if bounded else float
    return None if base is bool else str


def config_options(cls: type, skip: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """A decorator adding one option per command-line field of dataclass `cls` (in field order)."""
    hints = typing.get_type_hints(cls)
    decorators = []
    for f in dataclasses.fields(cls):
        meta = dict(f.metadata)
        if not meta.get("cli", True) or f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = _param_type(hints[f.name], meta)
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = None if required else f.default
        kw: dict[str, Any] = {"help": meta.get("help") or None, "show_default": default is not None}
        if kind is None:  # a switch: --x/--no-x (or the field's own negative form); None = decide later
            decl = f"{flag}/{meta.get('off') or '--no-' + f.name.replace('_', '-')}"
            decorators.append(click.option(decl, f.name, default=default, **kw))
        else:
            decorators.append(click.option(flag, f.name, type=kind, required=required, default=default, **kw))
    def apply(fn: Callable) -> Callable:
        for deco in reversed(decorators):
            fn = deco(fn)
        return fn
    return apply


def config_values(cls: type, opts: dict[str, Any]) -> dict[str, Any]:
    """The options that are fields of `cls`, paths as strings (the config stores plain data)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in opts.items() if k in names}
