#!/usr/bin/env bash
# session20_call1.sh's parts 1 and 3 cut to one call of at most ~540 s (most of this session's device time went to
# tries that got no machine): the core's GPU tests on the epilogue-warps tree (.warps, carried), events timing of both
# epilogue forms at three shapes, registers, racecheck and synccheck, then as time allows the host profile of the
# small fp32 step and the tuned candidates' graph-replay times. Each later step is skipped past its time mark.
set -uo pipefail
export PYTHONUNBUFFERED=1
root=$PWD
(cd .warps && timeout 150 python3 -m pytest -q -m gpu -p no:cacheprovider -n 4 tests/test_gemm_core.py \
    "tests/test_gpu_kernels.py::test_gemm_core_forward" \
    "tests/test_gpu_kernels.py::test_split_k_graph_replays_reset_the_flags" > "$OUT/pytest_core.log" 2>&1)
rc=$?; echo "core tests rc $rc ($SECONDS s)"; tail -2 "$OUT/pytest_core.log"
[ $rc -eq 0 ] || { grep -E "Error|assert|FAILED|Timeout" "$OUT/pytest_core.log" | head -30; exit 1; }
for shape in "16384 1024 65536" "4096 4096 4096" "16384 256 16384"; do
    PYTHONPATH=$root/.warps timeout 50 python3 benchmarks/lab/time_core_tile.py $shape > "$OUT/tile_${shape// /x}.log" 2>&1
    echo "tile $shape rc $?"; tail -6 "$OUT/tile_${shape// /x}.log"
done
PYTHONPATH=$root/.warps timeout 40 python3 -c "
from cupy_fused import loader
from cupy_fused.gemm.kernel import FILENAME, GemmSpec
from cupy_fused.gemm.operands import OPERANDS
for bn in (128, 256):
    for save in (False, True):
        for warps in (False, True):
            spec = GemmSpec(OPERANDS['bf16'], bn, False, save, warps)
            k = loader._module(FILENAME, spec.instance, loader.arch_of(0)).get_function(spec.instance)
            print(spec.instance, 'regs', k.num_regs, 'local bytes', k.local_size_bytes)
" 2>&1 | tail -8
for tool in racecheck synccheck; do
    [ $SECONDS -lt 300 ] || { echo "$tool skipped"; continue; }
    CUPY_FUSED_TUNE=0 PYTHONPATH=$root/.warps timeout 60 compute-sanitizer --tool $tool --print-limit 20 \
        --error-exitcode 3 python3 scripts/sanitize_cases.py --quick --only sm90: --dtypes bfloat16 \
        > "$OUT/sanitize_$tool.log" 2>&1
    echo "$tool exit $?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitize_$tool.log" | tail -1)"
done
if [ $SECONDS -lt 360 ]; then
    PYTHONPATH=$root/.warps timeout 70 python3 benchmarks/lab/profile_training_host.py 256 1024 4096 \
        > "$OUT/host_256_1024_4096.log" 2>&1
    echo "host rc $?"; grep -A9 "us per step (back" "$OUT/host_256_1024_4096.log"
fi
if [ $SECONDS -lt 400 ]; then
    mkdir -p "$OUT/p"
    CUPY_FUSED_CACHE_DIR=$OUT/cache PYTHONPATH=$root/.warps OUT=$OUT/p timeout 100 python3 \
        benchmarks/lab/probe_core.py --skip fused:: cublaslt --shape bfloat16 16384 1024 65536 \
        --shape bfloat16 4096 4096 4096 --shape bfloat16 16384 256 16384 > "$OUT/probe_plain.log" 2>&1
    echo "probe rc $?"; grep -E "us  err" "$OUT/probe_plain.log" | cut -c1-100; rm -rf "$OUT/p" "$OUT/cache"
fi
echo "done at $SECONDS s"
