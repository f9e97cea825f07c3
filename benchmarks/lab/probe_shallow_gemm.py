"""grad_W = gz.T @ x at small batches (issue 9): the resident shallow-reduction wgmma kernel (ShallowGemm,
kernels/wgmma_shallow_sm90.cu) against the backward's tile GEMM (X3Gemm over x.T) and cuBLAS (strict fp32, TF32).

Checks first, on odd shapes whose padding columns of gz.T hold NaN (they must not be read): normwise relative error
against float64 for every variant. Then CUDA-event medians at the KernelBench shape and a few others, with the HBM
floor (c written once).

    PYTHONPATH=$PWD python3 benchmarks/lab/probe_shallow_gemm.py
"""

import cupy as cp
from probe_x3_gemm import rel, timed  # the lab's event timing and normwise error (run as a script)

from cupy_fused.backends.cublaslt import Gemm
from cupy_fused.backends.fused import ShallowGemm, X3Gemm
from cupy_fused.precision import CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32

DEV = 0
HBM_WRITE_GBS = 3000.0  # about what the H100 writes (GB/s)


def operands(m, n, k, ldb_pad=0, seed=0):
    """gz.T (m x k, row stride k rounded up to 4, NaN in the padding) and x (k x n, row stride n + ldb_pad)."""
    rs = cp.random.RandomState(seed)
    k4 = -(-k // 4) * 4
    gt = cp.full((m, k4), cp.nan, cp.float32)
    gt[:, :k] = rs.standard_normal((m, k), dtype=cp.float32) * 0.25
    xb = rs.standard_normal((k, n + ldb_pad), dtype=cp.float32)
    return gt, xb[:, :n], xb.shape[1], k4


def variants(m, n, k, gt, x, ldb, k4):
    """(name, run(c), precision) for every way of computing c = gz.T @ x."""
    s = cp.cuda.get_current_stream().ptr
    ws = cp.empty(Gemm.MAX_WORKSPACE, cp.uint8)
    xt = cp.zeros((n, k4), cp.float32)
    xt[:, :k] = x.T
    out = []
    sg = ShallowGemm(m, n, k, k4, ldb, n, DEV)
    out.append(("shallow x3", lambda c: sg.run(gt.data.ptr, x.data.ptr, c.data.ptr, 0, s)))
    xg = X3Gemm(m, n, k, k4, k4, n, DEV)
    xws = cp.empty(max(xg.workspace_bytes, 1), cp.uint8)
    out.append(("X3Gemm (x.T)", lambda c: xg.run(gt.data.ptr, xt.data.ptr, c.data.ptr, xws.data.ptr, s)))
    for name, ct in (("cuBLAS fp32", CUBLAS_COMPUTE_32F), ("cuBLAS tf32", CUBLAS_COMPUTE_32F_FAST_TF32)):
        g = Gemm(n, m, k, "float32", "float32", ct, False, False, ldb, k4, n, DEV, (16, 16, 16))
        out.append((name, lambda c, g=g: g.run(x.data.ptr, gt.data.ptr, c.data.ptr, ws.data.ptr, s)))
    return out


def main():
    print("checks (normwise relative error against float64; NaN in gz.T's padding columns)")
    for m, n, k, pad in [(130, 260, 33, 3), (64, 128, 1, 0), (1000, 777, 100, 1), (4096, 4100, 128, 0), (7, 5, 128, 0)]:
        gt, x, ldb, k4 = operands(m, n, k, pad)
        ref = gt[:, :k].astype(cp.float64) @ x.astype(cp.float64)
        for name, run in variants(m, n, k, gt, x, ldb, k4):
            c = cp.full((m, n), cp.nan, cp.float32)
            run(c)
            print(f"  {m}x{n}x{k} pad {pad:>2} {name:>16}: {rel(c, ref):.2e}  finite {bool(cp.isfinite(c).all())}")
        cp.get_default_memory_pool().free_all_blocks()

    rows = []
    for m, n, k in [(32768, 32768, 128), (32768, 32768, 64), (16384, 16384, 128), (4096, 4096, 128), (3000, 2048, 128)]:
        gt, x, ldb, k4 = operands(m, n, k)
        c = cp.empty((m, n), cp.float32)
        floor = m * n * 4 / HBM_WRITE_GBS / 1e6
        for name, run in variants(m, n, k, gt, x, ldb, k4):
            rows.append((f"{m}x{n}x{k}", name, timed(lambda run=run, c=c: run(c)), floor))
        del gt, x, c
        cp.get_default_memory_pool().free_all_blocks()
    print(f"\n{'M x N x K':>18} {'variant':>16} {'ms':>8} {'c write floor':>13}")
    for case, name, ms, floor in rows:
        print(f"{case:>18} {name:>16} {ms:8.3f} {floor:13.3f}")


if __name__ == "__main__":
    main()
