"""Host time of the two-pass method's call (cuBLASLt GEMM + our reduction) at shapes where "tf32" is host-bound in
the calls section: the executable's GPU and host time per call (tune.time_calls, as the tuner sees them), then each
of its two launches alone, host time per call of 2000 back-to-back calls.

    PYTHONPATH=$PWD python3 benchmarks/lab/probe_cublas_host.py
"""

import time

import torch

from cupy_fused import loader, tune
from cupy_fused.backends import Problem, cublas

DEV = 0


def host_us(fn, calls=2000):
    for _ in range(50):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(calls):
        fn()
    host = (time.perf_counter() - t) / calls * 1e6
    torch.cuda.synchronize()
    return host


def main():
    info = loader.device_info(DEV)
    stream = torch.cuda.current_stream().cuda_stream
    for B, K, N in ((32, 4096, 4096), (128, 1024, 1024), (4096, 1024, 1024), (128, 10, 20)):
        x, w, b = torch.randn(B, K, device="cuda"), torch.randn(N, K, device="cuda"), torch.randn(N, device="cuda")
        out = torch.empty(B, device="cuda")
        p = Problem(B, K, N, "float32", True, K, K, True, DEV, 256 * 2**20)
        for precision in ("tf32", "ieee"):
            exe = cublas.TwoPass(p, precision)
            workspace = torch.empty(exe.workspace_bytes, dtype=torch.uint8, device="cuda")
            ws = workspace.data_ptr()
            args = (x.data_ptr(), w.data_ptr(), b.data_ptr(), out.data_ptr(), ws, stream)
            gpu, host = tune.time_calls(lambda: exe.run(*args), stream, DEV, info.clock_khz)
            gemm = host_us(lambda: exe._full.run(w.data_ptr(), x.data_ptr(), ws, ws + exe._z_bytes, stream))
            red = host_us(lambda: exe._reduce(stream, ws, b.data_ptr(), 0, 0, out.data_ptr(), 0, N))
            both = host_us(lambda: exe.run(*args))
            print(
                f"{B} x {K} x {N} {precision}: time_calls gpu {gpu * 1e3:.1f} us host {host * 1e3:.1f} us; "
                f"loop host: run {both:.1f}, cublasLtMatmul {gemm:.1f}, reduction {red:.1f} us "
                f"(lt workspace {exe._full.workspace_bytes} B)",
                flush=True,
            )
        model = lambda: torch.sum(torch.sigmoid(torch.nn.functional.linear(x, w, b)), dim=-1, keepdim=True)
        torch.backends.cuda.matmul.allow_tf32 = True
        print(
            f"   torch eager tf32 loop host {host_us(model):.1f} us; torch.mm alone {host_us(lambda: x @ w.T):.1f} us"
        )
        torch.backends.cuda.matmul.allow_tf32 = False


if __name__ == "__main__":
    main()
