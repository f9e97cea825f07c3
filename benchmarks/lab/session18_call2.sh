#!/usr/bin/env bash
# Session 18, call 2 (main after call 1's changes and the tuning cache kept per kernel sources), in the device time
# left: the bf16 training rows on a fresh tuning cache (the saving forward's core instance measured 5.85 ms against
# cuBLASLt + sigmoid_sum's 6.7 at 16384 x 1024 x 65536 in call 1, which reused the previous tree's choice), then the
# GPU test files call 1 did not run.
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 CUPY_FUSED_CACHE_DIR=$OUT/tuning
timeout 75 python3 benchmarks/lab/training_rows.py --dtypes bfloat16 --reps 10 > "$OUT/training_bf16.log" 2>&1
echo "bf16 rows rc $?"; grep -E "fwd\+bwd  " "$OUT/training_bf16.log"
timeout 110 python3 -m pytest -q -m gpu -p no:cacheprovider -n 4 tests --ignore tests/test_gemm_core.py \
    --ignore tests/test_gpu_autograd.py > "$OUT/pytest_gpu.log" 2>&1
echo "pytest rc $?"; grep -E "passed|failed|FAILED|Error" "$OUT/pytest_gpu.log" | tail -6
