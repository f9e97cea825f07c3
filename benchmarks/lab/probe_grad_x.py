"""grad_x = gz @ W at small batches (issue 9): the small-batch grad_x wgmma kernel (SmallBatchGradX,
kernels/wgmma_grad_x_sm90.cu, W read as it is and streamed once) against the backward's tile GEMM reading W as it is
(X3Gemm, b_kmajor=False: transposing producer) and cuBLAS (strict fp32, TF32).

Checks first, on odd shapes whose padding columns (of gz and of W) hold NaN: normwise relative error against
float64, finiteness, and bitwise repeatability; the accumulate flag (c += gz @ W). Then CUDA-event medians, with the
HBM floor (W read once).

    PYTHONPATH=$PWD python3 benchmarks/lab/probe_grad_x.py
"""

import cupy as cp
from probe_x3_gemm import rel, timed  # the lab's event timing and normwise error (run as a script)

from cupy_fused.backends.cublaslt import Gemm
from cupy_fused.backends.fused import SmallBatchGradX, X3Gemm
from cupy_fused.precision import CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32

DEV = 0
HBM_READ_GBS = 3000.0  # about what the H100 reads (GB/s)


def operands(m, k, n, pad=0, seed=0):
    """gz (m x k, row stride k rounded up to 4 + pad, NaN in the padding) and W (k x n, likewise)."""
    rs = cp.random.RandomState(seed)
    lda, ldb = -(-k // 4) * 4 + 4 * pad, -(-n // 4) * 4 + 4 * pad
    a = cp.full((m, lda), cp.nan, cp.float32)
    a[:, :k] = rs.standard_normal((m, k), dtype=cp.float32) * 0.25
    b = cp.full((k, ldb), cp.nan, cp.float32)
    b[:, :n] = rs.uniform(-1, 1, (k, n), dtype=cp.float32) / k**0.5
    return a, lda, b, ldb


def variants(m, n, k, a, lda, b, ldb, cublas=True):
    """(name, run(c, accumulate)) for every way of computing c = gz @ W."""
    s = cp.cuda.get_current_stream().ptr
    ws = cp.empty(Gemm.MAX_WORKSPACE, cp.uint8)
    out = []
    sg = SmallBatchGradX(m, n, k, lda, ldb, n, DEV)
    sws = cp.empty(sg.workspace_bytes, cp.uint8)
    out.append(
        ("small-batch x3", lambda c, acc=False: sg.run(a.data.ptr, b.data.ptr, c.data.ptr, sws.data.ptr, s, acc))
    )
    xg = X3Gemm(m, n, k, lda, ldb, n, DEV, b_kmajor=False)
    xws = cp.empty(max(xg.workspace_bytes, 1), cp.uint8)
    out.append(
        ("X3Gemm (N-major)", lambda c, acc=False: xg.run(a.data.ptr, b.data.ptr, c.data.ptr, xws.data.ptr, s, acc))
    )
    if cublas:
        for name, ct in (("cuBLAS fp32", CUBLAS_COMPUTE_32F), ("cuBLAS tf32", CUBLAS_COMPUTE_32F_FAST_TF32)):
            g = Gemm(n, m, k, "float32", "float32", ct, False, False, ldb, lda, n, DEV, (16, 16, 16))
            out.append((name, lambda c, acc=False, g=g: g.run(b.data.ptr, a.data.ptr, c.data.ptr, ws.data.ptr, s, acc)))
    return out


def main():
    print("checks (normwise relative error against float64; NaN in the padding columns of gz and W)")
    for m, k, n, pad in [
        (7, 130, 260, 1),
        (100, 4100, 2100, 0),
        (64, 33, 129, 2),
        (128, 64, 128, 0),
        (1, 3000, 5, 1),
        (65, 20000, 300, 0),
    ]:
        a, lda, b, ldb = operands(m, k, n, pad)
        ref = a[:, :k].astype(cp.float64) @ b[:, :n].astype(cp.float64)
        for name, run in variants(m, n, k, a, lda, b, ldb):
            c = cp.full((m, n), cp.nan, cp.float32)
            run(c)
            c2 = cp.full((m, n), cp.nan, cp.float32)
            run(c2)
            c3 = c.copy()
            run(c3, True)  # c3 = c + gz @ W
            same = bool((c.view(cp.uint32) == c2.view(cp.uint32)).all())
            print(
                f"  {m}x{k}x{n} pad {pad} {name:>16}: {rel(c, ref):.2e}  finite {bool(cp.isfinite(c).all())}  "
                f"repeatable {same}  accumulate {rel(c3, 2 * ref):.2e}"
            )
        cp.get_default_memory_pool().free_all_blocks()

    rows = []
    for m, k, n in [
        (128, 32768, 32768),
        (100, 32768, 32768),
        (64, 32768, 32768),
        (32, 32768, 32768),
        (128, 16384, 16384),
        (128, 4096, 4096),
        (128, 3000, 2048),
        (128, 65536, 1024),
    ]:
        a, lda, b, ldb = operands(m, k, n)
        c = cp.empty((m, n), cp.float32)
        floor = k * n * 4 / HBM_READ_GBS / 1e6
        for name, run in variants(m, n, k, a, lda, b, ldb):
            rows.append((f"{m}x{k}x{n}", name, timed(lambda run=run, c=c: run(c)), floor))
        del a, b, c
        cp.get_default_memory_pool().free_all_blocks()
    print(f"\n{'B x N x K':>18} {'variant':>16} {'ms':>8} {'W read floor':>12}")
    for case, name, ms, floor in rows:
        print(f"{case:>18} {name:>16} {ms:8.3f} {floor:12.3f}")


if __name__ == "__main__":
    main()
