"""GEMM core probe (issue 26): GPU time per call of every core candidate against the peers at the issue's shapes.

For each shape and dtype: torch eager, the Triton peer (cupy_fused/bench/peers.py), each planner candidate (the core's
instances and split counts with tuning on, the CUDA-core small-batch kernel, mma.sync tiles, cuBLASLt + reduction),
the core's best form with the exact sigmoid instead of tanh.approx (half types), and the auto plan. GPU time from
CUDA-graph replay of 20 back-to-back calls over rotating input sets (2x the L2 in all), median of 7 replays
(bench.timing.GpuTimer.replay_ms); the
relative error against float64. Full rows go to OUT/probe_core.json, a short table last.

    PYTHONPATH=$PWD python3 benchmarks/lab/probe_core.py [--quick] [--shape DTYPE B K N ...] [--skip PREFIX ...]
        [--saves] [--every-core]

``--every-core``: the core's instances also at shapes where ``planner._core_offered`` leaves them out (method
"fused"'s candidates added to "auto"'s: session 20 asks whether one launch of the core beats cuBLASLt + reduction at
1024 x 4096 x 4096, where the bf16 step is host-bound).
``--saves``: the training forward's candidates, each also storing sigmoid'(z) (B, N) in x's dtype, and "ours auto"
as ``backward.forward`` with every size saved, whose plan is printed (session 17: the saving bf16 forward at
16384 x 1024 x 65536 took 6.1 ms on cuBLAS + float32 z blocks in a training step).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import time

import torch

import cupy_fused
from cupy_fused import arrays, backward, loader, planner
from cupy_fused.bench.peers import triton_peer
from cupy_fused.bench.timing import GpuTimer, reference
from cupy_fused.gemm.kernel import GemmKernel
from cupy_fused.plans import CACHE, linear_key

SHAPES = [
    ("bfloat16", 1, 4096, 4096),
    ("bfloat16", 1, 8192, 28672),
    ("bfloat16", 8, 4096, 14336),
    ("bfloat16", 32, 4096, 14336),
    ("bfloat16", 128, 4096, 4096),
    ("bfloat16", 256, 1024, 1024),
    ("bfloat16", 128, 32768, 32768),
    ("bfloat16", 512, 4096, 11008),
    ("bfloat16", 4096, 4096, 4096),
    ("bfloat16", 16384, 256, 16384),
    ("bfloat16", 16384, 1024, 65536),
    ("float16", 32, 4096, 14336),
    ("float16", 4096, 4096, 4096),
]
QUICK = [SHAPES[i] for i in (0, 1, 3, 4, 5, 7, 8, 10)]


def exe_fn(exe, sets, rows, dtype, saved=None):
    """f(i) running a built executable on input set i (output and workspace from torch's allocator; sigmoid'(z) into
    ``saved`` when given)."""
    stream = lambda: torch.cuda.current_stream().cuda_stream

    def f(i):
        x, w, b = sets[i]
        out = torch.empty(rows, 1, device="cuda", dtype=dtype)
        ws = torch.empty(max(exe.workspace_bytes, 1), device="cuda", dtype=torch.uint8)
        s = 0 if saved is None else saved.data_ptr()
        exe.run(x.data_ptr(), w.data_ptr(), b.data_ptr(), out.data_ptr(), ws.data_ptr(), stream(), s)
        return out

    return f


def probe(dtype_name, B, K, N, l2, rows_out, skip=(), saves=False, every_core=False):
    dtype = getattr(torch, dtype_name)
    torch.manual_seed(B + K + N)
    bound = 1 / math.sqrt(K)
    per_set = (B * K + N * K + N) * dtype.itemsize
    sets_n = max(1, min(8, math.ceil(2 * l2 / per_set)))
    sets = [
        (
            torch.randn(B, K, device="cuda", dtype=dtype),
            torch.empty(N, K, device="cuda", dtype=dtype).uniform_(-bound, bound),
            torch.empty(N, device="cuda", dtype=dtype).uniform_(-bound, bound),
        )
        for _ in range(sets_n)
    ]
    ref = reference(torch, *sets[0]).cpu().double()
    label = f"{dtype_name} {B}x{K}x{N}"
    precision = "tf32" if dtype_name == "float32" else None
    contenders = []
    model = lambda x, w, b: torch.sum(torch.sigmoid(torch.nn.functional.linear(x, w, b)), -1, keepdim=True)
    contenders.append(("torch", lambda i: model(*sets[i])))
    peer = triton_peer()
    if peer is not None:
        contenders.append(("triton", lambda i: peer(*sets[i])))
    if saves:
        contenders.append(("ours auto", lambda i: backward.forward(*sets[i], precision=precision, save_bytes=2**62)[0]))
    else:
        contenders.append(("ours auto", lambda i: cupy_fused.linear_sigmoid_sum(*sets[i], precision=precision)))
    x, w, b = sets[0]
    saved = torch.empty(B, N, device="cuda", dtype=dtype) if saves else None
    ops = [arrays.describe(name, t) for name, t in zip(("x", "weight", "bias"), (x, w, b))]
    p, _ = planner.problem_of(ops, B, K, N, 256 * 2**20, save=saves)
    info = loader.device_info(0)
    best_core = None
    cands = planner.candidates(p, precision, "auto", info, tuning=True)
    if every_core:  # the core's instances also where planner._core_offered leaves them out
        kernels = {c.kernel for c in cands}
        cands += [c for c in planner.candidates(p, precision, "fused", info, tuning=True) if c.kernel not in kernels]
    for cand in cands:
        if any(cand.kernel.startswith(prefix) for prefix in skip):
            continue
        exe = cand.build()
        contenders.append((cand.kernel, exe_fn(exe, sets, B, dtype, saved)))
        if cand.kernel.startswith("sm90") and best_core is None:
            best_core = (cand, exe)
    if best_core is not None and dtype_name != "float32":
        spec = best_core[1]._spec
        exact = dataclasses.replace(spec, operand=dataclasses.replace(spec.operand, sigmoid="Exact"))
        exe = GemmKernel(exact, B, N, K, K, K, 0, best_core[1].streamed > 0)
        contenders.append((best_core[0].kernel + ":exact", exe_fn(exe, sets, B, dtype, saved)))
    rows = []
    tf32 = dtype_name == "float32"
    for name, fn in contenders:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        try:
            out = fn(0).double().cpu()
            err = float((out - ref).norm() / ref.norm())
            us = GpuTimer(torch).replay_ms(fn, sets_n, calls=20, replays=7) * 1e3
        except Exception as exc:  # noqa: BLE001 - reported in the table
            rows.append({"shape": label, "name": name, "us": None, "err": None, "note": repr(exc)[:200]})
            continue
        finally:
            torch.backends.cuda.matmul.allow_tf32 = False
        rows.append({"shape": label, "name": name, "us": us, "err": err})
        print(f"{label:28} {name:34} {us:10.1f} us  err {err:.2e}", flush=True)
    floor_us = per_set / 3.1e12 * 1e6
    for r in rows:
        r["floor_us"] = floor_us
    if saves:
        key = linear_key(x, w, b, precision, "auto", True, 256 * 2**20) + ("saving",)
        plan = CACHE.get(key)
    else:
        plan = cupy_fused.plan(x, w, b, precision=precision)
    if plan is not None:
        print("   auto:", [line for line in plan.explain().splitlines() if line.startswith(("kernel", "chosen"))])
    rows_out.extend(rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--shape", nargs=4, action="append", metavar=("DTYPE", "B", "K", "N"))
    parser.add_argument("--budget", type=float, default=280, help="start no shape after this many seconds")
    parser.add_argument("--skip", nargs="+", default=[], metavar="PREFIX", help="leave out candidates named so")
    parser.add_argument("--saves", action="store_true", help="the training forward's candidates (storing sigmoid')")
    parser.add_argument("--every-core", action="store_true", help="the core's instances where the planner omits them")
    args = parser.parse_args()
    shapes = (
        [(d, int(b), int(k), int(n)) for d, b, k, n in args.shape] if args.shape else (QUICK if args.quick else SHAPES)
    )
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    rows = []
    start = time.perf_counter()
    for shape in shapes:
        if time.perf_counter() - start > args.budget:
            print("budget spent: skipped", shape)
            continue
        probe(*shape, l2, rows, args.skip, args.saves, args.every_core)
        torch.cuda.empty_cache()
    out = os.environ.get("OUT", ".")
    with open(os.path.join(out, "probe_core.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print("\nshape                        best peer          us   ours best                         us  ratio  err")
    for shape in dict.fromkeys(r["shape"] for r in rows):
        mine = [r for r in rows if r["shape"] == shape and r["us"] is not None]
        peers = [r for r in mine if r["name"] in ("torch", "triton")]
        ours = [r for r in mine if r["name"] not in ("torch", "triton")]
        bp, bo = min(peers, key=lambda r: r["us"]), min(ours, key=lambda r: r["us"])
        print(
            f"{shape:28} {bp['name']:10} {bp['us']:10.1f}   {bo['name']:30} {bo['us']:8.1f} {bo['us'] / bp['us']:6.2f}"
            f"  {bo['err']:.1e} (floor {bo['floor_us']:.1f})"
        )


if __name__ == "__main__":
    main()
