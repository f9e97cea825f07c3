"""Events timing of the GEMM core's forward tile (t256 and t128, plain and saving; with its epilogue on the consumers
and, where the tree has them, on warps of its own) at one bf16 shape, the tree on PYTHONPATH, with float64 errors of
the sums and of sigmoid' over the first 256 rows: a quick before / after of an epilogue change (graph replay and
peers: probe_core.py).

    PYTHONPATH=<tree> python3 benchmarks/lab/time_core_tile.py [B K N]
"""

import sys

import torch

from cupy_fused.gemm.kernel import GemmKernel, GemmSpec
from cupy_fused.gemm.operands import OPERANDS

B, K, N = (int(v) for v in sys.argv[1:4]) if len(sys.argv) > 3 else (16384, 1024, 65536)
x = torch.randn(B, K, device="cuda", dtype=torch.bfloat16)
w = torch.randn(N, K, device="cuda", dtype=torch.bfloat16) / K**0.5
b = torch.randn(N, device="cuda", dtype=torch.bfloat16) / K**0.5
R = min(B, 256)  # rows checked against float64
z = x[:R].double() @ w.double().T + b.double()
ref, d = torch.sigmoid(z).sum(-1), torch.sigmoid(z) * (1 - torch.sigmoid(z))
forms = (False, True) if "warps" in GemmSpec.__dataclass_fields__ else (False,)  # the epilogue on warps of its own
for bn in (256, 128):
    for save, warps in ((save, warps) for save in (False, True) for warps in forms):
        spec = GemmSpec(OPERANDS["bf16"], bn, False, save, *((True,) if warps else ()))
        exe = GemmKernel(spec, B, N, K, K, K, 0, True)
        out = torch.empty(B, device="cuda", dtype=torch.bfloat16)
        saved = torch.empty(B, N, device="cuda", dtype=torch.bfloat16) if save else None
        ws = torch.empty(max(exe.workspace_bytes, 1), device="cuda", dtype=torch.uint8)
        stream = torch.cuda.current_stream().cuda_stream
        args = (x.data_ptr(), w.data_ptr(), b.data_ptr(), out.data_ptr(), ws.data_ptr(), stream)
        run = lambda: exe.run(*args, saved.data_ptr() if save else 0)  # noqa: E731
        run()
        torch.cuda.synchronize()
        times = []
        for _ in range(7):
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(5):
                run()
            stop.record()
            stop.synchronize()
            times.append(start.elapsed_time(stop) / 5 * 1e3)
        err = ((out[:R].double() - ref).abs().max() / ref.abs().max()).item()
        extra = f"  s' err {((saved[:R].double() - d).abs().max() / d.abs().max()).item():.2e}" if save else ""
        name = f"t{bn}{':ew' if warps else ''}"
        print(f"{B}x{K}x{N} {name:8} {'saving' if save else 'plain '} {sorted(times)[3]:9.1f} us  err {err:.2e}{extra}")
