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
def tiny_data(tmp_path_factory, data_dir: Path) -> Path:
    """Two training photos downscaled to 256x192: a photo folder that trains in a second."""
    from PIL import Image

    d = tmp_path_factory.mktemp("train")
    for p in sorted((data_dir / "train").glob("*.jpg"))[:2]:
        with Image.open(p) as im:
            im.convert("RGB").resize((256, 192)).save(d / (p.stem + ".png"))
    return d


@pytest.fixture(scope="session")
def eval_images(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "eval").glob("*.png"))
