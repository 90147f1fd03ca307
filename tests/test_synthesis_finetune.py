"""tools.synthesis_finetune: other g_s weights decoding the bundled model's own coded latents."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from lcodec.bench.metrics import psnr_rgb
from lcodec.codec import ImageCodec
from lcodec.codec.image_model import ModelConfig
from lcodec.codec.registry import bundled_paths, load_weights_file

from tools.synthesis_finetune import main


def _checkpoint(path, change: str) -> None:
    """A training checkpoint of the bundled weights with one tensor scaled by 1.02."""
    state, meta = load_weights_file(bundled_paths()["default"])
    state = {k: v.float() for k, v in state.items() if not k.endswith("cdf_table")}
    state[change] = state[change] * 1.02
    config = {"model": ModelConfig.from_dict(json.loads(meta["config"])).to_dict(), "lr": 1e-4,
              "train_only": ["g_s"]}
    torch.save({"model": state, "step": 7, "config": config}, path)


def test_synthesis_variants_decode_the_same_latents(tmp_path, eval_images):
    with Image.open(eval_images[3]) as im:
        rgb = np.asarray(im.convert("RGB"))[:64, :96].copy()
    (tmp_path / "img").mkdir()
    Image.fromarray(rgb).save(tmp_path / "img" / "a.png")
    _checkpoint(tmp_path / "gs.pt", "g_s.net.6.weight")
    out = tmp_path / "r.json"
    main([str(tmp_path / "img"), str(tmp_path / "gs.pt"), "--levels", "4,12", "--out", str(out)])
    result = json.loads(out.read_text())
    bundled, variant = result["variants"]
    assert bundled["name"] == "bundled" and variant["name"] == str(tmp_path / "gs.pt")
    assert variant["options"]["step"] == 7 and variant["options"]["train_only"] == ["g_s"]
    assert all(abs(a - b) > 1e-3 for a, b in zip(bundled["psnr"], variant["psnr"]))
    # the bundled row is what a real file decodes to
    codec = ImageCodec.default()
    decoded = np.asarray(codec.decode(codec.encode(Image.fromarray(rgb), quality=12)))
    assert bundled["psnr"][1] == pytest.approx(psnr_rgb(rgb, decoded), abs=1e-3)


def test_a_checkpoint_that_changes_the_bits_is_refused(tmp_path, eval_images):
    _checkpoint(tmp_path / "ga.pt", "g_a.net.0.weight")
    with pytest.raises(ValueError, match="not a synthesis-only change"):
        main([str(eval_images[0].parent), str(tmp_path / "ga.pt")])


def test_reference_is_named_for_the_model_and_repeats_are_kept(tmp_path, eval_images, capsys):
    with Image.open(eval_images[0]) as im:
        Image.fromarray(np.asarray(im.convert("RGB"))[:64, :64].copy()).save(tmp_path / "a.png")
    _checkpoint(tmp_path / "gs.pt", "g_s.net.6.weight")
    main([str(tmp_path), str(tmp_path / "gs.pt"), str(tmp_path / "gs.pt"), "--levels", "6", "--model", "default"])
    table = capsys.readouterr().out
    assert "| default (dB) |" in table and "bundled" not in table
    assert table.count(f"| {tmp_path / 'gs.pt'} (dB change) |") == 2
