"""bench.large_image: per-megapixel times and peak memory of a large photo, in its own process."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lcodec.bench.errors import BenchError
from lcodec.bench.large_image import in_subprocess, measure


def test_large_image_figures_are_per_megapixel_and_cropped(tmp_path):
    p = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((150, 260, 3)) * 255).astype(np.uint8)).save(p)
    r = measure(p, quality=2, crop=(200, 120))
    assert r["size"] == "200x120" and r["bytes"] > 0 and r["peak_rss_mb"] > 100
    assert r["encode_s_per_mpx"] == pytest.approx(r["encode_s"] / 0.024, rel=0.01)
    sub = in_subprocess(p, quality=2)
    assert sub["size"] == "260x150" and sub["decode_s"] > 0
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a png")
    with pytest.raises(BenchError, match="large-image run on .*junk.png failed"):
        in_subprocess(junk)
