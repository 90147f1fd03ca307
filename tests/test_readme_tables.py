"""The measured tables of README.md and docs/*.md are rebuilt from bench/results and must match them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lcodec.bench import readme_tables
from lcodec.bench.readme_tables import TableError, main, render
from lcodec.bench.report import bd_value

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"


def test_document_tables_match_committed_results():
    docs = readme_tables.documents()
    assert docs[0] == README and len(docs) > 1  # README.md, then docs/*.md
    texts = []
    for doc in docs:
        text = doc.read_text()
        out, changed = render(text, RESULTS)
        assert changed == [], f"stale tables in {doc.name}: {changed} (run `python -m lcodec.bench.readme_tables`)"
        assert out == text
        texts.append(text)
    # Every table the module knows is in some document, so none can silently fall out of step.
    for name in readme_tables.TABLES:
        assert any(f"<!-- table:{name} -->" in text for text in texts), name
    assert main(["--check"]) == 0


@pytest.fixture
def results_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "results"
    shutil.copytree(RESULTS, dst)
    return dst


def _document_with(table: str) -> Path:
    return next(doc for doc in readme_tables.documents() if f"<!-- table:{table} -->" in doc.read_text())


def test_changed_result_makes_table_stale_and_is_rewritten(results_copy: Path, tmp_path: Path):
    source = _document_with("speed")
    readme = tmp_path / source.name
    readme.write_text(source.read_text())
    speed = json.loads((results_copy / "speed" / "speed.json").read_text())
    speed["times"][0]["decode_s"] = 9.8765
    speed["rate_gap"][0]["gap_percent"] = 12.345
    (results_copy / "speed" / "speed.json").write_text(json.dumps(speed))
    args = ["--readme", str(readme), "--results", str(results_copy)]
    assert main(args + ["--check"]) == 1
    assert main(args) == 0
    text = readme.read_text()
    assert "| decode the same | 9.877 s | <= 1.0 s |" in text
    assert "| 1 | " in text and "+12.35 %" in text
    assert main(args + ["--check"]) == 0

    def outside(t: str) -> str:
        return readme_tables.MARK.sub(r"<\1>", t)

    # Text outside the markers is untouched.
    assert outside(text) == outside(source.read_text())


def test_every_document_is_checked_and_rewritten(results_copy: Path, tmp_path: Path):
    one, two = tmp_path / "README.md", tmp_path / "two.md"
    one.write_text("# a\n<!-- table:speed -->\nold\n<!-- /table -->\n")
    two.write_text("<!-- table:determinism -->\nold\n<!-- /table -->\ntext\n")
    args = ["--doc", str(one), "--doc", str(two), "--results", str(results_copy)]
    assert main(args + ["--check"]) == 1
    assert main(args) == 0 and main(args + ["--check"]) == 0
    assert "| decode the same |" in one.read_text() and two.read_text().endswith("<!-- /table -->\ntext\n")


def test_new_ceiling_run_adds_a_column(results_copy: Path):
    current_path = results_copy / "studies" / "transform-ceiling.json"
    current = json.loads(current_path.read_text())
    shutil.copy(current_path, results_copy / "history" / "transform-ceiling-run98.json")
    for recorded in (99, None):  # the run the file records, else one after the newest kept run
        current.pop("run", None)
        if recorded:
            current["run"] = recorded
        current_path.write_text(json.dumps(current))
        table = readme_tables.ceiling(results_copy)
        header = table.splitlines()[0]
        assert header.startswith("| quality | run 99 (N = ")
        assert "| run 98 (N = " in header and ": coded / unquantized (gap)" in header
    row1 = table.splitlines()[2].split(" | ")
    # The copied run repeats the current coded / unquantized figures.
    assert row1[5] == f"{row1[2]} / {row1[3]} ({row1[4]})"


def test_ceiling_table_shows_only_the_newest_earlier_runs(results_copy: Path):
    for k in range(90, 99):
        shutil.copy(results_copy / "studies" / "transform-ceiling.json",
                    results_copy / "history" / f"transform-ceiling-run{k}.json")
    header = readme_tables.ceiling(results_copy).splitlines()[0]
    earlier = header.strip("| ").split(" | ")[5:]  # after quality, bpp, coded, unquantized, gap
    shown = [int(cell.split()[1]) for cell in earlier]
    assert shown == list(range(98, 98 - readme_tables.CEILING_RUNS_SHOWN, -1))


def test_per_point_follows_the_codec_results(results_copy: Path):
    ours = json.loads((results_copy / "images" / "ours.json").read_text())
    ours["results"]["bpp"] = [b * 0.5 for b in ours["results"]["bpp"]]
    (results_copy / "images" / "ours.json").write_text(json.dumps(ours))
    before = readme_tables.per_point(RESULTS).splitlines()[2:]
    after = readme_tables.per_point(results_copy).splitlines()[2:]
    for b, a in zip(before, after):
        rb = float(b.split(" | ")[1])
        ra = float(a.split(" | ")[1])
        assert ra == pytest.approx(rb / 2, abs=1e-4)
        db, da = float(b.split(" | ")[4].split()[0]), float(a.split(" | ")[4].split()[0])
        assert da < db


def test_bad_markers_and_missing_results(results_copy: Path, tmp_path: Path):
    with pytest.raises(TableError, match="unknown table 'nope'"):
        render("<!-- table:nope -->\n| a |\n<!-- /table -->\n", results_copy)
    with pytest.raises(TableError, match="without its"):
        render("<!-- table:speed -->\n| a |\n", results_copy)
    (results_copy / "tiling" / "huge-image.json").unlink()
    with pytest.raises(TableError, match="huge-image.json: missing"):
        render("<!-- table:huge-image -->\nold\n<!-- /table -->\n", results_copy)
    readme = tmp_path / "R.md"
    readme.write_text("<!-- table:huge-image -->\nold\n<!-- /table -->\n")
    assert main(["--readme", str(readme), "--results", str(results_copy), "--check"]) == 2


def test_p_vs_intra_report_lines():
    from lcodec.bench.video_ptest import ptest_report

    rows = json.loads((RESULTS / "video" / "p-vs-intra.json").read_text())["rows"][:1]
    md = ptest_report(rows, {"a.mp4": -18.39, "b.mp4": "n/a (too little overlap)"})
    assert md.startswith("| clip | frames |")
    assert "\nBD-rate (PSNR-RGB) of low-delay P-coding vs all-intra, a.mp4: -18.4 %\n" in md
    assert md.endswith("vs all-intra, b.mp4: n/a (too little overlap)\n")


def test_per_point_names_each_point_by_its_level_whatever_the_json_order(results_copy: Path):
    path = results_copy / "images" / "ours.json"
    ours = json.loads(path.read_text())
    res = ours["results"]
    order = list(range(len(res["bpp"])))[::-1]
    for key in ("quality", "bpp", "psnr-rgb", "ms-ssim", "enc_s", "dec_s"):
        res[key] = [res[key][i] for i in order]
    path.write_text(json.dumps(ours))
    assert readme_tables.per_point(results_copy) == readme_tables.per_point(RESULTS)


def _effort_run_of(results_copy: Path) -> tuple[Path, dict]:
    """An empty effort/eval/ folder holding only effort 0: the image bench's `ours` result."""
    folder = results_copy / "effort" / "eval"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.json"):
        old.unlink()
    base = json.loads((results_copy / "images" / "ours.json").read_text())
    base["images"] = len(base["per_image"])
    (folder / "ours.json").write_text(json.dumps(base))
    return folder, base


