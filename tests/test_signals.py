"""SIGTERM and SIGHUP stop a run as Ctrl-C does: no partial file left, one line on stderr, exit
128 + the signal number. Real `lcodec` processes, signalled while they are writing."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lcodec.codec.video_io import FrameSink

ROOT = Path(__file__).resolve().parents[1]
W, H, FRAMES = 256, 192, 24


def _start(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lcodec.cli.main", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _signal_once_writing(proc: subprocess.Popen, folder: Path, sig: int, limit: float = 120.0) -> None:
    """Send `sig` as soon as the run's temporary output holds bytes (it is mid-write then)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        assert proc.poll() is None, f"finished before it could be signalled: {proc.communicate()}"
        if any(p.stat().st_size > 0 for p in folder.iterdir() if ".partial" in p.name or p.name.endswith(".part")):
            proc.send_signal(sig)
            return
        time.sleep(0.02)
    proc.kill()
    pytest.fail("no temporary output appeared")


def _check_stopped(proc: subprocess.Popen, code: int, name: str) -> None:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    lines = [line for line in err.splitlines() if line.startswith("lcodec") or "Traceback" in line]
    assert lines == [f"lcodec: error: terminated by {name} (no output written)"], err


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A lossless 24-frame clip panning across the sample photo."""
    with Image.open(ROOT / "codec" / "samples" / "flower.png") as im:
        base = np.asarray(im.convert("RGB"))[100 : 100 + H, : W + 4 * FRAMES]
    path = tmp_path_factory.mktemp("clip") / "pan.mkv"
    sink = FrameSink(path, W, H, Fraction(25), chroma="rgb")
    for i in range(FRAMES):
        sink.write(np.ascontiguousarray(base[:, 4 * i : 4 * i + W]))
    sink.close()
    return path


def test_sigterm_during_video_encode_leaves_no_file(tmp_path, clip):
    out = tmp_path / "pan.lcd"
    proc = _start("encode", str(clip), "-o", str(out), "-q", "4", cwd=tmp_path)
    _signal_once_writing(proc, tmp_path, signal.SIGTERM)
    _check_stopped(proc, 143, "SIGTERM")
    assert not out.exists() and _leftovers(tmp_path) == []


def test_sighup_during_video_decode_leaves_no_file(tmp_path, clip):
    from lcodec.codec.video_codec import VideoCodec
    from lcodec.codec.video_io import open_video

    src = open_video(clip)
    with open(tmp_path / "pan.lcd", "wb") as f:
        VideoCodec.default().encode(src.frames(), f, src.width, src.height, quality=2, intra_period=0, rate=src.rate)
    out = tmp_path / "pan.y4m"
    proc = _start("decode", "pan.lcd", "-o", str(out), cwd=tmp_path)
    _signal_once_writing(proc, tmp_path, signal.SIGHUP)
    _check_stopped(proc, 129, "SIGHUP")
    assert not out.exists() and _leftovers(tmp_path) == []


def test_sigterm_during_image_encode_keeps_the_old_output(tmp_path):
    # 6 Mpx (tiled): long enough to be signalled mid-work even on a fast machine
    with Image.open(ROOT / "codec" / "samples" / "flower.png") as im:
        im.convert("RGB").resize((3072, 2048), Image.BICUBIC).save(tmp_path / "big.png")
    out = tmp_path / "big.lcd"
    out.write_bytes(b"previous result")
    proc = _start("encode", "big.png", "-o", str(out), "--force", cwd=tmp_path)
    time.sleep(4.0)
    assert proc.poll() is None, "finished before it could be signalled"
    proc.send_signal(signal.SIGTERM)
    _check_stopped(proc, 143, "SIGTERM")
    assert out.read_bytes() == b"previous result" and _leftovers(tmp_path) == []
