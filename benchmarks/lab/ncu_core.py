"""One launch each of the GEMM core's forward at a compute-bound and a bandwidth-bound bf16 shape, for ncu:

ncu -k regex:gemm --section SpeedOfLight --section WarpStateStats python3 benchmarks/lab/ncu_core.py
"""

import torch

from cupy_fused.gemm.kernel import GemmKernel, GemmSpec
from cupy_fused.gemm.operands import OPERANDS

for (B, K, N), bn, swapped, cut in (((4096, 4096, 4096), 256, False, False), ((1, 8192, 28672), 8, True, False)):
    x = torch.randn(B, K, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(N, K, device="cuda", dtype=torch.bfloat16) / K**0.5
    b = torch.zeros(N, device="cuda", dtype=torch.bfloat16)
    exe = GemmKernel(GemmSpec(OPERANDS["bf16"], bn, swapped, False), B, N, K, K, K, 0, cut)
    out = torch.empty(B, device="cuda", dtype=torch.bfloat16)
    ws = torch.empty(max(exe.workspace_bytes, 1), device="cuda", dtype=torch.uint8)
    stream = torch.cuda.current_stream().cuda_stream
    exe.run(x.data_ptr(), w.data_ptr(), b.data_ptr(), out.data_ptr(), ws.data_ptr(), stream)
    torch.cuda.synchronize()
    print(B, K, N, exe.describe())
