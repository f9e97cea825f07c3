"""The backward's tf32x3 GEMM able to read an N-major b and the producer's cheaper copies (issue 9, session 6),
against the session-5 kernel (kernels_session5/: K-major operands only, built in this process) and cuBLAS. Runs 1-5
of this script measured a persistent variant (benchmarks/NOTES.md, session 6); the file now measures the kept one.

    PYTHONPATH=$PWD python3 benchmarks/lab/probe_persistent_gemm.py

1. correctness of X3Gemm (both b layouts, split-K, several tiles per block) against float64, repeat bit-identical;
2. the GEMMs of a training step's backward: grad_W = gz.T @ x, grad_x = gz @ W (old: on K-major copies; new: b read
   as it is), strict and TF32 cuBLAS beside them;
3. the forward's wgmma_tile, old and new build (the pipeline was restructured around it: it must not move);
4. a whole training step (cupy_fused.torch) against torch fp32 autograd.
CUDA events on the current stream, medians; a table at the end.
"""

import statistics
from pathlib import Path

import cupy as cp
import probe_x3_gemm  # this folder: its timer and error
import torch

import cupy_fused.torch as cft
from cupy_fused import loader
from cupy_fused.backends import Problem
from cupy_fused.backends.cublaslt import Gemm
from cupy_fused.backends.fused import (
    GROUP_M,
    TileKernel,
    X3Gemm,
    _k_split,
    _splits,
    _wgmma_smem,
    split_count,
    tile_configs,
)
from cupy_fused.backends.launch import I32, I64, U64, Launch, next_epoch
from cupy_fused.precision import CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32

DEV = 0
rel = probe_x3_gemm.rel
BEFORE = Path(__file__).parent / "kernels_session5"
SMS = loader.device_info(DEV).sms
TABLE = []


def old_function(name):
    opts = ("-std=c++17", f"-I{BEFORE}", f"-I{loader.kernel_dir()}", "-arch=sm_90a")
    mod = cp.RawModule(code=(BEFORE / "fused_wgmma_sm90.cu").read_text(), options=opts, name_expressions=(name,))
    return mod.get_function(name).kernel


def timed(fn):
    return probe_x3_gemm.timed(fn, reps=9)


