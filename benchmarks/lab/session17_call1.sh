#!/usr/bin/env bash
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
out=$OUT
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader
timeout 170 python3 -m pytest -q -m gpu -p no:cacheprovider -x tests/test_gpu_autograd.py tests/test_gpu_kernels.py > "$out/pytest_saved.log" 2>&1; echo "pytest rc $?"; tail -4 "$out/pytest_saved.log"
timeout 100 python3 benchmarks/lab/training_rows.py --dtypes bfloat16,float16 --reps 10 --json "$out/training_half_after.json" > "$out/training_half_after.log" 2>&1; echo "after rc $?"
PYTHONPATH=$PWD/.before timeout 60 python3 benchmarks/lab/training_rows.py --dtypes bfloat16 --reps 10 --json "$out/training_bf16_before.json" > "$out/training_bf16_before.log" 2>&1; echo "before rc $?"
export CUPY_FUSED_TUNE=0
timeout 80 compute-sanitizer --tool memcheck --print-limit 20 --error-exitcode 3 python3 scripts/sanitize_cases.py --quick --dtypes float16 > "$out/sanitize_memcheck.log" 2>&1
echo "memcheck exit $?: $(grep -E 'sanitize_cases:' "$out/sanitize_memcheck.log" | tail -1) $(grep -E 'ERROR SUMMARY' "$out/sanitize_memcheck.log" | tail -1)"
unset CUPY_FUSED_TUNE
timeout 90 python3 benchmarks/lab/profile_training_host.py 1024 4096 4096 --dtype bfloat16 > "$out/profile_host_bf16.log" 2>&1; echo "profile rc $?"
echo "=== after"; grep -E "fwd\+bwd" "$out/training_half_after.log"
echo "=== before"; grep -E "fwd\+bwd" "$out/training_bf16_before.log"
echo "=== profile"; tail -11 "$out/profile_host_bf16.log"
