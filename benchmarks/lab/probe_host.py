"""Per-call host time at small shapes, steadier than the bench's calls section: the plan each call resolves to
(kernel, workspace) and the median of 7 rounds of 3000 back-to-back calls, with torch.empty and torch eager beside
them. Run on the GPU machine: PYTHONPATH=$PWD python3 benchmarks/lab/probe_host.py"""

import statistics
import time

import torch

import cupy_fused


def per_call_us(fn, calls=3000, rounds=7):
    for _ in range(200):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t) / calls * 1e6)
    return statistics.median(times)


def main():
    model = lambda x, w, b: torch.sum(torch.sigmoid(torch.nn.functional.linear(x, w, b)), dim=-1, keepdim=True)
    print(f"torch.empty(1): {per_call_us(lambda: torch.empty(1, device='cuda')):.1f} us")
    for B, K, N in ((1, 1024, 1024), (1, 4096, 4096), (128, 10, 20), (8, 4096, 4096)):
        x, w, b = (
            torch.randn(B, K, device="cuda"),
            torch.randn(N, K, device="cuda") / K**0.5,
            torch.zeros(N, device="cuda"),
        )
        row = [f"{B} x {K} x {N}: eager {per_call_us(lambda: model(x, w, b)):.1f}"]
        for precision in (None, "tf32"):
            plan = cupy_fused.plan(x, w, b, precision=precision)
            lines = plan.explain().splitlines()
            kernel = next(line for line in lines if line.startswith("kernel"))[8:90]
            workspace = next(line for line in lines if line.startswith("workspace"))[11:30]
            call = per_call_us(lambda: cupy_fused.linear_sigmoid_sum(x, w, b, precision=precision))
            planned = per_call_us(lambda: plan(x, w, b))
            row.append(f"{precision or 'default'} call {call:.1f} plan {planned:.1f} [{kernel}; ws {workspace}]")
        print("\n    ".join(row))


if __name__ == "__main__":
    main()
