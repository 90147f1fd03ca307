"""The bench CLI on a tiny folder, through click's CliRunner (commands called directly)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import NO_DATA
from click.testing import CliRunner
from PIL import Image

import lcodec.cli.main  # noqa: F401 - adds the bench commands kept in their own modules (speed, determinism, ...)
from lcodec.cli.bench_commands import bd_rate, bench

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    src = DATA / "eval"
    if not src.is_dir():
        pytest.skip(NO_DATA)
    folder = tmp_path_factory.mktemp("imgs")
    for i, name in enumerate(["e03.png", "e09.png"]):
        with Image.open(src / name) as im:
            Image.fromarray(np.asarray(im.convert("RGB"))[:168, :192]).save(folder / f"t{i}.png")
    return folder


@pytest.fixture(scope="module")
def bench_out(tiny_folder: Path, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("out")
    result = CliRunner().invoke(bench, ["images", str(tiny_folder), "--codecs", "jpeg,jpeg444", "--out", str(out),
                                       "--no-progress"])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_images_command_writes_results(bench_out) -> None:
    out, output = bench_out
    for name in ("jpeg.json", "jpeg444.json", "summary.md", "rd-psnr.png", "rd-msssim.png"):
        assert (out / name).exists(), name
    assert "BD-rate PSNR-RGB" in output and "| jpeg444 |" in output


def test_bd_rate_command(bench_out) -> None:
    out, _ = bench_out
    result = CliRunner().invoke(bd_rate, [str(out / "jpeg.json"), str(out / "jpeg444.json")])
    assert result.exit_code == 0, result.output
    assert "BD-rate:" in result.output and "BD-PSNR:" in result.output
    same = CliRunner().invoke(bd_rate, [str(out / "jpeg.json"), str(out / "jpeg.json"), "--method", "akima"])
    assert "BD-rate: +0.00 %" in same.output
    per = CliRunner().invoke(bd_rate, [str(out / "jpeg.json"), str(out / "jpeg.json"), "--per-point"])
    rows = [line.split() for line in per.output.splitlines() if line.strip().endswith("%") and "BD" not in line]
    assert rows and all(r[-2] in ("+0.0", "-0.0") for r in rows), per.output


def test_summary_command_rebuilds_from_jsons(bench_out) -> None:
    out, _ = bench_out
    (out / "summary.md").unlink()
    result = CliRunner().invoke(bench, ["summary", str(out), "--anchor", "jpeg444", "--method", "akima"])
    assert result.exit_code == 0, result.output
    text = (out / "summary.md").read_text()
    assert "Anchor: **jpeg444**" in text and "AKIMA" in text
    bad = CliRunner().invoke(bench, ["summary", str(out), "--anchor", "vvc"])
    assert bad.exit_code == 1 and "anchor 'vvc' has no JSON" in bad.output


def test_user_errors_are_one_line(tmp_path: Path, tiny_folder: Path) -> None:
    runner = CliRunner()
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.png").write_bytes(b"not an image at all")
    cases = [
        ["speed", str(junk)],  # a folder holding a file that is not an image
        ["determinism", str(junk)],
        ["images", str(tmp_path / "missing"), "--codecs", "jpeg", "--out", str(tmp_path / "o")],
        ["images", str(tmp_path), "--codecs", "jpeg", "--out", str(tmp_path / "o")],  # empty folder
        ["images", str(tiny_folder), "--codecs", "jpeg,png9", "--out", str(tmp_path / "o")],
        ["video", str(tmp_path / "missing.mp4"), "--codecs", "x264", "--out", str(tmp_path / "o")],
    ]
    for args in cases:
        result = runner.invoke(bench, args)
        assert result.exit_code == 1, (args, result.output)
        assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
        assert "Traceback" not in result.output
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    result = runner.invoke(bd_rate, [str(bad), str(bad)])
    assert result.exit_code == 1 and "not valid JSON" in result.output


def test_missing_codec_is_skipped_with_notice(tiny_folder: Path, tmp_path: Path, monkeypatch) -> None:
    from lcodec.bench import image_codecs
    from lcodec.bench.errors import CodecUnavailable

    def unavailable(self) -> None:
        raise CodecUnavailable("pretend its package is missing")

    monkeypatch.setattr(image_codecs.JxlCodec, "check", unavailable)
    result = CliRunner().invoke(bench, ["images", str(tiny_folder), "--codecs", "jxl,jpeg", "--out", str(tmp_path),
                                        "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "skipping jxl: pretend its package is missing" in result.output
    assert not (tmp_path / "jxl.json").exists() and (tmp_path / "jpeg.json").exists()


def test_video_command_on_few_frames(tmp_path: Path) -> None:
    clip = DATA / "video" / "carphone_pristine.mp4"
    if not clip.exists():
        pytest.skip(NO_DATA)
    result = CliRunner().invoke(bench, ["video", str(clip), "--frames", "2", "--codecs", "ours,x264",
                                        "--out", str(tmp_path), "--intra-period", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "x264.json").read_text())
    assert data["settings"]["intra_period"] == 1 and len(data["results"]["psnr-yuv"]) == 6
    ours = json.loads((tmp_path / "ours.json").read_text())
    from lcodec.codec.registry import bundled_levels

    assert len(ours["results"]["bpp"]) == bundled_levels() and ours["settings"]["weights_hash"]


def test_video_command_start_and_sequence_psnr(tmp_path: Path) -> None:
    from lcodec.bench.metrics import sequence_psnr

    clip = DATA / "video" / "carphone_pristine.mp4"
    if not clip.exists():
        pytest.skip(NO_DATA)
    # -1 is read as 0 (one I-frame), as `lcodec encode` reads it
    result = CliRunner().invoke(bench, ["video", str(clip), "--frames", "3", "--start", "40", "--codecs", "x264",
                                        "--out", str(tmp_path), "--intra-period", "-1", "--no-progress"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "x264.json").read_text())
    item = data["per_clip"]["carphone_pristine.mp4"]
    assert (item["start"], item["frames"], data["settings"]["intra_period"]) == (40, 3, 0)
    assert "frames 40 to 42" in (tmp_path / "summary.md").read_text()
    for point in data["points"].values():
        frames = point["per_frame"]["psnr-rgb"]
        assert len(frames) == 3 and point["psnr-rgb"] == pytest.approx(sequence_psnr(frames))
        assert point["psnr-rgb"] <= np.mean(frames) + 1e-9  # mean MSE never flatters: Jensen
    from lcodec.bench.video_codecs import read_clip

    later, _ = read_clip(clip, 1, start=40)
    first, _ = read_clip(clip, 41)
    assert np.array_equal(later[0][0], first[40][0])


def test_rate_gap_separates_the_container_from_the_coded_streams(tiny_folder: Path) -> None:
    from lcodec.bench.speed import rate_gap
    from lcodec.codec import ImageCodec
    from lcodec.codec.container import unpack_image

    (row,) = rate_gap(tiny_folder, qualities=(6.0,))
    codec = ImageCodec.default()
    overhead = []
    for p in sorted(tiny_folder.glob("*.png")):
        with Image.open(p) as im:
            im.info.clear()  # the bench measures the payload: no ICC profile in either
            blob = codec.encode(im, 6.0)
        overhead.append(len(blob) - sum(len(s) for s in unpack_image(blob)[1]))
    # magic, version, kind, mode, name, hash, quality, sizes, tile, CRC: about 32 bytes a file
    assert row["container_bytes_per_file"] == pytest.approx(np.mean(overhead), abs=0.05)
    assert 28 < row["container_bytes_per_file"] < 40
    # the header is counted in the file's gap and not in the streams'
    assert row["streams_gap_percent"] < row["gap_percent"] - 1.0
