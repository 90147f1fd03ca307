"""No data lost and safe loading: interrupted runs leave nothing behind, streams name missing weights."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lcodec.codec import ImageCodec
from lcodec.codec.container import ImageHeader, pack_image, unpack_image
from lcodec.codec.errors import InputError
from lcodec.codec.registry import load_model

ROOT = Path(__file__).resolve().parents[1]


def _default_sigint() -> None:
    # A shell starts background jobs with SIGINT ignored, and Python then installs no KeyboardInterrupt
    # handler; give the child the default disposition so the test means the same however pytest runs.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lcodec.cli.main", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)


@pytest.fixture(scope="module")
def big_png(tmp_path_factory, eval_images) -> Path:
    """An image that takes well over 4 s to encode or decode (6 Mpx, tiled), so a SIGINT sent 4 s
    after start lands mid-work even on a fast idle machine (start-up alone takes about 2 s)."""
    d = tmp_path_factory.mktemp("sigint")
    with Image.open(eval_images[0]) as im:
        im.convert("RGB").resize((3072, 2048), Image.BICUBIC).save(d / "big.png")
    return d / "big.png"


def _interrupt_when_working(proc: subprocess.Popen, delay: float) -> None:
    time.sleep(delay)
    assert proc.poll() is None, "finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)


def test_sigint_during_encode_leaves_no_output(tmp_path, big_png):
    out = tmp_path / "big.lcd"
    proc = _start("encode", str(big_png), "-o", str(out), "-q", "4", cwd=tmp_path)
    _interrupt_when_working(proc, 4.0)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_sigint_during_forced_decode_keeps_the_old_output(tmp_path, big_png):
    blob = tmp_path / "big.lcd"
    blob.write_bytes(ImageCodec.default().encode(Image.open(big_png), 2.0))
    out = tmp_path / "big.png"
    out.write_bytes(b"previous result")
    proc = _start("decode", str(blob), "-o", str(out), "--force", cwd=tmp_path)
    _interrupt_when_working(proc, 4.0)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert out.read_bytes() == b"previous result"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_cli_names_the_missing_weights(tmp_path, eval_images):
    codec = ImageCodec.default()
    with Image.open(eval_images[0]) as im:
        rgb = np.asarray(im.convert("RGB"))[:64, :64]
    header, streams = unpack_image(codec.encode(rgb, 4.0))
    forged = pack_image(ImageHeader("portrait-v7", bytes.fromhex("0123456789abcdef"), 4.0, 64, 64), streams)
    (tmp_path / "f.lcd").write_bytes(forged)
    proc = subprocess.run([sys.executable, "-m", "lcodec.cli.main", "decode", "f.lcd", "-o", "f.png"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 4
    line = proc.stderr.strip()
    assert "portrait-v7" in line and "0123456789abcdef" in line and "--model" in line
    assert not (tmp_path / "f.png").exists()


def test_pickled_weights_are_refused_without_running_them(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "evil.lcw"
    bad.write_bytes(pickle.dumps({"state": Evil()}))
    with pytest.raises(InputError, match="not an lcodec weights file"):
        load_model(bad)
    assert not marker.exists()
