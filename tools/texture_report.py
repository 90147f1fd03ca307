"""How the top levels and the transforms' ceiling move on the most textured evaluation images.

The mean over the evaluation set hides the photos with dense texture, where the top of the curve
saturates (issue 28, item 8). For each model given, on the `--top` evaluation images with the most
detail (`tools.top_end.detail`): coded bpp / PSNR and the unquantized PSNR at the top qualities, and,
from bench JSONs of real files where given, each image's BD-rate against JPEG.

    python -m tools.texture_report ../shared/data/eval --model default --model ../runs/ema.lcw \
        --bench bench/results/images/ours.json --bench ../runs/accept/ours.json --out X.json
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from lcodec.bench.report import BDUnavailable, bd_value, load_result, show_and_save
from lcodec.bench.run_images import list_images, read_rgb

from tools.top_end import detail
from tools.transform_ceiling import run as ceiling_run

JPEG = Path(__file__).resolve().parents[1] / "bench" / "results" / "images" / "jpeg.json"


def most_textured(folder: Path, top: int) -> list[tuple[str, float]]:
    """The `top` images of `folder` with the highest detail, as (name, detail), highest first."""
    scored = [(p.name, round(detail(read_rgb(p)), 2)) for p in list_images(folder)]
    return sorted(scored, key=lambda s: -s[1])[:top]


def image_bd(anchor: dict, test: dict, name: str) -> float | None:
    """One image's BD-rate (%) of bench result `test` against `anchor` (None where there is none)."""
    a, t = anchor["per_image"].get(name), test["per_image"].get(name)
    if a is None or t is None:
        return None
    try:
        return round(bd_value(a, t, "psnr-rgb"), 2)
    except BDUnavailable:
        return None


def run(folder: Path, models: list[str], benches: list[Path], qualities: tuple[float, ...], top: int) -> dict:
    images = most_textured(folder, top)
    result: dict = {"images": [{"image": n, "detail": d} for n, d in images], "qualities": list(qualities),
                    "models": []}
    jpeg = load_result(JPEG) if benches else None
    with tempfile.TemporaryDirectory() as tmp:
        for name, _ in images:
            (Path(tmp) / name).symlink_to((folder / name).resolve())
        for i, model in enumerate(models):
            c = ceiling_run(Path(tmp), qualities=qualities, model=model)
            entry = {"model": model, "weights_hash": c["weights_hash"],
                     "levels": {n: [dict(quality=r["quality"], **r["per_image"][n]) for r in c["rows"]]
                                for n, _ in images}}
            if i < len(benches):
                test = load_result(benches[i])
                entry["bd_vs_jpeg"] = {n: image_bd(jpeg, test, n) for n, _ in images}
            result["models"].append(entry)
    return result


def markdown(result: dict) -> str:
    lines = ["| image (detail) | model | " + " | ".join(f"q{q:g} bpp, dB (unquantized)" for q in result["qualities"])
             + " | BD vs JPEG |", "|---|---|" + "---|" * (len(result["qualities"]) + 1)]
    for im in result["images"]:
        n = im["image"]
        for m in result["models"]:
            cells = [f"{lv['bpp']:.3f}, {lv['coded_psnr']:.2f} ({lv['unquantized_psnr']:.2f})" for lv in m["levels"][n]]
            bd = m.get("bd_vs_jpeg", {}).get(n)
            lines.append(f"| {n} ({im['detail']:g}) | {m['weights_hash'][:8]} | " + " | ".join(cells)
                         + f" | {'' if bd is None else f'{bd:+.2f} %'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--model", action="append", default=None, help="weights file or bundled name (repeatable)")
    parser.add_argument("--bench", action="append", type=Path, default=[],
                        help="bench JSON of real files of the model at the same position (repeatable)")
    parser.add_argument("--qualities", default="8,10,12")
    parser.add_argument("--top", type=int, default=3, help="how many of the most textured images")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    qualities = tuple(float(q) for q in args.qualities.split(","))
    result = run(args.folder, args.model or ["default"], args.bench, qualities, args.top)
    show_and_save(f"{len(result['images'])} most textured images of {args.folder}", markdown(result), result,
                  args.out)


if __name__ == "__main__":
    main()
