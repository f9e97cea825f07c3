"""GPU time per call of our planned call (tuning on) at small batches and mid shapes, against the HBM floor (the
bytes of W and x over the read bandwidth measured in the same run) and torch eager fp32 / TF32. GPU time is the
replay time of a CUDA graph of 20 calls, so host cost is out of it.

    PYTHONPATH=$PWD python3 benchmarks/lab/probe_floor.py [--json FILE]
"""

import argparse
import json
import math
import os

import torch

import cupy_fused

SHAPES = [
    (1, 4096, 4096),
    (8, 4096, 4096),
    (32, 4096, 4096),
    (1, 4096, 11008),
    (8, 4096, 11008),
    (32, 4096, 11008),
    (1, 11008, 4096),
    (32, 11008, 4096),
    (16, 8192, 8192),
    (64, 4096, 4096),
    (128, 4096, 4096),
    (128, 4096, 11008),
    (512, 4096, 4096),
]


def graph_us(fn, calls=20, reps=5):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(calls):
            fn()
    g.replay()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) * 1000 / calls)
    return min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json")
    args = parser.parse_args()
    os.environ.setdefault("CUPY_FUSED_TUNE", "1")
    big = torch.rand(2**30, device="cuda")
    torch.cuda.synchronize()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    big.sum()
    e0.record()
    for _ in range(10):
        big.sum()
    e1.record()
    torch.cuda.synchronize()
    hbm = 4 * 2**30 * 10 / (e0.elapsed_time(e1) / 1e3)
    del big
    model = lambda x, w, b: torch.sum(torch.sigmoid(torch.nn.functional.linear(x, w, b)), -1, keepdim=True)  # noqa
    rows = []
    print(f"HBM read {hbm / 1e9:.0f} GB/s")
    print(
        f"{'B x K x N':>18} {'floor us':>9} {'default':>9} {'x floor':>8} {'tf32':>8} {'eager32':>8} {'eagerTF':>8}"
        f"  err(default)  chosen (default)"
    )
    for B, K, N in SHAPES:
        bound = 1 / math.sqrt(K)
        x = torch.randn(B, K, device="cuda")
        w = torch.empty(N, K, device="cuda").uniform_(-bound, bound)
        b = torch.empty(N, device="cuda").uniform_(-bound, bound)
        floor = 4 * (N * K + B * K) / hbm * 1e6
        plan = cupy_fused.plan(x, w, b)
        plan_tf = cupy_fused.plan(x, w, b, precision="tf32")
        ours = graph_us(lambda: plan(x, w, b))
        ours_tf = graph_us(lambda: plan_tf(x, w, b))
        torch.backends.cuda.matmul.allow_tf32 = False
        eager = graph_us(lambda: model(x, w, b))
        torch.backends.cuda.matmul.allow_tf32 = True
        eager_tf = graph_us(lambda: model(x, w, b))
        torch.backends.cuda.matmul.allow_tf32 = False
        ref = model(x.double(), w.double(), b.double())
        err = ((plan(x, w, b).double() - ref).norm() / ref.norm()).item()
        kernel = next(line for line in plan.explain().splitlines() if line.startswith("kernel:"))[8:90]
        rows.append(
            dict(
                shape=(B, K, N),
                floor_us=floor,
                ours_us=ours,
                tf32_us=ours_tf,
                eager_us=eager,
                eager_tf32_us=eager_tf,
                err=err,
                kernel=kernel,
            )
        )
        print(
            f"{f'{B} x {K} x {N}':>18} {floor:9.1f} {ours:9.1f} {ours / floor:8.2f} {ours_tf:8.1f} {eager:8.1f} "
            f"{eager_tf:8.1f}  {err:.1e}       {kernel}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"hbm_gbps": hbm / 1e9, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
