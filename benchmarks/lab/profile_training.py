"""Where a training step's GPU time goes: one forward + backward through cupy_fused.torch and through torch autograd
(fp32 or TF32 as ours), kernels summed by name (CUPTI through torch.profiler), at the bench's training shapes, with
the saving forward's plan.

    PYTHONPATH=$PWD python3 benchmarks/lab/profile_training.py [B K N precision ...]
"""

import math
import sys

import torch
from torch.autograd import DeviceType

import cupy_fused.torch as cft
from cupy_fused.bench.suites import TRAINING_SUITE
from cupy_fused.plans import CACHE


def model(x, w, b):
    return torch.sum(torch.sigmoid(torch.nn.functional.linear(x, w, b)), dim=1, keepdim=True)


def profile(label, step):
    step()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    rows = [(e.self_device_time_total, e.key, e.count) for e in prof.key_averages() if e.device_type == DeviceType.CUDA]
    total = sum(r[0] for r in rows)
    print(f"  {label}: {total / 1e3:.3f} ms of kernels per step")
    for us, name, count in sorted(rows, reverse=True)[:8]:
        print(f"    {us / 1e3:8.3f} ms  x{count:<3d} {name[:110]}")
    return total / 1e3


def main():
    args = sys.argv[1:]
    cases = (
        [
            ((int(args[i]), int(args[i + 1]), int(args[i + 2])), None if args[i + 3] == "default" else args[i + 3])
            for i in range(0, len(args), 4)
        ]
        if args
        else TRAINING_SUITE
    )
    summary = []
    for (B, K, N), precision in cases:
        bound = 1 / math.sqrt(K)
        x = torch.randn(B, K, device="cuda", requires_grad=True)
        w = torch.empty(N, K, device="cuda").uniform_(-bound, bound).requires_grad_()
        b = torch.empty(N, device="cuda").uniform_(-bound, bound).requires_grad_()
        g = torch.rand(B, 1, device="cuda")
        print(f"{B} x {K} x {N} {precision or 'default'}")
        CACHE.clear()
        ours = profile(
            "ours", lambda: torch.autograd.grad(cft.linear_sigmoid_sum(x, w, b, precision=precision), (x, w, b), g)
        )
        for key, plan in list(CACHE._plans.items()):
            if key[-1] == "saving":
                print("    saving forward: " + plan.explain().replace("\n", "\n      "))
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        theirs = profile("torch", lambda: torch.autograd.grad(model(x, w, b), (x, w, b), g))
        torch.backends.cuda.matmul.allow_tf32 = False
        summary.append(
            f"{B} x {K} x {N} {precision or 'default'}: ours {ours:.3f} ms, torch {theirs:.3f} ms, {ours / theirs:.2f}"
        )
        x = w = b = g = None
        torch.cuda.empty_cache()
    print("\nkernel ms per step")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