def old_gemm(m, n, k, lda, ldb, ldc):
    """The session-5 wgmma_gemm<128, 3>: one tile per block, both operands K-major."""
    tiles = -(-m // 128) * -(-n // 128)
    k_split, splits = _k_split(k, _splits(tiles, SMS, k))
    ws = cp.empty(
        max(16, 8 * tiles * splits + 4 * m * -(-n // 128) + tiles * (splits - 1) * 128 * 128 * 4 + 64), cp.uint8
    )
    name = "fused::wgmma_gemm<128, 3>"
    params = [(U64, None), (I64, lda), (U64, None), (I64, ldb), (U64, None), (U64, None), (I64, ldc)]
    params += [(I32, m), (I32, n), (I32, k), (I32, splits), (I64, k_split), (I32, GROUP_M), (I32, None), (U64, None)]
    launch = Launch(old_function(name), name, tiles * splits, 384, _wgmma_smem(True, 128, 3), params, DEV)
    return lambda a, b, c, stream, accumulate=False: launch(stream, a, b, ws.data.ptr, c, int(accumulate), next_epoch())


def new_gemm(m, n, k, lda, ldb, ldc, b_kmajor):
    g = X3Gemm(m, n, k, lda, ldb, ldc, DEV, b_kmajor=b_kmajor)
    ws = cp.empty(max(16, g.workspace_bytes), cp.uint8)
    return lambda a, b, c, stream, accumulate=False: g.run(a, b, c, ws.data.ptr, stream, accumulate)


def padded(rows, cols, rs):
    """A (rows, cols) float32 view of a (rows, cols rounded up to 4) array: 16-byte aligned rows."""
    base = rs.standard_normal((rows, -(-cols // 4) * 4), dtype=cp.float32)
    return base[:, :cols]


def check_gemms():
    rs = cp.random.RandomState(5)
    s = cp.cuda.get_current_stream().ptr
    ok = True
    for m, n, k in [(1, 1, 1), (3, 5, 7), (129, 131, 67), (128, 128, 4096), (300, 4100, 33), (2048, 2048, 64)]:
        for b_kmajor in (True, False):
            a = padded(m, k, rs)
            b = padded(n, k, rs) if b_kmajor else padded(k, n, rs)
            c0 = rs.standard_normal((m, n), dtype=cp.float32)
            bt = b.astype(cp.float64) if not b_kmajor else b.T.astype(cp.float64)
            ref = c0.astype(cp.float64) + a.astype(cp.float64) @ bt
            run = new_gemm(m, n, k, a.strides[0] // 4, b.strides[0] // 4, n, b_kmajor)
            outs = []
            for _ in range(2):
                c = c0.copy()
                run(a.data.ptr, b.data.ptr, c.data.ptr, s, accumulate=True)
                outs.append(c)
            cp.cuda.Device().synchronize()
            err = rel(outs[0], ref)
            strict = rel(c0 + a @ (b.T if b_kmajor else b), ref)  # cuBLAS fp32
            same = bool(cp.array_equal(outs[0], outs[1]))
            good = err <= 2 * strict + 1e-7 and same
            ok &= good
            print(
                f"check m={m} n={n} k={k} b_kmajor={b_kmajor}: rel err {err:.2e} (strict fp32 {strict:.2e}) "
                f"repeat-identical {same} {'ok' if good else 'FAIL'}",
                flush=True,
            )
    return ok


def gemm_rows():
    s = cp.cuda.get_current_stream().ptr
    rs = cp.random.RandomState(1)
    ws = cp.empty(Gemm.MAX_WORKSPACE, cp.uint8)
    # grad_W (n x k) = gz.T (n x r) . x (r x k)
    for r, k, n in [(128, 32768, 32768), (4096, 4096, 4096), (512, 2048, 3000)]:
        g = (rs.standard_normal((r, n), dtype=cp.float32) * 0.25).astype(cp.float32)
        x = rs.standard_normal((r, k), dtype=cp.float32)
        gt, xt = cp.ascontiguousarray(g.T), cp.ascontiguousarray(x.T)  # r is a multiple of 4 here
        ref = gt.astype(cp.float64) @ x.astype(cp.float64)
        d = cp.empty((n, k), cp.float32)
        case = f"grad_W {r}x{k}x{n}"
        old = old_gemm(n, k, r, r, r, k)
        TABLE.append(
            (
                case,
                "old tf32x3 (K-major copies)",
                timed(lambda: old(gt.data.ptr, xt.data.ptr, d.data.ptr, s)),
                rel(d, ref),
            )
        )
        for b_kmajor in (True, False):
            new = new_gemm(n, k, r, r, r if b_kmajor else k, k, b_kmajor)
            bp = xt if b_kmajor else x
            t = timed(lambda: new(gt.data.ptr, bp.data.ptr, d.data.ptr, s))
            TABLE.append((case, f"new {'K' if b_kmajor else 'N'}-major b", t, rel(d, ref)))
        TABLE.append((case, "old again", timed(lambda: old(gt.data.ptr, xt.data.ptr, d.data.ptr, s)), rel(d, ref)))
        for label, ct in (("cuBLAS strict", CUBLAS_COMPUTE_32F), ("cuBLAS TF32", CUBLAS_COMPUTE_32F_FAST_TF32)):
            gemm = Gemm(k, n, r, "float32", "float32", ct, False, True, k, n, k, DEV)
            t = timed(lambda: gemm.run(x.data.ptr, g.data.ptr, d.data.ptr, ws.data.ptr, s))
            TABLE.append((case, label, t, rel(d, ref)))
        TABLE.append(
            (
                case,
                "transpose x.T + gz.T (cupy)",
                timed(lambda: (cp.ascontiguousarray(g.T), cp.ascontiguousarray(x.T))),
                0.0,
            )
        )
        cp.get_default_memory_pool().free_all_blocks()
    # grad_x (r x k) = gz (r x n) . W (n x k)
    for r, k, n in [(32, 32768, 32768), (64, 32768, 32768), (128, 32768, 32768), (4096, 4096, 4096), (512, 2048, 3000)]:
        g = (rs.standard_normal((r, n), dtype=cp.float32) * 0.25).astype(cp.float32)
        w = rs.standard_normal((n, k), dtype=cp.float32) / k**0.5
        ref = g.astype(cp.float64) @ w.astype(cp.float64)
        d = cp.empty((r, k), cp.float32)
        case = f"grad_x {r}x{k}x{n}"
        if r >= 512:
            wt = cp.ascontiguousarray(w.T)
            old = old_gemm(r, k, n, n, n, k)
            TABLE.append(
                (case, "old tf32x3 (W.T copy)", timed(lambda: old(g.data.ptr, wt.data.ptr, d.data.ptr, s)), rel(d, ref))
            )
            kmaj = new_gemm(r, k, n, n, n, k, True)
            TABLE.append(
                (
                    case,
                    "new K-major (W.T copy)",
                    timed(lambda: kmaj(g.data.ptr, wt.data.ptr, d.data.ptr, s)),
                    rel(d, ref),
                )
            )
            TABLE.append((case, "transpose W.T (cupy)", timed(lambda: cp.ascontiguousarray(w.T)), 0.0))
        new = new_gemm(r, k, n, n, k, k, False)
        TABLE.append((case, "new N-major b", timed(lambda: new(g.data.ptr, w.data.ptr, d.data.ptr, s)), rel(d, ref)))
        for label, ct in (("cuBLAS strict", CUBLAS_COMPUTE_32F), ("cuBLAS TF32", CUBLAS_COMPUTE_32F_FAST_TF32)):
            gemm = Gemm(k, r, n, "float32", "float32", ct, False, False, k, n, k, DEV)
            t = timed(lambda: gemm.run(w.data.ptr, g.data.ptr, d.data.ptr, ws.data.ptr, s))
            TABLE.append((case, label, t, rel(d, ref)))
        cp.get_default_memory_pool().free_all_blocks()


def forward_rows():
    s = cp.cuda.get_current_stream().ptr
    rs = cp.random.RandomState(3)
    for (r, k, n), precision in [
        ((128, 32768, 32768), "tf32x3"),
        ((4096, 4096, 4096), "tf32x3"),
        ((128, 32768, 32768), "tf32"),
        ((1024, 4096, 4096), "tf32x3"),
    ]:
        x = rs.standard_normal((r, k), dtype=cp.float32)
        w = rs.standard_normal((n, k), dtype=cp.float32) / k**0.5
        b = rs.standard_normal(n, dtype=cp.float32)
        out = cp.empty(r, cp.float32)
        p = Problem(r, k, n, "float32", True, k, k, True, DEV, 256 * 2**20)
        cfg = tile_configs("float32", precision, r, True, True, True)[0]
        splits = split_count(p, cfg, SMS)
        new = TileKernel(p, cfg, splits)
        old = TileKernel(p, cfg, splits)
        k_split, _ = _k_split(k, splits)
        tiles = -(-r // cfg.bm) * -(-n // cfg.bn)
        name = cfg.instance(False).replace(", 128, false>", ", false>")  # session 5's instances had no BM
        old._make_launch(
            p, old_function(name), name, tiles * old.splits, cfg.threads, cfg.smem, k_split, old.splits, GROUP_M
        )
        ws = cp.empty(max(16, new.workspace_bytes), cp.uint8)
        case = f"forward {r}x{k}x{n} {precision}"
        outs = []
        for label, exe in (("old", old), ("new", new), ("old again", old), ("new again", new)):
            t = timed(lambda: exe.run(x.data.ptr, w.data.ptr, b.data.ptr, out.data.ptr, ws.data.ptr, s))
            outs.append(out.copy())
            TABLE.append((case, f"{label} wgmma_tile S={splits}", t, 0.0))
        print(f"{case}: old and new identical: {bool(cp.array_equal(outs[0], outs[1]))}", flush=True)
        cp.get_default_memory_pool().free_all_blocks()


def training_rows():
    for B, K, N in [(128, 32768, 32768), (4096, 4096, 4096), (512, 2048, 3000), (64, 8192, 8192)]:
        bound = 1 / K**0.5
        x = torch.randn(B, K, device="cuda", requires_grad=True)
        w = torch.empty(N, K, device="cuda").uniform_(-bound, bound).requires_grad_()
        b = torch.empty(N, device="cuda").uniform_(-bound, bound).requires_grad_()
        g = torch.rand(B, 1, device="cuda")
        ref = torch.autograd.grad(
            torch.sigmoid(torch.nn.functional.linear(x.double(), w.double(), b.double())).sum(-1, keepdim=True),
            (x, w, b),
            g.double(),
        )

        def ours():
            return torch.autograd.grad(cft.linear_sigmoid_sum(x, w, b), (x, w, b), g)

        def peer():
            return torch.autograd.grad(
                torch.sigmoid(torch.nn.functional.linear(x, w, b)).sum(-1, keepdim=True), (x, w, b), g
            )

        for label, fn in (("ours default", ours), ("torch fp32", peer)):
            got = fn()
            errs = [float((o.double() - r).norm() / r.norm()) for o, r in zip(got, ref)]
            torch.cuda.synchronize()
            times = []
            for _ in range(7):
                a, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                fn()
                e.record()
                e.synchronize()
                times.append(a.elapsed_time(e))
            TABLE.append((f"train {B}x{K}x{N}", label, statistics.median(times), max(errs)))
        torch.cuda.empty_cache()


def main():
    import sys

    torch.backends.cuda.matmul.allow_tf32 = False
    print(torch.cuda.get_device_name(), "sms", SMS, flush=True)
    quick = "--regression" in sys.argv  # no correctness checks, no training steps
    ok = True if quick else check_gemms()
    gemm_rows()
    forward_rows()
    if not quick:
        training_rows()
    print(f"\nGEMM checks: {'all ok' if ok else 'FAILED'}")
    print(f"{'case':>34} {'variant':>30} {'ms':>8} {'rel err':>9}")
    for case, name, ms, err in TABLE:
        print(f"{case:>34} {name:>30} {ms:8.3f} {err:9.2e}")


if __name__ == "__main__":
    main()
