"""Picking codecs by name from a registry (image or video), skipping those that cannot run here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import BenchError, CodecUnavailable


def build_codec(registry: dict[str, Callable[[], Any]], name: str, kind: str) -> Any:
    """Build the adapter called `name` (BenchError for an unknown name)."""
    try:
        return registry[name]()
    except KeyError:
        raise BenchError(f"unknown {kind} codec {name!r}; choose from {', '.join(registry)}") from None


def usable_codecs(names: list[str], registry: dict[str, Callable[[], Any]], kind: str,
                  notice: Callable[[str], None]) -> list[Any]:
    """Adapters for `names` whose check() passes; the others are skipped with a one-line notice."""
    ok = []
    for name in names:
        codec = build_codec(registry, name, kind)
        try:
            codec.check()
        except CodecUnavailable as exc:
            notice(f"skipping {name}: {exc}")
            continue
        ok.append(codec)
    return ok
