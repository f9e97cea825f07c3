#!/usr/bin/env bash
# Session 17, third device call: bw::sigmoid_grad with 4 column groups a lane for half operands, before (.before:
# the previous commit) and after in the same call (kernels and step times beside torch's); the GPU autograd tests.
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
out=$OUT
for shape in "16384 1024 65536" "8192 1024 8192"; do
    PYTHONPATH=$PWD/.before timeout 25 python3 benchmarks/lab/profile_step_kernels.py $shape 2>/dev/null | sed 's/^/before /'
    timeout 25 python3 benchmarks/lab/profile_step_kernels.py $shape 2>/dev/null | sed 's/^/after  /'
done | tee "$out/kernels.log" | grep -E "kernels a step|sigmoid_grad|step ms"
timeout 50 python3 -m pytest -q -m gpu -p no:cacheprovider -n 4 tests/test_gpu_autograd.py -k "half or saving or sav" \
    > "$out/pytest_autograd.log" 2>&1
echo "pytest rc $?"; tail -2 "$out/pytest_autograd.log"
