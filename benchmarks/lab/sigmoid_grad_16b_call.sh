#!/usr/bin/env bash
# Issue 27, branch issue27/sigmoid-grad-16b: bw::sigmoid_grad for half operands with 16 bytes a lane a row (8
# consecutive columns: one 16-byte load of the saved s', two of the recomputed float32 z, one 16-byte store of gz;
# tiles of 64 x 256) against main's 4 column groups of 2-byte values a lane. Carry .before, main's tree:
#   mkdir .before && git archive main cupy_fused kernels | tar -x -C .before
# Run `bash benchmarks/lab/sigmoid_grad_16b_call.sh 1` (timings, bits against main, ncu) and then `... 2` (GPU
# tests, sanitizers) on the warm machine; `all` (default) runs both, which fits 600 s only if nothing runs to its
# timeout (worst case 1: ~400 s, 2: ~430 s).
#
# Prediction, bf16 at 16384 x 1024 x 65536 (12 chunks of 5464 columns; s' rows stride 65536 and gz rows stride 5464,
# both 16-byte aligned, so every full group is one 16-byte load and store): the kernel reads 16384 x 65536 x 2 B =
# 2.15 GB of s' and writes 2.15 GB of gz plus 256 x 65536 x 4 B = 67 MB of tile sums, 4.36 GB. At the ~3.0 TB/s a
# device-to-device copy reached on this H100 (read + written) that is 1.45 ms; expected 1.5-1.7 ms summed over the
# 12 launches (main: 2.87 ms, 1.4 TB/s), so the step about 1.2-1.4 ms less. Why: each lane now moves 16 bytes a
# memory instruction (a warp 512 contiguous bytes) instead of 2 (64), and the saving instances dropped from 109 to
# 75-78 registers: 3 blocks of 256 an SM instead of 2, 768 threads x 8 rows x 16 B = 96 KB of loads in flight an SM
# against the ~16 KB that 3 TB/s x ~0.7 us of latency needs over 132 SMs. At 8192 x 1024 x 8192 (one launch,
# 134 + 134 + 4 MB) about 91 us at 3 TB/s, expected 95-110 us (main: 177). If it stays far above: ncu's
# MemoryWorkloadAnalysis (sectors per request, L2 / DRAM throughput) and Occupancy below say whether the loads or
# the stores, or the grid (8 x SMs blocks over 64 x 256 tiles, 22 column tiles at 5464 columns, the last 88 wide),
# are to blame. The recompute instances (no saved s') take 123 registers (main: 116), 2 blocks an SM as before.
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
part=${1:-all}
out=$OUT
before=$PWD/.before
[ -d "$before/cupy_fused" ] || echo "no .before/cupy_fused: the before runs will fail"

if [ "$part" = 1 ] || [ "$part" = all ]; then
    # (1) the step's kernels (torch profiler, us a step) and step times, before / after
    for shape in "16384 1024 65536" "8192 1024 8192"; do
        PYTHONPATH=$before timeout 45 python3 benchmarks/lab/profile_step_kernels.py $shape 2>&1 | sed 's/^/before /'
        timeout 45 python3 benchmarks/lab/profile_step_kernels.py $shape 2>&1 | sed 's/^/after  /'
    done > "$out/kernels.log"
    cut -c1-130 "$out/kernels.log"
    # (1b) the gradients bit for bit against main's (static choices: CUPY_FUSED_TUNE=0, same forward in both trees)
    for tree in before after; do
        path=$PWD; [ $tree = before ] && path=$before
        CUPY_FUSED_TUNE=0 PYTHONPATH=$path timeout 60 python3 benchmarks/lab/sigmoid_grad_16b_bits.py dump \
            "$out/bits_$tree.npz" > "$out/bits_$tree.log" 2>&1
        echo "bits dump $tree rc $?: $(tail -1 "$out/bits_$tree.log")"; grep "not repeatable" "$out/bits_$tree.log"
    done
    timeout 20 python3 benchmarks/lab/sigmoid_grad_16b_bits.py compare "$out/bits_before.npz" "$out/bits_after.npz" \
        > "$out/bits_compare.log" 2>&1
    echo "bits compare rc $?"; tail -12 "$out/bits_compare.log"
    # (3) ncu: the first bw::sigmoid_grad launch of a bf16 step at 8192 x 1024 x 8192 (saved s', one chunk)
    for tree in before after; do
        path=$PWD; [ $tree = before ] && path=$before
        CUPY_FUSED_TUNE=0 PYTHONPATH=$path timeout 60 ncu --clock-control none --kernel-name regex:sigmoid_grad \
            --launch-count 1 --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy \
            python3 benchmarks/lab/sigmoid_grad_16b_bits.py step 8192 1024 8192 > "$out/ncu_$tree.txt" 2>&1
        echo "ncu $tree rc $?"
        grep -E "sigmoid_grad|Duration|DRAM Throughput|Memory Throughput|Achieved Occ|Registers Per|Theoretical Occ" \
            "$out/ncu_$tree.txt" | cut -c1-120
    done
fi

if [ "$part" = 2 ] || [ "$part" = all ]; then
    # (2) the GPU autograd tests (every dtype, saved and recomputed, strided and expanded grad_out)
    timeout 150 python3 -m pytest -q -m gpu -p no:cacheprovider -n 4 tests/test_gpu_autograd.py \
        > "$out/pytest_autograd.log" 2>&1
    echo "pytest rc $?"; grep -E "passed|failed|FAILED|Error" "$out/pytest_autograd.log" | tail -6
    # (4) racecheck and memcheck over the float16 backward's sanitizer cases, and memcheck over the bf16 bits cases
    # (aligned rows too: the 16-byte path, and a chunk cut inside a lane's 8 columns)
    export CUPY_FUSED_TUNE=0
    for tool in racecheck memcheck; do
        timeout 90 compute-sanitizer --tool "$tool" --print-limit 20 --error-exitcode 3 \
            python3 scripts/sanitize_cases.py --quick --backward-only --dtypes float16 > "$out/sanitize_$tool.log" 2>&1
        echo "$tool exit $?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitize_$tool.log" | tail -1)"
    done
    timeout 100 compute-sanitizer --tool memcheck --print-limit 20 --error-exitcode 3 \
        python3 benchmarks/lab/sigmoid_grad_16b_bits.py dump "$out/bits_memcheck.npz" bfloat16 \
        > "$out/sanitize_memcheck_bits_bf16.log" 2>&1
    echo "memcheck bits bf16 exit $?: $(grep -E 'ERROR SUMMARY' "$out/sanitize_memcheck_bits_bf16.log" | tail -1)"
fi
