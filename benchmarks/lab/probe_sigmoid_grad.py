"""The backward's tf32x3 recompute fused with sigmoid' (SigmoidGradGemm, fused_wgmma_sm90.cu: wgmma_sigmoid_grad)
against the GEMM alone (X3Gemm; torch's cuBLAS in TF32 and strict fp32), and with each of its outputs switched off (gz
row-major, gz.T, column sums) to see what its epilogue costs. CUDA-event medians.

    PYTHONPATH=$PWD python3 benchmarks/lab/probe_sigmoid_grad.py
"""

import cupy as cp
import torch
from probe_x3_gemm import timed  # the lab's event timing (run as a script)

from cupy_fused.backends.fused import SigmoidGradGemm, X3Gemm

DEV = 0


def main():
    rows = []
    for m, n, k in [(16384, 1984, 1024), (4096, 4096, 4096), (4096, 1024, 4096)]:
        rs = cp.random.RandomState(0)
        x = rs.standard_normal((m, k), dtype=cp.float32)
        w = rs.standard_normal((n, k), dtype=cp.float32) / k**0.5
        b = rs.standard_normal(n, dtype=cp.float32)
        g = rs.standard_normal(m, dtype=cp.float32)
        m4 = -(-m // 4) * 4
        z = cp.empty((m, n), cp.float32)
        zt = cp.empty((n, m4), cp.float32)
        part = cp.empty((-(-m // 64), n), cp.float32)
        s = cp.cuda.get_current_stream().ptr
        sg = SigmoidGradGemm(m, n, k, k, k, n, m4, n, DEV)
        ws = cp.empty(max(sg.workspace_bytes, 1), cp.uint8)
        outs = {"all": (z, zt, part), "z only": (z, None, None), "zt only": (None, zt, None), "none": (None,) * 3}
        for label, (oz, ozt, op) in outs.items():
            ptrs = [0 if o is None else o.data.ptr for o in (oz, ozt, op)]
            fn = lambda ptrs=ptrs: sg.run(x.data.ptr, w.data.ptr, b.data.ptr, g.data.ptr, *ptrs, ws.data.ptr, s)
            rows.append((f"{m}x{n}x{k}", f"fused {label}", timed(fn)))
        xg = X3Gemm(m, n, k, k, k, n, DEV)
        xws = cp.empty(max(xg.workspace_bytes, 1), cp.uint8)
        gemm = lambda: xg.run(x.data.ptr, w.data.ptr, z.data.ptr, xws.data.ptr, s)
        rows.append((f"{m}x{n}x{k}", "X3Gemm", timed(gemm)))
        tx, tw = torch.as_tensor(x, device="cuda"), torch.as_tensor(w, device="cuda")
        torch.backends.cuda.matmul.allow_tf32 = True
        rows.append((f"{m}x{n}x{k}", "torch tf32 x @ w.T", timed(lambda: tx @ tw.T)))
        torch.backends.cuda.matmul.allow_tf32 = False
        rows.append((f"{m}x{n}x{k}", "torch fp32 x @ w.T", timed(lambda: tx @ tw.T)))
        x = w = z = zt = part = tx = tw = None
        cp.get_default_memory_pool().free_all_blocks()
    print(f"{'M x N x K':>18} {'variant':>22} {'ms':>8}")
    for case, name, ms in rows:
        print(f"{case:>18} {name:>22} {ms:8.3f}")


if __name__ == "__main__":
    main()
