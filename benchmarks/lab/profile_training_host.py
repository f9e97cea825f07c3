"""Host cost of a training step (issue 9: 512 x 2048 x 3000 fwd+bwd is host-bound): per-step wall time of
back-to-back steps (one synchronize at the end) against torch autograd, the GPU's share (kernels summed by CUPTI),
and a cProfile of our step.

Prediction (session 10): our step's GPU work is ~0.25 ms at 512 x 2048 x 3000 and the rest of its 1.2 ms is
host time spread over the custom op's dispatch, plan lookups and per-launch ctypes calls.

    PYTHONPATH=$PWD python3 benchmarks/lab/profile_training_host.py [B K N] [--rounds R] [--dtype bfloat16]

Session 16: the bf16 step at 1024 x 4096 x 4096 took 0.59 ms from Python against torch's 0.26 with about 0.25 ms of
GPU work; ``--dtype bfloat16`` profiles it (torch autograd in the same dtype).
"""

import cProfile
import math
import pstats
import sys
import time

import torch
from torch.autograd import DeviceType

import cupy_fused.torch as cft
from cupy_fused import backward


def per_step_us(fn, steps=200) -> tuple[float, float]:
    for _ in range(10):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    t1 = time.perf_counter()
    torch.cuda.synchronize()
    return (t1 - t0) / steps * 1e6, (time.perf_counter() - t0) / steps * 1e6


def host_us_behind_a_busy_gpu(fn, steps=20) -> float:
    """Host us per step while the GPU is still busy with a ~0.5 s spin queued first: a step that waits for the GPU
    anywhere reads as about 0.5 s / steps."""
    torch.cuda.synchronize()
    torch.cuda._sleep(10**9)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    t1 = time.perf_counter()
    torch.cuda.synchronize()
    return (t1 - t0) / steps * 1e6


def gpu_us(fn, steps=20) -> float:
    fn()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            fn()
        torch.cuda.synchronize()
    total = sum(e.self_device_time_total for e in prof.key_averages() if e.device_type == DeviceType.CUDA)
    names = sorted(
        (
            (e.self_device_time_total / steps, e.count // steps, e.key)
            for e in prof.key_averages()
            if e.device_type == DeviceType.CUDA
        ),
        reverse=True,
    )
    for us, count, key in names[:12]:
        print(f"    {us:8.1f} us  x{count}  {key[:110]}")
    return total / steps


class PlainFunction(torch.autograd.Function):
    """The same forward and backward as the custom ops, called from a plain autograd.Function (lab: is the custom
    op's dispatch what costs the host time?)."""

    @staticmethod
    def forward(ctx, x, w, b):
        out, saved = backward.forward(x, w, b)
        ctx.save_for_backward(x, w, b, saved)
        return out

    @staticmethod
    def backward(ctx, g):
        x, w, b, saved = ctx.saved_tensors
        return backward.grad(x, w, b, g, saved=saved)


def main() -> int:
    shape = [int(a) for a in sys.argv[1:4] if a.isdigit()]
    B, K, N = shape if len(shape) == 3 else (512, 2048, 3000)
    dtype = getattr(torch, sys.argv[sys.argv.index("--dtype") + 1]) if "--dtype" in sys.argv else torch.float32
    bound = 1 / math.sqrt(K)
    x = torch.randn(B, K, device="cuda", dtype=dtype, requires_grad=True)
    w = torch.empty(N, K, device="cuda", dtype=dtype).uniform_(-bound, bound).requires_grad_()
    b = torch.empty(N, device="cuda", dtype=dtype).uniform_(-bound, bound).requires_grad_()
    g = torch.rand(B, 1, device="cuda", dtype=dtype)

    def model(x, w, b):
        return torch.sigmoid(torch.nn.functional.linear(x, w, b)).sum(-1, keepdim=True)

    steps = {
        "torch": lambda: torch.autograd.grad(model(x, w, b), (x, w, b), g),
        "ours default": lambda: torch.autograd.grad(cft.linear_sigmoid_sum(x, w, b), (x, w, b), g),
        "ours forward only (no grad)": lambda: cft.linear_sigmoid_sum(x.detach(), w.detach(), b.detach()),
        "ours forward with grad (graph dropped)": lambda: cft.linear_sigmoid_sum(x, w, b),
        "plain autograd.Function step": lambda: torch.autograd.grad(PlainFunction.apply(x, w, b), (x, w, b), g),
    }
    xd, wd, bd = x.detach(), w.detach(), b.detach()
    saved = backward.forward(xd, wd, bd)[1]
    steps["backward.forward, no custom op"] = lambda: backward.forward(xd, wd, bd)
    steps["backward.grad, no custom op"] = lambda: backward.grad(xd, wd, bd, g, saved=saved)
    steps["training op alone"] = lambda: torch.ops.cupy_fused.linear_sigmoid_sum_train(
        xd, wd, bd, None, "auto", cft.DEFAULT_WORKSPACE_BYTES, cft.DEFAULT_WORKSPACE_BYTES
    )
    steps["backward op alone"] = lambda: torch.ops.cupy_fused.linear_sigmoid_sum_backward(
        g, xd, wd, bd, saved, None, cft.DEFAULT_WORKSPACE_BYTES, True, True, True
    )
    if "--rounds" in sys.argv:  # torch and ours in turn, to see the host's drift between them
        print(f"{B} x {K} x {N} {dtype}: wall us per step, torch / ours default, rounds in turn")
        for _ in range(int(sys.argv[sys.argv.index("--rounds") + 1])):
            t, o = per_step_us(steps["torch"])[1], per_step_us(steps["ours default"])[1]
            print(f"  {t:8.1f} / {o:8.1f} = {o / t:5.2f}")
        return 0
    table = []
    for name, fn in steps.items():
        print(f"{B} x {K} x {N} {name}: GPU kernels per step")
        gpu = gpu_us(fn)
        host, wall = per_step_us(fn)
        table.append((name, host, wall, gpu, host_us_behind_a_busy_gpu(fn)))
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(200):
        steps["ours default"]()
    torch.cuda.synchronize()
    profile.disable()
    stats = pstats.Stats(profile)
    stats.sort_stats("tottime").print_stats(30)
    stats.print_callees("backend_impl")
    stats.sort_stats("cumulative").print_stats(40)
    print(f"\n{B} x {K} x {N}: us per step (back-to-back, one synchronize)")
    for name, host, wall, gpu, busy in table:
        print(f"  {name:38s} host {host:8.1f}  wall {wall:8.1f}  GPU kernels {gpu:8.1f}  behind busy GPU {busy:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
