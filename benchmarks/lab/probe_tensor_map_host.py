"""Host cost of the small-batch wgmma kernel's tensor maps (issue 8, session 8): cuTensorMapEncodeTiled per call when
x moves, against a cached map, and the wall time per call of the executable with the same or a fresh x each call.
Prediction: an encode costs 1-2 us of host time (one ctypes call into the driver, no GPU work).

    PYTHONPATH=$PWD python3 benchmarks/lab/probe_tensor_map_host.py
"""

import sys
import time

import torch

from cupy_fused.backends import Problem, fused
from cupy_fused.backends.launch import TiledMap


def per_call_us(fn, n=20000):
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - start) / n * 1e6


def main() -> int:
    a, b = torch.empty(32, 4096, device="cuda"), torch.empty(32, 4096, device="cuda")
    m = TiledMap(32, 4096, 4096, 32)
    print(f"point_at, same address:        {per_call_us(lambda i: m.point_at(a.data_ptr())):6.2f} us")
    ptrs = (a.data_ptr(), b.data_ptr())
    print(f"point_at, alternating (encode): {per_call_us(lambda i: m.point_at(ptrs[i & 1])):6.2f} us")
    B, K, N = 32, 4096, 4096
    w = torch.randn(N, K, device="cuda") / 64
    bias = torch.randn(N, device="cuda")
    xs = [torch.randn(B, K, device="cuda") for _ in range(2)]
    p = Problem(B, K, N, "float32", True, K, K, True, 0, 256 * 2**20)
    cfg = fused.tile_configs("float32", "tf32x3", B, True, True, True)[0]
    exe = fused.tile_kernel(p, cfg, 4)
    out = torch.empty(B, device="cuda")
    ws = torch.empty(exe.workspace_bytes, dtype=torch.uint8, device="cuda")
    stream = torch.cuda.current_stream().cuda_stream
    xp = [x.data_ptr() for x in xs]
    for label, pick in (("same x", lambda i: xp[0]), ("fresh x", lambda i: xp[i & 1])):
        for _ in range(3):

            def call(i):
                exe.run(pick(i), w.data_ptr(), bias.data_ptr(), out.data_ptr(), ws.data_ptr(), stream)

            torch.cuda.synchronize()
            start = time.perf_counter()
            n = 2000
            for i in range(n):
                call(i)
            torch.cuda.synchronize()
            print(f"{B} x {K} x {N} {exe.describe()[:40]}... {label}: {(time.perf_counter() - start) / n * 1e6:.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
