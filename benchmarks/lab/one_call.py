"""One call of the library at a shape, static choice (for ncu / compute-sanitizer: the kernels of one call).

CUPY_FUSED_TUNE=0 PYTHONPATH=$PWD python3 benchmarks/lab/one_call.py B K N [precision]
"""

import sys

import torch

import cupy_fused
import cupy_fused.torch as cft


def main():
    B, K, N = map(int, sys.argv[1:4])
    precision = sys.argv[4] if len(sys.argv) > 4 else None
    x = torch.randn(B, K, device="cuda")
    w = torch.randn(N, K, device="cuda") / K**0.5
    b = torch.randn(N, device="cuda")
    for _ in range(2):
        out = cft.linear_sigmoid_sum(x, w, b, precision=precision)
    torch.cuda.synchronize()
    print(cupy_fused.plan(x, w, b, precision=precision).explain(), float(out.sum()))


if __name__ == "__main__":
    main()
