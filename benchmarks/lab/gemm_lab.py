"""Which cuBLAS call gives torch-parity GEMM time at a shape? Times gemmEx variants (algo, orientation, split-K
through gemmStridedBatchedEx, a larger handle workspace) against torch F.linear, fp32 and TF32.
Run on the GPU machine: PYTHONPATH=$PWD python3 benchmarks/lab/gemm_lab.py [B K N]"""

import ctypes
import statistics
import sys

import cupy as cp
import numpy as np
import torch
from cupy_backends.cuda.libs import cublas

B, K, N = (int(v) for v in sys.argv[1:4]) if len(sys.argv) > 3 else (128, 32768, 32768)
R32F, C32F, TF32 = 0, 68, 77


def timed(fn, reps=20, warmup=3):
    for _ in range(warmup):
        fn()
    s = torch.cuda.current_stream()
    out = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(s)
        fn()
        b.record(s)
        b.synchronize()
        out.append(a.elapsed_time(b))
    return statistics.median(out)


x = torch.randn(B, K, device="cuda")
w = torch.empty(N, K, device="cuda").uniform_(-K**-0.5, K**-0.5)
bias = torch.empty(N, device="cuda").uniform_(-K**-0.5, K**-0.5)
ref = (x.double() @ w.double().T).float()
stream = cp.cuda.Stream.from_external(torch.cuda.current_stream())
handle = cp.cuda.device.get_cublas_handle()
one, zero = np.ones(1, np.float32), np.zeros(1, np.float32)
z = torch.empty(B, N, device="cuda")
rows = []


def gemm_ex(compute, algo=-1, swapped=False):
    cublas.setStream(handle, stream.ptr)
    if not swapped:  # z.T (N x B) = W (N x K) @ x.T
        cublas.gemmEx(handle, 1, 0, N, B, K, one.ctypes.data, w.data_ptr(), R32F, K, x.data_ptr(), R32F, K,
                      zero.ctypes.data, z.data_ptr(), R32F, N, compute, algo)
    else:  # column-major z (B x N) = x (B x K) @ W.T: z's memory is then z.T row-major
        cublas.gemmEx(handle, 1, 0, B, N, K, one.ctypes.data, x.data_ptr(), R32F, K, w.data_ptr(), R32F, K,
                      zero.ctypes.data, z.data_ptr(), R32F, B, compute, algo)


def split_k(compute, splits, parts):
    ks = K // splits
    cublas.setStream(handle, stream.ptr)
    cublas.gemmStridedBatchedEx(handle, 1, 0, N, B, ks, one.ctypes.data, w.data_ptr(), R32F, K, ks,
                                x.data_ptr(), R32F, K, ks, zero.ctypes.data, parts.data_ptr(), R32F, N, B * N,
                                splits, compute, -1)


def check(result):
    return float((result.double() - ref.double()).norm() / ref.double().norm())


for label, compute, tf32 in (("fp32", C32F, False), ("tf32", TF32, True)):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    rows.append((label, "torch F.linear (bias)", timed(lambda: torch.nn.functional.linear(x, w, bias)), None))
    rows.append((label, "torch x @ w.T", timed(lambda: x @ w.T), check(x @ w.T)))
    torch.backends.cuda.matmul.allow_tf32 = False
    for algo in (-1, 99):
        ms = timed(lambda: gemm_ex(compute, algo))
        rows.append((label, f"gemmEx algo {algo}", ms, check(z)))
    ms = timed(lambda: gemm_ex(compute, swapped=True))
    rows.append((label, "gemmEx swapped (z col-major)", ms, check(z.view(N, B).T)))
    for splits in (2, 4, 8):
        if K % splits:
            continue
        parts = torch.empty(splits, B, N, device="cuda")
        ms = timed(lambda: split_k(compute, splits, parts))
        rows.append((label, f"split-K {splits} (batched, no reduce)", ms, check(parts.sum(0))))
        del parts

# A larger workspace on CuPy's handle (cupy_backends has no cublasSetWorkspace: call it through ctypes).
try:
    lib = next(line.split()[-1] for line in open("/proc/self/maps") if "libcublas.so" in line)
    cublas_lib = ctypes.CDLL(lib)
    ws = torch.empty(64 * 2**20, dtype=torch.uint8, device="cuda")
    status = cublas_lib.cublasSetWorkspace_v2(ctypes.c_void_p(handle), ctypes.c_void_p(ws.data_ptr()),
                                              ctypes.c_size_t(ws.numel()))
    for label, compute in (("fp32", C32F), ("tf32", TF32)):
        rows.append((label, f"gemmEx + 64 MiB workspace (status {status})", timed(lambda: gemm_ex(compute)), check(z)))
except Exception as exc:  # report, don't hide
    print("workspace variant failed:", repr(exc))

print(f"\n{torch.cuda.get_device_name()} B={B} K={K} N={N}")
for label, name, ms, err in rows:
    print(f"{label:5s} {name:45s} {ms:8.4f} ms  {2 * B * K * N / ms / 1e9:7.1f} TFLOP/s  err {err if err is None else f'{err:.2e}'}")
