"""Render the measured tables of README.md and docs/*.md from the committed files under `bench/results/`.

Each generated table sits between `<!-- table:NAME -->` and `<!-- /table -->`, in README.md or any
document under docs/; this module rebuilds the text between them from the result files, so a table
can only show what a bench run wrote. `python -m lcodec.bench.readme_tables` rewrites the documents;
`--check` only reports stale tables (and `tests/test_readme_tables.py` runs that check, so the
documents and the results cannot drift apart). The prose around the tables is written by hand.

Where the results live (`bench/results/`): `images/`, `video/`, `video-carphone/` (rate-distortion
per data set), `speed/`, `robustness/` (fuzzing, determinism), `tiling/` (huge images, seams),
`studies/` (the current result of each study in tools/), `training/` (the campaign) and `history/`
(one file per earlier run, and every run's training log and config).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
MARK = re.compile(r"<!-- table:([a-z0-9-]+) -->\n(.*?)<!-- /table -->", re.S)

# The targets (not measurements): shown beside the measured figures.
SPEED_TARGETS = {"encode": "<= 1.5 s", "decode": "<= 1.0 s", "coder": ">= 10 M/s"}


class TableError(ValueError):
    """A document's marker names no known table, or a result file is missing or malformed."""


def _load(results: Path, name: str) -> Any:
    path = results / name
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise TableError(f"{path}: missing (run the bench that writes it)") from None
    except json.JSONDecodeError as exc:
        raise TableError(f"{path}: not JSON ({exc})") from None


def _rows(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines) + "\n"


def _summary_table(results: Path, folder: str) -> str:
    """The BD-rate table of a `lcodec bench summary` (its first table, verbatim)."""
    path = results / folder / "summary.md"
    if not path.is_file():
        raise TableError(f"{path}: missing (run `lcodec bench summary {folder}`)")
    lines = path.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("| codec | points")), None)
    if start is None:
        raise TableError(f"{path}: no BD-rate table")
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join(lines[start:end]) + "\n"


def images_summary(results: Path) -> str:
    return _summary_table(results, "images")


def video_summary(results: Path) -> str:
    return _summary_table(results, "video")


def video_carphone_summary(results: Path) -> str:
    return _summary_table(results, "video-carphone")


def per_point(results: Path) -> str:
    """Our rate against JPEG 4:2:0's at each of our points' PSNR."""
    from lcodec.bench.bd_rate import rate_differences
    from lcodec.bench.report import curve

    jpeg, ours = _load(results, "images/jpeg.json"), _load(results, "images/ours.json")
    curves = curve(jpeg, "psnr-rgb"), curve(ours, "psnr-rgb")
    if None in curves:
        raise TableError(f"{results / 'images'}: jpeg.json or ours.json has no complete psnr-rgb curve")
    (ra, qa), (rb, qb) = curves
    # curve() and rate_differences() list the points by rate: name each by its quality level in that order
    res = ours["results"]
    levels = [level for _, level in sorted(zip(res["bpp"], res["quality"]))]
    body = []
    for level, (r, q, r_jpeg, diff) in zip(levels, rate_differences(ra, qa, rb, qb)):
        body.append([f"{level:g}", f"{r:.4f}", f"{q:.2f}",
                     f"{r_jpeg:.4f}" if r_jpeg is not None else "outside JPEG's range",
                     f"{diff:+.1f} %" if diff is not None else "-"])
    return _rows(["quality", "our bpp", "PSNR (dB)", "JPEG bpp at that PSNR", "our rate vs JPEG"], body)


def ours_vs_all(results: Path) -> str:
    """BD figures of the bundled model against every reference codec benched on the images."""
    from lcodec.bench.report import BDUnavailable, bd_cell, bd_value, load_results

    codecs = load_results(results / "images")
    if "ours" not in codecs:
        raise TableError(f"{results / 'images' / 'ours.json'}: missing")
    ours = codecs.pop("ours")

    def order(name: str) -> float:  # codecs we beat most first; n/a rows at the end
        try:
            return bd_value(codecs[name], ours, "psnr-rgb")
        except BDUnavailable:
            return float("inf")

    body = [[name, codecs[name]["description"], bd_cell(codecs[name], ours, "psnr-rgb"),
             bd_cell(codecs[name], ours, "psnr-rgb", kind="quality"), bd_cell(codecs[name], ours, "ms-ssim")]
            for name in sorted(codecs, key=order)]
    return _rows(["ours against", "codec", "BD-rate PSNR-RGB", "BD-PSNR-RGB", "BD-rate MS-SSIM (dB)"], body)


