"""tools.top_end: per-image diagnostics of what bounds the top of the RD curve."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from lcodec.codec.metrics import MAX_PSNR
from tools.top_end import block_pca_psnr, detail, main, worst_crop


def test_block_pca_bound_grows_with_components_and_is_exact_at_full_rank():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    few, many = block_pca_psnr(rgb, 4), block_pca_psnr(rgb, 16)
    assert few < many
    assert block_pca_psnr(rgb, 24) == MAX_PSNR  # 24 blocks: full rank, exact (PSNR at its cap)
    assert detail(np.zeros((8, 8, 3), np.uint8)) == 0.0 and detail(rgb) > 100


def test_worst_crop_finds_the_error():
    rgb = np.zeros((96, 128, 3), np.uint8)
    recon = rgb.copy().astype(np.float64)
    recon[64:80, 96:112] = 50.0
    assert worst_crop(rgb, recon, 32) == (48, 80)  # first 32x32 crop on the 16-grid holding the error block


def test_report_per_image_and_latent_optimisation(tmp_path, eval_images):
    with Image.open(eval_images[4]) as im:
        rgb = np.asarray(im.convert("RGB"))
    Image.fromarray(rgb[:128, :192]).save(tmp_path / "a.png")
    Image.fromarray(rgb[128:256, 192:384]).save(tmp_path / "b.png")
    train = tmp_path / "train"
    train.mkdir()
    Image.fromarray(rgb[:, :512]).save(train / "t.png")
    out = tmp_path / "top.json"
    main([str(tmp_path), "--train", str(train), "--quality", "12", "--crop", "64", "--crops", "1",
          "--iters", "4", "--patches", "3", "--out", str(out)])
    result = json.loads(out.read_text())
    images = {d["image"]: d for d in result["images"]}
    assert set(images) == {"a.png", "b.png"} and result["latent_channels"] == 160
    worst = min(images.values(), key=lambda d: d["unquantized_psnr"])
    crop = worst["crop"]
    assert crop["side"] == 64 and crop["optimised_psnr"] >= crop["g_a_psnr"]  # the best iterate counts
    assert sum("crop" in d for d in images.values()) == 1
    assert result["training_detail"]["patches"] == 3


def test_texture_report_ranks_by_detail_and_reports_each_model(tmp_path):
    from tools.texture_report import markdown, most_textured

    rng = np.random.default_rng(1)
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(tmp_path / "flat.png")
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "noise.png")
    Image.fromarray(np.tile(np.arange(32, dtype=np.uint8)[None, :, None] * 4, (32, 1, 3))).save(tmp_path / "ramp.png")
    ranked = most_textured(tmp_path, 2)
    assert [n for n, _ in ranked] == ["noise.png", "ramp.png"] and ranked[0][1] > ranked[1][1] > 0
    level = {"quality": 12.0, "bpp": 1.5, "coded_psnr": 30.0, "unquantized_psnr": 31.0}
    result = {"images": [{"image": "noise.png", "detail": ranked[0][1]}], "qualities": [12.0],
              "models": [{"weights_hash": "ab" * 16, "levels": {"noise.png": [level]},
                          "bd_vs_jpeg": {"noise.png": -5.0}}]}
    assert "1.500, 30.00 (31.00)" in markdown(result) and "-5.00 %" in markdown(result)
