#!/usr/bin/env bash
# For the next device call (branch issue27/saved-half, not yet run on a GPU): the tests that cover the saved
# sigmoid' in x's dtype (every saving forward instance, the backward from it), the training section's half rows
# (memory and error against session 16's float32 s'), compute-sanitizer over the backward and the saving instances
# (float16), then the rest of the GPU tests. Logs under $OUT.
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
out=${OUT:-session17_logs}; mkdir -p "$out"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader
timeout 200 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu_autograd.py tests/test_gpu_kernels.py 2>&1 \
    | tee "$out/pytest_saved.log" | tail -4
timeout 110 python3 benchmarks/lab/training_rows.py --dtypes bfloat16,float16 --reps 12 \
    --json "$out/training_half.json" > "$out/training_half.log" 2>&1
grep -E "fwd\+bwd|ours|torch" "$out/training_half.log" | tail -22
export CUPY_FUSED_TUNE=0
for tool in memcheck racecheck; do
    extra=; [ "$tool" = racecheck ] && extra="--racecheck-report hazard"
    timeout 90 compute-sanitizer --tool "$tool" $extra --print-limit 20 --error-exitcode 3 \
        python3 scripts/sanitize_cases.py --quick --dtypes float16 > "$out/sanitize_$tool.log" 2>&1
    echo "$tool exit $?: $(grep -E 'sanitize_cases:' "$out/sanitize_$tool.log" | tail -1)" \
        "$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitize_$tool.log" | tail -1)"
done
unset CUPY_FUSED_TUNE
# where the host-bound bf16 step spends its time (session 16: 0.59 ms from Python against torch's 0.26)
timeout 120 python3 benchmarks/lab/profile_training_host.py 1024 4096 4096 --dtype bfloat16 \
    > "$out/profile_host_bf16.log" 2>&1
tail -12 "$out/profile_host_bf16.log"
timeout 150 python3 -m pytest -q -m gpu -p no:cacheprovider --deselect tests/test_gpu_autograd.py \
    --deselect tests/test_gpu_kernels.py 2>&1 | tee "$out/pytest_gpu_rest.log" | tail -4
