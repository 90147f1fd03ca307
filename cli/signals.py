"""SIGTERM and SIGHUP handled like Ctrl-C: the running command unwinds, so every temporary file is
removed by the code that made it, and the CLI prints one line and exits 128 + the signal number.

`timeout`, `kill`, CI cancellation and systemd stop a process with SIGTERM; closing its terminal
sends SIGHUP. Without a handler Python dies at once and leaves partial outputs behind.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import signal

#: The signals turned into a `Terminated` exception (SIGINT stays KeyboardInterrupt, exit 130).
HANDLED = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(BaseException):
    """Raised in the main thread when a handled signal arrives (a BaseException, like
    KeyboardInterrupt, so `except Exception` blocks do not swallow it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name
        self.exit_code = 128 + signum


def _raise(signum: int, frame) -> None:  # noqa: ARG001
    raise Terminated(signum)


def install() -> None:
    """Make SIGTERM and SIGHUP raise `Terminated` (call once, from the main thread)."""
    for sig in HANDLED:
        signal.signal(sig, _raise)


def keep_checkpoint(exc: BaseException, out: Path) -> None:
    """Say in the interruption's message that the run's checkpoint stays (the training loops save the
    finished steps before the interruption goes on) and that the same command resumes it."""
    if (out / "last.pt").exists():
        exc.kept = f"checkpoint {out / 'last.pt'} kept; the same command resumes it"


def run_training(train: Callable[..., Path], cfg: Any, resume: bool) -> Path:
    """`train(cfg, resume=...)` with a user's bad data or config as one-line errors, and an interruption
    that says the checkpoint stays (`cfg.out`)."""
    from lcodec.codec.errors import InputError

    try:
        return train(cfg, resume=resume)
    except (FileNotFoundError, ValueError) as exc:
        raise InputError(str(exc)) from None
    except (KeyboardInterrupt, Terminated) as exc:
        keep_checkpoint(exc, Path(cfg.out))
        raise