#: Earlier runs shown beside the bundled one in the ceiling table (every run's file stays in bench/results/history).
CEILING_RUNS_SHOWN = 5


def _ceiling_runs(results: Path) -> tuple[dict, list[tuple[int, dict]]]:
    """The current ceiling and the earlier runs' (newest first), from studies/transform-ceiling.json and
    history/transform-ceiling-runN.json."""
    current = _load(results, "studies/transform-ceiling.json")
    earlier = []
    for path in (results / "history").glob("transform-ceiling-run*.json"):
        m = re.fullmatch(r"transform-ceiling-run(\d+)\.json", path.name)
        if m:
            earlier.append((int(m.group(1)), _load(results, f"history/{path.name}")))
    return current, sorted(earlier, key=lambda t: -t[0])


def ceiling(results: Path) -> str:
    """Coded vs unquantized PSNR per quality, for the bundled model and every earlier run kept."""
    current, earlier = _ceiling_runs(results)
    earlier = earlier[:CEILING_RUNS_SHOWN]
    # the bundled run's number is recorded in its file (`--run`); older files did not record it
    run = current.get("run") or (earlier[0][0] + 1 if earlier else 1)

    def label(k: int, d: dict) -> str:
        return f"run {k}" + (f" (N = {d['architecture']['n']})" if "architecture" in d else "")

    header = ["quality", f"{label(run, current)}: bpp", "coded dB", "unquantized dB", "gap"]
    for i, (k, d) in enumerate(earlier):
        header.append(label(k, d) + (": coded / unquantized (gap)" if i == 0 else ""))
    by_quality = [{r["quality"]: r for r in d["rows"]} for _, d in earlier]
    body = []
    for r in current["rows"]:
        row = [f"{r['quality']:g}", f"{r['bpp']:.3f}", f"{r['coded_psnr']:.2f}", f"{r['unquantized_psnr']:.2f}",
               f"{r['unquantized_psnr'] - r['coded_psnr']:.2f}"]
        for rows in by_quality:
            o = rows.get(r["quality"])
            row.append("-" if o is None else f"{o['coded_psnr']:.2f} / {o['unquantized_psnr']:.2f} "
                       f"({o['unquantized_psnr'] - o['coded_psnr']:.2f})")
        body.append(row)
    return _rows(header, body)


def p_vs_intra(results: Path) -> str:
    from lcodec.bench.video_ptest import ptest_report

    data = _load(results, "video/p-vs-intra.json")
    return ptest_report(data["rows"], data.get("bd_rate_low_delay_vs_all_intra", {}))


def video_speed(results: Path) -> str:
    body = []
    for r in _load(results, "video/speed.json")["rows"]:
        where = "" if r["device"] == "cpu" else f" ({r['device']})"
        body.append([r["clip"] + where, f"{r['width']}x{r['height']}", f"{r['encode_fps']:.2g} frames/s",
                     f"{r['decode_fps']:.2g} frames/s"])
    return _rows(["clip", "size", "encode", "decode"], body)


def speed(results: Path) -> str:
    data = _load(results, "speed/speed.json")
    body = []
    for t in data["times"]:
        cpu = t["device"] == "cpu"
        where = "CPU" if cpu else f"GPU ({t['device']})"
        what = (f"encode one {', '.join(t['sizes'])} image, {where}, {t['threads']} threads "
                f"(median of {t['repeat']} x {t['images']} eval images, q{t['quality']:g})")
        body.append([what, f"{t['encode_s']:.3f} s", SPEED_TARGETS["encode"] if cpu else ""])
        body.append(["decode the same", f"{t['decode_s']:.3f} s", SPEED_TARGETS["decode"] if cpu else ""])
    c = data["coder"]
    body.append([f"range coder, {c['symbols'] / 1e6:g} M symbols over the {c['tables']} Gaussian tables "
                 f"(1 in {c['escape_every']:,} escaped)",
                 f"{c['encode_msym_s']} M symbols/s encode, {c['decode_msym_s']} M symbols/s decode",
                 SPEED_TARGETS["coder"]])
    return _rows(["what", "measured", "target"], body)


