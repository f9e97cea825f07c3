"""Every kernel instance the package can launch, at odd shapes, for compute-sanitizer (scripts/sanitize.sh).

For each dtype, float32 precision, shape (B, K, N from 1, 3, 31, 33, 257, K a multiple of 8 for 16-byte aligned
rows where the Hopper GEMM core runs, and one of 515 rows for the backward's grad_x GEMM), bias on and off, aligned
and unaligned views: every candidate the planner would time (the small-batch
kernel's batch tiles and splits, each tile kernel with its split counts, cuBLASLt + the reduction), each as the
inference instance and the saving one; then the backward (saved and recomputed, one chunk and many) and sigmoid_sum.
Inputs are cupy arrays (bfloat16 as raw 16-bit words of float32 values: the backward is skipped for it). Prints the
launch count; the sanitizer's own summary says whether anything went wrong.

    PYTHONPATH=$PWD python3 scripts/sanitize_cases.py [--quick] [--dtypes bfloat16 float16] [--only sm90:]
        [--backward-only]

``--only PREFIX`` runs only the forward candidates whose name starts with PREFIX (``sm90:``: the GEMM core);
``--backward-only`` only the backward's cases (float16 runs the half backward's code path; bfloat16 has its own
instances of the same templates, which cupy arrays cannot reach).
"""

import argparse
import itertools

import cupy as cp
import numpy as np

import cupy_fused
from cupy_fused import loader, planner
from cupy_fused.backends import Problem
from cupy_fused.backward import grad

# K a multiple of 8 in rows of offset 0: 16-byte aligned rows, where the Hopper (TMA) paths run
ALIGNED_SHAPES = [(3, 64, 300), (70, 136, 1030), (257, 264, 520)]
SHAPES = [(1, 1, 1), (3, 31, 33), (31, 33, 257), (33, 257, 3), (257, 3, 31), (257, 257, 33)] + ALIGNED_SHAPES
QUICK_SHAPES = [(1, 1, 1), (3, 31, 33), (33, 257, 31), (257, 33, 257)] + ALIGNED_SHAPES[::2]
BACKWARD_SHAPES = [(3, 31, 33), (33, 257, 31), (515, 33, 257)]
PRECISIONS = {"float32": [None, "ieee", "tf32", "tf32x3", "bf16"]}
DTYPES = ["float32", "float16", "bfloat16", "float64"]


def array(rng, shape, dtype, offset):
    """A (rows, cols) array of dtype with values of scale 1 / sqrt(cols), viewed ``offset`` elements into wider rows
    (offset 1: neither the address nor the row stride is 16-byte aligned)."""
    rows, cols = shape
    values = (rng.standard_normal((rows, cols + offset)) / max(cols, 1) ** 0.5).astype(np.float32)
    if dtype == "bfloat16":
        data = cp.asarray((values.view(np.uint32) >> 16).astype(np.uint16))
    else:
        data = cp.asarray(values.astype(dtype))
    return data[:, offset:]


def run_candidates(x, w, b, dtype, precision, info, only=""):
    rows, k = x.shape
    n = w.shape[0]
    item = x.itemsize
    aligned = all(a.data.ptr % 16 == 0 and (a.strides[0] % 16 == 0) for a in (x, w))
    launches = 0
    for saves in (False, True):
        p = Problem(
            rows, k, n, dtype, b is not None, x.strides[0] // item, w.strides[0] // item, aligned, 0, 256 * 2**20, saves
        )
        found = planner.candidates(p, precision, "auto", info, True)
        kernels = {c.kernel for c in found}  # method="fused" adds the GEMM core where "auto" leaves it out
        found += [c for c in planner.candidates(p, precision, "fused", info, True) if c.kernel not in kernels]
        for candidate in (c for c in found if c.kernel.startswith(only)):
            exe = candidate.build()
            out = cp.empty(rows, x.dtype)
            # zeroed: the grid hand-over reads its flags before any write (compared with a fresh 64-bit epoch per
            # call, so any earlier content is valid); initcheck would report each of those reads
            ws = cp.zeros(max(exe.workspace_bytes, 1), cp.uint8)
            saved = cp.empty((rows, n), x.dtype) if saves else None  # sigmoid' in x's dtype
            exe.run(
                x.data.ptr,
                w.data.ptr,
                0 if b is None else b.data.ptr,
                out.data.ptr,
                ws.data.ptr if exe.workspace_bytes else 0,
                cp.cuda.get_current_stream().ptr,
                0 if saved is None else saved.data.ptr,
            )
            launches += 1
    return launches


def run_backward(rng, rows, k, n, dtype, precision):
    x, w = array(rng, (rows, k), dtype, 0), array(rng, (n, k), dtype, 0)
    b = array(rng, (1, n), dtype, 0)[0]
    g = array(rng, (rows, 1), dtype, 0)
    launches = 0
    for workspace, save_bytes in ((256 * 2**20, None), (4096, 0)):  # saved; recomputed (in chunks)
        out, saved = cupy_fused.backward.forward(
            x, w, b, precision=precision, workspace_bytes=workspace, save_bytes=save_bytes
        )
        grad(x, w, b, g, precision=precision, workspace_bytes=workspace, saved=saved)
        grad(x, w, None, g, precision=precision, workspace_bytes=workspace)
        launches += 3
    return launches


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer shapes (for the slower tools)")
    parser.add_argument("--dtypes", nargs="+", default=DTYPES, choices=DTYPES, help="only these dtypes")
    parser.add_argument("--only", default="", metavar="PREFIX", help="only the forward candidates named so")
    parser.add_argument("--backward-only", action="store_true", help="only the backward's cases")
    args = parser.parse_args()
    cp.cuda.set_allocator(None)  # every array its own cudaMalloc: memcheck sees the true bounds, not the pool's
    rng = np.random.default_rng(0)
    info = loader.device_info(0)
    launches = 0
    for dtype in args.dtypes:
        for precision in PRECISIONS.get(dtype, [None]):
            for (rows, k, n), bias, offset in itertools.product(
                () if args.backward_only else QUICK_SHAPES if args.quick else SHAPES, (True, False), (0, 1)
            ):
                x, w = array(rng, (rows, k), dtype, offset), array(rng, (n, k), dtype, offset)
                b = array(rng, (1, n), dtype, 0)[0] if bias else None
                launches += run_candidates(x, w, b, dtype, precision, info, args.only)
            if dtype != "bfloat16" and not args.only:
                for rows, k, n in BACKWARD_SHAPES:
                    launches += run_backward(rng, rows, k, n, dtype, precision)
    for rows, n in ((3, 31), (257, 33)) if not (args.only or args.backward_only) else ():
        z = cp.asarray(rng.standard_normal((rows, n)).astype(np.float32))
        cupy_fused.sigmoid_sum(z, cp.asarray(rng.standard_normal(n).astype(np.float32)))
        launches += 1
    cp.cuda.runtime.deviceSynchronize()
    print(f"sanitize_cases: {launches} calls queued and finished")


if __name__ == "__main__":
    main()
