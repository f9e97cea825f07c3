#!/usr/bin/env bash
# The device call session 15 prepared and could not make (no machine started): stream-K at shapes of few tiles (the
# core's swapped form: 8-32 tiles, where it is the static choice) against whole tiles and the peers, and which GPU
# test file run before test_gpu_trust's out-of-memory test makes it fail (it fails in full runs only). Logs under $OUT.
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
out=${OUT:-session15_logs}; mkdir -p "$out"
python3 benchmarks/lab/precompile.py 2>&1 | head -1
timeout 120 python3 benchmarks/lab/probe_core.py --budget 90 --skip fused::mma_tile small_batch \
    --shape bfloat16 1 32768 1024 --shape bfloat16 16 16384 2048 --shape bfloat16 64 8192 4096 \
    --shape float16 1 32768 1024 > "$out/probe2.log" 2>&1
tail -5 "$out/probe2.log"
oom=tests/test_gpu_trust.py::test_out_of_memory_is_a_clear_error_and_leaves_nothing_behind
for before in tests/test_cli.py tests/test_gpu_plans.py tests/test_gpu_fused.py \
    "tests/test_bridges.py tests/test_distributed.py tests/test_properties.py" tests/test_gpu_kernels.py; do
    echo "after $before: $(timeout 70 python3 -m pytest -m gpu -q -p no:cacheprovider $before $oom 2>&1 | tail -1)"
done
