#!/usr/bin/env bash
# Session 18, one call for three changes (branch issue27/save-epilogue; .before = main's tree, carried:
# `git archive main cupy_fused kernels | tar -x -C .before`): bw::sigmoid_grad with 4 column groups a lane for half
# operands, grad_out read as passed (no conversion launch), and the core's saving epilogues (sigmoid and sigmoid' from
# one exp2 and one reciprocal, paired stores). Most important first: kernels and step times before / after, the
# saving forward's candidates before / after, the GPU tests of what changed, the bf16 training rows, the small fp32
# step's host time, racecheck and synccheck over the backward.
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
out=$OUT
for shape in "16384 1024 65536" "8192 1024 8192"; do
    PYTHONPATH=$PWD/.before timeout 30 python3 benchmarks/lab/profile_step_kernels.py $shape 2>/dev/null \
        | sed 's/^/before /'
    timeout 30 python3 benchmarks/lab/profile_step_kernels.py $shape 2>/dev/null | sed 's/^/after  /'
done > "$out/kernels.log"
cut -c1-130 "$out/kernels.log"
for tree in before after; do
    path=$PWD; [ $tree = before ] && path=$PWD/.before
    mkdir -p "$out/$tree"
    PYTHONPATH=$path OUT=$out/$tree timeout 50 python3 benchmarks/lab/probe_core.py --saves \
        --shape bfloat16 16384 1024 65536 > "$out/probe_saves_$tree.log" 2>&1
    echo "probe --saves $tree rc $?"; grep -E "us  err|auto:" "$out/probe_saves_$tree.log" | cut -c1-150
done
timeout 100 python3 -m pytest -q -m gpu -p no:cacheprovider -n 4 tests/test_gpu_autograd.py tests/test_gemm_core.py \
    "tests/test_gpu_kernels.py::test_gemm_core_forward" \
    > "$out/pytest.log" 2>&1
echo "pytest rc $?"; grep -E "passed|failed|Error" "$out/pytest.log" | tail -5
timeout 70 python3 benchmarks/lab/training_rows.py --dtypes bfloat16 --reps 10 --json "$out/training_bf16.json" \
    > "$out/training_bf16.log" 2>&1; echo "bf16 rows rc $?"
grep -E "fwd\+bwd  " "$out/training_bf16.log"
timeout 50 python3 benchmarks/lab/profile_training_host.py 256 1024 4096 --rounds 5 > "$out/host_fp32_small.log" 2>&1
echo "host rounds rc $?"; tail -12 "$out/host_fp32_small.log"
export CUPY_FUSED_TUNE=0
for tool in racecheck synccheck; do
    timeout 70 compute-sanitizer --tool "$tool" --print-limit 20 --error-exitcode 3 \
        python3 scripts/sanitize_cases.py --quick --backward-only --dtypes float16 > "$out/sanitize_$tool.log" 2>&1
    echo "$tool exit $?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitize_$tool.log" | tail -1)"
done
timeout 60 compute-sanitizer --tool memcheck --print-limit 20 --error-exitcode 3 \
    python3 scripts/sanitize_cases.py --quick --only sm90: --dtypes bfloat16 > "$out/sanitize_memcheck_sm90.log" 2>&1
echo "memcheck sm90 exit $?: $(grep -E 'ERROR SUMMARY' "$out/sanitize_memcheck_sm90.log" | tail -1)"
