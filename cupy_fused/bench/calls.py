"""The "calls" section: per-call time of back-to-back calls at the sizes people call in a loop.

For each shape, torch CUDA tensors (x ~ N(0, 1), W and b uniform in +-1/sqrt(K)) and zero-copy cupy views of them;
each contender runs back to back on the current stream, synchronized once at the end: "host us" is the loop's time
per call without that synchronize, "wall us" with it (what a Python loop pays per call). Peers in the same run:
torch eager fp32 and TF32, torch.compile fp32 and TF32. Errors are against float64.

Self-contained (torch, cupy, numpy and cupy_fused's public functions only), so the same file also times another
checkout, which is how the before / after table in the notes was made:

    PYTHONPATH=<checkout> python3 cupy_fused/bench/calls.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

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


def run(shapes=CALLS, budget_s: float = 0.05, progress=None) -> list[dict]:
    import cupy
    import numpy as np
    import torch

    import cupy_fused

    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    model = lambda x, w, b: torch.sum(torch.sigmoid(torch.nn.functional.linear(x, w, b)), dim=-1, keepdim=True)
    compiled = torch.compile(model)
    rows = []
    for i, (B, K, N) in enumerate(shapes):
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
            ("torch.compile fp32", False, lambda: compiled(*t)),
            ("torch.compile tf32", True, lambda: compiled(*t)),
            ("ours default (torch)", False, lambda: cupy_fused.linear_sigmoid_sum(*t)),
            ("ours tf32 (torch)", False, lambda: cupy_fused.linear_sigmoid_sum(*t, precision="tf32")),
            ("ours default (cupy)", False, lambda: cupy_fused.linear_sigmoid_sum(*c)),
            ("ours tf32 (cupy)", False, lambda: cupy_fused.linear_sigmoid_sum(*c, precision="tf32")),
        ]
        if hasattr(cupy_fused, "plan"):
            planned = cupy_fused.plan(*t)
            contenders.append(("ours default (plan)", False, lambda: planned(*t)))
        for name, tf32, fn in contenders:
            if progress:
                progress(f"{B} x {K} x {N} {name}")
            torch.backends.cuda.matmul.allow_tf32 = tf32
            try:
                out = fn()
                host, wall = _loop_us(torch, fn, budget_s)
            finally:
                torch.backends.cuda.matmul.allow_tf32 = False
            got = np.asarray(out.cpu() if isinstance(out, torch.Tensor) else cupy.asnumpy(out), np.float64).ravel()
            err = float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-300))
            rows.append(
                {"shape": f"{B} x {K} x {N}", "contender": name, "host_us": host, "wall_us": wall, "rel_err": err}
            )
    return rows


def table(rows: list[dict]) -> str:
    """One line per shape: wall us per call of each contender, ours' host us, and the ratios the targets name."""
    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    names = list(dict.fromkeys(r["contender"] for r in rows))
    short = {
        n: n.replace("torch eager ", "eager ").replace("torch.compile ", "compile ").replace("ours ", "") for n in names
    }
    head = ["B x K x N"] + [short[n] for n in names] + ["host(default)", "default/eager32", "tf32/best tf32 peer"]
    lines = [head]
    for shape in shapes:
        by = {r["contender"]: r for r in rows if r["shape"] == shape}
        cells = [shape] + [f"{by[n]['wall_us']:.1f}" if n in by else "-" for n in names]
        ours_d, ours_t = by.get("ours default (torch)"), by.get("ours tf32 (torch)")
        best_tf32 = min(by[n]["wall_us"] for n in ("torch eager tf32", "torch.compile tf32") if n in by)
        cells += [
            f"{ours_d['host_us']:.1f}" if ours_d else "-",
            f"{ours_d['wall_us'] / by['torch eager fp32']['wall_us']:.2f}" if ours_d else "-",
            f"{ours_t['wall_us'] / best_tf32:.2f}" if ours_t else "-",
        ]
        lines.append(cells)
    widths = [max(len(c) for c in col) for col in zip(*lines)]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(cells, widths)) for cells in lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"only {QUICK}")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    rows = run(QUICK if args.quick else CALLS, progress=lambda label: print(f"  {label}", file=sys.stderr, flush=True))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    print("per-call wall time (us) of back-to-back calls, synchronized once at the end")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
