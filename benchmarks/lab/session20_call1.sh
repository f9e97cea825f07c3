#!/usr/bin/env bash
# For the next device call (prepared in session 19, not yet run): the GEMM core's forward tile with its epilogue on
# warps of its own (branch issue26/epilogue-warps: `RowSigmoidSumWarps`, candidates ":ew" beside the consumers'
# epilogue, which stays the untuned choice). Carry .warps (the branch's cupy_fused, kernels, tests, pyproject.toml):
#   git archive issue26/epilogue-warps cupy_fused kernels tests pyproject.toml | tar -x -C .warps
# `bash benchmarks/lab/session20_call1.sh 1` (tests, sanitizers, timings: about 350 s), then `... 2` on the warm
# machine (the whole GPU suite, the bf16 training rows with a fresh tuning cache: about 200 s), then `... 3` (host
# profiles of the small training steps, issue 27 item 3; every forward candidate at the small half shapes where the
# bench's half section lost to torch.compile in session 14: about 150 s).
# Prediction (H100, bf16, graph replay): saving t256:ew at 16384 x 1024 x 65536 3.8-4.2 ms against t256's 5.56, plain
# 3.4-3.6 against 3.8; 4096^3 level (64 k tiles a unit: the epilogue was already a small share); 16384 x 256 x 16384
# (4 k tiles a unit) level or slower: three warps may not take 128 rows within one short main loop. ".warps2" is the
# branch with two rows a warp interleaved (`#pragma unroll 2` over the rows; ptxas spills 12 bytes in the saving
# instances at 56 registers).
set -uo pipefail
export PYTHONUNBUFFERED=1
root=$PWD
part=${1:-1}
if [ "$part" = 1 ]; then
    (cd .warps && timeout 100 python3 -m pytest -q -m gpu -p no:cacheprovider -n 4 tests/test_gemm_core.py \
        "tests/test_gpu_kernels.py::test_gemm_core_forward" \
        "tests/test_gpu_kernels.py::test_split_k_graph_replays_reset_the_flags" > "$OUT/pytest_core.log" 2>&1)
    rc=$?; echo "core tests rc $rc"; tail -2 "$OUT/pytest_core.log"
    [ $rc -eq 0 ] || { grep -E "Error|assert|FAILED|Timeout" "$OUT/pytest_core.log" | head -30; exit 1; }
    # events timing and float64 errors (sums, s') of the tile instances, both epilogues
    PYTHONPATH=$root/.warps timeout 60 python3 benchmarks/lab/time_core_tile.py 2>&1 | tail -8
    # NVRTC's registers and local memory (spills) for the tile instances (nvcc 13's ptxas: none)
    PYTHONPATH=$root/.warps timeout 60 python3 -c "
from cupy_fused import loader
from cupy_fused.gemm.kernel import FILENAME, GemmSpec
from cupy_fused.gemm.operands import OPERANDS
for bn in (128, 256):
    for save in (False, True):
        spec = GemmSpec(OPERANDS['bf16'], bn, False, save, True)
        k = loader._module(FILENAME, spec.instance, loader.arch_of(0)).get_function(spec.instance)
        print(spec.instance, 'regs', k.num_regs, 'local bytes', k.local_size_bytes)
"
    for tool in racecheck synccheck memcheck; do
        CUPY_FUSED_TUNE=0 PYTHONPATH=$root/.warps timeout 60 compute-sanitizer --tool $tool --print-limit 20 \
            --error-exitcode 3 python3 scripts/sanitize_cases.py --quick --only sm90: --dtypes bfloat16 \
            > "$OUT/sanitize_$tool.log" 2>&1
        echo "$tool exit $?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitize_$tool.log" | tail -1)"
    done
    rm -rf .warps2 && cp -r .warps .warps2
    sed -i 's|^            if (valid)$|            if (valid)\n#pragma unroll 2|' .warps2/kernels/sm90_epilogues.cuh
    grep -c "pragma unroll 2" .warps2/kernels/sm90_epilogues.cuh
    probe() {  # tree label args...
        local tree=$1 label=$2; shift 2
        mkdir -p "$OUT/p_$label"
        CUPY_FUSED_CACHE_DIR=$OUT/cache_$label PYTHONPATH=$root/.$tree OUT=$OUT/p_$label timeout 120 python3 \
            benchmarks/lab/probe_core.py --skip fused:: cublaslt "$@" > "$OUT/probe_$label.log" 2>&1
        echo "probe $label rc $?"; grep -E "us  err" "$OUT/probe_$label.log" | cut -c1-100; rm -rf "$OUT/p_$label"
    }
    for tree in warps warps2; do
        probe $tree saves_$tree --saves --shape bfloat16 16384 1024 65536 --shape bfloat16 8192 1024 8192
        probe $tree plain_$tree --shape bfloat16 16384 1024 65536 --shape bfloat16 4096 4096 4096 \
            --shape bfloat16 16384 256 16384 --shape float16 4096 4096 4096
    done
    rm -rf "$OUT"/cache_*
fi
if [ "$part" = 2 ]; then
    (cd .warps && timeout 200 python3 -m pytest -q -m gpu -p no:cacheprovider -n 4 tests \
        --ignore=tests/test_gpu_trust.py > "$OUT/pytest_gpu.log" 2>&1; echo "gpu tests rc $?"; tail -2 "$OUT/pytest_gpu.log"
        timeout 60 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu_trust.py > "$OUT/pytest_trust.log" 2>&1
        echo "trust rc $?"; tail -1 "$OUT/pytest_trust.log")
    CUPY_FUSED_CACHE_DIR=$OUT/cache_rows PYTHONPATH=$root/.warps timeout 100 python3 benchmarks/lab/training_rows.py \
        --dtypes bfloat16 --reps 10 --json "$OUT/training_bf16.json" > "$OUT/training_bf16.log" 2>&1
    echo "rows rc $?"; grep -E "fwd\+bwd  " "$OUT/training_bf16.log" | cut -c1-150
    grep -h "sm90" "$OUT"/cache_rows/*.json | head -20; rm -rf "$OUT"/cache_*
fi
if [ "$part" = 3 ]; then
    for args in "256 1024 4096" "1024 4096 4096 --dtype bfloat16"; do
        label=$(echo $args | tr ' ' _ | sed 's/--dtype_//')
        PYTHONPATH=$root/.warps timeout 100 python3 benchmarks/lab/profile_training_host.py $args \
            > "$OUT/host_$label.log" 2>&1
        echo "host $label rc $?"; grep -A9 "us per step (back" "$OUT/host_$label.log"
    done
    mkdir -p "$OUT/p_small"
    CUPY_FUSED_CACHE_DIR=$OUT/cache_small PYTHONPATH=$root/.warps OUT=$OUT/p_small timeout 150 python3 \
        benchmarks/lab/probe_core.py --shape bfloat16 256 1024 1024 --shape bfloat16 128 4096 4096 \
        --shape bfloat16 2048 2048 2048 --shape bfloat16 512 4096 11008 > "$OUT/probe_small.log" 2>&1
    echo "probe small rc $?"; tail -40 "$OUT/probe_small.log" | cut -c1-110; rm -rf "$OUT/p_small" "$OUT"/cache_*
fi
