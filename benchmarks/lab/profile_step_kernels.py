"""GPU kernels of one training step through cupy_fused.torch (torch profiler, summed per step), for the tree first on
PYTHONPATH, and the step's median time in CUDA events beside torch autograd's, timed as the bench's training section
times them: `profile_step_kernels.py B K N [dtype]`. Session 17: where the bf16 step at 16384 x 1024 x 65536 spends
its 15.8 ms of kernels."""

import sys

import torch
from torch.autograd import DeviceType

import cupy_fused.torch as cft
from cupy_fused.bench.peers import torch_model
from cupy_fused.bench.timing import GpuTimer, random_inputs

B, K, N = (int(a) for a in sys.argv[1:4])
dtype = getattr(torch, sys.argv[4] if len(sys.argv) > 4 else "bfloat16")
x, w, b = (t.requires_grad_() for t in random_inputs(torch, B, K, N, dtype))
g = torch.rand(B, 1, device="cuda", dtype=dtype)
model = torch_model()


def step(i=0):
    return torch.autograd.grad(cft.linear_sigmoid_sum(x, w, b), (x, w, b), g)


def torch_step(i=0):
    return torch.autograd.grad(model(x, w, b), (x, w, b), g)


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
timer = GpuTimer(torch)  # the bench's training timing: event pairs over back-to-back steps, median
ours, peer = timer(step, 1, warmup=2, reps=7), timer(torch_step, 1, warmup=2, reps=7)
print(f"{B} x {K} x {N} {dtype}: step ms ours {ours:.3f}, torch {peer:.3f}")
