#!/usr/bin/env bash
# Which GPU test file, run before test_gpu_trust's out-of-memory test, makes it fail ("DID NOT RAISE" in full runs of
# sessions 14 and 15; it passes alone). Prepared in session 15, not run: the device was not lent again. Logs: stdout.
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python3 benchmarks/lab/precompile.py 2>&1 | head -1
oom=tests/test_gpu_trust.py::test_out_of_memory_is_a_clear_error_and_leaves_nothing_behind
for before in tests/test_cli.py tests/test_gpu_plans.py tests/test_gpu_fused.py \
    "tests/test_bridges.py tests/test_distributed.py tests/test_properties.py" tests/test_gpu_kernels.py; do
    echo "after $before: $(timeout 70 python3 -m pytest -m gpu -q -p no:cacheprovider $before $oom 2>&1 | tail -1)"
done
