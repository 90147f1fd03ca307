"""A progress bar for slow encodes (the latent search of --effort), shown on stderr after a second."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def search_bar(description: str = "searching latents") -> Iterator[Callable[[int, int], None]]:
    """Yield a `progress(done, total)` callback that drives a tqdm bar; the bar closes on any exit."""
    from tqdm import tqdm

    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=description, unit="step", delay=1.0, leave=False)
        bar.update(done - bar.n)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.close()
