"""What added quality levels give before any training: the starting point of a `--arch levels=N` run.

The bundled model (or `--model`, a weights file) is widened to `--levels` levels (codec.training.widen:
the old levels keep their gains, the new ones continue each channel's log-gain step) and written as a
weights file; then
tools.transform_ceiling codes the images at every level from `--from` up (real files) and runs the
transforms alone. The rows show how far the extrapolated levels reach in rate, and how close they sit
to the transform ceiling, i.e. what training the new levels has to add. The ladder has 12 rungs, so a
model that already has 12 levels (the bundled one since run 14) cannot be widened further.

    python -m tools.level_extension ../shared/data/eval --model eight.lcw --levels 12 --out ext.json
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from lcodec.codec.image_model import ImageModel
from lcodec.codec.registry import (bundled_paths, config_of, load_with_tables, parse_weights, resolve_weights,
                                   save_weights, weights_hash)
from lcodec.codec.training.widen import widen_state

from tools.transform_ceiling import report
from tools.transform_ceiling import run as ceiling_run


def widened_weights(levels: int, out: Path, source: str = "default") -> str:
    """Write the model `source` (a bundled name or a weights file) widened to `levels` quality levels
    to `out`; returns the hash (hex) of the weights it was widened from (also stored in the new file's
    info). ValueError if the source has `levels` or more already."""
    path = resolve_weights(source, bundled_paths(), "model")
    data = path.read_bytes()
    state, meta = parse_weights(data, str(path))
    config = config_of(meta)
    if config.levels >= levels:
        raise ValueError(f"{source} has {config.levels} levels already; nothing to add up to {levels}")
    model = ImageModel(config.updated(f"levels={levels}"))
    learned = {k: v.float() for k, v in state.items() if not k.endswith("cdf_table")}
    full = widen_state(model, learned)
    # the CDF tables depend on the prior and the scale table, not on the gains: reuse them unchanged
    full.update({k: v for k, v in state.items() if k.endswith("cdf_table")})
    load_with_tables(model, full)
    origin = weights_hash(data).hex()
    save_weights(out, model, f"{meta.get('name', 'model')}-levels{levels}", extra={"widened_from": origin})
    return origin


def run(folder: Path, levels: int, first: int, limit: int | None = None, model: str = "default") -> dict:
    """transform_ceiling rows for qualities first..levels of the widened model."""
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / f"levels{levels}.lcw"
        source = widened_weights(levels, weights, model)
        result = ceiling_run(folder, tuple(float(q) for q in range(first, levels + 1)), limit, str(weights))
    return {**result, "widened_from": source}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--levels", type=int, default=12, help="levels of the widened model (at most 12)")
    parser.add_argument("--model", default="default", help="bundled name or weights file to widen")
    parser.add_argument("--from", dest="first", type=int, default=7, help="lowest quality measured")
    parser.add_argument("--images", type=int, default=0, help="images used (0 = all)")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = parser.parse_args(argv)
    try:
        result = run(args.folder, args.levels, args.first, args.images or None, args.model)
    except ValueError as exc:  # a model that has the levels already: a usage error, one line
        parser.error(str(exc))
    report(result, args.out, "widened weights")


if __name__ == "__main__":
    main()
