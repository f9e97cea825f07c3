"""Host time per call of one half GEMM through each route a half training step could take (session 20: under cProfile
one cuBLASLt call of the bf16 step at 1024 x 4096 x 4096 took 35 us of host, profile_training_host.py): our cuBLASLt
Gemm (ctypes), cuBLAS's cublasGemmEx through CuPy's binding, torch.mm, and one of our kernel launches (the
reduction) for scale. Host us per call of back-to-back calls (one synchronize at the end) and GPU us per call (CUDA
events), z = x @ W.T, x (B, K) and W (N, K) bf16, z fp32 (torch.mm: bf16).

    PYTHONPATH=$PWD python3 benchmarks/lab/probe_gemm_host.py [B K N]
"""

import ctypes
import sys
import time

import torch

B, K, N = (int(v) for v in sys.argv[1:4]) if len(sys.argv) > 3 else (1024, 4096, 4096)


def host_and_gpu(fn, calls=500):
    for _ in range(20):
        fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    t = time.perf_counter()
    start.record()
    for _ in range(calls):
        fn()
    stop.record()
    host = (time.perf_counter() - t) / calls * 1e6
    stop.synchronize()
    return host, start.elapsed_time(stop) / calls * 1e3


def main():
    import cupy
    from cupy_backends.cuda.libs import cublas

    from cupy_fused.backends.cublaslt import _CUDA_TYPE, matmul_rows
    from cupy_fused.backends.reduce import SigmoidSum
    from cupy_fused.precision import CUBLAS_COMPUTE_32F

    x = torch.randn(B, K, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(N, K, device="cuda", dtype=torch.bfloat16) / K**0.5
    z = torch.empty(B, N, device="cuda", dtype=torch.float32)
    zh = torch.empty(B, N, device="cuda", dtype=torch.bfloat16)
    stream = torch.cuda.current_stream().cuda_stream
    gemm = matmul_rows(B, N, K, "bfloat16", "float32", CUBLAS_COMPUTE_32F, K, K, N, 0)
    lt_ws = torch.empty(max(gemm.workspace_bytes, 1), device="cuda", dtype=torch.uint8)
    rows = {}
    rows["ours cuBLASLt Gemm.run (ctypes)"] = lambda: gemm.run(
        w.data_ptr(), x.data_ptr(), z.data_ptr(), lt_ws.data_ptr(), stream
    )
    handle = cupy.cuda.device.get_cublas_handle()
    cublas.setStream(handle, stream)
    one, zero = ctypes.c_float(1.0), ctypes.c_float(0.0)
    pa, pb = ctypes.addressof(one), ctypes.addressof(zero)
    bf16, f32 = _CUDA_TYPE["bfloat16"], _CUDA_TYPE["float32"]
    rows["cublasGemmEx (CuPy binding)"] = lambda: cublas.gemmEx(
        handle,
        cublas.CUBLAS_OP_T,
        cublas.CUBLAS_OP_N,
        N,
        B,
        K,
        pa,
        w.data_ptr(),
        bf16,
        K,
        x.data_ptr(),
        bf16,
        K,
        pb,
        z.data_ptr(),
        f32,
        N,
        CUBLAS_COMPUTE_32F,
        cublas.CUBLAS_GEMM_DEFAULT,
    )
    rows["torch.mm(out=bf16)"] = lambda: torch.mm(x, w.t(), out=zh)
    rows["torch.mm (new bf16 result)"] = lambda: torch.mm(x, w.t())
    red = SigmoidSum(B, N, "float32", "bfloat16", True, 0)
    out = torch.empty(B, device="cuda", dtype=torch.bfloat16)
    rows["ours one launch (sigmoid_sum)"] = lambda: red(stream, z.data_ptr(), 0, 0, 0, out.data_ptr(), 0, N)
    ref = (x.double() @ w.double().T).float()
    print(f"{B} x {K} x {N} bf16: host us / GPU us per call (back-to-back)")
    for name, fn in rows.items():
        host, gpu = host_and_gpu(fn)
        print(f"  {name:34s} host {host:7.1f}  GPU {gpu:7.1f}")
    for name in ("ours cuBLASLt Gemm.run (ctypes)", "cublasGemmEx (CuPy binding)"):
        fn = rows[name]
        z.zero_()
        fn()
        torch.cuda.synchronize()
        print(f"  {name}: max abs err vs float64: {(z - ref).abs().max().item():.2e}")


if __name__ == "__main__":
    main()