def test_effort_levels_compare_each_effort_over_the_images_it_covered(results_copy: Path):
    folder, base = _effort_run_of(results_copy)
    # effort 2 so far on two images, where it spends 10 % fewer bits for the same pictures
    two = json.loads(json.dumps(dict(list(base["per_image"].items())[:2])))
    for item in two.values():
        item["bpp"] = [0.9 * b for b in item["bpp"]]
        item["enc_s"] = [100.0 for _ in item["enc_s"]]
    (folder / "ours-e2.json").write_text(json.dumps({**base, "name": "ours-e2", "per_image": two}))
    rows = [line.split(" | ") for line in readme_tables.effort_levels(results_copy).splitlines()[2:]]
    assert [r[0] for r in rows] == ["| 0", "| 2"]  # effort 1 and 3 not measured: no row
    assert rows[0][2] == f"{base['images']}/{base['images']}" and rows[1][2] == f"2/{base['images']}"
    assert rows[1][3] == "-10.0 %" and rows[1][5] == "-10.0 %"  # mean curve and per-image mean
    assert rows[1][-1] == "100.0 |"
    # against a reference codec, effort 2 counts over its two images only, 10 % below effort 0 there
    jxl = json.loads((results_copy / "images" / "jxl.json").read_text())
    narrowed = readme_tables._on_images(jxl, list(two))
    e0_two = readme_tables._on_images(base, list(two))
    expected = (1 + bd_value(narrowed, e0_two, "psnr-rgb") / 100) * 0.9 - 1
    assert float(rows[1][6].rstrip(" %")) == pytest.approx(100 * expected, abs=0.06)


def test_effort_per_image_gives_each_images_bd_rate_and_the_top_efforts_points(results_copy: Path):
    folder, base = _effort_run_of(results_copy)
    first, second = list(base["per_image"])[:2]
    e1 = json.loads(json.dumps({n: base["per_image"][n] for n in (first, second)}))
    for item in e1.values():  # 20 % fewer bytes for the same pictures
        item["bpp"], item["bytes"] = [0.8 * b for b in item["bpp"]], [0.8 * b for b in item["bytes"]]
    e3 = json.loads(json.dumps({first: base["per_image"][first]}))
    e3[first]["psnr-rgb"] = [p + 0.5 for p in e3[first]["psnr-rgb"]]  # same bytes, 0.5 dB better
    for name, items in (("ours-e1", e1), ("ours-e3", e3)):
        (folder / f"{name}.json").write_text(json.dumps({**base, "name": name, "per_image": items}))
    lines = readme_tables.effort_per_image(results_copy).splitlines()
    assert lines[0].startswith("| image | effort 1 vs 0 | effort 3 vs 0 | effort 3: bytes, dB (q1 / ")
    rows = {r[0]: r[1:] for r in ([c.strip() for c in line[1:-1].split("|")] for line in lines[2:])}
    assert list(rows) == sorted(n.rsplit(".", 1)[0] for n in (first, second))
    top = rows[first.rsplit(".", 1)[0]]
    assert top[0] == "-20.00 %" and float(top[1].rstrip(" %")) < -5  # effort 3: same rate, higher PSNR
    assert top[2].split(" / ")[0] == "+0.0 %, +0.50"
    assert rows[second.rsplit(".", 1)[0]][1:] == ["", ""]  # effort 3 has not reached this image
