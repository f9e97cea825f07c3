"""Backward GEMMs at the fp32-accurate class through cuBLASLt's TF32 path (issue 9): each operand split into
hi = tf32(v) and lo = v - hi, the three products hi*hi + hi*lo + lo*hi as ONE TF32 GEMM over a reduction stacked
three times ([a_hi a_hi a_lo] . [b_hi b_lo b_hi]). Measures, against strict fp32 cuBLAS (CUBLAS_COMPUTE_32F) and a
float64 reference: time (CUDA events, median) and normwise relative error, with the reduction cut into blocks of
``rb`` rows added in fp32 (beta = 1) to show how the tensor cores' accumulation error grows with its length.

    PYTHONPATH=$PWD python3 benchmarks/lab/probe_x3_gemm.py

Block sizes must divide the reduction: the grad_x rows of 512 x 2048 x 3000 with blocks of 256 and 1024 in
run 21's log are garbage (a ragged last block read past its slice). The case functions repeat their set-up on
purpose: each is a self-contained record of one layout.
"""

import statistics

import cupy as cp

from cupy_fused.backends.cublaslt import Gemm
from cupy_fused.precision import CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32

DEV = 0


def split(v):
    """(hi, lo): hi = v rounded to TF32 (nearest, ties away: as cvt.rna), lo = v - hi exactly."""
    bits = v.view(cp.uint32)
    hi = ((bits + cp.uint32(0x1000)) & cp.uint32(0xFFFFE000)).view(cp.float32)
    return hi, v - hi


def timed(fn, reps=7):
    fn()
    times = []
    for _ in range(reps):
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(cp.cuda.get_elapsed_time(a, b))
    return statistics.median(times)


def rel(d, ref):
    return float(cp.linalg.norm(d.astype(cp.float64) - ref) / cp.linalg.norm(ref))


def grad_w_case(r, n, k, blocks):
    """D (n x k) = G.T (n x r) @ X (r x k), G and X row-major (r x n), (r x k): grad_W = gz.T @ x."""
    rs = cp.random.RandomState(1)
    g = (rs.standard_normal((r, n), dtype=cp.float32) * 0.25).astype(cp.float32)
    x = rs.standard_normal((r, k), dtype=cp.float32)
    ref = g.T.astype(cp.float64) @ x.astype(cp.float64)
    d = cp.empty((n, k), cp.float32)
    ws = cp.empty(Gemm.MAX_WORKSPACE, cp.uint8)
    s = cp.cuda.get_current_stream().ptr
    strict = Gemm(k, n, r, "float32", "float32", CUBLAS_COMPUTE_32F, False, True, k, n, k, DEV)
    t = timed(lambda: strict.run(x.data.ptr, g.data.ptr, d.data.ptr, ws.data.ptr, s))
    rows = [("strict fp32", t, rel(d, ref))]
    gh, gl = split(g)
    xh, xl = split(x)
    for rb in blocks:
        rb = min(rb, r)
        nb = (r + rb - 1) // rb
        gs = [cp.concatenate([gh[i * rb : (i + 1) * rb]] * 2 + [gl[i * rb : (i + 1) * rb]]) for i in range(nb)]
        xs = [
            cp.concatenate([xh[i * rb : (i + 1) * rb], xl[i * rb : (i + 1) * rb], xh[i * rb : (i + 1) * rb]])
            for i in range(nb)
        ]
        gemm = Gemm(k, n, 3 * rb, "float32", "float32", CUBLAS_COMPUTE_32F_FAST_TF32, False, True, k, n, k, DEV)

        def run():
            for i in range(nb):
                gemm.run(xs[i].data.ptr, gs[i].data.ptr, d.data.ptr, ws.data.ptr, s, accumulate=i > 0)

        t = timed(run)
        rows.append((f"x3 stacked rb={rb}", t, rel(d, ref)))
        tsplit = timed(lambda: (split(g), split(x)))
        rows[-1] += (tsplit,)
    return rows


def grad_x_case(r, n, k, blocks):
    """D (r x k) = G (r x n) @ W (n x k): grad_x = gz @ W (reduction over n)."""
    rs = cp.random.RandomState(2)
    g = (rs.standard_normal((r, n), dtype=cp.float32) * 0.25).astype(cp.float32)
    w = rs.standard_normal((n, k), dtype=cp.float32) / k**0.5
    ref = g.astype(cp.float64) @ w.astype(cp.float64)
    d = cp.empty((r, k), cp.float32)
    ws = cp.empty(Gemm.MAX_WORKSPACE, cp.uint8)
    s = cp.cuda.get_current_stream().ptr
    strict = Gemm(k, r, n, "float32", "float32", CUBLAS_COMPUTE_32F, False, False, k, n, k, DEV)
    t = timed(lambda: strict.run(w.data.ptr, g.data.ptr, d.data.ptr, ws.data.ptr, s))
    rows = [("strict fp32", t, rel(d, ref))]
    gh, gl = split(g)
    wh, wl = split(w)
    for nb_cols in blocks:
        nb_cols = min(nb_cols, n)
        nb = (n + nb_cols - 1) // nb_cols
        sl = [slice(i * nb_cols, (i + 1) * nb_cols) for i in range(nb)]
        gs = [cp.ascontiguousarray(cp.concatenate([gh[:, q], gl[:, q], gh[:, q]], axis=1)) for q in sl]
        wsx = [cp.concatenate([wh[q], wh[q], wl[q]]) for q in sl]
        gemm = Gemm(
            k, r, 3 * nb_cols, "float32", "float32", CUBLAS_COMPUTE_32F_FAST_TF32, False, False, k, 3 * nb_cols, k, DEV
        )

        def run():
            for i in range(nb):
                gemm.run(wsx[i].data.ptr, gs[i].data.ptr, d.data.ptr, ws.data.ptr, s, accumulate=i > 0)

        t = timed(run)
        rows.append((f"x3 stacked nb={nb_cols}", t, rel(d, ref), timed(lambda: (split(g), split(w)))))
    return rows


def main():
    table = []
    for r, n, k in [(128, 32768, 32768), (4096, 4096, 4096), (512, 3000, 2048)]:
        for row in grad_w_case(r, n, k, [128, 512, 1024, 4096]):
            table.append((f"grad_W {r}x{k}x{n}",) + row)
        cp.get_default_memory_pool().free_all_blocks()
    for r, n, k in [(4096, 4096, 4096), (1024, 4096, 4096), (512, 3000, 2048)]:
        for row in grad_x_case(r, n, k, [256, 1024, 4096]):
            table.append((f"grad_x {r}x{k}x{n}",) + row)
        cp.get_default_memory_pool().free_all_blocks()
    print(f"{'case':>26} {'variant':>22} {'ms':>8} {'rel err':>9} {'split ms':>9}")
    for case, name, ms, err, *extra in table:
        print(f"{case:>26} {name:>22} {ms:8.3f} {err:9.2e} {extra[0] if extra else float('nan'):9.3f}")


if __name__ == "__main__":
    main()
