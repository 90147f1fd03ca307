"""Research studies and prepared device scripts: not part of the installed `lcodec` package.

Each study answers one question about the bundled model once (what bounds the top of the RD curve,
what added levels give before training, what a synthesis-only fine-tune buys, how huge images code)
and writes its result under `bench/results/`. They run from the repository root, with lcodec
installed (`pip install -e .`):

    python -m tools.transform_ceiling ../shared/data/eval --out bench/results/studies/transform-ceiling.json

`tools/gpu_checks.sh` is the prepared call for a session lent a GPU machine (see docs/training.md).
"""