def rate_gap(results: Path) -> str:
    body = [[f"{r['quality']:g}", f"{r['real_bpp']:.4f}", f"{r['estimated_bpp']:.4f}", f"{r['gap_percent']:+.2f} %",
             f"{r['continuous_estimate_bpp']:.4f}", f"{r['gap_vs_continuous_percent']:+.2f} %",
             f"{r['container_bytes_per_file']:.1f}", f"{r['streams_gap_percent']:+.2f} %"]
            for r in _load(results, "speed/speed.json")["rate_gap"]]
    return _rows(["quality", "real bpp", "estimate with the coder's table scales", "gap",
                  "estimate with continuous scales (training rate term)", "gap", "container bytes per file",
                  "range-coded streams alone vs the first estimate"], body)


def determinism(results: Path) -> str:
    data = _load(results, "robustness/determinism.json")
    s, rows = data["summary"], data["rows"]
    images = len({r["image"] for r in rows})
    qualities = ", ".join(f"q{q:g}" for q in sorted({r["quality"] for r in rows}))
    n = s["cases"]
    labels = {"version3_same_latent": "latents identical, format version 4 vs version 3",
              "torch_2_threads": "latents identical, torch float64 BLAS 1 thread vs 2 threads",
              "int64_reference": "latents identical, torch float64 BLAS vs numpy int64 (no floating point)",
              "cpu_encoded_gpu_decoded": "latents identical, encoded on the CPU, decoded on the GPU",
              "gpu_encoded_cpu_decoded": "latents identical, encoded on the GPU, decoded on the CPU"}
    body = [[labels.get(k, k), f"{v}/{n}"] for k, v in s["identical"].items()]
    if "max_pixel_diff_gpu_vs_cpu_decode" in s:
        body.append(["largest pixel difference, GPU vs CPU synthesis", str(s["max_pixel_diff_gpu_vs_cpu_decode"])])
    m = s["median_s_1_thread"]
    body += [["rate cost of exact parameters (bytes, version 3 vs float version 1)",
              f"{s['rate_cost_percent']:+.3f} %"],
             ["bytes, version 4 vs version 3 (one stream per tile, implied count and last length)",
              f"{s['version4_vs_3_percent']:+.3f} %"],
             ["median encode, 1 thread: exact / float", f"{m['exact']['encode']:.3f} s / {m['float']['encode']:.3f} s"],
             ["median latent decode (entropy decoding, no synthesis), 1 thread: exact / float",
              f"{m['exact']['latent_decode']:.3f} s / {m['float']['latent_decode']:.3f} s"]]
    where = "CPU and GPU" if s.get("cuda") else "CPU"
    return _rows([f"measured on the {images} evaluation images x {qualities} ({n} files), {where}", "result"], body)


def huge_image(results: Path) -> str:
    d = _load(results, "tiling/huge-image.json")
    head = f"{d['size']}, q{d['quality']:g}, bundled model, format version {d['format_version']}"
    enc, dec = d["encode"], d["decode"]
    return _rows([head, "wall time", "peak memory (max RSS)"], [
        [f"`lcodec encode` (PNG in, {d['tiles']} tiles, {d['bytes']:,} bytes, {d['bpp']:.3f} bpp)",
         f"{enc['wall_s']:.1f} s", f"{enc['max_rss_gb']:.2f} GB"],
        [f"`lcodec decode` (PNG out, {d['psnr']:.2f} dB)", f"{dec['wall_s']:.1f} s", f"{dec['max_rss_gb']:.2f} GB"]])


