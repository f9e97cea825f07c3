"""The "calls" section: per-call time of back-to-back calls at the sizes people call in a loop.

For each shape, torch CUDA tensors (x ~ N(0, 1), W and b uniform in +-1/sqrt(K)) and zero-copy cupy views of them;
each contender runs back to back on the current stream, synchronized once at the end: "host us" is the loop's time
per call without that synchronize, "wall us" with it (what a Python loop pays per call). Peers in the same run:
torch eager fp32 and TF32, torch.compile fp32 and TF32, and the plain fused Triton kernel in TF32 (peers.py) where
triton is installed. Errors are against float64.

It uses torch, cupy, numpy, cupy_fused's public functions and report.py and peers.py beside it only, so the same
file also times another checkout, which is how the before / after table in the notes was made:

    PYTHONPATH=<checkout> python3 cupy_fused/bench/calls.py [--quick] [--wide] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

if __package__:
    from .peers import torch_compiled, torch_model, triton_peer
    from .report import Column, make_table, number, progress, stdout_console
else:  # run as a script, maybe on another checkout's cupy_fused: this tree's peers.py and report.py, beside this file
    # mypy reads this file as part of the package, where these siblings are no top-level modules
    from peers import torch_compiled, torch_model, triton_peer  # type: ignore[import-not-found,no-redef]
    from report import Column, make_table, number, progress, stdout_console  # type: ignore[import-not-found,no-redef]

CALLS = sorted(
    {(b, 4096, 4096) for b in (1, 8, 32, 128, 512, 1024, 4096)}
    | {
        (1, 4096, 11008),
        (32, 4096, 11008),
        (128, 4096, 11008),
        (4096, 4096, 11008),
        (1, 11008, 4096),
        (32, 11008, 4096),
        (1, 1024, 1024),
        (128, 1024, 1024),
        (4096, 1024, 1024),
        (128, 10, 20),
        (512, 2048, 3000),
    }
)
QUICK = [(128, 10, 20), (1, 4096, 4096), (32, 4096, 11008), (512, 2048, 3000), (1024, 4096, 4096)]


def _loop_us(torch, fn, budget_s: float) -> tuple[float, float]:
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    calls = int(min(2000, max(20, budget_s / max((time.perf_counter() - t) / 5, 1e-7))))
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    t1 = time.perf_counter()
    torch.cuda.synchronize()
    t2 = time.perf_counter()
    return (t1 - t0) / calls * 1e6, (t2 - t0) / calls * 1e6


def run(shapes=CALLS, budget_s: float = 0.05) -> list[dict]:
    import cupy
    import numpy as np
    import torch

    import cupy_fused

    model, triton = torch_model(), triton_peer()
    compiled = {tf32: torch_compiled() for tf32 in (False, True)}  # a TF32 switch would recompile one
    rows = []
    with progress("calls", len(shapes)) as step:
        for i, (B, K, N) in enumerate(shapes):
            step(f"{B} x {K} x {N}")
            torch.manual_seed(i)
            bound = 1 / math.sqrt(K)
            x = torch.randn(B, K, device="cuda")
            w = torch.empty(N, K, device="cuda").uniform_(-bound, bound)
            b = torch.empty(N, device="cuda").uniform_(-bound, bound)
            xc, wc, bc = (cupy.from_dlpack(t) for t in (x, w, b))
            z = x.double() @ w.double().T + b.double()
            ref = torch.sigmoid(z).sum(-1).cpu().numpy()
            del z
            t, c = (x, w, b), (xc, wc, bc)
            contenders = [
                ("torch eager fp32", False, lambda: model(*t)),
                ("torch eager tf32", True, lambda: model(*t)),
                ("torch.compile fp32", False, lambda: compiled[False](*t)),
                ("torch.compile tf32", True, lambda: compiled[True](*t)),
                ("ours default (torch)", False, lambda: cupy_fused.linear_sigmoid_sum(*t)),
                ("ours tf32 (torch)", False, lambda: cupy_fused.linear_sigmoid_sum(*t, precision="tf32")),
                ("ours default (cupy)", False, lambda: cupy_fused.linear_sigmoid_sum(*c)),
                ("ours tf32 (cupy)", False, lambda: cupy_fused.linear_sigmoid_sum(*c, precision="tf32")),
            ]
            if triton is not None:
                contenders.append(("triton tf32", False, lambda: triton(*t)))
            if hasattr(cupy_fused, "plan"):
                planned = cupy_fused.plan(*t)
                contenders.append(("ours default (plan)", False, lambda: planned(*t)))
            for name, tf32, fn in contenders:
                torch.backends.cuda.matmul.allow_tf32 = tf32
                try:
                    out = fn()
                    host, wall = _loop_us(torch, fn, budget_s)
                finally:
                    torch.backends.cuda.matmul.allow_tf32 = False
                got = np.asarray(out.cpu() if isinstance(out, torch.Tensor) else cupy.asnumpy(out), np.float64).ravel()
                err = float(np.linalg.norm(got - ref) / max(float(np.linalg.norm(ref)), 1e-300))
                rows.append(
                    {"shape": f"{B} x {K} x {N}", "contender": name, "host_us": host, "wall_us": wall, "rel_err": err}
                )
    return rows


HEADING = (
    "calls: wall time per call (us) of back-to-back calls from torch tensors, synchronized once at the end\n"
    "vs: the best peer's time / ours at the same precision; host: ours default's time per call without the synchronize"
)
OURS_DEFAULT, OURS_TF32 = "ours default (torch)", "ours tf32 (torch)"
FP32_PEER, TF32_PEERS = "torch eager fp32", ("torch eager tf32", "torch.compile tf32", "triton tf32")


def wall_us(record: dict, *names: str) -> float | None:
    """The least wall time per call of the contenders ``names`` in a shape's record (None: none ran)."""
    return min((record[name]["wall_us"] for name in names if name in record), default=None)


