"""Result files: one CompressAI-style JSON per codec, a markdown summary with BD-rates, RD plots.

The summary and plots are always rebuilt from every codec JSON in the output folder, so adding a
codec (e.g. ``ours.json``) and rerunning updates the table.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
from pathlib import Path
from typing import Any

from .bd_rate import InsufficientOverlap, bd_psnr, bd_rate
from .errors import BenchError
from .metrics import ms_ssim_db

REQUIRED_RESULTS = ("quality", "bpp", "psnr-rgb", "enc_s", "dec_s")
SUMMARY_NAME = "summary.md"
NON_CODEC_FILES = {"summary.json", "speed.json", "machine.json"}


def machine_description() -> str:
    """One line naming the machine results came from (CPU model, cores, OS, Python)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{cpu}, {cores} cores available, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def software_versions() -> dict[str, str]:
    """Versions of the libraries that produced the numbers (for reproducibility; absent ones skipped)."""
    from importlib import metadata

    out: dict[str, str] = {}
    for dist in ("Pillow", "pillow-heif", "pillow-jxl-plugin", "imageio-ffmpeg", "av", "pytorch-msssim", "torch",
                 "numpy", "scipy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    try:
        import pillow_heif

        out["libheif"] = str(pillow_heif.libheif_version())
    except Exception:  # noqa: BLE001 - optional information only
        pass
    try:
        import subprocess

        import imageio_ffmpeg

        first = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-version"], capture_output=True,
                               text=True).stdout.splitlines()
        out["ffmpeg (imageio-ffmpeg)"] = first[0].split(" Copyright")[0] if first else "?"
    except Exception:  # noqa: BLE001 - optional information only
        pass
    return out


def mean(values: list[float | None]) -> float | None:
    """Mean of a list, None if any value is missing (e.g. MS-SSIM on too small an image)."""
    if not values or any(v is None for v in values):
        return None
    return float(sum(values) / len(values))


def mean_curve(items: list[dict[str, Any]], metric_keys: tuple[str, ...], points: int) -> dict[str, list]:
    """The mean over items (images) of each metric at each of the `points` settings (CompressAI style)."""
    return {key: [mean([item[key][i] for item in items]) for i in range(points)] for key in metric_keys}


