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


def cases(args):
    """((B, K, N), precision) from arguments in fours (precision "default": None); none: the bench's training suite."""
    return [
        ((int(args[i]), int(args[i + 1]), int(args[i + 2])), None if args[i + 3] == "default" else args[i + 3])
        for i in range(0, len(args), 4)
    ] or TRAINING_SUITE


def steps(B, K, N, precision):
    """(ours, torch's): a training step on fresh inputs (the bench's) through cupy_fused.torch and through torch
    autograd; the caller sets torch's TF32 switch."""
    bound = 1 / math.sqrt(K)
    x = torch.randn(B, K, device="cuda", requires_grad=True)
    w = torch.empty(N, K, device="cuda").uniform_(-bound, bound).requires_grad_()
    b = torch.empty(N, device="cuda").uniform_(-bound, bound).requires_grad_()
    g = torch.rand(B, 1, device="cuda")
    return (
        lambda: torch.autograd.grad(cft.linear_sigmoid_sum(x, w, b, precision=precision), (x, w, b), g),
        lambda: torch.autograd.grad(model(x, w, b), (x, w, b), g),
    )


def main():
    summary = []
    for (B, K, N), precision in cases(sys.argv[1:]):
        ours_step, torch_step = steps(B, K, N, precision)
        print(f"{B} x {K} x {N} {precision or 'default'}")
        CACHE.clear()
        ours = profile("ours", ours_step)
        for key, plan in list(CACHE._plans.items()):
            if key[-1] == "saving":
                print("    saving forward: " + plan.explain().replace("\n", "\n      "))
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        theirs = profile("torch", torch_step)
        torch.backends.cuda.matmul.allow_tf32 = False
        summary.append(
            f"{B} x {K} x {N} {precision or 'default'}: ours {ours:.3f} ms, torch {theirs:.3f} ms, {ours / theirs:.2f}"
        )
        ours_step = torch_step = None
        torch.cuda.empty_cache()
    print("\nkernel ms per step")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
