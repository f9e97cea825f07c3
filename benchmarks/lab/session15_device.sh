#!/usr/bin/env bash
# Session 15's device call (issue 26, stream-K): the GPU tests, the core's probe at the shapes stream-K should move,
# compute-sanitizer over the core's candidates (bf16, quick shapes). Logs under $OUT.
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
out=${OUT:-session15_logs}; mkdir -p "$out"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader
python3 benchmarks/lab/precompile.py 2>&1 | head -3  # NVRTC in parallel, outside the sanitizer
timeout 170 python3 -m pytest -q -m gpu -p no:cacheprovider 2>&1 | tee "$out/pytest_gpu.log" | tail -3
timeout 200 python3 benchmarks/lab/probe_core.py --budget 140 --skip fused::mma_tile \
    --shape bfloat16 32 4096 14336 --shape bfloat16 8 4096 14336 --shape bfloat16 128 4096 4096 \
    --shape bfloat16 1 8192 28672 --shape bfloat16 4096 4096 4096 --shape bfloat16 256 1024 1024 \
    > "$out/probe.log" 2>&1
tail -8 "$out/probe.log"
export CUPY_FUSED_TUNE=0
for tool in memcheck racecheck synccheck; do
    extra=; [ "$tool" = racecheck ] && extra="--racecheck-report hazard"
    timeout 60 compute-sanitizer --tool "$tool" $extra --print-limit 20 --error-exitcode 3 \
        python3 scripts/sanitize_cases.py --quick --dtypes bfloat16 --only sm90: > "$out/sanitize_$tool.log" 2>&1
    echo "$tool exit $?: $(grep -E 'sanitize_cases:' "$out/sanitize_$tool.log" | tail -1)" \
        "$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitize_$tool.log" | tail -1)"
done
