"""GPU kernels of one training step through cupy_fused.torch (torch profiler, summed per step), for the tree first on
PYTHONPATH, and the step's median time in CUDA events beside torch autograd's: `profile_step_kernels.py B K N
[dtype]`. Session 17: where the bf16 step at 16384 x 1024 x 65536 spends its 15.8 ms of kernels."""

import sys

import torch
from torch.autograd import DeviceType

import cupy_fused.torch as cft

B, K, N = (int(a) for a in sys.argv[1:4])
dtype = getattr(torch, sys.argv[4] if len(sys.argv) > 4 else "bfloat16")
x = torch.randn(B, K, device="cuda", dtype=dtype, requires_grad=True)
w = (torch.rand(N, K, device="cuda", dtype=dtype) * 2 - 1).div_(K**0.5).requires_grad_()
b = (torch.rand(N, device="cuda", dtype=dtype) * 2 - 1).div_(K**0.5).requires_grad_()
g = torch.rand(B, 1, device="cuda", dtype=dtype)


def step():
    return torch.autograd.grad(cft.linear_sigmoid_sum(x, w, b), (x, w, b), g)


def torch_step():
    return torch.autograd.grad(torch.sigmoid(torch.nn.functional.linear(x, w, b)).sum(-1, keepdim=True), (x, w, b), g)


def median_ms(fn, reps=7):
    fn()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[reps // 2]


step()
torch.cuda.synchronize()
steps = 3
with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
events = [e for e in prof.key_averages() if e.device_type == DeviceType.CUDA]
print(f"{B} x {K} x {N} {dtype}: {sum(e.self_device_time_total for e in events) / steps:.0f} us of kernels a step")
for e in sorted(events, key=lambda e: -e.self_device_time_total)[:8]:
    print(f"  {e.self_device_time_total / steps:9.1f} us  x{e.count // steps:<3d} {e.key[:100]}")
print(f"{B} x {K} x {N} {dtype}: step ms ours {median_ms(step):.3f}, torch {median_ms(torch_step):.3f}")
