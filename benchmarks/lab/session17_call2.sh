#!/usr/bin/env bash
# Session 17, second device call: the half training rows with half inputs saving sigmoid' by default, the whole GPU
# suite (4 workers; the trust tests alone), examples/train.py in bf16, the float32 training rows (not measured since
# session 16 added rows).
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
out=$OUT
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader
timeout 100 python3 benchmarks/lab/training_rows.py --dtypes bfloat16,float16 --reps 10 \
    --json "$out/training_half.json" > "$out/training_half.log" 2>&1; echo "half rows rc $?"
timeout 45 python3 examples/train.py --device cuda --dtype bfloat16 --steps 300 > "$out/train_bf16.log" 2>&1
echo "train.py rc $?"; tail -16 "$out/train_bf16.log"
timeout 200 python3 -m pytest -q -m gpu -p no:cacheprovider -n 4 --deselect tests/test_gpu_trust.py \
    > "$out/pytest_gpu.log" 2>&1; echo "pytest -n 4 rc $?"; tail -6 "$out/pytest_gpu.log"
timeout 40 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu_trust.py > "$out/pytest_trust.log" 2>&1
echo "trust rc $?"; tail -4 "$out/pytest_trust.log"
timeout 100 python3 benchmarks/lab/training_rows.py --dtypes float32 --reps 10 \
    --json "$out/training_fp32.json" > "$out/training_fp32.log" 2>&1; echo "fp32 rows rc $?"
grep -E "fwd\+bwd  " "$out/training_half.log" "$out/training_fp32.log" | cut -d: -f2-
