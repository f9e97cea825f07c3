#!/usr/bin/env bash
# On the GPU machine, from the repository root: the GPU tests, then the benchmark; logs under $OUT (or ./gpu_logs).
# Usage: bash benchmarks/gpu_check.sh [extra `cupy-fused bench` arguments]
set -uo pipefail
out=${OUT:-gpu_logs}; mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch, cupy; print('torch', torch.__version__, 'cupy', cupy.__version__)"
python3 -m pytest -m gpu -q -p no:cacheprovider 2>&1 | tee "$out/pytest_gpu.log" | tail -25
python3 -m cupy_fused bench --json "$out/bench.json" "$@" 2>&1 | tee "$out/bench.log"