def tiling_seams(results: Path) -> str:
    rows = _load(results, "tiling/tiling-seams.json")
    tiled = sorted({k for r in rows for k in r if k.startswith("tiles_")})
    header = ["image, quality", "untiled dB / bpp"] + [f"{k.split('_')[1]}-pixel tiles dB / bpp" for k in tiled]
    body = [[f"{r['image']}, q{r['quality']:g}", f"{r['untiled']['psnr']:.2f} / {r['untiled']['bpp']:.3f}"] +
            [f"{r[k]['psnr']:.2f} / {r[k]['bpp']:.3f}" for k in tiled] for r in rows]
    return _rows(header, body)


#: Reference codecs the effort table compares every effort with (their sweeps in images/).
EFFORT_REFERENCES = ("jxl", "heif", "vvc")


def _on_images(data: dict, images: list[str]) -> dict:
    """A codec result narrowed to `images` (its mean curve recomputed over them), for a like-for-like BD."""
    from lcodec.bench.report import mean_curve

    absent = [name for name in images if name not in data["per_image"]]
    if absent:
        raise TableError(f"{data['name']}: no result for {absent[0]}")
    items = [data["per_image"][name] for name in images]
    results = mean_curve(items, ("bpp", "psnr-rgb", "ms-ssim", "enc_s", "dec_s"), len(items[0]["bpp"]))
    return {"name": data["name"], "results": results, "per_image": {n: data["per_image"][n] for n in images}}


def _effort_runs(results: Path) -> dict[str, dict]:
    """The effort run's codec results (effort/eval/), effort 0 (`ours`) among them."""
    from lcodec.bench.report import load_results

    runs = load_results(results / "effort" / "eval")
    if "ours" not in runs:
        raise TableError(f"{results / 'effort' / 'eval' / 'ours.json'}: missing")
    return runs


def effort_levels(results: Path) -> str:
    """Every encoder effort measured on the evaluation images (effort/eval/) against effort 0 and
    reference codecs, each over the images that effort has covered so far."""
    from lcodec.bench.report import bd_cell, load_results, per_image_bd_cell
    from lcodec.codec.latent_search import EFFORT_ITERATIONS

    runs = _effort_runs(results)
    refs = load_results(results / "images")
    missing = [name for name in EFFORT_REFERENCES if name not in refs]
    if missing:
        raise TableError(f"{results / 'images'}: no {missing[0]}.json")
    base = runs["ours"]
    body = []
    for effort, steps in sorted(EFFORT_ITERATIONS.items()):
        run = runs.get("ours" if effort == 0 else f"ours-e{effort}")
        if run is None:
            continue
        shared = [n for n, item in run["per_image"].items()
                  if base["per_image"].get(n, {}).get("sha1") == item["sha1"]]
        if not shared:
            raise TableError(f"ours-e{effort}: no image shared with effort 0")
        test, zero = _on_images(run, shared), _on_images(base, shared)
        against = [bd_cell(_on_images(refs[name], shared), test, "psnr-rgb") for name in EFFORT_REFERENCES]
        if effort == 0:
            own = ["0", "0", "0"]
        else:
            own = [bd_cell(zero, test, "psnr-rgb"), bd_cell(zero, test, "psnr-rgb", kind="quality"),
                   per_image_bd_cell(zero, test, "psnr-rgb").split(" (")[0]]
        seconds = sum(test["results"]["enc_s"]) / len(test["results"]["enc_s"])
        body.append([str(effort), str(steps), f"{len(shared)}/{base['images']}", *own, *against, f"{seconds:.1f}"])
    header = ["effort", "steps", "images", "BD-rate vs effort 0", "BD-PSNR", "per-image mean"]
    header += [f"vs {name}" for name in EFFORT_REFERENCES] + ["encode s per image"]
    return _rows(header, body)


