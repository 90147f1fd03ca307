"""Every bundled model stays decodable: one small file written by each model that ever shipped (from
image run 19 / video run 20 on) decodes to the pixels stored beside it, through the bundled weights or
the archive (`codec.weights_archive`)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lcodec.codec import ImageCodec, registry
from lcodec.codec.errors import InputError, UnknownModelError
from lcodec.codec.video_codec import VideoCodec

FIXTURES = Path(__file__).parent / "data" / "bundled"
IMAGE_FILES = sorted(FIXTURES.glob("image-*.lcd"))
VIDEO_FILES = sorted(FIXTURES.glob("video-*.lcd"))


def _decode_image(path: Path) -> np.ndarray:
    data = path.read_bytes()
    return np.asarray(ImageCodec.for_stream(data).decode(data))


def _decode_video(path: Path) -> np.ndarray:
    data = path.read_bytes()
    codec = VideoCodec.for_stream(io.BytesIO(data))
    return np.concatenate([f for _, f in codec.decode(io.BytesIO(data))], 0)


def _stored(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path.with_suffix(".png")))


def test_there_is_a_file_for_the_bundled_models():
    names = {p.stem for p in IMAGE_FILES + VIDEO_FILES}
    assert f"image-{registry.get_model(None).weights_hash.hex()}" in names
    assert f"video-{VideoCodec.default().loaded.weights_hash.hex()}" in names


@pytest.mark.parametrize("path", IMAGE_FILES, ids=lambda p: p.stem)
def test_image_files_of_every_bundled_model_decode_to_their_pixels(path):
    assert np.array_equal(_decode_image(path), _stored(path))


@pytest.mark.parametrize("path", VIDEO_FILES, ids=lambda p: p.stem)
def test_video_files_of_every_bundled_model_decode_to_their_pixels(path):
    assert np.array_equal(_decode_video(path), _stored(path))


@pytest.fixture
def only_archive(tmp_path, monkeypatch):
    """The bundled models archived into a fresh folder, then hidden: decoding must go through the archive."""
    from lcodec.codec import video_model, weights_archive

    archive = tmp_path / "archive"
    written = weights_archive.archive_bundled(archive)
    assert weights_archive.archive_bundled(archive) == []  # already there: nothing rewritten
    monkeypatch.setattr(registry, "ARCHIVE_DIR", archive)
    monkeypatch.setattr(registry, "bundled_paths", lambda: {})
    monkeypatch.setattr(video_model, "bundled_video_paths", lambda: {})
    monkeypatch.setattr(registry, "_CACHE", {})
    monkeypatch.setattr(video_model, "_CACHE", {})
    return written


def test_superseded_models_decode_from_the_archive(only_archive):
    lcw = [p for p in only_archive if p.suffix == ".lcw"]
    full = registry.WEIGHTS_DIR / "default.lcw"
    assert lcw and lcw[0].stat().st_size < 0.8 * full.stat().st_size  # no encoder in the archive
    for path in IMAGE_FILES:
        assert np.array_equal(_decode_image(path), _stored(path))
    for path in VIDEO_FILES:
        assert np.array_equal(_decode_video(path), _stored(path))


def test_an_archived_decoder_refuses_to_encode(only_archive):
    lcw = [p for p in only_archive if p.suffix == ".lcw"][0]
    codec = ImageCodec.from_model(lcw)
    with pytest.raises(InputError, match="archived decoder"):
        codec.encode(Image.new("RGB", (16, 16)), quality=2)


def test_a_file_of_an_unknown_model_names_its_hash(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "ARCHIVE_DIR", tmp_path)
    monkeypatch.setattr(registry, "bundled_paths", lambda: {})
    monkeypatch.setattr(registry, "_CACHE", {})
    with pytest.raises(UnknownModelError, match=IMAGE_FILES[0].stem.split("-")[1]):
        _decode_image(IMAGE_FILES[0])


def test_the_bundled_weights_load_and_save_back_to_the_same_bytes(tmp_path):
    """Every stored tensor keeps its name, shape and value through the model classes (GDN, the entropy
    models' parameters and tables): saving the loaded model gives the bundled file again, same hash."""
    import json

    loaded = registry.get_model(None)
    out = tmp_path / "again.lcw"
    whash = registry.save_weights(out, loaded.model, loaded.metadata["name"], json.loads(loaded.metadata["info"]))
    assert whash == loaded.weights_hash
    assert out.read_bytes() == loaded.path.read_bytes()
