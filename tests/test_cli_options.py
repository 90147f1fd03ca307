"""Options a new user trips on: video options given for an image, the two spellings of "only the first
frame is intra", a --help that does not load torch, and the README's sample outputs kept out of git."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from lcodec.cli.main import main
from lcodec.codec.video_io import FrameSink

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "codec" / "samples" / "flower.png"


@pytest.mark.parametrize("args, named", [
    (["--frames", "3"], "--frames is"),
    (["--intra-period", "8", "--start", "2"], "--start, --intra-period are"),
])
def test_video_options_are_refused_for_an_image(tmp_path, args, named):
    res = CliRunner().invoke(main, ["encode", str(SAMPLE), "-o", str(tmp_path / "a.lcd"), *args])
    assert res.exit_code == 2 and named in res.output and "is an image" in res.output
    assert not (tmp_path / "a.lcd").exists()


def test_decode_video_options_are_refused_for_an_image(tmp_path):
    small = tmp_path / "s.png"
    with Image.open(SAMPLE) as im:
        im.convert("RGB").crop((0, 0, 64, 64)).save(small)
    assert CliRunner().invoke(main, ["encode", str(small), "-o", str(tmp_path / "s.lcd")]).exit_code == 0
    for args in (["--chroma", "444"], ["--frame", "0"]):
        res = CliRunner().invoke(main, ["decode", str(tmp_path / "s.lcd"), "-o", str(tmp_path / "s2.png"), *args])
        assert res.exit_code == 2 and "for videos" in res.output, res.output
    assert not (tmp_path / "s2.png").exists()


def test_intra_period_zero_and_minus_one_mean_the_same(tmp_path):
    with Image.open(SAMPLE) as im:
        base = np.asarray(im.convert("RGB"))[200:248, 200:272]
    clip = tmp_path / "c.mkv"
    sink = FrameSink(clip, 64, 48, Fraction(25), chroma="rgb")
    for i in range(3):
        sink.write(np.ascontiguousarray(base[:, 2 * i : 2 * i + 64]))
    sink.close()
    for period in ("0", "-1"):
        res = CliRunner().invoke(main, ["encode", str(clip), "-o", str(tmp_path / f"p{period}.lcd"), "-q", "2",
                                        "--intra-period", period])
        assert res.exit_code == 0, res.output
    assert (tmp_path / "p0.lcd").read_bytes() == (tmp_path / "p-1.lcd").read_bytes()
    info = json.loads(CliRunner().invoke(main, ["info", str(tmp_path / "p0.lcd"), "--json"]).output)
    assert [f["type"] for f in info["frames"]] == ["I", "P", "P"]
    res = CliRunner().invoke(main, ["encode", str(clip), "-o", str(tmp_path / "x.lcd"), "--intra-period", "-2"])
    assert res.exit_code == 2


def test_help_does_not_import_torch():
    code = ("import sys\nfrom lcodec.cli.main import main\n"
            "for args in (['--help'], ['encode', '--help'], ['bench', '--help']):\n"
            "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "NO-TORCH"


def test_readme_sample_outputs_are_ignored_by_git():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "check-ignore", "flower.lcd", "flower.out.png"], capture_output=True, text=True,
                         cwd=ROOT)
    assert out.stdout.split() == ["flower.lcd", "flower.out.png"]
