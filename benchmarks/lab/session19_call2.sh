#!/usr/bin/env bash
# Session 19, call 2 (carried: .before = main's tree, .overlap = branch issue26/overlap-epilogue's cupy_fused, kernels,
# tests, pyproject.toml): the core's forward tile with its epilogue overlapped with the next unit's main loop (z staged
# in shared memory as fp16, taken a few rows after each k tile's wgmmas; 3 stages instead of 4 at BN = 256).
# Most important first: (1) the core's GPU tests on the new tree (stop if they fail); (2) GPU time of the core's
# candidates, saving and plain, main / main with the new tree's stage counts / new; (3) the whole GPU suite and the
# sanitizers on the new tree; (4) the half training rows on the new tree.
# Prediction (H100, bf16, graph replay): saving t256 at 16384 x 1024 x 65536 5.56 -> 3.8-4.2 ms (the 2 GB s' write
# and 3 special-function instructions a value under the main loop), plain 3.7 -> 3.4-3.5 (its epilogue about 10% of a
# unit); 4096^3 and 512 x 4096 x 11008 level; 16384 x 256 x 16384 (4 k tiles a unit: little to hide under) level or
# slower. Risk: 3 stages may starve the main loop (the "main, 3 stages" rows separate that).
set -uo pipefail
export PYTHONUNBUFFERED=1
root=$PWD
(cd .overlap && timeout 100 python3 -m pytest -q -m gpu -p no:cacheprovider -n 4 tests/test_gemm_core.py \
    "tests/test_gpu_kernels.py::test_gemm_core_forward" > "$OUT/pytest_core.log" 2>&1)
rc=$?; echo "core tests rc $rc"; tail -3 "$OUT/pytest_core.log"
[ $rc -eq 0 ] || { grep -E "Error|assert|FAILED" "$OUT/pytest_core.log" | head -30; exit 1; }
probe() {  # tree label args...
    local tree=$1 label=$2; shift 2
    mkdir -p "$OUT/p_$label"
    CUPY_FUSED_CACHE_DIR=$OUT/cache_$label PYTHONPATH=$root/.$tree OUT=$OUT/p_$label timeout 120 python3 \
        benchmarks/lab/probe_core.py --skip fused:: "$@" > "$OUT/probe_$label.log" 2>&1
    echo "probe $label rc $?"; grep -E "us  err" "$OUT/probe_$label.log" | cut -c1-100; rm -rf "$OUT/p_$label"
}
probe before saves_main --saves --shape bfloat16 16384 1024 65536 --shape bfloat16 8192 1024 8192
probe overlap saves_new --saves --shape bfloat16 16384 1024 65536 --shape bfloat16 8192 1024 8192
plain="--shape bfloat16 16384 1024 65536 --shape bfloat16 4096 4096 4096 --shape bfloat16 16384 256 16384"
plain="$plain --shape bfloat16 512 4096 11008 --shape float16 4096 4096 4096"
probe before plain_main $plain
probe overlap plain_new $plain
# main with the new tree's stage counts (3 at BN = 256, 5 at 128): the main loop's share of any change
cp -r .before .before3 && sed -i 's/^RING_BYTES = 208 \* 1024/RING_BYTES = 160 * 1024/' .before3/cupy_fused/gemm/kernel.py
probe before3 saves_main3stages --saves --shape bfloat16 16384 1024 65536
probe before3 plain_main3stages --shape bfloat16 16384 1024 65536 --shape bfloat16 4096 4096 4096
(cd .overlap && timeout 200 python3 -m pytest -q -m gpu -p no:cacheprovider -n 4 tests --ignore=tests/test_gpu_trust.py \
    > "$OUT/pytest_gpu.log" 2>&1; echo "gpu tests rc $?"; tail -2 "$OUT/pytest_gpu.log"
    timeout 60 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu_trust.py > "$OUT/pytest_trust.log" 2>&1
    echo "trust rc $?"; tail -1 "$OUT/pytest_trust.log")
export CUPY_FUSED_TUNE=0
for tool in memcheck racecheck synccheck; do
    PYTHONPATH=$root/.overlap timeout 60 compute-sanitizer --tool $tool --print-limit 20 --error-exitcode 3 \
        python3 scripts/sanitize_cases.py --quick --only sm90: --dtypes bfloat16 > "$OUT/sanitize_$tool.log" 2>&1
    echo "$tool exit $?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitize_$tool.log" | tail -1)"
done
unset CUPY_FUSED_TUNE
CUPY_FUSED_CACHE_DIR=$OUT/cache_rows PYTHONPATH=$root/.overlap timeout 100 python3 benchmarks/lab/training_rows.py \
    --dtypes bfloat16 --reps 10 --json "$OUT/training_bf16.json" > "$OUT/training_bf16.log" 2>&1
echo "rows rc $?"; grep -E "fwd\+bwd  " "$OUT/training_bf16.log" | cut -c1-150