def effort_per_image(results: Path) -> str:
    """Each evaluation image's BD-rate against effort 0 at every effort measured (effort/eval/), and the
    highest effort's change of bytes and PSNR at each quality."""
    from lcodec.bench.report import BDUnavailable, bd_value
    from lcodec.codec.latent_search import EFFORT_ITERATIONS

    runs = _effort_runs(results)
    base = runs["ours"]["per_image"]
    efforts = [(e, runs[f"ours-e{e}"]["per_image"]) for e in sorted(EFFORT_ITERATIONS) if e and f"ours-e{e}" in runs]
    if not efforts:
        raise TableError(f"{results / 'effort' / 'eval'}: no ours-e* result")
    top, top_items = efforts[-1]
    names = sorted({n for _, items in efforts for n in items})
    body = []
    for name in names:
        zero = base.get(name)
        if zero is None or any(items[name]["sha1"] != zero["sha1"] for _, items in efforts if name in items):
            raise TableError(f"{name}: not the image effort 0 measured")
        row = [name.rsplit(".", 1)[0]]
        for _, items in efforts:
            try:
                row.append(f"{bd_value(zero, items[name], 'psnr-rgb'):+.2f} %" if name in items else "")
            except BDUnavailable as exc:
                row.append(f"n/a ({exc})")
        points = []
        if name in top_items:
            item = top_items[name]
            for q, size, psnr in zip(item["quality"], item["bytes"], item["psnr-rgb"]):
                i = zero["quality"].index(q)
                points.append(f"{100 * (size / zero['bytes'][i] - 1):+.1f} %, {psnr - zero['psnr-rgb'][i]:+.2f}")
        row.append(" / ".join(points))
        body.append(row)
    qualities = " / ".join(f"q{q:g}" for q in next(iter(top_items.values()))["quality"])
    header = ["image", *(f"effort {e} vs 0" for e, _ in efforts), f"effort {top}: bytes, dB ({qualities})"]
    return _rows(header, body)


TABLES: dict[str, Callable[[Path], str]] = {
    "images-summary": images_summary, "video-summary": video_summary,
    "video-carphone-summary": video_carphone_summary, "ours-vs-all": ours_vs_all, "per-point": per_point,
    "ceiling": ceiling,
    "p-vs-intra": p_vs_intra, "video-speed": video_speed, "speed": speed, "rate-gap": rate_gap,
    "determinism": determinism, "huge-image": huge_image, "tiling-seams": tiling_seams,
    "effort-levels": effort_levels, "effort-per-image": effort_per_image,
}


def render(readme: str, results: Path) -> tuple[str, list[str]]:
    """The document with every marked table rebuilt, and the names of the tables that changed."""
    changed: list[str] = []

    def replace(m: re.Match) -> str:
        name = m.group(1)
        if name not in TABLES:
            raise TableError(f"marker names an unknown table {name!r} (known: {', '.join(TABLES)})")
        text = TABLES[name](results)
        if text != m.group(2):
            changed.append(name)
        return f"<!-- table:{name} -->\n{text}<!-- /table -->"

    out = MARK.sub(replace, readme)
    opened = len(re.findall(r"<!-- table:[a-z0-9-]+ -->", readme))
    if opened != len(MARK.findall(readme)):
        raise TableError("a `<!-- table:NAME -->` marker without its `<!-- /table -->`")
    return out, changed


def documents(root: Path = ROOT) -> list[Path]:
    """The documents whose tables are generated: README.md and every docs/*.md."""
    return [root / "README.md"] + sorted((root / "docs").glob("*.md"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lcodec.bench.readme_tables", description=__doc__.split("\n")[0])
    ap.add_argument("--doc", "--readme", dest="docs", type=Path, action="append", default=None,
                    help="A document to render (repeatable; default: README.md and docs/*.md).")
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--check", action="store_true", help="Only report stale tables (exit 1 if any).")
    args = ap.parse_args(argv)
    stale, tables, rewritten = [], 0, []
    for doc in args.docs or documents():
        try:
            text = doc.read_text()
            out, changed = render(text, args.results)
        except OSError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except TableError as exc:
            print(f"error: {doc}: {exc}", file=sys.stderr)
            return 2
        tables += len(MARK.findall(text))
        stale += [f"{doc.name}: {name}" for name in changed]
        if changed and not args.check:
            rewritten.append((doc, out))
    if args.check:
        if stale:
            print(f"stale tables (run `python -m lcodec.bench.readme_tables`): {', '.join(stale)}", file=sys.stderr)
            return 1
        print(f"{tables} tables match bench/results")
        return 0
    for doc, out in rewritten:  # written only once every document rendered
        doc.write_text(out)
    print(f"updated: {', '.join(stale)}" if stale else "tables already match bench/results")
    return 0


if __name__ == "__main__":
    sys.exit(main())