def build_result(name: str, description: str, settings: dict[str, Any], values: list[float],
                 per_item: dict[str, dict[str, Any]], metric_keys: tuple[str, ...],
                 per_item_key: str = "per_image", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A codec's JSON: the curve is the mean over items (images) of each metric at each setting."""
    results: dict[str, list] = {"quality": list(values), **mean_curve(list(per_item.values()), metric_keys,
                                                                      len(values))}
    data = {"name": name, "description": description, "settings": settings, "results": results,
            per_item_key: per_item, "machine": machine_description(), "software": software_versions(),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if extra:
        data.update(extra)
    return data


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically (temp file then rename), so an interrupted run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def show_and_save(header: str, table: str, result: dict[str, Any], out: Path | None) -> None:
    """Print a diagnostic bench's header line and table, and write its result as JSON to `out` if given."""
    print(header)
    print(table, end="")
    if out:
        write_json(out, result)


def validate_result(data: Any, source: str = "result") -> dict[str, Any]:
    """Check a codec JSON has the expected shape; BenchError with a one-line reason otherwise."""
    if not isinstance(data, dict):
        raise BenchError(f"{source}: not a JSON object")
    for key in ("name", "results"):
        if key not in data:
            raise BenchError(f"{source}: missing key {key!r}")
    res = data["results"]
    if not isinstance(res, dict):
        raise BenchError(f"{source}: 'results' is not an object")
    for key in REQUIRED_RESULTS:
        if key not in res or not isinstance(res[key], list):
            raise BenchError(f"{source}: results lack the list {key!r}")
    n = len(res["bpp"])
    for key, vals in res.items():
        if isinstance(vals, list) and len(vals) != n:
            raise BenchError(f"{source}: results[{key!r}] has {len(vals)} values, bpp has {n}")
    if n == 0:
        raise BenchError(f"{source}: no points")
    return data


def load_result(path: Path) -> dict[str, Any]:
    """Read and validate one codec JSON (BenchError if missing, not JSON, or the wrong shape)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise BenchError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise BenchError(f"{path}: not valid JSON (not UTF-8 text)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return validate_result(data, str(path))


def earlier_measurements(out: Path, name: str, sig: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """What an earlier or interrupted run with the same settings signature left in `out`: its final
    result `name.json` (None when absent, unreadable or of other settings) and the records of its partial
    points file `.name.points.jsonl` (lines cut by an interruption are skipped)."""
    final = out / f"{name}.json"
    data = None
    if final.exists():
        try:
            data = load_result(final)
        except BenchError:
            data = None
    if data is not None and data.get("signature") != sig:
        data = None
    records = []
    partial = out / f".{name}.points.jsonl"
    if partial.exists():
        for line in partial.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if rec.get("signature") == sig:
                records.append(rec)
    return data, records


def load_results(folder: Path) -> dict[str, dict[str, Any]]:
    """Every codec JSON in `folder` (files that are not codec results, e.g. speed.json, are ignored)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(folder).glob("*.json")):
        if path.name in NON_CODEC_FILES:
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise BenchError(f"{path}: not a readable JSON file ({exc})") from None
        if not isinstance(data, dict) or "results" not in data:
            continue
        validate_result(data, str(path))
        out[data["name"]] = data
    return out


def curve(data: dict[str, Any], metric: str) -> tuple[list[float], list[float]] | None:
    """(bpp, quality) of a codec for `metric`; MS-SSIM is put on its dB scale. None if unavailable.

    `data` is a codec JSON (its mean curve) or one of its per-image entries.
    """
    res = data.get("results", data)
    if metric not in res or "bpp" not in res:
        return None
    pts = [(b, q) for b, q in zip(res["bpp"], res[metric]) if b is not None and q is not None]
    if len(pts) != len(res["bpp"]) or not pts:
        return None
    if metric == "ms-ssim":
        pts = [(b, ms_ssim_db(q)) for b, q in pts]
    pts.sort()
    return [p[0] for p in pts], [p[1] for p in pts]


class BDUnavailable(ValueError):
    """A BD figure cannot be computed; the message says why (shown as 'n/a (...)')."""


def bd_value(anchor: dict, test: dict, metric: str, method: str = "pchip", kind: str = "rate") -> float:
    """BD-rate (%) or BD-quality (dB) of `test` vs `anchor`; BDUnavailable says why there is none."""
    a, t = curve(anchor, metric), curve(test, metric)
    if a is None or t is None:
        raise BDUnavailable("no data")
    try:
        if kind == "rate":
            return bd_rate(a[0], a[1], t[0], t[1], method=method)
        return bd_psnr(a[0], a[1], t[0], t[1], method=method)
    except InsufficientOverlap:
        raise BDUnavailable("too little overlap") from None
    except ValueError as exc:
        raise BDUnavailable(str(exc)) from None


def bd_cell(anchor: dict, test: dict, metric: str, method: str = "pchip", kind: str = "rate") -> str:
    """A table cell: BD-rate (%) or BD-quality (dB) of `test` vs `anchor`, or why it is n/a."""
    try:
        value = bd_value(anchor, test, metric, method, kind)
    except BDUnavailable as exc:
        return f"n/a ({exc})"
    return f"{value:+.1f} %" if kind == "rate" else f"{value:+.2f} dB"


def per_image_bd_cell(anchor: dict, test: dict, metric: str, method: str = "pchip") -> str:
    """Mean over images of the per-image BD-rates (images where the curves overlap), as 'x % (k/n)'.

    The mean curve mixes images coded at very different rates (fixed-quality codecs give smooth
    images few bits, fixed-rate ones do not); the per-image mean avoids that bias.
    """
    pa, pt = anchor.get("per_image"), test.get("per_image")
    if not isinstance(pa, dict) or not isinstance(pt, dict):
        return "-"
    values, shared = [], 0
    for image, item in pa.items():
        other = pt.get(image)
        if not isinstance(other, dict) or other.get("sha1") != item.get("sha1"):
            continue
        shared += 1
        try:
            values.append(bd_value(item, other, metric, method))
        except BDUnavailable:  # no curve or too little overlap: that image is left out, and counted as such
            continue
    if not values:
        return "n/a (no overlap)" if shared else "n/a (no shared images)"
    return f"{sum(values) / len(values):+.1f} % ({len(values)}/{shared})"


def choose_anchor(results: dict[str, dict], preferred: tuple[str, ...], anchor: str | None) -> str | None:
    """The anchor codec: the one asked for, else the first of `preferred` present, else the first."""
    if anchor:
        if anchor not in results:
            raise BenchError(f"anchor {anchor!r} has no JSON here (have: {', '.join(results) or 'none'})")
        return anchor
    for name in preferred:
        if name in results:
            return name
    return next(iter(results), None)


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def _machines_line(results: dict[str, dict]) -> str:
    """Which machine each codec's figures (times above all) come from; one line if they share one."""
    by_machine: dict[str, list[str]] = {}
    for name, r in results.items():
        by_machine.setdefault(r.get("machine") or machine_description(), []).append(name)
    if len(by_machine) == 1:
        return f"Machine: {next(iter(by_machine))}."
    parts = [f"{m} ({', '.join(names)})" for m, names in by_machine.items()]
    return ("Machines (the codecs were run at different times; compare times within one machine): "
            + "; ".join(parts) + ".")


def write_summary(folder: Path, title: str, metrics: tuple[str, ...], preferred_anchors: tuple[str, ...],
                  anchor: str | None = None, method: str = "pchip", note: str = "") -> Path:
    """Rebuild summary.md and the RD plots in `folder` from every codec JSON found there."""
    folder = Path(folder)
    results = load_results(folder)
    if not results:
        raise BenchError(f"no codec results in {folder}")
    anchor_name = choose_anchor(results, preferred_anchors, anchor)
    ref = results[anchor_name]
    labels = {"psnr-rgb": "PSNR-RGB", "psnr-yuv": "PSNR-YUV 6:1:1", "ms-ssim": "MS-SSIM (dB)"}
    lines = [f"# {title}", ""]
    if note:
        lines += [note, ""]
    lines += [_machines_line(results), "",
              f"Anchor: **{anchor_name}**. BD-rate: average bit-rate difference at equal quality "
              f"(negative = fewer bits than the anchor); BD-quality: average quality difference at equal "
              f"rate. Interpolation: {method.upper()} over the overlapping range; MS-SSIM on the dB scale "
              f"-10 log10(1 - MS-SSIM). Rate is the real file size.", ""]
    per_image = "per_image" in ref
    head = ["codec", "points", "bpp range"]
    for m in metrics:
        head.append(f"BD-rate {labels.get(m, m)}")
    if per_image:
        head.append(f"BD-rate {labels.get(metrics[0], metrics[0])}, per-image mean (images)")
    head.append(f"BD-{labels.get(metrics[0], metrics[0])}")
    head += ["enc s", "dec s"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for name, data in sorted(results.items(), key=lambda kv: (kv[0] != anchor_name, kv[0])):
        res = data["results"]
        bpps = [b for b in res["bpp"] if b is not None]
        row = [name, str(len(res["bpp"])), f"{min(bpps):.3f}-{max(bpps):.3f}"]
        rate_cells = [bd_cell(ref, data, m, method, "rate") for m in metrics]
        quality_cell = bd_cell(ref, data, metrics[0], method, "quality")
        # the two figures of the first metric stand or fall together: one alone reads as a result
        if rate_cells[0].startswith("n/a") != quality_cell.startswith("n/a"):
            if quality_cell.startswith("n/a"):
                rate_cells[0] = f"n/a (BD-quality: {quality_cell[5:]}"
            else:
                quality_cell = f"n/a (BD-rate: {rate_cells[0][5:]}"
        for cell in rate_cells:
            row.append("anchor" if name == anchor_name else cell)
        if per_image:
            row.append("anchor" if name == anchor_name else per_image_bd_cell(ref, data, metrics[0], method))
        row.append("anchor" if name == anchor_name else quality_cell)
        row.append(_fmt(_avg(res["enc_s"]), ".3f"))
        row.append(_fmt(_avg(res["dec_s"]), ".3f"))
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "BD-rate columns compare the mean curves (mean bpp and mean quality over images at each "
              "setting, CompressAI style)" + ("; the per-image column averages the BD-rates of single images "
                                              "(those where both curves overlap enough)" if per_image else "")
              + ". n/a: the curves overlap on less than 10 % of the shorter range (a BD-rate and BD-quality "
              "pair is shown only when both can be computed).",
              "enc s / dec s: mean wall time per " + ("image" if per_image else "clip")
              + " over the sweep (one thread; external encoders include process start-up).", ""]
    lines += ["| codec | description | swept |", "|---|---|---|"]
    for name, data in sorted(results.items()):
        s = data.get("settings", {})
        lines.append(f"| {name} | {data.get('description', '')} | {s.get('swept', 'quality')}: "
                     f"{', '.join(str(v) for v in data['results']['quality'])} |")
    plots = plot_curves(folder, results, metrics)
    lines += ["", "Plots show points up to 2.5 bpp; the JSON files hold all of them.", ""]
    lines += [f"![{p.stem}]({p.name})" for p in plots] + [""]
    path = folder / SUMMARY_NAME
    path.write_text("\n".join(lines))
    return path


def _avg(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def plot_curves(folder: Path, results: dict[str, dict], metrics: tuple[str, ...], max_bpp: float = 2.5) -> list[Path]:
    """One PNG per metric: quality against bpp for every codec (matplotlib, Agg backend).

    Points above `max_bpp` are left out of the plot (not of the JSON) so the useful range stays readable.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {"psnr-rgb": ("PSNR-RGB (dB)", "rd-psnr.png"), "psnr-yuv": ("PSNR-YUV 6:1:1 (dB)", "rd-psnr-yuv.png"),
             "ms-ssim": ("MS-SSIM (dB)", "rd-msssim.png")}
    out = []
    for metric in metrics:
        ylabel, fname = names.get(metric, (metric, f"rd-{metric}.png"))
        fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
        drawn = False
        for name, data in sorted(results.items()):
            c = curve(data, metric)
            if c is None:
                continue
            c = ([b for b in c[0] if b <= max_bpp], [q for b, q in zip(*c) if b <= max_bpp])
            if not c[0]:
                continue
            style = {"linewidth": 2.5, "color": "black"} if name == "ours" else {"linewidth": 1.3}
            ax.plot(c[0], c[1], marker="o", markersize=3, label=name, **style)
            drawn = True
        if not drawn:
            plt.close(fig)
            continue
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = Path(folder) / fname
        fig.savefig(path)
        plt.close(fig)
        out.append(path)
    return out