def speedup(record: dict, peers: tuple[str, ...], ours: str) -> str:
    peer, own = wall_us(record, *peers), wall_us(record, ours)
    return number(None if peer is None or own is None else peer / own, ".2f", "x")


def columns(rows: list[dict]) -> list[Column]:
    """The calls table's columns; --wide adds the wall time of each other contender."""
    shown = (FP32_PEER, OURS_DEFAULT, OURS_TF32)
    others = [name for name in dict.fromkeys(r["contender"] for r in rows) if name not in shown]
    return [
        Column("B x K x N", lambda r: r["shape"], justify="left"),
        Column("eager fp32", lambda r: number(wall_us(r, FP32_PEER), ".1f")),
        Column("ours default", lambda r: number(wall_us(r, OURS_DEFAULT), ".1f")),
        Column("vs eager fp32", lambda r: speedup(r, (FP32_PEER,), OURS_DEFAULT)),
        Column("best tf32 peer", lambda r: number(wall_us(r, *TF32_PEERS), ".1f")),
        Column("ours tf32", lambda r: number(wall_us(r, OURS_TF32), ".1f")),
        Column("vs best tf32", lambda r: speedup(r, TF32_PEERS, OURS_TF32)),
        Column("host", lambda r: number(r[OURS_DEFAULT]["host_us"] if OURS_DEFAULT in r else None, ".1f")),
        *[Column(name, lambda r, name=name: number(wall_us(r, name), ".1f"), wide=True) for name in others],
    ]


def table(rows: list[dict], wide: bool = False):
    """One line per shape; its record: the shape and each contender's row by name."""
    shapes = dict.fromkeys(r["shape"] for r in rows)
    records = [{"shape": shape} | {r["contender"]: r for r in rows if r["shape"] == shape} for shape in shapes]
    return make_table(columns(rows), records, wide)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"only {QUICK}")
    parser.add_argument("--wide", action="store_true", help="also the wall time of every other contender")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    rows = run(QUICK if args.quick else CALLS)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    console = stdout_console(args.wide)
    console.print(HEADING)
    console.print(table(rows, args.wide))
    return 0


if __name__ == "__main__":
    sys.exit(main())
