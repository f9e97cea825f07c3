"""Where a training step's GPU time goes: one forward + backward through cupy_fused.torch, kernels summed by name
(CUPTI through torch.profiler), at the shapes of the bench's training rows.

    PYTHONPATH=$PWD python3 benchmarks/lab/profile_training.py
"""

import math

import torch
from torch.autograd import DeviceType

import cupy_fused.torch as cft

CASES = [
    ((128, 32768, 32768), None),
    ((4096, 4096, 4096), None),
    ((128, 32768, 32768), "tf32"),
    ((16384, 1024, 65536), "tf32"),
]


def main():
    for (B, K, N), precision in CASES:
        bound = 1 / math.sqrt(K)
        x = torch.randn(B, K, device="cuda", requires_grad=True)
        w = torch.empty(N, K, device="cuda").uniform_(-bound, bound).requires_grad_()
        b = torch.empty(N, device="cuda").uniform_(-bound, bound).requires_grad_()
        g = torch.rand(B, 1, device="cuda")

        def step():
            return torch.autograd.grad(cft.linear_sigmoid_sum(x, w, b, precision=precision), (x, w, b), g)

        step()
        torch.cuda.synchronize()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            step()
            torch.cuda.synchronize()
        rows = [
            (e.self_device_time_total, e.key, e.count) for e in prof.key_averages() if e.device_type == DeviceType.CUDA
        ]
        total = sum(r[0] for r in rows)
        print(f"{B} x {K} x {N} {precision or 'default'}: {total / 1e3:.2f} ms of kernels per step")
        for us, name, count in sorted(rows, reverse=True)[:8]:
            print(f"  {us / 1e3:8.3f} ms  x{count:<3d} {name[:100]}")


if __name__ == "__main__":
    main()
