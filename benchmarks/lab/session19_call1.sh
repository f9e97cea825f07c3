#!/usr/bin/env bash
# Session 19, call 1 (branch issue27/sigmoid-grad-16b checked out; carried: .before = main's tree, .staged = branch
# issue27/save-staged's cupy_fused, kernels, tests): (1) the GEMM core's saving forward at 16384 x 1024 x 65536 bf16,
# main against s' staged through shared memory (16-byte stores of whole rows); (2) part 1 of sigmoid_grad_16b_call.sh
# (kernel times before / after, gradient bits against main, ncu of one sigmoid_grad launch); (3) ncu of main's
# forward tile there, plain and saving (where the saving epilogue's 2 ms go: pipes, memory, stalls).
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
for tree in before staged; do
    mkdir -p "$OUT/$tree"
    PYTHONPATH=$PWD/.$tree OUT=$OUT/$tree timeout 50 python3 benchmarks/lab/probe_core.py --saves \
        --shape bfloat16 16384 1024 65536 > "$OUT/probe_saves_$tree.log" 2>&1
    echo "probe --saves $tree rc $?"; grep -E "us  err|auto:" "$OUT/probe_saves_$tree.log" | cut -c1-150
done
bash benchmarks/lab/sigmoid_grad_16b_call.sh 1
PYTHONPATH=$PWD/.before timeout 120 ncu --clock-control none --kernel-name regex:gemm --section SpeedOfLight \
    --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section WarpStateStats \
    python3 benchmarks/lab/ncu_core.py --saves > "$OUT/ncu_saves.txt" 2>&1
echo "ncu saves rc $?"
grep -E "gemm|Duration|Throughput|Pipe|Stall|Issued Ipc|Mem Busy" "$OUT/ncu_saves.txt" | cut -c1-120 | head -70
