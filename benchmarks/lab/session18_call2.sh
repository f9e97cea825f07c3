#!/usr/bin/env bash
# Session 18, call 2 (branch issue27/save-epilogue with the tuning cache kept per kernel sources): the whole GPU
# suite, then the bf16 and fp16 training rows with a fresh tuning cache (the saving forward's core instance measured
# 5.85 ms against cuBLAS + sigmoid_sum's 6.7 at 16384 x 1024 x 65536 in call 1, which reused the previous tree's
# choice).
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 CUPY_FUSED_CACHE_DIR=$OUT/tuning
timeout 150 python3 -m pytest -q -m gpu -p no:cacheprovider -n 4 tests > "$OUT/pytest_gpu.log" 2>&1
echo "pytest rc $?"; grep -E "passed|failed|FAILED|Error" "$OUT/pytest_gpu.log" | tail -6
for dtype in bfloat16 float16; do
    timeout 80 python3 benchmarks/lab/training_rows.py --dtypes $dtype --reps 10 --json "$OUT/training_$dtype.json" \
        > "$OUT/training_$dtype.log" 2>&1; echo "$dtype rows rc $?"
    grep -E "fwd\+bwd  " "$OUT/training_$dtype.log"
done
