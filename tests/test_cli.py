"""The lcodec command: real runs as a user would type them, and one-line errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from lcodec.cli.main import main


@pytest.fixture(scope="module")
def small_png(tmp_path_factory, eval_images) -> Path:
    d = tmp_path_factory.mktemp("cli")
    with Image.open(eval_images[2]) as im:
        im.convert("RGB").crop((0, 0, 160, 120)).save(d / "small.png")
    return d / "small.png"


def _lcodec(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real console entry point in a fresh process (what a user's shell does)."""
    return subprocess.run([sys.executable, "-m", "lcodec.cli.main", *args], capture_output=True, text=True, cwd=cwd)


def test_encode_info_decode(tmp_path, small_png):
    r = CliRunner()
    out = tmp_path / "a.lcd"
    res = r.invoke(main, ["encode", str(small_png), "-o", str(out), "-q", "5.5"])
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 100
    res = r.invoke(main, ["info", str(out), "--json"])
    info = json.loads(res.output)
    assert info["width"] == 160 and info["height"] == 120 and info["quality"] == 5.5
    assert info["bytes"] == out.stat().st_size
    for ext in ("png", "bmp", "tiff", "webp", "jpg"):
        res = r.invoke(main, ["decode", str(out), "-o", str(tmp_path / f"b.{ext}")])
        assert res.exit_code == 0, res.output
        with Image.open(tmp_path / f"b.{ext}") as im:
            assert im.size == (160, 120)


def test_bpp_target(tmp_path, small_png):
    from lcodec.codec import ImageCodec

    with Image.open(small_png) as im:
        target = 8 * len(ImageCodec.default().encode(im, 3.3)) / (160 * 120)
    out = tmp_path / "t.lcd"
    res = CliRunner().invoke(main, ["encode", str(small_png), "-o", str(out), "--bpp", f"{target:.4f}"])
    assert res.exit_code == 0, res.output
    assert 8 * out.stat().st_size / (160 * 120) <= target
    # sizes of a 160x120 image move in 4-byte steps and are only roughly monotone in quality (the
    # bundled model gives 160-168 bytes for every quality from 2.7 to 3.5), so the bisection lands
    # near, not exactly at, the quality that produced the target: check the size it reached instead
    target_bytes = target * 160 * 120 / 8
    assert out.stat().st_size >= target_bytes - 8
    assert json.loads(CliRunner().invoke(main, ["info", str(out), "--json"]).output)["quality"] >= 2.5


def test_existing_output_is_not_overwritten(tmp_path, small_png):
    out = tmp_path / "x.lcd"
    out.write_bytes(b"keep me")
    res = CliRunner().invoke(main, ["encode", str(small_png), "-o", str(out)])
    assert res.exit_code != 0 and out.read_bytes() == b"keep me"
    res = CliRunner().invoke(main, ["encode", str(small_png), "-o", str(out), "--force"])
    assert res.exit_code == 0 and out.read_bytes()[:4] == b"LCDC"


@pytest.mark.parametrize(
    "setup, args, code, words",
    [
        (None, ["encode", "missing.png", "-o", "o.lcd"], 2, "not found"),
        ("text", ["encode", "notimage.png", "-o", "o.lcd"], 2, "not a readable image"),
        ("empty", ["decode", "empty.lcd", "-o", "o.png"], 3, "not an lcodec file"),
        ("foreign", ["decode", "foreign.lcd", "-o", "o.png"], 3, "not an lcodec file"),
        ("truncated", ["decode", "trunc.lcd", "-o", "o.png"], 3, "truncated"),
        ("flipped", ["decode", "flip.lcd", "-o", "o.png"], 3, "CRC"),
        ("good", ["decode", "good.lcd", "-o", "nodir/o.png"], 5, "does not exist"),
        ("good", ["decode", "good.lcd", "-o", "o.xyz"], 5, "extension"),
        ("good", ["encode", "small.png", "-q", "13"], 2, "quality"),  # above the whole lambda ladder
        ("text", ["export", "notimage.png", "-o", "o.lcd"], 2, "not a readable lcodec checkpoint"),
        ("text", ["train", "--data", ".", "--out", "notimage.png", "--steps", "1"], 2, "run folder"),
        (None, ["train", "--data", ".", "--out", "run", "--device", "tpu"], 2, "unknown device 'tpu'"),
        (None, ["train", "--data", ".", "--out", "run", "--batch", "0"], 2, "--batch"),
        (None, ["train", "--data", ".", "--out", "run", "--init", "missing.pt"], 2, "cannot read checkpoint"),
    ],
)
def test_user_errors_are_one_line(tmp_path, small_png, setup, args, code, words):
    (tmp_path / "small.png").write_bytes(small_png.read_bytes())
    if setup == "text":
        (tmp_path / "notimage.png").write_text("hello")
    elif setup == "empty":
        (tmp_path / "empty.lcd").write_bytes(b"")
    elif setup == "foreign":
        (tmp_path / "foreign.lcd").write_bytes(small_png.read_bytes())
    elif setup in ("truncated", "flipped", "good"):
        res = CliRunner().invoke(main, ["encode", str(small_png), "-o", str(tmp_path / "good.lcd")])
        assert res.exit_code == 0
        data = (tmp_path / "good.lcd").read_bytes()
        (tmp_path / "trunc.lcd").write_bytes(data[: len(data) // 2])
        (tmp_path / "flip.lcd").write_bytes(data[:-10] + bytes([data[-10] ^ 4]) + data[-9:])
    proc = _lcodec(*args, cwd=tmp_path)
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert words in lines[0]
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "o.lcd").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
