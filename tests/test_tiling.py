"""Tiled coding of large images: the tiled container layout, exact tiled transforms, no seams."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import lcodec.codec.image_codec as ic
from lcodec.codec import ImageCodec
from lcodec.codec.container import ImageHeader, pack_image, unpack_image
from lcodec.codec.image_model import MAX_GS_BLOCKS
from lcodec.codec.metrics import psnr
from lcodec.codec.transforms import HYPER_STRIDE, pad_to_multiple


@pytest.fixture(scope="module")
def big_photo(eval_images) -> np.ndarray:
    """1536x1024: an evaluation photo upscaled 2x (small enough to code both ways)."""
    with Image.open(eval_images[0]) as im:
        return np.asarray(im.convert("RGB").resize((1536, 1024), Image.BICUBIC))


def test_container_tiled_roundtrip_in_versions_4_3_and_2_and_untiled_in_4_3_and_1():
    for version, written in ((4, 4), (3, 3), (1, 2)):  # the float format writes tiled files as version 2
        h = ImageHeader("default", b"\x01" * 8, 4.0, 600, 1000, "RGBA", version=version, tile=256)
        rows, cols = h.tile_grid
        per_tile = 1 if version == 4 else 2
        assert (rows, cols) == (3, 4) and h.expected_streams() == 12 * per_tile + 1
        streams = [bytes([i]) * (4 + i) for i in range(12 * per_tile + 1)]
        blob = pack_image(h, streams)
        assert blob[4] == written
        back, got = unpack_image(blob)
        assert back.tile == 256 and back.version == written and got == streams
    for version in (4, 3, 1):
        streams = [b"abcdefgh"] if version == 4 else [b"abcd", b"efgh"]
        blob = pack_image(ImageHeader("default", b"\x01" * 8, 4.0, 60, 100, version=version), streams)
        back, got = unpack_image(blob)
        assert blob[4] == version and back.tile == 0 and back.exact == (version >= 3) and got == streams
    with pytest.raises(ValueError):
        pack_image(ImageHeader("default", b"\x01" * 8, 4.0, 600, 1000, tile=256), streams[:3])


def test_tiled_analysis_equals_untiled(codec, eval_images):
    with Image.open(eval_images[1]) as im:
        rgb = np.asarray(im.convert("RGB"))[:300, :700]  # 700x300: several transform tiles, odd padding
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)
    with torch.no_grad():
        y_full = codec.model.g_a(pad_to_multiple(x, HYPER_STRIDE))
    y_tiled = codec._analyse_tiled(rgb)
    assert y_tiled.shape == y_full.shape
    assert float((y_tiled - y_full).abs().max()) < 1e-3


def test_tiled_synthesis_equals_untiled(codec, eval_images, monkeypatch):
    with Image.open(eval_images[1]) as im:
        rgb = np.asarray(im.convert("RGB"))[:300, :700]
    a = codec.analyse(rgb)
    blob, y_hat = codec.encode_analysis(a, 4.0)
    full = codec._synthesise(y_hat, 4.0, 300, 700)
    monkeypatch.setattr(ic, "UNTILED_MAX_PIXELS", 0)
    tiled = codec._synthesise(y_hat, 4.0, 300, 700)
    diff = np.abs(full.astype(int) - tiled.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_tiled_coding_has_no_seams(codec, big_photo):
    """PSNR of tiled coding within 0.2 dB of untiled coding; the tile borders are no worse than the rest."""
    untiled = codec.encode(big_photo, 4.0)
    tiled = codec.encode(big_photo, 4.0, tile=512)
    assert untiled[4] == 4 and tiled[4] == 4 and ImageCodec.info(tiled)["tiles"] == 6
    rec_u = np.asarray(codec.decode(untiled))
    rec_t = np.asarray(codec.decode(tiled))
    p_u, p_t = psnr(rec_u, big_photo), psnr(rec_t, big_photo)
    assert abs(p_u - p_t) < 0.2, (p_u, p_t)
    # a seam would show as extra error in the 8 pixel columns/rows around the tile borders
    err = (rec_t.astype(np.float64) - big_photo) ** 2
    border = np.zeros(big_photo.shape[:2], bool)
    for b in (512, 1024):
        border[:, b - 4 : b + 4] = True
        if b < 1024:
            border[b - 4 : b + 4, :] = True
    err_u = (rec_u.astype(np.float64) - big_photo) ** 2
    assert err[border].mean() < 1.25 * err_u[border].mean()
    assert len(tiled) < 1.1 * len(untiled)


def test_tiled_rgba_keeps_alpha_and_size(codec, eval_images):
    with Image.open(eval_images[2]) as im:
        rgb = np.asarray(im.convert("RGB"))[:250, :600]  # 3 x 1 tiles of 256, ragged edges
    alpha = (np.arange(600)[None, :] * np.ones((250, 1)) % 256).astype(np.uint8)
    img = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    blob = codec.encode(img, 3.0, tile=256)
    info = ImageCodec.info(blob)
    assert info["tiles"] == 3 and len(info["streams"]) == 4  # one per tile (z then y), alpha
    out = codec.decode(blob)
    assert out.mode == "RGBA" and out.size == (600, 250)
    arr = np.asarray(out)
    assert np.array_equal(arr[:, :, 3], alpha)
    assert psnr(arr[:, :, :3], rgb) > 15


@pytest.mark.parametrize("blocks", range(MAX_GS_BLOCKS + 1))
def test_synthesis_receptive_field_stays_inside_the_tile_margin(blocks):
    """Tiled g_s equals untiled only while a latent reaches no pixel beyond TRANSFORM_MARGIN; the
    residual blocks of `--arch gs_blocks=K` widen that reach, so it is checked with them too."""
    from lcodec.codec.transforms import LATENT_STRIDE, SynthesisTransform

    torch.manual_seed(0)
    g_s = SynthesisTransform(16, 8, blocks)
    for p in g_s.blocks.parameters():  # the blocks' zero-initialised convolutions would hide their reach
        torch.nn.init.normal_(p, std=0.2)
    y = torch.randn(1, 8, 24, 24)
    bumped = y.clone()
    bumped[:, :, 12, 12] += 5.0
    with torch.no_grad():
        diff = (g_s(bumped) - g_s(y)).abs().sum(dim=(0, 1))
    rows, cols = torch.nonzero(diff > 1e-6, as_tuple=True)
    reach = ic.TRANSFORM_MARGIN
    lo, hi = 12 * LATENT_STRIDE - reach, 13 * LATENT_STRIDE + reach
    assert len(rows) and rows.min() >= lo and rows.max() < hi and cols.min() >= lo and cols.max() < hi
