"""tools.transform_ceiling (and tools.level_extension): the transforms alone bound what coding at a quality
can reach."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from lcodec.codec import ImageCodec
from lcodec.codec.container import unpack_image
from lcodec.codec.registry import bundled_levels

from tools.transform_ceiling import main, unquantized


def test_unquantized_ceiling_lies_above_the_coded_psnr(tmp_path, eval_images, capsys):
    with Image.open(eval_images[0]) as im:
        Image.fromarray(np.asarray(im.convert("RGB"))[:128, :192]).save(tmp_path / "a.png")
    out = tmp_path / "ceiling.json"
    main([str(tmp_path), "--out", str(out)])
    result = json.loads(out.read_text())
    rows = result["rows"]
    # every level of the bundled model
    assert result["images"] == 1 and [r["quality"] for r in rows] == list(range(1, bundled_levels() + 1))
    assert all(a["bpp"] < b["bpp"] for a, b in zip(rows, rows[1:]))
    # quantization costs most at the lowest quality; never does coding beat the unquantized transforms
    assert rows[0]["unquantized_psnr"] - rows[0]["coded_psnr"] > 1.0
    assert all(r["unquantized_psnr"] > r["coded_psnr"] - 0.05 for r in rows)
    # one image: its own figures are the means
    assert all(r["per_image"]["a.png"]["unquantized_psnr"] == r["unquantized_psnr"] for r in rows)
    assert "| 8 |" in capsys.readouterr().out


def test_unquantized_keeps_size_and_dtype(eval_images):
    with Image.open(eval_images[1]) as im:
        rgb = np.ascontiguousarray(np.asarray(im.convert("RGB"))[:37, :53])
    out = unquantized(ImageCodec.default(), rgb, 4.5)
    assert out.shape == rgb.shape and out.dtype == np.uint8


def test_widened_levels_reach_higher_rates_and_keep_the_old_ones(tmp_path, eval_images, eight_level_weights):
    from tools.level_extension import main as extension_main
    from tools.level_extension import widened_weights

    with Image.open(eval_images[3]) as im:
        rgb = np.ascontiguousarray(np.asarray(im.convert("RGB"))[:96, :160])
    eight, weights = eight_level_weights, tmp_path / "ten.lcw"
    widened_weights(10, weights, str(eight))
    wide, base = ImageCodec.from_model(str(weights)), ImageCodec.from_model(str(eight))
    assert base.max_quality == 8 and wide.max_quality == 10
    assert wide.loaded.weights_hash != base.loaded.weights_hash
    # an old level codes to the same streams (only the model's name and hash in the header differ)
    a, b = wide.encode(rgb, 8), base.encode(rgb, 8)
    assert unpack_image(a)[1] == unpack_image(b)[1]
    assert np.array_equal(np.asarray(wide.decode(a)), np.asarray(base.decode(b)))
    Image.fromarray(rgb).save(tmp_path / "a.png")
    out = tmp_path / "ext.json"
    extension_main([str(tmp_path), "--model", str(eight), "--levels", "10", "--from", "8", "--out", str(out)])
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [r["quality"] for r in rows] == [8, 9, 10] and result["architecture"]["levels"] == 10
    assert rows[0]["bpp"] < rows[1]["bpp"] < rows[2]["bpp"]
    assert result["widened_from"] == base.loaded.weights_hash.hex()
    with pytest.raises(ValueError, match="has 10 levels already"):
        widened_weights(10, tmp_path / "again.lcw", str(weights))
