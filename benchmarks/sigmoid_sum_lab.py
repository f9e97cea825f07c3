"""Sweep sigmoid_sum.cu's knobs (rows per block, threads, unroll, load kind) at the bandwidth-test shape and
report GB/s against a large torch sum measured in the same run. Also profiles the host overhead of one small call.
Run on the GPU machine: PYTHONPATH=$PWD python3 benchmarks/sigmoid_sum_lab.py"""

import cProfile
import pstats
import statistics

import cupy as cp
import numpy as np
import torch

import cupy_fused
from cupy_fused import _kernels


def timed(fn, reps=20, warmup=3):
    for _ in range(warmup):
        fn()
    s = torch.cuda.current_stream()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for a, b in events:
        a.record(s)
        fn()
        b.record(s)
    torch.cuda.synchronize()
    return statistics.median(a.elapsed_time(b) for a, b in events)


B, N = 16384, 65536
z = torch.randn(B, N, device="cuda")
bias = torch.randn(N, device="cuda")
ref = torch.sigmoid(z.double() + bias.double()).sum(-1)
hbm = 4 * z.numel() / timed(lambda: z.sum()) / 1e6
print(f"{torch.cuda.get_device_name()}: torch z.sum() {hbm:.0f} GB/s")
zc, bc = cp.from_dlpack(z), cp.from_dlpack(bias)
out = cp.empty(B, cp.float32)
stream = cp.cuda.Stream.from_external(torch.cuda.current_stream())
arch = _kernels.arch_of(0)
rows = []
import sys

for unroll in ((1, 2, 4) if '--sweep' in sys.argv else ()):
    for load in ("__ldcs", "__ldg"):
        module = cp.RawModule(code=_kernels._source("sigmoid_sum.cu"),
                              options=_kernels._options(arch) + (f"-DCF_SS_UNROLL={unroll}", f"-DCF_SS_LOAD={load}"),
                              name_expressions=[f"sigmoid_sum<float, float, {r}, true>" for r in (1, 2, 4, 8)])
        for rpb in (1, 2, 4, 8):
            kern = module.get_function(f"sigmoid_sum<float, float, {rpb}, true>")
            for threads in (128, 256):  # the kernel is built for at most 256 threads
                grid = ((B + rpb - 1) // rpb,)
                args = (zc, np.int64(N), bc, np.uint64(0), np.uint64(0), out, np.int64(B), np.int64(N))
                ms = timed(lambda: kern(grid, (threads,), args, stream=stream))
                err = float((torch.from_dlpack(out).double() - ref).norm() / ref.norm())
                rows.append((unroll, load, rpb, threads, ms, 4 * z.numel() / ms / 1e6, err))

# Host overhead of one small call (torch CUDA tensors), and where it goes.
x, w, b = torch.rand(128, 10, device="cuda"), torch.rand(20, 10, device="cuda"), torch.rand(20, device="cuda")
for _ in range(50):
    cupy_fused.linear_sigmoid_sum(x, w, b)
torch.cuda.synchronize()
import time

t = time.perf_counter()
for _ in range(1000):
    cupy_fused.linear_sigmoid_sum(x, w, b)
torch.cuda.synchronize()
ours_us = (time.perf_counter() - t) * 1e3
t = time.perf_counter()
for _ in range(1000):
    torch.sum(torch.sigmoid(torch.nn.functional.linear(x, w, b)), 1, keepdim=True)
torch.cuda.synchronize()
torch_us = (time.perf_counter() - t) * 1e3
prof = cProfile.Profile()
prof.enable()
for _ in range(300):
    cupy_fused.linear_sigmoid_sum(x, w, b)
prof.disable()
pstats.Stats(prof).sort_stats("tottime").print_stats(18)
print(f"host time per call at 128x10x20: ours {ours_us:.1f} us, torch eager {torch_us:.1f} us")
print("unroll load   rows/block threads     ms    GB/s  frac   rel err")
for unroll, load, rpb, threads, ms, gbps, err in sorted(rows, key=lambda r: r[4]):
    print(f"{unroll:6d} {load:6s} {rpb:10d} {threads:7d} {ms:7.4f} {gbps:7.0f} {gbps / hbm:5.2f} {err:.2e}")
