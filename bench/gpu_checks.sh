#!/usr/bin/env bash
# The GPU checks of issues 5 and 6 in one prepared call (about 8 minutes on one H100/H200), for a
# session whose task is lent a device machine. Everything heavy is prepared on the CPU first:
#
#   echo /.whl/ >> .git/info/exclude; echo /.gpu-data/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       -d .whl constriction==$(python3 -c "import importlib.metadata as m; print(m.version('constriction'))")
#   mkdir -p .gpu-data && cp -r ../shared/data/eval .gpu-data/eval
#   lcodec pack-patches --data ../shared/data/train -o .gpu-data/train.lcp --max-mb 22
#
# then device `run` with carry [".whl", ".gpu-data"] and the command `bash bench/gpu_checks.sh`
# (tracked files ~35 MB with the N = 160 weights + pack 22 MiB + eval 5 MB stays under the 64 MiB a call
# may carry; `git ls-files -z | xargs -0 du -cb` gives the first figure).
# TRAIN_MINUTES (default 4) sets the training window; set TRAIN_STEPS to about the measured steps/s
# times that window so the cosine schedule ends inside it. What comes back under $OUT (at most 8 files,
# 16 MB each): determinism results, train-speed JSON, the run's log and exported weights in two parts
# (the .pt checkpoint with optimizer state is too large to come back; continue from the exported weights).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-checks}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
DATA=${GPU_DATA:-.gpu-data}
{
    nvidia-smi -L 2>/dev/null
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
    # 1. cross-device determinism: GPU-encoded files decoded on the CPU and the reverse (issue 5)
    python3 -m pytest -q -p no:cacheprovider tests/test_determinism.py
    timeout 150 python3 -m cli.main bench determinism "$DATA/eval" --images 2 --qualities 4 --out "$OUT/determinism-gpu.json"
    # 2. training throughput: random pixels, then the pack, eager and compiled (issue 6)
    timeout 150 python3 -m cli.main bench train-speed --batch 8,16,32 --steps 15 --out "$OUT/train-speed-gpu.json"
    timeout 120 python3 -m cli.main bench train-speed --batch 16 --steps 15 --compile --pack "$DATA/train.lcp" \
        --out "$OUT/train-speed-gpu-compiled.json"
    # 3. continue the bundled model, then export weights small enough to come back
    python3 -m cli.main train --data "$DATA/train.lcp" --val "$DATA/eval" --out /tmp/run --init codec/weights/default.lcw \
        --batch 16 --patch 256 --lr 1e-4 --min-lr 5e-6 --warmup 100 --val-every 1000 --val-images 2 \
        --ckpt-minutes 2 --time-limit "${TRAIN_MINUTES:-4}" --steps "${TRAIN_STEPS:-20000}"
    cp /tmp/run/log.jsonl "$OUT/train-log.jsonl"
    # the N = 160 weights (17.4 MB) exceed the 16 MB a returned file may have: they come back in parts,
    # joined here with `cat candidate.lcw.part* > candidate.lcw` (the weights hash checks the join)
    python3 -m cli.main export /tmp/run/last.pt -o /tmp/candidate.lcw && \
        split -b 15000000 -d /tmp/candidate.lcw "$OUT/candidate.lcw.part"
} 2>&1 | tee "$OUT/gpu-checks.log"
