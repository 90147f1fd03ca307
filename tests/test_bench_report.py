"""Result JSON schema, point cache, summary rebuilt from every codec JSON present."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import NO_DATA
from PIL import Image

from lcodec.bench import report
from lcodec.bench.errors import BenchError
from lcodec.bench.image_codecs import make_image_codec
from lcodec.bench.run_images import list_images, run_codec

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    src = DATA / "eval"
    if not src.is_dir():
        pytest.skip(NO_DATA)
    folder = tmp_path_factory.mktemp("imgs")
    for i, name in enumerate(["e02.png", "e05.png"]):
        with Image.open(src / name) as im:
            rgb = np.asarray(im.convert("RGB"))
        Image.fromarray(rgb[100:100 + 176, 150 + 40 * i:150 + 40 * i + 200]).save(folder / f"c{i}.png")
    return folder


def test_codec_json_schema_and_cache(tiny_folder: Path, tmp_path: Path, monkeypatch) -> None:
    codec = make_image_codec("jpeg")
    images = list_images(tiny_folder)
    path = run_codec(codec, images, tmp_path, progress=False)
    data = json.loads(path.read_text())
    assert data["name"] == "jpeg" and data["description"]
    assert data["settings"]["values"] == list(codec.values) and data["settings"]["subsampling"] == 2
    res = data["results"]
    for key in ("quality", "bpp", "psnr-rgb", "ms-ssim", "enc_s", "dec_s"):
        assert len(res[key]) == len(codec.values)
    assert res["bpp"] == sorted(res["bpp"])  # JPEG quality up -> size up
    assert set(data["per_image"]) == {"c0.png", "c1.png"}
    item = data["per_image"]["c0.png"]
    assert item["width"] == 200 and item["height"] == 176 and len(item["bytes"]) == len(codec.values)
    # The curve is the mean over images at each setting.
    both = [data["per_image"][n]["psnr-rgb"][2] for n in ("c0.png", "c1.png")]
    assert res["psnr-rgb"][2] == pytest.approx(sum(both) / 2)
    report.validate_result(data)

    # A rerun does no new work: every point comes from the cache.
    calls = []
    monkeypatch.setattr(type(codec), "encode", lambda self, *a: calls.append(a))
    run_codec(codec, images, tmp_path, progress=False)
    assert calls == []
    assert not (tmp_path / ".jpeg.points.jsonl").exists()


def test_finished_only_reports_whole_images_of_a_running_bench(tiny_folder: Path, tmp_path: Path,
                                                               monkeypatch) -> None:
    codec = make_image_codec("jpeg")
    images = list_images(tiny_folder)
    full = json.loads(run_codec(codec, images, tmp_path / "full", progress=False).read_text())
    # A bench stopped half-way: every point of c0, one of c1, only in its points log.
    sig, c0, c1 = full["signature"], full["per_image"]["c0.png"], full["per_image"]["c1.png"]
    keys = ("bytes", "bpp", "psnr-rgb", "ms-ssim", "enc_s", "dec_s")
    lines = [{"signature": sig, "sha1": item["sha1"], "value": v, "point": {k: item[k][i] for k in keys}}
             for item, n in ((c0, len(codec.values)), (c1, 1)) for i, v in enumerate(item["quality"][:n])]
    run = tmp_path / "run"
    run.mkdir()
    log = run / ".jpeg.points.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in lines))
    monkeypatch.setattr(type(codec), "encode", lambda self, *a: pytest.fail("encoded"))
    data = json.loads(run_codec(codec, images, run, progress=False, finished_only=True).read_text())
    assert set(data["per_image"]) == {"c0.png"} and data["images"] == 1
    assert data["per_image"]["c0.png"] == c0 and data["results"]["bpp"] == c0["bpp"]
    assert log.read_text().count("\n") == len(lines)  # the running bench's log is left as it was
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_codec(codec, images, empty, progress=False, finished_only=True) is None
    assert not list(empty.iterdir())


def test_summary_uses_every_codec_json(tiny_folder: Path, tmp_path: Path) -> None:
    images = list_images(tiny_folder)
    for name in ("jpeg", "jpeg444"):
        run_codec(make_image_codec(name), images, tmp_path, progress=False)
    kw = dict(title="t", metrics=("psnr-rgb", "ms-ssim"), preferred_anchors=("vvc", "heif"))
    text = report.write_summary(tmp_path, **kw).read_text()
    assert "| jpeg444 |" in text and "| jpeg |" in text
    assert (tmp_path / "rd-psnr.png").stat().st_size > 0 and (tmp_path / "rd-msssim.png").exists()
    # A new JSON dropped into the folder (as `ours.json` will be) appears after a rerun; another
    # codec's curve with 20 % less rate is a hand-checkable BD-rate of -20 %.
    anchor = json.loads((tmp_path / "jpeg.json").read_text())
    other = dict(anchor, name="ours", results=dict(anchor["results"], bpp=[b * 0.8 for b in anchor["results"]["bpp"]]))
    (tmp_path / "ours.json").write_text(json.dumps(other))
    (tmp_path / "speed.json").write_text(json.dumps({"times": []}))  # not a codec result: ignored
    text = report.write_summary(tmp_path, anchor="jpeg", **kw).read_text()
    row = next(line for line in text.splitlines() if line.startswith("| ours |"))
    assert "-20.0 %" in row
    assert text.count("Machine: ") == 1  # all run here: one machine line
    # a result from another machine: the summary names each machine with its codecs
    (tmp_path / "ours.json").write_text(json.dumps(dict(other, machine="Other CPU, 2 cores")))
    text = report.write_summary(tmp_path, anchor="jpeg", **kw).read_text()
    line = next(x for x in text.splitlines() if x.startswith("Machines"))
    assert "Other CPU, 2 cores (ours)" in line and "(jpeg, jpeg444)" in line


def test_bad_json_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(BenchError, match="not valid JSON"):
        report.load_result(bad)
    bad.write_bytes(b"\xcb\x00 binary, not text")
    with pytest.raises(BenchError, match="not valid JSON"):
        report.load_result(bad)
    with pytest.raises(BenchError, match="not a readable JSON"):
        report.load_results(tmp_path)
    bad.write_text(json.dumps({"name": "x", "results": {"bpp": [1.0]}}))
    with pytest.raises(BenchError, match="lack"):
        report.load_result(bad)
    with pytest.raises(BenchError, match="cannot read"):
        report.load_result(tmp_path / "missing.json")


def test_empty_or_unreadable_folder(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="no images"):
        list_images(tmp_path)
    with pytest.raises(BenchError, match="not a folder"):
        list_images(tmp_path / "nope")
