#!/usr/bin/env bash
# Run by session21_callB.sh (benchmarks/lab/pending/issue26-pingpong), or alone on main's tree:
# where the small half training steps lose host time (benchmarks/NOTES.md, session 20). About 150 s.
# 1. Host us per call of one bf16 GEMM through our cuBLASLt Gemm, cublasGemmEx (CuPy), torch.mm and one launch of
#    ours. Prediction: cuBLASLt 15-35 us of host a call against 5-10 for one launch of ours; torch.mm 10-20.
# 2. The core's saving and plain forward at 1024 x 4096^2 and 4096^3 (left out by planner._core_offered) against
#    cuBLASLt + the reduction, GPU time from graph replay. Prediction: the saving core within 5% of cuBLASLt +
#    reduction at 1024 x 4096^2 (one wave of 128 tiles, 64 k tiles a unit), and it would save one cuBLASLt call of
#    host time a step.
set -uo pipefail
export PYTHONUNBUFFERED=1
PYTHONPATH=$PWD timeout 60 python3 benchmarks/lab/probe_gemm_host.py > "$OUT/gemm_host.log" 2>&1
echo "gemm host rc $?"; tail -8 "$OUT/gemm_host.log"
for saves in "--saves" ""; do
    mkdir -p "$OUT/p"
    CUPY_FUSED_CACHE_DIR=$OUT/cache PYTHONPATH=$PWD OUT=$OUT/p timeout 120 python3 benchmarks/lab/probe_core.py \
        --every-core $saves --skip fused::mma --shape bfloat16 1024 4096 4096 --shape bfloat16 4096 4096 4096 \
        > "$OUT/probe_every_core${saves:+_saves}.log" 2>&1
    echo "probe $saves rc $?"; grep -E "us  err" "$OUT/probe_every_core${saves:+_saves}.log" | cut -c1-100
    rm -rf "$OUT/p" "$OUT/cache"
done
