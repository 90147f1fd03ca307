"""How much of the distortion comes from the transforms and how much from quantization, per quality.

For every image and quality, three reconstructions with the bundled image model: the real codec
(encode to a file, decode), and the transforms alone, g_s(g_a(x) * gain * inverse gain) with the
latent left unquantized. The unquantized PSNR is the ceiling that no entropy model or rate can lift at
that quality: when the coded PSNR approaches it the level is limited by transform capacity, which is
what a saturating top of the RD curve means.

    python -m tools.transform_ceiling ../shared/data/eval --out bench/results/studies/transform-ceiling.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from lcodec.bench.metrics import bpp, psnr_rgb
from lcodec.bench.report import show_and_save
from lcodec.bench.run_images import list_images
from lcodec.codec import ImageCodec
from lcodec.codec.image_codec import Analysis
from lcodec.codec.image_io import read_image
from lcodec.codec.transforms import to_pixels


def unquantized(codec: ImageCodec, image: np.ndarray | Analysis, quality: float) -> np.ndarray:
    """8-bit RGB through the analysis and synthesis transforms and the gains, without quantization
    (`image` as pixels, or as the `ImageCodec.analyse` result an encode at any quality also uses)."""
    a = image if isinstance(image, Analysis) else codec.analyse(image, tile=0)
    model = codec.model
    h, w = a.prepared.rgb.shape[:2]
    q = torch.tensor([float(quality)], device=codec.device)
    with torch.no_grad():
        x_hat = model.g_s(a.y.to(codec.device) * model.gain.gain(q) * model.gain.inverse_gain(q))[0, :, :h, :w]
    return to_pixels(x_hat)


def run(folder: Path, qualities: tuple[float, ...] | None = None, limit: int | None = None,
        model: str | None = None) -> dict:
    """Mean coded bpp / PSNR and unquantized PSNR per quality (default: every level of the model)
    over the images in `folder`, and each image's own figures (the mean hides that the ceiling is
    set by a few images with sharp, high-contrast detail)."""
    codec = ImageCodec.from_model(model) if model else ImageCodec.default()
    if qualities is None:
        qualities = tuple(float(q) for q in codec.levels)
    paths = list_images(folder)[:limit] if limit else list_images(folder)
    per_q: dict[float, dict] = {q: {"bpp": [], "coded": [], "ceiling": [], "per_image": {}} for q in qualities}
    for path in paths:
        img = read_image(path).stripped()  # payload only: the figures compare codecs, not metadata
        a = codec.analyse(img)  # g_a once per image; every quality codes and decodes from it
        h, w = img.rgb.shape[:2]
        for q in qualities:
            blob, _ = codec.encode_analysis(a, q)
            out = np.asarray(codec.decode(blob).convert("RGB"))
            d = per_q[q]
            d["bpp"].append(bpp(len(blob), h, w))
            d["coded"].append(psnr_rgb(img.rgb, out))
            d["ceiling"].append(psnr_rgb(img.rgb, unquantized(codec, a, q)))
            d["per_image"][path.name] = {"bpp": round(d["bpp"][-1], 4), "coded_psnr": round(d["coded"][-1], 3),
                                         "unquantized_psnr": round(d["ceiling"][-1], 3)}
    rows = [{"quality": q, "bpp": round(float(np.mean(d["bpp"])), 4),
             "coded_psnr": round(float(np.mean(d["coded"])), 3),
             "unquantized_psnr": round(float(np.mean(d["ceiling"])), 3), "per_image": d["per_image"]}
            for q, d in per_q.items()]
    return {"images": len(paths), "weights_hash": codec.loaded.weights_hash.hex(),
            "architecture": codec.model.config.to_dict(), "rows": rows}


def markdown(result: dict) -> str:
    lines = ["| quality | bpp | coded PSNR (dB) | unquantized PSNR (dB) | gap (dB) |", "|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['quality']:g} | {r['bpp']:.3f} | {r['coded_psnr']:.2f} | {r['unquantized_psnr']:.2f} | "
                     f"{r['unquantized_psnr'] - r['coded_psnr']:.2f} |")
    return "\n".join(lines) + "\n"


def report(result: dict, out: Path | None, weights: str = "weights") -> None:
    """Print a result (header line and table) and write it as JSON to `out` if given."""
    show_and_save(f"{result['images']} images, {weights} {result['weights_hash']}, "
                  f"architecture {result['architecture']}", markdown(result), result, out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--images", type=int, default=0, help="images used (0 = all)")
    parser.add_argument("--model", default=None, help="weights file or bundled name (default: the bundled model)")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    parser.add_argument("--run", type=int, default=None, help="training run of these weights, recorded in the JSON")
    args = parser.parse_args(argv)
    result = run(args.folder, limit=args.images or None, model=args.model)
    if args.run is not None:
        result["run"] = args.run
    report(result, args.out)


if __name__ == "__main__":
    main()
