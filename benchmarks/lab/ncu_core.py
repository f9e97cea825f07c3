"""One launch each of the GEMM core's forward at a compute-bound and a bandwidth-bound bf16 shape, for ncu:

ncu -k regex:gemm --section SpeedOfLight --section WarpStateStats python3 benchmarks/lab/ncu_core.py [--saves]

``--saves``: instead, the forward tile (t256) at 16384 x 1024 x 65536 without and with sigmoid' saved (session 18:
5.85 ms saving against about 3.7 plain in graph replay; the 2 GB write of s' sits in the epilogue, not overlapped
with the next tile's main loop): add ``--section MemoryWorkloadAnalysis`` to see the stores' share.
"""

import sys

import torch

from cupy_fused.gemm.kernel import GemmKernel, GemmSpec
from cupy_fused.gemm.operands import OPERANDS

if "--saves" in sys.argv:
    runs = [((16384, 1024, 65536), 256, False, False, save) for save in (False, True)]
else:
    runs = [((4096, 4096, 4096), 256, False, False, False), ((1, 8192, 28672), 8, True, False, False)]
for (B, K, N), bn, swapped, cut, save in runs:
    x = torch.randn(B, K, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(N, K, device="cuda", dtype=torch.bfloat16) / K**0.5
    b = torch.zeros(N, device="cuda", dtype=torch.bfloat16)
    exe = GemmKernel(GemmSpec(OPERANDS["bf16"], bn, swapped, save), B, N, K, K, K, 0, cut)
    out = torch.empty(B, device="cuda", dtype=torch.bfloat16)
    saved = torch.empty(B, N, device="cuda", dtype=torch.bfloat16) if save else None
    ws = torch.empty(max(exe.workspace_bytes, 1), device="cuda", dtype=torch.uint8)
    stream = torch.cuda.current_stream().cuda_stream
    exe.run(
        x.data_ptr(), w.data_ptr(), b.data_ptr(), out.data_ptr(), ws.data_ptr(), stream, saved.data_ptr() if save else 0
    )
    torch.cuda.synchronize()
    print(B, K, N, "saving" if save else "plain", exe.describe())
