"""Shared fixtures: the data folder beside the project, and a small exported model for fast tests."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
#: The photo bundled with the package: real picture content for tests that need no data folder.
SAMPLE = ROOT / "codec" / "samples" / "flower.png"
#: Why a test that needs the photo and video data skips (README, "Test data" says where it comes from).
NO_DATA = (f"needs the test data at {DATA} (evaluation photos, training photos, clips), which is not here; "
           "see the README's 'Test data'")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "eval").is_dir():
        pytest.skip(NO_DATA)
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


@pytest.fixture(scope="session")
def eight_level_weights(tmp_path_factory) -> Path:
    """The bundled image model cut down to its first 8 quality levels, as a weights file: what tests of
    adding levels start from (the bundled model has all 12 rungs of the ladder, so it cannot gain more)."""
    import dataclasses

    from lcodec.codec.image_model import ImageModel
    from lcodec.codec.registry import bundled_paths, config_of, load_with_tables, parse_weights, save_weights

    path = bundled_paths()["default"]
    state, meta = parse_weights(path.read_bytes(), str(path))
    model = ImageModel(dataclasses.replace(config_of(meta), levels=8))
    load_with_tables(model, {k: v[:8] if k.startswith("gain.") else v for k, v in state.items()})
    out = tmp_path_factory.mktemp("eight") / "eight.lcw"
    save_weights(out, model, "default")
    return out


@pytest.fixture(scope="session")
def codec():
    """The bundled image codec (one per test session: building its exact engine takes a while)."""
    from lcodec.codec import ImageCodec

    return ImageCodec.default()


@pytest.fixture(scope="session")
def video_codec():
    """The bundled video codec (one per test session, as `codec`); tests that change its encoder
    settings put them back."""
    from lcodec.codec.video_codec import VideoCodec

    return VideoCodec.default()


def sample_rgb():
    """The bundled sample photo as an RGB uint8 array."""
    import numpy as np
    from PIL import Image

    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="session")
def crop(eval_images):
    """A 128x96 crop of the first evaluation photo: small enough for latent searches, padded in both axes."""
    import numpy as np
    from PIL import Image

    with Image.open(eval_images[0]) as im:
        return Image.fromarray(np.asarray(im.convert("RGB"))[192:288, 320:448])
