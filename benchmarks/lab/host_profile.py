"""Host cost of one small call (torch CUDA tensors, 128 x 10 x 20): wall time per call against torch eager, and a
cProfile of where our time goes. Run on the GPU machine: PYTHONPATH=$PWD python3 benchmarks/lab/host_profile.py"""

import cProfile
import pstats
import time

import torch

import cupy_fused

x, w, b = torch.rand(128, 10, device="cuda"), torch.rand(20, 10, device="cuda"), torch.rand(20, device="cuda")
calls = {
    "torch eager": lambda: torch.sum(torch.sigmoid(torch.nn.functional.linear(x, w, b)), 1, keepdim=True),
    "ours fused": lambda: cupy_fused.linear_sigmoid_sum(x, w, b, method="fused"),
    "ours cublas": lambda: cupy_fused.linear_sigmoid_sum(x, w, b, method="cublas"),
}
results = {}
for name, fn in calls.items():
    for _ in range(100):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(2000):
        fn()
    torch.cuda.synchronize()
    results[name] = (time.perf_counter() - t) / 2000 * 1e6
profile = cProfile.Profile()
profile.enable()
for _ in range(1000):
    calls["ours fused"]()
profile.disable()
pstats.Stats(profile).sort_stats("tottime").print_stats(25)
for name, us in results.items():
    print(f"host time per call at 128x10x20, {name}: {us:.1f} us")
