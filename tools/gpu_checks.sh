#!/usr/bin/env bash
# One prepared GPU call (about 9 minutes on one H100/H200; a task's device budget is 15 minutes, start-up
# included) for a session whose task is lent a device machine: the CUDA tests, training throughput by
# mode, then the image model continued with bf16 + channels_last and an EMA of its weights, whose
# exported EMA weights come back to be accepted or rejected on the CPU by the usual rule.
# Everything heavy is prepared on the CPU first:
#
#   echo /.whl/ >> .git/info/exclude; echo /.gpu-data/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       -d .whl constriction==$(python3 -c "import importlib.metadata as m; print(m.version('constriction'))")
#   mkdir -p .gpu-data && cp -r ../shared/data/eval .gpu-data/eval
#   lcodec pack-patches --data ../shared/data/train -o .gpu-data/train.lcp --max-mb 22   # all 81 photos
#   lcodec export ../runs/campaign/last.pt -o .gpu-data/init.lcw   # optional: start from the campaign's EMA
#
# then device `run` with carry [".whl", ".gpu-data"], timeout_s 600 and the command `bash tools/gpu_checks.sh`
# (tracked files ~35 MB + pack 22 MiB + eval 5 MB stays under the 64 MiB a call may carry; with init.lcw
# use --max-mb 6 for the pack; `git ls-files -z | xargs -0 du -cb` gives the first figure).
# TRAIN_MINUTES (default 6) sets the training window; the learning rate stays at 1e-4 after warm-up (the
# EMA weights are what comes back), so no schedule has to end inside the window. What comes back under
# $OUT (at most 8 files, 16 MB each): the log, train-speed JSON, the run's log and the exported EMA weights
# in two parts (join with `cat candidate.lcw.part* > candidate.lcw`; the weights hash checks the join).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-checks}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
# the device has no install of lcodec: its import names (lcodec.codec, ...) point at this tree's folders
mkdir -p /tmp/shim/lcodec
for pkg in codec entropy_models cli bench; do ln -sfn "$PWD/$pkg" "/tmp/shim/lcodec/$pkg"; done
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:/tmp/shim
else
    export PYTHONPATH=/tmp/shim
fi
DATA=${GPU_DATA:-.gpu-data}
{
    nvidia-smi -L 2>/dev/null
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
    # 1. cross-device determinism: GPU-encoded files decoded on the CPU and the reverse
    timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_determinism.py
    # 2. training throughput by mode on the pack (fp32, channels_last, bf16, both, the default + compile)
    timeout 150 python3 -m lcodec.cli.main bench train-speed --batch 16 --steps 10 --warmup 3 --pack "$DATA/train.lcp" \
        --modes fp32,channels_last,bf16+channels_last,default+compile --out "$OUT/train-speed-gpu.json"
    # 3. continue the bundled (or campaign EMA) model with an EMA, then export the EMA weights in parts
    INIT=codec/weights/default.lcw
    [ -f "$DATA/init.lcw" ] && INIT="$DATA/init.lcw"
    python3 -m lcodec.cli.main train --data "$DATA/train.lcp" --val "$DATA/eval" --out /tmp/run --init "$INIT" \
        --batch 16 --patch 256 --lr 1e-4 --min-lr 1e-4 --warmup 100 --level-weight 0.35 --ema-decay 0.999 \
        --val-every 0 --ckpt-minutes 2 --time-limit "${TRAIN_MINUTES:-6}" --steps 1000000
    cp /tmp/run/log.jsonl "$OUT/train-log.jsonl"
    # the N = 160 weights (17.4 MB) exceed the 16 MB a returned file may have: they come back in parts
    python3 -m lcodec.cli.main export /tmp/run/last.pt -o /tmp/candidate.lcw && \
        split -b 15000000 -d /tmp/candidate.lcw "$OUT/candidate.lcw.part"
} 2>&1 | tee "$OUT/gpu-checks.log"
