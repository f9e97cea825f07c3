#!/usr/bin/env bash
# Session 16's device call (scarce device time: the most important first, each step bounded): the backward's GPU
# tests with the half backward on half tensor cores (issue 27), the training section's half rows after and before
# (.before: main's package at a10128e with this tree's bench), compute-sanitizer over the backward's instances, then
# the rest of the GPU tests. Logs under $OUT.
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
out=${OUT:-session16_logs}; mkdir -p "$out"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader
timeout 100 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu_autograd.py 2>&1 \
    | tee "$out/pytest_autograd.log" | tail -4
timeout 110 python3 benchmarks/lab/training_rows.py --dtypes bfloat16,float16 --reps 12 \
    --json "$out/training_half_after.json" > "$out/training_half_after.log" 2>&1
grep -E "fwd\+bwd|ours|torch" "$out/training_half_after.log" | tail -22
(export PYTHONPATH=$PWD/.before; timeout 80 python3 benchmarks/lab/training_rows.py --dtypes bfloat16 --reps 12 \
    --json "$out/training_bf16_before.json" > "$out/training_bf16_before.log" 2>&1)
grep -E "fwd\+bwd|ours|torch" "$out/training_bf16_before.log" | tail -12
export CUPY_FUSED_TUNE=0
for tool in memcheck racecheck; do
    extra=; [ "$tool" = racecheck ] && extra="--racecheck-report hazard"
    timeout 40 compute-sanitizer --tool "$tool" $extra --print-limit 20 --error-exitcode 3 \
        python3 scripts/sanitize_cases.py --backward-only --dtypes float16 > "$out/sanitize_bw_$tool.log" 2>&1
    echo "$tool exit $?: $(grep -E 'sanitize_cases:' "$out/sanitize_bw_$tool.log" | tail -1)" \
        "$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitize_bw_$tool.log" | tail -1)"
done
unset CUPY_FUSED_TUNE
timeout 200 python3 -m pytest -q -m gpu -p no:cacheprovider --deselect tests/test_gpu_autograd.py 2>&1 \
    | tee "$out/pytest_gpu_rest.log" | tail -4
