"""Shared fixtures: the data folder beside the project, and a small exported model for fast tests."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "eval").is_dir():
        pytest.skip("../shared/data is not present")
    return DATA


@pytest.fixture(scope="session")
def eval_images(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "eval").glob("*.png"))
