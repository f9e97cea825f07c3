#!/usr/bin/env bash
# For the next device call (branch issue27/sigmoid-grad-vec): bw::sigmoid_grad with 4 column groups a lane for half
# operands, before (.before: main's tree, `git archive main cupy_fused kernels | tar -x -C .before`, carried) and
# after in the same call (kernels and step times beside torch's); the saving forward's candidates; the half GPU
# tests; the bf16 training rows; the small fp32 step's host time against torch's in turn; racecheck and synccheck
# over the backward (float16).
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
out=$OUT
for shape in "16384 1024 65536" "8192 1024 8192"; do
    PYTHONPATH=$PWD/.before timeout 25 python3 benchmarks/lab/profile_step_kernels.py $shape 2>/dev/null \
        | sed 's/^/before /'
    timeout 25 python3 benchmarks/lab/profile_step_kernels.py $shape 2>/dev/null | sed 's/^/after  /'
done | tee "$out/kernels.log" | grep -E "kernels a step|sigmoid_grad|step ms"
# which plan the saving forward takes at 16384 x 1024 x 65536 bf16 and what the core's saving instances cost there
OUT=$out timeout 60 python3 benchmarks/lab/probe_core.py --saves --shape bfloat16 16384 1024 65536 \
    > "$out/probe_core_saves.log" 2>&1; echo "probe --saves rc $?"; tail -4 "$out/probe_core_saves.log"
timeout 90 python3 -m pytest -q -m gpu -p no:cacheprovider -n 4 tests/test_gpu_autograd.py \
    > "$out/pytest_autograd.log" 2>&1
echo "pytest rc $?"; tail -2 "$out/pytest_autograd.log"
timeout 70 python3 benchmarks/lab/training_rows.py --dtypes bfloat16 --reps 10 --json "$out/training_bf16.json" \
    > "$out/training_bf16.log" 2>&1; echo "bf16 rows rc $?"
timeout 60 python3 benchmarks/lab/profile_training_host.py 256 1024 4096 --rounds 5 > "$out/host_fp32_small.log" 2>&1
echo "host rounds rc $?"; cat "$out/host_fp32_small.log"
export CUPY_FUSED_TUNE=0
for tool in racecheck synccheck; do
    timeout 80 compute-sanitizer --tool "$tool" --print-limit 20 --error-exitcode 3 \
        python3 scripts/sanitize_cases.py --quick --backward-only --dtypes float16 > "$out/sanitize_$tool.log" 2>&1
    echo "$tool exit $?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitize_$tool.log" | tail -1)"
done
grep -E "fwd\+bwd  " "$out/training_bf16.log"
