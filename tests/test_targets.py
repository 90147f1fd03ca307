"""--bpp / --psnr targets on a ladder whose size is not monotonic in quality, the bench's flag for such
points, and BD figures shown only in pairs. Real encodes of the sample photo; the sizes the search
sees are rewritten where a test needs a dip the photo does not have."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from PIL import Image

from lcodec.bench.monotonic import dominated, non_monotonic_note
from lcodec.codec import ImageCodec
from lcodec.codec.metrics import psnr, sequence_psnr

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    with Image.open(ROOT / "codec" / "samples" / "flower.png") as im:
        crop = im.convert("RGB").crop((200, 150, 328, 246))
    crop.info.clear()
    return crop


def _dip(q: float) -> int:
    """File size with the issue's dip: quality 2 codes to 1,130 bytes, quality 3 to 1,102."""
    if q <= 2:
        return round(1000 + 130 * (q - 1))
    if q <= 3:
        return round(1130 - 28 * (q - 2))
    return round(1102 + 400 * (q - 3))


def test_bpp_target_takes_the_higher_level_past_a_dip(codec, photo, monkeypatch):
    real = ImageCodec.encode_analysis
    seen = []

    def sized(self, a, quality, *args, **kwargs):
        blob, y_hat = real(self, a, quality, *args, **kwargs)
        seen.append(quality)
        return blob[:16] + bytes(_dip(quality) - 16), y_hat

    monkeypatch.setattr(ImageCodec, "encode_analysis", sized)
    pixels = photo.width * photo.height
    blob, q = codec.encode_to_target(photo, bpp=8 * 1102 / pixels)
    # a bisection over [1, 12] stops near 1.78 (1,102 bytes there too, 2 dB worse on the real photo)
    assert q == 3.0 and len(blob) == 1102
    assert any(3 < s < 4 for s in seen)  # and it did look above 3 for a higher quality that fits
    blob, q = codec.encode_to_target(photo, bpp=8 * 1050 / pixels)
    assert 1 <= q < 1.5 and len(blob) <= 1050


def test_psnr_target_returns_the_smallest_file_that_reaches_it(codec, photo):
    a = codec.analyse(photo)
    levels = {}
    for q in codec.levels:
        blob, y_hat = codec.encode_analysis(a, float(q))
        rgb = codec._synthesise(y_hat, float(q), photo.height, photo.width)
        levels[q] = (len(blob), psnr(rgb, photo))
    target = (levels[4][1] + levels[5][1]) / 2
    blob, q = codec.encode_to_target(photo, psnr=target)
    got = psnr(codec.decode(blob), photo)
    assert got >= target and 4 < q <= 5
    # no level that reaches the target is smaller
    assert all(size >= len(blob) for size, p in levels.values() if p >= target)


def test_bench_flags_dominated_points():
    assert dominated([1130, 1102, 1500], [38.68, 40.99, 42.0]) == [(0, 1)]
    assert dominated([1, 2, 3], [30.0, 31.0, 32.0]) == []
    results = {"ours": {"per_image": {"a.png": {"quality": [1, 2, 3], "bytes": [1000, 1130, 1102],
                                                "psnr-rgb": [37.0, 38.68, 40.99]}}},
               "jpeg": {"per_image": {"a.png": {"quality": [10, 20], "bytes": [900, 1200],
                                                "psnr-rgb": [30.0, 33.0]}}}}
    note = non_monotonic_note(results)
    assert "ours 1 (a.png 2: 1,130 B 38.68 dB, 3: 1,102 B 40.99 dB)" in note and "jpeg" not in note


def test_sequence_psnr_is_from_the_mean_mse():
    # one black frame coded perfectly (capped at 100 dB) and one at 30 dB: the clip is 33.01 dB, not 65
    assert sequence_psnr([100.0, 30.0]) == pytest.approx(30 + 10 * math.log10(2))
    assert sequence_psnr([35.0, 35.0, 35.0]) == pytest.approx(35.0)
    assert sequence_psnr([100.0, 100.0]) == 100.0


def test_bd_figures_are_shown_only_in_pairs(tmp_path):
    from lcodec.bench.run_video import video_summary

    src = ROOT / "bench" / "results" / "video"
    for name in ("vvc", "x265"):
        shutil.copy(src / f"{name}.json", tmp_path / f"{name}.json")
    # format 2's curve, which overlaps vvc's too little in rate (format 5's now overlaps enough)
    shutil.copy(ROOT / "bench" / "results" / "history" / "video" / "ours-format2-bikes.json", tmp_path / "ours.json")
    table = video_summary(tmp_path, anchor="vvc").read_text()
    rows: dict[str, list[str]] = {}
    for line in table.splitlines():  # the BD table comes first (a description table follows)
        if line.startswith("| ") and " | " in line:
            rows.setdefault(line.split(" | ")[0].strip("| "), line.split(" | "))
    # ours and vvc barely overlap in rate: no BD-PSNR, so no PSNR-RGB BD-rate beside it either
    assert rows["ours"][3].startswith("n/a") and rows["ours"][6].startswith("n/a")
    assert rows["x265"][3].endswith("%") and rows["x265"][6].endswith("dB")
    data = json.loads((tmp_path / "x265.json").read_text())
    point = next(iter(data["points"].values()))
    assert point["psnr-rgb"] == pytest.approx(sequence_psnr(point["per_frame"]["psnr-rgb"]))
