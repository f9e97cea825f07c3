#!/usr/bin/env bash
# The last device try of session 20 (about 5 minutes of device time left): only the decision data for the branch
# issue26/epilogue-warps (.warps, carried): events timing and float64 errors of both epilogue forms at two shapes,
# then the core's GPU tests as far as time allows.
set -uo pipefail
export PYTHONUNBUFFERED=1
root=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
for shape in "16384 1024 65536" "16384 256 16384"; do
    PYTHONPATH=$root/.warps timeout 60 python3 benchmarks/lab/time_core_tile.py $shape > "$OUT/tile_${shape// /x}.log" 2>&1
    echo "tile $shape rc $? ($SECONDS s)"; tail -9 "$OUT/tile_${shape// /x}.log"
done
(cd .warps && timeout 150 python3 -m pytest -q -m gpu -p no:cacheprovider -n 4 -x tests/test_gemm_core.py \
    "tests/test_gpu_kernels.py::test_gemm_core_forward" > "$OUT/pytest_core.log" 2>&1)
echo "core tests rc $? ($SECONDS s)"; tail -3 "$OUT/pytest_core.log"
